#!/bin/bash
# SPDX-License-Identifier: MIT
# sporkd logging to syslog (log_syslog yes, the shipped default) where
# /dev/log is a real listener: the daemon, its scan loader and workers and
# the SPF helper all log there, and forking them must not hand the syslog
# socket's descriptor number to anything else. sporkd runs in a mount
# namespace whose /dev/log is this test's datagram socket; clean mail is
# delivered and EICAR refused, so the workers serve.
set -u
. "$(dirname "$0")/lib.sh"
tmp=$(mktemp -d)
chmod 755 "$tmp"
listener=
cleanup() {
	[ -n "$listener" ] && kill "$listener" 2>/dev/null
	lab_down
	rm -rf "$tmp"
}
EICAR='X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*'
printf '%s' "$EICAR" >"$tmp/eicar.com"

timeout 600 python3 - "$tmp/log" "$tmp/syslog.txt" >/dev/null 2>&1 <<'PY' &
import os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
os.chmod(sys.argv[1], 0o666)
with open(sys.argv[2], "ab", buffering=0) as out:
    while True:
        out.write(s.recv(65536).replace(b"\n", b" ") + b"\n")
PY
listener=$!
socket_up() { [ -S "$tmp/log" ]; }
wait_until 20 socket_up || true

mkdir -p "$tmp/olddev"
cat >"$tmp/sporkd" <<WRAP
#!/bin/sh
# The real sporkd, with this test's socket as /dev/log.
exec unshare -m --propagation private sh -c '
set -e
mount --bind /dev $tmp/olddev
mount -t tmpfs -o mode=755 tmpfs /dev
for n in null zero full random urandom; do
	touch /dev/\$n
	mount --bind $tmp/olddev/\$n /dev/\$n
done
mkdir /dev/shm /dev/pts
ln -s /proc/self/fd /dev/fd
touch /dev/log
mount --bind $tmp/log /dev/log
exec "\$0" "\$@"' "${SPORKD:-$SPORK_REPO/build/sporkd}" "\$@"
WRAP
chmod 755 "$tmp/sporkd"
export SPORKD=$tmp/sporkd
export SPORK_LAB_CONF_EXTRA="${SPORK_LAB_CONF_EXTRA:-}
log_syslog yes"
lab_up
trap cleanup EXIT

send_mail "$tmp/t-clean" alice@example.test sender@client.example.test "$SRV_V4"
assert_grep '^<- +250 2\.0\.0 Ok: queued' "$tmp/t-clean" "syslog: clean mail delivered"
send_mail "$tmp/t-virus" alice@example.test sender@client.example.test "$SRV_V4" "" \
	--attach "@$tmp/eicar.com"
assert_grep '^<\*\* +550 5\.7\.1 .*Eicar' "$tmp/t-virus" "syslog: EICAR refused by a worker"
# The listener writes what it receives a moment later.
wait_grep 10 'sporkd\[[0-9]+\]: .* message sender=' "$tmp/syslog.txt" "syslog: the relay's lines arrive"
wait_grep 10 'sporkd-scan\[[0-9]+\]: .*scan generation=[0-9]+ loader' "$tmp/syslog.txt" "syslog: the scan loader's lines arrive"
sleep 1	# for a scan worker lost after its answer to show in the log below
assert_no_grep 'lost|worker died|bad reply' "$LAB_SPORKD_LOG" "syslog: no scan worker lost"
summary
