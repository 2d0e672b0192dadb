#!/bin/bash
# The installed layout, for two prefixes: this build's and a second tree
# configured for another prefix (built once, kept in BUILD_DIR/tests/). Each
# is installed with DESTDIR and must hold exactly the documented files
# (docs/ARCHITECTURE.md, "Install layout"); the paths the binaries print as
# their defaults (--help), the generated units, the tmpfiles.d snippet and
# the man pages must agree; the units pass `systemd-analyze verify`. No
# signing key and no signed manifest is ever installed. `cmake --install
# --prefix` with another prefix is refused. For a /usr build the .deb must
# hold exactly what `cmake --install` installs, with its maintainer scripts.
#   install_test.sh BUILD_DIR SOURCE_DIR
BW_BUILD=$1
BW_SRC=$2
BW_OUT="$BW_BUILD/tests/install-out"
. "$BW_SRC/selftests/guest/lib.sh"
work=$(mktemp -d /tmp/bpfwarden-installtest.XXXXXX)
trap 'rm -rf "$work"' EXIT
rm -rf "$BW_OUT"
mkdir -p "$BW_OUT"

unit_dir=$(pkg-config --variable=systemdsystemunitdir systemd)
tmpfiles_dir=$(pkg-config --variable=tmpfilesdir systemd)
catalog_dir=$(pkg-config --variable=catalogdir systemd)
: "${unit_dir:=/lib/systemd/system}" "${tmpfiles_dir:=/usr/lib/tmpfiles.d}" "${catalog_dir:=/usr/lib/systemd/catalog}"
prefix_of() { sed -n 's/^CMAKE_INSTALL_PREFIX:PATH=//p' "$1/CMakeCache.txt"; }

# expected_files PREFIX: every file an install must hold, sorted.
expected_files() {
  local p=$1 f
  {
    for f in bpfwardend bpfwarden-watchdog bpfwardenctl; do
      echo "$p/sbin/$f"
      echo "$p/share/man/man8/$f.8.gz"
    done
    for f in "$BW_IMAGES"/*.bpf.o; do echo "$p/lib/bpfwarden/images/$(basename "$f")"; done
    for f in "$BW_SRC"/README.md "$BW_SRC"/docs/*.md; do echo "$p/share/doc/bpfwarden/$(basename "$f")"; done
    echo "$p/share/bpfwarden/60-bpfwarden-hardening.conf"
    echo /etc/bpfwarden/policy.d/00-default.toml
    echo "$unit_dir/bpfwardend.service"
    echo "$unit_dir/bpfwarden-watchdog.service"
    echo "$unit_dir/bpfwarden-metrics.service"
    echo "$unit_dir/bpfwarden-metrics.timer"
    echo "$tmpfiles_dir/bpfwarden.conf"
    echo "$catalog_dir/bpfwarden.catalog"
    echo /usr/share/dbus-1/system.d/org.bpfwarden.conf
    echo /usr/share/polkit-1/actions/org.bpfwarden.policy
  } | sort
}
installed_files() { (cd "$1" && find . ! -type d | sed 's|^\.||' | sort); }
# default_of PROGRAM OPTION: the default --help prints for OPTION.
default_of() { "$1" --help | grep -E -- "^  $2[ ,]" | sed -n 's/.*(default \([^)]*\))$/\1/p'; }
# unit_value UNIT KEY: the value of KEY= (the first one).
unit_value() { sed -n "s/^$2=//p" "$1" | head -n 1; }

# check_install NAME PREFIX DESTDIR: the layout of one installed tree.
check_install() {
  local name=$1 p=$2 d=$3
  local sbin="$d$p/sbin" units="$d$unit_dir"
  installed_files "$d" >"$BW_OUT/$name-files.txt"
  expected_files "$p" >"$BW_OUT/$name-expected.txt"
  if diff -u "$BW_OUT/$name-expected.txt" "$BW_OUT/$name-files.txt" >"$BW_OUT/$name-layout.diff"; then
    pass "${name}_layout"
  else
    fail "${name}_layout" "installed files differ from the documented layout: $(cat "$BW_OUT/$name-layout.diff")"
  fi
  [ -z "$(find "$d" -name '*.pem' -o -name '*.key' -o -name 'manifest*')" ] && pass "${name}_no_key_no_manifest" ||
    fail "${name}_no_key_no_manifest" "$(find "$d" -name '*.pem' -o -name '*.key' -o -name 'manifest*')"
  cmp -s "$BW_SRC/policy/default.toml" "$d/etc/bpfwarden/policy.d/00-default.toml" && pass "${name}_default_policy" ||
    fail "${name}_default_policy" "00-default.toml is not policy/default.toml"

  # What the binaries were compiled with is where the install put things.
  local option want got program
  for program in bpfwardend bpfwarden-watchdog; do
    for option in --policy-dir --image-dir --keys-dir --state-dir --daemon-exe --watchdog-exe --canary; do
      case $option in
        --policy-dir) want=/etc/bpfwarden/policy.d ;;
        --image-dir) want=$p/lib/bpfwarden/images ;;
        --keys-dir) want=/etc/bpfwarden/keys ;;
        --state-dir) want=/var/lib/bpfwarden ;;
        --daemon-exe) want=$p/sbin/bpfwardend ;;
        --watchdog-exe) want=$p/sbin/bpfwarden-watchdog ;;
        --canary) want=/var/lib/bpfwarden/canary ;;
      esac
      got=$(default_of "$sbin/$program" "$option")
      [ "$got" = "$want" ] && pass "${name}_${program}_${option#--}" ||
        fail "${name}_${program}_${option#--}" "--help says the default is '$got', the install uses '$want'"
    done
  done
  for option in --image-dir --keys-dir --state-dir; do
    got=$("$sbin/bpfwardenctl" verify --help | grep -E -- "^  $option[ ,]" | sed -n 's/.*(default \([^)]*\))$/\1/p')
    [ -n "$got" ] && [ "$got" = "$(default_of "$sbin/bpfwardend" "$option")" ] && pass "${name}_ctl_${option#--}" ||
      fail "${name}_ctl_${option#--}" "bpfwardenctl verify --help: '$got'"
  done
  [ -d "$d$(default_of "$sbin/bpfwardend" --image-dir)" ] && [ -d "$d$(default_of "$sbin/bpfwardend" --policy-dir)" ] &&
    pass "${name}_default_dirs_installed" || fail "${name}_default_dirs_installed" "image or policy directory missing"

  # The units start the installed binaries and reach the compiled-in directories.
  got=$(unit_value "$units/bpfwardend.service" ExecStart)
  [ "${got%% *}" = "$(default_of "$sbin/bpfwardend" --daemon-exe)" ] && [ -x "$d${got%% *}" ] &&
    pass "${name}_daemon_unit_execstart" || fail "${name}_daemon_unit_execstart" "ExecStart=$got"
  # Both take the admin's shared options (docs/POLICY.md, "Signed policy bundles").
  for unit in bpfwardend bpfwarden-watchdog; do
    [[ "$(unit_value "$units/$unit.service" ExecStart)" == *' $BPFWARDEN_POLICY_OPTIONS' ]] &&
      [ "$(unit_value "$units/$unit.service" EnvironmentFile)" = "-/etc/default/bpfwarden" ] &&
      pass "${name}_${unit}_reads_shared_options" || fail "${name}_${unit}_reads_shared_options" "$(cat "$units/$unit.service")"
  done
  got=$(unit_value "$units/bpfwarden-watchdog.service" ExecStart)
  [ "${got%% *}" = "$(default_of "$sbin/bpfwarden-watchdog" --watchdog-exe)" ] && [ -x "$d${got%% *}" ] &&
    pass "${name}_watchdog_unit_execstart" || fail "${name}_watchdog_unit_execstart" "ExecStart=$got"
  for unit in bpfwardend bpfwarden-watchdog; do
    got=/var/lib/$(unit_value "$units/$unit.service" StateDirectory)
    [ "$got" = "$(default_of "$sbin/$unit" --state-dir)" ] && pass "${name}_${unit}_unit_state_dir" ||
      fail "${name}_${unit}_unit_state_dir" "StateDirectory= gives $got"
    got=$(unit_value "$units/$unit.service" Documentation | sed -n 's|.*file://\([^ ]*\).*|\1|p')
    [ -f "$d$got" ] && pass "${name}_${unit}_unit_documentation" ||
      fail "${name}_${unit}_unit_documentation" "Documentation= names '$got', not installed"
  done
  # The metrics export writes node_exporter's textfile with the installed CLI (docs/FLEET.md).
  got=$(unit_value "$units/bpfwarden-metrics.service" ExecStart)
  [ "$got" = "$p/sbin/bpfwardenctl metrics --textfile /var/lib/prometheus/node-exporter/bpfwarden.prom" ] &&
    [ -x "$d${got%% *}" ] && pass "${name}_metrics_unit_execstart" || fail "${name}_metrics_unit_execstart" "ExecStart=$got"
  got=$(unit_value "$units/bpfwarden-metrics.timer" Documentation | sed -n 's|.*file://\([^ ]*\).*|\1|p')
  [ -f "$d$got" ] && pass "${name}_metrics_timer_documentation" ||
    fail "${name}_metrics_timer_documentation" "Documentation= names '$got', not installed"
  got=$(sed -n 's/^ReadWritePaths=-\(\/etc.*\)/\1/p' "$units/bpfwardend.service")
  [ "$got" = "$(default_of "$sbin/bpfwardend" --policy-dir)" ] && pass "${name}_daemon_unit_policy_writable" ||
    fail "${name}_daemon_unit_policy_writable" "ReadWritePaths=-$got"
  got=$(grep -hE '@[A-Z_]+@' "$units"/bpfwarden*.service "$units"/bpfwarden*.timer "$d$tmpfiles_dir/bpfwarden.conf")
  [ -z "$got" ] && pass "${name}_units_configured" || fail "${name}_units_configured" "$got"

  # systemd-analyze verify needs ExecStart= to exist on this host: a copy of
  # the units that starts the DESTDIR's binaries, and MANPATH for the
  # Documentation= man pages.
  mkdir -p "$work/$name-verify"
  for unit in bpfwardend bpfwarden-watchdog bpfwarden-metrics; do
    sed "s|^ExecStart=$p/sbin/|ExecStart=$sbin/|" "$units/$unit.service" >"$work/$name-verify/$unit.service"
  done
  cp "$units/bpfwarden-metrics.timer" "$work/$name-verify/"
  if out=$(cd "$work/$name-verify" && MANPATH="$d$p/share/man" systemd-analyze verify bpfwardend.service \
             bpfwarden-watchdog.service bpfwarden-metrics.service bpfwarden-metrics.timer 2>&1) && [ -z "$out" ]; then
    pass "${name}_units_verify"
  else
    fail "${name}_units_verify" "$out"
  fi

  # tmpfiles.d creates the directories the binaries default to, with their modes.
  if systemd-tmpfiles --root="$d" --create bpfwarden.conf >"$BW_OUT/$name-tmpfiles.log" 2>&1; then
    [ "$(stat -c %a "$d$(default_of "$sbin/bpfwardend" --state-dir)")" = 700 ] &&
      [ "$(stat -c %a "$d$(default_of "$sbin/bpfwardend" --keys-dir)")" = 755 ] && pass "${name}_tmpfiles_dirs" ||
      fail "${name}_tmpfiles_dirs" "$(ls -ld "$d/var/lib/bpfwarden" "$d/etc/bpfwarden/keys" 2>&1)"
  else
    fail "${name}_tmpfiles_dirs" "$(cat "$BW_OUT/$name-tmpfiles.log")"
  fi

  # The man pages were made from these binaries and name these paths.
  for program in bpfwardend bpfwarden-watchdog bpfwardenctl; do
    zcat "$d$p/share/man/man8/$program.8.gz" >"$BW_OUT/$name-$program.8"
    grep -q "^\.SH FILES" "$BW_OUT/$name-$program.8" && grep -qF "$p/lib/bpfwarden/images" "$BW_OUT/$name-$program.8" &&
      pass "${name}_${program}_man_page" || fail "${name}_${program}_man_page" "no FILES section naming the image directory"
  done
}

# --- This build's prefix -------------------------------------------------------------------
prefix_a=$(prefix_of "$BW_BUILD")
DESTDIR="$work/a" cmake --install "$BW_BUILD" >"$BW_OUT/install-a.log" 2>&1 && pass install_a ||
  fail install_a "$(tail -n 5 "$BW_OUT/install-a.log")"
check_install "a" "$prefix_a" "$work/a"

# --- Another prefix, configured and built on its own --------------------------------------
prefix_b=/opt/bpfwarden
[ "$prefix_a" = "$prefix_b" ] && prefix_b=/usr/local
tree_b="$BW_BUILD/tests/install-prefix-build"
# Tests off and no optimisation: only what gets installed, built fast.
if cmake -S "$BW_SRC" -B "$tree_b" -DCMAKE_INSTALL_PREFIX="$prefix_b" -DCMAKE_BUILD_TYPE= \
     -DBPFWARDEN_BUILD_TESTS=OFF >"$BW_OUT/configure-b.log" 2>&1 &&
   cmake --build "$tree_b" -j "$(nproc)" >"$BW_OUT/build-b.log" 2>&1 &&
   DESTDIR="$work/b" cmake --install "$tree_b" >"$BW_OUT/install-b.log" 2>&1; then
  pass install_b
  check_install "b" "$prefix_b" "$work/b"
else
  fail install_b "$(tail -n 5 "$BW_OUT"/*-b.log)"
fi

# --- An install prefix other than the configured one is refused -----------------------
out=$(DESTDIR="$work/c" cmake --install "$BW_BUILD" --prefix /srv/elsewhere 2>&1)
rc=$?
out=$(tr -s ' \n' ' ' <<<"$out")  # CMake wraps the message
[ $rc != 0 ] && grep -q "reconfigure with -DCMAKE_INSTALL_PREFIX=/srv/elsewhere" <<<"$out" && pass other_prefix_refused ||
  fail other_prefix_refused "exit $rc: $(tail -n 3 <<<"$out")"
[ -z "$(find "$work/c" ! -type d 2>/dev/null)" ] && pass other_prefix_installs_nothing ||
  fail other_prefix_installs_nothing "$(find "$work/c" ! -type d | head)"

# --- The Debian package holds what cmake --install installs ------------------------------
if [ "$prefix_a" = /usr ]; then
  deb=$(ls "$BW_BUILD"/package/bpfwarden_*.deb 2>/dev/null)
  if [ -f "$deb" ]; then
    dpkg-deb -c "$deb" | awk '$1 !~ /^d/ { print $6 }' | sed 's|^\.||' | sort >"$BW_OUT/deb-files.txt"
    diff -u "$BW_OUT/a-files.txt" "$BW_OUT/deb-files.txt" >"$BW_OUT/deb-files.diff" && pass deb_holds_the_install ||
      fail deb_holds_the_install "$(cat "$BW_OUT/deb-files.diff")"
    control=$(dpkg-deb --ctrl-tarfile "$deb" | tar -t | sort | tr '\n' ' ')
    [ "$control" = "./conffiles ./control ./md5sums ./postinst ./postrm ./prerm " ] && pass deb_control_files ||
      fail deb_control_files "control files: $control"
    check_conffiles=$(dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./conffiles)
    [ "$check_conffiles" = /etc/bpfwarden/policy.d/00-default.toml ] && pass deb_conffiles ||
      fail deb_conffiles "conffiles: $check_conffiles"
    depends=$(dpkg-deb -f "$deb" Depends)
    grep -q "libbpf1" <<<"$depends" && grep -q "init-system-helpers" <<<"$depends" && pass deb_depends ||
      fail deb_depends "Depends: $depends"
    for f in postinst prerm postrm; do
      dpkg-deb --ctrl-tarfile "$deb" | tar -xO "./$f" >"$BW_OUT/deb-$f"
      if ! sh -n "$BW_OUT/deb-$f" || grep -qE '@[A-Z_]+@' "$BW_OUT/deb-$f"; then
        fail "deb_${f}_valid" "syntax error or unconfigured @VARIABLE@"
      else
        pass "deb_${f}_valid"
      fi
    done
  else
    fail deb_built "no package in $BW_BUILD/package (built by the 'deb' target for prefix /usr)"
  fi
fi

finish
