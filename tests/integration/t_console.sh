#!/bin/bash
# SPDX-License-Identifier: MIT
# The web console, spork-console, against the real sporkd in the lab: it
# listens on 127.0.0.1 in the bridge namespace (never a wildcard), runs
# as its own user (spork-web, in sporkd's group for the tracking database
# and in control_admin_group for releases), and a headless chromium
# driven by Selenium (console_browser.py) logs in, sees the chart with
# the lab's mail, finds a message by recipient, and releases a
# quarantined EICAR message, which then arrives at the lab's Postfix.
# curl checks the rest: CSRF refusals (403 and a log line, tokens of
# the wrong length or from the wrong cookie), a wrong password and the
# slowdown after it, 20 parallel wrong logins (refused or delayed, the
# console's memory bounded), the security headers and __Host- cookies,
# TLS 1.2+ with forward secrecy and AEAD only (openssl s_client), logout
# and a second login ending the old session, /metrics (sporkd's counters)
# for console_metrics_networks only, session expiry, tracking searches
# with LIKE wildcards taken literally, mail whose Subject, sender and
# Message-ID carry <script> shown as text, and a track_db path with
# '?' and '%'. Every refusal at start runs under `timeout 5`.
set -u
export SPORK_LAB_NAME=${SPORK_LAB_NAME:-console}
. "$(dirname "$0")/lib.sh"
tmp=$(mktemp -d)
chmod 755 "$tmp"
console_pids=()
stop_consoles() {
	local p
	for p in "${console_pids[@]}"; do
		kill "$p" 2>/dev/null
	done
	id spork-gid0 >/dev/null 2>&1 && userdel spork-gid0 2>/dev/null
	return 0
}
trap 'stop_consoles; rm -rf "$LAB_DIR/track"; lab_down; rm -rf "$tmp"' EXIT
CONSOLE=${SPORK_CONSOLE:-$SPORK_REPO/build/spork-console}
PY=/usr/bin/python3	# Debian's, with python3-selenium
ART=$SPORK_REPO/tests/integration/artifacts
PW='lab-console-pw'
EICAR='X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*'

missing=()
[ -x "$CONSOLE" ] || missing+=("build/spork-console (make build/spork-console)")
for c in /usr/bin/chromium /usr/bin/chromedriver curl; do
	command -v "$c" >/dev/null 2>&1 || missing+=("$c")
done
"$PY" -c 'import selenium' 2>/dev/null || missing+=("python3-selenium")
if [ ${#missing[@]} -gt 0 ]; then
	echo "$(basename "$0"): missing: ${missing[*]} (run scripts/install-deps)" >&2
	exit 1
fi

# The console's identity: its own user, in sporkd's group (the tracking
# database is 0640 spork:spork) and in control_admin_group.
getent group spork-ctl >/dev/null || groupadd --system spork-ctl
id spork-web >/dev/null 2>&1 ||
	useradd --system --no-create-home --home-dir /nonexistent \
		--shell /usr/sbin/nologin spork-web
lab_up
id spork >/dev/null 2>&1 && usermod -a -G spork,spork-ctl spork-web

"$SPORK_REPO/scripts/spork-cert" "$tmp/cert" console.example.test >/dev/null 2>&1 ||
	{ echo "spork-cert failed" >&2; exit 1; }
printf '%s' "$PW" | "$CONSOLE" -p >"$tmp/hash"
assert_grep '^\$y\$' "$tmp/hash" "spork-console -p: a yescrypt hash"
printf 'alice:%s\nbob:%s\n' "$(cat "$tmp/hash")" \
	"$(printf other | "$CONSOLE" -p)" >"$tmp/users"
chgrp spork-web "$tmp/users" && chmod 640 "$tmp/users"
rm -rf "$LAB_DIR/track"	# never an earlier run's records
mkdir -p "$LAB_DIR/track"
chown spork:spork "$LAB_DIR/track" && chmod 750 "$LAB_DIR/track"
DB=$LAB_DIR/track/track.db

{
	cat "$LAB_DIR/spork.conf"
	cat <<EOF
virus_action quarantine
quarantine_then reject
control_admin_group spork-ctl
track_db $DB
console_listen 127.0.0.1:8443
console_user spork-web
console_users_file $tmp/users
console_cert_file $tmp/cert/console.example.test.pem
console_key_file $tmp/cert/console.example.test-key.pem
console_session_timeout 10m
console_metrics_networks 127.0.0.0/8
EOF
} >"$tmp/run.conf"
lab start-sporkd "$tmp/run.conf" 2>/dev/null || { fail "sporkd start" "see $LAB_SPORKD_LOG"; summary; exit 1; }
# sporkd makes its control socket root:root 0660; the console reaches
# it through control_admin_group, as an installation would arrange.
chgrp spork-ctl "$LAB_DIR/sporkd.sock"

# start_console CONF LOG: spork-console in the bridge namespace, as root
# (it drops to console_user); waits for its listener.
start_console() {
	ip netns exec "$NS_BR" "$CONSOLE" -d -c "$1" >"$2" 2>&1 &
	console_pids+=($!)
	local i
	for i in $(seq 50); do
		grep -q 'console listening' "$2" && return 0
		kill -0 "${console_pids[-1]}" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}
CURL=(ip netns exec "$NS_BR" curl -sk --max-time 90)
URL=https://127.0.0.1:8443

# --- refusals at start: a wildcard address, root as console_user, a
# console_user in group root. Under `timeout 5`: a console that starts
# after all is a failure, never a hang.
# refused NAME CONF LOG PATTERN
refused() {
	local rc
	ip netns exec "$NS_BR" timeout 5 "$CONSOLE" -d -c "$2" >"$3" 2>&1
	rc=$?
	case $rc in
	124) fail "$1" "it started (killed after 5 s)" ;;
	0) fail "$1" "it exited 0" ;;
	*) assert_grep "$4" "$3" "$1 (exit $rc)" ;;
	esac
}
sed 's/^console_listen .*/console_listen 0.0.0.0:8445/' "$tmp/run.conf" >"$tmp/wild.conf"
refused "wildcard console_listen refused with a reason" "$tmp/wild.conf" "$tmp/wild.log" \
	'console_listen: a wildcard address'
sed 's/^console_user .*/console_user root/' "$tmp/run.conf" >"$tmp/root.conf"
refused "console_user root refused" "$tmp/root.conf" "$tmp/root.log" 'still root'
# A user whose primary group is root: not root, but gid 0 after the drop.
id spork-gid0 >/dev/null 2>&1 ||
	useradd --system --no-create-home --home-dir /nonexistent \
		--shell /usr/sbin/nologin -g root spork-gid0
sed -e 's/^console_user .*/console_user spork-gid0/' \
	-e 's/^console_listen .*/console_listen 127.0.0.1:8446/' "$tmp/run.conf" >"$tmp/gid0.conf"
refused "console_user in group root refused" "$tmp/gid0.conf" "$tmp/gid0.log" 'still in group root'

check "console started" start_console "$tmp/run.conf" "$tmp/console.log"
cpid=${console_pids[0]}
[ "$(awk '/^Uid:/ { print $2 $3 $4 $5 }' "/proc/$cpid/status")" = "$(id -u spork-web)$(id -u spork-web)$(id -u spork-web)$(id -u spork-web)" ] &&
	pass "console runs as spork-web (all four uids)" ||
	fail "console runs as spork-web" "$(grep ^Uid: "/proc/$cpid/status")"
grep -E '^(Gid|Groups):' "/proc/$cpid/status" >"$tmp/gids"
if [ "$(grep -c '^Gid:' "$tmp/gids")" = 1 ] && ! grep -Eq '[[:space:]]0([[:space:]]|$)' "$tmp/gids"; then
	pass "console has no group root (Gid: and Groups: lines)"
else
	fail "console has no group root" "$(tr '\n' ' ' <"$tmp/gids")"
fi
ip netns exec "$NS_BR" ss -Hltnp | grep "pid=$cpid," >"$tmp/listen"
# Exactly one listener, on 127.0.0.1:8443, and no wildcard one.
if [ "$(wc -l <"$tmp/listen")" = 1 ] && grep -q ' 127\.0\.0\.1:8443 ' "$tmp/listen" &&
	! grep -Eq ' (0\.0\.0\.0|\*|\[::\]|\[::ffff:0\.0\.0\.0\]):[0-9]+ ' "$tmp/listen"; then
	pass "console listens on 127.0.0.1:8443 only (no wildcard socket)"
else
	fail "console listens on 127.0.0.1:8443 only" "$(cat "$tmp/listen")"
fi

# --- TLS: 1.2 and 1.3, forward secrecy and AEAD only
tls() { ip netns exec "$NS_BR" timeout 10 openssl s_client -connect 127.0.0.1:8443 "$@" </dev/null >"$tmp/tls.out" 2>&1; }
tls -tls1_3 && pass "TLS 1.3 handshake" || fail "TLS 1.3 handshake" "$(tail -n3 "$tmp/tls.out")"
tls -tls1_2 -cipher ECDHE-RSA-AES256-GCM-SHA384 && pass "TLS 1.2 ECDHE-RSA-AES256-GCM-SHA384 handshake" ||
	fail "TLS 1.2 ECDHE with AES-GCM" "$(tail -n3 "$tmp/tls.out")"
tls -tls1_2 -cipher AES128-SHA && fail "TLS 1.2 AES128-SHA (RSA key exchange, CBC, SHA-1) refused" "it connected" ||
	pass "TLS 1.2 AES128-SHA (RSA key exchange, CBC, SHA-1) refused"
tls -tls1_2 -cipher ECDHE-RSA-AES128-SHA && fail "TLS 1.2 ECDHE-RSA-AES128-SHA (CBC, SHA-1) refused" "it connected" ||
	pass "TLS 1.2 ECDHE-RSA-AES128-SHA (CBC, SHA-1) refused"
# SECLEVEL=0: OpenSSL itself would not even offer TLS 1.1 otherwise.
tls -tls1_1 -cipher 'DEFAULT:@SECLEVEL=0' && fail "TLS 1.1 refused" "it connected" ||
	pass "TLS 1.1 refused"

# --- mail through the lab: three clean to alice, EICAR to bob (quarantined)
for i in 1 2 3; do
	send_mail "$tmp/t-clean$i" alice@example.test sender@client.example.test \
		"$SRV_V4" "" --header "Subject: console clean $i" \
		--header "Message-ID: <console-clean-$i@client.example.test>"
done
check "clean mail delivered" wait_delivered alice 3 15
printf '%s' "$EICAR" >"$tmp/eicar.com"
send_mail "$tmp/t-eicar" bob@example.test virus@client.example.test "$SRV_V4" "" \
	--attach "@$tmp/eicar.com" --header "Subject: console eicar" \
	--body 'Invoice <script>alert(1)</script> & more'

assert_grep '^<\*\* +550 5\.7\.1 .*Eicar' "$tmp/t-eicar" "EICAR refused (and quarantined)"
# A sender's words that would be markup: Subject, envelope sender and
# Message-ID with <script> and a double quote, for the tracking pages
# (sporkd records a sender's double quotes as '?': that one is a "?").
XSS_SUBJ='<script>alert("subj")</script> "quoted"'
XSS_FROM='"<script>x</script>"@client.example.test'
XSS_MID='<xss-"q"<script>alert(2)</script>@client.example.test>'
printf 'From: <sender@client.example.test>\r\nTo: <alice@example.test>\r\nSubject: %s\r\nMessage-ID: %s\r\nDate: %s\r\n\r\nmarkup in the header\r\n' \
	"$XSS_SUBJ" "$XSS_MID" "$(date -R)" >"$tmp/xss.eml"
send_mail "$tmp/t-xss" alice@example.test "$XSS_FROM" "$SRV_V4" "" --data "@$tmp/xss.eml"
check "mail with <script> in Subject, sender and Message-ID delivered" wait_delivered alice 4 15
qid=$(ctl quarantine list | sed -n 's/^\([0-9A-Za-z-]*\) .*sender=<virus@client.*/\1/p' | tail -n1)
[ -n "$qid" ] && pass "EICAR in the quarantine ($qid)" || fail "EICAR in the quarantine" "$(ctl quarantine list)"

# --- the tracking database: sporkd's records, nothing else
rows() { "$PY" - "$DB" <<'PY' 2>/dev/null
import sqlite3, sys
try:
    db = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
    print(db.execute("SELECT COUNT(*) FROM messages").fetchone()[0])
except Exception:
    print(0)
PY
}
n=0
for i in $(seq 50); do
	n=$(rows)
	[ "$n" -ge 5 ] && break
	sleep 0.2
done
[ "$n" -ge 5 ] && pass "sporkd wrote tracking records ($n)" ||
	fail "sporkd wrote tracking records" "$n in $DB, want 5"
stat -c '%a %U:%G' "$DB" >"$tmp/dbmode"
assert_grep '^640 spork:spork$' "$tmp/dbmode" "tracking database 0640 spork:spork"

# --- curl: headers, login, CSRF, metrics
"${CURL[@]}" -D "$tmp/h-login" -c "$tmp/jar" -o "$tmp/login.html" "$URL/login"
assert_grep "^Content-Security-Policy: default-src 'none'" "$tmp/h-login" "header: CSP default-src 'none'"
assert_grep '^X-Frame-Options: DENY' "$tmp/h-login" "header: X-Frame-Options DENY"
assert_grep '^Cache-Control: no-store' "$tmp/h-login" "header: Cache-Control no-store"
assert_grep '^Strict-Transport-Security: max-age=[0-9]{7,}' "$tmp/h-login" "header: Strict-Transport-Security"
assert_grep '^Set-Cookie: __Host-spork_login=[0-9a-f]{64}; Path=/; Secure; HttpOnly; SameSite=Strict' "$tmp/h-login" "login form: __Host- pre-login token cookie, Path=/, Secure, HttpOnly, SameSite=Strict"
assert_no_grep '^Set-Cookie: .*Domain=' "$tmp/h-login" "login form: no Domain on the cookie"
ltok=$(sed -n 's/.*name="csrf" value="\([0-9a-f]*\)".*/\1/p' "$tmp/login.html")
# now_ms: a clock in milliseconds.
now_ms() { date +%s%3N; }
code=$("${CURL[@]}" -o /dev/null -w '%{http_code}' -b "$tmp/jar" \
	--data-urlencode user=alice --data-urlencode password=wrong -d "csrf=$ltok" "$URL/login")
[ "$code" = 403 ] && pass "wrong password: 403" || fail "wrong password: 403" "$code"
assert_grep 'console user=alice action=login result=failed from=127\.0\.0\.1 delay_s=1$' "$tmp/console.log" "wrong password: logged, the next attempt waits 1 s"
# last_delay: the delay_s of the console's newest failed login line.
last_delay() { sed -n 's/.*action=login result=failed from=127\.0\.0\.1 delay_s=\([0-9]*\)$/\1/p' "$1" | tail -n1; }
d=$(last_delay "$tmp/console.log")
t0=$(now_ms)
code=$("${CURL[@]}" -o /dev/null -w '%{http_code}' -b "$tmp/jar" \
	--data-urlencode user=alice --data-urlencode password=wrong2 -d "csrf=$ltok" "$URL/login")
ms=$(($(now_ms) - t0))
[ "$code" = 403 ] && [ -n "$d" ] && [ "$d" -ge 1 ] && [ "$ms" -ge $((d * 1000)) ] &&
	pass "second failure waited the logged delay (delay_s=$d, $ms ms)" ||
	fail "second failure slowed" "$code after $ms ms, logged delay_s=$d"
assert_grep 'console user=alice action=login result=failed from=127\.0\.0\.1 delay_s=2$' "$tmp/console.log" "second failure: the next attempt waits 2 s"
code=$("${CURL[@]}" -o /dev/null -w '%{http_code}' \
	--data-urlencode user=alice --data-urlencode "password=$PW" "$URL/login")
[ "$code" = 403 ] && pass "login POST without its form token: 403" || fail "login without token: 403" "$code"
# The right password, with the pre-login cookie but a form token that is
# not the cookie's, or empty, 63 or 65 bytes long: all 403.
other=$(printf '%064d' 7)
code=$("${CURL[@]}" -o /dev/null -w '%{http_code}' -b "__Host-spork_login=$other" \
	--data-urlencode user=alice --data-urlencode "password=$PW" -d "csrf=$ltok" "$URL/login")
[ "$code" = 403 ] && pass "login: form token not the cookie's: 403" || fail "login: mismatched cookie and form token: 403" "$code"
for t in "" "${ltok:0:63}" "${ltok}0"; do
	code=$("${CURL[@]}" -o /dev/null -w '%{http_code}' -b "$tmp/jar" \
		--data-urlencode user=alice --data-urlencode "password=$PW" -d "csrf=$t" "$URL/login")
	[ "$code" = 403 ] && pass "login: a ${#t}-byte form token: 403" || fail "login: a ${#t}-byte form token: 403" "$code"
done
t0=$(now_ms)
code=$("${CURL[@]}" -o /dev/null -w '%{http_code}' -D "$tmp/h-in" -b "$tmp/jar" -c "$tmp/jar" \
	--data-urlencode user=alice --data-urlencode "password=$PW" -d "csrf=$ltok" "$URL/login")
ms=$(($(now_ms) - t0))
[ "$code" = 303 ] && [ "$ms" -ge 2000 ] && pass "right password: logged in (after the 2 s the failures asked, $ms ms)" ||
	fail "right password: logged in after 2 s" "$code after $ms ms"
assert_grep '^Set-Cookie: __Host-spork_session=[0-9a-f]{64}; Path=/; Secure; HttpOnly; SameSite=Strict' "$tmp/h-in" "session cookie: __Host-, 256-bit id, Path=/, Secure, HttpOnly, SameSite=Strict"
assert_grep 'console user=alice action=login result=ok from=127\.0\.0\.1' "$tmp/console.log" "login: logged"
sid1=$(awk '$6 == "__Host-spork_session" { print $7 }' "$tmp/jar")
"${CURL[@]}" -b "$tmp/jar" -o "$tmp/q.html" "$URL/quarantine/delete?id=$qid"
stok=$(sed -n 's/.*name="csrf" value="\([0-9a-f]*\)".*/\1/p' "$tmp/q.html" | head -n1)
[ ${#stok} = 64 ] && pass "confirmation page carries the session's token" || fail "confirmation token" "$stok"
code=$("${CURL[@]}" -o /dev/null -w '%{http_code}' -b "$tmp/jar" -d "id=$qid" "$URL/quarantine/delete")
[ "$code" = 403 ] && pass "POST delete without CSRF token: 403" || fail "POST without CSRF token: 403" "$code"
# Another token: the same but its last digit.
case $stok in *0) wrong=${stok%?}1 ;; *) wrong=${stok%?}0 ;; esac
code=$("${CURL[@]}" -o /dev/null -w '%{http_code}' -b "$tmp/jar" -d "id=$qid&csrf=$wrong" "$URL/quarantine/delete")
[ "$code" = 403 ] && pass "POST delete with a wrong CSRF token: 403" || fail "POST with a wrong token: 403" "$code"
for t in "" "${stok:0:63}" "${stok}0"; do
	code=$("${CURL[@]}" -o /dev/null -w '%{http_code}' -b "$tmp/jar" -d "id=$qid&csrf=$t" "$URL/quarantine/delete")
	[ "$code" = 403 ] && pass "POST delete with a ${#t}-byte CSRF token: 403" || fail "POST delete with a ${#t}-byte token: 403" "$code"
done
# Ids that are not ids: 400 on every quarantine page, GET and POST.
for u in "show?id=../x" "show?id=a%20b" "release?id=../x" "delete?id=a%20b"; do
	code=$("${CURL[@]}" -o /dev/null -w '%{http_code}' -b "$tmp/jar" "$URL/quarantine/$u")
	[ "$code" = 400 ] && pass "GET /quarantine/$u: 400" || fail "GET /quarantine/$u: 400" "$code"
done
for v in "../x" "a%20b"; do
	code=$("${CURL[@]}" -o /dev/null -w '%{http_code}' -b "$tmp/jar" -d "id=$v&csrf=$stok" "$URL/quarantine/release")
	[ "$code" = 400 ] && pass "POST /quarantine/release id=$v: 400" || fail "POST release id=$v: 400" "$code"
done
code=$("${CURL[@]}" -o /dev/null -w '%{http_code}' -b "$tmp/jar" "$URL/quarantine/delete?id=$qid&csrf=$stok")
[ "$code" = 200 ] && ctl quarantine show "$qid" >/dev/null && pass "GET never deletes (token or not)" ||
	fail "GET never deletes" "$code"
assert_grep "console user=alice action=/quarantine/delete result=refused reason=csrf from=127\.0\.0\.1" "$tmp/console.log" "CSRF refusal logged"
ctl quarantine show "$qid" >/dev/null && pass "the message is still in the quarantine" || fail "still quarantined" "$qid"
code=$("${CURL[@]}" -o /dev/null -w '%{http_code}' -d "id=$qid" "$URL/quarantine/delete")
[ "$code" = 403 ] && pass "POST without a session: 403" || fail "POST without a session: 403" "$code"

code=$("${CURL[@]}" -o "$tmp/metrics" -D "$tmp/h-metrics" -w '%{http_code}' "$URL/metrics")
[ "$code" = 200 ] && pass "/metrics from 127.0.0.1 (in console_metrics_networks), no login: 200" ||
	fail "/metrics without login from a listed network: 200" "$code"
assert_grep '^Content-Type: text/plain; version=0\.0\.4' "$tmp/h-metrics" "/metrics: Prometheus text format"
assert_grep '^spork_messages_total\{.*\} [0-9]+' "$tmp/metrics" "/metrics: sporkd's spork_messages_total"

# --- tracking: LIKE wildcards in a client address are themselves
trk() { "${CURL[@]}" -b "$tmp/jar" -o "$1" -w '%{http_code}' "$URL/track?$2"; }
count() { sed -n 's/.*<p id="count">\([0-9]*\) message.*/\1/p' "$1"; }
trk "$tmp/tr-client" "client=10.25.0.1" >/dev/null
n=$(count "$tmp/tr-client")
[ "${n:-0}" -ge 5 ] && pass "search by client address 10.25.0.1: $n messages" || fail "search by client address" "${n:-none}"
for v in "%25" "10.25.0._" "10.25.0.%25"; do
	trk "$tmp/tr-wild" "client=$v" >/dev/null
	n=$(count "$tmp/tr-wild")
	[ "$n" = 0 ] && pass "search client=$v: wildcards literal, 0 messages" || fail "search client=$v: 0 messages" "${n:-none}"
done
assert_grep 'console user=alice action=track q\.client="10\.25\.0\._" from=127\.0\.0\.1$' "$tmp/console.log" "tracking search logged"

# --- a sender's markup is text on the tracking pages
code=$(trk "$tmp/tr-xss" "msgid=xss-")
n=$(count "$tmp/tr-xss")
[ "$code" = 200 ] && [ "$n" = 1 ] && pass "search by Message-ID finds the <script> mail" || fail "search finds the <script> mail" "$code, ${n:-none}"
assert_no_grep '<script' "$tmp/tr-xss" "search results: no <script element from the mail"
assert_grep '&lt;script&gt;alert\(&quot;subj&quot;\)&lt;/script&gt; &quot;quoted&quot;' "$tmp/tr-xss" "search results: the Subject as text"
assert_grep '\?&lt;script&gt;x&lt;/script&gt;\?@client\.example\.test' "$tmp/tr-xss" "search results: the sender as text"
xid=$(sed -n 's/.*href="\/track\/message?id=\([0-9]*\)".*/\1/p' "$tmp/tr-xss" | head -n1)
code=$("${CURL[@]}" -b "$tmp/jar" -o "$tmp/msg-xss" -w '%{http_code}' "$URL/track/message?id=$xid")
[ "$code" = 200 ] && pass "the <script> mail's story: 200" || fail "the <script> mail's story" "$code"
assert_no_grep '<script' "$tmp/msg-xss" "message page: no <script element from the mail"
assert_grep '&lt;xss-&quot;q&quot;&lt;script&gt;alert\(2\)&lt;/script&gt;@client\.example\.test&gt;' "$tmp/msg-xss" "message page: the Message-ID as text"
assert_grep '<td>&lt;script&gt;alert\(&quot;subj&quot;\)&lt;/script&gt; &quot;quoted&quot;</td>' "$tmp/msg-xss" "message page: the Subject as text"
assert_grep '<td>\?&lt;script&gt;x&lt;/script&gt;\?@client\.example\.test</td>' "$tmp/msg-xss" "message page: the sender as text"
assert_grep "console user=alice action=track-view id=$xid result=ok from=127\\.0\\.0\\.1" "$tmp/console.log" "message view logged"

# --- logout and a second login end sessions on the server
code=$("${CURL[@]}" -o /dev/null -w '%{http_code}' -D "$tmp/h-relogin" \
	-H "Cookie: __Host-spork_session=$sid1; __Host-spork_login=$ltok" \
	--data-urlencode user=alice --data-urlencode "password=$PW" -d "csrf=$ltok" "$URL/login")
sid2=$(sed -n 's/^Set-Cookie: __Host-spork_session=\([0-9a-f]\{64\}\);.*/\1/p' "$tmp/h-relogin" | tr -d '\r')
[ "$code" = 303 ] && [ ${#sid2} = 64 ] && [ "$sid2" != "$sid1" ] && pass "logging in again: a new session" ||
	fail "logging in again: a new session" "$code"
code=$("${CURL[@]}" -o /dev/null -w '%{http_code}:%{redirect_url}' -H "Cookie: __Host-spork_session=$sid1" "$URL/")
[ "$code" = "303:$URL/login" ] && pass "the session before it has ended (303 to /login)" || fail "the old session ended with the new login" "$code"
assert_grep 'console user=alice action=session-replaced from=127\.0\.0\.1' "$tmp/console.log" "the replaced session logged"
"${CURL[@]}" -H "Cookie: __Host-spork_session=$sid2" -o "$tmp/dash2.html" "$URL/"
tok2=$(sed -n 's/.*name="csrf" value="\([0-9a-f]*\)".*/\1/p' "$tmp/dash2.html" | head -n1)
code=$("${CURL[@]}" -o /dev/null -w '%{http_code}' -D "$tmp/h-logout" -H "Cookie: __Host-spork_session=$sid2" \
	-d "csrf=$tok2" "$URL/logout")
[ "$code" = 303 ] && pass "logout: 303" || fail "logout: 303" "$code"
assert_grep '^Set-Cookie: __Host-spork_session=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0' "$tmp/h-logout" "logout clears the cookie"
code=$("${CURL[@]}" -o /dev/null -w '%{http_code}:%{redirect_url}' -H "Cookie: __Host-spork_session=$sid2" "$URL/")
[ "$code" = "303:$URL/login" ] && pass "the logged-out session's cookie replayed: 303 to /login" || fail "replayed cookie after logout" "$code"

# --- the browser
rm -f "$ART"/console-*.png
in_br "$PY" "$SPORK_REPO/tests/integration/console_browser.py" --url "$URL" \
	--user alice --password "$PW" --rcpt alice@example.test \
	--release "$qid" --xss-msgid xss- --xss-subject "$XSS_SUBJ" \
	--artifacts "$tmp/art" >"$tmp/browser.out" 2>&1
cat "$tmp/browser.out"
TESTS_PASSED=$((TESTS_PASSED + $(grep -c '^ok ' "$tmp/browser.out")))
TESTS_FAILED=$((TESTS_FAILED + $(grep -c '^FAIL ' "$tmp/browser.out")))
grep -q '^browser test:' "$tmp/browser.out" || fail "browser test ran to its end" "see above"
mkdir -p "$ART"
for p in dashboard tracking quarantine; do
	if [ -s "$tmp/art/console-$p.png" ]; then
		cp "$tmp/art/console-$p.png" "$ART/"
		pass "screenshot console-$p.png ($(stat -c %s "$ART/console-$p.png") bytes)"
	else
		fail "screenshot console-$p.png" "missing"
	fi
done

check "released EICAR arrived at the server" wait_delivered bob 1 20
f=$(maildir_files bob | tail -n1)
assert_grep "^X-Spork-Released: id=$qid" "$f" "released message marked X-Spork-Released"
assert_grep "console user=alice action=release id=$qid result=ok from=127\.0\.0\.1" "$tmp/console.log" "release logged with user, id, result, address"
assert_grep "quarantine id=$qid release=delivered" "$LAB_SPORKD_LOG" "sporkd logged the release"

# --- 20 wrong logins at once from one address: at most 4 connections
# from there, at most 2 password hashes (yescrypt, ~16 MiB each) at a
# time, each attempt counted before its hash so that the others wait.
# The console's peak resident memory (VmHWM) stays under 96 MiB (without
# the limits, 20 hashes at once take over 300 MiB).
hwm() { awk '/^VmHWM:/ { print $2 }' "/proc/$cpid/status"; }
"${CURL[@]}" -c "$tmp/jar3" -o "$tmp/login3.html" "$URL/login"
ltok3=$(sed -n 's/.*name="csrf" value="\([0-9a-f]*\)".*/\1/p' "$tmp/login3.html")
hwm0=$(hwm)
fpids=()
for i in $(seq 20); do
	(
		t0=$(now_ms)
		c=$("${CURL[@]}" -o /dev/null -w '%{http_code}' -b "$tmp/jar3" \
			--data-urlencode user=alice --data-urlencode "password=wrong-$i" \
			-d "csrf=$ltok3" "$URL/login")
		echo "$c $(($(now_ms) - t0))" >"$tmp/flood.$i"
	) &
	fpids+=($!)
done
wait "${fpids[@]}"
hwm1=$(hwm)
cat "$tmp"/flood.* >"$tmp/flood"
fast=$(awk '$1 == 403 && $2 < 1000' "$tmp/flood" | wc -l)
slowed=$(awk '$1 == 403 && $2 >= 1000' "$tmp/flood" | wc -l)
refused=$(awk '$1 != 403' "$tmp/flood" | wc -l)
echo "note: 20 parallel wrong logins: $fast answered at once, $slowed delayed, $refused refused ($(awk '{ print $1 }' "$tmp/flood" | sort | uniq -c | tr -s ' \n' ' ')); VmHWM ${hwm0} -> ${hwm1} kB"
[ "$fast" -le 2 ] && [ $((slowed + refused)) -ge 18 ] &&
	pass "20 parallel wrong logins: $slowed delayed, $refused refused, $fast at once" ||
	fail "20 parallel wrong logins mostly refused or delayed" "$fast at once, $slowed delayed, $refused refused"
[ -n "$hwm1" ] && [ "$hwm1" -lt $((96 * 1024)) ] && pass "console's peak RSS under 96 MiB ($hwm1 kB)" ||
	fail "console's peak RSS under 96 MiB" "${hwm1:-?} kB"
# 12 wrong logins at once from 12 addresses (127.0.0.2-13), for an
# account that does not exist (no per-account delay; the same hash work):
# nothing delays them, so only the two hash slots stand between them and
# 12 yescrypt hashes at once. Those beyond the slots get 503 and a
# Retry-After; the peak RSS bound above holds.
fpids=()
for i in $(seq 2 13); do
	(
		h=$("${CURL[@]}" --interface "127.0.0.$i" -o /dev/null -D - -w '%{http_code}' -b "$tmp/jar3" \
			--data-urlencode user=nobody-here --data-urlencode "password=wrong-$i" \
			-d "csrf=$ltok3" "$URL/login" | tr -d '\r')
		echo "${h##*$'\n'} $(grep -ci '^Retry-After: [0-9]' <<<"$h")" >"$tmp/spread.$i"
	) &
	fpids+=($!)
done
wait "${fpids[@]}"
hwm2=$(hwm)
cat "$tmp"/spread.* >"$tmp/spread"
busy=$(awk '$1 == 503 && $2 == 1' "$tmp/spread" | wc -l)
other=$(awk '$1 != 403 && !($1 == 503 && $2 == 1)' "$tmp/spread" | wc -l)
echo "note: 12 wrong logins from 12 addresses: $busy refused as busy (503 with Retry-After), answers: $(awk '{ print $1 }' "$tmp/spread" | sort | uniq -c | tr -s ' \n' ' '); VmHWM $hwm2 kB"
[ "$other" = 0 ] && pass "12 logins from 12 addresses: each 403, or 503 with Retry-After ($busy)" ||
	fail "12 logins from 12 addresses: 403 or 503 with Retry-After" "$(tr '\n' ' ' <"$tmp/spread")"
[ -n "$hwm2" ] && [ "$hwm2" -lt $((96 * 1024)) ] && pass "console's peak RSS still under 96 MiB ($hwm2 kB)" ||
	fail "console's peak RSS under 96 MiB after 12 addresses" "${hwm2:-?} kB"
# The right password still gets in (after the delay the failures ask),
# and clears the address's count: the next failure waits 1 s again.
t0=$(now_ms)
code=$("${CURL[@]}" -o /dev/null -w '%{http_code}' -b "$tmp/jar3" \
	--data-urlencode user=alice --data-urlencode "password=$PW" -d "csrf=$ltok3" "$URL/login")
ms=$(($(now_ms) - t0))
if [ "$code" = 503 ]; then	# the minute's cap: once more after it
	sleep "$(( 61 - $(date +%S | sed 's/^0//') ))"
	code=$("${CURL[@]}" -o /dev/null -w '%{http_code}' -b "$tmp/jar3" \
		--data-urlencode user=alice --data-urlencode "password=$PW" -d "csrf=$ltok3" "$URL/login")
fi
[ "$code" = 303 ] && pass "after the flood the right password logs in ($ms ms)" || fail "right password after the flood" "$code after $ms ms"
"${CURL[@]}" -c "$tmp/jar4" -o "$tmp/login4.html" "$URL/login"
ltok4=$(sed -n 's/.*name="csrf" value="\([0-9a-f]*\)".*/\1/p' "$tmp/login4.html")
"${CURL[@]}" -o /dev/null -b "$tmp/jar4" --data-urlencode user=alice \
	--data-urlencode password=wrong-again -d "csrf=$ltok4" "$URL/login"
d=$(last_delay "$tmp/console.log")
[ "$d" = 1 ] && pass "the login reset the address's count (next failure: delay_s=1)" || fail "count reset after the login" "delay_s=$d"

# --- a second console: a short session timeout, metrics networks elsewhere
# and track_db through a name with '?' and '%' (a link to the same
# database; spork.conf takes '#' as a comment), which its file: URI must
# carry as the path's.
ln -s track.db "$LAB_DIR/track/odd?%41.db"
sed -e 's/^console_listen .*/console_listen 127.0.0.1:8444/' \
	-e 's/^console_session_timeout .*/console_session_timeout 2s/' \
	-e 's/^console_metrics_networks .*/console_metrics_networks 192.0.2.0\/24/' \
	-e "s|^track_db .*|track_db $LAB_DIR/track/odd?%41.db|" \
	"$tmp/run.conf" >"$tmp/short.conf"
check "second console started" start_console "$tmp/short.conf" "$tmp/console2.log"
U2=https://127.0.0.1:8444
code=$("${CURL[@]}" -o /dev/null -w '%{http_code}' "$U2/metrics")
[ "$code" = 401 ] && pass "/metrics from outside console_metrics_networks without login: 401" ||
	fail "/metrics outside the networks: 401" "$code"
"${CURL[@]}" -c "$tmp/jar2" -o "$tmp/login2.html" "$U2/login"
ltok=$(sed -n 's/.*name="csrf" value="\([0-9a-f]*\)".*/\1/p' "$tmp/login2.html")
"${CURL[@]}" -o /dev/null -b "$tmp/jar2" -c "$tmp/jar2" --data-urlencode user=alice \
	--data-urlencode "password=$PW" -d "csrf=$ltok" "$U2/login"
code=$("${CURL[@]}" -o /dev/null -w '%{http_code}' -b "$tmp/jar2" "$U2/metrics")
[ "$code" = 200 ] && pass "/metrics with a login from outside the networks: 200" || fail "/metrics with a login: 200" "$code"
"${CURL[@]}" -b "$tmp/jar2" -o "$tmp/tr-odd" "$U2/track?rcpt=alice"
n=$(count "$tmp/tr-odd")
[ "${n:-0}" -ge 4 ] && pass "track_db named with '?' and '%': $n messages" ||
	fail "track_db named with '?' and '%'" "$(sed -n 's/.*class="err">\([^<]*\).*/\1/p' "$tmp/tr-odd" | head -n1)"
code=$("${CURL[@]}" -o /dev/null -w '%{http_code}' -b "$tmp/jar2" "$U2/")
[ "$code" = 200 ] && pass "session alive within the timeout" || fail "session alive" "$code"
sleep 3
code=$("${CURL[@]}" -o /dev/null -w '%{http_code}:%{redirect_url}' -b "$tmp/jar2" "$U2/")
[ "${code%%:*}" = 303 ] && [ "${code#*/login}" != "$code" ] && pass "session expired after 2 s idle: back to /login" ||
	fail "session expiry" "$code"
assert_grep 'console user=alice action=session-expired' "$tmp/console2.log" "session expiry logged"

assert_no_grep 'AddressSanitizer|runtime error' "$tmp/console.log" "no sanitizer report from the console"
kill "$cpid" 2>/dev/null
for i in $(seq 30); do kill -0 "$cpid" 2>/dev/null || break; sleep 0.1; done
assert_grep 'console stopping signal=15' "$tmp/console.log" "console stops on SIGTERM"
summary
