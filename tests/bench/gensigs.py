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

usage: gensigs.py DIR [--hdb N] [--ndb N] [--seed S]
"""
import argparse
import os
import random

TEXT = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/ "


def ndb_pattern(rnd, i):
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
    return "SporkBench.Ndb.%d:0:*:%s\n" % (i, body)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--hdb", type=int, default=200000)
    ap.add_argument("--ndb", type=int, default=100000)
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
            f.write(ndb_pattern(rnd, i))


if __name__ == "__main__":
    main()
