# SPDX-License-Identifier: GPL-2.0-or-later
# Generated rulesets on the bench: run the real `ftpwall rules`, load its output on the firewall
# host, and derive the negative control (the same ruleset without its FTP parts).

# ftpwall_bin: the binary under test, from FTPWALL_BUILD_DIR (ctest sets it).
ftpwall_bin() { echo "${FTPWALL_BUILD_DIR:-}/src/ftpwall"; }

# rules_generate OUT ARGS...: OUT gets the ruleset, OUT.server the --server snippet (when ARGS
# has --server), OUT.cmd the exact command, OUT.err its stderr. Fails the cell on exit != 0.
rules_generate() {
  local out=$1; shift
  local cmd=("$(ftpwall_bin)" rules "$@" -o "$out")
  case " $* " in *" --server "*) cmd+=(--server-output "$out.server");; esac
  printf '%q ' "${cmd[@]}" >"$out.cmd"
  if ! "${cmd[@]}" 2>"$out.err"; then
    bad "ftpwall rules failed: $(cat "$out.cmd")"; sed 's/^/      | /' "$out.err"; return 1
  fi
  return 0
}

# fw_reset: an empty, accepting legacy firewall on $FW (no bench DROP policy, no bench NAT), for
# a generated ruleset that owns the whole firewall. iptables-legacy-restore replaces the tables it
# names anyway; an nft ruleset runs beside the legacy tables, so those must not drop.
fw_reset() {
  local t
  for t in raw nat filter mangle; do on "$FW" iptables-legacy -t "$t" -F; done
  on "$FW" iptables-legacy -P INPUT ACCEPT
  on "$FW" iptables-legacy -P FORWARD ACCEPT
  on "$FW" iptables-legacy -P OUTPUT ACCEPT
}

# fw_load FORMAT FILE: load a ruleset on $FW: iptables-save with iptables-legacy-restore,
# nft with nft -f, shell with sh.
fw_load() {
  local fmt=$1 file=$2 err
  case $fmt in
    iptables-save) err=$(on "$FW" iptables-legacy-restore <"$file" 2>&1);;
    nft) err=$(on "$FW" nft -f "$file" 2>&1);;
    shell) err=$(on "$FW" sh -e "$file" 2>&1);;
    *) fail "fw_load: unknown format $fmt";;
  esac || { bad "loading $fmt $file failed:"; printf '%s\n' "$err" | sed 's/^/      | /'; return 1; }
  return 0
}

# rules_without_ftp IN OUT: the negative control. Drops every rule tagged "ftpwall: ftp ..."
# except the control-port ones (accept and DNAT of 21), so logins still work and only what the
# generator adds for data connections (helper attachment, RELATED accepts, the static passive
# range, its DNAT, active SNAT/accepts) is missing.
rules_without_ftp() {
  awk '!/"ftpwall: ftp / || /"ftpwall: ftp (dnat )?control/' "$1" >"$2"
  local n; n=$(( $(grep -c . "$1") - $(grep -c . "$2") ))
  [ "$n" -gt 0 ] || { bad "rules_without_ftp: nothing removed from $1"; return 1; }
  return 0
}

# The passive range every generator story uses: outside 32768-60999 so the generator does not
# warn; RULES_PORT_IN lies inside it, RULES_PORT_OUT just above it.
RULES_PASV=61000-61099 RULES_PORT_IN=61050 RULES_PORT_OUT=61100

# rules_cell TOPO HELPER FORMAT SERVER "MODE:TOOL..." "NEGMODE:TOOL...": one cell of the generator
# matrix. Generates the ruleset for TOPO with the real binary, loads it on the firewall host,
# configures SERVER from the generated --server snippet, and shows:
#   every MODE:TOOL transfer passes byte-exact with MODE on the wire;
#   a port outside the passive range is refused (a listener is there, so only the firewall can
#   refuse it), and inside the range a static opening exists only with --helper none;
#   a client outside --allow-from (or outside --inside-network) is refused, the client inside is not;
#   with the same ruleset minus its FTP parts (rules_without_ftp) every NEGMODE:TOOL fails.
rules_cell() {
  local topo=$1 helper=$2 fmt=$3 srv=$4 modes=$5 negmodes=$6 m
  local r="$BENCH_WORK/rules"
  topo "$topo"
  fw_reset
  local args=(--helper "$helper" --format "$fmt" --passive-ports "$RULES_PASV")
  local port_out=$RULES_PORT_OUT inside_open=no
  case $topo in
    server) args+=(--role server --allow-from "$CLIENT_IP/32" --server "$srv");;
    gateway-server-nat)
      args+=(--role gateway --public-address "$GW_PUBLIC" --internal-server "$SERVER_IP"
             --allow-from "$CLIENT_IP/32" --server "$srv");;
    gateway-client-nat)
      # The inside network is the /25 holding the client; CLIENT_OUT_IP (.200) lies outside it.
      args+=(--role gateway --interface eth1 --inside-network 192.168.1.0/25)
      [ "$helper" = none ] && args+=(--active no)
      # The remote server's range is not the gateway's business: --helper none opens every
      # unprivileged port toward the outside, so "outside the range" means a privileged port.
      [ "$helper" = none ] && port_out=1000
      ;;
    *) fail "rules_cell: no generator profile for topology $topo";;
  esac
  [ "$helper" = none ] && inside_open=yes
  rules_generate "$r" "${args[@]}" || return 1
  say "ftpwall rules ${args[*]}: $(grep -c 'ftpwall:' "$r") tagged rules"
  fw_load "$fmt" "$r" || return 1
  ok "loaded on $FW with $([ "$fmt" = nft ] && echo 'nft -f' || echo iptables-legacy-restore)"

  local snippet="$r.server"
  [ -s "$snippet" ] || { snippet="$BENCH_WORK/server.snippet"; server_settings "$srv" --pasv "$RULES_PASV" >"$snippet"; }
  server_start "$srv" "$snippet" || return 1

  for m in $modes; do ftp_transfer "${m#*:}" "${m%:*}"; done

  listen_port s "$port_out"; listen_port s "$RULES_PORT_IN"
  if tcp_probe c "$SERVER_ADDR" "$port_out" 3; then bad "port $port_out (outside the passive range) is open"
  else ok "port $port_out outside the passive range refused"; fi
  if tcp_probe c "$SERVER_ADDR" "$RULES_PORT_IN" 3; then
    [ $inside_open = yes ] && ok "port $RULES_PORT_IN inside the range open (static, --helper none)" ||
      bad "port $RULES_PORT_IN open without an announcement (--helper $helper must not open the range)"
  else
    [ $inside_open = no ] && ok "port $RULES_PORT_IN inside the range closed until announced (--helper $helper)" ||
      bad "port $RULES_PORT_IN inside the static range refused"
  fi
  if tcp_probe c "$SERVER_ADDR" 21 3 "$CLIENT_OUT_IP"; then bad "client $CLIENT_OUT_IP (not allowed) reached port 21"
  else ok "client $CLIENT_OUT_IP (not allowed) refused on port 21"; fi
  tcp_probe c "$SERVER_ADDR" 21 3 "$CLIENT_IP" && ok "client $CLIENT_IP (allowed) reaches port 21" ||
    bad "client $CLIENT_IP (allowed) refused on port 21"

  rules_without_ftp "$r" "$r.neg" || return 1
  fw_load "$fmt" "$r.neg" || return 1
  say "negative control: the same ruleset without its FTP parts ($(( $(grep -c . "$r") - $(grep -c . "$r.neg") )) lines fewer)"
  for m in $negmodes; do ftp_transfer "${m#*:}" "${m%:*}" --expect fail; done
  [ "$BENCH_FAILED" = 0 ] && ok "cell passed" || { say "generator command: $(cat "$r.cmd")"; return 1; }
}
