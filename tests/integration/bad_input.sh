# Bad input: each case is one line on stderr naming the thing that is wrong,
# the documented exit code, and afterwards the VM runs as before and no image
# claims to be complete.
. "$(dirname "$0")/../lib.sh"

start_guest vm1 256M 5 100 || { fail "test guest did not boot"; exit 1; }
running() { vs qmp vm1 query-status | grep -q '"running":true'; }

expect_rc "save of a VM that does not exist: exit 2" 2 vs save nosuch "$T/x.img"
check "  ... names the VM" err_is "vmsnap: save: VM 'nosuch' is not running (start it with: vmsnap run nosuch)"
expect_rc "run of an undefined VM: exit 2" 2 vs run nosuch
check "  ... names the definition file" err_is "vmsnap: run: no VM 'nosuch': $T/vms/nosuch.vm: No such file or directory"
expect_rc "unknown save option: exit 2" 2 vs save --frobnicate vm1 "$T/x.img"
check "  ... names the option" grep -q -- "--frobnicate" "$T/err"
expect_rc "unknown command: exit 2" 2 vs frobnicate
expect_rc "--format 4: exit 2" 2 vs save vm1 "$T/x.img" --format 4
check "  ... names the value" err_is "vmsnap: save: --format 4: use 2 or 3"
expect_rc "missing config file named by --config: exit 2" 2 "$VMSNAP" --config "$T/nonexistent.conf" list
check "  ... names the file" err_is "vmsnap: config $T/nonexistent.conf: No such file or directory"
echo "save_image_version = 7" >"$T/bad.conf"
expect_rc "bad config value: exit 2" 2 "$VMSNAP" --config "$T/bad.conf" list
check "  ... names file:line and the value" err_is "vmsnap: $T/bad.conf:1: save_image_version = '7': use 2 or 3"

expect_rc "target directory missing: exit 2" 2 vs save vm1 "$T/nodir/x.img"
check "  ... names the directory" err_is "vmsnap: save: target directory $T/nodir: No such file or directory"
check "  ... VM still running" running

small=$(make_loop 64M)
dd if=/dev/urandom of="$small" bs=1M count=64 status=none
sum_before=$(md5sum <"$small")
expect_rc "block device smaller than RAM: exit 2" 2 vs save vm1 "$small"
check "  ... names the device and the sizes" err_is "vmsnap: save: target $small holds 64.00 MiB, but saving VM 'vm1' (256.00 MiB of RAM) may need up to 273.01 MiB: use a larger device or a file"
check "  ... device untouched" test "$(md5sum <"$small")" = "$sum_before"
check "  ... VM still running" running
check "  ... VM still ticking" wait_log vm1 "^tick $(( $(last_tick vm1) + 2 ))\$" 20

# A good image to damage.
vs save vm1 "$T/good.img" --keep-running >/dev/null || fail "saving the reference image"
damage() { cp "$T/good.img" "$T/bad.img"; printf "$2" | dd of="$T/bad.img" bs=1 seek=$1 conv=notrunc status=none; }

cp "$T/good.img" "$T/bad.img" && truncate -s $(( $(stat -c %s "$T/good.img") / 2 )) "$T/bad.img"
expect_rc "truncated image: restore exit 3" 3 vs restore "$T/bad.img" --name vm2
check "  ... says truncated, and where the stream ends" \
	err_names "^vmsnap: restore: image $T/bad.img: image is truncated: the stream ends at byte [0-9]*, the image has [0-9]*$"
expect_rc "truncated image: verify exit 3" 3 vs verify "$T/bad.img"
truncate -s 100 "$T/bad.img"
expect_rc "image shorter than its header: exit 3" 3 vs restore "$T/bad.img" --name vm2
damage 0 'X'
expect_rc "bad magic: exit 3" 3 vs restore "$T/bad.img" --name vm2
check "  ... says so" err_is "vmsnap: restore: image $T/bad.img: not a vmsnap image (bad magic)"
damage 8 '\x09'
expect_rc "unknown version: exit 3" 3 vs restore "$T/bad.img" --name vm2
check "  ... names the version" err_is "vmsnap: restore: image $T/bad.img: image version 9 is not supported (this vmsnap reads 2..4)"
damage 56 '\xff\xff'
expect_rc "stream length corrupted: exit 3" 3 vs restore "$T/bad.img" --name vm2
check "  ... says the header is corrupt" err_is "vmsnap: restore: image $T/bad.img: header digest mismatch: the header is corrupt"
damage 4100 'Z'
expect_rc "embedded definition corrupted: exit 3" 3 vs restore "$T/bad.img" --name vm2
check "  ... names the definition" \
	err_is "vmsnap: restore: image $T/bad.img: definition digest mismatch: the embedded VM definition is corrupt or was changed"
cp "$T/good.img" "$T/bad.img"
printf -- '-m 256M\n-qmp unix:/tmp/other.qmp,server=on\n' >"$T/evil.vm"
expect_rc "definition with a forbidden option (--vm-file): exit 2" 2 vs restore "$T/bad.img" --name vm2 --vm-file "$T/evil.vm"
check "  ... names file:line and the option" err_is "vmsnap: restore: $T/evil.vm:2: option -qmp is not allowed: vmsnap manages it"
printf -- '-m 256M\n-daemonize\n' >"$T/vms/evil.vm"
expect_rc "run of a definition with -daemonize: exit 2" 2 vs run evil
check "  ... names the option" err_is "vmsnap: run: $T/vms/evil.vm:2: option -daemonize is not allowed: vmsnap manages it"
check "no second QEMU was started by the refusals" test "$(ls "$T/run"/*.pid | wc -l)" -eq 1
check "restore into a running VM's name is refused" bash -c "! '$VMSNAP' --config '$T/vmsnap.conf' restore '$T/good.img' 2>/dev/null"

check "VM still running after all of this" running
check "no temp files left" test -z "$(find "$T" -name '*vmsnap-partial*')"

# Failures after the VM stopped: the migration is cancelled, the VM resumes,
# nothing claims to be complete.
small_fs=$(make_ext4 smallfs 48M)
expect_rc "v2 save to a full file system: exit 1" 1 vs save vm1 "$small_fs/x.img" --format 2
check "  ... says no space, with sizes" grep -qiE "no space left|No space" "$T/err"
check "  ... VM running again" running
check "  ... VM still ticking" wait_log vm1 "^tick $(( $(last_tick vm1) + 2 ))\$" 20
check "  ... no image and no temp file left" test -z "$(ls -A "$small_fs" | grep -v lost+found)"
# v3 is refused before the stop: QEMU 10.0 can crash when a multifd write fails.
pid=$(cat "$T/run/vm1.pid") t0=$(last_tick vm1) mig=$(vs qmp vm1 query-migrate)
expect_rc "v3 save to a file system without room for the RAM: exit 2" 2 vs save vm1 "$small_fs/x.img" --format 3
check "  ... one line: the free space and what v3 needs" \
	err_names "no space for a v3 image of VM 'vm1' (256.* of RAM) at $small_fs/x.img: its file system has .* free, a v3 save needs up to .*; free space, or use --format 2"
check "  ... no migration was started (QEMU's query-migrate unchanged), same QEMU, running" \
	eval 'test "$(vs qmp vm1 query-migrate)" = "$mig" -a "$(cat "$T/run/vm1.pid")" = "$pid" && running'
check "  ... VM still ticking" wait_log vm1 "^tick $((t0 + 2))\$" 20
check "  ... no image and no temp file left" test -z "$(ls -A "$small_fs" | grep -v lost+found)"
