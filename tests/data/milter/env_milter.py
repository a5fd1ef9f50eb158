#!/usr/bin/python3
# SPDX-License-Identifier: MIT
#
# A milter for t_milter.sh that changes the envelope, on pymilter
# (Debian's python3-milter, libmilter underneath):
#
#   env_milter.py SOCKET
#
# At the end of each message, by the words in its Subject:
#   env-add        adds <bob@example.test> (SMFIR_ADDRCPT)
#   env-addpar     adds <bob@example.test> with NOTIFY=NEVER
#                  (SMFIR_ADDRCPT_PAR)
#   env-del        deletes <bob@example.test> (SMFIR_DELRCPT), in another
#                  case than the client wrote it
#   env-from       changes the sender to <changed@client.example.test>
#                  (SMFIR_CHGFROM)
#   env-frompar    the same, with the ESMTP parameter BODY=8BITMIME
#   env-refused    adds <nobody@example.test>, whom the server refuses
# and accepts the message, with the header `X-Env-Milter: seen`.
import sys

import Milter

BOB = "<bob@example.test>"


class EnvMilter(Milter.Base):
    def __init__(self):
        self.subject = ""

    @Milter.noreply
    def envfrom(self, mailfrom, *params):
        self.subject = ""
        return Milter.CONTINUE

    @Milter.noreply
    def header(self, name, value):
        if name.lower() == "subject":
            self.subject = value
        return Milter.CONTINUE

    def eom(self):
        s = self.subject
        if "env-addpar" in s:
            self.addrcpt(BOB, "NOTIFY=NEVER")
        elif "env-add" in s:
            self.addrcpt(BOB)
        if "env-del" in s:
            self.delrcpt("<Bob@Example.TEST>")
        if "env-frompar" in s:
            self.chgfrom("<changed@client.example.test>", "BODY=8BITMIME")
        elif "env-from" in s:
            self.chgfrom("<changed@client.example.test>")
        if "env-refused" in s:
            self.addrcpt("<nobody@example.test>")
        self.addheader("X-Env-Milter", "seen")
        return Milter.ACCEPT


if __name__ == "__main__":
    Milter.factory = EnvMilter
    Milter.set_flags(Milter.ADDHDRS | Milter.ADDRCPT | Milter.ADDRCPT_PAR |
                     Milter.DELRCPT | Milter.CHGFROM)
    Milter.runmilter("envmilter", sys.argv[1], 60)
