# SPDX-License-Identifier: GPL-2.0-or-later
# ftpwalld behind NAT (issue 5), shared by the stories tests/netns/31N-*: the daemon on the gateway,
# a gateway ruleset that drops INVALID and counts what of the control connection reaches INPUT, and
# checks of the announcements as the client received them. Source after lib/bench.sh.

FTPWALLD=${FTPWALL_BUILD_DIR:-}/src/daemon/ftpwalld
# The tool the gateway's own rules are written with: iptables-legacy, or iptables-nft after
# nat_move_to_iptables_nft (the nftables columns; Debian 12's `iptables`).
NAT_IPT=iptables-legacy

# nat_need_daemon: skip (fail under CI) when ftpwalld is not built.
nat_need_daemon() {
  [ -x "$FTPWALLD" ] || skip "ftpwalld not built in FTPWALL_BUILD_DIR=${FTPWALL_BUILD_DIR:-unset}"
}

# ftpwalld_start [ARGS...]: ftpwalld on g (own hooks, debug log in $DLOG, state records in
# $BENCH_WORK/state unless --state-dir is given), waits for its ready file.
# Sets DPID. The kernel helper must be off (the story detaches it).
ftpwalld_start() {
  DLOG=$BENCH_WORK/ftpwalld.log
  local ready=$BENCH_WORK/ftpwalld.ready
  rm -f "$ready"
  # Never the host's /run/ftpwalld: stories run side by side, each with its own records.
  case " $* " in *" --state-dir "*) ;; *) set -- --state-dir "$BENCH_WORK/state" "$@";; esac
  on_bg g "$FTPWALLD" --foreground --log-level debug --ready-file "$ready" "$@" 2>>"$DLOG"
  DPID=$BG_PID
  local i
  for i in $(seq 100); do [ -s "$ready" ] && break; sleep 0.1; done
  [ -s "$ready" ] || { tail -n 20 "$DLOG"; fail "ftpwalld did not start"; }
  ok "ftpwalld started on the gateway (pid $DPID, kernel helper off)"
}

# ftpwalld_stop: SIGTERM, exit status 0, no FTPWALL chain or ftpwall rule left.
ftpwalld_stop() {
  kill -TERM "$DPID" 2>/dev/null
  local i rc
  for i in $(seq 50); do kill -0 "$DPID" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$DPID" 2>/dev/null && bad "ftpwalld still running 5 s after SIGTERM"
  wait "$DPID"; rc=$?
  [ "$rc" = 0 ] && ok "ftpwalld exited 0 at SIGTERM" || bad "ftpwalld exited $rc"
  grep 'stopped:' "$DLOG" | tail -n 1 | sed 's/^.*stopped:/    stopped:/'
  local left; left=$(on g iptables-legacy-save | grep -ci ftpwall)
  # The nftables backend: table inet ftpwall, and its rule in the iptables-nft chains.
  left=$((left + $(on g nft list ruleset 2>/dev/null | grep -ci ftpwall) + $(on g iptables-nft-save 2>/dev/null | grep -ci ftpwall)))
  [ "$left" = 0 ] && ok "no ftpwall chain or rule left (iptables-legacy, nft, iptables-nft)" || bad "$left ftpwall lines left after SIGTERM"
  grep -E ' (error|critical): ' "$DLOG" | head -n 5 | sed 's/^/    /' | grep . && bad "errors in ftpwalld's log"
  return 0
}

# nat_gateway_firewall: FORWARD policy DROP accepting NEW sessions to 21 and ESTABLISHED; INVALID
# dropped in FORWARD and INPUT (counted); two counting rules at the top of INPUT see any control
# packet that lost its NAT and landed on the gateway itself.
nat_gateway_firewall() {
  on g $NAT_IPT -A FORWARD -m conntrack --ctstate INVALID -m comment --comment nat-invalid -j DROP
  on g $NAT_IPT -A FORWARD -m conntrack --ctstate ESTABLISHED -j ACCEPT
  on g $NAT_IPT -A FORWARD -p tcp --syn --dport 21 -m conntrack --ctstate NEW -j ACCEPT
  on g $NAT_IPT -A INPUT -p tcp --dport 21 -m comment --comment nat-input-21
  on g $NAT_IPT -A INPUT -p tcp --sport 21 -m comment --comment nat-input-21
  on g $NAT_IPT -A INPUT -m conntrack --ctstate INVALID -m comment --comment nat-invalid -j DROP
  say "gateway: FORWARD DROP + NEW to 21 + ESTABLISHED; INVALID dropped in FORWARD and INPUT; port 21 counted in INPUT"
}

# nat_counter COMMENT: packets matched by the rules carrying that comment (filter table, all chains).
nat_counter() {
  on g $NAT_IPT -L -n -v -x 2>/dev/null | awk -v c="/* $1 */" 'index($0, c) { n += $1 } END { print n + 0 }'
}

# nat_related_for_helper on|off: the kernel helper's reference column needs RELATED of helper ftp.
nat_related_for_helper() {
  local op; case $1 in on) op=-I;; off) op=-D;; esac
  on g iptables-legacy "$op" FORWARD -m conntrack --ctstate RELATED -m helper --helper ftp -j ACCEPT
}

# nat_move_to_iptables_nft: from here on the gateway's firewall and NAT are iptables-nft rules
# (Debian 12's `iptables`), as on a host whose admin never used iptables-legacy: everything the
# topology and the story wrote into the legacy tables so far is moved over (iptables-legacy-save |
# iptables-nft-restore), the legacy tables are left empty with policy ACCEPT (so backend = auto
# finds no legacy rule), conntrack is flushed, and NAT_IPT=iptables-nft for the helpers above.
# The kernel helper must be off (kernel_helper writes legacy raw rules).
nat_move_to_iptables_nft() {
  local save=$BENCH_WORK/legacy-moved.rules
  on g iptables-legacy-save | grep -v '^#' >"$save"
  on g iptables-nft-restore <"$save" || fail "iptables-nft-restore of the legacy ruleset"
  awk '/^\*/ || /^COMMIT/ { print } /^:/ { if ($2 != "-") print $1 " ACCEPT [0:0]" }' "$save" | on g iptables-legacy-restore ||
    fail "emptying the legacy tables"
  local n; n=$(on g iptables-legacy-save | grep -c '^-A')
  [ "$n" = 0 ] || fail "$n rules left in the legacy tables"
  on g conntrack -F >/dev/null 2>&1 || true
  NAT_IPT=iptables-nft
  say "gateway firewall moved to iptables-nft ($(grep -c '^-A' "$save") rules, policies kept); legacy tables empty, policy ACCEPT"
}

# nat_nft_config: a configuration file with backend = "nftables" (its path on stdout).
nat_nft_config() {
  printf 'backend = "nftables"\n' >"$BENCH_WORK/ftpwalld-nft.conf"
  echo "$BENCH_WORK/ftpwalld-nft.conf"
}

# nat_nft_hook_rule: the rule ftpwalld (nftables backend) inserts as rule 1 of the iptables-nft
# chains at its hooks, as iptables-nft-save prints it (CHAIN: FORWARD, INPUT or OUTPUT).
nat_nft_hook_rule() {
  printf -- '-A %s -m mark --mark 0x20000000/0x20000000 -m comment --comment "ftpwall hook" -j ACCEPT' "${1:-FORWARD}"
}

# nat_nft_check_start: the start line names backend nftables; the hook rule is rule 1 of FORWARD
# in iptables-nft-save; nothing of ftpwalld's is in the legacy tables.
nat_nft_check_start() {
  local line; line=$(grep 'started:' "$DLOG" | tail -n 1)  # the last start (DLOG is appended to)
  case "$line" in
    *"backend nftables ("*) ok "start line: backend nftables (${line#*backend nftables (}" ;;
    *) bad "start line does not name backend nftables: $line" ;;
  esac
  local first; first=$(on g iptables-nft-save 2>/dev/null | grep -m1 '^-A FORWARD')
  [ "$first" = "$(nat_nft_hook_rule FORWARD)" ] && ok "iptables-nft-save: rule 1 of FORWARD is: $first" ||
    bad "iptables-nft-save: rule 1 of FORWARD is: ${first:-none}"
  local legacy; legacy=$(on g iptables-legacy-save | grep -ci ftpwall)
  [ "$legacy" = 0 ] && ok "nothing of ftpwalld's in the legacy tables" || bad "$legacy ftpwall lines in the legacy tables"
}

# nat_received_227 LOG: the 227 lines the client received, as lftp/curl/ftplib logged them.
nat_received_227() { grep -aoE '227 [^(]*\([0-9,]+\)' "$1" | sed 's/^227 [^(]*//'; }

# nat_check_227 WANT_ADDR [NOT_ADDR]: every 227 in the last client log ($XFER_LOG) announces
# WANT_ADDR (dotted) and none NOT_ADDR. Prints what it saw.
nat_check_227() {
  local want=${1//./,} not=${2//./,} got n
  got=$(nat_received_227 "$XFER_LOG" | sort | uniq -c | awk '{print $2}' | sed 's/,[0-9]*,[0-9]*)$/)/' | sort -u | tr '\n' ' ')
  n=$(nat_received_227 "$XFER_LOG" | wc -l)
  if [ "$n" = 0 ]; then bad "no 227 in $(basename "$XFER_LOG")"; return 1; fi
  if [ "$got" != "($want) " ]; then bad "client received 227 with $got(want ($want))"; return 1; fi
  if [ -n "$not" ] && nat_received_227 "$XFER_LOG" | grep -q "($not,"; then bad "client received the private $2"; return 1; fi
  ok "client received $n x 227 announcing ($want,...)"
}

# nat_wire_227 PCAP: the 227 lines in a capture (tcpdump -A), one per line.
nat_wire_227() { tcpdump -n -r "$1" -A 2>/dev/null | grep -av " IP " | grep -aoE '227 [^(]*\([0-9,]+\)' | sed 's/^227 [^(]*//'; }
