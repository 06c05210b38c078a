# SPDX-License-Identifier: GPL-2.0-or-later
# ftpwalld run by a story on its firewall host $FW, shared by lib/v6.sh and lib/ftps.sh: start with
# a configuration file of the story's (own state directory and control socket, debug log in $DLOG,
# wait for the ready file) and a checked stop (SIGTERM, exit 0, no error logged, nothing of
# ftpwalld's left in any ruleset). Source after lib/bench.sh.

DAEMON_FTPWALLD=${FTPWALL_BUILD_DIR:-}/src/daemon/ftpwalld

# The host and the files of one daemon: $FW, $BENCH_WORK/state, ftpwalld.log unless the caller sets
# DAEMON_HOST (another host, e.g. g1 of lib/ha.sh's pair) and DAEMON_SUFFIX (state$SUFFIX,
# ftpwalld$SUFFIX.log: two daemons of one story side by side), e.g. as locals of a wrapper.

# daemon_lines: ftpwalld's lines in every ruleset of $FW (iptables-legacy-save, ip6tables-legacy-save,
# iptables-nft-save, ip6tables-nft-save, nft list ruleset), each prefixed by the tool.
daemon_lines() {
  local t host=${DAEMON_HOST:-$FW}
  for t in iptables-legacy-save ip6tables-legacy-save iptables-nft-save ip6tables-nft-save; do
    on "$host" "$t" 2>/dev/null | grep -i ftpwall | sed "s/^/$t: /"
  done
  on "$host" nft list ruleset 2>/dev/null | grep -i ftpwall | sed 's/^/nft: /'
  true
}

# daemon_run CONF WHAT: ftpwalld on $FW with CONF (--state-dir $BENCH_WORK/state, never the host's
# /run/ftpwalld: stories run side by side); sets DPID, DLOG, DSOCK; 1 (and the log's tail) when it
# did not start. WHAT names it in the transcript.
daemon_run() {
  local conf=$1 what=$2 host=${DAEMON_HOST:-$FW} sfx=${DAEMON_SUFFIX:-}
  local ready=$BENCH_WORK/ftpwalld$sfx.ready
  DLOG=$BENCH_WORK/ftpwalld$sfx.log DSOCK=$BENCH_WORK/state$sfx/control
  rm -f "$ready"
  on_bg "$host" "$DAEMON_FTPWALLD" --foreground --state-dir "$BENCH_WORK/state$sfx" -c "$conf" --log-level debug \
    --ready-file "$ready" 2>>"$DLOG"
  DPID=$BG_PID
  local i
  for i in $(seq 100); do [ -s "$ready" ] && break; kill -0 "$DPID" 2>/dev/null || break; sleep 0.1; done
  if [ ! -s "$ready" ]; then
    bad "ftpwalld ($what) did not start on $host:"; tail -n 8 "$DLOG" | sed 's/^/      | /'
    kill "$DPID" 2>/dev/null; wait "$DPID" 2>/dev/null; DPID=""
    return 1
  fi
  ok "ftpwalld on $host ($what): $(grep 'started:' "$DLOG" | tail -n 1 | sed 's/^.*started: //' | cut -c1-150)"
}

# daemon_stop: SIGTERM, exit 0 within 5 s, no error in the log, nothing of ftpwalld's left
# (daemon_lines). Prints the stop line.
daemon_stop() {
  [ -n "${DPID:-}" ] || return 0
  kill -TERM "$DPID" 2>/dev/null
  local i rc left
  for i in $(seq 50); do kill -0 "$DPID" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$DPID" 2>/dev/null && { bad "ftpwalld still running 5 s after SIGTERM"; kill -KILL "$DPID"; }
  wait "$DPID"; rc=$?; DPID=""
  [ "$rc" = 0 ] && ok "ftpwalld exited 0 at SIGTERM: $(grep 'stopped:' "$DLOG" | tail -n 1 | sed 's/^.*stopped: //' | cut -c1-150)" ||
    bad "ftpwalld exited $rc"
  left=$(daemon_lines)
  if [ -z "$left" ]; then ok "nothing of ftpwalld's left (ip[6]tables-legacy-save, ip[6]tables-nft-save, nft list ruleset)"
  else bad "ftpwall lines left after SIGTERM:"; echo "$left" | head -n 8 | sed 's/^/      | /'; fi
  if grep -qE ' (error|critical): ' "$DLOG"; then
    bad "errors in ftpwalld's log:"; grep -E ' (error|critical): ' "$DLOG" | head -n 5 | sed 's/^/      | /'
  fi
  return 0
}
