#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Write the seed corpora under tests/fuzz/corpus/<target>/.

The seeds are checked in; this script is how they were made, so that a new
seed is added here and not by hand. Run from anywhere:
    tests/fuzz/gen-corpus.py
It rewrites every seed it knows and leaves other files alone (inputs a
fuzzer found and someone copied in stay).

Smuggling vectors come from smuggling-vectors.tsv next to this script (the
one list the report script reads too): each becomes
corpus/fuzz_data/smuggle-<name>, a DATA body in the shape the published
scanners send: a legitimate message, the fake end, a complete smuggled
transaction, and the real CRLF.CRLF at the very end.
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
CORPUS = os.path.join(HERE, "corpus")

HEAD = (b"From: alice@example.org\r\n"
        b"To: bob@example.net\r\n"
        b"Subject: smuggling check\r\n"
        b"Date: Mon, 01 Jan 2024 00:00:00 +0000\r\n"
        b"Message-ID: <check@example.org>\r\n"
        b"\r\n"
        b"TESTING a \"fake\" end-of-data sequence!")
SMUGGLED = (b"mail FROM:<admin@example.net>\r\n"
            b"rcpt TO:<bob@example.net>\r\n"
            b"data\r\n"
            b"From: admin@example.net\r\n"
            b"To: bob@example.net\r\n"
            b"Subject: SMUGGLED\r\n"
            b"\r\n"
            b"SMUGGLING WORKS\r\n")
REAL_END = b".\r\n"


def unescape(s):
    """Python-style escapes (\\r \\n \\x00 ...) in a TSV field."""
    return s.encode("latin-1").decode("unicode_escape").encode("latin-1")


def vectors():
    out = []
    with open(os.path.join(HERE, "smuggling-vectors.tsv"), encoding="ascii") as f:
        for line in f:
            if not line.strip() or line.startswith("#"):
                continue
            name, seq, kind, source = line.rstrip("\n").split("\t")
            out.append((name, unescape(seq), kind, source))
    return out


def vector_message(seq):
    return HEAD + seq + SMUGGLED + REAL_END


def write(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def data_seeds():
    for name, seq, kind, _ in vectors():
        if kind == "vector":
            write("fuzz_data", "smuggle-" + name, vector_message(seq))
        else:
            write("fuzz_data", "ctl-" + name, seq)
    write("fuzz_data", "plain", HEAD + b"\r\nbody\r\n.\r\n")
    write("fuzz_data", "dot-stuffed",
          b"a\r\n..\r\n..b\r\n...\r\n. \r\n.\r\n")
    write("fuzz_data", "first-line-dot", b"..x\r\n.\r\n")
    write("fuzz_data", "long-line", b"x" * 1200 + b"\r\n.\r\n")
    write("fuzz_data", "nul-8bit", b"\xc3\xa9\x00x\r\n\x00\r\n.\r\n")
    write("fuzz_data", "bare-lf-body", b"a\nb\nc\r\n.\r\n")
    write("fuzz_data", "bare-cr-body", b"a\rb\rc\r\n.\r\n")
    write("fuzz_data", "crlf-runs", b"\r\r\r\n\n\n\r\n\r\r\n.\r\n")
    write("fuzz_data", "end-then-pipelined",
          b"a\r\n.\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n")
    write("fuzz_data", "no-end", b"a\r\nb\r\n.")
    write("fuzz_data", "dot-cr-end", b"a\r\n.\r")


def cmd_seeds():
    w = lambda n, d: write("fuzz_cmd", n, d)
    w("ehlo", b"EHLO client.example.org\r\n")
    w("session", b"EHLO client.example.org\r\nMAIL FROM:<a@example.org> "
      b"SIZE=1000 BODY=8BITMIME\r\nRCPT TO:<b@example.net>\r\nDATA\r\n"
      b"Subject: x\r\n\r\nhi\r\n.\r\nQUIT\r\n")
    w("pipelined-group", b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@x>\r\n"
      b"RCPT TO:<c@x>\r\nRCPT TO:<d@x>\r\nDATA\r\n")
    w("pipelined-after-data", b"DATA\r\nbody\r\n.\r\nMAIL FROM:<a@b>\r\n"
      b"RCPT TO:<c@d>\r\nDATA\r\nsecond\r\n.\r\nQUIT\r\n")
    w("starttls-injection", b"STARTTLS\r\nRSET\r\n")
    w("starttls-injection-mail",
      b"EHLO x\r\nSTARTTLS\r\nMAIL FROM:<evil@example.org>\r\n"
      b"RCPT TO:<victim@example.net>\r\n")
    w("starttls-args", b"STARTTLS now\r\nRSET\r\n")
    w("lowercase", b"ehlo x\r\nmail from:<a@b>\r\nrcpt to:<c@d>\r\ndata\r\n")
    w("mixedcase", b"StartTLS\r\nDaTa\r\nBdAt 10 LAST\r\n")
    w("bdat", b"BDAT 10 LAST\r\n0123456789QUIT\r\n")
    w("auth", b"AUTH LOGIN\r\ndXNlcg==\r\ncGFzcw==\r\nAUTH PLAIN "
      b"AHVzZXIAcGFzcw==\r\n")
    w("long-line", b"MAIL FROM:<" + b"a" * 3000 + b"@example.org>\r\nRSET\r\n")
    w("long-line-cr-at-limit", b"NOOP " + b"x" * 505 + b"\r\nQUIT\r\n")
    w("long-then-bare-lf", b"X" * 600 + b"\nRSET\r\n")
    w("nul-in-command", b"MAIL FROM:<a\x00b@example.org>\r\nRSET\r\n")
    w("bare-cr-in-command", b"RSET\rDATA\r\nNOOP\r\n")
    w("bare-lf-commands", b"EHLO x\nMAIL FROM:<a@b>\nRCPT TO:<c@d>\n")
    w("empty-lines", b"\r\n\r\n \r\nNOOP\r\n")
    w("verbs", b"HELO x\r\nVRFY a\r\nEXPN b\r\nHELP\r\nNOOP\r\nRSET\r\n"
      b"QUIT\r\n")
    w("unknown-verb", b"XCLIENT ADDR=1.2.3.4\r\nETRN x\r\n")
    w("data-then-smuggle", b"DATA\r\nx\n.\nMAIL FROM:<evil@a>\r\n.\r\n"
      b"QUIT\r\n")
    # Regressions: inputs that broke an invariant before src/ was fixed.
    w("regress-normalize-bare-cr", b"RSET\rDATA\n")
    w("regress-normalize-nul",
      b"MAIL FROM:<a@example.org>\x00RCPT TO:<b@example.net>\n")
    w("regress-tab-bdat", b"BDAT\t21 LAST\r\n")
    w("regress-tab-data", b"DATA\t\r\n")
    w("regress-tab-starttls", b"STARTTLS\t\r\nRSET\r\n")


def reply_seeds():
    w = lambda n, d: write("fuzz_reply", n, d)
    w("greeting", b"220 mx.example.net ESMTP\r\n")
    w("greeting-multiline", b"220-mx.example.net ESMTP\r\n220-no UCE\r\n"
      b"220 ready\r\n")
    w("ehlo-postfix", b"250-mx.example.net\r\n250-PIPELINING\r\n"
      b"250-SIZE 10240000\r\n250-VRFY\r\n250-ETRN\r\n250-STARTTLS\r\n"
      b"250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250-DSN\r\n"
      b"250-SMTPUTF8\r\n250 CHUNKING\r\n")
    w("ehlo-exim", b"250-mx.example.net Hello client [192.0.2.1]\r\n"
      b"250-SIZE 52428800\r\n250-8BITMIME\r\n250-PIPELINING\r\n"
      b"250-PIPE_CONNECT\r\n250-CHUNKING\r\n250-STARTTLS\r\n250-PRDR\r\n"
      b"250 HELP\r\n")
    w("ehlo-exchange", b"250-EXCH01.example.net Hello [192.0.2.1]\r\n"
      b"250-SIZE 37748736\r\n250-PIPELINING\r\n250-DSN\r\n"
      b"250-ENHANCEDSTATUSCODES\r\n250-STARTTLS\r\n250-X-ANONYMOUSTLS\r\n"
      b"250-AUTH NTLM\r\n250-X-EXPS GSSAPI NTLM\r\n250-8BITMIME\r\n"
      b"250-BINARYMIME\r\n250-CHUNKING\r\n250-XRDST\r\n250 SMTPUTF8\r\n")
    w("ehlo-gmail", b"250-mx.google.com at your service, [192.0.2.1]\r\n"
      b"250-SIZE 157286400\r\n250-8BITMIME\r\n250-STARTTLS\r\n"
      b"250-ENHANCEDSTATUSCODES\r\n250-PIPELINING\r\n250-CHUNKING\r\n"
      b"250 SMTPUTF8\r\n")
    w("ehlo-chunking-last", b"250-mx\r\n250-8BITMIME\r\n250 CHUNKING\r\n")
    w("ehlo-only-hidden", b"250-mx\r\n250-BINARYMIME\r\n250 CHUNKING\r\n")
    w("ehlo-lowercase", b"250-mx\r\n250-chunking\r\n250-size 1000\r\n"
      b"250 binarymime\r\n")
    w("ehlo-size-forms", b"250-mx\r\n250-SIZE\r\n250-SIZE=1000\r\n"
      b"250-SIZE 0\r\n250-SIZE 99999999999999999999999\r\n"
      b"250 SIZE -1\r\n")
    w("ehlo-auth-old", b"250-mx\r\n250-AUTH=LOGIN PLAIN\r\n"
      b"250-AUTH LOGIN PLAIN\r\n250 CHUNKINGX\r\n")
    w("ehlo-bare-lf", b"250-mx.example.net\n250-PIPELINING\n"
      b"250-SIZE 1000\n250 CHUNKING\n")
    w("ehlo-no-text", b"250\r\n")
    w("ehlo-dash-only", b"250-\r\n250-\r\n250 \r\n")
    w("bare-lf-server", b"220 mx ESMTP\n250 ok\n354 go ahead\n250 queued\n"
      b"221 bye\n")
    w("pipelined-replies", b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n"
      b"550 5.1.1 <x@example.net>: Recipient address rejected\r\n"
      b"354 End data with <CR><LF>.<CR><LF>\r\n")
    w("multiline-5xx", b"554-5.7.1 Rejected\r\n554-5.7.1 see "
      b"https://example.net/why\r\n554 5.7.1 bye\r\n")
    w("tempfail", b"421 4.3.2 Service shutting down\r\n")
    w("code-change", b"250-mx\r\n251 oops\r\n")
    w("bad-mark", b"250+mx\r\n")
    w("code-only-lf", b"250\n")
    w("starttls-220", b"220 2.0.0 Ready to start TLS\r\n\x16\x03\x01\x02\x00")
    many = b"".join(b"250-EXT%d\r\n" % i for i in range(140)) + b"250 END\r\n"
    w("ehlo-many-lines", b"250-mx\r\n" + many)
    w("long-line", b"250 " + b"x" * 600 + b"\r\n")
    # Regressions: inputs that broke an invariant before src/ was fixed.
    w("regress-bare-cr-in-reply", b"250-mx.example.net\r\n"
      b"250-PIPELINING\r250-CHUNKING\r\n250 OK\r\n")
    w("regress-chunking-tab", b"250-mx.example.net\r\n250 CHUNKING\t\r\n")
    w("regress-binarymime-leading-space",
      b"250-mx.example.net\r\n250- BINARYMIME\r\n250 OK\r\n")
    w("regress-size-from-next-line",
      b"250-mx.example.net\r\n250-SIZE  \r\n250 8BITMIME\r\n")
    w("regress-size-past-reply-end", b"250-mx.example.net\r\n250 SIZE  \n")
    w("regress-size-tab-uncapped",
      b"250-mx.example.net\r\n250-SIZE\t999999999999\r\n250 OK\r\n")


def conf_seeds():
    w = lambda n, d: write("fuzz_conf", n, d)
    with open(os.path.join(TOP, "etc", "spork.conf"), "rb") as f:
        ref = f.read()
    w("spork.conf", ref)
    w("spork.conf-crlf", ref.replace(b"\n", b"\r\n"))
    w("minimal", b"transparent_listen 0.0.0.0:10025\n")
    w("explicit", b"transparent_listen\nexplicit_listen 127.0.0.1:10026 "
      b"[::1]:10026\nexplicit_upstream 127.0.0.1:25\n")
    w("explicit-no-upstream", b"explicit_listen 127.0.0.1:10026\n")
    w("no-listener", b"transparent_listen\n")
    w("addresses", b"transparent_listen 0.0.0.0:1 [::]:65535 "
      b"[2001:db8::1]:25 192.0.2.1:25 1.2.3.4:65536 [::1 :25 x:y\n")
    w("many-addresses", b"transparent_listen " +
      b" ".join(b"10.0.0.%d:25" % i for i in range(12)) + b"\n")
    w("sizes", b"message_size_limit 10m\nspool_memory_max 64K\n"
      b"scan_max_size 2G\nmax_text_line 0\nmax_command_line 512\n"
      b"clamd_max_stream 18446744073709551615k\nmax_reply_line 1x\n")
    w("times", b"timeout_connect 30\ntimeout_command 5m\ntimeout_reply 1h\n"
      b"timeout_data_final 24h\ntimeout_greeting 0\n"
      b"timeout_passthrough 86401\n")
    w("enums", b"bare_newline normalize\nlog_level debug\n"
      b"virus_action quarantine\nquarantine_then deliver\n"
      b"scan_backend clamd\nclamd_servers /run/clamd.sock "
      b"127.0.0.1:3310\nscan_enable no\nlog_syslog false\n")
    w("bad-values", b"bare_newline maybe\n")
    w("unknown-key", b"no_such_key 1\n")
    w("words", b"clamav_signatures " +
      b" ".join(b"/var/lib/clamav/s%d.ndb" % i for i in range(20)) + b"\n")
    w("long-word", b"clamav_database_dir /" + b"d" * 700 + b"\n")
    w("long-line", b"user " + b"u" * 5000 + b"\n")
    w("comments", b"# only a comment\n   \t# indented\n\nuser spork # me\n"
      b"transparent_listen 0.0.0.0:25#x\n")
    w("tls", b"tls_policy intercept\ntls_cert_file /etc/ssl/c.pem\n"
      b"tls_verify yes\ntls_intercept_servers a.example b.example\n")
    w("nul", b"user sp\x00ork\nlog_level info\n")
    w("no-newline-at-end", b"log_level info")


# fuzz_session: byte 0 flags, byte 1 virus mask, then chunks of at most 127
# bytes, each after a header byte (bit 7: from the server; the rest: its
# length; 0 half-closes that side). See fuzz_session.c.
S_NORMALIZE, S_STRIP, S_NOSCAN, S_SLOWSCAN, S_TIGHT, S_SPOOLFILE = \
    1, 2, 4, 8, 16, 32


def session(flags, vmask, events):
    out = bytearray([flags, vmask])
    for side, data in events:
        hi = 0x80 if side == "s" else 0
        if data is None:
            out += bytes([hi])
            continue
        for i in range(0, len(data), 127):
            part = data[i:i + 127]
            out += bytes([hi | len(part)]) + part
    return bytes(out)


GREET = [("s", b"220 mx.example.net ESMTP\r\n"),
         ("c", b"EHLO client.example.org\r\n"),
         ("s", b"250-mx.example.net\r\n250-PIPELINING\r\n250-SIZE 10240000"
          b"\r\n250-STARTTLS\r\n250-CHUNKING\r\n250 8BITMIME\r\n")]
ENVELOPE = [("c", b"MAIL FROM:<alice@example.org>\r\n"),
            ("s", b"250 2.1.0 Ok\r\n"),
            ("c", b"RCPT TO:<bob@example.net>\r\n"),
            ("s", b"250 2.1.5 Ok\r\n"),
            ("c", b"DATA\r\n")]
DELIVER = [("s", b"354 End data with <CR><LF>.<CR><LF>\r\n"[:4] +
            b"go ahead\r\n"),
           ("s", b"250 2.0.0 Ok: queued as 4XkQ1\r\n")]
QUIT = [("c", b"QUIT\r\n"), ("s", b"221 2.0.0 Bye\r\n")]


def session_seeds():
    w = lambda name, data: write("fuzz_session", name, data)
    body = HEAD + b"\r\nbody\r\n.\r\n"
    plain = GREET + ENVELOPE + [("c", body)] + DELIVER + QUIT
    w("plain", session(0, 0, plain))
    w("plain-normalize", session(S_NORMALIZE, 0, plain))
    w("virus", session(0, 1, GREET + ENVELOPE + [("c", body)] +
                       [("s", b"250 2.0.0 Ok\r\n")] + QUIT))
    w("slow-scan-pipelined", session(S_SLOWSCAN, 0, GREET + ENVELOPE +
        [("c", body + b"RSET\r\n")] + DELIVER +
        [("s", b"250 2.0.0 Ok\r\n")] + QUIT))
    w("tight-limits", session(S_TIGHT | S_SPOOLFILE, 0, GREET + ENVELOPE +
        [("c", b"x" * 100 + b"\r\n" + b"y\r\n" * 150 + b".\r\n")] +
        [("s", b"250 2.0.0 Ok\r\n")] + QUIT))
    w("no-scanner", session(S_NOSCAN, 0, plain))
    w("pipelined", session(0, 0, GREET + [
        ("c", b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\n"
         b"RCPT TO:<c@example.net>\r\nDATA\r\n"),
        ("s", b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n550 5.1.1 No such user\r\n"),
        ("c", body)] + DELIVER + QUIT))
    w("server-gone-mid-data", session(0, 0, GREET + ENVELOPE +
        [("c", body), ("s", b"354 go\r\n"), ("s", None)]))
    w("client-gone-mid-data", session(0, 0, GREET + ENVELOPE +
        [("c", HEAD), ("c", None)]))
    w("server-421", session(0, 0, GREET + [("s", b"421 4.3.2 bye\r\n")]))
    w("auth", session(0, 0, GREET + [
        ("c", b"AUTH LOGIN\r\n"), ("s", b"334 VXNlcm5hbWU6\r\n"),
        ("c", b"YWxpY2U=\r\n"), ("s", b"334 UGFzc3dvcmQ6\r\n"),
        ("c", b"c2VjcmV0\r\n"), ("s", b"235 2.7.0 Ok\r\n")] + ENVELOPE +
        [("c", body)] + DELIVER + QUIT))
    # AUTH with a command pipelined behind it: the server reads that
    # command as the AUTH response, so the relay must not read it as one.
    w("regress-auth-pipelined", session(0, 0, GREET + [
        ("c", b"AUTH LOGIN\r\nRSET\r\n"), ("s", b"334 VXNlcm5hbWU6\r\n"),
        ("s", b"535 5.7.8 Error\r\n"), ("c", b"DATA\r\n"),
        ("s", b"354 go\r\n"), ("c", b"Subject: x\r\n\r\nunscanned\r\n.\r\n"),
        ("s", b"250 2.0.0 Ok: queued as 4XkQ2\r\n")] + QUIT))
    for flags, sfx in ((0, ""), (S_STRIP, "-strip")):
        # STARTTLS injection, both directions (CVE-2011-0411).
        w("starttls-injection" + sfx, session(flags, 0, GREET + [
            ("c", b"STARTTLS\r\nRSET\r\nMAIL FROM:<evil@example.org>\r\n"),
            ("s", b"220 2.0.0 Ready to start TLS\r\n250 2.0.0 injected\r\n"),
            ("c", b"\x16\x03\x01\x00\x05hello"),
            ("s", b"\x16\x03\x03\x00\x02hi")]))
        w("starttls-refused" + sfx, session(flags, 0, GREET + [
            ("c", b"STARTTLS\r\n"), ("s", b"454 4.7.0 TLS not available\r\n")]
            + ENVELOPE + [("c", body)] + DELIVER + QUIT))
    for name, seq, kind, _ in vectors():
        if kind != "vector":
            continue
        msg = vector_message(seq)
        ev = GREET + ENVELOPE + [("c", msg)] + DELIVER + [
            ("s", b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 go\r\n"
             b"250 2.0.0 Ok: queued as SMUGGLED\r\n")] + QUIT
        w("smuggle-" + name, session(0, 0, ev))
        w("smuggle-" + name + "-normalize", session(S_NORMALIZE, 0, ev))


def spam_seeds():
    """Engine replies; the first byte picks the parser (0 rspamd, 1 spamd)."""
    def http(body, status=b"200 OK", extra=b""):
        return (b"\x00HTTP/1.1 " + status + b"\r\nConnection: close\r\n"
                b"Server: rspamd/3.4\r\n" + extra + b"Content-Length: %d\r\n"
                b"Content-Type: application/json\r\n\r\n" % len(body) + body)
    w = lambda n, d: write("fuzz_spam", n, d)
    # rspamd 3.4's answers, verbatim.
    w("rspamd-gtube", http(
        b'{"is_skipped":true,"score":15.0,"required_score":15.0,'
        b'"action":"reject","symbols":{"GTUBE":{"name":"GTUBE","score":0.0,'
        b'"metric_score":0.0}},"messages":{"smtp_message":"Gtube pattern"},'
        b'"message-id":"gtube@client.example.test","time_real":0.325515}'))
    w("rspamd-clean", http(
        b'{"is_skipped":false,"score":0.0,"required_score":15.0,'
        b'"action":"no action","symbols":{},"messages":{},'
        b'"message-id":"undef","time_real":0.000324}'))
    w("rspamd-tag", http(
        b'{"is_skipped":false,"score":7.0,"required_score":20.0,'
        b'"action":"add header","symbols":{"SPORK_TEST_TAG":{"name":'
        b'"SPORK_TEST_TAG","score":7.0,"metric_score":7.0,"options":'
        b'["a","b"]}},"messages":{},"message-id":"undef"}'))
    w("rspamd-no-length", b"\x00HTTP/1.0 200 OK\r\n\r\n"
      b'{"score":-2.5,"required_score":7,"symbols":{"A":{},"B":{}}}')
    w("rspamd-500", b"\x00HTTP/1.1 500 Internal Server Error\r\n"
      b"Content-Length: 0\r\n\r\n")
    w("rspamd-chunked", b"\x00HTTP/1.1 200 OK\r\nTransfer-Encoding: "
      b"chunked\r\n\r\n5\r\n{\"a\":\r\n0\r\n\r\n")
    w("rspamd-nested", http(b"[" * 3000 + b"]" * 3000))
    w("spamd-symbols", b"\x01SPAMD/1.1 0 EX_OK\r\nContent-length: 43\r\n"
      b"Spam: True ; 1000.0 / 5.0\r\n\r\n"
      b"GTUBE,NO_RECEIVED,NO_RELAYS,TVD_SPACE_RATIO")
    w("spamd-check", b"\x01SPAMD/1.1 0 EX_OK\r\nSpam: False ; 4.2 / 5.0"
      b"\r\n\r\n")
    w("spamd-error", b"\x01SPAMD/1.0 76 Bad header line: Content-length: "
      b"x\r\n")
    # Broke the invariant once: a quote from the reply inside the error.
    w("regress-quote-in-error", b'\x00HTTP/1.1 "200" OK\r\n\r\n')


def main():
    data_seeds()
    cmd_seeds()
    reply_seeds()
    conf_seeds()
    session_seeds()
    spam_seeds()
    n = sum(len(os.listdir(os.path.join(CORPUS, d)))
            for d in os.listdir(CORPUS))
    print(f"{n} seeds in {CORPUS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
