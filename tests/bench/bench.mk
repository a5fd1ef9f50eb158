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

bench: build/sporkd build/bench/smtpload
	tests/bench/run

.PHONY: bench
