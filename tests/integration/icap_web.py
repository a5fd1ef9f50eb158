#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The web server of t_icap.sh: the origin behind the lab's Squid.

    icap_web.py ADDR PORT DIR

GET and HEAD serve the files in DIR (http.server's own handler). POST and
PUT store the request body as DIR/uploads/NAME (NAME: the last part of the
path) and answer 201 with the body's SHA-256, so the test can tell which
uploads reached the origin and whether they arrived byte for byte. One log
line per request on stderr.
"""

import hashlib
import http.server
import os
import sys


class Handler(http.server.SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        name = os.path.basename(self.path.split("?", 1)[0]) or "upload"
        length = self.headers.get("Content-Length")
        if length is None:
            # Squid forwards what an ICAP service returned chunked.
            data = self.read_chunked()
        else:
            data = self.rfile.read(int(length))
        updir = os.path.join(self.directory, "uploads")
        os.makedirs(updir, exist_ok=True)
        with open(os.path.join(updir, name), "wb") as f:
            f.write(data)
        body = (hashlib.sha256(data).hexdigest() + "\n").encode()
        self.send_response(201)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_PUT = do_POST

    def read_chunked(self):
        data = bytearray()
        while True:
            size = int(self.rfile.readline().split(b";", 1)[0], 16)
            if size == 0:
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                return bytes(data)
            data += self.rfile.read(size)
            self.rfile.readline()


def main():
    addr, port, root = sys.argv[1], int(sys.argv[2]), sys.argv[3]

    def handler(*a, **kw):
        return Handler(*a, directory=root, **kw)

    srv = http.server.ThreadingHTTPServer((addr, port), handler)
    srv.daemon_threads = True
    srv.serve_forever()


if __name__ == "__main__":
    main()
