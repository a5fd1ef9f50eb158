#!/bin/bash
# SPDX-License-Identifier: MIT
# Message tracking and metrics with the real sporkd in the lab: clean
# mail (v4 and v6), EICAR refused, a recipient Postfix refuses, a message
# over the size limit. Each gets one tracking record with what the client
# and the server said (sporkctl track finds it by recipient, sender,
# Message-ID and client address), one JSON line in the log, and moves
# spork_messages_total{verdict,action}; a scrape taken after the traffic
# passes Debian's promtool check metrics.
set -u
. "$(dirname "$0")/lib.sh"
lab_require promtool sqlite3
tmp=$(mktemp -d)
chmod 755 "$tmp"
cleanup() {
	[ -n "${SPORK_TEST_KEEP:-}" ] && { echo "kept: $tmp $LAB_DIR"; return; }
	lab_down
	rm -rf "$tmp"
}
EICAR='X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*'
printf '%s' "$EICAR" >"$tmp/eicar.com"
db=$tmp/track/track.db
export SPORK_LAB_CONF_EXTRA="${SPORK_LAB_CONF_EXTRA:-}
track_db $db
track_json yes
message_size_limit 200k"
lab_up
trap cleanup EXIT
track() { "$SPORK_REPO/build/sporkctl" track -D "$db" "$@"; }
metric() {	# metric NAME LABELS: the value in a fresh scrape, 0 if absent
	ctl metrics | awk -v k="$1{$2}" '$1 == k { print $2; f = 1 }
	    END { if (!f) print 0 }'
}

# --- traffic
send_mail "$tmp/t-clean" alice@example.test sender@client.example.test \
	"$SRV_V4" "" --header "Message-Id: <track-clean-1@client.example.test>" \
	--header "Subject: quarterly report"
assert_grep '^<- +250 2\.0\.0 Ok: queued' "$tmp/t-clean" "clean v4 delivered"
send_mail "$tmp/t-clean6" bob@example.test sender6@client.example.test \
	"[$SRV_V6]" "" --header "Message-Id: <track-clean-6@client.example.test>"
assert_grep '^<- +250 2\.0\.0 Ok: queued' "$tmp/t-clean6" "clean v6 delivered"
send_mail "$tmp/t-virus" alice@example.test bad@client.example.test "$SRV_V4" \
	"" --attach "@$tmp/eicar.com" \
	--header "Message-Id: <track-virus@client.example.test>"
assert_grep '^<\*\* +550 .*Eicar' "$tmp/t-virus" "EICAR refused"
send_mail "$tmp/t-mixed" alice@example.test,nobody@example.test \
	mixed@client.example.test "$SRV_V4" "" \
	--header "Message-Id: <track-mixed@client.example.test>"
assert_grep '^<- +250 2\.0\.0 Ok: queued' "$tmp/t-mixed" "one good, one unknown recipient: delivered"
head -c 300000 /dev/urandom | base64 -w 76 >"$tmp/big.txt"
send_mail "$tmp/t-big" alice@example.test big@client.example.test "$SRV_V4" \
	"$tmp/big.txt"
assert_grep '^<\*\* +552 ' "$tmp/t-big" "over message_size_limit: 552"

# The writer commits in batches, off the event loop.
for _ in $(seq 50); do
	[ "$(track -n 0 2>/dev/null | grep -c .)" -ge 5 ] && break
	sleep 0.2
done

# --- tracking records
out=$(track -r alice@example.test -n 0)
[ "$(printf '%s\n' "$out" | grep -c .)" -ge 4 ] &&
	pass "track -r alice: her four messages" ||
	fail "track -r alice: want 4 records, got: $out"
out=$(track -m '<track-clean-1@client.example.test>')
printf '%s\n' "$out" | grep -q 'sender@client\.example\.test' &&
	pass "track -m finds the clean message by Message-ID" ||
	fail "track -m: $out"
id=$(sqlite3 "$db" "select id from messages where message_id = '<track-clean-1@client.example.test>'")
story=$(track "$id")
for want in 'quarterly report' 'clean' 'deliver' '10\.25\.0\.1' \
	'alice@example\.test.*250' 'Ok: queued'; do
	printf '%s\n' "$story" | grep -qE "$want" &&
		pass "story of the clean message shows $want" ||
		fail "story of the clean message lacks $want: $story"
done
row=$(sqlite3 "$db" "select verdict, action, reply from messages where message_id = '<track-virus@client.example.test>'")
case $row in
virus\|reject\|550*Eicar*) pass "EICAR record: virus, reject, the 550 the client got" ;;
*) fail "EICAR record: $row" ;;
esac
# The first recipient is in the message's row, the others in recipients.
rcpts=$(sqlite3 "$db" "select rcpt || ' ' || rcpt_code from messages where message_id = '<track-mixed@client.example.test>' union all select r.rcpt || ' ' || r.code from recipients r join messages m on m.id = r.message where m.message_id = '<track-mixed@client.example.test>' order by 1")
[ "$rcpts" = "alice@example.test 250
nobody@example.test 550" ] && pass "mixed: each recipient with the server's answer (250, 550 at RCPT)" ||
	fail "mixed recipients: $rcpts"
out=$(track -a fd25::1 -n 0)
printf '%s\n' "$out" | grep -q 'sender6@client\.example\.test' &&
	pass "track -a fd25::1 finds the v6 message" || fail "track -a v6: $out"
row=$(sqlite3 "$db" "select verdict || ' ' || action from messages where sender = 'big@client.example.test'")
[ "$row" = "too-big reject" ] && pass "over the limit: too-big reject" ||
	fail "over the limit record: $row"
assert_grep 'track \{"t":.*"message_id":"<track-clean-1@client\.example\.test>"' \
	"$LAB_SPORKD_LOG" "one JSON line per message in the log"
n=$(grep -c ' track {' "$LAB_SPORKD_LOG")
[ "$n" -eq 5 ] && pass "five messages, five JSON lines" || fail "JSON lines: $n"
stat -c '%a %U' "$db" | grep -q '^640 spork$' &&
	pass "database mode 640, owned by the relay user" ||
	fail "database: $(stat -c '%a %U' "$db")"

# --- metrics
ctl metrics >"$tmp/scrape1.txt"
head -1 "$tmp/scrape1.txt" | grep -q '^ok$' && pass "sporkctl metrics answers" ||
	fail "metrics: $(head -2 "$tmp/scrape1.txt")"
tail -n +2 "$tmp/scrape1.txt" >"$tmp/scrape1.prom"
if promtool check metrics <"$tmp/scrape1.prom" >"$tmp/promtool.txt" 2>&1; then
	pass "promtool check metrics passes on the scrape"
else
	fail "promtool: $(head -5 "$tmp/promtool.txt")"
fi
[ "$(metric spork_messages_total 'verdict="clean",action="deliver"')" = 3 ] &&
	pass "spork_messages_total clean/deliver = 3" ||
	fail "clean/deliver: $(grep spork_messages_total "$tmp/scrape1.prom")"
[ "$(metric spork_messages_total 'verdict="virus",action="reject"')" = 1 ] &&
	pass "spork_messages_total virus/reject = 1" || fail "virus/reject"
[ "$(metric spork_messages_total 'verdict="too-big",action="reject"')" = 1 ] &&
	pass "spork_messages_total too-big/reject = 1" || fail "too-big/reject"
grep -q '^spork_scan_seconds_count [1-9]' "$tmp/scrape1.prom" &&
	pass "scan time histogram counts scans" || fail "spork_scan_seconds"
grep -q '^spork_final_dot_seconds_count 5$' "$tmp/scrape1.prom" &&
	pass "final-dot latency histogram: 5 messages" ||
	fail "final dot: $(grep final_dot_seconds_count "$tmp/scrape1.prom")"
grep -q '^spork_status{field="scan.workers"} [1-9]' "$tmp/scrape1.prom" &&
	pass "worker pool in the metrics" || fail "scan.workers metric"
grep -q '^spork_status{field="track.written"} 5$' "$tmp/scrape1.prom" &&
	pass "tracking writer counted in the metrics" ||
	fail "track.written: $(grep track.written "$tmp/scrape1.prom")"
# Values move.
send_mail "$tmp/t-clean2" bob@example.test again@client.example.test "$SRV_V4"
[ "$(metric spork_messages_total 'verdict="clean",action="deliver"')" = 4 ] &&
	pass "one more clean message: the counter moves to 4" ||
	fail "counter did not move"
summary
