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

.PHONY: all build header check-header install uninstall examples test demo clean

all: build

build:
	$(CARGO) build --release
	ln -sf liblakebase.so target/release/liblakebase.so.$(MAJOR)

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

install: build
	install -d $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(BINDIR)
	install -m 0755 target/release/lakebase $(DESTDIR)$(BINDIR)/lakebase
	install -m 0755 $(LIB) $(DESTDIR)$(LIBDIR)/liblakebase.so.$(VERSION)
	ln -sf liblakebase.so.$(VERSION) $(DESTDIR)$(LIBDIR)/liblakebase.so.$(MAJOR)
	ln -sf liblakebase.so.$(MAJOR) $(DESTDIR)$(LIBDIR)/liblakebase.so
	install -m 0644 include/lakebase.h $(DESTDIR)$(INCLUDEDIR)/lakebase.h
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|' \
	    -e 's|@VERSION@|$(VERSION)|' lakebase.pc.in > $(DESTDIR)$(LIBDIR)/pkgconfig/lakebase.pc
	-[ -z "$(DESTDIR)" ] && command -v ldconfig >/dev/null && ldconfig 2>/dev/null || true

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/lakebase $(DESTDIR)$(LIBDIR)/liblakebase.so $(DESTDIR)$(LIBDIR)/liblakebase.so.$(MAJOR) \
	      $(DESTDIR)$(LIBDIR)/liblakebase.so.$(VERSION) $(DESTDIR)$(INCLUDEDIR)/lakebase.h \
	      $(DESTDIR)$(LIBDIR)/pkgconfig/lakebase.pc

test:
	scripts/test.sh

demo:
	scripts/demo.sh

clean:
	$(CARGO) clean
	rm -rf build
