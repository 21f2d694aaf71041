# The build: Kconfig targets, board defconfigs, the static stripped musl
# binary and its size, parallel builds from a fresh checkout, short output
# lines, the version string, the arm64 cross build, and make rootfs. Nothing
# is written into the checkout: builds go to $T (O=, KCONFIG_CONFIG=, copies).
. "$(dirname "$0")/../lib.sh"
cd "$TOP" || exit 1
B=$T/build K=$T/config
mk() { make --no-print-directory O="$B" KCONFIG_CONFIG="$K" "$@" >"$T/make.out" 2>&1; }
# make in the copy F of the checkout (no git, no dl/: a fresh clone's state).
F=$T/fresh
mkf() { make --no-print-directory -C "$F" "$@" >"$T/fresh.out" 2>&1; }
fresh_git() { git -C "$F" -c user.name=t -c user.email=t@t "$@" >/dev/null; }

check "make defconfig" mk defconfig
check "  ... gives the pc-x86_64 defaults" grep -q 'CONFIG_BOARD="pc-x86_64"' "$K"
check "make -j$(nproc) builds from clean" mk -j"$(nproc)" "$B/vmsnap"
check "  ... one short line per object (  CC      src/qmp.o)" grep -qx '  CC      src/qmp.o' "$T/make.out"
check "  ... and no line longer than 100 characters" not grep -q '.\{101\}' "$T/make.out"

# A fresh checkout: a parallel make fetches the third-party sources once (one
# stamp, scripts/fetch-sources) before it compiles anything that includes
# their headers.
mkdir -p "$F" && git ls-files -z | xargs -0 cp --parents -t "$F"
check "a fresh checkout builds with make -j4 (sources fetched first)" \
	bash -c "make --no-print-directory -C '$F' -j4 >'$T/fresh.out' 2>&1 && test -x '$F/build/vmsnap'"
check "  ... fetching them once" test "$(grep -c '^  FETCH ' "$T/fresh.out")" -eq 1
check "  ... and a second make compiles nothing" \
	bash -c "make --no-print-directory -C '$F' >'$T/fresh.out' 2>&1 && ! grep -q '^  CC ' '$T/fresh.out'"
touch "$F/src/util.c"
check "make V=1 prints the full commands" \
	bash -c "make --no-print-directory -C '$F' V=1 >'$T/fresh.out' 2>&1 && grep -q 'musl-gcc .*-Wshadow.* -c src/util.c' '$T/fresh.out'"

# The version is that of the commit built from, even when nothing else changed,
# and only the object that prints it is rebuilt for a new one.
fresh_git init -q && fresh_git add -A && fresh_git commit -q -m one
v1=$(git -C "$F" rev-parse --short HEAD)
check "a build after a commit prints the new version" \
	bash -c "make --no-print-directory -C '$F' >/dev/null 2>&1 && '$F/build/vmsnap' version | grep -q '^vmsnap $v1 '"
fresh_git commit -q --allow-empty -m two
v2=$(git -C "$F" rev-parse --short HEAD)
check "  ... and after the next commit the next one" \
	bash -c "make --no-print-directory -C '$F' >'$T/fresh.out' 2>&1 && '$F/build/vmsnap' version | grep -q '^vmsnap $v2 '"
check "  ... recompiling only src/cmd/version.o" \
	test "$(grep '^  CC ' "$T/fresh.out")" = "  CC      src/cmd/version.o"

# Objects are listed by feature in src/Kbuild; a .c file in no list is named.
echo 'int stray;' >"$F/src/stray.c"
check "a source file in no list of src/Kbuild stops the build" not mkf
check "  ... naming it" grep -q 'src/stray.c: in no list of src/Kbuild' "$T/fresh.out"
rm -rf "$F"
check "build/vmsnap is static" bash -c "file '$B/vmsnap' | grep -q 'statically linked'"
check "  ... and stripped" bash -c "file '$B/vmsnap' | grep -q ', stripped'"
check "  ... linked against musl, not glibc" not grep -q "GLIBC_" "$B/vmsnap"
size=$(stat -c %s "$B/vmsnap")
check "  ... under 256 KiB ($size bytes)" test "$size" -lt $((256 * 1024))
check "make size prints it" bash -c "make --no-print-directory O='$B' KCONFIG_CONFIG='$K' size | grep -q '^$size bytes'"
check "config.h has 0/1 macros" grep -q '^#define CONFIG_SIGNING 1$' "$B/include/config.h"
check "savedefconfig writes \$O/defconfig" mk savedefconfig
check "  ... which is empty for the defaults" test -f "$B/defconfig" -a ! -s "$B/defconfig"
check "  ... and nothing into the checkout" test ! -e "$TOP/defconfig"

# A feature switched off shows in the macros (both branches still compile).
sed -i 's/^CONFIG_SIGNING=y/# CONFIG_SIGNING is not set/' "$K"
check "CONFIG_SIGNING off builds" mk "$B/vmsnap"
check "  ... config.h says 0" grep -q '^#define CONFIG_SIGNING 0$' "$B/include/config.h"
check "  ... and vmsnap says signing off" bash -c "'$B/vmsnap' version | grep -q 'signing off'"
check "  ... keygen refuses with a clear message" bash -c "'$B/vmsnap' --config '$T/vmsnap.conf' keygen '$T/a' '$T/b' 2>&1 | grep -q 'built without signing'"

# SHA-256: the CPU's SHA instructions by default (where it has them), plain
# mbedtls with CONFIG_SHA256_PORTABLE.
if grep -q '^flags.* sha_ni' /proc/cpuinfo; then
	check "vmsnap version: sha256 on the SHA extensions" bash -c "'$B/vmsnap' version | grep -q '^sha256: x86-sha$'"
fi
check "  ... VMSNAP_SHA256=portable: the portable code" \
	bash -c "VMSNAP_SHA256=portable '$B/vmsnap' version | grep -q '^sha256: portable$'"
sed -i 's/^# CONFIG_SHA256_PORTABLE is not set/CONFIG_SHA256_PORTABLE=y/' "$K"
check "CONFIG_SHA256_PORTABLE builds" mk "$B/vmsnap"
check "  ... vmsnap version says portable" bash -c "'$B/vmsnap' version | grep -q '^sha256: portable$'"
check "  ... no SHA-extension code linked" not bash -c "nm '$B/vmsnap.unstripped' | grep -q sha_portable_block"

check "make kiosk-x86_64_defconfig" mk kiosk-x86_64_defconfig
check "  ... image version 3 by default" grep -q '^CONFIG_DEFAULT_IMAGE_VERSION=3' "$K"
check "make rootfs for the kiosk" mk rootfs
check "  ... has the binary, init script, inittab snippet" \
	test -x "$B/rootfs/usr/bin/vmsnap" -a -x "$B/rootfs/etc/init.d/S95vmsnap" -a -f "$B/rootfs/etc/inittab.vmsnap"
check "  ... the kiosk's config and VM replace the defaults" \
	bash -c "grep -q '^require_signature = yes' '$B/rootfs/etc/vmsnap.conf' && grep -q 'snapshot=on' '$B/rootfs/etc/vmsnap/vms/kiosk.vm'"
check "  ... the tarball holds the same" bash -c "tar tzf '$B/vmsnap-rootfs-kiosk-x86_64.tar.gz' | grep -q './usr/bin/vmsnap'"
check "  ... its config parses" "$B/rootfs/usr/bin/vmsnap" --config "$B/rootfs/etc/vmsnap.conf" list
check "the common overlay's config parses" "$B/vmsnap" --config "$TOP/rootfs-overlay/etc/vmsnap.conf" list

check "make gateway-arm64_defconfig" mk gateway-arm64_defconfig
check "make cross-builds for arm64" mk "$B/vmsnap"
check "  ... a static aarch64 binary" bash -c "file '$B/vmsnap' | grep -q 'ARM aarch64.*statically linked'"
check "  ... that runs (qemu-user)" bash -c "qemu-aarch64-static '$B/vmsnap' version | grep -q 'max channels 4'"
check "  ... with mbedtls's ARMv8 SHA-256 code linked" \
	bash -c "aarch64-linux-gnu-nm '$B/vmsnap.unstripped' | grep -q sha256_process_many_a64_crypto"
check "  ... and used (qemu-user's CPU has the crypto extensions)" \
	bash -c "qemu-aarch64-static '$B/vmsnap' version | grep -q '^sha256: armv8$'"
cp "$TOP/tests/fixtures/signed-a706f7f.img" "$T/old.img"
check "  ... which verifies an image signed on x86-64 before it" \
	qemu-aarch64-static "$B/vmsnap" --config "$T/vmsnap.conf" verify "$T/old.img" --pubkey "$TOP/tests/fixtures/signed-a706f7f.pub"
check "make rootfs for the gateway" mk rootfs
check "  ... its image is an eMMC partition" grep -q '^image = /dev/mmcblk0p3' "$B/rootfs/etc/vmsnap.conf"
