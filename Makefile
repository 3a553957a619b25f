# liblakebase build, install and test entry points. The real work is in cargo and scripts/.
PREFIX     ?= /usr/local
LIBDIR     ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
BINDIR     ?= $(PREFIX)/bin
CARGO      ?= cargo
VERSION    := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
MAJOR      := $(firstword $(subst ., ,$(VERSION)))
LIB        := target/release/liblakebase.so
CFLAGS     ?= -O2 -g -Wall -Wextra -Werror
OBJCOPY    ?= objcopy
# Stripped copies of the library and the command, each with a .debug file beside it that its
# .gnu_debuglink names (what `make install` installs, and what the packages bundle).
STRIPPED   := build/stripped

.PHONY: all build strip dist header check-header install install-debug uninstall examples test demo clean

all: build

build:
	$(CARGO) build --release
	ln -sf liblakebase.so target/release/liblakebase.so.$(MAJOR)

# objcopy as distributions split debug info: keep it in <file>.debug, strip the file, link the two
# (.gnu_debuglink, checked by CRC). gdb finds the .debug file next to the file, in its .debug/
# directory, or under /usr/lib/debug.
strip: build
	mkdir -p $(STRIPPED)
	$(OBJCOPY) --only-keep-debug --compress-debug-sections=zlib $(LIB) $(STRIPPED)/liblakebase.so.$(VERSION).debug
	$(OBJCOPY) --strip-debug --strip-unneeded --remove-section=.comment \
	  --add-gnu-debuglink=$(STRIPPED)/liblakebase.so.$(VERSION).debug $(LIB) $(STRIPPED)/liblakebase.so.$(VERSION)
	ln -sf liblakebase.so.$(VERSION) $(STRIPPED)/liblakebase.so.$(MAJOR)
	$(OBJCOPY) --only-keep-debug --compress-debug-sections=zlib target/release/lakebase $(STRIPPED)/lakebase.debug
	$(OBJCOPY) --strip-all --remove-section=.comment --add-gnu-debuglink=$(STRIPPED)/lakebase.debug \
	  target/release/lakebase $(STRIPPED)/lakebase

# Every package into dist/: the Debian packages liblakebase0, liblakebase-dev and lakebase
# (cargo-deb), the Python wheel, the Ruby gem, the npm package and the Composer archive, each with
# the library inside (scripts/dist.sh; scripts/test-packages.sh installs and tries each).
dist:
	scripts/dist.sh --out dist

header:
	scripts/gen-header.sh

check-header:
	scripts/gen-header.sh --check

examples: build
	mkdir -p build
	$(CC) $(CFLAGS) -Iinclude $$(pkg-config --cflags libpq) examples-c/get_password.c \
	  -Ltarget/release -Wl,-rpath,$(CURDIR)/target/release -llakebase $$(pkg-config --libs libpq) -o build/get_password
	$(CC) $(CFLAGS) -Iinclude $$(pkg-config --cflags libpq) examples-c/connect_loop.c \
	  -Ltarget/release -Wl,-rpath,$(CURDIR)/target/release -llakebase $$(pkg-config --libs libpq) -o build/connect_loop
	$(CC) $(CFLAGS) -Iinclude $$(pkg-config --cflags libpq) examples-c/connect.c \
	  -Ltarget/release -Wl,-rpath,$(CURDIR)/target/release -llakebase $$(pkg-config --libs libpq) -o build/connect
	$(CC) $(CFLAGS) -Iinclude $$(pkg-config --cflags libpq) tests/c/pqconnect.c \
	  -Ltarget/release -Wl,-rpath,$(CURDIR)/target/release -llakebase $$(pkg-config --libs libpq) -o build/pqconnect
	$(CC) $(CFLAGS) -Iinclude tests/c/test_capi.c -Ltarget/release -Wl,-rpath,$(CURDIR)/target/release -llakebase -lpthread -o build/test_capi

# The stripped library and command; `make install-debug` adds their debug info in .debug/ beside
# them. Outside the loader's path (e.g. PREFIX=$$HOME/.local) a program finds the library through
# its rpath (-Wl,-rpath,$(LIBDIR)) or LD_LIBRARY_PATH=$(LIBDIR); pkg-config through
# PKG_CONFIG_PATH=$(LIBDIR)/pkgconfig.
install: strip
	install -d $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(BINDIR)
	install -m 0755 $(STRIPPED)/lakebase $(DESTDIR)$(BINDIR)/lakebase
	install -m 0755 $(STRIPPED)/liblakebase.so.$(VERSION) $(DESTDIR)$(LIBDIR)/liblakebase.so.$(VERSION)
	ln -sf liblakebase.so.$(VERSION) $(DESTDIR)$(LIBDIR)/liblakebase.so.$(MAJOR)
	ln -sf liblakebase.so.$(MAJOR) $(DESTDIR)$(LIBDIR)/liblakebase.so
	install -m 0644 include/lakebase.h $(DESTDIR)$(INCLUDEDIR)/lakebase.h
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|' \
	    -e 's|@VERSION@|$(VERSION)|' lakebase.pc.in > $(DESTDIR)$(LIBDIR)/pkgconfig/lakebase.pc
	-[ -z "$(DESTDIR)" ] && command -v ldconfig >/dev/null && ldconfig 2>/dev/null || true

# Debug info of the installed files, where gdb looks for their .gnu_debuglink: a .debug/ directory
# beside each.
install-debug: strip
	install -d $(DESTDIR)$(LIBDIR)/.debug $(DESTDIR)$(BINDIR)/.debug
	install -m 0644 $(STRIPPED)/liblakebase.so.$(VERSION).debug $(DESTDIR)$(LIBDIR)/.debug/
	install -m 0644 $(STRIPPED)/lakebase.debug $(DESTDIR)$(BINDIR)/.debug/

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/lakebase $(DESTDIR)$(LIBDIR)/liblakebase.so $(DESTDIR)$(LIBDIR)/liblakebase.so.$(MAJOR) \
	      $(DESTDIR)$(LIBDIR)/liblakebase.so.$(VERSION) $(DESTDIR)$(INCLUDEDIR)/lakebase.h \
	      $(DESTDIR)$(LIBDIR)/pkgconfig/lakebase.pc $(DESTDIR)$(LIBDIR)/.debug/liblakebase.so.$(VERSION).debug \
	      $(DESTDIR)$(BINDIR)/.debug/lakebase.debug

test:
	scripts/test.sh

demo:
	scripts/demo.sh

clean:
	$(CARGO) clean
	rm -rf build dist
