#!/bin/bash
# SPDX-License-Identifier: MIT
# Volume through the bridge: smtp-source pipelining many messages per
# session over several sessions, every one delivered once; a 30 MB message
# arrives intact while sporkd's anonymous memory stays flat.
set -u
. "$(dirname "$0")/lib.sh"
tmp=$(mktemp -d)
trap 'lab_down; rm -rf "$tmp"' EXIT
lab_up

# --- smtp-source: 5 sessions, 60 messages, many per session, pipelined
in_cli smtp-source -d -s 5 -m 60 -l 4096 -r 1 -f sender@client.example.test \
	-t alice@example.test -M client.example.test "$SRV_V4:25" >"$tmp/src" 2>&1
rc=$?
[ $rc -eq 0 ] && pass "smtp-source: finished without error" ||
	fail "smtp-source: finished without error" "rc=$rc $(tail -n 3 "$tmp/src")"
check "smtp-source: 60 messages delivered" wait_delivered alice 60 30
sleep 1
n=$(maildir_count alice)
[ "$n" -eq 60 ] && pass "smtp-source: exactly 60, no duplicates" ||
	fail "smtp-source: exactly 60" "got $n"
c=$(grep -c 'verdict=clean .*reply="250' "$LAB_SPORKD_LOG")
[ "$c" -eq 60 ] && pass "sporkd: 60 clean verdicts with Postfix's 250" ||
	fail "sporkd: 60 clean verdicts" "got $c"
# Each logged as sporkd closes it, which may come after smtp-source is done.
sessions_done() { [ "$(grep -c 'disconnect reason=done' "$LAB_SPORKD_LOG")" -ge 5 ]; }
wait_until 10 sessions_done || true
s=$(grep -c 'disconnect reason=done' "$LAB_SPORKD_LOG")
[ "$s" -ge 5 ] && pass "sporkd: sessions ended cleanly" || fail "sporkd: sessions ended cleanly" "$s"

# --- 30 MB message: intact, flat memory
python3 - "$tmp/big.eml" <<'PY'
import hashlib, sys
line = b"0123456789abcdefghijklmnopqrstuvwxyz.ABCDEFGHIJKLMNOPQRSTUVWXYZ-0123456789\r\n"
with open(sys.argv[1], "wb") as f:
    f.write(b"From: big@client.example.test\r\nTo: bob@example.test\r\nSubject: thirty megabytes\r\n\r\n")
    for i in range(30 * 1024 * 1024 // len(line)):
        f.write((b"." if i % 1000 == 0 else b"") + line)
PY
anon() { awk '/^RssAnon:/ { print $2 }' "/proc/$(cat "$LAB_SPORKD_PID")/status"; }
# big_message LABEL USER: send it, print idle and peak anonymous RSS.
big_message() {
	local pid idle sampler before
	pid=$(cat "$LAB_SPORKD_PID")
	before=$(maildir_count "$2")
	idle=$(anon)
	( while kill -0 "$pid" 2>/dev/null; do anon; sleep 0.02; done >"$tmp/rss" ) &
	sampler=$!
	send_mail "$tmp/t-big-$1" "$2@example.test" big@client.example.test \
		"$SRV_V4" "" --data "@$tmp/big.eml" --suppress-data
	kill $sampler 2>/dev/null; wait $sampler 2>/dev/null
	peak=$(sort -n "$tmp/rss" | tail -n1)
	grew=$((peak - idle))
	echo "sporkd anonymous RSS ($1): idle ${idle} kB, peak ${peak} kB during a 30 MB message"
	assert_grep '^<- +250 2\.0\.0 Ok: queued' "$tmp/t-big-$1" "30 MB ($1): client got 250"
	check "30 MB ($1): delivered" wait_delivered "$2" $((before + 1)) 30
	f=$(maildir_files "$2" | tail -n1)
	if sed -n '/^From: big@client/,$p' "$f" | cmp -s - <(tr -d '\r' <"$tmp/big.eml"; echo); then
		pass "30 MB ($1): arrived byte for byte (dot-stuffed lines intact)"
	else
		fail "30 MB ($1): arrived byte for byte" "$(wc -c <"$f") bytes at the server"
	fi
}

sed 's/^scan_enable.*//' "$LAB_DIR/spork.conf" >"$tmp/noscan.conf"
echo "scan_enable no" >>"$tmp/noscan.conf"
lab start-sporkd "$tmp/noscan.conf" 2>/dev/null
big_message relay bob
[ "$grew" -lt 2048 ] && pass "30 MB (relay): sporkd memory flat (+${grew} kB < 2 MB)" ||
	fail "30 MB (relay): sporkd memory flat" "grew by ${grew} kB"
assert_grep 'size=3[0-9]{7} verdict=unscanned' "$LAB_SPORKD_LOG" "30 MB (relay): logged unscanned"

lab start-sporkd 2>/dev/null
big_message scanned alice
echo "in-process libclamav added ${grew} kB while parsing the 30 MB message"
assert_grep 'size=3[0-9]{7} verdict=clean' "$LAB_SPORKD_LOG" "30 MB (scanned): scanned clean"
summary
