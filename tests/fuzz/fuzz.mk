# libFuzzer targets for the parsers that face the network and the config
# file. Included from the Makefile (`include tests/fuzz/fuzz.mk`), or on its
# own: make -f Makefile -f tests/fuzz/fuzz.mk fuzz
#
#   make fuzz-build     build/fuzz/fuzz_{cmd,reply,data,conf,spam}, frame_driver
#   make fuzz           each target FUZZ_SECONDS (default 60) on a copy of
#                       its corpus, a table of executions and crashes, then
#                       the smuggling report; fails on any crash or violation
#   make fuzz-smoke     the same, 10 seconds per target (for make test)
#   make fuzz-smuggle   only the smuggling report
#   make fuzz-replay    the saved inputs in tests/fuzz/crashes/ (fails while
#                       any still crashes)
#
# Needs clang with libFuzzer (Debian 12: clang-14 and libclang-rt-14-dev).
# Only the SMTP syntax modules, the spam engine reply parsers (with
# jansson) and the config parser are linked: no libclamav, no libseccomp (tests/fuzz/stub_scan.c stands in for the one
# symbol policy.c needs from the scanner pool).

FUZZ_CC		?= clang
FUZZ_SECONDS	?= 60
FUZZ_CFLAGS	 = -g -O1 -fno-omit-frame-pointer -std=gnu11 -Wall -Wextra \
		   -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
		   -D_GNU_SOURCE -Isrc -Itests/fuzz
FUZZ_SAN	 = -fsanitize=fuzzer,address,undefined \
		   -fno-sanitize-recover=undefined
FUZZ_LIB	 = src/smtp_proto.c src/smtp_data.c src/buf.c src/conf.c \
		   src/log.c src/sock.c src/policy.c tests/fuzz/stub_scan.c \
		   src/spam_proto.c
FUZZ_LIBS	 = -ljansson -lm
FUZZ_TARGETS	 = fuzz_cmd fuzz_reply fuzz_data fuzz_conf fuzz_spam
FUZZ_BINS	 = $(addprefix build/fuzz/,$(FUZZ_TARGETS))

build/fuzz/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz.h $(FUZZ_LIB) \
    $(wildcard src/*.h)
	@mkdir -p build/fuzz
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(FUZZ_SAN) -o $@ $< $(FUZZ_LIB) $(FUZZ_LIBS)

build/fuzz/frame_driver: tests/fuzz/frame_driver.c src/smtp_data.c \
    src/smtp_data.h
	@mkdir -p build/fuzz
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=address,undefined \
	    -fno-sanitize-recover=undefined -o $@ tests/fuzz/frame_driver.c \
	    src/smtp_data.c

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
