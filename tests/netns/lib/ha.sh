# SPDX-License-Identifier: GPL-2.0-or-later
# An active/backup gateway pair (issue 15), shared by the stories tests/netns/38N-*: keepalived
# (VRRPv3, unicast) moves the virtual addresses, conntrackd (FTFW, unicast UDP on a direct link)
# replicates conntrack, and ftpwalld can run on both gateways at once. Source after lib/bench.sh.
# The measured facts this follows are in ../shared/ha-in-netns.md (what a real failure is, the
# conntrackd settings that matter, the classic primary-backup notify logic).
#
#   client c 198.51.100.2 --- [bridge pub] --- g1 eth0 198.51.100.11 / g2 eth0 198.51.100.12
#                                              VIP 198.51.100.1 (VRID 51)
#                                              g1 eth1 10.0.0.11 / g2 eth1 10.0.0.12
#   server s 10.0.0.10    --- [bridge priv] -- VIP 10.0.0.1 (VRID 52), s: default via 10.0.0.1
#   g1 eth2 192.168.99.1 ---- g2 eth2 192.168.99.2 (direct veth: conntrackd's UDP sync, port 3780)
#
# Both gateways: DNAT 198.51.100.1:21 -> 10.0.0.10:21, SNAT of 10.0.0.0/24 leaving eth0 to the VIP
# (never MASQUERADE: its entries die with an interface and conntrackd replicates the deletion),
# FORWARD policy DROP + ESTABLISHED,RELATED + the DNATed control SYN, INPUT drops INVALID (or the
# backup's own stack answers a packet of an unknown connection to the VIP with a RST),
# nf_conntrack_tcp_loose=0 (with 1 a backup picks a connection up mid-stream by itself and a test
# passes falsely), ip_forward=1; bridge-nf-call-iptables=0 in the bridge namespaces.

. "$(dirname "${BASH_SOURCE[0]}")/daemon.sh"

HA_VIP_PUB=198.51.100.1
HA_VIP_PRIV=10.0.0.1
HA_GWS=(g1 g2)
declare -A HA_PUB=([g1]=198.51.100.11 [g2]=198.51.100.12)
declare -A HA_PRIV=([g1]=10.0.0.11 [g2]=10.0.0.12)
declare -A HA_SYNC=([g1]=192.168.99.1 [g2]=192.168.99.2)
declare -A HA_PEER=([g1]=g2 [g2]=g1)
declare -A HA_PRIO=([g1]=150 [g2]=100)
HA_CLI=${FTPWALL_BUILD_DIR:-}/src/ftpwall   # the ftpwall command line (takeover, status)
HA_RUNNING=0

# ha_need: skip (fail under CI) without keepalived, conntrackd, conntrack.
ha_need() { need keepalived conntrackd conntrack; }
ha_need_daemon() {
  [ -x "$DAEMON_FTPWALLD" ] || skip "ftpwalld not built in FTPWALL_BUILD_DIR=${FTPWALL_BUILD_DIR:-unset}"
}

# --- topology -------------------------------------------------------------------------------------

# _ha_bridge ROLE: a namespace holding one bridge br0 (no address, no STP, no netfilter on it).
_ha_bridge() {
  ns_new "$1"
  on "$1" ip link add br0 type bridge stp_state 0 forward_delay 0
  on "$1" ip link set br0 up
  on "$1" sh -c 'for f in iptables ip6tables arptables; do
    [ -e /proc/sys/net/bridge/bridge-nf-call-$f ] && sysctl -qw net.bridge.bridge-nf-call-$f=0; done; true'
}
# _ha_port HOST IF CIDR BRIDGE: a veth from HOST (IF, address CIDR) to a port of BRIDGE's br0.
_ha_port() {
  local h="NS_$1" b="NS_$4" port="$1-$2"
  ip link add "$2" netns "${!h}" type veth peer name "$port" netns "${!b}" || fail "veth $1:$2 - $4:$port"
  ip -n "${!h}" addr add "$3" dev "$2"; ip -n "${!h}" link set "$2" up
  ip -n "${!b}" link set "$port" master br0; ip -n "${!b}" link set "$port" up
}

# topo_ha [--no-rules]: the pair above with its rules (no VIP yet: ha_start). Sets the variables every
# topology sets (FW=g1: the lib's single-host helpers act on g1; use the ha_* functions per gateway).
# --no-rules: the sysctls only, no iptables-legacy rule on either gateway (the story loads its own
# ruleset, e.g. 384's from ftpwall rules --ha).
topo_ha() {
  local rules=1; [ "${1:-}" = --no-rules ] && rules=0
  ns_new c; ns_new s; ns_new g1; ns_new g2
  _ha_bridge pub; _ha_bridge priv
  _ha_port c eth0 198.51.100.2/24 pub
  _ha_port s eth0 10.0.0.10/24 priv
  local g
  for g in g1 g2; do
    _ha_port "$g" eth0 "${HA_PUB[$g]}/24" pub
    _ha_port "$g" eth1 "${HA_PRIV[$g]}/24" priv
  done
  link g1 eth2 192.168.99.1/24 g2 eth2 192.168.99.2/24
  on s ip route add default via "$HA_VIP_PRIV"
  _no_private_routes c
  for g in g1 g2; do
    on "$g" sysctl -qw net.ipv4.ip_forward=1 net.netfilter.nf_conntrack_tcp_loose=0
    [ $rules = 1 ] || continue
    on "$g" iptables-legacy -P FORWARD DROP
    on "$g" iptables-legacy -A INPUT -m conntrack --ctstate INVALID -m comment --comment ha-invalid -j DROP
    on "$g" iptables-legacy -A FORWARD -m conntrack --ctstate INVALID -m comment --comment ha-invalid -j DROP
    on "$g" iptables-legacy -A FORWARD -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
    on "$g" iptables-legacy -A FORWARD -p tcp --syn -d 10.0.0.10 --dport 21 -m conntrack --ctstate NEW \
      --ctorigdst "$HA_VIP_PUB" --ctorigdstport 21 -j ACCEPT
    on "$g" iptables-legacy -t nat -A PREROUTING -d "$HA_VIP_PUB" -p tcp --dport 21 -j DNAT --to-destination 10.0.0.10:21
    on "$g" iptables-legacy -t nat -A POSTROUTING -s 10.0.0.0/24 -o eth0 -j SNAT --to-source "$HA_VIP_PUB"
  done
  trap 'rc=$?; ha_push_stop; (exit $rc); bench_cleanup' EXIT
  CLIENT_IP=198.51.100.2 CLIENT_OUT_IP="" CLIENT_SEEN=198.51.100.2
  SERVER_IP=10.0.0.10 SERVER_ADDR=$HA_VIP_PUB GW_PUBLIC=$HA_VIP_PUB INSIDE_NET=10.0.0.0/24 FW=g1
  if [ $rules = 1 ]; then
    say "topology ha: client $CLIENT_IP --- g1/g2 (VIP $HA_VIP_PUB, DNAT 21 -> $SERVER_IP, SNAT to the VIP, FORWARD DROP, loose 0) --- server $SERVER_IP; sync link 192.168.99.1-.2"
  else
    say "topology ha: client $CLIENT_IP --- g1/g2 (VIP $HA_VIP_PUB, ip_forward 1, loose 0, no rules yet) --- server $SERVER_IP; sync link 192.168.99.1-.2"
  fi
}

# ha_kernel_helper on|off: the reference column: the kernel's ftp helper (nf_conntrack_ftp +
# nf_nat_ftp) on both gateways for the DNATed control port (raw PREROUTING sees the VIP).
# A replicated expectation loses its NAT part: conntrackd commits it on the new master and the data
# SYN matches it (the expectation is destroyed at that SYN), but the new connection is not DNATed
# (no nat-follow-master, no saved 10.0.0.10:port; g1's internal cache, conntrackd -i expect -x,
# shows none either): g2's own stack answers the SYN to the VIP with a RST. So the kernel column
# also DNATs RELATED connections of helper ftp to the server (same port: nf_nat_ftp rewrote only
# the address), what nat-follow-master would have done (HA_KERNEL_EXP_DNAT=0 shows the RST).
HA_KERNEL_EXP_DNAT=${HA_KERNEL_EXP_DNAT:-1}
ha_kernel_helper() {
  local op g
  case $1 in on) op=-A;; off) op=-D;; *) fail "ha_kernel_helper on|off";; esac
  for g in g1 g2; do
    on "$g" iptables-legacy -t raw "$op" PREROUTING -d "$HA_VIP_PUB" -p tcp --dport 21 -j CT --helper ftp ||
      fail "ha_kernel_helper $1 on $g"
    [ "$HA_KERNEL_EXP_DNAT" = 1 ] || continue
    on "$g" iptables-legacy -t nat "$op" PREROUTING -d "$HA_VIP_PUB" -p tcp -m conntrack --ctstate RELATED \
      -m helper --helper ftp -j DNAT --to-destination 10.0.0.10 || fail "ha_kernel_helper $1 on $g (RELATED DNAT)"
  done
}

# ha_ftpwalld_firewall: ftpwalld's nftables backend marks the data connections it opens
# (queue.accept_mark 0x20000000); the gateways' legacy FORWARD DROP must accept them by that mark
# (its drops are final beside nf_tables: ftpwalld's start warns about exactly that).
ha_ftpwalld_firewall() {
  local g
  for g in g1 g2; do
    on "$g" iptables-legacy -I FORWARD 3 -m mark --mark 0x20000000/0x20000000 -m comment --comment ha-accept-mark -j ACCEPT
  done
}

# --- keepalived + conntrackd ----------------------------------------------------------------------

_ha_conntrackd_conf() {
  local g=$1 p=${HA_PEER[$1]} w=$BENCH_WORK/ha
  cat <<EOF
# conntrackd for $g (issue 15 bench): FTFW over unicast UDP on the direct link
Sync {
	Mode FTFW {
		DisableExternalCache off
		StartupResync on
	}
	UDP {
		IPv4_address ${HA_SYNC[$g]}
		IPv4_Destination_Address ${HA_SYNC[$p]}
		Port 3780
		Interface eth2
		SndSocketBuffer 1249280
		RcvSocketBuffer 1249280
		Checksum on
	}
	Options {
		TCPWindowTracking off
		ExpectationSync {
			ftp
		}
	}
}
General {
	Systemd off
	HashSize 32768
	HashLimit 131072
	LogFile $w/conntrackd-$g.log
	Syslog off
	LockFile $w/conntrackd-$g.lock
	UNIX {
		Path $w/conntrackd-$g.ctl
	}
	NetlinkBufferSize 2097152
	NetlinkBufferSizeMaxGrowth 8388608
${HA_POLL_SECS:+	PollSecs $HA_POLL_SECS
}	Filter From Userspace {
		Protocol Accept {
			TCP
		}
		Address Ignore {
			IPv4_address 127.0.0.1
			IPv4_address ${HA_PUB[g1]}
			IPv4_address ${HA_PUB[g2]}
			IPv4_address ${HA_PRIV[g1]}
			IPv4_address ${HA_PRIV[g2]}
			IPv4_address ${HA_SYNC[g1]}
			IPv4_address ${HA_SYNC[g2]}
			IPv4_address $HA_VIP_PUB
			IPv4_address $HA_VIP_PRIV
		}
	}
}
EOF
}

_ha_keepalived_conf() {
  local g=$1 p=${HA_PEER[$1]} n=$BENCH_WORK/ha/notify-$1.sh
  cat <<EOF
# keepalived for $g (issue 15 bench): VRRPv3, unicast, one sync group of two instances
global_defs {
	router_id $g
	enable_script_security
	script_user root
	vrrp_version 3
	vrrp_garp_master_refresh 0
}
vrrp_sync_group HA {
	group {
		PUB
		PRIV
	}
	notify_master "$n master"
	notify_backup "$n backup"
	notify_fault "$n fault"
}
vrrp_instance PUB {
	state BACKUP
	nopreempt
	interface eth0
	virtual_router_id 51
	priority ${HA_PRIO[$g]}
	advert_int 0.2
	unicast_src_ip ${HA_PUB[$g]}
	unicast_peer {
		${HA_PUB[$p]}
	}
	virtual_ipaddress {
		$HA_VIP_PUB/24 dev eth0
	}
}
vrrp_instance PRIV {
	state BACKUP
	nopreempt
	interface eth1
	virtual_router_id 52
	priority ${HA_PRIO[$g]}
	advert_int 0.2
	unicast_src_ip ${HA_PRIV[$g]}
	unicast_peer {
		${HA_PRIV[$p]}
	}
	virtual_ipaddress {
		$HA_VIP_PRIV/24 dev eth1
	}
}
EOF
}

# The classic primary-backup notify logic (conntrackd's primary-backup.sh): master commits the
# external cache (-c), flushes both caches (-f), resyncs the internal cache with the kernel (-R)
# and sends a bulk update (-B); backup shortens the kernel's timers (-t) and asks the master for a
# resync (-n); fault -t. With HA_FTPWALLD=1 at ha_start the master step then runs
# `ftpwall takeover --socket <this gateway's control socket>`, backup and fault first run
# `ftpwall standby` (output in takeover-GW.log).
_ha_notify_script() {
  local g=$1 w=$BENCH_WORK/ha
  local ftpwalld=${HA_FTPWALLD:-0} sock=$BENCH_WORK/state-$g/control
  cat <<EOF
#!/bin/sh
# keepalived notify script of $g (generated by tests/netns/lib/ha.sh)
C=$w/conntrackd-$g.conf
L=$w/notify-$g.log
ct() {
	/usr/sbin/conntrackd -C "\$C" "\$@" >>"\$L" 2>&1 || echo "\$(date +%T.%N) conntrackd \$* failed: \$?" >>"\$L"
}
echo "\$(date +%T.%N) \$1 begin" >>"\$L"
case \$1 in
	master)
		ct -c; ct -f; ct -R; ct -B
		if [ "$ftpwalld" = 1 ]; then
			echo "\$(date +%T.%N) $HA_CLI takeover --socket $sock" >>$w/takeover-$g.log
			$HA_CLI takeover --socket $sock >>$w/takeover-$g.log 2>&1
			echo "\$(date +%T.%N) exit \$?" >>$w/takeover-$g.log
		fi;;
	backup|fault)
		if [ "$ftpwalld" = 1 ]; then
			echo "\$(date +%T.%N) \$1: $HA_CLI standby --socket $sock" >>$w/takeover-$g.log
			$HA_CLI standby --socket $sock >>$w/takeover-$g.log 2>&1
		fi
		if [ "\$1" = backup ]; then ct -t; ct -n; else ct -t; fi;;
esac
echo "\$1" >$w/state-$g
echo "\$(date +%T.%N) \$1 done" >>"\$L"
exit 0
EOF
}

# ha_start: conntrackd on both gateways (each its own configuration, lock file, UNIX socket and log
# in $BENCH_WORK/ha), then keepalived on both (own configuration and pid files), g1 first; waits
# until g1 is master (VIPs and its notify script done). HA_FTPWALLD=1 makes the master step run
# ftpwall takeover (see _ha_notify_script). HA_GIVEN_CONFIGS=1: the story wrote
# $BENCH_WORK/ha/{conntrackd,keepalived,notify}-GW.{conf,conf,sh} itself (ha_dir first; the notify
# script must write "master"/"backup"/"fault" to ha/state-GW, which ha_wait_master reads).
ha_dir() { local w=$BENCH_WORK/ha; mkdir -p "$w"; chown root:root "$w"; chmod 755 "$w"; }   # keepalived runs no script in a writable directory
ha_start() {
  local w=$BENCH_WORK/ha g i
  ha_dir
  for g in g1 g2; do
    if [ "${HA_GIVEN_CONFIGS:-0}" = 1 ]; then
      [ -s "$w/conntrackd-$g.conf" ] && [ -s "$w/keepalived-$g.conf" ] && [ -x "$w/notify-$g.sh" ] ||
        fail "HA_GIVEN_CONFIGS=1: $w/conntrackd-$g.conf, keepalived-$g.conf or notify-$g.sh missing"
    else
      _ha_conntrackd_conf "$g" >"$w/conntrackd-$g.conf"
      _ha_keepalived_conf "$g" >"$w/keepalived-$g.conf"
      _ha_notify_script "$g" >"$w/notify-$g.sh"; chmod 755 "$w/notify-$g.sh"
    fi
    rm -f "$w/state-$g" "$w/conntrackd-$g.lock" "$w/takeover-$g.log"   # takeover-GW.log: this column's
    on_bg "$g" /usr/sbin/conntrackd -C "$w/conntrackd-$g.conf" >>"$w/conntrackd-$g.out" 2>&1
    printf -v "HA_CTD_$g" '%s' "$BG_PID"
  done
  for g in g1 g2; do
    for i in $(seq 50); do on "$g" /usr/sbin/conntrackd -C "$w/conntrackd-$g.conf" -s >/dev/null 2>&1 && break; sleep 0.1; done
    on "$g" /usr/sbin/conntrackd -C "$w/conntrackd-$g.conf" -s >/dev/null 2>&1 ||
      { tail -n 5 "$w/conntrackd-$g.log" "$w/conntrackd-$g.out" 2>/dev/null; fail "conntrackd did not start on $g"; }
  done
  for g in g1 g2; do
    on_bg "$g" /usr/sbin/keepalived -n -l -P -G -f "$w/keepalived-$g.conf" -p "$w/keepalived-$g.pid" \
      -r "$w/keepalived-vrrp-$g.pid" >>"$w/keepalived-$g.log" 2>&1
    printf -v "HA_KAD_$g" '%s' "$BG_PID"
    [ "$g" = g1 ] && sleep 0.3   # g1 (priority 150) is elected first
  done
  HA_RUNNING=1
  ha_wait_master g1 10 || { tail -n 12 "$w/keepalived-g1.log" | sed 's/^/      | /'; fail "g1 did not become master"; }
  if [ "${HA_GIVEN_CONFIGS:-0}" = 1 ]; then ok "keepalived + conntrackd on g1 and g2 (the story's configurations): g1 master"
  else ok "keepalived + conntrackd on g1 and g2 (VRRPv3 advert 0.2 s, unicast; FTFW over UDP 3780)${HA_FTPWALLD:+, HA_FTPWALLD=$HA_FTPWALLD}: g1 master"; fi
}

# ha_stop: keepalived, then conntrackd, on both gateways (SIGTERM, then their pids are waited for).
ha_stop() {
  [ "$HA_RUNNING" = 1 ] || return 0
  local g v p m
  # The backup's keepalived first: stopping the master first would make the backup master for a moment.
  m=$(ha_master); [ "$m" = g2 ] && m="HA_KAD_g1 HA_KAD_g2" || m="HA_KAD_g2 HA_KAD_g1"
  for v in $m HA_CTD_g1 HA_CTD_g2; do
    p=${!v:-}; [ -n "$p" ] || continue
    kill -TERM "$p" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$p" 2>/dev/null && kill -KILL "$p" 2>/dev/null
    wait "$p" 2>/dev/null
    printf -v "$v" '%s' ""
  done
  for g in g1 g2; do   # /24 (this lib's keepalived.conf) or /32 (ftpwall rules --ha's)
    on "$g" ip addr del "$HA_VIP_PUB/24" dev eth0 2>/dev/null || on "$g" ip addr del "$HA_VIP_PUB/32" dev eth0 2>/dev/null
    on "$g" ip addr del "$HA_VIP_PRIV/24" dev eth1 2>/dev/null || on "$g" ip addr del "$HA_VIP_PRIV/32" dev eth1 2>/dev/null
  done
  HA_RUNNING=0
  say "keepalived and conntrackd stopped on g1 and g2"
}

# ha_restart_conntrackd GW: only that gateway's conntrackd (SIGTERM, start again; StartupResync
# asks the peer for its table).
ha_restart_conntrackd() {
  local g=$1 w=$BENCH_WORK/ha v="HA_CTD_$1" p
  p=${!v}
  kill -TERM "$p" 2>/dev/null; wait "$p" 2>/dev/null
  rm -f "$w/conntrackd-$g.lock"
  on_bg "$g" /usr/sbin/conntrackd -C "$w/conntrackd-$g.conf" >>"$w/conntrackd-$g.out" 2>&1
  printf -v "$v" '%s' "$BG_PID"
  for _ in $(seq 50); do on "$g" /usr/sbin/conntrackd -C "$w/conntrackd-$g.conf" -s >/dev/null 2>&1 && return 0; sleep 0.1; done
  bad "conntrackd did not restart on $g"; return 1
}

# ha_conntrackd GW ARGS: conntrackd's client mode with that gateway's configuration.
ha_conntrackd() { local g=$1; shift; on "$g" /usr/sbin/conntrackd -C "$BENCH_WORK/ha/conntrackd-$g.conf" "$@"; }

# ha_holds GW: GW has both virtual addresses.
ha_holds() {
  on "$1" ip -4 -o addr show dev eth0 | grep -q " $HA_VIP_PUB/" &&
    on "$1" ip -4 -o addr show dev eth1 | grep -q " $HA_VIP_PRIV/"
}
# ha_master: which gateway holds the virtual addresses now (by ip addr): g1, g2, both or none.
ha_master() {
  local a="" g
  for g in g1 g2; do ha_holds "$g" && a+="$g "; done
  case $a in "g1 g2 ") echo both;; "") echo none;; *) echo "${a% }";; esac
}
# ha_wait_master GW [TIMEOUT]: until GW alone holds both VIPs and its notify script has finished
# the master step. Sets HA_TAKEOVER_MS (time waited).
ha_wait_master() {
  local g=$1 t=${2:-5} t0=${EPOCHREALTIME/./} i
  for i in $(seq $((t * 20))); do
    [ "$(ha_master)" = "$g" ] && [ "$(cat "$BENCH_WORK/ha/state-$g" 2>/dev/null)" = master ] && break
    sleep 0.05
  done
  HA_TAKEOVER_MS=$(( (${EPOCHREALTIME/./} - t0) / 1000 ))
  [ "$(ha_master)" = "$g" ] && [ "$(cat "$BENCH_WORK/ha/state-$g" 2>/dev/null)" = master ]
}

# ha_fail GW: a real failure of GW: every interface but lo down (both bridges' ports and the sync
# link: a dead box). keepalived there goes FAULT (notify fault: -t), the peer takes over.
# HA_FAIL_IFS: the order (default eth0 eth1 eth2); with VRRP on the sync link (ftpwall rules --ha's
# keepalived.conf) eth2 goes first, or the FAULT of eth0 still sends a priority-0 advert over eth2
# and the peer takes over at once, which a dead box does not.
HA_FAIL_IFS=${HA_FAIL_IFS:-eth0 eth1 eth2}
ha_fail() {
  local ifc
  for ifc in $HA_FAIL_IFS; do on "$1" ip link set "$ifc" down; done
  HA_FAIL_T0=${EPOCHREALTIME/./}
}
# ha_restore GW: its interfaces up again; with nopreempt it comes back as backup (notify backup:
# -t, -n: resync from the master). A failback is a failure of the other one.
ha_restore() {
  local ifc
  for ifc in eth0 eth1 eth2; do on "$1" ip link set "$ifc" up; done
}

# ha_failover GW [TIMEOUT]: ha_fail of the current master GW, wait until the peer is master;
# prints the takeover time (fail -> peer holds the VIPs and its notify script is done).
ha_failover() {
  local g=$1 p=${HA_PEER[$1]}
  ha_fail "$g"
  if ha_wait_master "$p" "${2:-5}"; then
    HA_FAILOVER_MS=$(( (${EPOCHREALTIME/./} - HA_FAIL_T0) / 1000 ))
    ok "failover: $g's links down, $p master (VIPs + notify done) after $HA_FAILOVER_MS ms"
  else
    bad "failover: $g's links down, $p not master after ${2:-5} s (master: $(ha_master))"; return 1
  fi
}
# ha_rejoin GW: ha_restore and wait until GW's notify script ran the backup step.
ha_rejoin() {
  local g=$1 i
  ha_restore "$g"
  for i in $(seq 60); do [ "$(cat "$BENCH_WORK/ha/state-$g" 2>/dev/null)" = backup ] && break; sleep 0.05; done
  [ "$(cat "$BENCH_WORK/ha/state-$g" 2>/dev/null)" = backup ] && ok "$g back as backup (notify backup: -t, -n)" ||
    bad "$g not backup after its links came back (state $(cat "$BENCH_WORK/ha/state-$g" 2>/dev/null))"
  sleep 0.5   # the resync it asked for (-n) arrives
}

# --- ftpwalld on both gateways (lib/daemon.sh per gateway) ----------------------------------------

# ha_ftpwalld_conf GW [TOML...]: the pair's ftpwalld configuration (its path on stdout): gateway
# role, backend nftables, corrections (the default), [ha] enabled (session state in the control
# connection's conntrack labels, which conntrackd carries). HA_NO_HA_SECTION=1 leaves [ha] out
# (a diagnostic run: how far the pair gets without it).
ha_ftpwalld_conf() {
  local g=$1 f=$BENCH_WORK/ftpwalld-$1.conf; shift
  {
    printf 'role = "gateway"\nbackend = "nftables"\n'
    local l; for l in "$@"; do printf '%s\n' "$l"; done
    [ "${HA_NO_HA_SECTION:-0}" = 1 ] || printf '\n[ha]\nenabled = true\n'
  } >"$f"
  echo "$f"
}

# ha_daemon_run GW CONF: daemon_run on GW with state dir $BENCH_WORK/state-GW (control socket
# state-GW/control, log ftpwalld-GW.log); sets HA_DPID_GW, HA_DLOG_GW, HA_DSOCK_GW.
ha_daemon_run() {
  local g=$1 conf=$2 DAEMON_HOST=$1 DAEMON_SUFFIX=-$1
  printf -v "HA_DFROM_$g" '%s' "$(cat "$BENCH_WORK/ftpwalld-$g.log" 2>/dev/null | wc -l)"
  daemon_run "$conf" "$g, ${HA_FTPWALLD:+HA_FTPWALLD=$HA_FTPWALLD }config $(basename "$conf")" || return 1
  printf -v "HA_DPID_$g" '%s' "$DPID"; printf -v "HA_DLOG_$g" '%s' "$DLOG"; printf -v "HA_DSOCK_$g" '%s' "$DSOCK"
}
# ha_dlog GW: the lines GW's ftpwalld logged since its last ha_daemon_run (the log file is
# appended to by every column's daemon).
ha_dlog() { local l=HA_DLOG_$1 f=HA_DFROM_$1; tail -n +"$(( ${!f:-0} + 1 ))" "${!l}"; }
# ha_daemon_stop GW: daemon_stop of GW's ftpwalld (exit 0, no error, nothing left on GW). With an
# nft baseline of GW (ha_nft_baseline) the same checks, "nothing left" by ha_daemon_lines.
ha_daemon_stop() {
  local g=$1 DAEMON_HOST=$1 v="HA_DPID_$1" l="HA_DLOG_$1"
  local DPID=${!v:-} DLOG=${!l:-}
  [ -n "$DPID" ] || { ha_daemon_lines_empty "$g"; return 0; }
  say "$g: stopping ftpwalld"
  if [ -e "$BENCH_WORK/nft-base-$g" ]; then
    local rc
    kill -TERM "$DPID" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$DPID" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$DPID" 2>/dev/null && { bad "$g: ftpwalld still running 5 s after SIGTERM"; kill -KILL "$DPID"; }
    wait "$DPID"; rc=$?
    [ "$rc" = 0 ] && ok "$g: ftpwalld exited 0 at SIGTERM: $(grep 'stopped:' "$DLOG" | tail -n 1 | sed 's/^.*stopped: //' | cut -c1-150)" ||
      bad "$g: ftpwalld exited $rc"
    ha_daemon_lines_empty "$g"
    ! ha_dlog "$g" | grep -qE ' (error|critical): ' ||
      { bad "$g: errors in ftpwalld's log:"; ha_dlog "$g" | grep -E ' (error|critical): ' | head -n 5 | sed 's/^/      | /'; }
  else
    daemon_stop
  fi
  printf -v "$v" '%s' ""
}
# ha_nft_baseline GW: GW's nft ruleset now (the admin's, loaded before ftpwalld starts) kept in
# $BENCH_WORK/nft-base-GW; from then on ha_daemon_lines GW reports the nft lines that differ from it
# (ftpwalld's table inet ftpwall while it runs), not the admin's own "ftpwall:" comments.
ha_nft_baseline() { on "$1" nft list ruleset >"$BENCH_WORK/nft-base-$1"; }
# ha_daemon_lines GW: daemon_lines of GW (with a baseline: the iptables tools' ftpwall lines and
# every nft line not in the baseline).
ha_daemon_lines() {
  local DAEMON_HOST=$1 b=$BENCH_WORK/nft-base-$1
  if [ -e "$b" ]; then
    local t
    for t in iptables-legacy-save ip6tables-legacy-save iptables-nft-save ip6tables-nft-save; do
      on "$1" "$t" 2>/dev/null | grep -i ftpwall | sed "s/^/$t: /"
    done
    on "$1" nft list ruleset 2>/dev/null | diff "$b" - | grep '^[<>]' | sed 's/^/nft (not the baseline): /'
    true
  else daemon_lines; fi
}
ha_daemon_lines_empty() {
  local left; left=$(ha_daemon_lines "$1")
  [ -z "$left" ] && ok "$1: nothing of ftpwalld's in any ruleset" ||
    { bad "$1: ftpwalld's lines left:"; echo "$left" | head -n 5 | sed 's/^/      | /'; }
}
# ha_daemons_start: ftpwalld on g1 and g2; 1 if either did not start.
ha_daemons_start() {
  local g r=0
  for g in g1 g2; do ha_daemon_run "$g" "$(ha_ftpwalld_conf "$g")" || r=1; done
  return $r
}
ha_daemons_stop() { local g; for g in g1 g2; do ha_daemon_stop "$g"; done; }
# ha_takeover_report: what ftpwall takeover printed on each gateway (the notify script's log).
ha_takeover_report() {
  local g f
  for g in g1 g2; do
    f=$BENCH_WORK/ha/takeover-$g.log
    [ -s "$f" ] && say "takeover on $g: $(grep -v '^[0-9:.]* /' "$f" | tr '\n' ' ' | cut -c1-220)"
  done
  return 0
}

# ha_takeover_refused GW: the negative control's takeover on GW: ftpwall takeover exited 1 with
# "without [ha]" (the daemon has no [ha] section).
ha_takeover_refused() {
  local f=$BENCH_WORK/ha/takeover-$1.log
  grep -q 'runs without \[ha\] enabled = true' "$f" 2>/dev/null && grep -q ' exit 1$' "$f" &&
    ok "$1: ftpwall takeover refused: $(grep -o 'ftpwalld runs without [^(]*' "$f" | head -n1)(exit 1)" ||
    bad "$1: ftpwall takeover did not answer 'runs without [ha]' with exit 1: $(tr '\n' ' ' <"$f" 2>/dev/null | cut -c1-200)"
}
# ha_refused GW NAME [CLIENT]: GW's ftpwalld log names the refusal NAME of a control connection
# from CLIENT (default $CLIENT_IP) to the VIP's port 21, and its ftpwall status counts exactly one.
ha_refused() {
  local c=${3:-$CLIENT_IP} line
  line=$(ha_dlog "$1" | grep -E "refused $2: $c:[0-9]+ -> $HA_VIP_PUB:21" | head -n 1)
  local s=HA_DSOCK_$1 n
  n=$("$HA_CLI" status --json --socket "${!s}" 2>/dev/null | "$BENCH_PY" -c '
import json, sys
print(json.load(sys.stdin).get("refusals", {}).get(sys.argv[1], 0))' "$2" 2>/dev/null || echo "?")
  [ -n "$line" ] && [ "$n" = 1 ] && ok "$1's ftpwalld: ${line#* warning: } (ftpwall status: $2 = 1)" ||
    bad "$1's ftpwalld: refusal $2 of $c -> $HA_VIP_PUB:21 in the log: ${line:-none}; ftpwall status $2 = $n (1 wanted)"
}

# --- checks -----------------------------------------------------------------------------------------

# ha_private_on_wire PCAP: packets in a capture on the client's link that carry a 10.x address in
# their headers or a 227 announcing 10,x (prints the count).
ha_private_on_wire() {
  local h p
  h=$(tcpdump -n -r "$1" 2>/dev/null | grep -cE '(^| )10\.[0-9]+\.[0-9]+\.[0-9]+')
  p=$(tcpdump -n -r "$1" -A 2>/dev/null | grep -av ' IP ' | grep -acE '227 [^(]*\(10,')
  echo $((h + p))
}
# ha_conntrack GW ARGS: conntrack(8) on GW.
ha_conntrack() { local g=$1; shift; on "$g" conntrack "$@" 2>/dev/null; }

# --- a step-by-step control session (lib/hastep.py) -------------------------------------------------

# hac_start NAME: the client in host c against $SERVER_ADDR, logged in, waiting for its first step
# (HAC_DIR its directory, HAC_PID, HAC_LOG its debug log, HAC_N the last step).
hac_start() {
  bench_files
  HAC_DIR=$BENCH_WORK/hac-$1 HAC_N=0
  rm -rf "$HAC_DIR"; mkdir -p "$HAC_DIR"; chmod 755 "$HAC_DIR"
  HAC_LOG=$HAC_DIR/client.log
  on_bg c "$BENCH_PY" "$BENCH_LIB/hastep.py" --host "$SERVER_ADDR" --dir "$HAC_DIR" --files "$BENCH_WORK/files" \
    --timeout "${HAC_TIMEOUT:-20}" >"$HAC_LOG" 2>&1
  HAC_PID=$BG_PID
}
# hac_step CMD... [--quiet]: one step (see hastep.py); waits for its answer (at most HAC_TIMEOUT + 10 s or
# until the client exits); ok/bad with the answer; an upload is compared on the server's disk.
# HAC_OUT: the answer. 0 when the step succeeded.
_hac_run() {
  HAC_N=$((HAC_N + 1))
  local n=$HAC_N i lim=$(( (${HAC_TIMEOUT:-20} + 10) * 20 ))
  echo "$*" >"$HAC_DIR/.cmd.$n"; mv "$HAC_DIR/.cmd.$n" "$HAC_DIR/cmd.$n"
  for i in $(seq "$lim"); do
    [ -e "$HAC_DIR/done.$n" ] && break
    kill -0 "$HAC_PID" 2>/dev/null || { sleep 0.1; break; }
    sleep 0.05
  done
  HAC_OUT=$(cat "$HAC_DIR/done.$n" 2>/dev/null)
}
hac_step() {
  local quiet=0; [ "${!#}" = --quiet ] && { quiet=1; set -- "${@:1:$#-1}"; }
  _hac_run "$@"
  local n=$HAC_N
  case $HAC_OUT in
    ok\ put\ *)
      local f=${HAC_OUT#ok put * } name=$2; f=${f%% (*}
      if [ "$(sha "$SERVER_ROOT/$f" 2>/dev/null)" = "$(sha "$BENCH_WORK/files/$name")" ]; then
        [ $quiet = 1 ] || ok "step $n: $* byte-exact on the server's disk (${HAC_OUT##* (}"
      else bad "step $n: $*: the upload differs on the server ($f)"; return 1; fi;;
    ok*) [ $quiet = 1 ] || ok "step $n: $*: ${HAC_OUT#ok }";;
    "") bad "step $n: $*: no answer (client $(kill -0 "$HAC_PID" 2>/dev/null && echo still running || echo exited))"
        tail -n 6 "$HAC_LOG" | sed 's/^/      | /'; return 1;;
    *) bad "step $n: $*: ${HAC_OUT}"; tail -n 6 "$HAC_LOG" | sed 's/^/      | /'; return 1;;
  esac
}
# hac_step_fails ERE CMD...: a step that must fail (a negative control): ok when the client answers
# "err ..." matching ERE, bad when it succeeded or failed otherwise. The client exits after it.
hac_step_fails() {
  local ere=$1; shift
  _hac_run "$@"
  case $HAC_OUT in
    err*) if [[ $HAC_OUT =~ $ere ]]; then ok "step $HAC_N: $* fails as it must: ${HAC_OUT#err }"; return 0; fi
          bad "step $HAC_N: $* failed, but not as expected ($ere): ${HAC_OUT#err }";;
    ok*) bad "step $HAC_N: $* succeeded where it must fail: ${HAC_OUT#ok }";;
    *) bad "step $HAC_N: $*: no answer";;
  esac
  tail -n 6 "$HAC_LOG" | sed 's/^/      | /'; return 1
}
# hac_steps "CMD" "CMD"...: hac_step for each, stops at the first failure.
hac_steps() { local c; for c in "$@"; do hac_step $c || return 1; done; }
# hac_end [RC]: QUIT if the client still runs (221 wanted), then the client's exit status (RC
# wanted, default 0; 1 after hac_step_fails: the client exits at a failed step).
hac_end() {
  local rc want=${1:-0}
  if [ "$want" = 0 ] && kill -0 "$HAC_PID" 2>/dev/null; then
    hac_step quit && case $HAC_OUT in "ok 221"*) ;; *) bad "QUIT answered: $HAC_OUT";; esac
  fi
  for _ in $(seq 50); do kill -0 "$HAC_PID" 2>/dev/null || break; sleep 0.1; done
  kill "$HAC_PID" 2>/dev/null
  wait "$HAC_PID"; rc=$?
  [ "$rc" = "$want" ] && ok "the control session ended, client exit $rc" || bad "client exit $rc (wanted $want)"
}
# hac_227s: the 227 addresses the client received (dotted quads, unique).
hac_227s() {
  grep -aoE "\*resp\* '227 [^(]*\([0-9,]+\)" "$HAC_LOG" | grep -oE '\([0-9]+,[0-9]+,[0-9]+,[0-9]+' | tr -d '(' | tr ',' . | sort | uniq -c |
    awk '{ printf "%s x %s ", $1, $2 }'
}

# --- the two columns every HA story runs ------------------------------------------------------------

# nf_nat_ftp's sequence adjustment (a 227 rewritten 10,0,0,10 -> 198,51,100,1 grows by 3 bytes) is
# set without a conntrack event (nf_ct_seqadj_set caches none; ctnetlink puts CTA_SEQ_ADJ_* in an
# event only for IPCT_SEQADJ), so an event-driven conntrackd never carries it: after a failover
# the client drops the first 3 bytes of the next reply ("226 ...") as old data and the control
# connection dies. A dump carries it (conntrackd sends NTA_NAT_SEQ_ADJ when its cache has it).
# PollSecs 1 (polling instead of events) carries it, but then no expectation is replicated (none
# is ever in the backup's external cache). So the kernel column keeps the event-driven conntrackd
# of the ftpwalld column and adds a push every HA_KERNEL_PUSH seconds (default 0.5) on the master:
# conntrackd -R (its internal cache from a kernel dump, adjustments included) and -B (a bulk
# update to the backup). A rewritten 227 must be a push old before a failure. HA_KERNEL_PUSH=
# (empty) shows the loss; HA_POLL_SECS=N sets PollSecs N in both gateways' conntrackd.
HA_KERNEL_PUSH=${HA_KERNEL_PUSH-0.5}
HA_PUSH_PID=""
ha_push_start() {
  [ -n "$HA_KERNEL_PUSH" ] || return 0
  (
    trap 'exit 0' TERM
    while :; do
      for g in g1 g2; do
        [ "$(cat "$BENCH_WORK/ha/state-$g" 2>/dev/null)" = master ] && ha_holds "$g" || continue
        ha_conntrackd "$g" -R >/dev/null 2>&1; ha_conntrackd "$g" -B >/dev/null 2>&1
      done
      sleep "$HA_KERNEL_PUSH"
    done
  ) &
  HA_PUSH_PID=$!
  say "kernel column: conntrackd -R; -B on the master every $HA_KERNEL_PUSH s (the adjustments nf_nat_ftp makes raise no event)"
}
ha_push_stop() {
  [ -n "$HA_PUSH_PID" ] || return 0
  kill -TERM "$HA_PUSH_PID" 2>/dev/null; wait "$HA_PUSH_PID" 2>/dev/null; HA_PUSH_PID=""
}
HA_COLUMNS=${HA_COLUMNS:-kernel ftpwalld ftpwalld-no-ha}
# ha_settle: the wait between a session's last step and a failure the story causes: the kernel
# column's push interval and some (1.5 s); the ftpwalld column HA_FTPWALLD_SETTLE (0.3 s: its
# state is in the labels, whose changes are conntrack events conntrackd sends at once).
HA_FTPWALLD_SETTLE=${HA_FTPWALLD_SETTLE:-0.3}
ha_settle() { case ${HA_COL:-} in ftpwalld*) sleep "$HA_FTPWALLD_SETTLE";; *) sleep 1.5;; esac; }

# ha_column kernel|ftpwalld FUNC ARGS...: one column of a story, g1 master at its start, cleaned up
# after (pair stopped, conntrack flushed, helper rules or daemons gone, nothing of ftpwalld's left).
#   kernel:   raw CT --helper ftp on both gateways, the push loop above on the master;
#   ftpwalld: kernel helper off, ftpwalld on both (ha_ftpwalld_conf), the accept-mark rule in
#             FORWARD, HA_FTPWALLD=1 (the notify script runs ftpwall takeover), event-driven conntrackd.
#   ftpwalld-no-ha: the negative control: the ftpwalld column without the [ha] section
#             (HA_NO_HA_SECTION=1; ftpwall takeover answers an error) and the client's timeout
#             HAC_TIMEOUT=HA_NEG_TIMEOUT (3 s): the story's FUNC asserts the step that must fail.
# HA_COLUMNS (default "kernel ftpwalld ftpwalld-no-ha") picks columns. HA_COL names the running one.
ha_column() {
  local col=$1; shift
  case " $HA_COLUMNS " in *" $col "*) ;; *) say "column $col skipped (HA_COLUMNS=$HA_COLUMNS)"; return 0;; esac
  HA_COL=$col
  case $col in
    kernel)
      say "column kernel helper + conntrackd (ExpectationSync ftp, push every ${HA_KERNEL_PUSH:-(off)} s)"
      ha_kernel_helper on
      ha_start
      ha_push_start
      "$@"
      ha_push_stop
      ha_stop
      ha_kernel_helper off;;
    ftpwalld|ftpwalld-no-ha)
      local HA_NO_HA_SECTION=${HA_NO_HA_SECTION:-} HAC_TIMEOUT=${HAC_TIMEOUT:-}
      [ "$col" = ftpwalld-no-ha ] && HA_NO_HA_SECTION=1 HAC_TIMEOUT=${HA_NEG_TIMEOUT:-3}
      [ -n "$HAC_TIMEOUT" ] || unset HAC_TIMEOUT
      if [ "$col" = ftpwalld-no-ha ]; then say "column ftpwalld-no-ha (negative control): ftpwalld on both gateways without [ha], client timeout $HAC_TIMEOUT s"
      else say "column ftpwalld on both gateways (kernel helper off${HA_NO_HA_SECTION:+, HA_NO_HA_SECTION=$HA_NO_HA_SECTION: no [ha] section})"; fi
      ha_ftpwalld_firewall
      HA_FTPWALLD=1
      if ha_daemons_start; then
        ha_start
        "$@"
        ha_takeover_report
        ha_stop
      else
        bad "ftpwalld column: ftpwalld did not start on both gateways (above); the column's sessions were not tried"
      fi
      ha_daemons_stop
      HA_FTPWALLD=""
      local g; for g in g1 g2; do on "$g" iptables-legacy -D FORWARD -m mark --mark 0x20000000/0x20000000 -m comment --comment ha-accept-mark -j ACCEPT; done;;
    *) fail "ha_column kernel|ftpwalld|ftpwalld-no-ha";;
  esac
  local g; for g in g1 g2; do ha_conntrack "$g" -F; ha_conntrack "$g" -F expect; done
  for g in g1 g2; do [ -z "$(ha_daemon_lines "$g")" ] || bad "$g: ftpwalld's lines left after column $col"; done
  ok "column $col done: nothing of ftpwalld's on g1 or g2 (daemon_lines)"
  HA_COL=""
}
