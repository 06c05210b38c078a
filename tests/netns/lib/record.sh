# SPDX-License-Identifier: GPL-2.0-or-later
# Captures on the bench: tcpdump in a host, and recorded control sessions for the unit tests
# (format: tests/data/sessions/README.md, converter: pcap2session.py).

# capture_start ROLE IFACE FILE [FILTER]: starts tcpdump (default filter "tcp port 21") and waits
# until it listens. capture_stop ends it and flushes the file. A 32 MiB buffer (-B): with the
# default 2 MiB tcpdump dropped packets under ctest -j4 load ("packets dropped by kernel"), which a
# replay of the capture then reports as stream gaps (netns.110 failed so in a CI run).
capture_start() {
  local role=$1 ifc=$2 file=$3 filter=${4:-tcp port 21}
  on_bg "$role" tcpdump -Z root -i "$ifc" -B 32768 --immediate-mode -U -s 0 -w "$file" $filter >"$file.log" 2>&1
  CAPTURE_PID=$BG_PID
  local i
  for i in $(seq 50); do grep -q 'listening on' "$file.log" 2>/dev/null && return 0; sleep 0.1; done
  fail "tcpdump did not start: $(cat "$file.log")"
}
capture_stop() {
  [ -n "${CAPTURE_PID:-}" ] || return 0
  sleep 0.3                      # the last segments (FIN, 221) are on the wire
  kill -INT "$CAPTURE_PID" 2>/dev/null; wait "$CAPTURE_PID" 2>/dev/null
  CAPTURE_PID=""
}

# record_session OUT.txt "DESCRIPTION" CMD...: captures port 21 on the server host's eth0 while CMD
# runs and writes the first control session to OUT.txt in the session text format.
record_session() {
  local out=$1 desc=$2; shift 2
  local pcap="$BENCH_WORK/rec-$(basename "$out" .txt).pcap" try rc err
  # A capture under heavy load can miss a segment; pcap2session refuses gaps, so try again.
  for try in 1 2 3; do
    capture_start s eth0 "$pcap"
    "$@"; rc=$?
    capture_stop
    err=$("$BENCH_PY" "$BENCH_LIB/pcap2session.py" "$pcap" "$out" --header "# $desc" \
      --header "# recorded by tests/netns/lib/record-sessions on the bench topology server" 2>&1) && {
      ok "recorded $(basename "$out"): $(grep -c '^[CS] ' "$out") chunks (client exit $rc)"
      return $rc
    }
    say "capture $try of $(basename "$out") unusable: $err"
  done
  bad "could not record $(basename "$out")"
  return 1
}
