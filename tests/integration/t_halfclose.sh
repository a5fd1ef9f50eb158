#!/bin/bash
# SPDX-License-Identifier: MIT
# What real MTAs do at the edges of a session, at the socket level, with
# the real Postfix behind the bridge:
# - a client that sends its last end of data and QUIT together and then
#   half-closes (shutdown SHUT_WR, as Exim does) reads the server's 250 and
#   221, in plaintext through the relay and in STARTTLS passthrough, and the
#   message arrives once;
# - commands sent before the banner and behind EHLO (PIPECONNECT) reach a
#   server that offers PIPELINING, in order, and the message is delivered;
#   the client never gets a permanent failure for them;
# - the hidden extensions' parameters and verbs are refused, not forwarded.
set -u
. "$(dirname "$0")/lib.sh"
CHAT=$SPORK_REPO/tests/tools/smtpchat
command -v python3 >/dev/null || { echo "t_halfclose: python3 is missing (scripts/install-deps)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'lab_down; rm -rf "$tmp"' EXIT
lab_up

chat() {	# chat NAME SERVER: the script on stdin, transcript in $tmp/NAME
	local name=$1 server=$2
	in_cli "$CHAT" "$server" 25 20 >"$tmp/$name" 2>&1
}

for srv in "$SRV_V4" "$SRV_V6"; do
	v=v4; [ "$srv" = "$SRV_V6" ] && v=v6
	n0=$(maildir_count alice)
	chat "plain-$v" "$srv" <<EOT
expect 220
line EHLO client.example.test
expect 250
line MAIL FROM:<hc@client.example.test>
expect 250
line RCPT TO:<alice@example.test>
expect 250
line DATA
expect 354
send Subject: half-close plain $v\r\nMessage-ID: <hc-plain-$v@client.example.test>\r\n\r\nbody\r\n.\r\nQUIT\r\n
shut
expect 250
expect 221
expect_close
EOT
	rc=$?
	[ $rc -eq 0 ] && pass "plaintext $v: 250 and 221 read after the client's half-close" ||
		fail "plaintext $v half-close" "$(tail -n 3 "$tmp/plain-$v")"
	check "plaintext $v: delivered once" wait_delivered alice $((n0 + 1)) 10
	chat "tls-$v" "$srv" <<EOT
expect 220
line EHLO client.example.test
expect 250
line STARTTLS
expect 220
starttls
line EHLO client.example.test
expect 250
line MAIL FROM:<hc@client.example.test>
expect 250
line RCPT TO:<alice@example.test>
expect 250
line DATA
expect 354
send Subject: half-close tls $v\r\nMessage-ID: <hc-tls-$v@client.example.test>\r\n\r\nbody\r\n.\r\nQUIT\r\n
shut
expect 250
expect 221
expect_close
EOT
	rc=$?
	[ $rc -eq 0 ] && pass "passthrough $v: 250 and 221 read after the client's half-close" ||
		fail "passthrough $v half-close" "$(tail -n 3 "$tmp/tls-$v")"
	check "passthrough $v: delivered once" wait_delivered alice $((n0 + 2)) 10
	sleep 0.5
	got=$(grep -l "Message-ID: <hc-[a-z]*-$v@" "$LAB_MAIL"/alice/new/* 2>/dev/null | wc -l)
	[ "$got" -eq 2 ] && pass "$v: each message once at the server" ||
		fail "$v: each message once" "$got copies of 2"
done
assert_grep 'starttls tls=passthrough' "$LAB_SPORKD_LOG" "the TLS session went through sporkd as passthrough"
assert_no_grep 'reason=client-gone' "$LAB_SPORKD_LOG" "no session closed as client-gone"

# --- early pipelining (PIPECONNECT): EHLO, MAIL, RCPT before the banner
n0=$(maildir_count alice)
chat pipeconnect "$SRV_V4" <<'EOT'
send EHLO client.example.test\r\nMAIL FROM:<pc@client.example.test>\r\nRCPT TO:<alice@example.test>\r\n
expect 220
expect 250
expect 250
expect 250
line DATA
expect 354
send Subject: early pipelining\r\n\r\nbody\r\n.\r\n
expect 250
line QUIT
expect 221
EOT
[ $? -eq 0 ] && pass "commands before the banner: delivered, no 5xx" ||
	fail "pipeconnect" "$(tail -n 4 "$tmp/pipeconnect")"
check "commands before the banner: message at the server" wait_delivered alice $((n0 + 1)) 10
assert_grep 'mx.example.test ESMTP' "$tmp/pipeconnect" "the banner the client read is the server's"

# --- the hidden extensions
chat hidden "$SRV_V4" <<'EOT'
expect 220
line EHLO client.example.test
expect 250
line MAIL FROM:<a@client.example.test> PRDR
expect 555
line MAIL FROM:<a@client.example.test> BODY=BINARYMIME
expect 555
line XCLIENT ADDR=192.0.2.1
expect 502
line BURL imap://x;uid=1 LAST
expect 502
line MAIL FROM:<a@client.example.test>
expect 250
line QUIT
expect 221
EOT
[ $? -eq 0 ] && pass "PRDR and BINARYMIME parameters get 555, XCLIENT and BURL 502" ||
	fail "hidden extensions" "$(tail -n 4 "$tmp/hidden")"
assert_no_grep '^<- 250.(PRDR|XCLIENT|CHUNKING|PIPECONNECT)' "$tmp/hidden" "the EHLO reply names no hidden extension"
summary
