#!/usr/bin/python3
# SPDX-License-Identifier: MIT
#
# A small milter for t_milter.sh, on pymilter (Debian's python3-milter,
# libmilter underneath): what a site's own milter does.
#
#   lab_milter.py SOCKET SEEN_FILE
#
# At RCPT time: from a sender no-bob@..., refuses <bob@example.test> with
# its own 550 5.7.1. At the end of every message:
# - adds the header `X-Lab-Milter: seen`;
# - replaces every SPORKWORD in the body by EICAR (so a body that is the
#   EICAR test string with SPORKWORD in its place becomes a virus);
# - by Subject: `lab-reject` is refused with its own 550 5.7.0 reply,
#   `lab-tempfail` with 451 4.7.0, `lab-discard` is discarded, and
#   `lab-quarantine` is put in quarantine with a reason.
# One line per message in SEEN_FILE says what the MTA told it: client
# address, HELO, sender, recipients, Subject, and the headers it saw.
import sys

import Milter

WORD = b"SPORKWORD"
REPLACEMENT = b"EICAR"


class LabMilter(Milter.Base):
    def __init__(self):
        self.client = "?"
        self.helo = "?"
        self.reset()

    def reset(self):
        self.sender = "?"
        self.rcpts = []
        self.subject = ""
        self.names = []
        self.chunks = []

    @Milter.noreply
    def connect(self, hostname, family, hostaddr):
        self.client = hostaddr[0] if hostaddr else "?"
        return Milter.CONTINUE

    @Milter.noreply
    def hello(self, name):
        self.helo = name
        return Milter.CONTINUE

    @Milter.noreply
    def envfrom(self, mailfrom, *params):
        self.reset()
        self.sender = mailfrom
        return Milter.CONTINUE

    def envrcpt(self, to, *params):
        if self.sender.startswith("<no-bob@") and to.lower() == "<bob@example.test>":
            self.setreply("550", "5.7.1", "%s: bob takes no mail from no-bob (lab milter)" % to)
            return Milter.REJECT
        self.rcpts.append(to)
        return Milter.CONTINUE

    @Milter.noreply
    def header(self, name, value):
        self.names.append(name)
        if name.lower() == "subject":
            self.subject = value
        return Milter.CONTINUE

    @Milter.noreply
    def body(self, chunk):
        self.chunks.append(chunk)
        return Milter.CONTINUE

    def eom(self):
        body = b"".join(self.chunks)
        with open(SEEN, "a") as f:
            f.write("client=%s helo=%s from=%s rcpt=%s subject=%s headers=%s body_bytes=%d\n" % (
                self.client, self.helo, self.sender, ",".join(self.rcpts),
                self.subject, ",".join(self.names), len(body)))
        if "lab-reject" in self.subject:
            self.setreply("550", "5.7.0", "Refused by the lab milter")
            return Milter.REJECT
        if "lab-tempfail" in self.subject:
            self.setreply("451", "4.7.0", "Try again, says the lab milter")
            return Milter.TEMPFAIL
        if "lab-discard" in self.subject:
            return Milter.DISCARD
        if "lab-quarantine" in self.subject:
            self.quarantine("held by the lab milter")
        self.addheader("X-Lab-Milter", "seen")
        if WORD in body:
            self.replacebody(body.replace(WORD, REPLACEMENT))
        return Milter.ACCEPT


if __name__ == "__main__":
    SEEN = sys.argv[2]
    Milter.factory = LabMilter
    Milter.set_flags(Milter.ADDHDRS | Milter.CHGBODY | Milter.QUARANTINE)
    Milter.runmilter("labmilter", sys.argv[1], 60)
