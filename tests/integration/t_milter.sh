#!/bin/bash
# SPDX-License-Identifier: MIT
# Milters through the bridge: real ones from Debian, in the bridge
# namespace beside sporkd, against the real Postfix. A lab DNS (unbound on
# 127.0.0.1) holds the DKIM keys.
# 1. opendkim verifying inbound mail (unix socket): a message signed with
#    Mail::DKIM arrives with opendkim's Authentication-Results dkim=pass,
#    over IPv4 and IPv6, and still verifies at the receiving side; a
#    tampered copy says dkim=fail.
# 2. opendkim signing outbound mail (a client inside inside_networks): the
#    delivered message carries its DKIM-Signature, and Mail::DKIM verifies
#    it with the lab DNS; direction= keeps each opendkim to its own side.
# 3. rspamd's milter interface (rspamd_proxy, milter = yes, inet [::1]):
#    GTUBE refused with rspamd's own reply over IPv4 and IPv6, clean mail
#    delivered with rspamd's headers, a tagged one with X-Spam: Yes.
# 4. a milter down: default=accept delivers, tempfail answers 451 4.7.1,
#    reject 550 5.7.1; a milter that accepts and never answers: 451 at the
#    3 s timeout, or delivered with default=accept after one timeout.
# 5. three milters in a row (opendkim, rspamd, a pymilter milter of ours):
#    all their effects, in order; a body the last one turns into EICAR is
#    scanned again and refused with the virus's name.
# 6. the pymilter milter's other answers: its own reply codes (at the end
#    of the message and at RCPT), discard, quarantine; what it was told of
#    the session.
# 7. envelope changes by a pymilter milter (env_milter.py), re-made with
#    the server before DATA: an added recipient (with and without ESMTP
#    parameters) gets the message too, a deleted one does not, a changed
#    sender is the one Postfix logs and writes in Return-Path; a recipient
#    Postfix refuses makes it 451 4.7.1 for all, nothing delivered; the
#    same with PIPELINING hidden by the server (one command at a time).
set -u
umask 022	# the milters, unprivileged, read their files under $tmp
. "$(dirname "$0")/lib.sh"
DATA=$SPORK_REPO/tests/data/milter
# Debian's python, where python3-milter installs (a python3 earlier on
# PATH, e.g. pyenv's, does not see Debian's modules).
DEBIAN_PY=/usr/bin/python3

# What this test needs beyond lab_require's list: one line, then stop.
milter_require() {
	local missing=() c
	case ":$PATH:" in *:/usr/sbin:*) ;; *) PATH=$PATH:/usr/sbin:/sbin ;; esac
	for c in opendkim:opendkim opendkim-genkey:opendkim-tools \
		rspamd:rspamd unbound:unbound ss:iproute2; do
		command -v "${c%%:*}" >/dev/null 2>&1 || missing+=("${c%%:*} (${c#*:})")
	done
	perl -MMail::DKIM::Verifier -MMail::DKIM::TextWrap -MNet::DNS::Resolver \
		-e 1 >/dev/null 2>&1 || missing+=("perl Mail::DKIM (libmail-dkim-perl)")
	"$DEBIAN_PY" -c 'import Milter' >/dev/null 2>&1 ||
		missing+=("$DEBIAN_PY Milter (python3-milter)")
	id opendkim >/dev/null 2>&1 || missing+=("user opendkim (opendkim)")
	id _rspamd >/dev/null 2>&1 || missing+=("user _rspamd (rspamd)")
	if [ ${#missing[@]} -gt 0 ]; then
		echo "$(basename "$0"): missing: ${missing[*]} (run scripts/install-deps)" >&2
		exit 1
	fi
}
milter_require

tmp=$(mktemp -d)
chmod 755 "$tmp"	# opendkim, rspamd and sporkd run unprivileged
daemon_pids=()
cleanup() {
	local p
	for p in "${daemon_pids[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${daemon_pids[@]}"; do
		for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
	done
	lab_down
	rm -rf "$tmp"
}
trap cleanup EXIT
lab_up

# in the bridge namespace, where sporkd and the milters run
tcp_listening() { in_br ss -Hltn "sport = :$1" | grep -q .; }
unix_listening() { in_br ss -Hlx | grep -qF " $1 "; }
# start NAME CMD...: a daemon in the bridge namespace, output to $tmp/NAME.out
start() {
	local name=$1
	shift
	ip netns exec "$NS_BR" "$@" >"$tmp/$name.out" 2>&1 &
	daemon_pids+=($!)
}
# start_sporkd LINES...: the lab's config plus extra lines.
start_sporkd() {
	{
		cat "$LAB_DIR/spork.conf"
		printf '%s\n' "$@"
	} >"$tmp/run.conf"
	lab start-sporkd "$tmp/run.conf" 2>"$tmp/start-sporkd.err" ||
		{ fail "sporkd start" "$* :: $(tail -n 8 "$tmp/start-sporkd.err" | tr '\n' ' ')"; return 1; }
}
# delivered SUBJECT: how many copies arrived; delivered_file SUBJECT: one
delivered() { grep -l "^Subject: $1\$" "$LAB_MAIL"/*/new/* 2>/dev/null | wc -l; }
delivered_file() { grep -l "^Subject: $1\$" "$LAB_MAIL"/*/new/* 2>/dev/null | head -n1; }
has_subject() { [ "$(delivered "$1")" -ge 1 ]; }
wait_subject() { wait_until "${2:-10}" has_subject "$1"; }
not_delivered() {	# not_delivered SUBJECT NAME
	sleep 0.5
	[ "$(delivered "$1")" = 0 ] && pass "$2" || fail "$2" "$(delivered "$1") copies arrived"
}
# headers FILE: the header fields of a message, one per line, unfolded.
headers() {
	awk '/^\r?$/ { exit } /^[ \t]/ { sub(/^[ \t]+/, " "); h = h $0; next }
		{ if (h != "") print h; h = $0 } END { if (h != "") print h }' "$1" | tr -d '\r'
}
# assert_header PATTERN FILE NAME: an unfolded header field matches
assert_header() {
	if [ -n "$2" ] && headers "$2" | grep -Eq -- "$1"; then pass "$3"
	else fail "$3" "no header /$1/ in ${2:-(no file)}"; fi
}
assert_no_header() {
	if [ -n "$2" ] && ! headers "$2" | grep -Eq -- "$1"; then pass "$3"
	else fail "$3" "header /$1/ in ${2:-(no file)}"; fi
}
# header_line PATTERN FILE: the number of the unfolded field that matches
header_line() { headers "$2" | grep -En -- "$1" | head -n1 | cut -d: -f1; }
log_count() { grep -Ec -- "$1" "$LAB_SPORKD_LOG"; }
# reply OUT: swaks' last reply line from the server (or from sporkd)
reply() { grep -E '^<(\*\*|-) +[245][0-9][0-9] ' "$1" | tail -n1; }
# dkim_verify FILE: Mail::DKIM at the receiving side, keys from the lab DNS
dkim_verify() { in_br perl "$DATA/dkim.pl" verify 127.0.0.1 <"$1"; }
# ms_since T0: milliseconds since T0 (date +%s%N)
ms_since() { echo $((($(date +%s%N) - $1) / 1000000)); }

# --- the lab DNS and the keys
# Two lab keys: client.example.test signs what arrives from outside (with
# Mail::DKIM), example.test is ours (opendkim signs on the way out).
keys=$tmp/keys
mkdir -p "$keys"
opendkim-genkey -b 2048 -d client.example.test -s ext -D "$keys" &&
	opendkim-genkey -b 2048 -d example.test -s sel -D "$keys" ||
	{ fail "opendkim-genkey" "no keys"; summary; exit 1; }
chown opendkim: "$keys/sel.private"
# The TXT record as opendkim-genkey writes it: its quoted strings.
txt() { tr -d '\n' <"$1" | sed 's/^[^(]*( *//; s/ *).*$//' | tr -s ' \t' ' '; }
cat >"$tmp/unbound.conf" <<EOF
server:
	interface: 127.0.0.1
	port: 53
	do-ip6: no
	do-daemonize: no
	username: ""
	chroot: ""
	directory: "$tmp"
	pidfile: ""
	use-syslog: no
	logfile: ""
	verbosity: 1
	access-control: 127.0.0.0/8 allow
	module-config: "iterator"
	local-zone: "." static
	local-data: 'ext._domainkey.client.example.test. TXT $(txt "$keys/ext.txt")'
	local-data: 'sel._domainkey.example.test. TXT $(txt "$keys/sel.txt")'
remote-control:
	control-enable: no
EOF
start unbound unbound -d -c "$tmp/unbound.conf"
dns_up() { in_br ss -Hlun 'sport = :53' | grep -q 127.0.0.1; }
if wait_until 10 dns_up; then pass "unbound up in $NS_BR on 127.0.0.1:53 with the two keys"
else fail "unbound up" "$(tail -n 5 "$tmp/unbound.out")"; summary; exit 1; fi

# --- opendkim, twice: one verifies, one signs. Their libunbound asks the
# lab DNS only; it would answer names under .test itself (a special-use
# domain, empty by default), hence nodefault.
cat >"$tmp/resolver.conf" <<'EOF'
server:
	module-config: "iterator"
	do-ip6: no
	local-zone: "test." nodefault
forward-zone:
	name: "."
	forward-addr: 127.0.0.1
EOF
socks=$tmp/milter
mkdir -p "$socks"
chmod 777 "$socks"	# opendkim creates its sockets, sporkd (user spork) connects
echo "sel._domainkey.example.test example.test:sel:$keys/sel.private" >"$tmp/key.table"
echo "*@example.test sel._domainkey.example.test" >"$tmp/signing.table"
for mode in verify sign; do
	{
		printf 'Socket\t\t\tlocal:%s\n' "$socks/dkim-$mode.sock"
		printf 'UMask\t\t\t000\n'
		printf 'UserID\t\t\topendkim\n'
		printf 'Background\t\tno\n'
		printf 'Syslog\t\t\tno\n'
		printf 'PidFile\t\t\t%s\n' "$tmp/dkim-$mode.pid"
		printf 'ResolverConfiguration\t%s\n' "$tmp/resolver.conf"
		if [ "$mode" = verify ]; then
			printf 'Mode\t\t\tv\n'
			printf 'AuthservID\t\tmx.example.test\n'
		else
			printf 'Mode\t\t\ts\n'
			printf 'Canonicalization\tsimple/simple\n'
			printf 'KeyTable\t\t%s\n' "$tmp/key.table"
			printf 'SigningTable\t\trefile:%s\n' "$tmp/signing.table"
			# Signs only for these clients (sporkd passes the client's
			# own address at connect).
			printf 'InternalHosts\t\t10.25.0.0/24, fd25::/64\n'
			# The key lives under /tmp (world-writable), which opendkim
			# would otherwise refuse.
			printf 'RequireSafeKeys\t\tno\n'
		fi
	} >"$tmp/dkim-$mode.conf"
	start "dkim-$mode" opendkim -f -x "$tmp/dkim-$mode.conf"
done

# --- rspamd's milter interface: the proxy worker scanning itself. A
# private configuration as in t_spam.sh (no Lua rule set but one test rule;
# GTUBE is built in), plus milter_headers for the headers it adds.
rs=$tmp/rspamd
mkdir -p "$rs/db"
printf 'test\nexample\n' >"$rs/tld.dat"
cat >"$rs/rules.lua" <<'EOF'
rspamd_config:register_symbol({ name = 'SPORK_TEST_TAG', score = 7.0,
  group = 'spork', callback = function(task)
    local s = task:get_subject()
    return s ~= nil and s:find('spork-tag-test', 1, true) ~= nil
  end })
EOF
cat >"$rs/rspamd.conf" <<EOF
options {
  pidfile = "$rs/rspamd.pid";
  dbdir = "$rs/db";
  url_tld = "$rs/tld.dat";
  local_addrs = [];
  dns { nameserver = ["127.0.0.1:53"]; timeout = 1s; retransmits = 1; }
}
logging { type = "file"; filename = "$rs/rspamd.log"; level = "info"; }
actions { reject = 20; add_header = 6; greylist = 4; }
modules { path = "/usr/share/rspamd/plugins/milter_headers.lua"; }
milter_headers {
  use = ["x-spamd-result", "x-rspamd-server"];
  skip_local = false;
  skip_authenticated = false;
}
worker "rspamd_proxy" {
  bind_socket = "[::1]:11332";
  milter = yes;
  timeout = 60s;
  count = 1;
  upstream "local" { default = yes; self_scan = yes; }
}
lua = "$rs/rules.lua";
EOF
chown -R _rspamd: "$rs"
start rspamd rspamd -f -u _rspamd -g _rspamd -c "$rs/rspamd.conf"

# --- our own milter (pymilter) on 127.0.0.1, and one that never answers
# It runs as nobody, from $tmp (the work tree may be out of nobody's reach).
cp "$DATA/lab_milter.py" "$tmp/"
: >"$tmp/lab-seen"
chmod 644 "$tmp/lab_milter.py"
chmod 666 "$tmp/lab-seen"
start lab-milter runuser -u nobody -- "$DEBIAN_PY" "$tmp/lab_milter.py" \
	inet:9901@127.0.0.1 "$tmp/lab-seen"
start silent "$DEBIAN_PY" -c '
import socket
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 9902)); s.listen(16)
conns = []
while True:
    c, _ = s.accept(); conns.append(c)
'

wait_until 10 unix_listening "$socks/dkim-verify.sock" &&
	pass "opendkim (verify) listening on $socks/dkim-verify.sock" ||
	fail "opendkim verify up" "$(tail -n 5 "$tmp/dkim-verify.out")"
wait_until 10 unix_listening "$socks/dkim-sign.sock" &&
	pass "opendkim (sign) listening on $socks/dkim-sign.sock" ||
	fail "opendkim sign up" "$(tail -n 5 "$tmp/dkim-sign.out")"
wait_until 30 tcp_listening 11332 && pass "rspamd milter listening in $NS_BR on [::1]:11332" ||
	fail "rspamd up" "$(tail -n 5 "$rs/rspamd.log" 2>/dev/null) $(tail -n 3 "$tmp/rspamd.out")"
wait_until 10 tcp_listening 9901 && pass "lab milter (pymilter) listening on 127.0.0.1:9901" ||
	fail "lab milter up" "$(tail -n 5 "$tmp/lab-milter.out")"
wait_until 10 tcp_listening 9902 || fail "silent milter up" "$(tail -n 5 "$tmp/silent.out")"

# The messages: signed by client.example.test with Mail::DKIM, each with
# its own Subject (signed, so set before signing).
# signed SUBJECT OUT [sed expression applied after signing]
signed() {
	sed "s/^Subject: .*/Subject: $1/" "$DATA/signed-inbound.eml" |
		perl "$DATA/dkim.pl" sign client.example.test ext "$keys/ext.private" >"$2.tmp" &&
		sed -e "${3:-}" "$2.tmp" >"$2"
	rm -f "$2.tmp"
}
signed "dkim inbound v4" "$tmp/in4.eml"
signed "dkim inbound v6" "$tmp/in6.eml"
signed "dkim tampered" "$tmp/tampered.eml" 's/100 EUR/900 EUR/'
signed "dkim direction v6" "$tmp/dir6.eml"
signed "three milters" "$tmp/three.eml"
dkim_verify "$tmp/in4.eml" >"$tmp/in4.verify" && pass "the signed message verifies with the lab DNS before sending" ||
	fail "signed message verifies" "$(cat "$tmp/in4.verify")"
dkim_verify "$tmp/tampered.eml" >"$tmp/tampered.verify" && fail "the tampered message fails before sending" "$(cat "$tmp/tampered.verify")" ||
	pass "the tampered message fails before sending (the verifier can say no)"

# send_data OUT SERVER FILE: a whole message from sender@client.example.test
send_data() {
	send_mail "$1" alice@example.test sender@client.example.test "$2" "" --data "@$3"
}
# send_plain OUT SUBJECT SERVER FROM [swaks args]: swaks' own message
send_plain() {
	local out=$1 subj=$2 server=$3 from=$4
	shift 4
	send_mail "$out" alice@example.test "$from" "$server" "" --header "Subject: $subj" "$@"
}

# --- 1. opendkim verifying inbound mail
v0=$(log_count 'milter name=dkimverify result=')
start_sporkd "milters dkimverify=unix:$socks/dkim-verify.sock,default=tempfail,direction=inbound"
send_data "$tmp/t-in4" "$SRV_V4" "$tmp/in4.eml"
send_data "$tmp/t-in6" "$SRV_V6" "$tmp/in6.eml"
send_data "$tmp/t-tampered" "$SRV_V4" "$tmp/tampered.eml"
for t in in4 in6 tampered; do
	assert_grep '^<- +250 2\.0\.0 Ok: queued' "$tmp/t-$t" "opendkim verify ($t): the server's 250"
done
wait_subject "dkim inbound v4"
wait_subject "dkim inbound v6"
wait_subject "dkim tampered"
f4=$(delivered_file "dkim inbound v4")
f6=$(delivered_file "dkim inbound v6")
ft=$(delivered_file "dkim tampered")
ar_pass='^Authentication-Results: +mx\.example\.test; +dkim=pass \(2048-bit key; unprotected\) header\.d=client\.example\.test header\.i=@client\.example\.test header\.a=rsa-sha256 header\.s=ext '
assert_header "$ar_pass" "$f4" "opendkim verify (IPv4): Authentication-Results dkim=pass in alice's Maildir"
assert_header "$ar_pass" "$f6" "opendkim verify (IPv6): Authentication-Results dkim=pass"
assert_header '^Authentication-Results: +mx\.example\.test; +dkim=fail reason="signature verification failed" .*header\.d=client\.example\.test' \
	"$ft" "opendkim verify (tampered): Authentication-Results dkim=fail"
assert_no_header 'dkim=pass' "$ft" "opendkim verify (tampered): no pass anywhere"
[ -n "$f4" ] && [ "$(headers "$f4" | grep -c '^Authentication-Results:')" = 1 ] &&
	pass "opendkim verify: exactly one Authentication-Results" ||
	fail "one Authentication-Results" "$(headers "${f4:-/dev/null}" | grep -c '^Authentication-Results:')"
# opendkim inserts its header first (index 0): above the message's own
# header fields, below what the receiving Postfix puts on top.
ar=$(header_line '^Authentication-Results:' "$f4")
sig=$(header_line '^DKIM-Signature:' "$f4")
[ -n "$ar" ] && [ -n "$sig" ] && [ "$ar" -lt "$sig" ] &&
	pass "opendkim verify: its header inserted above the message's own fields" ||
	fail "A-R position" "A-R at $ar, DKIM-Signature at $sig"
# Only a header added: the message still verifies where it arrives.
dkim_verify "$f4" >"$tmp/f4.verify" && pass "opendkim verify: the delivered message still verifies (nothing else changed)" ||
	fail "delivered inbound message verifies" "$(cat "$tmp/f4.verify")"
assert_grep 'milter name=dkimverify result=(accept|continue) ms=[0-9]+ edits=1' "$LAB_SPORKD_LOG" \
	"opendkim verify: one log line per message, with result and ms"
[ "$(log_count 'milter name=dkimverify result=')" = $((v0 + 3)) ] && pass "opendkim verify: one log line for each of 3 messages" ||
	fail "dkimverify log lines" "$(($(log_count 'milter name=dkimverify result=') - v0)) for 3 messages"

# --- 2. opendkim signing outbound mail; direction keeps each to its side
# 10.25.0.1 is inside (outbound), fd25::1 outside (inbound).
v0=$(log_count 'milter name=dkimverify result=')
s0=$(log_count 'milter name=dkimsign result=')
start_sporkd "inside_networks 10.25.0.1/32" \
	"milters dkimverify=unix:$socks/dkim-verify.sock,direction=inbound dkimsign=unix:$socks/dkim-sign.sock,direction=outbound"
send_plain "$tmp/t-out4" "dkim outbound v4" "$SRV_V4" bob@example.test
send_data "$tmp/t-dir6" "$SRV_V6" "$tmp/dir6.eml"
assert_grep '^<- +250 2\.0\.0 Ok: queued' "$tmp/t-out4" "opendkim sign (IPv4, inside): the server's 250"
assert_grep '^<- +250 2\.0\.0 Ok: queued' "$tmp/t-dir6" "opendkim sign (IPv6, outside): the server's 250"
wait_subject "dkim outbound v4"
wait_subject "dkim direction v6"
fo=$(delivered_file "dkim outbound v4")
fd=$(delivered_file "dkim direction v6")
assert_header '^DKIM-Signature: v=1; a=rsa-sha256; c=simple/simple; d=example\.test; s=sel;' "$fo" \
	"opendkim sign: the delivered message has opendkim's DKIM-Signature for example.test"
if [ -n "$fo" ] && dkim_verify "$fo" >"$tmp/fo.verify"; then
	pass "opendkim sign: Mail::DKIM verifies it at the receiving side with the lab DNS"
else
	fail "outbound signature verifies" "$(cat "$tmp/fo.verify" 2>/dev/null)"
fi
grep -q '^pass d=example\.test s=sel$' "$tmp/fo.verify" && pass "opendkim sign: the passing signature is d=example.test s=sel" ||
	fail "outbound signature d= s=" "$(cat "$tmp/fo.verify")"
sed 's/^This is a test mailing/This is a forged mailing/' "${fo:-/dev/null}" >"$tmp/fo-tampered"
dkim_verify "$tmp/fo-tampered" >/dev/null && fail "the verifier refuses a changed copy" "it passed" ||
	pass "opendkim sign: a changed copy of the delivered file fails (the check can fail)"
assert_no_header '^Authentication-Results:' "$fo" "direction: the inbound-only verifier left outbound mail alone"
assert_header "$ar_pass" "$fd" "direction: IPv6 from outside verified (dkim=pass)"
assert_no_header '^DKIM-Signature: .*d=example\.test;' "$fd" "direction: the outbound-only signer left inbound mail alone"
[ "$(log_count 'milter name=dkimsign result=')" = $((s0 + 1)) ] && [ "$(log_count 'milter name=dkimverify result=')" = $((v0 + 1)) ] &&
	pass "direction: each message went to its own milter only (log)" ||
	fail "direction log" "dkimsign +$(($(log_count 'milter name=dkimsign result=') - s0)) dkimverify +$(($(log_count 'milter name=dkimverify result=') - v0))"

# --- 3. rspamd through its milter interface
GTUBE='XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X'
printf 'This is a test message.\n\n%s\n' "$GTUBE" >"$tmp/gtube.txt"
printf 'Nothing to see here: the minutes of the last meeting.\n' >"$tmp/clean.txt"
start_sporkd "milters rspamd=inet:[::1]:11332,timeout=30s,default=tempfail"
send_plain "$tmp/t-gtube4" "gtube v4" "$SRV_V4" a@client.example.test --body "@$tmp/gtube.txt"
send_plain "$tmp/t-gtube6" "gtube v6" "$SRV_V6" a@client.example.test --body "@$tmp/gtube.txt"
assert_grep '^<\*\* +554 5\.7\.1 Gtube pattern' "$tmp/t-gtube4" "rspamd GTUBE (IPv4): rspamd's own reply, 554 5.7.1 Gtube pattern"
assert_grep '^<\*\* +554 5\.7\.1 Gtube pattern' "$tmp/t-gtube6" "rspamd GTUBE (IPv6): 554 5.7.1 Gtube pattern"
not_delivered "gtube v4" "rspamd GTUBE (IPv4): nothing delivered"
not_delivered "gtube v6" "rspamd GTUBE (IPv6): nothing delivered"
assert_grep '^ -> QUIT' "$tmp/t-gtube4" "rspamd GTUBE: the session went on to QUIT"
assert_grep 'milter name=rspamd result=reject ms=[0-9]+ ' "$LAB_SPORKD_LOG" "rspamd GTUBE: logged as reject"
send_plain "$tmp/t-rclean" "rspamd clean" "$SRV_V4" a@client.example.test --body "@$tmp/clean.txt"
send_plain "$tmp/t-rtag" "spork-tag-test" "$SRV_V6" a@client.example.test --body "@$tmp/clean.txt"
assert_grep '^<- +250 2\.0\.0 Ok: queued' "$tmp/t-rclean" "rspamd clean: the server's 250"
assert_grep '^<- +250 2\.0\.0 Ok: queued' "$tmp/t-rtag" "rspamd tag (IPv6): the server's 250"
wait_subject "rspamd clean"
wait_subject "spork-tag-test"
f=$(delivered_file "rspamd clean")
assert_header '^X-Spamd-Result: default: False \[0\.00 / 20\.00\]' "$f" "rspamd clean: delivered with rspamd's X-Spamd-Result"
assert_header '^X-Rspamd-Server: ' "$f" "rspamd clean: and X-Rspamd-Server"
assert_no_header '^X-Spam:' "$f" "rspamd clean: no X-Spam"
f=$(delivered_file "spork-tag-test")
assert_header '^X-Spamd-Result: default: False \[7\.00 / 20\.00\]; SPORK_TEST_TAG\(7\.00\)' "$f" "rspamd tag: the score and the rule in X-Spamd-Result"
# rspamd sets it with a change-header (index 1), which adds a missing field.
assert_header '^X-Spam: Yes$' "$f" "rspamd tag: X-Spam: Yes (add header action)"

# --- 4. a milter down or silent
printf 'Down or silent milters.\n' >"$tmp/plain.txt"
start_sporkd "milters gone=unix:$socks/absent.sock,default=accept"
send_plain "$tmp/t-down-acc" "down accept" "$SRV_V4" a@client.example.test --body "@$tmp/plain.txt"
assert_grep '^<- +250 2\.0\.0 Ok: queued' "$tmp/t-down-acc" "milter down, default=accept: the server's 250"
wait_subject "down accept" && pass "milter down, default=accept: delivered" || fail "down accept delivered" "$(reply "$tmp/t-down-acc")"
assert_grep 'milter name=gone result=failed ms=[0-9]+ edits=0 error=' "$LAB_SPORKD_LOG" "milter down, default=accept: logged as failed, with the error"
start_sporkd "milters gone=inet:127.0.0.1:9903,default=tempfail"
send_plain "$tmp/t-down-tf" "down tempfail" "$SRV_V4" a@client.example.test --body "@$tmp/plain.txt"
assert_grep '^<\*\* +451 4\.7\.1 ' "$tmp/t-down-tf" "milter down, default=tempfail: 451 4.7.1"
not_delivered "down tempfail" "milter down, default=tempfail: nothing delivered"
start_sporkd "milters gone=inet:127.0.0.1:9903,default=reject"
send_plain "$tmp/t-down-rj" "down reject" "$SRV_V6" a@client.example.test --body "@$tmp/plain.txt"
assert_grep '^<\*\* +550 5\.7\.1 ' "$tmp/t-down-rj" "milter down, default=reject: 550 5.7.1 (IPv6)"
not_delivered "down reject" "milter down, default=reject: nothing delivered"

start_sporkd "milters silent=inet:127.0.0.1:9902,timeout=3s,default=tempfail"
t0=$(date +%s%N)
send_plain "$tmp/t-silent-tf" "silent tempfail" "$SRV_V4" a@client.example.test --body "@$tmp/plain.txt"
ms=$(ms_since "$t0")
assert_grep '^<\*\* +451 4\.7\.1 ' "$tmp/t-silent-tf" "silent milter, default=tempfail: 451 4.7.1"
[ "$ms" -ge 2900 ] && [ "$ms" -lt 6000 ] && pass "silent milter: answered at the 3 s timeout ($ms ms for the whole session)" ||
	fail "silent milter timeout" "$ms ms"
not_delivered "silent tempfail" "silent milter, default=tempfail: nothing delivered"
assert_grep 'milter name=silent (rcpt=<[^>]*> )?result=failed ms=(29[0-9][0-9]|3[0-9]{3}) .*error=' "$LAB_SPORKD_LOG" \
	"silent milter: logged as failed after about 3000 ms"
start_sporkd "milters silent=inet:127.0.0.1:9902,timeout=3s,default=accept"
t0=$(date +%s%N)
send_plain "$tmp/t-silent-acc" "silent accept" "$SRV_V4" a@client.example.test --body "@$tmp/plain.txt" \
	--to alice@example.test,bob@example.test
ms=$(ms_since "$t0")
assert_grep '^<- +250 2\.0\.0 Ok: queued' "$tmp/t-silent-acc" "silent milter, default=accept: the server's 250"
wait_subject "silent accept" && pass "silent milter, default=accept: delivered" || fail "silent accept delivered" ""
# As in Postfix, a milter that failed is not asked again in the session:
# one timeout, not one per recipient and one more at the end (with the
# default 30 s and a few recipients, more than a client waits).
[ "$ms" -ge 2900 ] && [ "$ms" -lt 5000 ] &&
	pass "silent milter, default=accept: one 3 s timeout for the session, 2 recipients ($ms ms)" ||
	fail "silent milter, default=accept: one timeout for the session" "$ms ms for 2 recipients"

# --- 5. three milters in a row, then the rewritten body scanned again
# shellcheck disable=SC2016 # the EICAR string, literally
EICAR_SENT='X5O!P%@AP[4\PZX54(P^)7CC)7}$SPORKWORD-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*'
printf '%s\n' "$EICAR_SENT" >"$tmp/eicar-to-be.txt"
start_sporkd "milters dkimverify=unix:$socks/dkim-verify.sock,default=tempfail rspamd=inet:[::1]:11332,default=tempfail lab=inet:127.0.0.1:9901,default=tempfail"
: >"$tmp/lab-seen"
log_before=$(wc -l <"$LAB_SPORKD_LOG")
send_data "$tmp/t-three" "$SRV_V4" "$tmp/three.eml"
assert_grep '^<- +250 2\.0\.0 Ok: queued' "$tmp/t-three" "three milters: the server's 250"
wait_subject "three milters"
f=$(delivered_file "three milters")
assert_header "$ar_pass" "$f" "three milters: opendkim's dkim=pass (it saw the body before the rewrite)"
assert_header '^X-Spamd-Result: default: False ' "$f" "three milters: rspamd's X-Spamd-Result"
assert_header '^X-Lab-Milter: seen$' "$f" "three milters: the lab milter's X-Lab-Milter: seen"
assert_grep '^The word of the day: EICAR\.$' "$f" "three milters: the lab milter's body rewrite applied"
assert_no_grep 'SPORKWORD' "$f" "three milters: the old word gone"
assert_grep '^The minutes: 100 EUR for the new coffee machine\.$' "$f" "three milters: the rest of the body kept"
ar=$(header_line '^Authentication-Results:' "$f")
xs=$(header_line '^X-Spamd-Result:' "$f")
xl=$(header_line '^X-Lab-Milter:' "$f")
from=$(header_line '^From:' "$f")
[ -n "$ar" ] && [ -n "$from" ] && [ -n "$xs" ] && [ -n "$xl" ] && [ "$ar" -lt "$from" ] && [ "$from" -lt "$xs" ] && [ "$xs" -lt "$xl" ] &&
	pass "three milters: headers in order (opendkim's inserted on top, rspamd's then the lab's appended)" ||
	fail "three milters: header order" "A-R=$ar From=$from X-Spamd-Result=$xs X-Lab-Milter=$xl"
tail -n +"$((log_before + 1))" "$LAB_SPORKD_LOG" | grep -Eo 'milter name=[a-z]+ result=[a-z]+' >"$tmp/three.order"
[ "$(tr '\n' ' ' <"$tmp/three.order")" = "milter name=dkimverify result=accept milter name=rspamd result=accept milter name=lab result=accept " ] &&
	pass "three milters: run in the order given, one log line each" ||
	fail "three milters: log order" "$(tr '\n' ';' <"$tmp/three.order")"
# Each milter sees the message as the ones before it left it.
assert_grep 'subject=three milters headers=.*Authentication-Results.*X-Spamd-Result' "$tmp/lab-seen" \
	"three milters: the last milter saw the first two's headers"
send_plain "$tmp/t-eicar" "eicar after rewrite" "$SRV_V4" a@client.example.test --body "@$tmp/eicar-to-be.txt"
assert_grep '^<\*\* +550 5\.7\.1 .*Eicar-Test-Signature' "$tmp/t-eicar" \
	"rewritten body scanned again: 550 5.7.1 with the virus's name"
not_delivered "eicar after rewrite" "rewritten body: nothing delivered"
assert_grep 'milter name=lab result=accept ms=[0-9]+ edits=1 body=replaced' "$LAB_SPORKD_LOG" "rewritten body: the lab milter's replacement logged"
assert_grep 'verdict=virus name="?Eicar-Test-Signature' "$LAB_SPORKD_LOG" "rewritten body: the scan verdict logged"
send_plain "$tmp/t-three6" "three milters v6" "$SRV_V6" a@client.example.test --body "@$tmp/gtube.txt"
assert_grep '^<\*\* +554 5\.7\.1 Gtube pattern' "$tmp/t-three6" "three milters (IPv6): GTUBE stops at rspamd"
grep -q 'subject=three milters v6' "$tmp/lab-seen" && fail "three milters: a refused message goes no further" "the lab milter saw it" ||
	pass "three milters: the milter after rspamd never saw the refused message"

# --- 6. the lab milter's other answers, and what it was told
start_sporkd "milters lab=inet:127.0.0.1:9901,default=tempfail" "quarantine_then deliver"
: >"$tmp/lab-seen"
send_plain "$tmp/t-lab4" "lab plain" "$SRV_V4" a@client.example.test --body "@$tmp/clean.txt"
send_plain "$tmp/t-lab6" "lab plain v6" "$SRV_V6" b@client.example.test --body "@$tmp/clean.txt" --to alice@example.test,bob@example.test
wait_subject "lab plain"
wait_subject "lab plain v6"
assert_grep '^client=10\.25\.0\.1 helo=client\.example\.test from=<a@client\.example\.test> rcpt=<alice@example\.test> subject=lab plain headers=' \
	"$tmp/lab-seen" "lab milter: told the client's address, HELO, sender and recipient (IPv4)"
assert_grep '^client=fd25::1 helo=client\.example\.test from=<b@client\.example\.test> rcpt=<alice@example\.test>,<bob@example\.test> subject=lab plain v6 ' \
	"$tmp/lab-seen" "lab milter: the same over IPv6, both recipients"
send_plain "$tmp/t-lrej" "lab-reject" "$SRV_V4" a@client.example.test
assert_grep '^<\*\* +550 5\.7\.0 Refused by the lab milter' "$tmp/t-lrej" "lab milter reject: its own 550 5.7.0 reply"
send_plain "$tmp/t-ltf" "lab-tempfail" "$SRV_V4" a@client.example.test
assert_grep '^<\*\* +451 4\.7\.0 Try again, says the lab milter' "$tmp/t-ltf" "lab milter tempfail: its own 451 4.7.0 reply"
send_plain "$tmp/t-ldis" "lab-discard" "$SRV_V4" discard@client.example.test
assert_grep '^<\*\* +550 5\.7\.1 ' "$tmp/t-ldis" "lab milter discard: 550 5.7.1, never a 250 the server did not give"
send_plain "$tmp/t-lq" "lab-quarantine" "$SRV_V4" quarantine@client.example.test
assert_grep '^<- +250 2\.0\.0 Ok: queued' "$tmp/t-lq" "lab milter quarantine (quarantine_then deliver): the server's 250"
wait_subject "lab-quarantine" && pass "lab milter quarantine: delivered" || fail "lab quarantine delivered" ""
for s in lab-reject lab-tempfail lab-discard; do
	not_delivered "$s" "lab milter $s: nothing delivered"
done
# At RCPT time: the milter refuses one recipient with its own reply; the
# other goes on, and the message's milter is told only of that one.
in_cli "$SPORK_REPO/tests/tools/smtpchat" "$SRV_V4" 25 30 >"$tmp/t-lrcpt" 2>&1 <<'CHAT'
expect 220
line EHLO client.example.test
expect 250
line MAIL FROM:<no-bob@client.example.test>
expect 250
line RCPT TO:<alice@example.test>
expect 250
line RCPT TO:<bob@example.test>
expect 550 5.7.1
line DATA
expect 354
send Subject: lab rcpt\r\n\r\nFor alice only.\r\n.\r\n
expect 250
line QUIT
expect 221
CHAT
[ $? -eq 0 ] && pass "lab milter at RCPT: bob refused with 550 5.7.1, alice accepted, the message queued" ||
	fail "lab milter at RCPT" "$(tail -n 4 "$tmp/t-lrcpt")"
assert_grep '^<- 550 5\.7\.1 <bob@example\.test>: bob takes no mail from no-bob \(lab milter\)' "$tmp/t-lrcpt" \
	"lab milter at RCPT: its own reply text"
wait_subject "lab rcpt" && pass "lab milter at RCPT: delivered to alice" || fail "lab rcpt delivered" ""
sleep 0.5
grep -qs '^Subject: lab rcpt$' "$LAB_MAIL"/bob/new/* && fail "lab milter at RCPT: nothing for bob" "a copy arrived" ||
	pass "lab milter at RCPT: nothing for bob"
assert_grep '^client=10\.25\.0\.1 helo=client\.example\.test from=<no-bob@client\.example\.test> rcpt=<alice@example\.test> subject=lab rcpt ' \
	"$tmp/lab-seen" "lab milter at RCPT: at the end of the message, told of alice only"
assert_grep 'milter name=lab rcpt=<bob@example\.test> result=reject' "$LAB_SPORKD_LOG" "lab milter at RCPT: logged"

ctl quarantine list >"$tmp/qlist"
assert_grep 'sender=<discard@client\.example\.test> verdict=milter' "$tmp/qlist" "lab milter discard: kept in spork's quarantine"
assert_grep 'sender=<quarantine@client\.example\.test> verdict=milter name=held by the lab milter' "$tmp/qlist" \
	"lab milter quarantine: in spork's quarantine with the milter's reason"

# --- 7. envelope changes
cp "$DATA/env_milter.py" "$tmp/"
chmod 644 "$tmp/env_milter.py"
start env-milter runuser -u nobody -- "$DEBIAN_PY" "$tmp/env_milter.py" inet:9904@127.0.0.1
wait_until 10 tcp_listening 9904 && pass "envelope milter (pymilter) listening on 127.0.0.1:9904" ||
	fail "envelope milter up" "$(tail -n 5 "$tmp/env-milter.out")"
start_sporkd "milters env=inet:127.0.0.1:9904,default=tempfail"
# in_box USER SUBJECT: USER's Maildir holds the message
in_box() { grep -qs "^Subject: $2\$" "$LAB_MAIL/$1"/new/*; }
# qid OUT: the Postfix queue id in swaks' transcript of a queued message
qid() { sed -nE 's/^<- +250 2\.0\.0 Ok: queued as ([0-9A-Za-z]+).*/\1/p' "$1" | tail -n1; }
# maillog_has PATTERN: Postfix logged it (it logs a beat after delivery)
maillog_has() { wait_until 15 grep -Eq -- "$1" "$LAB_MAILLOG"; }
# both_boxes SUBJECT NAME: alice and bob both got it
both_boxes() {
	if wait_until 10 in_box alice "$1" && wait_until 10 in_box bob "$1"; then pass "$2"
	else fail "$2" "alice: $(in_box alice "$1" && echo yes || echo no), bob: $(in_box bob "$1" && echo yes || echo no)"; fi
}
send_plain "$tmp/t-eadd4" "env-add v4" "$SRV_V4" a@client.example.test --body "@$tmp/clean.txt"
send_plain "$tmp/t-eadd6" "env-addpar v6" "$SRV_V6" a@client.example.test --body "@$tmp/clean.txt"
for t in eadd4 eadd6; do
	assert_grep '^<- +250 2\.0\.0 Ok: queued' "$tmp/t-$t" "envelope add ($t): the server's 250 for the message"
done
both_boxes "env-add v4" "envelope add (IPv4): sent to alice, delivered to alice and to bob the milter added"
both_boxes "env-addpar v6" "envelope add with NOTIFY=NEVER (IPv6, SMFIR_ADDRCPT_PAR): alice and bob"
q=$(qid "$tmp/t-eadd4")
[ -n "$q" ] && maillog_has "$q: to=<bob@example\.test>.*status=sent" && maillog_has "$q: to=<alice@example\.test>.*status=sent" &&
	pass "envelope add: Postfix's log shows both recipients of $q" ||
	fail "envelope add: Postfix's log" "queue id '${q}': $(grep -F "${q:-none}:" "$LAB_MAILLOG" | tr '\n' ' ')"
maillog_has "$q: from=<a@client\.example\.test>, size=[0-9]+, nrcpt=2 " &&
	pass "envelope add: Postfix queued it with nrcpt=2" || fail "envelope add: nrcpt=2" "$(grep -F "${q:-none}: from=" "$LAB_MAILLOG")"
assert_grep 'milter envelope sender=<a@client\.example\.test> added=1 deleted=0 rcpts=2 pipelining=yes' "$LAB_SPORKD_LOG" \
	"envelope add: one log line for the replay"
assert_grep 'milter name=env result=accept ms=[0-9]+ edits=1 envelope_edits=1' "$LAB_SPORKD_LOG" \
	"envelope add: the milter's line counts its envelope edit"
# The replay's own replies (Postfix: 250 2.0.0 Ok to RSET, 250 2.1.0 to
# MAIL, 250 2.1.5 to RCPT) answer nothing the client said.
if [ "$(grep -Ec '^<- +250 2\.1\.0 ' "$tmp/t-eadd4")" = 1 ] && [ "$(grep -Ec '^<- +250 2\.1\.5 ' "$tmp/t-eadd4")" = 1 ] &&
	[ "$(grep -Ec '^<- +250 2\.0\.0 Ok$' "$tmp/t-eadd4")" = 0 ] && grep -Eq '^<- +221 ' "$tmp/t-eadd4"; then
	pass "envelope add: the client got one reply per command, none of the replay's"
else
	fail "envelope add: replies" "$(grep -E '^<' "$tmp/t-eadd4" | tr '\n' ' ')"
fi
send_plain "$tmp/t-edel" "env-del v4" "$SRV_V4" a@client.example.test --body "@$tmp/clean.txt" \
	--to alice@example.test,bob@example.test
assert_grep '^<- +250 2\.0\.0 Ok: queued' "$tmp/t-edel" "envelope delete: the server's 250"
wait_until 10 in_box alice "env-del v4" && pass "envelope delete: alice got it" || fail "envelope delete: alice" "not delivered"
sleep 0.5
in_box bob "env-del v4" && fail "envelope delete: nothing for bob (deleted as <Bob@Example.TEST>)" "a copy arrived" ||
	pass "envelope delete: nothing for bob (deleted as <Bob@Example.TEST>)"
q=$(qid "$tmp/t-edel")
maillog_has "$q: from=<a@client\.example\.test>, size=[0-9]+, nrcpt=1 " && ! grep -Eq "$q: to=<bob@" "$LAB_MAILLOG" &&
	pass "envelope delete: Postfix queued it for one recipient, never bob" ||
	fail "envelope delete: Postfix's log" "$(grep -F "${q:-none}:" "$LAB_MAILLOG" | tr '\n' ' ')"

send_plain "$tmp/t-efrom4" "env-from v4" "$SRV_V4" a@client.example.test --body "@$tmp/clean.txt"
send_plain "$tmp/t-efrom6" "env-frompar v6" "$SRV_V6" b@client.example.test --body "@$tmp/clean.txt"
for t in efrom4 efrom6; do
	assert_grep '^<- +250 2\.0\.0 Ok: queued' "$tmp/t-$t" "envelope sender ($t): the server's 250"
done
wait_subject "env-from v4"
wait_subject "env-frompar v6"
assert_header '^Return-Path: <changed@client\.example\.test>$' "$(delivered_file "env-from v4")" \
	"envelope sender (IPv4): Return-Path is the milter's new sender"
assert_header '^Return-Path: <changed@client\.example\.test>$' "$(delivered_file "env-frompar v6")" \
	"envelope sender with BODY=8BITMIME (IPv6): Return-Path is the new sender"
q=$(qid "$tmp/t-efrom4")
maillog_has "$q: from=<changed@client\.example\.test>," && pass "envelope sender: Postfix's log has the new sender" ||
	fail "envelope sender: Postfix's log" "$(grep -F "${q:-none}: from=" "$LAB_MAILLOG")"
assert_grep 'milter envelope sender=<changed@client\.example\.test> added=0 deleted=0 rcpts=1' "$LAB_SPORKD_LOG" \
	"envelope sender: logged"

send_plain "$tmp/t-eref4" "env-refused v4" "$SRV_V4" a@client.example.test --body "@$tmp/clean.txt"
send_plain "$tmp/t-eref6" "env-refused v6" "$SRV_V6" a@client.example.test --body "@$tmp/clean.txt" \
	--to alice@example.test,bob@example.test
assert_grep '^<\*\* +451 4\.7\.1 Error: recipient change refused by the server: 550 5\.1\.1 <nobody@example\.test>' "$tmp/t-eref4" \
	"envelope refused (IPv4): 451 4.7.1 with the server's refusal of the added recipient"
assert_grep '^<\*\* +451 4\.7\.1 Error: recipient change refused by the server: ' "$tmp/t-eref6" \
	"envelope refused (IPv6, two recipients): 451 4.7.1"
not_delivered "env-refused v4" "envelope refused (IPv4): delivered to nobody"
not_delivered "env-refused v6" "envelope refused (IPv6): delivered to nobody, neither alice nor bob"
assert_grep '^ -> QUIT' "$tmp/t-eref4" "envelope refused: the session went on to QUIT"
assert_grep '^<- +221 ' "$tmp/t-eref4" "envelope refused: and got the server's 221 (the RSET's reply never reached it)"

# The same without PIPELINING from the server: one command at a time.
PFC=$LAB_DIR/postfix/etc
in_srv postconf -c "$PFC" -e "smtpd_discard_ehlo_keywords = pipelining" &&
	postfix_reload "$NS_SRV" "$PFC" "$LAB_MAILLOG" ||
	fail "PIPELINING hidden: postfix reload" "not in $LAB_MAILLOG"
send_plain "$tmp/t-eadd-np" "env-add no-pipelining" "$SRV_V4" a@client.example.test --body "@$tmp/clean.txt"
send_plain "$tmp/t-eref-np" "env-refused no-pipelining" "$SRV_V4" a@client.example.test --body "@$tmp/clean.txt" \
	--to alice@example.test,bob@example.test
in_srv postconf -c "$PFC" -X smtpd_discard_ehlo_keywords &&
	in_srv postfix -c "$PFC" reload >/dev/null 2>&1
assert_grep '^<- +250 2\.0\.0 Ok: queued' "$tmp/t-eadd-np" "envelope add without PIPELINING: the server's 250"
both_boxes "env-add no-pipelining" "envelope add without PIPELINING: alice and bob"
assert_grep 'milter envelope sender=<a@client\.example\.test> added=1 deleted=0 rcpts=2 pipelining=no' "$LAB_SPORKD_LOG" \
	"envelope add without PIPELINING: replayed one command at a time (log)"
assert_grep '^<\*\* +451 4\.7\.1 Error: recipient change refused by the server: 550 5\.1\.1 <nobody@example\.test>' "$tmp/t-eref-np" \
	"envelope refused without PIPELINING: 451 4.7.1"
not_delivered "env-refused no-pipelining" "envelope refused without PIPELINING: delivered to nobody"

check "sporkd still running" kill -0 "$(cat "$LAB_SPORKD_PID")"
summary
