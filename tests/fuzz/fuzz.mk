# libFuzzer targets for the parsers that face the network and the config
# file. Included from the Makefile (`include tests/fuzz/fuzz.mk`), or on its
# own: make -f Makefile -f tests/fuzz/fuzz.mk fuzz
#
#   make fuzz-build     build/fuzz/fuzz_{cmd,reply,data,conf,mime,content,
#                       spam,session,milter,track,header,console,icap},
#                       frame_driver
#   make fuzz           each target FUZZ_SECONDS (default 60) on a copy of
#                       its corpus, a table of executions and crashes, then
#                       the smuggling report; fails on any crash or violation
#   make fuzz-smoke     the same, 10 seconds per target (for make test)
#   make fuzz-smuggle   only the smuggling report
#   make fuzz-replay    the saved inputs in tests/fuzz/crashes/ (fails while
#                       any still crashes)
#
# Needs clang with libFuzzer (Debian 12: clang-14 and libclang-rt-14-dev).
# The parser targets link only the SMTP syntax modules, the spam engine
# reply parsers (with jansson) and the config parser; fuzz_session adds the
# relay and the event loop; fuzz_mime and fuzz_content link the MIME work
# with what the scan worker links for it (GMime; libmagic, libarchive and
# PCRE2). No libclamav (tests/fuzz/stub_scan.c stands in for the symbols
# policy.c needs from the scanner pool and the content rules).

FUZZ_CC		?= clang
FUZZ_SECONDS	?= 60
FUZZ_CFLAGS	 = -g -O1 -fno-omit-frame-pointer -std=gnu11 -Wall -Wextra \
		   -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
		   -D_GNU_SOURCE $(addprefix -Isrc/,base smtp checks kernel control icap) \
		   -Itests/fuzz
FUZZ_SAN	 = -fsanitize=fuzzer,address,undefined \
		   -fno-sanitize-recover=undefined
FUZZ_LIB	 = src/smtp/smtp_proto.c src/smtp/smtp_data.c src/base/action.c src/base/buf.c src/base/conf.c \
		   src/base/log.c src/base/sock.c src/checks/policy.c src/base/cidr.c tests/fuzz/stub_scan.c \
		   src/checks/spam_proto.c src/checks/milter_proto.c
FUZZ_LIBS	 = -ljansson -lm
# The whole-session target links the relay and the event loop too, with
# what relay.c reaches (no libclamav: tests/fuzz/stub_scan.c scans).
FUZZ_SESSION_SRC = src/smtp/relay.c src/smtp/message_end.c src/base/metrics.c src/control/track.c src/checks/checks.c src/checks/milter.c src/base/ev.c src/base/spool.c src/checks/quarantine.c \
		   src/base/ratelimit.c src/kernel/nft_divert.c src/smtp/tls.c src/smtp/tls_cadigest.c src/checks/notice.c \
		   src/smtp/smtp_client.c src/kernel/cba.c src/kernel/synq.c src/checks/prequeue.c \
		   src/base/dns.c src/checks/greylist.c src/checks/greylist_redis.c src/checks/spf.c \
		   src/base/sandbox.c src/checks/spam.c src/checks/spam_policy.c src/base/hostport.c \
		   src/base/failover.c src/checks/farm.c src/smtp/tls_keys.c src/smtp/tls_dest.c \
		   src/smtp/journal.c src/smtp/journal_format.c tests/fuzz/stub_session.c
FUZZ_SESSION_LIBS = $(shell pkg-config --libs openssl libmnl libnftnl \
		   libnetfilter_queue libcares hiredis libseccomp sqlite3 2>/dev/null) \
		   -lspf2 $(FUZZ_LIBS)
FUZZ_TARGETS	 = fuzz_cmd fuzz_reply fuzz_data fuzz_conf fuzz_mime fuzz_content fuzz_spam fuzz_session fuzz_milter \
		   fuzz_track fuzz_header fuzz_console fuzz_icap
FUZZ_BINS	 = $(addprefix build/fuzz/,$(FUZZ_TARGETS))

build/fuzz/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz.h $(FUZZ_LIB) \
    $(wildcard src/*/*.h)
	@mkdir -p build/fuzz
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(FUZZ_SAN) -o $@ $< $(FUZZ_LIB) $(FUZZ_LIBS)

# The clean policy's MIME rewriting links GMime, nothing else.
build/fuzz/fuzz_mime: tests/fuzz/fuzz_mime.c tests/fuzz/fuzz.h \
    src/checks/mime_clean.c src/checks/mime_clean.h
	@mkdir -p build/fuzz
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(FUZZ_SAN) \
	    $(shell pkg-config --cflags gmime-3.0) -o $@ \
	    tests/fuzz/fuzz_mime.c src/checks/mime_clean.c \
	    $(shell pkg-config --libs gmime-3.0)

build/fuzz/fuzz_session: tests/fuzz/fuzz_session.c tests/fuzz/fuzz.h \
    $(FUZZ_LIB) $(FUZZ_SESSION_SRC) $(wildcard src/*/*.h)
	@mkdir -p build/fuzz
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(FUZZ_SAN) -o $@ $< $(FUZZ_LIB) \
	    $(FUZZ_SESSION_SRC) $(FUZZ_SESSION_LIBS)

# The content policy's rewriter links what the scan worker links for it.
CONTENT_PKGS	 = gmime-3.0 libmagic libarchive libpcre2-8
build/fuzz/fuzz_content: tests/fuzz/fuzz_content.c tests/fuzz/fuzz.h \
    src/checks/content_scan.c src/checks/content_rules.c src/checks/dlp.c src/checks/mime_clean.c \
    src/base/log.c src/base/buf.c src/base/action.c $(wildcard src/*/*.h)
	@mkdir -p build/fuzz
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(shell pkg-config --cflags $(CONTENT_PKGS)) \
	    $(FUZZ_SAN) -o $@ $< src/checks/content_scan.c src/checks/content_rules.c \
	    src/checks/dlp.c src/checks/mime_clean.c src/base/log.c src/base/buf.c \
	    src/base/action.c \
	    $(shell pkg-config --libs $(CONTENT_PKGS))

# The tracking record's JSON line: track.c with what it links (SQLite for
# its writer, which the target never starts; log.c, buf.c).
FUZZ_TRACK_SRC	 = src/control/track.c src/base/buf.c src/base/log.c
build/fuzz/fuzz_track: tests/fuzz/fuzz_track.c tests/fuzz/fuzz.h \
    $(FUZZ_TRACK_SRC) $(wildcard src/*/*.h)
	@mkdir -p build/fuzz
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(FUZZ_SAN) -o $@ $< $(FUZZ_TRACK_SRC) \
	    $(shell pkg-config --libs sqlite3) -ljansson -lm -lpthread

# Message-ID and Subject from a message's head: message_end.c and what it
# links for the record and the metrics.
FUZZ_HEADER_SRC	 = src/smtp/message_end.c src/base/metrics.c $(FUZZ_TRACK_SRC) \
		   src/base/action.c src/base/sock.c src/base/cidr.c src/base/spool.c
build/fuzz/fuzz_header: tests/fuzz/fuzz_header.c tests/fuzz/fuzz.h \
    $(FUZZ_HEADER_SRC) $(wildcard src/*/*.h)
	@mkdir -p build/fuzz
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(FUZZ_SAN) -o $@ $< $(FUZZ_HEADER_SRC) \
	    $(shell pkg-config --libs sqlite3) -lm -lpthread

# The web console's request words: its files but console.c (main; the
# target defines console_conf), with libmicrohttpd and SQLite.
FUZZ_CONSOLE_SRC = src/console/console_http.c src/console/console_pages.c \
		   src/console/console_data.c src/base/cidr.c src/base/log.c \
		   src/control/track_read.c
build/fuzz/fuzz_console: tests/fuzz/fuzz_console.c tests/fuzz/fuzz.h \
    $(FUZZ_CONSOLE_SRC) $(wildcard src/*/*.h)
	@mkdir -p build/fuzz
	$(FUZZ_CC) $(FUZZ_CFLAGS) -Isrc/console \
	    $(shell pkg-config --cflags libmicrohttpd sqlite3) $(FUZZ_SAN) \
	    -o $@ $< $(FUZZ_CONSOLE_SRC) \
	    $(shell pkg-config --libs libmicrohttpd sqlite3) -lcrypt -lpthread -lm

# The ICAP parser (head, HTTP heads, chunked body): icap_proto.c alone.
build/fuzz/fuzz_icap: tests/fuzz/fuzz_icap.c tests/fuzz/fuzz.h \
    src/icap/icap_proto.c src/icap/icap_proto.h
	@mkdir -p build/fuzz
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(FUZZ_SAN) -o $@ $< src/icap/icap_proto.c

build/fuzz/frame_driver: tests/fuzz/frame_driver.c src/smtp/smtp_data.c \
    src/smtp/smtp_data.h
	@mkdir -p build/fuzz
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=address,undefined \
	    -fno-sanitize-recover=undefined -o $@ tests/fuzz/frame_driver.c \
	    src/smtp/smtp_data.c

fuzz-build: $(FUZZ_BINS) build/fuzz/frame_driver

fuzz: fuzz-build
	@rc=0; FUZZ_SECONDS=$(FUZZ_SECONDS) tests/fuzz/run $(FUZZ_TARGETS) || rc=1; \
	tests/fuzz/smuggle-report.py || rc=1; exit $$rc

fuzz-smoke: fuzz-build
	@rc=0; FUZZ_SECONDS=10 tests/fuzz/run $(FUZZ_TARGETS) || rc=1; \
	tests/fuzz/smuggle-report.py || rc=1; exit $$rc

fuzz-smuggle: build/fuzz/frame_driver
	tests/fuzz/smuggle-report.py

fuzz-replay: $(FUZZ_BINS)
	tests/fuzz/run replay $(FUZZ_TARGETS)

.PHONY: fuzz-build fuzz fuzz-smoke fuzz-smuggle fuzz-replay
