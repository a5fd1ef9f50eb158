#!/bin/bash
# SPDX-License-Identifier: MIT
# Exim 4.96 (Debian 12's, from scripts/install-deps) on both sides of the
# bridge, as a user of the box sees it: each message delivered exactly
# once to each recipient (counted by Message-ID in the server's Maildirs),
# Completed in the sending Exim's log with no deferral and no bounce, and
# no "SMTP protocol synchronization error" in the server Exim's log.
# - PRDR: the server has prdr_enable = true, the client tries PRDR (Exim
#   answers 353 after the data, then one reply per recipient); plaintext
#   so that sporkd sees it; 10 messages x 3 recipients, and again over IPv6.
# - STARTTLS passthrough: several messages down one connection (a queue
#   run), QUIT pipelined behind the last end of data and the connection
#   half-closed, as Exim does; IPv4 and IPv6.
# - A server without PIPELINING: EICAR then 20 clean messages in one
#   session (smtpchat, which waits for every reply); sporkd refuses the
#   virus and sends its own RSET upstream, which must go alone even when
#   the server reads late (its session is paused for a moment).
# - PIPECONNECT: a client that learnt the server's EHLO (with PIPECONNECT)
#   while sporkd was down talks before the banner once sporkd is back;
#   once without CHUNKING, once with it (Exim's default).
# T_EXIM_ONLY="prdr tls nopipe pipeconnect" runs only those groups.
# After the first attempt, a message still queued gets one forced queue
# run, as Exim's own retry would: a reply the bridge lost then shows up as
# a second copy at the server.
set -u
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/exim.sh"
exim_require || exit 1
tmp=$(mktemp -d)
chmod 755 "$tmp"
lab_up
# After lab_up, which sets its own trap.
trap 'lab_down; exim_clean; rm -rf "$tmp"' EXIT
exim_clean

FROM=sender@client.example.test
RCPTS=(alice@example.test bob@example.test carol@example.test)
RUN=$$
# shellcheck disable=SC2016
EICAR='X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*'

# sporkd owns the divert (as recommended), so that with sporkd stopped the
# bridge passes port 25 straight through (the PIPECONNECT case needs it).
# STARTTLS is passed through whatever keys the lab holds.
in_br "$SPORK_REPO/scripts/spork-setup" --bridge br0 --port 10025 \
	--state "$LAB_DIR/spork-setup.state" --remove >/dev/null 2>&1
in_br "$SPORK_REPO/scripts/spork-setup" --bridge br0 --port 10025 \
	--state "$LAB_DIR/spork-setup.state" --divert sporkd --apply >/dev/null 2>&1 ||
	{ echo "t_exim: spork-setup --divert sporkd --apply failed" >&2; exit 1; }
{ cat "$LAB_DIR/spork.conf"; printf '%s\n' "divert_bridge br0" "tls_policy passthrough"; } \
	>"$tmp/spork.conf"
start_sporkd() {
	lab start-sporkd "$tmp/spork.conf" 2>"$tmp/start.err" ||
		{ echo "t_exim: sporkd did not start: $(tail -n 3 "$tmp/start.err")" >&2; exit 1; }
}
start_sporkd

# sporkd_mark: where sporkd's log ends now.
sporkd_mark() { wc -l <"$LAB_SPORKD_LOG"; }
sporkd_since() { tail -n "+$(($1 + 1))" "$LAB_SPORKD_LOG"; }

# relayed NAME MARK CLIENT: sporkd logged a session from CLIENT since MARK
# (the test is about the box: it must have been in the path).
relayed() {
	local re=${3//./\\.}
	if sporkd_since "$2" | grep -Eq "connect client=\[?$re\]?:"; then
		pass "$1: the sessions went through sporkd"
	else
		fail "$1: the sessions went through sporkd" "no 'connect client=$3' in $LAB_SPORKD_LOG"
	fi
}

only() { [ -z "${T_EXIM_ONLY:-}" ] || [[ " $T_EXIM_ONLY " == *" $1 "* ]]; }

client_of() { case $1 in *:*) echo "$CLI_V6" ;; *) echo "$CLI_V4" ;; esac; }

# ids NAME COUNT: the Message-IDs of a scenario.
ids() {
	local i
	for i in $(seq "$2"); do printf '%s ' "$1-$i.$RUN@client.example.test"; done
}

# --- 1. PRDR: the server answers 353 after the data, then per recipient
prdr() {	# prdr NAME ADDR COUNT
	local name=$1 addr=$2 count=$3 id mark
	exim_srv_start "$name" || { fail "$name: server Exim" "did not start"; return; }
	# Plaintext: inside TLS sporkd would see nothing of PRDR.
	exim_cli_setup "$name" "$addr" "hosts_avoid_tls = *"
	mark=$(sporkd_mark)
	for id in $(ids "$name" "$count"); do
		exim_message "$id" "$name" | exim_cli -odi -f "$FROM" "${RCPTS[@]}"
	done
	exim_cli_retry
	exim_delivered_once "$name" "$(ids "$name" "$count")" "$EXIM_USERS"
	exim_cli_done "$name" "$(ids "$name" "$count")"
	exim_srv_in_sync "$name"
	relayed "$name" "$mark" "$(client_of "$addr")"
	printf 'note %s: server received %d of %d messages with PRDR\n' "$name" \
		"$(grep -c "<= .* PRDR .*id=$name-" "$EXIM_SRV_LOG")" "$count"
}
only prdr && prdr prdr-v4 "$SRV_V4" 10
only prdr && prdr prdr-v6 "$SRV_V6" 3

# --- 2. STARTTLS passthrough, several messages in one connection
tls_queue() {	# tls_queue NAME ADDR COUNT
	local name=$1 addr=$2 count=$3 id mark
	exim_srv_start "$name" || { fail "$name: server Exim" "did not start"; return; }
	exim_cli_setup "$name" "$addr" "hosts_require_tls = *"
	for id in $(ids "$name" "$count"); do
		exim_message "$id" "$name" | exim_cli -odq -f "$FROM" "${RCPTS[@]}"
	done
	mark=$(sporkd_mark)
	# One two-stage queue run: every message down one connection. Exim's
	# debug output tells how it ended that connection.
	in_cli env -i "$EXIM" -C "$EXIM_CLI_CONF" -d+transport -qqff \
		2>"$tmp/$name.debug" >/dev/null
	assert_grep 'will pipeline QUIT' "$tmp/$name.debug" \
		"$name: (precondition) the client pipelined QUIT behind its last end of data"
	assert_grep 'SMTP\(shutdown\)>>' "$tmp/$name.debug" \
		"$name: (precondition) and half-closed the connection"
	assert_grep ' => .*\]:25\* ' "$EXIM_CLI_LOG" \
		"$name: (precondition) messages shared one connection"
	exim_cli_retry
	exim_delivered_once "$name" "$(ids "$name" "$count")" "$EXIM_USERS"
	exim_cli_done "$name" "$(ids "$name" "$count")"
	exim_srv_in_sync "$name"
	relayed "$name" "$mark" "$(client_of "$addr")"
	if sporkd_since "$mark" | grep -q 'starttls tls=passthrough'; then
		pass "$name: sporkd passed STARTTLS through"
	else
		fail "$name: sporkd passed STARTTLS through" "no 'starttls tls=passthrough' in $LAB_SPORKD_LOG"
	fi
}
only tls && tls_queue tls-v4 "$SRV_V4" 5
only tls && tls_queue tls-v6 "$SRV_V6" 3

# --- 3. a server without PIPELINING: EICAR, then 20 clean messages
# chat_msg FILE ID SUBJECT [BODY...]: a message as smtpchat sends it
# after 354 (CRLF, dot-stuffed, ended by the lone dot).
chat_msg() {
	local f=$1
	shift
	exim_message "$@" | sed -e 's/^\./../' -e 's/$/\r/' >"$f"
	printf '.\r\n' >>"$f"
}
chat_env() {	# the envelope, one command at a time
	local r
	echo "line MAIL FROM:<$FROM>"
	echo "expect 250"
	for r in "${RCPTS[@]}"; do
		echo "line RCPT TO:<$r>"
		echo "expect 250"
	done
}
chat_data() { printf '%s\n' "line DATA" "expect 354" "sendfile $1" "expect $2"; }
# wait_out FILE REGEX COUNT: until FILE has COUNT lines matching (20 s:
# the scan and the relay's start take a while on a loaded machine).
wait_out() {
	local deadline=$((SECONDS + 20))
	until [ "$(grep -Ec -- "$2" "$1")" -ge "$3" ]; do
		[ "$SECONDS" -lt "$deadline" ] || return 1
		sleep 0.05
	done
}
# A busy server reads late: its session process is stopped from the end of
# the EICAR envelope until the client has its 550 and has sent its next
# MAIL, so that whatever sporkd sent meanwhile arrives in one read, as it
# would at a loaded MX. Exim without PIPELINING refuses a RSET with more
# input behind it.
nopipe() {	# nopipe NAME ADDR
	local name=$1 addr=$2 id i mark chat sess stopped=0
	local virus=$1-virus.$RUN@client.example.test
	exim_srv_start "$name" "pipelining_advertise_hosts =" ||
		{ fail "$name: server Exim" "did not start"; return; }
	chat_msg "$tmp/$name-virus.eml" "$virus" "$name: EICAR" "$EICAR"
	{
		printf '%s\n' "expect 220" "line EHLO client.example.test" "expect 250"
		chat_env
		echo "sleep 1"
		chat_data "$tmp/$name-virus.eml" "550 5.7.1"
		i=0
		for id in $(ids "$name" 20); do
			i=$((i + 1))
			chat_msg "$tmp/$name-$i.eml" "$id" "$name $i"
			chat_env
			chat_data "$tmp/$name-$i.eml" 250
		done
		printf '%s\n' "line QUIT" "expect 221"
	} >"$tmp/$name.chat"
	mark=$(sporkd_mark)
	: >"$tmp/$name.out"
	in_cli "$SPORK_REPO/tests/tools/smtpchat" "$addr" 25 30 \
		<"$tmp/$name.chat" >"$tmp/$name.out" 2>&1 &
	chat=$!
	if wait_out "$tmp/$name.out" '^<- 250 Accepted' ${#RCPTS[@]} &&
		sess=$(pgrep -P "$(cat "$EXIM_SRV/exim.pid")") &&
		[ "$(wc -w <<<"$sess")" = 1 ] && kill -STOP "$sess"; then
		stopped=1
		wait_out "$tmp/$name.out" '^<- 550' 1
		# The client's next MAIL reaches sporkd.
		sleep 0.3
		kill -CONT "$sess"
	fi
	if [ "$stopped" = 1 ]; then
		pass "$name: (precondition) the server's session paused behind the EICAR envelope"
	else
		fail "$name: (precondition) the server's session paused behind the EICAR envelope" \
			"no session process or no 250 to RCPT: $(tail -n 2 "$tmp/$name.out" | tr '\n' '|')"
	fi
	if wait "$chat"; then
		pass "$name: one session: EICAR refused with 550 5.7.1, 20 clean messages 250, QUIT 221"
	else
		fail "$name: one session: EICAR refused with 550 5.7.1, 20 clean messages 250, QUIT 221" \
			"$(tail -n 4 "$tmp/$name.out" | tr '\n' '|')"
	fi
	assert_no_grep 'PIPELINING' "$tmp/$name.out" "$name: (precondition) the server did not offer PIPELINING"
	exim_delivered_once "$name" "$(ids "$name" 20)" "$EXIM_USERS"
	exim_not_delivered "$name: EICAR" "$virus" "$EXIM_USERS"
	exim_srv_in_sync "$name"
	relayed "$name" "$mark" "$(client_of "$addr")"
}
only nopipe && nopipe nopipe-v4 "$SRV_V4"
only nopipe && nopipe nopipe-v6 "$SRV_V6"

# --- 4. PIPECONNECT: the client talks before the banner
pipeconnect() {	# pipeconnect NAME ADDR [TRANSPORT_LINES...]
	local name=$1 addr=$2 mark warm=$1-warm.$RUN@client.example.test
	local id=$1-1.$RUN@client.example.test
	shift 2
	exim_srv_start "$name" "pipelining_connect_advertise_hosts = *" ||
		{ fail "$name: server Exim" "did not start"; return; }
	exim_cli_setup "$name" "$addr" "hosts_avoid_tls = *" "hosts_pipe_connect = *" "$@"
	# sporkd down: the bridge passes port 25 through, the client caches
	# the server's own EHLO.
	lab stop-sporkd
	exim_message "$warm" "$name warm" | exim_cli -odi -f "$FROM" alice@example.test
	if exim_cli_delivered "$warm"; then
		pass "$name: (precondition) delivered with sporkd down"
	else
		fail "$name: (precondition) delivered with sporkd down" \
			"$(exim_cli_lines "$warm" '==' | head -n 1)"
	fi
	start_sporkd
	mark=$(sporkd_mark)
	exim_message "$id" "$name" |
		in_cli env -i "$EXIM" -C "$EXIM_CLI_CONF" -d+transport -odi -f "$FROM" \
			alice@example.test 2>"$tmp/$name.debug" >/dev/null
	assert_grep 'Using cached cleartext PIPECONNECT' "$tmp/$name.debug" \
		"$name: (precondition) the client pipelined before the banner"
	# Through sporkd the EHLO differs from the cached one (extensions
	# hidden): Exim rewrites its cache and reads on, but what it already
	# sent on the cache's word may have to be refused with a temporary
	# error and tried again. So a deferral is noted, not failed; a reply
	# lost on the way still shows as a second copy after the retry.
	if [ -n "$(exim_cli_lines "$id" '==')" ]; then
		printf 'note %s: first attempt deferred: %s\n' "$name" \
			"$(exim_cli_lines "$id" '==' | head -n 1 | cut -c 1-300)"
	fi
	exim_cli_retry
	exim_delivered_once "$name" "$id" alice
	if exim_cli_delivered "$id"; then
		pass "$name: Completed at the sender"
	else
		fail "$name: Completed at the sender" \
			"$({ exim_cli_lines "$id" '**'; exim_cli_lines "$id" '=='; } | tail -n 1 | cut -c 1-400)"
	fi
	if [ -z "$(exim_cli_lines "$id" '**')" ]; then
		pass "$name: no bounce at the sender"
	else
		fail "$name: no bounce at the sender" "$(exim_cli_lines "$id" '**' | head -n 1 | cut -c 1-400)"
	fi
	assert_no_grep 'SMTP error from remote mail server after [^:]*: 5[0-9][0-9]' \
		"$EXIM_CLI_LOG" "$name: no 5xx at the sender"
	exim_srv_in_sync "$name"
	relayed "$name" "$mark" "$(client_of "$addr")"
}
only pipeconnect && pipeconnect pipeconnect "$SRV_V4" "hosts_try_chunking ="
only pipeconnect && pipeconnect pipeconnect-chunking "$SRV_V4"

summary
