# vmsnap: Kconfig-configured, static musl build of build/vmsnap, the test
# guest, unit and integration tests. `make help` lists the targets. Which
# source file is built for which feature: src/Kbuild. Short output lines
# ("  CC      src/qmp.o"); make V=1 prints the full commands.

O        := build
DL       := dl
KCONFIG_CONFIG ?= .config
BOARD    ?= pc-x86_64
export KCONFIG_CONFIG

# Quiet by default: $(call say,TAG,WHAT) prints one short line, $(Q) hides
# the command itself. V=1 prints the commands instead.
ifeq ($(V),1)
Q   :=
say  = @:
else
Q   := @
say  = @printf '  %-7s %s\n' '$(1)' '$(2)'
endif

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

MBEDTLS_FILES := asn1parse asn1write base64 bignum bignum_core constant_time ecdsa ecp \
	ecp_curves entropy entropy_poll hmac_drbg md oid pem pk pk_ecc pk_wrap pkparse pkwrite \
	platform_util sha256
THIRD_SRC := $(MBEDTLS_FILES:%=$(DL)/mbedtls/library/%.c) $(DL)/cjson/cJSON.c $(DL)/inih/ini.c

# The objects, by feature: obj-y (library modules) and cmd-y (main and the
# commands), from src/Kbuild; a feature switched off leaves its files out.
include src/Kbuild
LIB_SRC := $(patsubst %.o,src/%.c,$(obj-y))
SRC := $(LIB_SRC) $(patsubst %.o,src/%.c,$(cmd-y))
# A .c file in no list (on or off) would silently not be built: say so.
LISTED := $(patsubst %.o,src/%.c,$(obj-y) $(obj-) $(obj-n) $(cmd-y) $(cmd-) $(cmd-n))
UNLISTED := $(filter-out $(LISTED),$(wildcard src/*.c src/*/*.c))
ifneq ($(UNLISTED),)
ifneq ($(filter-out clean distclean help %config,$(or $(MAKECMDGOALS),all)),)
$(error $(UNLISTED): in no list of src/Kbuild (add obj-y += or cmd-y +=))
endif
endif
# Per-object flags (CFLAGS_x.o in src/Kbuild) for the source $<.
objflags = $(CFLAGS_$(patsubst src/%.c,%.o,$<))

INCLUDES := -I$(O)/include -Isrc -I$(DL)/mbedtls/include -I$(DL)/cjson -I$(DL)/inih
DEFS := -D_GNU_SOURCE -DMBEDTLS_CONFIG_FILE='"vmsnap_mbedtls.h"' \
	-DINI_HANDLER_LINENO=1 -DINI_ALLOW_MULTILINE=0 -DINI_INLINE_COMMENT_PREFIXES='"\#"' \
	-DINI_MAX_LINE=1024 -DINI_STOP_ON_FIRST_ERROR=1
WARN := -Wall -Wextra -Wshadow
CFLAGS := -std=gnu11 -Os -flto -ffunction-sections -fdata-sections -fno-asynchronous-unwind-tables -fno-unwind-tables $(WARN) $(DEFS) $(INCLUDES)
LDFLAGS := -static -flto -Os -Wl,--gc-sections -Wl,--build-id=none

# Host build of the same sources for unit tests, sanitizers and valgrind.
# SANITIZE=1 (ASan+UBSan) builds into directories of its own, so sanitized
# and plain objects never mix and valgrind always has the plain binary.
# It is the test build: crash points (VMSNAP_CRASH_AT) on, whatever .config says.
HOST_CFLAGS := -std=gnu11 -g -O1 $(WARN) $(DEFS) $(INCLUDES) -DVMSNAP_TEST_BUILD
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
HOST_OBJS := $(call hobj,$(SRC) $(THIRD_SRC))
HOST_LIB_OBJS := $(call hobj,$(LIB_SRC) $(THIRD_SRC))

.PHONY: FORCE all defconfig %_defconfig menuconfig savedefconfig olddefconfig size clean distclean \
	deps check unit integration demo guest linux-guest help bench bench-deps rootfs fuzz fuzz-build \
	image image-build run-image check-system
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
	$(Q)kconfig-conf --defconfig=$< Kconfig >/dev/null
	@echo "configured for board $*"
menuconfig:
	$(Q)kconfig-mconf Kconfig
olddefconfig:
	$(Q)kconfig-conf --olddefconfig Kconfig >/dev/null
# Written into the build directory, not the checkout (as Linux does with O=).
savedefconfig: $(KCONFIG_CONFIG)
	@mkdir -p $(O)
	$(Q)kconfig-conf --savedefconfig=$(O)/defconfig Kconfig
	@echo "wrote $(O)/defconfig (copy it to board/<board>/defconfig)"

# Every object needs it, so the third-party sources (and their headers) are
# fetched before the first compile.
$(O)/include/config.h: $(KCONFIG_CONFIG) Kconfig scripts/kconfig-header | $(DL)/.fetched
	@mkdir -p $(@D)
	$(call say,GEN,$@)
	$(Q)scripts/kconfig-header Kconfig $(KCONFIG_CONFIG) > $@.tmp && mv $@.tmp $@

# The version is looked up on every build, but the header is rewritten only
# when it changed, so only the objects that include it (src/Kbuild) rebuild,
# and only after a new commit or a change to the tree's dirtiness.
$(O)/include/version.h: FORCE
	@mkdir -p $(@D)
	@v=$$(git describe --always --dirty 2>/dev/null || echo dev); \
	printf '#define VMSNAP_VERSION "%s"\n' "$$v" > $@.tmp; \
	if cmp -s $@.tmp $@; then rm -f $@.tmp; else mv $@.tmp $@; \
		$(if $(Q),printf '  %-7s %s\n' UPD $@;) fi
$(call obj,src/cmd/version.c) $(call hobj,src/cmd/version.c): $(O)/include/version.h
FORCE:

# Third-party sources are fetched, never committed: one stamp for all of
# them, so that a parallel make fetches once. Only the fetch (apt-get
# source); installing packages is scripts/bootstrap's (make deps).
$(DL)/.fetched: scripts/fetch-sources
	$(call say,FETCH,$(DL)/ (mbedtls cJSON inih))
	$(Q)scripts/fetch-sources $(abspath $(DL))
	@touch $@
$(THIRD_SRC): $(DL)/.fetched ;

$(O)/target/%.o: %.c $(O)/include/config.h
	@mkdir -p $(@D)
	$(call say,CC,$(<:.c=.o))
	$(Q)$(CC) $(CFLAGS) $(objflags) -MMD -MP -c $< -o $@
# cJSON's one sscanf ("%lg": does a printed number read back the same) is
# strtod in the binary (src/qmp.c, cjson_sscanf): libc's scanf is 4 KiB of it.
$(O)/target/third/cjson/cJSON.o: CFLAGS += -Dsscanf=cjson_sscanf
$(O)/target/third/%.o: $(DL)/%.c $(O)/include/config.h
	@mkdir -p $(@D)
	$(call say,CC,$(<:.c=.o))
	$(Q)$(CC) $(CFLAGS) -w -c $< -o $@
$(HOST_O)/%.o: %.c $(O)/include/config.h
	@mkdir -p $(@D)
	$(call say,HOSTCC,$(<:.c=.o))
	$(Q)$(HOSTCC) $(HOST_CFLAGS) $(objflags) -MMD -MP -c $< -o $@
$(HOST_O)/third/%.o: $(DL)/%.c $(O)/include/config.h
	@mkdir -p $(@D)
	$(call say,HOSTCC,$(<:.c=.o))
	$(Q)$(HOSTCC) $(HOST_CFLAGS) -w -c $< -o $@

$(O)/vmsnap.unstripped: $(TARGET_OBJS)
	$(call say,LD,$@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $^
$(O)/vmsnap: $(O)/vmsnap.unstripped
	$(call say,STRIP,$@)
	$(Q)$(STRIP) -o $@ $<

size: $(O)/vmsnap
	@stat -c '%s bytes  $(O)/vmsnap' $(O)/vmsnap

# The host build of the vmsnap binary: for valgrind and sanitizer runs.
$(HOST_O)/vmsnap: $(HOST_OBJS)
	$(call say,HOSTLD,$@)
	$(Q)$(HOSTCC) $(HOST_LDFLAGS) -pthread -o $@ $^

guest:
	@$(MAKE) -s --no-print-directory -C tests/guest O=$(abspath $(O)/guest) CC=$(HOSTCC)

# The real Linux test guest: Debian's kernel (scripts/fetch-kernel, cached in
# /var/cache/vmsnap) and a BusyBox initramfs, in $(O)/linux. The script
# rebuilds only when the kernel release, tests/linux/init or itself changed.
linux-guest:
	@tests/linux/mkinitramfs $(O)/linux

# Unit tests: host compiler, cmocka, one binary per tests/unit/test_*.c.
UNIT_OFF := $(if $(filter y,$(CONFIG_CONSOLE)),,tests/unit/test_console_io.c) \
	    $(if $(filter y,$(CONFIG_PROVISION)),,tests/unit/test_copy.c)
UNIT_SRC := $(filter-out $(UNIT_OFF),$(wildcard tests/unit/test_*.c))
UNIT_BIN := $(patsubst tests/unit/%.c,$(UNIT_O)/%,$(UNIT_SRC))
$(UNIT_O)/%: tests/unit/%.c $(wildcard tests/unit/*.h) $(HOST_LIB_OBJS)
	@mkdir -p $(@D)
	$(call say,HOSTLD,$@)
	$(Q)$(HOSTCC) $(HOST_CFLAGS) $(HOST_LDFLAGS) -Itests/unit -o $@ $< $(HOST_LIB_OBJS) -lcmocka -pthread

deps:
	@scripts/bootstrap

# The corpus replay test runs the fuzz targets' code on the committed seeds.
$(UNIT_O)/test_fuzz_corpus: $(wildcard tests/fuzz/fuzz_*.c)

# The README's test command: installs what is missing, builds, runs all.
# SANITIZE=1: unit tests and the vmsnap the integration tests run are
# ASan+UBSan builds; the valgrind test always uses the plain host build.
check: deps
	@$(MAKE) --no-print-directory all linux-guest $(UNIT_BIN) $(HOST_O)/vmsnap
	@$(if $(filter 1,$(SANITIZE)),$(MAKE) --no-print-directory SANITIZE= $(O)/host/vmsnap)
	@tests/run $(if $(filter 1,$(SANITIZE)),--sanitize)

unit: $(UNIT_BIN)
	@tests/run --unit-only $(if $(filter 1,$(SANITIZE)),--sanitize)

# libFuzzer targets (clang, ASan+UBSan) over the host sources, one per
# tests/fuzz/fuzz_<target>.c; `make fuzz` runs each FUZZ_TIME seconds from
# the seeds in tests/fuzz/corpus/<target>/ (tests/fuzz/seed.sh makes them).
FUZZ_CC      ?= clang
FUZZ_TIME    ?= 60
FUZZ_TARGETS := header conf vmdef qmp inspect
FUZZ_O       := $(O)/fuzz
FUZZ_CFLAGS  := -std=gnu11 -g -O1 -fno-omit-frame-pointer -fsanitize=address,undefined \
	-fno-sanitize-recover=undefined $(WARN) $(DEFS) $(INCLUDES)
fobj = $(patsubst %.c,$(FUZZ_O)/%.o,$(patsubst $(DL)/%,third/%,$(1)))
FUZZ_LIB_OBJS := $(call fobj,$(LIB_SRC) $(THIRD_SRC))
FUZZ_BIN := $(FUZZ_TARGETS:%=$(FUZZ_O)/fuzz_%)
# Coverage for our code and the parsers (cJSON, inih); mbedtls only checked.
$(FUZZ_O)/%.o: %.c $(O)/include/config.h
	@mkdir -p $(@D)
	$(call say,FUZZCC,$(<:.c=.o))
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) $(objflags) -fsanitize=fuzzer-no-link -MMD -MP -c $< -o $@
$(FUZZ_O)/third/%.o: $(DL)/%.c $(O)/include/config.h
	@mkdir -p $(@D)
	$(call say,FUZZCC,$(<:.c=.o))
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) $(if $(findstring mbedtls,$<),,-fsanitize=fuzzer-no-link) -w -c $< -o $@
$(FUZZ_O)/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_LIB_OBJS)
	$(call say,FUZZLD,$@)
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_LIB_OBJS) -pthread

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
	$(call say,ROOTFS,$(O)/rootfs)
	$(Q)rm -rf $(O)/rootfs && mkdir -p $(O)/rootfs/usr/bin
	$(Q)cp $(O)/vmsnap $(O)/rootfs/usr/bin/vmsnap
	$(Q)cp -a rootfs-overlay/. $(O)/rootfs/
	$(Q)if [ -d board/$(BOARD_NAME)/overlay ]; then cp -a board/$(BOARD_NAME)/overlay/. $(O)/rootfs/; fi
	$(Q)find $(O)/rootfs -name .keep -delete
	$(Q)rm -f $(O)/rootfs/README.md
	$(Q)if [ -x board/$(BOARD_NAME)/post-build.sh ]; then board/$(BOARD_NAME)/post-build.sh $(O)/rootfs; fi
	$(call say,TAR,$(O)/vmsnap-rootfs-$(BOARD_NAME).tar.gz)
	$(Q)tar -C $(O)/rootfs --owner=0 --group=0 -czf $(O)/vmsnap-rootfs-$(BOARD_NAME).tar.gz .
	@echo "staged $(O)/rootfs and $(O)/vmsnap-rootfs-$(BOARD_NAME).tar.gz for board $(BOARD_NAME)"

# The bootable test appliance (scripts/mkimage; as root): the Debian kernel,
# BusyBox, QEMU with the files it loads, vmsnap, the overlays, a data disk,
# under $(O)/images/<board>/. `make image` builds every board with a
# board/<board>/image.conf, BOARD=... one; a second run without changes does
# nothing. IMAGE_EXTRA_OVERLAYS adds overlay directories (laid last).
QEMU_BIN     ?= /usr/bin/qemu-system-x86_64
IMAGE_BOARDS := $(if $(filter command line environment,$(origin BOARD)),$(BOARD),\
	$(patsubst board/%/image.conf,%,$(wildcard board/*/image.conf)))
IMAGE_COMMON := scripts/mkimage scripts/mkcpio scripts/fetch-kernel scripts/fetch-package $(O)/vmsnap $(O)/guest/guest.elf \
	$(QEMU_BIN) $(shell find image rootfs-overlay $(IMAGE_EXTRA_OVERLAYS) -type f 2>/dev/null)
export IMAGE_EXTRA_OVERLAYS
$(O)/guest/guest.elf: FORCE
	@$(MAKE) -s --no-print-directory -C tests/guest O=$(abspath $(O)/guest) CC=$(HOSTCC) $(abspath $@)
define image_rule
$(O)/images/$(1)/.built: $(IMAGE_COMMON) $(shell find board/$(1) -type f)
	$$(if $$(CROSS_COMPILE),$$(error make image: $(O)/vmsnap is built for $$(CROSS_COMPILE) (.config); the image boards are x86-64: make defconfig first))
	$$(call say,IMAGE,$(O)/images/$(1))
	$$(Q)rm -f $$@ && scripts/mkimage $(1) $(O)/images/$(1)
	@touch $$@
endef
$(foreach b,$(IMAGE_BOARDS),$(eval $(call image_rule,$(b))))
image: deps
	@$(MAKE) --no-print-directory image-build
image-build: $(IMAGE_BOARDS:%=$(O)/images/%/.built)
	@for b in $(IMAGE_BOARDS); do echo "image $(O)/images/$$b: done (sizes in $(O)/images/$$b/size-report.txt)"; done

# Boots one board's image: its console here, the technician console on a pty.
run-image: $(O)/images/$(BOARD)/.built
	@scripts/run-image $(O)/images/$(BOARD) $(RUN_IMAGE_ARGS)

# The system tests boot the images (tests/system/run): not part of make check
# (nested TCG is slow); .ci/run runs them after it.
check-system: image
	@tests/system/run

# Benchmark: save/restore speed against QEMU by hand and the disk's limit.
# libvirt for the virsh baseline: a bench-only dependency (make check never
# needs it; without it the report says the virsh rows were skipped). Debian 12's
# libvirt 9.0; the backports' 11.x (sparse format, parallel channels) would
# upgrade systemd, which a benchmark has no business doing.
bench-deps:
	@command -v virsh >/dev/null && command -v libvirtd >/dev/null || \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
			libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients >/dev/null || \
		echo "bench: libvirt could not be installed: the report will say so"

bench: deps bench-deps
	@$(MAKE) --no-print-directory all
	@bench/run $(BENCH_ARGS)

clean:
	$(call say,CLEAN,$(O))
	$(Q)rm -rf $(O)
distclean: clean
	$(call say,CLEAN,$(DL) $(KCONFIG_CONFIG))
	$(Q)rm -rf $(DL) $(KCONFIG_CONFIG) $(KCONFIG_CONFIG).old

help:
	@echo "make [all]            build $(O)/vmsnap (static, musl) and the test guest"
	@echo "make defconfig        configure for board/$(BOARD) (or make <board>_defconfig)"
	@echo "make menuconfig       change the configuration; make savedefconfig writes $(O)/defconfig"
	@echo "make size             print the binary size"
	@echo "make linux-guest      the real Linux test guest in $(O)/linux (downloads Debian's kernel once)"
	@echo "make rootfs           stage $(O)/rootfs and a tarball (binary + overlays) for the board"
	@echo "make image            build the bootable test appliance of each x86-64 board (BOARD=... one)"
	@echo "make run-image BOARD=kiosk-x86_64   boot it in QEMU: console here, technician console on a pty"
	@echo "make check-system     boot the images and run the system tests (tests/system/)"
	@echo "make check            install missing dependencies, build, run all tests (SANITIZE=1: ASan+UBSan)"
	@echo "make fuzz             run each libFuzzer target FUZZ_TIME seconds (default 60)"
	@echo "make demo             save and restore the built-in test VM"
	@echo "make bench            benchmark (BENCH_ARGS='--sizes 1G,4G --reps 3'), writes bench/RESULTS.md"
	@echo "make clean|distclean  remove build outputs (and fetched sources, .config)"
	@echo "make V=1 ...          print full commands instead of short lines"

-include $(TARGET_OBJS:.o=.d) $(HOST_OBJS:.o=.d) $(FUZZ_LIB_OBJS:.o=.d)
