#!/bin/bash
# SPDX-License-Identifier: MIT
# The relay through the bridge, v4 and v6: clean mail arrives byte for byte
# with the client's own address; EICAR (plain, attached, zipped) is refused
# with 550 5.7.1 and never reaches Postfix; Postfix's own refusals of
# unknown recipients reach the client; RSET and several transactions in one
# session; STARTTLS is intercepted with the lab MX's key, never stripped.
set -u
. "$(dirname "$0")/lib.sh"
tmp=$(mktemp -d)
trap 'lab_down; rm -rf "$tmp"' EXIT
lab_up
CHAT=$SPORK_REPO/tests/tools/smtpchat
EICAR='X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*'

# --- clean message, IPv4: exact body, client's address at the server
cat >"$tmp/clean.eml" <<'MSG'
From: sender@client.example.test
To: alice@example.test
Subject: clean v4
Message-ID: <clean-v4@client.example.test>

Line one.
.a line that starts with a dot
..two dots
MSG
sed -i 's/$/\r/' "$tmp/clean.eml"
send_mail "$tmp/t-clean4" alice@example.test sender@client.example.test \
	"$SRV_V4" "" --data "@$tmp/clean.eml"
assert_grep '^<- +250 2\.0\.0 Ok: queued' "$tmp/t-clean4" "v4 clean: client got Postfix's 250 queued"
check "v4 clean: delivered" wait_delivered alice 1 10
f=$(maildir_files alice | tail -n1)
assert_grep 'Received: from client\.example\.test \(unknown \[10\.25\.0\.1\]\)' "$f" "v4 clean: Received shows client's 10.25.0.1"
wait_grep 10 'connect from unknown\[10\.25\.0\.1\]' "$LAB_MAILLOG" "v4 clean: Postfix log shows client's 10.25.0.1"
# Byte for byte: from its first header on, the delivered message is what
# was sent (Postfix prepends Return-Path, Delivered-To and Received only;
# Maildir stores LF line ends; swaks --data adds one empty line).
if sed -n '/^From: sender@client/,$p' "$f" | cmp -s - <(tr -d '\r' <"$tmp/clean.eml"; echo); then
	pass "v4 clean: message arrived byte for byte (dot lines intact)"
else
	fail "v4 clean: message arrived byte for byte" \
		"$(diff <(tr -d '\r' <"$tmp/clean.eml"; echo) <(sed -n '/^From: sender@client/,$p' "$f"))"
fi
assert_grep 'message sender="<sender@client\.example\.test>" rcpts=1 .*verdict=clean.*reply="250' "$LAB_SPORKD_LOG" "v4 clean: sporkd logged the clean verdict and Postfix's reply"
assert_grep "connect client=10\.25\.0\.1:[0-9]+ server=10\.25\.0\.2:25 mode=transparent" "$LAB_SPORKD_LOG" "v4: sporkd saw the original destination"

# --- clean message, IPv6
send_mail "$tmp/t-clean6" bob@example.test sender@client.example.test \
	"$SRV_V6" "" --header "Subject: clean v6"
assert_grep '^<- +250 2\.0\.0 Ok: queued' "$tmp/t-clean6" "v6 clean: client got 250"
check "v6 clean: delivered" wait_delivered bob 1 10
assert_grep 'Received: from client\.example\.test \(unknown \[IPv6:fd25::1\]\)' "$(maildir_files bob | tail -n1)" "v6 clean: Received shows client's fd25::1"
wait_grep 10 'connect from unknown\[fd25::1\]' "$LAB_MAILLOG" "v6 clean: Postfix log shows client's fd25::1"

# --- EICAR, three ways
printf '%s' "$EICAR" >"$tmp/eicar.com"
(cd "$tmp" && python3 -c 'import zipfile; z = zipfile.ZipFile("eicar.zip", "w"); z.write("eicar.com"); z.close()')
before=$(maildir_count alice)
queued_before=$(grep -c 'postfix/cleanup.*message-id' "$LAB_MAILLOG")
send_mail "$tmp/t-eicar" alice@example.test sender@client.example.test \
	"$SRV_V4" "$tmp/eicar.com" --header "Subject: eicar body"
assert_grep '^<\*\* +550 5\.7\.1 Message rejected: virus found: Eicar-Test-Signature' "$tmp/t-eicar" "EICAR body: 550 5.7.1 with the virus name"
send_mail "$tmp/t-eicar-att" alice@example.test sender@client.example.test \
	"$SRV_V6" "" --attach "@$tmp/eicar.com"
assert_grep '^<\*\* +550 5\.7\.1 .*Eicar-Test-Signature' "$tmp/t-eicar-att" "EICAR attachment (base64 MIME, v6): 550 5.7.1"
send_mail "$tmp/t-eicar-zip" alice@example.test sender@client.example.test \
	"$SRV_V4" "" --attach "@$tmp/eicar.zip"
assert_grep '^<\*\* +550 5\.7\.1 .*Eicar-Test-Signature' "$tmp/t-eicar-zip" "EICAR in a zip: 550 5.7.1"
sleep 1
[ "$(maildir_count alice)" -eq "$before" ] && pass "EICAR: nothing delivered" ||
	fail "EICAR: nothing delivered" "alice has $(maildir_count alice), had $before"
[ "$(grep -c 'postfix/cleanup.*message-id' "$LAB_MAILLOG")" -eq "$queued_before" ] &&
	pass "EICAR: Postfix queued nothing" || fail "EICAR: Postfix queued nothing" "cleanup ran"
assert_no_grep 'X5O!P%@AP' "$LAB_DIR/mail" "EICAR: string absent from every Maildir" 2>/dev/null
if grep -rqs 'EICAR-STANDARD' "$LAB_DIR/mail"; then fail "EICAR absent from mailboxes" "found"; else pass "EICAR absent from mailboxes"; fi
assert_grep 'verdict=virus reply="550 5\.7\.1' "$LAB_SPORKD_LOG" "EICAR: sporkd logged verdict=virus"

# --- unknown recipient: Postfix's own answer, no scan, no DATA upstream
send_mail "$tmp/t-unknown" nobody@example.test sender@client.example.test "$SRV_V4"
assert_grep '^<\*\* +550 5\.1\.1 <nobody@example\.test>: Recipient address rejected: User unknown' "$tmp/t-unknown" "unknown recipient: Postfix's 550 5.1.1 relayed"
assert_no_grep '^ -> DATA' "$tmp/t-unknown" "unknown recipient: client never got to DATA"

# --- one session: clean, RSET, virus, then clean again; pipelined group
cat >"$tmp/chat" <<CHAT
expect 220
line EHLO chat.example.test
expect 250
line MAIL FROM:<a@client.example.test>
line RCPT TO:<alice@example.test>
line RCPT TO:<nobody@example.test>
line DATA
expect 250
expect 250
expect 550 5.1.1
expect 354
send Subject: first\r\n\r\nfirst message\r\n.\r\n
expect 250 2.0.0
line MAIL FROM:<a@client.example.test>
expect 250
line RSET
expect 250
line RCPT TO:<alice@example.test>
expect 503
line MAIL FROM:<a@client.example.test>
line RCPT TO:<alice@example.test>
line DATA
expect 250
expect 250
expect 354
send Subject: virus\r\n\r\n$EICAR\r\n.\r\n
expect 550 5.7.1 Message rejected: virus found: Eicar-Test-Signature
line MAIL FROM:<a@client.example.test>
expect 250
line RCPT TO:<bob@example.test>
expect 250
line DATA
expect 354
send Subject: third\r\n\r\nthird message\r\n.\r\n
expect 250 2.0.0
line QUIT
expect 221
CHAT
a0=$(maildir_count alice) b0=$(maildir_count bob)
if in_cli "$CHAT" "$SRV_V4" 25 <"$tmp/chat" >"$tmp/t-chat" 2>&1; then
	pass "one session: 250, RSET, 503, 550 virus, 250 in order"
else
	fail "one session" "$(tail -n 5 "$tmp/t-chat")"
fi
check "one session: first message delivered" wait_delivered alice $((a0 + 1)) 10
check "one session: third message delivered" wait_delivered bob $((b0 + 1)) 10
sleep 0.5
[ "$(maildir_count alice)" -eq $((a0 + 1)) ] && pass "one session: virus not delivered" ||
	fail "one session: virus not delivered" "alice has $(maildir_count alice)"

# --- STARTTLS: intercepted with the MX's own key, not stripped
send_mail "$tmp/t-tls" alice@example.test sender@client.example.test \
	"$SRV_V4" "" --tls --header "Subject: tls intercepted"
assert_grep '^<- +250-STARTTLS' "$tmp/t-tls" "STARTTLS offered through the relay"
assert_grep '^<~ +250 2\.0\.0 Ok: queued' "$tmp/t-tls" "STARTTLS: TLS session to Postfix, message queued"
assert_grep 'starttls tls=intercept scanned=yes' "$LAB_SPORKD_LOG" "STARTTLS: logged tls=intercept scanned=yes"

# --- EHLO: CHUNKING hidden, everything else as Postfix says
assert_no_grep '^<- +250.CHUNKING' "$tmp/t-clean4" "EHLO: CHUNKING hidden"
assert_grep '^<- +250.PIPELINING' "$tmp/t-clean4" "EHLO: PIPELINING kept"
assert_grep '^<- +250.SMTPUTF8' "$tmp/t-clean4" "EHLO: SMTPUTF8 kept"
assert_grep '^<- +250.SIZE 104857600' "$tmp/t-clean4" "EHLO: SIZE capped at message_size_limit"

# --- privileges: its own user, only CAP_NET_RAW, no new privileges
pid=$(cat "$LAB_SPORKD_PID")
[ "$(ps -o user= -p "$pid")" = spork ] && pass "privileges: sporkd runs as user spork" ||
	fail "privileges: user" "$(ps -o user= -p "$pid")"
# CAP_NET_RAW, and CAP_SETUID/CAP_SETGID for a reloaded scan loader to
# become scan_user (the relay's seccomp filter allows no other change).
assert_grep '^CapEff:[[:space:]]+00000000000020c0$' "/proc/$pid/status" "privileges: effective capabilities = CAP_NET_RAW, CAP_SETUID, CAP_SETGID only"
assert_grep '^CapBnd:[[:space:]]+00000000000020c0$' "/proc/$pid/status" "privileges: bounding set = the same"
assert_grep '^NoNewPrivs:[[:space:]]+1$' "/proc/$pid/status" "privileges: no_new_privs"
w=$(ctl status | sed -n 's/^scan.worker pid=\([0-9]*\).*/\1/p' | head -n1)
assert_grep '^CapEff:[[:space:]]+0000000000000000$' "/proc/$w/status" "privileges: scanner worker has no capabilities"
if [ -n "${SPORK_VALGRIND:-}" ]; then
	# tests/valgrind/run: that build has no seccomp filter.
	echo "skip privileges: seccomp filters (valgrind build)"
else
	assert_grep '^Seccomp:[[:space:]]+2$' "/proc/$pid/status" "privileges: sporkd under a seccomp filter"
	assert_grep '^Seccomp:[[:space:]]+2$' "/proc/$w/status" "privileges: scanner worker under a seccomp filter"
fi

assert_no_grep 'sporkd\[error\]' "$LAB_SPORKD_LOG" "no errors in sporkd's log"
summary
