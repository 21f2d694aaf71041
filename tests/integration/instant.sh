# Instant mode: guest RAM in a file, so a save writes only device state and
# a restore maps the file again; golden pairs, identity checks, power fail.
. "$(dirname "$0")/../lib.sh"

printf '[vm vm1]\ninstant = yes\n[vm big]\ninstant = yes\n[vm gold]\ninstant = yes\n' >>"$T/vmsnap.conf"
json_field() { sed -n "s/.*\"$2\":\\([0-9]*\\).*/\\1/p" "$1"; }

# 1. Save and restore at 1 GiB and 4 GiB.
for spec in "vm1 1G 61" "big 4G 62"; do
	set -- $spec
	name=$1 mem=$2 seed=$3
	start_guest $name $mem $seed 100 || { fail "$name: guest did not boot"; continue; }
	check "$name: its RAM is the file save_dir/$name.ram ($mem)" \
		test "$(stat -c %s "$T/save/$name.ram")" -eq "$(numfmt --from=iec $mem)"
	before=$(last_tick $name)
	expect_rc "$name: instant save" 0 vs save $name "$T/save/$name.img" --json
	stream=$(json_field "$T/out" stream_length)
	check "$name: the stream is under 2 MiB ($stream bytes) for $mem of RAM" test "$stream" -lt $((2 << 20))
	check "$name: inspect shows version 4 and the RAM file" \
		inspect_has "$T/save/$name.img" '"version":4,' "\"ram_file\":\"$T/save/$name.ram\""
	skip=$(lines $name)
	expect_rc "$name: instant restore" 0 vs restore "$T/save/$name.img" --json
	check "$name: ticks continue (were at $before)" ticks_continue $name "$before" "$skip"
	check "$name: RAM pattern checks out page for page" dump_check $name $seed
	check "$name: the guest's own RAM check passes" guest_selfcheck $name
	[ "$name" = big ] && vs stop big >/dev/null
done
rm -f "$T/save/big.ram" "$T/save/big.img"

# Refusals that come before the VM stops.
expect_rc "--keep-running is refused in instant mode" 2 vs save vm1 "$T/save/k.img" --keep-running
check "  ... says why" \
	err_is "vmsnap: save: VM 'vm1' is in instant mode: with --keep-running the guest would change the RAM file the image refers to"
printf -- '-m 256M\n-object memory-backend-ram,id=m0,size=256M\n-machine memory-backend=m0\n' >"$T/vms/own.vm"
printf '[vm own]\ninstant = yes\n' >>"$T/vmsnap.conf"
expect_rc "a definition with its own memory backend is refused" 2 vs run own
check "  ... names the option" \
	err_is "vmsnap: run: $T/vms/own.vm: -object memory-backend-ram,id=m0,size=256M: in instant mode vmsnap provides the memory backend; remove it"

# 2. A resume-once image refers to its very RAM file.
vs save vm1 "$T/save/vm1.img" >/dev/null
cp --sparse=always "$T/save/vm1.ram" "$T/vm1.ram.copy" && mv "$T/vm1.ram.copy" "$T/save/vm1.ram"
expect_rc "a replaced RAM file (same content, new inode) is refused" 3 vs restore "$T/save/vm1.img"
check "  ... says replaced" \
	err_is "vmsnap: restore: image $T/save/vm1.img: its RAM file $T/save/vm1.ram was replaced since the save (another inode): refused"
check "  ... before QEMU started" no_qemu
truncate -s 512M "$T/save/vm1.ram"
expect_rc "a resized RAM file is refused" 3 vs restore "$T/save/vm1.img"
check "  ... names both sizes" \
	err_is "vmsnap: restore: image $T/save/vm1.img: its RAM file $T/save/vm1.ram is 536870912 bytes, the image needs 1073741824: refused"
check "  ... before QEMU started" no_qemu

# 3. Golden and signed: every boot from the same pristine RAM file.
mkdir -p "$T/trusted"
vs keygen "$T/k.pem" "$T/trusted/k.pem" >/dev/null
echo "sign_key = $T/k.pem" | sed -i "1r /dev/stdin" "$T/vmsnap.conf"
start_guest gold 512M 63 100 || fail "gold: guest did not boot"
saved=$(last_tick gold)
expect_rc "golden instant save (signed)" 0 vs save gold "$T/save/gold.img" --golden
ram=$(ls "$T"/save/gold.img.*.ram)
check "the golden pair's RAM file is a file of its own beside the image" test -f "$ram"
sum=$(md5sum <"$ram")
for boot in 1 2; do
	skip=$(lines gold)
	expect_rc "golden boot $boot: restore" 0 vs restore "$T/save/gold.img"
	check "golden boot $boot: the guest counts on from the saved tick $saved" ticks_continue gold "$saved" "$skip"
	first=$(tail -n +$((skip + 1)) "$T/gold.log" | grep -E '^tick ' | head -n 1 | cut -d' ' -f2)
	check "golden boot $boot: it starts again from the saved value (tick $first)" test "$first" -le $((saved + 2))
	check "golden boot $boot: RAM checks out" guest_selfcheck gold
	vs qmp gold '{"execute":"send-key","arguments":{"keys":[{"type":"qcode","data":"m"}]}}' >/dev/null
	check "golden boot $boot: the guest changed its memory" wait_log gold '^mutate done' 20 "$skip"
	wait_log gold "^tick $((first + 10))\$" 30
	vs stop gold >/dev/null
	check "golden boot $boot: the RAM file is unchanged" test "$(md5sum <"$ram")" = "$sum"
done
check "a cold start of the VM leaves the golden RAM file alone" bash -c "'$VMSNAP' --config '$T/vmsnap.conf' run gold >/dev/null"
vs stop gold >/dev/null
check "  ... unchanged" test "$(md5sum <"$ram")" = "$sum"
cp "$ram" "$T/ram.orig"
flip_byte "$ram" $((100 << 20))
expect_rc "signed golden pair, one changed RAM page, verify_payload = yes: refused" 3 vs restore "$T/save/gold.img"
check "  ... says the RAM file changed" \
	err_names "^vmsnap: restore: image $T/save/gold.img: RAM file digest mismatch: $ram was changed since the save$"
check "  ... before QEMU started" no_qemu
expect_rc "  ... and verify says so too" 3 vs verify "$T/save/gold.img"
cp "$T/ram.orig" "$ram"
expect_rc "the restored RAM file verifies again" 0 vs verify "$T/save/gold.img"
sed -i '/^sign_key/d' "$T/vmsnap.conf"

# 4. Power fail with one instant and one v3 VM: both resume.
echo "vms = vm1 v3vm" | sed -i "1r /dev/stdin" "$T/vmsnap.conf"
vs stop vm1 >/dev/null 2>&1
s1=$(lines vm1)
vs run vm1 >/dev/null; wait_log vm1 '^tick 5$' 120 "$s1"
start_guest v3vm 256M 64 100 || fail "v3vm did not boot"
t1=$(last_tick vm1) t2=$(last_tick v3vm)
expect_rc "power fail: watch --now saves both" 0 vs watch --now
check "  ... vm1 in instant mode (v4), v3vm as v3, each with its sync time" \
	bash -c "grep -q 'vm1: saved to .*: v4' '$T/err' && grep -q 'v3vm: saved to .*: v3' '$T/err'"
s1=$(lines vm1) s2=$(lines v3vm)
expect_rc "resume restores both" 0 vs resume
check "vm1 continues (was at $t1)" ticks_continue vm1 "$t1" "$s1"
check "v3vm continues (was at $t2)" ticks_continue v3vm "$t2" "$s2"
check "vm1 RAM checks out" guest_selfcheck vm1

# Between power failures, watch starts writeback of instant RAM files, so a
# save is left little to sync. A cold start fills 1 GiB; the kernel by itself
# would write it back only after 30 s.
vs stop vm1 >/dev/null
s1=$(lines vm1)
vs run vm1 >/dev/null && wait_log vm1 '^check ok' 300 "$s1" || fail "vm1: cold start"
d=$(dirty_pages "$T/save/vm1.ram")
check "the guest's fill left its RAM file dirty in the page cache ($d pages)" test "$d" -gt $((128 << 10))
start_watch "$T/watch.err" || fail "watch did not start watching"
settled() { [ "$(dirty_pages "$T/save/vm1.ram")" -lt 2560 ]; }
check "watch writes the RAM file back while it waits (under 10 MiB left dirty)" wait_until 15 settled
kill "$wpid"; wait_exit "$wpid" 60
check "  ... and stops on SIGTERM without saving" grep -q "without saving" "$T/watch.err"
check "  ... vm1 still runs" wait_log vm1 "^tick $(( $(last_tick vm1) + 1 ))\$" 10

# 5. Provisioning a golden pair: both files copied (holes kept) and verified.
ext=$(make_ext4 dev 2G)
expect_rc "provision of a golden instant pair to another file system" 0 vs provision "$T/save/gold.img" "$ext/kiosk.img"
check "  ... reports the RAM file and fs-verity (detected at run time)" grep -q "RAM file .*fs-verity" "$T/out"
src_ram=$(ls "$T"/save/gold.img.*.ram) dst_ram=$(ls "$ext"/gold.img.*.ram)
check "  ... the RAM file's copy keeps its holes" \
	test $(( $(stat -c %b "$dst_ram") * 512 )) -le $(( $(stat -c %b "$src_ram") * 512 * 105 / 100 ))
check "  ... and is identical" cmp -s "$src_ram" "$dst_ram"
expect_rc "  ... the copy verifies" 0 vs verify "$ext/kiosk.img"
skip=$(lines gold)
expect_rc "  ... and restores" 0 vs restore "$ext/kiosk.img"
check "  ... the guest continues from the saved tick" ticks_continue gold "$saved" "$skip"
vs stop gold >/dev/null
# A pair whose RAM file changed since the save: its digest, hashed as the
# copy reads it, differs; neither file is put in place.
mkdir "$T/tam" "$ext/p3" && cp --sparse=always "$T/save/gold.img" "$src_ram" "$T/tam/"
tam_ram=$T/tam/$(basename "$src_ram")
flip_byte "$tam_ram" $((100 << 20))
expect_rc "provision of a golden pair whose RAM file changed: exit 3" 3 \
	vs provision "$T/tam/gold.img" "$ext/p3/kiosk.img"
check "  ... says RAM file digest mismatch" test "$(tail -n 1 "$T/err")" = \
	"vmsnap: provision: image $T/tam/gold.img: RAM file digest mismatch: $tam_ram was changed since the save"
check "  ... nothing left in the target directory (no RAM file, image or temp file)" \
	test -z "$(ls -A "$ext/p3")"
rm -rf "$T/tam"
flip_byte "$dst_ram" $((100 << 20))
expect_rc "a provisioned pair with a changed RAM page is refused (verify_payload = yes)" 3 vs restore "$ext/kiosk.img"
# The RAM file's temp name is created O_EXCL|O_NOFOLLOW: a planted symlink is not followed.
mkdir "$ext/p2" && echo precious >"$T/victim"
ln -s "$T/victim" "$ext/p2/$(basename "$dst_ram").vmsnap-partial"
expect_rc "provision with a symlink planted at the RAM file's temp name: exit 1" 1 vs provision "$T/save/gold.img" "$ext/p2/kiosk.img"
check "  ... the file it points to is untouched, no copy" eval 'test "$(cat "$T/victim")" = precious -a ! -e "$ext/p2/kiosk.img"'
vs save vm1 "$T/save/once.img" >/dev/null || fail "saving a resume-once instant image"
expect_rc "a resume-once instant image is not provisioned" 2 vs provision "$T/save/once.img" "$ext/once.img"
check "  ... says why" \
	err_is "vmsnap: provision: image $T/save/once.img is a resume-once instant image tied to this machine's RAM file: provision golden images (save --golden)"

# A VM running from a golden pair has a private RAM mapping: its changes are
# not in the file, so a save carries the RAM in the stream instead.
vs restore "$T/save/gold.img" >/dev/null || fail "restoring the golden pair"
expect_rc "saving a VM that runs from a golden pair" 0 vs save gold "$T/save/gold-v3.img" --format 3 --json
check "  ... writes a v3 image with the RAM in it" \
	bash -c "grep -q '\"format\":3' '$T/out' && test \$(sed -n 's/.*\"stream_length\":\\([0-9]*\\).*/\\1/p' '$T/out') -gt $((256 << 20))"
expect_rc "  ... which restores" 0 vs restore "$T/save/gold-v3.img"
check "  ... with its RAM intact" guest_selfcheck gold
