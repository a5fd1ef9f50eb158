#!/bin/bash
# SPDX-License-Identifier: MIT
# Spam engines through the bridge, against the real Postfix:
# - rspamd from Debian (a private configuration, in the bridge namespace on
#   ::1): GTUBE rejected with 550 5.7.1 above spam_reject_score, a clean
#   message delivered with its score headers, a tagged one with
#   X-Spam-Flag, a quarantined one kept, failover past a dead server,
#   per-rule counters in sporkctl status, one log line per decision;
# - notice mails for spam decisions, one per message (the strongest);
# - rspamd stopped: spam_unavailable_action accept and tempfail, within
#   spam_timeout; an engine that accepts and never answers: the deadline;
# - SpamAssassin's spamd from Debian: GTUBE rejected, clean delivered.
set -u
. "$(dirname "$0")/lib.sh"
tmp=$(mktemp -d)
chmod 755 "$tmp"	# the engines run unprivileged
daemon_pids=()
cleanup() {
	local p
	for p in "${daemon_pids[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${daemon_pids[@]}"; do
		for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
	done
	lab_down
	rm -rf "$tmp"
}
trap cleanup EXIT
lab_up

GTUBE='XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X'
printf 'This is a test message.\n\n%s\n' "$GTUBE" >"$tmp/gtube.txt"
printf 'Nothing to see here: the minutes of the last meeting.\n' >"$tmp/clean.txt"

# listening PORT: something listens on PORT in the bridge namespace.
listening() { in_br ss -Hltn "sport = :$1" | grep -q .; }

# wait_port PORT SECONDS
wait_port() {
	local deadline=$((SECONDS + $2))
	until listening "$1"; do
		[ "$SECONDS" -lt "$deadline" ] || return 1
		sleep 0.1
	done
}

# --- rspamd: a private configuration, nothing of the system instance.
# No Lua rule set but two test rules on the Subject; GTUBE is built in and
# scores the reject action's threshold (20 here, above spam_reject_score).
# A one-line TLD list spares the 20-second compilation of the public one.
rs=$tmp/rspamd
mkdir -p "$rs/db"
printf 'test\nexample\n' >"$rs/tld.dat"
cat >"$rs/rules.lua" <<'EOF'
local function subject_has(word)
  return function(task)
    local s = task:get_subject()
    return s ~= nil and s:find(word, 1, true) ~= nil
  end
end
rspamd_config:register_symbol({ name = 'SPORK_TEST_TAG', score = 7.0,
  group = 'spork', callback = subject_has('spork-tag-test') })
rspamd_config:register_symbol({ name = 'SPORK_TEST_QUARANTINE', score = 12.0,
  group = 'spork', callback = subject_has('spork-quarantine-test') })
EOF
cat >"$rs/rspamd.conf" <<EOF
options {
  pidfile = "$rs/rspamd.pid";
  dbdir = "$rs/db";
  url_tld = "$rs/tld.dat";
  local_addrs = [];
  dns { nameserver = ["[::1]:53"]; timeout = 1s; retransmits = 1; }
}
logging { type = "file"; filename = "$rs/rspamd.log"; level = "info"; }
actions { reject = 20; add_header = 6; greylist = 4; }
worker "normal" { bind_socket = "[::1]:11333"; count = 1; }
lua = "$rs/rules.lua";
EOF
chown -R _rspamd: "$rs"
rspamd_pid=
start_rspamd() {
	ip netns exec "$NS_BR" rspamd -f -u _rspamd -g _rspamd -c "$rs/rspamd.conf" \
		>>"$rs/stdout" 2>&1 &
	rspamd_pid=$!
	daemon_pids+=("$rspamd_pid")
	wait_port 11333 30
}
stop_rspamd() {
	kill "$rspamd_pid" 2>/dev/null
	for _ in $(seq 100); do listening 11333 || break; sleep 0.1; done
	wait "$rspamd_pid" 2>/dev/null
}
if start_rspamd; then pass "rspamd listening in $NS_BR on [::1]:11333"
else fail "rspamd start" "$(tail -n 5 "$rs/rspamd.log" 2>/dev/null)"; fi

start_sporkd() {
	{
		cat "$LAB_DIR/spork.conf"
		printf '%s\n' "$@"
	} >"$tmp/run.conf"
	lab start-sporkd "$tmp/run.conf" 2>/dev/null || { fail "sporkd start" "$*"; return 1; }
}
# A dead address first: the first message fails over to the live one.
start_sporkd "spam_engine rspamd" "spam_servers [::1]:11339 [::1]:11333" \
	"spam_timeout 3s" "spam_tag_score 5" "spam_quarantine_score 10" \
	"spam_reject_score 15"

# --- 1. clean: delivered with its score
b0=$(maildir_count bob)
send_mail "$tmp/t-clean" bob@example.test a@client.example.test "$SRV_V4" "$tmp/clean.txt" \
	--header "Subject: minutes"
assert_grep '^<- +250 2\.0\.0 Ok: queued' "$tmp/t-clean" "rspamd clean: 250 from the server"
check "rspamd clean: delivered" wait_delivered bob $((b0 + 1)) 10
f=$(maildir_files bob | tail -n1)
assert_grep '^X-Spam-Score: 0\.00$' "$f" "rspamd clean: X-Spam-Score header"
assert_grep '^X-Spam-Status: No, score=0\.00 required=5\.00 engine=rspamd tests=none$' "$f" "rspamd clean: X-Spam-Status header"
assert_no_grep '^X-Spam-Flag' "$f" "rspamd clean: not flagged"
assert_grep '^X-Spork-Scanned: ' "$f" "rspamd clean: the virus scan header kept"
assert_grep 'spam score=0\.00 engine="rspamd \[::1\]:11333" action=deliver ms=[0-9]+ ' "$LAB_SPORKD_LOG" "rspamd clean: one log line with score, engine, action, ms"
assert_grep 'spam check job=1 server=\[::1\]:11339 error=.*action=failover' "$LAB_SPORKD_LOG" "rspamd: a dead server is failed over"

# --- 2. GTUBE: above the reject threshold
b0=$(maildir_count bob)
send_mail "$tmp/t-gtube" bob@example.test a@client.example.test "$SRV_V4" "$tmp/gtube.txt" \
	--header "Subject: gtube"
assert_grep '^<\*\* +550 5\.7\.1 Message rejected as spam \(Gtube pattern\)' "$tmp/t-gtube" "rspamd GTUBE: 550 5.7.1 with the reason"
assert_grep 'spam score=20\.00 engine="rspamd \[::1\]:11333" action=reject .*symbols="GTUBE"' "$LAB_SPORKD_LOG" "rspamd GTUBE: scored 20 > 15, logged as reject"
assert_grep 'verdict=spam score=20\.00 reply="550 5\.7\.1' "$LAB_SPORKD_LOG" "rspamd GTUBE: message line"
sleep 0.5
[ "$(maildir_count bob)" -eq "$b0" ] && pass "rspamd GTUBE: not delivered" || fail "rspamd GTUBE: not delivered"
# The session goes on after the rejection.
assert_grep '^ -> QUIT' "$tmp/t-gtube" "rspamd GTUBE: the session went on to QUIT"

# --- 3. tag
b0=$(maildir_count bob)
send_mail "$tmp/t-tag" bob@example.test a@client.example.test "$SRV_V4" "$tmp/clean.txt" \
	--header "Subject: spork-tag-test"
assert_grep '^<- +250 2\.0\.0 Ok: queued' "$tmp/t-tag" "rspamd tag: delivered"
check "rspamd tag: arrived" wait_delivered bob $((b0 + 1)) 10
f=$(maildir_files bob | tail -n1)
assert_grep '^X-Spam-Flag: YES$' "$f" "rspamd tag: X-Spam-Flag"
assert_grep '^X-Spam-Status: Yes, score=7\.00 required=5\.00 engine=rspamd tests=SPORK_TEST_TAG$' "$f" "rspamd tag: X-Spam-Status names the symbol"
assert_grep '^Subject: spork-tag-test$' "$f" "rspamd tag: the message itself untouched"

# --- 4. quarantine (then reject, the default)
send_mail "$tmp/t-q" bob@example.test a@client.example.test "$SRV_V4" "$tmp/clean.txt" \
	--header "Subject: spork-quarantine-test"
assert_grep '^<\*\* +550 5\.7\.1 Message rejected as spam' "$tmp/t-q" "rspamd quarantine: rejected after the copy"
ctl quarantine list >"$tmp/qlist"
assert_grep 'verdict=spam name=score=12\.00$' "$tmp/qlist" "rspamd quarantine: kept, with its score"

# --- 5. counters
ctl status >"$tmp/status"
assert_grep '^spam\.engine=rspamd .*spam\.failovers=1 ' "$tmp/status" "status: engine and failovers"
assert_grep '^spam\.rule\.ham=1 spam\.rule\.tag=1 spam\.rule\.quarantine=1 spam\.rule\.reject=1 spam\.rule\.unavailable_accept=0 spam\.rule\.unavailable_tempfail=0 spam\.rule\.skipped=0$' "$tmp/status" "status: per-rule counters"
assert_grep '^spam\.server=\[::1\]:11339 state=down ' "$tmp/status" "status: the dead server is down"
assert_grep '^spam\.server=\[::1\]:11333 state=up checks=4 ' "$tmp/status" "status: the live server scored 4"

# --- 5b. a large message streams to the engine in chunks; one over
# spam_max_size is not sent and says so
python3 -c '
import base64, random, sys
random.seed(25)
sys.stdout.write(base64.encodebytes(random.randbytes(1100 * 1024)).decode())
' >"$tmp/big.txt"
b0=$(maildir_count bob)
send_mail "$tmp/t-big" bob@example.test a@client.example.test "$SRV_V4" "$tmp/big.txt" \
	--header "Subject: spork-tag-test big"
assert_grep '^<- +250 2\.0\.0 Ok: queued' "$tmp/t-big" "rspamd 1.5 MB message: delivered"
check "rspamd 1.5 MB message: arrived" wait_delivered bob $((b0 + 1)) 10
f=$(maildir_files bob | tail -n1)
assert_grep '^X-Spam-Status: Yes, score=7\.00 .*tests=SPORK_TEST_TAG$' "$f" "rspamd 1.5 MB message: scored whole"
start_sporkd "spam_engine rspamd" "spam_servers [::1]:11333" "spam_max_size 1m"
b0=$(maildir_count bob)
send_mail "$tmp/t-big2" bob@example.test a@client.example.test "$SRV_V4" "$tmp/big.txt" \
	--header "Subject: spork-tag-test big"
assert_grep '^<- +250 2\.0\.0 Ok: queued' "$tmp/t-big2" "over spam_max_size: delivered"
check "over spam_max_size: arrived" wait_delivered bob $((b0 + 1)) 10
f=$(maildir_files bob | tail -n1)
assert_grep '^X-Spam-Status: Unknown, not checked \([0-9]+ bytes, over 1048576\)$' "$f" "over spam_max_size: marked unchecked"
assert_no_grep '^X-Spam-Flag' "$f" "over spam_max_size: not flagged"
assert_grep 'spam score=none action=deliver reason=size ' "$LAB_SPORKD_LOG" "over spam_max_size: logged"
ctl status >"$tmp/status1"
assert_grep 'spam\.rule\.skipped=1$' "$tmp/status1" "status: the skip counted"

# --- 5c. notices: the score and the engine; one per message, about the
# strongest decision, when the virus policy tagged the message too
EICAR='X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*'
printf '%s' "$EICAR" >"$tmp/eicar.com"
start_sporkd "spam_engine rspamd" "spam_servers [::1]:11333" "spam_timeout 3s" \
	"spam_tag_score 5" "spam_quarantine_score 10" "spam_reject_score 15" \
	"virus_action tag" "notice_to alice@example.test" "notice_actions reject quarantine tag"
a0=$(maildir_count alice)
send_mail "$tmp/t-ntag" bob@example.test a@client.example.test "$SRV_V4" "$tmp/clean.txt" \
	--header "Subject: spork-tag-test notice"
assert_grep '^<- +250 2\.0\.0 Ok: queued' "$tmp/t-ntag" "spam tag notice: the message delivered"
check "spam tag notice: arrived" wait_delivered alice $((a0 + 1)) 10
f=$(maildir_files alice | tail -n1)
assert_grep '^Subject: \[spork\] tag: score 7\.00$' "$f" "spam tag notice: names action and score"
assert_grep "^A message was handled by spork's spam policy\.$" "$f" "spam tag notice: names the spam policy"
assert_grep '^Detail:     engine rspamd \[::1\]:11333, required [0-9.]+, symbols SPORK_TEST_TAG$' "$f" \
	"spam tag notice: names the engine and the symbols"
assert_grep '^Subject:    spork-tag-test notice$' "$f" "spam tag notice: names the message"
send_mail "$tmp/t-nboth" bob@example.test a@client.example.test "$SRV_V4" "$tmp/gtube.txt" \
	--header "Subject: gtube with a virus" --attach "@$tmp/eicar.com"
assert_grep '^<\*\* +550 5\.7\.1 Message rejected as spam' "$tmp/t-nboth" "virus tagged, then spam: rejected"
assert_grep 'scan verdict=virus name="Eicar-Test-Signature[^"]*" action=tag ' "$LAB_SPORKD_LOG" "virus tagged, then spam: the virus tagged first"
check "virus tagged, then spam: a notice" wait_delivered alice $((a0 + 2)) 10
f=$(maildir_files alice | tail -n1)
assert_grep '^Subject: \[spork\] reject: score 20\.00$' "$f" "virus tagged, then spam: the notice is about the rejection"
assert_grep '^Detail:     engine rspamd \[::1\]:11333, .*symbols .*GTUBE' "$f" "virus tagged, then spam: GTUBE named"
sleep 1
[ "$(maildir_count alice)" -eq $((a0 + 2)) ] && pass "virus tagged, then spam: one notice per message" ||
	fail "virus tagged, then spam: one notice per message" "$(($(maildir_count alice) - a0)) notices for 2 messages"
assert_grep 'notice to=<alice@example\.test> sent: 250' "$LAB_SPORKD_LOG" "spam notices: logged"
start_sporkd "spam_engine rspamd" "spam_servers [::1]:11339 [::1]:11333" \
	"spam_timeout 3s"

# --- 6. rspamd stopped: accept, within the deadline
stop_rspamd
listening 11333 && fail "rspamd stopped" || pass "rspamd stopped"
b0=$(maildir_count bob)
t0=$(date +%s%N)
send_mail "$tmp/t-down" bob@example.test a@client.example.test "$SRV_V4" "$tmp/clean.txt" \
	--header "Subject: engine down"
ms=$((($(date +%s%N) - t0) / 1000000))
assert_grep '^<- +250 2\.0\.0 Ok: queued' "$tmp/t-down" "rspamd down, accept: delivered"
[ "$ms" -lt 4000 ] && pass "rspamd down, accept: answered in $ms ms (spam_timeout 3s)" ||
	fail "rspamd down, accept: in time" "$ms ms"
check "rspamd down, accept: arrived" wait_delivered bob $((b0 + 1)) 10
f=$(maildir_files bob | tail -n1)
assert_grep '^X-Spam-Status: Unknown, engine=rspamd unavailable$' "$f" "rspamd down, accept: marked unchecked"
assert_grep 'spam score=none engine="rspamd" action=deliver ms=[0-9]+ error="' "$LAB_SPORKD_LOG" "rspamd down, accept: logged"

start_sporkd "spam_engine rspamd" "spam_servers [::1]:11333" "spam_timeout 3s" \
	"spam_unavailable_action tempfail"
send_mail "$tmp/t-down2" bob@example.test a@client.example.test "$SRV_V4" "$tmp/clean.txt" \
	--header "Subject: engine down"
assert_grep '^<\*\* +451 4\.7\.1 Message deferred: spam check unavailable' "$tmp/t-down2" "rspamd down, tempfail: 451 4.7.1"
assert_grep 'spam score=none engine="rspamd" action=tempfail ms=[0-9]+ error="' "$LAB_SPORKD_LOG" "rspamd down, tempfail: logged"
ctl status >"$tmp/status2"
assert_grep 'spam\.rule\.unavailable_tempfail=1 ' "$tmp/status2" "status: the tempfail counted"

# --- 7. an engine that takes the connection and never answers
in_br python3 -c '
import socket, time
s = socket.socket(socket.AF_INET6)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("::1", 11333)); s.listen(16)
conns = []
while True:
    c, _ = s.accept(); conns.append(c)
' &
daemon_pids+=($!)
wait_port 11333 30 || fail "silent engine listening" "not after 30 s"
t0=$(date +%s%N)
send_mail "$tmp/t-slow" bob@example.test a@client.example.test "$SRV_V4" "$tmp/clean.txt" \
	--header "Subject: engine slow"
ms=$((($(date +%s%N) - t0) / 1000000))
assert_grep '^<\*\* +451 4\.7\.1 Message deferred: spam check unavailable' "$tmp/t-slow" "engine silent: 451 4.7.1"
[ "$ms" -ge 2900 ] && [ "$ms" -lt 5000 ] && pass "engine silent: answered at the 3 s deadline ($ms ms)" ||
	fail "engine silent: deadline" "$ms ms"
assert_grep 'error="no answer within 3000 ms' "$LAB_SPORKD_LOG" "engine silent: the deadline logged"
kill "${daemon_pids[-1]}" 2>/dev/null

# --- 8. SpamAssassin's spamd (on 127.0.0.1: spamd looks up the peer's
# name, and only IPv4 loopback has one in /etc/hosts)
sa=$tmp/sa
mkdir -p "$sa"
cp /etc/spamassassin/*.pre "$sa/"
printf 'required_score 5.0\nuse_bayes 0\nskip_rbl_checks 1\n' >"$sa/local.cf"
chmod -R a+rX "$sa"
ip netns exec "$NS_BR" spamd -L -x -u nobody -H "$sa" --siteconfigpath="$sa" \
	-i 127.0.0.1:7830 -A 127.0.0.1 -m 2 -s stderr -r "$sa/spamd.pid" \
	>"$sa/log" 2>&1 &
daemon_pids+=($!)
if wait_port 7830 60; then pass "spamd listening in $NS_BR on 127.0.0.1:7830"
else fail "spamd start" "$(tail -n 5 "$sa/log")"; fi
start_sporkd "spam_engine spamd" "spam_servers 127.0.0.1:7830" "spam_timeout 30s"
send_mail "$tmp/t-sa-gtube" bob@example.test a@client.example.test "$SRV_V4" "$tmp/gtube.txt" \
	--header "Subject: gtube"
assert_grep '^<\*\* +550 5\.7\.1 Message rejected as spam' "$tmp/t-sa-gtube" "spamd GTUBE: 550 5.7.1"
assert_grep 'spam score=1000\.00 engine="spamd 127\.0\.0\.1:7830" action=reject .*symbols="[^"]*GTUBE' "$LAB_SPORKD_LOG" "spamd GTUBE: scored 1000, logged"
b0=$(maildir_count bob)
send_mail "$tmp/t-sa-clean" bob@example.test a@client.example.test "$SRV_V4" "$tmp/clean.txt" \
	--header "Subject: minutes"
assert_grep '^<- +250 2\.0\.0 Ok: queued' "$tmp/t-sa-clean" "spamd clean: delivered"
check "spamd clean: arrived" wait_delivered bob $((b0 + 1)) 10
f=$(maildir_files bob | tail -n1)
assert_grep '^X-Spam-Status: No, score=-?[0-9]+\.[0-9][0-9] required=5\.00 engine=spamd tests=' "$f" "spamd clean: X-Spam-Status header"
summary
