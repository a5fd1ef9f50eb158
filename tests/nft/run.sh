#!/bin/bash
# SPDX-License-Identifier: MIT
#
# src/kernel/nft_divert.c against the running kernel, in throwaway network
# namespaces laid out like the lab: cli -- br (br0, two veth ports) -- srv,
# plus ref, a second bridge to load reference rulesets into. A driver
# (tests/nft/nftdriver.c) installs the owned divert in br and holds it;
# a stand-in for sporkd answers "220 sporkd" on the transparent port in br
# and a server answers "220 server" on port 25 in srv, so a connection from
# cli shows where it landed. Checks: the probe, the tables and their owner
# flag, that they are spork-setup's divert plus the bypass sets, that the
# print rendering is the installed ruleset, diversion, bypass add/del and
# timeouts, refusals (other processes, no CAP_NET_ADMIN), reinstall, and
# that SIGKILL removes the tables and mail flows past untouched. Needs root.
# Prints PASS/FAIL lines; exits 1 if any check failed, 77 if it cannot run.
#
#	tests/nft/run.sh
#	SPORK_NFT_KEEP=1 tests/nft/run.sh	keep the build dir for a look
#
# check's eval arguments are single-quoted on purpose: they expand when run.
# shellcheck disable=SC2016

set -uo pipefail

REPO=$(cd "$(dirname -- "${BASH_SOURCE[0]}")/../.." && pwd)
readonly P=spork-nft-$$
readonly NS_CLI=$P-cli NS_BR=$P-br NS_SRV=$P-srv NS_REF=$P-ref
readonly PORT=10025
readonly MAC=02:53:50:4f:52:4b
readonly CLI4=10.99.0.1 SRV4=10.99.0.2 CLI6=2001:db8:99::1 SRV6=2001:db8:99::2
CC=${CC:-cc}
T=
failures=0
bg_pids=()

pass() { printf 'PASS %s\n' "$*"; }
fail() { printf 'FAIL %s\n' "$*"; failures=$((failures + 1)); }

# check DESCRIPTION COMMAND...: PASS if the command succeeds.
check()
{
	local what=$1

	shift
	if "$@"; then pass "$what"; else fail "$what"; fi
}

# has/hasnt PATTERN TEXT: grep on text, not on a pipe (with pipefail,
# grep -q quitting early would fail the writer with SIGPIPE).
has() { grep -q -- "$1" <<<"$2"; }
hasnt() { ! grep -q -- "$1" <<<"$2"; }

in_ns() { local ns=$1; shift; ip netns exec "$ns" "$@"; }
br() { in_ns "$NS_BR" "$@"; }
drv() { "$T/nftdriver" "$@"; }

# Where a connection from cli to ADDR:25 lands: "220 sporkd", "220 server".
landed() { in_ns "$NS_CLI" "$T/nftdriver" connect "$1" 25 2>&1; }

ns_delete()
{
	local ns pids

	for ns in "$NS_CLI" "$NS_BR" "$NS_SRV" "$NS_REF"; do
		has "^$ns\b" "$(ip netns list 2>/dev/null)" || continue
		# A namespace with processes in it outlives "ip netns del".
		pids=$(ip netns pids "$ns" 2>/dev/null) || pids=
		for pid in $pids; do kill -9 "$pid" 2>/dev/null; done
		ip netns del "$ns"
	done
}

# shellcheck disable=SC2317  # run by the EXIT trap
cleanup()
{
	local pid

	for pid in "${bg_pids[@]}"; do kill -9 "$pid" 2>/dev/null; done
	wait 2>/dev/null
	ns_delete
	if [[ -n ${SPORK_NFT_KEEP:-} ]]; then
		echo "kept $T" >&2
	elif [[ -n $T ]]; then
		rm -rf -- "$T"
	fi
}

setup_bridge()
{
	local ns=$1 peer_ns=$2 srv_ns=$3 dev

	in_ns "$ns" ip link set lo up || return 1
	in_ns "$ns" ip link add br0 type bridge || return 1
	in_ns "$ns" ip link set br0 address "$MAC" || return 1
	ip -n "$ns" link add bc type veth peer name c0 netns "$peer_ns" || return 1
	ip -n "$ns" link add bs type veth peer name s0 netns "$srv_ns" || return 1
	for dev in bc bs; do
		in_ns "$ns" ip link set "$dev" master br0 || return 1
		in_ns "$ns" ip link set "$dev" up || return 1
	done
	in_ns "$ns" ip link set br0 up
}

setup()
{
	local ns f

	for ns in "$NS_CLI" "$NS_BR" "$NS_SRV" "$NS_REF"; do
		ip netns add "$ns" || return 1
	done
	setup_bridge "$NS_BR" "$NS_CLI" "$NS_SRV" || return 1
	# The reference bridge: same name, MAC and port names; its peers
	# stay with it.
	setup_bridge "$NS_REF" "$NS_REF" "$NS_REF" || return 1
	in_ns "$NS_CLI" ip link set lo up
	in_ns "$NS_SRV" ip link set lo up
	in_ns "$NS_CLI" ip addr add "$CLI4/24" dev c0 || return 1
	in_ns "$NS_CLI" ip addr add "$CLI6/64" dev c0 nodad || return 1
	in_ns "$NS_CLI" ip link set c0 up || return 1
	in_ns "$NS_SRV" ip addr add "$SRV4/24" dev s0 || return 1
	in_ns "$NS_SRV" ip addr add "$SRV6/64" dev s0 nodad || return 1
	in_ns "$NS_SRV" ip link set s0 up || return 1
	# The divert's surroundings, as spork-setup --apply makes them.
	for f in iptables ip6tables arptables; do
		f=/proc/sys/net/bridge/bridge-nf-call-$f
		br sh -c "[ ! -e $f ] || echo 0 > $f" || return 1
	done
	br ip -4 rule add fwmark 1 lookup 100 || return 1
	br ip -4 route add local 0.0.0.0/0 dev lo table 100 || return 1
	br ip -6 rule add fwmark 1 lookup 100 || return 1
	br ip -6 route add local ::/0 dev lo table 100 || return 1
	br ip -4 route add 10.99.0.0/24 dev br0 || return 1
	br ip -6 route add 2001:db8:99::/64 dev br0 || return 1
	# Fresh namespaces need a moment before IPv6 neighbour discovery.
	for _ in $(seq 50); do
		[[ -n $(in_ns "$NS_CLI" ip -6 route show table local type multicast) &&
			-n $(in_ns "$NS_SRV" ip -6 route show table local type multicast) &&
			-n $(br ip -6 route show table local type multicast) ]] && return 0
		sleep 0.1
	done
	return 1
}

start_bg()
{
	"$@" >/dev/null 2>&1 &
	bg_pids+=($!)
}

# The installing driver, a coprocess: "send CMD" writes a line, "reply"
# reads up to the final "ok..." or "error: ..." line into $out.
send() { printf '%s\n' "$*" >&"${DRV[1]}"; }
reply()
{
	local line

	out=
	while IFS= read -r -t 5 line <&"${DRV[0]}"; do
		out+=$line$'\n'
		[[ $line == ok* || $line == error:* || $line == installed* ]] &&
			return 0
	done
	return 1
}
cmd() { send "$@" && reply; }

tables_of() { in_ns "$1" nft list tables 2>/dev/null | grep -c ' spork$'; }
set_of() { br nft list set bridge spork "$1" 2>/dev/null; }

# A listing without what the daemon adds to spork-setup's divert: the owner
# flag, the bypass sets and rules, comments.
strip_daemon()
{
	sed -e 's/ # progname .*$//' -e 's/ comment "[^"]*"//' \
		-e '/^[[:space:]]*comment "/d' -e '/^[[:space:]]*flags owner$/d' \
		-e '/@bypass_/d' |
		awk '/^\tset bypass_/ { skip = 1 } !skip { print } skip && /^\t}/ { skip = 0 }' |
		sed '/^[[:space:]]*$/d'
}

# shellcheck disable=SC2329  # used through eval
# nft lists a blank line after the comment of a table with flags.
strip_owner()
{
	sed -e 's/ # progname .*$//' -e '/^[[:space:]]*flags owner$/d' \
		-e '/^[[:space:]]*$/d'
}

if [[ $EUID -ne 0 ]]; then
	echo "SKIP tests/nft: needs root"
	exit 77
fi
for tool in ip nft pkg-config "$CC"; do
	if ! command -v "$tool" >/dev/null; then
		echo "SKIP tests/nft: $tool not installed"
		exit 77
	fi
done
if ! pkg-config --exists libmnl libnftnl; then
	echo "SKIP tests/nft: libmnl-dev and libnftnl-dev needed"
	exit 77
fi

trap cleanup EXIT
trap 'exit 1' INT TERM HUP
T=$(mktemp -d /tmp/spork-nft.XXXXXX) || exit 1

# shellcheck disable=SC2046  # pkg-config's words are separate flags
if ! (cd "$REPO" && "$CC" -std=gnu11 -Wall -Wextra -D_GNU_SOURCE -O2 -g -Isrc/base -Isrc/kernel -Isrc/checks -Isrc/smtp -o "$T/nftdriver" tests/nft/nftdriver.c src/kernel/nft_divert.c src/base/log.c $(pkg-config --cflags --libs libmnl libnftnl)); then
	echo "FAIL build nftdriver"
	exit 1
fi
pass "build nftdriver"

if ! setup; then
	echo "FAIL cannot set up the namespaces"
	exit 1
fi
start_bg in_ns "$NS_SRV" "$T/nftdriver" listen 25 "220 server"
start_bg br "$T/nftdriver" listen --transparent "$PORT" "220 sporkd"
for _ in $(seq 50); do
	[[ $(landed "$SRV4") == "220 server" ]] && break
	sleep 0.1
done

# --- the probe ------------------------------------------------------------
echo "--- probe report"
report=$(br "$T/nftdriver" probe)
rc=$?
printf '%s\n' "$report" | sed 's/^/    /'
check "the probe finds everything the divert needs" test "$rc" -eq 0
if printf 'table bridge spork_nft_check {\n\tchain c {\n\t\tmeta ibrname "br0"\n\t}\n}\n' |
	br nft -c -f - >/dev/null 2>&1; then
	want=yes
else
	want=NO
fi
check "the probe agrees with nft about meta ibrname ($want)" \
	eval 'grep -q "^meta ibrname (bridge) *$want" <<<"$report"'
check "the probe leaves no table behind" test "$(br nft list tables | wc -l)" -eq 0

# --- before the divert ----------------------------------------------------
check "before the divert, IPv4 reaches the server" test "$(landed "$SRV4")" == "220 server"
check "before the divert, IPv6 reaches the server" test "$(landed "$SRV6")" == "220 server"

# --- install --------------------------------------------------------------
coproc DRV { exec ip netns exec "$NS_BR" "$T/nftdriver" install --bridge br0 --port "$PORT" 2>&1; }
bg_pids+=("$DRV_PID")
drv_pid=$DRV_PID
disown "$drv_pid"	# its kill -9 below is no news
reply
check "the driver installs the divert ($(head -n1 <<<"$out"))" \
	eval '[[ $out == installed\ bridge=br0\ ports=2* ]]'
ruleset=$(br nft list ruleset)
check "table bridge spork has flags owner" \
	has '^[[:space:]]*flags owner$' "$(br nft list table bridge spork)"
check "table inet spork has flags owner" \
	has '^[[:space:]]*flags owner$' "$(br nft list table inet spork)"
check "the tables name their owner process" \
	eval 'grep -q "^table bridge spork { # progname nftdriver" <<<"$ruleset"'
check "tproxy to :$PORT, IPv4 and IPv6" \
	eval 'grep -q "tproxy ip to :$PORT " <<<"$ruleset" && grep -q "tproxy ip6 to :$PORT " <<<"$ruleset"'
check "the bridge rules rewrite to br0's MAC" \
	eval 'test "$(grep -c "ether daddr set $MAC meta pkttype set host" <<<"$ruleset")" -eq 4'
check "four empty bypass sets with timeouts" \
	eval 'test "$(grep -c "set bypass_\(src\|dst\)[46] {" <<<"$ruleset")" -eq 4 &&
		test "$(grep -c "flags timeout" <<<"$ruleset")" -eq 4'
if grep -q '@ports' <<<"$ruleset"; then
	check "the ports set holds bc and bs" \
		has 'elements={"bc","bs"}' "$(set_of ports | tr -d '\n\t ')"
fi

# --- the same divert as spork-setup's, plus the bypass --------------------
setup_script=$(in_ns "$NS_REF" "$REPO/scripts/spork-setup" --bridge br0 --port "$PORT" --print 2>/dev/null |
	sed -n "/^nft -f - <<'EOF'\$/,/^EOF\$/p" | sed '1d;$d')
if [[ -z $setup_script ]]; then
	fail "spork-setup --print shows an nft script"
else
	printf '%s\n' "$setup_script" | in_ns "$NS_REF" nft -f - ||
		fail "nft loads spork-setup's script in the reference namespace"
	diff -u <(in_ns "$NS_REF" nft list ruleset | strip_daemon) \
		<(strip_daemon <<<"$ruleset") >"$T/setup.diff"
	check "the installed divert is spork-setup's, plus owner and bypass" \
		test ! -s "$T/setup.diff"
	[[ -s $T/setup.diff ]] && sed 's/^/    /' "$T/setup.diff"
	in_ns "$NS_REF" nft flush ruleset
fi

# --- one description, two renderings -------------------------------------
br "$T/nftdriver" print --bridge br0 --port "$PORT" >"$T/print.nft"
check "the printed ruleset is valid nft" \
	eval 'in_ns "$NS_REF" nft -c -f "$T/print.nft"'
# Loaded without the owner flag, or the tables would go with nft.
grep -v '^[[:space:]]*flags owner$' "$T/print.nft" | in_ns "$NS_REF" nft -f -
diff -u <(in_ns "$NS_REF" nft list ruleset | strip_owner) \
	<(strip_owner <<<"$ruleset") >"$T/print.diff"
check "nft loads the printed ruleset as exactly the installed one" \
	test ! -s "$T/print.diff"
[[ -s $T/print.diff ]] && sed 's/^/    /' "$T/print.diff"
in_ns "$NS_REF" nft flush ruleset

# --- diversion ------------------------------------------------------------
check "IPv4 SMTP is diverted to the listener" test "$(landed "$SRV4")" == "220 sporkd"
check "IPv6 SMTP is diverted to the listener" test "$(landed "$SRV6")" == "220 sporkd"

# --- nobody else may touch an owner table ---------------------------------
out=$(br nft delete table inet spork 2>&1)
check "another process cannot delete the table" \
	eval 'grep -q "Operation not permitted" <<<"$out"'
out=$(br nft add element bridge spork bypass_src4 "{ $CLI4 }" 2>&1)
check "another process cannot add a bypass element" \
	eval 'grep -q "Operation not permitted" <<<"$out"'
check "both tables still there" test "$(tables_of "$NS_BR")" -eq 2

# --- bypass ---------------------------------------------------------------
cmd bypass add src "$CLI4"
check "bypass add src $CLI4" test "$out" == $'ok\n'
check "nft list set shows it" has "elements = { $CLI4 }" "$(set_of bypass_src4)"
check "a bypassed client reaches the real server (IPv4)" test "$(landed "$SRV4")" == "220 server"
check "its IPv6 address is still diverted" test "$(landed "$SRV6")" == "220 sporkd"
cmd list
check "the driver lists it" test "$out" == $'source '"$CLI4"$' timeout=none\nok 1\n'
cmd bypass del src "$CLI4"
check "bypass del src $CLI4" test "$out" == $'ok\n'
check "nft list set shows it gone" hasnt elements "$(set_of bypass_src4)"
check "the client is diverted again" test "$(landed "$SRV4")" == "220 sporkd"

cmd bypass add dst "$SRV6" 60
check "bypass add dst $SRV6 with a 60 s timeout" test "$out" == $'ok\n'
check "nft list set shows it with its timeout" \
	has "elements = { $SRV6 timeout 1m expires " "$(set_of bypass_dst6)"
check "a bypassed server is reached directly (IPv6)" test "$(landed "$SRV6")" == "220 server"
check "the same server over IPv4 is still diverted" test "$(landed "$SRV4")" == "220 sporkd"
cmd list
check "the driver lists it with its timeout" \
	eval '[[ $out == "destination $SRV6 timeout=60 expires="[0-9]*$'"'"'\nok 1\n'"'"' ]]'

cmd bypass add dst "$SRV4" 1
check "bypass add dst $SRV4 for 1 s" test "$out" == $'ok\n'
check "it is bypassed at once" test "$(landed "$SRV4")" == "220 server"
sleep 1.5
check "after 1.5 s the element has expired" hasnt elements "$(set_of bypass_dst4)"
check "and the server is diverted again" test "$(landed "$SRV4")" == "220 sporkd"

cmd bypass del src 10.99.0.77
check "deleting what is not there is an error" \
	eval '[[ $out == error:*"No such file or directory (not in the set)"* ]]'
cmd bypass add src 10.99.0.300
check "a bad address is refused" eval '[[ $out == error:*"not an IPv4 or IPv6 address"* ]]'

# --- reinstall over the same socket ---------------------------------------
cmd reinstall
check "reinstall over the holding socket" test "$out" == $'ok\n'
check "after reinstall: both tables, still owned" \
	eval 'test "$(br nft list ruleset | grep -c "^[[:space:]]*flags owner$")" -eq 2'
check "after reinstall: the bypass sets start empty" \
	hasnt 'elements = ' "$(br nft list table bridge spork | grep -v '"')"
check "after reinstall: diverted" test "$(landed "$SRV4")" == "220 sporkd"

# --- a second installer is refused ----------------------------------------
out=$(timeout 10 ip netns exec "$NS_BR" "$T/nftdriver" install --bridge br0 --port "$PORT" </dev/null 2>&1)
rc=$?
check "a second installer fails while the first holds the tables" test "$rc" -eq 1
check "and says the tables belong to another process" \
	eval 'grep -q "Operation not permitted (the table belongs to another process" <<<"$out"'

# --- no CAP_NET_ADMIN: the divert holds, changes fail ---------------------
cmd drop-caps
check "drop every capability but CAP_NET_RAW" test "$out" == $'ok\n'
cmd bypass add src "$CLI4"
check "without CAP_NET_ADMIN a bypass change is refused" \
	eval '[[ $out == error:*"Operation not permitted (needs CAP_NET_ADMIN"* ]]'
check "and the divert stays installed" test "$(tables_of "$NS_BR")" -eq 2
check "and still diverts" test "$(landed "$SRV4")" == "220 sporkd"

# --- SIGKILL: the kernel removes the tables, mail flows past --------------
kill -9 "$drv_pid"
start=$(date +%s%N)
gone=0
for _ in $(seq 20); do
	if [[ $(tables_of "$NS_BR") -eq 0 ]]; then gone=1; break; fi
	sleep 0.05
done
ms=$((($(date +%s%N) - start) / 1000000))
check "kill -9: both tables gone within a second (${ms} ms)" \
	test "$gone" -eq 1 -a "$ms" -lt 1000
check "after the kill, IPv4 SMTP is bridged to the server" test "$(landed "$SRV4")" == "220 server"
check "after the kill, IPv6 SMTP is bridged to the server" test "$(landed "$SRV6")" == "220 server"

# --- remove ----------------------------------------------------------------
coproc DRV { exec ip netns exec "$NS_BR" "$T/nftdriver" install --bridge br0 --port "$PORT" --no-ipv6 2>&1; }
bg_pids+=("$DRV_PID")
reply
check "install again, IPv4 only" eval '[[ $out == installed* ]]'
check "IPv4 only: no IPv6 rules or sets" \
	hasnt 'ip6\|bypass_src6\|bypass_dst6' "$(br nft list ruleset)"
cmd bypass add src "$CLI6"
check "IPv4 only: an IPv6 bypass is refused" eval '[[ $out == error:*"IPv6 is not diverted"* ]]'
cmd remove
check "remove" test "$out" == $'ok\n'
check "remove: both tables gone at once" test "$(tables_of "$NS_BR")" -eq 0
cmd quit

echo "tests/nft: $failures failed"
((failures == 0))
