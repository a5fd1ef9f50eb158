# shellcheck shell=bash
# SPDX-License-Identifier: MIT
#
# A private Exim 4.96 (Debian 12's, unpacked by scripts/install-deps into
# EXIM_PREFIX) on both sides of the lab's bridge. Source it after lib.sh:
#
#	. "$(dirname "$0")/lib.sh"
#	. "$(dirname "$0")/exim.sh"
#	exim_require || exit 1
#	lab_up
#	trap 'lab_down; exim_clean' EXIT	# after lab_up, which sets its own
#	exim_clean
#	exim_srv_start t1			# replaces the lab's Postfix
#	exim_cli_setup t1 "$SRV_V4" "hosts_require_tls = *"
#	exim_message id1@client.example.test "Subject" |
#		exim_cli -odi -f s@client.example.test alice@example.test
#	exim_delivered_once t1 "id1@client.example.test" alice
#	exim_cli_done t1 "id1@client.example.test"
#	exim_srv_in_sync t1
#
# Everything lives under $LAB_DIR/exim, which exim_clean removes:
# srv-NAME/ and cli-NAME/ hold each instance's exim.conf, spool/ and
# log/mainlog (one directory per scenario, so every log tells one story),
# mail/USER/ the server's Maildirs. Nothing is written to /etc.
#
# Facts this relies on (Debian's build, checked by hand):
# - The binary is setuid root with the user Debian-exim compiled in and
#   refuses to start when that user does not exist.
# - -C with a file not in TRUSTED_CONFIG_LIST (/etc/exim4/trusted_configs,
#   absent here): root may use it and keeps root while starting, so the
#   daemon binds port 25; but every process Exim re-executes (-Mc to
#   deliver what the daemon received, -MC for the next message down an
#   open connection) is started by Debian-exim and gives root up. So the
#   Maildirs are written as Debian-exim, and exim_path must name this
#   binary (the compiled-in /usr/sbin/exim4 does not exist).
# - Exim reads the TLS key after giving root up: a copy owned by
#   Debian-exim.
# - Without keep_environment Exim warns on every start and writes the
#   warning to the panic log.
# - The Maildir path must be untainted: ${local_part_data}, not
#   $local_part.
# - smtp_accept_queue_per_connection (default 10) queues instead of
#   delivering from the 11th message of a session on: set to 0.
# - pipelining_connect_advertise_hosts defaults to * in this build, and
#   for a client it matches Exim reads commands without its
#   synchronization check, PIPELINING offered or not: a server without
#   PIPELINING logs "SMTP protocol synchronization error" only when it is
#   emptied too.

# The variables below are for the scripts that source this file.
# shellcheck disable=SC2034

EXIM_PREFIX=${EXIM_PREFIX:-/usr/local/lib/spork-test/exim4}
EXIM=$EXIM_PREFIX/usr/sbin/exim4
EXIM_DIR=$LAB_DIR/exim
EXIM_MAIL=$EXIM_DIR/mail
EXIM_USERS="alice bob carol"
EXIM_OWNER=Debian-exim
# Client timeouts: long enough for a scan, short enough that a reply the
# bridge swallowed fails the test in seconds, not Exim's ten minutes.
EXIM_TIMEOUT=${EXIM_TIMEOUT:-15s}

# exim_require: one line saying what is missing, status 1, or status 0.
exim_require() {
	if [ ! -x "$EXIM" ]; then
		echo "exim: $EXIM is missing: run scripts/install-deps" >&2
		return 1
	fi
	if ! getent passwd "$EXIM_OWNER" >/dev/null; then
		echo "exim: user $EXIM_OWNER is missing: run scripts/install-deps" >&2
		return 1
	fi
	if ! command -v swaks >/dev/null; then
		echo "exim: swaks is missing: run scripts/install-deps" >&2
		return 1
	fi
	if [ ! -x "$SPORK_REPO/tests/tools/smtpchat" ]; then
		echo "exim: tests/tools/smtpchat is missing" >&2
		return 1
	fi
}

# exim_clean: the server Exims stopped and $LAB_DIR/exim removed (kept
# with SPORK_KEEP_LAB, like the lab).
exim_clean() {
	[ -z "${SPORK_KEEP_LAB:-}" ] || return 0
	exim_srv_stop
	rm -rf "$EXIM_DIR"
	rmdir "$LAB_DIR" 2>/dev/null || true
}

# exim_conf_common DIR: main-section settings both sides share.
exim_conf_common() {
	cat <<EOF
keep_environment =
exim_path = $EXIM
spool_directory = $1/spool
log_file_path = $1/log/%slog
pid_file_path = $1/exim.pid
# The lab has no DNS: no reverse lookups, no ident.
host_lookup =
rfc1413_hosts =
rfc1413_query_timeout = 0s
log_selector = +all -arguments
EOF
}

# exim_instance_dir DIR: a fresh DIR for one instance, writable by Exim.
exim_instance_dir() {
	rm -rf "$1"
	mkdir -p "$1/spool" "$1/log"
	chown -R "$EXIM_OWNER:" "$1/spool" "$1/log"
}

# ---------------------------------------------------------------- server

EXIM_SRV=
EXIM_SRV_CONF=
EXIM_SRV_LOG=

# exim_srv_listening PID: PID listens on port 25 on both addresses.
exim_srv_listening() {
	[ "$(in_srv ss -Hltnp 'sport = :25' | grep -c "pid=$1,")" -ge 2 ]
}

# exim_srv_start NAME [MAIN_LINES...]: the lab's Postfix stopped, a server
# Exim in the srv namespace on port 25 of $SRV_V4 and $SRV_V6, with STARTTLS
# (the lab's certificate), PRDR and PIPELINING advertised, command
# synchronization enforced, and alice, bob and carol @example.test
# delivered into $EXIM_MAIL/USER. MAIN_LINES go at the end of the main
# section, e.g. "pipelining_advertise_hosts =" (no PIPELINING) or
# "pipelining_connect_advertise_hosts = *" (PIPECONNECT offered, and then
# no synchronization check). Logs in srv-NAME/log.
exim_srv_start() {
	local name=$1 i
	shift
	lab stop-postfix 2>/dev/null
	exim_srv_stop
	EXIM_SRV=$EXIM_DIR/srv-$name
	EXIM_SRV_CONF=$EXIM_SRV/exim.conf
	EXIM_SRV_LOG=$EXIM_SRV/log/mainlog
	exim_instance_dir "$EXIM_SRV"
	# Exim reads the key after giving root up.
	install -m 600 -o "$EXIM_OWNER" "$LAB_DIR/tls/key.pem" "$EXIM_SRV/key.pem"
	install -m 644 "$LAB_DIR/tls/cert.pem" "$EXIM_SRV/cert.pem"
	mkdir -p "$EXIM_MAIL"
	chown "$EXIM_OWNER:" "$EXIM_MAIL"
	{
		echo "primary_hostname = mx.example.test"
		exim_conf_common "$EXIM_SRV"
		cat <<EOF
domainlist local_domains = example.test
qualify_domain = example.test
daemon_smtp_ports = 25
local_interfaces = <; $SRV_V4 ; $SRV_V6
tls_advertise_hosts = *
tls_certificate = $EXIM_SRV/cert.pem
tls_privatekey = $EXIM_SRV/key.pem
prdr_enable = true
smtp_accept_queue_per_connection = 0
acl_smtp_rcpt = check_rcpt
EOF
		# Exim 4.96 checks command synchronization only for clients it
		# would not offer PIPECONNECT (by default, none): strict unless
		# the caller offers PIPECONNECT.
		case " $* " in
		*" pipelining_connect_advertise_hosts "*) ;;
		*) echo "pipelining_connect_advertise_hosts =" ;;
		esac
		for i in "$@"; do echo "$i"; done
		cat <<EOF

begin acl
check_rcpt:
  accept domains = +local_domains
         local_parts = ${EXIM_USERS// / : }
  deny   message = 5.1.1 no such user here

begin routers
maildir:
  driver = accept
  domains = +local_domains
  local_parts = ${EXIM_USERS// / : }
  transport = maildir

begin transports
maildir:
  driver = appendfile
  directory = $EXIM_MAIL/\${local_part_data}
  maildir_format
  create_directory
  user = $EXIM_OWNER
  group = $EXIM_OWNER
  envelope_to_add
  return_path_add

begin retry
* * F,1h,10m
EOF
	} >"$EXIM_SRV_CONF"
	# Exim refuses a configuration others could have written.
	chmod 644 "$EXIM_SRV_CONF"
	in_srv env -i "$EXIM" -C "$EXIM_SRV_CONF" -bd 2>"$EXIM_SRV/start.err" || {
		echo "exim: the server did not start: $(cat "$EXIM_SRV/start.err")" >&2
		return 1
	}
	local deadline=$((SECONDS + 10)) pid
	until pid=$(cat "$EXIM_SRV/exim.pid" 2>/dev/null) &&
		exim_srv_listening "$pid"; do
		if [ "$SECONDS" -ge "$deadline" ]; then
			echo "exim: the server is not listening; $(tail -n 3 "$EXIM_SRV/log/paniclog" "$EXIM_SRV_LOG" 2>/dev/null)" >&2
			return 1
		fi
		sleep 0.1
	done
}

# exim_srv_stop: every server Exim of this lab stopped (also those a
# previous run left, found by their pid files).
exim_srv_stop() {
	local f pid i
	for f in "$EXIM_DIR"/srv-*/exim.pid; do
		[ -f "$f" ] || continue
		pid=$(cat "$f")
		rm -f "$f"
		# Only the daemon that wrote the file, not a process that has
		# its pid since.
		[ -n "$pid" ] || continue
		tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null |
			grep -qF -- "-C ${f%/exim.pid}/exim.conf" || continue
		kill -TERM "$pid" 2>/dev/null || continue
		for i in $(seq 50); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$pid" 2>/dev/null || true
	done
}

# ---------------------------------------------------------------- client

EXIM_CLI=
EXIM_CLI_CONF=
EXIM_CLI_LOG=

# exim_cli_setup NAME ADDR [TRANSPORT_LINES...]: a client Exim in cli-NAME
# (fresh spool, so fresh hints) that sends everything to ADDR (an IPv4 or
# IPv6 address) on port 25 with PRDR tried; TRANSPORT_LINES are added to
# its smtp transport, e.g. "hosts_require_tls = *" or
# "hosts_pipe_connect = *". No daemon: exim_cli submits and delivers.
exim_cli_setup() {
	local name=$1 addr=$2 i
	shift 2
	EXIM_CLI=$EXIM_DIR/cli-$name
	EXIM_CLI_CONF=$EXIM_CLI/exim.conf
	EXIM_CLI_LOG=$EXIM_CLI/log/mainlog
	exim_instance_dir "$EXIM_CLI"
	{
		echo "primary_hostname = client.example.test"
		exim_conf_common "$EXIM_CLI"
		cat <<EOF
qualify_domain = client.example.test

begin routers
# Bounces to the lab's senders end here, logged, not sent to the server.
bounces:
  driver = redirect
  domains = client.example.test
  data = :blackhole:

mx:
  driver = manualroute
  # One address, its colons doubled as Exim's host lists want them.
  route_list = * ${addr//:/::}
  transport = remote_smtp

begin transports
remote_smtp:
  driver = smtp
  port = 25
  hosts_try_prdr = *
  # The lab's CA is not in the system store: TLS without verification.
  tls_verify_hosts =
  tls_try_verify_hosts =
  connect_timeout = $EXIM_TIMEOUT
  command_timeout = $EXIM_TIMEOUT
  data_timeout = $EXIM_TIMEOUT
  final_timeout = $EXIM_TIMEOUT
EOF
		for i in "$@"; do echo "  $i"; done
		cat <<EOF

begin retry
* * F,1h,10m
EOF
	} >"$EXIM_CLI_CONF"
	chmod 644 "$EXIM_CLI_CONF"
}

# exim_cli ARGS...: the client Exim in the cli namespace, e.g.
#	exim_cli -odi -f FROM RCPT... <MESSAGE	deliver now, in the foreground
#	exim_cli -odq -f FROM RCPT... <MESSAGE	queue only
#	exim_cli -qqff				one two-stage queue run: all
#						queued messages down one connection
exim_cli() {
	in_cli env -i "$EXIM" -C "$EXIM_CLI_CONF" "$@" 2>>"$EXIM_CLI/stderr"
}

# exim_message ID SUBJECT [BODY_LINE...]: an RFC 5322 message whose
# Message-ID is <ID>.
exim_message() {
	local id=$1 subject=$2
	shift 2
	printf '%s\n' "From: Sender <sender@client.example.test>" \
		"To: alice@example.test, bob@example.test, carol@example.test" \
		"Subject: $subject" "Date: $(date -R)" "Message-ID: <$id>" \
		"MIME-Version: 1.0" "Content-Type: text/plain; charset=us-ascii" ""
	if [ $# -gt 0 ]; then
		printf '%s\n' "$@"
	else
		printf '%s\n' "A clean test message, $id." "" ".leading dot" "end"
	fi
}

# ---------------------------------------------------------------- checks

# exim_copies USER ID: how many copies of message <ID> USER's Maildir holds.
exim_copies() {
	local dir=$EXIM_MAIL/$1
	[ -d "$dir" ] || { echo 0; return; }
	grep -rliF -- "Message-ID: <$2>" "$dir/new" "$dir/cur" 2>/dev/null | wc -l
}

# exim_wait_copies TIMEOUT "USERS" "IDS": wait until each USER holds at
# least one copy of each ID.
exim_wait_copies() {
	local users=$2 ids=$3 deadline=$((SECONDS + $1)) u id missing
	while :; do
		missing=0
		for u in $users; do
			for id in $ids; do
				[ "$(exim_copies "$u" "$id")" -ge 1 ] || missing=1
			done
		done
		[ "$missing" = 0 ] && return 0
		[ "$SECONDS" -lt "$deadline" ] || return 1
		sleep 0.2
	done
}

# exim_delivered_once NAME "IDS" "USERS": pass if each USER holds exactly
# one copy of each ID; else fail, listing what is missing or doubled.
exim_delivered_once() {
	local name=$1 ids=$2 users=$3 u id n bad=() total=0 want=0
	# The server delivers a moment after its 250: generous, for a loaded
	# machine (it returns as soon as they are all in).
	exim_wait_copies 20 "$users" "$ids" || true
	# Anything that would arrive twice has had the same time to do so.
	sleep 0.5
	for u in $users; do
		for id in $ids; do
			n=$(exim_copies "$u" "$id")
			total=$((total + n))
			want=$((want + 1))
			[ "$n" = 1 ] || bad+=("$u<$id>x$n")
		done
	done
	if [ ${#bad[@]} -eq 0 ]; then
		pass "$name: every message delivered exactly once to each recipient ($total copies)"
	else
		fail "$name: every message delivered exactly once to each recipient" \
			"$total of $want copies; wrong: ${bad[*]:0:6}$([ ${#bad[@]} -gt 6 ] && echo " ...")"
	fi
}

# exim_not_delivered NAME ID "USERS": pass if no USER holds message <ID>.
exim_not_delivered() {
	local name=$1 id=$2 u n total=0
	for u in $3; do
		n=$(exim_copies "$u" "$id")
		total=$((total + n))
	done
	if [ "$total" -eq 0 ]; then
		pass "$name: not delivered"
	else
		fail "$name: not delivered" "$total copies of <$id> in $EXIM_MAIL"
	fi
}

# exim_cli_eid MSGID: the client's queue id for the message whose
# Message-ID is <MSGID> (from its "<=" line).
exim_cli_eid() {
	awk -v id="id=$1" '$5 == "<=" { for (i = 6; i <= NF; i++) if ($i == id) { print $4; exit } }' \
		"$EXIM_CLI_LOG" 2>/dev/null
}

# exim_cli_lines MSGID FLAG: the client's log lines with FLAG (==, **,
# Completed) for that message, the first one cut to 400 characters.
exim_cli_lines() {
	local eid
	eid=$(exim_cli_eid "$1")
	[ -n "$eid" ] || return 0
	grep -F -- "$eid $2" "$EXIM_CLI_LOG" 2>/dev/null
}

# exim_cli_delivered MSGID: the client logged Completed for the message,
# and no bounce (Exim logs Completed after a bounce too).
exim_cli_delivered() {
	[ -n "$(exim_cli_lines "$1" Completed)" ] && [ -z "$(exim_cli_lines "$1" '**')" ]
}

# exim_cli_done NAME "MSGIDS": the client Exim completed each message with
# no deferral and no bounce, and its queue is empty. Each failure names the
# first message and the log line that tells why.
exim_cli_done() {
	local name=$1 ids=$2 id n=0 done=0 first='' defers=0 dline='' bounces=0 bline='' l left
	for id in $ids; do
		n=$((n + 1))
		if exim_cli_delivered "$id"; then
			done=$((done + 1))
		elif [ -z "$first" ]; then
			l=$(exim_cli_lines "$id" '==' | tail -n 1)
			[ -n "$l" ] || l=$(exim_cli_lines "$id" '**' | tail -n 1)
			first="<$id>: ${l:-no delivery logged}"
		fi
		l=$(exim_cli_lines "$id" '==')
		if [ -n "$l" ]; then
			defers=$((defers + 1))
			[ -n "$dline" ] || dline="<$id>: $(head -n 1 <<<"$l")"
		fi
		l=$(exim_cli_lines "$id" '**')
		if [ -n "$l" ]; then
			bounces=$((bounces + 1))
			[ -n "$bline" ] || bline="<$id>: $(head -n 1 <<<"$l")"
		fi
	done
	if [ "$done" -eq "$n" ]; then
		pass "$name: Completed at the sender for all $n messages"
	else
		fail "$name: Completed at the sender for all $n messages" \
			"$done Completed; first not: ${first:0:500}"
	fi
	if [ "$defers" -eq 0 ]; then
		pass "$name: no deferral at the sender"
	else
		fail "$name: no deferral at the sender" \
			"$defers of $n messages deferred, first: ${dline:0:500}"
	fi
	if [ "$bounces" -eq 0 ]; then
		pass "$name: no bounce at the sender"
	else
		fail "$name: no bounce at the sender" \
			"$bounces of $n messages bounced, first: ${bline:0:500}"
	fi
	left=$(exim_cli -bpc)
	if [ "${left:-x}" = 0 ]; then
		pass "$name: the sender's queue is empty"
	else
		fail "$name: the sender's queue is empty" \
			"${left:-?} messages left in $EXIM_CLI/spool"
	fi
}

# exim_cli_retry: one forced queue run if anything is left, as Exim's
# retry would do later: what a deferral costs shows up as a duplicate.
exim_cli_retry() {
	[ "$(exim_cli -bpc)" = 0 ] || exim_cli -qff
}

# exim_srv_in_sync NAME: the server Exim logged no SMTP synchronization
# error (and, while at it, no protocol error of any kind).
exim_srv_in_sync() {
	local line
	line=$(grep -E 'SMTP protocol synchronization error|SMTP protocol error' \
		"$EXIM_SRV_LOG" | head -n 1 | cut -c 1-400)
	if [ -z "$line" ]; then
		pass "$1: no SMTP protocol synchronization error in the server's log"
	else
		fail "$1: no SMTP protocol synchronization error in the server's log" "$line"
	fi
}
