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

# halfclose_script KIND V: a session whose end of data and QUIT go in one
# write, followed by the client's FIN; KIND tls does STARTTLS first.
halfclose_script() {
	local kind=$1 v=$2
	echo "expect 220"
	echo "line EHLO client.example.test"
	echo "expect 250"
	if [ "$kind" = tls ]; then
		printf 'line STARTTLS\nexpect 220\nstarttls\n'
		printf 'line EHLO client.example.test\nexpect 250\n'
	fi
	cat <<EOT
line MAIL FROM:<hc@client.example.test>
expect 250
line RCPT TO:<alice@example.test>
expect 250
line DATA
expect 354
send Subject: half-close $kind $v\\r\\nMessage-ID: <hc-$kind-$v@client.example.test>\\r\\n\\r\\nbody\\r\\n.\\r\\nQUIT\\r\\n
shut
expect 250
expect 221
expect_close
EOT
}

# halfclose_case KIND LABEL SERVER WHAT: one session, the message once.
halfclose_case() {
	local kind=$1 v=$2 srv=$3 what=$4 n0
	n0=$(maildir_count alice)
	if halfclose_script "$kind" "$v" | chat "$kind-$v" "$srv"; then
		pass "$what $v: 250 and 221 read after the client's half-close"
	else
		fail "$what $v half-close" "$(tail -n 3 "$tmp/$kind-$v")"
	fi
	check "$what $v: delivered" wait_delivered alice $((n0 + 1)) 10
}

# Passthrough: the default lab holds the MX's key, so ask for it.
cp "$LAB_DIR/spork.conf" "$tmp/pass.conf"
echo "tls_policy passthrough" >>"$tmp/pass.conf"
lab start-sporkd "$tmp/pass.conf" 2>/dev/null || fail "sporkd start" "passthrough"
for srv in "$SRV_V4" "$SRV_V6"; do
	v=v4; [ "$srv" = "$SRV_V6" ] && v=v6
	for kind in plain tls; do
		what=plaintext; [ $kind = tls ] && what=passthrough
		halfclose_case $kind $v "$srv" $what
	done
done
assert_grep 'starttls tls=passthrough' "$LAB_SPORKD_LOG" "the TLS sessions went through sporkd as passthrough"
# Intercepted: the FIN comes inside TLS (no close_notify, as from a
# client that just shuts its socket down).
lab start-sporkd "$LAB_DIR/spork.conf" 2>/dev/null || fail "sporkd start" "intercept"
for srv in "$SRV_V4" "$SRV_V6"; do
	v=v4; [ "$srv" = "$SRV_V6" ] && v=v6
	halfclose_case tls "$v-i" "$srv" intercept
done
assert_grep 'starttls tls=intercept scanned=yes' "$LAB_SPORKD_LOG" "the intercepted sessions were intercepted"
for v in v4 v6; do
	got=$(grep -l "Message-ID: <hc-[a-z]*-$v\(-i\)\?@" "$LAB_MAIL"/alice/new/* 2>/dev/null | wc -l)
	[ "$got" -eq 3 ] && pass "$v: each message once at the server" ||
		fail "$v: each message once" "$got copies of 3"
done
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
