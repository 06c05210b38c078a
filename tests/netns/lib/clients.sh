# SPDX-License-Identifier: GPL-2.0-or-later
# FTP clients for the bench: lftp, curl, python3 ftplib (ftpc.py), each run in host c with debug
# output kept, forced into one data mode, trusting the address the server announces, and checked
# on the wire: the intended data command (PASV, EPSV, PORT or EPRT) was sent and no other.

# The data command each mode must put on the wire, and how each tool's debug output shows a
# command it sent:  lftp "---> PASV", curl "> PASV", ftplib "*cmd* 'PASV'".
_cmd_pattern() {
  case $1 in
    lftp) echo '^---> ';; curl) echo '^> ';; ftplib) echo "^\\*cmd\\* '";;
  esac
}
# _sent_data_cmds TOOL LOG: the data commands sent, sorted and unique ("EPSV PASV").
_sent_data_cmds() {
  grep -aoE "$(_cmd_pattern "$1")(PASV|EPSV|PORT|EPRT|LPSV|LPRT)" "$2" | grep -oE '(PASV|EPSV|PORT|EPRT|LPSV|LPRT)$' |
    sort -u | tr '\n' ' ' | sed 's/ $//'
}
# _logged_in TOOL LOG: the server accepted the login (230), so a failure came later.
_logged_in() {
  case $1 in
    lftp) grep -aqE '^<--- 230' "$2";; curl) grep -aqE '^< 230' "$2";;
    ftplib) grep -aqE "^\\*resp\\* '230" "$2";;
  esac
}

BENCH_XFER_N=0

# ftp_transfer TOOL MODE [--expect pass|fail] [--timeout S] [--from IP] [--get "F..."] [--put "F..."]
#   One client run against $SERVER_ADDR: downloads --get files (default all bench files), uploads
#   --put files (default f1500 f3m) to up/, compares every file's sha256 with the original.
#   --expect pass: exit 0, every sha256 equal, MODE's command and no other data command on the wire.
#   --expect fail (negative control): login succeeded, MODE's command was sent, and the transfer
#   failed within the short timeout (default 4 s).
#   --from IP: bind the client to IP (e.g. $CLIENT_OUT_IP).
#   Prints one transcript line; returns 0 when the expectation holds. Sets XFER_LOG.
ftp_transfer() {
  local tool=$1 mode=$2; shift 2
  local expect=pass timeout="" from="" gets="${BENCH_FILES[*]}" puts="f1500 f3m"
  while [ $# -gt 0 ]; do
    case $1 in
      --expect) expect=$2;; --timeout) timeout=$2;; --from) from=$2;;
      --get) gets=$2;; --put) puts=$2;;
      *) fail "ftp_transfer: unknown option $1";;
    esac
    shift 2
  done
  if [ "$expect" = fail ]; then timeout=${timeout:-4}; gets=f1500; puts=""; else timeout=${timeout:-15}; fi
  bench_files
  BENCH_XFER_N=$((BENCH_XFER_N + 1))
  local id="$tool-$mode-$BENCH_XFER_N" dl="$BENCH_WORK/dl-$tool-$mode-$BENCH_XFER_N" f rc=0
  local log="$BENCH_WORK/$id.log" files="$BENCH_WORK/files" t0=${EPOCHREALTIME/./}
  XFER_LOG=$log
  mkdir -p "$dl"
  local hard=$((timeout * 4 + 20))   # a hard bound on the whole client run
  # An IPv6 server (lib/v6.sh): URLs take it in brackets; lftp and curl then use EPSV/EPRT.
  local url_host=$SERVER_ADDR v6=""
  case $SERVER_ADDR in *:*) url_host="[$SERVER_ADDR]" v6=1;; esac
  case $tool in
    lftp)
      local set pasv epsv script=""
      case $mode in
        PASV) pasv=yes epsv=no;; EPSV) pasv=yes epsv=yes;; PORT) pasv=no epsv=no;;
        # Over IPv6 lftp's active mode is EPRT (and its passive mode EPSV).
        EPRT) if [ -n "$v6" ]; then pasv=no epsv=no; else bad "lftp sends EPRT only over IPv6: use curl or ftplib for IPv4 EPRT"; return 1; fi;;
      esac
      set="set net:timeout $timeout; set net:max-retries 1; set net:persist-retries 0;"
      set+=" set net:reconnect-interval-base 1; set cmd:fail-exit yes; set xfer:clobber yes;"
      set+=" set ftp:ssl-allow no; set ftp:fix-pasv-address no; set ftp:verify-address yes;"
      set+=" set ftp:auto-passive-mode no; set ftp:passive-mode $pasv; set ftp:prefer-epsv $epsv;"
      [ -n "$from" ] && set+=" set net:socket-bind-ipv$([ -n "$v6" ] && echo 6 || echo 4) $from;"
      script="$set open -u anonymous,bench@ ftp://$url_host;"
      for f in $gets; do script+=" get $f -o $dl/$f;"; done
      for f in $puts; do script+=" put $files/$f -o up/$id-$f;"; done
      on c timeout "$hard" lftp -d -c "$script" >"$log" 2>&1 || rc=$?
      ;;
    curl)
      local opts=(-sS -v --no-ftp-skip-pasv-ip --connect-timeout "$timeout" --max-time $((timeout * 3 + 5)))
      local port_from=${from:--}
      case $mode in
        PASV) opts+=(--ftp-pasv --disable-epsv);; EPSV) opts+=(--ftp-pasv);;
        PORT) opts+=(--ftp-port "$port_from" --disable-eprt);; EPRT) opts+=(--ftp-port "$port_from");;
      esac
      [ -n "$from" ] && opts+=(--interface "$from")
      [ -n "$v6" ] && opts+=(--globoff)   # [2001:db8::...] is an address, not a glob
      local args=()
      for f in $gets; do args+=("ftp://$url_host/$f" -o "$dl/$f"); done
      # curl reuses one session for all URLs of a run; uploads are a second run (a second session).
      if [ -n "$gets" ]; then on c timeout "$hard" curl "${opts[@]}" "${args[@]}" >"$log" 2>&1 || rc=$?; fi
      for f in $puts; do
        [ $rc = 0 ] || break
        on c timeout "$hard" curl "${opts[@]}" -T "$files/$f" "ftp://$url_host/up/$id-$f" >>"$log" 2>&1 || rc=$?
      done
      ;;
    ftplib)
      local args=(--host "$SERVER_ADDR" --mode "$mode" --timeout "$timeout")
      [ -n "$from" ] && args+=(--source "$from")
      for f in $gets; do args+=(--get "$f" "$dl/$f"); done
      for f in $puts; do args+=(--put "$files/$f" "up/$id-$f"); done
      on c timeout "$hard" "$BENCH_PY" "$BENCH_LIB/ftpc.py" "${args[@]}" >"$log" 2>&1 || rc=$?
      ;;
    *) fail "ftp_transfer: unknown client $tool";;
  esac
  local secs; secs=$(( (${EPOCHREALTIME/./} - t0) / 100000 )); secs="$((secs / 10)).$((secs % 10)) s"
  local sent; sent=$(_sent_data_cmds "$tool" "$log")
  local what="$mode $tool -> ${SERVER_TYPE:-server}${v6:+ over IPv6}${from:+ from $from}"

  if [ "$expect" = fail ]; then
    if [ $rc = 0 ]; then bad "$what: transfer passed but was expected to fail (negative control)"; _log_tail "$log"; return 1; fi
    if ! _logged_in "$tool" "$log"; then bad "$what: failed before login, not in the data connection (exit $rc)"; _log_tail "$log"; return 1; fi
    case " $sent " in *" $mode "*) ;; *) bad "$what: $mode never sent (sent: ${sent:-none})"; _log_tail "$log"; return 1;; esac
    ok "$what: fails as expected after $secs (login ok, $mode sent, data connection blocked)"
    return 0
  fi

  if [ $rc != 0 ]; then bad "$what: client failed (exit $rc) after $secs"; _log_tail "$log"; return 1; fi
  if [ "$sent" != "$mode" ]; then bad "$what: data commands on the wire were '${sent:-none}', wanted $mode"; _log_tail "$log"; return 1; fi
  local n=0 bytes=0
  for f in $gets; do
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
  ok "$what: $n files ($bytes bytes) byte-exact in $secs, $mode on the wire"
}

_log_tail() { tail -n 12 "$1" | sed 's/^/      | /'; }

# tcp_probe FROM_ROLE HOST PORT [TIMEOUT [SOURCE_IP]]: 0 if a TCP connection is accepted within
# TIMEOUT seconds (default 3), 1 if refused or dropped.
tcp_probe() {
  local role=$1 host=$2 port=$3 t=${4:-3} src=${5:-}
  on "$role" timeout "$t" "$BENCH_PY" -c '
import socket, sys
s = socket.socket(socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET)
if sys.argv[3]: s.bind((sys.argv[3], 0))
s.settimeout(float(sys.argv[4]))
s.connect((sys.argv[1], int(sys.argv[2])))
' "$host" "$port" "$src" "$t" 2>/dev/null
}

# listen_port ROLE PORT [ADDR]: a listener on PORT in host ROLE that accepts and closes (so a probe
# distinguishes "firewall dropped it" from "nothing listens"). ADDR: 0.0.0.0 (default), or an
# IPv6 address, "::" for every address of both families. Killed by cleanup.
listen_port() {
  on_bg "$1" "$BENCH_PY" -c '
import socket, sys
a = sys.argv[2]
s = socket.socket(socket.AF_INET6 if ":" in a else socket.AF_INET); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((a, int(sys.argv[1]))); s.listen(16)
while True:
    c, _ = s.accept(); c.close()
' "$2" "${3:-0.0.0.0}" >/dev/null 2>&1
  local i
  for i in $(seq 30); do on "$1" ss -Hltn "sport = :$2" | grep -q . && return 0; sleep 0.1; done
  fail "listener on port $2 did not start"
}

# listen_count ROLE PORT FILE [ADDR]: a listener on PORT in host ROLE (ADDR as for listen_port)
# that appends one line per accepted connection (the peer's address) to FILE, then closes it;
# accepted_count FILE counts them. The attack stories' "did anything reach the victim" check.
# Killed by cleanup.
listen_count() {
  : >"$3"
  on_bg "$1" "$BENCH_PY" -c '
import socket, sys
b = sys.argv[3]
s = socket.socket(socket.AF_INET6 if ":" in b else socket.AF_INET); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((b, int(sys.argv[1]))); s.listen(16)
while True:
    c, a = s.accept()
    with open(sys.argv[2], "a") as f: f.write("%s:%d\n" % a[:2])
    c.close()
' "$2" "$3" "${4:-0.0.0.0}" >/dev/null 2>&1
  local i
  for i in $(seq 30); do on "$1" ss -Hltn "sport = :$2" | grep -q . && return 0; sleep 0.1; done
  fail "listener on port $2 did not start"
}
accepted_count() { wc -l <"$1"; }

# raw_syns ROLE [RATE]: sends from host ROLE one TCP SYN per stdin line "SRC SPORT DST DPORT [SEQ]"
# through a raw socket (IP_HDRINCL: any source address, for the attack stories' floods and forged
# SYNs; only the bench's own addresses, only inside its namespaces), SEQ random when missing, at
# most RATE per second (default 4000). Prints the number sent.
raw_syns() {
  on "$1" "$BENCH_PY" -c '
import random, socket, struct, sys, time
def csum(b):
    if len(b) % 2: b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16: s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff
rate = float(sys.argv[1])
r = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)   # IPPROTO_RAW: IP_HDRINCL
n, t0 = 0, time.monotonic()
for line in sys.stdin:
    f = line.split()
    if len(f) < 4: continue
    s, d = socket.inet_aton(f[0]), socket.inet_aton(f[2])
    seq = int(f[4]) if len(f) > 4 else random.getrandbits(32)
    tcp = struct.pack("!HHIIBBHHH", int(f[1]), int(f[3]), seq, 0, 6 << 4, 0x02, 64240, 0, 0) + struct.pack("!BBH", 2, 4, 1460)
    c = csum(s + d + struct.pack("!BBH", 0, 6, len(tcp)) + tcp)
    tcp = tcp[:16] + struct.pack("!H", c) + tcp[18:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), random.getrandbits(16), 0x4000, 64, 6, 0, s, d)
    ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
    r.sendto(ip + tcp, (f[2], 0))
    n += 1
    ahead = n / rate - (time.monotonic() - t0)
    if ahead > 0: time.sleep(ahead)
print(n)
' "${2:-4000}"
}
