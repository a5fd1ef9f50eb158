#!/bin/bash
# SPDX-License-Identifier: MIT
# Pre-queue checks through the bridge, with a real DNS server (unbound, on
# 127.0.0.1 in the bridge namespace where sporkd runs) serving a test DNS
# block list, an allow list and SPF records:
# - a listed client gets 554 at connect or at RCPT as configured, over
#   IPv4 and IPv6; a tag list delivers with X-Spork-DNSBL; an allow list
#   skips the block list; inside networks are exempt;
# - SPF fail is refused by policy, pass is delivered with Received-SPF; a
#   RCPT pipelined behind a nested MAIL is judged against the sender the
#   server holds;
# - an early talker is refused with 554;
# - greylisting answers 450 and a real sending Postfix's retry is accepted,
#   the message arrives exactly once; the state survives a restart;
# - Redis-backed greylisting (redis-server on loopback) does the same;
# - every decision is counted in sporkctl status and logged.
set -u
. "$(dirname "$0")/lib.sh"
tmp=$(mktemp -d)
chmod 755 "$tmp"
unbound_pid=
slowdns_pid=
nested_pid=
redis_pid=
cleanup() {
	[ -n "$unbound_pid" ] && kill "$unbound_pid" 2>/dev/null
	[ -n "$slowdns_pid" ] && kill "$slowdns_pid" 2>/dev/null
	[ -n "$nested_pid" ] && kill "$nested_pid" 2>/dev/null
	[ -n "$redis_pid" ] && kill "$redis_pid" 2>/dev/null
	lab_down
	rm -rf "$tmp"
}
trap cleanup EXIT
lab_up
CHAT=$SPORK_REPO/tests/tools/smtpchat

# --- the DNS server
nib6=$(python3 -c 'import ipaddress; print(ipaddress.ip_address("fd25::1").reverse_pointer[:-len(".ip6.arpa")])')
cat >"$tmp/unbound.conf" <<EOF
server:
	interface: 127.0.0.1
	port: 53
	do-ip6: no
	do-daemonize: no
	username: ""
	chroot: ""
	directory: "$tmp"
	pidfile: ""
	use-syslog: no
	logfile: ""
	verbosity: 1
	access-control: 127.0.0.0/8 allow
	module-config: "iterator"
	local-zone: "." static
	local-data: "1.0.25.10.bl.test. A 127.0.0.2"
	local-data: "$nib6.bl.test. A 127.0.0.2"
	local-data: "1.0.25.10.wl.test. A 127.0.0.5"
	local-data: "1.0.25.10.quiet.test. A 127.255.255.254"
	local-data: 'pass.test. TXT "v=spf1 ip4:10.25.0.0/24 ip6:fd25::/64 -all"'
	local-data: 'fail.test. TXT "v=spf1 ip4:192.0.2.1 -all"'
	local-data: 'soft.test. TXT "v=spf1 ~all"'
remote-control:
	control-enable: no
EOF
ip netns exec "$NS_BR" unbound -d -c "$tmp/unbound.conf" >"$tmp/unbound.log" 2>&1 &
unbound_pid=$!
dns_up() { in_br ss -Hlun 'sport = :53' | grep -q 127.0.0.1; }
if ! wait_until 10 dns_up; then
	fail "unbound up" "$(tail -n 5 "$tmp/unbound.log")"
	summary
	exit 1
fi

# start_sporkd LINES...: the lab's config, the lab's DNS, extra lines.
start_sporkd() {
	{
		cat "$LAB_DIR/spork.conf"
		echo "dns_servers 127.0.0.1:53"
		printf '%s\n' "$@"
	} >"$tmp/run.conf"
	lab start-sporkd "$tmp/run.conf" 2>/dev/null || { fail "sporkd start" "$*"; return 1; }
}
# delivered SUBJECT: how many copies arrived
delivered() { grep -l "^Subject: $1\$" "$LAB_MAIL"/*/new/* 2>/dev/null | wc -l; }
delivered_file() { grep -l "^Subject: $1\$" "$LAB_MAIL"/*/new/* 2>/dev/null | head -n1; }
has_subject() { [ "$(delivered "$1")" -ge 1 ]; }
wait_subject() { wait_until "${2:-10}" has_subject "$1"; }
log_has() { grep -Eq -- "$1" "$LAB_SPORKD_LOG"; }
send() {	# send OUT_AND_SUBJECT FROM [SERVER [swaks args]]
	local subj=$1 from=$2 server=${3:-$SRV_V4}
	if [ $# -ge 3 ]; then shift 3; else shift $#; fi
	send_mail "$tmp/$subj" alice@example.test "$from" "$server" "" \
		--header "Subject: $subj" "$@"
}
status_value() { ctl status | sed -n "s/^$1=//p"; }

# --- 1. DNS block list at connect: 554 instead of the banner, v4 and v6
start_sporkd "dnsbl_zones bl.test:connect"
send bl-connect a@client.example.test
assert_grep '^<\*\* +554 5\.7\.1 Service unavailable; client \[10\.25\.0\.1\] blocked using bl\.test' \
	"$tmp/bl-connect" "dnsbl connect: 554 instead of the banner (IPv4)"
send bl-connect6 a@client.example.test "$SRV_V6"
assert_grep '^<\*\* +554 5\.7\.1 Service unavailable; client \[fd25::1\] blocked using bl\.test' \
	"$tmp/bl-connect6" "dnsbl connect: 554 instead of the banner (IPv6, nibble name)"
assert_no_grep '^<- +220 ' "$tmp/bl-connect" "dnsbl connect: the server's banner never reached the client"
check "dnsbl connect: logged with the session id" log_has '^.*[0-9a-f]{8} prequeue check=dnsbl zone=bl\.test client=10\.25\.0\.1 result=listed answer=127\.0\.0\.2 action=reject-connect'
[ "$(status_value prequeue.dnsbl.bl.test.rejected)" = 2 ] && pass "dnsbl connect: counted in sporkctl status" ||
	fail "dnsbl counter" "$(ctl status | grep prequeue)"
[ "$(delivered bl-connect)" = 0 ] && pass "dnsbl connect: nothing delivered" || fail "dnsbl connect delivered" ""

# --- 2. at RCPT, tagging, allow list, a list saying "do not ask", inside
start_sporkd "dnsbl_zones bl.test:rcpt"
send bl-rcpt a@client.example.test
assert_grep '^<- +220 ' "$tmp/bl-rcpt" "dnsbl rcpt: the banner is relayed"
assert_grep '^<\*\* +554 5\.7\.1 <alice@example\.test>: Service unavailable; client \[10\.25\.0\.1\] blocked using bl\.test' \
	"$tmp/bl-rcpt" "dnsbl rcpt: 554 at RCPT"
start_sporkd "dnsbl_zones bl.test:tag quiet.test:connect"
send bl-tag a@client.example.test
wait_subject bl-tag
assert_grep '^X-Spork-DNSBL: bl\.test listed \(127\.0\.0\.2\) client=10\.25\.0\.1' "$(delivered_file bl-tag)" \
	"dnsbl tag: delivered with X-Spork-DNSBL"
[ "$(status_value prequeue.dnsbl.quiet.test.listed)" = 0 ] && pass "dnsbl: 127.255.255.x answers do not list" ||
	fail "127.255.255.x" "$(ctl status | grep quiet)"
start_sporkd "dnsbl_zones bl.test:connect" "dnswl_zones wl.test"
send wl a@client.example.test
wait_subject wl && pass "dnswl: a listed client skips the block list and is delivered" ||
	fail "dnswl" "$(grep -E '^<' "$tmp/wl" | tail -n 2)"
check "dnswl: logged" log_has 'prequeue check=dnswl zone=wl\.test client=10\.25\.0\.1 result=listed answer=127\.0\.0\.5 action=skip-checks'
start_sporkd "dnsbl_zones bl.test:connect" "inside_networks 10.25.0.0/24"
send inside a@client.example.test
wait_subject inside && pass "inside networks: outbound mail is exempt from inbound checks" ||
	fail "inside exempt" "$(grep -E '^<' "$tmp/inside" | tail -n 2)"
[ "$(status_value prequeue.sessions.exempt)" = 1 ] && pass "inside networks: counted as exempt" ||
	fail "exempt counter" "$(ctl status | grep sessions)"
start_sporkd "dnsbl_zones bl.test:connect" "inside_networks 10.25.0.0/24" "prequeue_apply both"
send inside-both a@client.example.test
assert_grep '^<\*\* +554 5\.7\.1 ' "$tmp/inside-both" "prequeue_apply both: inside clients checked too"

# --- 3. SPF
start_sporkd "spf_enable yes" "spf_fail_action reject" "spf_softfail_action tag"
send spf-fail a@fail.test
assert_grep '^<\*\* +550 5\.7\.23 <alice@example\.test>: Recipient address rejected: SPF fail' \
	"$tmp/spf-fail" "spf fail: refused at RCPT by policy"
send spf-pass a@pass.test
send spf-soft a@soft.test
send spf-pass6 a@pass.test "$SRV_V6"
wait_subject spf-pass
wait_subject spf-soft
wait_subject spf-pass6
assert_grep '^Received-SPF: pass .*client-ip=10\.25\.0\.1' "$(delivered_file spf-pass)" \
	"spf pass: delivered with Received-SPF: pass"
assert_grep '^Received-SPF: softfail ' "$(delivered_file spf-soft)" \
	"spf softfail (tag): delivered with Received-SPF: softfail"
assert_grep '^Received-SPF: pass .*client-ip=fd25::1' "$(delivered_file spf-pass6)" "spf pass over IPv6"
[ "$(delivered spf-fail)" = 0 ] && pass "spf fail: nothing delivered" || fail "spf fail delivered" ""
check "spf: each decision logged" log_has 'prequeue check=spf client=10\.25\.0\.1 sender="a@fail\.test" rcpt="alice@example\.test" result=fail action=reject'
[ "$(status_value prequeue.spf.fail)" = 1 ] && [ "$(status_value prequeue.spf.pass)" = 2 ] &&
	[ "$(status_value prequeue.spf.rejected)" = 1 ] && pass "spf: counted per result" ||
	fail "spf counters" "$(ctl status | grep spf)"
# A nested MAIL the server refuses (503) changes nothing: the message is
# from the first sender, and its Received-SPF says so.
# nested_chat FIRST NESTED SUBJECT OUT: a message from FIRST to alice with
# a MAIL FROM:<NESTED> between its RCPT and DATA, which Postfix refuses.
nested_chat() {
	in_cli "$SPORK_REPO/tests/tools/smtpchat" "$SRV_V4" 25 >"$4" 2>&1 <<CHAT
expect 220
line EHLO client.example.test
expect 250
line MAIL FROM:<$1>
expect 250
line RCPT TO:<alice@example.test>
expect 250
line MAIL FROM:<$2>
expect 503
line DATA
expect 354
send Subject: $3\\r\\n\\r\\nbody\\r\\n.\\r\\n
expect 250
line QUIT
expect 221
CHAT
}
nested_chat a@soft.test a@pass.test spf-nested "$tmp/spf-nested.out"
[ $? -eq 0 ] && pass "spf nested MAIL: the server's 503, the message accepted" ||
	fail "spf nested MAIL" "$(tail -n 3 "$tmp/spf-nested.out")"
wait_subject spf-nested
assert_grep '^Received-SPF: softfail .*envelope-from=.?a@soft\.test' "$(delivered_file spf-nested)" \
	"spf nested MAIL: Received-SPF describes the sender the server accepted"
assert_no_grep 'pass\.test' "$(delivered_file spf-nested)" "spf nested MAIL: the refused sender appears nowhere"
# A helper killed: the spawner logs and replaces it, the relay notices the
# socket close, and the next check still gets a real answer.
spawner=$(sed -n 's/.*spf spawner pid=\([0-9]*\) .*/\1/p' "$LAB_SPORKD_LOG" | tail -n1)
helpers() { pgrep -P "$spawner" | sort; }
helpers_n() { [ "$(helpers | wc -l)" = "$1" ]; }
wait_until 15 helpers_n 2 && pass "spf: the spawner runs spf_helpers (2) helpers" ||
	fail "spf helpers" "spawner=$spawner helpers=$(helpers | tr '\n' ' ')"
victim=$(helpers | head -n1)
[ "$(cat "/proc/$victim/comm" 2>/dev/null)" = sporkd-spf ] || fail "spf helper found" "pid=$victim"
check "spf helper: logged ready" log_has "spf helper pid=$victim ready"
before=$(helpers)
kill -9 "$victim"
respawned() { helpers_n 2 && ! helpers | grep -qx "$victim"; }
wait_until 15 respawned && pass "spf: a killed helper is replaced" ||
	fail "spf respawn" "helpers=$(helpers | tr '\n' ' ')"
# Two other processes: each logs it in its own time.
check "spf: the relay logs the helper's death" wait_until 10 log_has "spf helper pid=$victim gone \\(closed\\)"
check "spf: the spawner logs the death and the respawn" wait_until 10 log_has "spf helper pid=$victim killed signal=9: respawning"
fresh=$(comm -13 <(printf '%s\n' "$before") <(helpers))
fresh_logged() { [ -n "$fresh" ] && log_has "spf helper pid=$fresh ready"; }
wait_until 15 fresh_logged && pass "spf: the new helper is logged ready" ||
	fail "spf new helper logged" "fresh=$fresh $(grep 'spf helper' "$LAB_SPORKD_LOG" | tail -n 4)"
send spf-respawn a@pass.test
wait_subject spf-respawn
assert_grep '^Received-SPF: pass .*client-ip=10\.25\.0\.1' "$(delivered_file spf-respawn)" \
	"spf after a helper's death: a real result (pass)"
# The nested MAIL's refusal starts the check of the sender that stands
# again; the message must wait for it. One helper, held by the refused
# sender's lookup (its DNS answers after 1.5 s), keeps that check out when
# DATA comes: the 354, and so the body, wait for it.
ip netns exec "$NS_BR" "$SPORK_REPO/tests/tools/slowdns" 127.0.0.2 53 \
	'soft.test=v=spf1 ~all' 'slow.test@1.5=v=spf1 -all' >"$tmp/slowdns.log" 2>&1 &
slowdns_pid=$!
slowdns_up() { in_br ss -Hlun 'sport = :53' | grep -q 127.0.0.2; }
wait_until 10 slowdns_up || fail "slow DNS up" "$(tail -n 5 "$tmp/slowdns.log")"
start_sporkd "spf_enable yes" "spf_softfail_action tag" "spf_helpers 1" \
	"dns_servers 127.0.0.2:53"
nested_chat a@soft.test b@slow.test spf-nested-slow "$tmp/spf-slow.out"
[ $? -eq 0 ] && pass "spf nested MAIL, check restarted late: the message accepted" ||
	fail "spf nested MAIL, slow" "$(tail -n 3 "$tmp/spf-slow.out")"
check "spf nested MAIL, slow: the refused sender's lookup was held" grep -q ' slow\.test type=16 ' "$tmp/slowdns.log"
wait_subject spf-nested-slow
assert_grep '^Received-SPF: softfail .*envelope-from=.?a@soft\.test' "$(delivered_file spf-nested-slow)" \
	"spf nested MAIL, slow: the message waited for the restarted check (Received-SPF)"
assert_no_grep 'slow\.test' "$(delivered_file spf-nested-slow)" "spf nested MAIL, slow: the refused sender appears nowhere"
kill "$slowdns_pid"
wait "$slowdns_pid" 2>/dev/null
slowdns_pid=
# A RCPT pipelined behind a nested MAIL goes with the sender the server
# holds, known only from its answer to that MAIL. A fake server holds its
# 503 for 1.5 s, long after the refused sender's check (its DNS answers at
# once) is done: a RCPT judged against that check would get its SPF
# refusal (first session), or pass when the sender that stands fails
# (second). The RCPT must wait for the 503, then be judged against the
# first sender.
lab stop-postfix 2>/dev/null
cat >"$tmp/nested.py" <<'PY3'
import select, socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], 25)); s.listen(2); s.settimeout(30)
log = open(sys.argv[2], "w")
def session(c):
    buf, sender = b"", None
    c.sendall(b"220 nested.example.test ESMTP\r\n")
    while True:
        while b"\r\n" not in buf:
            d = c.recv(4096)
            if not d:
                return
            buf += d
        line, buf = buf.split(b"\r\n", 1)
        log.write(line.decode("latin-1") + "\n"); log.flush()
        v = line[:4].upper()
        if v == b"EHLO":
            c.sendall(b"250-nested.example.test\r\n250 PIPELINING\r\n")
        elif v == b"MAIL" and sender is None:
            sender = line
            c.sendall(b"250 2.1.0 Ok\r\n")
        elif v == b"MAIL":
            time.sleep(1.5)
            early = buf or select.select([c], [], [], 0)[0]
            log.write("503 sent, next command %s\n" %
                      ("already in" if early else "not yet in")); log.flush()
            c.sendall(b"503 5.5.1 Error: nested MAIL command\r\n")
        elif v == b"RCPT":
            c.sendall(b"250 2.1.5 Ok\r\n" if sender else
                      b"503 5.5.1 Error: need MAIL command\r\n")
        elif v == b"QUIT":
            c.sendall(b"221 2.0.0 Bye\r\n")
            return
        else:
            c.sendall(b"250 2.0.0 Ok\r\n")
for _ in range(2):
    c, _ = s.accept()
    c.settimeout(20)
    try:
        session(c)
    except (socket.timeout, ConnectionError):
        pass
    c.close()
PY3
in_srv python3 "$tmp/nested.py" "$SRV_V4" "$tmp/nested.got" &
nested_pid=$!
nested_up() { in_srv ss -Hltn "sport = :25" | grep -q .; }
wait_until 10 nested_up || fail "spf nested MAIL, pipelined RCPT: the fake server listening" "not after 10 s"
start_sporkd "spf_enable yes" "spf_fail_action reject" "spf_softfail_action tag"
# pipelined_chat FIRST FIRST_REPLY NESTED LAST_REPLY OUT: MAIL FROM FIRST and
# a RCPT answered FIRST_REPLY, then MAIL FROM NESTED and a RCPT pipelined,
# the fake server's 503 to the MAIL, and LAST_REPLY to the RCPT.
pipelined_chat() {
	in_cli "$CHAT" "$SRV_V4" 25 20 >"$5" 2>&1 <<CHAT
expect 220
line EHLO client.example.test
expect 250
line MAIL FROM:<$1>
expect 250
line RCPT TO:<alice@example.test>
expect $2
send MAIL FROM:<$3>\\r\\nRCPT TO:<bob@example.test>\\r\\n
expect 503
expect $4
line QUIT
expect 221
CHAT
}
pipelined_chat a@pass.test 250 b@fail.test "250 2.1.5" "$tmp/spf-nested-rcpt.out"
[ $? -eq 0 ] && pass "spf nested MAIL, pipelined RCPT: the server's 250, not the refused sender's SPF fail" ||
	fail "spf nested MAIL, pipelined RCPT" "$(grep '^<' "$tmp/spf-nested-rcpt.out" | tail -n 2 | tr '\n' '|')"
check "spf nested MAIL, pipelined RCPT: the refused sender's check was done before the 503" \
	log_has 'prequeue check=spf client=10\.25\.0\.1 sender="b@fail\.test" result=fail action=reject'
assert_no_grep 'sender="b@fail\.test" rcpt=' "$LAB_SPORKD_LOG" \
	"spf nested MAIL, pipelined RCPT: no decision against the refused sender"
pipelined_chat a@fail.test "550 5.7.23" b@pass.test "550 5.7.23 <bob@example.test>" \
	"$tmp/spf-nested-rcpt2.out"
[ $? -eq 0 ] && pass "spf nested MAIL, pipelined RCPT: refused for the failing sender that stands" ||
	fail "spf nested MAIL, pipelined RCPT, failing sender" "$(grep '^<' "$tmp/spf-nested-rcpt2.out" | tail -n 2 | tr '\n' '|')"
wait "$nested_pid" 2>/dev/null
nested_pid=
# Each pipelined RCPT reached the server only after its 503, and only for
# the sender that passes.
cat >"$tmp/nested.want" <<'GOT'
EHLO client.example.test
MAIL FROM:<a@pass.test>
RCPT TO:<alice@example.test>
MAIL FROM:<b@fail.test>
503 sent, next command not yet in
RCPT TO:<bob@example.test>
QUIT
EHLO client.example.test
MAIL FROM:<a@fail.test>
MAIL FROM:<b@pass.test>
503 sent, next command not yet in
QUIT
GOT
cmp -s "$tmp/nested.want" "$tmp/nested.got" &&
	pass "spf nested MAIL, pipelined RCPT: relayed only after the server's 503, for the sender that stands" ||
	fail "spf nested MAIL, pipelined RCPT: what the server got" "$(tr '\n' '|' <"$tmp/nested.got")"
lab start-postfix 2>/dev/null || fail "postfix restarted" ""

# --- 4. early talker
start_sporkd "greet_pause 1s" "early_talker yes"
cat >"$tmp/early.chat" <<'CHAT'
line EHLO early.example.test
expect 554 5.5.0
expect_close
CHAT
in_cli "$CHAT" "$SRV_V4" 25 20 <"$tmp/early.chat" >"$tmp/early" 2>&1 &&
	pass "early talker: refused with 554 and closed" ||
	fail "early talker" "$(cat "$tmp/early")"
check "early talker: logged" log_has 'prequeue check=early-talker client=10\.25\.0\.1 result=talked-first bytes=[0-9]+ action=reject'
send patient a@client.example.test
wait_subject patient && pass "greet pause: a client that waits is delivered" ||
	fail "greet pause" "$(grep -E '^<' "$tmp/patient" | tail -n 2)"
[ "$(status_value prequeue.early_talker.rejected)" = 1 ] && pass "early talker: counted" ||
	fail "early talker counter" "$(ctl status | grep early)"

# --- 5. greylisting on disk, with a real sending Postfix
gl_conf=("greylist_enable yes" "greylist_min 2s" "greylist_max 1h"
	"greylist_file $LAB_DIR/spool/greylist")
start_sporkd "${gl_conf[@]}"
lab start-sender none 2>/dev/null
submit() {
	in_cli swaks --server 127.0.0.1 --to alice@example.test --from "$2" \
		--header "Subject: $1" >"$tmp/sub-$1" 2>&1 || fail "submit $1" "$(tail -n 2 "$tmp/sub-$1")"
}
queue_empty() { in_cli postqueue -c "$LAB_DIR/sender/etc" -p 2>/dev/null | grep -q 'Mail queue is empty'; }
submit grey-1 g@client.example.test
wait_until 60 queue_empty
# The sender's queue empties on the MX's 250; delivery follows.
wait_subject grey-1 20
sleep 1
[ "$(delivered grey-1)" = 1 ] && pass "greylist: the sender's retry is accepted, delivered exactly once" ||
	fail "greylist delivered once" "$(delivered grey-1) copies"
assert_grep 'said: 450 4\.7\.1 <alice@example\.test>: Recipient address rejected: Greylisted' \
	"$LAB_DIR/sender/maillog" "greylist: the sending Postfix got 450 4.7.1 first"
check "greylist: passed, logged" log_has 'prequeue check=greylist triplet="10\.25\.0\.0/24 g@client\.example\.test alice@example\.test" store=disk result=passed action=none'
# The state survives a restart: the same triplet passes at once.
start_sporkd "${gl_conf[@]}"
send grey-2 g@client.example.test
assert_grep '^<- +250 2\.0\.0 Ok: queued' "$tmp/grey-2" "greylist: known triplet passes at once after a restart"
send grey-3 other@client.example.test
assert_grep '^<\*\* +450 4\.7\.1 ' "$tmp/grey-3" "greylist: a new triplet still gets 450"
[ "$(status_value prequeue.greylist.known)" = 1 ] && [ "$(status_value prequeue.greylist.new)" = 1 ] &&
	pass "greylist: counted per verdict" || fail "greylist counters" "$(ctl status | grep greylist)"
start_sporkd "${gl_conf[@]}" "greylist_whitelist 10.25.0.0/16"
send grey-4 yet-another@client.example.test
assert_grep '^<- +250 2\.0\.0 Ok: queued' "$tmp/grey-4" "greylist: whitelisted networks are not greylisted"

# --- 6. greylisting in Redis
ip netns exec "$NS_BR" redis-server --bind 127.0.0.1 --port 6379 --save '' --appendonly no \
	--daemonize no --dir "$tmp" >"$tmp/redis.log" 2>&1 &
redis_pid=$!
redis_up() { in_br redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; }
rkey='spork:greylist:10.25.0.0/24 r@client.example.test alice@example.test'
if wait_until 10 redis_up; then
	start_sporkd "greylist_enable yes" "greylist_min 2s" "greylist_max 1h" "greylist_redis 127.0.0.1:6379"
	submit grey-r r@client.example.test
	wait_until 60 queue_empty
	wait_subject grey-r 20
	sleep 1
	[ "$(delivered grey-r)" = 1 ] && pass "greylist redis: the sender's retry is accepted, delivered exactly once" ||
		fail "greylist redis delivered once" "$(delivered grey-r) copies"
	check "greylist redis: passed, logged" log_has 'triplet="10\.25\.0\.0/24 r@client\.example\.test alice@example\.test" store=redis result=passed'
	v=$(in_br redis-cli -h 127.0.0.1 get "$rkey")
	ttl=$(in_br redis-cli -h 127.0.0.1 ttl "$rkey")
	[[ "$v" =~ ^[0-9]+\ [0-9]+\ 1$ ]] && [ "$ttl" -gt 3600 ] &&
		pass "greylist redis: the passed triplet is in Redis with the expiry as TTL" ||
		fail "greylist redis record" "value=$v ttl=$ttl"
	# A restarted sporkd, as another appliance would, finds the state.
	start_sporkd "greylist_enable yes" "greylist_min 2s" "greylist_max 1h" "greylist_redis 127.0.0.1:6379"
	send grey-r2 r@client.example.test
	assert_grep '^<- +250 2\.0\.0 Ok: queued' "$tmp/grey-r2" "greylist redis: a restarted sporkd knows the triplet"
	kill "$redis_pid"
	wait "$redis_pid" 2>/dev/null
	redis_pid=
	send grey-r3 new@client.example.test
	assert_grep '^<- +250 2\.0\.0 Ok: queued' "$tmp/grey-r3" "greylist redis down: mail passes (fail open)"
	[ "$(status_value prequeue.greylist.error)" -ge 1 ] && pass "greylist redis down: counted as error" ||
		fail "redis error counter" "$(ctl status | grep greylist)"
else
	fail "redis-server up" "$(tail -n 5 "$tmp/redis.log")"
fi
lab stop-sender

check "sporkd still running" kill -0 "$(cat "$LAB_SPORKD_PID")"
summary
