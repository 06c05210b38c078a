#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""FTPS client for the bench (ftplib.FTP_TLS): one session, explicit TLS, anonymous login.

  ftpsc.py --host H --mode PASV|EPSV [--timeout S] [--source IP] [--ccc]
           [--get REMOTE LOCAL]... [--put LOCAL REMOTE]...
           [--secured FILE] [--before-ccc FILE]
           [--ready FILE] [--hold FILE] [--quit-done FILE] [--linger FILE]

AUTH TLS, USER/PASS, PBSZ 0, PROT P (data connections are TLS too); with --ccc the control
connection returns to clear text (CCC, RFC 4217 12.3: the 200 reply, then both close_notify
alerts) before the transfers. The transfers use MODE only (EPSV through a makepasv override).
For the holding sessions of the stories:
  --secured FILE    created after PROT P (the control connection is TLS);
  --before-ccc FILE waits (at most 120 s) until FILE exists before CCC;
  --ready FILE      created after the transfers (the session is open and secured);
  --hold FILE       waits (at most 120 s, a NOOP every 10 s) until FILE exists before QUIT;
  --quit-done FILE  created after QUIT was answered (221);
  --linger FILE     keeps the TCP connection open after the 221 until FILE exists (at most 120 s).
Debug level 1 prints every command (*cmd*) and reply (*resp*) as lib/clients.sh expects from
ftplib. Exit status 0 only if every step completed.
"""
import argparse
import ftplib
import os
import ssl
import sys
import time


class BenchFTPS(ftplib.FTP_TLS):
    mode = "PASV"
    trust_server_pasv_ipv4_address = True

    def makepasv(self):
        if self.mode == "EPSV":
            return ftplib.parse229(self.sendcmd("EPSV"), self.sock.getpeername())
        return ftplib.parse227(self.sendcmd("PASV"))


def wait_for(path, limit=120.0, ftp=None):
    """Waits for path; with ftp, a NOOP every 10 s keeps the session alive (vsftpd's
    idle_session_timeout in the bench is 30 s)."""
    t0 = last = time.monotonic()
    while not os.path.exists(path):
        now = time.monotonic()
        if now - t0 > limit:
            raise TimeoutError("no %s after %.0f s" % (path, limit))
        if ftp is not None and now - last > 10:
            ftp.voidcmd("NOOP")
            last = now
        time.sleep(0.05)


def touch(path):
    with open(path, "w"):
        pass


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", required=True)
    ap.add_argument("--port", type=int, default=21)
    ap.add_argument("--mode", required=True, choices=["PASV", "EPSV"])
    ap.add_argument("--timeout", type=float, default=10.0)
    ap.add_argument("--source")
    ap.add_argument("--ccc", action="store_true")
    ap.add_argument("--get", nargs=2, action="append", default=[], metavar=("REMOTE", "LOCAL"))
    ap.add_argument("--put", nargs=2, action="append", default=[], metavar=("LOCAL", "REMOTE"))
    ap.add_argument("--secured")
    ap.add_argument("--before-ccc")
    ap.add_argument("--ready")
    ap.add_argument("--hold")
    ap.add_argument("--quit-done")
    ap.add_argument("--linger")
    a = ap.parse_args()

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE       # the bench's throw-away self-signed certificate
    ftp = BenchFTPS(context=ctx, timeout=a.timeout,
                    source_address=(a.source, 0) if a.source else None)
    ftp.mode = a.mode
    ftp.set_debuglevel(1)
    ftp.set_pasv(True)
    try:
        ftp.connect(a.host, a.port)
        ftp.login("anonymous", "bench@", secure=True)   # AUTH TLS first
        ftp.prot_p()
        if a.secured:
            touch(a.secured)
        if a.before_ccc:
            wait_for(a.before_ccc)
        if a.ccc:
            ftp.ccc()
            # ftplib keeps reading through the unwrapped socket: from here on clear text.
            print("ftpsc: control connection in clear text again", flush=True)
        for remote, local in a.get:
            with open(local, "wb") as f:
                ftp.retrbinary("RETR " + remote, f.write)
        for local, remote in a.put:
            with open(local, "rb") as f:
                ftp.storbinary("STOR " + remote, f)
        if a.ready:
            touch(a.ready)
        if a.hold:
            wait_for(a.hold, ftp=ftp)
        resp = ftp.sendcmd("QUIT")   # not quit(): the connection may stay open (--linger)
        if a.quit_done:
            touch(a.quit_done)
        if a.linger:
            wait_for(a.linger)
        ftp.close()
        if not resp.startswith("221"):
            print("ftpsc: QUIT answered %r" % resp, flush=True)
            return 1
    except (OSError, EOFError, ftplib.Error, TimeoutError) as e:
        print(f"ftpsc: {type(e).__name__}: {e}", flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
