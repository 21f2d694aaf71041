# The real Linux guest (Debian's kernel, BusyBox, tests/linux/init) saved
# while it writes its disk and holds a random file in RAM, then restored:
# from inside, the file's hash, the disk's records (in place, none missing,
# uptime rising in small steps) and the kernel log (no warnings) are checked,
# after every round trip, two round trips per format, one guest throughout.
. "$(dirname "$0")/../lib.sh"

linux_built || { fail "the Linux guest is built (make linux-guest)"; exit 1; }
mkdir -p "$T/trusted" && chmod 755 "$T/trusted"
vs keygen "$T/k.pem" "$T/trusted/k.pem" >/dev/null
printf '[vm lxi]\ninstant = yes\n' >>"$T/vmsnap.conf"

# disk_records FILE: the records at the start of a raw disk, each in its
# sector (record N in sector N), none missing: prints how many.
disk_records() {
	tail -c +513 "$1" | head -c $((8 << 20)) | tr -d '\000' |
		awk '$1 != "rec" || $2 != NR { print "record " NR ": " $0 > "/dev/stderr"; exit 1 }
		     END { print NR }'
}

# seq_above NAME N: the guest has written a record past N.
seq_above() { local n; n=$(linux_cmd "$1" seq 60) && [ "$n" -gt "$2" ]; }
# same_boot NAME SKIP: no "vmg boot" line after SKIP lines of its log.
same_boot() { ! tail -n +"$(($2 + 1))" "$T/$1.log" | grep -q '^vmg boot'; }
starts_with_ok() { [[ $1 == ok* ]]; }

# After a restore, from inside the guest: same boot, same file, the disk
# writer went on from where it was and its records are all in place, and
# the kernel logged no warning. linux_after LABEL NAME SEQ_BEFORE SKIP BLOB
linux_after() {
	local label=$1 name=$2 before=$3 skip=$4 blob=$5 seq ans
	check "$label: the guest answers" seq_above "$name" -1
	check "$label: same boot (no 'vmg boot' since the restore)" same_boot "$name" "$skip"
	wait_until 30 seq_above "$name" "$before"
	seq=$(linux_cmd "$name" seq)
	check "$label: the disk writer goes on (record $before before the save, $seq now)" test "${seq:-0}" -gt "$before"
	ans=$(linux_cmd "$name" hash)
	check "$label: the file in tmpfs is unchanged" test "$ans" = "$blob"
	ans=$(linux_cmd "$name" "disk 5")
	check "$label: records 1..N in place, uptime steps under 5 s ($ans)" starts_with_ok "$ans"
	ans=$(linux_cmd "$name" warn)
	check "$label: no kernel warnings (clocksource, RCU stall, hung task, BUG, WARNING)" test "$ans" = 0
	# (check succeeds either way: the lines are shown whenever there are any)
	[ "$ans" = 0 ] || grep '^vmg-warn' "$T/$name.log" | sort -u | head -n 5 | sed 's/^/#   /'
}

# round NAME LABEL TARGET SAVE_ARGS -- RESTORE_ARGS: save while it writes,
# check the disk from the host (flushed before QEMU quit), restore, check.
round() {
	local name=$1 label=$2 target=$3 save_args=() restore_args=() before blob n skip
	shift 3
	while [ $# -gt 0 ] && [ "$1" != -- ]; do save_args+=("$1"); shift; done
	[ $# -gt 0 ] && shift
	restore_args=("$@")
	blob=$(linux_blob "$name")
	before=$(linux_cmd "$name" seq)
	expect_rc "$label: save (record $before written)" 0 vs save "$name" "$target" "${save_args[@]}"
	n=$(disk_records "$T/$name.disk")
	check "$label: the disk file holds records 1..$n, at least $before" test "${n:-0}" -ge "$before"
	skip=$(lines "$name")
	expect_rc "$label: restore" 0 vs restore "$target" "${restore_args[@]}"
	linux_after "$label" "$name" "$before" "$skip" "$blob"
}

start=$SECONDS
check "the guest boots, writes its file and starts its writer" start_linux lx
check "it printed the file's hash" test -n "$(linux_blob lx)"
check "its first records are on the disk" wait_until 30 seq_above lx 1
echo "# booted in $((SECONDS - start)) s"

loop=$(make_loop 320M)
for r in 1 2; do
	round lx "v2 #$r" "$T/save/lx.img" --format 2
	round lx "v3 #$r" "$T/save/lx.img" --format 3
	round lx "v3 --bypass-cache #$r" "$T/save/lx.img" --format 3 --bypass-cache -- --bypass-cache
	round lx "v2 to a block device #$r" "$loop" --format 2
done
echo "sign_key = $T/k.pem" | sed -i "1r /dev/stdin" "$T/vmsnap.conf"
for r in 1 2; do
	round lx "v3 signed #$r" "$T/save/lx.img" --format 3
	check "v3 signed #$r: the image is signed" inspect_has "$T/save/lx.img" '"signature":"present'
done
sed -i '/^sign_key = /d' "$T/vmsnap.conf"

# 96 MiB of tmpfs written and deleted: without free-page reporting the
# freed pages keep their data, and a v3 image stores them.
check "plain: 96 MiB used and freed" test "$(linux_cmd lx "fill 96")" = "done 96"
round lx "v3 after 96 MiB freed, no reporting" "$T/save/plain.img" --format 3
plain=$(du -B1 "$T/save/plain.img" | cut -f1)

# The checks can fail: a record changed under the guest, a warning logged.
dd if="$T/lx.disk" of="$T/rec3" bs=512 skip=3 count=1 status=none
printf 'rec 999 1.00\n' | dd of="$T/lx.disk" bs=512 seek=3 conv=sync,notrunc status=none
ans=$(linux_cmd lx "disk 5")
check "a record changed on the host: the guest's disk check says so ($ans)" test "$ans" = "bad record 3: rec 999 1.00"
dd if="$T/rec3" of="$T/lx.disk" bs=512 seek=3 conv=notrunc status=none
linux_cmd lx "kmsg WARNING: planted by linux_guest.sh" >/dev/null
check "a planted kernel warning is counted" test "$(linux_cmd lx warn)" = 1
vs stop lx >/dev/null
n=$(disk_records "$T/lx.disk")
check "after all round trips the disk holds records 1..$n with none missing" test "${n:-0}" -gt 20

# Free-page reporting: QEMU discards what the guest reports free (2 s after
# it was freed, in 2 MiB blocks), so those pages are holes in a v3 image.
rss_mib() { echo $(($(awk '/^VmRSS/ { print $2 }' "/proc/$(cat "$T/run/$1.pid")/status") / 1024)); }
# rss_below NAME MIB: QEMU's resident memory is at most MIB.
rss_below() { [ "$(rss_mib "$1")" -le "$2" ]; }
check "reporting: the guest boots with virtio-balloon free-page-reporting=on" \
	start_linux lxb 256M '-device virtio-balloon-pci,free-page-reporting=on'
check "reporting: 96 MiB used and freed" test "$(linux_cmd lxb "fill 96")" = "done 96"
rss=$(rss_mib lxb)
check "reporting: QEMU's resident memory falls by 64 MiB or more (from $rss MiB)" \
	wait_until 60 rss_below lxb $((rss - 64))
round lxb "v3, free-page reporting" "$T/save/lxb.img" --format 3
rep=$(du -B1 "$T/save/lxb.img" | cut -f1)
check "reporting: the v3 image holds 64 MiB less ($((rep >> 20)) MiB allocated, $((plain >> 20)) MiB without reporting)" \
	test $((rep + (64 << 20))) -le "$plain"
round lxb "v2, free-page reporting" "$T/save/lxb.img" --format 2
vs stop lxb >/dev/null

# Instant mode: the guest's RAM is a file in save_dir. With free-page
# reporting QEMU punches what the guest freed out of that file.
check "instant: the guest boots (free-page reporting on)" \
	start_linux lxi 256M '-device virtio-balloon-pci,free-page-reporting=on'
ram_mib() { du -m "$T/save/$1.ram" | cut -f1; }
ram_below() { [ "$(ram_mib "$1")" -le "$2" ]; }
check "instant: 96 MiB used and freed" test "$(linux_cmd lxi "fill 96")" = "done 96"
ram=$(ram_mib lxi)
check "instant: the RAM file's allocated size falls by 64 MiB or more (from $ram MiB)" \
	wait_until 60 ram_below lxi $((ram - 64))
for r in 1 2; do
	round lxi "instant #$r" "$T/save/lxi.img"
	check "instant #$r: the image is version 4" inspect_has "$T/save/lxi.img" '"version":4,'
done
vs stop lxi >/dev/null
echo "# $((SECONDS - start)) s in all"
