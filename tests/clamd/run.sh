#!/bin/bash
# SPDX-License-Identifier: MIT
#
# The clamd backend against two real clamd instances on 127.0.0.1, loaded
# with the test signatures in tests/data/clamav. Builds the driver (plain,
# and with ASan/UBSan for every scenario), starts both clamd, runs the
# scenarios, stops both whatever happens. Prints PASS/FAIL lines; exits 1
# when anything failed, 2 when the lab could not be set up.
#
#	tests/clamd/run.sh		(needs clamd: Debian's clamav-daemon)
#	CLAMD_TEST_PORT1=4310 CLAMD_TEST_PORT2=4311 tests/clamd/run.sh
#	CLAMD_TEST_KEEP=1 tests/clamd/run.sh	keep the temp dir for a look
set -u

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PORT1=${CLAMD_TEST_PORT1:-3310}
PORT2=${CLAMD_TEST_PORT2:-3311}
S1=127.0.0.1:$PORT1
S2=127.0.0.1:$PORT2
CLAMD=${CLAMD:-$(command -v clamd || echo /usr/sbin/clamd)}
CC=${CC:-cc}
T=$(mktemp -d /tmp/spork-clamd.XXXXXX)
NPASS=0
NFAIL=0
MIB=1048576
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:exitcode=99
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:exitcode=99

cleanup() {
	local rc=$? f pid
	for f in "$T"/clamd1.pid "$T"/clamd2.pid; do
		[ -s "$f" ] || continue
		pid=$(cat "$f")
		kill -CONT "$pid" 2>/dev/null
		kill "$pid" 2>/dev/null
	done
	wait 2>/dev/null
	if [ -n "${CLAMD_TEST_KEEP:-}" ]; then
		echo "kept $T" >&2
	else
		rm -rf "$T"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

pass() { echo "PASS $1"; NPASS=$((NPASS + 1)); }
fail() { echo "FAIL $1"; NFAIL=$((NFAIL + 1)); }
die() { echo "FAIL setup: $*"; exit 2; }

# check NAME FILE ERE: FILE has a line matching ERE.
check() {
	if grep -qE -- "$3" "$2"; then
		pass "$1"
	else
		fail "$1"
		echo "  wanted /$3/ in $(basename "$2"):"
		sed 's/^/  | /' "$2" | head -40
	fi
}

# check_not NAME FILE ERE: no line of FILE matches ERE.
check_not() {
	if grep -qE -- "$3" "$2"; then
		fail "$1"
		echo "  unwanted /$3/ in $(basename "$2"):"
		grep -E -- "$3" "$2" | sed 's/^/  | /' | head -20
	else
		pass "$1"
	fi
}

# count ERE FILE
count() { grep -cE -- "$1" "$2"; }

# Answers PING on 127.0.0.1:PORT?
clamd_ping() {
	local fd ans=
	exec {fd}<>"/dev/tcp/127.0.0.1/$1" || return 1
	printf 'zPING\0' >&"$fd"
	IFS= read -r -d '' -t 2 ans <&"$fd"
	exec {fd}>&-
	[ "$ans" = PONG ]
}

# clamd_start N: start instance N and wait until it answers PING.
clamd_start() {
	local n=$1 port t0 i
	port=$([ "$n" = 1 ] && echo "$PORT1" || echo "$PORT2")
	t0=$(date +%s%N)
	"$CLAMD" -c "$T/clamd$n.conf" >>"$T/clamd$n.stdout" 2>&1 &
	for i in $(seq 1 600); do
		if clamd_ping "$port" 2>/dev/null; then
			echo "clamd$n up after $((($(date +%s%N) - t0) / 1000000)) ms"
			return 0
		fi
		sleep 0.05
	done
	return 1
}

# clamd_stop N: kill instance N and wait until its port refuses.
clamd_stop() {
	local n=$1 port i
	port=$([ "$n" = 1 ] && echo "$PORT1" || echo "$PORT2")
	kill "$(cat "$T/clamd$n.pid")" || return 1
	for i in $(seq 1 200); do
		clamd_ping "$port" 2>/dev/null || return 0
		sleep 0.05
	done
	return 1
}

# drive NAME BIN ARGS...: run the driver; NAME.out, NAME.err, NAME.rc. A
# driver that breaks the backend contract or trips a sanitizer fails here.
drive() {
	local name=$1 bin=$2 rc
	shift 2
	"$bin" "$@" >"$T/$name.out" 2>"$T/$name.err"
	rc=$?
	echo "$rc" >"$T/$name.rc"
	if [ "$rc" = 0 ] && ! grep -qE 'Sanitizer|runtime error' "$T/$name.err"
	then
		pass "$name: driver exit 0, no sanitizer report, no contract violation"
	else
		fail "$name: driver exit $rc"
		sed 's/^/  | /' "$T/$name.out" "$T/$name.err" | head -60
	fi
}

# ---- build -------------------------------------------------------------

command -v "$CLAMD" >/dev/null || die "no clamd (apt-get install clamav-daemon)"
cd "$REPO" || die "no repo"
SRC="tests/clamd/clamd_test.c src/checks/clamd.c src/checks/farm.c src/base/hostport.c src/base/failover.c \
    src/base/ev.c src/base/buf.c src/base/log.c src/base/sock.c"
WARN="-std=gnu11 -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wformat=2 -D_GNU_SOURCE -Werror"
# shellcheck disable=SC2086
if $CC $WARN -O2 -g -Isrc/base -Isrc/kernel -Isrc/checks -Isrc/smtp -o "$T/clamd_test" $SRC 2>"$T/build.err"; then
	pass "build: -Wall -Wextra -Werror, -O2"
else
	fail "build: -O2"; cat "$T/build.err"; exit 1
fi
# shellcheck disable=SC2086
if $CC $WARN -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer \
    -fno-sanitize-recover=undefined -Isrc/base -Isrc/kernel -Isrc/checks -Isrc/smtp -o "$T/clamd_test_san" $SRC \
    2>"$T/build-san.err"; then
	pass "build: ASan+UBSan"
else
	fail "build: ASan+UBSan"; cat "$T/build-san.err"; exit 1
fi
PLAIN=$T/clamd_test
SAN=$T/clamd_test_san

# ---- fixtures ----------------------------------------------------------

mkdir -p "$T/db" "$T/tmp" "$T/files"
cp tests/data/clamav/spork-test.hdb tests/data/clamav/spork-test.ndb "$T/db/"
F=$T/files
printf 'hello, this is a clean test message\r\n' >"$F/clean.txt"
: >"$F/empty.txt"
printf '%s' 'X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*' \
    >"$F/eicar.com"
[ "$(md5sum <"$F/eicar.com" | cut -d' ' -f1)" = 44d88612fea8a8f36de82e1278abb02f ] ||
	die "EICAR fixture has the wrong md5"
cat >"$F/eicar-mime.eml" <<EOF
From: sender@example.test
To: rcpt@example.test
Subject: attachment test
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="b1"

--b1
Content-Type: text/plain

See the attachment.

--b1
Content-Type: application/octet-stream; name="eicar.com"
Content-Transfer-Encoding: base64
Content-Disposition: attachment; filename="eicar.com"

$(base64 -w 76 "$F/eicar.com")
--b1--
EOF
# A ZIP whose one member is encrypted (traditional PKWARE), built here so
# the test needs no zip tool.
python3 - "$F/encrypted.zip" <<'EOF' || die "cannot build encrypted.zip"
import struct, sys, zlib
def crc_byte(c, b):
    return (zlib.crc32(bytes([b]), c ^ 0xffffffff) ^ 0xffffffff) & 0xffffffff
k = [0x12345678, 0x23456789, 0x34567890]
def update(b):
    k[0] = crc_byte(k[0], b)
    k[1] = ((k[1] + (k[0] & 0xff)) * 134775813 + 1) & 0xffffffff
    k[2] = crc_byte(k[2], k[1] >> 24)
def enc(b):
    t = (k[2] | 2) & 0xffff
    c = b ^ (((t * (t ^ 1)) >> 8) & 0xff)
    update(b)
    return c
for b in b"pw":
    update(b)
name, data = b"secret.txt", b"a secret document\n" * 10
crc = zlib.crc32(data) & 0xffffffff
body = bytes(enc(b) for b in bytes(range(11)) + bytes([crc >> 24]) + data)
lh = struct.pack("<IHHHHHIIIHH", 0x04034b50, 20, 1, 0, 0, 0, crc, len(body),
                 len(data), len(name), 0) + name
cd = struct.pack("<IHHHHHHIIIHHHHHII", 0x02014b50, 20, 20, 1, 0, 0, 0, crc,
                 len(body), len(data), len(name), 0, 0, 0, 0, 0, 0) + name
end = struct.pack("<IHHHHIIH", 0x06054b50, 0, 0, 1, 1, len(cd),
                  len(lh) + len(body), 0)
open(sys.argv[1], "wb").write(lh + body + cd + end)
EOF
# Above clamd's MaxFileSize (256K) but below StreamMaxLength (8M).
yes 'a line of clean text for the size limits' | head -c $((512 * 1024)) >"$F/512k.txt"
yes 'a line of clean text for the streaming test' | head -c $((7 * MIB)) >"$F/7m.txt"
yes 'a line of clean text, too long to stream' | head -c $((9 * MIB)) >"$F/9m.txt"

for n in 1 2; do
	port=$([ "$n" = 1 ] && echo "$PORT1" || echo "$PORT2")
	cat >"$T/clamd$n.conf" <<EOF
TCPSocket $port
TCPAddr 127.0.0.1
DatabaseDirectory $T/db
TemporaryDirectory $T/tmp
Foreground yes
PidFile $T/clamd$n.pid
LogFile $T/clamd$n.log
LogTime yes
LogClean yes
StreamMaxLength 8M
MaxFileSize 256K
AlertExceedsMax yes
AlertEncryptedArchive yes
ScanMail yes
EOF
done
cat >"$T/stop2.sh" <<EOF
kill \$(cat $T/clamd2.pid)
for i in \$(seq 1 200); do
	(exec 3<>/dev/tcp/127.0.0.1/$PORT2) 2>/dev/null || exit 0
	sleep 0.05
done
exit 1
EOF
cat >"$T/start2.sh" <<EOF
$CLAMD -c $T/clamd2.conf >>$T/clamd2.stdout 2>&1 &
for i in \$(seq 1 600); do
	if exec 3<>/dev/tcp/127.0.0.1/$PORT2; then
		printf 'zPING\\0' >&3
		IFS= read -r -d '' -t 2 a <&3
		exec 3>&-
		[ "\$a" = PONG ] && exit 0
	fi
	sleep 0.05
done 2>/dev/null
exit 1
EOF

# ---- clamd up ----------------------------------------------------------

for port in "$PORT1" "$PORT2"; do
	if clamd_ping "$port" 2>/dev/null; then
		die "something already answers on 127.0.0.1:$port (set CLAMD_TEST_PORT1/2)"
	fi
done
clamd_start 1 || die "clamd1 did not answer PING: $(tail -5 "$T/clamd1.log" "$T/clamd1.stdout")"
clamd_start 2 || die "clamd2 did not answer PING: $(tail -5 "$T/clamd2.log" "$T/clamd2.stdout")"

# ---- verdicts ----------------------------------------------------------

drive verdicts "$SAN" -S -s "$S1" -s "$S2" -H 500 -w 300 -m $((8 * MIB)) \
    "$F/clean.txt" "$F/eicar.com" "$F/eicar-mime.eml" "$F/encrypted.zip" \
    "$F/512k.txt" "$F/9m.txt" "$F/empty.txt"
O=$T/verdicts.out
check "clean file -> clean" "$O" '/clean.txt verdict=clean name="" engine="clamd ClamAV [0-9]'
check "raw EICAR -> virus Eicar-Test-Signature" "$O" \
    '/eicar.com verdict=virus name="Eicar-Test-Signature(\.UNOFFICIAL)?" engine="clamd ClamAV'
check "base64 MIME EICAR -> virus Eicar-Test-Signature" "$O" \
    '/eicar-mime.eml verdict=virus name="Eicar-Test-Signature(\.UNOFFICIAL)?"'
check "encrypted zip -> encrypted" "$O" \
    '/encrypted.zip verdict=encrypted name="Heuristics.Encrypted.Zip"'
check "above clamd MaxFileSize -> limits (Heuristics.Limits.Exceeded)" "$O" \
    '/512k.txt verdict=limits name="Heuristics.Limits.Exceeded'
check "above max_stream -> limits, nothing sent" "$O" \
    '/9m.txt verdict=limits name="message of 9437184 bytes exceeds clamd StreamMaxLength 8388608" engine="clamd" ms=[0-9]+$'
check "empty file -> clean" "$O" '/empty.txt verdict=clean name="" '
check "status: both servers up with a version" "$O" \
    "^clamd.server=$S1 state=up version=\"ClamAV [^\"]+\" scans=[0-9]+ failures=0 entry=$S1\$"
check "status: second server up" "$O" "^clamd.server=$S2 state=up "

# A 9M stream with no local limit: clamd cuts it at StreamMaxLength.
drive clamd-limit "$SAN" -s "$S1" -m 0 "$F/9m.txt"
check "above clamd StreamMaxLength -> limits from clamd" "$T/clamd-limit.out" \
    '/9m.txt verdict=limits name="INSTREAM size limit exceeded"'

# ---- round robin -------------------------------------------------------

before1=$(count 'stream\(.*\): OK' "$T/clamd1.log")
before2=$(count 'stream\(.*\): OK' "$T/clamd2.log")
drive spread "$SAN" -S -s "$S1" -s "$S2" -r 8 "$F/clean.txt"
check "status: 8 scans" "$T/spread.out" ' clamd.scans=8 '
[ "$(count 'verdict=clean' "$T/spread.out")" = 8 ] && pass "8 clean verdicts" ||
	fail "8 clean verdicts: got $(count 'verdict=clean' "$T/spread.out")"
check "round robin: 4 on the first" "$T/spread.out" "^clamd.server=$S1 .* scans=4 "
check "round robin: 4 on the second" "$T/spread.out" "^clamd.server=$S2 .* scans=4 "
sleep 0.5	# clamd logs after answering
d1=$(($(count 'stream\(.*\): OK' "$T/clamd1.log") - before1))
d2=$(($(count 'stream\(.*\): OK' "$T/clamd2.log") - before2))
[ "$d1" = 4 ] && [ "$d2" = 4 ] && pass "clamd logs: 4 streams each" ||
	fail "clamd logs: $d1 and $d2 streams, want 4 and 4"
drive spread-burst "$SAN" -S -P -s "$S1" -s "$S2" -r 8 "$F/clean.txt"
check "round robin, 8 submitted at once: 4 on the first" "$T/spread-burst.out" "^clamd.server=$S1 .* scans=4 "
check "round robin, 8 submitted at once: 4 on the second" "$T/spread-burst.out" "^clamd.server=$S2 .* scans=4 "

# ---- failover ----------------------------------------------------------

# Health check off: the scan itself meets the dead server and moves on.
drive failover "$SAN" -S -s "$S1" -s "$S2" -H 0 -r 8 -i 50 \
    -e "3:sh $T/stop2.sh" "$F/clean.txt"
O=$T/failover.out
[ "$(count 'verdict=clean' "$O")" = 8 ] && pass "second clamd killed mid-run: 8 of 8 clean" ||
	fail "second clamd killed mid-run: $(count 'verdict=clean' "$O") of 8 clean"
check "failover logged" "$T/failover.err" "clamd scan job=[0-9]+ server=$S2 error=\"connect: .*\" action=failover"
check "status: dead server down" "$O" "^clamd.server=$S2 state=down .* failures=1 "
check "status: one failover" "$O" '^clamd.addresses=2 clamd.up=1 .* clamd.failovers=1 '

# Health check on: it marks the dead one down, then up once it is back.
drive health "$SAN" -S -s "$S1" -s "$S2" -H 200 -w 300 -r 10 -i 200 \
    -e "3:bash $T/start2.sh" \
    "$F/clean.txt"
O=$T/health.out
[ "$(count 'verdict=clean' "$O")" = 10 ] && pass "health: 10 of 10 clean" ||
	fail "health: $(count 'verdict=clean' "$O") of 10 clean"
check "health: dead server marked down" "$T/health.err" "clamd server=$S2 state=down error=\"PING connect: Connection refused\""
check "health: restarted server back up" "$T/health.err" "clamd server=$S2 state=up version=\"ClamAV "
check "health: status up again" "$O" "^clamd.server=$S2 state=up "
check "health: restarted server scans again" "$O" "^clamd.server=$S2 state=up .* scans=[1-9]"
check_not "health: no scan failover needed" "$T/health.err" 'action=failover'

# ---- timeout -----------------------------------------------------------

kill -STOP "$(cat "$T/clamd2.pid")"
drive timeout "$SAN" -s "$S2" -c 500 -t 1500 "$F/clean.txt"
kill -CONT "$(cat "$T/clamd2.pid")"
check "stopped clamd -> timeout" "$T/timeout.out" \
    '/clean.txt verdict=timeout name="clamd did not answer within 1500 ms" engine="clamd" ms=1[5-9][0-9][0-9]$'

# ---- connection lost mid-stream ---------------------------------------

# A stopped clamd leaves the connection in its accept queue: the stream
# stalls once the socket buffers are full. SIGKILL resets it mid-stream
# and the job must start over on the other server.
kill -STOP "$(cat "$T/clamd2.pid")"
"$SAN" -S -s "$S2" -s "$S1" -H 0 "$F/7m.txt" >"$T/midstream.out" 2>"$T/midstream.err" &
drv=$!
sleep 1
kill -KILL "$(cat "$T/clamd2.pid")"
rm -f "$T/clamd2.pid"	# SIGKILL leaves it behind
wait "$drv"
echo $? >"$T/midstream.rc"
check "mid-stream: reset logged, failover" "$T/midstream.err" \
    "clamd scan job=1 server=$S2 error=\"(send|recv): .*\" action=failover"
check "mid-stream: verdict from the other server" "$T/midstream.out" \
    '/7m.txt verdict=limits name="Heuristics.Limits.Exceeded'
check "mid-stream: status" "$T/midstream.out" "^clamd.server=$S1 state=unknown .* scans=1 "
[ "$(cat "$T/midstream.rc")" = 0 ] && ! grep -qE 'Sanitizer|runtime error' "$T/midstream.err" &&
	pass "mid-stream: driver exit 0, no sanitizer report" ||
	fail "mid-stream: driver exit $(cat "$T/midstream.rc")"
clamd_start 2 || die "clamd2 did not come back"

# ---- the DNS name ------------------------------------------------------

drive dns "$SAN" -S -s "localhost:$PORT1" -H 100 -w 300 "$F/clean.txt" "$F/eicar.com"
check "localhost:$PORT1: clean" "$T/dns.out" '/clean.txt verdict=clean '
check "localhost:$PORT1: virus" "$T/dns.out" '/eicar.com verdict=virus name="Eicar-Test-Signature'
check "localhost:$PORT1: status names the entry" "$T/dns.out" \
    "^clamd.server=127.0.0.1:$PORT1 state=up .* entry=localhost:$PORT1\$"

# ---- bounded memory ----------------------------------------------------

drive memory "$PLAIN" -S -s "$S1" "$F/7m.txt"
check "7 MiB stream: a verdict" "$T/memory.out" '/7m.txt verdict=(clean|limits) '
rss=$(sed -n 's/^driver.maxrss_kb=//p' "$T/memory.out")
[ -n "$rss" ] && [ "$rss" -lt 4096 ] && pass "7 MiB stream: driver peak RSS ${rss} KiB < 4 MiB" ||
	fail "7 MiB stream: driver peak RSS ${rss:-?} KiB"

# ---- cancel, reload, concurrency (sanitizers watching) -----------------

drive stress "$SAN" -S -P -s "$S1" -s "$S2" -H 100 -X 0 -R 4 -r 4 \
    "$F/clean.txt" "$F/eicar.com" "$F/eicar-mime.eml" "$F/7m.txt" "$F/512k.txt"
[ "$(count ' verdict=' "$T/stress.out")" = 20 ] && pass "stress: 20 verdicts for 20 jobs" ||
	fail "stress: $(count ' verdict=' "$T/stress.out") verdicts for 20 jobs"
[ "$(count ' cancelled$' "$T/stress.out")" = 20 ] && pass "stress: 20 twins cancelled at once, no callback" ||
	fail "stress: $(count ' cancelled$' "$T/stress.out") twins cancelled"
check "stress: reload logged" "$T/stress.err" 'clamd reload addresses=2'
sum=$(sed -n 's/^clamd.server=.* scans=\([0-9]*\) .*/\1/p' "$T/stress.out" |
	awk '{ n += $1 } END { print n + 0 }')
[ "$sum" = 20 ] && pass "stress: jobs across the reload counted on the live servers (20)" ||
	fail "stress: per-server scans add up to $sum, want 20"
drive cancel-mid "$SAN" -P -s "$S1" -s "$S2" -X 3 -r 6 "$F/7m.txt"
[ "$(count ' verdict=' "$T/cancel-mid.out")" -ge 6 ] && pass "cancel mid-stream: every kept job answered" ||
	fail "cancel mid-stream: $(count ' verdict=' "$T/cancel-mid.out") verdicts"

# ---- nothing reachable, bad configuration ------------------------------

clamd_stop 1 || fail "clamd1 did not stop"
clamd_stop 2 || fail "clamd2 did not stop"
drive down "$SAN" -S -s "$S1" -s "$S2" -H 0 "$F/clean.txt" "$F/eicar.com"
check "both down -> error" "$T/down.out" '/clean.txt verdict=error name="no clamd server reachable" engine="clamd"'
check "both down -> error (second job)" "$T/down.out" '/eicar.com verdict=error name="no clamd server reachable"'
check "both down: logged" "$T/down.err" 'error="no clamd server reachable" attempts=2'
drive down-health "$SAN" -S -s "$S1" -s "$S2" -H 100 -w 300 "$F/clean.txt"
check "both down, marked down by the health check -> error" "$T/down-health.out" \
    '/clean.txt verdict=error name="no clamd server reachable"'
check "both down: status" "$T/down-health.out" '^clamd.addresses=2 clamd.up=0 '

"$PLAIN" -s "::1:$PORT1" "$F/clean.txt" >"$T/bad1.out" 2>&1
check "bare IPv6 address refused" "$T/bad1.out" 'is not host:port or \[v6\]:port'
"$PLAIN" -s "no-such-host.invalid:$PORT1" "$F/clean.txt" >"$T/bad2.out" 2>&1
check "unresolvable name: clear error" "$T/bad2.out" 'no server address resolves'
drive v6 "$SAN" -s "[::1]:$PORT1" "$F/clean.txt"
check "[v6]:port accepted; nothing there -> error" "$T/v6.out" 'verdict=error name="no clamd server reachable"'

echo "$NPASS passed, $NFAIL failed"
[ "$NFAIL" = 0 ]
