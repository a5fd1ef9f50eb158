#!/bin/bash
# SPDX-License-Identifier: MIT
# The content policy through the bridge, against the real Postfix:
# - a card number in an outbound message arrives redacted, the rest of the
#   message intact; from a client outside inside_networks it is left alone;
# - an .exe renamed .txt is refused by its bytes (libmagic), an .exe and a
#   .scr inside a zip by their names (libarchive), each with its reply;
# - a message signed with DKIM, given only headers on top, still verifies
#   against the public key at the server (python3-dkim); the same signed
#   message with a card number redacted does not, and the log says so;
# - per-rule counters in sporkctl status, one log line per decision;
# - sporkctl reload reads the rules file again: a new rule judges the next
#   message, counters carry over by name; a file that does not parse is
#   refused with a log line naming file and line, and the old rules stay.
# - notice mails naming the rule and where it matched, one per message.
set -u
. "$(dirname "$0")/lib.sh"
tmp=$(mktemp -d)
chmod 755 "$tmp"
cleanup() {
	lab_down
	rm -rf "$tmp"
}
trap cleanup EXIT
lab_up

cat >"$tmp/content.rules" <<'RULES'
rule exe-name  ext=exe,scr action=reject reply="550 5.7.1 Executable attachments are not accepted"
rule exe-magic magic=application/x-dosexec action=reject reply="550 5.7.1 Executable content is not accepted"
rule cards-out dir=outbound dlp=card action=redact
rule stamp     all action=tag header="X-Content-Policy: checked"
RULES

start_sporkd() {
	{
		cat "$LAB_DIR/spork.conf"
		echo "content_rules $tmp/content.rules"
		printf '%s\n' "$@"
	} >"$tmp/run.conf"
	lab start-sporkd "$tmp/run.conf" 2>/dev/null || { fail "sporkd start" "$*"; return 1; }
}
last_bob() { maildir_files bob | tail -n1; }
# Debian's python3-dkim is for Debian's python3, whatever else is on PATH.
PY=/usr/bin/python3

python3 - "$tmp" <<'PY'
import io, sys, zipfile
tmp = sys.argv[1]
exe = (b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00\xb8" +
       b"\x00" * 47 + b"\x80\x00\x00\x00" + b"\x00" * 64 +
       b"PE\x00\x00L\x01\x03\x00" + b"\x00" * 120)
open(tmp + "/report.txt", "wb").write(exe)
inner = io.BytesIO()
with zipfile.ZipFile(inner, "w") as z:
    z.writestr("tool.scr", exe)
with zipfile.ZipFile(tmp + "/setup.zip", "w", zipfile.ZIP_DEFLATED) as z:
    z.writestr("readme.txt", "run setup\n")
    z.writestr("bin/setup.exe", exe)
with zipfile.ZipFile(tmp + "/nested.zip", "w", zipfile.ZIP_DEFLATED) as z:
    z.writestr("readme.txt", "inside\n")
    z.writestr("more.zip", inner.getvalue())
PY

printf 'Hello Bob,\r\nplease charge 4111 1111 1111 1111 for the order.\r\nOrder 1234567890123 is not a card.\r\n' >"$tmp/card.txt"

# --- 1. outbound: the client 10.25.0.1 is inside
start_sporkd "inside_networks 10.25.0.0/24 fd25::/64"
b0=$(maildir_count bob)
send_mail "$tmp/t-card" bob@example.test a@client.example.test "$SRV_V4" "$tmp/card.txt" \
	--header "Subject: card out"
assert_grep '^<- +250 2\.0\.0 Ok: queued' "$tmp/t-card" "card outbound: accepted"
check "card outbound: delivered" wait_delivered bob $((b0 + 1)) 10
f=$(last_bob)
assert_grep '^please charge XXXX XXXX XXXX XXXX for the order\.$' "$f" "card outbound: arrives redacted at Postfix"
assert_no_grep '4111 1111' "$f" "card outbound: no digit of the card left"
assert_grep '^Order 1234567890123 is not a card\.$' "$f" "card outbound: other numbers untouched"
assert_grep '^X-Spork-Content: cards-out=redact; stamp=tag$' "$f" "card outbound: X-Spork-Content names the rules"
assert_grep '^X-Content-Policy: checked$' "$f" "card outbound: header added by a rule"
assert_grep 'sporkd\[[a-z]+\] [0-9a-f]{8} content rule=cards-out match=dlp:card action=redact direction=outbound count=1$' \
	"$LAB_SPORKD_LOG" "card outbound: one log line for the rule, session id first"
assert_grep 'sporkd\[[a-z]+\] [0-9a-f]{8} content decision action=redact rule=cards-out direction=outbound .*rewritten=body .*dkim=none$' \
	"$LAB_SPORKD_LOG" "card outbound: one log line for the decision"

# --- 2. attachments refused, with the configured replies
send_mail "$tmp/t-exe" bob@example.test a@client.example.test "$SRV_V4" "" \
	--attach-type text/plain --attach-name report.txt --attach "@$tmp/report.txt" --header "Subject: report"
assert_grep '^<\*\* +550 5\.7\.1 Executable content is not accepted' "$tmp/t-exe" \
	"exe renamed .txt: refused by its detected type"
send_mail "$tmp/t-zip" bob@example.test a@client.example.test "$SRV_V4" "" \
	--attach-type application/zip --attach "@$tmp/setup.zip" --header "Subject: setup"
assert_grep '^<\*\* +550 5\.7\.1 Executable attachments are not accepted' "$tmp/t-zip" \
	"exe inside a zip: refused by the name inside"
send_mail "$tmp/t-nested" bob@example.test a@client.example.test "$SRV_V4" "" \
	--attach-type application/zip --attach "@$tmp/nested.zip" --header "Subject: nested"
assert_grep '^<\*\* +550 5\.7\.1 Executable attachments are not accepted' "$tmp/t-nested" \
	"scr inside a zip inside a zip: refused"
assert_grep 'sporkd\[[a-z]+\] [0-9a-f]{8} content decision action=reject rule=exe-name direction=outbound where="part 2 .setup\.zip. entry .bin/setup\.exe."' \
	"$LAB_SPORKD_LOG" "exe inside a zip: the log names the entry"
sleep 0.5
[ "$(maildir_count bob)" -eq $((b0 + 1)) ] && pass "refused attachments: none delivered" ||
	fail "refused attachments: none delivered" "$(($(maildir_count bob) - b0 - 1)) delivered"

# --- 3. DKIM: headers added on top keep the signature
openssl genrsa -out "$tmp/dkim.key" 2048 2>/dev/null
openssl rsa -in "$tmp/dkim.key" -pubout -outform DER 2>/dev/null | base64 -w0 >"$tmp/dkim.pub"
$PY - "$tmp" <<'PY'
import sys, dkim
tmp = sys.argv[1]
key = open(tmp + "/dkim.key", "rb").read()
for name, body in (("plain", b"Lunch at noon?\r\nBring the slides.\r\n"),
                   ("card", b"Card 4111 1111 1111 1111 for the hotel.\r\n")):
    msg = (b"From: Alice <a@client.example.test>\r\n"
           b"To: Bob <bob@example.test>\r\n"
           b"Subject: signed " + name.encode() + b"\r\n"
           b"Date: Fri, 27 Nov 2026 06:00:00 +0000\r\n"
           b"Message-ID: <dkim-" + name.encode() + b"@client.example.test>\r\n"
           b"MIME-Version: 1.0\r\n"
           b"Content-Type: text/plain; charset=us-ascii\r\n\r\n" + body)
    sig = dkim.sign(msg, b"lab", b"client.example.test", key,
                    canonicalize=(b"simple", b"simple"),
                    include_headers=[b"from", b"to", b"subject", b"date",
                                     b"message-id", b"mime-version",
                                     b"content-type"])
    open("%s/signed-%s.eml" % (tmp, name), "wb").write(sig + msg)
PY
cat >"$tmp/verify.py" <<'PY'
import sys, dkim
pub = open(sys.argv[2]).read().strip()
data = open(sys.argv[1], "rb").read().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
def dns(name, timeout=5):
    return ("v=DKIM1; k=rsa; p=" + pub).encode() if name == b"lab._domainkey.client.example.test." else None
sys.exit(0 if dkim.verify(data, dnsfunc=dns) else 1)
PY
$PY "$tmp/verify.py" "$tmp/signed-plain.eml" "$tmp/dkim.pub" &&
	pass "dkim: the test message verifies as sent" || fail "dkim: the test message verifies as sent"
b1=$(maildir_count bob)
send_mail "$tmp/t-dkim" bob@example.test a@client.example.test "$SRV_V4" "" --data "@$tmp/signed-plain.eml"
assert_grep '^<- +250 2\.0\.0 Ok: queued' "$tmp/t-dkim" "dkim: accepted"
check "dkim: delivered" wait_delivered bob $((b1 + 1)) 10
f=$(last_bob)
assert_grep '^X-Content-Policy: checked$' "$f" "dkim: the rule's header was added"
$PY "$tmp/verify.py" "$f" "$tmp/dkim.pub" &&
	pass "dkim: the delivered copy still verifies (headers only added)" ||
	fail "dkim: the delivered copy still verifies" "$f"
assert_grep 'sporkd\[[a-z]+\] [0-9a-f]{8} content decision action=tag rule=stamp .*rewritten=no .*dkim=kept$' \
	"$LAB_SPORKD_LOG" "dkim: logged as kept"
send_mail "$tmp/t-dkim2" bob@example.test a@client.example.test "$SRV_V4" "" --data "@$tmp/signed-card.eml"
check "dkim redacted: delivered" wait_delivered bob $((b1 + 2)) 10
f=$(last_bob)
assert_grep '^Card XXXX XXXX XXXX XXXX for the hotel\.$' "$f" "dkim redacted: card redacted"
if $PY "$tmp/verify.py" "$f" "$tmp/dkim.pub"; then
	fail "dkim redacted: the signature no longer verifies" "it verifies"
else
	pass "dkim redacted: the signature no longer verifies"
fi
assert_grep 'sporkd\[[a-z]+\] [0-9a-f]{8} content decision action=redact rule=cards-out .*rewritten=body .*dkim=broken$' \
	"$LAB_SPORKD_LOG" "dkim redacted: logged as dkim=broken"

# --- 4. counters
ctl status >"$tmp/status"
assert_grep '^content\.rule name=cards-out match=dlp action=redact hits=2 matches=2$' "$tmp/status" \
	"sporkctl status: per-rule counter for the card rule"
assert_grep '^content\.rule name=exe-name match=ext action=reject hits=2 matches=2$' "$tmp/status" \
	"sporkctl status: per-rule counter for the extension rule"
assert_grep '^content\.rule name=exe-magic match=magic action=reject hits=1 matches=1$' "$tmp/status" \
	"sporkctl status: per-rule counter for the magic rule"

# --- 4b. reload: new rules go live with the new scan generation
# wait_log PATTERN N: N lines matching PATTERN in the log within 30 s.
wait_log() {
	local i
	for i in $(seq 300); do
		[ "$(grep -Ec -- "$1" "$LAB_SPORKD_LOG")" -ge "$2" ] && return 0
		sleep 0.1
	done
	return 1
}
printf 'echo hi\r\n' >"$tmp/run.bat"
swaps=$(grep -c 'scan reload swap' "$LAB_SPORKD_LOG")
echo 'rule bat-name ext=bat action=reject reply="550 5.7.1 Batch files are not accepted"' >>"$tmp/content.rules"
[ "$(ctl reload)" = "ok reload started" ] && pass "reload: sporkctl reload accepted" || fail "reload: sporkctl reload accepted"
check "reload: new generation swapped in" wait_log 'scan reload swap' $((swaps + 1))
assert_grep 'content rules active path=.*/content\.rules rules=5 previous=4$' "$LAB_SPORKD_LOG" \
	"reload: the new rules logged as active"
send_mail "$tmp/t-bat" bob@example.test a@client.example.test "$SRV_V4" "" \
	--attach-type application/octet-stream --attach-name run.bat --attach "@$tmp/run.bat" --header "Subject: bat"
assert_grep '^<\*\* +550 5\.7\.1 Batch files are not accepted' "$tmp/t-bat" "reload: the new rule judges the next message"
ctl status >"$tmp/status2"
assert_grep '^content\.rules=5$' "$tmp/status2" "reload: status shows the new rules"
assert_grep '^content\.rule name=bat-name match=ext action=reject hits=1 matches=1$' "$tmp/status2" \
	"reload: the new rule counts from zero"
assert_grep '^content\.rule name=exe-name match=ext action=reject hits=2 matches=2$' "$tmp/status2" \
	"reload: a kept rule keeps its counters"

cp "$tmp/content.rules" "$tmp/content.good"
echo 'rule cmd-name ext=cmd action=explode' >>"$tmp/content.rules"
printf 'echo hi\r\n' >"$tmp/run.cmd"
swaps=$(grep -c 'scan reload swap' "$LAB_SPORKD_LOG")
ctl reload >/dev/null
check "broken rules: the signatures still reload" wait_log 'scan reload swap' $((swaps + 1))
assert_grep "content rules refused: $tmp/content\.rules:6: action: want reject, quarantine, strip, redact, tag or footer \(previous rules keep serving\)$" \
	"$LAB_SPORKD_LOG" "broken rules: refused with a log line naming file and line"
send_mail "$tmp/t-bat2" bob@example.test a@client.example.test "$SRV_V4" "" \
	--attach-type application/octet-stream --attach-name run.bat --attach "@$tmp/run.bat" --header "Subject: bat again"
assert_grep '^<\*\* +550 5\.7\.1 Batch files are not accepted' "$tmp/t-bat2" "broken rules: the old rules still apply"
b3=$(maildir_count bob)
send_mail "$tmp/t-cmd" bob@example.test a@client.example.test "$SRV_V4" "" \
	--attach-type application/octet-stream --attach-name run.cmd --attach "@$tmp/run.cmd" --header "Subject: cmd"
assert_grep '^<- +250 2\.0\.0 Ok: queued' "$tmp/t-cmd" "broken rules: the refused file's rule is not applied"
check "broken rules: that message delivered" wait_delivered bob $((b3 + 1)) 10
assert_grep '^content\.rules=5$' <(ctl status) "broken rules: status still shows the old rules"
cp "$tmp/content.good" "$tmp/content.rules"

# --- 4c. notices: the rule and where it matched, never the data; one per
# message, about the strongest decision (redact over the stamp's tag)
start_sporkd "inside_networks 10.25.0.0/24 fd25::/64" "notice_to alice@example.test" \
	"notice_actions reject quarantine strip redact tag"
a0=$(maildir_count alice) b3=$(maildir_count bob)
send_mail "$tmp/t-ncard" bob@example.test a@client.example.test "$SRV_V4" "$tmp/card.txt" \
	--header "Subject: card notice"
check "redact notice: message delivered" wait_delivered bob $((b3 + 1)) 10
check "redact notice: arrived" wait_delivered alice $((a0 + 1)) 10
f=$(maildir_files alice | tail -n1)
assert_grep '^Subject: \[spork\] redact: cards-out$' "$f" "redact notice: names action and rule"
assert_grep "^A message was handled by spork's content policy\.$" "$f" "redact notice: names the content policy"
assert_grep '^Detail:     dlp:card in part 1 text/plain matches=1$' "$f" "redact notice: says what matched and where"
assert_grep '^Subject:    card notice$' "$f" "redact notice: names the message"
assert_no_grep '4111' "$f" "redact notice: not the card number itself"
send_mail "$tmp/t-nzip" bob@example.test a@client.example.test "$SRV_V4" "" \
	--attach-type application/zip --attach "@$tmp/setup.zip" --header "Subject: setup notice"
assert_grep '^<\*\* +550 5\.7\.1 Executable attachments are not accepted' "$tmp/t-nzip" "reject notice: message refused"
check "reject notice: arrived" wait_delivered alice $((a0 + 2)) 10
f=$(maildir_files alice | tail -n1)
assert_grep '^Subject: \[spork\] reject: exe-name$' "$f" "reject notice: names action and rule"
assert_grep "^Detail:     ext in part 2 'setup\.zip' entry 'bin/setup\.exe'$" "$f" "reject notice: names the entry"
sleep 1
[ "$(maildir_count alice)" -eq $((a0 + 2)) ] && pass "content notices: one per message" ||
	fail "content notices: one per message" "$(($(maildir_count alice) - a0)) notices for 2 messages"

# --- 5. inbound: the same client, not inside any more
start_sporkd "inside_networks 192.0.2.0/24"
b2=$(maildir_count bob)
send_mail "$tmp/t-card-in" bob@example.test a@client.example.test "$SRV_V4" "$tmp/card.txt" \
	--header "Subject: card in"
check "card inbound: delivered" wait_delivered bob $((b2 + 1)) 10
f=$(last_bob)
assert_grep '^please charge 4111 1111 1111 1111 for the order\.$' "$f" "card inbound: an outbound-only rule leaves it alone"
assert_grep '^X-Spork-Content: stamp=tag$' "$f" "card inbound: the any-direction rule still applies"

# --- 6. a clamd-only setup cannot have content rules
{
	cat "$LAB_DIR/spork.conf"
	echo "content_rules $tmp/content.rules"
	echo "scan_backend clamd"
	echo "clamd_servers 127.0.0.1:3310"
} >"$tmp/clamd.conf"
if "$SPORK_REPO/build/sporkd" -t -c "$tmp/clamd.conf" >"$tmp/t-clamd" 2>&1; then
	fail "clamd backend: content_rules refused" "accepted"
else
	assert_grep 'content_rules needs scan_enable yes and scan_backend workers' "$tmp/t-clamd" \
		"clamd backend: content_rules refused with a clear message"
fi

summary
