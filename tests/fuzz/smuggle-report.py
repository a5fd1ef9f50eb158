#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Run every SMTP smuggling vector in the corpus through the real framer.

Each vector of smuggling-vectors.tsv is a file in corpus/fuzz_data/
(smuggle-NAME: a message, the fake end, a smuggled transaction, the real
CRLF.CRLF; ctl-NAME: a control input as written). Each goes through
build/fuzz/frame_driver (src/smtp/smtp_data.c, fed as the relay feeds it) with
bare_newline reject and normalize, and the table shows where the message
ended, whether the relay refuses it, and what would go upstream around the
fake end.

Violations (exit status 1):
  - the message ends anywhere but at the first real CRLF "." CRLF of the
    input (or ".\\r\\n" as the first line), or misses it;
  - a vector's smuggled transaction does not stay content;
  - what goes upstream has a line end other than CRLF, or a CRLF.CRLF
    before its own terminator;
  - reject mode does not flag exactly the bare CR/LF the message has, or
    normalize mode flags one.
Warnings (reported, exit status unchanged): the upstream bytes would end
early at a server that drops NUL bytes before looking for the end.

usage: smuggle-report.py [-d build/fuzz/frame_driver] [-v]
"""

import argparse
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
CORPUS = os.path.join(HERE, "corpus", "fuzz_data")
SMUGGLED_MARK = b"mail FROM:<admin@example.net>"
HEAD_MARK = b"end-of-data sequence!"


def unescape(s):
    return s.encode("latin-1").decode("unicode_escape").encode("latin-1")


def esc(b, limit=48):
    out = []
    for c in b:
        if c == 13:
            out.append("\\r")
        elif c == 10:
            out.append("\\n")
        elif c == 0:
            out.append("\\0")
        elif c < 32 or c > 126:
            out.append("\\x%02x" % c)
        else:
            out.append(chr(c))
    s = "".join(out)
    return s if len(s) <= limit else s[:limit - 3] + "..."


def manifest():
    rows = []
    with open(os.path.join(HERE, "smuggling-vectors.tsv"), encoding="ascii") as f:
        for line in f:
            if not line.strip() or line.startswith("#"):
                continue
            name, seq, kind, source = line.rstrip("\n").split("\t")
            rows.append((name, unescape(seq), kind, source))
    return rows


def true_end(data):
    if data.startswith(b".\r\n"):
        return 3
    i = data.find(b"\r\n.\r\n")
    return i + 5 if i >= 0 else 0


def bare(body):
    lf = any(body[i] == 10 and (i == 0 or body[i - 1] != 13)
             for i in range(len(body)))
    cr = any(body[i] == 13 and i + 1 < len(body) and body[i + 1] != 10
             for i in range(len(body)))
    return lf, cr


def crlf_only(b):
    for i, c in enumerate(b):
        if c == 10 and (i == 0 or b[i - 1] != 13):
            return i
        if c == 13 and (i + 1 == len(b) or b[i + 1] != 10):
            return i
    return -1


def frame(driver, data, normalize):
    argv = [driver] + (["-n"] if normalize else [])
    p = subprocess.run(argv, input=data, capture_output=True, check=False)
    if p.returncode != 0:
        raise RuntimeError(f"{driver} exited {p.returncode}: "
                           f"{p.stderr.decode(errors='replace')[:500]}")
    r = {}
    for line in p.stdout.decode().splitlines():
        k, _, v = line.partition("=")
        r[k] = v
    return {
        "end": r["end"] == "1",
        "consumed": int(r["consumed"]),
        "errors": set(r["errors"].split()) - {"none"},
        "content": bytes.fromhex(r["content"]),
        "upstream": bytes.fromhex(r["upstream"]),
        "rest": bytes.fromhex(r["rest"]),
    }


def check(name, kind, data, normalize, r):
    """Violations and warnings for one run."""
    bad, warn = [], []
    te = true_end(data)
    if te and (not r["end"] or r["consumed"] != te):
        bad.append(f"ended at {r['consumed'] if r['end'] else 'none'}, "
                   f"the real end is at {te}")
    if not te and r["end"]:
        bad.append(f"ended at byte {r['consumed']} with no CRLF.CRLF")
    if r["end"] and not (data[:r["consumed"]] == b".\r\n" or
                         data[:r["consumed"]].endswith(b"\r\n.\r\n")):
        bad.append("the consumed input does not end with CRLF.CRLF")
    if kind == "vector":
        if r["consumed"] != len(data) or not r["end"]:
            bad.append("the smuggled transaction did not stay content")
        if SMUGGLED_MARK not in r["content"]:
            bad.append("the smuggled commands are missing from the content")

    up = r["upstream"]
    i = crlf_only(up)
    if i >= 0:
        bad.append(f"bare CR/LF going upstream at byte {i}")
    if r["content"] == b"":
        if up != b".\r\n":
            bad.append("empty message not sent as a lone terminator")
    elif up.find(b"\r\n.\r\n") != len(up) - 5 or up.startswith(b".\r\n"):
        bad.append("upstream has a CRLF.CRLF before its terminator")
    if not r["content"].endswith(b"\r\n") and r["end"] and r["content"]:
        bad.append("ended content without a final CRLF")

    body = data[:r["consumed"] - 3] if r["end"] else data[:r["consumed"]]
    lf, cr = bare(body)
    flags = {"bare-lf", "bare-cr"} & r["errors"]
    if normalize and flags:
        bad.append(f"normalize mode flagged {sorted(flags)}")
    if not normalize and flags != ({"bare-lf"} if lf else set()) | \
            ({"bare-cr"} if cr else set()):
        bad.append(f"reject mode flagged {sorted(flags) or 'nothing'}, "
                   f"the message has bare LF={lf} CR={cr}")

    sent = not r["errors"]
    nul_up = up.replace(b"\x00", b"")
    if sent and nul_up.find(b"\r\n.\r\n") not in (-1, len(nul_up) - 5):
        warn.append("a server that drops NUL bytes would see the end "
                    "early: the NUL goes upstream as it came")
    return bad, warn


def upstream_view(kind, r):
    if r["errors"]:
        return "(nothing: message refused)"
    up = r["upstream"]
    if kind == "vector":
        a = up.find(HEAD_MARK)
        b = up.find(SMUGGLED_MARK)
        if a >= 0 and b >= 0:
            return "..!" + esc(up[a + len(HEAD_MARK):b]) + "mail FROM.."
    return esc(up)


def verdict(r):
    if "too-big" in r["errors"]:
        return "refused 552 (too big)"
    if r["errors"] & {"bare-lf", "bare-cr"}:
        which = "LF" if "bare-lf" in r["errors"] else "CR"
        return f"refused 550 (bare {which})"
    if "long-line" in r["errors"]:
        return "refused 550 (long line)"
    return "accepted" if r["end"] else "(no end yet)"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-d", "--driver",
                    default=os.path.join(TOP, "build", "fuzz", "frame_driver"))
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()
    if not os.access(args.driver, os.X_OK):
        print(f"smuggle-report: {args.driver} is not built "
              f"(make fuzz-build)", file=sys.stderr)
        return 1

    rows = manifest()
    inputs = []
    problems = []
    for name, seq, kind, source in rows:
        fn = ("smuggle-" if kind == "vector" else "ctl-") + name
        path = os.path.join(CORPUS, fn)
        if not os.path.exists(path):
            problems.append(f"{fn}: listed in smuggling-vectors.tsv but not "
                            f"in the corpus (run tests/fuzz/gen-corpus.py)")
            continue
        with open(path, "rb") as f:
            inputs.append((name, esc(seq, 18), kind, f.read()))
    listed = {("smuggle-" if k == "vector" else "ctl-") + n
              for n, _, k, _ in rows}
    for fn in sorted(os.listdir(CORPUS)):
        if fn.startswith(("smuggle-", "ctl-")) and fn not in listed:
            with open(os.path.join(CORPUS, fn), "rb") as f:
                kind = "vector" if fn.startswith("smuggle-") else "control"
                inputs.append((fn.split("-", 1)[1], "?", kind, f.read()))

    fmt = "{:<22} {:<18} {:<9} {:<12} {:<22} {}"
    print(fmt.format("vector", "bytes", "mode", "ends", "verdict",
                     "upstream (around the fake end)"))
    print(fmt.format(*["-" * w for w in (22, 18, 9, 12, 22, 30)]))
    nwarn = 0
    runs = 0
    for name, shown, kind, data in inputs:
        for normalize in (0, 1):
            r = frame(args.driver, data, normalize)
            runs += 1
            bad, warn = check(name, kind, data, normalize, r)
            if r["end"]:
                where = ("at real end" if r["consumed"] == true_end(data)
                         else f"EARLY {r['consumed']}")
            else:
                where = "no end"
            print(fmt.format(name if kind == "vector" else "ctl:" + name,
                             shown, "normalize" if normalize else "reject",
                             where, verdict(r), upstream_view(kind, r)))
            for b in bad:
                problems.append(f"{name} ({'normalize' if normalize else 'reject'}): {b}")
                print(f"    VIOLATION: {b}")
            for w in warn:
                nwarn += 1
                print(f"    warning: {w}")
            if args.verbose:
                print(f"    content={esc(r['content'], 200)}")
                print(f"    upstream={esc(r['upstream'], 200)}")

    for p in problems:
        if "not in the corpus" in p:
            print(f"VIOLATION: {p}")
    nvec = sum(1 for i in inputs if i[2] == "vector")
    print(f"smuggle vectors={nvec} controls={len(inputs) - nvec} runs={runs} "
          f"violations={len(problems)} warnings={nwarn}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
