# SPDX-License-Identifier: GPL-2.0-or-later
# The namespace bench: throw-away hosts (ip netns + veth), real FTP peers, cleanup on every exit.
# Source it from a story:   . "$(dirname "$0")/lib/bench.sh"
# See tests/netns/lib/README.md for the topologies, the addresses and every function.
# Only documentation ranges (192.0.2/24, 198.51.100/24, 203.0.113/24) and private ranges are used,
# and only inside namespaces this file creates.

BENCH_LIB=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BENCH_STORY=$(basename "$0")
BENCH_T0=${EPOCHREALTIME/./}
BENCH_PEERS=${FTPWALL_PEERS:-/opt/ftpwall-peers}
BENCH_PY=/usr/bin/python3
# Every name this run creates starts with $BENCH_PREFIX, so ctest -j can run stories side by side
# and cleanup-stale can tell leftovers (their pid is gone) from live runs.
BENCH_PREFIX="fw$$-"
BENCH_NS=()          # namespaces of this shell (a cell in a subshell keeps its own list)
BENCH_WORK=""        # scratch directory (files, configs, logs) of this shell
BENCH_CELL=""        # cell name when running inside bench_cell

# --- transcript -----------------------------------------------------------------------------------

_elapsed() { local us=$(( ${EPOCHREALTIME/./} - BENCH_T0 )); printf '%4d.%d' $((us / 1000000)) $((us / 100000 % 10)); }
say()  { printf '[%s] %s%s\n' "$(_elapsed)" "${BENCH_CELL:+$BENCH_CELL: }" "$*"; }
ok()   { printf '[%s] %sok   %s\n' "$(_elapsed)" "${BENCH_CELL:+$BENCH_CELL: }" "$*"; }
bad()  { printf '[%s] %sFAIL %s\n' "$(_elapsed)" "${BENCH_CELL:+$BENCH_CELL: }" "$*"; BENCH_FAILED=1; }
# fail: stop the story (or cell) now with exit 1. skip: exit 77, or 1 under CI=true.
fail() { bad "$*"; exit 1; }
skip() {
  if [ "${CI:-}" = true ]; then
    printf 'FAIL %s: cannot run under CI=true: %s\n' "$BENCH_STORY" "$*"; exit 1
  fi
  printf 'SKIP %s: %s\n' "$BENCH_STORY" "$*"; exit 77
}
BENCH_FAILED=0

# need TOOL...: skip (fail under CI) when a tool is missing.
need() {
  local t
  for t in "$@"; do
    case $t in
      root) [ "$(id -u)" = 0 ] || skip "needs root (network namespaces)";;
      proftpd|pure-ftpd)
        [ -x "$BENCH_PEERS/usr/sbin/$t" ] || skip "$t not unpacked: run tests/netns/lib/install-peers";;
      ftpwall)
        [ -x "${FTPWALL_BUILD_DIR:-}/src/ftpwall" ] || skip "ftpwall not built in FTPWALL_BUILD_DIR=${FTPWALL_BUILD_DIR:-unset}";;
      *) command -v "$t" >/dev/null 2>&1 || [ -x "/usr/sbin/$t" ] || skip "$t not installed";;
    esac
  done
}

# story_start "what it shows": checks the basics, installs the cleanup trap, prints the header.
story_start() {
  need root ip iptables-legacy iptables-legacy-restore lftp curl tcpdump sha256sum
  [ -x "$BENCH_PY" ] || skip "$BENCH_PY missing"
  ip netns add "${BENCH_PREFIX}probe" 2>/dev/null || skip "cannot create network namespaces here"
  ip netns del "${BENCH_PREFIX}probe"
  "$BENCH_LIB/cleanup-stale" >/dev/null 2>&1   # leftovers of runs that were killed (-9)
  trap bench_cleanup EXIT
  trap 'say "interrupted"; exit 130' INT TERM
  BENCH_WORK=$(mktemp -d "/tmp/${BENCH_PREFIX}XXXX")
  chmod 755 "$BENCH_WORK"      # the anonymous FTP user reads server roots below it
  echo "== $BENCH_STORY: $*"
}

# story_end: prints PASS/FAIL with the time and exits 0 or 1.
story_end() {
  local t; t=$(_elapsed)
  if [ "$BENCH_FAILED" = 0 ]; then echo "PASS $BENCH_STORY (${t// /} s)"; exit 0; fi
  echo "FAIL $BENCH_STORY (${t// /} s)"; exit 1
}

# --- cleanup --------------------------------------------------------------------------------------

# Kills every process left in our namespaces (the peers we started), deletes the namespaces and the
# scratch directory. Runs on EXIT (also after INT/TERM and failures). With BENCH_KEEP=1 the scratch
# directory (logs, captures, configs) stays for inspection.
bench_cleanup() {
  local rc=$? ns
  disown -a 2>/dev/null   # no "Killed" job notices for the peers ended below
  for ns in "${BENCH_NS[@]}"; do _ns_kill "$ns"; done
  for ns in "${BENCH_NS[@]}"; do ip netns del "$ns" 2>/dev/null; rm -rf "/etc/netns/$ns"; done
  BENCH_NS=()
  if [ -n "$BENCH_WORK" ] && [ -d "$BENCH_WORK" ]; then
    # Bind mounts die with the namespaces' processes; what is left are plain files.
    if [ "${BENCH_KEEP:-0}" = 1 ]; then echo "kept $BENCH_WORK"; else rm -rf "$BENCH_WORK"; fi
  fi
  # A story's own cells use "<prefix><cell>-" names: remove any a killed cell left behind.
  if [ -z "$BENCH_CELL" ]; then "$BENCH_LIB/cleanup-stale" --prefix "$BENCH_PREFIX" >/dev/null 2>&1; fi
  return $rc
}

_ns_kill() {
  local pids
  pids=$(ip netns pids "$1" 2>/dev/null) || return 0
  [ -n "$pids" ] || return 0
  kill $pids 2>/dev/null
  sleep 0.2
  pids=$(ip netns pids "$1" 2>/dev/null)
  [ -n "$pids" ] && kill -9 $pids 2>/dev/null
  return 0
}

# --- hosts and links ------------------------------------------------------------------------------

# ns_new ROLE: a host named $BENCH_PREFIX$ROLE with lo up, no rp_filter, no automatic helpers;
# sets NS_<ROLE> (NS_c, NS_s, NS_g ...).
ns_new() {
  local role=$1 ns="${BENCH_PREFIX}$1"
  ip netns add "$ns" || fail "ip netns add $ns"
  BENCH_NS+=("$ns")
  # No resolver: `ip netns exec` binds /etc/netns/NS/resolv.conf over /etc/resolv.conf, so every
  # lookup inside fails at once instead of trying the host's resolver (removed with the namespace).
  mkdir -p "/etc/netns/$ns" && echo 'nameserver 127.0.0.1' >"/etc/netns/$ns/resolv.conf"
  printf -v "NS_$role" '%s' "$ns"
  ip -n "$ns" link set lo up
  ip netns exec "$ns" sh -c '
    sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0
    sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
    # Kernels before 6.0 could attach helpers by port; the bench attaches them only explicitly.
    [ -e /proc/sys/net/netfilter/nf_conntrack_helper ] && sysctl -qw net.netfilter.nf_conntrack_helper=0
    true'
}

# on ROLE CMD...: run CMD on a host (c, s, g, ...).
on() { local v="NS_$1"; shift; ip netns exec "${!v}" "$@"; }

# on_bg ROLE CMD... [redirections]: run CMD on a host in the background; BG_PID is CMD's own pid
# (ip netns exec execs it), so `kill $BG_PID` stops it. Not for shell functions.
on_bg() { local v="NS_$1"; shift; ip netns exec "${!v}" "$@" & BG_PID=$!; }

# link A IF_A ADDR_A B IF_B ADDR_B: a veth pair created directly inside both hosts (so interface
# names never collide between parallel runs). Addresses are CIDR, e.g. 192.0.2.10/24.
link() {
  local a="NS_$1" b="NS_$4"
  ip link add "$2" netns "${!a}" type veth peer name "$5" netns "${!b}" || fail "veth $1:$2 - $4:$5"
  ip -n "${!a}" addr add "$3" dev "$2"; ip -n "${!a}" link set "$2" up
  ip -n "${!b}" addr add "$6" dev "$5"; ip -n "${!b}" link set "$5" up
}

# Public hosts have no route to private ranges, as on the Internet: a missing NAT fails loudly.
_no_private_routes() {
  local r
  for r in 10.0.0.0/8 172.16.0.0/12 192.168.0.0/16; do on "$1" ip route add unreachable "$r"; done
}

# BENCH_GATEWAY_IPT: the tool that writes the gateway's FORWARD DROP (default iptables-legacy;
# iptables-nft for a host whose admin never touched the legacy tables: none is ever created).
_gateway_forwarding() {
  on g sysctl -qw net.ipv4.ip_forward=1
  on g "${BENCH_GATEWAY_IPT:-iptables-legacy}" -P FORWARD DROP
}

# --- topologies -----------------------------------------------------------------------------------
# Each sets: CLIENT_IP (client's own address), CLIENT_OUT_IP (a second client address that rules
# can treat as "outside --allow-from"), CLIENT_SEEN (client address as the server sees it),
# SERVER_IP (address the server listens on), SERVER_ADDR (address the client dials),
# FW (the host whose firewall is under test: s or g), and for gateways GW_PUBLIC, INSIDE_NET.

# server: client 192.0.2.10 (+ .20) --- server 198.51.100.10, one link, on-link routes.
topo_server() {
  ns_new c; ns_new s
  link c eth0 192.0.2.10/24 s eth0 198.51.100.10/24
  on c ip addr add 192.0.2.20/24 dev eth0
  on c ip route add 198.51.100.0/24 dev eth0
  on s ip route add 192.0.2.0/24 dev eth0
  _no_private_routes c; _no_private_routes s
  CLIENT_IP=192.0.2.10 CLIENT_OUT_IP=192.0.2.20 CLIENT_SEEN=192.0.2.10
  SERVER_IP=198.51.100.10 SERVER_ADDR=198.51.100.10 FW=s GW_PUBLIC="" INSIDE_NET=""
  say "topology server: client $CLIENT_IP --- server $SERVER_IP (firewall on the server)"
}

# gateway-plain: client 192.0.2.10 --- 192.0.2.1 [gateway] 198.51.100.1 --- server 198.51.100.10,
# routed, FORWARD policy DROP.
topo_gateway_plain() {
  ns_new c; ns_new g; ns_new s
  link c eth0 192.0.2.10/24 g eth0 192.0.2.1/24
  link g eth1 198.51.100.1/24 s eth0 198.51.100.10/24
  on c ip addr add 192.0.2.20/24 dev eth0
  on c ip route add default via 192.0.2.1
  on s ip route add default via 198.51.100.1
  _no_private_routes c; _no_private_routes s
  _gateway_forwarding
  CLIENT_IP=192.0.2.10 CLIENT_OUT_IP=192.0.2.20 CLIENT_SEEN=192.0.2.10
  SERVER_IP=198.51.100.10 SERVER_ADDR=198.51.100.10 FW=g GW_PUBLIC="" INSIDE_NET=""
  say "topology gateway-plain: client $CLIENT_IP --- gateway (FORWARD DROP) --- server $SERVER_IP"
}

# gateway-client-nat: client 192.168.1.10 (+ .200) --- 192.168.1.1 [gateway, MASQUERADE] 203.0.113.1 ---
# server 198.51.100.10. The server has no route to 192.168/16: only NAT makes replies possible.
topo_gateway_client_nat() {
  ns_new c; ns_new g; ns_new s
  link c eth0 192.168.1.10/24 g eth0 192.168.1.1/24
  link g eth1 203.0.113.1/24 s eth0 198.51.100.10/24
  on c ip addr add 192.168.1.200/24 dev eth0
  on c ip route add default via 192.168.1.1
  on g ip route add 198.51.100.0/24 dev eth1
  on s ip route add 203.0.113.0/24 dev eth0
  _no_private_routes s
  _gateway_forwarding
  on g iptables-legacy -t nat -A POSTROUTING -o eth1 -s 192.168.1.0/24 -j MASQUERADE
  CLIENT_IP=192.168.1.10 CLIENT_OUT_IP=192.168.1.200 CLIENT_SEEN=203.0.113.1
  SERVER_IP=198.51.100.10 SERVER_ADDR=198.51.100.10 FW=g GW_PUBLIC=203.0.113.1 INSIDE_NET=192.168.1.0/24
  say "topology gateway-client-nat: client $CLIENT_IP --- gateway (MASQUERADE as $GW_PUBLIC, FORWARD DROP) --- server $SERVER_IP"
}

# gateway-server-nat: client 192.0.2.10 --- 192.0.2.1 [gateway, public 203.0.113.1] 10.0.0.1 ---
# server 10.0.0.10. The client has no route to 10/8 and reaches the server only through
# DNAT of 203.0.113.1:21 (gateway_dnat_control adds it, or a generated ruleset does).
topo_gateway_server_nat() {
  ns_new c; ns_new g; ns_new s
  link c eth0 192.0.2.10/24 g eth0 192.0.2.1/24
  link g eth1 10.0.0.1/24 s eth0 10.0.0.10/24
  on g ip addr add 203.0.113.1/32 dev eth0
  on c ip addr add 192.0.2.20/24 dev eth0
  on c ip route add 203.0.113.0/24 via 192.0.2.1
  on s ip route add default via 10.0.0.1
  _no_private_routes c
  _gateway_forwarding
  CLIENT_IP=192.0.2.10 CLIENT_OUT_IP=192.0.2.20 CLIENT_SEEN=192.0.2.10
  SERVER_IP=10.0.0.10 SERVER_ADDR=203.0.113.1 FW=g GW_PUBLIC=203.0.113.1 INSIDE_NET=10.0.0.0/24
  say "topology gateway-server-nat: client $CLIENT_IP --- gateway (public $GW_PUBLIC, DNAT 21, FORWARD DROP) --- server $SERVER_IP"
}

# topo NAME: dispatch by the names used in the issue.
topo() {
  case $1 in
    server) topo_server;; gateway-plain) topo_gateway_plain;;
    gateway-client-nat) topo_gateway_client_nat;; gateway-server-nat) topo_gateway_server_nat;;
    *) fail "unknown topology $1";;
  esac
}

# gateway_dnat_control: DNAT of the public address's port 21 to the server (gateway-server-nat).
gateway_dnat_control() {
  on g iptables-legacy -t nat -A PREROUTING -d "$GW_PUBLIC" -p tcp --dport 21 -j DNAT --to-destination "$SERVER_IP:21"
}

# kernel_helper on|off: attach the kernel's ftp helper to sessions on port 21 explicitly, on the
# firewall host (the gateway, or the server host for `server`). raw PREROUTING runs before DNAT,
# so on gateway-server-nat it matches the public address.
kernel_helper() {
  local op
  case $1 in on) op=-A;; off) op=-D;; *) fail "kernel_helper on|off";; esac
  on "$FW" iptables-legacy -t raw "$op" PREROUTING -p tcp --dport 21 -j CT --helper ftp ||
    fail "kernel_helper $1"
}

# --- test data ------------------------------------------------------------------------------------

# bench_files: random files in $BENCH_WORK/files (1 B, 1500 B, 64 KiB + 1, 3 MiB + 7), made once
# per story; BENCH_FILES lists their names.
BENCH_FILES=(f1 f1500 f65537 f3m)
bench_files() {
  local d="$BENCH_WORK/files"
  [ -d "$d" ] && return 0
  mkdir -p "$d"
  head -c 1 /dev/urandom >"$d/f1"
  head -c 1500 /dev/urandom >"$d/f1500"
  head -c 65537 /dev/urandom >"$d/f65537"
  head -c $((3 * 1048576 + 7)) /dev/urandom >"$d/f3m"
  chmod 644 "$d"/*
}

sha() { sha256sum "$1" | cut -c1-64; }

# --- cells: independent sub-runs of a story, side by side ------------------------------------------

# bench_cell NAME FUNCTION ARGS...: runs FUNCTION in a subshell with its own namespaces
# ("<prefix><NAME>-c" ...), its own scratch dir and its own cleanup, in the background; the
# transcript goes to a file that bench_wait prints as one block. Collect results with bench_wait.
BENCH_CELL_PIDS=()
BENCH_CELL_NAMES=()
bench_cell() {
  local name=$1; shift
  bench_files
  (
    exec >"$BENCH_WORK/cell-$name.out" 2>&1   # printed as one block by bench_wait
    BENCH_CELL=$name
    BENCH_PREFIX="${BENCH_PREFIX}${name}-"
    BENCH_NS=()
    BENCH_WORK="$BENCH_WORK/cell-$name"
    mkdir -p "$BENCH_WORK"; chmod 755 "$BENCH_WORK"
    ln -s ../files "$BENCH_WORK/files"
    BENCH_FAILED=0
    trap bench_cleanup EXIT
    trap 'exit 130' INT TERM
    "$@" || BENCH_FAILED=1
    exit "$BENCH_FAILED"
  ) &
  BENCH_CELL_PIDS+=($!)
  BENCH_CELL_NAMES+=("$name")
}

# bench_wait: waits for the cells in the order they were started, prints each cell's transcript
# as one block, and fails the story if a cell failed. Prints a one-line summary.
bench_wait() {
  local i rc nfail=0 name
  for i in "${!BENCH_CELL_PIDS[@]}"; do
    name=${BENCH_CELL_NAMES[$i]}
    wait "${BENCH_CELL_PIDS[$i]}"; rc=$?
    echo "-- cell $name"
    sed "s/] $name: /] /" "$BENCH_WORK/cell-$name.out"
    if [ $rc != 0 ]; then nfail=$((nfail + 1)); bad "cell $name failed (exit $rc)"; fi
  done
  say "${#BENCH_CELL_PIDS[@]} cells, $nfail failed"
  BENCH_CELL_PIDS=(); BENCH_CELL_NAMES=()
}

# bench_jobs N: waits until fewer than N cells run (2 cores: keep the machine responsive).
bench_jobs() {
  while [ "$(jobs -rp | wc -l)" -ge "$1" ]; do sleep 0.3; done
}

. "$BENCH_LIB/servers.sh"
. "$BENCH_LIB/clients.sh"
. "$BENCH_LIB/record.sh"
. "$BENCH_LIB/rules.sh"
