# Faults, 2 of 3: the target fills up or fails with I/O errors in the middle
# of a save. The error is one line naming the target (and, when full, the
# sizes), the VM runs again if it ran, and nothing claims to be a complete
# image; once the disk is healthy again, a save works.
. "$(dirname "$0")/../lib.sh"
. "$TOP/tests/faults_lib.sh"

start_guest vm1 256M 51 100 || { fail "test guest did not boot"; exit 1; }
# vm2 has more memory than base-memory says: a 128 MiB DIMM (memory hotplug,
# which save's size check counts) and 64 MiB of ivshmem (device memory, which
# QEMU reports nowhere). Both are in its stream, and neither is zero.
head -c 128M /dev/urandom >"$T/dimm.bin"
head -c 64M /dev/urandom >"$T/shm.bin"
define_guest vm2 256M 52 100
sed -i 's/^-m 256M$/-m 256M,slots=2,maxmem=1G/' "$T/vms/vm2.vm"
cat >>"$T/vms/vm2.vm" <<VM
-object memory-backend-file,id=dimm,size=128M,mem-path=$T/dimm.bin,share=off
-device pc-dimm,memdev=dimm
-object memory-backend-file,id=shm,size=64M,mem-path=$T/shm.bin,share=on
-device ivshmem-plain,memdev=shm,master=on
VM
vs run vm2 >/dev/null && wait_log vm2 '^check ok' 60 && wait_log vm2 '^tick 5$' 30 ||
	{ fail "test guest with a DIMM and ivshmem did not boot"; exit 1; }
pass "test guests boot (vm2: 256 MiB RAM + 128 MiB DIMM + 64 MiB ivshmem)"

# said_running_again: the error ends by saying the VM was resumed.
said_running_again() { grep -q "; the VM is running again$" "$T/err"; }
no_image_in() { [ -z "$(ls -A "$1" | grep -v lost+found)" ]; }

# 1. Block devices too small. The size check counts RAM and DIMMs: refused
#    before the VM stops.
small=$(make_loop 300M)
expect_rc "block device smaller than RAM + DIMM: exit 2" 2 vs save vm2 "$small"
check_err "  ... one line with the device's size and what the VM may need (RAM and DIMM)" \
	"$small holds 300.00 MiB, but saving VM 'vm2' (384.00 MiB of RAM) may need up to"
check "  ... the VM was never stopped" not grep -q "running again" "$T/err"
check "  ... and runs on" ticking vm2

# Device memory (ivshmem here; video RAM elsewhere) is counted nowhere: a
# device that passes the check but cannot hold the stream fills up in the relay.
dev=$(make_loop 420M)
for opt in "" --bypass-cache; do
	label="device that passes the size check but not the stream${opt:+ ($opt)}"
	expect_rc "$label: exit 1" 1 vs save vm2 "$dev" $opt
	check_err "  ... one line: the device is full, with the stream written and its size" \
		"$dev is full: .* of stream written, the device holds 420.00 MiB"
	check "  ... the VM is running again" said_running_again
	check "  ... QEMU says running, the guest ticks on" eval 'is_running vm2 && ticking vm2'
	check "  ... the device's header says in progress; verify refuses it" eval 'test "$(state "$dev")" = partial && refused "$dev"'
done
vs qmp vm2 stop >/dev/null
expect_rc "the same, with the VM paused by its owner: exit 1" 1 vs save vm2 "$dev"
check "  ... the VM stays paused, as it was" is_paused vm2
vs qmp vm2 cont >/dev/null
big=$(make_loop 480M)
expect_rc "a device large enough takes the save" 0 vs save vm2 "$big" --keep-running
check "  ... the image verifies" verifies "$big"
vs stop vm2 >/dev/null

# 2. A file system full under the O_DIRECT relay (bad_input covers the others).
fs=$(make_ext4 smallfs 128M)
expect_rc "v2 --bypass-cache to a full file system: exit 1" 1 vs save vm1 "$fs/vm1.img" --bypass-cache
check_err "  ... says no space left, with the stream written and the space free" \
	"no space left for $fs/vm1.img after .* of stream (.* free on its file system)"
check "  ... the VM is running again" said_running_again
check "  ... and ticks on" ticking vm1
check "  ... no image and no temp file left" no_image_in "$fs"

# 3. I/O errors: a disk that fails every write after the first 64 MiB of a save.
d1=$(flaky_start d1 400M $((64 << 20))) || { fail "flaky disk did not start"; exit 1; }
for opt in "" --bypass-cache; do
	label="v2 to a block device that starts failing${opt:+ ($opt)}"
	flaky d1 fail
	expect_rc "$label: exit 1" 1 vs save vm1 "$d1" $opt
	check_err "  ... one line naming the device and the I/O error" "$d1.*\\(I/O error\\|Input/output error\\)"
	check "  ... the VM is running again" said_running_again
	check "  ... QEMU says running, the guest ticks on" eval 'is_running vm1 && ticking vm1'
	flaky d1 ok
	check "  ... the disk really failed writes" grep -qE "mode ok .*failed [1-9][0-9]* bytes" "$T/d1.flaky"
	blockdev --flushbufs "$d1"
	check "  ... on the disk: the header says in progress; verify refuses it" eval 'test "$(state "$d1")" = partial && refused "$d1"'
done
expect_rc "the disk healthy again: a save to it works" 0 vs save vm1 "$d1" --keep-running
check "  ... the image verifies" verifies "$d1"

# v3 on ext4 on such a disk: QEMU writes the file (with --bypass-cache
# directly, and the failure is QEMU's; without, the page cache takes the
# writes and the sync fails).
d2=$(flaky_start d2 600M $((64 << 20))) || { fail "flaky disk did not start"; exit 1; }
for opt in --bypass-cache ""; do
	label="v3 to ext4 on a disk that starts failing${opt:+ ($opt)}"
	mkfs.ext4 -q -F "$d2" && mkdir -p "$T/ext" && mount "$d2" "$T/ext" || fail "mkfs/mount on the flaky disk"
	flaky d2 fail
	expect_rc "$label: exit 1" 1 vs save vm1 "$T/ext/vm1.img" --format 3 $opt
	check_err "  ... one line, with the I/O error" "I/O error\|Input/output error"
	check "  ... the VM is running again" said_running_again
	check "  ... QEMU says running, the guest ticks on" eval 'is_running vm1 && ticking vm1'
	flaky d2 ok
	umount "$T/ext" && mount "$d2" "$T/ext" || fail "remounting the flaky disk"
	check "  ... after a remount: no image at the target" test ! -e "$T/ext/vm1.img"
	check "  ... and no temp file that claims to be complete" tmp_not_complete "$T/ext/vm1.img"
	umount "$T/ext"
done
