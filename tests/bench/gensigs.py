#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Writes a synthetic ClamAV signature database for the benchmark, so that
matching costs what a big database costs: many whole-file MD5 signatures
(.hdb, sizes spread so that nearly every object size has some, which makes
libclamav hash what it scans) and many body patterns (.ndb) for the
Aho-Corasick matcher, a share of them made of the same characters as mail
text so that partial matches happen, some with wildcards and ranges. The
names all start with "SporkBench." and no pattern can match the bench's
messages by accident (16+ random bytes each).

With --hsb and --ldb (section bigsigs: a set of the size of ClamAV's
real databases) also SHA-256 whole-file hashes (.hsb, hash:size:name:73)
and logical signatures (.ldb: two or three body subsignatures joined by
an expression), both .ldb and (with --spread) .ndb with their target
types spread as in ClamAV's own databases (most for PE files, a fifth
for any file), where the default puts every .ndb on any file.

usage: gensigs.py DIR [--hdb N] [--hsb N] [--ndb N] [--ldb N] [--spread] [--seed S]
"""
import argparse
import os
import random

TEXT = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/ "


# .ldb (and with --spread .ndb) targets, roughly as ClamAV's daily.ldb spreads them: most for PE
# files (1), then any file (0), HTML (3), ASCII text (7), PDF (10), ELF
# (6). Only the roots of a file's type cost a scan anything.
LDB_TARGETS = (1,) * 10 + (0,) * 4 + (3,) * 2 + (7,) * 2 + (10, 6)


def ndb_pattern(rnd, i, spread=False):
    kind = i % 10
    if kind < 5:
        # mail-like text: base64/ASCII characters, 16-40 bytes
        n = rnd.randint(16, 40)
        body = bytes(rnd.choice(TEXT) for _ in range(n)).hex()
    elif kind < 8:
        body = rnd.randbytes(rnd.randint(16, 32)).hex()
    elif kind == 8:
        # two parts with a bounded gap
        a = bytes(rnd.choice(TEXT) for _ in range(rnd.randint(8, 16))).hex()
        b = rnd.randbytes(rnd.randint(8, 16)).hex()
        body = "%s{0-%d}%s" % (a, rnd.randint(4, 64), b)
    else:
        # single-byte wildcards inside
        raw = rnd.randbytes(rnd.randint(18, 30)).hex()
        cut = [rnd.randrange(4, len(raw) // 2 - 2) * 2 for _ in range(2)]
        for c in sorted(set(cut)):
            raw = raw[:c] + "??" + raw[c + 2:]
        body = raw
    target = LDB_TARGETS[(i // 10) % len(LDB_TARGETS)] if spread else 0
    return "SporkBench.Ndb.%d:%d:*:%s\n" % (i, target, body)


def ldb_sig(rnd, i):
    # Name;Target description;Logical expression;Subsig0;Subsig1[;Subsig2]
    n = rnd.choice((2, 3))
    subs = []
    for k in range(n):
        if k == 0 and i % 2:
            subs.append(bytes(rnd.choice(TEXT)
                              for _ in range(rnd.randint(12, 24))).hex())
        else:
            subs.append(rnd.randbytes(rnd.randint(10, 20)).hex())
    expr = "&".join(str(k) for k in range(n)) if i % 3 else "0&(1|%d)" % (
        n - 1)
    return "SporkBench.Ldb.%d;Engine:51-255,Target:%d;%s;%s\n" % (
        i, LDB_TARGETS[i % len(LDB_TARGETS)], expr, ";".join(subs))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--hdb", type=int, default=200000)
    ap.add_argument("--ndb", type=int, default=100000)
    ap.add_argument("--hsb", type=int, default=0)
    ap.add_argument("--ldb", type=int, default=0)
    ap.add_argument("--spread", action="store_true",
                    help=".ndb targets spread as LDB_TARGETS (else all 0)")
    ap.add_argument("--seed", type=int, default=25)
    a = ap.parse_args()
    rnd = random.Random(a.seed)
    os.makedirs(a.dir, exist_ok=True)
    with open(os.path.join(a.dir, "spork-bench.hdb"), "w") as f:
        for i in range(a.hdb):
            f.write("%s:%d:SporkBench.Hdb.%d\n" %
                    (rnd.randbytes(16).hex(), rnd.randint(512, 200000), i))
    with open(os.path.join(a.dir, "spork-bench.ndb"), "w") as f:
        for i in range(a.ndb):
            f.write(ndb_pattern(rnd, i, a.spread))
    if a.hsb:
        with open(os.path.join(a.dir, "spork-bench.hsb"), "w") as f:
            for i in range(a.hsb):
                f.write("%s:%d:SporkBench.Hsb.%d:73\n" %
                        (rnd.randbytes(32).hex(), rnd.randint(512, 200000),
                         i))
    if a.ldb:
        with open(os.path.join(a.dir, "spork-bench.ldb"), "w") as f:
            for i in range(a.ldb):
                f.write(ldb_sig(rnd, i))


if __name__ == "__main__":
    main()
