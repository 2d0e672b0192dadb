#!/bin/bash
# bpfwardenctl inventory and contain on this machine (root), against a
# foreign program of the test's own (two tracepoint programs sharing a map,
# loaded, attached and pinned by a small libbpf loader, as a third party
# would) and against bpfwardend's own programs:
#   - inventory lists the foreign program as unknown (text, --unknown exit 1,
#     JSON), with its links, what they attach to, its pins, its maps and its
#     holder; an allowlist entry (name, tag or owner) makes it allowlisted;
#     a bad allowlist is refused with file:line (exit 2);
#   - contain detaches and unpins it and the map only it uses, leaves the
#     shared map, logs each action, and the program is gone; while a process
#     holds it, contain names the process (exit 3) and kills nothing;
#   - contain refuses without --yes and no terminal, an id that does not
#     exist (1), a non-numeric id (2), and bpfwardend's programs (1), whose
#     pins stay as they were.
#   inventory_test.sh BUILD_DIR SOURCE_DIR
BW_BUILD=$1
BW_SRC=$2
BW_OUT="$BW_BUILD/tests/inventory-out"
. "$BW_SRC/selftests/guest/lib.sh"
CTL="$BW_BUILD/ctl/bpfwardenctl"
work=$(mktemp -d /tmp/bpfwarden-inventorytest.XXXXXX)
foreign=/sys/fs/bpf/bwtest-inventory-$$
BW_PINS=/sys/fs/bpf/bwtest-inventory-ours-$$
BW_STATE="$work/state"
BW_CANARY="$work/canary"
LOADER_PID=""
foreign_ino=""
# What the loader pins, per round directory.
loader_pins="invtest_foreign_prog invtest_foreign_link invtest_other_prog invtest_other_link invtest_own invtest_shared"
rm -rf "$BW_OUT"
mkdir -p "$BW_OUT" "$work/policy.d" "$BW_STATE"
cleanup() {
  if [ -n "$LOADER_PID" ]; then
    kill "$LOADER_PID" 2>/dev/null
    wait "$LOADER_PID" 2>/dev/null
  fi
  stop_watchdog
  stop_daemon
  "$BW_DAEMON" --unpin --yes --pin-root "$BW_PINS" --log-target stderr >/dev/null 2>&1
  rmdir "$BW_PINS" 2>/dev/null
  # Only the directory this test made (same inode), and only the loader's pins in it.
  if [ -n "$foreign_ino" ] && [ "$(stat -c %i "$foreign" 2>/dev/null)" = "$foreign_ino" ]; then
    for round in round1 round2 round3; do
      for pin in $loader_pins; do rm -f "$foreign/$round/$pin"; done
      rmdir "$foreign/$round" 2>/dev/null
    done
    rmdir "$foreign"
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# ---- The foreign program and its loader ------------------------------------------
cp "$BW_SRC/tests/host/foreign.bpf.c" "$work/foreign.bpf.c"
cat >"$work/loader.c" <<'EOF'
/* loader OBJ DIR [hold]: attaches both programs of OBJ, pins the programs,
 * their links and the maps under DIR, prints "loaded", then exits or (hold)
 * keeps its fds open until killed. */
#include <bpf/libbpf.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int attach_and_pin(struct bpf_object *obj, const char *name, const char *dir)
{
	struct bpf_program *prog = bpf_object__find_program_by_name(obj, name);
	struct bpf_link *link;
	char path[4096];

	if (!prog || !(link = bpf_program__attach(prog)))
		return -1;
	snprintf(path, sizeof(path), "%s/%s_link", dir, name);
	if (bpf_link__pin(link, path))
		return -1;
	snprintf(path, sizeof(path), "%s/%s_prog", dir, name);
	return bpf_program__pin(prog, path);
}

int main(int argc, char **argv)
{
	struct bpf_object *obj;

	if (argc < 3)
		return 2;
	obj = bpf_object__open_file(argv[1], NULL);
	if (!obj || bpf_object__load(obj))
		return 1;
	if (attach_and_pin(obj, "invtest_foreign", argv[2]) || attach_and_pin(obj, "invtest_other", argv[2]) ||
	    bpf_object__pin_maps(obj, argv[2]))
		return 1;
	printf("loaded\n");
	fflush(stdout);
	if (argc > 3 && strcmp(argv[3], "hold") == 0)
		pause();
	return 0;
}
EOF
if ! clang -O2 -g --target=bpf -I"/usr/include/$(gcc -dumpmachine)" -c "$work/foreign.bpf.c" -o "$work/foreign.bpf.o" \
  >"$BW_OUT/build.log" 2>&1 || ! cc -O2 -o "$work/loader" "$work/loader.c" -lbpf >>"$BW_OUT/build.log" 2>&1; then
  fail build_foreign_program "$(cat "$BW_OUT/build.log")"
  finish
  exit
fi
mkdir "$foreign"
foreign_ino=$(stat -c %i "$foreign")
mkdir "$foreign/round1" "$foreign/round2"

prog_id_at() { bpftool prog show pinned "$1" 2>/dev/null | sed -n '1s/^\([0-9]*\):.*/\1/p'; }
link_id_at() { bpftool link show pinned "$1" 2>/dev/null | sed -n '1s/^\([0-9]*\):.*/\1/p'; }
map_id_at() { bpftool map show pinned "$1" 2>/dev/null | sed -n '1s/^\([0-9]*\):.*/\1/p'; }
prog_exists() { bpftool prog show id "$1" >/dev/null 2>&1; }
# gone_within SECONDS ID: the kernel frees a program after its last reference, asynchronously.
gone_within() {
  local i
  for i in $(seq 1 $(($1 * 10))); do prog_exists "$2" || return 0; sleep 0.1; done
  return 1
}
# json_check NAME FILE PYTHON: PYTHON (with `d` the parsed FILE) must not raise.
json_check() {
  local out
  if out=$(python3 -c "import json,sys
d = json.load(open(sys.argv[1]))
$3" "$2" 2>&1); then pass "$1"; else fail "$1" "$out (see $2)"; fi
}

"$work/loader" "$work/foreign.bpf.o" "$foreign/round1" >"$BW_OUT/loader1.log" 2>&1 \
  || fail load_foreign_program "$(cat "$BW_OUT/loader1.log")"
id=$(prog_id_at "$foreign/round1/invtest_foreign_prog")
other=$(prog_id_at "$foreign/round1/invtest_other_prog")
link=$(link_id_at "$foreign/round1/invtest_foreign_link")
own_map=$(map_id_at "$foreign/round1/invtest_own")
shared_map=$(map_id_at "$foreign/round1/invtest_shared")
echo "foreign program $id (link $link, maps $own_map $shared_map), other program $other"

# ---- inventory ------------------------------------------------------------------------
expect inventory_unknown_lists_foreign 1 "^  $id +tracepoint +invtest_foreign +[0-9a-f]{16}  unknown " \
  "$CTL" inventory --unknown
expect inventory_unknown_names_its_link 1 "^  $link +perf_event +$id +unknown +" "$CTL" inventory --unknown
expect inventory_text_says_stats_state 0 "^Statistics: (on|off|unknown) " "$CTL" inventory

"$CTL" inventory --json >"$BW_OUT/inventory.json" 2>"$BW_OUT/inventory.err"
echo $? >"$BW_OUT/inventory.rc"
[ "$(cat "$BW_OUT/inventory.rc")" = 0 ] && pass inventory_json_exit_0 || fail inventory_json_exit_0 "$(cat "$BW_OUT/inventory.err")"
json_check inventory_json_classifies_foreign_unknown "$BW_OUT/inventory.json" "
p = {x['id']: x for x in d['programs']}[$id]
assert p['name'] == 'invtest_foreign' and p['type'] == 'tracepoint', p
assert p['owner'] == 'unknown', p
assert len(p['tag']) == 16 and p['loaded_at'].endswith('Z'), p
assert p['links'] == [$link], p['links']
assert p['pins'] == ['$foreign/round1/invtest_foreign_prog'], p['pins']
assert sorted(p['maps']) == sorted([$own_map, $shared_map]), p['maps']
assert isinstance(p['run_count'], int) and d['stats_enabled'] in (True, False, None)"
json_check inventory_json_describes_link "$BW_OUT/inventory.json" "
l = {x['id']: x for x in d['links']}[$link]
assert l['prog_id'] == $id and l['type'] == 'perf_event', l
# Kernels before 6.6 do not say which tracepoint a perf_event link is on.
assert l['target'] in ('tracepoint sys_enter_getppid', 'perf_event (this kernel does not say which: 6.6 and later do)'), l
assert l['pins'] == ['$foreign/round1/invtest_foreign_link'] and l['owner'] == 'unknown', l"
json_check inventory_json_maps_used_by "$BW_OUT/inventory.json" "
m = {x['id']: x for x in d['maps']}
assert m[$own_map]['used_by'] == [$id] and m[$own_map]['name'] == 'invtest_own', m[$own_map]
assert sorted(m[$shared_map]['used_by']) == sorted([$id, $other]), m[$shared_map]
assert m[$own_map]['owner'] == 'unknown', m[$own_map]"

# The allowlist: by name, by tag, and a name whose owner does not match.
tag=$(python3 -c "import json,sys; print({p['id']: p for p in json.load(open(sys.argv[1]))['programs']}[$id]['tag'])" \
  "$BW_OUT/inventory.json")
printf '[[expected]]\nname = "invtest_foreign"\ncomment = "the inventory test"\n' >"$work/by-name.toml"
printf '[[expected]]\ntag = "%s"\n' "$tag" >"$work/by-tag.toml"
printf '[[expected]]\nname = "invtest_foreign"\nowner = "/usr/sbin/nothing-like-it"\n' >"$work/wrong-owner.toml"
owner_of() {  # ALLOWLIST: the foreign program's classification with it
  "$CTL" inventory --json --allowlist "$1" |
    python3 -c "import json,sys; print({p['id']: p for p in json.load(sys.stdin)['programs']}[$id]['owner'])"
}
[ "$(owner_of "$work/by-name.toml")" = allowlisted ] && pass allowlist_by_name || fail allowlist_by_name "$(owner_of "$work/by-name.toml")"
[ "$(owner_of "$work/by-tag.toml")" = allowlisted ] && pass allowlist_by_tag || fail allowlist_by_tag "$(owner_of "$work/by-tag.toml")"
[ "$(owner_of "$work/wrong-owner.toml")" = unknown ] && pass allowlist_every_field_must_match \
  || fail allowlist_every_field_must_match "$(owner_of "$work/wrong-owner.toml")"
"$CTL" inventory --unknown --json --allowlist "$work/by-name.toml" >"$BW_OUT/unknown-allowlisted.json"
rc=$?
json_check allowlisted_not_listed_as_unknown "$BW_OUT/unknown-allowlisted.json" "
ids = [p['id'] for p in d['programs']]
assert $id not in ids and $link not in [l['id'] for l in d['links']], ids
assert $own_map not in [m['id'] for m in d['maps']]
assert d['only_unknown'] and d['unknown_programs'] == len(ids)
# The exit status says whether any other unknown program is loaded on this host.
assert $rc == (1 if ids else 0), ($rc, ids)"

printf '[[expected]]\nname = "invtest_foreign"\nnmae = "typo"\n' >"$work/bad.toml"
expect allowlist_unknown_key_refused 2 "^bpfwardenctl inventory: allowlist: $work/bad.toml:3: unknown key 'nmae' in \[\[expected\]\]" \
  "$CTL" inventory --allowlist "$work/bad.toml"
printf '[[expected]]\ntag = "xyz"\n' >"$work/bad-tag.toml"
expect allowlist_bad_tag_refused 2 "$work/bad-tag.toml:2: 'tag': 'xyz' is not a program tag" \
  "$CTL" inventory --allowlist "$work/bad-tag.toml"
expect allowlist_missing_file_refused 2 "--allowlist: '$work/none.toml' does not exist" \
  "$CTL" inventory --allowlist "$work/none.toml"
cp "$work/by-name.toml" "$work/writable.toml"
chmod 666 "$work/writable.toml"
expect allowlist_writable_by_others_refused 2 "allowlist: .*writable.toml" "$CTL" inventory --allowlist "$work/writable.toml"
if [ ! -e /etc/bpfwarden/inventory.toml ]; then
  expect missing_default_allowlist_is_none 0 "Allowlist: none" "$CTL" inventory
fi
expect inventory_bad_option 2 "^bpfwardenctl inventory: --unknwn: unknown option \(did you mean --unknown\?\)" \
  "$CTL" inventory --unknwn

# ---- contain: refusals ------------------------------------------------------------------
expect contain_needs_yes_without_terminal 1 "refusing to contain program $id without confirmation: run again with --yes" \
  "$CTL" contain "$id"
prog_exists "$id" && [ -e "$foreign/round1/invtest_foreign_prog" ] && pass unconfirmed_contain_changes_nothing \
  || fail unconfirmed_contain_changes_nothing "program or pin gone"
expect contain_nonexistent_id 1 "no BPF program has id 4294967295; nothing was changed" "$CTL" contain 4294967295 --yes
expect contain_non_numeric_id 2 "^bpfwardenctl contain: PROG_ID: 'abc' is not a whole number" "$CTL" contain abc --yes
expect contain_without_id 2 "^bpfwardenctl contain: PROG_ID is required" "$CTL" contain --yes

# ---- contain: the foreign program, nothing holding it --------------------------------------
expect contain_foreign 0 "program $id is no longer loaded" "$CTL" contain "$id" --yes
out="$BW_OUT/contain_foreign.log"
grep -q "^removed pin $foreign/round1/invtest_foreign_prog (program $id 'invtest_foreign')$" "$out" \
  && grep -q "^removed pin $foreign/round1/invtest_foreign_link (link $link)$" "$out" \
  && grep -q "^removed pin $foreign/round1/invtest_own (map $own_map 'invtest_own')$" "$out" \
  && pass contain_reports_each_removal || fail contain_reports_each_removal "$(cat "$out")"
grep -qE "^(detached link $link|link $link \(.*\): the kernel cannot detach a perf_event link)" "$out" \
  && pass contain_reports_link || fail contain_reports_link "$(cat "$out")"
grep -q "^left: map $shared_map 'invtest_shared': also used by program $other; its pins are left$" "$out" \
  && pass contain_leaves_shared_map || fail contain_leaves_shared_map "$(cat "$out")"
! prog_exists "$id" && ! bpftool link show id "$link" >/dev/null 2>&1 && pass contained_program_and_link_gone \
  || fail contained_program_and_link_gone "$(bpftool prog show id "$id" 2>&1; bpftool link show id "$link" 2>&1)"
[ ! -e "$foreign/round1/invtest_foreign_prog" ] && [ ! -e "$foreign/round1/invtest_foreign_link" ] \
  && [ ! -e "$foreign/round1/invtest_own" ] && pass contained_pins_gone || fail contained_pins_gone "$(ls "$foreign/round1")"
[ -e "$foreign/round1/invtest_shared" ] && [ -e "$foreign/round1/invtest_other_link" ] && prog_exists "$other" \
  && pass other_program_untouched || fail other_program_untouched "$(ls "$foreign/round1")"
# Logged as well: to the journal where journald listens, else to stderr.
if [ -S /run/systemd/journal/socket ] && command -v journalctl >/dev/null; then
  for _ in $(seq 1 20); do
    journalctl -q -t bpfwardenctl -n 50 2>/dev/null | grep -q "contain program $id: removed pin $foreign/round1/invtest_own" && break
    sleep 0.2
  done
  journalctl -q -t bpfwardenctl -n 50 | grep -q "contain program $id: removed pin $foreign/round1/invtest_own" \
    && pass contain_actions_logged || fail contain_actions_logged "not in the journal"
else
  grep -q "^bpfwardenctl: contain program $id: removed pin $foreign/round1/invtest_own" "$out" \
    && pass contain_actions_logged || fail contain_actions_logged "$(cat "$out")"
fi

# ---- contain: a process still holds it --------------------------------------------------------
"$work/loader" "$work/foreign.bpf.o" "$foreign/round2" hold >"$BW_OUT/loader2.log" 2>&1 &
LOADER_PID=$!
wait_for_log "$BW_OUT/loader2.log" "^loaded$" 30 "$LOADER_PID" || fail load_holding_program "$(cat "$BW_OUT/loader2.log")"
held=$(prog_id_at "$foreign/round2/invtest_foreign_prog")
"$CTL" inventory --json >"$BW_OUT/inventory-held.json"
json_check inventory_names_holder "$BW_OUT/inventory-held.json" "
p = {x['id']: x for x in d['programs']}[$held]
h = [x for x in p['holders'] if x['pid'] == $LOADER_PID]
assert h and h[0]['exe'] == '$work/loader' and h[0]['comm'] == 'loader', p['holders']"
printf '[[expected]]\nowner = "%s"\n' "$work/loader" >"$work/by-owner.toml"
[ "$(id=$held owner_of "$work/by-owner.toml")" = allowlisted ] && pass allowlist_by_owner \
  || fail allowlist_by_owner "$(id=$held owner_of "$work/by-owner.toml")"
"$CTL" contain "$held" --yes --json >"$BW_OUT/contain-held.json" 2>"$BW_OUT/contain-held.err"
rc=$?
[ $rc = 3 ] && pass contain_held_exits_3 || fail contain_held_exits_3 "exit $rc: $(cat "$BW_OUT/contain-held.err")"
json_check contain_names_holder "$BW_OUT/contain-held.json" "
assert d['program']['id'] == $held and d['program_loaded'] is True, d
assert any('held by pid $LOADER_PID (loader, $work/loader' in r for r in d['remaining']), d['remaining']
assert any('bpfwardenctl never kills processes' in a for a in d['advice']), d['advice']
assert [a['outcome'] for a in d['actions'] if a['action'] == 'remove-pin'] == ['done'] * 3, d['actions']"
kill -0 "$LOADER_PID" 2>/dev/null && pass contain_kills_nothing || fail contain_kills_nothing "the loader is gone"
kill "$LOADER_PID"
wait "$LOADER_PID" 2>/dev/null
LOADER_PID=""
gone_within 5 "$held" && pass program_gone_with_its_holder || fail program_gone_with_its_holder "$(bpftool prog show id "$held")"

# ---- bpfwarden's own programs -------------------------------------------------------------------
cp "$BW_SRC/policy/default.toml" "$work/policy.d/00-default.toml"
start_daemon "$BW_OUT/daemon.log" --policy-dir "$work/policy.d" --pin-root "$BW_PINS" --no-dbus \
  || fail daemon_start "see $BW_OUT/daemon.log"
ours=$(bpftool link show pinned "$BW_PINS/links/bw_tp_exec" 2>/dev/null | sed -n '1s/.* prog \([0-9]*\).*/\1/p')
"$CTL" inventory --json --pin-root "$BW_PINS" --daemon-exe "$BW_DAEMON" >"$BW_OUT/inventory-ours.json"
json_check inventory_classifies_daemon_programs "$BW_OUT/inventory-ours.json" "
p = {x['id']: x for x in d['programs']}[$ours]
assert p['name'] == 'bw_tp_exec' and p['owner'] == 'bpfwarden', p
assert 'pinned at $BW_PINS/links/bw_tp_exec' in p['reason'], p['reason']"
# By holder alone: the daemon's maps, with a pin root that is not the daemon's.
"$CTL" inventory --json --pin-root /sys/fs/bpf/bwtest-inventory-elsewhere-$$ --daemon-exe "$BW_DAEMON" \
  >"$BW_OUT/inventory-holder.json"
json_check inventory_daemon_held_maps_are_ours "$BW_OUT/inventory-holder.json" "
held = [m for m in d['maps'] if any(h['pid'] == $DAEMON_PID for h in m['holders'])]
assert held, 'no map held by the daemon'
for m in held:
    assert m['owner'] == 'bpfwarden' and 'held by pid $DAEMON_PID' in m['reason'], m"
tree_before=$(find "$BW_PINS" -printf '%p %y\n' | sort)
expect contain_refuses_ours 1 "program $ours 'bw_tp_exec' \(tracepoint\) is bpfwarden's own .*nothing was changed" \
  "$CTL" contain "$ours" --yes --pin-root "$BW_PINS" --daemon-exe "$BW_DAEMON"
[ "$(find "$BW_PINS" -printf '%p %y\n' | sort)" = "$tree_before" ] && prog_exists "$ours" \
  && pass refused_contain_leaves_our_pins || fail refused_contain_leaves_our_pins "the pin tree changed"


# ---- The watchdog's inventory watch: a load makes it look, an unknown program is said once --------
start_watchdog "$BW_OUT/watchdog.log" --policy-dir "$work/policy.d" --pin-root "$BW_PINS" --no-dbus \
  --inventory-interval 0 || fail watchdog_start "see $BW_OUT/watchdog.log"
mkdir "$foreign/round3"
"$work/loader" "$work/foreign.bpf.o" "$foreign/round3" >"$BW_OUT/loader3.log" 2>&1 || fail loader_round3 "$(cat "$BW_OUT/loader3.log")"
id=$(prog_id_at "$foreign/round3/invtest_foreign_prog")
wait_for_log "$BW_OUT/watchdog.log" "inventory: unknown BPF program $id 'invtest_foreign' \(tracepoint, tag [0-9a-f]+\), pinned at $foreign/round3/invtest_foreign_prog \[bpf\(prog_load\) by pid [0-9]+ \(loader\)\]" 10 &&
  pass watchdog_reports_a_loaded_unknown_program || fail watchdog_reports_a_loaded_unknown_program "$(grep inventory "$BW_OUT/watchdog.log")"
grep -q "inventory: unknown BPF program $ours " "$BW_OUT/watchdog.log" && fail watchdog_leaves_ours_unreported "$ours reported" ||
  pass watchdog_leaves_ours_unreported
"$work/loader" "$work/foreign.bpf.o" "$foreign/round3" >/dev/null 2>&1  # a second load (its pins exist: it fails after loading)
sleep 1
[ "$(grep -c "inventory: unknown BPF program $id " "$BW_OUT/watchdog.log")" = 1 ] && pass watchdog_reports_a_program_once ||
  fail watchdog_reports_a_program_once "$(grep -c "inventory: unknown BPF program $id " "$BW_OUT/watchdog.log") reports"
stop_watchdog

finish
