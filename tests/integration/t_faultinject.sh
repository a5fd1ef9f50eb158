#!/bin/bash
# SPDX-License-Identifier: MIT
# Fault injection with a real sending Postfix in the client namespace (it
# queues and retries like a real MTA) and the real Postfix as the MX: the
# server refuses, answers the final dot late, drops the connection in the
# middle of a transaction, sporkd is killed mid-transfer and restarted,
# the link to the server goes down for seconds. At the end every message
# is accounted for: delivered exactly once, or still queued at the sender
# with a reason; none lost, none duplicated. Prints the figures.
set -u
. "$(dirname "$0")/lib.sh"
tmp=$(mktemp -d)
chmod 755 "$tmp"
cleanup() {
	lab_down
	rm -rf "$tmp"
}
trap cleanup EXIT
lab_up
# Plain SMTP: the relay (not a TLS splice) is what is under test.
lab start-sender none 2>/dev/null
PFC=$LAB_DIR/postfix/etc

server_conf() {	# server_conf "key = value"...: change the MX, reload it
	local kv
	for kv in "$@"; do in_srv postconf -c "$PFC" -e "$kv"; done
	postfix_reload "$NS_SRV" "$PFC" "$LAB_MAILLOG" || fail "server_conf $*" "no reload in $LAB_MAILLOG"
}
sent=0
submit() {	# submit TAG [swaks args]: one message into the sending Postfix
	local tag=$1
	shift
	sent=$((sent + 1))
	in_cli swaks --server 127.0.0.1 --to alice@example.test \
		--from s@client.example.test --header "Message-ID: <$tag@client.example.test>" \
		--header "Subject: $tag" "$@" >"$tmp/sub-$tag" 2>&1 ||
		fail "submit $tag" "$(tail -n 2 "$tmp/sub-$tag")"
}
queue_empty() { in_cli postqueue -c "$LAB_DIR/sender/etc" -p 2>/dev/null | grep -q 'Mail queue is empty'; }
delivered() { grep -l "^Message-ID: <$1@" "$LAB_MAIL"/*/new/* 2>/dev/null | wc -l; }
flush() { in_cli postqueue -c "$LAB_DIR/sender/etc" -f >/dev/null 2>&1; }
kill_smtpd() {
	local p
	for p in $(ip netns pids "$NS_SRV"); do
		[ "$(cat "/proc/$p/comm" 2>/dev/null)" = smtpd ] && kill -KILL "$p"
	done
}

faults=0
# 1. normal
for i in 1 2 3; do submit normal-$i; done
# 2. the server refuses the final dot (temporarily): queued, retried
server_conf 'smtpd_end_of_data_restrictions = check_sender_access inline:{s@client.example.test=451 4.7.1 try later}'
faults=$((faults + 1))
for i in 1 2; do submit refused-$i; done
sleep 3
# 3. the server answers the final dot 8 seconds late
server_conf 'smtpd_end_of_data_restrictions = sleep 8'
faults=$((faults + 1))
submit slowdot-1
sleep 10
# 4. the server dies after the final dot, before answering it
submit dropped-1
sleep 3
kill_smtpd
faults=$((faults + 1))
sleep 1
server_conf 'smtpd_end_of_data_restrictions ='
# The sender's retry of dropped-1 goes through before sporkd is killed:
# a retry still waiting on the server's final answer when sporkd dies is
# the one duplicate SMTP cannot avoid (the server commits, the client
# never hears it), and it is not what step 5 is about.
for _ in $(seq 60); do
	[ "$(delivered dropped-1)" -ge 1 ] && queue_empty && break
	flush
	sleep 1
done
# 5. sporkd killed (SIGKILL) with a message in hand, restarted 3 s later
head -c 30000000 /dev/urandom | base64 -w 76 >"$tmp/big.txt"
submit killed-1 --attach "@$tmp/big.txt"
# (polled finely: the scan is short; 30 s for the transfer on a loaded machine)
deadline=$((SECONDS + 30))
until ctl status 2>/dev/null | grep -q '^scan.busy=1' || [ "$SECONDS" -ge "$deadline" ]; do sleep 0.02; done
kill -KILL "$(cat "$LAB_SPORKD_PID")"
faults=$((faults + 1))
sleep 3
lab start-sporkd 2>/dev/null
# 6. the link to the server down for 4 seconds
ip -n "$NS_BR" link set br-srv down
faults=$((faults + 1))
for i in 1 2; do submit linkdown-$i; done
sleep 4
ip -n "$NS_BR" link set br-srv up
# Everything healthy again: the sender's retries drain its queue.
for _ in $(seq 90); do flush; queue_empty && break; sleep 1; done
# The sender's queue empties on the MX's 250; local delivery into the
# Maildir follows (a 40 MB message takes a moment on a busy machine).
for _ in $(seq 30); do
	in_srv postqueue -c "$PFC" -p 2>/dev/null | grep -q 'Mail queue is empty' && break
	sleep 1
done

total=0 once=0 dup=0 lost=0
for f in "$tmp"/sub-*; do
	tag=${f##*/sub-}
	total=$((total + 1))
	n=$(delivered "$tag")
	if [ "$n" -eq 1 ]; then once=$((once + 1))
	elif [ "$n" -gt 1 ]; then dup=$((dup + 1)); echo "  $tag delivered $n times"
	else lost=$((lost + 1)); echo "  $tag not delivered"; fi
done
queued=$(in_cli postqueue -c "$LAB_DIR/sender/etc" -p 2>/dev/null | grep -c '^[0-9A-F]\{6,\}')
echo "fault-injection report: faults=$faults messages=$total delivered_once=$once duplicated=$dup queued_at_sender=$queued lost=$((lost - queued))"
[ "$once" -eq "$total" ] && pass "every message delivered exactly once ($once of $total) after $faults faults" ||
	fail "every message delivered exactly once" "once=$once dup=$dup missing=$lost queued=$queued"
[ "$dup" -eq 0 ] && pass "no message duplicated" || fail "no message duplicated" "$dup"
assert_grep 'status=deferred' "$LAB_DIR/sender/maillog" "the sender saw temporary failures and retried"
assert_no_grep 'status=bounced' "$LAB_DIR/sender/maillog" "nothing bounced"
grep -q 'reply="4[0-9][0-9]' "$LAB_SPORKD_LOG" && pass "sporkd relayed the server's temporary refusal of the dot" ||
	fail "sporkd relayed the server's refusal" "none in its log"
summary
