# v3 images: QEMU's fixed-offset mapped-ram format written by multifd
# channels (one per usable CPU), sparse files, O_DIRECT with two fds in one
# fdset, and the refusals that must come before the VM is stopped.
. "$(dirname "$0")/../lib.sh"

SEED=23
cpus=$(nproc)
start_guest vm1 512M $SEED 50 || { fail "test guest did not boot"; exit 1; }
pass "test guest boots with 512 MiB, half of it filled"

# 1. default channels, regular file, sparse.
before=$(last_tick vm1)
expect_rc "v3 save with default channels" 0 vs --verbose save vm1 "$T/save/a.img" --format 3
check "QEMU's own parameters showed multifd-channels=$cpus (usable CPUs)" \
	grep -q "QEMU migrate parameters: multifd-channels=$cpus " "$T/err"
check "inspect shows v3 and $cpus channels" \
	inspect_has "$T/save/a.img" '"version":3,' "\"channels\":$cpus,"
disk=$(( $(stat -c %b "$T/save/a.img") * 512 )) logical=$(stat -c %s "$T/save/a.img")
check "the image is sparse: $((disk >> 20)) MiB on disk for $((logical >> 20)) MiB logical, 512 MiB RAM half filled" \
	test $disk -lt $((320 << 20)) -a $logical -gt $((512 << 20))
skip=$(lines vm1)
expect_rc "v3 restore" 0 vs restore "$T/save/a.img"
check "ticks continue after the v3 restore (were at $before)" ticks_continue vm1 "$before" "$skip"
check "RAM pattern checks out page for page (pmemsave)" dump_check vm1 $SEED
check "the guest's own full RAM check passes (filled and zero pages)" guest_selfcheck vm1

# Channels follow the CPUs vmsnap may run on.
expect_rc "taskset -c 0: save" 0 taskset -c 0 "$VMSNAP" --config "$T/vmsnap.conf" --verbose save vm1 "$T/save/b.img" --format 3
check "taskset -c 0: QEMU showed multifd-channels=1" grep -q "QEMU migrate parameters: multifd-channels=1 " "$T/err"
expect_rc "restore (channels)" 0 vs restore "$T/save/b.img"
expect_rc "--parallel-channels 3: save" 0 vs --verbose save vm1 "$T/save/c.img" --format 3 --parallel-channels 3
check "--parallel-channels 3: QEMU showed multifd-channels=3" grep -q "multifd-channels=3 " "$T/err"
expect_rc "restore --parallel-channels 1" 0 vs restore "$T/save/c.img" --parallel-channels 1
check "RAM checks out after a 3-channel save and a 1-channel restore" guest_selfcheck vm1

# 2. --bypass-cache on ext4: QEMU direct-io with two fds in one fdset.
ext=$(make_ext4 ext 1G)
before=$(last_tick vm1)
expect_rc "v3 --bypass-cache save on ext4" 0 vs --verbose save vm1 "$ext/d.img" --format 3 --bypass-cache
check "QEMU showed direct-io=on" grep -q "direct-io=on" "$T/err"
check "QEMU's fdset held both fds (buffered and O_DIRECT)" grep -qE "QEMU fdset [0-9]+ holds 2 fds" "$T/err"
check "inspect shows direct_io" inspect_has "$ext/d.img" '"direct_io":true'
skip=$(lines vm1)
expect_rc "restore with --bypass-cache" 0 vs --verbose restore "$ext/d.img" --bypass-cache
check "restore --bypass-cache: QEMU's fdset held 2 fds" grep -qE "QEMU fdset [0-9]+ holds 2 fds" "$T/err"
check "ticks continue (were at $before)" ticks_continue vm1 "$before" "$skip"
check "RAM checks out" dump_check vm1 $SEED
vs save vm1 "$ext/d.img" --format 3 --bypass-cache >/dev/null
expect_rc "a direct-io image restores without --bypass-cache" 0 vs restore "$ext/d.img"
check "RAM checks out" guest_selfcheck vm1

# A file system that refuses O_DIRECT (ramfs): insisted fails, configured falls back.
mkdir -p "$T/ramfs" && mount -t ramfs none "$T/ramfs"
expect_rc "--bypass-cache on ramfs: exit 2" 2 vs save vm1 "$T/ramfs/r.img" --format 3 --bypass-cache
check "  ... says the file system refuses O_DIRECT" err_names "refuses O_DIRECT"
check "  ... VM still running" bash -c "'$VMSNAP' --config '$T/vmsnap.conf' qmp vm1 query-status | grep -q '\"running\":true'"
echo "bypass_cache = yes" >>"$T/vmsnap.conf"
expect_rc "bypass_cache = yes on ramfs: falls back, exit 0" 0 vs save vm1 "$T/ramfs/r.img" --format 3
check "  ... with a warning" grep -q "warning: the file system of .* refuses O_DIRECT" "$T/err"
expect_rc "  ... and restores" 0 vs restore "$T/ramfs/r.img"
sed -i '/bypass_cache/d' "$T/vmsnap.conf"

# 3. refusals before the stop.
dev=$(make_loop 600M)
dd if=/dev/urandom of="$dev" bs=1M count=8 status=none
sum=$(md5sum <"$dev")
ticks=$(last_tick vm1)
expect_rc "v3 to a block device: exit 2" 2 vs save vm1 "$dev" --format 3
check "  ... names the device, says regular file, suggests --format 2" \
	bash -c "grep -q '$dev is a block device' '$T/err' && grep -q 'regular file' '$T/err' && grep -q -- '--format 2' '$T/err'"
check "  ... device untouched" test "$(md5sum <"$dev")" = "$sum"
check "  ... VM never stopped (still counting)" wait_log vm1 "^tick $((ticks + 2))\$" 20
mkfifo "$T/fifo"
expect_rc "v3 to a pipe: exit 2" 2 vs save vm1 "$T/fifo" --format 3
check "  ... says pipe" err_names "a pipe"
expect_rc "v3 to a character device: exit 2" 2 vs save vm1 /dev/null --format 3
check "  ... says character device" err_names "character device"
echo "save_image_version = 3" >>"$T/vmsnap.conf"
expect_rc "save_image_version = 3 in the config selects v3" 0 vs save vm1 "$T/save/cfg.img"
check "  ... inspect says version 3" inspect_has "$T/save/cfg.img" '"version":3,'
expect_rc "  ... restores" 0 vs restore "$T/save/cfg.img"
check "RAM checks out at the end" guest_selfcheck vm1
