#!/usr/bin/env python3
"""Generate the clean mail corpus under tests/data/corpus/clean/.

Every message is built byte by byte here (no email.generator), so the output is
exactly what is written below: CRLF line endings only, no line over 998 octets,
final CRLF, fixed dates, fixed Message-IDs, fixed MIME boundaries and a fixed
random seed for the binary payloads.  Running the script again produces
identical files.

    make-clean.py            write clean/*.eml and README.md
    make-clean.py --check    regenerate in memory, compare with the files on
                             disk, exit 1 on any difference

Nothing in here is meant to be flagged by a virus scanner: no EICAR string, no
executables, no macros, no encrypted or password-protected content, no scripts.
"""

import base64
import datetime
import email.quoprimime
import email.utils
import io
import os
import random
import struct
import sys
import zipfile
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
OUT_DIR = os.path.join(HERE, "clean")
README = os.path.join(HERE, "README.md")

SEED = 20250301
CRLF = "\r\n"
MAX_LINE = 998          # octets, excluding CRLF (RFC 5322 section 2.1.1)
MAX_SIZE = 2 * 1024 * 1024


# --------------------------------------------------------------------------
# small helpers

def date(day, hour, minute, tz_hours=0, tz_minutes=0):
    """RFC 5322 date in March 2025, with a correct day-of-week."""
    tz = datetime.timezone(datetime.timedelta(hours=tz_hours, minutes=tz_minutes))
    return email.utils.format_datetime(
        datetime.datetime(2025, 3, day, hour, minute, 0, tzinfo=tz))


def b64_lines(data, width=76):
    enc = base64.b64encode(data).decode("ascii")
    return [enc[i:i + width] for i in range(0, len(enc), width)]


def qp_lines(text):
    """Quoted-printable (RFC 2045) lines for UTF-8 text, soft breaks at 76."""
    raw = text.encode("utf-8").decode("latin-1")
    return email.quoprimime.body_encode(raw, maxlinelen=76, eol=CRLF).split(CRLF)


def text_lines(text):
    """Split a Python string written with \\n into lines (no terminators)."""
    return text.split("\n")


def headers(n, subject, sender, to, when, extra=(), msgid=None):
    lines = [
        "From: " + sender,
        "To: " + to,
        "Subject: " + subject,
        "Date: " + when,
        "Message-ID: " + (msgid or "<corpus-%02d@mail.example.test>" % n),
    ]
    lines.extend(extra)
    return lines


def message(head, body):
    """Header lines + body lines -> bytes with CRLF everywhere."""
    return (CRLF.join(head) + CRLF + CRLF + CRLF.join(body) + CRLF).encode("utf-8")


def multipart(boundary, parts, preamble=None, epilogue=None):
    """Body lines of a multipart entity; each part is (header lines, body lines)."""
    out = []
    if preamble is not None:
        out.extend(preamble)
    for head, body in parts:
        out.append("--" + boundary)
        out.extend(head)
        out.append("")
        out.extend(body)
    out.append("--" + boundary + "--")
    if epilogue is not None:
        out.extend(epilogue)
    return out


def text_part(text, subtype="plain", charset="us-ascii", cte="7bit", extra=()):
    head = ["Content-Type: text/%s; charset=%s" % (subtype, charset),
            "Content-Transfer-Encoding: " + cte]
    head.extend(extra)
    if cte == "quoted-printable":
        return head, qp_lines(text)
    if cte == "base64":
        return head, b64_lines(text.encode(charset))
    return head, text_lines(text)


def attachment(data, ctype, filename, disposition="attachment", extra=()):
    head = ['Content-Type: %s; name="%s"' % (ctype, filename),
            "Content-Transfer-Encoding: base64",
            '%s: %s; filename="%s"' % ("Content-Disposition", disposition, filename)]
    head.extend(extra)
    return head, b64_lines(data)


# --------------------------------------------------------------------------
# payloads (all deterministic)

def make_png(width=16, height=16):
    """A valid truecolour 8-bit PNG: a small gradient."""
    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data +
                struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    raw = bytearray()
    for y in range(height):
        raw.append(0)                               # filter type: none
        for x in range(width):
            raw += bytes((x * 255 // (width - 1), y * 255 // (height - 1), 128))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) +
            chunk(b"IDAT", zlib.compress(bytes(raw), 9)) + chunk(b"IEND", b""))


def make_pdf(title, lines):
    """A minimal one-page PDF 1.4 with a correct xref table; text only."""
    def esc(s):
        return s.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
    ops = ["BT", "/F1 14 Tf", "72 760 Td", "(%s) Tj" % esc(title), "/F1 11 Tf"]
    for line in lines:
        ops += ["0 -18 Td", "(%s) Tj" % esc(line)]
    ops.append("ET")
    content = ("\n".join(ops) + "\n").encode("ascii")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
        b"/Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Length %d >>\nstream\n" % len(content) + content + b"endstream",
        b"<< /Title (%s) /Producer (spork corpus) "
        b"/CreationDate (D:20250301120000Z) >>" % esc(title).encode("ascii"),
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for i, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n" % (len(objects) + 1)
    out += b"0000000000 65535 f \n"
    for off in offsets:
        out += b"%010d 00000 n \n" % off
    out += (b"trailer\n<< /Size %d /Root 1 0 R /Info 6 0 R >>\nstartxref\n%d\n%%%%EOF\n"
            % (len(objects) + 1, xref))
    return bytes(out)


def make_zip(files):
    """A plain (unencrypted, deflated) ZIP with fixed timestamps."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in files:
            info = zipfile.ZipInfo(name, date_time=(2025, 3, 1, 12, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3
            info.external_attr = 0o100644 << 16
            zf.writestr(info, data)
    return buf.getvalue()


CSV_DATA = (
    "date,region,product,units,unit_price\r\n"
    "2025-02-03,north,widget,12,4.50\r\n"
    "2025-02-03,south,gadget,3,19.99\r\n"
    "2025-02-10,north,gadget,7,19.99\r\n"
    "2025-02-17,east,\"widget, large\",5,6.25\r\n"
    "2025-02-24,west,sprocket,40,0.35\r\n"
)

TXT_NOTES = (
    "Meeting notes, 28 February\r\n"
    "\r\n"
    "1. Staging mail relay moves to the new rack next week.\r\n"
    "2. Bob to update the runbook.\r\n"
    "3. Next review on 14 March.\r\n"
)

LOREM = ("Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do "
         "eiusmod tempor incididunt ut labore et dolore magna aliqua.")


# --------------------------------------------------------------------------
# the messages: each function returns (filename, description, bytes)

CORPUS = []


def corpus(fn):
    CORPUS.append(fn)
    return fn


@corpus
def m01():
    head = headers(1, "Lunch on Thursday?", "Carol Example <carol@example.test>",
                   "alice@example.test", date(3, 9, 15))
    body = text_lines(
        "Hi Alice,\n"
        "\n"
        "Are you free for lunch on Thursday? The usual place at 12:30 works for me.\n"
        "From what I hear the new menu is good.\n"
        "\n"
        "Cheers,\n"
        "Carol")
    return "01-plain-7bit.eml", "plain 7bit US-ASCII text, no MIME headers, a body line starting with \"From \"", message(head, body)


@corpus
def m02():
    head = headers(2, "Dots at the start of lines", "Dave <dave@example.test>",
                   "bob@example.test", date(3, 10, 2, 1),
                   ["MIME-Version: 1.0",
                    "Content-Type: text/plain; charset=us-ascii",
                    "Content-Transfer-Encoding: 7bit"])
    body = text_lines(
        "The lines below start with dots and must arrive unchanged.\n"
        ".\n"
        "..\n"
        "...\n"
        ".hidden-file\n"
        "..double dot prefix\n"
        ". a dot and a space\n"
        "\n"
        "A line that is exactly one dot follows:\n"
        ".\n"
        "and one that is exactly two dots:\n"
        "..\n"
        "End of list, and the last line is a dot too:\n"
        ".")
    return "02-dot-stuffing.eml", "lines starting with '.', lines that are exactly '.', '..' and '...', last body line '.' (SMTP dot-stuffing)", message(head, body)


@corpus
def m03():
    head = headers(3, "=?UTF-8?Q?Gr=C3=BC=C3=9Fe_aus_M=C3=BCnchen?=",
                   "=?UTF-8?Q?J=C3=BCrgen_M=C3=BCller?= <juergen@example.test>",
                   "alice@example.test", date(4, 8, 30, 1),
                   ["MIME-Version: 1.0",
                    "Content-Type: text/plain; charset=utf-8",
                    "Content-Transfer-Encoding: 8bit"])
    body = text_lines(
        "Hallo Alice,\n"
        "\n"
        "viele Grüße aus München! Das Wetter ist schön, der Kaffee stark.\n"
        "Français : déjà vu, garçon, œuvre, naïve.\n"
        "Español: ¿Dónde está la estación? ¡Mañana!\n"
        "Ελληνικά: Καλημέρα κόσμε.\n"
        "Русский: Привет, мир.\n"
        "日本語: こんにちは世界。\n"
        "中文: 你好，世界。\n"
        "Emoji: ☕ 🚲 🌧️ ✉️\n"
        "Symbols: € £ ¥ © ® ™ ± × ÷ → ∞\n"
        "\n"
        "Bis bald,\n"
        "Jürgen")
    return "03-utf8-8bit.eml", "8bit UTF-8 body (German, French, Spanish, Greek, Cyrillic, CJK, emoji) with Content-Transfer-Encoding: 8bit", message(head, body)


@corpus
def m04():
    text = (
        "Hello Bob,\n"
        "\n"
        "This paragraph is deliberately written as one very long line so that the "
        "quoted-printable encoder has to insert several soft line breaks; the "
        "receiver must join them back together. " + LOREM + " " + LOREM + "\n"
        "\n"
        "Characters that need encoding: café, naïve, Straße, 50% off = bargain.\n"
        "Equals signs at the end of a line =\n"
        "Trailing spaces here   \n"
        "Trailing tab here\t\n"
        "\n"
        "Regards,\n"
        "Eve")
    head = headers(4, "Quoted-printable with soft line breaks", "Eve <eve@example.test>",
                   "bob@example.test", date(4, 14, 45, -5),
                   ["MIME-Version: 1.0",
                    "Content-Type: text/plain; charset=utf-8",
                    "Content-Transfer-Encoding: quoted-printable"])
    return "04-quoted-printable.eml", "quoted-printable UTF-8 body with soft line breaks, encoded '=', trailing space and tab", message(head, qp_lines(text))


HTML_NEWSLETTER = (
    "<!DOCTYPE html>\n"
    "<html lang=\"en\">\n"
    "<head>\n"
    "<meta charset=\"utf-8\">\n"
    "<title>March update</title>\n"
    "<style>body { font-family: sans-serif; } h1 { color: #225; }</style>\n"
    "</head>\n"
    "<body>\n"
    "<h1>March update</h1>\n"
    "<p>Hi Alice,</p>\n"
    "<p>Here is the <strong>March</strong> update from the team:</p>\n"
    "<ul>\n"
    "<li>The staging relay is now on the new rack.</li>\n"
    "<li>Backups were verified on 28&nbsp;February.</li>\n"
    "<li>Next review: <em>14 March</em>.</li>\n"
    "</ul>\n"
    "<p>See <a href=\"https://www.example.test/updates/march\">the full notes</a>.</p>\n"
    "<table border=\"1\" cellpadding=\"4\">\n"
    "<tr><th>Item</th><th>Status</th></tr>\n"
    "<tr><td>Relay</td><td>done</td></tr>\n"
    "<tr><td>Backups</td><td>done</td></tr>\n"
    "</table>\n"
    "<p>&mdash; Frank</p>\n"
    "</body>\n"
    "</html>")

TEXT_NEWSLETTER = (
    "Hi Alice,\n"
    "\n"
    "Here is the March update from the team:\n"
    "\n"
    "  * The staging relay is now on the new rack.\n"
    "  * Backups were verified on 28 February.\n"
    "  * Next review: 14 March.\n"
    "\n"
    "Full notes: https://www.example.test/updates/march\n"
    "\n"
    "-- Frank")


@corpus
def m05():
    b = "=_spork_05_alt_a1b2c3"
    head = headers(5, "March update", "Frank <frank@example.test>",
                   "alice@example.test", date(5, 7, 0),
                   ["MIME-Version: 1.0",
                    'Content-Type: multipart/alternative; boundary="%s"' % b])
    body = multipart(b, [
        text_part(TEXT_NEWSLETTER, charset="utf-8", cte="7bit"),
        text_part(HTML_NEWSLETTER, subtype="html", charset="utf-8", cte="quoted-printable"),
    ])
    return "05-alternative-text-html.eml", "multipart/alternative: text/plain (7bit) and text/html (quoted-printable), HTML without scripts", message(head, body)


@corpus
def m06():
    b = "=_spork_06_mixed"
    head = headers(6, "Colour swatch", "Grace <grace@example.test>",
                   "bob@example.test", date(5, 11, 20, 2),
                   ["MIME-Version: 1.0",
                    'Content-Type: multipart/mixed; boundary="%s"' % b])
    body = multipart(b, [
        text_part("Bob,\n\nthe swatch you asked for is attached (16x16 PNG).\n\nGrace"),
        attachment(make_png(), "image/png", "swatch.png"),
    ])
    return "06-attachment-png.eml", "multipart/mixed with a small valid PNG attachment (base64)", message(head, body)


@corpus
def m07():
    b = "=_spork_07_mixed"
    head = headers(7, "Invoice 2025-0042", "Billing <billing@example.test>",
                   "alice@example.test", date(6, 9, 0),
                   ["MIME-Version: 1.0",
                    'Content-Type: multipart/mixed; boundary="%s"' % b])
    pdf = make_pdf("Invoice 2025-0042", [
        "Customer: Alice Example",
        "Item: Consulting, February 2025",
        "Amount: 1,200.00 EUR",
        "Due: 31 March 2025",
    ])
    body = multipart(b, [
        text_part("Dear Alice,\n\nplease find invoice 2025-0042 attached.\n\nBilling team"),
        attachment(pdf, "application/pdf", "invoice-2025-0042.pdf"),
    ])
    return "07-attachment-pdf.eml", "multipart/mixed with a minimal valid one-page text PDF (correct xref, no JavaScript)", message(head, body)


@corpus
def m08():
    b = "=_spork_08_mixed"
    head = headers(8, "February sales figures", "Heidi <heidi@example.test>",
                   "bob@example.test", date(6, 16, 5, -8),
                   ["MIME-Version: 1.0",
                    'Content-Type: multipart/mixed; boundary="%s"' % b])
    csv_part = (["Content-Type: text/csv; charset=us-ascii; header=present;",
                 ' name="sales-2025-02.csv"',
                 "Content-Transfer-Encoding: 7bit",
                 'Content-Disposition: attachment; filename="sales-2025-02.csv"'],
                CSV_DATA.rstrip("\r\n").split("\r\n"))
    body = multipart(b, [
        text_part("Hi Bob,\n\nFebruary figures attached as CSV.\n\nHeidi"),
        csv_part,
    ])
    return "08-attachment-csv.eml", "multipart/mixed with a text/csv attachment sent as 7bit (not base64)", message(head, body)


@corpus
def m09():
    b = "=_spork_09_mixed"
    head = headers(9, "Notes from Friday", "Ivan <ivan@example.test>",
                   "alice@example.test", date(7, 8, 10, 3),
                   ["MIME-Version: 1.0",
                    'Content-Type: multipart/mixed; boundary="%s"' % b])
    body = multipart(b, [
        text_part("Alice,\n\nnotes attached.\n\nIvan"),
        attachment(TXT_NOTES.encode("ascii"), "text/plain; charset=us-ascii", "notes.txt"),
    ])
    return "09-attachment-txt.eml", "multipart/mixed with a base64-encoded text/plain .txt attachment", message(head, body)


def zip_payload():
    return make_zip([
        ("report/README.txt", b"Quarterly report bundle.\r\nPlain text files only.\r\n"),
        ("report/summary.txt", ("Summary\r\n\r\n" + LOREM + "\r\n").encode("ascii") * 20),
        ("report/sales.csv", CSV_DATA.encode("ascii")),
    ])


@corpus
def m10():
    b = "=_spork_10_mixed"
    head = headers(10, "Report bundle (zip)", "Judy <judy@example.test>",
                   "bob@example.test", date(7, 13, 30),
                   ["MIME-Version: 1.0",
                    'Content-Type: multipart/mixed; boundary="%s"' % b])
    body = multipart(b, [
        text_part("Bob,\n\nthe report bundle is attached as a zip of three text files.\n"
                  "It is not encrypted.\n\nJudy"),
        attachment(zip_payload(), "application/zip", "report.zip"),
    ])
    return "10-attachment-zip.eml", "multipart/mixed with a small unencrypted deflated ZIP of three text files", message(head, body)


@corpus
def m11():
    b = "=_spork_11_mixed"
    head = headers(11, "Everything for the review", "Mallory <mallory@example.test>",
                   "alice@example.test", date(10, 9, 45, 1),
                   ["MIME-Version: 1.0",
                    'Content-Type: multipart/mixed; boundary="%s"' % b])
    pdf = make_pdf("Review agenda", ["1. Relay status", "2. Backups", "3. Any other business"])
    body = multipart(b, [
        text_part("Alice,\n\nattached: swatch, agenda, figures, notes and the bundle.\n\nMallory"),
        attachment(make_png(8, 8), "image/png", "swatch-small.png"),
        attachment(pdf, "application/pdf", "agenda.pdf"),
        attachment(CSV_DATA.encode("ascii"), "text/csv; charset=us-ascii", "sales.csv"),
        attachment(TXT_NOTES.encode("ascii"), "text/plain; charset=us-ascii", "notes.txt"),
        attachment(zip_payload(), "application/zip", "report.zip"),
    ])
    return "11-mixed-five-attachments.eml", "multipart/mixed with PNG, PDF, CSV, TXT and ZIP attachments in one message", message(head, body)


@corpus
def m12():
    bm, ba, br = "=_spork_12_mixed", "=_spork_12_alt", "=_spork_12_rel"
    head = headers(12, "Newsletter with inline logo", "Niaj <niaj@example.test>",
                   "bob@example.test", date(10, 15, 0, -4),
                   ["MIME-Version: 1.0",
                    'Content-Type: multipart/mixed; boundary="%s"' % bm])
    html = (
        "<html>\n<body>\n"
        "<p><img src=\"cid:logo-12@mail.example.test\" alt=\"logo\" width=\"16\" height=\"16\"></p>\n"
        "<p>Hello Bob, this newsletter has an inline logo above and a PDF attached.</p>\n"
        "</body>\n</html>")
    related = multipart(br, [
        text_part(html, subtype="html", charset="us-ascii"),
        (["Content-Type: image/png",
          "Content-Transfer-Encoding: base64",
          "Content-ID: <logo-12@mail.example.test>",
          'Content-Disposition: inline; filename="logo.png"'],
         b64_lines(make_png())),
    ])
    alternative = multipart(ba, [
        text_part("Hello Bob, this newsletter has an inline logo and a PDF attached."),
        (['Content-Type: multipart/related; boundary="%s"; type="text/html"' % br], related),
    ])
    body = multipart(bm, [
        (['Content-Type: multipart/alternative; boundary="%s"' % ba], alternative),
        attachment(make_pdf("Newsletter", ["Issue 12", "Nothing to see here."]),
                   "application/pdf", "newsletter-12.pdf"),
    ])
    return "12-nested-related-cid.eml", "nested multipart: mixed > alternative > related (HTML + inline PNG referenced by cid:) plus a PDF", message(head, body)


@corpus
def m13():
    inner_b = "=_spork_13_inner_alt"
    inner = headers(0, "Rack move schedule", "Olivia <olivia@example.test>",
                    "carol@example.test", date(11, 8, 0),
                    ["MIME-Version: 1.0",
                     'Content-Type: multipart/alternative; boundary="%s"' % inner_b],
                    msgid="<rack-move-1@mail.example.test>")
    inner += [""] + multipart(inner_b, [
        text_part("Carol,\n\nthe rack move is scheduled for 18 March, 07:00.\n\nOlivia"),
        text_part("<p>Carol,</p><p>the rack move is scheduled for <b>18 March, 07:00</b>.</p>"
                  "<p>Olivia</p>", subtype="html"),
    ])
    b = "=_spork_13_fwd"
    head = headers(13, "Fwd: Rack move schedule", "Carol Example <carol@example.test>",
                   "alice@example.test", date(11, 9, 12),
                   ["MIME-Version: 1.0",
                    'Content-Type: multipart/mixed; boundary="%s"' % b])
    body = multipart(b, [
        text_part("Alice, FYI - see the forwarded message below.\n\nCarol"),
        (["Content-Type: message/rfc822",
          "Content-Transfer-Encoding: 7bit",
          'Content-Disposition: inline; filename="rack-move.eml"'], inner),
    ])
    return "13-forwarded-rfc822.eml", "forward as message/rfc822 part containing a complete multipart/alternative message", message(head, body)


@corpus
def m14():
    ics = (
        "BEGIN:VCALENDAR\n"
        "PRODID:-//spork corpus//calendar 1.0//EN\n"
        "VERSION:2.0\n"
        "CALSCALE:GREGORIAN\n"
        "METHOD:REQUEST\n"
        "BEGIN:VEVENT\n"
        "UID:review-20250314@example.test\n"
        "DTSTAMP:20250312T100000Z\n"
        "DTSTART:20250314T140000Z\n"
        "DTEND:20250314T150000Z\n"
        "SUMMARY:Quarterly review\n"
        "LOCATION:Room 2\n"
        "DESCRIPTION:Agenda: relay status\\, backups\\, any other business. This d\n"
        " escription line is folded per RFC 5545.\n"
        "ORGANIZER;CN=Peggy:mailto:peggy@example.test\n"
        "ATTENDEE;CN=Alice;ROLE=REQ-PARTICIPANT;PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mai\n"
        " lto:alice@example.test\n"
        "SEQUENCE:0\n"
        "STATUS:CONFIRMED\n"
        "END:VEVENT\n"
        "END:VCALENDAR")
    b = "=_spork_14_alt"
    head = headers(14, "Invitation: Quarterly review @ Fri 14 Mar 2025 14:00 UTC",
                   "Peggy <peggy@example.test>", "alice@example.test", date(12, 10, 0),
                   ["MIME-Version: 1.0",
                    'Content-Type: multipart/alternative; boundary="%s"' % b])
    body = multipart(b, [
        text_part("You are invited to: Quarterly review\n"
                  "When: Friday 14 March 2025, 14:00-15:00 UTC\nWhere: Room 2"),
        (["Content-Type: text/calendar; charset=utf-8; method=REQUEST",
          "Content-Transfer-Encoding: 7bit"], text_lines(ics)),
    ])
    return "14-calendar-invite.eml", "meeting invitation: multipart/alternative with text/plain and text/calendar; method=REQUEST (folded iCalendar lines)", message(head, body)


@corpus
def m15():
    rng = random.Random(SEED)
    data = bytes(rng.getrandbits(8) for _ in range(1024 * 1024))
    b = "=_spork_15_mixed"
    head = headers(15, "Raw capture (1 MiB)", "Rupert <rupert@example.test>",
                   "bob@example.test", date(12, 17, 40),
                   ["MIME-Version: 1.0",
                    'Content-Type: multipart/mixed; boundary="%s"' % b])
    body = multipart(b, [
        text_part("Bob,\n\n1 MiB of random capture data attached as data.bin.\n\nRupert"),
        attachment(data, "application/octet-stream", "data.bin"),
    ])
    return "15-large-base64-bin.eml", "large message: 1 MiB of seeded random bytes as base64 application/octet-stream data.bin (~1.4 MB file)", message(head, body)


@corpus
def m16():
    b = "=_spork_16_mixed"
    head = headers(16,
                   "=?UTF-8?B?UsOpc3Vtw6kgZXQgZmFjdHVyZSDigJMg?=\r\n"
                   " =?UTF-8?Q?=C3=A9t=C3=A9_2025?=\r\n =?ISO-8859-1?Q?_=28Z=FCrich=29?=",
                   "=?UTF-8?B?U3liaWwgw4Z0aGVsc3TDpm4=?= <sybil@example.test>",
                   "=?UTF-8?Q?Alice_=C3=85str=C3=B6m?= <alice@example.test>",
                   date(13, 11, 11, 1),
                   ["MIME-Version: 1.0",
                    'Content-Type: multipart/mixed; boundary="%s"' % b])
    resume = "Résumé – Sybil Æthelstæn\r\nCompétences : tout.\r\n".encode("utf-8")
    facture = "Facture été 2025, Zürich\r\nMontant : 100 €\r\n".encode("utf-8")
    body = multipart(b, [
        text_part("Bonjour Alice,\n\nci-joint mon résumé et la facture.\n\nSybil",
                  charset="utf-8", cte="quoted-printable"),
        (["Content-Type: text/plain; charset=utf-8;",
          " name*=UTF-8''r%C3%A9sum%C3%A9-%C3%A6thelst%C3%A6n.txt",
          "Content-Transfer-Encoding: base64",
          "Content-Disposition: attachment;",
          " filename*=UTF-8''r%C3%A9sum%C3%A9-%C3%A6thelst%C3%A6n.txt"],
         b64_lines(resume)),
        (["Content-Type: text/plain; charset=utf-8;",
          " name*0*=UTF-8''facture-%C3%A9t%C3%A9-2025-;",
          " name*1*=Z%C3%BCrich-montant-100-%E2%82%AC.txt",
          "Content-Transfer-Encoding: base64",
          "Content-Disposition: attachment;",
          " filename*0*=UTF-8'fr'facture-%C3%A9t%C3%A9-2025-;",
          " filename*1*=Z%C3%BCrich-montant-100-%E2%82%AC.txt"],
         b64_lines(facture)),
    ])
    return "16-rfc2047-rfc2231.eml", "RFC 2047 encoded-words (B and Q, UTF-8 and ISO-8859-1) in Subject/From/To; RFC 2231 filename*= and continued filename*0*/*1*", message(head, body)


@corpus
def m17():
    refs = ["<thread-%03d.%08x@mail.example.test>" % (i, (i * 2654435761) & 0xFFFFFFFF)
            for i in range(1, 121)]
    cc = ["user%02d@example.test" % i for i in range(1, 61)]
    extra = ["MIME-Version: 1.0",
             "Content-Type: text/plain; charset=us-ascii",
             "Content-Transfer-Encoding: 7bit"]
    extra.append("Cc: " + cc[0] + ",")
    extra += [" " + a + "," for a in cc[1:-1]]
    extra.append(" " + cc[-1])
    extra.append("References: " + refs[0])
    extra += [" " + r for r in refs[1:]]
    words = ("folded header value number %d carries on over many physical lines")
    extra.append("X-Corpus-Long: start")
    extra += ["\t" + words % i for i in range(1, 201)]
    head = headers(17,
                   "A subject that is long enough that it has to be folded\r\n"
                   " over several lines because it goes on and on about the many\r\n"
                   " recipients and the long list of references below",
                   "Trent <trent@example.test>", "bob@example.test", date(13, 12, 0),
                   extra)
    body = text_lines("Bob,\n\nthis message has very long folded headers (Cc, References,\n"
                      "Subject and an X- header over 200 lines).\n\nTrent")
    return "17-long-folded-headers.eml", "very long headers folded over many lines: Subject (3 lines), Cc (60 addresses), References (120 ids), X-Corpus-Long (201 lines, ~13 KB unfolded)", message(head, body)


@corpus
def m18():
    head = headers(18, "(no body)", "Victor <victor@example.test>",
                   "alice@example.test", date(14, 6, 0))
    data = (CRLF.join(head) + CRLF + CRLF).encode("ascii")
    return "18-empty-body.eml", "headers, the empty separator line and no body at all", data


@corpus
def m19():
    head = headers(19, "Whitespace must survive", "Walter <walter@example.test>",
                   "bob@example.test", date(14, 9, 30, 5, 30),
                   ["MIME-Version: 1.0",
                    "Content-Type: text/plain; charset=us-ascii",
                    "Content-Transfer-Encoding: 7bit"])
    body = [
        "Lines below end in spaces and tabs; nothing may strip them.",
        "two trailing spaces  ",
        "one trailing tab\t",
        "mixed \t \t",
        "    ",
        "\t\t",
        "\tleading tab, trailing space ",
        "",
        "last line ends with tab and space\t ",
    ]
    return "19-trailing-whitespace.eml", "body lines ending in spaces/tabs, whitespace-only lines, last line ending in tab+space", message(head, body)


@corpus
def m20():
    sig_rng = random.Random(SEED + 20)
    fake_b = base64.b64encode(bytes(sig_rng.getrandbits(8) for _ in range(256))).decode("ascii")
    fake_bh = base64.b64encode(bytes(sig_rng.getrandbits(8) for _ in range(32))).decode("ascii")
    sig = ["DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=example.test;",
           "\ts=sel2025; t=1741860000; x=1742464800;",
           "\th=from:to:subject:date:message-id:mime-version:content-type;",
           "\tbh=" + fake_bh + ";",
           "\tb=" + fake_b[:64]]
    sig += ["\t " + fake_b[i:i + 64] for i in range(64, len(fake_b), 64)]
    head = sig + [
        "Received: from mx1.example.test (mx1.example.test [192.0.2.10])",
        "\tby mail.example.test (Postfix) with ESMTPS id 4Z1ABC2DEF",
        "\tfor <alice@example.test>; " + date(15, 8, 0),
        "Received: from sender.example.test (sender.example.test [198.51.100.7])",
        "\tby mx1.example.test with ESMTP id 7QRS;",
        "\t" + date(15, 7, 59),
        "Authentication-Results: mail.example.test; dkim=none (test corpus);",
        "\tspf=none smtp.mailfrom=example.test",
    ] + headers(20, "Signed newsletter", "News <news@example.test>",
                "alice@example.test", date(15, 7, 59),
                ["MIME-Version: 1.0",
                 "Content-Type: text/plain; charset=us-ascii",
                 "Content-Transfer-Encoding: 7bit",
                 "List-Id: Example news <news.example.test>",
                 "List-Unsubscribe: <mailto:news-unsubscribe@example.test>"])
    body = text_lines("This message carries a DKIM-Signature header (not a valid one).\n"
                      "A relay that rewrites headers or body would break a real signature.")
    return "20-dkim-signature.eml", "DKIM-Signature header (syntactically plausible, not valid) folded with tabs, plus Received and Authentication-Results headers", message(head, body)


@corpus
def m21():
    b = "=_spork_21_mixed"
    head = headers(21, "Multipart with preamble and epilogue", "Xavier <xavier@example.test>",
                   "bob@example.test", date(17, 10, 0),
                   ["MIME-Version: 1.0",
                    'Content-Type: multipart/mixed; boundary="%s"' % b])
    body = multipart(b, [
        text_part("First part: plain text."),
        text_part("Second part: also text, sent inline.",
                  extra=['Content-Disposition: inline; filename="second.txt"']),
    ], preamble=["This is a multi-part message in MIME format.",
                 "If you can read this, your mail reader does not understand MIME.",
                 ""],
       epilogue=["", "This epilogue text follows the closing boundary and is ignored",
                 "by MIME readers, but a transparent relay must keep it."])
    return "21-preamble-epilogue.eml", "multipart/mixed with a two-line preamble before the first boundary and an epilogue after the closing one", message(head, body)


@corpus
def m22():
    head = headers(22, "Re: Re: Rack move schedule", "Bob <bob@example.test>",
                   "alice@example.test", date(18, 16, 20),
                   ["Cc: carol@example.test",
                    "In-Reply-To: <rack-move-3@mail.example.test>",
                    "References: <rack-move-1@mail.example.test>",
                    " <rack-move-2@mail.example.test>",
                    " <rack-move-3@mail.example.test>",
                    "MIME-Version: 1.0",
                    "Content-Type: text/plain; charset=us-ascii; format=flowed",
                    "Content-Transfer-Encoding: 7bit"])
    body = text_lines(
        "Works for me. I'll bring the label printer.\n"
        "\n"
        "On Tue, 18 Mar 2025 at 15:02, Alice <alice@example.test> wrote:\n"
        "> Bob, can you be there at 06:45 to unlock the room?\n"
        ">\n"
        "> On Tue, 11 Mar 2025 at 09:12, Carol <carol@example.test> wrote:\n"
        ">> The rack move is scheduled for 18 March, 07:00.\n"
        ">> Please label the cables beforehand.\n"
        ">>\n"
        ">> -- \n"
        ">> Carol\n"
        "\n"
        "-- \n"
        "Bob")
    return "22-reply-thread.eml", "reply with In-Reply-To and folded References, quoted text ('>' and '>>'), signature separator '-- ' with trailing space", message(head, body)


@corpus
def m23():
    head = headers(23, "Lines at the length limit", "Yolanda <yolanda@example.test>",
                   "bob@example.test", date(19, 12, 0),
                   ["MIME-Version: 1.0",
                    "Content-Type: text/plain; charset=us-ascii",
                    "Content-Transfer-Encoding: 7bit"])
    def filler(n, tag):
        s = (tag + ":" + "0123456789abcdefghijklmnopqrstuvwxyz" * 30)[:n - 1]
        return s + "$"
    body = [
        "The next lines are 998, 997 and 998 octets long (RFC 5322 maximum is 998).",
        filler(998, "L998"),
        filler(997, "L997"),
        "." + filler(997, "dot"),     # 998 octets starting with a dot: 999 once dot-stuffed
        "end",
    ]
    return "23-line-length-998.eml", "body lines of exactly 998 and 997 octets, and a 998-octet line starting with '.' (999 octets after dot-stuffing)", message(head, body)


# --------------------------------------------------------------------------

def check(name, data):
    """The invariants every corpus file must satisfy; raises on violation."""
    assert len(data) < MAX_SIZE, "%s: %d bytes" % (name, len(data))
    assert data.endswith(b"\r\n"), name + ": no final CRLF"
    assert b"\r" not in data.replace(b"\r\n", b""), name + ": bare CR"
    assert b"\n" not in data.replace(b"\r\n", b""), name + ": bare LF"
    longest = max(len(l) for l in data.split(b"\r\n"))
    assert longest <= MAX_LINE, "%s: line of %d octets" % (name, longest)
    assert b"\0" not in data, name + ": NUL"
    assert b"EICAR" not in data.upper(), name + ": EICAR"


def build():
    out = []
    for fn in CORPUS:
        name, desc, data = fn()
        check(name, data)
        out.append((name, desc, data))
    return out


def readme(items):
    lines = [
        "# Mail corpus",
        "",
        "`clean/` holds realistic clean messages that spork must deliver byte for byte.",
        "They are generated by `make-clean.py` (fixed seed, fixed dates, fixed boundaries);",
        "do not edit them by hand, change the script and re-run it. `make-clean.py --check`",
        "verifies that the files on disk match the script.",
        "",
        "All files: CRLF line endings only, no line over 998 octets, final CRLF, under 2 MB,",
        "From/To/Subject/Date/Message-ID present, addresses under example.test.",
        "",
    ]
    for name, desc, _ in items:
        lines.append("- `clean/%s`: %s" % (name, desc))
    return ("\n".join(lines) + "\n").encode("utf-8")


def main(argv):
    items = build()
    wanted = {os.path.join(OUT_DIR, n): d for n, _, d in items}
    wanted[README] = readme(items)
    if argv[1:] == ["--check"]:
        bad = 0
        for path, data in sorted(wanted.items()):
            try:
                with open(path, "rb") as f:
                    same = f.read() == data
            except OSError:
                same = False
            if not same:
                print("differs: " + os.path.relpath(path, HERE))
                bad += 1
        extra = sorted(set(os.path.join(OUT_DIR, n) for n in os.listdir(OUT_DIR)
                           if n.endswith(".eml")) - set(wanted)) if os.path.isdir(OUT_DIR) else []
        for path in extra:
            print("not generated: " + os.path.relpath(path, HERE))
        return 1 if bad or extra else 0
    if argv[1:]:
        sys.stderr.write("usage: make-clean.py [--check]\n")
        return 2
    os.makedirs(OUT_DIR, exist_ok=True)
    for path, data in sorted(wanted.items()):
        with open(path, "wb") as f:
            f.write(data)
    print("wrote %d messages to %s" % (len(items), os.path.relpath(OUT_DIR)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
