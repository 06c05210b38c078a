# SPDX-License-Identifier: GPL-2.0-or-later
# IPv6 for the namespace bench (issue 10): IPv6-only and dual-stack topologies, their firewalls, the
# kernel helper for IPv6, ftpwalld on the firewall host with either backend, and the checks the
# IPv6 stories (tests/netns/36N-*) share. Source after lib/bench.sh:
#   . "$(dirname "$0")/lib/bench.sh"; . "$BENCH_LIB/v6.sh"
# Addresses: 2001:db8::/32 only (RFC 3849), added with `nodad`, only inside namespaces the bench
# created; the dual-stack variants keep the IPv4 addresses of lib/bench.sh. See lib/README.md.

. "$(dirname "${BASH_SOURCE[0]}")/daemon.sh"
V6_FTPWALLD=$DAEMON_FTPWALLD
V6_FTPWALL=${FTPWALL_BUILD_DIR:-}/src/ftpwall
V6_FAMILIES=""        # "6" (IPv6 only) or "4 6" (dual stack), set by topo6

# --- hosts --------------------------------------------------------------------------------------

# v6_host ROLE: IPv6 back on in a host that ns_new made (ns_new disables it): all and default on,
# no duplicate address detection, no router advertisements or autoconfiguration (nothing here
# sends any; the bench's addresses are static); lo too (::1). Gives the host a resolver that
# answers nothing: bench.sh's ns_new (/etc/netns/NAME/resolv.conf -> 127.0.0.1, removed with the host).
v6_host() {
  local v="NS_$1"
  on "$1" sh -c '
    sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
    sysctl -qw net.ipv6.conf.all.accept_ra=0 net.ipv6.conf.default.accept_ra=0
    sysctl -qw net.ipv6.conf.all.autoconf=0 net.ipv6.conf.default.autoconf=0
    sysctl -qw net.ipv6.conf.all.disable_ipv6=0 net.ipv6.conf.default.disable_ipv6=0
    sysctl -qw net.ipv6.conf.lo.disable_ipv6=0' || fail "IPv6 on in host $1"
}

# v6_if ROLE IF: IPv6 on for one interface (created after v6_host or before it, by lib/bench.sh).
v6_if() {
  on "$1" sysctl -qw "net.ipv6.conf.$2.accept_dad=0" "net.ipv6.conf.$2.accept_ra=0" \
    "net.ipv6.conf.$2.autoconf=0" "net.ipv6.conf.$2.disable_ipv6=0" || fail "IPv6 on for $1:$2"
}

# v6_addr ROLE IF ADDR/PLEN [ARGS]: an address with nodad (usable at once, never tentative).
v6_addr() { local r=$1 i=$2 a=$3; shift 3; on "$r" ip -6 addr add "$a" dev "$i" nodad "$@" || fail "ip -6 addr add $a on $r:$i"; }

# link6 A IF_A B IF_B: a veth pair created directly inside both hosts, IPv6 on, up (addresses: v6_addr).
link6() {
  local a="NS_$1" b="NS_$3"
  ip link add "$2" netns "${!a}" type veth peer name "$4" netns "${!b}" || fail "veth $1:$2 - $3:$4"
  v6_if "$1" "$2"; v6_if "$3" "$4"
  ip -n "${!a}" link set "$2" up; ip -n "${!b}" link set "$4" up
}

# --- topologies ---------------------------------------------------------------------------------
# The firewall tools: BENCH_IP6T writes the IPv6 policy of the firewall host (default
# ip6tables-legacy; ip6tables-nft for the nftables columns: no legacy table is then created),
# BENCH_GATEWAY_IPT the IPv4 one (lib/bench.sh).
_v6_ipt() { case $1 in 4) echo "${BENCH_GATEWAY_IPT:-iptables-legacy}";; 6) echo "${BENCH_IP6T:-ip6tables-legacy}";; esac; }

# _v6_gateway: IPv6 forwarding on g, FORWARD policy DROP (nothing accepted yet).
_v6_gateway() {
  on g sysctl -qw net.ipv6.conf.all.forwarding=1 || fail "IPv6 forwarding on g"
  on g "$(_v6_ipt 6)" -P FORWARD DROP || fail "$(_v6_ipt 6) -P FORWARD DROP"
}
# _v6_server_input: the FTP host's IPv6 INPUT policy DROP; lo and ICMPv6 (neighbour discovery,
# 133-136, and errors) accepted, or nothing at all works.
_v6_server_input() {
  local t; t=$(_v6_ipt 6)
  on s "$t" -A INPUT -i lo -j ACCEPT
  on s "$t" -A INPUT -p ipv6-icmp -j ACCEPT
  on s "$t" -P INPUT DROP || fail "$t -P INPUT DROP"
}

# topo6 NAME: server | gateway-plain (IPv6 only), server-dual | gateway-plain-dual (lib/bench.sh's
# IPv4 topology plus IPv6 on the same links). Sets CLIENT_IP6 (the client's own address),
# CLIENT_OUT_IP6 (a second address of the client host: "another client"), SERVER_IP6, FW,
# V6_FAMILIES; IPv6 only: CLIENT_IP, CLIENT_OUT_IP, CLIENT_SEEN, SERVER_IP, SERVER_ADDR are the
# IPv6 ones (so ftp_transfer, server_start, tcp_probe use them unchanged); dual: they stay IPv4
# and SERVER_LISTEN="$SERVER_IP $SERVER_IP6" (server_start listens on both).
#   server:        c 2001:db8:1::10 (+ ::20) --- s 2001:db8:2::10, one link, on-link routes; s has
#                  INPUT policy DROP (lo, ICMPv6 accepted)
#   gateway-plain: c 2001:db8:1::10 (+ ::20) --- g 2001:db8:1::1 / 2001:db8:2::1 --- s 2001:db8:2::10;
#                  g forwards, FORWARD policy DROP
topo6() {
  local name=$1 dual=""
  case $name in *-dual) dual=1 name=${name%-dual};; esac
  case $name in server|gateway-plain) ;; *) fail "unknown IPv6 topology $1";; esac
  if [ -n "$dual" ]; then
    topo "$name" >/dev/null
    local r
    for r in c s $([ "$name" = gateway-plain ] && echo g); do v6_host "$r"; v6_if "$r" eth0; done
    [ "$name" = gateway-plain ] && v6_if g eth1
  else
    ns_new c; ns_new s; v6_host c; v6_host s
    if [ "$name" = gateway-plain ]; then
      ns_new g; v6_host g
      link6 c eth0 g eth0; link6 g eth1 s eth0
    else
      link6 c eth0 s eth0
    fi
  fi
  v6_addr c eth0 2001:db8:1::10/64
  # The second address is deprecated (preferred_lft 0): never picked as a source address (IPv6
  # would otherwise choose either of two equal addresses: the newest), used only when bound.
  v6_addr c eth0 2001:db8:1::20/64 preferred_lft 0
  v6_addr s eth0 2001:db8:2::10/64
  if [ "$name" = gateway-plain ]; then
    v6_addr g eth0 2001:db8:1::1/64
    v6_addr g eth1 2001:db8:2::1/64
    on c ip -6 route add default via 2001:db8:1::1
    on s ip -6 route add default via 2001:db8:2::1
    _v6_gateway
    FW=g
  else
    on c ip -6 route add 2001:db8:2::/64 dev eth0
    on s ip -6 route add 2001:db8:1::/64 dev eth0
    _v6_server_input
    FW=s
  fi
  CLIENT_IP6=2001:db8:1::10 CLIENT_OUT_IP6=2001:db8:1::20 SERVER_IP6=2001:db8:2::10
  V6_TOPO=$name${dual:+-dual}
  if [ -n "$dual" ]; then
    V6_FAMILIES="4 6" SERVER_LISTEN="$SERVER_IP $SERVER_IP6"
    say "topology $V6_TOPO: client $CLIENT_IP, $CLIENT_IP6 --- $([ "$name" = gateway-plain ] && echo "gateway (FORWARD DROP, both families) --- ")server $SERVER_IP, $SERVER_IP6"
  else
    V6_FAMILIES=6 SERVER_LISTEN=""
    CLIENT_IP=$CLIENT_IP6 CLIENT_OUT_IP=$CLIENT_OUT_IP6 CLIENT_SEEN=$CLIENT_IP6
    SERVER_IP=$SERVER_IP6 SERVER_ADDR=$SERVER_IP6 GW_PUBLIC="" INSIDE_NET=""
    say "topology $V6_TOPO (IPv6 only): client $CLIENT_IP --- $([ "$name" = gateway-plain ] && echo "gateway (FORWARD DROP) --- ")server $SERVER_IP$([ "$name" = server ] && echo " (INPUT DROP)")"
  fi
  # Neighbour discovery before anything measures: the first packet of a story must not wait for it.
  v6_ping c "$([ "$name" = gateway-plain ] && echo 2001:db8:1::1 || echo 2001:db8:2::10)" ||
    fail "IPv6: the client's echo request got no reply from its neighbour"
}

# v6_ping ROLE ADDR [TIMEOUT]: one ICMPv6 echo request from host ROLE; 0 when the reply came
# (there is no ping(8) here: a raw ICMPv6 socket, whose checksum the kernel computes).
v6_ping() {
  on "$1" "$BENCH_PY" -c '
import os, socket, struct, sys, time
s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
s.settimeout(float(sys.argv[2]))
ident = os.getpid() & 0xffff
s.sendto(struct.pack("!BBHHH", 128, 0, 0, ident, 1) + b"ftpwall", (sys.argv[1], 0))
end = time.monotonic() + float(sys.argv[2])
while time.monotonic() < end:
    d, a = s.recvfrom(1500)
    if d[0] == 129 and struct.unpack("!H", d[4:6])[0] == ident: sys.exit(0)
sys.exit(1)
' "$2" "${3:-3}" 2>/dev/null
}

# v6_firewall_base: the admin's firewall of the topology's role for every family of the topology
# (301's for IPv4): gateway FORWARD accepts ESTABLISHED and NEW to 21; server INPUT policy DROP
# accepting lo, ESTABLISHED and NEW to 21, OUTPUT policy DROP accepting lo and ESTABLISHED (so
# the server's own active-mode connection needs an opening too), ICMPv6 accepted in both.
v6_firewall_base() {
  local fam t
  for fam in $V6_FAMILIES; do
    t=$(_v6_ipt "$fam")
    if [ "$FW" = g ]; then
      on g "$t" -A FORWARD -m conntrack --ctstate ESTABLISHED -j ACCEPT
      on g "$t" -A FORWARD -p tcp --syn --dport 21 -m conntrack --ctstate NEW -j ACCEPT
    else
      if [ "$fam" = 4 ]; then on s "$t" -A INPUT -i lo -j ACCEPT; fi
      on s "$t" -A INPUT -m conntrack --ctstate ESTABLISHED -j ACCEPT
      on s "$t" -A INPUT -p tcp --syn --dport 21 -m conntrack --ctstate NEW -j ACCEPT
      on s "$t" -P INPUT DROP
      on s "$t" -A OUTPUT -o lo -j ACCEPT
      if [ "$fam" = 6 ]; then on s "$t" -A OUTPUT -p ipv6-icmp -j ACCEPT; fi
      on s "$t" -A OUTPUT -m conntrack --ctstate ESTABLISHED -j ACCEPT
      on s "$t" -P OUTPUT DROP
    fi
  done
  if [ "$FW" = g ]; then say "gateway firewall (IPv${V6_FAMILIES// /+IPv}, $(_v6_ipt 6)): FORWARD DROP + ESTABLISHED + NEW to 21"
  else say "server firewall (IPv${V6_FAMILIES// /+IPv}, $(_v6_ipt 6)): INPUT and OUTPUT DROP + lo + ICMPv6 + ESTABLISHED (+ NEW to 21 in)"; fi
}

# v6_kernel_helper on|off: the reference column, on the firewall host, for every family of the
# topology: the kernel's ftp helper attached explicitly (raw PREROUTING CT --helper ftp, legacy
# tables) and what it relates accepted (FORWARD on g; INPUT and OUTPUT on s).
v6_kernel_helper() {
  local op ins fam t c chains=FORWARD
  case $1 in on) op=-A ins=-I;; off) op=-D ins=-D;; *) fail "v6_kernel_helper on|off";; esac
  [ "$FW" = s ] && chains="INPUT OUTPUT"
  for fam in $V6_FAMILIES; do
    t=$([ "$fam" = 4 ] && echo iptables-legacy || echo ip6tables-legacy)
    on "$FW" "$t" -t raw "$op" PREROUTING -p tcp --dport 21 -j CT --helper ftp || fail "v6_kernel_helper $1 ($t)"
    for c in $chains; do
      on "$FW" "$t" "$ins" "$c" -m conntrack --ctstate RELATED -m helper --helper ftp -j ACCEPT || fail "RELATED accept $1 ($t $c)"
    done
  done
}

# v6_transfer ARGS...: ftp_transfer to the server's IPv6 address (dual stack: SERVER_ADDR is IPv4).
# v4_transfer ARGS...: ftp_transfer to the IPv4 address of a dual-stack server.
v6_transfer() { SERVER_ADDR=$SERVER_IP6 ftp_transfer "$@"; }
v4_transfer() { SERVER_ADDR=${SERVER_LISTEN%% *} ftp_transfer "$@"; }

# v6_each_transfer "MODE:TOOL..." ARGS...: one v6_transfer per pair; 1 if any failed.
v6_each_transfer() {
  local plan=$1 p rc=0; shift
  for p in $plan; do v6_transfer "${p#*:}" "${p%%:*}" "$@" || rc=1; done
  return $rc
}

# --- ftpwalld -----------------------------------------------------------------------------------

# v6_need_daemon: skip (fail under CI) when ftpwalld or ftpwall is not built.
v6_need_daemon() {
  [ -x "$V6_FTPWALLD" ] || skip "ftpwalld not built in FTPWALL_BUILD_DIR=${FTPWALL_BUILD_DIR:-unset}"
  [ -x "$V6_FTPWALL" ] || skip "ftpwall not built in FTPWALL_BUILD_DIR=${FTPWALL_BUILD_DIR:-unset}"
}

# v6_ftpwalld_start BACKEND [CONFIG_LINES]: ftpwalld on the firewall host $FW with a configuration
# of its own (role gateway on g, server on s; backend iptables-legacy | nftables | auto; extra
# TOML lines appended), debug log in $DLOG, state records and control socket in
# $BENCH_WORK/state (never the host's /run/ftpwalld: stories run side by side); waits for its
# ready file. Sets DPID, DLOG, DSOCK. The kernel helper must be off.
v6_ftpwalld_start() {
  local backend=$1 extra=${2:-} conf=$BENCH_WORK/ftpwalld-v6.conf
  { [ "$FW" = s ] && echo 'role = "server"' || echo 'role = "gateway"'
    echo "backend = \"$backend\""
    [ -n "$extra" ] && printf '%s\n' "$extra"; } >"$conf"
  daemon_run "$conf" "role $([ "$FW" = s ] && echo server || echo gateway), backend $backend"
}

# v6_ftpwall_lines: lines of ftpwalld's in every ruleset of $FW (lib/daemon.sh).
v6_ftpwall_lines() { daemon_lines; }

# v6_ftpwalld_stop: daemon_stop (lib/daemon.sh), and nobody touches ftpwalld's rules in these
# stories: its kernel check (every 2 s) must find its hooks and openings of both families
# complete, never "removed by someone else".
v6_ftpwalld_stop() {
  [ -n "${DPID:-}" ] || return 0
  daemon_stop
  if grep -q 'removed by someone else' "$DLOG"; then
    bad "ftpwalld repaired its rules though nobody touched them:"; grep 'removed by someone else' "$DLOG" | head -n 3 | sed 's/^/      | /'
  fi
  return 0
}

# v6_openings_logged: openings ftpwalld logged as installed so far.
v6_openings_logged() { grep -c 'in the kernel after' "$DLOG" 2>/dev/null || true; }

# v6_refusals: the daemon's refusal counters (`ftpwall status --json`: "refusals"), one
# "reason count" per line, non-zero ones only. v6_refusal REASON: one counter (0 when absent).
v6_refusals() {
  "$V6_FTPWALL" status --json --socket "$DSOCK" 2>/dev/null | "$BENCH_PY" -c '
import json, sys
for k, v in json.load(sys.stdin).get("refusals", {}).items():
    if v: print(k, v)'
}
v6_refusal() { v6_refusals | awk -v r="$1" '$1 == r { n = $2 } END { print n + 0 }'; }

# v6_wait_log ERE [SECONDS]: a log line follows the act it reports; wait for it (default 5 s).
v6_wait_log() {
  local i n=$(( ${2:-5} * 10 ))
  for i in $(seq "$n"); do grep -qE -- "$1" "$DLOG" && return 0; sleep 0.1; done
  return 1
}

# v6_check_no_namespaces: none of this story's namespaces or /etc/netns directories are left
# (call after bench_wait: every cell has cleaned up).
v6_check_no_namespaces() {
  local n e
  n=$(ip netns list | grep -c "^${BENCH_PREFIX}")
  e=$(ls -d /etc/netns/"${BENCH_PREFIX}"* 2>/dev/null | wc -l)
  [ "$n" = 0 ] && [ "$e" = 0 ] && ok "no namespace and no /etc/netns directory of the cells left" ||
    bad "$n namespaces and $e /etc/netns directories of the cells left"
}
