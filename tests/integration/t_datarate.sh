#!/bin/bash
# SPDX-License-Identifier: MIT
# The minimum data rate through the bridge: a client dripping its message
# one byte a second gets 421 4.4.2 once min_data_rate_grace (3 s here) has
# passed and is dropped, and nothing of its message reaches Postfix; a
# normal session running at the same time is unaffected and its message
# arrives.
set -u
. "$(dirname "$0")/lib.sh"
tmp=$(mktemp -d)
trap 'lab_down; rm -rf "$tmp"' EXIT
lab_up
cp "$LAB_DIR/spork.conf" "$tmp/rate.conf"
printf 'min_data_rate 256\nmin_data_rate_grace 3s\n' >>"$tmp/rate.conf"
lab start-sporkd "$tmp/rate.conf" 2>/dev/null

# The slow client: a normal envelope, then the body a byte a second until
# the relay answers or 30 s pass. Prints every reply line and, at the end,
# "closed" if the relay closed the connection, and the seconds it dripped.
cat >"$tmp/drip.py" <<'PY'
import socket, sys, time
s = socket.create_connection((sys.argv[1], 25), timeout=30)
f = s.makefile("rb")
def reply():
    while True:
        line = f.readline().decode("latin-1")
        print("<- " + line.rstrip())
        if len(line) < 4 or line[3] != "-":
            return line
reply()
for cmd in ("EHLO drip.example.test", "MAIL FROM:<drip@client.example.test>",
            "RCPT TO:<alice@example.test>", "DATA"):
    s.sendall(cmd.encode() + b"\r\n")
    reply()
s.setblocking(False)
body = b"Subject: dripping\r\n\r\n" + b"x" * 100 + b"\r\n.\r\n"
t0 = time.monotonic()
got = b""
for b in body:
    if time.monotonic() - t0 > 30:
        break
    try:
        s.send(bytes([b]))
    except OSError:
        break
    time.sleep(1)
    try:
        data = s.recv(4096)
    except BlockingIOError:
        continue
    except OSError:
        break
    got += data
    if not data or b"\n" in got:
        break
for line in got.decode("latin-1").splitlines():
    print("<- " + line)
s.settimeout(5)
try:
    closed = s.recv(1) == b""
except OSError:
    closed = True
print("closed" if closed else "open")
print("dripped %.0f s" % (time.monotonic() - t0))
PY

before=$(maildir_count alice)
in_cli python3 "$tmp/drip.py" "$SRV_V4" >"$tmp/drip.out" 2>&1 &
drip=$!
# A normal session while the slow one drips: once sporkd holds its session
# (a fixed pause can be too short for python to start on a loaded machine).
dripping() { [ "$(ctl status | sed -n 's/^sessions=//p')" -ge 1 ] 2>/dev/null; }
check "slow client: its session is up" wait_until 10 dripping
cat >"$tmp/normal.eml" <<'MSG'
From: sender@client.example.test
To: bob@example.test
Subject: at normal speed
Message-ID: <normal-rate@client.example.test>

Sent while another client drips.
MSG
sed -i 's/$/\r/' "$tmp/normal.eml"
send_mail "$tmp/t-normal" bob@example.test sender@client.example.test \
	"$SRV_V4" "" --data "@$tmp/normal.eml"
if kill -0 "$drip" 2>/dev/null; then
	pass "normal session done while the slow client was still connected"
else
	fail "normal session done while the slow client was still connected" \
		"the slow client had already finished"
fi
assert_grep '^<- +250 2\.0\.0 Ok: queued' "$tmp/t-normal" "normal session: client got Postfix's 250"
check "normal session: message delivered" wait_delivered bob 1 10
assert_grep 'Subject: at normal speed' "$(maildir_files bob | tail -n1)" "normal session: the message that arrived is the one sent"

wait "$drip"
assert_grep '^<- 354 ' "$tmp/drip.out" "slow client: got 354"
assert_grep '^<- 421 4\.4\.2 Error: data rate too low' "$tmp/drip.out" "slow client: 421 4.4.2 data rate too low"
assert_grep '^closed$' "$tmp/drip.out" "slow client: connection closed by the relay"
secs=$(sed -n 's/^dripped \([0-9]*\) s$/\1/p' "$tmp/drip.out")
if [ -n "$secs" ] && [ "$secs" -ge 3 ] && [ "$secs" -le 15 ]; then
	pass "slow client: dropped after the grace period (${secs} s)"
else
	fail "slow client: dropped after the grace period" "dripped ${secs:-?} s"
fi
assert_grep 'close reason=data-rate reply="421 4\.4\.2 Error: data rate too low' "$LAB_SPORKD_LOG" "sporkd logged the drop (reason=data-rate)"
sleep 1
check "slow client: nothing delivered" [ "$(maildir_count alice)" -eq "$before" ]
if grep -rqs 'Subject: dripping' "$LAB_MAIL"; then
	fail "slow client: no part of its message in any Maildir" "found"
else
	pass "slow client: no part of its message in any Maildir"
fi
summary
