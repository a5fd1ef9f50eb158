#!/bin/bash
# SPDX-License-Identifier: MIT
# What `make install` ships runs sporkd unprivileged, and the unit's cut
# capability set is enough for the whole path:
# - the installed spork.conf says `user spork` and `scan_user spork-scan`,
#   the installed sysusers.d file creates both (systemd-sysusers --root);
# - sporkd started as the unit starts it (its CapabilityBoundingSet, read
#   from the installed unit, and no_new_privs, through setpriv) relays
#   clean mail and refuses EICAR through the bridge, also after a reload;
# - after the drop the relay runs as spork with exactly CAP_NET_RAW,
#   CAP_SETUID and CAP_SETGID, the workers as spork-scan (saved uid spork)
#   with none.
set -u
. "$(dirname "$0")/lib.sh"
tmp=$(mktemp -d)
chmod 755 "$tmp"
trap 'rm -rf "$tmp"' EXIT
for c in setpriv systemd-sysusers; do
	command -v "$c" >/dev/null 2>&1 ||
		{ echo "$(basename "$0"): missing: $c (run scripts/install-deps)" >&2; exit 1; }
done

# --- 1. the installed tree
root=$tmp/root
make -s -C "$SPORK_REPO" install DESTDIR="$root" PREFIX=/usr >"$tmp/install.log" 2>&1 ||
	{ fail "make install" "$(tail -n 3 "$tmp/install.log")"; summary; exit 1; }
conf=$root/etc/spork/spork.conf unit=$root/lib/systemd/system/sporkd.service
grep -qx 'user spork' "$conf" && pass "installed spork.conf: user spork" ||
	fail "installed spork.conf: user spork" "$(grep '^user' "$conf")"
grep -qx 'scan_user spork-scan' "$conf" && pass "installed spork.conf: scan_user spork-scan" ||
	fail "installed spork.conf: scan_user spork-scan" "$(grep '^scan_user' "$conf")"
mkdir -p "$root/etc"
touch "$root/etc/passwd" "$root/etc/group"
systemd-sysusers --root="$root" >/dev/null 2>&1
grep -q '^spork:' "$root/etc/passwd" && grep -q '^spork-scan:' "$root/etc/passwd" &&
	pass "installed sysusers.d creates spork and spork-scan" ||
	fail "installed sysusers.d creates the users" "$(cat "$root/etc/passwd")"
grep -q '^spork-admin:.*spork-web' "$root/etc/group" && grep -q '^spork:.*spork-web' "$root/etc/group" &&
	pass "installed sysusers.d: spork-web in spork (tracking) and spork-admin (control)" ||
	fail "installed sysusers.d: spork-web's groups" "$(grep spork "$root/etc/group")"
grep -qx 'control_admin_group spork-admin' "$conf" &&
	pass "installed spork.conf: control_admin_group spork-admin" ||
	fail "installed spork.conf: control_admin_group" "$(grep '^control_admin_group' "$conf")"
[ -x "$root/usr/sbin/spork-console" ] && [ -f "$root/lib/systemd/system/spork-console.service" ] &&
	pass "spork-console and its unit installed" ||
	fail "spork-console installed" "$(ls "$root/usr/sbin" "$root/lib/systemd/system" 2>&1)"
[ -f "$root/usr/share/man/man5/spork.conf.5" ] && [ -f "$root/usr/share/man/man8/sporkd.8" ] &&
	pass "man pages installed" || fail "man pages installed" "$(ls -R "$root/usr/share/man" 2>&1 | head)"
bset=$(sed -n 's/^CapabilityBoundingSet=//p' "$unit")
[ -n "$bset" ] && pass "installed unit: CapabilityBoundingSet=$bset" ||
	fail "installed unit: CapabilityBoundingSet" "none"
for c in CAP_SYS_ADMIN CAP_DAC_OVERRIDE CAP_KILL CAP_SYS_PTRACE; do
	case " $bset " in *" $c "*) fail "installed unit: no $c" "$bset" ;; esac
done
grep -qx 'RestrictNamespaces=yes' "$unit" && pass "installed unit: RestrictNamespaces=yes" ||
	fail "installed unit: RestrictNamespaces=yes" "missing"

# --- 2. on this machine: the users, then sporkd as the unit starts it
systemd-sysusers "$root/usr/lib/sysusers.d/spork.conf" >/dev/null 2>&1
id spork-scan >/dev/null 2>&1 && pass "systemd-sysusers created spork-scan here" ||
	fail "systemd-sysusers created spork-scan here" "$(id spork-scan 2>&1)"
caps=$(echo "$bset" | tr 'A-Z' 'a-z' | sed 's/cap_//g; s/ \+/,+/g')
real=${SPORKD:-$SPORK_REPO/build/sporkd}
cat >"$tmp/as-unit" <<EOF
#!/bin/sh
exec setpriv --bounding-set=-all,+$caps --inh-caps=-all --no-new-privs "$real" "\$@"
EOF
chmod 755 "$tmp/as-unit"
export SPORKD=$tmp/as-unit
lab_up
{
	cat "$LAB_DIR/spork.conf"
	echo "scan_user spork-scan"
} >"$tmp/run.conf"
if ! lab start-sporkd "$tmp/run.conf" >"$tmp/start.log" 2>&1; then
	fail "sporkd starts under the unit's capability set" "$(tail -n 5 "$tmp/start.log")"
	summary
	exit 1
fi
pass "sporkd starts under the unit's capability set and no_new_privs"
relay=$(cat "$LAB_SPORKD_PID")
cap_eff=$(awk '/^CapEff:/ { print $2 }' "/proc/$relay/status")
# net_raw (13), setgid (6), setuid (7): 0x20c0.
[ "$((16#$cap_eff))" -eq $(((1 << 13) | (1 << 6) | (1 << 7))) ] &&
	pass "relay after the drop: CAP_NET_RAW, CAP_SETUID, CAP_SETGID only ($cap_eff)" ||
	fail "relay's capabilities after the drop" "$cap_eff"
spork_uid=$(id -u spork) scan_uid=$(id -u spork-scan)
uids() { awk '/^Uid:/ { print $2, $3, $4, $5 }' "/proc/$1/status"; }
[ "$(uids "$relay")" = "$spork_uid $spork_uid $spork_uid $spork_uid" ] &&
	pass "relay runs as spork" || fail "relay runs as spork" "$(uids "$relay")"

printf '%s' 'X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*' >"$tmp/eicar.com"
mail_round() {	# mail_round LABEL
	local a0
	a0=$(maildir_count alice)
	send_mail "$tmp/t-clean-$1" alice@example.test a@client.example.test "$SRV_V4"
	assert_grep '^<- +250 2\.0\.0 Ok: queued' "$tmp/t-clean-$1" "$1: clean mail accepted by Postfix"
	check "$1: clean mail delivered" wait_delivered alice $((a0 + 1)) 20
	send_mail "$tmp/t-virus-$1" alice@example.test a@client.example.test "$SRV_V4" "" \
		--attach "@$tmp/eicar.com"
	assert_grep '^<\*\* +550 5\.7\.1 .*Eicar' "$tmp/t-virus-$1" "$1: EICAR refused with 550"
}
mail_round "first generation"
ctl reload >/dev/null
# The workers below are the new generation's once it serves: wait for it
# (a new engine loads slowly on a loaded machine).
gen2() { [ "$(ctl status | sed -n 's/^scan.generation=//p')" = 2 ]; }
check "reload: generation 2 serves" wait_until 30 gen2
mail_round "after reload (loader forked after the drop)"
n=0 good=0
for w in $(ctl status | sed -n 's/^scan.worker pid=\([0-9]*\) .*/\1/p'); do
	n=$((n + 1))
	[ "$(uids "$w")" = "$scan_uid $scan_uid $spork_uid $scan_uid" ] &&
		grep -q '^CapEff:[[:space:]]*0*$' "/proc/$w/status" && good=$((good + 1))
done
[ "$n" -ge 1 ] && [ "$good" -eq "$n" ] &&
	pass "reloaded workers run as spork-scan (saved uid spork), no capabilities" ||
	fail "reloaded workers as spork-scan" "$good of $n"
assert_no_grep 'outside its sandbox|killed signal=31' "$LAB_SPORKD_LOG" "no process stopped by a seccomp filter"
summary
