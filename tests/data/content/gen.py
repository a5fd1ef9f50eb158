#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Writes the content policy's input corpus (NAME.in, CRLF line ends).
# The expected outputs (NAME.ref) come from tests/unit/test_content.c with
# SPORK_UPDATE_GOLDEN=1 and are reviewed by hand.
import base64, io, quopri, zipfile

# A minimal DOS executable header: what libmagic calls application/x-dosexec.
EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + \
      b"\xb8" + b"\x00" * 47 + b"\x80\x00\x00\x00" + b"\x00" * 64 + \
      b"PE\x00\x00L\x01\x03\x00" + b"\x00" * 120


def crlf(s):
    return s.replace("\r\n", "\n").replace("\n", "\r\n").encode()


def b64(data):
    e = base64.b64encode(data).decode()
    return "\n".join(e[i:i + 76] for i in range(0, len(e), 76)) + "\n"


def zipped(entries):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in entries:
            zi = zipfile.ZipInfo(name, date_time=(2026, 1, 2, 3, 4, 6))
            z.writestr(zi, data)
    return buf.getvalue()


HEAD = """Received: from client.example (client.example [192.0.2.10])
\tby mx.example with ESMTP; Fri, 27 Nov 2026 06:00:00 +0000
From: Alice <alice@example.org>
To: Bob <bob@example.net>
Date: Fri, 27 Nov 2026 06:00:00 +0000
"""

files = {}

files["card"] = HEAD + """Subject: the order
Message-ID: <card-1@example.org>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="b1"

--b1
Content-Type: multipart/alternative; boundary="b2"

--b2
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: quoted-printable

Hi Bob,=20
please charge 4111 1111 1111 1111 (exp 12/29) for the caf=C3=A9 order.
Not a card: 4111 1111 1111 1112, nor order 1234567890123.
--b2
Content-Type: text/html; charset=utf-8
Content-Transfer-Encoding: base64

""" + b64("<html><body><p>Card: <b>5555-5555-5555-4444</b></p></body></html>\r\n".encode()) + """--b2--

--b1
Content-Type: text/csv; name="q.csv"
Content-Disposition: attachment; filename="q.csv"

q,revenue
1,100
2,120
--b1--
"""

files["exe-renamed"] = HEAD + """Subject: the report
Message-ID: <exe-1@example.org>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="xx"

--xx
Content-Type: text/plain; charset=us-ascii

The report is attached.
--xx
Content-Type: text/plain; name="report.txt"
Content-Disposition: attachment; filename="report.txt"
Content-Transfer-Encoding: base64

""" + b64(EXE) + """--xx
Content-Type: application/pdf; name="real.pdf"
Content-Disposition: attachment; filename="real.pdf"
Content-Transfer-Encoding: base64

""" + b64(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\ntrailer\n<<>>\n%%EOF\n") + """--xx--
"""

inner = zipped([("tools/tool.scr", EXE)])
files["zip-exe"] = HEAD + """Subject: setup
Message-ID: <zip-1@example.org>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="zz"

--zz
Content-Type: text/plain; charset=us-ascii

Unpack and run.
--zz
Content-Type: application/zip; name="setup.zip"
Content-Disposition: attachment; filename="setup.zip"
Content-Transfer-Encoding: base64

""" + b64(zipped([("readme.txt", b"hello\n"), ("bin/setup.exe", EXE),
                  ("more.zip", inner)])) + """--zz--
"""

files["footer"] = HEAD + """Subject: lunch
Message-ID: <footer-1@example.org>
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary="alt"

--alt
Content-Type: text/plain; charset=iso-8859-1
Content-Transfer-Encoding: quoted-printable

Caf=E9 at noon?
--alt
Content-Type: text/html; charset=utf-8
Content-Transfer-Encoding: base64

""" + b64("<html><body><p>Café at noon?</p></body></html>\r\n".encode()) + """--alt--
"""

files["dkim-subject"] = """DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=example.org;
\ts=test; h=from:to:subject:date:message-id; bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=;
\tb=AAAA
""" + HEAD + """Subject: =?utf-8?q?caf=C3=A9?= offer
Message-ID: <dkim-1@example.org>
X-Old: replace me
MIME-Version: 1.0
Content-Type: text/plain; charset=us-ascii

Cheap watches.
"""

files["dlp-mix"] = HEAD + """Subject: details
Message-ID: <dlp-1@example.org>
MIME-Version: 1.0
Content-Type: text/plain; charset=us-ascii

IBAN: DE89 3704 0044 0532 0130 00, and compact GB82WEST12345698765432.
Wrong check digits: DE88 3704 0044 0532 0130 00.
SSN 123-45-6789; not an SSN: 666-12-3456, 078-05-1120, 123-45-67890.
Project BLUEBIRD is secret.
"""

files["utf16"] = HEAD + """Subject: wide
Message-ID: <utf16-1@example.org>
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-16le
Content-Transfer-Encoding: base64

""" + b64("Card 4012888888881881 here.\r\n".encode("utf-16le")) + ""

for name, text in files.items():
    with open(name + ".in", "wb") as f:
        f.write(crlf(text))
