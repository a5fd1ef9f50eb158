#!/bin/bash
# SPDX-License-Identifier: MIT
# STARTTLS interception with the protected servers' own key pairs
# (tls_policy intercept, tls_keys_dir), against real Postfix instances and
# real clients, asserting what a user checks: what arrived at the server,
# the reply the client got, the certificate the client saw, the counters.
# - the client is shown exactly the chain the server presents (byte for
#   byte, compared with what the server shows a client without the box);
# - a sending Postfix pinned to the MX's certificate fingerprint delivers
#   through the box over IPv4 and IPv6 while the mail is scanned (EICAR
#   refused with 550 5.7.1); `secure` and `verify` with the lab CA too;
#   after that coverage.scanned_pct is 100.0;
# - a bad key file on reload is refused, the old keys keep serving;
# - a second MX (a second Postfix on 10.25.0.3, its own certificate and a
#   two-certificate chain): while its key is missing, passed through,
#   counted, listed, warned once; once its key is installed, each server is
#   intercepted with its own chain;
# - plaintext written 0 to 1.5 ms behind STARTTLS is never executed, and
#   when it reached the box before its 220 it is dropped and logged and the
#   session goes on in TLS;
# - the MX's key pair rotated under a sending Postfix: nothing deferred,
#   the sessions after it passed through, interception again once the new
#   pair is installed and reloaded;
# - outbound (tls_outbound_clients): a leaf minted by a local CA with the
#   MX's subject and names; the local CA rotated and reloaded (a key that
#   does not match refused, the old CA signing on), the next leaf signed
#   by the new one; a reload that finds the same CA keeps the leaf minted
#   before; the sender verifies it, the mail is scanned
#   and an outbound DLP rule refuses a card number; an MX the box cannot
#   verify gets the client 421 4.7.0, never plaintext.
set -u
. "$(dirname "$0")/lib.sh"
tmp=$(mktemp -d)
chmod 755 "$tmp"
lab_up
TLS=$LAB_DIR/tls
MX2_V4=10.25.0.3
MX2_DIR=$LAB_DIR/mx2
SENDER_ETC=$LAB_DIR/sender/etc
SENDER_LOG=$LAB_DIR/sender/maillog
RECHECK=3
# lab_up's trap only takes the lab down: the second MX lives in LAB_DIR.
cleanup() {
	local rc=$?
	if [ -d "$MX2_DIR/etc" ] && [ -z "${SPORK_KEEP_LAB:-}" ]; then
		in_srv postfix -c "$MX2_DIR/etc" stop >/dev/null 2>&1
		rm -rf "$MX2_DIR"
	fi
	lab_down
	rm -rf "$tmp"
	return "$rc"
}
trap cleanup EXIT
EICAR='X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*'
printf '%s' "$EICAR" >"$tmp/eicar.com"

start_sporkd() {	# start_sporkd LINES...
	{ cat "$LAB_DIR/spork.conf"; printf '%s\n' "$@"; } >"$tmp/run.conf"
	lab start-sporkd "$tmp/run.conf" 2>/dev/null || fail "sporkd start" "$*"
}
fp_of() { openssl x509 -in "$1" -noout -fingerprint -sha256 | cut -d= -f2; }
der_sha() { openssl x509 -in "$1" -outform DER | sha256sum | cut -c1-64; }
spki_of() {
	openssl x509 -in "$1" -noout -pubkey | openssl pkey -pubin -outform DER |
		sha256sum | cut -c1-64
}
# chain NS ADDR:PORT OUT: the certificates shown to a STARTTLS client in NS,
# one line each (SHA-256 of the DER), in order; OUT.cN hold the PEMs.
chain() {
	local f try
	# Up to three tries: right after a restart the first handshake can
	# meet a server that is itself still reloading.
	for try in 1 2 3; do
		rm -f "$3" "$3".c*
		ip netns exec "$1" timeout 10 openssl s_client -starttls smtp \
			-connect "$2" -showcerts </dev/null 2>/dev/null |
			awk -v p="$3" '/-BEGIN CERTIFICATE-/ { on = 1; n++ }
				on { print > (p ".c" n) }
				/-END CERTIFICATE-/ { on = 0 }'
		[ -e "$3.c1" ] && break
		sleep 1
	done
	for f in "$3".c*; do
		[ -e "$f" ] && der_sha "$f"
	done >"$3"
}
mark() { wc -l <"${1:-$LAB_SPORKD_LOG}"; }
# since MARK OUT [FILE]: what FILE (sporkd's log) got after MARK, into OUT.
since() { tail -n +"$(($1 + 1))" "${3:-$LAB_SPORKD_LOG}" >"$2"; }
wait_log() {	# wait_log PATTERN COUNT [FILE]
	local i
	for i in $(seq 100); do
		[ "$(grep -Ec -- "$1" "${3:-$LAB_SPORKD_LOG}")" -ge "$2" ] && return 0
		sleep 0.1
	done
	return 1
}
count() { grep -Ec -- "$1" "$2" 2>/dev/null; }
# reload_slice PATTERN: sporkctl reload, then what sporkd logged until one
# more line matches PATTERN (its answer), into $tmp/slice.
reload_slice() {
	local m n
	m=$(mark)
	n=$(count "$1" "$LAB_SPORKD_LOG")
	ctl reload >/dev/null
	wait_log "$1" "$((n + 1))" || true
	since "$m" "$tmp/slice"
}
# mail_with DIR SUBJECT: the delivered messages in Maildir DIR with it.
mail_with() { grep -lxF -- "Subject: $2" "$1"/new/* 2>/dev/null; }
wait_mail() {	# wait_mail DIR SUBJECT [TIMEOUT]
	local deadline=$((SECONDS + ${3:-15}))
	until [ -n "$(mail_with "$1" "$2")" ]; do
		[ "$SECONDS" -lt "$deadline" ] || return 1
		sleep 0.1
	done
}
scanned() { grep -q '^X-Spork-Scanned: engine=' "$1"; }
ALICE=$LAB_MAIL/alice
BOB=$LAB_MAIL/bob

# sender_conf PARAM=VALUE...: change the sending Postfix and reload it
# (back once it has: the next submission must go with the new settings).
sender_conf() {
	postconf -c "$SENDER_ETC" -e "$@" &&
		postfix_reload "$NS_CLI" "$SENDER_ETC" "$SENDER_LOG" ||
		fail "sender_conf $*" "no reload in $SENDER_LOG"
}
# submit TO FROM SUBJECT [SWAKS_FLAGS...]: hand a message to the sending
# Postfix and wait for its delivery attempt; that attempt's log line is
# left in $last (sequential use only).
last=
submit() {
	local to=$1 from=$2 subj=$3 n i
	shift 3
	n=$(count ' status=' "$SENDER_LOG")
	in_cli swaks --server 127.0.0.1 --to "$to" --from "$from" \
		--header "Subject: $subj" "$@" >"$tmp/submit.out" 2>&1 ||
		{ last="submission failed: $(tail -n 2 "$tmp/submit.out")"; return 1; }
	for i in $(seq 200); do
		[ "$(count ' status=' "$SENDER_LOG")" -gt "$n" ] && break
		sleep 0.1
	done
	last=$(grep ' status=' "$SENDER_LOG" | sed -n "$((n + 1))p")
	[ -n "$last" ]
}
# is LINE REGEX NAME: pass if the extended regex matches the string.
is() {
	if printf '%s\n' "$1" | grep -Eq -- "$2"; then pass "$3"; else fail "$3" "got: $1"; fi
}

MX_FP=$(fp_of "$TLS/cert.pem")
MX_SPKI=$(spki_of "$TLS/cert.pem")
start_sporkd "tls_key_recheck ${RECHECK}s"

# ---- the certificate the client saw is the one Postfix serves
# Postfix's own answer, seen from its namespace (no bridge, no box), beside
# what a client through the box is shown.
for dst in "$SRV_V4:25" "[$SRV_V6]:25"; do
	m=$(mark)
	chain "$NS_SRV" "$dst" "$tmp/direct"
	chain "$NS_CLI" "$dst" "$tmp/box"
	since "$m" "$tmp/slice"
	assert_grep 'starttls tls=intercept scanned=yes$' "$tmp/slice" "certificate $dst: the session was intercepted"
	[ "$(head -n1 "$tmp/box")" = "$(der_sha "$TLS/cert.pem")" ] &&
		pass "certificate $dst: the leaf the client saw is \$LAB_DIR/tls/cert.pem (SHA-256 $MX_FP)" ||
		fail "certificate $dst: leaf is cert.pem" "client saw $(head -n1 "$tmp/box") ($(wc -l <"$tmp/box") certs)"
	[ -s "$tmp/box" ] && cmp -s "$tmp/box" "$tmp/direct" &&
		pass "certificate $dst: the whole chain equals what Postfix serves ($(wc -l <"$tmp/direct") certificate(s))" ||
		fail "certificate $dst: chain" "box: $(tr '\n' ' ' <"$tmp/box") postfix: $(tr '\n' ' ' <"$tmp/direct")"
done

# ---- a sending Postfix pinned to the MX's fingerprint, IPv4
lab start-sender "fingerprint match=$MX_FP" 2>/dev/null || fail "sending postfix start" "$MX_FP"
[ "$(postconf -c "$SENDER_ETC" -h smtp_tls_fingerprint_digest)" = sha256 ] ||
	sender_conf smtp_tls_fingerprint_digest=sha256
m=$(mark)
submit alice@example.test s@client.example.test "pinned v4 clean" &&
	is "$last" 'to=<alice@example\.test>, relay=10\.25\.0\.2\[10\.25\.0\.2\]:25, .*status=sent \(250 2\.0\.0 Ok' \
		"pinned v4: clean message sent" || fail "pinned v4: clean message sent" "$last"
assert_grep 'Verified TLS connection established to 10\.25\.0\.2\[10\.25\.0\.2\]:25' "$SENDER_LOG" \
	"pinned v4: the sender matched the pinned fingerprint through the box"
if wait_mail "$ALICE" "pinned v4 clean"; then
	f=$(mail_with "$ALICE" "pinned v4 clean")
	scanned "$f" && pass "pinned v4: delivered and scanned (X-Spork-Scanned)" ||
		fail "pinned v4: scanned" "no X-Spork-Scanned in $f"
	assert_grep '^Received: from client\.example\.test \(unknown \[10\.25\.0\.1\]\)' "$f" "pinned v4: Postfix saw the sender's own address"
else
	fail "pinned v4: delivered" "not in $ALICE"
fi
submit alice@example.test '<>' "pinned v4 eicar" --attach "@$tmp/eicar.com"
is "$last" 'status=bounced \(host 10\.25\.0\.2\[10\.25\.0\.2\] said: 550 5\.7\.1 Message rejected: virus found: Eicar' \
	"pinned v4: EICAR refused by the box with 550 5.7.1 (sender's log)"
since "$m" "$tmp/slice"
[ "$(count 'starttls tls=intercept scanned=yes$' "$tmp/slice")" -ge 2 ] &&
	pass "pinned v4: both sessions intercepted" || fail "pinned v4: intercepted" "$(grep starttls "$tmp/slice")"

# ---- the same over IPv6
sender_conf 'relayhost = [fd25::2]:25' 'inet_protocols = all' 'smtp_bind_address6 = fd25::1' \
	"smtp_tls_policy_maps = inline:{ {[10.25.0.2]:25 = fingerprint match=$MX_FP}, {[fd25::2]:25 = fingerprint match=$MX_FP} }"
m=$(mark)
submit alice@example.test s@client.example.test "pinned v6 clean" &&
	is "$last" 'relay=fd25::2\[fd25::2\]:25, .*status=sent \(250 2\.0\.0 Ok' "pinned v6: clean message sent" ||
	fail "pinned v6: clean message sent" "$last"
assert_grep 'Verified TLS connection established to fd25::2\[fd25::2\]:25' "$SENDER_LOG" \
	"pinned v6: the sender matched the pinned fingerprint through the box"
if wait_mail "$ALICE" "pinned v6 clean"; then
	f=$(mail_with "$ALICE" "pinned v6 clean")
	scanned "$f" && pass "pinned v6: delivered and scanned (X-Spork-Scanned)" ||
		fail "pinned v6: scanned" "no X-Spork-Scanned in $f"
	assert_grep '^Received: from client\.example\.test \(unknown \[IPv6:fd25::1\]\)' "$f" "pinned v6: Postfix saw the sender's own address"
else
	fail "pinned v6: delivered" "not in $ALICE"
fi
submit alice@example.test '<>' "pinned v6 eicar" --attach "@$tmp/eicar.com"
is "$last" 'status=bounced \(host fd25::2\[fd25::2\] said: 550 5\.7\.1 Message rejected: virus found: Eicar' \
	"pinned v6: EICAR refused by the box with 550 5.7.1 (sender's log)"
since "$m" "$tmp/slice"
[ "$(count 'starttls tls=intercept scanned=yes$' "$tmp/slice")" -ge 2 ] &&
	pass "pinned v6: both sessions intercepted" || fail "pinned v6: intercepted" "$(grep starttls "$tmp/slice")"
sleep 0.5
assert_no_grep 'EICAR-STANDARD' <(cat "$ALICE"/new/* 2>/dev/null) "pinned: no EICAR message arrived"

# ---- secure (v4) and verify (v6) with the lab CA
sender_conf "smtp_tls_policy_maps = inline:{ {[10.25.0.2]:25 = secure match=mx.example.test}, {[fd25::2]:25 = verify match=mx.example.test} }"
for v in v6 v4; do
	[ "$v" = v4 ] && sender_conf 'relayhost = [10.25.0.2]:25'
	lvl=verify; [ "$v" = v4 ] && lvl=secure
	n=$(count 'Verified TLS connection established' "$SENDER_LOG")
	submit alice@example.test s@client.example.test "$lvl $v" &&
		is "$last" 'status=sent \(250 2\.0\.0 Ok' "$lvl ($v): sent" || fail "$lvl ($v): sent" "$last"
	[ "$(count 'Verified TLS connection established' "$SENDER_LOG")" -gt "$n" ] &&
		pass "$lvl ($v): the sender verified mx.example.test against the lab CA" ||
		fail "$lvl ($v): verified" "$(tail -n 3 "$SENDER_LOG")"
	wait_mail "$ALICE" "$lvl $v" && scanned "$(mail_with "$ALICE" "$lvl $v")" &&
		pass "$lvl ($v): delivered and scanned" || fail "$lvl ($v): delivered and scanned" "$(mail_with "$ALICE" "$lvl $v")"
done

# ---- coverage after a run where everything was intercepted
ctl status >"$tmp/status"
assert_grep '^coverage\.scanned_pct=100\.0$' "$tmp/status" "status: coverage.scanned_pct=100.0 after an intercept-only run"
assert_grep '^tls\.passthrough_no_key=0$' "$tmp/status" "status: tls.passthrough_no_key=0"
assert_grep '^tls\.upstream_failed=0$' "$tmp/status" "status: tls.upstream_failed=0"
n=$(sed -n 's/^tls\.intercepted=//p' "$tmp/status")
[ "${n:-0}" -ge 8 ] && pass "status: tls.intercepted=$n (every session above)" || fail "status: tls.intercepted" "${n:-none}"
n=$(sed -n 's/^coverage\.messages_scanned=//p' "$tmp/status")
[ "${n:-0}" -ge 6 ] && pass "status: coverage.messages_scanned=$n" || fail "status: coverage.messages_scanned" "${n:-none}"
ctl tls >"$tmp/tls"
for dst in "10\.25\.0\.2:25" "\[fd25::2\]:25"; do
	assert_grep "^server=$dst subject=\"/CN=mx\.example\.test\" spki_sha256=$MX_SPKI key=held key_file=mx\.example\.test\.pem intercepted=[1-9]" \
		"$tmp/tls" "sporkctl tls: $dst held, with the MX's key digest and file"
done

# ---- a bad key file: refused, the old keys keep serving
"$SPORK_REPO/scripts/spork-cert" "$tmp/junk" junk.example.test >/dev/null
cp "$tmp/junk/junk.example.test.pem" "$TLS/keys/broken.pem"
openssl genrsa -out "$TLS/keys/broken-key.pem" 2048 2>/dev/null
reload_slice 'tls keys (refused|reloaded)'
assert_grep 'sporkd\[error\] tls keys refused: broken\.pem: the private key does not match the certificate \(previous keys keep serving\)$' \
	"$tmp/slice" "bad key file: refused on reload, the file and the reason named"
assert_no_grep 'tls keys reloaded' "$tmp/slice" "bad key file: no new key set taken"
m=$(mark)
submit alice@example.test s@client.example.test "after bad keys" &&
	is "$last" 'status=sent' "bad key file: the next message is sent" || fail "bad key file: next message sent" "$last"
since "$m" "$tmp/slice"
assert_grep 'starttls tls=intercept scanned=yes$' "$tmp/slice" "bad key file: the next session is still intercepted"
wait_mail "$ALICE" "after bad keys" && scanned "$(mail_with "$ALICE" "after bad keys")" &&
	pass "bad key file: and its message scanned" || fail "bad key file: message scanned"
rm -f "$TLS/keys/broken.pem" "$TLS/keys/broken-key.pem"

# ---- a second MX behind the same bridge: 10.25.0.3 on srv0 (the divert
# takes port 25 on the whole segment), a second Postfix built like
# spork-lab's, its certificate sent with the CA as a two-certificate chain
"$SPORK_REPO/scripts/spork-cert" "$TLS" mx2.example.test "IP:$MX2_V4" >/dev/null
cat "$TLS/mx2.example.test.pem" "$TLS/ca.pem" >"$TLS/mx2-chain.pem"
MX2_SPKI=$(spki_of "$TLS/mx2.example.test.pem")
ip -n "$NS_SRV" addr add "$MX2_V4/24" dev srv0
rm -rf "$MX2_DIR"	# left by a run cut short
mkdir -p "$MX2_DIR/etc" "$MX2_DIR/queue" "$MX2_DIR/data" "$MX2_DIR/mail"
sed -e "s|$LAB_DIR/postfix|$MX2_DIR|g" -e "s|$LAB_DIR/mail|$MX2_DIR/mail|g" \
	-e "s|^inet_interfaces = .*|inet_interfaces = $MX2_V4|" \
	-e "s|^myhostname = .*|myhostname = mx2.example.test|" \
	-e "s|^smtpd_tls_cert_file = .*|smtpd_tls_cert_file = $TLS/mx2-chain.pem|" \
	-e "s|^smtpd_tls_key_file = .*|smtpd_tls_key_file = $TLS/mx2.example.test-key.pem|" \
	"$LAB_DIR/postfix/etc/main.cf" >"$MX2_DIR/etc/main.cf"
cp "$LAB_DIR/postfix/etc/master.cf" "$MX2_DIR/etc/"
chown postfix: "$MX2_DIR/data"
chown nobody: "$MX2_DIR/mail"
MX2_ALICE=$MX2_DIR/mail/alice
mx2_listening() { in_srv ss -Hltn | grep -q "$MX2_V4:25 "; }
if in_srv postfix -c "$MX2_DIR/etc" start >/dev/null 2>&1 && wait_until 15 mx2_listening; then
	pass "second MX: a second Postfix listens on $MX2_V4:25"
else
	fail "second MX: started" "$(tail -n 5 "$MX2_DIR/maillog" 2>/dev/null)"
fi

# ---- its key is not held: passed through, counted, listed, warned once
m=$(mark)
for i in 1 2; do
	send_mail "$tmp/t-nokey$i" alice@example.test a@client.example.test "$MX2_V4" "" \
		--tls --header "Subject: no key $i"
	assert_grep '^<~ +250 2\.0\.0 Ok: queued' "$tmp/t-nokey$i" "key missing, session $i: accepted by the second MX over TLS"
	assert_grep '^=== TLS peer DN="/CN=mx2\.example\.test"' "$tmp/t-nokey$i" "key missing, session $i: the client did TLS with mx2 itself"
done
for i in 1 2; do
	wait_mail "$MX2_ALICE" "no key $i" && ! scanned "$(mail_with "$MX2_ALICE" "no key $i")" &&
		pass "key missing, message $i: delivered, not scanned" ||
		fail "key missing, message $i: delivered, not scanned" "$(mail_with "$MX2_ALICE" "no key $i")"
done
since "$m" "$tmp/slice"
[ "$(count "starttls tls=passthrough scanned=no reason=no-key server=$MX2_V4:25: reconnecting" "$tmp/slice")" -eq 1 ] &&
	[ "$(count "tls reconnected server=$MX2_V4:25: passthrough$" "$tmp/slice")" -eq 1 ] &&
	pass "key missing: first session checked the certificate, reconnected and passed through" ||
	fail "key missing: first session reconnected" "$(grep -E 'starttls|reconnect' "$tmp/slice")"
[ "$(count "starttls tls=passthrough scanned=no reason=no-key server=$MX2_V4:25$" "$tmp/slice")" -eq 1 ] &&
	pass "key missing: second session (within tls_key_recheck) spliced at once" ||
	fail "key missing: second session spliced at once" "$(grep -E 'starttls' "$tmp/slice")"
sleep "$RECHECK.3"
send_mail "$tmp/t-nokey3" alice@example.test a@client.example.test "$MX2_V4" "" --tls --header "Subject: no key 3"
assert_grep '^<~ +250 2\.0\.0 Ok: queued' "$tmp/t-nokey3" "key missing, session 3 (after tls_key_recheck): accepted"
since "$m" "$tmp/slice"
[ "$(count "starttls tls=passthrough scanned=no reason=no-key server=$MX2_V4:25: reconnecting" "$tmp/slice")" -eq 2 ] &&
	pass "key missing: checked again after tls_key_recheck" || fail "key missing: rechecked" "$(grep -E 'starttls' "$tmp/slice")"
n=$(count "tls key missing server=$MX2_V4:25 subject=\"/CN=mx2\.example\.test\" spki_sha256=$MX2_SPKI: " "$tmp/slice")
[ "$n" -eq 1 ] && pass "key missing: warned once for three sessions, naming server, subject and key digest" ||
	fail "key missing: one warning" "$n warnings: $(grep 'key missing' "$tmp/slice")"
ctl status >"$tmp/status"
assert_grep '^tls\.passthrough_no_key=3$' "$tmp/status" "status: tls.passthrough_no_key=3"
assert_no_grep '^coverage\.scanned_pct=100\.0$' "$tmp/status" "status: coverage below 100% once mail passed unscanned"
ctl tls >"$tmp/tls"
assert_grep "^server=$MX2_V4:25 subject=\"/CN=mx2\.example\.test\" spki_sha256=$MX2_SPKI key=missing intercepted=0 passthrough=3 failed=0$" \
	"$tmp/tls" "sporkctl tls: the second MX listed with key=missing"

# ---- its key installed: each server intercepted with its own chain
cp "$TLS/mx2.example.test.pem" "$TLS/mx2.example.test-key.pem" "$TLS/keys/"
m=$(mark)
ctl reload >/dev/null
wait_log 'tls keys reloaded keys=2$' 1 && pass "second MX: its pair loaded on reload (keys=2)" ||
	fail "second MX: pair loaded" "$(grep 'tls keys' "$LAB_SPORKD_LOG" | tail -n 2)"
sleep "$RECHECK.3"
for dst in "$SRV_V4:25" "$MX2_V4:25"; do
	m=$(mark)
	chain "$NS_SRV" "$dst" "$tmp/direct"
	chain "$NS_CLI" "$dst" "$tmp/box"
	since "$m" "$tmp/slice"
	assert_grep 'starttls tls=intercept scanned=yes$' "$tmp/slice" "two MXs, $dst: intercepted"
	[ -s "$tmp/box" ] && cmp -s "$tmp/box" "$tmp/direct" &&
		pass "two MXs, $dst: the client saw that server's own chain ($(wc -l <"$tmp/box") certificate(s))" ||
		fail "two MXs, $dst: own chain" "box: $(tr '\n' ' ' <"$tmp/box") postfix: $(tr '\n' ' ' <"$tmp/direct")"
done
[ "$(sed -n 1p "$tmp/box")" = "$(der_sha "$TLS/mx2.example.test.pem")" ] &&
	[ "$(sed -n 2p "$tmp/box")" = "$(der_sha "$TLS/ca.pem")" ] &&
	pass "two MXs: mx2's leaf then the CA, as its Postfix sends them (the keys dir holds the leaf only)" ||
	fail "two MXs: mx2 chain" "$(tr '\n' ' ' <"$tmp/box")"
send_mail "$tmp/t-mx1" alice@example.test a@client.example.test "$SRV_V4" "" --tls --header "Subject: two mx 1"
send_mail "$tmp/t-mx2" alice@example.test a@client.example.test "$MX2_V4" "" --tls --header "Subject: two mx 2"
send_mail "$tmp/t-mx2v" alice@example.test a@client.example.test "$MX2_V4" "" --tls --attach "@$tmp/eicar.com"
assert_grep '^=== TLS peer DN="/CN=mx\.example\.test"' "$tmp/t-mx1" "two MXs: the client of $SRV_V4 saw mx.example.test"
assert_grep '^=== TLS peer DN="/CN=mx2\.example\.test"' "$tmp/t-mx2" "two MXs: the client of $MX2_V4 saw mx2.example.test"
wait_mail "$ALICE" "two mx 1" && scanned "$(mail_with "$ALICE" "two mx 1")" &&
	pass "two MXs: message to $SRV_V4 delivered and scanned" || fail "two MXs: message to $SRV_V4 scanned"
wait_mail "$MX2_ALICE" "two mx 2" && scanned "$(mail_with "$MX2_ALICE" "two mx 2")" &&
	pass "two MXs: message to $MX2_V4 delivered and scanned" || fail "two MXs: message to $MX2_V4 scanned"
assert_grep '^<~\* +550 5\.7\.1 Message rejected: virus found: Eicar' "$tmp/t-mx2v" "two MXs: EICAR to $MX2_V4 refused inside TLS"
ctl tls >"$tmp/tls"
assert_grep "^server=$MX2_V4:25 subject=\"/CN=mx2\.example\.test\" spki_sha256=$MX2_SPKI key=held key_file=mx2\.example\.test\.pem intercepted=[1-9]" \
	"$tmp/tls" "sporkctl tls: the second MX held with its own file"
assert_grep "^server=10\.25\.0\.2:25 .* key=held key_file=mx\.example\.test\.pem " "$tmp/tls" "sporkctl tls: the first MX still held with its own"

# ---- plaintext behind STARTTLS, 0 to 1.5 ms later
cat >"$tmp/inject.py" <<'PY'
import select, socket, ssl, struct, sys, time
host, cafile, delay = sys.argv[1], sys.argv[2], float(sys.argv[3]) / 1000
inj = b"RSET\r\nMAIL FROM:<injected@evil.test>\r\n"
s = socket.create_connection((host, 25), timeout=20)
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
# The kernel's arrival time of each segment: when the 220 really came in.
s.setsockopt(socket.SOL_SOCKET, getattr(socket, "SO_TIMESTAMPNS", 35), 1)
port = s.getsockname()[1]
def reply_sock():
    data, ts = b"", None
    while not data.endswith(b"\r\n") or data.split(b"\r\n")[-2][3:4] == b"-":
        d, anc, _, _ = s.recvmsg(4096, socket.CMSG_SPACE(16))
        if not d:
            raise EOFError("closed after %r" % data)
        for lvl, typ, cd in anc:
            if lvl == socket.SOL_SOCKET and ts is None:
                sec, nsec = struct.unpack("qq", cd[:16])
                ts = sec + nsec / 1e9
        data += d
    return data, ts
def reply(f):
    lines = []
    while True:
        l = f.readline()
        if not l:
            raise EOFError("closed after %r" % b"".join(lines))
        lines.append(l)
        if l[3:4] != b"-":
            return b"".join(lines)
reply_sock()
s.sendall(b"EHLO injector.example.test\r\n"); reply_sock()
early = False
if delay == 0:
    s.sendall(b"STARTTLS\r\n" + inj)
    t_inj = time.time()
else:
    s.sendall(b"STARTTLS\r\n")
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < delay:
        pass
    # Was the 220 already in when the plaintext left?
    early = bool(select.select([s], [], [], 0)[0])
    s.sendall(inj)
    t_inj = time.time()
r, ts = reply_sock()
gap = (ts - t_inj) * 1000 if ts else -1
head = "port=%d early=%d gap_ms=%.3f" % (port, early, gap)
try:
    assert r.startswith(b"220"), r
    ctx = ssl.create_default_context(cafile=cafile)
    ctx.check_hostname = False
    t = ctx.wrap_socket(s, server_hostname="mx.example.test")
    tf = t.makefile("rb")
    t.sendall(b"EHLO injector.example.test\r\n")
    r = reply(tf)
    assert r.startswith(b"250") and b"mx.example.test" in r, r
    t.sendall(b"QUIT\r\n")
    r = reply(tf)
    assert r.startswith(b"221"), r
    print(head, "result=tls")
except Exception as e:
    print(head, "result=failed:%s" % type(e).__name__)
PY
injected=$(printf 'RSET\r\nMAIL FROM:<injected@evil.test>\r\n' | wc -c)
before=0
for d in 0 0.3 0.6 1.0 1.5 0.3 0.6 1.0 1.5 0.3 0.6 1.0 1.5; do
	m=$(mark)
	pm=$(mark "$LAB_MAILLOG")
	out=$(in_cli python3 "$tmp/inject.py" "$SRV_V4" "$TLS/ca.pem" "$d" 2>&1 | tail -n1)
	port=$(printf '%s\n' "$out" | sed -n 's/^port=\([0-9]*\) .*/\1/p')
	if [ -z "$port" ]; then
		fail "injection ${d} ms: client ran" "$out"
		continue
	fi
	# Postfix logs the session's end a moment later (through postlogd).
	pf_done() { tail -n +"$((pm + 1))" "$LAB_MAILLOG" | grep -q 'disconnect from unknown\[10\.25\.0\.1\]'; }
	wait_until 20 pf_done || true
	id=$(grep -m1 "connect client=10\.25\.0\.1:$port " "$LAB_SPORKD_LOG" | awk '{ print $3 }')
	wait_log " $id disconnect " 1 || true
	since "$m" "$tmp/slice"
	grep " $id " "$tmp/slice" >"$tmp/session"
	since "$pm" "$tmp/pf" "$LAB_MAILLOG"
	pf=$(grep -m1 'disconnect from unknown\[10\.25\.0\.1\]' "$tmp/pf")
	# The plaintext left before the 220 came in, and the 220 came in
	# (kernel time) well after it left, not crossing it on the wire: it
	# reached the box before the box sent its 220.
	gap=$(printf '%s\n' "$out" | sed -n 's/.* gap_ms=\([0-9.]*\) .*/\1/p')
	if [ "$d" = 0 ] || { printf '%s\n' "$out" | grep -q ' early=0 ' &&
		awk -v g="$gap" 'BEGIN { exit !(g > 0.15) }'; }; then
		before=$((before + 1))
		is "$pf" 'ehlo=2 starttls=1 quit=1 commands=4$' "injection ${d} ms (before the box's 220, $out): Postfix got EHLO, STARTTLS, EHLO, QUIT and nothing else"
		assert_grep "starttls injection dropped client_bytes=$injected server_bytes=0$" "$tmp/session" \
			"injection ${d} ms: sporkd dropped and logged the $injected bytes"
		is "$out" 'result=tls$' "injection ${d} ms: the client's session went on in TLS"
		grep -E 'tls client failed' "$tmp/session" | sed 's/^/     sporkd: /'
	else
		# Behind the box's 220 the plaintext is the start of the TLS
		# handshake (so it is with Postfix alone): refused, not run.
		if [ -n "$pf" ] && ! printf '%s\n' "$pf" | grep -Eq 'rset|mail'; then
			pass "injection ${d} ms (after the box's 220, $out): Postfix saw no RSET, no MAIL"
		else
			fail "injection ${d} ms (after the box's 220): no RSET, no MAIL" "${pf:-no session at Postfix}"
		fi
	fi
done
assert_no_grep 'injected@evil\.test' "$LAB_MAILLOG" "injection: the injected sender never reached Postfix"
[ "$before" -ge 5 ] && pass "injection: $before sessions whose plaintext reached the box before its 220" ||
	fail "injection: exercised" "only $before sessions had their plaintext reach the box before its 220"

# ---- the MX's key pair rotated under a sending Postfix
sender_conf "smtp_tls_policy_maps = inline:{ {[10.25.0.2]:25 = secure match=mx.example.test} }"
mkdir -p "$tmp/rot"
cp "$TLS/ca.pem" "$TLS/ca-key.pem" "$tmp/rot/"
"$SPORK_REPO/scripts/spork-cert" "$tmp/rot" mx.example.test "IP:$SRV_V4,IP:$SRV_V6" >/dev/null
NEW_FP=$(fp_of "$tmp/rot/mx.example.test.pem")
NEW_SPKI=$(spki_of "$tmp/rot/mx.example.test.pem")
served_new() { [ "$(head -n1 "$tmp/direct" 2>/dev/null)" = "$(der_sha "$tmp/rot/mx.example.test.pem")" ]; }
rotate() {
	# Two renames: no smtpd starts between a new key and an old cert.
	cp "$tmp/rot/mx.example.test-key.pem" "$TLS/key.pem.new"
	cp "$tmp/rot/mx.example.test.pem" "$TLS/cert.pem.new"
	mv "$TLS/key.pem.new" "$TLS/key.pem"
	mv "$TLS/cert.pem.new" "$TLS/cert.pem"
	in_srv postfix -c "$LAB_DIR/postfix/etc" reload >/dev/null 2>&1
	local deadline=$((SECONDS + 20))
	until chain "$NS_SRV" "$SRV_V4:25" "$tmp/direct"; served_new; do
		[ "$SECONDS" -lt "$deadline" ] || return 1
		sleep 0.1
	done
}
sent0=$(count 'status=sent' "$SENDER_LOG")
m=$(mark)
total=12 at=4
for i in $(seq "$total"); do
	in_cli swaks --server 127.0.0.1 --to bob@example.test --from s@client.example.test \
		--header "Subject: rotation $i" >"$tmp/rot.out" 2>&1 ||
		fail "rotation: message $i submitted" "$(tail -n 2 "$tmp/rot.out")"
	if [ "$i" -eq "$at" ]; then
		wait_mail "$BOB" "rotation $at"
		rot_mark=$(mark)
		rotate && pass "rotation: the MX serves the new certificate (SHA-256 $NEW_FP) after postfix reload" ||
			fail "rotation: new certificate served" "$(cat "$tmp/direct")"
	fi
	sleep 0.3
done
ok=1
for i in $(seq "$total"); do
	wait_mail "$BOB" "rotation $i" 20 || true
	n=$(mail_with "$BOB" "rotation $i" | wc -l)
	[ "$n" -eq 1 ] || { ok=0; fail "rotation: message $i delivered once" "$n copies"; }
done
[ "$ok" = 1 ] && pass "rotation: all $total messages delivered, each once"
# The sender logs its status=sent a moment after the MX has the message.
all_sent() { [ "$(count 'status=sent' "$SENDER_LOG")" -ge $((sent0 + total)) ]; }
wait_until 20 all_sent || true
assert_no_grep 'status=deferred' "$SENDER_LOG" "rotation: nothing deferred by the sending Postfix"
[ "$(count 'status=sent' "$SENDER_LOG")" -eq $((sent0 + total)) ] &&
	pass "rotation: $total deliveries logged sent" || fail "rotation: sent" "$(($(count 'status=sent' "$SENDER_LOG") - sent0)) of $total"
ok=1
for i in $(seq "$at"); do
	f=$(mail_with "$BOB" "rotation $i" | head -n1)
	[ -n "$f" ] && scanned "$f" || ok=0
done
[ "$ok" = 1 ] && pass "rotation: messages 1-$at (old key, held) scanned" || fail "rotation: messages before scanned"
ok=1
for i in $(seq $((at + 1)) "$total"); do
	f=$(mail_with "$BOB" "rotation $i" | head -n1)
	[ -n "$f" ] && ! scanned "$f" || ok=0
done
[ "$ok" = 1 ] && pass "rotation: messages $((at + 1))-$total (new key, not held) passed through unscanned" ||
	fail "rotation: messages after passed through"
since "$rot_mark" "$tmp/slice"
[ "$(count 'starttls tls=passthrough scanned=no reason=no-key server=10\.25\.0\.2:25' "$tmp/slice")" -ge $((total - at)) ] &&
	pass "rotation: the sessions after it logged reason=no-key" ||
	fail "rotation: reason=no-key" "$(grep -E 'starttls' "$tmp/slice" | tail -n 5)"
assert_no_grep 'starttls tls=intercept' "$tmp/slice" "rotation: no session after it intercepted with the old key"
n=$(count "tls key missing server=10\.25\.0\.2:25 subject=\"/CN=mx\.example\.test\" spki_sha256=$NEW_SPKI: " "$tmp/slice")
[ "$n" -eq 1 ] && pass "rotation: one warning naming the new key's digest" || fail "rotation: one warning" "$n"
# The new pair installed: interception again once tls_key_recheck is past.
cp "$tmp/rot/mx.example.test.pem" "$TLS/keys/mx-rotated.pem"
cp "$tmp/rot/mx.example.test-key.pem" "$TLS/keys/mx-rotated-key.pem"
ctl reload >/dev/null
wait_log 'tls keys reloaded keys=3$' 1 && pass "rotation: the new pair loaded on reload (keys=3)" ||
	fail "rotation: new pair loaded" "$(grep 'tls keys' "$LAB_SPORKD_LOG" | tail -n 2)"
sleep "$RECHECK.3"
m=$(mark)
submit bob@example.test s@client.example.test "rotation done" &&
	is "$last" 'status=sent' "rotation: the next message is sent" || fail "rotation: next message sent" "$last"
since "$m" "$tmp/slice"
assert_grep 'starttls tls=intercept scanned=yes$' "$tmp/slice" "rotation: interception resumes with the new pair"
wait_mail "$BOB" "rotation done" && scanned "$(mail_with "$BOB" "rotation done")" &&
	pass "rotation: and the message is scanned again" || fail "rotation: message scanned again"
ctl tls >"$tmp/tls"
assert_grep "^server=10\.25\.0\.2:25 subject=\"/CN=mx\.example\.test\" spki_sha256=$NEW_SPKI key=held key_file=mx-rotated\.pem " \
	"$tmp/tls" "sporkctl tls: the MX held with the new key"

# ---- outbound: inside MTAs get a leaf minted by a local CA
"$SPORK_REPO/scripts/spork-cert" "$tmp/localca" unused.example.test >/dev/null
"$SPORK_REPO/scripts/spork-cert" "$tmp/otherca" unused.example.test >/dev/null
cat >"$tmp/content.rules" <<'RULES'
rule cards-out dir=outbound dlp=card action=reject reply="550 5.7.1 Card numbers may not leave the company (cards-out)"
RULES
outbound=("tls_key_recheck ${RECHECK}s" "tls_outbound_clients $CLI_V4 $CLI_V6"
	"tls_outbound_ca_file $tmp/localca/ca.pem" "tls_outbound_ca_key_file $tmp/localca/ca-key.pem"
	"inside_networks 10.25.0.0/24 fd25::/64" "content_rules $tmp/content.rules")
start_sporkd "${outbound[@]}" "tls_outbound_verify_ca_file $TLS/ca.pem"
m=$(mark)
chain "$NS_CLI" "$SRV_V4:25" "$tmp/box"
since "$m" "$tmp/slice"
assert_grep 'starttls tls=intercept scanned=yes certificate=minted$' "$tmp/slice" "outbound: logged certificate=minted"
if [ -s "$tmp/box.c1" ]; then
	openssl verify -CAfile "$tmp/localca/ca.pem" "$tmp/box.c1" >/dev/null 2>&1 &&
		pass "outbound: the leaf the client saw is signed by the local CA" || fail "outbound: leaf signed by the local CA"
	openssl verify -CAfile "$TLS/ca.pem" "$tmp/box.c1" >/dev/null 2>&1 &&
		fail "outbound: a minted leaf, not the MX's" "it verifies against the lab CA" ||
		pass "outbound: a minted leaf, not the MX's own (the lab CA does not verify it)"
	[ "$(openssl x509 -in "$tmp/box.c1" -noout -subject)" = "$(openssl x509 -in "$TLS/cert.pem" -noout -subject)" ] &&
		pass "outbound: the minted leaf carries the MX's subject" ||
		fail "outbound: subject" "$(openssl x509 -in "$tmp/box.c1" -noout -subject)"
	[ "$(openssl x509 -in "$tmp/box.c1" -noout -ext subjectAltName)" = "$(openssl x509 -in "$TLS/cert.pem" -noout -ext subjectAltName)" ] &&
		pass "outbound: and its subjectAltName ($(openssl x509 -in "$TLS/cert.pem" -noout -ext subjectAltName | tail -n1 | sed 's/^ *//'))" ||
		fail "outbound: subjectAltName" "$(openssl x509 -in "$tmp/box.c1" -noout -ext subjectAltName | tail -n1)"
	[ "$(sed -n 2p "$tmp/box")" = "$(der_sha "$tmp/localca/ca.pem")" ] &&
		pass "outbound: the local CA's certificate follows it in the chain" || fail "outbound: chain" "$(tr '\n' ' ' <"$tmp/box")"
else
	fail "outbound: a certificate was shown" "none"
fi
# A rotated local CA: read again on reload (through the key reader: its
# key stays root's), the next leaf signed by it. A key that does not match
# the certificate is refused first, and the old CA keeps signing.
"$SPORK_REPO/scripts/spork-cert" "$tmp/newca" unused.example.test >/dev/null
cp "$tmp/localca/ca.pem" "$tmp/oldca.pem"
cp "$tmp/newca/ca-key.pem" "$tmp/localca/ca-key.pem"
reload_slice 'tls outbound CA (refused|reloaded)'
assert_grep 'sporkd\[error\] tls outbound CA refused: tls_outbound_ca_key_file does not match tls_outbound_ca_file \(the previous CA keeps signing\)$' \
	"$tmp/slice" "outbound CA rotation: a key that does not match refused on reload, the reason named"
chain "$NS_CLI" "$SRV_V4:25" "$tmp/box"
[ -s "$tmp/box.c1" ] && openssl verify -CAfile "$tmp/oldca.pem" "$tmp/box.c1" >/dev/null 2>&1 &&
	pass "outbound CA rotation: refused, the old CA still signs the leaf" ||
	fail "outbound CA rotation: the old CA still signs" "$(tr '\n' ' ' <"$tmp/box")"
cp "$tmp/newca/ca.pem" "$tmp/localca/ca.pem"
reload_slice 'tls outbound CA (refused|reloaded)'
assert_grep 'tls outbound CA reloaded subject="/CN=spork lab CA"$' "$tmp/slice" \
	"outbound CA rotation: the new CA and key loaded on reload"
chain "$NS_CLI" "$SRV_V4:25" "$tmp/box"
if [ -s "$tmp/box.c1" ]; then
	openssl verify -CAfile "$tmp/newca/ca.pem" "$tmp/box.c1" >/dev/null 2>&1 &&
		pass "outbound CA rotation: the next leaf is signed by the new CA" ||
		fail "outbound CA rotation: leaf signed by the new CA" "$(openssl x509 -in "$tmp/box.c1" -noout -issuer -serial)"
	openssl verify -CAfile "$tmp/oldca.pem" "$tmp/box.c1" >/dev/null 2>&1 &&
		fail "outbound CA rotation: no leaf of the old CA" "it verifies against the old CA" ||
		pass "outbound CA rotation: the leaf minted under the old CA is not given again"
	[ "$(sed -n 2p "$tmp/box")" = "$(der_sha "$tmp/newca/ca.pem")" ] &&
		pass "outbound CA rotation: the new CA's certificate follows it in the chain" ||
		fail "outbound CA rotation: chain" "$(tr '\n' ' ' <"$tmp/box")"
else
	fail "outbound CA rotation: a certificate was shown" "none"
fi
# A CA path that is a FIFO: refused at once by name (the key reader does
# not wait on it), and the reload after it is answered as its own. The CA
# put back is the one signing: unchanged, and the leaf already minted for
# the server is given again (not minted anew on every reload).
chain "$NS_CLI" "$SRV_V4:25" "$tmp/leaf-before"
mv "$tmp/localca/ca.pem" "$tmp/ca.pem.keep"
mkfifo "$tmp/localca/ca.pem"
reload_slice 'tls outbound CA (refused|reloaded)'
assert_grep "tls outbound CA refused: $tmp/localca/ca\\.pem: not a regular file \\(the previous CA keeps signing\\)\$" \
	"$tmp/slice" "outbound CA: a FIFO in its place refused, named, without waiting"
rm -f "$tmp/localca/ca.pem"
mv "$tmp/ca.pem.keep" "$tmp/localca/ca.pem"
reload_slice 'tls outbound CA (refused|reloaded|unchanged)'
assert_grep 'tls keys unchanged keys=' "$tmp/slice" "outbound CA: the reload after it gets the key set (the same pairs)"
assert_grep 'tls outbound CA unchanged \(minted leaves kept\)$' "$tmp/slice" \
	"outbound CA: and the CA back, the one signing: unchanged"
chain "$NS_CLI" "$SRV_V4:25" "$tmp/leaf-after"
[ -s "$tmp/leaf-before" ] && cmp -s "$tmp/leaf-before" "$tmp/leaf-after" &&
	pass "outbound CA unchanged: the same leaf (and chain) as before the reloads" ||
	fail "outbound CA unchanged: the same leaf" "$(tr '\n' ' ' <"$tmp/leaf-before") | $(tr '\n' ' ' <"$tmp/leaf-after")"
sender_conf "smtp_tls_CAfile = $tmp/localca/ca.pem" \
	"smtp_tls_policy_maps = inline:{ {[10.25.0.2]:25 = verify match=mx.example.test} }"
n=$(count 'Verified TLS connection established to 10\.25\.0\.2' "$SENDER_LOG")
m=$(mark)
submit bob@example.test s@client.example.test "outbound clean" &&
	is "$last" 'status=sent \(250 2\.0\.0 Ok' "outbound: clean message sent" || fail "outbound: clean message sent" "$last"
[ "$(count 'Verified TLS connection established to 10\.25\.0\.2' "$SENDER_LOG")" -gt "$n" ] &&
	pass "outbound: the sender, trusting only the local CA, verified mx.example.test" ||
	fail "outbound: verified" "$(tail -n 3 "$SENDER_LOG")"
wait_mail "$BOB" "outbound clean" && scanned "$(mail_with "$BOB" "outbound clean")" &&
	pass "outbound: delivered and scanned" || fail "outbound: delivered and scanned"
printf 'Please charge 4111 1111 1111 1111 for the order.\r\n' >"$tmp/card.txt"
submit bob@example.test '<>' "outbound card" --body "@$tmp/card.txt"
is "$last" 'status=bounced \(host 10\.25\.0\.2\[10\.25\.0\.2\] said: 550 5\.7\.1 Card numbers may not leave the company \(cards-out\)' \
	"outbound: the card number refused by the DLP rule inside TLS (sender's log)"
since "$m" "$tmp/slice"
assert_grep 'content decision action=reject rule=cards-out direction=outbound' "$tmp/slice" "outbound: the rule's decision logged"
[ "$(count 'certificate=minted$' "$tmp/slice")" -ge 2 ] && pass "outbound: both sessions minted" ||
	fail "outbound: both sessions minted" "$(grep starttls "$tmp/slice")"
sleep 0.5
[ -z "$(mail_with "$BOB" "outbound card")" ] && pass "outbound: the card message did not arrive" ||
	fail "outbound: card message not delivered" "$(mail_with "$BOB" "outbound card")"
ctl status >"$tmp/status"
assert_grep '^tls\.intercepted_outbound=[3-9]$' "$tmp/status" "status: tls.intercepted_outbound counts them"

# An MX the box cannot verify: 421 4.7.0, never plaintext.
start_sporkd "${outbound[@]}" "tls_outbound_verify_ca_file $tmp/otherca/ca.pem"
b0=$(maildir_count bob)
pm=$(mark "$LAB_MAILLOG")
m=$(mark)
send_mail "$tmp/t-421" bob@example.test a@client.example.test "$SRV_V4" "" --tls-optional --header "Subject: unverified"
assert_grep '^<\*\* +421 4\.7\.0 ' "$tmp/t-421" "outbound, MX not verified: the client got 421 4.7.0 to STARTTLS"
assert_no_grep '^<. +250 2\.0\.0 Ok: queued' "$tmp/t-421" "outbound, MX not verified: a client ready to go on in plaintext could not"
since "$m" "$tmp/slice"
assert_grep 'tls upstream failed server=10\.25\.0\.2:25 error="certificate verification failed' "$tmp/slice" \
	"outbound, MX not verified: the verification failure logged"
sleep 0.5
since "$pm" "$tmp/pf" "$LAB_MAILLOG"
assert_no_grep 'mail=|from=<a@client' "$tmp/pf" "outbound, MX not verified: Postfix got no MAIL"
submit bob@example.test s@client.example.test "unverified via sender"
is "$last" 'status=deferred .*421 4\.7\.0' "outbound, MX not verified: the sending Postfix deferred on 421 4.7.0"
in_cli postsuper -c "$SENDER_ETC" -d ALL >/dev/null 2>&1
[ "$(maildir_count bob)" -eq "$b0" ] && pass "outbound, MX not verified: nothing delivered" ||
	fail "outbound, MX not verified: nothing delivered" "$(($(maildir_count bob) - b0)) delivered"
ctl status >"$tmp/status"
assert_grep '^tls\.upstream_failed=[1-9]' "$tmp/status" "status: tls.upstream_failed counts it"
summary
