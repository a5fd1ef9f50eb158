#!/bin/bash
# SPDX-License-Identifier: MIT
# Hostile framing and named limits through the bridge, against the real
# Postfix: SMTP smuggling sequences never end a message (nothing smuggled
# arrives), bare CR/LF and overlong lines get precise replies, size and
# recipient limits hold, plaintext injected behind STARTTLS never reaches
# the server.
set -u
. "$(dirname "$0")/lib.sh"
tmp=$(mktemp -d)
trap 'lab_down; rm -rf "$tmp"' EXIT
lab_up
CHAT=$SPORK_REPO/tests/tools/smtpchat
cp "$LAB_DIR/spork.conf" "$tmp/limits.conf"
echo "max_recipients 100" >>"$tmp/limits.conf"
lab start-sporkd "$tmp/limits.conf" 2>/dev/null

chat() {	# chat NAME: run $tmp/NAME.chat against the server, v4
	if in_cli "$CHAT" "$SRV_V4" 25 <"$tmp/$1.chat" >"$tmp/$1.out" 2>&1; then
		pass "$2"
	else
		fail "$2" "$(tail -n 4 "$tmp/$1.out")"
	fi
}

# --- smuggling: <LF>.<CR><LF> and <CR><LF>.<LF> must not end the message
for v in 'LF.CRLF:\n.\r\n' 'CRLF.LF:\r\n.\n' 'CR.CR:\r.\r'; do
	name=${v%%:*} seq=${v#*:}
	cat >"$tmp/smuggle.chat" <<CHAT
expect 220
line EHLO smuggler.example.test
expect 250
line MAIL FROM:<a@client.example.test>
expect 250
line RCPT TO:<alice@example.test>
expect 250
line DATA
expect 354
send Subject: outer\r\n\r\nouter body${seq}MAIL FROM:<evil@client.example.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\nSubject: smuggled\r\n\r\nsmuggled\r\n.\r\n
expect 550 5.5.2
line QUIT
expect 221
CHAT
	chat smuggle "smuggling $name: whole thing refused as one message (550 5.5.2)"
done
sleep 1
[ "$(maildir_count bob)" -eq 0 ] && pass "smuggling: nothing smuggled reached bob" ||
	fail "smuggling: nothing smuggled reached bob" "bob has $(maildir_count bob)"
[ "$(maildir_count alice)" -eq 0 ] && pass "smuggling: nothing reached alice" ||
	fail "smuggling: nothing reached alice" "alice has $(maildir_count alice)"
assert_no_grep 'evil@client' "$LAB_MAILLOG" "smuggling: Postfix never saw the smuggled sender"

# --- commands: bare LF, bare CR, overlong line, BDAT, DATA with argument
long=$(printf 'x%.0s' $(seq 3000))
cat >"$tmp/cmds.chat" <<CHAT
expect 220
send EHLO barelf.example.test\n
expect 500 5.5.2 Error: bare <LF>
send NO\rOP\r\n
expect 500 5.5.2 Error: bare <CR>
line NOOP $long
expect 500 5.5.2 Error: line too long
line NOOP
expect 250
line EHLO ok.example.test
expect 250
line DATA now
expect 501 5.5.4
line DATA
expect 503 5.5.1
line MAIL FROM:<a@client.example.test> SIZE=200000000
expect 552 5.3.4
line MAIL FROM:<a@client.example.test> SIZE=1000
expect 250
line RCPT TO:<alice@example.test>
expect 250
line DATA
expect 354
send Subject: long line\r\n\r\n$(printf 'y%.0s' $(seq 1200))\r\n.\r\n
expect 550 5.5.2 Error: message has a line longer than 1000
line QUIT
expect 221
CHAT
chat cmds "commands: bare LF/CR, long line, DATA args, SIZE, long text line"

# --- BDAT (CHUNKING is hidden): its chunk is never read as commands; a
# temporary failure and close, so the client retries with DATA
i=0
for bdat in 'BDAT 22 LAST\r\n' ' BDAT 22 LAST\r\n' 'BDAT\x0b22 LAST\r\n'; do
	i=$((i + 1))
	cat >"$tmp/bdat$i.chat" <<CHAT
expect 220
line EHLO ok.example.test
expect 250
line MAIL FROM:<a@client.example.test>
expect 250
line RCPT TO:<alice@example.test>
expect 250
send $bdat
send RSET\r\nMAIL FROM:<x@y>\r\n
expect 421 4.5.0
expect_close
CHAT
	chat "bdat$i" "BDAT form $i: 421 4.5.0 and close, the chunk never read as commands"
done

# --- recipients: 101 pipelined, the 101st refused by the relay's limit
{
	echo "expect 220"
	echo "line EHLO many.example.test"
	echo "expect 250"
	echo "line MAIL FROM:<a@client.example.test>"
	for _ in $(seq 101); do echo "line RCPT TO:<alice@example.test>"; done
	echo "expect 250"
	for _ in $(seq 100); do echo "expect 250"; done
	echo "expect 452 4.5.3"
	echo "line DATA"
	echo "expect 354"
	echo 'send Subject: many\r\n\r\nmany\r\n.\r\n'
	echo "expect 250 2.0.0"
	echo "line QUIT"
	echo "expect 221"
} >"$tmp/rcpts.chat"
chat rcpts "recipients: 100 relayed, 101st gets 452 4.5.3, message delivered"
check "recipients: delivered once" wait_delivered alice 1 10

# --- STARTTLS with plaintext pipelined behind it (CVE-2011-0411)
cat >"$tmp/inject.chat" <<'CHAT'
expect 220
line EHLO inject.example.test
expect 250
send STARTTLS\r\nMAIL FROM:<injected@client.example.test>\r\nRCPT TO:<bob@example.test>\r\n
expect 220
CHAT
chat inject "STARTTLS injection: client gets the server's 220"
sleep 0.5
assert_grep 'starttls injection dropped client_bytes=[1-9]' "$LAB_SPORKD_LOG" "STARTTLS injection: plaintext dropped and logged"
assert_no_grep "improper command pipelining after STARTTLS" "$LAB_MAILLOG" "STARTTLS injection: Postfix received nothing behind STARTTLS"
assert_no_grep "injected@client" "$LAB_MAILLOG" "STARTTLS injection: Postfix never saw the injected sender"
# --- RFC 2920 synchronization, header block, request deadline, per client
cp "$LAB_DIR/spork.conf" "$tmp/sync.conf"
printf '%s\n' "max_header_size 64k" "timeout_request 2s" "max_sessions_per_client 2" >>"$tmp/sync.conf"
lab start-sporkd "$tmp/sync.conf" 2>/dev/null
# Behind EHLO to a server that offers PIPELINING (as PIPECONNECT clients
# do): held until the EHLO reply, then relayed in order.
printf 'expect 220\nsend EHLO a.example.test\\r\\nMAIL FROM:<a@client.example.test>\\r\\n\nexpect 250\nexpect 250\nline QUIT\nexpect 221\n' >"$tmp/ehlo-pipe.chat"
chat ehlo-pipe "pipelining past EHLO to a server with PIPELINING: held, then relayed in order"
sleep 0.3
assert_no_grep 'improper command pipelining after EHLO' "$LAB_MAILLOG" "pipelining past EHLO: Postfix saw the commands in step"
printf 'expect 220\nline EHLO a.example.test\nexpect 250\nline MAIL FROM:<a@client.example.test>\nexpect 250\nline RCPT TO:<alice@example.test>\nexpect 250\nsend DATA\\r\\nSubject: early\\r\\n\\r\\nbody\\r\\n.\\r\\n\nexpect 354\nexpect 554 5.5.0 Error: SMTP protocol synchronization (message sent before 354)\nexpect_close\n' >"$tmp/data-pipe.chat"
chat data-pipe "message sent before 354: 554 5.5.0 and close"
python3 -c "
import sys
h = ''.join('X-Filler-%d: %s\r\n' % (i, 'y' * 70) for i in range(1200))
sys.stdout.write('send Subject: big header\\\\r\\\\n' + h.replace('\r\n', '\\\\r\\\\n') + '\\\\r\\\\nbody\\\\r\\\\n.\\\\r\\\\n\n')
" >"$tmp/bighdr.line"
{ printf 'expect 220\nline EHLO a.example.test\nexpect 250\nline MAIL FROM:<a@client.example.test>\nexpect 250\nline RCPT TO:<alice@example.test>\nexpect 250\nline DATA\nexpect 354\n'
  cat "$tmp/bighdr.line"
  printf 'expect 552 5.3.4 Error: message header size exceeds limit\nline QUIT\nexpect 221\n'; } >"$tmp/bighdr.chat"
chat bighdr "header block over max_header_size: 552 5.3.4"
# 3 s against timeout_request 2s: a margin a loaded machine cannot eat.
printf 'expect 220\nsend NO\nsleep 1.5\nsend O\nsleep 1.5\nsend P\\r\\n\nexpect 421 4.4.2 Error: command not completed in time\nexpect_close\n' >"$tmp/drip.chat"
chat drip "a command dripping past timeout_request: 421 4.4.2"
# Two sessions held open, the third from the same address is refused:
# once sporkd holds both (a fixed pause was too short on a loaded machine;
# the holders stay long enough for the third to come while they are held).
printf 'expect 220\nsleep 8\nline QUIT\nexpect 221\n' >"$tmp/hold.chat"
in_cli "$CHAT" "$SRV_V4" 25 <"$tmp/hold.chat" >/dev/null 2>&1 &
h1=$!
in_cli "$CHAT" "$SRV_V4" 25 <"$tmp/hold.chat" >/dev/null 2>&1 &
h2=$!
both_held() { [ "$(ctl status | sed -n 's/^sessions=//p')" = 2 ]; }
check "max_sessions_per_client: (precondition) sporkd holds the first two" wait_until 10 both_held
printf 'expect 421 4.7.0 Error: too many connections from your address\nexpect_close\n' >"$tmp/third.chat"
chat third "max_sessions_per_client: the third session gets 421 4.7.0"
wait $h1 $h2
assert_grep 'refused client=10\.25\.0\.1:[0-9]+ reason=max_sessions_per_client' "$LAB_SPORKD_LOG" "per-client refusal logged"

# --- a session kept alive with NOOP is closed at max_junk_commands; a
# message starts the count again
cp "$LAB_DIR/spork.conf" "$tmp/junk.conf"
echo "max_junk_commands 3" >>"$tmp/junk.conf"
lab start-sporkd "$tmp/junk.conf" 2>/dev/null
{
	echo "expect 220"
	echo "line EHLO junk.example.test"
	echo "expect 250"
	for i in 1 2 3; do echo "line NOOP"; echo "expect 250"; done
	printf 'line MAIL FROM:<j@client.example.test>\nexpect 250\n'
	printf 'line RCPT TO:<alice@example.test>\nexpect 250\nline DATA\nexpect 354\n'
	printf 'send Subject: junk\\r\\n\\r\\nx\\r\\n.\\r\\n\nexpect 250\n'
	for i in 1 2 3; do echo "line NOOP"; echo "expect 250"; done
	echo "line NOOP"
	echo "expect 421 4.7.0 Error: too many commands without mail"
	echo "expect_close"
} >"$tmp/junk.chat"
chat junk "max_junk_commands: three NOOPs, a message, three more, the fourth gets 421 4.7.0"
assert_grep 'protocol limit=max_junk_commands count=3' "$LAB_SPORKD_LOG" "max_junk_commands: logged"

# --- VRFY and EXPN: answered by the box for an outside client (252 and
# 502 by default), relayed to the server for an inside one; v4 and v6.
probe_chat() {	# probe_chat NAME ADDR VRFY_EXPECT EXPN_EXPECT
	cat >"$tmp/$1.chat" <<CHAT
expect 220
line EHLO client.example.test
expect 250
line VRFY alice@example.test
expect $3
line EXPN staff
expect $4
line QUIT
expect 221
CHAT
	if in_cli "$CHAT" "$2" 25 <"$tmp/$1.chat" >"$tmp/$1.out" 2>&1; then
		pass "$5"
	else
		fail "$5" "$(tail -n 4 "$tmp/$1.out")"
	fi
}
probe_chat probe4 "$SRV_V4" "252 2.0.0 Cannot VRFY user" "502 5.5.1" \
	"VRFY/EXPN, outside client (v4): 252 and 502 from the box"
probe_chat probe6 "$SRV_V6" "252 2.0.0 Cannot VRFY user" "502 5.5.1" \
	"VRFY/EXPN, outside client (v6): 252 and 502 from the box"
assert_grep 'VRFY answered policy=252' "$LAB_SPORKD_LOG" "VRFY/EXPN: logged"
cp "$LAB_DIR/spork.conf" "$tmp/probe.conf"
printf '%s\n' "inside_networks 10.25.0.0/24 fd25::/64" >>"$tmp/probe.conf"
lab start-sporkd "$tmp/probe.conf" 2>/dev/null
# Postfix answers VRFY with the address and does not know EXPN (500).
probe_chat probe4in "$SRV_V4" "252 2.0.0 alice@example.test" "500 5.5.2" \
	"VRFY/EXPN, inside client (v4): Postfix's own answers"
probe_chat probe6in "$SRV_V6" "252 2.0.0 alice@example.test" "500 5.5.2" \
	"VRFY/EXPN, inside client (v6): Postfix's own answers"

# --- the spool's disk budget: a message past it is refused with 452, the
# next one that fits is delivered
cp "$LAB_DIR/spork.conf" "$tmp/budget.conf"
printf '%s\n' "spool_memory_max 4k" "spool_disk_budget 1m" >>"$tmp/budget.conf"
lab start-sporkd "$tmp/budget.conf" 2>/dev/null
head -c 1500000 /dev/zero | tr '\0' 'y' | fold -w 76 >"$tmp/big.txt"
send_mail "$tmp/t-big" alice@example.test a@client.example.test "$SRV_V4" "$tmp/big.txt"
assert_grep '^<\*\* +452 4\.3\.1 Error: insufficient system storage' "$tmp/t-big" "spool_disk_budget: 452 4.3.1 past it"
assert_grep 'spool full limit=spool_disk_budget' "$LAB_SPORKD_LOG" "spool_disk_budget: logged"
a0=$(maildir_count alice)
send_mail "$tmp/t-small" alice@example.test a@client.example.test "$SRV_V4"
assert_grep '^<- +250 2\.0\.0 Ok: queued' "$tmp/t-small" "spool_disk_budget: the budget given back, the next message delivered"
[ "$(ctl status | sed -n 's/^spool.disk_bytes=//p')" = 0 ] && pass "spool_disk_budget: status shows nothing held" ||
	fail "spool status" "$(ctl status | grep spool)"

# --- the recipient lists count against spool_memory_budget: past it, the
# next RCPT gets 452 4.3.1 and is never forwarded; the message still goes
# to the recipients the server accepted, and the budget is given back.
cp "$LAB_DIR/spork.conf" "$tmp/rcptbudget.conf"
printf '%s\n' "spool_memory_budget 1k" >>"$tmp/rcptbudget.conf"
lab start-sporkd "$tmp/rcptbudget.conf" 2>/dev/null
# About 40 bytes each: some 25 fit in 1 KiB.
to=alice@example.test
for i in $(seq 1 59); do to="$to,alice@example.test"; done
a0=$(maildir_count alice)
printf 'From: a@client.example.test\r\nTo: alice@example.test\r\nSubject: many recipients\r\n\r\nbody\r\n' >"$tmp/rcpts.txt"
send_mail "$tmp/t-rcpts" "$to" a@client.example.test "$SRV_V4" "" --data "@$tmp/rcpts.txt"
ok=$(grep -Ec '^<- +250 2\.1\.5' "$tmp/t-rcpts")
full=$(grep -Ec '^<\*\* +452 4\.3\.1 Error: insufficient system storage' "$tmp/t-rcpts")
[ "$full" -ge 1 ] && [ "$ok" -ge 2 ] &&
	pass "spool_memory_budget: recipients past it get 452 4.3.1 ($full), the first ones 250 ($ok)" ||
	fail "spool_memory_budget: recipients past it" "$full 452, $ok 250: $(grep -E '^<(-|\*\*) +[245]' "$tmp/t-rcpts" | sort | uniq -c | head -5)"
assert_grep 'memory full limit=spool_memory_budget recipients=[0-9]+ action=452' "$LAB_SPORKD_LOG" \
	"spool_memory_budget: the refusal logged"
check "spool_memory_budget: the message reached the accepted recipients" wait_delivered alice $((a0 + 1)) 20
[ "$(ctl status | sed -n 's/^spool.memory_bytes=//p')" = 0 ] && pass "spool_memory_budget: given back after the session" ||
	fail "spool_memory_budget: given back" "$(ctl status | grep spool)"
summary
