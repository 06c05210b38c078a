#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""ftplib client for the bench: one session, anonymous login, a list of transfers, one data mode.

  ftpc.py --host H --mode PASV|EPSV|PORT|EPRT [--timeout S] [--source IP]
          [--get REMOTE LOCAL]... [--put LOCAL REMOTE]...

The mode is forced over IPv4 (ftplib alone uses EPSV/EPRT only over IPv6): EPSV (RFC 2428 §3)
and EPRT (RFC 2428 §2) are sent by overriding makepasv/makeport; over IPv6 (--host an IPv6
address) EPSV and EPRT |2| the same way. The client trusts the address a 227 reply announces,
so a missing rewrite on a NAT gateway makes the transfer fail instead of being papered over.
Debug level 1 prints every command (*cmd*) and reply (*resp*): the bench checks on it which data
command was really sent. Exit status 0 only if every transfer completed.
"""
import argparse
import ftplib
import socket
import sys


class BenchFTP(ftplib.FTP):
    mode = "PASV"
    trust_server_pasv_ipv4_address = True

    def makepasv(self):
        if self.mode == "EPSV":
            return ftplib.parse229(self.sendcmd("EPSV"), self.sock.getpeername())
        host, port = ftplib.parse227(self.sendcmd("PASV"))
        return host, port

    def makeport(self):
        # The control connection's family: EPRT |1| over IPv4, |2| over IPv6 (sendeprt picks it).
        sock = socket.create_server((self.sock.getsockname()[0], 0), family=self.sock.family, backlog=1)
        host, port = sock.getsockname()[:2]
        if self.mode == "EPRT":
            self.sendeprt(host, port)
        else:
            self.sendport(host, port)
        sock.settimeout(self.timeout)
        return sock


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", required=True)
    ap.add_argument("--mode", required=True, choices=["PASV", "EPSV", "PORT", "EPRT"])
    ap.add_argument("--timeout", type=float, default=10.0)
    ap.add_argument("--source")
    ap.add_argument("--get", nargs=2, action="append", default=[], metavar=("REMOTE", "LOCAL"))
    ap.add_argument("--put", nargs=2, action="append", default=[], metavar=("LOCAL", "REMOTE"))
    a = ap.parse_args()

    ftp = BenchFTP(timeout=a.timeout, source_address=(a.source, 0) if a.source else None)
    ftp.mode = a.mode
    ftp.set_debuglevel(1)
    ftp.set_pasv(a.mode in ("PASV", "EPSV"))
    try:
        ftp.connect(a.host, 21)
        ftp.login("anonymous", "bench@")
        for remote, local in a.get:
            with open(local, "wb") as f:
                ftp.retrbinary("RETR " + remote, f.write)
        for local, remote in a.put:
            with open(local, "rb") as f:
                ftp.storbinary("STOR " + remote, f)
        ftp.quit()
    except (OSError, EOFError, ftplib.Error) as e:
        print(f"ftpc: {type(e).__name__}: {e}", flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
