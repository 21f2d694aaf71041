# provision: factory copies of signed images. The source's header,
# definition and signature are checked before any write, its payload digest
# as it is copied (one read); holes are kept, the header goes last, the copy
# is read back and verified; refusals leave the target untouched; a source
# that fails its digest or an interrupted copy never leaves a target that verifies.
. "$(dirname "$0")/../lib.sh"

SEED=41
mkdir -p "$T/trusted" && chmod 755 "$T/trusted"
vs keygen "$T/k.pem" "$T/trusted/k.pem" >/dev/null
vs keygen "$T/other.pem" "$T/other.pub" >/dev/null
echo "sign_key = $T/k.pem" >>"$T/vmsnap.conf"

on_disk() { echo $(( $(stat -c %b "$1") * 512 )); }
md5() { md5sum <"$1" | cut -d' ' -f1; }
# within PCT A B: A and B differ by at most PCT percent of B.
within() { local d=$(( $2 > $3 ? $2 - $3 : $3 - $2 )); [ $((d * 100)) -le $(($1 * $3)) ]; }
# untouched NAME FILE SUM: the file or device still has the checksum it had.
untouched() { check "$1" test "$(md5 "$2")" = "$3"; }

start_guest vm1 512M $SEED 50 || { fail "test guest did not boot"; exit 1; }
pass "test guest boots with 512 MiB, half of it filled"

# 1. A signed, golden, sparse v3 image onto a file on ext4.
before=$(last_tick vm1)
expect_rc "v3 save --golden, signed (sign_key)" 0 vs save vm1 "$T/save/g.img" --format 3 --golden
check "inspect shows golden" inspect_has "$T/save/g.img" '"golden":true'
check "  ... the save warns: the test guest's definition has no vmgenid" \
	err_is "vmsnap: warning: golden image of VM 'vm1': its definition has no -device vmgenid, so restored copies will share their RNG state: add -device vmgenid to the definition"
ext=$(make_ext4 ext 1G)
expect_rc "provision the v3 image to a file on ext4" 0 vs provision "$T/save/g.img" "$ext/g.img"
check "  ... and so does provision" \
	err_is "vmsnap: warning: golden image $T/save/g.img: its definition has no -device vmgenid, so restored copies will share their RNG state: add -device vmgenid to the definition"
check "  ... reports bytes written, throughput and verification" \
	bash -c "grep -q '^wrote .* MB/s' '$T/out' && grep -q '^verified: source .* and target read back .*payload digest ok' '$T/out'"
src=$(on_disk "$T/save/g.img") dst=$(on_disk "$ext/g.img") logical=$(stat -c %s "$T/save/g.img")
check "  ... holes kept: $((dst >> 20)) MiB on disk, source $((src >> 20)) MiB, logical $((logical >> 20)) MiB" \
	within 5 "$dst" "$src"
check "  ... same logical size" test "$(stat -c %s "$ext/g.img")" = "$logical"
check "  ... same bytes" cmp -s "$T/save/g.img" "$ext/g.img"
check "  ... no temp file left" test -z "$(ls -A "$ext" | grep vmsnap-partial)"
expect_rc "  ... the copy verifies" 0 vs verify "$ext/g.img"
check "  ... golden, signature and payload ok" \
	bash -c "grep -q 'golden' '$T/out' && grep -q '^signature: ok' '$T/out' && grep -q '^payload: ok' '$T/out'"
for n in 1 2; do
	skip=$(lines vm1)
	expect_rc "restore the provisioned golden image (#$n)" 0 vs restore "$ext/g.img"
	check "  ... ticks continue (were at $before)" ticks_continue vm1 "$before" "$skip"
	[ $n = 2 ] || vs stop vm1 >/dev/null
done
check "  ... RAM checks out" guest_selfcheck vm1

# The chunk table after the stream (restore checks each chunk against it) is
# written from the hashes of the stream as copied: a source without one
# (signed before tables) or with a wrong one gives a copy with the true one.
end=$(( $(header_u64 "$T/save/g.img" 48) + $(header_u64 "$T/save/g.img" 56) ))
check "the v3 image has a chunk table after its stream" test "$(stat -c %s "$T/save/g.img")" -gt "$end"
for how in strip flip; do
	cp --sparse=always "$T/save/g.img" "$T/t.img"
	if [ $how = flip ]; then flip_byte "$T/t.img" $(( (end + 4095) / 4096 * 4096 + 40 )); else truncate -s $end "$T/t.img"; fi
	expect_rc "a source with its chunk table ${how}ped provisions" 0 vs provision "$T/t.img" "$ext/t.img"
	check "  ... the copy has the true table: the same bytes as the original image" \
		cmp -s "$T/save/g.img" "$ext/t.img"
	rm -f "$T/t.img" "$ext/t.img"
done

# 2. A v2 image onto a block device, every byte written; restore from the device.
before=$(last_tick vm1)
expect_rc "v2 save, signed" 0 vs save vm1 "$T/save/v2.img" --format 2
dev=$(make_loop 600M)
dd if=/dev/urandom of="$dev" bs=1M count=8 status=none
expect_rc "provision the v2 image to block device $dev (--progress)" 0 \
	vs provision "$T/save/v2.img" "$dev" --progress
check "  ... progress lines with bytes, percent and MB/s" \
	grep -qE '^vmsnap: provisioning .*: [0-9.]+ [KMG]iB of .* \([0-9]+%\), [0-9]+ MB/s' "$T/err"
check "  ... every byte written" grep -q 'every byte' "$T/out"
len=$(stat -c %s "$T/save/v2.img")
check "  ... the device holds the image's bytes" cmp -s -n "$len" "$T/save/v2.img" "$dev"
expect_rc "  ... the device verifies" 0 vs verify "$dev"
skip=$(lines vm1)
expect_rc "restore from the device" 0 vs restore "$dev"
check "  ... ticks continue (were at $before)" ticks_continue vm1 "$before" "$skip"
check "  ... RAM pattern checks out page for page" dump_check vm1 $SEED
check "  ... the guest's own RAM check passes" guest_selfcheck vm1

# 3. Refusals, each before a byte of the target is written (but for a payload
# digest that differs: it is known only once the copy has read the stream).
sum=$(md5 "$dev")
expect_rc "v3 image to a block device: exit 2" 2 vs provision "$T/save/g.img" "$dev"
check "  ... the save message (regular file, --format 2)" \
	err_is "vmsnap: provision: target $dev is a block device: v3 images are fixed-offset (mapped-ram) and need a regular file; use --format 2 for a block device"
untouched "  ... device untouched" "$dev" "$sum"

head -c 1M /dev/urandom >"$ext/old.img"
old=$(md5 "$ext/old.img")
expect_rc "wrong key (--pubkey of another key): exit 3" 3 \
	vs provision "$T/save/v2.img" "$ext/old.img" --pubkey "$T/other.pub"
check "  ... says wrong key" \
	err_is "vmsnap: provision: image $T/save/v2.img: wrong key: the image was signed by a different key than $T/other.pub"
untouched "  ... target file untouched" "$ext/old.img" "$old"
expect_rc "wrong key to a block device: exit 3" 3 vs provision "$T/save/v2.img" "$dev" --pubkey "$T/other.pub"
untouched "  ... device untouched" "$dev" "$sum"
expect_rc "right key with --pubkey" 0 vs provision "$T/save/v2.img" "$ext/k.img" --pubkey "$T/trusted/k.pem"

# A payload byte flipped in the middle of the stream: the digest, hashed as
# the copy reads it, differs; the target never says complete.
# tamper SRC OUT: OUT is SRC with one byte in the middle of its stream flipped.
tamper() {
	cp "$1" "$2" && flip_byte "$2" $(( $(header_u64 "$1" 48) + $(header_u64 "$1" 56) / 2 ))
}
state() { dd if="$1" bs=1 skip=16 count=4 status=none; } # the header's state word
tamper "$T/save/v2.img" "$T/tampered.img"
tsum=$(md5 "$T/tampered.img")
expect_rc "a payload byte flipped in the middle of the source's stream: exit 3" 3 \
	vs provision "$T/tampered.img" "$ext/old.img"
check "  ... says payload digest mismatch, and that the target was not changed" \
	err_is "vmsnap: provision: image $T/tampered.img: payload digest mismatch: the QEMU stream was changed or is corrupt; $ext/old.img was not changed"
untouched "  ... target file untouched" "$ext/old.img" "$old"
check "  ... no temp file left" test -z "$(ls -A "$ext" | grep vmsnap-partial)"
untouched "  ... source untouched" "$T/tampered.img" "$tsum"
expect_rc "  ... to a new file: exit 3" 3 vs provision "$T/tampered.img" "$ext/new.img"
check "  ... which is not created" test ! -e "$ext/new.img"
expect_rc "  ... to a block device: exit 3" 3 vs provision "$T/tampered.img" "$dev"
check "  ... says so, and that the device holds an unfinished image" \
	err_is "vmsnap: provision: image $T/tampered.img: payload digest mismatch: the QEMU stream was changed or is corrupt; $dev now holds an unfinished image that will not verify: run provision again"
check "  ... the device's header says PART (incomplete)" test "$(state "$dev")" = PART
expect_rc "  ... verify refuses the device: exit 3" 3 vs verify "$dev"
check "  ... as incomplete" err_is "vmsnap: verify: image $dev is incomplete: its save never finished"
untouched "  ... source untouched" "$T/tampered.img" "$tsum"
tamper "$T/save/g.img" "$T/tampered3.img"
expect_rc "the same for the sparse v3 image (holes hashed as zeros): exit 3" 3 \
	vs provision "$T/tampered3.img" "$ext/t3.img"
check "  ... says payload digest mismatch (after the golden image's vmgenid warning)" \
	test "$(tail -n 1 "$T/err")" = "vmsnap: provision: image $T/tampered3.img: payload digest mismatch: the QEMU stream was changed or is corrupt; $ext/t3.img was not changed"
check "  ... no target, no temp file" test ! -e "$ext/t3.img" -a -z "$(ls -A "$ext" | grep vmsnap-partial)"
rm -f "$T/tampered3.img"
# (the v2 image was restored from this device above: restoring it again would be a replay)
expect_rc "the untampered image to the same device again" 0 vs provision "$T/save/v2.img" "$dev"
check "  ... its header says DONE" test "$(state "$dev")" = DONE
expect_rc "  ... and it verifies" 0 vs verify "$dev"
sum=$(md5 "$dev")

# The golden flag is signed: setting it without the key is refused.
cp "$T/save/v2.img" "$T/forged.img"
flags=$(od -An -tu4 -j 20 -N4 "$T/forged.img" | tr -d ' ')
put_hex "$T/forged.img" 20 "$(printf %02x $((flags | 2)))000000"
rehash_header "$T/forged.img"
check "forged image: inspect shows the golden flag" inspect_has "$T/forged.img" '"golden":true'
expect_rc "  ... verify refuses it: exit 3" 3 vs verify "$T/forged.img"
check "  ... signature check failed" \
	err_is "vmsnap: verify: image $T/forged.img: signature check failed: the header or definition was changed after signing (key $T/trusted/k.pem)"
expect_rc "  ... provision refuses it: exit 3" 3 vs provision "$T/forged.img" "$ext/f.img"
check "  ... and wrote nothing" test ! -e "$ext/f.img"

sed -i '/sign_key/d' "$T/vmsnap.conf"
expect_rc "unsigned v2 save" 0 vs save vm1 "$T/save/unsigned.img" --format 2 --keep-running
echo "sign_key = $T/k.pem" >>"$T/vmsnap.conf"
expect_rc "an unsigned source: exit 3" 3 vs provision "$T/save/unsigned.img" "$ext/u.img"
check "  ... says not signed" \
	err_is "vmsnap: provision: image $T/save/unsigned.img is not signed and signatures are required (require_signature = yes)"
check "  ... and wrote nothing" test ! -e "$ext/u.img"

small=$(make_loop 64M)
dd if=/dev/urandom of="$small" bs=1M count=4 status=none
ssum=$(md5 "$small")
expect_rc "a device smaller than the image: exit 2" 2 vs provision "$T/save/v2.img" "$small"
# What the device must hold: up to the end of the stream (the chunk table after it is optional).
need=$(( $(header_u64 "$T/save/v2.img" 48) + $(header_u64 "$T/save/v2.img" 56) ))
check "  ... names both sizes" \
	err_names "^vmsnap: provision: target $small holds 67108864 bytes (64.00 MiB), but image $T/save/v2.img is $need bytes (.* MiB): use a larger device$"
untouched "  ... device untouched" "$small" "$ssum"
tight=$(make_loop $(( (need + 4095) / 4096 * 4096 )))
expect_rc "a device with room for the stream but not its chunk table: provisioned without it" 0 \
	vs provision "$T/save/v2.img" "$tight"
expect_rc "  ... and it verifies" 0 vs verify "$tight"

# 4. Interrupted copies of a bigger image never leave a target that verifies.
vs stop vm1 >/dev/null
start_guest big 1G 43 100 || fail "the 1 GiB guest did not boot"
expect_rc "1 GiB fully filled v2 save, signed" 0 vs save big "$T/save/big.img" --format 2
# provision_killed SIGNAL TARGET: start a provision and send it SIGNAL once it
# has written 32 MiB (wchar in /proc/PID/io: under load, far more than 10 s
# after it starts); its exit status is in $killed_rc.
wrote() { awk '$1 == "wchar:" { print $2 }' "/proc/$1/io" 2>/dev/null; }
wrote_32m_or_ended() { [ "$(wrote "$1")" -gt $((32 << 20)) ] 2>/dev/null || ! kill -0 "$1" 2>/dev/null; }
provision_killed() {
	local pid
	"$VMSNAP" --config "$T/vmsnap.conf" provision "$T/save/big.img" "$2" >"$T/out" 2>"$T/err" &
	pid=$!
	WAIT_STEP=0.01 wait_until 120 wrote_32m_or_ended $pid
	kill -0 $pid 2>/dev/null || echo "# provision ended before the signal"
	kill -"$1" $pid 2>/dev/null
	wait $pid
	killed_rc=$?
}
tmp=$T/.big-copy.img.vmsnap-partial
provision_killed KILL "$T/big-copy.img"
check "SIGKILL mid-copy to a file: killed (status $killed_rc)" test "$killed_rc" = 137
check "  ... the target does not exist" test ! -e "$T/big-copy.img"
expect_rc "  ... the temp file does not verify: exit 3" 3 vs verify "$tmp"
check "  ... it says incomplete" err_names "incomplete"
provision_killed TERM "$T/big-copy.img"
check "SIGTERM mid-copy: exit 1 (status $killed_rc)" test "$killed_rc" = 1
check "  ... says interrupted and that the target was not changed" err_names "interrupted.*big-copy.img was not changed"
check "  ... the temp file is removed and no target" test ! -e "$tmp" -a ! -e "$T/big-copy.img"
expect_rc "a re-run completes" 0 vs provision "$T/save/big.img" "$T/big-copy.img"
check "  ... and leaves no temp file" test ! -e "$tmp"
bigdev=$(make_loop 1100M)
provision_killed KILL "$bigdev"
check "SIGKILL mid-copy to a block device: killed (status $killed_rc)" test "$killed_rc" = 137
expect_rc "  ... the device does not verify: exit 3" 3 vs verify "$bigdev"
check "  ... it says incomplete" err_names "incomplete"
