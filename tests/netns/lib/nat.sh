# SPDX-License-Identifier: GPL-2.0-or-later
# ftpwalld behind NAT (issue 5), shared by the stories tests/netns/31N-*: the daemon on the gateway,
# a gateway ruleset that drops INVALID and counts what of the control connection reaches INPUT, and
# checks of the announcements as the client received them. Source after lib/bench.sh.

FTPWALLD=${FTPWALL_BUILD_DIR:-}/src/daemon/ftpwalld

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
  [ "$left" = 0 ] && ok "no ftpwall chain or rule left" || bad "$left ftpwall lines left after SIGTERM"
  grep -E ' (error|critical): ' "$DLOG" | head -n 5 | sed 's/^/    /' | grep . && bad "errors in ftpwalld's log"
  return 0
}

# nat_gateway_firewall: FORWARD policy DROP accepting NEW sessions to 21 and ESTABLISHED; INVALID
# dropped in FORWARD and INPUT (counted); two counting rules at the top of INPUT see any control
# packet that lost its NAT and landed on the gateway itself.
nat_gateway_firewall() {
  on g iptables-legacy -A FORWARD -m conntrack --ctstate INVALID -m comment --comment nat-invalid -j DROP
  on g iptables-legacy -A FORWARD -m conntrack --ctstate ESTABLISHED -j ACCEPT
  on g iptables-legacy -A FORWARD -p tcp --syn --dport 21 -m conntrack --ctstate NEW -j ACCEPT
  on g iptables-legacy -A INPUT -p tcp --dport 21 -m comment --comment nat-input-21
  on g iptables-legacy -A INPUT -p tcp --sport 21 -m comment --comment nat-input-21
  on g iptables-legacy -A INPUT -m conntrack --ctstate INVALID -m comment --comment nat-invalid -j DROP
  say "gateway: FORWARD DROP + NEW to 21 + ESTABLISHED; INVALID dropped in FORWARD and INPUT; port 21 counted in INPUT"
}

# nat_counter COMMENT: packets matched by the rules carrying that comment (filter table, all chains).
nat_counter() {
  on g iptables-legacy -L -n -v -x | awk -v c="/* $1 */" 'index($0, c) { n += $1 } END { print n + 0 }'
}

# nat_related_for_helper on|off: the kernel helper's reference column needs RELATED of helper ftp.
nat_related_for_helper() {
  local op; case $1 in on) op=-I;; off) op=-D;; esac
  on g iptables-legacy "$op" FORWARD -m conntrack --ctstate RELATED -m helper --helper ftp -j ACCEPT
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
