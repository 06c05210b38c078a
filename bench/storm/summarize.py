#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
# bench/storm/summarize.py RESULTS.csv RESULTS.md PLOT.png: the medians over the rounds, the ratios
# against the bare queue and the kernel (each from one interleaved run), the goals of issue 13, and a
# plot (matplotlib; skipped with a note when it is missing).
import csv
import re
import statistics
import sys

csv_path, md_path, png_path = sys.argv[1:4]
rows = list(csv.DictReader(open(csv_path)))
MODES = ["kernel", "bare", "ftpwalld-iptables", "ftpwalld-nft"]


def num(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def med(vals):
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


def fmt(v, nd=0):
    if v is None:
        return "–"
    return f"{v:,.{nd}f}".replace(",", " ") if nd == 0 else f"{v:.{nd}f}"


def ratio(a, b):
    return a / b if a is not None and b else None


storm = [r for r in rows if r["part"] == "storm"]
for r in storm:  # patched daemons (--variant NAME=PATH) after the four modes
    if r["mode"] not in MODES:
        MODES.append(r["mode"])
groups = []
for r in storm:
    g = (r["nat"], r["cmd"])
    if g not in groups:
        groups.append(g)
S = {}  # (nat, cmd, mode) -> medians
for nat, cmd in groups:
    for m in MODES:
        rs = [r for r in storm if r["nat"] == nat and r["cmd"] == cmd and r["mode"] == m]
        if not rs:
            continue
        S[(nat, cmd, m)] = {
            k: med([num(r[k]) for r in rs])
            for k in ("rate", "p50_us", "p99_us", "cpu_us_per_packet", "wait_p50_us", "wait_p99_us", "max_wait_us",
                      "errors", "unexpected_addr", "announcements")
        }
        S[(nat, cmd, m)]["rounds"] = len([r for r in rs if r["rate"]])
        S[(nat, cmd, m)]["all_rates"] = [num(r["rate"]) for r in rs]

loads = [r["loadavg"] for r in rows if r.get("loadavg")]
out = []
out.append("### Announcements per second (median of the rounds; ratios from the same run)\n")
out.append("| NAT | command | kernel | bare queue | ftpwalld iptables-legacy | ftpwalld nftables | "
           "nft / bare | nft / kernel | iptables / bare | bare / kernel |")
out.append("|---|---|---|---|---|---|---|---|---|---|")
for nat, cmd in groups:
    g = lambda m, k="rate": S.get((nat, cmd, m), {}).get(k)
    label = {"pasv": "PASV → 227", "epsv": "EPSV → 229", "port": "PORT → 200"}[cmd]
    if nat == "dnat" and cmd == "pasv":
        label += " (rewritten, length +1)"
    out.append(f"| {'server DNAT' if nat == 'dnat' else 'none'} | {label} | {fmt(g('kernel'))} | {fmt(g('bare'))} | "
               f"{fmt(g('ftpwalld-iptables'))} | {fmt(g('ftpwalld-nft'))} | "
               f"{fmt(ratio(g('ftpwalld-nft'), g('bare')), 2)} | {fmt(ratio(g('ftpwalld-nft'), g('kernel')), 2)} | "
               f"{fmt(ratio(g('ftpwalld-iptables'), g('bare')), 2)} | {fmt(ratio(g('bare'), g('kernel')), 2)} |")
out.append("")
extra = [m for m in MODES[4:]]
if extra:
    out.append("### Patched daemons (--variant), same run: announcements/s and ratios\n")
    out.append("The unpatched daemon of the same backend is `ftpwalld-BACKEND`, or `base-BACKEND` / `head-BACKEND` when "
               "the run has a variant of that name. CPU per packet is the steadier figure on a loaded machine.\n")
    out.append("| NAT | command | mode | rate | / bare | rate / unpatched | p50 µs | p99 µs | CPU µs / packet | CPU / unpatched |")
    out.append("|---|---|---|---|---|---|---|---|---|---|")
    for nat, cmd in groups:
        for m in extra:
            s_ = S.get((nat, cmd, m))
            if not s_:
                continue
            # NAME-nft-qN (several queues) against its one-queue NAME-nft
            backend = re.sub(r"-q[0-9]+$", "", m).rsplit("-", 1)[1]
            b = (S.get((nat, cmd, "ftpwalld-" + backend)) or S.get((nat, cmd, "base-" + backend))
                 or S.get((nat, cmd, "head-" + backend)) or {})
            if m.startswith("base-") or m.startswith("head-"):
                b = {}
            out.append(f"| {'server DNAT' if nat == 'dnat' else 'none'} | {cmd.upper()} | {m} | {fmt(s_['rate'])} | "
                       f"{fmt(ratio(s_['rate'], S.get((nat, cmd, 'bare'), {}).get('rate')), 2)} | "
                       f"{fmt(ratio(s_['rate'], b.get('rate')), 2)} | "
                       f"{fmt(s_['p50_us'])} | {fmt(s_['p99_us'])} | "
                       f"{fmt(s_['cpu_us_per_packet'], 2) if s_['cpu_us_per_packet'] is not None else '–'} | "
                       f"{fmt(ratio(s_['cpu_us_per_packet'], b.get('cpu_us_per_packet')), 2)} |")
    out.append("")
out.append("### Client-side latency per announcement, send → reply, µs (median of the rounds' p50 / p99)\n")
out.append("| NAT | command | " + " | ".join(MODES) + " |")
out.append("|---|---|" + "---|" * len(MODES))
for nat, cmd in groups:
    cells = []
    for m in MODES:
        s = S.get((nat, cmd, m), {})
        cells.append(f"{fmt(s.get('p50_us'))} / {fmt(s.get('p99_us'))}")
    out.append(f"| {'server DNAT' if nat == 'dnat' else 'none'} | {cmd.upper()} | " + " | ".join(cells) + " |")
out.append("")
out.append("### The daemon's side: CPU per queued packet and the wait of an announcement's verdict\n")
out.append("CPU: utime+stime of the process (all threads) over its life / packets it got (`packets=` of its stop "
           "line; the bare loop's own count). Verdict wait: the `in the kernel after N us` of the daemon's "
           "`opening` log lines (audit = limited: a rate-limited sample, `samples` of them), and `max_wait_us` of "
           "its stop line. Medians of the rounds.\n")
out.append("| NAT | command | mode | CPU µs / packet | verdict wait p50 µs | p99 µs | max µs | samples/round | errors | unrewritten 227 |")
out.append("|---|---|---|---|---|---|---|---|---|---|")
for nat, cmd in groups:
    for m in MODES:
        s = S.get((nat, cmd, m))
        if not s:
            continue
        rs = [r for r in storm if r["nat"] == nat and r["cmd"] == cmd and r["mode"] == m]
        samples = med([num(r["wait_samples"]) for r in rs])
        out.append(f"| {'server DNAT' if nat == 'dnat' else 'none'} | {cmd.upper()} | {m} | "
                   f"{fmt(s['cpu_us_per_packet'], 2) if s['cpu_us_per_packet'] is not None else '–'} | "
                   f"{fmt(s['wait_p50_us'])} | {fmt(s['wait_p99_us'])} | {fmt(s['max_wait_us'])} | {fmt(samples)} | "
                   f"{fmt(s['errors'])} | {fmt(s['unexpected_addr']) if nat == 'dnat' and cmd == 'pasv' else '–'} |")
out.append("")
waits = [r for r in rows if r["part"] == "wait" and r["wait_samples"]]
if waits:
    out.append("### The wait of an announcement's verdict, every opening (audit = \"full\", one round of PASV)\n")
    out.append("From the announcement's arrival at the daemon to its opening being in the kernel (the verdict is sent "
               "then): the `in the kernel after N us` of every `opening` line. Full audit logs one line per opening, "
               "which costs some throughput itself (the rate column).\n")
    out.append("| NAT | mode | announcements/s | openings logged | wait p50 µs | p99 µs | max µs |")
    out.append("|---|---|---|---|---|---|---|")
    for r in waits:
        out.append(f"| {'server DNAT' if r['nat'] == 'dnat' else 'none'} | {r['mode']} | {fmt(num(r['rate']))} | "
                   f"{fmt(num(r['wait_samples']))} | {fmt(num(r['wait_p50_us']))} | {fmt(num(r['wait_p99_us']))} | "
                   f"{fmt(num(r['max_wait_us']))} |")
    out.append("")
mallocs = [r for r in rows if r["part"] == "mallocs" and r["value"] and r["packets"]]
if mallocs:
    out.append("### Allocations on the packet path (--profile, PASV, nftables backend)\n")
    out.append("| NAT | malloc calls | packets | per packet |")
    out.append("|---|---|---|---|")
    for r in mallocs:
        out.append(f"| {'server DNAT' if r['nat'] == 'dnat' else 'none'} | {fmt(num(r['value']))} | {fmt(num(r['packets']))} | "
                   f"{num(r['value']) / num(r['packets']):.1f} |")
    out.append("")
out.append("### CPU per announcement and what one core would give (medians of the rounds)\n")
out.append("CPU µs per announcement = CPU µs per packet × queued packets per announcement (the command, its reply, "
           "the odd pure ACK); capacity = 10⁶ / that: the announcements/s of one core given to the helper alone. "
           "On a busy shared machine this ratio is steadier than the throughput's: it does not depend on what the "
           "peers and the other jobs leave of the two cores. It counts what the kernel does in the helper's "
           "syscalls (a verdict reinjects the packet and, over veth, runs the receiver's TCP in the same call), "
           "for the bare loop as much as for ftpwalld.\n")
out.append("| NAT | command | mode | packets / announcement | CPU µs / announcement | capacity / s | / bare |")
out.append("|---|---|---|---|---|---|---|")
CAP = {}
for nat, cmd in groups:
    cap = {}
    for m in MODES:
        rs = [r for r in storm if r["nat"] == nat and r["cmd"] == cmd and r["mode"] == m and r["packets"] and r["announcements"]]
        if not rs:
            continue
        ppa = med([num(r["packets"]) / num(r["announcements"]) for r in rs])
        upa = med([num(r["cpu_us_per_packet"]) * num(r["packets"]) / num(r["announcements"]) for r in rs])
        cap[m] = (ppa, upa, 1e6 / upa if upa else None)
        CAP[(nat, cmd, m)] = cap[m][2]
    for m, (ppa, upa, c) in cap.items():
        out.append(f"| {'server DNAT' if nat == 'dnat' else 'none'} | {cmd.upper()} | {m} | {ppa:.2f} | {upa:.1f} | "
                   f"{fmt(c)} | {fmt(ratio(c, cap.get('bare', (0, 0, None))[2]), 2)} |")
out.append("")

# Whole sessions (the sessions part): announcements = completed sessions, rate = sessions/s,
# p50/p99 = a session's time, count = payload bytes per RETR, value2 = sessions unfinished at the end.
sess = [r for r in rows if r["part"] == "sessions"]
SMODES = []
for m in MODES + [r["mode"] for r in sess]:
    if m != "bare" and m not in SMODES and any(r["mode"] == m for r in sess):
        SMODES.append(m)
sgroups = []
for r in sess:
    if (r["nat"], r["cmd"]) not in sgroups:
        sgroups.append((r["nat"], r["cmd"]))
SS = {}
for nat, cmd in sgroups:
    for m in SMODES:
        rs = [r for r in sess if r["nat"] == nat and r["cmd"] == cmd and r["mode"] == m]
        if not rs:
            continue
        d = {k: med([num(r[k]) for r in rs]) for k in ("rate", "p50_us", "p99_us", "cpu_us_per_packet")}
        d["errors"] = sum(num(r["errors"]) or 0 for r in rs)
        d["unexpected_addr"] = sum(num(r["unexpected_addr"]) or 0 for r in rs)
        d["unfinished"] = sum(num(r["value2"]) or 0 for r in rs)
        d["sessions"] = sum(num(r["announcements"]) or 0 for r in rs)
        d["rounds"] = {r["round"]: num(r["rate"]) for r in rs}
        d["payload"] = med([num(r["count"]) for r in rs])
        pk = [r for r in rs if r["packets"] and r["announcements"] and num(r["announcements"])]
        d["pps"] = med([num(r["packets"]) / num(r["announcements"]) for r in pk])
        d["cps"] = med([num(r["cpu_us_per_packet"]) * num(r["packets"]) / num(r["announcements"]) for r in pk if r["cpu_us_per_packet"]])
        SS[(nat, cmd, m)] = d


def per_round(nat, cmd, m):  # the ratio to the kernel round by round (the modes of a round ran back to back)
    a, k = SS.get((nat, cmd, m), {}).get("rounds", {}), SS.get((nat, cmd, "kernel"), {}).get("rounds", {})
    return [a[r] / k[r] for r in sorted(a) if a.get(r) and k.get(r)]


if sess:
    others = [m for m in SMODES if m != "kernel"]
    payload = med([num(r["count"]) for r in sess])
    out.append("### Whole sessions per second (median of the rounds; ratios from the same run)\n")
    out.append(f"Each session: connect, 220, USER, PASS, the announcement, the data connection to the announced address, "
               f"RETR of {fmt(payload)} bytes checked byte by byte, 226, QUIT, 221, close; "
               f"{sess[0]['conns']} workers at once. Ratio = median of the mode / median of the kernel helper; "
               "per round = the same ratio in each round (the modes of a round ran back to back).\n")
    out.append("| NAT | command | " + " | ".join(SMODES) + " | " + " | ".join(f"{m} / kernel" for m in others) +
               " | per round (" + ", ".join(others) + ") |")
    out.append("|---|---|" + "---|" * (len(SMODES) + 2 * len(others) - (len(others) - 1 if others else 0)))
    for nat, cmd in sgroups:
        g = lambda m: SS.get((nat, cmd, m), {}).get("rate")
        label = {"pasv": "PASV", "epsv": "EPSV", "port": "PORT"}[cmd]
        if nat == "dnat" and cmd == "pasv":
            label += " (227 rewritten)"
        pr = "; ".join("/".join(f"{x:.2f}" for x in per_round(nat, cmd, m)) or "–" for m in others)
        out.append(f"| {'server DNAT' if nat == 'dnat' else 'none'} | {label} | " + " | ".join(fmt(g(m)) for m in SMODES) +
                   " | " + " | ".join(fmt(ratio(g(m), g("kernel")), 2) for m in others) + f" | {pr} |")
    out.append("")
    if "kernel-bare" in SMODES:  # the queue's price on whole sessions: the ceiling of an NFQUEUE helper
        qs = [m for m in SMODES if m not in ("kernel", "kernel-bare")]
        out.append("### Whole sessions against the queue's ceiling (kernel-bare: the kernel helper behind the bare queue)\n")
        out.append("| NAT | command | kernel-bare / kernel | " + " | ".join(f"{m} / kernel-bare" for m in qs) + " |")
        out.append("|---|---|---|" + "---|" * len(qs))
        for nat, cmd in sgroups:
            g = lambda m: SS.get((nat, cmd, m), {}).get("rate")
            out.append(f"| {'server DNAT' if nat == 'dnat' else 'none'} | {cmd.upper()} | {fmt(ratio(g('kernel-bare'), g('kernel')), 2)} | " +
                       " | ".join(fmt(ratio(g(m), g("kernel-bare")), 2) for m in qs) + " |")
        out.append("")
    out.append("### Whole sessions: a session's time, errors and the daemon's CPU per session (medians of the rounds)\n")
    out.append("Session time: client-side, connect to close (p50 / p99 of each round, median over the rounds). "
               "Errors: sessions that failed (a wrong or missing reply, a data connection refused or stalled 5 s, a "
               "payload of the wrong length or content), summed over the rounds; unfinished: sessions still in flight "
               "6 s after the end (a session stalled for 5 s is an error, counted also after the end). CPU: the daemon's utime+stime per "
               "queued packet × queued packets per session; one core = 10⁶ / CPU µs per session.\n")
    out.append("| NAT | command | mode | sessions (all rounds) | p50 ms | p99 ms | errors | unfinished | unrewritten 227 | "
               "queued packets / session | CPU µs / session | one core: sessions/s |")
    out.append("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for nat, cmd in sgroups:
        for m in SMODES:
            d = SS.get((nat, cmd, m))
            if not d:
                continue
            ms = lambda v: f"{v / 1000:.1f}" if v is not None else "–"
            out.append(f"| {'server DNAT' if nat == 'dnat' else 'none'} | {cmd.upper()} | {m} | {fmt(d['sessions'])} | "
                       f"{ms(d['p50_us'])} | {ms(d['p99_us'])} | {fmt(d['errors'])} | {fmt(d['unfinished'])} | "
                       f"{fmt(d['unexpected_addr']) if nat == 'dnat' and cmd == 'pasv' else '–'} | "
                       f"{fmt(d['pps'], 1) if d['pps'] is not None else '–'} | {fmt(d['cps'])} | "
                       f"{fmt(1e6 / d['cps']) if d['cps'] else '–'} |")
    out.append("")

idle = [r for r in rows if r["part"] == "idle"]
idle_per = [r for r in rows if r["part"] == "idle-per-session"]
if idle:
    out.append("### Idle sessions: ftpwalld's VmRSS (nftables backend)\n")
    out.append("| NAT | idle sessions | tracked by the daemon | VmRSS before kB | after kB | bytes per session |")
    out.append("|---|---|---|---|---|---|")
    for r in idle:
        per = next((p for p in idle_per if p["conns"] == r["conns"] and p["nat"] == r["nat"]), None)
        whole = per and num(per["count"]) is not None and num(per["count"]) >= num(r["count"])
        out.append(f"| {'server DNAT' if r['nat'] == 'dnat' else 'none'} | {fmt(num(r['count']))} | "
                   f"{fmt(num(per['count'])) if per else '–'} | {fmt(num(r['value']))} | "
                   f"{fmt(num(r['value2']))} | {fmt(num(per['value'])) if whole else 'incomplete run'} |")
    out.append("")

op = [r for r in rows if r["part"] == "openings"]
O = {}
for r in op:
    O.setdefault((r["mode"], int(r["count"] or 0)), []).append(r)
if op:
    out.append("### One opening's install latency with K live openings (median over the rounds)\n")
    out.append("apply = the backend call the daemon's worker makes for one opening (nftables: one batch; "
               "iptables-legacy: lock, snapshot, edit, libiptc commit); commit = the kernel's part. "
               "nftables: p50/p99 of 200 opens per round; iptables-legacy: p50 and max of 21 (the probe reports no p99).\n")
    out.append("| backend | live openings | apply p50 µs | apply p99 µs (iptables: max) | commit p50 µs | commit p99 µs |")
    out.append("|---|---|---|---|---|---|")
    for (b, k), rs in sorted(O.items()):
        out.append(f"| {b} | {fmt(k)} | {fmt(med([num(r['p50_us']) for r in rs]))} | {fmt(med([num(r['p99_us']) for r in rs]))} | "
                   f"{fmt(med([num(r['value']) for r in rs]))} | {fmt(med([num(r['value2']) for r in rs]))} |")
    out.append("")

# The goals of issue 13
out.append("### Against the goals of issue 13\n")
out.append("Announcements/s are judged twice: by the measured throughput ratio (noisy on this shared machine) and "
           "by the one-core capacity ratio from CPU per announcement (steadier). A goal counts as met when both say so.\n")
out.append("| goal | measured | met |")
out.append("|---|---|---|")
for m in [x for x in MODES if x.endswith("-nft") or x.endswith("-iptables")]:
    for nat, cmd, goal in (("plain", "pasv", 0.9), ("plain", "epsv", 0.9), ("plain", "port", 0.9), ("dnat", "pasv", 0.7)):
        r_ = ratio(S.get((nat, cmd, m), {}).get("rate"), S.get((nat, cmd, "bare"), {}).get("rate"))
        c_ = ratio(CAP.get((nat, cmd, m)), CAP.get((nat, cmd, "bare")))
        if r_ is None:
            continue
        what = "without NAT" if nat == "plain" else "with a length-changing rewrite"
        met = r_ >= goal and (c_ is None or c_ >= goal)
        out.append(f"| {m} announcements/s ≥ {goal}× bare queue, {cmd.upper()} {what} | throughput {r_:.2f}×, "
                   f"capacity {fmt(c_, 2)}× | {'yes' if met else 'no'} |")
for b in ("nftables", "nftables-pairs"):
    nft10k = med([num(r["p99_us"]) for r in O.get((b, 10000), [])])
    if nft10k is not None:
        out.append(f"| opening install p99 ≤ 200 µs with 10 000 live openings ({b}) | {nft10k:.0f} µs | "
                   f"{'yes' if nft10k <= 200 else 'no'} |")
for p in idle_per:
    v = num(p["value"])
    if v is not None and num(p["count"]) is not None and num(p["count"]) >= num(p["conns"]):
        where = " behind DNAT" if p["nat"] == "dnat" else ""
        out.append(f"| ≤ 1 KiB per idle session{where} at {fmt(num(p['conns']))} | {v:.0f} B | {'yes' if v <= 1024 else 'no'} |")
if not sess:
    out.append("| whole sessions/s ≥ 0.95× kernel | not measured in this run (the sessions part: --sessions plain,dnat) | – |")
for m in [x for x in SMODES if x not in ("kernel", "kernel-bare")]:  # kernel-bare is the ceiling, not a candidate
    for nat, cmd in sgroups:
        r_ = ratio(SS.get((nat, cmd, m), {}).get("rate"), SS.get((nat, cmd, "kernel"), {}).get("rate"))
        if r_ is None:
            continue
        pr = per_round(nat, cmd, m)
        what = "without NAT" if nat == "plain" else "behind DNAT" + (" (every 227 rewritten)" if cmd == "pasv" else "")
        ceiling = ratio(SS.get((nat, cmd, "kernel-bare"), {}).get("rate"), SS.get((nat, cmd, "kernel"), {}).get("rate"))
        note = f"; the queue's ceiling (kernel-bare) is {ceiling:.2f}×" if ceiling else ""
        out.append(f"| {m} whole sessions/s ≥ 0.95× the kernel helper, {cmd.upper()} {what} | {r_:.2f}× "
                   f"(rounds {'/'.join(f'{x:.2f}' for x in pr) or '–'}){note} | {'yes' if r_ >= 0.95 else 'no'} |")
out.append("")
if loads:
    out.append(f"Load average (1/5/15 min) at the first and last measurement: {loads[0]}, {loads[-1]}.\n")
open(md_path, "w").write("\n".join(out) + "\n")

try:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
except ImportError:
    print("summarize.py: no matplotlib, no plot", file=sys.stderr)
    sys.exit(0)
npanels = 2 + (1 if op else 0) + (1 if SS else 0)
fig, axes = plt.subplots(1, npanels, figsize=(6.5 * npanels, 4.8))
width = 0.8 / len(MODES)
labels = [f"{c.upper()}\n{'DNAT' if n == 'dnat' else 'no NAT'}" for n, c in groups]
colors = {"kernel": "#555555", "bare": "#9ecae1", "kernel-bare": "#3182bd", "ftpwalld-iptables": "#fdae6b",
          "ftpwalld-nft": "#e6550d"}
for k, m in enumerate(x for x in MODES + SMODES if x not in colors):  # variants: greens and purples
    colors[m] = ["#31a354", "#756bb1", "#74c476", "#9e9ac8", "#006d2c", "#54278f"][k % 6]
for panel, (key, title, ylabel) in enumerate((
        ("rate", "Announcement storm: measured throughput", "announcements / s (median of rounds)"),
        ("cap", "CPU-bound capacity of the helper (one core)", "announcements / s = 10⁶ / CPU µs per announcement"))):
    ax = axes[panel]
    for i, m in enumerate(MODES):
        if key == "rate":
            vals = [S.get((n, c, m), {}).get("rate") or 0 for n, c in groups]
        else:
            if m == "kernel":
                continue
            vals = [CAP.get((n, c, m)) or 0 for n, c in groups]
        xs = [j + (i - (len(MODES) - 1) / 2) * width for j in range(len(groups))]
        ax.bar(xs, vals, width, label=m, color=colors[m])
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels(labels)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=7)
    ax.grid(axis="y", alpha=0.3)
if op:
    ax = axes[2]
    for b, c in (("nftables", "#e6550d"), ("nftables-pairs", "#a63603"), ("iptables-legacy", "#fdae6b")):
        ks = sorted(k for (bb, k) in O if bb == b)
        if not ks:
            continue
        p50 = [med([num(r["p50_us"]) for r in O[(b, k)]]) for k in ks]
        p99 = [med([num(r["p99_us"]) for r in O[(b, k)]]) for k in ks]
        xs = [max(k, 1) for k in ks]
        ax.plot(xs, p50, "o-", color=c, label=f"{b} p50")
        ax.plot(xs, p99, "s--", color=c, label=f"{b} {'max' if b == 'iptables-legacy' else 'p99'}")
    ax.axhline(200, color="grey", lw=0.8, ls=":", label="goal p99 200 µs (nftables)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("live openings (0 plotted at 1)")
    ax.set_ylabel("one opening's install, µs")
    ax.set_title("Opening install latency vs live openings")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, which="both")
if SS:  # whole sessions, with the queue's ceiling (kernel-bare) when it ran
    ax = axes[-1]
    sw = 0.8 / max(len(SMODES), 1)
    for i, m in enumerate(SMODES):
        vals = [SS.get((n, c, m), {}).get("rate") or 0 for n, c in sgroups]
        xs = [j + (i - (len(SMODES) - 1) / 2) * sw for j in range(len(sgroups))]
        ax.bar(xs, vals, sw, label=m, color=colors[m])
    ax.set_xticks(range(len(sgroups)))
    ax.set_xticklabels([f"{c.upper()}\n{'DNAT' if n == 'dnat' else 'no NAT'}" for n, c in sgroups])
    ax.set_ylabel("whole sessions / s (median of rounds)")
    ax.set_title("Whole sessions (PASV + RETR), kernel-bare = the queue's ceiling")
    ax.legend(fontsize=7)
    ax.grid(axis="y", alpha=0.3)
fig.tight_layout()
fig.savefig(png_path, dpi=110)
