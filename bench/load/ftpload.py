#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Scripted FTP client for the namespace load harness (bench/load/run). Runs in the client host.

  ftpload.py sessions --server A --file NAME --sha256 HEX --size N --workers C --seconds D
             [--data pasv|port] [--bind IP] [--timeout S]
      C concurrent workers for D seconds, each looping over whole sessions:
        connect 21, 220, USER anonymous (230, or 331 + PASS), TYPE I (200),
        PASV (227) or PORT (200), RETR NAME (150 .. data .. 226), QUIT (221).
      Every received file is checked (length and sha256). Prints key=value result lines.

  ftpload.py openings --server A --count K --samples N [--pace-ms MS] [--hold-file PATH]
      Opens K holder sessions, each logged in with one PASV answered and no data connection
      (one unused announcement each, so K live openings on the firewall), then times N client-side
      round trips on two probe sessions: PASV -> 227 (an announcing exchange) and NOOP -> 200 (a
      bystander control exchange). Before timing it waits for --hold-file to disappear if given
      (the harness counts the gateway's openings meanwhile). Prints key=value result lines.

Wire formats: 227 Entering Passive Mode (h1,h2,h3,h4,p1,p2) (RFC 959 4.2, the six numbers found
anywhere in the text, as clients do); PORT h1,h2,h3,h4,p1,p2 (RFC 959 4.1.2).
"""
import argparse
import asyncio
import hashlib
import os
import re
import resource
import socket
import sys
import time

PASV_RE = re.compile(rb'(\d{1,3}),(\d{1,3}),(\d{1,3}),(\d{1,3}),(\d{1,3}),(\d{1,3})')


class FtpError(Exception):
    def __init__(self, kind, text):
        super().__init__(text)
        self.kind = kind


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def pct(sorted_vals, p):
    if not sorted_vals:
        return float('nan')
    i = min(len(sorted_vals) - 1, max(0, int(round(p / 100.0 * len(sorted_vals) + 0.5)) - 1))
    return sorted_vals[i]


# --- sessions (asyncio) ---------------------------------------------------------------------------

async def read_reply(reader):
    """One FTP reply (RFC 959 4.2: 'NNN-' starts a multi-line reply ending with 'NNN ')."""
    line = await reader.readline()
    if not line.endswith(b'\n'):
        raise FtpError('control_closed', 'control connection closed')
    code = line[:3]
    if len(line) >= 4 and line[3:4] == b'-':
        while True:
            more = await reader.readline()
            if not more.endswith(b'\n'):
                raise FtpError('control_closed', 'control connection closed in a multi-line reply')
            if more[:3] == code and more[3:4] == b' ':
                break
    return line


async def command(reader, writer, text, want):
    writer.write(text.encode() + b'\r\n')
    line = await read_reply(reader)
    if not line.startswith(want):
        raise FtpError('reply', '%s -> %r' % (text.split()[0], line.strip()))
    return line


async def one_session(a):
    t0 = time.perf_counter()
    writer = None
    data_server = None
    try:
        reader, writer = await asyncio.open_connection(a.server, 21, local_addr=(a.bind, 0) if a.bind else None)
        line = await read_reply(reader)
        if not line.startswith(b'220'):
            raise FtpError('reply', 'greeting %r' % line.strip())
        line = await command(reader, writer, 'USER anonymous', b'')
        if line.startswith(b'331'):
            await command(reader, writer, 'PASS load@', b'230')
        elif not line.startswith(b'230'):
            raise FtpError('reply', 'USER -> %r' % line.strip())
        await command(reader, writer, 'TYPE I', b'200')
        got = bytearray()
        if a.data == 'pasv':
            line = await command(reader, writer, 'PASV', b'227')
            m = PASV_RE.search(line[4:])
            if not m:
                raise FtpError('reply', 'unparsable 227 %r' % line.strip())
            n = [int(x) for x in m.groups()]
            host, port = '%d.%d.%d.%d' % tuple(n[:4]), n[4] * 256 + n[5]
            try:
                dr, dw = await asyncio.wait_for(asyncio.open_connection(host, port), a.data_timeout)
            except (OSError, asyncio.TimeoutError):
                raise FtpError('data_connect', 'data connection to %s:%d failed' % (host, port))
            await command(reader, writer, 'RETR ' + a.file, b'150')
            while True:
                chunk = await dr.read(65536)
                if not chunk:
                    break
                got += chunk
            dw.close()
        else:
            accepted = asyncio.get_running_loop().create_future()

            def on_conn(r, w):
                if not accepted.done():
                    accepted.set_result((r, w))
                else:
                    w.close()
            local_ip = writer.get_extra_info('sockname')[0]
            data_server = await asyncio.start_server(on_conn, local_ip, 0, backlog=1)
            port = data_server.sockets[0].getsockname()[1]
            await command(reader, writer, 'PORT %s,%d,%d' % (local_ip.replace('.', ','), port >> 8, port & 255), b'200')
            writer.write(b'RETR ' + a.file.encode() + b'\r\n')
            line = await read_reply(reader)
            if line.startswith(b'425'):
                raise FtpError('data_connect', 'RETR -> %r' % line.strip())
            if not line.startswith(b'150'):
                raise FtpError('reply', 'RETR -> %r' % line.strip())
            try:
                dr, dw = await asyncio.wait_for(accepted, a.data_timeout)
            except asyncio.TimeoutError:
                raise FtpError('data_connect', 'no data connection from the server')
            while True:
                chunk = await dr.read(65536)
                if not chunk:
                    break
                got += chunk
            dw.close()
        line = await read_reply(reader)
        if not line.startswith(b'226'):
            raise FtpError('reply', 'after transfer %r' % line.strip())
        if len(got) != a.size or hashlib.sha256(got).hexdigest() != a.sha256:
            raise FtpError('checksum', 'received %d bytes, sha256 differs' % len(got))
        await command(reader, writer, 'QUIT', b'221')
        return time.perf_counter() - t0, None
    except FtpError as e:
        return None, e
    except (OSError, asyncio.IncompleteReadError) as e:
        return None, FtpError('socket', str(e))
    finally:
        if data_server is not None:
            data_server.close()
        if writer is not None:
            writer.close()


async def worker(a, deadline, times, fails, examples):
    while time.monotonic() < deadline:
        try:
            dt, err = await asyncio.wait_for(one_session(a), a.timeout)
        except asyncio.TimeoutError:
            dt, err = None, FtpError('timeout', 'session took longer than %g s' % a.timeout)
        if err is None:
            times.append(dt)
        else:
            fails[err.kind] = fails.get(err.kind, 0) + 1
            examples.setdefault(err.kind, str(err))


async def sessions_main(a):
    times, fails, examples = [], {}, {}
    t0 = time.monotonic()
    deadline = t0 + a.seconds
    await asyncio.gather(*(worker(a, deadline, times, fails, examples) for _ in range(a.workers)))
    wall = time.monotonic() - t0
    times.sort()
    if a.times_file:
        with open(a.times_file, 'a') as tf:
            tf.write(''.join('%.3f\n' % (t * 1000) for t in times))
    nfail = sum(fails.values())
    print('sessions_ok=%d' % len(times))
    print('sessions_failed=%d' % nfail)
    print('checksum_failures=%d' % fails.get('checksum', 0))
    print('wall_s=%.3f' % wall)
    print('rate=%.1f' % (len(times) / wall if wall > 0 else 0))
    print('p50_ms=%.2f' % (pct(times, 50) * 1000))
    print('p99_ms=%.2f' % (pct(times, 99) * 1000))
    print('failures=%s' % (','.join('%s:%d' % kv for kv in sorted(fails.items())) or '-'))
    for k, v in sorted(examples.items()):
        print('example_%s=%s' % (k, v.replace('\n', ' ')))


# --- openings (blocking sockets: the timed path has no event-loop overhead) ----------------------

class Ctl:
    def __init__(self, server, timeout):
        self.s = socket.create_connection((server, 21), timeout=timeout)
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.f = self.s.makefile('rb')
        if not self.reply().startswith(b'220'):
            raise FtpError('reply', 'no 220')

    def reply(self):
        line = self.f.readline()
        if not line.endswith(b'\n'):
            raise FtpError('control_closed', 'control connection closed')
        if line[3:4] == b'-':
            code = line[:3]
            while True:
                more = self.f.readline()
                if not more.endswith(b'\n'):
                    raise FtpError('control_closed', 'closed in a multi-line reply')
                if more[:3] == code and more[3:4] == b' ':
                    break
        return line

    def cmd(self, text, want):
        self.s.sendall(text.encode() + b'\r\n')
        line = self.reply()
        if not line.startswith(want):
            raise FtpError('reply', '%s -> %r' % (text, line.strip()))
        return line

    def login(self):
        line = self.cmd('USER anonymous', b'')
        if line.startswith(b'331'):
            self.cmd('PASS load@', b'230')
        elif not line.startswith(b'230'):
            raise FtpError('reply', 'USER -> %r' % line.strip())

    def timed(self, text, want):
        t0 = time.perf_counter_ns()
        self.cmd(text, want)
        return (time.perf_counter_ns() - t0) / 1e3   # microseconds


def open_holder(server, timeout, tries=5):
    # vsftpd listens with a backlog of 32: a refused or reset connect is retried, not counted.
    for i in range(tries):
        try:
            c = Ctl(server, timeout)
            c.login()
            c.cmd('PASV', b'227')
            return c
        except (OSError, FtpError):
            if i == tries - 1:
                raise
            time.sleep(0.05 * (i + 1))


def openings_main(a):
    raise_nofile()
    from concurrent.futures import ThreadPoolExecutor
    holders, t0 = [], time.monotonic()
    with ThreadPoolExecutor(max_workers=8) as ex:
        holders = list(ex.map(lambda _: open_holder(a.server, a.timeout), range(a.count)))
    print('holders=%d' % len(holders))
    print('holders_open_s=%.2f' % (time.monotonic() - t0))
    sys.stdout.flush()
    if a.hold_file:
        deadline = time.monotonic() + 60
        while os.path.exists(a.hold_file) and time.monotonic() < deadline:
            time.sleep(0.05)
    ann = Ctl(a.server, a.timeout); ann.login()
    by = Ctl(a.server, a.timeout); by.login()
    pasv, noop = [], []
    for i in range(a.samples):
        pasv.append(ann.timed('PASV', b'227'))
        noop.append(by.timed('NOOP', b'200'))
        if a.pace_ms:
            time.sleep(a.pace_ms / 1000.0)
    pasv.sort(); noop.sort()
    print('samples=%d' % a.samples)
    print('pasv_p50_us=%.0f' % pct(pasv, 50))
    print('pasv_p99_us=%.0f' % pct(pasv, 99))
    print('noop_p50_us=%.0f' % pct(noop, 50))
    print('noop_p99_us=%.0f' % pct(noop, 99))
    # Holders still alive afterwards (vsftpd's idle timeout or a dead opening would show here).
    alive = 0
    for c in holders:
        try:
            c.cmd('NOOP', b'200'); alive += 1
        except (OSError, FtpError):
            pass
    print('holders_alive_after=%d' % alive)
    for c in holders + [ann, by]:
        try:
            c.s.sendall(b'QUIT\r\n')
            c.s.close()
        except OSError:
            pass


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest='what', required=True)
    s = sub.add_parser('sessions')
    s.add_argument('--server', required=True)
    s.add_argument('--bind', default='')
    s.add_argument('--file', required=True)
    s.add_argument('--sha256', required=True)
    s.add_argument('--size', type=int, required=True)
    s.add_argument('--workers', type=int, default=8)
    s.add_argument('--seconds', type=float, default=20)
    s.add_argument('--data', choices=['pasv', 'port'], default='pasv')
    s.add_argument('--timeout', type=float, default=10, help='bound of one whole session (s)')
    s.add_argument('--data-timeout', type=float, default=2, help='bound of the data connection (s)')
    s.add_argument('--times-file', default='', help='append each completed session time (ms), one a line')
    o = sub.add_parser('openings')
    o.add_argument('--server', required=True)
    o.add_argument('--count', type=int, default=0)
    o.add_argument('--samples', type=int, default=300)
    o.add_argument('--pace-ms', type=float, default=2)
    o.add_argument('--timeout', type=float, default=10)
    o.add_argument('--hold-file', default='')
    a = p.parse_args()
    if a.what == 'sessions':
        raise_nofile()
        asyncio.run(sessions_main(a))
    else:
        openings_main(a)


if __name__ == '__main__':
    main()
