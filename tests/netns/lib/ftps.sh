# SPDX-License-Identifier: GPL-2.0-or-later
# FTPS through ftpwalld (issue 14), shared by the stories tests/netns/37N-*: TLS servers (vsftpd
# ssl_enable, proftpd mod_tls from proftpd-mod-crypto), TLS clients (lftp ftp:ssl-force, curl
# --ssl-reqd, ftplib FTP_TLS in lib/ftpsc.py), the daemon with an [ftps] section on the firewall
# host, and probes of the servers' passive range from both client addresses. Source after
# lib/bench.sh. Kernel helper off, and no static passive range is ever opened: only ftpwalld's
# openings let a data connection through.

. "$(dirname "${BASH_SOURCE[0]}")/daemon.sh"
FTPS_D=$DAEMON_FTPWALLD
FTPS_CLI=${FTPWALL_BUILD_DIR:-}/src/ftpwall
FTPS_RANGE=${FTPS_RANGE:-40000-40009}   # the servers' passive range (and [ftps] passive_ports)
FTPS_PROBE_PORT=${FTPS_PROBE_PORT:-40009} # a listener of the story's own inside that range
FTPS_IPT=iptables-legacy                # the tool the firewall host's own rules are written with

ftps_need_daemon() {
  [ -x "$FTPS_D" ] || skip "ftpwalld not built in FTPWALL_BUILD_DIR=${FTPWALL_BUILD_DIR:-unset}"
  [ -x "$FTPS_CLI" ] || skip "ftpwall not built in FTPWALL_BUILD_DIR=${FTPWALL_BUILD_DIR:-unset}"
}

# --- hosts ----------------------------------------------------------------------------------------

# ftps_topo NAME [TOOL]: the bench topology NAME (lib/bench.sh), each host with a resolver that
# answers nothing (/etc/netns/NAME/resolv.conf -> 127.0.0.1, removed with the hosts, also when the
# story fails). TOOL (iptables-legacy | iptables-nft) writes the firewall host's policy and rules
# (ftps_firewall); with iptables-nft no legacy table is ever created on it.
ftps_topo() {
  FTPS_IPT=${2:-iptables-legacy}
  BENCH_GATEWAY_IPT=$FTPS_IPT topo "$1"
}

# ftps_firewall [PORT...]: the admin's firewall of the topology's firewall host, policy DROP, with
# only ESTABLISHED and NEW connections to the control port 21 (and PORT...) accepted: on a gateway
# in FORWARD (policy DROP from the topology), on the server host in INPUT (lo accepted too).
ftps_firewall() {
  local p ports="21${*:+ $*}"
  if [ "$FW" = s ]; then
    on s $FTPS_IPT -A INPUT -i lo -j ACCEPT
    on s $FTPS_IPT -A INPUT -m conntrack --ctstate ESTABLISHED -j ACCEPT
    for p in $ports; do on s $FTPS_IPT -A INPUT -p tcp --syn --dport "$p" -m conntrack --ctstate NEW -j ACCEPT; done
    on s $FTPS_IPT -P INPUT DROP
    say "server host ($FTPS_IPT): INPUT policy DROP; lo, ESTABLISHED, NEW to ${ports// /, } accepted"
  else
    on g $FTPS_IPT -A FORWARD -m conntrack --ctstate ESTABLISHED -j ACCEPT
    for p in $ports; do on g $FTPS_IPT -A FORWARD -p tcp --syn --dport "$p" -m conntrack --ctstate NEW -j ACCEPT; done
    say "gateway ($FTPS_IPT): FORWARD policy DROP; ESTABLISHED, NEW to ${ports// /, } accepted"
  fi
}

# ftps_dnat_control: on gateway-server-nat, DNAT of the public address's port 21 to the server,
# written with $FTPS_IPT (gateway_dnat_control writes legacy rules).
ftps_dnat_control() {
  on g $FTPS_IPT -t nat -A PREROUTING -d "$GW_PUBLIC" -p tcp --dport 21 -j DNAT --to-destination "$SERVER_IP:21"
}

# --- servers --------------------------------------------------------------------------------------

# ftps_cert: a throw-away self-signed certificate and key in $BENCH_WORK (cert.pem, key.pem).
ftps_cert() {
  [ -s "$BENCH_WORK/cert.pem" ] && return 0
  openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=ftpwall-bench" \
    -keyout "$BENCH_WORK/key.pem" -out "$BENCH_WORK/cert.pem" 2>/dev/null || fail "openssl could not make a certificate"
  chmod 600 "$BENCH_WORK/key.pem"
}

# ftps_vsftpd_snippet [PASV_ADDRESS]: vsftpd with TLS required for anonymous logins and data, the
# passive range $FTPS_RANGE (and pasv_address): the snippet's path on stdout.
ftps_vsftpd_snippet() {
  ftps_cert
  local f=$BENCH_WORK/vsftpd-tls.snippet
  cat >"$f" <<EOF
ssl_enable=YES
allow_anon_ssl=YES
force_anon_logins_ssl=YES
force_anon_data_ssl=YES
rsa_cert_file=$BENCH_WORK/cert.pem
rsa_private_key_file=$BENCH_WORK/key.pem
ssl_ciphers=HIGH
require_ssl_reuse=NO
connect_timeout=3
EOF
  server_settings vsftpd --pasv "$FTPS_RANGE" ${1:+--pasv-address "$1"} >>"$f"
  echo "$f"
}

# ftps_proftpd_snippet [TLSREQUIRED]: proftpd with mod_tls (unpacked by install-peers from
# proftpd-mod-crypto, loaded from $BENCH_PEERS/usr/lib/proftpd), TLSRequired TLSREQUIRED (default
# auth+data: TLS for the login and the data connections, but not for the control channel, so CCC
# is allowed; "on" = ctrl+data refuses CCC with 534), TLS 1.2 (its close_notify alerts are visible
# as such on the wire, 0x15), the passive range $FTPS_RANGE; TLS log in $BENCH_WORK/proftpd-tls.log.
ftps_proftpd_snippet() {
  ftps_cert
  [ -f "$BENCH_PEERS/usr/lib/proftpd/mod_tls.so" ] || skip "proftpd's mod_tls not unpacked: run tests/netns/lib/install-peers"
  # proftpd reads the key as root before it drops privileges; the key stays 0600.
  local f=$BENCH_WORK/proftpd-tls.snippet
  cat >"$f" <<EOF
<IfModule mod_dso.c>
  ModulePath $BENCH_PEERS/usr/lib/proftpd
  LoadModule mod_tls.c
</IfModule>
TLSEngine on
TLSRequired ${1:-auth+data}
TLSProtocol TLSv1.2
TLSRSACertificateFile $BENCH_WORK/cert.pem
TLSRSACertificateKeyFile $BENCH_WORK/key.pem
TLSOptions NoSessionReuseRequired
TLSLog $BENCH_WORK/proftpd-tls.log
EOF
  server_settings proftpd --pasv "$FTPS_RANGE" >>"$f"
  echo "$f"
}

# ftps_implicit_start: a second vsftpd on $SERVER_IP:990 with implicit_ssl=YES (TLS from the first
# byte, implicit FTPS), the configuration of the running vsftpd (server_start vsftpd SNIPPET from
# ftps_vsftpd_snippet) otherwise, the same root. Waits until it listens; killed by cleanup.
ftps_implicit_start() {
  local conf=$BENCH_WORK/vsftpd-990.conf log=$BENCH_WORK/vsftpd-990.log i
  sed -e '/^listen_port=/d' -e "s|^vsftpd_log_file=.*|vsftpd_log_file=$log.xfer|" "$BENCH_WORK/vsftpd.conf" >"$conf"
  printf 'listen_port=990\nimplicit_ssl=YES\n' >>"$conf"
  on_bg s vsftpd "$conf" >"$log" 2>&1 0<>"$log"
  for i in $(seq 50); do on s ss -Hltnp "sport = :990" 2>/dev/null | grep -q "pid=$BG_PID," && { say "vsftpd (implicit_ssl) listening on $SERVER_IP:990"; return 0; }; sleep 0.1; done
  sed 's/^/    /' "$log" >&2; fail "vsftpd on 990 did not start"
}

# ftps_implicit_transfer [--expect fail]: curl ftps://$SERVER_ADDR:990/ (implicit FTPS), PASV, one
# download of f65537 (byte-exact) or, expected to fail, of f1500 within 4 s.
ftps_implicit_transfer() {
  local expect=pass f=f65537 t=6 rc=0
  [ "${1:-}" = --expect ] && expect=$2
  [ "$expect" = fail ] && { f=f1500; t=4; }
  BENCH_XFER_N=$((BENCH_XFER_N + 1))
  local log=$BENCH_WORK/implicit-$BENCH_XFER_N.log out=$BENCH_WORK/implicit-$BENCH_XFER_N.$f
  XFER_LOG=$log
  on c timeout 40 curl -sS -v -k --ftp-pasv --disable-epsv --no-ftp-skip-pasv-ip --connect-timeout "$t" --max-time $((t * 3)) \
    "ftps://$SERVER_ADDR:990/$f" -o "$out" >"$log" 2>&1 || rc=$?
  local sent; sent=$(_sent_data_cmds curl "$log")
  if [ "$expect" = fail ]; then
    if [ $rc != 0 ] && _logged_in curl "$log" && [ "$sent" = PASV ]; then ok "implicit FTPS (990) PASV curl: fails as expected (TLS login ok, PASV sent)"; return 0; fi
    bad "implicit FTPS (990) curl: exit $rc, sent '${sent:-none}' (wanted a failure in the data connection)"; _log_tail "$log"; return 1
  fi
  if [ $rc = 0 ] && [ "$sent" = PASV ] && [ "$(sha "$out")" = "$(sha "$BENCH_WORK/files/$f")" ]; then
    ok "implicit FTPS (990) PASV curl: $f byte-exact"; return 0
  fi
  bad "implicit FTPS (990) curl: exit $rc, sent '${sent:-none}'"; _log_tail "$log"; return 1
}

# --- the daemon -----------------------------------------------------------------------------------

# ftps_daemon_start MODE [BACKEND [EXTRA_TOML]]: ftpwalld on $FW (role gateway on g, server on s),
# backend BACKEND (default iptables-legacy), [ftps] mode = MODE with passive_ports =
# ${FTPS_CONF_RANGE:-$FTPS_RANGE} and max_lifetime = ${FTPS_MAX_LIFETIME:-120} (MODE none: no
# [ftps] section at all, the default); EXTRA_TOML lines appended after it (a [[ftps.server]]
# table, ...). Debug log in $DLOG (appended to), state and control socket in
# $BENCH_WORK/state. Sets DPID, DLOG, DSOCK. Returns 1 (marked bad) if it does not start.
ftps_daemon_start() {
  local mode=$1 backend=${2:-iptables-legacy} extra=${3:-}
  local conf=$BENCH_WORK/ftpwalld-$mode.conf
  DLOG=$BENCH_WORK/ftpwalld.log DSOCK=$BENCH_WORK/state/control
  { [ "$FW" = s ] && echo 'role = "server"' || echo 'role = "gateway"'
    echo "backend = \"$backend\""
    if [ "$mode" != none ]; then
      echo
      echo '[ftps]'
      echo "mode = \"$mode\""
      echo "passive_ports = \"${FTPS_CONF_RANGE:-$FTPS_RANGE}\""
      echo "max_lifetime = ${FTPS_MAX_LIFETIME:-120}"
    fi
    [ -n "$extra" ] && printf '%s\n' "$extra"; } >"$conf"
  echo "---- ftpwalld start: mode $mode, backend $backend" >>"$BENCH_WORK/ftpwalld.log"
  daemon_run "$conf" "[ftps] mode $mode, backend $backend"
}

# ftps_lines: ftpwalld's lines in every ruleset of $FW (lib/daemon.sh).
ftps_lines() { daemon_lines; }

# ftps_daemon_stop: SIGTERM, exit 0 within 5 s, no error in the log, nothing left (lib/daemon.sh).
ftps_daemon_stop() { daemon_stop; }

# ftps_wait_log ERE [SECONDS]: wait for a log line of ftpwalld's (default 5 s).
ftps_wait_log() {
  local i n=$(( ${2:-5} * 10 ))
  for i in $(seq "$n"); do grep -qE -- "$1" "$DLOG" && return 0; sleep 0.1; done
  return 1
}

# ftps_wait_more ERE N [SECONDS]: wait until more than N lines of the log match ERE (default 5 s).
ftps_wait_more() {
  local i n=$(( ${3:-5} * 10 ))
  for i in $(seq "$n"); do [ "$(ftps_count "$1")" -gt "$2" ] && return 0; sleep 0.1; done
  return 1
}

# ftps_unclosed: the range openings of the running daemon (its log since its start line) not closed
# yet, as "sN rM" words.
ftps_unclosed() {
  awk '/^---- ftpwalld start/ { delete o; next }
       match($0, /range opening s[0-9]+ r[0-9]+ /) { k = substr($0, RSTART + 14, RLENGTH - 15)
         if ($0 ~ / closed: /) delete o[k]; else if ($0 ~ / -> /) o[k] = 1 }
       END { for (k in o) printf "%s%s", (n++ ? ", " : ""), k; print "" }' "$DLOG"
}

# ftps_count ERE: lines of ftpwalld's log matching ERE so far.
ftps_count() { grep -cE -- "$1" "$DLOG" 2>/dev/null || true; }

# ftps_refusal REASON: the daemon's refusal counter REASON (`ftpwall status --json`), 0 if absent.
ftps_refusal() {
  "$FTPS_CLI" status --json --socket "$DSOCK" 2>/dev/null | "$BENCH_PY" -c '
import json, sys
print(json.load(sys.stdin).get("refusals", {}).get(sys.argv[1], 0))' "$1" 2>/dev/null || echo "?"
}

# ftps_openings_json: `ftpwall openings --json` of the running daemon.
ftps_openings_json() { "$FTPS_CLI" openings --json --socket "$DSOCK" 2>&1; }

# ftps_range_listed CLIENT: 0 if `ftpwall openings --json` lists an opening from CLIENT that
# covers the passive range (both ends of $FTPS_RANGE appear in it), 1 if not; FTPS_JSON keeps it.
ftps_range_listed() {
  FTPS_JSON=$(ftps_openings_json)
  echo "$FTPS_JSON" | "$BENCH_PY" -c '
import json, sys
client, lo, hi = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def ints(v):
    if isinstance(v, bool): return
    if isinstance(v, int): yield v
    elif isinstance(v, str):
        for p in v.replace("-", " ").replace(":", " ").split():
            if p.isdigit(): yield int(p)
    elif isinstance(v, dict):
        for x in v.values(): yield from ints(x)
    elif isinstance(v, list):
        for x in v: yield from ints(x)
d = json.load(sys.stdin)
for key, val in d.items():
    if not isinstance(val, list): continue
    for o in val:
        if client in json.dumps(o):
            n = set(ints(o))
            if lo in n and hi in n: sys.exit(0)
sys.exit(1)' "$1" "${FTPS_RANGE%-*}" "${FTPS_RANGE#*-}" 2>/dev/null
}

# --- clients --------------------------------------------------------------------------------------

# ftps_transfer TOOL MODE [--expect pass|fail] [--timeout S] [--ccc] [--get "F.."] [--put "F.."]
#   One FTPS client run (lftp ftp:ssl-force + ssl:verify-certificate no, curl --ssl-reqd -k) against
#   $SERVER_ADDR with PROT P, MODE PASV, EPSV or PORT, checked like ftp_transfer (lib/clients.sh): exit 0,
#   AUTH TLS (curl: AUTH SSL or TLS) and MODE and no other data command in the client's debug
#   output, every download and upload byte-exact (sha256). --ccc: lftp ftp:ssl-use-ccc yes, curl
#   --ftp-ssl-ccc --ftp-ssl-ccc-mode active; the 200 to CCC must be in the debug output.
#   --expect fail (negative control): login succeeded (230), MODE sent, the transfer failed within
#   the short timeout (default 4 s; one download, no upload). Sets XFER_LOG.
ftps_transfer() {
  local tool=$1 mode=$2; shift 2
  local expect=pass timeout="" ccc="" gets="${BENCH_FILES[*]}" puts="f1500 f3m"
  while [ $# -gt 0 ]; do
    case $1 in
      --expect) expect=$2; shift 2;; --timeout) timeout=$2; shift 2;; --ccc) ccc=1; shift;;
      --get) gets=$2; shift 2;; --put) puts=$2; shift 2;;
      *) fail "ftps_transfer: unknown option $1";;
    esac
  done
  if [ "$expect" = fail ]; then timeout=${timeout:-4}; gets=f1500; puts=""; else timeout=${timeout:-15}; fi
  bench_files
  BENCH_XFER_N=$((BENCH_XFER_N + 1))
  local id="tls-$tool-$mode-$BENCH_XFER_N" f rc=0
  local dl="$BENCH_WORK/dl-$id" log="$BENCH_WORK/$id.log" files="$BENCH_WORK/files" t0=${EPOCHREALTIME/./}
  XFER_LOG=$log
  mkdir -p "$dl"
  local hard=$((timeout * 4 + 20))
  case $tool in
    lftp)
      local epsv=no pasv=yes set script
      [ "$mode" = EPSV ] && epsv=yes
      [ "$mode" = PORT ] && pasv=no
      # lftp 4.9.2 (gnutls) often sends its close_notify twice after CCC (when the server's 200
      # and close_notify arrive together; through ftpwalld's queue most of the time): the server
      # reads the second alert as a command ("500 \x15\x03\x03 not understood") and lftp drops
      # the connection. With --ccc lftp reconnects at once, as often as it needs within the hard
      # time limit (net:max-retries 0: no limit; 20 ran out under CI load); ftps_lftp_ccc_races
      # counts how often.
      if [ -n "$ccc" ]; then
        set="set net:max-retries 0; set net:reconnect-interval-base 0; set net:reconnect-interval-multiplier 1;"
      else
        set="set net:max-retries 1; set net:reconnect-interval-base 1;"
      fi
      set+=" set net:timeout $timeout; set net:persist-retries 0; set cmd:fail-exit yes; set xfer:clobber yes;"
      set+=" set ftp:ssl-force yes; set ftp:ssl-protect-data yes; set ssl:verify-certificate no;"
      set+=" set ftp:ssl-use-ccc $([ -n "$ccc" ] && echo yes || echo no);"
      set+=" set ftp:fix-pasv-address no; set ftp:verify-address yes; set ftp:auto-passive-mode no;"
      set+=" set ftp:passive-mode $pasv; set ftp:prefer-epsv $epsv;"
      script="$set open -u anonymous,bench@ ftp://$SERVER_ADDR;"
      for f in $gets; do script+=" get $f -o $dl/$f;"; done
      for f in $puts; do script+=" put $files/$f -o up/$id-$f;"; done
      on c timeout "$hard" lftp -d -c "$script" >"$log" 2>&1 || rc=$?
      ;;
    curl)
      local opts=(-sS -v --ssl-reqd -k --no-ftp-skip-pasv-ip --connect-timeout "$timeout" --max-time $((timeout * 3 + 5)))
      case $mode in
        PASV) opts+=(--ftp-pasv --disable-epsv);; EPSV) opts+=(--ftp-pasv);; PORT) opts+=(--ftp-port - --disable-eprt);;
      esac
      [ -n "$ccc" ] && opts+=(--ftp-ssl-ccc --ftp-ssl-ccc-mode active)
      local args=()
      for f in $gets; do args+=("ftp://$SERVER_ADDR/$f" -o "$dl/$f"); done
      if [ -n "$gets" ]; then on c timeout "$hard" curl "${opts[@]}" "${args[@]}" >"$log" 2>&1 || rc=$?; fi
      for f in $puts; do
        [ $rc = 0 ] || break
        on c timeout "$hard" curl "${opts[@]}" -T "$files/$f" "ftp://$SERVER_ADDR/up/$id-$f" >>"$log" 2>&1 || rc=$?
      done
      ;;
    *) fail "ftps_transfer: unknown client $tool";;
  esac
  local secs; secs=$(( (${EPOCHREALTIME/./} - t0) / 100000 )); secs="$((secs / 10)).$((secs % 10)) s"
  local sent; sent=$(_sent_data_cmds "$tool" "$log")
  local what="FTPS $mode $tool${ccc:+ +CCC} -> ${SERVER_TYPE:-server}"
  local pat; pat=$(_cmd_pattern "$tool")
  if ! grep -aqE "${pat}AUTH (TLS|SSL)" "$log"; then bad "$what: no AUTH TLS on the wire"; _log_tail "$log"; return 1; fi
  if [ -n "$ccc" ] && ! grep -aqE '^(<---|<) 200 .*[Cc]lear' "$log"; then bad "$what: CCC not answered 200"; _log_tail "$log"; return 1; fi

  if [ "$expect" = fail ]; then
    if [ $rc = 0 ]; then bad "$what: transfer passed but was expected to fail (negative control)"; _log_tail "$log"; return 1; fi
    if ! _logged_in "$tool" "$log"; then bad "$what: failed before login, not in the data connection (exit $rc)"; _log_tail "$log"; return 1; fi
    case " $sent " in *" $mode "*) ;; *) bad "$what: $mode never sent (sent: ${sent:-none})"; _log_tail "$log"; return 1;; esac
    ok "$what: fails as expected after $secs (TLS login ok, $mode sent, data connection blocked)"
    return 0
  fi
  if [ $rc != 0 ]; then bad "$what: client failed (exit $rc) after $secs"; _log_tail "$log"; return 1; fi
  if [ "$sent" != "$mode" ]; then bad "$what: data commands on the wire were '${sent:-none}', wanted $mode"; _log_tail "$log"; return 1; fi
  local n=0 bytes=0
  for f in $gets; do
    if [ ! -f "$dl/$f" ]; then bad "$what: download $f missing (exit 0: curl went on with the next URL)"; _log_tail "$log"; return 1; fi
    if [ "$(sha "$dl/$f")" != "$(sha "$files/$f")" ]; then bad "$what: download $f differs"; return 1; fi
    n=$((n + 1)); bytes=$((bytes + $(stat -c %s "$files/$f")))
  done
  for f in $puts; do
    if [ ! -f "$SERVER_ROOT/up/$id-$f" ] || [ "$(sha "$SERVER_ROOT/up/$id-$f")" != "$(sha "$files/$f")" ]; then
      bad "$what: upload $f differs on the server"; return 1
    fi
    n=$((n + 1)); bytes=$((bytes + $(stat -c %s "$files/$f")))
  done
  rm -rf "$dl"
  ok "$what: $n files ($bytes bytes) byte-exact in $secs, AUTH TLS and $mode on the wire"
}

# ftps_lftp_ccc_races LOG: how often lftp lost its control connection right after the 200 to CCC
# (the double close_notify of lftp 4.9.2 described in ftps_transfer).
ftps_lftp_ccc_races() {
  awk '/^<--- 200 Clearing/ { w = 1; next } w && /^\*\*\*\*/ { next } w { if (/^---- Closing control socket/) n++; w = 0 } END { print n + 0 }' "$1"
}

# ftps_hold_start MODE [--ccc]: an ftplib FTP_TLS session (lib/ftpsc.py) in the background from
# $CLIENT_IP: TLS login, PROT P, a download of f65537 with MODE, then it holds the session open;
# waits until it is ready (or failed). With --ccc it pauses after PROT P instead (the control
# connection still TLS) until ftps_hold_ccc, which lets it send CCC, return to clear text and do
# the download, and waits for that. ftps_hold_quit [--linger]: lets it send QUIT, waits for the 221
# and for the client to close the connection (with --linger the TCP connection stays open until
# ftps_hold_end: inside TLS nobody but the peers sees the QUIT). Sets HOLD_PID, HOLD_LOG.
ftps_hold_start() {
  local mode=$1 ccc=${2:-}
  bench_files
  FTPS_HOLD=$BENCH_WORK/hold-$BENCH_XFER_N-$RANDOM
  HOLD_LOG=$FTPS_HOLD.log
  mkdir -p "$FTPS_HOLD"
  local extra=() wait_for=ready
  [ "$ccc" = --ccc ] && { extra=(--ccc --secured "$FTPS_HOLD/secured" --before-ccc "$FTPS_HOLD/ccc"); wait_for=secured; }
  on_bg c timeout 150 "$BENCH_PY" "$BENCH_LIB/ftpsc.py" --host "$SERVER_ADDR" --mode "$mode" --timeout 5 \
    --source "$CLIENT_IP" --get f65537 "$FTPS_HOLD/f65537" --ready "$FTPS_HOLD/ready" --hold "$FTPS_HOLD/quit" \
    --quit-done "$FTPS_HOLD/quit-done" --linger "$FTPS_HOLD/end" "${extra[@]}" >"$HOLD_LOG" 2>&1
  HOLD_PID=$BG_PID
  _ftps_hold_wait "$wait_for" || { bad "held FTPS session ($mode${ccc:+ $ccc}) did not get to '$wait_for':"; _log_tail "$HOLD_LOG"; return 1; }
  if [ -n "$ccc" ]; then
    ok "held FTPS session from $CLIENT_IP ($mode): TLS login and PROT P, paused before CCC"
    return 0
  fi
  _ftps_hold_check_dl || return 1
  ok "held FTPS session from $CLIENT_IP ($mode): TLS login, f65537 byte-exact, session kept open"
}
_ftps_hold_wait() {
  local i
  for i in $(seq 150); do
    [ -e "$FTPS_HOLD/$1" ] && return 0
    kill -0 "$HOLD_PID" 2>/dev/null || break
    sleep 0.1
  done
  [ -e "$FTPS_HOLD/$1" ]
}
_ftps_hold_check_dl() {
  [ "$(sha "$FTPS_HOLD/f65537")" = "$(sha "$BENCH_WORK/files/f65537")" ] && return 0
  bad "held session: download of f65537 differs"; return 1
}
ftps_hold_ccc() {
  touch "$FTPS_HOLD/ccc"
  _ftps_hold_wait ready || { bad "held session: CCC and the download after it did not complete:"; _log_tail "$HOLD_LOG"; return 1; }
  _ftps_hold_check_dl || return 1
  grep -q "^\*resp\* '200" <(sed -n "/^\*cmd\* 'CCC'/,+1p" "$HOLD_LOG") &&
    ok "held session: CCC answered 200, back to clear text; f65537 byte-exact after it" ||
    { bad "held session: CCC not answered 200"; return 1; }
}
ftps_hold_quit() {
  [ "${1:-}" = --linger ] || touch "$FTPS_HOLD/end"
  touch "$FTPS_HOLD/quit"
  local i
  for i in $(seq 50); do [ -e "$FTPS_HOLD/quit-done" ] && break; sleep 0.1; done
  if [ ! -e "$FTPS_HOLD/quit-done" ]; then bad "held session: no 221 to QUIT"; _log_tail "$HOLD_LOG"; return 1; fi
  if [ "${1:-}" = --linger ]; then ok "held session: QUIT answered 221, its TCP connection still open"; return 0; fi
  ftps_hold_end && ok "held session: QUIT answered 221, connection closed"
}
ftps_hold_end() {
  [ -n "${HOLD_PID:-}" ] || return 0
  touch "$FTPS_HOLD/end"
  wait "$HOLD_PID" 2>/dev/null; local rc=$?
  HOLD_PID=""
  [ "$rc" = 0 ] || { bad "held session exited $rc"; _log_tail "$HOLD_LOG"; return 1; }
}

# ftps_probe SOURCE [TIMEOUT]: 0 if a TCP connection from SOURCE (an address of host c) to
# $SERVER_ADDR:$FTPS_PROBE_PORT (the listener inside the passive range) is accepted.
ftps_probe() { tcp_probe c "$SERVER_ADDR" "$FTPS_PROBE_PORT" "${2:-2}" "$1"; }

# ftps_expect_probe SOURCE open|closed TEXT: one probe, checked.
ftps_expect_probe() {
  local got=closed
  ftps_probe "$1" && got=open
  if [ "$got" = "$2" ]; then ok "probe $1 -> $SERVER_ADDR:$FTPS_PROBE_PORT (in the passive range) $got: $3"
  else bad "probe $1 -> $SERVER_ADDR:$FTPS_PROBE_PORT $got, wanted $2: $3"; fi
}

# ftps_probe_listener: the story's own listener on $FTPS_PROBE_PORT on the server host, and the
# control of the probes: with an accept-all rule for that port on the firewall host (plus, behind
# server DNAT, a DNAT of it) both client addresses connect; without it neither does.
ftps_probe_listener() {
  listen_port s "$FTPS_PROBE_PORT"
  local chain=FORWARD; [ "$FW" = s ] && chain=INPUT
  local rule=($chain -p tcp --dport "$FTPS_PROBE_PORT" -m comment --comment ftps-probe-control -j ACCEPT)
  local dnat=(PREROUTING -d "${GW_PUBLIC:-none}" -p tcp --dport "$FTPS_PROBE_PORT" -j DNAT --to-destination "$SERVER_IP")
  on "$FW" $FTPS_IPT -I "${rule[@]}"
  [ "$SERVER_ADDR" != "$SERVER_IP" ] && on g $FTPS_IPT -t nat -I "${dnat[@]}"
  ftps_expect_probe "$CLIENT_IP" open "control: the port accepted for everybody"
  ftps_expect_probe "$CLIENT_OUT_IP" open "control: the port accepted for everybody"
  on "$FW" $FTPS_IPT -D "${rule[@]}"
  [ "$SERVER_ADDR" != "$SERVER_IP" ] && on g $FTPS_IPT -t nat -D "${dnat[@]}"
  on "$FW" conntrack -F >/dev/null 2>&1 || true
  ftps_expect_probe "$CLIENT_IP" closed "no rule for it: the firewall's policy"
  ftps_expect_probe "$CLIENT_OUT_IP" closed "no rule for it: the firewall's policy"
}

# ftps_ccc_wire PCAP: the first control session of a capture of port 21 returned to clear text
# after TLS: prints "tls=N alerts=N clear_after=N pasv=N 227=N 229=N" (TLS records seen, close_notify
# alert records (TLS 1.2, type 0x15), FTP lines in clear text after the last TLS record, of them PASV
# and EPSV commands and 227/229 replies); exit 0 only if clear text follows TLS and alerts >= 2.
ftps_ccc_wire() {
  local txt=$BENCH_WORK/ccc-wire-$RANDOM.txt
  "$BENCH_PY" "$BENCH_LIB/pcap2session.py" "$1" "$txt" >/dev/null 2>&1 || { echo "unreadable capture"; return 1; }
  "$BENCH_PY" - "$txt" <<'PY'
import re, sys
lines = [l.rstrip("\n") for l in open(sys.argv[1]) if l[:2] in ("C ", "S ")]
tls = [i for i, l in enumerate(lines) if re.match(r"[CS] \\x1[4-7]\\x03\\x0[0-4]", l)]
alerts = sum(1 for l in lines if re.match(r"[CS] \\x15\\x03\\x0[1-4]", l))
after = lines[tls[-1] + 1:] if tls else []
clear = [l for l in after if re.match(r"[CS] [A-Z0-9]{3,4}([ -]|\\r)", l)]
pasv = sum(1 for l in clear if l.startswith("C PASV") or l.startswith("C EPSV"))
r227 = sum(1 for l in clear if l.startswith("S 227 "))
r229 = sum(1 for l in clear if l.startswith("S 229 "))
print("tls=%d alerts=%d clear_after=%d pasv=%d 227=%d 229=%d" % (len(tls), alerts, len(clear), pasv, r227, r229))
sys.exit(0 if tls and clear and alerts >= 2 and len(clear) == len(after) else 1)
PY
}
