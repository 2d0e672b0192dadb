#!/bin/bash
# `bpfwardenctl policy check [DIR|FILE]`: validates as bpfwardend loads,
# without root and without a daemon, and changes nothing:
#   - a valid directory and a valid single file: exit 0 and the rule counts;
#   - a path that names nothing yet: a warning with file and line, exit 0;
#   - a bad rule: file:line and the reason, exit 1; a TOML syntax error:
#     file:line:column, exit 1; a merge conflict between two files, exit 1;
#   - a missing target, two targets, an unknown subcommand: exit 2;
#   - --json: one object that parses, for the valid and the invalid case;
#   - run as nobody on a world-readable directory;
#   - a policy file others may write, a group-writable directory and a file
#     owned by another user: refused, naming the file, its mode or owner;
#   - the checked directory is left exactly as it was.
#   policy_check_test.sh BUILD_DIR SOURCE_DIR
BW_BUILD=$1
BW_SRC=$2
BW_OUT="$BW_BUILD/tests/policy-check-out"
. "$BW_SRC/selftests/guest/lib.sh"
CTL="$BW_BUILD/ctl/bpfwardenctl"
work=$(mktemp -d /tmp/bpfwarden-policycheck.XXXXXX)
trap 'rm -rf "$work"' EXIT
rm -rf "$BW_OUT"
mkdir -p "$BW_OUT"
chmod 0755 "$work"

# policy_dir NAME: a fresh directory with the shipped default policy in it.
policy_dir() {
  mkdir -p "$work/$1"
  cp "$BW_SRC/policy/default.toml" "$work/$1/00-default.toml"
  echo "$work/$1"
}

good=$(policy_dir good)
printf '[[file]]\npath = "%s"\naction = "deny"\n' "$work/good/00-default.toml" >"$good/50-local.toml"
expect valid_dir 0 "^OK: $good is valid: 4 file, 1 exec and 1 bpf allow rules from 2 files$" "$CTL" policy check "$good"
expect valid_file 0 "^OK: .*default.toml is valid: 3 file, 1 exec and 1 bpf allow rules from 1 file$" \
  "$CTL" policy check "$BW_SRC/policy/default.toml"
before=$(cd "$good" && ls -l --time-style=full-iso && md5sum ./*)
setpriv --reuid=65534 --regid=65534 --clear-groups "$CTL" policy check "$good" >"$BW_OUT/nobody.log" 2>&1 &&
  grep -q "^OK: " "$BW_OUT/nobody.log" && pass valid_as_nobody || fail valid_as_nobody "$(cat "$BW_OUT/nobody.log")"
[ "$(cd "$good" && ls -l --time-style=full-iso && md5sum ./*)" = "$before" ] && pass directory_unchanged ||
  fail directory_unchanged "the checked directory changed"

missing=$(policy_dir missing)
printf '[[file]]\npath = "/nonexistent-bw/x"\naction = "deny"\n' >"$missing/50-local.toml"
expect missing_path_is_a_warning 0 \
  "warning: $missing/50-local.toml:2: the directory of '/nonexistent-bw/x' does not exist yet: rule inactive" \
  "$CTL" policy check "$missing"
expect missing_path_counted_inactive 0 "1 inactive until their path exists" "$CTL" policy check "$missing"

bad=$(policy_dir bad)
printf '[[file]]\npath = "/etc/shadow"\naction = "dney"\n' >"$bad/50-local.toml"
expect bad_action_names_file_and_line 1 "$bad/50-local.toml:3: unknown action 'dney'" "$CTL" policy check "$bad"
syntax=$(policy_dir syntax)
printf '[[file]\npath = "/etc/shadow"\n' >"$syntax/50-local.toml"
expect syntax_error_names_line_and_column 1 "$syntax/50-local.toml:1:8: " "$CTL" policy check "$syntax"
conflict=$(policy_dir conflict)
printf '[bpf]\nmode = "audit"\n' >"$conflict/50-local.toml"
expect merge_conflict_names_both_files 1 "50-local.toml:2: bpf.mode is already set in .*00-default.toml" \
  "$CTL" policy check "$conflict"

# Who may have written the policy: root or the checking user, nobody else.
writable=$(policy_dir writable)
chmod 0666 "$writable/00-default.toml"
expect world_writable_file_refused 1 "policy file '$writable/00-default.toml' is writable by everyone \(mode 0666\).*chmod go-w" \
  "$CTL" policy check "$writable"
group=$(policy_dir group)
chmod 0775 "$group"
expect group_writable_directory_refused 1 "policy directory '$group' is writable by its group \(mode 0775\)" \
  "$CTL" policy check "$group"
foreign=$(policy_dir foreign)
chown 65534:65534 "$foreign/00-default.toml"
expect foreign_owner_refused 1 "policy file '$foreign/00-default.toml' is owned by uid 65534, neither root nor" \
  "$CTL" policy check "$foreign"

expect missing_target 2 "'$work/nope': no such file or directory" "$CTL" policy check "$work/nope"
expect two_targets 2 "one DIR or FILE at a time" "$CTL" policy check "$good" "$bad"
expect unknown_subcommand 2 "unknown subcommand 'chek'" "$CTL" policy chek
expect unknown_option 2 "--jsn: unknown option" "$CTL" policy check --jsn

"$CTL" policy check --json "$missing" >"$BW_OUT/valid.json" 2>&1
python3 -c 'import json,sys; o=json.load(open(sys.argv[1])); sys.exit(0 if o["valid"] and o["rules"]["inactive"] == 1 and len(o["warnings"]) == 1 else 1)' \
  "$BW_OUT/valid.json" && pass json_valid || fail json_valid "$(cat "$BW_OUT/valid.json")"
"$CTL" policy check --json "$bad" >"$BW_OUT/invalid.json" 2>/dev/null
rc=$?
python3 -c 'import json,sys; o=json.load(open(sys.argv[1])); sys.exit(0 if not o["valid"] and "dney" in o["error"] else 1)' \
  "$BW_OUT/invalid.json" && [ $rc = 1 ] && pass json_invalid || fail json_invalid "exit $rc: $(cat "$BW_OUT/invalid.json")"

# Every policy example in docs/POLICY.md is valid as written (alone).
examples="$work/examples"
mkdir -p "$examples"
awk -v dir="$examples" '/^```toml$/ { n++; file = sprintf("%s/%02d.toml", dir, n); inside = 1; next }
  /^```$/ { inside = 0 } inside { print > file }' "$BW_SRC/docs/POLICY.md"
count=0
for example in "$examples"/*.toml; do
  count=$((count + 1))
  if out=$("$CTL" policy check "$example" 2>&1); then
    :
  else
    fail "docs_example_$(basename "$example" .toml)_valid" "$out"
  fi
done
[ "$count" -ge 7 ] && pass "docs_policy_examples_valid_$count" || fail docs_policy_examples_found "only $count toml blocks"

finish
