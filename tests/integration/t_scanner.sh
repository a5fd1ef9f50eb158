#!/bin/bash
# SPDX-License-Identifier: MIT
# The scanning engine through the bridge, against the real Postfix:
# - all 44 clamav-testfiles samples refused (signature from clam.exe's md5),
#   the clean corpus delivered byte for byte;
# - a worker killed mid-scan costs that message a 451 and nothing else;
# - signature reload under smtp-source load loses nothing and changes the
#   engine; a corrupt database is refused and scanning goes on;
# - the workers' identity (scan_user) and sandbox, and the memory they
#   report in the status;
# - every verdict policy end to end, quarantine release included;
# - the clamd backend against two real clamd, one stopped mid-test.
set -u
. "$(dirname "$0")/lib.sh"
tmp=$(mktemp -d)
chmod 755 "$tmp"	# scanner workers and clamd run unprivileged
clamd_pids=()
cleanup() {
	local p
	for p in "${clamd_pids[@]}"; do kill "$p" 2>/dev/null; done
	lab_down
	rm -rf "$tmp"
}
trap cleanup EXIT
lab_up
CHAT=$SPORK_REPO/tests/tools/smtpchat
TESTFILES=/usr/share/clamav-testfiles
EICAR='X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*'
printf '%s' "$EICAR" >"$tmp/eicar.com"

# Our own signature directory: the test signatures plus clam.exe's md5.
db=$tmp/db
mkdir -p "$db"
cp "$SPORK_REPO"/tests/data/clamav/spork-test.* "$db/"
sigtool --md5 "$TESTFILES/clam.exe" | sed 's/:clam\.exe$/:Spork.Test.ClamExe/' >"$db/clamexe.hdb"

# start_sporkd LINES...: the lab's config, our database, extra lines.
start_sporkd() {
	{
		cat "$LAB_DIR/spork.conf"
		echo "clamav_database_dir $db"
		printf '%s\n' "$@"
	} >"$tmp/run.conf"
	lab start-sporkd "$tmp/run.conf" 2>/dev/null || { fail "sporkd start" "$*"; return 1; }
}
delivered_total() { echo $(($(maildir_count alice) + $(maildir_count bob))); }

# One sample (clam_cache_emax.tgz) nests deeper than libclamav's default
# recursion limit: it is refused as exceeding the limits, never passed.
start_sporkd "scan_workers 2" "limits_action reject"

# --- 1. the 44 samples, each as an attachment
n=0 refused=0 before=$(delivered_total)
for f in "$TESTFILES"/*; do
	n=$((n + 1))
	send_mail "$tmp/t-sample" alice@example.test a@client.example.test "$SRV_V4" "" \
		--attach "@$f" --header "Subject: sample $(basename "$f")"
	if grep -Eq '^<\*\* +550 5\.7\.1 Message rejected: (virus found: Spork\.Test\.ClamExe|exceeds scan limits)' "$tmp/t-sample"; then
		refused=$((refused + 1))
	else
		echo "  not refused: $(basename "$f"): $(grep -E '^<(\*\*|-) +[245][0-9][0-9] ' "$tmp/t-sample" | tail -n1)"
	fi
done
[ "$n" -eq 44 ] && [ "$refused" -eq 44 ] && pass "clamav-testfiles: $refused of $n refused with 550 5.7.1" ||
	fail "clamav-testfiles refused" "$refused of $n"
sig=$(grep -c 'verdict=virus name="Spork.Test.ClamExe' "$LAB_SPORKD_LOG")
[ "$sig" -ge 43 ] && pass "clamav-testfiles: $sig matched the clam.exe signature through libclamav's unpackers" ||
	fail "clamav-testfiles: signature matches" "$sig"
sleep 0.5
[ "$(delivered_total)" -eq "$before" ] && pass "clamav-testfiles: none delivered" ||
	fail "clamav-testfiles: none delivered" "$(($(delivered_total) - before)) delivered"

# --- 2. the clean corpus, byte for byte
corpus=$SPORK_REPO/tests/data/corpus/clean
ok=0 total=0
for f in "$corpus"/*.eml; do
	[ -e "$f" ] || continue
	total=$((total + 1))
	before=$(maildir_count bob)
	send_mail "$tmp/t-clean" bob@example.test a@client.example.test "$SRV_V4" "" --data "@$f"
	if ! grep -Eq '^<- +250 2\.0\.0 Ok: queued' "$tmp/t-clean" ||
		! wait_delivered bob $((before + 1)) 10; then
		echo "  not delivered: $(basename "$f")"
		continue
	fi
	# The delivered file ends with the message as sent (LF line ends in
	# Maildir); Postfix and spork only add header lines on top.
	if python3 - "$f" "$(maildir_files bob | tail -n1)" <<'PY'; then
import sys
raw = open(sys.argv[1], "rb").read()
# swaks takes a file ending in CRLF "." CRLF as already terminated; else it
# adds an empty line and the terminator.
sent = raw[:-3] if raw.endswith(b"\r\n.\r\n") else raw + b"\r\n"
sent = sent.replace(b"\r\n", b"\n")
got = open(sys.argv[2], "rb").read()
sys.exit(0 if got.endswith(sent) and b"X-Spork-Scanned: " in got[:len(got) - len(sent)] else 1)
PY
		ok=$((ok + 1))
	else
		echo "  changed in transit: $(basename "$f")"
	fi
done
[ "$total" -ge 10 ] && [ "$ok" -eq "$total" ] && pass "clean corpus: $ok of $total delivered byte for byte, with X-Spork-Scanned" ||
	fail "clean corpus byte for byte" "$ok of $total"

# --- 3. a worker killed mid-scan: 451 for that message only
start_sporkd "scan_workers 1"
python3 - "$tmp/big.data" <<'PY'
import base64, os, random, sys
random.seed(7)
blob = base64.encodebytes(bytes(random.getrandbits(8) for _ in range(3 * 1024 * 1024)) * 10).replace(b"\n", b"\r\n")
msg = (b"From: a@client.example.test\r\nTo: alice@example.test\r\nSubject: big\r\n"
       b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\n--XX\r\n"
       b"Content-Type: application/octet-stream; name=blob.bin\r\n"
       b"Content-Transfer-Encoding: base64\r\n\r\n" + blob + b"--XX--\r\n.\r\n")
open(sys.argv[1], "wb").write(msg)
PY
# big_chat HELO: a chat's start, up to the big message's 451
big_chat() {
	cat <<CHAT
expect 220
line EHLO $1
expect 250
line MAIL FROM:<a@client.example.test>
expect 250
line RCPT TO:<alice@example.test>
expect 250
line DATA
expect 354
sendfile $tmp/big.data
expect 451 4.3.0
CHAT
}
# busy_worker: the pid of a worker busy with a scan, once there is one
busy_worker() {
	local w
	for _ in $(seq 200); do
		w=$(ctl status | sed -n 's/^scan.worker pid=\([0-9]*\) state=busy.*/\1/p')
		[ -n "$w" ] && { echo "$w"; return 0; }
		sleep 0.05
	done
	return 1
}
# sent_ahead PID: true once worker PID holds a message sent ahead
sent_ahead() {
	for _ in $(seq 100); do
		ctl status | grep -q "^scan.worker pid=$1 state=busy ahead=1 " && return 0
		sleep 0.05
	done
	return 1
}
{ big_chat victim.example.test; cat <<CHAT
line MAIL FROM:<a@client.example.test>
expect 250
line RCPT TO:<alice@example.test>
expect 250
line DATA
expect 354
send Subject: after the kill\r\n\r\nstill scanned\r\n.\r\n
expect 250 2.0.0
line MAIL FROM:<a@client.example.test>
expect 250
line RCPT TO:<alice@example.test>
expect 250
line DATA
expect 354
send Subject: virus after the kill\r\n\r\n$EICAR\r\n.\r\n
expect 550 5.7.1
line QUIT
expect 221
CHAT
} >"$tmp/kill.chat"
in_cli "$CHAT" "$SRV_V4" 25 60 <"$tmp/kill.chat" >"$tmp/t-kill" 2>&1 &
chat=$!
victim=$(busy_worker) || victim=
# A second session's message meanwhile: with the only worker busy, it is
# sent to that worker ahead, behind the big one. The kill must not cost it
# anything: it goes back to the queue and the replacement scans it.
ahead=
if [ -n "$victim" ]; then
	send_mail "$tmp/t-ahead" bob@example.test a@client.example.test "$SRV_V4" "" --attach "@$tmp/eicar.com" &
	ahead_mail=$!
	sent_ahead "$victim" && ahead=1
	kill -KILL "$victim"
	pass "worker kill: caught worker $victim busy with the big message"
else
	fail "worker kill: a busy worker to kill" "none seen busy"
fi
if wait $chat; then
	pass "worker kill: that message got 451, the next ones in the session 250 and 550"
else
	fail "worker kill: same session" "$(tail -n 5 "$tmp/t-kill")"
fi
if [ -n "$ahead" ]; then
	pass "worker kill: another session's message was sent ahead to the busy worker"
	wait $ahead_mail
	assert_grep '^<\*\* +550 5\.7\.1 .*Eicar' "$tmp/t-ahead" "worker kill: the message sent ahead is scanned by the replacement (550, not 451)"
	assert_grep "scan worker pid=$victim generation=[0-9]+ lost: .*\\(the message sent ahead is queued again\\)" "$LAB_SPORKD_LOG" "worker kill: the requeue logged"
else
	fail "worker kill: a message sent ahead" "$(ctl status | grep '^scan\.')"
fi
send_mail "$tmp/t-after" bob@example.test a@client.example.test "$SRV_V4" "" --attach "@$tmp/eicar.com"
assert_grep '^<\*\* +550 5\.7\.1 .*Eicar' "$tmp/t-after" "worker kill: another session is scanned by the replacement"
assert_grep 'scan worker pid=[0-9]+ .*lost: exited|scan worker pid=[0-9]+ generation=[0-9]+ lost' "$LAB_SPORKD_LOG" "worker kill: logged"
ctl status >"$tmp/status"
assert_grep '^scan.worker_deaths=1$' "$tmp/status" "worker kill: counted once"
if [ -n "$victim" ] && [ ! -e "$LAB_DIR/spool/scan-tmp/w$victim" ] &&
	[ -d "$LAB_DIR/spool/scan-tmp/w$(ctl status | sed -n 's/^scan.worker pid=\([0-9]*\) .*/\1/p' | head -n1)" ]; then
	pass "worker kill: its temporary files removed, the replacement has its own directory"
else
	fail "worker kill: temporary files" "$(ls "$LAB_DIR/spool/scan-tmp")"
fi

# --- 3b. a scan that hangs: a worker stopped (SIGSTOP) with the big
# message. At scan_timeout that message gets 451 and the worker is killed;
# the message sent ahead behind it still has budget left, goes back to the
# queue and is scanned by the replacement.
start_sporkd "scan_workers 1" "scan_timeout 6s"
{ big_chat hang.example.test; printf 'line QUIT\nexpect 221\n'; } >"$tmp/hang.chat"
t_hang0=$SECONDS
in_cli "$CHAT" "$SRV_V4" 25 60 <"$tmp/hang.chat" >"$tmp/t-hang" 2>&1 &
chat=$!
if hung=$(busy_worker); then
	kill -STOP "$hung"
	send_mail "$tmp/t-behind" bob@example.test a@client.example.test "$SRV_V4" "" --attach "@$tmp/eicar.com" &
	behind_mail=$!
	sent_ahead "$hung" && pass "hung scan: a message sent ahead behind it" ||
		fail "hung scan: a message sent ahead" "$(ctl status | grep '^scan\.')"
	if wait $chat; then
		pass "hung scan: 451 to its message after scan_timeout ($((SECONDS - t_hang0)) s)"
	else
		fail "hung scan: 451" "$(tail -n 5 "$tmp/t-hang")"
	fi
	wait_grep 10 "scan timeout worker pid=$hung scan_ms=[0-9]+ action=kill" "$LAB_SPORKD_LOG" "hung scan: its worker killed, logged"
	wait $behind_mail
	assert_grep '^<\*\* +550 5\.7\.1 .*Eicar' "$tmp/t-behind" "hung scan: the message sent ahead scanned by the replacement (550, not 451)"
	ctl status >"$tmp/status"
	assert_grep '^scan.timeouts=1$' "$tmp/status" "hung scan: one timeout counted"
	[ ! -e "/proc/$hung" ] || [ "$(awk '{print $3}' "/proc/$hung/stat" 2>/dev/null)" = Z ] &&
		pass "hung scan: the stopped worker is gone" ||
		fail "hung scan: the stopped worker is gone" "$(cat "/proc/$hung/stat" 2>/dev/null)"
else
	fail "hung scan: a busy worker to stop" "none seen busy"
fi

# --- 4. reload under load; a corrupt database is refused
start_sporkd "scan_workers 2"
engine0=$(ctl status | sed -n 's/^scan.engine=//p')
a0=$(maildir_count alice)
in_cli smtp-source -d -s 4 -m 200 -l 2048 -f a@client.example.test \
	-t alice@example.test "$SRV_V4:25" >"$tmp/src" 2>&1 &
src=$!
sleep 0.3
swaps() { grep -c 'scan reload swap' "$LAB_SPORKD_LOG"; }
swapped() { [ "$(swaps)" -ge "$1" ]; }
swaps0=$(swaps)
# A new signature file: picked up by the directory watch (2 s to settle,
# then the load) ...
echo "0123456789abcdef0123456789abcdef:99:Spork.Test.Reload" >"$db/reload.hdb"
# ... and, once that generation serves (a reload asked while one loads is
# folded into it; a fixed pause was too short on a loaded machine), an
# explicit reload over the control socket, still under load.
wait_until 30 swapped $((swaps0 + 1)) || true
ctl reload >/dev/null
wait $src && pass "reload under load: smtp-source finished cleanly" ||
	fail "reload under load: smtp-source" "$(tail -n 3 "$tmp/src")"
check "reload under load: all 200 delivered" wait_delivered alice $((a0 + 200)) 60
sleep 1
[ "$(maildir_count alice)" -eq $((a0 + 200)) ] && pass "reload under load: exactly 200, none lost or doubled" ||
	fail "reload under load: exactly 200" "$(($(maildir_count alice) - a0))"
wait_until 30 swapped $((swaps0 + 2)) || true
engine1=$(ctl status | sed -n 's/^scan.engine=//p')
[ -n "$engine1" ] && [ "$engine1" != "$engine0" ] && pass "reload: engine changed ($engine0 -> $engine1)" ||
	fail "reload: engine changed" "$engine0 -> $engine1"
[ "$(grep -c 'scan reload swap' "$LAB_SPORKD_LOG")" -ge 2 ] && pass "reload: two swaps logged (watch + sporkctl)" ||
	fail "reload: two swaps logged" "$(grep -c 'scan reload swap' "$LAB_SPORKD_LOG")"
assert_grep 'scan reload swap from=[0-9]+ to=[0-9]+ old_pss_kb=[0-9]+ new_pss_kb=[0-9]+' "$LAB_SPORKD_LOG" "reload: memory during reload reported"
printf 'this is not a signature database\n:::\n' >"$db/broken.ndb"
ctl reload >/dev/null
wait_grep 30 'scan engine refused generation=[0-9]+: cannot load signatures from .*/db: Malformed database \(previous engine keeps serving\)' "$LAB_SPORKD_LOG" "corrupt database: refused with a clear log line"
[ "$(ctl status | sed -n 's/^scan.engine=//p')" = "$engine1" ] && pass "corrupt database: old engine still active" ||
	fail "corrupt database: old engine still active" "$(ctl status | sed -n 's/^scan.engine=//p')"
send_mail "$tmp/t-after-bad" alice@example.test a@client.example.test "$SRV_V4" "" --attach "@$tmp/eicar.com"
assert_grep '^<\*\* +550 5\.7\.1 .*Eicar' "$tmp/t-after-bad" "corrupt database: scanning goes on (EICAR 550)"
send_mail "$tmp/t-after-bad2" alice@example.test a@client.example.test "$SRV_V4"
assert_grep '^<- +250 2\.0\.0 Ok: queued' "$tmp/t-after-bad2" "corrupt database: clean mail still delivered"
rm -f "$db/broken.ndb" "$db/reload.hdb"

# --- 4b. whose workers: the generation forked after the drop (the reload
# above) runs as scan_user (nobody), with the relay's uid only as saved
# uid (so the relay can kill an overrunning scan), no capabilities, its
# seccomp allow list; the relay keeps its own user.
relay_pid=$(cat "$LAB_SPORKD_PID")
spork_uid=$(id -u spork) nobody_uid=$(id -u nobody)
uids() { awk '/^Uid:/ { print $2, $3, $4, $5 }' "/proc/$1/status"; }
[ "$(uids "$relay_pid")" = "$spork_uid $spork_uid $spork_uid $spork_uid" ] &&
	pass "identity: the relay runs as spork" || fail "identity: relay uids" "$(uids "$relay_pid")"
wpids=$(ctl status | sed -n 's/^scan.worker pid=\([0-9]*\) .*/\1/p')
nw=0 good=0
for w in $wpids; do
	nw=$((nw + 1))
	[ "$(uids "$w")" = "$nobody_uid $nobody_uid $spork_uid $nobody_uid" ] &&
	    grep -q '^CapEff:[[:space:]]*0*$' "/proc/$w/status" &&
	    grep -q '^Seccomp:[[:space:]]*2$' "/proc/$w/status" &&
	    good=$((good + 1))
done
[ "$nw" -ge 1 ] && [ "$good" -eq "$nw" ] &&
	pass "identity: $good reloaded workers run as scan_user nobody (saved uid spork), no capabilities, seccomp" ||
	fail "identity: workers as scan_user" "$good of $nw; $(for w in $wpids; do uids "$w"; done | tr '\n' ';')"
# What that identity may not do: reach the quarantine and the spool.
if runuser -u nobody -- sh -c "touch '$LAB_DIR/spool/quarantine/x' || ls '$LAB_DIR/spool/quarantine'" 2>/dev/null; then
	fail "identity: scan_user kept out of the quarantine" "it could write or list it"
else
	pass "identity: scan_user can neither write nor list the quarantine"
fi
send_mail "$tmp/t-after-ids" alice@example.test a@client.example.test "$SRV_V4" "" --attach "@$tmp/eicar.com"
assert_grep '^<\*\* +550 5\.7\.1 .*Eicar' "$tmp/t-after-ids" "identity: workers as scan_user still scan (EICAR 550)"
assert_no_grep 'outside its sandbox' "$LAB_SPORKD_LOG" "identity: no worker left its allow list"

# --- 4c. memory in the status: the relay may not read the /proc files of
# processes that run as scan_user, so each reports its own PSS; what the
# status says matches what root reads (a worker reports as it answers)
pss() { awk '/^Pss:/ { print $2 }' "/proc/$1/smaps_rollup"; }
within2x() { [ "$1" -gt 0 ] && [ $(($1 * 2)) -ge "$2" ] && [ "$1" -le $(($2 * 2)) ]; }
st=$(ctl status)
total=$(sed -n 's/^scan\.pss_kb=//p' <<<"$st")
read -r w wkb < <(sed -n 's/^scan\.worker pid=\([0-9]*\) .* pss_kb=\([1-9][0-9]*\)$/\1 \2/p' <<<"$st" | head -n1)
if [ -n "${w:-}" ]; then
	loader=$(awk '/^PPid:/ { print $2 }' "/proc/$w/status")
	root_w=$(pss "$w") root_l=$(pss "$loader")
	check "memory: a worker's PSS in the status ($wkb kB) is what root reads ($root_w kB), within 2x" \
		within2x "$wkb" "$root_w"
	check "memory: scan.pss_kb ($total kB) holds the loader's ($root_l kB as root reads it) and the workers'" \
		test "${total:-0}" -ge $((root_l / 2 + wkb))
else
	fail "memory: a worker that answered reports its PSS" "$(grep '^scan\.' <<<"$st" | tr '\n' ';')"
fi

# --- 5. verdict policies
policy() {	# policy NAME EXPECT_REGEX [config lines...]
	local name=$1 want=$2
	shift 2
	start_sporkd "$@" || return
	send_mail "$tmp/t-$name" bob@example.test a@client.example.test "$SRV_V4" "" \
		--attach "@$tmp/eicar.com" --header "Subject: policy $name"
	assert_grep "$want" "$tmp/t-$name" "policy $name: client reply"
}
b0=$(maildir_count bob)
policy tempfail '^<\*\* +451 4\.7\.1 Message deferred: virus found: Eicar' "virus_action tempfail"
policy tag '^<- +250 2\.0\.0 Ok: queued' "virus_action tag"
check "policy tag: delivered" wait_delivered bob $((b0 + 1)) 10
f=$(maildir_files bob | tail -n1)
assert_grep '^X-Spork-Virus: Eicar-Test-Signature' "$f" "policy tag: X-Spork-Virus header"
assert_grep '^X-Spork-Scanned: engine="ClamAV [^"]*"; result=virus; name=Eicar' "$f" "policy tag: X-Spork-Scanned names engine and result"

policy quarantine '^<\*\* +550 5\.7\.1 Message rejected: virus found: Eicar' "virus_action quarantine"
ctl quarantine list >"$tmp/qlist"
assert_grep 'client=10\.25\.0\.1:[0-9]+ sender=<a@client\.example\.test> verdict=virus name=Eicar' "$tmp/qlist" "policy quarantine: kept, with its envelope"
qid=$(sed -n '2s/ .*//p' "$tmp/qlist")
ctl quarantine show "$qid" >"$tmp/qshow"
assert_grep '^rcpt: <bob@example\.test>$' "$tmp/qshow" "quarantine show: recipients recorded"
# A header with a terminal escape in it is shown escaped, not acted on.
send_mail "$tmp/t-esc" bob@example.test "esc@client.example.test" "$SRV_V4" "" \
	--attach "@$tmp/eicar.com" --header "X-Evil: a$(printf '\033')[2Jb"
qesc=$(ctl quarantine list | grep 'sender=<esc@client' | sed 's/ .*//' | tail -n1)
ctl quarantine show "$qesc" >"$tmp/qshow-esc"
assert_grep '^X-Evil: a\\x1b\[2Jb$' "$tmp/qshow-esc" "quarantine show: control bytes escaped"
if grep -q "$(printf '\033')" "$tmp/qshow-esc"; then
	fail "quarantine show: no raw escape byte" "found in $tmp/qshow-esc"
else
	pass "quarantine show: no raw escape byte"
fi
# The control socket: a user who may open it but is neither root nor in
# control_admin_group may look, not change.
chmod 666 "$LAB_DIR/sporkd.sock"
as_nobody() { runuser -u nobody -- "$SPORK_REPO/build/sporkctl" -s "$LAB_DIR/sporkd.sock" "$@"; }
as_nobody quarantine delete "$qesc" >"$tmp/ctl-nobody" 2>&1
assert_grep '^error: not permitted' "$tmp/ctl-nobody" "control: delete refused to a user outside control_admin_group"
as_nobody quarantine release "$qesc" >"$tmp/ctl-nobody2" 2>&1
assert_grep '^error: not permitted' "$tmp/ctl-nobody2" "control: release refused too"
as_nobody bypass list >"$tmp/ctl-nobody3" 2>&1
assert_grep '^error: not permitted' "$tmp/ctl-nobody3" "control: bypass refused too"
assert_grep 'control refused uid=[0-9]+ command=quarantine delete' "$LAB_SPORKD_LOG" "control: the refusal logged with the uid"
as_nobody status >"$tmp/ctl-nobody4" 2>&1
assert_grep '^ok' "$tmp/ctl-nobody4" "control: status allowed to look"
ctl quarantine show "$qesc" >/dev/null && pass "control: the message still there" ||
	fail "control: the message still there" "$qesc"
ctl quarantine delete "$qesc" >/dev/null
b1=$(maildir_count bob)
ctl quarantine release "$qid" >"$tmp/qrel"
assert_grep '^ok released .*250 2\.0\.0 Ok: queued' "$tmp/qrel" "quarantine release: the server queued it"
check "quarantine release: arrived at the server" wait_delivered bob $((b1 + 1)) 10
f=$(maildir_files bob | tail -n1)
assert_grep "^X-Spork-Released: id=$qid" "$f" "quarantine release: marked as released"
assert_grep '^Received: from .*\(unknown \[10\.25\.0\.1\]\)' "$f" "quarantine release: from the client's own address"
ctl quarantine list >"$tmp/qlist2"
assert_grep '^count=0$' "$tmp/qlist2" "quarantine release: removed from quarantine"

policy quarantine-deliver '^<- +250 2\.0\.0 Ok: queued' "virus_action quarantine" "quarantine_then deliver"
ctl quarantine list >"$tmp/qlist3"
assert_grep '^count=1$' "$tmp/qlist3" "policy quarantine-deliver: a copy kept"

# clean: the infected part replaced by a notice, the rest delivered byte for
# byte, and a notice mail to the configured address.
b2=$(maildir_count bob) a2=$(maildir_count alice)
policy clean '^<- +250 2\.0\.0 Ok: queued' "virus_action clean" "notice_to alice@example.test"
check "policy clean: delivered" wait_delivered bob $((b2 + 1)) 10
f=$(maildir_files bob | tail -n1)
assert_grep '^X-Spork-Virus-Removed: Eicar-Test-Signature' "$f" "policy clean: X-Spork-Virus-Removed header"
assert_grep '^X-Spork-Removed: Eicar-Test-Signature' "$f" "policy clean: the part replaced by a notice"
assert_grep '^This part of the message "eicar.com" \(application/octet-stream\)' "$f" "policy clean: the notice names the part"
assert_grep '^This is a test mailing' "$f" "policy clean: the text part kept"
assert_no_grep 'WDVPIVAlQEFQ' "$f" "policy clean: the virus is gone"
check "notice mail: arrived" wait_delivered alice $((a2 + 1)) 10
f=$(maildir_files alice | tail -n1)
assert_grep '^Subject: \[spork\] clean: Eicar-Test-Signature' "$f" "notice mail: names action and virus"
assert_grep '^Recipient:  <bob@example\.test>$' "$f" "notice mail: names the recipient"
assert_grep '^Removed:    1 part' "$f" "notice mail: says what was removed"
assert_grep '^Return-Path: <>$' "$f" "notice mail: null sender"
wait_grep 10 'notice to=<alice@example\.test> sent: 250' "$LAB_SPORKD_LOG" "notice mail: logged"
# Nothing to cut out (the virus is in a header): rejected, never passed.
start_sporkd "virus_action clean"
send_mail "$tmp/t-clean-hdr" bob@example.test a@client.example.test "$SRV_V4" "" \
	--header "X-Junk: $EICAR"
assert_grep '^<\*\* +550 5\.7\.1 Message rejected: virus found: Eicar' "$tmp/t-clean-hdr" "policy clean: no part to remove, rejected"
assert_grep 'clean failed name="Eicar-Test-Signature[^"]*": no infected part found' "$LAB_SPORKD_LOG" "policy clean: failure logged"

# Encrypted zip: the encryption flag set, nothing to decrypt.
python3 - "$tmp/secret.zip" <<'PY'
import sys, zipfile
zipfile.ZipFile(sys.argv[1], "w").writestr("secret.txt", "nothing to see\n" * 20)
b = bytearray(open(sys.argv[1], "rb").read())
for sig, off in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
    i = b.find(sig)
    b[i + off] |= 1
open(sys.argv[1], "wb").write(b)
PY
start_sporkd
send_mail "$tmp/t-enc" bob@example.test a@client.example.test "$SRV_V4" "" --attach "@$tmp/secret.zip"
assert_grep '^<\*\* +451 4\.7\.1 Message deferred: encrypted content cannot be scanned' "$tmp/t-enc" "encrypted archive: tempfail by default, never clean"
start_sporkd "encrypted_action reject"
send_mail "$tmp/t-enc2" bob@example.test a@client.example.test "$SRV_V4" "" --attach "@$tmp/secret.zip"
assert_grep '^<\*\* +550 5\.7\.1 Message rejected: encrypted content' "$tmp/t-enc2" "encrypted archive: reject when configured"
start_sporkd "scan_max_file_size 64k"
head -c 300000 /dev/urandom >"$tmp/blob.bin"
send_mail "$tmp/t-lim" bob@example.test a@client.example.test "$SRV_V4" "" --attach "@$tmp/blob.bin"
assert_grep '^<\*\* +451 4\.7\.1 Message deferred: exceeds scan limits' "$tmp/t-lim" "scan limits exceeded: tempfail by default, never clean"

# --- 6. clamd backend: two real clamd, one stopped mid-test
# (on ::1: the bridge namespace has no IPv4 address, and clamd's resolver
# asks for address families that are configured)
for n in 1 2; do
	mkdir -p "$tmp/clamd$n"
	cat >"$tmp/clamd$n/clamd.conf" <<EOF
TCPSocket $((3309 + n))
TCPAddr ::1
DatabaseDirectory $db
TemporaryDirectory $tmp/clamd$n
Foreground yes
LogFile $tmp/clamd$n/log
LogClean yes
User root
AlertEncryptedArchive yes
AlertExceedsMax yes
EOF
	ip netns exec "$NS_BR" clamd -c "$tmp/clamd$n/clamd.conf" >/dev/null 2>&1 &
	clamd_pids+=($!)
done
clamds_listening() { in_br ss -Hltn | grep -q ':3311 ' && in_br ss -Hltn | grep -q ':3310 '; }
wait_until 30 clamds_listening || fail "clamd: both listening" "$(tail -n 3 "$tmp"/clamd*/log 2>/dev/null)"
start_sporkd "scan_backend clamd" "clamd_servers [::1]:3310 [::1]:3311" "clamd_health_interval 1s"
for i in 1 2 3 4; do
	send_mail "$tmp/t-cd$i" bob@example.test a@client.example.test "$SRV_V4" "" --header "Subject: clamd $i"
	send_mail "$tmp/t-cv$i" bob@example.test a@client.example.test "$SRV_V4" "" --attach "@$tmp/eicar.com"
done
c=$(cat "$tmp"/t-cd[1-4] | grep -cE '^<- +250 2\.0\.0 Ok: queued')
v=$(cat "$tmp"/t-cv[1-4] | grep -cE '^<\*\* +550 5\.7\.1 .*Eicar')
[ "$c" -eq 4 ] && [ "$v" -eq 4 ] && pass "clamd: 4 clean delivered, 4 EICAR refused" || fail "clamd both up" "clean=$c virus=$v"
s1=$(grep -c 'stream' "$tmp/clamd1/log" 2>/dev/null)
s2=$(grep -c 'stream' "$tmp/clamd2/log" 2>/dev/null)
[ "${s1:-0}" -gt 0 ] && [ "${s2:-0}" -gt 0 ] && pass "clamd: scans spread over both servers ($s1 / $s2)" ||
	fail "clamd: scans spread over both" "$s1 / $s2"
kill "${clamd_pids[1]}"
wait "${clamd_pids[1]}" 2>/dev/null
for i in 5 6 7 8; do
	send_mail "$tmp/t-cd$i" bob@example.test a@client.example.test "$SRV_V4" "" --header "Subject: clamd $i"
	send_mail "$tmp/t-cv$i" bob@example.test a@client.example.test "$SRV_V4" "" --attach "@$tmp/eicar.com"
done
c=$(cat "$tmp"/t-cd[5-8] | grep -cE '^<- +250 2\.0\.0 Ok: queued')
v=$(cat "$tmp"/t-cv[5-8] | grep -cE '^<\*\* +550 5\.7\.1 .*Eicar')
[ "$c" -eq 4 ] && [ "$v" -eq 4 ] && pass "clamd: one stopped, still 4 clean delivered and 4 refused" ||
	fail "clamd one stopped" "clean=$c virus=$v"
ctl status >"$tmp/cstatus"
assert_grep '^clamd.server=\[::1\]:3311 state=down' "$tmp/cstatus" "clamd: the stopped server is shown down"
assert_grep 'X-Spork-Scanned: engine="clamd' "$(maildir_files bob | tail -n1)" "clamd: scan header names clamd"

# --- control_admin_group: its members may change things
start_sporkd "control_admin_group nogroup" "virus_action quarantine"
send_mail "$tmp/t-adm" bob@example.test "adm@client.example.test" "$SRV_V4" "" --attach "@$tmp/eicar.com"
qadm=$(ctl quarantine list | grep 'sender=<adm@client' | sed 's/ .*//' | tail -n1)
chmod 666 "$LAB_DIR/sporkd.sock"
as_nobody quarantine delete "$qadm" >"$tmp/ctl-adm" 2>&1
assert_grep '^ok deleted' "$tmp/ctl-adm" "control: a member of control_admin_group may delete"
summary
