#!/bin/bash
# SPDX-License-Identifier: MIT
# The journal with the real sporkd in the lab: every message Postfix
# accepted has exactly one copy, per direction (the IPv6 client is inside:
# outbound), whose body is byte for byte what Postfix stored and whose
# envelope block (X-Spork-Journal: NONCE ... X-Spork-Journal-End: NONCE)
# is the envelope the server accepted (plain, pipelined, over intercepted
# STARTTLS), whatever X-Spork-Journal-* lines the message itself carries.
# Nothing is journaled for a
# recipient Postfix refuses at RCPT, a message it refuses at the final dot
# (header_checks REJECT), or EICAR refused by sporkd. A journal that
# cannot be written follows journal_failure: tempfail (451, the server
# gets nothing) or deliver (delivered, logged, journal.failed). Retention
# deletes old copies and stale tmp/ files. A symbolic link or another
# user's directory planted in a Maildir or the queue: sporkd refuses to
# start and the link's target keeps its owner. An smtp: journal whose
# server is down: mail is delivered, the copies wait in the queue and
# reach the journal server (smtp-sink) once it listens; a copy the
# journal server refuses for good (5xx) goes to failed/ and the next one
# is delivered; a queue whose oldest copy is over a day old is warned of.
set -u
. "$(dirname "$0")/lib.sh"
lab_require smtp-sink
tmp=$(mktemp -d)
chmod 755 "$tmp"
sink_pid=
cleanup() {
	[ -n "$sink_pid" ] && kill "$sink_pid" 2>/dev/null
	lab_down
	# The journals are the test's, not the lab's: gone with it.
	[ -n "${SPORK_KEEP_LAB:-}" ] || { rm -rf "$JIN" "$JOUT"; rmdir "$LAB_DIR" 2>/dev/null; }
	rm -rf "$tmp"
}
JIN=$LAB_DIR/journal-in
JOUT=$LAB_DIR/journal-out
export SPORK_LAB_CONF_EXTRA="${SPORK_LAB_CONF_EXTRA:-}
inside_networks fd25::1/128
journal_inbound $JIN
journal_outbound $JOUT"
lab_up
trap cleanup EXIT
PFC=$LAB_DIR/postfix/etc
EICAR='X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*'

status() { ctl status | sed -n "s/^$1=//p"; }
jcount() { find "$1/new" -type f | wc -l; }
# The journal copy (in DIR/new) and Postfix's file of Message-ID TAG.
jfile() { grep -l "^Message-I[Dd]: <$2@" "$1"/new/* 2>/dev/null; }
pfile() { grep -l "^Message-I[Dd]: <$1@" "$LAB_MAIL"/*/new/* 2>/dev/null; }
# The message in a journal copy: what follows the End line that carries
# the first line's nonce, LF ends. A file that does not open with a block
# comes out whole (and differs from what Postfix stored).
jbody() {
	tr -d '\r' <"$1" | awk '
	     NR == 1 && /^X-Spork-Journal: [0-9a-f]+$/ { n = substr($0, 18); next }
	     n != "" && !done { if ($0 == "X-Spork-Journal-End: " n) done = 1; next }
	     { print }'
}
# The envelope block of a copy, LF ends: its first line through its End
# line; nothing when the file does not open with a complete one.
jblock() {
	tr -d '\r' <"$1" | awk '
	     NR == 1 { if (!/^X-Spork-Journal: [0-9a-f]+$/) exit; n = substr($0, 18) }
	     { b = b $0 "\n" }
	     $0 == "X-Spork-Journal-End: " n { printf "%s", b; exit }'
}
# The message Postfix stored: without the Return-Path, X-Original-To,
# Delivered-To and Received (with its continuation lines) it puts first.
pbody() {
	awk 'skip && /^[ \t]/ { next }
	     { skip = 0 }
	     !done && /^(Return-Path|X-Original-To|Delivered-To): / { next }
	     !done && /^Received: / { skip = 1; done = 1; next }
	     { done = 1; print }' "$1"
}

# same_copy NAME DIR TAG: one copy of TAG in DIR, its message byte for
# byte what Postfix stored.
same_copy() {
	local name=$1 dir=$2 tag=$3 j p
	j=$(jfile "$dir" "$tag")
	# A message to two recipients: Postfix stored it twice, alike.
	p=$(pfile "$tag" | head -1)
	if [ "$(printf '%s\n' "$j" | grep -c .)" != 1 ] || [ -z "$p" ]; then
		fail "$name" "copies: [$j] delivered: [$p]"
		return
	fi
	if cmp -s <(jbody "$j") <(pbody "$p"); then
		pass "$name"
	else
		fail "$name" "$(diff <(jbody "$j") <(pbody "$p") | head -20)"
	fi
}

# send TAG TO SERVER [swaks args]: a message with its own Message-ID.
send() {
	local tag=$1 to=$2 server=$3
	shift 3
	send_mail "$tmp/t-$tag" "$to" "s-$tag@client.example.test" "$server" "" \
		--header "Message-Id: <$tag@client.example.test>" \
		--header "Subject: journal $tag" "$@"
}

# --- delivered: inbound (v4) plain, pipelined, STARTTLS; dot lines
printf 'Line one.\r\n.a line that starts with a dot\r\n..two dots\r\n.\r\n' >"$tmp/dots.txt"
send in-plain alice@example.test "$SRV_V4" --body "@$tmp/dots.txt"
assert_grep '^<- +250 2\.0\.0 Ok: queued' "$tmp/t-in-plain" "inbound plain: delivered"
send in-pipe alice@example.test,bob@example.test "$SRV_V4" --pipeline
assert_grep '^<- +250 2\.0\.0 Ok: queued' "$tmp/t-in-pipe" "inbound pipelined, two recipients: delivered"
assert_grep '^<- +250.PIPELINING' "$tmp/t-in-pipe" "pipelining offered through the relay"
send in-tls alice@example.test "$SRV_V4" --tls
assert_grep '^<~ +250 2\.0\.0 Ok: queued' "$tmp/t-in-tls" "inbound over STARTTLS: delivered"
assert_grep 'starttls tls=intercept scanned=yes' "$LAB_SPORKD_LOG" "STARTTLS was intercepted"
# --- outbound (v6 client inside), STARTTLS and pipelined
send out-tls bob@example.test "[$SRV_V6]" --tls --pipeline
assert_grep '^<~ +250 2\.0\.0 Ok: queued' "$tmp/t-out-tls" "outbound over STARTTLS: delivered"
send out-plain alice@example.test "[$SRV_V6]"
assert_grep '^<- +250 2\.0\.0 Ok: queued' "$tmp/t-out-plain" "outbound plain: delivered"
# --- a recipient Postfix refuses at RCPT
send in-mixed alice@example.test,nobody@example.test "$SRV_V4"
assert_grep '^<\*\* +550 5\.1\.1 <nobody@example\.test>' "$tmp/t-in-mixed" "mixed: nobody refused at RCPT"
assert_grep '^<- +250 2\.0\.0 Ok: queued' "$tmp/t-in-mixed" "mixed: delivered to alice"
wait_delivered bob 2 20
wait_delivered alice 5 20

same_copy "inbound plain: the copy is what Postfix stored (dot lines intact)" "$JIN" in-plain
same_copy "inbound pipelined: the copy is what Postfix stored" "$JIN" in-pipe
same_copy "inbound STARTTLS: the copy is what Postfix stored" "$JIN" in-tls
same_copy "outbound STARTTLS: the copy is what Postfix stored" "$JOUT" out-tls
same_copy "outbound plain: the copy is what Postfix stored" "$JOUT" out-plain
same_copy "mixed: the copy is what Postfix stored" "$JIN" in-mixed
[ -z "$(jfile "$JOUT" in-plain)$(jfile "$JIN" out-plain)" ] &&
	pass "each direction in its own journal" || fail "direction" "crossed"
# The message Postfix stored carries sporkd's scan header: the copy has
# what sporkd added, not only what the client sent.
grep -q '^X-Spork-Scanned: ' "$(jfile "$JIN" in-plain)" &&
	pass "the copy carries the header sporkd added" ||
	fail "scan header in the copy" "$(head -12 "$(jfile "$JIN" in-plain)")"

# Envelope lines, in order: the block's, between its nonce lines.
env_of() { jblock "$(jfile "$1" "$2")" | sed '1d;$d'; }
got=$(env_of "$JIN" in-pipe)
want="X-Spork-Journal-Sender: <s-in-pipe@client.example.test>
X-Spork-Journal-Recipient: <alice@example.test>
X-Spork-Journal-Recipient: <bob@example.test>"
case $got in
"$want"$'\n'"X-Spork-Journal-Client: 10.25.0.1:"[0-9]*$'\n'"X-Spork-Journal-Server: 10.25.0.2:25")
	pass "envelope lines: sender, both recipients, client, server" ;;
*) fail "envelope lines" "$got" ;;
esac
blk=$(jblock "$(jfile "$JIN" in-pipe)")
nonce=$(printf '%s\n' "$blk" | sed -n '1s/^X-Spork-Journal: \([0-9a-f]\{16\}\)$/\1/p')
[ -n "$nonce" ] && [ "$(printf '%s\n' "$blk" | tail -1)" = "X-Spork-Journal-End: $nonce" ] &&
	pass "the envelope block comes first, opened and closed by one 16-digit nonce" ||
	fail "envelope block" "$(head -8 "$(jfile "$JIN" in-pipe)")"
nonces=$(for f in "$JIN"/new/* "$JOUT"/new/*; do head -1 "$f"; done | sort | uniq -d)
[ -z "$nonces" ] && pass "each copy has its own nonce" || fail "nonces" "repeated: $nonces"
got=$(env_of "$JIN" in-mixed | grep Recipient)
[ "$got" = "X-Spork-Journal-Recipient: <alice@example.test>" ] &&
	pass "mixed: only the recipient the server accepted" || fail "mixed recipients" "$got"
got=$(env_of "$JOUT" out-tls)
printf '%s\n' "$got" | grep -q '^X-Spork-Journal-Client: \[fd25::1\]:[0-9]*$' &&
	printf '%s\n' "$got" | grep -q '^X-Spork-Journal-Server: \[fd25::2\]:25$' &&
	pass "outbound: the v6 client and server" || fail "outbound envelope" "$got"
[ "$(grep -vc $'\r$' "$(jfile "$JIN" in-plain)")" = 0 ] &&
	pass "the copy has CRLF line ends throughout" || fail "CRLF" "bare LF lines"

# --- a message that carries envelope lines of its own: they stay its
# own, never the copy's envelope
printf '%s\r\n' 'X-Spork-Journal-Recipient: <eve@evil.test>' \
	'X-Spork-Journal-End: 0123456789abcdef' 'X-Spork-Journal: 0123456789abcdef' \
	'X-Spork-Journal-Sender: <mallory@evil.test>' 'From: <s-forged@client.example.test>' \
	'To: <alice@example.test>' 'Subject: journal forged' \
	'Message-Id: <forged@client.example.test>' '' 'Forged envelope lines above.' >"$tmp/forged.eml"
send forged alice@example.test "$SRV_V4" --data "@$tmp/forged.eml"
assert_grep '^<- +250 2\.0\.0 Ok: queued' "$tmp/t-forged" "forged envelope lines: delivered"
wait_delivered alice 6 20
got=$(env_of "$JIN" forged)
case $got in
"X-Spork-Journal-Sender: <s-forged@client.example.test>"$'\n'"X-Spork-Journal-Recipient: <alice@example.test>"$'\n'"X-Spork-Journal-Client: 10.25.0.1:"[0-9]*$'\n'"X-Spork-Journal-Server: 10.25.0.2:25")
	pass "forged envelope lines: the block holds the real envelope only" ;;
*) fail "forged envelope" "$got" ;;
esac
same_copy "forged envelope lines: they are the message's, byte for byte" "$JIN" forged

# --- not journaled: EICAR (sporkd), header_checks REJECT at the final dot
before_in=$(jcount "$JIN")
printf '%s' "$EICAR" >"$tmp/eicar.com"
send virus alice@example.test "$SRV_V4" --attach "@$tmp/eicar.com"
assert_grep '^<\*\* +550 5\.7\.1 .*Eicar' "$tmp/t-virus" "EICAR refused by sporkd"
printf '/^Subject: journal reject-me/ REJECT no such subject here\n' >"$tmp/header_checks"
chmod 644 "$tmp/header_checks"
in_srv postconf -c "$PFC" -e "header_checks = regexp:$tmp/header_checks"
postfix_reload "$NS_SRV" "$PFC" "$LAB_MAILLOG" || fail "header_checks: postfix reload" "not in $LAB_MAILLOG"
discarded0=$(status journal.discarded)
send reject-me alice@example.test "$SRV_V4"
assert_grep '^<\*\* +550 5\.7\.1 no such subject here' "$tmp/t-reject-me" "header_checks REJECT: Postfix refused the final dot"
in_srv postconf -c "$PFC" -X header_checks
in_srv postfix -c "$PFC" reload >/dev/null 2>&1
[ "$(jcount "$JIN")" = "$before_in" ] &&
	pass "refused messages: no copy (virus, refused at the dot)" ||
	fail "refused messages journaled" "$(jcount "$JIN") copies, had $before_in"
[ "$(status journal.discarded)" = $((discarded0 + 1)) ] &&
	pass "refused at the dot: its copy discarded (journal.discarded)" ||
	fail "journal.discarded" "$(status journal.discarded), was $discarded0"
assert_grep 'journal discarded direction=inbound copy=.* reason=server-refused' "$LAB_SPORKD_LOG" \
	"the discarded copy is logged"
[ -z "$(ls -A "$JIN/tmp")" ] && pass "nothing left in tmp/" || fail "tmp/" "$(ls "$JIN/tmp")"

# Exactly once: one copy per delivered message, no more.
delivered=$(find "$LAB_MAIL" -path '*/new/*' -type f | wc -l)
for f in $(find "$LAB_MAIL" -path '*/new/*' -type f); do
	id=$(sed -n 's/^Message-I[Dd]: <\([^@]*\)@.*/\1/p' "$f" | head -1)
	n=$( (grep -l "^Message-I[Dd]: <$id@" "$JIN"/new/* "$JOUT"/new/* 2>/dev/null || true) | wc -l)
	# A message to two recipients is one copy, stored twice by Postfix.
	[ "$n" = 1 ] || fail "copy of $id" "$n copies"
done
total=$(( $(jcount "$JIN") + $(jcount "$JOUT") ))
[ "$total" = 7 ] && [ "$delivered" = 8 ] &&
	pass "seven messages accepted (eight mailbox deliveries): seven copies" ||
	fail "exactly once" "copies=$total delivered=$delivered"
[ "$(status journal.written)" = 7 ] && pass "journal.written=7" ||
	fail "journal.written" "$(ctl status | grep '^journal')"
ctl metrics | grep -q '^spork_status{field="journal.written"} 7$' &&
	pass "journal.written in the metrics" || fail "metrics" "$(ctl metrics | grep journal)"
stat -c '%U %a' "$JIN" "$JIN/new" | sort -u | grep -qx 'spork 750' &&
	pass "the Maildir is the relay user's, mode 750" || fail "Maildir owner" "$(stat -c '%n %U %a' "$JIN" "$JIN"/*)"

# --- journal_failure tempfail: the copy cannot be written
chown root:root "$JIN/tmp"
chmod 755 "$JIN/tmp"
before=$(maildir_count alice)
cleanup_before=$(grep -c 'postfix/cleanup.*message-id' "$LAB_MAILLOG")
send tf alice@example.test "$SRV_V4"
assert_grep '^<\*\* +451 4\.3\.0 Error: journal unavailable' "$tmp/t-tf" "tempfail: the client got 451 4.3.0"
sleep 1
[ "$(maildir_count alice)" = "$before" ] &&
	[ "$(grep -c 'postfix/cleanup.*message-id' "$LAB_MAILLOG")" = "$cleanup_before" ] &&
	pass "tempfail: the server received no message" || fail "tempfail" "delivered"
assert_grep 'journal failed direction=inbound .*policy=tempfail: Permission denied' "$LAB_SPORKD_LOG" \
	"tempfail: logged"
[ "$(status journal.tempfail)" = 1 ] && pass "journal.tempfail=1" || fail "journal.tempfail" "$(status journal.tempfail)"
# The outbound journal is not the broken one: its mail still goes.
send out-ok bob@example.test "[$SRV_V6]"
assert_grep '^<- +250 2\.0\.0 Ok: queued' "$tmp/t-out-ok" "tempfail inbound: outbound mail still delivered"

# --- journal_failure deliver
sed -e '/^journal_failure/d' "$LAB_DIR/spork.conf" >"$tmp/deliver.conf"
echo "journal_failure deliver" >>"$tmp/deliver.conf"
lab start-sporkd "$tmp/deliver.conf" 2>/dev/null
chown root:root "$JIN/tmp"	# sporkd gave it back at start
before=$(maildir_count alice)
send dl alice@example.test "$SRV_V4"
assert_grep '^<- +250 2\.0\.0 Ok: queued' "$tmp/t-dl" "deliver: the message went through"
check "deliver: Postfix has it" wait_delivered alice $((before + 1)) 10
assert_grep 'journal failed direction=inbound .*policy=deliver' "$LAB_SPORKD_LOG" "deliver: the missing copy is logged"
[ "$(status journal.failed)" = 1 ] && pass "journal.failed=1" || fail "journal.failed" "$(status journal.failed)"
[ -z "$(jfile "$JIN" dl)" ] && pass "deliver: no copy" || fail "deliver copy" "found"

# --- retention: copies older than journal_retention, tmp/ files of a day
chown spork: "$JIN/tmp"
touch -d '2 days ago' "$JIN/tmp/stale.1.x"
touch "$JIN/tmp/fresh.1.x"
sleep 2
sed -e '/^journal_/d' "$LAB_DIR/spork.conf" >"$tmp/ret.conf"
printf 'journal_inbound %s\njournal_outbound %s\njournal_retention 1s\n' "$JIN" "$JOUT" >>"$tmp/ret.conf"
nin=$(jcount "$JIN") nout=$(jcount "$JOUT")
lab start-sporkd "$tmp/ret.conf" 2>/dev/null
# The pass over the directories runs in steps once sporkd is up.
pruned_all() { [ "$(jcount "$JIN")$(jcount "$JOUT")" = 00 ] && [ ! -e "$JIN/tmp/stale.1.x" ]; }
wait_until 20 pruned_all || true
[ "$(jcount "$JIN")$(jcount "$JOUT")" = 00 ] && pass "retention: old copies deleted" ||
	fail "retention" "in=$(jcount "$JIN") out=$(jcount "$JOUT")"
[ ! -e "$JIN/tmp/stale.1.x" ] && [ -e "$JIN/tmp/fresh.1.x" ] &&
	pass "retention: a stale tmp/ file deleted, a fresh one kept" || fail "tmp retention" "$(ls "$JIN/tmp")"
[ "$(status journal.pruned)" = $((nin + nout + 1)) ] && pass "journal.pruned counts them" ||
	fail "journal.pruned" "$(status journal.pruned), want $((nin + nout + 1))"
rm -f "$JIN/tmp/fresh.1.x"

# --- planted links and foreign directories: refused at start, never
# followed, their targets untouched
printf 'root only\n' >"$tmp/victim"
chmod 600 "$tmp/victim"
mkdir "$tmp/victimdir"
chmod 755 "$tmp/victimdir"
victims() { stat -c '%U:%G %a' "$tmp/victim" "$tmp/victimdir" | tr '\n' ' '; }
victims0=$(victims)
# refused NAME WHAT PATTERN: sporkd with ret.conf does not start and says
# PATTERN; the victims keep their owner and mode.
refused() {
	local lines
	lines=$(wc -l <"$LAB_SPORKD_LOG")
	if lab start-sporkd "$tmp/ret.conf" >/dev/null 2>&1; then
		fail "$1" "sporkd started"
		return
	fi
	if tail -n +"$((lines + 1))" "$LAB_SPORKD_LOG" | grep -Eq -- "$2"; then
		pass "$1: sporkd refuses to start, with a clear log line"
	else
		fail "$1" "no /$2/ in: $(tail -n +"$((lines + 1))" "$LAB_SPORKD_LOG" | tail -3)"
	fi
	[ "$(victims)" = "$victims0" ] && pass "$1: the target keeps its owner and mode" ||
		fail "$1: target changed" "$(victims), was $victims0"
}
rm -rf "$JIN/cur"
ln -s "$tmp/victim" "$JIN/cur"
chown -h spork: "$JIN/cur"
refused "cur/ a link to a root file" "journal: $JIN/cur: a symbolic link, refused"
rm "$JIN/cur"
mkdir "$JIN/cur"
rm -rf "$JOUT/tmp"
ln -s "$tmp/victimdir" "$JOUT/tmp"
refused "tmp/ a link to a root directory" "journal: $JOUT/tmp: a symbolic link, refused"
rm "$JOUT/tmp"
mkdir "$JOUT/tmp"
chown nobody: "$JOUT/tmp"
refused "tmp/ another user's directory" "journal: $JOUT/tmp: owned by uid [0-9]+, refused"
chown root: "$JOUT/tmp"
ln -s "$tmp/victimdir" "$LAB_DIR/spool/journal-queue"
sed -e '/^journal_/d' "$LAB_DIR/spork.conf" >"$tmp/q.conf"
printf 'journal_inbound smtp:archive@journal.example.test\njournal_server %s:2525\n' "$SRV_V4" >>"$tmp/q.conf"
lines=$(wc -l <"$LAB_SPORKD_LOG")
if lab start-sporkd "$tmp/q.conf" >/dev/null 2>&1; then
	fail "the queue a link" "sporkd started"
else
	tail -n +"$((lines + 1))" "$LAB_SPORKD_LOG" |
		grep -q "journal: $LAB_DIR/spool/journal-queue: a symbolic link, refused" &&
		pass "the queue a link to a root directory: sporkd refuses to start" ||
		fail "the queue a link" "$(tail -3 "$LAB_SPORKD_LOG")"
fi
[ "$(victims)" = "$victims0" ] && [ -z "$(ls -A "$tmp/victimdir")" ] &&
	pass "the queue a link: its target untouched" || fail "queue link target" "$(victims) $(ls "$tmp/victimdir")"
rm "$LAB_DIR/spool/journal-queue"
# Put right, with a mode gone wrong: sporkd starts and sets it.
chmod 777 "$JIN/new"
lab start-sporkd "$tmp/ret.conf" >/dev/null 2>&1 && pass "the links gone: sporkd starts" ||
	fail "restart" "$(tail -3 "$LAB_SPORKD_LOG")"
stat -c '%U %a' "$JIN/new" "$JIN/cur" "$JOUT/tmp" | sort -u | grep -qx 'spork 750' &&
	pass "existing directories: the relay user's, mode 750 again" ||
	fail "modes" "$(stat -c '%n %U %a' "$JIN/new" "$JIN/cur" "$JOUT/tmp")"

# --- smtp: target, its server down, then up
in_br ip addr add 10.25.0.3/24 dev br0
sed -e '/^journal_/d' "$LAB_DIR/spork.conf" >"$tmp/smtp.conf"
printf 'journal_inbound smtp:archive@journal.example.test\njournal_server %s:2525\n' "$SRV_V4" >>"$tmp/smtp.conf"
lab start-sporkd "$tmp/smtp.conf" 2>/dev/null
Q=$LAB_DIR/spool/journal-queue/inbound
send sm1 alice@example.test "$SRV_V4"
send sm2 bob@example.test "$SRV_V4" --pipeline
assert_grep '^<- +250 2\.0\.0 Ok: queued' "$tmp/t-sm1" "journal server down: mail delivered"
assert_grep '^<- +250 2\.0\.0 Ok: queued' "$tmp/t-sm2" "journal server down: the next one too"
# The queue runner tries them a moment after they are written.
send_failed() {
	[ "$(status journal.retry)" -ge 1 ] 2>/dev/null &&
		grep -q 'journal send failed direction=inbound to=<archive@journal\.example\.test>' "$LAB_SPORKD_LOG"
}
wait_until 15 send_failed || true
[ "$(jcount "$Q")" = 2 ] && pass "both copies wait in the queue" || fail "queue" "$(ls "$Q/new")"
[ "$(status journal.queued)" = 2 ] && pass "journal.queued=2" || fail "journal.queued" "$(status journal.queued)"
[ "$(status journal.retry)" -ge 1 ] && pass "journal.retry counts the failed sends" ||
	fail "journal.retry" "$(status journal.retry)"
assert_grep 'journal send failed direction=inbound to=<archive@journal\.example\.test>' "$LAB_SPORKD_LOG" \
	"the failed send is logged"
mkdir -p "$tmp/sink"
chmod 777 "$tmp/sink"
# Not through in_srv (a function, so a subshell): $! is smtp-sink itself,
# for kill and wait.
ip netns exec "$NS_SRV" smtp-sink -u nobody -d "$tmp/sink/%H%M%S." "$SRV_V4:2525" 10 >/dev/null 2>&1 &
sink_pid=$!
for _ in $(seq 300); do
	[ "$(find "$tmp/sink" -type f | wc -l)" -ge 2 ] && [ "$(jcount "$Q")" = 0 ] && break
	sleep 0.1
done
[ "$(find "$tmp/sink" -type f | wc -l)" = 2 ] && pass "the journal server got both copies once up" ||
	fail "journal server" "$(ls "$tmp/sink") queue: $(ls "$Q/new")"
[ "$(jcount "$Q")" = 0 ] && pass "the queue is empty once sent" || fail "queue left" "$(ls "$Q/new")"
[ "$(status journal.sent)" = 2 ] && pass "journal.sent=2" || fail "journal.sent" "$(status journal.sent)"
for tag in sm1 sm2; do
	d=$(grep -l "^Message-I[Dd]: <$tag@" "$tmp"/sink/* 2>/dev/null | head -1)
	if [ -z "$d" ]; then
		fail "sink copy of $tag" "none"
		continue
	fi
	grep -q '^X-Mail-Args: .*<>' "$d" && grep -q '^X-Rcpt-Args: .*<archive@journal.example.test>' "$d" &&
		pass "$tag: sent with the null sender to the journal address" ||
		fail "$tag envelope at the sink" "$(head -8 "$d")"
	grep -q "^X-Spork-Journal-Sender: <s-$tag@client.example.test>" "$d" &&
		pass "$tag: the copy's envelope lines reached the journal server" || fail "$tag envelope lines" "$(head -12 "$d")"
	# smtp-sink's dump: its own lines, the message, one empty line.
	sed -n '/^X-Spork-Journal: /,$p' "$d" | sed '$d' >"$tmp/sink-$tag"
	if cmp -s <(jbody "$tmp/sink-$tag") <(pbody "$(pfile "$tag" | head -1)"); then
		pass "$tag: the message at the journal server is what Postfix stored"
	else
		fail "$tag body at the journal server" "$(diff <(jbody "$tmp/sink-$tag") <(pbody "$(pfile "$tag" | head -1)") | head)"
	fi
done

# --- a copy the journal server refuses for good (5xx) goes to failed/;
# the next one is sent; a queue whose oldest copy is days old is warned of
kill "$sink_pid"
wait "$sink_pid" 2>/dev/null
sink_pid=
# A copy left from long ago (its name says 2001), the oldest in the queue.
old=1000000000.M000000P1Q1.journal.test
printf '%s\r\n' 'X-Spork-Journal: 00000000000000aa' 'X-Spork-Journal-Sender: <old@client.example.test>' \
	'X-Spork-Journal-Recipient: <alice@example.test>' 'X-Spork-Journal-Client: 10.25.0.1:1' \
	'X-Spork-Journal-Server: 10.25.0.2:25' 'X-Spork-Journal-End: 00000000000000aa' \
	'Subject: journal sm-old' 'Message-Id: <sm-old@client.example.test>' '' 'Old.' >"$Q/new/$old"
chown spork: "$Q/new/$old"
send sm3 alice@example.test "$SRV_V4"
assert_grep '^<- +250 2\.0\.0 Ok: queued' "$tmp/t-sm3" "journal server down again: mail delivered"
# The queue runner counts and warns a moment after the copy is written.
queue_seen() {
	[ "$(status journal.queue)" = 2 ] &&
		grep -q 'journal queue direction=inbound .*oldest_s=' "$LAB_SPORKD_LOG"
}
wait_until 15 queue_seen || true
[ "$(status journal.queue)" = 2 ] && pass "journal.queue counts the two waiting copies" ||
	fail "journal.queue" "$(status journal.queue) ($(ls "$Q/new"))"
assert_grep 'journal queue direction=inbound to=<archive@journal\.example\.test> copies=2 oldest_s=[0-9]{9,}' \
	"$LAB_SPORKD_LOG" "a queue whose oldest copy is over a day old: warned"
# A journal server that refuses the old copy's final dot for good and
# takes every other copy (smtp-sink refuses all or nothing).
cat >"$tmp/jserver.py" <<'PY'
import os, socketserver, sys
addr, port, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
class Session(socketserver.StreamRequestHandler):
    def reply(self, text):
        self.wfile.write(text.encode() + b"\r\n")
    def handle(self):
        self.reply("220 journal.example.test ESMTP")
        data = None
        while True:
            line = self.rfile.readline()
            if not line:
                return
            if data is not None:
                if line == b".\r\n":
                    msg, data = b"".join(data), None
                    if b"\r\nSubject: journal sm-old\r\n" in msg:
                        self.reply("554 5.7.1 not this one, ever")
                        continue
                    name = os.path.join(out, "%d" % len(os.listdir(out)))
                    with open(name, "wb") as f:
                        f.write(msg)
                    self.reply("250 2.0.0 Ok: kept")
                else:
                    data.append(line[1:] if line.startswith(b".") else line)
                continue
            verb = line[:4].upper()
            if verb == b"DATA":
                data = []
                self.reply("354 go on")
            elif verb == b"QUIT":
                self.reply("221 bye")
                return
            else:
                self.reply("250 Ok")
socketserver.TCPServer.allow_reuse_address = True
socketserver.TCPServer((addr, port), Session).serve_forever()
PY
mkdir -p "$tmp/sink2"
ip netns exec "$NS_SRV" python3 "$tmp/jserver.py" "$SRV_V4" 2525 "$tmp/sink2" >/dev/null 2>&1 &
sink_pid=$!
for _ in $(seq 300); do
	[ -e "$Q/failed/$old" ] && [ "$(jcount "$Q")" = 0 ] && break
	sleep 0.1
done
[ -e "$Q/failed/$old" ] && [ ! -e "$Q/new/$old" ] && pass "the refused copy moved to failed/" ||
	fail "refused copy" "new: $(ls "$Q/new") failed: $(ls "$Q/failed")"
assert_grep "journal refused direction=inbound to=<archive@journal\.example\.test> copy=$old moved=failed/: 554 " \
	"$LAB_SPORKD_LOG" "the refusal is logged as an error"
[ "$(status journal.refused)" = 1 ] && pass "journal.refused=1" || fail "journal.refused" "$(status journal.refused)"
d=$(grep -l '^Message-I[Dd]: <sm3@' "$tmp"/sink2/* 2>/dev/null)
[ -n "$d" ] && [ "$(find "$tmp/sink2" -type f | wc -l)" = 1 ] &&
	pass "the copy behind the refused one reached the journal server" ||
	fail "next copy" "journal server: $(ls "$tmp/sink2") queue: $(ls "$Q/new")"
[ "$(grep -c "journal refused .*copy=$old" "$LAB_SPORKD_LOG")" = 1 ] &&
	pass "the refused copy was not sent again" ||
	fail "refused copy resent" "$(grep -c "journal refused .*copy=$old" "$LAB_SPORKD_LOG") refusals"
[ "$(status journal.queue)" = 0 ] && [ "$(status journal.sent)" = 3 ] &&
	pass "journal.queue=0, journal.sent=3" || fail "after the refusal" "$(ctl status | grep '^journal')"
[ "$(grep -c 'journal queue direction=inbound .*oldest_s=' "$LAB_SPORKD_LOG")" = 1 ] &&
	pass "the queue warning is not repeated within the hour" ||
	fail "queue warnings" "$(grep -c 'journal queue direction=' "$LAB_SPORKD_LOG")"
in_br ip addr del 10.25.0.3/24 dev br0
summary
