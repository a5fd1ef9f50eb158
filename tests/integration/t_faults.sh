#!/bin/bash
# SPDX-License-Identifier: MIT
# Faults: a server that refuses gets the client a reset (it tries its next
# MX); a server that dies mid-session gets the client 421; an idle client
# is timed out with 421; the explicit (non-transparent) listener relays and
# scans like the transparent one.
set -u
. "$(dirname "$0")/lib.sh"
tmp=$(mktemp -d)
explicit_pid=
cleanup() {
	[ -n "$explicit_pid" ] && kill "$explicit_pid" 2>/dev/null
	lab_down
	rm -rf "$tmp"
}
trap cleanup EXIT
lab_up
CHAT=$SPORK_REPO/tests/tools/smtpchat
SPORKD=${SPORKD:-$SPORK_REPO/build/sporkd}

# --- server refusing: the client's connection is reset, no banner
lab stop-postfix 2>/dev/null
printf 'expect_close\n' >"$tmp/chat-refused"
if in_cli "$CHAT" "$SRV_V4" 25 5 <"$tmp/chat-refused" >"$tmp/t-refused" 2>&1; then
	pass "server down: client connection closed without a banner"
else
	fail "server down: client connection closed without a banner" "$(cat "$tmp/t-refused")"
fi
send_mail "$tmp/t-refused-swaks" alice@example.test a@client.example.test "$SRV_V4"
assert_grep 'Connection reset by peer|closed connection unexpectedly' "$tmp/t-refused-swaks" "server down: swaks sees a reset, as with no MX listening"
assert_no_grep '^<- +220' "$tmp/t-refused-swaks" "server down: no greeting invented"
assert_grep 'upstream connect failed server=10\.25\.0\.2:25 error="Connection refused" action=reset-client' "$LAB_SPORKD_LOG" "server down: sporkd logged refused + reset"
lab start-postfix 2>/dev/null

# --- server dies mid-session: 421 to the client
cat >"$tmp/chat-lost" <<'CHAT'
expect 220
line EHLO chat.example.test
expect 250
line MAIL FROM:<a@client.example.test>
expect 250
sleep 3
expect 421 4.4.2
expect_close
CHAT
in_cli "$CHAT" "$SRV_V4" 25 <"$tmp/chat-lost" >"$tmp/t-lost" 2>&1 &
chat=$!
# Once the client has the server's 250 to MAIL (a fixed pause can come
# before the session is up on a loaded machine, and kill the wrong smtpd):
# kill the smtpd serving the session, in the server namespace only.
mail_accepted() { [ "$(grep -c '^<- 250 ' "$tmp/t-lost" 2>/dev/null)" -ge 2 ]; }
check "server lost mid-session: (precondition) the session reached MAIL" wait_until 10 mail_accepted
for p in $(ip netns pids "$NS_SRV"); do
	[ "$(cat "/proc/$p/comm" 2>/dev/null)" = smtpd ] && kill -KILL "$p"
done
if wait $chat; then
	pass "server lost mid-session: client got 421 4.4.2 and a close"
else
	fail "server lost mid-session" "$(cat "$tmp/t-lost")"
fi
assert_grep 'close reason=upstream-lost reply="421 4\.4\.2' "$LAB_SPORKD_LOG" "server lost: sporkd logged upstream-lost"
lab stop-postfix 2>/dev/null; lab start-postfix 2>/dev/null

# --- a server answering 3xx to a RCPT (a server gone wrong, or one
# tricked into reading a message): the relay ends the session with 421 and
# sends the server nothing more, so the client's next pipelined lines can
# never be taken by the server as message text.
lab stop-postfix 2>/dev/null
cat >"$tmp/bad3xx.py" <<'PY3'
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], 25)); s.listen(1)
c, _ = s.accept(); c.settimeout(5)
f = c.makefile("rb"); out = open(sys.argv[2], "wb")
c.sendall(b"220 bad.example.test ESMTP\r\n")
try:
    for line in f:
        out.write(line); out.flush()
        v = line[:4].upper()
        if v in (b"EHLO", b"HELO"):
            c.sendall(b"250-bad.example.test\r\n250 PIPELINING\r\n")
        elif v == b"RCPT":
            c.sendall(b"354 go ahead\r\n")
        elif v == b"QUIT":
            c.sendall(b"221 bye\r\n"); break
        else:
            c.sendall(b"250 ok\r\n")
except (socket.timeout, ConnectionError):
    pass
PY3
in_srv python3 "$tmp/bad3xx.py" "$SRV_V4" "$tmp/bad3xx.got" &
bad_pid=$!
bad_listening() { in_srv ss -Hltn "sport = :25" | grep -q .; }
wait_until 10 bad_listening || fail "server 3xx to RCPT: the fake server listening" "not after 10 s"
cat >"$tmp/chat-3xx" <<'CHAT'
expect 220
line EHLO client.example.test
expect 250
send MAIL FROM:<a@client.example.test>\r\nRCPT TO:<alice@example.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n
expect 250
expect 421
expect_close
CHAT
in_cli "$CHAT" "$SRV_V4" 25 10 <"$tmp/chat-3xx" >"$tmp/t-3xx" 2>&1 &&
	pass "server 3xx to RCPT: the client gets 421 and the connection closes" ||
	fail "server 3xx to RCPT: 421" "$(tail -n 4 "$tmp/t-3xx")"
wait "$bad_pid" 2>/dev/null
assert_grep 'upstream-unexpected-3xx' "$LAB_SPORKD_LOG" "server 3xx to RCPT: logged"
last=$(tail -n 1 "$tmp/bad3xx.got" | tr -d '\r')
# The two RCPTs go out together (the server offers PIPELINING); DATA waits
# for their replies, and after the 354 nothing more is sent.
case $last in
"RCPT TO:<alice@example.test>"|"RCPT TO:<bob@example.test>"|"QUIT")
	pass "server 3xx to RCPT: nothing relayed after it but QUIT (last line: $last)" ;;
*)	fail "server 3xx to RCPT: the server got more" "$(tr -d '\r' <"$tmp/bad3xx.got" | tr '\n' '|')" ;;
esac
assert_no_grep '^DATA' "$tmp/bad3xx.got" "server 3xx to RCPT: the server never got DATA"
lab start-postfix 2>/dev/null

# --- idle client: 421 after timeout_command
cp "$LAB_DIR/spork.conf" "$tmp/short.conf"
echo "timeout_command 2s" >>"$tmp/short.conf"
lab start-sporkd "$tmp/short.conf" 2>/dev/null
printf 'expect 220\nline EHLO idle.example.test\nexpect 250\nsleep 3.5\nexpect 421 4.4.2 Error: timeout exceeded\nexpect_close\n' >"$tmp/chat-idle"
if in_cli "$CHAT" "$SRV_V4" 25 <"$tmp/chat-idle" >"$tmp/t-idle" 2>&1; then
	pass "idle client: 421 4.4.2 after timeout_command"
else
	fail "idle client: 421 after timeout_command" "$(cat "$tmp/t-idle")"
fi
lab start-sporkd 2>/dev/null

# --- explicit listener: a second sporkd on 10.25.0.2:2525 -> 10.25.0.2:25
cat >"$tmp/explicit.conf" <<CONF
transparent_listen
explicit_listen 10.25.0.2:2525
explicit_upstream 10.25.0.2:25
clamav_database_dir $SPORK_REPO/tests/data/clamav
spool_dir $tmp/spool
log_syslog no
${SPORK_LAB_CONF_EXTRA:-}
CONF
mkdir -p "$tmp/spool"
chmod 755 "$tmp"	# the scanner workers run unprivileged
ip netns exec "$NS_SRV" "$SPORKD" -c "$tmp/explicit.conf" >"$tmp/explicit.log" 2>&1 &
explicit_pid=$!
wait_until 20 grep -q 'listening on 10.25.0.2:2525' "$tmp/explicit.log" ||
	fail "explicit: sporkd listening on 10.25.0.2:2525" "$(tail -n 3 "$tmp/explicit.log")"
b0=$(maildir_count bob)
send_mail "$tmp/t-exp" bob@example.test a@client.example.test "$SRV_V4:2525" "" --header "Subject: explicit"
assert_grep '^<- +250 2\.0\.0 Ok: queued' "$tmp/t-exp" "explicit: clean message queued by Postfix"
check "explicit: delivered" wait_delivered bob $((b0 + 1)) 10
printf '%s' 'X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*' >"$tmp/eicar.com"
send_mail "$tmp/t-exp-v" bob@example.test a@client.example.test "$SRV_V4:2525" "" --attach "@$tmp/eicar.com"
assert_grep '^<\*\* +550 5\.7\.1 .*Eicar-Test-Signature' "$tmp/t-exp-v" "explicit: EICAR refused with 550 5.7.1"
assert_grep 'connect client=10\.25\.0\.1:[0-9]+ server=10\.25\.0\.2:25 mode=explicit' "$tmp/explicit.log" "explicit: logged mode=explicit with the fixed upstream"
sleep 0.5
[ "$(maildir_count bob)" -eq $((b0 + 1)) ] && pass "explicit: virus not delivered" || fail "explicit: virus not delivered" "bob has $(maildir_count bob)"
kill "$explicit_pid"; wait "$explicit_pid" 2>/dev/null; explicit_pid=
assert_grep 'stopped' "$tmp/explicit.log" "explicit: SIGTERM stops sporkd cleanly"
summary
