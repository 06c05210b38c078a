# SPDX-License-Identifier: GPL-2.0-or-later
# A real firewalld (Debian 12: 1.3.3, nftables backend) inside one of the bench's hosts, on a
# private D-Bus system bus (recipe and measured facts: ../shared/firewalld-in-netns.md).
# Source it after bench.sh:   . "$(dirname "$0")/lib/firewalld.sh"
#
# firewalld never sees the host: it runs under `ip netns exec` (its nft table lives in that
# namespace only), its bus is a dbus-daemon of its own listening on a socket in the scratch dir
# (no <servicedir>: nothing is activated), and every firewall-cmd this file runs has
# DBUS_SYSTEM_BUS_ADDRESS set to that socket. Both daemons run inside the host's namespace, so
# bench_cleanup kills them with the host. firewalld's permanent configuration is $FWD_DIR/etc
# (--system-config); a generated script that writes /etc/firewalld/... runs with $FWD_DIR/etc
# bind-mounted over /etc/firewalld in a private mount namespace (fwd_run_script).
#
#   fwd_start ROLE         dbus-daemon + firewalld in host ROLE; ready when --state says running
#   fwd_cmd ARGS...        firewall-cmd against that firewalld
#   fwd_run_script FILE    sh -e FILE in ROLE, /etc/firewalld -> $FWD_DIR/etc, private bus
#   fwd_stop               SIGTERM firewalld (CleanupOnExit: its table goes), then its bus

FWD_DIR="" FWD_BUS="" FWD_ROLE="" FWD_PID="" FWD_BUS_PID=""

fwd_cmd() { DBUS_SYSTEM_BUS_ADDRESS="$FWD_BUS" firewall-cmd "$@"; }

fwd_start() {
  local role=$1 i
  need firewalld firewall-cmd dbus-daemon unshare
  FWD_ROLE=$role FWD_DIR="$BENCH_WORK/firewalld-$role"
  # What the package installs into /etc/firewalld: firewalld.conf and empty directories.
  mkdir -p "$FWD_DIR"/etc/{helpers,icmptypes,ipsets,policies,services,zones}
  cp /etc/firewalld/firewalld.conf "$FWD_DIR/etc/"
  FWD_BUS="unix:path=$FWD_DIR/bus"
  cat >"$FWD_DIR/bus.conf" <<EOF
<busconfig><type>system</type><auth>EXTERNAL</auth><listen>$FWD_BUS</listen>
<policy context="default"><allow user="root"/><allow own="*"/><allow send_destination="*"/>
<allow receive_sender="*"/></policy></busconfig>
EOF
  on_bg "$role" dbus-daemon --config-file="$FWD_DIR/bus.conf" --nofork --nopidfile \
    >"$FWD_DIR/dbus.log" 2>&1
  FWD_BUS_PID=$BG_PID
  for i in $(seq 50); do [ -S "$FWD_DIR/bus" ] && break; sleep 0.1; done
  [ -S "$FWD_DIR/bus" ] || { bad "private D-Bus did not come up"; return 1; }
  DBUS_SYSTEM_BUS_ADDRESS="$FWD_BUS" on_bg "$role" firewalld --nofork --nopid \
    --system-config "$FWD_DIR/etc" --log-target file --log-file "$FWD_DIR/firewalld.log" \
    >"$FWD_DIR/firewalld.out" 2>&1
  FWD_PID=$BG_PID
  for i in $(seq 100); do
    [ "$(fwd_cmd --state 2>/dev/null)" = running ] && break
    kill -0 "$FWD_PID" 2>/dev/null || break
    sleep 0.1
  done
  if [ "$(fwd_cmd --state 2>/dev/null)" != running ]; then
    bad "firewalld did not start in $role"; sed 's/^/      | /' "$FWD_DIR/firewalld.log" "$FWD_DIR/firewalld.out" 2>/dev/null | tail -20
    return 1
  fi
  on "$role" nft list table inet firewalld >/dev/null 2>&1 || { bad "no table inet firewalld in $role"; return 1; }
  ok "firewalld $(fwd_cmd --version) running in $role (private D-Bus, default zone $(fwd_cmd --get-default-zone))"
}

# fwd_run_script FILE: what the admin runs, with /etc/firewalld being this firewalld's own.
fwd_run_script() {
  local f=$1 err
  err=$(DBUS_SYSTEM_BUS_ADDRESS="$FWD_BUS" on "$FWD_ROLE" unshare -m sh -c \
    'mount --bind "$1" /etc/firewalld && exec sh -e "$2"' sh "$FWD_DIR/etc" "$f" 2>&1) ||
    { bad "running $f failed:"; printf '%s\n' "$err" | sed 's/^/      | /'; return 1; }
  return 0
}

fwd_stop() {
  [ -n "$FWD_PID" ] || return 0
  kill "$FWD_PID" 2>/dev/null
  local i; for i in $(seq 50); do kill -0 "$FWD_PID" 2>/dev/null || break; sleep 0.1; done
  wait "$FWD_PID" 2>/dev/null
  kill "$FWD_BUS_PID" 2>/dev/null; wait "$FWD_BUS_PID" 2>/dev/null
  FWD_PID="" FWD_BUS_PID=""
}
