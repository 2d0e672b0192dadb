# A private system bus for tests (sourced after lib.sh), used by the host test
# tests/host/dbus_test.sh and the guest suite selftests/guest/dbus.sh.
#
# The bus is a real dbus-daemon configured like Debian's system bus (its
# default policy: nobody may own names or call methods unless a busconfig
# says so) plus bpfwarden's own busconfig, units/org.bpfwarden.conf, exactly
# as installed. DBUS_SYSTEM_BUS_ADDRESS then points every sd-bus and libdbus
# client (bpfwardend, the watchdog, busctl, dbus-send, bpfwardenctl) at it.

BUS_PID=""

# bus_config DIR: Debian's system.conf policy + units/org.bpfwarden.conf.
bus_config() {
  cat <<EOF
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=$1/system_bus_socket</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Introspectable"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Properties"/>
    <deny send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"
          send_member="UpdateActivationEnvironment"/>
  </policy>
  <policy user="root">
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Monitoring"/>
  </policy>
  <include>$BW_SRC/units/org.bpfwarden.conf</include>
</busconfig>
EOF
}

# start_private_bus DIR: dbus-daemon listening at DIR/system_bus_socket
# (DIR made reachable for unprivileged test users); exports
# DBUS_SYSTEM_BUS_ADDRESS. Its log is DIR/bus.log.
start_private_bus() {
  local dir=$1 waited=0
  mkdir -p "$dir"
  chmod 755 "$dir"
  bus_config "$dir" >"$dir/bus.conf"
  rm -f "$dir/system_bus_socket"
  dbus-daemon --config-file="$dir/bus.conf" --nofork --print-address=3 3>"$dir/address" 2>"$dir/bus.log" &
  BUS_PID=$!
  while [ ! -s "$dir/address" ] || [ ! -S "$dir/system_bus_socket" ]; do
    if [ "$waited" -ge 100 ] || ! kill -0 "$BUS_PID" 2>/dev/null; then
      echo "dbus-daemon did not start; log:"; cat "$dir/bus.log"
      return 1
    fi
    sleep 0.1
    waited=$((waited + 1))
  done
  export DBUS_SYSTEM_BUS_ADDRESS="unix:path=$dir/system_bus_socket"
}

stop_private_bus() {
  [ -n "$BUS_PID" ] || return 0
  kill -TERM "$BUS_PID" 2>/dev/null
  wait "$BUS_PID" 2>/dev/null
  BUS_PID=""
}

# Shorthands for the two objects.
ENFORCER="org.bpfwarden.Enforcer1 /org/bpfwarden/Enforcer1 org.bpfwarden.Enforcer1"
WATCHDOG="org.bpfwarden.Watchdog1 /org/bpfwarden/Watchdog1 org.bpfwarden.Watchdog1"

# prop OBJECT NAME: the property's value as busctl prints it, without the
# type ("audit-only" for s, 3 for t, true for b, ...).
prop() {
  # shellcheck disable=SC2086
  busctl --system get-property $1 "$2" 2>&1 | sed -E 's/^[^ ]+ //'
}

# wait_for_name NAME [SECONDS]: NAME is owned on the bus.
wait_for_name() {
  local name=$1 limit=${2:-30} waited=0
  while ! busctl --system status "$name" >/dev/null 2>&1; do
    [ "$waited" -ge $((limit * 10)) ] && return 1
    sleep 0.1
    waited=$((waited + 1))
  done
}

# Every member docs/DBUS.md documents, per interface (introspection must show them all).
ENFORCER_MEMBERS="Version Mode ModeReason KernelRelease ActiveLSMs BpfLsmUsable BpfLsmStatus ImageSetVersion
  PolicyDirectory RuntimePolicyFile PolicyGeneration RuleCount PolicyWarnings RuleScopes Programs Events Denials Audits Drops
  RateLimited DeniedSignalsSuppressed PolicySource PolicyProblem DriftedRules Protection LiftedUntil TamperAttempts
  ReloadPolicy AddRule RemoveRule ListRules Unlock Denied Tamper PolicyChanged"
WATCHDOG_MEMBERS="Version Healthy Reasons Mode ModeReason ImageSetVersion CheckInterval Checks LastCheck LastTrigger
  HealCount LastHeal Programs CheckNow Healed"

# expect_members NAME SERVICE PATH MEMBERS: `busctl introspect` lists every member.
expect_members() {
  local name=$1 service=$2 path=$3 members=$4 out missing=""
  out=$(busctl --system introspect "$service" "$path" 2>&1)
  for member in $members; do
    echo "$out" | grep -qE "^\.$member " || missing="$missing $member"
  done
  if [ -z "$missing" ]; then pass "$name"; else fail "$name" "missing:$missing"; fi
}
