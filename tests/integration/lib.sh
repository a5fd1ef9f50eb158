# SPDX-License-Identifier: MIT
#
# Helpers for integration tests that run sporkd in the namespace lab of
# scripts/spork-lab against a real Postfix. Source it from a bash script:
#
#	. "$(dirname "$0")/lib.sh"
#	lab_up				# lab_down runs when the script exits
#	send_mail "$tmp/t1" alice@example.test sender@client.example.test \
#		"$SRV_V4" "$tmp/body.txt"
#	check "clean mail delivered" wait_delivered alice 1 10
#	assert_grep '^<- +250 ' "$tmp/t1" "client got 250"
#	summary				# last: prints "N passed, N failed"
#
# Set SPORK_KEEP_LAB=1 to leave the lab up after the script, for a look.

# The variables below are for the scripts that source this file.
# shellcheck disable=SC2034

SPORK_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SPORK_LAB=$SPORK_REPO/scripts/spork-lab
export SPORK_LAB_NAME=${SPORK_LAB_NAME:-spork}
export LAB_DIR=${LAB_DIR:-/run/$SPORK_LAB_NAME-lab}
NS_CLI=$SPORK_LAB_NAME-cli
NS_BR=$SPORK_LAB_NAME-br
NS_SRV=$SPORK_LAB_NAME-srv

# What scripts/spork-lab builds, for the test scripts.
CLI_V4=10.25.0.1
SRV_V4=10.25.0.2
CLI_V6=fd25::1
SRV_V6=fd25::2
LAB_MAIL=$LAB_DIR/mail
LAB_MAILLOG=$LAB_DIR/postfix/maillog
LAB_SPORKD_LOG=$LAB_DIR/sporkd.log
LAB_SPORKD_PID=$LAB_DIR/sporkd.pid

TESTS_PASSED=0
TESTS_FAILED=0

# lab SUBCOMMAND...: scripts/spork-lab, e.g. `lab stop-postfix`.
lab() { "$SPORK_LAB" "$@"; }

# A script's own EXIT trap (temporary files, helper servers), set before
# lab_up, still runs: first, then lab_down.
LAB_PREV_EXIT=
lab_exit() {
	local rc=$?
	if [ -n "$LAB_PREV_EXIT" ]; then
		eval "$LAB_PREV_EXIT" || true
	fi
	lab_down
	exit "$rc"
}

# lab_require: what every lab test uses is here, or one line says what is
# missing and the script stops (never a wall of per-case failures).
lab_require() {
	local missing=() c
	case ":$PATH:" in *:/usr/sbin:*) ;; *) PATH=$PATH:/usr/sbin:/sbin ;; esac
	for c in ip nft postfix postconf swaks python3 openssl; do
		command -v "$c" >/dev/null 2>&1 || missing+=("$c")
	done
	# swaks speaks IPv6 only with this module.
	perl -MIO::Socket::INET6 -e 1 >/dev/null 2>&1 ||
		missing+=("perl IO::Socket::INET6 (libio-socket-inet6-perl)")
	[ -x "$SPORK_REPO/build/sporkd" ] || [ -n "${SPORKD:-}" ] ||
		missing+=("build/sporkd (make)")
	if [ ${#missing[@]} -gt 0 ]; then
		echo "$(basename "$0"): missing: ${missing[*]} (run scripts/install-deps)" >&2
		exit 1
	fi
}

lab_up() {
	local t
	lab_require
	t=$(trap -p EXIT)
	if [ -n "$t" ]; then
		eval "set -- $t"
		[ "$3" = lab_exit ] || LAB_PREV_EXIT=$3
	fi
	trap lab_exit EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	"$SPORK_LAB" up || { echo "lab_up: the lab did not come up" >&2; exit 1; }
}

# Safe to call any time and more than once; keeps the caller's exit status.
lab_down() {
	local rc=$?
	if [ -n "${SPORK_KEEP_LAB:-}" ]; then
		echo "lab left up (SPORK_KEEP_LAB); scripts/spork-lab down removes it" >&2
	else
		"$SPORK_LAB" down || true
	fi
	return "$rc"
}

# sporkctl against the lab's sporkd.
ctl() { "$SPORK_REPO/build/sporkctl" -s "$LAB_DIR/sporkd.sock" "$@"; }

in_cli() { ip netns exec "$NS_CLI" "$@"; }
in_br() { ip netns exec "$NS_BR" "$@"; }
in_srv() { ip netns exec "$NS_SRV" "$@"; }

# send_mail OUT TO FROM SERVER [BODY_FILE [SWAKS_FLAGS...]]
# Runs swaks in spork-cli; its transcript goes to OUT, its exit status is
# returned (0 only if the server accepted everything). SERVER may be an
# IPv6 address. An empty BODY_FILE keeps swaks' default body; pass
# `--data @FILE` among the flags to send a whole message byte for byte.
send_mail() {
	local out=$1 to=$2 from=$3 server=$4 body=${5:-}
	if [ $# -ge 5 ]; then shift 5; else shift $#; fi
	local args=(--to "$to" --from "$from" --server "$server"
		--helo client.example.test --timeout 60)
	[ -n "$body" ] && args+=(--body "@$body")
	in_cli swaks "${args[@]}" "$@" >"$out" 2>&1
}

# maildir_files USER: paths of USER's delivered messages, oldest first.
maildir_files() {
	local dir=$LAB_MAIL/$1/new
	[ -d "$dir" ] || return 0
	# shellcheck disable=SC2012 # Postfix's Maildir names are plain
	ls -1tr -- "$dir" | sed "s|^|$dir/|"
}

maildir_count() { maildir_files "$1" | wc -l; }

# wait_delivered USER COUNT [TIMEOUT]: wait until USER has COUNT messages.
wait_delivered() {
	local user=$1 want=$2 deadline=$((SECONDS + ${3:-10}))
	until [ "$(maildir_count "$user")" -ge "$want" ]; do
		[ "$SECONDS" -lt "$deadline" ] || return 1
		sleep 0.1
	done
}

# wait_until SECONDS CMD...: wait until CMD succeeds.
wait_until() {
	local deadline=$((SECONDS + $1))
	shift
	until "$@"; do
		[ "$SECONDS" -lt "$deadline" ] || return 1
		sleep 0.1
	done
}

# wait_grep SECONDS PATTERN FILE NAME: assert_grep for a line another
# process writes a moment after what the test saw (Postfix logs through
# postlogd, a listener writes what it receives): passes as soon as the
# extended regex matches in FILE, fails if it still does not after SECONDS.
wait_grep() {
	local t=$1
	shift
	wait_until "$t" grep -Eqs -- "$1" "$2" || true
	assert_grep "$@"
}

# postfix_reload NS CONF_DIR MAILLOG: `postfix reload` of the Postfix in
# namespace NS; back once its master has re-read the configuration (it
# logs "reload --" as it does, a moment later in MAILLOG) and a beat more
# for its idle daemons to make way for ones with the new settings. A fixed
# pause alone can be too short on a loaded machine.
postfix_reload() {
	local ns=$1 conf=$2 log=$3 n
	n=$(grep -Ecs 'postfix/master\[[0-9]+\]: reload -- ' "$log")
	ip netns exec "$ns" postfix -c "$conf" reload >/dev/null 2>&1 || return 1
	wait_until 20 postfix_reloaded "$log" "${n:-0}" || return 1
	sleep 0.5
}
postfix_reloaded() {
	local n
	n=$(grep -Ecs 'postfix/master\[[0-9]+\]: reload -- ' "$1")
	[ "${n:-0}" -gt "$2" ]
}

sporkd_rss_kb() {
	awk '/^VmRSS:/ { print $2 }' "/proc/$(cat "$LAB_SPORKD_PID")/status"
}

pass() {
	TESTS_PASSED=$((TESTS_PASSED + 1))
	printf 'ok   %s\n' "$1"
}

fail() {
	TESTS_FAILED=$((TESTS_FAILED + 1))
	printf 'FAIL %s: %s\n' "$1" "${2:-}"
}

# check NAME CMD...: pass if CMD succeeds.
check() {
	local name=$1
	shift
	if "$@"; then pass "$name"; else fail "$name" "failed: $*"; fi
}

# assert_grep PATTERN FILE NAME: pass if the extended regex matches in FILE.
assert_grep() {
	if grep -Eq -- "$1" "$2" 2>/dev/null; then
		pass "$3"
	else
		fail "$3" "no /$1/ in $2"
	fi
}

assert_no_grep() {
	if grep -Eq -- "$1" "$2" 2>/dev/null; then
		fail "$3" "/$1/ found in $2"
	else
		pass "$3"
	fi
}

# Last call of a test script: its status is the script's verdict.
summary() {
	# A scan worker or SPF helper that made a call outside its seccomp
	# allow list says so on stderr (sporkd's log) before it exits.
	if [ -f "$LAB_SPORKD_LOG" ]; then
		assert_no_grep 'sporkd sandbox: system call [0-9]+ is not allowed' \
			"$LAB_SPORKD_LOG" "no worker or helper left its seccomp allow list"
	fi
	if [ -n "${SPORK_SANITIZER_LOG_CHECK:-}" ]; then
		assert_no_grep 'AddressSanitizer|runtime error:|LeakSanitizer' \
			"$LAB_SPORKD_LOG" "no sanitizer report in sporkd's log"
	fi
	printf '%d passed, %d failed\n' "$TESTS_PASSED" "$TESTS_FAILED"
	[ "$TESTS_FAILED" -eq 0 ]
}
