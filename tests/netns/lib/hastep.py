#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""A step-by-step ftplib session for lib/ha.sh: one control connection, one command per step.

  hastep.py --host H --dir D --files F [--timeout S] [--source ADDR]

Logs in anonymously, then waits for D/cmd.1, D/cmd.2, ... (each written whole by the story, by
rename), runs it and answers in D/done.N ("ok ..." or "err ..."), so the story can fail a gateway
over between two steps of the same control connection. Commands:
  get NAME PASV|PORT     download NAME, compare its sha256 with F/NAME
  put NAME PASV|PORT     upload F/NAME as up/ha-<pid>-<N>-NAME (the story compares on the server)
  pasv                   send PASV and read the 227 only (the address is kept)
  retr NAME              connect to the kept 227 address, RETR NAME, compare
  quit                   QUIT; the reply in done.N; exit
The client trusts the 227's address (trust_server_pasv_ipv4_address), so a missing rewrite fails.
Debug level 1 prints every command and reply (the story reads the 227s from it).
"""
import argparse
import ftplib
import hashlib
import os
import socket
import sys
import time


class StepFTP(ftplib.FTP):
    trust_server_pasv_ipv4_address = True


def sha_file(p):
    h = hashlib.sha256()
    with open(p, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", required=True)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--files", required=True)
    ap.add_argument("--timeout", type=float, default=20.0)
    ap.add_argument("--source", default=None, help="the client's address (the control connection's)")
    a = ap.parse_args()
    dl = os.path.join(a.dir, "dl")
    os.makedirs(dl, exist_ok=True)
    ftp = StepFTP(timeout=a.timeout)
    ftp.set_debuglevel(1)
    ftp.connect(a.host, 21, source_address=(a.source, 0) if a.source else None)
    ftp.login("anonymous", "bench@")
    kept = None
    n = 0
    while True:
        n += 1
        cmd_file = os.path.join(a.dir, "cmd.%d" % n)
        for _ in range(6000):      # at most 10 minutes between two steps
            if os.path.exists(cmd_file):
                break
            time.sleep(0.02)
        else:
            return 3
        words = open(cmd_file).read().split()
        t0 = time.time()
        try:
            if words[0] in ("get", "put"):
                name, mode = words[1], words[2]
                ftp.set_pasv(mode == "PASV")
                if words[0] == "get":
                    local = os.path.join(dl, "%d-%s" % (n, name))
                    with open(local, "wb") as f:
                        ftp.retrbinary("RETR " + name, f.write)
                    if sha_file(local) != sha_file(os.path.join(a.files, name)):
                        raise RuntimeError("download %s differs" % name)
                    os.unlink(local)
                else:
                    with open(os.path.join(a.files, name), "rb") as f:
                        ftp.storbinary("STOR up/ha-%d-%d-%s" % (os.getpid(), n, name), f)
                    # the name the story checks on the server's disk
                    name = "up/ha-%d-%d-%s" % (os.getpid(), n, words[1])
                out = "ok %s %s %s" % (words[0], mode, name)
            elif words[0] == "pasv":
                resp = ftp.sendcmd("PASV")
                kept = ftplib.parse227(resp)
                out = "ok " + resp
            elif words[0] == "retr":
                name = words[1]
                ftp.voidcmd("TYPE I")
                s = socket.create_connection(kept, a.timeout, source_address=ftp.source_address)
                resp = ftp.sendcmd("RETR " + name)
                if resp[0] != "1":
                    raise ftplib.error_reply(resp)
                local = os.path.join(dl, "%d-%s" % (n, name))
                with open(local, "wb") as f:
                    while True:
                        b = s.recv(65536)
                        if not b:
                            break
                        f.write(b)
                s.close()
                ftp.voidresp()
                if sha_file(local) != sha_file(os.path.join(a.files, name)):
                    raise RuntimeError("download %s differs" % name)
                os.unlink(local)
                out = "ok retr %s from %s:%d" % (name, kept[0], kept[1])
            elif words[0] == "quit":
                out = "ok " + ftp.quit()
            else:
                out = "err unknown command " + words[0]
        except (OSError, EOFError, ftplib.Error, RuntimeError) as e:
            out = "err %s: %s" % (type(e).__name__, e)
        out += " (%.1f s)" % (time.time() - t0)
        tmp = os.path.join(a.dir, ".done.%d" % n)
        with open(tmp, "w") as f:
            f.write(out + "\n")
        os.rename(tmp, os.path.join(a.dir, "done.%d" % n))
        print("step %d: %s -> %s" % (n, " ".join(words), out), flush=True)
        if words[0] == "quit" or out.startswith("err"):
            return 0 if out.startswith("ok") else 1


if __name__ == "__main__":
    sys.exit(main())
