# localusers: what another local user (uid 65534 here) or someone at the
# serial console can and cannot make vmsnap do (security issue 13, items 3,
# 6, 8, 9, 10, 11): temp files and directories of others, a shared run_dir,
# unsafe trusted keys, the reserved name "watch", FIFOs named as images, and
# console commands confined to the appliance's image places.
. "$(dirname "$0")/../lib.sh"

# Bounded, so that a command blocked on a FIFO fails the test instead of hanging it.
tvs() { timeout 20 "$VMSNAP" --config "$T/vmsnap.conf" "$@"; }
con() { printf '%s\n' "$@" | timeout 60 "$VMSNAP" --config "$T/vmsnap.conf" console >"$T/con" 2>&1; }
said() { grep -qE -- "$1" "$T/con" || { echo "no line /$1/ in: $(cat "$T/con")" >&2; return 1; }; }
running() { vs qmp vm1 query-status | grep -q '"running":true'; }

mkdir -p "$T/trusted" && chmod 755 "$T/trusted"
vs keygen "$T/k.pem" "$T/trusted/k.pem" >/dev/null || fail "keygen"
echo "sign_key = $T/k.pem" >>"$T/vmsnap.conf"
start_guest vm1 128M 5 100 || { fail "test guest did not boot"; exit 1; }
expect_rc "a signed image to work with" 0 vs save vm1 "$T/save/good.img" --keep-running

# --- 11: FIFOs and other special files ---------------------------------------
mkfifo "$T/save/fifo.img"
for c in inspect verify restore; do
	expect_rc "$c of a FIFO: exit 2 at once, no hang" 2 tvs $c "$T/save/fifo.img"
	check "  ... says it is a pipe" err_names "fifo.img is a pipe"
done
expect_rc "sign of a FIFO: exit 2, no hang" 2 tvs sign "$T/save/fifo.img" --key "$T/k.pem"
expect_rc "provision from a FIFO: exit 2, no hang" 2 tvs provision "$T/save/fifo.img" "$T/copy.img"
expect_rc "inspect of a character device: exit 2" 2 tvs inspect /dev/zero
check "  ... says so" err_names "character device"
con "inspect $T/save/fifo.img" "version"
check "console: inspect of a FIFO gets ERR 2 ..." said "^ERR 2 .*pipe"
check "  ... and the console answers the next command" said "^vmsnap [^ ]+"

# --- 6: temp files and target directories -------------------------------------
tmp=$T/save/.vm1.img.vmsnap-partial
echo planted >"$tmp" && chown 65534:65534 "$tmp" && chmod 666 "$tmp"
expect_rc "save over another user's planted temp file: exit 1" 1 vs save vm1 "$T/save/vm1.img" --keep-running
check "  ... says whose file it is" err_names "another user's file"
check "  ... the planted file is untouched, no image" eval 'test "$(cat "$tmp")" = planted -a ! -e "$T/save/vm1.img"'
rm -f "$tmp"
echo precious >"$T/victim"
ln "$T/victim" "$tmp"
expect_rc "save with the temp name hard-linked to another file: exit 1" 1 vs save vm1 "$T/save/vm1.img" --keep-running
check "  ... says hard links" err_names "hard links"
check "  ... the other file is untouched" test "$(cat "$T/victim")" = precious
rm -f "$tmp"
mkdir "$T/pub" && chmod 777 "$T/pub"
expect_rc "save into a world-writable directory: exit 2" 2 vs save vm1 "$T/pub/vm1.img" --keep-running
check "  ... names the directory and why" err_names "$T/pub is writable by group or others"
chmod 1777 "$T/pub"
expect_rc "a sticky directory of root's (/tmp style) is fine" 0 vs save vm1 "$T/pub/vm1.img" --keep-running
check "  ... the image is 0600" test "$(stat -c %a "$T/pub/vm1.img")" = 600
check "the VM still runs" running

# --- 8: a run_dir someone else can write --------------------------------------
vs stop vm1 >/dev/null 2>&1
chmod 777 "$T/run"
expect_rc "run with a world-writable run_dir: exit 2" 2 vs run vm1
check "  ... names run_dir, its mode and the fix" err_names "run_dir $T/run must be .*mode 0777: chown 0 and chmod 0700"
chmod 700 "$T/run" && chown 65534 "$T/run"
expect_rc "run with a run_dir of another owner: exit 2" 2 vs run vm1
check "  ... names the owner and the fix" err_names "it is a directory of uid 65534, mode 0700: chown 0"
check "  ... and no QEMU started" no_qemu
chown 0 "$T/run"
mv "$T/run" "$T/run.real" && ln -s "$T/run.real" "$T/run"
expect_rc "run with a symlinked run_dir: exit 2" 2 vs run vm1
check "  ... says symbolic link" err_names "it is a symbolic link of uid 0"
rm "$T/run" && mv "$T/run.real" "$T/run"

# --- 10: the reserved name "watch" ---------------------------------------------
define_guest watch 64M
expect_rc "a VM named watch: exit 2" 2 vs run watch
check "  ... says the name is reserved" err_names "'watch' is reserved"
check "  ... no watch.pid was written by QEMU" test ! -e "$T/run/watch.pid"
cp "$T/vmsnap.conf" "$T/w.conf" && echo "vms = vm1 watch" >>"$T/w.conf"
expect_rc "vms = ... watch in the config: exit 2" 2 "$VMSNAP" --config "$T/w.conf" list
check "  ... names file:line and the reason" err_names "w.conf:[0-9]*: vms = 'watch'.*reserved"

# --- 9: trusted keys -----------------------------------------------------------
echo "notes" >"$T/trusted/README"
expect_rc "verify with a non-.pem file in trusted_keys: still ok" 0 vs verify "$T/save/good.img"
check "  ... says which file it skipped and why" grep -q "skipped $T/trusted/README: only files named \*.pem" "$T/err"
echo "not a key" >"$T/trusted/junk.pem"
mv "$T/trusted/k.pem" "$T/k.pub" # no key matches: every .pem is read
expect_rc "verify with only a .pem that is no key in trusted_keys: exit 3, wrong key" 3 vs verify "$T/save/good.img"
check "  ... says it skipped the junk and why" grep -q "skipped $T/trusted/junk.pem: not a readable public key" "$T/err"
rm "$T/trusted/junk.pem" && mv "$T/k.pub" "$T/trusted/k.pem"
chmod 775 "$T/trusted"
expect_rc "group-writable trusted_keys: exit 3" 3 vs verify "$T/save/good.img"
check "  ... names the directory and the fix" grep -q "trusted_keys directory $T/trusted is writable by group or others" "$T/err"
chmod 755 "$T/trusted" && chown 65534 "$T/trusted/k.pem"
expect_rc "a key file owned by another user: exit 3" 3 vs verify "$T/save/good.img"
check "  ... names the key and its owner" grep -q "trusted key $T/trusted/k.pem belongs to another user" "$T/err"
chown 0 "$T/trusted/k.pem" && mv "$T/trusted/k.pem" "$T/k.pub" && ln -s "$T/k.pub" "$T/trusted/k.pem"
expect_rc "a symlinked key file: exit 3" 3 vs verify "$T/save/good.img"
check "  ... says symbolic link" grep -q "k.pem is a symbolic link" "$T/err"
rm "$T/trusted/k.pem" && mv "$T/k.pub" "$T/trusted/k.pem"
chmod 640 "$T/k.pem"
vs run vm1 >/dev/null && wait_log vm1 '^check ok' 120
expect_rc "save with a group-readable sign_key: works" 0 vs save vm1 "$T/save/good2.img" --keep-running
check "  ... and warns" grep -q "sign_key $T/k.pem is readable by group or others" "$T/err"
chmod 600 "$T/k.pem"

# --- 3: console targets --------------------------------------------------------
mkdir -p "$T/outside" "$T/extra"
echo precious >"$T/outside/victim"
con "save vm1 $T/outside/victim"
check "console: save to a file outside the image places: ERR 2" said "^ERR 2 .*only uses save_dir"
check "  ... the file is untouched and the VM still runs" eval 'test "$(cat "$T/outside/victim")" = precious && running'
con "save vm1 $T/save/../outside/victim"
check "console: .. out of save_dir: ERR 2" said "^ERR 2 .*only uses save_dir"
ln -s "$T/outside/victim" "$T/save/link.img"
con "save vm1 $T/save/link.img" "inspect $T/save/link.img"
check "console: save to a symlink in save_dir: ERR 2" said "^ERR 2 .*link.img: is a symbolic link"
check "  ... the file it points to is untouched" test "$(cat "$T/outside/victim")" = precious
ln -s "$T/outside" "$T/save/sub"
con "inspect $T/save/sub/victim"
check "console: through a symlinked directory: ERR 2" said "^ERR 2 .*only uses save_dir"
cp "$T/save/good.img" "$T/outside/x.img"
for c in inspect verify restore; do
	con "$c $T/outside/x.img"
	check "console: $c outside the image places: ERR 2" said "^ERR 2 .*only uses save_dir"
done
con "inspect $T/save/good.img"
check "console: inspect in save_dir: OK" said "^OK$"
cp "$T/save/good.img" "$T/extra/x.img"
echo "console_paths = $T/extra" >>"$T/vmsnap.conf"
con "inspect $T/extra/x.img"
check "console: inspect under console_paths: OK" said "^OK$"
vs sign "$T/save/good2.img" --key "$T/k.pem" --golden >/dev/null || fail "making a golden image"
sum=$(md5sum <"$T/save/good2.img")
con "save vm1 $T/save/good2.img"
check "console: save over a golden image: ERR 2" said "^ERR 2 .*golden"
check "  ... the golden image is untouched and the VM runs" eval 'test "$(md5sum <"$T/save/good2.img")" = "$sum" && running'
con "save vm1 $T/save/new.img"
check "console: save into save_dir: OK" said "^OK$"
expect_rc "  ... and the image verifies" 0 vs verify "$T/save/new.img"
