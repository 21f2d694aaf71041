# Faults, 3 of 3: a power cut at each step of a save's durability protocol.
# The target lives on a flaky disk (build/guest/flakydisk under a loop
# device: the block device itself, or ext4 on it). vmsnap ends at the step
# (VMSNAP_CRASH_AT), then the power goes: the disk drops every write from
# then on, so what the page cache still held for it is lost (the kernel
# writes it back into nothing), QEMU dies, /run is emptied. Power back: the
# caches are dropped, the disk keeps writes again, ext4 is mounted (journal
# replay), and boot-time `vmsnap resume` must either restore a complete image
# or cold-start the VM, never restore a torn one. An image that says complete
# must be, byte for byte, the earlier image or everything the save wrote.
. "$(dirname "$0")/../lib.sh"
VMSNAP=$VMSNAP_TEST # VMSNAP_CRASH_AT needs the test build
[ -x "$VMSNAP" ] || { echo "not ok - $VMSNAP missing (make build/host/vmsnap)"; exit 1; }
. "$TOP/tests/faults_lib.sh"

SEED=61
cat "$T/vmsnap.conf" >"$T/base.conf"
# image_of TARGET: vm1's pending image (what resume restores) is TARGET.
image_of() { { cat "$T/base.conf"; echo "vms = vm1"; printf '[vm vm1]\nimage = %s\n' "$1"; } >"$T/vmsnap.conf"; }

fdev=$(flaky_start fs 1G) && mkfs.ext4 -q -F "$fdev" && mkdir -p "$T/pfs" && mount "$fdev" "$T/pfs" ||
	{ fail "ext4 on a flaky disk"; exit 1; }
bdev=$(flaky_start blk 320M) || { fail "a flaky block device"; exit 1; }
pass "flaky disks: ext4 on $fdev, and $bdev"

# The bytes of the image at TARGET, as long as its header says (cut at the
# stream's end), or of the file. md5 IMAGE
img_md5() {
	local size
	if [ -b "$1" ]; then
		size=$("$VMSNAP" --config "$T/vmsnap.conf" inspect --json "$1" 2>/dev/null | sed -n 's/.*"image_size":\([0-9]*\).*/\1/p')
		head -c "${size:-0}" "$1" | md5sum
	else
		md5sum <"$1"
	fi
}
dropped() { sed -n 's/.*dropped \([0-9]*\),.*/\1/p' "$T/$1.flaky" | tail -n 1; }

# power_off DISK TARGET: the cut, then the next boot's start, as described above.
power_off() {
	local disk=$1 target=$2 q
	flaky "$disk" drop
	q=$(qpid vm1)
	[ -n "$q" ] && kill -9 "$q" && wait_until 10 not test -d "/proc/$q"
	rm -rf "$T/run" && mkdir "$T/run"
	if [ "$disk" = fs ]; then
		umount "$T/pfs" # writes its dirty pages back: into nothing
	else
		exec {HOLD}<&- # the last close writes the device's dirty pages back: into nothing
	fi
	blockdev --flushbufs "$(cat "$T/$disk.dev")" # and forgets the clean ones
	flaky "$disk" ok
	[ "$disk" = fs ] && mount "$fdev" "$T/pfs"
	return 0
}

# power_cut LABEL DISK TARGET STEP EXPECT [SAVE_OPTIONS...]
#   EXPECT: old (resume restores the earlier image), new (the image of the
#   cut save), cold (no complete image: resume cold-starts the VM)
power_cut() {
	local label=$1 disk=$2 target=$3 step=$4 expect=$5 t_old t_cut old new= st skip d0 first; shift 5
	image_of "$target"
	start_guest vm1 256M $SEED 100 || { fail "$label: test guest did not boot"; return; }
	t_old=$(last_tick vm1)
	vs save vm1 "$target" --keep-running "$@" >/dev/null 2>&1 || { fail "$label: the earlier save failed"; return; }
	old=$(img_md5 "$target")
	wait_log vm1 "^tick $((t_old + 4))\$" 20
	t_cut=$(last_tick vm1)
	[ "$disk" = blk ] && exec {HOLD}<"$target" # vmsnap's close is not the last: its dirty pages stay
	d0=$(dropped "$disk")
	VMSNAP_CRASH_AT=$step "$VMSNAP" --config "$T/vmsnap.conf" save vm1 "$target" --keep-running "$@" >/dev/null 2>&1
	check "$label: vmsnap ends at $step (137)" test $? = 137
	# What it had written, as the page cache still shows it.
	case $step in
	before-rename) [ "$disk" = fs ] && new=$(md5sum <"$(tmp_of "$target")") || new=$(img_md5 "$target") ;;
	after-commit) new=$(img_md5 "$target") ;;
	esac
	power_off "$disk" "$target"
	echo "# $label: $(( ($(dropped "$disk") - ${d0:-0}) >> 10 )) KiB of unsynced writes lost in the cut"
	st=$(state "$target")
	case $expect in
	old) check "$label: after the cut, the target is the earlier image, byte for byte" \
		eval '[ "$st" = complete ] && [ "$(img_md5 "$target")" = "$old" ]' ;;
	new) check "$label: after the cut, the target is the new image, every byte written" \
		eval '[ "$st" = complete ] && [ "$(img_md5 "$target")" = "$new" ]' ;;
	cold) check "$label: after the cut, the target claims no complete image ($st)" test "$st" != complete ;;
	esac
	[ "$st" = complete ] && check "$label: ... and it is not torn (old or new, byte for byte)" \
		eval '[ "$(img_md5 "$target")" = "$old" ] || [ "$(img_md5 "$target")" = "$new" ]'
	skip=$(lines vm1)
	expect_rc "$label: resume after the cut" 0 vs resume
	case $expect in
	cold)
		check "$label: ... cold-starts the VM, saying why" grep -q "vm1: cold-started: " "$T/err"
		check "$label: ... the guest boots afresh" wait_log vm1 '^vmsnap-guest start' 30 "$skip" ;;
	*)
		check "$label: ... restores the image" grep -q "vm1: restored from $target" "$T/err"
		check "$label: ... the guest counts on (no reboot)" ticks_continue vm1 "$t_old" "$skip"
		first=$(tail -n +"$((skip + 1))" "$T/vm1.log" | grep -E '^tick ' | head -n 1 | cut -d' ' -f2)
		if [ "$expect" = old ]; then
			check "$label: ... from the earlier image (tick $first, the cut was at $t_cut)" test "${first:-0}" -le "$t_cut"
		else
			check "$label: ... from the new image (tick $first, the cut was at $t_cut)" test "${first:-0}" -gt "$t_cut"
		fi
		check "$label: ... its RAM checks out" guest_selfcheck vm1 ;;
	esac
	vs stop vm1 >/dev/null 2>&1
}

F=$T/pfs/vm1.img
for step in before-data-sync before-header before-rename after-commit; do
	case $step in after-commit) e=new ;; *) e=old ;; esac
	power_cut "file, cut $step" fs "$F" $step $e
done
power_cut "v3 file, cut before-header" fs "$F" before-header old --format 3
power_cut "v3 file, cut after-commit" fs "$F" after-commit new --format 3
# A block device is written in place: the earlier image is gone from the
# start (its header is overwritten, and synced, before the stream).
for opt in "" --bypass-cache; do
	for step in before-data-sync before-header before-rename after-commit; do
		case $step in before-rename | after-commit) e=new ;; *) e=cold ;; esac
		power_cut "block device${opt:+ $opt}, cut $step" blk "$bdev" $step $e $opt
	done
done
