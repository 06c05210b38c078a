# SPDX-License-Identifier: GPL-2.0-or-later
# FTP servers for the bench: vsftpd (package), proftpd and pure-ftpd (unpacked by install-peers).
# Each runs in the server host in the foreground with its own config in $BENCH_WORK, serves an
# anonymous root with the bench files (read-only) and an upload directory `up/`, and never does
# reverse DNS. A test changes passive range, passive address and port-20 behaviour by passing a
# snippet in the server's own syntax (what `ftpwall rules --server ...` writes, or server_settings).

# server_settings TYPE [--pasv LOW-HIGH] [--pasv-address A] [--port20 yes|no]: prints a snippet.
server_settings() {
  local type=$1 range="" addr="" port20=""; shift
  while [ $# -gt 0 ]; do
    case $1 in
      --pasv) range=$2;; --pasv-address) addr=$2;; --port20) port20=$2;;
      *) fail "server_settings: unknown option $1";;
    esac
    shift 2
  done
  case $type in
    vsftpd)
      [ -n "$range" ] && printf 'pasv_min_port=%s\npasv_max_port=%s\n' "${range%-*}" "${range#*-}"
      [ -n "$addr" ] && printf 'pasv_address=%s\n' "$addr"
      [ -n "$port20" ] && printf 'connect_from_port_20=%s\n' "$([ "$port20" = yes ] && echo YES || echo NO)"
      ;;
    proftpd)
      [ -n "$range" ] && printf 'PassivePorts %s %s\n' "${range%-*}" "${range#*-}"
      [ -n "$addr" ] && printf 'MasqueradeAddress %s\n' "$addr"
      # proftpd and pure-ftpd have no switch for the source port of active connections.
      ;;
    pure-ftpd)
      [ -n "$range" ] && printf 'PassivePortRange %s %s\n' "${range%-*}" "${range#*-}"
      [ -n "$addr" ] && printf 'ForcePassiveIP %s\n' "$addr"
      ;;
    *) fail "server_settings: unknown server $type";;
  esac
  true
}

# server_root: the anonymous root (root-owned, read-only for ftp) with the bench files and `up/`.
_server_root() {
  local root="$BENCH_WORK/srv-$1" f
  rm -rf "$root"; mkdir -p "$root/up"
  for f in "${BENCH_FILES[@]}"; do cp "$BENCH_WORK/files/$f" "$root/$f"; done
  chmod 755 "$root"; chown ftp:ftp "$root/up"; chmod 777 "$root/up"
  echo "$root"
}

# server_start TYPE [SNIPPET_FILE]: starts vsftpd|proftpd|pure-ftpd on $SERVER_IP:21 in host s,
# waits until it listens. Sets SERVER_TYPE, SERVER_ROOT (uploads land in $SERVER_ROOT/up),
# SERVER_LOG. SERVER_LISTEN (default $SERVER_IP) lists the addresses to listen on: one IPv4
# address (the default), one IPv6 address, or an IPv4 and an IPv6 address (dual stack; lib/v6.sh).
server_start() {
  local type=$1 snippet=${2:-} conf root log
  local listen=${SERVER_LISTEN:-$SERVER_IP} fam=4 a
  case " $listen " in
    *:*" "*.*|*.*" "*:*) fam=dual;;
    *:*) fam=6;;
  esac
  # Per-family lines of each server's configuration (IPv4 only: exactly the lines of before).
  local vs_listen="listen=YES
listen_ipv6=NO
listen_address=$listen" pf_ipv6="UseIPv6 off" pure_bind="IPV4Only yes
Bind $listen,21"
  case $fam in
    6) vs_listen="listen=NO
listen_ipv6=YES
listen_address6=$listen"
       pf_ipv6="UseIPv6 on" pure_bind="IPV6Only yes
Bind $listen,21";;
    # vsftpd binds one address per family, or :: for both (IPv4 sessions arrive IPv4-mapped:
    # vsftpd still answers PASV with 227 and takes PORT); pure-ftpd without Bind listens on every
    # address of the host (the server host has only the bench's).
    dual) vs_listen="listen=NO
listen_ipv6=YES"
       pf_ipv6="UseIPv6 on" pure_bind="";;
  esac
  bench_files
  root=$(_server_root "$type")
  conf="$BENCH_WORK/$type.conf"; log="$BENCH_WORK/$type.log"
  SERVER_TYPE=$type SERVER_ROOT=$root SERVER_LOG=$log
  case $type in
    vsftpd)
      cat >"$conf" <<EOF
$vs_listen
background=NO
anonymous_enable=YES
local_enable=NO
no_anon_password=YES
anon_root=$root
write_enable=YES
anon_upload_enable=YES
anon_mkdir_write_enable=YES
anon_umask=022
seccomp_sandbox=NO
secure_chroot_dir=/var/run/vsftpd/empty
connect_from_port_20=NO
pasv_enable=YES
port_enable=YES
idle_session_timeout=30
data_connection_timeout=10
connect_timeout=5
accept_timeout=5
xferlog_enable=YES
vsftpd_log_file=$log.xfer
log_ftp_protocol=YES
dual_log_enable=NO
syslog_enable=NO
EOF
      [ -n "$snippet" ] && grep -vE '^[[:space:]]*(#|$)' "$snippet" >>"$conf"
      mkdir -p /var/run/vsftpd/empty
      # vsftpd writes its "500 OOPS" start-up errors to fd 0; Debian's build has no
      # reverse_lookup_enable (a Red Hat patch) and never resolves names by default.
      on_bg s vsftpd "$conf" >"$log" 2>&1 0<>"$log"
      ;;
    proftpd)
      cat >"$conf" <<EOF
ServerName "ftpwall bench proftpd"
ServerType standalone
DefaultServer on
DefaultAddress $listen
SocketBindTight on
Port 21
$pf_ipv6
User nobody
Group nogroup
PidFile $BENCH_WORK/proftpd.pid
ScoreboardFile $BENCH_WORK/proftpd.scoreboard
DelayTable none
WtmpLog off
UseReverseDNS off
<IfModule mod_ident.c>
  IdentLookups off
</IfModule>
TransferLog $log.xfer
SystemLog $log.sys
ControlsEngine off
AuthOrder mod_auth_unix.c
RequireValidShell off
AllowOverwrite on
Umask 022
TimeoutIdle 30
TimeoutNoTransfer 30
TimeoutStalled 10
EOF
      [ -n "$snippet" ] && grep -vE '^[[:space:]]*(#|$)' "$snippet" >>"$conf"
      cat >>"$conf" <<EOF
<Anonymous $root>
  User ftp
  Group ftp
  UserAlias anonymous ftp
  RequireValidShell off
  <Directory *>
    <Limit WRITE>
      AllowAll
    </Limit>
  </Directory>
</Anonymous>
EOF
      on_bg s "$BENCH_PEERS/usr/sbin/proftpd" -n -c "$conf" >"$log" 2>&1
      ;;
    pure-ftpd)
      cat >"$conf" <<EOF
ChrootEveryone yes
Daemonize no
AnonymousOnly yes
NoAnonymous no
AnonymousCantUpload no
AnonymousCanCreateDirs yes
DontResolve yes
$pure_bind
PIDFile $BENCH_WORK/pure-ftpd.pid
SyslogFacility none
VerboseLog yes
MaxIdleTime 1
Umask 133:022
AltLog clf:$log.xfer
EOF
      [ -n "$snippet" ] && grep -vE '^[[:space:]]*(#|$)' "$snippet" >>"$conf"
      # pure-ftpd serves anonymous users from the ftp user's home: bind our root over it, in the
      # private mount namespace that ip netns exec gives this process tree only.
      local home; home=$(getent passwd ftp | cut -d: -f6)
      mkdir -p "$home"
      on_bg s sh -c 'mount --bind "$1" "$2" && exec "$3" "$4"' sh "$root" "$home" \
        "$BENCH_PEERS/usr/sbin/pure-ftpd" "$conf" >"$log" 2>&1
      ;;
    *) fail "server_start: unknown server $type";;
  esac
  SERVER_PID=$BG_PID
  local i
  for i in $(seq 50); do
    # The listener must be this server (a previous one still bound would answer instead).
    on s ss -Hltnp "sport = :21" 2>/dev/null | grep -q "pid=$SERVER_PID," && { say "$type listening on ${listen// /, }:21${snippet:+ (with $(grep -cvE '^[[:space:]]*(#|$)' "$snippet") setting lines)}"; return 0; }
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.1
  done
  sed 's/^/    /' "$log" >&2
  fail "$type did not start (config $conf)"
}

# server_stop: stops the running server (to restart it with other settings).
server_stop() {
  [ -n "${SERVER_PID:-}" ] || return 0
  # The pid is `ip netns exec`'s, which exec'd the server (pure-ftpd: through sh -c ... exec).
  kill "$SERVER_PID" 2>/dev/null; wait "$SERVER_PID" 2>/dev/null
  local i pids
  for i in $(seq 30); do on s ss -Hltn "sport = :21" | grep -q . || break; sleep 0.1; done
  # Session processes the server forked (proftpd, pure-ftpd) may outlive it: end them too.
  pids=$(on s ss -Htnp "sport = :21" | grep -oE 'pid=[0-9]+' | cut -d= -f2 | sort -u)
  [ -n "$pids" ] && kill -9 $pids 2>/dev/null
  on s ss -Hltn "sport = :21" | grep -q . && fail "server_stop: port 21 still bound"
  SERVER_PID=""
}
