# File modes and what QEMU inherits, under umask 000 so nothing comes from
# the caller: run_dir 0700, QMP socket, pidfile, lock, definition copy,
# images and private keys 0600; a trusted_keys directory writable by others
# is refused; a symlinked save target is followed (the image replaces the
# file it points to; the link stays); QEMU gets no sanitizer settings.
. "$(dirname "$0")/../lib.sh"

umask 000
R=$T/fresh/run # vmsnap creates it (lib.sh's run/ exists already)
sed -i "s|^run_dir = .*|run_dir = $R|" "$T/vmsnap.conf"
mode() { stat -c %a "$1"; }
has_mode() { [ "$(mode "$2")" = "$1" ] || { echo "$2: mode $(mode "$2"), want $1" >&2; return 1; }; }

define_guest vm1 64M 4 10
expect_rc "run under umask 000" 0 env ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
	LSAN_OPTIONS=verbosity=1 "$VMSNAP" --config "$T/vmsnap.conf" run vm1
check "  ... the guest boots" wait_log vm1 '^tick 3$' 60
check "run_dir created 0700" has_mode 700 "$R"
check "QMP socket is a socket, mode 0600" bash -c "test -S '$R/vm1.qmp' && test \$(stat -c %a '$R/vm1.qmp') = 600"
check "pidfile 0600" has_mode 600 "$R/vm1.pid"
check "lock 0600" has_mode 600 "$R/vm1.lock"
check "the definition QEMU runs with (kept for save) 0600" has_mode 600 "$R/vm1.vm"
check "QEMU's environment has no sanitizer settings (ASAN_/UBSAN_/LSAN_OPTIONS)" \
	bash -c "! tr '\\0' '\\n' </proc/\$(cat '$R/vm1.pid')/environ | grep -E '^[A-Z]*SAN_OPTIONS='"
check "  ... but the rest of the environment (PATH)" bash -c "tr '\\0' '\\n' </proc/\$(cat '$R/vm1.pid')/environ | grep -q '^PATH='"
check "QEMU has no sanitizer runtime mapped" bash -c "! grep -E 'lib(a|ub|l)san' /proc/\$(cat '$R/vm1.pid')/maps"

expect_rc "keygen under umask 000" 0 vs keygen "$T/k.pem" "$T/k.pub.pem"
check "private key 0600" has_mode 600 "$T/k.pem"
check "public key not writable by group or others" bash -c "(( (0\$(stat -c %a '$T/k.pub.pem') & 022) == 0 ))"
cp "$T/vmsnap.conf" "$T/signed.conf" && echo "sign_key = $T/k.pem" >>"$T/signed.conf"
for fmt in 2 3; do
	expect_rc "v$fmt save (signed) under umask 000" 0 "$VMSNAP" --config "$T/signed.conf" \
		save vm1 "$T/save/v$fmt.img" --format $fmt --keep-running
	check "  ... image 0600" has_mode 600 "$T/save/v$fmt.img"
done

# trusted_keys: writable by others means anyone could add a key.
mkdir -p "$T/trusted" && chmod 755 "$T/trusted" && cp "$T/k.pub.pem" "$T/trusted/k.pem"
expect_rc "verify with trusted_keys 0755" 0 vs verify "$T/save/v2.img"
chmod 777 "$T/trusted"
expect_rc "trusted_keys writable by others: verify exit 3" 3 vs verify "$T/save/v2.img"
check "  ... says so" \
	err_is "vmsnap: verify: image $T/save/v2.img: trusted_keys directory $T/trusted is writable by others: fix its mode"
expect_rc "trusted_keys writable by others: restore exit 3" 3 vs restore "$T/save/v2.img" --name vm2
check "  ... no QEMU started" test ! -e "$R/vm2.pid"
chmod 755 "$T/trusted"

# A symlinked target: followed (realpath), so the rename replaces the image
# it points to and the link keeps working.
ln -s "$T/save/v2.img" "$T/link.img"
ino=$(stat -c %i "$T/save/v2.img")
expect_rc "save to a symlink" 0 vs save vm1 "$T/link.img" --keep-running
check "  ... the link is still a link to the same path" test "$(readlink "$T/link.img")" = "$T/save/v2.img"
check "  ... the file it points to was replaced (new inode)" test "$(stat -c %i "$T/save/v2.img")" != "$ino"
check "  ... and is a complete image, 0600" bash -c "'$VMSNAP' --config '$T/vmsnap.conf' verify '$T/link.img' >/dev/null && test \$(stat -c %a '$T/save/v2.img') = 600"
check "  ... no temp file left by the link" test -z "$(ls -A "$T" | grep vmsnap-partial)"
vs stop vm1 >/dev/null
