#!/bin/bash
# SPDX-License-Identifier: MIT
# The ICAP service (RFC 3507) with real peers:
# - Debian's Squid uses sporkd as its RESPMOD service (downloads) and its
#   REQMOD service (uploads, POST and PUT) with bypass=0: EICAR downloaded
#   through it gets the block page (HTTP 403 naming the signature and the
#   URL), a clean 3 MB file and a 200 MB one arrive byte for byte, an
#   EICAR upload is blocked before the web server sees it, a clean one
#   arrives;
# - c-icap-client: OPTIONS (ISTag, Methods, Preview, Allow: 204), RESPMOD
#   and REQMOD of a clean file (204, or 200 with the body unchanged
#   without Allow: 204) and of EICAR (403 block page), with and without
#   preview; 200 MB there and back with sporkd's and its workers' memory
#   bounded; the ISTag and the verdicts change after sporkctl reload with
#   a new signature;
# - icap_max_body with limits_action reject and tag (passes), icap_block_page;
# - bad input: malformed requests get 400 and the connection is closed, a
#   client outside icap_networks is closed on without a reply, a wildcard
#   icap_listen is refused; one log line and one tracking record per scan;
# - past icap_max_connections: a 503 with the ISTag, and the close.
#
# Layout. sporkd's ICAP listener must be on a management address (a
# wildcard would serve the bridged segment too), and br0 carries no
# address, in the lab as on a real bridge. So the bridge namespace gets a
# management link: a veth pair, mgmt0 (10.26.0.1/24, the appliance's
# management address, where icap_listen binds) in the bridge namespace and
# proxy0 (10.26.0.2, the one address in icap_networks, plus 10.26.0.3 to
# play a host outside it) in the client namespace. Squid runs in the
# client namespace, as the web proxy host of the LAN the appliance guards:
# it listens on 10.25.0.1:3128 for curl, fetches from the web server in
# the server namespace (10.25.0.2:8080, across the bridge: only port 25 is
# diverted) and asks icap://10.26.0.1:1344/avscan over the management
# link. Squid beside sporkd in the bridge namespace, on 127.0.0.1, would
# need an address on br0 to reach the web server.
#
# Squid has a private configuration, pid file, logs and no disk cache
# under the test's directory (nothing in /etc); started as root, it runs as
# the user proxy.
set -u
. "$(dirname "$0")/lib.sh"
HERE=$(cd "$(dirname "$0")" && pwd)
lab_require
for c in squid c-icap-client curl sha256sum; do
	command -v "$c" >/dev/null 2>&1 || {
		echo "$(basename "$0"): missing: $c (run scripts/install-deps)" >&2
		exit 1
	}
done
SPORKD=${SPORKD:-$SPORK_REPO/build/sporkd}
EICAR='X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*'
SIG=Eicar-Test-Signature	# its name in tests/data/clamav
MGMT_BR=10.26.0.1
MGMT_PROXY=10.26.0.2
MGMT_OTHER=10.26.0.3
ICAP_PORT=1344
WEB=$SRV_V4:8080
PROXY=$CLI_V4:3128
BIG_MB=200

tmp=$(mktemp -d)
chmod 755 "$tmp"	# Squid and the scan workers run unprivileged
www=$tmp/www
db=$tmp/db
trackdb=$tmp/track/track.db
mkdir -p "$www" "$db" "$tmp/squid/log" "$tmp/squid/run"
chown -R proxy: "$tmp/squid"
web_pid=
squid_pid=
cleanup() {
	[ -n "$squid_pid" ] && kill "$squid_pid" 2>/dev/null
	[ -n "$web_pid" ] && kill "$web_pid" 2>/dev/null
	if [ -n "${SPORK_KEEP_LAB:-}" ]; then
		echo "kept: $tmp" >&2
	else
		rm -rf "$tmp"
	fi
}
trap cleanup EXIT

printf '%s' "$EICAR" >"$www/eicar.com"
head -c 3M /dev/urandom >"$www/clean.bin"
head -c "${BIG_MB}M" /dev/urandom >"$www/big.bin"
# EICAR in the middle of 3 MB: found only once the body is in.
{ head -c 1500000 /dev/urandom; printf '%s' "$EICAR"; head -c 1500000 /dev/urandom; } \
	>"$www/infected.bin"
INFECTED_SIZE=$(stat -c %s "$www/infected.bin")
ANSWER_AFTER=$((60 * 1024))	# icap_answer_after's default
printf 'spork icap reload marker\n' >"$www/marker.txt"
cp "$SPORK_REPO"/tests/data/clamav/spork-test.* "$db/"
cat >"$tmp/block.html" <<'HTML'
<html><body><p>Blocked by the lab: [{virus}] at [{url}]</p></body></html>
HTML

lab_up

# --- a wildcard icap_listen is refused (after lab_up: it made the user spork)
for a in 0.0.0.0:1344 '[::]:1344'; do
	printf '%s\n' "transparent_listen 127.0.0.1:10025" "user spork" \
		"clamav_database_dir $db" "log_syslog no" "icap_listen $a" \
		>"$tmp/wild.conf"
	if "$SPORKD" -t -c "$tmp/wild.conf" >"$tmp/wild.out" 2>&1; then
		fail "icap_listen $a refused" "sporkd -t accepted it"
	elif grep -q 'icap_listen: a wildcard' "$tmp/wild.out"; then
		pass "icap_listen $a refused (sporkd -t: wildcard)"
	else
		fail "icap_listen $a refused" "$(head -n 3 "$tmp/wild.out")"
	fi
done
printf '%s\n' "transparent_listen 127.0.0.1:10025" "user spork" \
	"clamav_database_dir $db" "log_syslog no" "icap_listen $MGMT_BR:$ICAP_PORT" \
	>"$tmp/wild.conf"
"$SPORKD" -t -c "$tmp/wild.conf" >"$tmp/wild.out" 2>&1 &&
	pass "icap_listen $MGMT_BR:$ICAP_PORT accepted (sporkd -t)" ||
	fail "icap_listen $MGMT_BR:$ICAP_PORT accepted" "$(head -n 3 "$tmp/wild.out")"

# --- the management link
ip -n "$NS_BR" link add mgmt0 type veth peer name proxy0 netns "$NS_CLI"
ip -n "$NS_BR" addr add "$MGMT_BR/24" dev mgmt0
ip -n "$NS_BR" link set mgmt0 up
ip -n "$NS_CLI" addr add "$MGMT_PROXY/24" dev proxy0
ip -n "$NS_CLI" addr add "$MGMT_OTHER/24" dev proxy0
ip -n "$NS_CLI" link set proxy0 up

icap_listening() { in_br ss -Hltn "sport = :$ICAP_PORT" | grep -q "$MGMT_BR:$ICAP_PORT"; }

# start_sporkd LINES...: the lab's configuration with our signatures, the
# ICAP service on the management address, tracking, then LINES.
start_sporkd() {
	{
		cat "$LAB_DIR/spork.conf"
		printf '%s\n' "clamav_database_dir $db" \
			"icap_listen $MGMT_BR:$ICAP_PORT" \
			"icap_networks $MGMT_PROXY/32" "track_db $trackdb" "$@"
	} >"$tmp/run.conf"
	if lab start-sporkd "$tmp/run.conf" 2>"$tmp/start.err" &&
		wait_until 10 icap_listening; then
		return 0
	fi
	fail "sporkd start ($*)" "$(tail -n 5 "$tmp/start.err")"
	return 1
}

start_web() {
	# Not through in_srv: $! must be the server itself, not a subshell.
	ip netns exec "$NS_SRV" python3 "$HERE/icap_web.py" "$SRV_V4" 8080 "$www" \
		>"$tmp/web.log" 2>&1 &
	web_pid=$!
	wait_until 10 in_srv sh -c "ss -Hltn 'sport = :8080' | grep -q ." ||
		fail "web server listening" "$(tail -n 3 "$tmp/web.log")"
}

# Squid with sporkd as its ICAP service: every response (respmod), and
# requests with a body (reqmod for POST and PUT); bypass=0, so an ICAP
# failure is an error page, never unscanned content.
write_squid_conf() {
	cat >"$tmp/squid/squid.conf" <<EOF
http_port $PROXY
visible_hostname proxy.lab.test
pid_filename $tmp/squid/run/squid.pid
cache_effective_user proxy
cache_log $tmp/squid/log/cache.log
access_log stdio:$tmp/squid/log/access.log
cache_store_log none
coredump_dir $tmp/squid/run
cache deny all
cache_mem 0
pinger_enable off
dns_nameservers 127.0.0.1
shutdown_lifetime 0 seconds
acl lab src $CLI_V4/32
acl upload method POST PUT
http_access allow lab
http_access deny all
icap_enable on
icap_send_client_ip on
icap_service_failure_limit -1
icap_service svc_resp respmod_precache bypass=0 icap://$MGMT_BR:$ICAP_PORT/avscan
adaptation_access svc_resp allow all
icap_service svc_req reqmod_precache bypass=0 icap://$MGMT_BR:$ICAP_PORT/avscan
adaptation_access svc_req allow upload
adaptation_access svc_req deny all
EOF
}

squid_listening() { in_cli ss -Hltn "sport = :3128" | grep -q .; }

# (Re)starts Squid: after sporkd restarts, Squid's persistent ICAP
# connections and its OPTIONS answer are stale.
start_squid() {
	if [ -n "$squid_pid" ]; then
		kill "$squid_pid" 2>/dev/null
		wait "$squid_pid" 2>/dev/null
		squid_pid=
	fi
	ip netns exec "$NS_CLI" squid -N -f "$tmp/squid/squid.conf" \
		>>"$tmp/squid/out" 2>&1 &
	squid_pid=$!
	if ! wait_until 15 squid_listening; then
		fail "squid listening" "$(tail -n 5 "$tmp/squid/log/cache.log")"
		return 1
	fi
}

# get NAME OUT: downloads http://WEB/NAME through Squid into OUT; prints
# the HTTP status.
get() {
	in_cli curl -sS --max-time 30 -x "http://$PROXY" -o "$2" \
		-w '%{http_code}' "http://$WEB/$1"
}

# post NAME FILE OUT: uploads FILE to http://WEB/upload/NAME through Squid.
post() {
	in_cli curl -sS --max-time 30 -x "http://$PROXY" -H 'Expect:' \
		-H 'Content-Type: application/octet-stream' \
		--data-binary "@$2" -o "$3" -w '%{http_code}' "http://$WEB/upload/$1"
}

# icap OUT ARGS...: c-icap-client on the proxy host against sporkd,
# verbose (ICAP and HTTP headers) into OUT.
icap() {
	local out=$1
	shift
	in_cli timeout 60 c-icap-client -i "$MGMT_BR" -p "$ICAP_PORT" -s avscan \
		-v "$@" >"$out" 2>&1
}

# The first ICAP status code in c-icap-client's output.
icap_status() {
	grep -Eo 'ICAP/1\.0 [0-9]{3}' "$1" | head -n 1 | cut -d' ' -f2
}

# What sporkd last said about an ICAP connection, for failure messages.
last_icap_line() { grep ' icap ' "$LAB_SPORKD_LOG" | tail -n 1 | cut -d' ' -f3-; }

# Scan lines in sporkd's log and tracking records.
scans_logged() { grep -c ' icap .*verdict=' "$LAB_SPORKD_LOG"; }
track() { "$SPORK_REPO/build/sporkctl" track -D "$trackdb" "$@"; }
tracked() { track -n 0 2>/dev/null | grep -c .; }

# expect_scans N NAME: exactly N more scan lines than at the last call
# (lines may trail the answer by a moment, more on a loaded machine).
scans_mark=0
scans_at_least() { [ "$(scans_logged)" -ge "$1" ]; }
expect_scans() {
	local want=$((scans_mark + $1))
	wait_until 15 scans_at_least "$want"
	sleep 0.2
	local got
	got=$(scans_logged)
	[ "$got" -eq "$want" ] && pass "$2: $1 scan line(s) in sporkd's log" ||
		fail "$2: scan lines" "want $1 more, got $((got - scans_mark))"
	scans_mark=$got
}

# blocked NAME FILE URL [VIRUS]: FILE is the block page, naming VIRUS and URL.
blocked() {
	local virus=${4:-$SIG}
	grep -qF -- "$virus" "$2" && grep -qF -- "$3" "$2" &&
		pass "$1: the block page names $virus and $3" ||
		fail "$1: block page" "$(head -c 400 "$2" 2>/dev/null)"
}

start_sporkd "icap_max_body 300m" "scan_max_file_size 300m" \
	"scan_max_size 400m" || exit 1
scans_mark=$(scans_logged)

# --- 1. c-icap-client: OPTIONS
icap "$tmp/opt"
assert_grep '^\s*ICAP/1\.0 200 ' "$tmp/opt" "OPTIONS: 200"
assert_grep '^\s*Methods: (RESPMOD, REQMOD|REQMOD, RESPMOD)\s*$' "$tmp/opt" "OPTIONS: Methods RESPMOD, REQMOD"
assert_grep '^\s*ISTag: "?[^" ]+' "$tmp/opt" "OPTIONS: an ISTag"
assert_grep '^\s*Preview: 1024\s*$' "$tmp/opt" "OPTIONS: Preview 1024 (icap_preview 1k)"
assert_grep '^\s*Allow: 204\s*$' "$tmp/opt" "OPTIONS: Allow: 204"
assert_grep '^\s*Transfer-Preview: \*\s*$' "$tmp/opt" "OPTIONS: Transfer-Preview: *"
assert_grep '^\s*Encapsulated: null-body=0\s*$' "$tmp/opt" "OPTIONS: Encapsulated: null-body=0"
istag0=$(sed -n 's/^\s*ISTag: *//p' "$tmp/opt" | tr -d '\r')
expect_scans 0 "OPTIONS"

# --- 2. c-icap-client: RESPMOD and REQMOD, clean and EICAR, with and
# without preview, with and without Allow: 204
for pv in preview nopreview preview64; do
	for a in 204 no204; do
		flags=()
		case $pv in
		nopreview) flags+=(-nopreview) ;;
		preview64) flags+=(-w 64) ;;
		esac
		[ "$a" = no204 ] && flags+=(-no204)
		name="RESPMOD clean 3 MB, $pv, $a"
		rm -f "$tmp/c.out"
		icap "$tmp/c.txt" -f "$www/clean.bin" -resp "http://$WEB/clean.bin" \
			-o "$tmp/c.out" "${flags[@]}"
		st=$(icap_status "$tmp/c.txt")
		if [ "$a" = 204 ]; then
			[ "$st" = 204 ] && pass "$name: 204" ||
				fail "$name: want 204" "got '$st': $(head -c 300 "$tmp/c.txt")"
		else
			[ "$st" = 200 ] && cmp -s "$tmp/c.out" "$www/clean.bin" &&
				pass "$name: 200, the body unchanged" ||
				fail "$name: want 200 and the body unchanged" \
					"got '$st', $(stat -c %s "$tmp/c.out" 2>/dev/null) bytes"
		fi
		expect_scans 1 "$name"

		name="RESPMOD EICAR, $pv, $a"
		rm -f "$tmp/e.out"
		icap "$tmp/e.txt" -f "$www/eicar.com" -resp "http://$WEB/eicar.com" \
			-o "$tmp/e.out" "${flags[@]}"
		st=$(icap_status "$tmp/e.txt")
		[ "$st" = 200 ] && grep -Eq '^\s*HTTP/1\.[01] 403' "$tmp/e.txt" &&
			pass "$name: 200 with an HTTP 403" ||
			fail "$name: want 200 with HTTP 403" "got '$st': $(head -c 400 "$tmp/e.txt")"
		blocked "$name" "$tmp/e.out" "http://$WEB/eicar.com"
		expect_scans 1 "$name"
	done
done
n=$(grep -c " icap .*verdict=virus.*$SIG" "$LAB_SPORKD_LOG")
[ "$n" -eq 6 ] && pass "RESPMOD: six EICAR scans logged as verdict=virus $SIG" ||
	fail "RESPMOD: EICAR log lines" "$n, want 6: $(grep ' icap .*verdict=' "$LAB_SPORKD_LOG" | tail -n 2)"

icap "$tmp/rq.txt" -f "$www/clean.bin" -req "http://$WEB/upload/clean.bin" \
	-method POST
st=$(icap_status "$tmp/rq.txt")
[ "$st" = 204 ] && pass "REQMOD clean upload: 204" ||
	fail "REQMOD clean upload: want 204" "got '$st': $(head -c 300 "$tmp/rq.txt")"
expect_scans 1 "REQMOD clean"
rm -f "$tmp/rq.out"
icap "$tmp/rq.txt" -f "$www/eicar.com" -req "http://$WEB/upload/eicar.com" \
	-method POST -o "$tmp/rq.out"
st=$(icap_status "$tmp/rq.txt")
[ "$st" = 200 ] && grep -Eq '^\s*HTTP/1\.[01] 403' "$tmp/rq.txt" &&
	pass "REQMOD EICAR upload: 200 with an HTTP 403" ||
	fail "REQMOD EICAR upload: want 200 with HTTP 403" "got '$st': $(head -c 400 "$tmp/rq.txt")"
blocked "REQMOD EICAR upload" "$tmp/rq.out" "http://$WEB/upload/eicar.com"
expect_scans 1 "REQMOD EICAR"

# --- 3. a new signature: sporkctl reload, a new generation, a new ISTag
icap "$tmp/m.txt" -f "$www/marker.txt" -resp "http://$WEB/marker.txt"
st=$(icap_status "$tmp/m.txt")
[ "$st" = 204 ] && pass "before reload: the marker file is clean (204)" ||
	fail "before reload: marker" "got '$st'"
expect_scans 1 "marker before reload"
gen0=$(ctl status | sed -n 's/^scan.generation=//p')
printf '%s:%s:Spork.Test.IcapReload\n' "$(md5sum <"$www/marker.txt" | cut -d' ' -f1)" \
	"$(stat -c %s "$www/marker.txt")" >"$db/icap-reload.hdb"
ctl reload >/dev/null
gen_moved() { [ "$(ctl status | sed -n 's/^scan.generation=//p')" -gt "$gen0" ]; }
if wait_until 20 gen_moved; then
	pass "reload: scan.generation moved from $gen0"
else
	fail "reload: scan.generation" "still $gen0"
fi
# sporkd looks at the scanner for a new tag at most once a second.
istag_moved() {
	icap "$tmp/opt2"
	istag1=$(sed -n 's/^\s*ISTag: *//p' "$tmp/opt2" | tr -d '\r')
	[ -n "$istag1" ] && [ "$istag1" != "$istag0" ]
}
wait_until 15 istag_moved &&
	pass "reload: the ISTag in OPTIONS changed ($istag0 -> $istag1)" ||
	fail "reload: ISTag" "$istag0 -> $istag1"
rm -f "$tmp/m.out"
icap "$tmp/m.txt" -f "$www/marker.txt" -resp "http://$WEB/marker.txt" -o "$tmp/m.out"
st=$(icap_status "$tmp/m.txt")
[ "$st" = 200 ] && grep -Eq '^\s*HTTP/1\.[01] 403' "$tmp/m.txt" &&
	pass "after reload: the marker file is blocked" ||
	fail "after reload: marker blocked" "got '$st'"
blocked "after reload" "$tmp/m.out" "http://$WEB/marker.txt" Spork.Test.IcapReload
expect_scans 1 "marker after reload"

# --- 4. Squid: downloads (RESPMOD) and uploads (REQMOD)
start_web
write_squid_conf
start_squid || exit 1
# It listens first, then gives up root (keeping it as its saved user id
# only, to bind ports again at reconfigure).
squid_unprivileged() {
	[ "$(awk '/^Uid:/ { print $3 }' "/proc/$squid_pid/status")" = "$(id -u proxy)" ]
}
wait_until 15 squid_unprivileged && pass "Squid runs as proxy (effective user id)" ||
	fail "Squid's user" "$(grep '^Uid:' "/proc/$squid_pid/status")"

st=$(get eicar.com "$tmp/g-eicar")
[ "$st" = 403 ] && pass "Squid: EICAR download gets HTTP 403" ||
	fail "Squid: EICAR download: want 403" "got $st: $(head -c 300 "$tmp/g-eicar")"
blocked "Squid: EICAR download" "$tmp/g-eicar" "http://$WEB/eicar.com"
expect_scans 1 "Squid: EICAR download"

st=$(get clean.bin "$tmp/g-clean")
[ "$st" = 200 ] && cmp -s "$tmp/g-clean" "$www/clean.bin" &&
	pass "Squid: clean 3 MB download arrives byte for byte" ||
	fail "Squid: clean download" "HTTP $st, $(stat -c %s "$tmp/g-clean" 2>/dev/null || echo no) bytes; $(last_icap_line)"
expect_scans 1 "Squid: clean download"

# The large file, first from c-icap-client without Allow: 204, so that
# the whole body goes to sporkd and comes back in its 200 answer. sporkd
# keeps at most spool_memory_max (256k by default) of a body in memory and
# the rest in its spool, and a worker scans it from there: had sporkd or a
# worker held the body, its resident anonymous memory would
# grow by the file's size. Sampled every 0.1 s during the transfer, each
# must stay within BOUND_MB of what it was before: a tenth of the file,
# and far more than sporkd's buffers and libclamav's working memory need.
BOUND_MB=20
# Anonymous memory only: a body held would be there. The spool's file
# pages a worker maps to scan them are not counted: on tmpfs (a fresh
# root's /tmp, an appliance's /run) they show as RssShmem, RAM the spool
# holds whether or not the worker maps it.
mem_of() { awk '/^RssAnon:/ { s += $2 } END { print s + 0 }' "/proc/$1/status" 2>/dev/null || echo 0; }
worker_pids() { ctl status 2>/dev/null | sed -n 's/^scan\.worker pid=\([0-9]*\) .*/\1/p'; }
workers_mem() {	# the largest of the workers'
	local p v w=0
	for p in $(worker_pids); do
		v=$(mem_of "$p")
		[ "$v" -gt "$w" ] && w=$v
	done
	echo "$w"
}
sample_mem() {	# until killed: "SPORKD_KB MAX_WORKER_KB" lines
	while :; do
		echo "$(mem_of "$1") $(workers_mem)"
		sleep 0.1
	done
}
main=$(cat "$LAB_SPORKD_PID")
base_main=$(mem_of "$main")
base_w=$(workers_mem)
sample_mem "$main" >"$tmp/mem" &
sampler=$!
t0=$SECONDS
icap "$tmp/big.txt" -f "$www/big.bin" -resp "http://$WEB/big.bin" -no204 \
	-o "$tmp/big.out"
kill "$sampler"
wait "$sampler" 2>/dev/null
st=$(icap_status "$tmp/big.txt")
[ "$st" = 200 ] && cmp -s "$tmp/big.out" "$www/big.bin" &&
	pass "RESPMOD $BIG_MB MB, no204: 200, the body back unchanged ($((SECONDS - t0)) s)" ||
	fail "RESPMOD $BIG_MB MB, no204" "got '$st', $(stat -c %s "$tmp/big.out" 2>/dev/null) bytes: $(grep -E 'HTTP/1' "$tmp/big.txt")"
rm -f "$tmp/big.out"
expect_scans 1 "RESPMOD $BIG_MB MB"
assert_grep " icap .*size=$((BIG_MB * 1048576)) verdict=clean" "$LAB_SPORKD_LOG" \
	"RESPMOD $BIG_MB MB: scanned whole and clean (log)"
read -r peak_main peak_w < <(awk '$1 > m { m = $1 } $2 > w { w = $2 }
	END { print m + 0, w + 0 }' "$tmp/mem")
echo "  memory (RssAnon, kB): sporkd $base_main -> peak $peak_main," \
	"workers $base_w -> peak $peak_w; $(wc -l <"$tmp/mem") samples"
if [ -n "${SPORK_SANITIZER_LOG_CHECK:-}" ]; then
	echo "  (memory bound not judged: AddressSanitizer keeps freed memory)"
else
	[ "$(wc -l <"$tmp/mem")" -ge 3 ] && [ $((peak_main - base_main)) -lt $((BOUND_MB * 1024)) ] &&
		pass "RESPMOD $BIG_MB MB: sporkd's memory grew by less than $BOUND_MB MB" ||
		fail "RESPMOD $BIG_MB MB: sporkd's memory" "$base_main -> $peak_main kB"
	[ "$peak_w" -gt 0 ] && [ $((peak_w - base_w)) -lt $((BOUND_MB * 1024)) ] &&
		pass "RESPMOD $BIG_MB MB: the workers' memory grew by less than $BOUND_MB MB" ||
		fail "RESPMOD $BIG_MB MB: the workers' memory" "$base_w -> $peak_w kB"
fi

# The same file through Squid.
t0=$SECONDS
sum=$(in_cli curl -sS --max-time 60 -x "http://$PROXY" -D "$tmp/big.hdr" \
	"http://$WEB/big.bin" | sha256sum | cut -d' ' -f1)
want=$(sha256sum <"$www/big.bin" | cut -d' ' -f1)
[ "$sum" = "$want" ] && grep -q '^HTTP/1\.1 200' "$tmp/big.hdr" &&
	pass "Squid: $BIG_MB MB download arrives byte for byte ($((SECONDS - t0)) s)" ||
	fail "Squid: $BIG_MB MB download" "$(head -n 1 "$tmp/big.hdr") sha256 $sum, want $want; $(last_icap_line)"
expect_scans 1 "Squid: $BIG_MB MB download"

# A 3 MB download with EICAR in its middle: past icap_answer_after (60k)
# the answer goes out as the body arrives, all but its last 60k, and the
# virus, found once the body is in, cuts it short: the client gets an
# error and never the whole file, nor the last 60k of it.
rm -f "$tmp/g-inf"
in_cli curl -sS --max-time 30 -x "http://$PROXY" -o "$tmp/g-inf" \
	"http://$WEB/infected.bin" 2>"$tmp/g-inf.err"
rc=$?
got=$(stat -c %s "$tmp/g-inf" 2>/dev/null || echo 0)
[ "$rc" != 0 ] && [ "$got" -le $((INFECTED_SIZE - ANSWER_AFTER)) ] &&
	pass "Squid: a 3 MB download with EICAR inside is cut ($got of $INFECTED_SIZE bytes, curl: $(head -c 80 "$tmp/g-inf.err"))" ||
	fail "Squid: infected 3 MB download" "curl rc=$rc, $got of $INFECTED_SIZE bytes; $(last_icap_line)"
wait_grep 15 " icap .*url=\"http://$WEB/infected.bin\" size=$INFECTED_SIZE verdict=virus name=\"$SIG[^\"]*\" action=block-cut " \
	"$LAB_SPORKD_LOG" "Squid: infected 3 MB download: logged as virus, block-cut"
expect_scans 1 "Squid: infected 3 MB download"

rm -rf "$www/uploads"
st=$(post eicar-up "$www/eicar.com" "$tmp/p-eicar")
[ "$st" = 403 ] && pass "Squid: EICAR upload gets HTTP 403" ||
	fail "Squid: EICAR upload: want 403" "got $st: $(head -c 300 "$tmp/p-eicar")"
blocked "Squid: EICAR upload" "$tmp/p-eicar" "http://$WEB/upload/eicar-up"
[ ! -e "$www/uploads/eicar-up" ] && pass "Squid: the EICAR upload never reached the web server" ||
	fail "Squid: EICAR upload" "the web server stored it"
expect_scans 1 "Squid: EICAR upload"
st=$(post clean-up "$www/clean.bin" "$tmp/p-clean")
[ "$st" = 201 ] && cmp -s "$www/uploads/clean-up" "$www/clean.bin" &&
	[ "$(cat "$tmp/p-clean")" = "$(sha256sum <"$www/clean.bin" | cut -d' ' -f1)" ] &&
	pass "Squid: clean 3 MB upload arrives byte for byte" ||
	fail "Squid: clean upload" "HTTP $st: $(head -c 200 "$tmp/p-clean")"
# The upload (REQMOD) and the web server's answer (RESPMOD).
expect_scans 2 "Squid: clean upload"

# --- 5. one tracking record per scan
n_log=$(scans_logged)
tracked_all() { [ "$(tracked)" -ge "$n_log" ]; }
wait_until 10 tracked_all
sleep 0.5
n_track=$(tracked)
[ "$n_track" -eq "$n_log" ] && pass "tracking: one record per scan ($n_track)" ||
	fail "tracking: records" "$n_track records, $n_log scans logged: $(track -n 1 2>&1 | head -n 1)"
out=$(track -n 0 2>/dev/null)
n_virus=$(grep -c ' icap .*verdict=virus' "$LAB_SPORKD_LOG")
n=$(printf '%s\n' "$out" | grep -c 'verdict=virus action=block')
[ "$n" -eq "$n_virus" ] && [ "$n" -ge 9 ] &&
	pass "tracking: the $n_virus blocked scans recorded as verdict=virus action=block" ||
	fail "tracking: virus records" "$n, $n_virus in the log: $(printf '%s\n' "$out" | head -n 3)"
# The story of the last EICAR download: the URL and the virus name.
id=$(printf '%s\n' "$out" | grep 'verdict=virus' | head -n 1 | awk '{ print $1 }')
story=$(track "$id" 2>&1)
printf '%s\n' "$story" | grep -qF "http://$WEB/upload/eicar-up" &&
	printf '%s\n' "$story" | grep -qF "$SIG" &&
	pass "tracking: a blocked upload's record names its URL and $SIG" ||
	fail "tracking: the record of the blocked upload" "$story"

# --- 6. bad input
# raw NAME STATUS CLOSE REQUEST: REQUEST (printf format) from the proxy
# host; the answer's status must be STATUS; CLOSE yes: the connection
# closed after it (within 5 s, icap_timeout being 2 minutes).
raw() {
	local name=$1 want=$2 close=$3 rc
	# shellcheck disable=SC2059
	printf "$4" | in_cli python3 "$HERE/icap_raw.py" "$MGMT_BR" "$ICAP_PORT" \
		"$([ "$close" = yes ] && echo 5 || echo 2)" \
		>"$tmp/raw.out" 2>&1
	rc=$?
	if ! head -n 1 "$tmp/raw.out" | grep -q "^ICAP/1\.0 $want "; then
		fail "$name: want ICAP/1.0 $want" "got: $(head -c 200 "$tmp/raw.out")"
	elif [ "$close" = yes ] && [ "$rc" -ne 0 ]; then
		fail "$name: connection closed after $want" "still open after 5 s"
	else
		local how=
		[ "$close" = yes ] && how=", connection closed"
		pass "$name: ICAP/1.0 $want$how"
	fi
}
U=icap://$MGMT_BR:$ICAP_PORT/avscan
raw "bare LF line ends" 400 yes "OPTIONS $U ICAP/1.0\nHost: $MGMT_BR\n\n"
raw "header without colon" 400 yes "OPTIONS $U ICAP/1.0\r\nHost $MGMT_BR\r\n\r\n"
raw "RESPMOD without Encapsulated" 400 yes "RESPMOD $U ICAP/1.0\r\nHost: $MGMT_BR\r\n\r\n"
raw "Encapsulated not a number" 400 yes \
	"RESPMOD $U ICAP/1.0\r\nHost: $MGMT_BR\r\nEncapsulated: res-hdr=zz, res-body=4\r\n\r\n"
reqh="GET http://$WEB/x HTTP/1.1\r\nHost: $WEB\r\n\r\n"
resh="HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n"
lq=$(printf "$reqh" | wc -c)
ls=$(printf "$resh" | wc -c)
raw "chunk size not hex" 400 yes \
	"RESPMOD $U ICAP/1.0\r\nHost: $MGMT_BR\r\nEncapsulated: req-hdr=0, res-hdr=$lq, res-body=$((lq + ls))\r\n\r\n${reqh}${resh}zz\r\nhello\r\n0\r\n\r\n"
raw "unknown method" 501 no "FROB $U ICAP/1.0\r\nHost: $MGMT_BR\r\n\r\n"
raw "ICAP/2.0" 505 no "OPTIONS $U ICAP/2.0\r\nHost: $MGMT_BR\r\n\r\n"
raw "unknown service" 404 no \
	"OPTIONS icap://$MGMT_BR:$ICAP_PORT/nosuch ICAP/1.0\r\nHost: $MGMT_BR\r\n\r\n"
# A whole, valid request afterwards on the same address: the service is up.
raw "valid OPTIONS after the bad ones" 200 no \
	"OPTIONS $U ICAP/1.0\r\nHost: $MGMT_BR\r\nConnection: close\r\n\r\n"

opts="OPTIONS $U ICAP/1.0\r\nHost: $MGMT_BR\r\n\r\n"
# shellcheck disable=SC2059
printf "$opts" | in_cli python3 "$HERE/icap_raw.py" -b "$MGMT_OTHER" \
	"$MGMT_BR" "$ICAP_PORT" 5 >"$tmp/other.out" 2>&1
rc=$?
[ "$rc" -eq 0 ] && [ ! -s "$tmp/other.out" ] &&
	pass "a client outside icap_networks ($MGMT_OTHER) is closed on without a reply" ||
	fail "outside icap_networks" "rc $rc, got: $(head -c 200 "$tmp/other.out")"
# shellcheck disable=SC2059
printf "$opts" | in_cli python3 "$HERE/icap_raw.py" -b "$MGMT_PROXY" \
	"$MGMT_BR" "$ICAP_PORT" 3 >"$tmp/inside.out" 2>&1
grep -q '^ICAP/1\.0 200 ' "$tmp/inside.out" &&
	pass "the same request from $MGMT_PROXY (in icap_networks) is answered" ||
	fail "inside icap_networks" "got: $(head -c 200 "$tmp/inside.out")"
expect_scans 0 "bad input, OPTIONS"

# --- 7. icap_max_body: limits_action reject, then tag (pass); icap_block_page
start_sporkd "icap_max_body 1m" "limits_action reject" \
	"icap_block_page $tmp/block.html" || exit 1
start_squid || exit 1
scans_mark=$(scans_logged)
rm -f "$tmp/c.out"
icap "$tmp/c.txt" -f "$www/clean.bin" -resp "http://$WEB/clean.bin" -o "$tmp/c.out"
st=$(icap_status "$tmp/c.txt")
[ "$st" = 200 ] && grep -Eq '^\s*HTTP/1\.[01] 403' "$tmp/c.txt" &&
	pass "over icap_max_body, limits_action reject: c-icap-client gets a 403" ||
	fail "over icap_max_body, reject: want 200 with HTTP 403" "got '$st': $(head -c 300 "$tmp/c.txt")"
expect_scans 1 "over icap_max_body (c-icap-client)"
# Through Squid (no Allow: 204 for 3 MB) the answer began at 60k: the
# refusal at 1m cuts the download short.
rm -f "$tmp/g-clean"
in_cli curl -sS --max-time 30 -x "http://$PROXY" -o "$tmp/g-clean" \
	"http://$WEB/clean.bin" 2>/dev/null
rc=$?
got=$(stat -c %s "$tmp/g-clean" 2>/dev/null || echo 0)
[ "$rc" != 0 ] && [ "$got" -lt $((3 * 1048576)) ] &&
	pass "over icap_max_body, limits_action reject: the Squid download is cut ($got bytes)" ||
	fail "over icap_max_body, reject: Squid" "curl rc=$rc, $got bytes; $(last_icap_line)"
wait_grep 15 " icap .*url=\"http://$WEB/clean.bin\" .*verdict=limits .*action=block-cut " \
	"$LAB_SPORKD_LOG" "over icap_max_body, reject (Squid): logged as limits, block-cut"
expect_scans 1 "over icap_max_body (Squid)"
st=$(get eicar.com "$tmp/g-eicar")
[ "$st" = 403 ] && grep -qE "Blocked by the lab: \[${SIG}[^]]*\] at \[http://$WEB/eicar\.com\]" "$tmp/g-eicar" &&
	pass "icap_block_page: Squid shows our page with the virus and the URL" ||
	fail "icap_block_page" "HTTP $st: $(head -c 300 "$tmp/g-eicar")"
expect_scans 1 "icap_block_page (Squid)"
rm -f "$tmp/e.out"
icap "$tmp/e.txt" -f "$www/eicar.com" -resp "http://$WEB/a?q=<b>&c=\"d\"" -o "$tmp/e.out"
grep -qF "at [http://$WEB/a?q=&lt;b&gt;&amp;c=" "$tmp/e.out" && ! grep -qF '<b>' "$tmp/e.out" &&
	pass "icap_block_page: the URL is HTML-escaped" ||
	fail "icap_block_page: escaping" "$(head -c 300 "$tmp/e.out")"
expect_scans 1 "icap_block_page (c-icap-client)"
# That URL's log line still reads as key=value fields: the quote in it
# cannot end the url value early (and so cannot forge the fields after).
line=$(grep ' icap .*url="http://10\.25\.0\.2:8080/a?q=' "$LAB_SPORKD_LOG" | tail -n 1)
printf '%s\n' "$line" | grep -Eq ' url="([^"\\]|\\.)*" size=68 verdict=virus ' &&
	pass "log line: a quote in the URL is escaped" ||
	fail "log line: a quote in the URL" "$line"

start_sporkd "icap_max_body 1m" "limits_action tag" || exit 1
start_squid || exit 1
scans_mark=$(scans_logged)
icap "$tmp/c.txt" -f "$www/clean.bin" -resp "http://$WEB/clean.bin"
st=$(icap_status "$tmp/c.txt")
[ "$st" = 204 ] && pass "over icap_max_body, limits_action tag: 204" ||
	fail "over icap_max_body, limits_action tag: want 204" "got '$st'"
expect_scans 1 "over icap_max_body, limits_action tag (c-icap-client)"
st=$(get clean.bin "$tmp/g-clean")
[ "$st" = 200 ] && cmp -s "$tmp/g-clean" "$www/clean.bin" &&
	pass "over icap_max_body, limits_action tag: Squid download arrives byte for byte" ||
	fail "over icap_max_body, limits_action tag: Squid" "HTTP $st; $(last_icap_line)"
expect_scans 1 "over icap_max_body, limits_action tag (Squid)"
# Unscanned past the limit and streamed back, more than the answer's 4 MB
# buffer: the spooled part goes out a piece at a time as it is read.
rm -f "$tmp/big.out"
icap "$tmp/big.txt" -f "$www/big.bin" -resp "http://$WEB/big.bin" -no204 \
	-o "$tmp/big.out"
st=$(icap_status "$tmp/big.txt")
[ "$st" = 200 ] && cmp -s "$tmp/big.out" "$www/big.bin" &&
	pass "over icap_max_body, limits_action tag: $BIG_MB MB streamed back byte for byte (no204)" ||
	fail "over icap_max_body, tag, $BIG_MB MB no204" "got '$st', $(stat -c %s "$tmp/big.out" 2>/dev/null) bytes"
rm -f "$tmp/big.out"
expect_scans 1 "over icap_max_body, limits_action tag, $BIG_MB MB (c-icap-client)"
st=$(get eicar.com "$tmp/g-eicar")
[ "$st" = 403 ] && pass "limits_action tag: EICAR (under icap_max_body) still blocked" ||
	fail "limits_action tag: EICAR" "HTTP $st"
expect_scans 1 "EICAR under icap_max_body"

# --- 8. icap_max_connections: one held, the next refused with a 503 that
# carries the ISTag as every ICAP answer must (RFC 3507 4.7), and closed
start_sporkd "icap_max_connections 1" || exit 1
# The first request's head, unfinished: its connection stays (6 s).
# shellcheck disable=SC2059
printf "OPTIONS $U ICAP/1.0\r\nHost: $MGMT_BR\r\n" |
	in_cli python3 "$HERE/icap_raw.py" "$MGMT_BR" "$ICAP_PORT" 6 \
	>"$tmp/held.out" 2>&1 &
held=$!
held_open() { ctl status | grep -qx 'icap.connections=1'; }
wait_until 10 held_open || fail "icap_max_connections: the first connection" \
	"$(ctl status | grep '^icap\.')"
raw "over icap_max_connections" 503 yes "OPTIONS $U ICAP/1.0\r\nHost: $MGMT_BR\r\n\r\n"
grep -q '^ISTag: "[^"]*"' "$tmp/raw.out" &&
	pass "over icap_max_connections: the 503 carries the ISTag" ||
	fail "over icap_max_connections: ISTag" "got: $(head -c 300 "$tmp/raw.out")"
check "over icap_max_connections: logged" wait_until 5 grep -q \
	'icap refused: 1 connections (icap_max_connections)' "$LAB_SPORKD_LOG"
wait "$held"

summary
