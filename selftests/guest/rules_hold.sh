#!/bin/bash
# Guest suite: rules that hold. A written rule keeps meaning what the admin
# wrote when its file is replaced by rename, created later, reached through
# another route (truncate, rename, chmod, xattr; ld.so, mmap, memfd), through
# a bind mount or another mount namespace, and when the policy directory is
# broken at boot. Every denial is asserted with EPERM next to an unrelated
# action that still works. Runs inside the VM as root.
. "$(dirname "$0")/lib.sh"

work=/tmp/rh
mkdir -p "$work/policy.d" "$work/bin" "$work/etc" "$work/later" "$work/free" "$work/auditdir" "$work/secret/a"
cp /bin/true "$work/bin/denied-bin"
cp /bin/true "$work/bin/allowed-bin"
echo hash >"$work/etc/shadow"
echo denied >"$work/denied"
echo audited >"$work/audited"
echo free >"$work/free/public"
echo secret >"$work/secret/file"
echo secret >"$work/secret/a/deep"
# Subtree depth: $work/deep/d1/.../dN/file lies N+1 directories below the
# rule; a subtree rule covers files up to 32 directories below it
# (BW_MAX_SUBTREE_DEPTH, docs/POLICY.md).
depth_limit=32
deep="$work/deep"
for n in $(seq 1 $depth_limit); do deep="$deep/d$n"; done
mkdir -p "$deep"
covered_file="$work/deep$(for n in $(seq 1 $((depth_limit - 1))); do printf '/d%s' "$n"; done)/file"
beyond_file="$deep/file"
echo deep >"$covered_file"
echo deep >"$beyond_file"

cat >"$work/policy.d/50-rules.toml" <<TOML
# Run by hand, not by systemd: the suite tests rules, not self-protection.
protect = false

[[exec]]
path = "$work/bin/denied-bin"
action = "deny"

[[exec]]
path = "$work/bin/later-bin"       # does not exist yet
action = "deny"

[[file]]
path = "$work/etc/shadow"
action = "audit"

[[file]]
path = "$work/denied"
action = "deny"

[[file]]
path = "$work/audited"
action = "audit"

[[file]]
path = "$work/later/denied-new"    # does not exist yet
action = "deny"

[[file]]
path = "$work/later/audited-new"   # does not exist yet
action = "audit"

[[file]]
path = "$work/nowhere/file"        # nor does its directory: inactive
action = "deny"

[[file]]
path = "$work/secret/"             # a trailing slash: everything beneath
action = "deny"

[[file]]
path = "$work/auditdir"
recursive = true
action = "audit"

[[file]]
path = "$work/deep/"
action = "deny"
TOML

log="$BW_OUT/daemon.log"
wlog="$BW_OUT/watchdog.log"
echo "== kernel $(uname -r)"
start_daemon "$log" --policy-dir "$work/policy.d" || { fail daemon_start "see $log"; finish; exit; }
start_watchdog "$wlog" --policy-dir "$work/policy.d" --interval-ms 500 --status-file "$BW_STATE/status.json" ||
  fail watchdog_start "see $wlog"
expect_log watchdog_healthy_at_start "$wlog" "bpfwarden-watchdog: healthy"
expect_log missing_directory_reported "$log" \
  "policy: .*50-rules.toml:[0-9]+: the directory of '$work/nowhere/file' does not exist yet: rule inactive until it does"
grep -q "later/denied-new.*does not exist" "$log" && fail missing_file_in_existing_directory_is_active "warned" ||
  pass missing_file_in_existing_directory_is_active

# --- Replacement by rename --------------------------------------------------
# dpkg: unpack as .dpkg-new, rename over. The new file is denied at once.
cp /bin/true "$work/bin/denied-bin.dpkg-new"
mv -f "$work/bin/denied-bin.dpkg-new" "$work/bin/denied-bin"
expect_try upgraded_binary_exec_eperm EPERM exec "$work/bin/denied-bin"
expect_try unrelated_binary_runs ok exec "$work/bin/allowed-bin"
# passwd: write a new file, rename it over. Audited from its first open.
echo newhash >"$work/etc/shadow+"
mv -f "$work/etc/shadow+" "$work/etc/shadow"
expect_try rewritten_audited_file_opens ok open "$work/etc/shadow"
expect_log rewritten_audited_file_reported "$log" \
  "file_open audit .*pid=$TRY_PID .*path=\"$work/etc/shadow\""
# No window: one process keeps replacing the binary, another keeps running it.
(
  end=$((SECONDS + 4))
  while [ $SECONDS -lt $end ]; do
    cp /bin/true "$work/bin/denied-bin.new" && mv -f "$work/bin/denied-bin.new" "$work/bin/denied-bin"
  done
) &
replacer=$!
line=$("$BW_TRY" loop-exec "$work/bin/denied-bin" 4 | tail -n 1)
wait "$replacer"
case "$line" in
  *"result=EPERM"*" ok=0"*) pass replaced_binary_never_ran ;;
  *) fail replaced_binary_never_ran "$line" ;;
esac
# Delete and re-create; create a denied path that did not exist.
rm -f "$work/bin/denied-bin"
cp /bin/true "$work/bin/denied-bin"
expect_try recreated_binary_exec_eperm EPERM exec "$work/bin/denied-bin"
cp /bin/true "$work/bin/later-bin"
expect_try binary_created_later_exec_eperm EPERM exec "$work/bin/later-bin"
expect_try denied_path_cannot_be_created EPERM create "$work/later/denied-new"
echo x >"$work/later/staged"
expect_try rename_onto_denied_path_eperm EPERM rename "$work/later/staged" "$work/later/denied-new"
expect_try rename_onto_unrelated_path_ok ok rename "$work/later/staged" "$work/later/other"
expect_try audited_path_created_later ok create "$work/later/audited-new"
expect_try audited_path_created_later_opens ok open "$work/later/audited-new"
expect_log audited_file_created_later_reported "$log" \
  "file_open audit .*pid=$TRY_PID .*path=\"$work/later/audited-new\""

# The daemon re-resolves changed rule paths, and the watchdog agrees: it
# re-resolves too before judging the maps, so it never rewrites them back to
# the files the paths named before. (While files keep changing it may write
# the maps itself, always with what the paths name at that moment.)
expect_log daemon_re_resolves_replaced_files "$log" "policy: re-resolved rule paths"
sleep 1
quiet_from=$(($(wc -l <"$wlog") + 1))
generation_before=$(grep -c "policy: re-resolved rule paths" "$log")
cp /bin/true "$work/bin/denied-bin.dpkg-new"
mv -f "$work/bin/denied-bin.dpkg-new" "$work/bin/denied-bin"
for ((i = 0; i < 100; i++)); do
  [ "$(grep -c "policy: re-resolved rule paths" "$log")" -gt "$generation_before" ] && break
  sleep 0.1
done
[ "$(grep -c "policy: re-resolved rule paths" "$log")" -gt "$generation_before" ] && pass single_replacement_re_resolved ||
  fail single_replacement_re_resolved "no re-resolution logged within 10 s"
kill -HUP "$DAEMON_PID"
expect_log sighup_reload "$log" "policy: reloaded \("
sleep 2
if tail -n "+$quiet_from" "$wlog" | grep -q "rewrote policy maps"; then
  fail watchdog_never_reverts_re_resolution "$(tail -n "+$quiet_from" "$wlog" | grep -m3 "rewrote policy maps")"
else
  pass watchdog_never_reverts_re_resolution
fi
expect_try denied_after_re_resolution EPERM exec "$work/bin/denied-bin"
grep -q '"healthy":true' "$BW_STATE/status.json" && pass watchdog_healthy_after_replacements ||
  fail watchdog_healthy_after_replacements "$(cat "$BW_STATE/status.json")"

# --- Every route to a denied file ---------------------------------------------
echo free >"$work/free/other"
for op in truncate ftruncate open-write chmod chown utimes setxattr unlink; do
  expect_try "denied_file_${op//-/_}_eperm" EPERM "$op" "$work/denied"
done
expect_try denied_file_rename_from_eperm EPERM rename "$work/denied" "$work/free/moved"
expect_try denied_file_link_eperm EPERM link "$work/denied" "$work/free/alias"
expect_try denied_file_read_eperm EPERM open "$work/denied"
for op in truncate chmod setxattr utimes; do
  expect_try "unrelated_file_${op}_ok" ok "$op" "$work/free/public"
done
expect_try unrelated_file_rename_ok ok rename "$work/free/other" "$work/free/other2"
# Audit: each change is allowed and reported with its operation.
for op in truncate chmod setxattr; do
  expect_try "audited_file_${op}_allowed" ok "$op" "$work/audited"
  expect_log "audited_file_${op}_reported" "$log" \
    "file_change audit .*pid=$TRY_PID .*path=\"$work/audited\".* op=(truncate|setattr|setxattr)"
done
expect_try audited_file_rename_allowed ok rename "$work/audited" "$work/free/audited-moved"
expect_log audited_file_rename_reported "$log" "file_change audit .*pid=$TRY_PID .* op=rename_from"

# --- Exec beyond execve ---------------------------------------------------------
expect_try ldso_of_denied_binary_eperm EPERM ldso-exec "$work/bin/denied-bin"
expect_try ldso_of_unrelated_binary_ok ok ldso-exec "$work/bin/allowed-bin"
expect_try mmap_exec_of_denied_binary_eperm EPERM mmap-exec "$work/bin/denied-bin"
expect_try mprotect_exec_of_denied_binary_eperm EPERM mprotect-exec "$work/bin/denied-bin"
expect_try mmap_exec_of_unrelated_binary_ok ok mmap-exec "$work/bin/allowed-bin"
expect_try denied_binary_still_readable ok open "$work/bin/denied-bin"
# memfd and W->X: documented limits while the options are off...
expect_try memfd_exec_allowed_when_option_off ok memfd-exec "$work/bin/allowed-bin"
expect_try write_exec_allowed_when_option_off ok write-exec
# ... refused once they are on.
cat >"$work/policy.d/60-exec-options.toml" <<'TOML'
deny_anonymous_exec = true
deny_write_exec = true
TOML
expect_log exec_options_applied "$log" "policy: applied the edited policy directory .*60-exec-options.toml"
expect_try memfd_exec_refused_when_option_on EPERM memfd-exec "$work/bin/allowed-bin"
expect_try write_exec_refused_when_option_on EPERM write-exec
expect_try plain_exec_unaffected_by_options ok exec "$work/bin/allowed-bin"
rm -f "$work/policy.d/60-exec-options.toml"
expect_log exec_options_removed "$log" "policy: applied the edited policy directory .*60-exec-options.toml"
expect_try memfd_exec_allowed_again ok memfd-exec "$work/bin/allowed-bin"

# --- Subtree rules --------------------------------------------------------------
expect_try subtree_file_eperm EPERM open "$work/secret/file"
expect_try subtree_nested_file_eperm EPERM open "$work/secret/a/deep"
expect_try subtree_new_file_eperm EPERM create "$work/secret/a/new"
expect_try outside_subtree_ok ok open "$work/free/public"
# The bind mount's own path lies outside the rule: only the dentry walk up
# from the file reaches the rule's directory.
mkdir -p "$work/bind-view"
if mount --bind "$work/secret/a" "$work/bind-view" 2>"$BW_OUT/bind-mount.log"; then
  expect_try subtree_through_bind_mount_eperm EPERM open "$work/bind-view/deep"
  umount "$work/bind-view"
else
  fail subtree_through_bind_mount_eperm "mount --bind: $(cat "$BW_OUT/bind-mount.log")"
fi
line=$(unshare -m "$BW_TRY" open "$work/secret/file" 2>&1 | tail -n 1)
case "$line" in *result=EPERM*) pass subtree_in_other_mount_namespace_eperm ;;
  *) fail subtree_in_other_mount_namespace_eperm "$line" ;; esac
expect_try audited_subtree_new_file_allowed ok create "$work/auditdir/new"
expect_log audited_subtree_creation_reported "$log" \
  "file_change audit .*pid=$TRY_PID .*path=\"$work/auditdir\" name=\"new\".* op=create"
expect_try subtree_at_depth_limit_eperm EPERM open "$covered_file"
expect_try subtree_beyond_depth_limit_not_covered ok open "$beyond_file"

# --- A recycled inode number never inherits a rule (ext4) -------------------------
# Daemon and watchdog stopped: nothing re-resolves, the stale key stays in the
# map, and only the inode generation in the key tells the files apart.
truncate -s 16M "$work/ext4.img"
mkfs.ext4 -q -F "$work/ext4.img" && mkdir -p "$work/ext4" && mount -o loop "$work/ext4.img" "$work/ext4" ||
  fail ext4_mounted "mkfs.ext4/mount -o loop failed"
cp /bin/true "$work/ext4/victim"
cat >"$work/policy.d/70-ext4.toml" <<TOML
[[exec]]
path = "$work/ext4/victim"
action = "deny"
TOML
expect_log ext4_rule_applied "$log" "policy: applied the edited policy directory .*70-ext4.toml"
expect_try ext4_victim_exec_eperm EPERM exec "$work/ext4/victim"
stop_watchdog
stop_daemon
victim_ino=$(stat -c %i "$work/ext4/victim")
rm -f "$work/ext4/victim"
cp /bin/true "$work/ext4/newcomer"
newcomer_ino=$(stat -c %i "$work/ext4/newcomer")
if [ "$victim_ino" = "$newcomer_ino" ]; then
  pass ext4_reused_the_inode_number
  expect_try recycled_inode_not_denied ok exec "$work/ext4/newcomer"
else
  fail ext4_reused_the_inode_number "victim was inode $victim_ino, the new file got $newcomer_ino"
fi
umount "$work/ext4"

# --- An invalid policy at boot: the last good policy enforces -------------------
# As after a reboot: no pins, and a typo in the policy directory.
"$BW_DAEMON" --unpin --yes --log-target stderr >"$BW_OUT/unpin.log" 2>&1 || fail unpin "$(cat "$BW_OUT/unpin.log")"
rm -f "$work/policy.d/70-ext4.toml"
echo 'action = = "deny"' >"$work/policy.d/80-typo.toml"
log2="$BW_OUT/daemon-boot.log"
start_daemon "$log2" --policy-dir "$work/policy.d" || fail daemon_starts_despite_typo "see $log2"
expect_log typo_reported_loudly "$log2" \
  "policy: NOT the policy directory's: .*80-typo.toml:1.*enforcing the last good policy until the directory is fixed"
expect_try last_good_policy_denies EPERM open "$work/denied"
expect_try last_good_policy_exec_eperm EPERM exec "$work/bin/denied-bin"
expect_try last_good_policy_unrelated_ok ok open "$work/free/public"
start_watchdog "$BW_OUT/watchdog-boot.log" --policy-dir "$work/policy.d" --interval-ms 500 \
  --status-file "$BW_STATE/status-boot.json" || fail watchdog_starts_despite_typo "see $BW_OUT/watchdog-boot.log"
expect_log watchdog_agrees_on_last_good "$BW_OUT/watchdog-boot.log" "enforcing the last good policy"
grep -q '"policy_source":"last good policy".*"policy_problem":".*80-typo.toml:1' "$BW_STATE/status-boot.json" &&
  pass watchdog_status_names_the_problem || fail watchdog_status_names_the_problem "$(cat "$BW_STATE/status-boot.json")"
if grep -q "rewrote policy maps" "$BW_OUT/watchdog-boot.log"; then
  fail watchdog_keeps_last_good "$(grep -m1 "rewrote policy maps" "$BW_OUT/watchdog-boot.log")"
else
  pass watchdog_keeps_last_good
fi
# Fixing the file applies the directory again.
rm -f "$work/policy.d/80-typo.toml"
expect_log fixed_directory_applied "$log2" "policy: applied the edited policy directory"
expect_try fixed_directory_enforces EPERM open "$work/denied"

finish
