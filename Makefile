# spork: a transparent intercepting SMTP proxy appliance.
# make            build build/sporkd
# make test       unit tests (also under ASan/UBSan) and the namespace lab
# make test-fresh make test in a fresh Debian 12 root, after only install-deps
# make valgrind   unit tests and a lab scenario under valgrind memcheck
# make install    honours PREFIX and DESTDIR
# make fuzz       each libFuzzer target for FUZZ_SECONDS (default 60)
# make bench      throughput, latency, concurrency and memory figures
# make image      the appliance disk image; make image-test boots it in QEMU

PREFIX	?= /usr/local
SBINDIR	?= $(PREFIX)/sbin
SHAREDIR ?= $(PREFIX)/share/spork
SYSCONFDIR ?= /etc
UNITDIR	?= /lib/systemd/system
SYSUSERSDIR ?= /usr/lib/sysusers.d
MANDIR	?= $(PREFIX)/share/man
MAN5	 = src/man/spork.conf.5
MAN8	 = src/man/sporkd.8 src/man/sporkctl.8 src/man/spork-setup.8 \
	   src/man/spork-console.8

CC	?= cc
PKGS	 = libclamav libseccomp openssl libmnl libnftnl libnetfilter_queue \
	   gmime-3.0 libcares hiredis libmagic libarchive libpcre2-8 jansson \
	   sqlite3
# src/ by layer: base (event loop, buffers, sockets, config, spool,
# sandbox), smtp (the session: syntax, relay, TLS), checks (what a
# message goes through: scan, content, spam, milters, pre-queue), kernel
# (divert, SYN queue), control, icap (the ICAP service for web proxies),
# and one folder per program.
SRCDIRS	 = base smtp checks kernel control icap
INCS	 = $(addprefix -Isrc/,$(SRCDIRS))
CFLAGS	?= -O2 -g
CFLAGS	+= $(INCS) -std=gnu11 -Wall -Wextra -Wshadow -Wstrict-prototypes \
	   -Wmissing-prototypes -Wformat=2 -D_GNU_SOURCE -fstack-protector-strong \
	   -D_FORTIFY_SOURCE=2 $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS	+= $(shell pkg-config --libs $(PKGS) 2>/dev/null)
# libspf2 ships no pkg-config file.
LDLIBS	+= -lspf2
SANFLAGS = -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer \
	   -fno-sanitize-recover=undefined

# Code that knows nothing about a daemon: shared by sporkd and the tests.
LIB_SRC	= src/base/action.c src/base/metrics.c src/base/buf.c src/checks/clamd.c src/base/conf.c src/base/ev.c src/base/log.c src/checks/policy.c src/checks/quarantine.c \
	  src/checks/mime_clean.c src/base/sandbox.c src/checks/scan_engine.c src/checks/scan_pool.c \
	  src/checks/content_rules.c src/checks/content_scan.c src/checks/dlp.c \
	  src/smtp/smtp_data.c src/smtp/smtp_proto.c src/base/sock.c src/base/spool.c src/base/ratelimit.c \
	  src/kernel/nft_divert.c src/kernel/synq.c src/base/cidr.c src/base/dns.c src/checks/greylist.c \
	  src/checks/greylist_redis.c src/checks/spf.c src/checks/prequeue.c src/checks/spam.c \
	  src/checks/spam_policy.c src/checks/spam_proto.c src/base/hostport.c src/base/failover.c \
	  src/checks/farm.c \
	  src/smtp/tls_keys.c src/checks/milter_proto.c src/checks/milter.c \
	  src/control/track.c src/smtp/journal_format.c \
	  src/icap/icap_proto.c
DAEMON_SRC = src/sporkd/sporkd.c src/smtp/accept.c src/smtp/relay.c src/smtp/message_end.c src/checks/checks.c src/base/priv.c src/control/control.c \
	     src/smtp/smtp_client.c src/smtp/journal.c src/checks/notice.c src/kernel/cba.c \
	     src/smtp/tls.c src/smtp/tls_cadigest.c src/smtp/tls_dest.c src/icap/icap.c
HDRS	= $(wildcard src/*/*.h)
UNIT_TESTS = tests/unit/test_smtp_proto.c tests/unit/test_smtp_data.c \
	     tests/unit/test_conf.c tests/unit/test_spool.c tests/unit/test_nft.c \
	     tests/unit/test_sandbox.c tests/unit/test_mime.c tests/unit/test_synq.c \
	     tests/unit/test_prequeue.c tests/unit/test_content.c \
	     tests/unit/test_spam.c tests/unit/test_hostport.c tests/unit/test_tls.c \
	     tests/unit/test_policy.c tests/unit/test_buf.c \
	     tests/unit/test_ratelimit.c tests/unit/test_milter.c \
	     tests/unit/test_track.c tests/unit/test_journal.c \
	     tests/unit/test_icap_proto.c

all: build/sporkd build/sporkctl build/spork-console

build/sporkctl: src/sporkctl/sporkctl.c src/control/track_read.c src/control/track_read.h
	@mkdir -p build
	$(CC) $(CFLAGS) -o $@ src/sporkctl/sporkctl.c src/control/track_read.c $(LDFLAGS) \
	    $(shell pkg-config --libs sqlite3 2>/dev/null)

# The web console: its own process, libmicrohttpd over TLS, reading the
# tracking database and talking to sporkd over the control socket.
CONSOLE_SRC = src/console/console.c src/console/console_http.c \
	      src/console/console_pages.c src/console/console_data.c \
	      src/base/action.c src/base/conf.c src/base/cidr.c src/base/log.c \
	      src/base/buf.c src/base/sock.c src/control/track_read.c
CONSOLE_PKGS = libmicrohttpd sqlite3

build/spork-console: $(CONSOLE_SRC) $(HDRS) $(wildcard src/console/*.h)
	@mkdir -p build
	$(CC) $(CFLAGS) -Isrc/console $(shell pkg-config --cflags $(CONSOLE_PKGS)) \
	    -o $@ $(CONSOLE_SRC) $(LDFLAGS) \
	    $(shell pkg-config --libs $(CONSOLE_PKGS)) -lcrypt -lpthread -lm

build/sporkd: $(LIB_SRC) $(DAEMON_SRC) $(HDRS)
	@mkdir -p build
	$(CC) $(CFLAGS) -o $@ $(LIB_SRC) $(DAEMON_SRC) $(LDFLAGS) $(LDLIBS)

build/asan/sporkd: $(LIB_SRC) $(DAEMON_SRC) $(HDRS)
	@mkdir -p build/asan
	$(CC) $(CFLAGS) $(SANFLAGS) -o $@ $(LIB_SRC) $(DAEMON_SRC) $(LDFLAGS) $(LDLIBS)

# For valgrind: no sanitizers, and no seccomp filters (valgrind cannot run
# them; see src/base/sandbox.c). Used only by `make valgrind`.
VGFLAGS	 = -O1 -g -fno-omit-frame-pointer -DSPORK_VALGRIND

build/valgrind/sporkd: $(LIB_SRC) $(DAEMON_SRC) $(HDRS)
	@mkdir -p build/valgrind
	$(CC) $(CFLAGS) $(VGFLAGS) -o $@ $(LIB_SRC) $(DAEMON_SRC) $(LDFLAGS) $(LDLIBS)

build/valgrind/unit: $(LIB_SRC) $(UNIT_TESTS) tests/unit/unit.h tests/unit/main.c $(HDRS)
	@mkdir -p build/valgrind
	$(CC) $(CFLAGS) $(VGFLAGS) -o $@ tests/unit/main.c $(UNIT_TESTS) $(LIB_SRC) $(LDFLAGS) $(LDLIBS)

build/unit: $(LIB_SRC) $(UNIT_TESTS) tests/unit/unit.h tests/unit/main.c $(HDRS)
	@mkdir -p build
	$(CC) $(CFLAGS) -o $@ tests/unit/main.c $(UNIT_TESTS) $(LIB_SRC) $(LDFLAGS) $(LDLIBS)

build/asan/unit: $(LIB_SRC) $(UNIT_TESTS) tests/unit/unit.h tests/unit/main.c $(HDRS)
	@mkdir -p build/asan
	$(CC) $(CFLAGS) $(SANFLAGS) -o $@ tests/unit/main.c $(UNIT_TESTS) $(LIB_SRC) $(LDFLAGS) $(LDLIBS)

deps:
	scripts/install-deps

# build/sporkctl: test_track runs `sporkctl track` on the database it made.
unit: build/unit build/asan/unit build/sporkctl
	build/unit tests/unit
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 build/asan/unit tests/unit

integration: build/sporkd build/sporkctl build/spork-console build/asan/sporkd \
    build/valgrind/sporkd build/valgrind/unit
	tests/integration/run

# Unit tests and a lab scenario with the real sporkd under valgrind memcheck.
valgrind: build/valgrind/unit build/valgrind/sporkd build/sporkctl
	tests/valgrind/run

test: deps
	$(MAKE) unit
	$(MAKE) man-check
	$(MAKE) fuzz-smoke
	$(MAKE) integration

# A fresh Debian 12 root (mmdebstrap) passes make test after only the
# README's install steps (tests/fresh/README.md).
test-fresh:
	tests/fresh/run

demo: deps build/sporkd
	scripts/spork-lab demo

install: build/sporkd build/sporkctl build/spork-console
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(SHAREDIR)/kmod-free \
	    $(DESTDIR)$(SYSCONFDIR)/spork $(DESTDIR)$(UNITDIR)
	install -m 0755 build/sporkd $(DESTDIR)$(SBINDIR)/sporkd
	install -m 0755 build/sporkctl $(DESTDIR)$(SBINDIR)/sporkctl
	install -m 0755 build/spork-console $(DESTDIR)$(SBINDIR)/spork-console
	install -m 0755 scripts/spork-setup $(DESTDIR)$(SBINDIR)/spork-setup
	install -m 0644 kmod-free/* $(DESTDIR)$(SHAREDIR)/kmod-free/
	chmod 0755 $(DESTDIR)$(SHAREDIR)/kmod-free/probe
	[ -e $(DESTDIR)$(SYSCONFDIR)/spork/spork.conf ] || \
	    install -m 0644 etc/spork.conf $(DESTDIR)$(SYSCONFDIR)/spork/spork.conf
	install -m 0644 etc/content.rules $(DESTDIR)$(SHAREDIR)/content.rules.example
	sed 's,@SBINDIR@,$(SBINDIR),g' etc/sporkd.service > $(DESTDIR)$(UNITDIR)/sporkd.service
	sed 's,@SBINDIR@,$(SBINDIR),g' etc/spork-setup.service > $(DESTDIR)$(UNITDIR)/spork-setup.service
	sed 's,@SBINDIR@,$(SBINDIR),g' etc/spork-console.service > $(DESTDIR)$(UNITDIR)/spork-console.service
	install -d $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8
	install -m 0644 $(MAN5) $(DESTDIR)$(MANDIR)/man5/
	install -m 0644 $(MAN8) $(DESTDIR)$(MANDIR)/man8/
	install -d $(DESTDIR)$(SYSUSERSDIR)
	install -m 0644 etc/spork.sysusers $(DESTDIR)$(SYSUSERSDIR)/spork.conf
	@# On this machine (no DESTDIR): the users spork.conf names, now.
	@if [ -z "$(DESTDIR)" ]; then \
		if command -v systemd-sysusers >/dev/null; then \
			systemd-sysusers $(SYSUSERSDIR)/spork.conf; \
		else \
			echo "install: create the users spork and spork-scan" \
			    "($(SYSUSERSDIR)/spork.conf): no systemd-sysusers"; \
		fi; \
	fi

# The man pages: mandoc -T lint clean, and every key of src/base/conf.c
# in spork.conf(5) and etc/spork.conf with the same default.
man-check:
	tests/man/run

clean:
	rm -rf build

.PHONY: all deps unit integration valgrind test test-fresh demo install \
	man-check clean

include tests/fuzz/fuzz.mk
-include tests/bench/bench.mk
-include image/image.mk
