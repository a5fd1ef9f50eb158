#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Turns the bench's raw measurements (tests/bench/run writes them, one
run per line: section, variant, level, repetition, key=value...) into the
table (TXT) and the chart (PNG, with gnuplot).

usage: summarize.py RAW.tsv OUT.txt OUT.png|- [PROFILE.txt...]

(- for OUT.png: no chart.)

Every figure is the median of its repetitions with [min-max]; ratios are
taken per repetition (the runs of a repetition are interleaved, so they
share the machine's state) and then summarised the same way.
"""
import collections
import statistics
import subprocess
import sys

# The targets, as stated for the appliance.
T_RELAY_RATIO = 0.90		# unscanned relay / direct, 100 sessions
T_RELAY_CPU_US = 25		# sporkd's CPU per relayed 10 KB message
T_SCAN_RATIO = 2.0		# sporkd explicit / ClamSMTP+clamd, 100 sessions
T_SESSION_KIB = 16.0		# RSS per idle session, 10,000 held
T_BIG_KIB = 2048		# 50 MB message: peak RSS - idle RSS
T_TLS_RATIO = 0.80		# STARTTLS intercepted / direct TLS, 100 sessions
T_TRACK_RATIO = 0.90		# relay msg/s, tracking on / off ("within 10%")
T_TRACK_LAT = 1.10		# final-dot p50, p99, tracking on / off
T_BASE_RATIO = 0.95		# this binary / the base binary: unchanged
T_BOUND_RATIO = 0.90		# sporkd scanned msg/s / scanbound's, 10 and 100
T_WORKER_PSS = 0.10		# a worker's PSS / the engine's size (bigsigs)
T_RELOAD_PEAK = 2.2		# reload: peak tree PSS / one engine's tree PSS
TARGET_LEVEL = 100


def load(path):
    meta = {}
    runs = collections.defaultdict(list)	# (section, variant, level) -> [kv]
    with open(path) as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) < 5:
                continue
            sec, var, lvl, rep, rest = parts[:5]
            if sec == "meta":
                meta[var] = rest
                continue
            kv = {"rep": int(rep)}
            for w in rest.split():
                k, _, v = w.partition("=")
                try:
                    kv[k] = float(v)
                except ValueError:
                    kv[k] = v
            runs[(sec, var, int(lvl))].append(kv)
    return meta, runs


class Stat:
    def __init__(self, values):
        self.v = sorted(values)

    def __bool__(self):
        return bool(self.v)

    @property
    def med(self):
        return statistics.median(self.v) if self.v else float("nan")

    @property
    def lo(self):
        return self.v[0] if self.v else float("nan")

    @property
    def hi(self):
        return self.v[-1] if self.v else float("nan")

    def fmt(self, spec="%.0f", width=0):
        if not self.v:
            return "-".rjust(width)
        s = (spec % self.med) + " [" + (spec % self.lo) + "-" + \
            (spec % self.hi) + "]"
        return s.rjust(width)


def stat(runs, key, sec, var, lvl, scale=1.0):
    return Stat([r[key] * scale for r in runs.get((sec, var, lvl), [])
                 if key in r])


def paired_ratio(runs, key, sec, num, den, lvl):
    a = {r["rep"]: r.get(key, 0) for r in runs.get((sec, num, lvl), [])}
    b = {r["rep"]: r.get(key, 0) for r in runs.get((sec, den, lvl), [])}
    return Stat([a[k] / b[k] for k in a if k in b and b[k] > 0])


def cpu_per_msg(runs, sec, var, lvl, key="cpu_ms"):
    return Stat([r[key] * 1000.0 / r["total"]
                 for r in runs.get((sec, var, lvl), [])
                 if r.get("total", 0) > 0 and key in r])


def paired_cpu_ratio(runs, sec, num, den, lvl):
    def per(var):
        return {r["rep"]: r["cpu_ms"] / r["total"]
                for r in runs.get((sec, var, lvl), [])
                if r.get("total", 0) > 0 and "cpu_ms" in r}
    a, b = per(num), per(den)
    return Stat([a[k] / b[k] for k in a if k in b and b[k] > 0])


def cpu_per_conn(runs, sec, var, lvl, key="cpu_ms"):
    """us per connection: CPU over the run's connections (all of them,
    the warm-up's and the drain's too, like the CPU figure)."""
    return Stat([r[key] * 1000.0 / r["conns"]
                 for r in runs.get((sec, var, lvl), [])
                 if r.get("conns", 0) > 0 and key in r])


def cpu_bound_ratio(runs, sec, lvl, direct="direct", via="sporkd"):
    """Per repetition: CPU per message of the direct path (client + sink)
    over the relayed path's (client + sink + sporkd): the msg/s ratio on
    CPUs that all three share and saturate."""
    def per(var, keys):
        return {r["rep"]: sum(r.get(k, 0) for k in keys) / r["total"]
                for r in runs.get((sec, var, lvl), [])
                if r.get("total", 0) > 0}
    d = per(direct, ("client_cpu_ms", "sink_cpu_ms"))
    v = per(via, ("client_cpu_ms", "sink_cpu_ms", "cpu_ms"))
    return Stat([d[k] / v[k] for k in d if k in v and v[k] > 0])


def bound_cpu_ratio(runs, sec, var, lvl):
    """Per repetition: scanbound's CPU per message over sporkd's (its
    tree: relay, loader, workers). The share of sporkd's work per message
    that is the scan itself: what its msg/s over the bound tends to on
    CPUs it does not share with the client and the sink."""
    b = {r["rep"]: r["cpu_us_per_msg"]
         for r in runs.get((sec, "scanbound", lvl), [])
         if r.get("cpu_us_per_msg", 0) > 0}
    v = {r["rep"]: r["cpu_ms"] * 1000.0 / r["total"]
         for r in runs.get((sec, var, lvl), [])
         if r.get("total", 0) > 0 and r.get("cpu_ms", 0) > 0}
    return Stat([b[k] / v[k] for k in b if k in v])


def verdict(ok):
    return "MET" if ok else "MISSED"


def levels(runs, sec):
    return sorted({lvl for (s, _, lvl) in runs if s == sec})


def table(meta, runs):
    out = []
    w = out.append
    reps = meta.get("reps", "?")
    w("spork benchmark: %s, commit %s%s" % (
        meta.get("date", "?"), meta.get("commit", "?"),
        "  (QUICK smoke run: not figures to quote)" if meta.get("quick")
        else ""))
    w("binary: %s" % meta.get("sporkd", "?"))
    if meta.get("base"):
        w("base binary (SPORKD_BASE, run beside it for the new/base "
          "rows): %s" % meta["base"])
    w("machine: %s CPUs, Linux %s; libclamav %s, Postfix %s (smtp-sink, "
      "smtp-source, smtpd), ClamSMTP %s, OpenSSL %s" % (
          meta.get("cpus", "?"), meta.get("kernel", "?"),
          meta.get("libclamav", "?"), meta.get("postfix", "?"),
          meta.get("clamsmtp", "?"), meta.get("openssl", "?")))
    w("every figure: median [min-max] of %s runs (memory figures: %s), "
      "runs interleaved; the whole bench took %s s" % (
          reps, meta.get("mem_reps", "?"), meta.get("duration_s", "?")))
    w("client, sink and proxy share the machine's CPUs: no core is "
      "reserved for sporkd")
    fc = meta.get("foreign_cpu", "").split()
    if len(fc) == 2:
        ncpu = int(meta.get("cpus", "1").split()[0] or 1)
        share = float(fc[0]) / (float(fc[1]) * ncpu) if float(fc[1]) else 0
        w("other work on this machine during the bench: %s CPU-s in %s s "
          "(%.0f%% of its CPUs), load average %s at the start, %s at the end"
          % (fc[0], fc[1], 100 * share, meta.get("load_start", "?"),
             meta.get("load_end", "?")))
        loads = Stat([r["load1"] for l in runs.values() for r in l
                      if "load1" in r])
        if loads:
            w("1-minute load average at the end of each measured run: "
              "median %s (this machine has %s CPUs)" % (
                  loads.fmt("%.1f"), meta.get("cpus", "?").split()[0]))
        if share > 0.05:
            w("   WARNING: that competes with the bench: the throughput "
              "figures are lower and noisier than on a quiet machine")
    w("")
    targets = []

    # 1 ---------------------------------------------------------------
    if levels(runs, "relay") or levels(runs, "relay-src"):
        w("1. Relay without scanning (scan_enable no): 10 KB messages, "
          "client ns -> bridge -> smtp-sink")
        w("   pipelined client (smtpload: MAIL+RCPT+DATA in one write, then "
          "the message), msg/s")
        w("   %8s  %-22s %-22s %-20s %-10s %s" % (
            "sessions", "direct", "via sporkd", "ratio", "CPU-bound",
            "CPU us/msg: client, sink direct | via sporkd: client, sink, sporkd"))
        for lvl in levels(runs, "relay"):
            cpu = lambda var, key: "%.0f" % cpu_per_msg(
                runs, "relay", var, lvl, key).med
            w("   %8d  %-22s %-22s %-20s %-10s %s, %s | %s, %s, %s" % (
                lvl, stat(runs, "rate", "relay", "direct", lvl).fmt(),
                stat(runs, "rate", "relay", "sporkd", lvl).fmt(),
                paired_ratio(runs, "rate", "relay", "sporkd", "direct",
                             lvl).fmt("%.2f"),
                "%.2f" % cpu_bound_ratio(runs, "relay", lvl).med,
                cpu("direct", "client_cpu_ms"), cpu("direct", "sink_cpu_ms"),
                cpu("sporkd", "client_cpu_ms"), cpu("sporkd", "sink_cpu_ms"),
                cpu("sporkd", "cpu_ms")))
        w("   CPU-bound: the direct path's CPU per message (client + sink) over "
          "the relayed path's (client + sink + sporkd),")
        w("   i.e. the ratio when client, sink and sporkd saturate the CPUs they "
          "share; sporkd alone on one core would carry 1e6 / its us/msg msg/s")
        if levels(runs, "relay-src"):
            w("   smtp-source (Postfix's tool; it has no PIPELINING support, "
              "one command per round trip), msg/s incl. connection set-up")
            for lvl in levels(runs, "relay-src"):
                w("   %8d  %-22s %-22s %-20s" % (
                    lvl, stat(runs, "rate", "relay-src", "direct", lvl).fmt(),
                    stat(runs, "rate", "relay-src", "sporkd", lvl).fmt(),
                    paired_ratio(runs, "rate", "relay-src", "sporkd", "direct",
                                 lvl).fmt("%.2f")))
        if any(runs.get(("relay", "base", l)) for l in levels(runs, "relay")):
            vs_base(runs, w, targets, "relay", [
                (lvl, "sporkd", "base", "")
                for lvl in levels(runs, "relay")], "relay")
        r = paired_ratio(runs, "rate", "relay", "sporkd", "direct", TARGET_LEVEL)
        rs = paired_ratio(runs, "rate", "relay-src", "sporkd", "direct",
                          TARGET_LEVEL)
        if r:
            targets.append(("unscanned relay >= %.1fx direct at %d sessions, "
                            "shared CPUs" % (T_RELAY_RATIO, TARGET_LEVEL),
                            "%.2fx" % r.med, verdict(r.med >= T_RELAY_RATIO)))
            if rs:
                targets.append(("   the same with smtp-source (no pipelining)",
                                "%.2fx" % rs.med, "(information)"))
            w("   TARGET relay >= %.2fx direct at %d sessions: %.2fx  %s" % (
                T_RELAY_RATIO, TARGET_LEVEL, r.med, verdict(r.med >= T_RELAY_RATIO)))
        c = cpu_per_msg(runs, "relay", "sporkd", TARGET_LEVEL)
        if c:
            label = "sporkd CPU per relayed 10 KB message <= %d us at %d " \
                "sessions" % (T_RELAY_CPU_US, TARGET_LEVEL)
            value = "%.0f us" % c.med
            cb = paired_cpu_ratio(runs, "relay", "sporkd", "base",
                                  TARGET_LEVEL)
            if cb:
                value += " (new/base %.2f)" % cb.med
            targets.append((label, value, verdict(c.med <= T_RELAY_CPU_US)))
            # One TCP endpoint with nothing to parse, for scale: the relay
            # terminates one connection and originates another.
            cc = cpu_per_msg(runs, "relay", "sporkd", TARGET_LEVEL,
                             "client_cpu_ms")
            w("   TARGET %s: %s  %s  (the client, one connection and no "
              "parsing: %.0f us)" % (label, value,
                                     verdict(c.med <= T_RELAY_CPU_US),
                                     cc.med if cc else float("nan")))
        w("")

    # 2 ---------------------------------------------------------------
    if levels(runs, "scan"):
        w("2. Scanning: 10 KB messages, every one different; sporkd and clamd "
          "load the same directory")
        w("   (test signatures + synthetic .hdb/.ndb): sporkd %s signatures, "
          "clamd %s" % (meta.get("sporkd_signatures", "?"),
                        meta.get("clamd_signatures", "?")))
        w("   latency: client writes the final CRLF.CRLF -> reads the whole "
          "reply, ms")
        w("   %8s  %-20s %-18s %-20s %-22s %s" % (
            "sessions", "path", "msg/s", "p50 ms", "p99 ms", "CPU/msg (us)"))
        names = [("sporkd-transparent", "sporkd transparent"),
                 ("sporkd-explicit", "sporkd explicit"),
                 ("clamsmtp", "ClamSMTP + clamd")]
        if any(runs.get(("scan", "amavis", l)) for l in levels(runs, "scan")):
            names.append(("amavis", "amavisd-new + clamd"))
        for lvl in levels(runs, "scan"):
            for var, name in names:
                pipe = {r.get("pipelining") for r in runs.get(("scan", var, lvl), [])}
                err = sum(r.get("errors", 0) for r in runs.get(("scan", var, lvl), []))
                w("   %8s  %-20s %-18s %-20s %-22s %s%s%s" % (
                    lvl if var == names[0][0] else "", name,
                    stat(runs, "rate", "scan", var, lvl).fmt(),
                    stat(runs, "lat_p50_us", "scan", var, lvl, 1e-3).fmt("%.1f"),
                    stat(runs, "lat_p99_us", "scan", var, lvl, 1e-3).fmt("%.1f"),
                    cpu_per_msg(runs, "scan", var, lvl).fmt(),
                    "  (no PIPELINING offered)" if pipe == {"not-offered"} else "",
                    "  errors=%d" % err if err else ""))
        for lvl in levels(runs, "scan"):
            r1 = paired_ratio(runs, "rate", "scan", "sporkd-explicit", "clamsmtp", lvl)
            r2 = paired_ratio(runs, "rate", "scan", "sporkd-transparent", "clamsmtp", lvl)
            if r1:
                w("   %8d  sporkd explicit / ClamSMTP: %sx   sporkd transparent "
                  "/ ClamSMTP: %sx" % (lvl, r1.fmt("%.2f"), r2.fmt("%.2f")))
        if meta.get("amavis"):
            w("   amavisd-new: %s; its own config (spam, banned, header "
              "checks off), ClamAV-clamd over the same clamd socket as "
              "ClamSMTP" % meta["amavis"])
        elif meta.get("amavis_failed"):
            w("   amavisd-new: not measured: %s" % meta["amavis_failed"])
        for lvl in levels(runs, "scan"):
            r1 = paired_ratio(runs, "rate", "scan", "sporkd-explicit", "amavis", lvl)
            if r1:
                w("   %8d  sporkd explicit / amavisd-new: %sx" % (
                    lvl, r1.fmt("%.2f")))
        bound_lvls = [l for l in levels(runs, "scan")
                      if runs.get(("scan", "scanbound", l))]
        if bound_lvls:
            w("   scan-only bound (scanbound: the same engine code, signatures "
              "and limits, %s forked workers, messages of smtpload's shape "
              "from a memfd, no SMTP), msg/s, and sporkd / bound per "
              "repetition:" % int(runs[("scan", "scanbound", bound_lvls[0])][0]
                                   .get("workers", 0)))
            for lvl in bound_lvls:
                rt = paired_ratio(runs, "rate", "scan", "sporkd-transparent",
                                  "scanbound", lvl)
                re_ = paired_ratio(runs, "rate", "scan", "sporkd-explicit",
                                   "scanbound", lvl)
                w("   %8d  bound %s msg/s   sporkd transparent / bound %sx   "
                  "sporkd explicit / bound %sx" % (
                      lvl, stat(runs, "rate", "scan", "scanbound", lvl).fmt(),
                      rt.fmt("%.2f"), re_.fmt("%.2f")))
                bc = stat(runs, "cpu_us_per_msg", "scan", "scanbound", lvl)
                ct = bound_cpu_ratio(runs, "scan", "sporkd-transparent", lvl)
                ce = bound_cpu_ratio(runs, "scan", "sporkd-explicit", lvl)
                if bc and (ct or ce):
                    w("   %8s  CPU per message: bound %s us; bound / sporkd "
                      "transparent %sx, explicit %sx (the scan's share of "
                      "sporkd's work per message)" % (
                          "", bc.fmt(), ct.fmt("%.2f"), ce.fmt("%.2f")))
                for var, name in (("sporkd-transparent", "transparent"),
                                  ("sporkd-explicit", "explicit")):
                    r = paired_ratio(runs, "rate", "scan", var, "scanbound",
                                     lvl)
                    if r:
                        targets.append((
                            "scanning sporkd %s >= %.1fx scan-only bound, %d "
                            "sessions" % (name, T_BOUND_RATIO, lvl),
                            "%.2fx" % r.med, verdict(r.med >= T_BOUND_RATIO)))
        for lvl in levels(runs, "scan"):
            e = paired_cpu_ratio(runs, "scan", "clamsmtp", "sporkd-explicit", lvl)
            if e:
                w("   %8d  CPU per message, ClamSMTP+clamd / sporkd explicit: "
                  "%sx (what the msg/s ratio tends to when the CPUs are "
                  "saturated and not shared)" % (lvl, e.fmt("%.2f")))
        if any(runs.get(("scan", "base-explicit", l))
               for l in levels(runs, "scan")):
            w("   base binary: sporkd %s signatures" %
              meta.get("base_signatures", "?"))
            vs_base(runs, w, targets, "scan", [
                (lvl, "sporkd-" + p, "base-" + p, p)
                for lvl in levels(runs, "scan")
                for p in ("transparent", "explicit")], "scanning")
        r = paired_ratio(runs, "rate", "scan", "sporkd-explicit", "clamsmtp",
                         TARGET_LEVEL)
        if r:
            targets.append(("scanning sporkd >= %.0fx ClamSMTP+clamd at %d "
                            "sessions (explicit pair)" % (T_SCAN_RATIO, TARGET_LEVEL),
                            "%.2fx" % r.med, verdict(r.med >= T_SCAN_RATIO)))
            w("   TARGET sporkd >= %.1fx ClamSMTP+clamd at %d sessions: %.2fx  %s"
              % (T_SCAN_RATIO, TARGET_LEVEL, r.med, verdict(r.med >= T_SCAN_RATIO)))
        w("")

    # 3 ---------------------------------------------------------------
    ses = [kv for (s, _, _), l in runs.items() if s == "sessions" for kv in l]
    if ses:
        held = Stat([k["held"] for k in ses])
        per = Stat([(k["rss"] - k["idle_rss"]) / k["held"] for k in ses
                    if k["held"] > 0])
        per_anon = Stat([(k["anon"] - k["idle_anon"]) / k["held"] for k in ses
                         if k["held"] > 0])
        want = int(ses[0].get("wanted", 10000))
        limit = int(ses[0].get("fd_limit", 0))
        w("3. Idle sessions held through the bridge (greeting and EHLO "
          "answered), scan_enable no")
        w("   held %s of %d wanted%s" % (
            held.fmt(), want,
            "" if held.med >= want else
            "  (sporkd's RLIMIT_NOFILE here is %d: two descriptors per "
            "session; raising the hard limit needs CAP_SYS_RESOURCE)" % limit))
        w("   sporkd VmRSS idle %s kB, with the sessions %s kB" % (
            Stat([k["idle_rss"] for k in ses]).fmt(),
            Stat([k["rss"] for k in ses]).fmt()))
        w("   per session: VmRSS %s KiB, RssAnon %s KiB" % (
            per.fmt("%.2f"), per_anon.fmt("%.2f")))
        label = "<= %.0f KiB RSS per idle session, %d held" % (
            T_SESSION_KIB, held.med)
        targets.append((label, "%.2f KiB" % per.med,
                        verdict(per.med <= T_SESSION_KIB) +
                        ("" if held.med >= want else " (held %d, not %d)"
                         % (held.med, want))))
        w("   TARGET %s: %.2f KiB  %s" % (label, per.med,
                                          verdict(per.med <= T_SESSION_KIB)))
        w("")

    # 4 ---------------------------------------------------------------
    big = runs.get(("size", "sporkd", 1), [])
    if big:
        grow = Stat([k["peak_rss"] - k["idle_rss"] for k in big])
        grow_anon = Stat([k["peak_anon"] - k["idle_anon"] for k in big])
        mbs = Stat([52428800 / 1048576 / k["secs"] for k in big
                    if k.get("secs", 0) > 0 and k.get("msgs", 0) > 0])
        w("4. One 50 MB message through the relay (scan_enable no), "
          "/proc/PID/status sampled every 2 ms")
        w("   VmRSS idle %s kB, peak %s kB, growth %s kB" % (
            Stat([k["idle_rss"] for k in big]).fmt(),
            Stat([k["peak_rss"] for k in big]).fmt(), grow.fmt()))
        w("   RssAnon idle %s kB, peak %s kB, growth %s kB" % (
            Stat([k["idle_anon"] for k in big]).fmt(),
            Stat([k["peak_anon"] for k in big]).fmt(), grow_anon.fmt()))
        w("   client's whole transaction: %s MB/s; dot -> reply %s ms" % (
            mbs.fmt("%.0f"),
            Stat([k["lat_p50_us"] / 1000 for k in big]).fmt("%.0f")))
        targets.append(("peak RSS for 50 MB within 2 MB of idle",
                        "+%.0f kB" % grow.med, verdict(grow.med <= T_BIG_KIB)))
        w("   TARGET peak VmRSS within %d kB of idle: +%.0f kB  %s" % (
            T_BIG_KIB, grow.med, verdict(grow.med <= T_BIG_KIB)))
        w("")

    # 5 ---------------------------------------------------------------
    if runs.get(("rtt", "direct", 1)):
        w("5. Command round trip, one session in lockstep, %d rounds of "
          "EHLO, MAIL, RCPT, RSET per run; median per run, us" % int(
              runs[("rtt", "direct", 1)][0].get("rounds", 0)))
        w("   %-16s %-16s %-16s %s" % ("command", "direct", "via sporkd",
                                       "added"))
        for key, name in (("ehlo_p50_us", "EHLO"), ("mail_p50_us", "MAIL"),
                          ("rcpt_p50_us", "RCPT"),
                          ("cmd_p50_us", "EHLO/MAIL/RCPT")):
            d = stat(runs, key, "rtt", "direct", 1)
            s = stat(runs, key, "rtt", "sporkd", 1)
            a = paired_diff(runs, key)
            w("   %-16s %-16s %-16s %s" % (name, d.fmt(), s.fmt(), a.fmt()))
        w("")

    # 6 ---------------------------------------------------------------
    if levels(runs, "tls"):
        table_tls(meta, runs, w, targets)

    # 7 ---------------------------------------------------------------
    if levels(runs, "track") or levels(runs, "track-size"):
        table_track(meta, runs, w, targets)
    if levels(runs, "bigsigs"):
        table_bigsigs(meta, runs, w, targets)
    if levels(runs, "icap-10k") or levels(runs, "icap-1m"):
        table_icap(meta, runs, w)

    w("Targets")
    for label, value, v in targets:
        w("   %-68s %-12s %s" % (label, value, v))
    return "\n".join(out) + "\n", targets


def base_verdict(ratio):
    if ratio != ratio:
        return "-"
    if ratio < T_BASE_RATIO:
        return "SLOWER"
    return "faster" if ratio > 2 - T_BASE_RATIO else "unchanged"


def vs_base(runs, w, targets, sec, rows, what):
    """rows: (level, new variant, base variant, path name). The two
    binaries' runs alternate within a repetition; new/base per
    repetition, then median [min-max]."""
    w("   this binary (new) vs the base binary (SPORKD_BASE), the same load, "
      "runs interleaved; new/base per repetition:")
    w("   msg/s >= %.2fx counts as unchanged (the noise of this machine), "
      "latency ratios are new/base (lower is better)" % T_BASE_RATIO)
    w("   %8s  %-12s %-18s %-18s %-18s %-10s %-16s %-16s %s" % (
        "sessions", "path", "new msg/s", "base msg/s", "new/base",
        "", "p50 ms new|base", "p99 ms new|base", "CPU us/msg new|base"))
    bad = []
    vals = []
    for lvl, new, base, path in rows:
        if not runs.get((sec, base, lvl)):
            continue
        r = paired_ratio(runs, "rate", sec, new, base, lvl)
        lat = lambda key, var: stat(runs, key, sec, var, lvl, 1e-3).med
        cpu = lambda var: cpu_per_msg(runs, sec, var, lvl).med
        v = base_verdict(r.med)
        if v == "SLOWER":
            bad.append("%s%s" % (lvl, " " + path if path else ""))
        vals.append("%.2f" % r.med)
        w("   %8s  %-12s %-18s %-18s %-18s %-10s %-16s %-16s %.0f | %.0f" % (
            lvl, path or "-", stat(runs, "rate", sec, new, lvl).fmt(),
            stat(runs, "rate", sec, base, lvl).fmt(), r.fmt("%.2f"), v,
            "%.1f | %.1f" % (lat("lat_p50_us", new), lat("lat_p50_us", base)),
            "%.1f | %.1f" % (lat("lat_p99_us", new), lat("lat_p99_us", base)),
            cpu(new), cpu(base)))
    if vals:
        label = "%s not slower than the base binary (new/base >= %.2f, " \
            "every row)" % (what, T_BASE_RATIO)
        targets.append((label, "/".join(vals), verdict(not bad) +
                        (" (slower: %s)" % ", ".join(bad) if bad else "")))
        w("   TARGET %s: %s  %s" % (label, " / ".join(vals), verdict(not bad)
                                   + (" (slower at %s)" % ", ".join(bad)
                                      if bad else "")))


def mem_rows(kv):
    """The loaders and workers of a pssum record: {loader: (kv of the
    loader, [kv of each worker])}, kB."""
    out = {}
    for k in kv:
        if k.startswith("loader") and k.endswith("_rss"):
            i = k[len("loader"):-len("_rss")]
            ws = []
            j = 0
            while "l%sw%d_pss" % (i, j) in kv:
                ws.append({f: kv["l%sw%d_%s" % (i, j, f)]
                           for f in ("rss", "pss", "anonymous", "uss")})
                j += 1
            out[i] = ({f: kv["loader%s_%s" % (i, f)]
                       for f in ("rss", "pss", "anonymous", "uss")}, ws)
    return out


def worst_worker(loader, workers):
    """The largest PSS and USS among a generation's workers, over the
    engine's size (the loader's RSS)."""
    rss = loader.get("rss") or float("nan")
    return (max((x["pss"] for x in workers), default=0) / rss,
            max((x["uss"] for x in workers), default=0) / rss)


def reload_peak(r):
    """A reload's peak tree PSS over the tree's PSS before it (NaN when
    the before figure is missing)."""
    pre = r.get("pre_tree_pss", 0)
    return r.get("peak_pss", 0) / pre if pre else float("nan")


def table_bigsigs(meta, runs, w, targets):
    w("8. A real-sized signature set (synthetic, in the proportions of "
      "ClamAV's databases): %s + the test set" % meta.get("big_set", "?"))
    ld = runs.get(("bigsigs", "load", 1), [])
    if ld:
        w("   %d signatures, %.0f MB of files (generated in %.1f s); engine "
          "load (sporkd's loader, load_ms): %.1f s" % (
              ld[0].get("sigs", 0), float(meta.get("big_db_bytes", 0)) / 1e6,
              float(meta.get("big_gen_ms", 0)) / 1e3,
              ld[0].get("load_ms", 0) / 1e3))
    bl = [r for lvl in levels(runs, "bigsigs")
          for r in runs.get(("bigsigs", "scanbound", lvl), [])]
    if bl:
        w("   scanbound's engine load, same set: %s ms" %
          Stat([r["load_ms"] for r in bl if "load_ms" in r]).fmt())
    engine = None
    for name, title in (("mem-idle", "after the load, idle"),
                        ("mem", "after the throughput runs")):
        rr = runs.get(("bigsigs", name, 1), [])
        if not rr:
            continue
        kv = rr[0]
        rows = mem_rows(kv)
        w("   memory %s (kB; /proc/PID/smaps_rollup; USS = private):" % title)
        w("      relay    RSS %7d  PSS %7d  USS %7d" % (
            kv.get("relay_rss", 0), kv.get("relay_pss", 0),
            kv.get("relay_uss", 0)))
        for i, (lo, ws) in sorted(rows.items()):
            w("      loader   RSS %7d  PSS %7d  USS %7d  anon %7d  (holds the "
              "compiled engine)" % (lo["rss"], lo["pss"], lo["uss"],
                                    lo["anonymous"]))
            for j, x in enumerate(ws):
                w("      worker %d RSS %7d  PSS %7d  USS %7d  PSS/engine %.2f"
                  "  USS/engine %.3f" % (j, x["rss"], x["pss"], x["uss"],
                                         x["pss"] / lo["rss"],
                                         x["uss"] / lo["rss"]))
            if name == "mem":
                engine = lo["rss"]
                worst, worst_uss = worst_worker(lo, ws)
                targets.append((
                    "bigsigs: each worker's PSS <= %.0f%% of the engine "
                    "(loader RSS %d kB)" % (T_WORKER_PSS * 100, lo["rss"]),
                    "%.2f" % worst, verdict(worst <= T_WORKER_PSS)))
                targets.append((
                    "   the same, private memory (USS) per worker",
                    "%.3f" % worst_uss, "(information)"))
        w("      tree     PSS %7d  RSS %7d" % (kv.get("tree_pss", 0),
                                              kv.get("tree_rss", 0)))
    w("   engine's size here = the loader's RSS (the compiled engine plus "
      "the loader's own few MB); PSS splits each shared page between the "
      "processes that map it, USS is what a process has to itself")
    lv = levels(runs, "bigsigs")
    sl = [l for l in lv if runs.get(("bigsigs", "sporkd-explicit", l))]
    if sl:
        w("   scanned msg/s with the big set, sporkd explicit and the "
          "scan-only bound:")
        w("   %8s  %-18s %-18s %-16s %-16s %s" % (
            "sessions", "sporkd msg/s", "bound msg/s", "sporkd/bound",
            "p50 ms", "p99 ms"))
        for l in sl:
            w("   %8d  %-18s %-18s %-16s %-16s %s" % (
                l, stat(runs, "rate", "bigsigs", "sporkd-explicit", l).fmt(),
                stat(runs, "rate", "bigsigs", "scanbound", l).fmt(),
                paired_ratio(runs, "rate", "bigsigs", "sporkd-explicit",
                             "scanbound", l).fmt("%.2f"),
                stat(runs, "lat_p50_us", "bigsigs", "sporkd-explicit", l,
                     1e-3).fmt("%.1f"),
                stat(runs, "lat_p99_us", "bigsigs", "sporkd-explicit", l,
                     1e-3).fmt("%.1f")))
    rl = [r for l in lv for r in runs.get(("bigsigs", "reload", l), [])]
    if rl:
        w("   reload under a %d-session scanning load (sporkctl reload; tree "
          "PSS/RSS sampled every 50 ms):" % int(rl[0].get("sessions", 0)))
        ratios = []
        for r in sorted(rl, key=lambda r: r["rep"]):
            pre = r.get("pre_tree_pss", 0)
            ratio = reload_peak(r)
            ratios.append(ratio)
            w("      rep %d: tree PSS before %d kB, peak %d kB (%.2fx), peak "
              "RSS sum %d kB, up to %d processes, %d samples; new engine "
              "ready %.1f s after the reload; %.0f msg/s, 4xx at the dot %d, "
              "other errors %d, failed sessions %d" % (
                  r["rep"], pre, r.get("peak_pss", 0), ratio,
                  r.get("peak_rss", 0), r.get("peak_procs", 0),
                  r.get("samples", 0), r.get("swap_ms", 0) / 1e3,
                  r.get("rate", 0), r.get("dot_4xx", 0),
                  r.get("errors", 0) - r.get("dot_4xx", 0),
                  r.get("failed", 0)))
        pk = Stat(ratios)
        t4 = sum(int(r.get("dot_4xx", 0)) + int(r.get("failed", 0))
                 for r in rl)
        w("   one engine = the tree's PSS before the reload (relay + loader "
          "+ workers of one generation)")
        targets.append(("bigsigs: reload peak tree PSS <= %.1fx one engine's"
                        % T_RELOAD_PEAK, "%.2fx" % pk.hi,
                        verdict(pk.hi <= T_RELOAD_PEAK) + " (worst of %d)"
                        % len(ratios)))
        targets.append(("bigsigs: no 4xx (or failed session) during the "
                        "reloads", "%d" % t4, verdict(t4 == 0)))
    w("")


ICAP_SIZES = (("icap-10k", "10 KB"), ("icap-1m", "1 MB"))
ICAP_VARS = ("sporkd", "c-icap")


def table_icap(meta, runs, w):
    chk = [r for (s, _, _), l in runs.items() if s == "icap-check" for r in l]
    w("9. ICAP (RFC 3507) RESPMOD: sporkd's service (icap_listen 127.0.0.1, "
      "every icap_* key at its default) vs c-icap's")
    w("   virus_scan with clamav_mod, both libclamav %s on section 2's "
      "signatures (sporkd loaded %s; c-icap's database directory, " % (
          meta.get("libclamav", "?"), meta.get("icap_sporkd_signatures",
                                                "?")))
    w("   bind-mounted: %s)" % meta.get("cicap_db", "?").strip())
    w("   c-icap: %s" % meta.get("cicap", "?"))
    w("   client: icapload in the bridge namespace over loopback, persistent "
      "connections, OPTIONS once, Preview as offered (%s), Allow: 204;" %
      "/".join(sorted({"%d" % r.get("offered_preview", -1) for r in chk}))
      or "?")
    w("   every body different and clean (random base64-like lines): every "
      "answer must be 204; checked first with EICAR in every other")
    w("   body of each size (200 with an HTTP 403 expected) on each server. "
      "10 KB: %s s windows after %s s; 1 MB: max(%s, connections)" % (
          meta.get("icap_secs", "?"), "0.5", meta.get("icap_big_min", "?")))
    w("   requests, timed from the first request to the last reply. "
      "Latency: request's first byte written -> reply's last byte read.")
    if meta.get("icap_sporkd_missing"):
        w("   sporkd NOT MEASURED: %s" % meta["icap_sporkd_missing"])
    if meta.get("icap_sporkd_died"):
        w("   SPORKD EXITED during the runs, %s" % meta["icap_sporkd_died"])
    w("   %-5s %5s  %-18s %-18s %-17s %-9s %-16s %-18s %-16s %s" % (
        "size", "conns", "sporkd req/s", "c-icap req/s", "sporkd/c-icap",
        "CPU-bound", "p50 ms", "p99 ms", "server CPU", "errors"))
    w("   %-5s %5s  %-18s %-18s %-17s %-9s %-16s %-18s %-16s %s" % (
        "", "", "", "", "", "", "sporkd|c-icap", "sporkd|c-icap",
        "ms/req sp|c-i", "sporkd|c-icap"))
    for sec, name in ICAP_SIZES:
        for lvl in levels(runs, sec):
            lat = lambda key, var: stat(runs, key, sec, var, lvl, 1e-3).med
            cpu = lambda var: cpu_per_msg(runs, sec, var, lvl).med / 1000
            err = lambda var: sum(int(r.get("errors", 0)) for r in
                                  runs.get((sec, var, lvl), []))
            w("   %-5s %5d  %-18s %-18s %-17s %-9s %-16s %-18s %-16s %s" % (
                name, lvl, stat(runs, "rate", sec, "sporkd", lvl).fmt(
                    "%.1f" if "1m" in sec else "%.0f"),
                stat(runs, "rate", sec, "c-icap", lvl).fmt(
                    "%.1f" if "1m" in sec else "%.0f"),
                paired_ratio(runs, "rate", sec, "sporkd", "c-icap",
                             lvl).fmt("%.2f"),
                "%.2f" % paired_cpu_ratio(runs, sec, "c-icap", "sporkd",
                                          lvl).med,
                "%.1f|%.1f" % (lat("lat_p50_us", "sporkd"),
                               lat("lat_p50_us", "c-icap")),
                "%.1f|%.1f" % (lat("lat_p99_us", "sporkd"),
                               lat("lat_p99_us", "c-icap")),
                "%.1f|%.1f" % (cpu("sporkd"), cpu("c-icap")),
                "%d|%d" % (err("sporkd"), err("c-icap"))))
    w("   ratios per repetition (the two runs of a pair back to back, which "
      "goes first alternating), then median [min-max];")
    w("   CPU-bound: c-icap's server CPU per request over sporkd's, per "
      "repetition: what the req/s ratio tends to when the servers")
    w("   saturate CPUs of their own. On a machine shared with other work "
      "the req/s ratio leans towards c-icap: the scheduler")
    w("   shares the CPUs per thread, and c-icap scans with up to one "
      "runnable thread per connection against sporkd's 2 workers.")
    w("   server CPU: utime+stime of the server's processes (sporkd with its "
      "loader and scan workers; c-icap's main process")
    w("   and children) over the run's replies, warm-up included, median; "
      "client CPU per request (icapload): %s us sporkd, %s us c-icap at "
      "100 connections, 10 KB" % (
          "%.0f" % cpu_per_msg(runs, "icap-10k", "sporkd", 100,
                               "client_cpu_ms").med,
          "%.0f" % cpu_per_msg(runs, "icap-10k", "c-icap", 100,
                               "client_cpu_ms").med))
    odd = []
    for sec, name in ICAP_SIZES:
        for var in ICAP_VARS:
            for lvl in levels(runs, sec):
                for r in runs.get((sec, var, lvl), []):
                    for k in ("drops", "preview_204", "stuck",
                              "istag_changes", "failed"):
                        if r.get(k, 0):
                            odd.append("%s %s %d connections rep %d: %s=%d" % (
                                var, name, lvl, r["rep"], k, r[k]))
    for line in odd[:10]:
        w("   note: %s" % line)
    errs = sorted((k, v) for k, v in meta.items() if k.startswith("icap_err_"))
    for k, v in errs[:12]:
        w("   ERRORS %s: %s" % (k[len("icap_err_"):], v))
    if len(errs) > 12:
        w("   ... %d more runs with errors (the .icap-errors.txt file beside "
          "this one has every error line)" % (len(errs) - 12))
    w("")


def table_track(meta, runs, w, targets):
    bound = int(float(meta.get("track_bound", "0") or 0))
    wal = int(float(meta.get("track_wal_limit", "0") or 0))
    # with SPORKD_BASE a fourth daemon, the base binary's, rotates too
    based = any(runs.get(("track", "track-base", lvl))
                for lvl in levels(runs, "track"))
    w("7. Message tracking (track_db: one SQLite record per message, written "
      "by sporkd's writer thread), the relay load")
    w("   of section 1 (scan_enable no, 10 KB messages pipelined, %s s "
      "windows) through three daemons of this binary%s side by" % (
          meta.get("track_secs") or meta.get("relay_secs") or "2",
          " and one of the base binary" if based else ""))
    w("   side, the divert pointed at each in turn (the %s rotate within "
      "a repetition; each run starts once the writers are idle): off = no "
      "track_db (its default);" % ("four" if based else "three"))
    w("   on = track_db, track_max_size %s (as etc/spork.conf ships); "
      "bounded = track_max_size %s bytes, pruned all along." % (
          meta.get("track_size", "?"), "{:,}".format(bound)))
    w("   track_json keeps its default (yes) in all three: each logs a JSON "
      "line per message either way.")
    paced = meta.get("track_rate")
    # a paced run's targets: said so, and information only
    pace_note = ", paced at %s msg/s" % paced if paced else ""
    info = " (information)" if paced else ""
    if paced:
        w("   PACED: at most %s messages a second offered (smtpload -r), "
          "not as many as the relay takes: latency below" % paced)
        w("   saturation. The targets are stated for the unpaced load: "
          "here they are information.")
    w("   ratios per repetition, then median [min-max]: msg/s on/off (higher "
      "is better), latency on/off (lower is better)")
    w("   %8s  %-8s %-18s %-18s %-20s %-10s %-8s %-16s %-16s %s" % (
        "sessions", "tracking", "msg/s", "p50 ms", "p99 ms", "CPU us/msg",
        "writer", "msg/s vs off", "p50 vs off", "p99 vs off"))
    names = (("track-off", "off"), ("track-on", "on"),
             ("track-bound", "bounded"), ("track-base", "base on"))
    verdicts = {}
    for lvl in levels(runs, "track"):
        for var, name in names:
            if not runs.get(("track", var, lvl)):
                continue
            if var == "track-off":
                rr = p50 = p99 = ""
            else:
                r = paired_ratio(runs, "rate", "track", var, "track-off", lvl)
                l50 = paired_ratio(runs, "lat_p50_us", "track", var,
                                   "track-off", lvl)
                l99 = paired_ratio(runs, "lat_p99_us", "track", var,
                                   "track-off", lvl)
                rr, p50, p99 = (r.fmt("%.2f"), l50.fmt("%.2f"),
                                l99.fmt("%.2f"))
                verdicts[(var, lvl)] = (r.med, l50.med, l99.med)
            wr = cpu_per_msg(runs, "track", var, lvl, "writer_cpu_ms")
            w("   %8s  %-8s %-18s %-18s %-20s %-10s %-8s %-16s %-16s %s" % (
                lvl if var == "track-off" else "", name,
                stat(runs, "rate", "track", var, lvl).fmt(),
                stat(runs, "lat_p50_us", "track", var, lvl, 1e-3).fmt("%.1f"),
                stat(runs, "lat_p99_us", "track", var, lvl, 1e-3).fmt("%.1f"),
                cpu_per_msg(runs, "track", var, lvl).fmt(),
                "%.1f" % wr.med if var != "track-off" and wr else "",
                rr, p50, p99))
    w("   CPU us/msg: sporkd's, its writer thread included (utime+stime of "
      "the process over the run's messages); writer: the writer thread's "
      "alone (median)")
    if based:
        w("   base on: the base binary (%s) with on's configuration, a "
          "fourth daemon in the rotation; on / base on per repetition:" %
          meta.get("base", "SPORKD_BASE").split(":")[0])
        for lvl in levels(runs, "track"):
            ratios = [paired_ratio(runs, key, "track", "track-on",
                                   "track-base", lvl)
                      for key in ("rate", "lat_p50_us", "lat_p99_us")]
            if ratios[0]:
                w("   %8s  msg/s %s, p50 %s, p99 %s" % (
                    lvl, ratios[0].fmt("%.2f"), ratios[1].fmt("%.2f"),
                    ratios[2].fmt("%.2f")))
    for var, name in names[1:]:
        d = runs.get(("track-db", var, 0))
        if d:
            d = d[0]
            w("   %-8s %d messages relayed (all runs, warm-up included), %d "
              "records written, %d dropped (queue full), %d write errors; "
              "%d prune passes" % (
                  name + ":", d.get("messages", 0), d.get("written", 0),
                  d.get("dropped", 0), d.get("errors", 0),
                  d.get("prunes", 0)))
    for var, name in names[1:]:
        for lvl in levels(runs, "track"):
            # base on is the other binary's: no target of this one
            if (var, lvl) not in verdicts or var == "track-base":
                continue
            r, l50, l99 = verdicts[(var, lvl)]
            ok = (r >= T_TRACK_RATIO and l50 <= T_TRACK_LAT and
                  l99 <= T_TRACK_LAT)
            label = "%stracking %s within 10%% of off at %d sessions%s" % (
                "" if var == "track-on" else "   ", name, lvl, pace_note)
            value = "%.2f/%.2f/%.2f" % (r, l50, l99)
            targets.append((label, value, verdict(ok) + info))
            w("   TARGET tracking %s vs off at %d sessions%s, msg/s >= "
              "%.2fx, p50 and p99 <= %.2fx: %.2fx, %.2fx, %.2fx  %s%s" % (
                  name, lvl, pace_note, T_TRACK_RATIO, T_TRACK_LAT, r, l50,
                  l99, verdict(ok), info))
    if verdicts:
        w("   (Targets list: msg/s ratio / p50 ratio / p99 ratio)")
    sz = runs.get(("track-size", "track-bound", 100))
    fill = runs.get(("track-fill", "track-bound", 100))
    if sz:
        z = sz[0]
        f = fill[0] if fill else {}
        kept = z.get("kept", 0)
        written = z.get("written", 0)
        lim = bound + wal
        w("   Size bound: a fresh database, track_max_size %s bytes, filled "
          "at 100 sessions for %.0f s (%.0f msg/s):" % (
              "{:,}".format(bound), f.get("secs", 0), f.get("rate", 0)))
        w("      %d messages, %d records written, %d dropped, %d errors; "
          "%d kept at the end (%d recipients):" % (
              z.get("messages", 0), written, z.get("dropped", 0),
              z.get("errors", 0), kept, z.get("kept_rcpts", 0)))
        if kept:
            w("      the load was %.1fx what the bound holds; %d prune "
              "passes (log lines 'track pruned')" % (
                  written / kept, z.get("prunes", 0)))
        w("      files (apparent sizes, sampled every 10 ms, %d samples): "
          "db + wal at most %s bytes (db at most %s, wal at most %s)" % (
              z.get("samples", 0), "{:,}".format(int(z.get("max_dbwal", 0))),
              "{:,}".format(int(z.get("max_db", 0))),
              "{:,}".format(int(z.get("max_wal", 0)))))
        w("      at the end: db %s, wal %s, shm %s bytes; pages in use %s of "
          "%s (page size %d)" % (
              "{:,}".format(int(z.get("final_db", 0))),
              "{:,}".format(int(z.get("final_wal", 0))),
              "{:,}".format(int(z.get("final_shm", 0))),
              "{:,}".format(int(z.get("pages", 0) - z.get("free_pages", 0))),
              "{:,}".format(int(z.get("pages", 0))), z.get("page_size", 0)))
        w("      counted: the database file and its -wal (the -shm is "
          "SQLite's index of the WAL, not records: shown, not counted);")
        w("      bound: track_max_size + the WAL's journal_size_limit (%s "
          "bytes, what a checkpoint leaves) = %s bytes" % (
              "{:,}".format(wal), "{:,}".format(lim)))
        ok = z.get("max_dbwal", 0) <= lim
        db_ok = z.get("max_db", 0) <= bound
        if written < 3 * max(kept, 1):
            w("      WARNING: the load did not exceed the bound several "
              "times over: the figure says little")
        targets.append(("tracking db + wal <= track_max_size + its WAL share "
                        "(2m bound, %.0fx filled)" % (written / max(kept, 1)),
                        "%.2f MiB" % (z.get("max_dbwal", 0) / 1048576.0),
                        verdict(ok)))
        targets.append(("   the db file alone <= track_max_size",
                        "%.2f MiB" % (z.get("max_db", 0) / 1048576.0),
                        verdict(db_ok) + " (information)"))
        w("   TARGET db + wal <= %s bytes at every sample: at most %s  %s; "
          "db alone <= %s: at most %s  %s" % (
              "{:,}".format(lim), "{:,}".format(int(z.get("max_dbwal", 0))),
              verdict(ok), "{:,}".format(bound),
              "{:,}".format(int(z.get("max_db", 0))), verdict(db_ok)))
    w("")


TLS_VARIANTS = ((False, "direct", "sporkd"),
                (True, "direct-resume", "sporkd-resume"))


def table_tls(meta, runs, w, targets):
    per_conn = int(float(meta.get("tls_per_conn", "1") or 1))
    protos = {r.get("tls_proto") for (s, _, _), l in runs.items()
              if s == "tls" for r in l}
    w("6. STARTTLS: sporkd intercepting (tls_policy intercept, the server's "
      "key pair from %s) vs direct TLS" % meta.get("tls_keys", "?"))
    w("   to the same Postfix smtpd (lab certificate, RSA 2048; %s), 10 KB "
      "messages, %d per connection: each connection is" % (
          "/".join(sorted(p for p in protos if p)) or "?", per_conn))
    w("   EHLO, STARTTLS, handshake, EHLO, MAIL+RCPT+DATA pipelined, the "
      "message, QUIT, so the handshakes are in every figure.")
    w("   With resumption the client offers the last session the server "
      "gave it; sporkd's own TLS with the server resumes")
    w("   as sporkd decides, with or without (\"sporkd upstream resumed\" "
      "below). Latency: final CRLF.CRLF -> whole reply.")
    w("   %8s  %-6s %-16s %-16s %-18s %-9s %-16s %s" % (
        "sessions", "resume", "direct msg/s", "via sporkd", "ratio",
        "CPU-bound", "p50 ms", "p99 ms"))
    w("   %8s  %-6s %-16s %-16s %-18s %-9s %-16s %s" % (
        "", "", "", "", "", "", "direct | sporkd", "direct | sporkd"))
    for lvl in levels(runs, "tls"):
        for res, d, v in TLS_VARIANTS:
            if not runs.get(("tls", d, lvl)):
                continue
            lat = lambda key, var: stat(runs, key, "tls", var, lvl, 1e-3).med
            w("   %8s  %-6s %-16s %-16s %-18s %-9s %-16s %s" % (
                lvl if not res else "", "yes" if res else "no",
                stat(runs, "rate", "tls", d, lvl).fmt(),
                stat(runs, "rate", "tls", v, lvl).fmt(),
                paired_ratio(runs, "rate", "tls", v, d, lvl).fmt("%.2f"),
                "%.2f" % cpu_bound_ratio(runs, "tls", lvl, d, v).med,
                "%.1f | %.1f" % (lat("lat_p50_us", d), lat("lat_p50_us", v)),
                "%.1f | %.1f" % (lat("lat_p99_us", d), lat("lat_p99_us", v))))
    w("   CPU per connection, us: utime+stime from /proc over the run's "
      "connections; sporkd's is two handshakes (the")
    w("   client's, its own with the server) and relaying %d message(s). "
      "Handshake: 220 -> done as the client saw it." % per_conn)
    w("   %8s  %-6s %-18s %-9s %-22s %-20s %s" % (
        "sessions", "resume", "sporkd", "sporkd", "Postfix direct |",
        "client direct |", "handshake ms"))
    w("   %8s  %-6s %-18s %-9s %-22s %-20s %s" % (
        "", "", "", "upstream", "via sporkd", "via sporkd",
        "direct | via sporkd"))
    w("   %8s  %-6s %-18s %s" % ("", "", "", "resumed"))
    for lvl in levels(runs, "tls"):
        for res, d, v in TLS_VARIANTS:
            if not runs.get(("tls", d, lvl)):
                continue
            c = lambda var, key: cpu_per_conn(runs, "tls", var, lvl, key)
            up = Stat([100.0 * r.get("up_resumed", 0) / r["intercepted"]
                       for r in runs.get(("tls", v, lvl), [])
                       if r.get("intercepted", 0) > 0])
            w("   %8s  %-6s %-18s %-9s %-22s %-20s %s" % (
                lvl if not res else "", "yes" if res else "no",
                c(v, "cpu_ms").fmt(), "%.0f%%" % up.med,
                "%.0f | %.0f" % (c(d, "sink_cpu_ms").med,
                                 c(v, "sink_cpu_ms").med),
                "%.0f | %.0f" % (c(d, "client_cpu_ms").med,
                                 c(v, "client_cpu_ms").med),
                "%.1f | %.1f" % (
                    stat(runs, "hs_p50_us", "tls", d, lvl, 1e-3).med,
                    stat(runs, "hs_p50_us", "tls", v, lvl, 1e-3).med)))
    w("   latency and the CPU of Postfix and the client: medians. "
      "CPU-bound: as in section 1, the direct path's CPU")
    w("   per message (client + Postfix) over the intercepted path's "
      "(client + Postfix + sporkd)")
    r = paired_ratio(runs, "rate", "tls", "sporkd", "direct", TARGET_LEVEL)
    rr = paired_ratio(runs, "rate", "tls", "sporkd-resume", "direct-resume",
                      TARGET_LEVEL)
    if r:
        targets.append(("STARTTLS intercepted >= %.1fx direct TLS at %d "
                        "sessions, no resumption" % (T_TLS_RATIO,
                                                     TARGET_LEVEL),
                        "%.2fx" % r.med, verdict(r.med >= T_TLS_RATIO)))
        w("   TARGET intercepted STARTTLS >= %.2fx direct TLS at %d "
          "sessions, without resumption: %.2fx  %s" % (
              T_TLS_RATIO, TARGET_LEVEL, r.med,
              verdict(r.med >= T_TLS_RATIO)))
    if rr:
        targets.append(("   the same with TLS session resumption",
                        "%.2fx" % rr.med, verdict(rr.med >= T_TLS_RATIO)))
        w("   (the same with resumption: %.2fx  %s)" % (
            rr.med, verdict(rr.med >= T_TLS_RATIO)))
    w("")


PROFILE_TITLES = {
    "relay": "sporkd, relay without scanning, 100 sessions",
    "scan": "sporkd (and its scan workers), scanning, explicit, 100 sessions",
    "clamsmtp": "ClamSMTP + clamd, 100 sessions",
    "amavis": "amavisd-new + clamd, 100 sessions",
    "tls": "sporkd intercepting STARTTLS, 100 sessions, no resumption, "
           "one message per connection",
}


def profiles(paths):
    out = []
    for p in paths:
        name = p.rsplit("profile-", 1)[-1].rsplit(".", 1)[0]
        try:
            with open(p) as f:
                body = f.read().rstrip("\n")
        except OSError:
            continue
        if not body.strip():
            continue
        out.append("Profile: %s (perf, 4 s, flat; not part of the figures)"
                   % PROFILE_TITLES.get(name, name))
        for line in body.split("\n"):
            if line in ("dso", "symbol"):
                out.append("   by %s:" % ("object" if line == "dso"
                                           else "function"))
            else:
                out.append("   " + line.strip())
        out.append("")
    return "\n".join(out) + ("\n" if out else "")


def paired_diff(runs, key):
    a = {r["rep"]: r.get(key, 0) for r in runs.get(("rtt", "sporkd", 1), [])}
    b = {r["rep"]: r.get(key, 0) for r in runs.get(("rtt", "direct", 1), [])}
    return Stat([a[k] - b[k] for k in a if k in b])


# --------------------------------------------------------------- chart

def block(name, rows):
    return "$%s << EOD\n%s\nEOD\n" % (name, "\n".join(
        " ".join(str(x) for x in r) for r in rows))


def sessions_label(lvl):
    return '"%d session%s"' % (lvl, "" if lvl == 1 else "s")


def level_rows(lvls, label, cells):
    """A chart's rows, one a level (TARGET_LEVEL alone when none ran):
    its label, then median, min and max of each Stat cells(level) gives
    (zeroes for one that is empty)."""
    rows = []
    for lvl in lvls or [TARGET_LEVEL]:
        r = [label(lvl)]
        for st in cells(lvl):
            r += [st.med, st.lo, st.hi] if st else [0, 0, 0]
        rows.append(r)
    return rows


def chart(meta, runs, png):
    g = []
    # relay throughput vs sessions
    for sec, var, name in (("relay", "direct", "rd"), ("relay", "sporkd", "rs"),
                           ("relay-src", "direct", "sd"),
                           ("relay-src", "sporkd", "ss")):
        rows = []
        for lvl in levels(runs, sec):
            s = stat(runs, "rate", sec, var, lvl)
            if s:
                rows.append((lvl, s.med, s.lo, s.hi))
        g.append(block(name, rows or [(1, 0, 0, 0)]))
    # scanning
    names = (("sporkd-transparent", "sporkd transp."),
             ("sporkd-explicit", "sporkd explicit"),
             ("clamsmtp", "ClamSMTP"))
    g.append(block("scan", level_rows(
        levels(runs, "scan"), sessions_label,
        lambda lvl: [stat(runs, "rate", "scan", var, lvl) for var in
                     [v for v, _ in names] + ["amavis", "scanbound"]])))
    # sporkd's CPU per relayed message, the client's beside it for scale
    g.append(block("relaycpu", level_rows(
        levels(runs, "relay"), lambda lvl: '"%d"' % lvl,
        lambda lvl: [cpu_per_msg(runs, "relay", "sporkd", lvl, key)
                     for key in ("cpu_ms", "client_cpu_ms")])))
    # tracking on / off: the three ratios of section 7's target
    g.append(block("track", level_rows(
        levels(runs, "track"), sessions_label,
        lambda lvl: [paired_ratio(runs, key, "track", "track-on",
                                  "track-off", lvl)
                     for key in ("rate", "lat_p50_us", "lat_p99_us")])))
    # the real-sized signature set: a worker's memory against the engine,
    # a reload's peak against one generation
    pss = uss = 0.0
    for kv in runs.get(("bigsigs", "mem", 1), [])[:1]:
        for lo, ws in mem_rows(kv).values():
            pss, uss = worst_worker(lo, ws)
    peaks = Stat([x for l in levels(runs, "bigsigs")
                  for x in map(reload_peak,
                               runs.get(("bigsigs", "reload", l), []))
                  if x == x])
    g.append(block("bigmem", [
        ['"PSS / engine"', pss, pss, pss],
        ['"USS / engine"', uss, uss, uss],
        ['"reload peak"'] + ([peaks.med, peaks.lo, peaks.hi]
                                   if peaks else [0, 0, 0])]))
    rows = []
    for var, name in names:
        p50 = stat(runs, "lat_p50_us", "scan", var, TARGET_LEVEL, 1e-3)
        p99 = stat(runs, "lat_p99_us", "scan", var, TARGET_LEVEL, 1e-3)
        rows.append(['"%s"' % name] + ([p50.med, p50.lo, p50.hi] if p50 else
                                       [0, 0, 0]) +
                    ([p99.med, p99.lo, p99.hi] if p99 else [0, 0, 0]))
    g.append(block("lat", rows))
    # rtt
    rows = []
    for key, name in (("ehlo_p50_us", "EHLO"), ("mail_p50_us", "MAIL"),
                      ("rcpt_p50_us", "RCPT")):
        d = stat(runs, key, "rtt", "direct", 1)
        s = stat(runs, key, "rtt", "sporkd", 1)
        rows.append(['"%s"' % name] + ([d.med, d.lo, d.hi] if d else [0] * 3) +
                    ([s.med, s.lo, s.hi] if s else [0] * 3))
    g.append(block("rtt", rows))
    # memory
    ses = [kv for (s, _, _), l in runs.items() if s == "sessions" for kv in l]
    per = Stat([(k["rss"] - k["idle_rss"]) / k["held"] for k in ses
                if k.get("held")])
    per_anon = Stat([(k["anon"] - k["idle_anon"]) / k["held"] for k in ses
                     if k.get("held")])
    big = runs.get(("size", "sporkd", 1), [])
    grow = Stat([k["peak_rss"] - k["idle_rss"] for k in big])
    grow_anon = Stat([k["peak_anon"] - k["idle_anon"] for k in big])
    g.append(block("ses", [['"VmRSS"', per.med, per.lo, per.hi],
                           ['"RssAnon"', per_anon.med, per_anon.lo,
                            per_anon.hi]] if per else [['"-"', 0, 0, 0]]))
    g.append(block("big", [['"VmRSS"', grow.med, grow.lo, grow.hi],
                           ['"RssAnon"', grow_anon.med, grow_anon.lo,
                            grow_anon.hi]] if grow else [['"-"', 0, 0, 0]]))
    # STARTTLS
    tls_vars = ("direct", "sporkd", "direct-resume", "sporkd-resume")
    g.append(block("tls", level_rows(
        levels(runs, "tls"), sessions_label,
        lambda lvl: [stat(runs, "rate", "tls", var, lvl)
                     for var in tls_vars])))
    rows = []
    for var, name in zip(tls_vars, ("direct", "via sporkd", "direct R",
                                    "via sporkd R")):
        p50 = stat(runs, "lat_p50_us", "tls", var, TARGET_LEVEL, 1e-3)
        p99 = stat(runs, "lat_p99_us", "tls", var, TARGET_LEVEL, 1e-3)
        rows.append(['"%s"' % name] + ([p50.med, p50.lo, p50.hi] if p50 else
                                       [0, 0, 0]) +
                    ([p99.med, p99.lo, p99.hi] if p99 else [0, 0, 0]))
    g.append(block("tlslat", rows))
    rows = []
    for res, d, v in TLS_VARIANTS:
        r = ['"%s"' % ("resumption" if res else "no resumption")]
        for var, key in ((v, "cpu_ms"), (d, "sink_cpu_ms"),
                         (v, "sink_cpu_ms")):
            st = cpu_per_conn(runs, "tls", var, TARGET_LEVEL, key)
            r += [st.med, st.lo, st.hi] if st else [0, 0, 0]
        rows.append(r)
    g.append(block("tlscpu", rows))
    tr = paired_ratio(runs, "rate", "tls", "sporkd", "direct", TARGET_LEVEL)

    held = Stat([k["held"] for k in ses])
    rr = paired_ratio(runs, "rate", "relay", "sporkd", "direct", TARGET_LEVEL)
    sr = paired_ratio(runs, "rate", "scan", "sporkd-explicit", "clamsmtp",
                      TARGET_LEVEL)

    g.append("""
set terminal pngcairo size 1500,1800 font "sans,10"
set output "%(png)s"
set multiplot layout 4,3 title "spork benchmark %(date)s, commit %(commit)s: median, bars min-max"
set grid ytics
set key top left
set style fill solid 0.8 border -1
set style histogram errorbars gap 1 lw 1
set style data histograms
set yrange [0:*]
set offsets 0, 0, graph 0.3, 0

set title "1. relay, no scanning: 10 KB msg/s (sporkd/direct at 100: %(rr).2fx)"
set logscale x
set xrange [0.7:1400]
set xlabel "parallel sessions"
set ylabel "msg/s"
plot $rd using 1:2:3:4 with yerrorlines lw 2 title "direct, pipelined", \\
     $rs using 1:2:3:4 with yerrorlines lw 2 title "via sporkd, pipelined", \\
     $sd using 1:2:3:4 with yerrorlines dt 2 title "direct, smtp-source", \\
     $ss using 1:2:3:4 with yerrorlines dt 2 title "via sporkd, smtp-source"
unset logscale x
unset xlabel
set xrange [*:*]

set title "2. scanning: msg/s (sporkd explicit/ClamSMTP at 100: %(sr).2fx)"
set ylabel "msg/s"
plot $scan using 2:3:4:xtic(1) title "sporkd transparent", \\
     '' using 5:6:7 title "sporkd explicit", \\
     '' using 8:9:10 title "ClamSMTP+clamd", \\
     '' using 11:12:13 title "amavisd-new+clamd", \\
     '' using 14:15:16 title "scan-only bound"

set title "2. scanning at 100 sessions: final dot to reply"
set ylabel "ms"
plot $lat using 2:3:4:xtic(1) title "p50", '' using 5:6:7 title "p99"

set title "1. sporkd CPU per relayed 10 KB message (target <= %(tcpu)d us)"
set xlabel "parallel sessions"
set ylabel "microseconds"
plot $relaycpu using 2:3:4:xtic(1) title "sporkd", \\
     '' using 5:6:7 title "the client (one connection)", \\
     %(tcpu)d with lines lw 2 dt 2 lc rgb "red" title "target"
unset xlabel

set title "7. tracking on / off (targets: msg/s >= %(tr_rate).1f, latency <= %(tr_lat).1f)"
set ylabel "on / off"
set yrange [0:2]
plot $track using 2:3:4:xtic(1) title "msg/s", \\
     '' using 5:6:7 title "p50", '' using 8:9:10 title "p99", \\
     %(tr_rate).2f with lines lw 2 dt 2 lc rgb "red" notitle, \\
     %(tr_lat).2f with lines lw 2 dt 2 lc rgb "red" title "targets"
set yrange [0:*]

set title "8. real-sized set: worker / engine, reload peak (targets %(tpss).2f, %(tpeak).1f)"
set ylabel "ratio"
set arrow 1 from -0.4,%(tpss).2f to 0.4,%(tpss).2f nohead lw 2 dt 2 lc rgb "red"
set arrow 2 from 1.6,%(tpeak).2f to 2.4,%(tpeak).2f nohead lw 2 dt 2 lc rgb "red"
plot $bigmem using 2:3:4:xtic(1) notitle
unset arrow 1
unset arrow 2

set title "5. command round trip (median)"
set ylabel "microseconds"
plot $rtt using 2:3:4:xtic(1) title "direct", '' using 5:6:7 title "via sporkd"

set title "3. sporkd RSS per idle session, %(held)d held (target <= 16 KiB)"
set ylabel "KiB per session"
set yrange [0:20]
plot $ses using 2:3:4:xtic(1) notitle, 16 with lines lw 2 dt 2 lc rgb "red" title "target"

set title "4. sporkd RSS growth for one 50 MB message (target <= 2048 kB)"
set ylabel "kB"
set yrange [0:*]
plot $big using 2:3:4:xtic(1) notitle, 2048 with lines lw 2 dt 2 lc rgb "red" title "target"

set title "6. STARTTLS, 1 msg/connection: msg/s (via sporkd/direct at 100: %(tr).2fx, target 0.8)"
set ylabel "msg/s"
plot $tls using 2:3:4:xtic(1) title "direct TLS", \\
     '' using 5:6:7 title "via sporkd (intercept)", \\
     '' using 8:9:10 title "direct, resumed", \\
     '' using 11:12:13 title "via sporkd, resumed"

set title "6. STARTTLS at 100 sessions: final dot to reply (R: resumed)"
set ylabel "ms"
plot $tlslat using 2:3:4:xtic(1) title "p50", '' using 5:6:7 title "p99"

set title "6. STARTTLS at 100 sessions: CPU per connection (1 msg each)"
set ylabel "microseconds"
plot $tlscpu using 2:3:4:xtic(1) title "sporkd", \\
     '' using 5:6:7 title "Postfix, direct", \\
     '' using 8:9:10 title "Postfix, via sporkd"
unset multiplot
""" % {"png": png, "date": meta.get("date", ""),
       "commit": meta.get("commit", ""), "rr": rr.med if rr else 0,
       "sr": sr.med if sr else 0, "held": held.med if held else 0,
       "tr": tr.med if tr else 0, "tcpu": T_RELAY_CPU_US,
       "tr_rate": T_TRACK_RATIO, "tr_lat": T_TRACK_LAT,
       "tpss": T_WORKER_PSS, "tpeak": T_RELOAD_PEAK})
    subprocess.run(["gnuplot"], input="".join(g).encode(), check=True)


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    meta, runs = load(sys.argv[1])
    text, _ = table(meta, runs)
    prof = profiles(sys.argv[4:])
    with open(sys.argv[2], "w") as f:
        f.write(text + ("\n" + prof if prof else ""))
    if sys.argv[3] != "-":
        chart(meta, runs, sys.argv[3])


if __name__ == "__main__":
    main()
