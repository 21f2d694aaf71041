# vmsnap: Kconfig-configured, static musl build of build/vmsnap, the test
# guest, unit and integration tests. `make help` lists the targets.

O        := build
DL       := dl
KCONFIG_CONFIG ?= .config
BOARD    ?= pc-x86_64
export KCONFIG_CONFIG

# Configuration: a fresh tree gets the default board's. make remakes the
# included .config first (see the rules below), then reads it.
-include $(KCONFIG_CONFIG)
unquote = $(patsubst "%",%,$(1))
CROSS_COMPILE := $(call unquote,$(CONFIG_CROSS_COMPILE))

# Target toolchain: musl, static. A cross prefix uses that gcc with the
# matching musl specs file (Debian's musl-dev:<arch>).
ifeq ($(CROSS_COMPILE),)
CC       := musl-gcc
else
MUSL_SPECS := /usr/lib/$(patsubst %-linux-gnu-,%,$(CROSS_COMPILE))-linux-musl/musl-gcc.specs
CC       := $(CROSS_COMPILE)gcc -specs $(MUSL_SPECS)
endif
STRIP    := $(CROSS_COMPILE)strip
HOSTCC   ?= gcc

VERSION  := $(shell git describe --always --dirty 2>/dev/null || echo dev)

MBEDTLS_FILES := asn1parse asn1write base64 bignum bignum_core constant_time ecdsa ecp \
	ecp_curves entropy entropy_poll hmac_drbg md oid pem pk pk_ecc pk_wrap pkparse pkwrite \
	platform_util sha256
THIRD_SRC := $(MBEDTLS_FILES:%=$(DL)/mbedtls/library/%.c) $(DL)/cjson/cJSON.c $(DL)/inih/ini.c

# A feature switched off leaves its files out of the build (obj-$(CONFIG_X)).
off = $(if $(filter y,$(CONFIG_$(1))),,$(2))
SRC_OFF := $(call off,SIGNING,src/sign.c) \
	$(call off,CONSOLE,src/cmd/console.c src/console_io.c src/console_run.c src/console_allow.c) \
	$(call off,WATCH,src/cmd/watch.c src/cmd/resume.c src/fleet.c) \
	$(call off,PROVISION,src/cmd/provision.c src/copy.c) \
	$(if $(filter y,$(CONFIG_SHA256_PORTABLE)),src/sha256_accel.c src/sha256_portable.c)
SRC := $(filter-out $(SRC_OFF),$(wildcard src/*.c src/cmd/*.c))
LIB_SRC := $(filter-out src/main.c src/cmd/%,$(SRC))

INCLUDES := -I$(O)/include -Isrc -I$(DL)/mbedtls/include -I$(DL)/cjson -I$(DL)/inih
DEFS := -D_GNU_SOURCE -DMBEDTLS_CONFIG_FILE='"vmsnap_mbedtls.h"' -DVMSNAP_VERSION='"$(VERSION)"' \
	-DINI_HANDLER_LINENO=1 -DINI_ALLOW_MULTILINE=0 -DINI_INLINE_COMMENT_PREFIXES='"\#"' \
	-DINI_MAX_LINE=1024 -DINI_STOP_ON_FIRST_ERROR=1
WARN := -Wall -Wextra -Wno-unused-parameter
CFLAGS := -std=gnu11 -Os -ffunction-sections -fdata-sections $(WARN) $(DEFS) $(INCLUDES)
LDFLAGS := -static -Wl,--gc-sections

# Host build of the same sources for unit tests, sanitizers and valgrind.
# SANITIZE=1 (ASan+UBSan) builds into directories of its own, so sanitized
# and plain objects never mix and valgrind always has the plain binary.
HOST_CFLAGS := -std=gnu11 -g -O1 $(WARN) $(DEFS) $(INCLUDES)
ifeq ($(SANITIZE),1)
HOST_O   := $(O)/host-san
UNIT_O   := $(O)/unit-san
HOST_CFLAGS += -fsanitize=address,undefined,float-cast-overflow -fno-omit-frame-pointer \
	-fno-sanitize-recover=all
HOST_LDFLAGS += -fsanitize=address,undefined,float-cast-overflow
else
HOST_O   := $(O)/host
UNIT_O   := $(O)/unit
endif

obj   = $(patsubst %.c,$(O)/target/%.o,$(patsubst $(DL)/%,third/%,$(1)))
hobj  = $(patsubst %.c,$(HOST_O)/%.o,$(patsubst $(DL)/%,third/%,$(1)))

TARGET_OBJS := $(call obj,$(SRC) $(THIRD_SRC))
HOST_LIB_OBJS := $(call hobj,$(LIB_SRC) $(THIRD_SRC))

.PHONY: all defconfig %_defconfig menuconfig savedefconfig olddefconfig size clean distclean \
	deps check unit integration demo guest help bench rootfs fuzz fuzz-build
.DEFAULT_GOAL := all

all: $(O)/vmsnap guest

ifeq ($(wildcard $(KCONFIG_CONFIG)),)
$(KCONFIG_CONFIG):
	@echo "no $(KCONFIG_CONFIG): using board/$(BOARD)/defconfig"
	@kconfig-conf --defconfig=board/$(BOARD)/defconfig Kconfig >/dev/null
else
# New symbols in Kconfig get their defaults; make then re-reads the result.
$(KCONFIG_CONFIG): Kconfig
	@kconfig-conf --olddefconfig Kconfig >/dev/null
endif

defconfig: $(BOARD)_defconfig
%_defconfig: board/%/defconfig
	kconfig-conf --defconfig=$< Kconfig >/dev/null
	@echo "configured for board $*"
menuconfig:
	kconfig-mconf Kconfig
olddefconfig:
	kconfig-conf --olddefconfig Kconfig >/dev/null
savedefconfig: $(KCONFIG_CONFIG)
	kconfig-conf --savedefconfig=defconfig Kconfig
	@echo "wrote ./defconfig (copy it to board/<board>/defconfig)"

# Every object needs it, so the third-party sources (and their headers) are
# fetched before the first compile.
$(O)/include/config.h: $(KCONFIG_CONFIG) Kconfig scripts/kconfig-header | $(THIRD_SRC)
	@mkdir -p $(@D)
	scripts/kconfig-header Kconfig $(KCONFIG_CONFIG) > $@.tmp && mv $@.tmp $@

# Third-party sources are fetched, never committed.
$(THIRD_SRC):
	scripts/bootstrap

$(O)/target/%.o: %.c $(O)/include/config.h
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -MMD -c $< -o $@
$(O)/target/third/%.o: $(DL)/%.c $(O)/include/config.h
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -w -c $< -o $@
$(HOST_O)/%.o: %.c $(O)/include/config.h
	@mkdir -p $(@D)
	$(HOSTCC) $(HOST_CFLAGS) -MMD -c $< -o $@
$(HOST_O)/third/%.o: $(DL)/%.c $(O)/include/config.h
	@mkdir -p $(@D)
	$(HOSTCC) $(HOST_CFLAGS) -w -c $< -o $@

$(O)/vmsnap.unstripped: $(TARGET_OBJS)
	$(CC) $(LDFLAGS) -o $@ $^
$(O)/vmsnap: $(O)/vmsnap.unstripped
	$(STRIP) -o $@ $<

size: $(O)/vmsnap
	@stat -c '%s bytes  $(O)/vmsnap' $(O)/vmsnap

# The host build of the vmsnap binary: for valgrind and sanitizer runs.
$(HOST_O)/vmsnap: $(call hobj,$(SRC) $(THIRD_SRC))
	$(HOSTCC) $(HOST_LDFLAGS) -pthread -o $@ $^

guest:
	@$(MAKE) -s --no-print-directory -C tests/guest O=$(abspath $(O)/guest) CC=$(HOSTCC)

# Unit tests: host compiler, cmocka, one binary per tests/unit/test_*.c.
UNIT_SRC := $(filter-out $(call off,CONSOLE,tests/unit/test_console_io.c),$(wildcard tests/unit/test_*.c))
UNIT_BIN := $(patsubst tests/unit/%.c,$(UNIT_O)/%,$(UNIT_SRC))
$(UNIT_O)/%: tests/unit/%.c tests/unit/helpers.h $(HOST_LIB_OBJS)
	@mkdir -p $(@D)
	$(HOSTCC) $(HOST_CFLAGS) $(HOST_LDFLAGS) -Itests/unit -o $@ $< $(HOST_LIB_OBJS) -lcmocka -pthread

deps:
	@scripts/bootstrap

# The corpus replay test runs the fuzz targets' code on the committed seeds.
$(UNIT_O)/test_fuzz_corpus: $(wildcard tests/fuzz/fuzz_*.c)

# The README's test command: installs what is missing, builds, runs all.
# SANITIZE=1: unit tests and the vmsnap the integration tests run are
# ASan+UBSan builds; the valgrind test always uses the plain host build.
check: deps
	@$(MAKE) --no-print-directory all $(UNIT_BIN) $(HOST_O)/vmsnap
	@$(if $(filter 1,$(SANITIZE)),$(MAKE) --no-print-directory SANITIZE= $(O)/host/vmsnap)
	@tests/run $(if $(filter 1,$(SANITIZE)),--sanitize)

unit: $(UNIT_BIN)
	@tests/run --unit-only $(if $(filter 1,$(SANITIZE)),--sanitize)

# libFuzzer targets (clang, ASan+UBSan) over the host sources, one per
# tests/fuzz/fuzz_<target>.c; `make fuzz` runs each FUZZ_TIME seconds from
# the seeds in tests/fuzz/corpus/<target>/ (tests/fuzz/seed.sh makes them).
FUZZ_CC      ?= clang
FUZZ_TIME    ?= 60
FUZZ_TARGETS := header conf vmdef qmp
FUZZ_O       := $(O)/fuzz
FUZZ_CFLAGS  := -std=gnu11 -g -O1 -fno-omit-frame-pointer -fsanitize=address,undefined \
	-fno-sanitize-recover=undefined $(WARN) $(DEFS) $(INCLUDES)
fobj = $(patsubst %.c,$(FUZZ_O)/%.o,$(patsubst $(DL)/%,third/%,$(1)))
FUZZ_LIB_OBJS := $(call fobj,$(LIB_SRC) $(THIRD_SRC))
FUZZ_BIN := $(FUZZ_TARGETS:%=$(FUZZ_O)/fuzz_%)
# Coverage for our code and the parsers (cJSON, inih); mbedtls only checked.
$(FUZZ_O)/%.o: %.c $(O)/include/config.h
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -MMD -c $< -o $@
$(FUZZ_O)/third/%.o: $(DL)/%.c $(O)/include/config.h
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(if $(findstring mbedtls,$<),,-fsanitize=fuzzer-no-link) -w -c $< -o $@
$(FUZZ_O)/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_LIB_OBJS)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_LIB_OBJS) -pthread

# Objects only a pattern rule names are intermediate to make: keep them, so
# that a second `make fuzz` does not rebuild them all.
.SECONDARY: $(FUZZ_LIB_OBJS)
fuzz-build: $(FUZZ_BIN)
fuzz: deps
	@$(MAKE) --no-print-directory fuzz-build
	@tests/fuzz/run $(FUZZ_TIME) $(FUZZ_TARGETS)

# The README's demo: installs what is missing, builds, saves and restores the test guest.
demo: deps
	@$(MAKE) --no-print-directory all
	@scripts/demo

# The files an image builder lays over its root file system: the binary,
# rootfs-overlay/, then the board's overlay; a post-build.sh runs last.
BOARD_NAME := $(call unquote,$(CONFIG_BOARD))
rootfs: $(O)/vmsnap
	rm -rf $(O)/rootfs && mkdir -p $(O)/rootfs/usr/bin
	cp $(O)/vmsnap $(O)/rootfs/usr/bin/vmsnap
	cp -a rootfs-overlay/. $(O)/rootfs/
	if [ -d board/$(BOARD_NAME)/overlay ]; then cp -a board/$(BOARD_NAME)/overlay/. $(O)/rootfs/; fi
	find $(O)/rootfs -name .keep -delete
	rm -f $(O)/rootfs/README.md
	if [ -x board/$(BOARD_NAME)/post-build.sh ]; then board/$(BOARD_NAME)/post-build.sh $(O)/rootfs; fi
	tar -C $(O)/rootfs --owner=0 --group=0 -czf $(O)/vmsnap-rootfs-$(BOARD_NAME).tar.gz .
	@echo "staged $(O)/rootfs and $(O)/vmsnap-rootfs-$(BOARD_NAME).tar.gz for board $(BOARD_NAME)"

# Benchmark: save/restore speed against QEMU by hand and the disk's limit.
bench: deps
	@$(MAKE) --no-print-directory all
	@bench/run $(BENCH_ARGS)

clean:
	rm -rf $(O)
distclean: clean
	rm -rf $(DL) $(KCONFIG_CONFIG) $(KCONFIG_CONFIG).old

help:
	@echo "make [all]            build $(O)/vmsnap (static, musl) and the test guest"
	@echo "make defconfig        configure for board/$(BOARD) (or make <board>_defconfig)"
	@echo "make menuconfig       change the configuration; make savedefconfig to keep it"
	@echo "make size             print the binary size"
	@echo "make rootfs           stage $(O)/rootfs and a tarball (binary + overlays) for the board"
	@echo "make check            install missing dependencies, build, run all tests (SANITIZE=1: ASan+UBSan)"
	@echo "make fuzz             run each libFuzzer target FUZZ_TIME seconds (default 60)"
	@echo "make demo             save and restore the built-in test VM"
	@echo "make bench            benchmark (BENCH_ARGS='--sizes 1G,4G --reps 3'), writes bench/RESULTS.md"
	@echo "make clean|distclean  remove build outputs (and fetched sources, .config)"

-include $(TARGET_OBJS:.o=.d) $(HOST_LIB_OBJS:.o=.d) $(FUZZ_LIB_OBJS:.o=.d)
