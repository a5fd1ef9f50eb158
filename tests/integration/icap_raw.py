#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Sends raw bytes to an ICAP service and reports what came back.

    icap_raw.py [-b SOURCE_ADDR] HOST PORT SECONDS <request

Sends stdin as it is, then reads until the service closes the connection
or SECONDS pass. What arrived goes to stdout. Exit status: 0 the service
closed the connection (EOF or reset), 2 it was still open after SECONDS,
1 the connection could not be made.
"""

import socket
import sys
import time


def main():
    args = sys.argv[1:]
    src = None
    if args[:1] == ["-b"]:
        src, args = args[1], args[2:]
    host, port, seconds = args[0], int(args[1]), float(args[2])
    req = sys.stdin.buffer.read()
    try:
        s = socket.create_connection((host, port), timeout=seconds,
                                     source_address=(src, 0) if src else None)
    except OSError as e:
        print(f"icap_raw: connect: {e}", file=sys.stderr)
        return 1
    got = bytearray()
    closed = False
    deadline = time.monotonic() + seconds
    try:
        s.sendall(req)
    except OSError:
        pass  # closed before all was sent: read what it said
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        s.settimeout(left)
        try:
            b = s.recv(65536)
        except socket.timeout:
            break
        except OSError:
            closed = True
            break
        if not b:
            closed = True
            break
        got += b
    sys.stdout.buffer.write(bytes(got))
    return 0 if closed else 2


if __name__ == "__main__":
    sys.exit(main())
