#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Small helpers for tests/bench/run, one subcommand each:

  mem PID                  print "VmRSS=KB RssAnon=KB VmHWM=KB" of PID
  reset-hwm PID            reset PID's VmHWM (peak RSS) to its current RSS
  peak PID OUT [INTERVAL]  sample /proc/PID/status every INTERVAL seconds
                           (default 0.002) until SIGTERM or PID exits, then
                           write the peak VmRSS, RssAnon, RssFile, RssShmem
                           (kB) and the number of samples to OUT
  tree PID...              print PID and all its descendants, comma separated
  cpu PID...               print the CPU time (user+system, ms) of the
                           PIDs and of their children, living or reaped
  threadcpu PID NAME       print the CPU time (ms) of PID's threads named
                           NAME (sporkd's tracking writer: sporkd-track)
  eicar HOST PORT          send one message whose body is the EICAR test
                           string; print the final reply as "CODE TEXT"
  snapshot OUT             write every process's CPU time (with its reaped
                           children's) to OUT
  foreign SNAPSHOT PID NS...
                           CPU seconds spent since SNAPSHOT by processes
                           outside the network namespaces NS and not PID
                           or below it (the bench): other people's work
                           competing for the machine.
                           Kernel threads are left out (they carry the
                           bench's own packets too). Prints "CPU_S WALL_S"
  fsize OUT INTERVAL DB    sample the apparent sizes of DB, DB-wal and
                           DB-shm every INTERVAL seconds until SIGTERM, then
                           write the peaks (max_db, max_wal, max_shm, and
                           max_dbwal: the largest db + wal of one sample)
                           and the number of samples to OUT
  trackdb DB               the sizes of DB and its -wal and -shm now, then
                           (read-only) its records, recipients and pages
"""
import collections
import os
import signal
import smtplib
import subprocess
import sys
import time

FIELDS = ("VmRSS", "RssAnon", "RssFile", "RssShmem", "VmHWM")
EICAR = (r"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-"
         r"FILE!$H+H*")


def status(pid):
    out = {}
    with open("/proc/%s/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in FIELDS:
                out[k] = int(v.split()[0])
    return out


def cmd_mem(pid):
    s = status(pid)
    print("VmRSS=%d RssAnon=%d VmHWM=%d" % (s["VmRSS"], s["RssAnon"],
                                           s["VmHWM"]))


def cmd_reset_hwm(pid):
    # "5" resets the peak RSS the kernel keeps (Linux >= 4.0)
    with open("/proc/%s/clear_refs" % pid, "w") as f:
        f.write("5")


def cmd_peak(pid, out, interval=0.002):
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    peak = dict.fromkeys(FIELDS, 0)
    n = 0
    while not stop:
        try:
            s = status(pid)
        except OSError:
            break
        for k, v in s.items():
            peak[k] = max(peak[k], v)
        n += 1
        time.sleep(float(interval))
    with open(out, "w") as f:
        f.write(" ".join("%s=%d" % kv for kv in peak.items()) +
                " samples=%d\n" % n)


def children(pid):
    kids = []
    try:
        for tid in os.listdir("/proc/%s/task" % pid):
            with open("/proc/%s/task/%s/children" % (pid, tid)) as f:
                kids += f.read().split()
    except OSError:
        pass
    return kids


def cpu_ms(pid, seen):
    if pid in seen:
        return 0
    seen.add(pid)
    try:
        with open("/proc/%s/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    # utime, stime, cutime, cstime (fields 14-17 of stat)
    ticks = sum(int(x) for x in fields[11:15])
    total = ticks * 1000 // os.sysconf("SC_CLK_TCK")
    return total + sum(cpu_ms(k, seen) for k in children(pid))


def cmd_threadcpu(pid, name):
    total = 0
    try:
        tids = os.listdir("/proc/%s/task" % pid)
    except OSError:
        tids = []
    for tid in tids:
        try:
            with open("/proc/%s/task/%s/comm" % (pid, tid)) as f:
                if f.read().strip() != name:
                    continue
            with open("/proc/%s/task/%s/stat" % (pid, tid)) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(x) for x in fields[11:13])
    print(total * 1000 // os.sysconf("SC_CLK_TCK"))


def descendants(pid):
    out = [pid]
    for k in children(pid):
        out += descendants(k)
    return out


def cmd_tree(*pids):
    print(",".join(p for pid in pids for p in descendants(pid)))


def cmd_cpu(*pids):
    seen = set()
    print(sum(cpu_ms(p, seen) for p in pids))


def rollup(pid):
    """Pss, Rss and Anonymous (kB) of one process, from smaps_rollup."""
    out = {}
    with open("/proc/%s/smaps_rollup" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("Rss", "Pss", "Anonymous", "Private_Clean",
                     "Private_Dirty"):
                out[k] = int(v.split()[0])
    out["Uss"] = out.get("Private_Clean", 0) + out.get("Private_Dirty", 0)
    return out


def cmd_pss(root):
    """One line per process of ROOT's tree: pid ppid comm Rss Pss Anon."""
    for pid in descendants(root):
        try:
            r = rollup(pid)
            with open("/proc/%s/stat" % pid) as f:
                st = f.read()
        except OSError:
            continue
        comm = st[st.index("(") + 1:st.rindex(")")]
        ppid = st.rsplit(")", 1)[1].split()[1]
        print("pid=%s ppid=%s comm=%s rss=%d pss=%d anon=%d" % (
            pid, ppid, comm, r.get("Rss", 0), r.get("Pss", 0),
            r.get("Anonymous", 0)))


def cmd_pssum(root, prefix=""):
    """sporkd's tree as one line of k=v (kB): the relay (ROOT), each loader
    (its children: one per live generation) and each loader's workers
    (their children): rss, pss, anon, uss (private) of each; the tree's
    sums."""
    kv = []
    tot_pss = tot_rss = 0

    def one(name, pid):
        nonlocal tot_pss, tot_rss
        r = rollup(pid)
        tot_pss += r.get("Pss", 0)
        tot_rss += r.get("Rss", 0)
        kv.extend("%s%s_%s=%d" % (prefix, name, k.lower(), r.get(k, 0))
                  for k in ("Rss", "Pss", "Anonymous", "Uss"))
    try:
        one("relay", root)
    except OSError:
        return
    loaders = children(root)
    for i, ld in enumerate(loaders):
        try:
            one("loader%d" % i, ld)
        except OSError:
            continue
        for j, w in enumerate(children(ld)):
            try:
                one("l%dw%d" % (i, j), w)
            except OSError:
                pass
    kv.append("%sloaders=%d" % (prefix, len(loaders)))
    kv.append("%stree_pss=%d %stree_rss=%d" % (prefix, tot_pss, prefix,
                                              tot_rss))
    print(" ".join(kv))


def cmd_treepeak(root, out, interval=0.05):
    """Samples the sum of Pss and of Rss over ROOT's process tree until
    SIGTERM; writes the peaks, the largest process count and the samples."""
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    peak_pss = peak_rss = nproc = n = 0
    while not stop:
        pss = rss = k = 0
        for pid in descendants(root):
            try:
                r = rollup(pid)
            except OSError:
                continue
            pss += r.get("Pss", 0)
            rss += r.get("Rss", 0)
            k += 1
        if k == 0:
            break
        peak_pss, peak_rss = max(peak_pss, pss), max(peak_rss, rss)
        nproc = max(nproc, k)
        n += 1
        time.sleep(float(interval))
    with open(out, "w") as f:
        f.write("peak_pss=%d peak_rss=%d peak_procs=%d samples=%d\n" % (
            peak_pss, peak_rss, nproc, n))


def cmd_eicar(host, port):
    msg = ("From: <eicar@client.example.test>\r\nTo: <sink@example.test>\r\n"
           "Subject: spork bench scan check\r\n\r\n" + EICAR + "\r\n")
    s = smtplib.SMTP(host, int(port), timeout=60)
    s.ehlo("client.example.test")
    s.mail("eicar@client.example.test")
    s.rcpt("sink@example.test")
    try:
        code, text = s.data(msg)
    except smtplib.SMTPDataError as e:
        code, text = e.smtp_code, e.smtp_error
    print(code, text.decode(errors="replace").replace("\n", " "))
    try:
        s.quit()
    except smtplib.SMTPException:
        pass


def file_sizes(db):
    out = []
    for suffix in ("", "-wal", "-shm"):
        try:
            out.append(os.stat(db + suffix).st_size)
        except OSError:
            out.append(0)
    return out


def cmd_fsize(out, interval, db):
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    peak = {"max_db": 0, "max_wal": 0, "max_shm": 0, "max_dbwal": 0}
    n = 0
    while not stop:
        d, w, s = file_sizes(db)
        peak["max_db"] = max(peak["max_db"], d)
        peak["max_wal"] = max(peak["max_wal"], w)
        peak["max_shm"] = max(peak["max_shm"], s)
        peak["max_dbwal"] = max(peak["max_dbwal"], d + w)
        n += 1
        time.sleep(float(interval))
    with open(out, "w") as f:
        f.write(" ".join("%s=%d" % kv for kv in peak.items()) +
                " samples=%d\n" % n)


def cmd_trackdb(db):
    import sqlite3
    d, w, s = file_sizes(db)	# before this reader touches anything
    c = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=10)
    q = lambda sql: c.execute(sql).fetchone()[0]
    print("final_db=%d final_wal=%d final_shm=%d kept=%d kept_rcpts=%d "
          "page_size=%d pages=%d free_pages=%d" % (
              d, w, s, q("SELECT count(*) FROM messages"),
              q("SELECT coalesce(sum(rcpts), 0) FROM messages"),
              q("PRAGMA page_size"),
              q("PRAGMA page_count"), q("PRAGMA freelist_count")))
    c.close()


def proc_table():
    """pid -> (ppid, starttime, cpu ticks incl. reaped children, kthread)"""
    tab = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % pid) as f:
                f_ = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # after the comm: state ppid ... flags(7) ... utime(12) stime
        # cutime cstime ... starttime(20)
        kthread = int(f_[6]) & 0x00200000
        tab[pid] = (f_[1], f_[19], sum(int(x) for x in f_[11:15]), kthread)
    return tab


def cmd_snapshot(out):
    with open(out, "w") as f:
        f.write("%f\n" % time.monotonic())
        for pid, (_, start, ticks, _) in proc_table().items():
            f.write("%s %s %d\n" % (pid, start, ticks))


def cmd_foreign(snap, root, *namespaces):
    with open(snap) as f:
        t0 = float(f.readline())
        before = {}
        for line in f:
            pid, start, ticks = line.split()
            before[pid] = (start, int(ticks))
    tab = proc_table()
    mine = set()
    for ns in namespaces:
        try:
            out = subprocess.run(["ip", "netns", "pids", ns],
                                 capture_output=True, text=True).stdout
            mine.update(out.split())
        except OSError:
            pass
    # the bench script and everything below it
    kids = collections.defaultdict(list)
    for pid, (ppid, _, _, _) in tab.items():
        kids[ppid].append(pid)
    todo = [root]
    while todo:
        p = todo.pop()
        mine.add(p)
        todo += kids.get(p, [])
    ticks = 0
    for pid, (_, start, t, kthread) in tab.items():
        if pid in mine or kthread or pid not in before:
            continue
        if before[pid][0] == start:
            ticks += max(0, t - before[pid][1])
    print("%.1f %.0f" % (ticks / os.sysconf("SC_CLK_TCK"),
                         time.monotonic() - t0))


def main():
    cmds = {"mem": cmd_mem, "peak": cmd_peak, "cpu": cmd_cpu, "tree": cmd_tree,
            "threadcpu": cmd_threadcpu,
            "eicar": cmd_eicar, "reset-hwm": cmd_reset_hwm, "snapshot": cmd_snapshot,
            "foreign": cmd_foreign, "fsize": cmd_fsize,
            "trackdb": cmd_trackdb, "pss": cmd_pss, "pssum": cmd_pssum, "treepeak": cmd_treepeak}
    if len(sys.argv) < 2 or sys.argv[1] not in cmds:
        sys.exit(__doc__)
    cmds[sys.argv[1]](*sys.argv[2:])


if __name__ == "__main__":
    main()
