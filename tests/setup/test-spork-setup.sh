#!/bin/bash
# SPDX-License-Identifier: MIT
#
# Test scripts/spork-setup against the running kernel: in a throwaway network
# namespace with a bridge, --print, --apply (twice), --status and --remove
# must do what they say and leave nothing behind. Needs root. Prints one
# PASS/FAIL line per check; exits 1 if any check failed, 77 if it cannot run.
#
# check's eval arguments are single-quoted on purpose: they expand when run.
# shellcheck disable=SC2016

set -uo pipefail

# Named after the lab (SPORK_LAB_NAME), so two suites can run side by side.
readonly NS=${SPORK_LAB_NAME:-spork}-t-setup
readonly PORT=2525
readonly TABLE=100
readonly SYSCTLS=(net.bridge.bridge-nf-call-iptables
	net.bridge.bridge-nf-call-ip6tables
	net.bridge.bridge-nf-call-arptables)

here=$(cd "$(dirname -- "$0")" && pwd)
setup=$(cd "$here/../.." && pwd)/scripts/spork-setup
failures=0
tmp=

pass()
{
	printf 'PASS %s\n' "$*"
}

fail()
{
	printf 'FAIL %s\n' "$*"
	failures=$((failures + 1))
}

# check DESCRIPTION COMMAND...: PASS if the command succeeds.
check()
{
	local what=$1

	shift
	if "$@"; then pass "$what"; else fail "$what"; fi
}

in_ns()
{
	ip netns exec "$NS" "$@"
}

ns_delete()
{
	local pids

	ip netns list 2>/dev/null | grep -qx "$NS\( (id: [0-9]*)\)\{0,1\}" || return 0
	# A namespace with processes in it outlives "ip netns del".
	pids=$(ip netns pids "$NS" 2>/dev/null) || pids=
	if [[ -n $pids ]]; then
		# shellcheck disable=SC2086
		kill $pids 2>/dev/null
		sleep 0.2
	fi
	ip netns del "$NS"
}

# shellcheck disable=SC2317  # run by the EXIT trap
cleanup()
{
	ns_delete
	[[ -n $tmp ]] && rm -rf -- "$tmp"
}

run_setup()
{
	in_ns "$setup" --state "$tmp/state" "$@"
}

# Everything spork-setup may touch, as text, to compare before and after.
snapshot()
{
	local key

	{
		echo "## rules"
		in_ns ip -N -4 rule show
		in_ns ip -N -6 rule show
		echo "## table $TABLE"
		in_ns ip -N -4 route show table "$TABLE" 2>/dev/null
		in_ns ip -N -6 route show table "$TABLE" 2>/dev/null
		echo "## nft"
		in_ns nft list ruleset
		echo "## sysctls"
		for key in "${SYSCTLS[@]}"; do
			printf '%s = %s\n' "$key" "$(in_ns cat "/proc/sys/${key//.//}")"
		done
		echo "## lo"
		in_ns ip -o link show dev lo | grep -o '<[^>]*>'
	} 2>&1
}

count_rules()
{
	in_ns ip -N "-$1" rule show | grep -c "from all fwmark 0x1 lookup $TABLE\$"
}

if [[ $EUID -ne 0 ]]; then
	echo "SKIP test-spork-setup: needs root"
	exit 77
fi
for tool in ip nft; do
	if ! command -v "$tool" >/dev/null; then
		echo "SKIP test-spork-setup: $tool not installed"
		exit 77
	fi
done
[[ -x $setup ]] || { echo "FAIL $setup is not executable"; exit 1; }

trap cleanup EXIT
trap 'exit 1' INT TERM HUP
ns_delete
tmp=$(mktemp -d) || exit 1
ip netns add "$NS" || { echo "FAIL cannot create namespace $NS"; exit 1; }

# A bridge with two ports, its address fixed so adding ports cannot change
# it. lo stays down: --apply must bring it up and --remove put it back.
# Not all defaults: --remove must restore 1 where it changed 1, and leave
# alone the 0 it found. One IPv6 rule exists already and is not spork's.
prepare_ns()
{
	local dev

	in_ns ip link add br0 type bridge || return 1
	in_ns ip link set br0 address 02:00:5e:00:53:01 || return 1
	in_ns ip link add veth0 type veth peer name veth1 || return 1
	in_ns ip link add veth2 type veth peer name veth3 || return 1
	in_ns ip link set veth0 master br0 || return 1
	in_ns ip link set veth2 master br0 || return 1
	for dev in veth0 veth1 veth2 veth3 br0; do
		in_ns ip link set "$dev" up || return 1
	done
	in_ns sh -c 'echo 0 >/proc/sys/net/bridge/bridge-nf-call-arptables' ||
		return 1
	in_ns ip -6 rule add fwmark 1 lookup "$TABLE"
}
prepare_ns || { echo "FAIL cannot prepare the bridge in $NS"; exit 1; }

printf 'transparent_listen 0.0.0.0:%d [::]:%d # test\n' "$PORT" "$PORT" >"$tmp/spork.conf"

before=$(snapshot)

# --- --print --------------------------------------------------------------
out=$(run_setup --bridge br0 --config "$tmp/spork.conf" --print 2>&1)
rc=$?
check "--print exits 0" test "$rc" -eq 0
check "--print shows the IPv4 tproxy rule to the config's port" \
	grep -q "meta nfproto ipv4 tcp dport 25 tproxy ip to :$PORT meta mark set 1 accept" <<<"$out"
check "--print shows the IPv6 tproxy rule to the config's port" \
	grep -q "meta nfproto ipv6 tcp dport 25 tproxy ip6 to :$PORT meta mark set 1 accept" <<<"$out"
check "--print shows the bridge rewrite to br0's MAC" \
	grep -q "ether daddr set 02:00:5e:00:53:01 meta pkttype set host" <<<"$out"
check "--print shows the policy routing" \
	grep -q "^ip -4 rule add fwmark 1 lookup $TABLE\$" <<<"$out"
check "--print marks the existing IPv6 rule as in place" \
	grep -q "^# in place: ip -6 rule add fwmark 1 lookup $TABLE\$" <<<"$out"
check "--print changes nothing" test "$(snapshot)" == "$before"
check "--print leaves no state file" test ! -e "$tmp/state"

out=$(run_setup --bridge br0 --port 2626 --no-ipv6 --print 2>&1)
check "--print --port --no-ipv6 uses the port and drops IPv6" \
	eval 'grep -q "tproxy ip to :2626" <<<"$out" && ! grep -q "tproxy ip6\|ether type ip6\|ip -6" <<<"$out"'

if command -v setpriv >/dev/null; then
	out=$(in_ns setpriv --reuid=65534 --regid=65534 --clear-groups \
		"$setup" --bridge br0 --port "$PORT" --state "$tmp/state" --print 2>&1)
	check "--print works without root" \
		grep -q "tproxy ip to :$PORT" <<<"$out"
fi

# --- --apply --------------------------------------------------------------
out=$(run_setup --bridge br0 --config "$tmp/spork.conf" --apply 2>&1)
rc=$?
check "--apply exits 0" test "$rc" -eq 0
[[ $rc -eq 0 ]] || printf '%s\n' "$out"
check "--apply installs table inet spork" \
	eval 'in_ns nft list table inet spork >/dev/null'
check "--apply installs table bridge spork" \
	eval 'in_ns nft list table bridge spork >/dev/null'
check "the inet table tproxies to port $PORT" \
	eval 'in_ns nft list table inet spork | grep "tproxy ip to :$PORT" >/dev/null'
check "the bridge table rewrites to br0's MAC" \
	eval 'in_ns nft list table bridge spork | grep "ether daddr set 02:00:5e:00:53:01" >/dev/null'
check "the rules carry comments" \
	test "$(in_ns nft list ruleset | grep -c 'comment "')" -ge 10
check "exactly one IPv4 fwmark rule" test "$(count_rules 4)" -eq 1
check "exactly one IPv6 fwmark rule (the one already there)" test "$(count_rules 6)" -eq 1
check "IPv4 local default route in table $TABLE" \
	eval 'in_ns ip -4 route show table "$TABLE" | grep -q "^local default dev lo"'
check "IPv6 local default route in table $TABLE" \
	eval 'in_ns ip -6 route show table "$TABLE" | grep -q "^local default dev lo"'
for key in "${SYSCTLS[@]}"; do
	check "$key is 0" test "$(in_ns cat "/proc/sys/${key//.//}")" == 0
done
check "lo is up" eval 'in_ns ip -o link show dev lo | grep -q "<[^>]*UP[^>]*>"'
check "--status after --apply exits 0" \
	eval 'run_setup --bridge br0 --status >/dev/null'

applied=$(snapshot)
out=$(run_setup --bridge br0 --config "$tmp/spork.conf" --apply 2>&1)
rc=$?
check "second --apply exits 0" test "$rc" -eq 0
check "second --apply changes no ip rule, route, nft rule or sysctl" \
	test "$(snapshot)" == "$applied"

# --- --apply without the bridge ---------------------------------------------
out=$(run_setup --bridge nosuchbr --port "$PORT" --apply 2>&1)
rc=$?
check "--apply with a missing bridge fails" test "$rc" -eq 1
check "... and says so" grep -q "no bridge 'nosuchbr'" <<<"$out"
check "... and changes nothing" test "$(snapshot)" == "$applied"

# --- --remove -------------------------------------------------------------
out=$(run_setup --remove 2>&1)
rc=$?
check "--remove exits 0" test "$rc" -eq 0
[[ $rc -eq 0 ]] || printf '%s\n' "$out"
check "no table inet spork left" eval '! in_ns nft list table inet spork >/dev/null 2>&1'
check "no table bridge spork left" eval '! in_ns nft list table bridge spork >/dev/null 2>&1'
check "no IPv4 fwmark rule left" test "$(count_rules 4)" -eq 0
check "the IPv6 rule spork did not add is still there" test "$(count_rules 6)" -eq 1
for key in "${SYSCTLS[@]}"; do
	v=$(in_ns cat "/proc/sys/${key//.//}")
	want=$(grep -F "$key = " <<<"$before" | awk '{ print $3 }')
	check "$key restored to $want" test "$v" == "$want"
done
check "--remove restores rules, routes, nft ruleset, sysctls and lo" \
	test "$(snapshot)" == "$before"
if [[ $(snapshot) != "$before" ]]; then
	diff <(printf '%s\n' "$before") <(snapshot) | sed 's/^/    /'
fi
check "--remove deletes the state file" test ! -e "$tmp/state"
check "--status after --remove exits 1" \
	eval '! run_setup --bridge br0 --status >/dev/null'
out=$(run_setup --remove 2>&1)
check "a second --remove exits 0" test $? -eq 0

if ((failures > 0)); then
	echo "test-spork-setup: $failures check(s) failed"
	exit 1
fi
echo "test-spork-setup: all checks passed"
exit 0
