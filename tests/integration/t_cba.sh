#!/bin/bash
# SPDX-License-Identifier: MIT
# Connect-before-accept (connect_before_accept yes, divert owned by sporkd):
# the client's SYN waits in the netfilter queue until the real server has
# accepted sporkd's connection from the client's address. Normal delivery
# (IPv4 and IPv6, Postfix sees the client's address); Postfix stopped ->
# the client's connect is refused (a reset from the server's address), no
# banner and no 421; the server's packets dropped -> the client's connect
# times out, its retransmitted SYNs start no second upstream connect.
set -u
. "$(dirname "$0")/lib.sh"
tmp=$(mktemp -d)
chmod 755 "$tmp"
trap 'in_srv nft delete table inet blackhole 2>/dev/null; lab_down; rm -rf "$tmp"' EXIT
lab_up
SETUP="$SPORK_REPO/scripts/spork-setup"
STATE=$LAB_DIR/spork-setup.state

in_br "$SETUP" --bridge br0 --port 10025 --state "$STATE" --remove >/dev/null 2>&1
in_br "$SETUP" --bridge br0 --port 10025 --state "$STATE" --divert sporkd --apply >/dev/null 2>&1 ||
	fail "spork-setup --divert sporkd" "failed"
{ cat "$LAB_DIR/spork.conf"; printf '%s\n' "divert_bridge br0" \
	"connect_before_accept yes" "timeout_connect 5s" "log_level debug" \
	"connect_before_accept_per_source 4"; } >"$tmp/cba.conf"
lab start-sporkd "$tmp/cba.conf" 2>/dev/null || { fail "sporkd start" "connect_before_accept yes"; summary; exit 1; }

# --- the rule
for _ in $(seq 50); do
	in_br nft list table inet sporkd >"$tmp/ruleset" 2>&1
	grep -q "chain syn" "$tmp/ruleset" && break
	sleep 0.1
done
assert_grep 'chain syn' "$tmp/ruleset" "ruleset: a chain for SYNs"
assert_grep 'priority raw' "$tmp/ruleset" "ruleset: at raw priority, before conntrack"
assert_grep 'queue num 25 bypass' "$tmp/ruleset" "ruleset: queue 25 with bypass (xt NFQUEUE)"
in_br "$SPORK_REPO/build/sporkd" -P -c "$tmp/cba.conf" >"$tmp/printed" 2>&1
assert_grep 'tcp flags syn / fin,syn,rst,ack queue num 25 bypass' "$tmp/printed" \
	"sporkd -P prints the queue rule"
assert_grep 'divert installed .* connect_before_accept=yes' "$LAB_SPORKD_LOG" "logged at start"

# --- normal delivery, the client's address seen by Postfix
a0=$(maildir_count alice)
send_mail "$tmp/ok4" alice@example.test a@client.example.test "$SRV_V4"
assert_grep '^<- +250 2\.0\.0 Ok: queued' "$tmp/ok4" "IPv4: accepted by Postfix"
check "IPv4: delivered" wait_delivered alice $((a0 + 1)) 10
grep -q '^X-Spork-Scanned: ' "$(maildir_files alice | tail -n1)" &&
	pass "IPv4: through sporkd (scanned)" || fail "IPv4: scanned" "no scan header"
wait_grep 10 'connect from [^ ]*\[10\.25\.0\.1\]' "$LAB_MAILLOG" "IPv4: Postfix saw the client's address"
assert_grep 'upstream connected before accept client=10\.25\.0\.1:[0-9]+ server=10\.25\.0\.2:25 .*action=accept-syn' \
	"$LAB_SPORKD_LOG" "IPv4: connected upstream before the SYN went on"
assert_grep 'connect client=10\.25\.0\.1:[0-9]+ .*upstream=connected-before-accept' \
	"$LAB_SPORKD_LOG" "IPv4: the session used that connection"
send_mail "$tmp/ok6" bob@example.test a@client.example.test "$SRV_V6"
assert_grep '^<- +250 2\.0\.0 Ok: queued' "$tmp/ok6" "IPv6: accepted by Postfix"
wait_grep 10 'connect from [^ ]*\[fd25::1\]' "$LAB_MAILLOG" "IPv6: Postfix saw the client's address"
assert_grep 'upstream connected before accept client=\[fd25::1\]' "$LAB_SPORKD_LOG" \
	"IPv6: connected upstream before the SYN went on"

# --- the server is down: refused, as without the box
lab stop-postfix
for srv in "$SRV_V4" "$SRV_V6"; do
	send_mail "$tmp/down" alice@example.test a@client.example.test "$srv" "" --timeout 10
	assert_grep 'Connection refused' "$tmp/down" "server stopped ($srv): the client's connect is refused"
	assert_no_grep '^<- +(220|421)' "$tmp/down" "server stopped ($srv): no banner, no 421"
done
assert_grep 'upstream refused client=10\.25\.0\.1:[0-9]+ .*action=reset-client' "$LAB_SPORKD_LOG" \
	"refused: logged, reset sent (IPv4)"
assert_grep 'upstream refused client=\[fd25::1\]:[0-9]+ .*action=reset-client' "$LAB_SPORKD_LOG" \
	"refused: logged, reset sent (IPv6)"
assert_no_grep 'disconnect reason=upstream-unreachable' "$LAB_SPORKD_LOG" \
	"refused: no session was accepted to be reset"
lab start-postfix

# --- the server's packets dropped: the client's SYN stays unanswered
in_srv nft 'add table inet blackhole; add chain inet blackhole in { type filter hook input priority 0; }; add rule inet blackhole in tcp dport 25 drop'
t0=$SECONDS
# The client's SYNs go out at 0, 1 and 3 s (the next at 7 s): sporkd's
# connect times out at 5 s, the client gives up at 6 s.
send_mail "$tmp/silent" alice@example.test a@client.example.test "$SRV_V4" "" --timeout 6
assert_grep 'connect: timeout|timed out' "$tmp/silent" "server silent: the client's connect times out"
assert_no_grep '^<- +(220|421)|=== Connected' "$tmp/silent" "server silent: never connected"
[ $((SECONDS - t0)) -ge 5 ] && pass "server silent: the client waited for its own timeout" ||
	fail "server silent: client timeout" "returned after $((SECONDS - t0)) s"
wait_grep 15 'upstream connect timeout client=10\.25\.0\.1:[0-9]+ .*action=drop-syn' "$LAB_SPORKD_LOG" \
	"server silent: sporkd's connect timed out, the SYN dropped (logged)"
port=$(grep -Eo 'upstream connect timeout client=10\.25\.0\.1:[0-9]+' "$LAB_SPORKD_LOG" | head -n1 | sed 's/.*://')
assert_grep "retransmitted syn client=10\\.25\\.0\\.1:$port state=connecting action=drop" "$LAB_SPORKD_LOG" \
	"server silent: the client's retransmitted SYN was dropped"
# Upstream connects for that client connection until sporkd gave up.
held=$(sed "/upstream connect timeout client=10\\.25\\.0\\.1:$port /q" "$LAB_SPORKD_LOG" |
	grep -c "syn held client=10\\.25\\.0\\.1:$port ")
[ "$held" -eq 1 ] && pass "server silent: one upstream connect for the client's connection" ||
	fail "server silent: one upstream connect" "$held held"
in_srv nft delete table inet blackhole

# --- forged SYNs: each held SYN costs a connect to the server from its
# source, proven by nothing until the handshake completes. 10.25.0.77 is a
# real host on the segment (the client namespace holds it: it answers ARP
# and resets the SYN-ACKs it never asked for), forged by a raw socket.
# Budget 4: at most 4 connects held at once, 4 a minute never taken; the
# other SYNs pass unheld and cost no connect.
in_cli ip addr add 10.25.0.77/24 dev cli0
before=$(grep -c ': connect from [^ ]*\[10\.25\.0\.77\]' "$LAB_MAILLOG")
in_cli "$SPORK_REPO/tests/tools/spoofsyn" 10.25.0.77 "$SRV_V4" 25 40 10 >"$tmp/spoof1" 2>&1 ||
	fail "forged SYNs sent" "$(cat "$tmp/spoof1")"
# The held ones are let through, never taken, and closed after 5 s.
sleep 7
in_cli "$SPORK_REPO/tests/tools/spoofsyn" 10.25.0.77 "$SRV_V4" 25 40 10 >"$tmp/spoof2" 2>&1
sleep 2
# Counted as sporkd takes the SYNs off its queue: a moment after they left.
unheld_at_least() { [ "$(ctl status | sed -n 's/^cba.unheld_over_budget=//p')" -ge "$1" ] 2>/dev/null; }
wait_until 10 unheld_at_least 70 || true
connects=$(grep -c 'upstream connected before accept client=10\.25\.0\.77:' "$LAB_SPORKD_LOG")
server_saw=$(($(grep -c ': connect from [^ ]*\[10\.25\.0\.77\]' "$LAB_MAILLOG") - before))
[ "$connects" -ge 1 ] && [ "$connects" -le 4 ] &&
	pass "forged SYNs: 80 sent, $connects upstream connects made (budget 4)" ||
	fail "forged SYNs: upstream connects within the budget of 4" "$connects of 80"
[ "$server_saw" -le 4 ] && pass "forged SYNs: the server saw $server_saw connections from the forged address" ||
	fail "forged SYNs: connections the server saw" "$server_saw"
wait_grep 10 'upstream connection not taken client=10\.25\.0\.77:' "$LAB_SPORKD_LOG" \
	"forged SYNs: the held ones were never taken (the handshake never completed)"
assert_grep 'connect-before-accept budget reached client=10\.25\.0\.77:[0-9]+ held=4 .*action=accept-syn unheld' \
	"$LAB_SPORKD_LOG" "forged SYNs: the budget's end logged"
over=$(ctl status | sed -n 's/^cba.unheld_over_budget=//p')
[ "${over:-0}" -ge 70 ] && pass "forged SYNs: $over let through unheld (sporkctl status)" ||
	fail "forged SYNs: counted unheld" "${over:-none}"
in_cli ip addr del 10.25.0.77/24 dev cli0
# The real client beside it is not affected.
a1=$(maildir_count alice)
send_mail "$tmp/beside" alice@example.test a@client.example.test "$SRV_V4"
check "forged SYNs: the real client still delivers" wait_delivered alice $((a1 + 1)) 10

# --- and afterwards, delivery as before
a1=$(maildir_count alice)
send_mail "$tmp/again" alice@example.test a@client.example.test "$SRV_V4"
check "server back: delivered" wait_delivered alice $((a1 + 1)) 10
summary
