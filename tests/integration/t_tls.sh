#!/bin/bash
# SPDX-License-Identifier: MIT
# STARTTLS through the bridge with the real Postfix (certificates from a
# lab CA made at test time):
# - passthrough (tls_policy passthrough): spliced, unscanned, logged;
# - strip: only when configured, logged as a warning;
# - intercept: TLS on both halves with the MX's own certificate, EICAR
#   refused inside TLS, the server sees TLS from the client's address;
#   when TLS with the server fails at the box, the client's own TLS is
#   passed through instead (never a failure caused by the box);
# - the CA file is read again on reload: a CA put in vouches at once, one
#   taken out stops at once (no upstream session resumed past it), the
#   same CAs read again keep the server's session (resumed after the
#   reload), a file that does not load fails the reload and the old CAs
#   keep verifying; the system store's hashed directory read again as it
#   was is unchanged, an entry added or rewritten in place is a change;
# - a tls_cert_file past its 60 KiB is refused on reload by name (never
#   cut), and the key reader answers the next reload;
# - plaintext injected behind STARTTLS by the client or behind the 220 by
#   a server is never executed;
# - a sending Postfix that verifies the MX delivers when the appliance holds
#   the MX's key (intercepted) and when it holds another (passed through).
set -u
. "$(dirname "$0")/lib.sh"
tmp=$(mktemp -d)
chmod 755 "$tmp"
fake_pid=
cleanup() {
	[ -n "$fake_pid" ] && kill "$fake_pid" 2>/dev/null
	lab_down
	rm -rf "$tmp"
}
trap cleanup EXIT
lab_up
TLS=$LAB_DIR/tls
EICAR='X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*'
printf '%s' "$EICAR" >"$tmp/eicar.com"

start_sporkd() {	# start_sporkd LINES...
	{ cat "$LAB_DIR/spork.conf"; printf '%s\n' "$@"; } >"$tmp/run.conf"
	lab start-sporkd "$tmp/run.conf" 2>/dev/null || fail "sporkd start" "$*"
}
intercept=("tls_policy intercept" "tls_cert_file $TLS/cert.pem"
	"tls_key_file $TLS/key.pem" "tls_ca_file $TLS/ca.pem" "tls_verify yes"
	"tls_upstream_name mx.example.test")
verify=(--tls --tls-verify --tls-ca-path "$TLS/ca.pem")

# --- passthrough, when configured
start_sporkd "tls_policy passthrough"
send_mail "$tmp/t-pass" alice@example.test a@client.example.test "$SRV_V4" "" --tls
assert_grep '^<~ +250 2\.0\.0 Ok: queued' "$tmp/t-pass" "passthrough: delivered over TLS"
assert_grep 'starttls tls=passthrough scanned=no reason=policy' "$LAB_SPORKD_LOG" "passthrough: logged tls=passthrough scanned=no reason=policy"
send_mail "$tmp/t-pass-v" alice@example.test a@client.example.test "$SRV_V4" "" --tls --attach "@$tmp/eicar.com"
assert_grep '^<~ +250 2\.0\.0 Ok: queued' "$tmp/t-pass-v" "passthrough: not scanned (EICAR inside TLS passes, as documented)"
assert_grep '^<- +250-STARTTLS' "$tmp/t-pass" "strip: not active unless configured"

# --- strip, only when configured
start_sporkd "tls_policy strip"
send_mail "$tmp/t-strip" alice@example.test a@client.example.test "$SRV_V4"
assert_no_grep 'STARTTLS' "$tmp/t-strip" "strip: STARTTLS hidden from the client"
assert_grep 'starttls tls=stripped \(tls_policy strip\)' "$LAB_SPORKD_LOG" "strip: warned in the log"
printf 'expect 220\nline EHLO x.example.test\nexpect 250\nline STARTTLS\nexpect 454 4.7.0\nline QUIT\nexpect 221\n' >"$tmp/strip.chat"
in_cli "$SPORK_REPO/tests/tools/smtpchat" "$SRV_V4" 25 <"$tmp/strip.chat" >"$tmp/t-strip2" 2>&1 &&
	pass "strip: STARTTLS asked anyway gets 454" || fail "strip: 454" "$(tail -n 3 "$tmp/t-strip2")"

# --- intercept
start_sporkd "${intercept[@]}"
a0=$(maildir_count alice)
send_mail "$tmp/t-int" alice@example.test a@client.example.test "$SRV_V4" "" "${verify[@]}" --header "Subject: intercepted"
assert_grep '^=== TLS peer DN="/CN=mx\.example\.test"' "$tmp/t-int" "intercept: the client sees the MX's own certificate"
assert_grep '^<~ +250 2\.0\.0 Ok: queued' "$tmp/t-int" "intercept: clean message queued by Postfix"
check "intercept: delivered" wait_delivered alice $((a0 + 1)) 10
assert_grep 'X-Spork-Scanned: engine=' "$(maildir_files alice | tail -n1)" "intercept: scanned (header present)"
wait_grep 10 'TLS connection established from unknown\[10\.25\.0\.1\]' "$LAB_MAILLOG" "intercept: Postfix sees TLS from the client's address"
assert_grep 'tls upstream proto=TLSv1\.[23] cipher=[A-Z0-9_-]+ peer="/CN=mx\.example\.test" verify=ok' "$LAB_SPORKD_LOG" "intercept: upstream half logged (protocol, cipher, subject, verification)"
assert_grep 'tls client proto=TLSv1\.[23] cipher=' "$LAB_SPORKD_LOG" "intercept: client half logged"
assert_grep 'starttls tls=intercept scanned=yes' "$LAB_SPORKD_LOG" "intercept: logged tls=intercept scanned=yes"
send_mail "$tmp/t-int-v" alice@example.test a@client.example.test "$SRV_V6" "" "${verify[@]}" --attach "@$tmp/eicar.com"
assert_grep '^<~\* +550 5\.7\.1 Message rejected: virus found: Eicar' "$tmp/t-int-v" "intercept: EICAR inside TLS refused with 550 (v6)"

# --- TLS with the server fails at the box: the client's own TLS passes
"$SPORK_REPO/scripts/spork-cert" "$tmp/otherca" other.example.test >/dev/null
cp "$tmp/otherca/ca.pem" "$tmp/rot-ca.pem"
start_sporkd "${intercept[@]}" "tls_ca_file $tmp/rot-ca.pem"
send_mail "$tmp/t-fail" alice@example.test a@client.example.test "$SRV_V4" "" "${verify[@]}"
assert_grep '^<~ +250 2\.0\.0 Ok: queued' "$tmp/t-fail" "upstream verification fails at the box: the client's TLS passes through, delivered"
assert_grep '^=== TLS peer DN="/CN=mx\.example\.test"' "$tmp/t-fail" "upstream verification fails at the box: the client still sees the MX's certificate"
assert_no_grep '^ -> MAIL FROM' "$tmp/t-fail" "upstream verification fails at the box: no plaintext downgrade"
assert_grep 'tls upstream failed server=10\.25\.0\.2:25 error="certificate verification failed' "$LAB_SPORKD_LOG" "upstream verification failure logged"
assert_grep 'starttls tls=passthrough scanned=no reason=upstream-tls-failed' "$LAB_SPORKD_LOG" "and the passthrough it led to"

# --- the CAs are read again on reload (the box's CA bundle rotates): a CA
# put in vouches for the server at once, one taken out stops at once (no
# upstream session verified under it is resumed), a file that does not
# load is refused and the CAs before it keep verifying
count() { grep -cE "$1" "$LAB_SPORKD_LOG"; }
verified='tls upstream proto=TLSv1\.[23] .*peer="/CN=mx\.example\.test" verify=ok'
vfailed='tls upstream failed server=10\.25\.0\.2:25 error="certificate verification failed'
cp "$TLS/ca.pem" "$tmp/rot-ca.pem"
v0=$(count "$verified")
[ "$(ctl reload)" = "ok reload started" ] && pass "CA rotation: sporkctl reload accepted" ||
	fail "CA rotation: sporkctl reload accepted"
wait_grep 10 "tls CAs reloaded verify=$tmp/rot-ca\.pem" "$LAB_SPORKD_LOG" "CA rotation: the CA file read again, logged"
send_mail "$tmp/t-rot-in" alice@example.test a@client.example.test "$SRV_V4" "" "${verify[@]}"
assert_grep '^<~ +250 2\.0\.0 Ok: queued' "$tmp/t-rot-in" "CA put in: delivered"
check "CA put in: the server verified against it, the session intercepted" \
	test "$(count "$verified")" -gt "$v0"
send_mail "$tmp/t-rot-in2" alice@example.test a@client.example.test "$SRV_V4" "" "${verify[@]}"
assert_grep '^<~ +250 2\.0\.0 Ok: queued' "$tmp/t-rot-in2" "CA put in: a second message (its upstream session may be resumed)"
# reload_logs NAME PATTERN: sporkctl reload, then one more line matching
# PATTERN in sporkd's log within 10 s, checked as NAME.
more_lines() { [ "$(count "$1")" -gt "$2" ]; }
reload_logs() {
	local n
	n=$(count "$2")
	ctl reload >/dev/null
	wait_until 10 more_lines "$2" "$n"
	check "$1" more_lines "$2" "$n"
}
# A reload that finds the same CAs keeps the server's session: the next
# message resumes it (before, every reload made every server's next
# handshake a full one).
r0=$(count "$verified resumed=yes")
reload_logs "CAs unchanged: read again, logged as unchanged" \
	'tls CAs unchanged \(upstream sessions kept\)'
send_mail "$tmp/t-rot-same" alice@example.test a@client.example.test "$SRV_V4" "" "${verify[@]}"
assert_grep '^<~ +250 2\.0\.0 Ok: queued' "$tmp/t-rot-same" "CAs unchanged: delivered"
check "CAs unchanged: the upstream session kept across the reload is resumed" \
	test "$(count "$verified resumed=yes")" -gt "$r0"
cp "$tmp/otherca/ca.pem" "$tmp/rot-ca.pem"
f0=$(count "$vfailed")
ctl reload >/dev/null
reloads() { [ "$(count 'tls CAs reloaded')" -ge "$1" ]; }
wait_until 10 reloads 2
check "CA taken out: reloaded" reloads 2
send_mail "$tmp/t-rot-out" alice@example.test a@client.example.test "$SRV_V4" "" "${verify[@]}"
assert_grep '^<~ +250 2\.0\.0 Ok: queued' "$tmp/t-rot-out" "CA taken out: delivered (the client's own TLS passed through)"
check "CA taken out: the server no longer verifies, nothing resumed past it" \
	test "$(count "$vfailed")" -gt "$f0"
printf 'not a certificate\n' >"$tmp/rot-ca.pem"
[ "$(ctl reload)" = "error: reload failed" ] && pass "CA file that does not load: the reload fails" ||
	fail "CA file that does not load: the reload fails"
wait_grep 10 "tls CAs refused: $tmp/rot-ca\.pem: .*\(previous CAs keep verifying\)" "$LAB_SPORKD_LOG" "CA file that does not load: refused, logged"
f0=$(count "$vfailed")
send_mail "$tmp/t-rot-bad" alice@example.test a@client.example.test "$SRV_V4" "" "${verify[@]}"
assert_grep '^<~ +250 2\.0\.0 Ok: queued' "$tmp/t-rot-bad" "CA file that does not load: mail still delivered"
check "CA file that does not load: the previous CAs still verify (and still refuse the server)" \
	test "$(count "$vfailed")" -gt "$f0"

# --- the system store (tls_ca_file empty) read again: its hashed
# directory as it was keeps the sessions; an entry added, or one
# rewritten in place (the directory's own times unchanged), is a change
mkdir "$tmp/certdir"
h=$(openssl x509 -in "$TLS/ca.pem" -noout -hash)
cp "$TLS/ca.pem" "$tmp/certdir/$h.0"
export SSL_CERT_DIR=$tmp/certdir
start_sporkd "tls_policy intercept" "tls_cert_file $TLS/cert.pem" \
	"tls_key_file $TLS/key.pem" "tls_verify yes" "tls_upstream_name mx.example.test"
unset SSL_CERT_DIR
v0=$(count "$verified")
send_mail "$tmp/t-sys" alice@example.test a@client.example.test "$SRV_V4" "" "${verify[@]}"
check "system store: the server verified against its hashed directory" \
	test "$(count "$verified")" -gt "$v0"
reload_logs "system store, read again as it was: unchanged" \
	'tls CAs unchanged \(upstream sessions kept\)'
# The other CA has the same subject, so the same hash: its entry is .1,
# as c_rehash names a second one.
[ ! -e "$tmp/certdir/$h.1" ] || fail "system store: $h.1 free" "taken"
cp "$tmp/otherca/ca.pem" "$tmp/certdir/$h.1"
reload_logs "system store, an entry added to its directory: reloaded" \
	'tls CAs reloaded verify=system'
sleep 0.05
cat "$TLS/ca.pem" >"$tmp/certdir/$h.0"
reload_logs "system store, an entry rewritten in place: reloaded" \
	'tls CAs reloaded verify=system'

# --- tls_cert_file past its 60 KiB (a chain padded with copies of a CA):
# refused on reload with the file named, never cut; the key reader answers
# the next reload, which takes the file back
cp "$TLS/cert.pem" "$tmp/big-cert.pem"
start_sporkd "${intercept[@]}" "tls_cert_file $tmp/big-cert.pem"
for _ in $(seq 150); do cat "$TLS/ca.pem"; done >>"$tmp/big-cert.pem"
k0=$(count 'tls keys unchanged')
[ "$(ctl reload)" = "error: reload failed" ] && pass "tls_cert_file over 60 KiB: the reload fails" ||
	fail "tls_cert_file over 60 KiB: the reload fails"
wait_grep 10 "tls keys refused: $tmp/big-cert\.pem: larger than 60 KiB \(previous keys keep serving\)" \
	"$LAB_SPORKD_LOG" "tls_cert_file over 60 KiB: refused, the file and its limit named"
cp "$TLS/cert.pem" "$tmp/big-cert.pem"
[ "$(ctl reload)" = "ok reload started" ] && pass "tls_cert_file back to its size: the reload is accepted" ||
	fail "tls_cert_file back to its size: the reload is accepted"
# the file back as it was: the pair it held before, so unchanged
keys_unchanged() { [ "$(count 'tls keys unchanged keys=1$')" -gt "$k0" ]; }
wait_until 10 keys_unchanged
check "tls_cert_file back to its size: the key reader still answers, the same pair (unchanged)" keys_unchanged
send_mail "$tmp/t-big" alice@example.test a@client.example.test "$SRV_V4" "" "${verify[@]}"
assert_grep '^<~ +250 2\.0\.0 Ok: queued' "$tmp/t-big" "tls_cert_file back to its size: mail intercepted and delivered"

# --- client injection: STARTTLS and RSET in one segment
start_sporkd "${intercept[@]}"
cat >"$tmp/inject.py" <<'PY'
import socket, ssl, sys
s = socket.create_connection((sys.argv[1], 25), timeout=20)
f = s.makefile("rb")
def reply():
    lines = []
    while True:
        l = f.readline()
        lines.append(l)
        if l[3:4] != b"-":
            return b"".join(lines)
reply()
s.sendall(b"EHLO injector.example.test\r\n"); reply()
s.sendall(b"STARTTLS\r\nRSET\r\n")
r = reply()
assert r.startswith(b"220"), r
ctx = ssl.create_default_context(cafile=sys.argv[2])
ctx.check_hostname = False
t = ctx.wrap_socket(s, server_hostname="mx.example.test")
tf = t.makefile("rb")
def treply():
    lines = []
    while True:
        l = tf.readline()
        lines.append(l)
        if l[3:4] != b"-":
            return b"".join(lines)
t.sendall(b"EHLO injector.example.test\r\n")
r = treply()
assert r.startswith(b"250"), r
t.sendall(b"QUIT\r\n")
r = treply()
assert r.startswith(b"221"), r
print("ok")
PY
if in_cli python3 "$tmp/inject.py" "$SRV_V4" "$TLS/ca.pem" >"$tmp/t-inject" 2>&1; then
	pass "client injection: the session goes on in TLS with the server's own answers"
else
	fail "client injection" "$(tail -n 3 "$tmp/t-inject")"
fi
assert_grep 'starttls injection dropped client_bytes=6 server_bytes=0' "$LAB_SPORKD_LOG" "client injection: the pipelined RSET dropped and logged"
# Postfix logs the session's end as it closes, after the client is done.
wait_grep 10 'disconnect from unknown\[10\.25\.0\.1\] ehlo=2 starttls=1 quit=1 commands=4' "$LAB_MAILLOG" "client injection: Postfix never received the RSET"

# --- server injection: a fake server sends plaintext behind its 220
lab stop-postfix 2>/dev/null
cat >"$tmp/fake.py" <<'PY'
import socket, ssl, sys
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[2], sys.argv[3])
l = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind((sys.argv[1], 25)); l.listen(5)
while True:
    c, _ = l.accept()
    f = c.makefile("rb")
    c.sendall(b"220 fake.example.test ESMTP\r\n")
    f.readline(); c.sendall(b"250-fake.example.test\r\n250 STARTTLS\r\n")
    f.readline()
    c.sendall(b"220 go ahead\r\n250 injected by the server\r\n")
    t = ctx.wrap_socket(c, server_side=True)
    tf = t.makefile("rb")
    tf.readline(); t.sendall(b"250-fake.example.test inside TLS\r\n250 OK\r\n")
    tf.readline(); t.sendall(b"221 bye\r\n")
    t.close()
PY
ip netns exec "$NS_SRV" python3 "$tmp/fake.py" "$SRV_V4" "$TLS/cert.pem" "$TLS/key.pem" >"$tmp/fake.log" 2>&1 &
fake_pid=$!
fake_listening() { in_srv ss -Hltn | grep -q ':25 '; }
wait_until 20 fake_listening || fail "server injection: the fake server listening" "$(tail -n 3 "$tmp/fake.log")"
cat >"$tmp/server-inject.py" <<'PY'
import socket, ssl, sys
s = socket.create_connection((sys.argv[1], 25), timeout=20)
f = s.makefile("rb")
def reply(f):
    lines = []
    while True:
        l = f.readline()
        lines.append(l)
        if l[3:4] != b"-":
            return b"".join(lines)
reply(f)
s.sendall(b"EHLO c.example.test\r\n"); reply(f)
s.sendall(b"STARTTLS\r\n")
assert reply(f).startswith(b"220")
ctx = ssl.create_default_context(cafile=sys.argv[2]); ctx.check_hostname = False
t = ctx.wrap_socket(s, server_hostname="mx.example.test")
tf = t.makefile("rb")
t.sendall(b"EHLO c.example.test\r\n")
r = reply(tf)
print(r)
assert r.startswith(b"250") and b"fake.example.test inside TLS" in r, r
t.sendall(b"QUIT\r\n"); assert reply(tf).startswith(b"221")
print("ok")
PY
if in_cli python3 "$tmp/server-inject.py" "$SRV_V4" "$TLS/ca.pem" >"$tmp/t-sinject" 2>&1; then
	pass "server injection: the client's EHLO in TLS gets the server's TLS answer, not the injected line"
else
	fail "server injection" "$(tail -n 3 "$tmp/t-sinject")"
fi
assert_grep 'starttls injection dropped client_bytes=0 server_bytes=[1-9]' "$LAB_SPORKD_LOG" "server injection: dropped and logged"
kill "$fake_pid"; wait "$fake_pid" 2>/dev/null; fake_pid=
lab start-postfix 2>/dev/null || fail "postfix restart" "port 25 still taken"

# --- a sending Postfix that verifies the MX
lab start-sender "verify match=mx.example.test" 2>/dev/null
b0=$(maildir_count bob)
in_cli swaks --server 127.0.0.1 --to bob@example.test --from s@client.example.test \
	--header "Subject: via sending postfix" >"$tmp/t-sub1" 2>&1
check "sending postfix, MX certificate: delivered" wait_delivered bob $((b0 + 1)) 20
wait_grep 10 'Verified TLS connection established to 10\.25\.0\.2' "$LAB_DIR/sender/maillog" "sending postfix: verified TLS through the appliance"
# The appliance holds a key pair that is not the MX's: the session is
# passed through, the sender verifies the MX itself and delivers.
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=mx.example.test \
	-keyout "$tmp/wrong-key.pem" -out "$tmp/wrong.pem" 2>/dev/null
mkdir -p "$tmp/wrongkeys"
cp "$tmp/wrong.pem" "$tmp/wrong-key.pem" "$tmp/wrongkeys/"
start_sporkd "tls_keys_dir $tmp/wrongkeys"
in_cli swaks --server 127.0.0.1 --to bob@example.test --from s@client.example.test \
	--header "Subject: key not held" >"$tmp/t-sub2" 2>&1
check "sending postfix, key not held: delivered" wait_delivered bob $((b0 + 2)) 20
verified_twice() { [ "$(grep -c 'Verified TLS connection established to 10\.25\.0\.2' "$LAB_DIR/sender/maillog")" -ge 2 ]; }
wait_until 10 verified_twice || true
[ "$(grep -c 'Verified TLS connection established to 10\.25\.0\.2' "$LAB_DIR/sender/maillog")" -ge 2 ] &&
	pass "key not held: the sender verified the MX's own certificate" ||
	fail "key not held: verified" "$(tail -n 3 "$LAB_DIR/sender/maillog")"
assert_no_grep 'status=deferred' "$LAB_DIR/sender/maillog" "key not held: nothing deferred"
assert_grep 'tls key missing server=10\.25\.0\.2:25 subject="/CN=mx\.example\.test" spki_sha256=[0-9a-f]{64}' "$LAB_SPORKD_LOG" "key not held: warned, naming the server and its key"
assert_no_grep 'X-Spork-Scanned' "$(maildir_files bob | tail -n1)" "key not held: not scanned (passed through)"
sleep 1
[ "$(maildir_count bob)" -eq $((b0 + 2)) ] && pass "key not held: exactly once" || fail "exactly once" "$(maildir_count bob)"
summary
