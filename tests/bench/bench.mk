# SPDX-License-Identifier: MIT
# The benchmark, included from the top-level Makefile:
#	make bench	lab benchmark of sporkd (root, ~14 minutes); results in
#			tests/bench/results/latest.{txt,png}
# See tests/bench/README.md.

BENCH_CFLAGS ?= -O2 -g -std=gnu11 -Wall -Wextra -D_GNU_SOURCE

BENCH_LDLIBS ?= -lssl -lcrypto

build/bench/smtpload: tests/bench/smtpload.c
	@mkdir -p build/bench
	$(CC) $(BENCH_CFLAGS) -o $@ tests/bench/smtpload.c $(BENCH_LDLIBS)

# The ICAP client of section 9 (see tests/bench/icapload.c).
build/bench/icapload: tests/bench/icapload.c
	@mkdir -p build/bench
	$(CC) $(BENCH_CFLAGS) -o $@ tests/bench/icapload.c

# The scan-only bound of section 2: sporkd's scan engine, forked, without
# SMTP (see tests/bench/scanbound.c).
build/bench/scanbound: tests/bench/scanbound.c src/checks/scan_engine.c \
		src/checks/scan_engine.h src/base/log.c
	@mkdir -p build/bench
	$(CC) $(BENCH_CFLAGS) -Isrc/base -Isrc/checks -Isrc/smtp \
		$$(pkg-config --cflags libclamav) -o $@ tests/bench/scanbound.c \
		src/checks/scan_engine.c src/base/log.c \
		$$(pkg-config --libs libclamav)

# Tracking's cost without SMTP: track.c fed section 7's records (see
# tests/bench/trackbench.c). Not part of `make bench`.
build/bench/trackbench: tests/bench/trackbench.c src/control/track.c \
		src/control/track.h src/base/log.c src/base/buf.c
	@mkdir -p build/bench
	$(CC) $(BENCH_CFLAGS) -pthread -Isrc/base -Isrc/control -Isrc/smtp \
		-o $@ tests/bench/trackbench.c src/control/track.c \
		src/base/log.c src/base/buf.c -lm $$(pkg-config --libs sqlite3)

bench: build/sporkd build/bench/smtpload build/bench/scanbound \
		build/bench/icapload
	tests/bench/run

.PHONY: bench
