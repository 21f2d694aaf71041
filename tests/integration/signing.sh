# Signed images: keys, automatic signing on save, and refusal (exit 3, before
# QEMU starts) of every change to the header, the definition or the payload,
# of wrong keys and of unsigned images where signatures are required.
. "$(dirname "$0")/../lib.sh"

SEED=31

# An image signed by vmsnap a706f7f, before SHA-256 used the CPU's SHA
# instructions (tests/fixtures/README): it verifies on every SHA-256 path
# and a flipped payload byte is still found.
old=$TOP/tests/fixtures/signed-a706f7f
for sha in auto portable; do
	cp "$old.img" "$T/old.img"
	expect_rc "old signed image, sha256 $sha: verify --pubkey" 0 \
		env VMSNAP_SHA256=$sha "$VMSNAP" --config "$T/vmsnap.conf" verify "$T/old.img" --pubkey "$old.pub"
	check "  ... signature and payload ok" \
		bash -c "grep -q '^signature: ok' '$T/out' && grep -q '^payload: ok' '$T/out'"
	flip_byte "$T/old.img" $(( $(header_u64 "$T/old.img" 48) + 400000 ))
	expect_rc "  ... one payload byte flipped: exit 3" 3 \
		env VMSNAP_SHA256=$sha "$VMSNAP" --config "$T/vmsnap.conf" verify "$T/old.img" --pubkey "$old.pub"
	check "  ... says payload digest mismatch" \
		err_is "vmsnap: verify: image $T/old.img: payload digest mismatch: the QEMU stream was changed or is corrupt"
done
mkdir -p "$T/trusted" && chmod 755 "$T/trusted"
expect_rc "keygen" 0 vs keygen "$T/k.pem" "$T/trusted/k.pem"
check "private key is mode 0600" test "$(stat -c %a "$T/k.pem")" = 600
check "openssl reads the private key as P-256" bash -c "openssl pkey -in '$T/k.pem' -text -noout | grep -q 'prime256v1\|P-256'"
check "openssl reads the public key" openssl pkey -pubin -in "$T/trusted/k.pem" -noout
expect_rc "keygen never overwrites a key" 2 vs keygen "$T/k.pem" "$T/other.pub"
vs keygen "$T/wrong.pem" "$T/wrong.pub" >/dev/null

start_guest vm1 256M $SEED 100 || { fail "test guest did not boot"; exit 1; }
echo "sign_key = $T/k.pem" >>"$T/vmsnap.conf"
for fmt in 3 2; do
	img=$T/save/v$fmt.img
	before=$(last_tick vm1)
	expect_rc "v$fmt: save with sign_key set" 0 vs save vm1 "$img" --format $fmt
	check "v$fmt: inspect shows a signature and payload digest" \
		inspect_has "$img" '"payload_digest":"[0-9a-f]\{64\}"' '"signature":"present'
	expect_rc "v$fmt: verify with trusted_keys" 0 vs verify "$img"
	check "v$fmt: verify says the signature and payload are ok" \
		bash -c "grep -q '^signature: ok' '$T/out' && grep -q '^payload: ok' '$T/out'"
	expect_rc "v$fmt: verify --pubkey (right key)" 0 vs verify "$img" --pubkey "$T/trusted/k.pem"
	expect_rc "v$fmt: verify --pubkey (wrong key): exit 3" 3 vs verify "$img" --pubkey "$T/wrong.pub"
	check "  ... says wrong key" \
		err_is "vmsnap: verify: image $img: wrong key: the image was signed by a different key than $T/wrong.pub"

	# Tampering: each refused by verify and by restore, and no QEMU starts.
	# LABEL MESSAGE SURGERY...: verify's line is "vmsnap: verify: image $T/bad.img: MESSAGE".
	tamper() {
		local label=$1 msg=$2; shift 2
		cp "$img" "$T/bad.img"; "$@"
		expect_rc "v$fmt: $label: verify exit 3" 3 vs verify "$T/bad.img"
		check "  ... says: ${msg%%:*}" err_is "vmsnap: verify: image $T/bad.img: $msg"
		expect_rc "v$fmt: $label: restore exit 3" 3 vs restore "$T/bad.img" --name vm2
		check "  ... no QEMU was started" test ! -e "$T/run/vm2.pid"
	}
	sigfail="signature check failed: the header or definition was changed after signing (key $T/trusted/k.pem)"
	tamper "one bit in the header" "header digest mismatch: the header is corrupt" flip_byte "$T/bad.img" 64
	tamper "header bit flipped, header digest forged" "$sigfail" \
		eval 'flip_byte "$T/bad.img" 64; rehash_header "$T/bad.img"'
	tamper "golden flag set, header digest forged" "$sigfail" \
		eval 'put_hex "$T/bad.img" 20 03000000; rehash_header "$T/bad.img"'
	tamper "one bit in the definition" \
		"definition digest mismatch: the embedded VM definition is corrupt or was changed" flip_byte "$T/bad.img" 4100
	tamper "definition changed, its digest forged" "$sigfail" \
		eval 'flip_byte "$T/bad.img" 4100; rehash_definition "$T/bad.img"'
	# The payload: its chunk table lets restore check each chunk on its way
	# to QEMU (v3: vmsnap loads the RAM block into the guest's memory itself
	# and checks each chunk there; v2: in the relay), before QEMU gets a
	# byte of it; the guest never runs.
	off=$(( $(header_u64 "$img" 48) + (100 << 20) ))
	cp "$img" "$T/bad.img"; flip_byte "$T/bad.img" $off
	expect_rc "v$fmt: one bit in a RAM page of the payload: verify exit 3" 3 vs verify "$T/bad.img"
	check "  ... says: payload digest mismatch" \
		err_is "vmsnap: verify: image $T/bad.img: payload digest mismatch: the QEMU stream was changed or is corrupt"
	expect_rc "v$fmt: ... restore exit 3" 3 vs restore "$T/bad.img" --name vm2
	check "  ... names the chunk; the guest did not run" \
		err_names "payload digest mismatch at byte $off.*the guest did not run"
	check "  ... that QEMU is gone" not pgrep -f "$T/run/vm2"

	# verify_payload = no skips only the payload: the header is still checked.
	cp "$img" "$T/bad.img"; flip_byte "$T/bad.img" $off
	echo "verify_payload = no" >>"$T/vmsnap.conf"
	cp "$img" "$T/bad2.img"; flip_byte "$T/bad2.img" 64; rehash_header "$T/bad2.img"
	expect_rc "v$fmt: verify_payload = no still refuses a forged header" 3 vs restore "$T/bad2.img" --name vm2
	sed -i '/verify_payload/d' "$T/vmsnap.conf"

	skip=$(lines vm1)
	expect_rc "v$fmt: restore of the signed image" 0 vs restore "$img"
	check "v$fmt: ticks continue (were at $before)" ticks_continue vm1 "$before" "$skip"
	check "v$fmt: RAM checks out" guest_selfcheck vm1
done

# --bypass-cache and signing (README "What signing costs"): a signed v3 save
# hashes QEMU's memory (or the page cache); the v2 O_DIRECT relay hashes the
# stream in flight. Both verify, tampering is still found, and a verified
# --bypass-cache restore keeps O_DIRECT, checks the chunks as QEMU loads
# them and leaves none of the stream cached.
cached_little() { # FILE: under 1 MiB of it in the page cache
	local res; res=$(fincore --bytes --noheadings --output RES "$1")
	[ "$res" -lt $((1 << 20)) ] || { echo "$res bytes of $1 cached" >&2; return 1; }
}
# QEMU of VM $1 holds its RAM block pc.ram in the memfd a verified v3
# restore created (memory-backend-file over /proc/self/fd/N, shared).
ram_in_memfd() {
	local pid n
	pid=$(pgrep -f "$T/run/$1\\.qmp" | head -n 1) || return 1
	n=$(tr '\0' '\n' <"/proc/$pid/cmdline" |
		sed -n 's|^memory-backend-file,id=pc\.ram,mem-path=/proc/self/fd/\([0-9]*\),size=[0-9]*,share=on$|\1|p')
	[ -n "$n" ] && [ "$(readlink "/proc/$pid/fd/$n")" = "/memfd:vmsnap-ram (deleted)" ]
}
# A signed v3 --bypass-cache save keeps direct-io and hashes the main RAM
# block from QEMU's memory (the VM is stopped: the block's pages region is
# that memory), a sample of it compared with the file; VMSNAP_NO_MEMORY_DIGEST=1
# takes the way through the page cache.
for fmt in 3 3nomem 2; do
	img=$T/save/b$fmt.img
	case $fmt in
	3) from=memory env=() ;;
	3nomem) from="page cache" env=(VMSNAP_NO_MEMORY_DIGEST=1) ;;
	2) from="in flight" env=() ;;
	esac
	before=$(last_tick vm1)
	expect_rc "v${fmt%nomem} --bypass-cache: signed save ${env[*]}" 0 env "${env[@]}" \
		"$VMSNAP" --config "$T/vmsnap.conf" save vm1 "$img" --format ${fmt%nomem} --bypass-cache --json --verbose
	check "  ... digest from the $from, bytes and MB/s in --json" \
		grep -q "\"digest_from\":\"$from\".*\"digest_read_bytes\":[1-9][0-9]*.*\"digest_mb_s\":[1-9]" "$T/out"
	[ $fmt = 3 ] && check "  ... direct-io kept, over 200 MiB hashed from QEMU's memory while QEMU wrote, under 32 MiB read back" \
		grep -qE '"direct_io":true.*"digest_read_bytes":[0-9]{1,8},"digest_early_bytes":[0-9]{9,},"digest_memory_bytes":[0-9]{9,}' "$T/out"
	check "  ... --verbose shows the digest phase with MB/s" grep -qE "payload digest \($from\): .*[0-9]+ MB/s" "$T/err"
	check "  ... --json says how much was hashed while QEMU wrote" grep -q '"digest_early_bytes":[0-9]' "$T/out"
	echo "# v$fmt: $(grep -oE '"digest_(early|read)_bytes":[0-9]+' "$T/out" | tr '\n' ' ')"
	check "  ... none of the stream left in the page cache" cached_little "$img"
	skip=$(lines vm1)
	expect_rc "  ... verified restore with --bypass-cache" 0 vs restore "$img" --bypass-cache --json
	if [ $fmt = 2 ]; then
		check "  ... relayed with O_DIRECT, each chunk checked on its way to QEMU" \
			grep -q '"direct_io":true.*"digest_from":"in flight"' "$T/out"
	else
		check "  ... read with O_DIRECT, over 200 MiB checked as vmsnap loaded the RAM block" \
			grep -qE '"direct_io":true.*"digest_from":"in flight","digest_read_bytes":[0-9]{9,}' "$T/out"
		check "  ... QEMU's RAM is the memfd vmsnap checked it in" ram_in_memfd vm1
	fi
	check "  ... nothing of it left in the page cache" cached_little "$img"
	check "  ... ticks continue (were at $before)" ticks_continue vm1 "$before" "$skip"
	check "  ... RAM checks out" guest_selfcheck vm1
	expect_rc "  ... verify (the digest recomputed from the file)" 0 vs verify "$img"
	cp "$img" "$T/bad.img"; flip_byte "$T/bad.img" $(( $(header_u64 "$img" 48) + (100 << 20) ))
	expect_rc "  ... one flipped payload bit: verify exit 3" 3 vs verify "$T/bad.img"
	check "  ... says payload digest mismatch" err_names "payload digest mismatch"
	cp "$T/bad.img" "$T/bad.copy"
	# --again: $img, a resume-once image, was consumed by its restore above.
	expect_rc "  ... restore --bypass-cache exit 3" 3 vs restore "$T/bad.img" --bypass-cache --name vm2 --again
	block=" (RAM block pc.ram)"; [ $fmt = 2 ] && block=
	check "  ... found as QEMU loaded it, before the guest ran" \
		err_names "payload digest mismatch at byte $(( $(header_u64 "$img" 48) + (100 << 20) ))$block.*the guest did not run"
	check "  ... that QEMU is gone" not pgrep -f "$T/run/vm2"
	check "  ... the image is untouched (not consumed)" cmp -s "$T/bad.img" "$T/bad.copy"
	[ $fmt = 2 ] && continue
	# Outside the RAM block's pages (the stream's first and last chunks:
	# QEMU's headers, the device state) a change is found before QEMU starts.
	for at in 64 $(( $(header_u64 "$img" 56) - 100 )); do
		cp "$img" "$T/bad.img"; flip_byte "$T/bad.img" $(( $(header_u64 "$img" 48) + at ))
		expect_rc "  ... a byte flipped at stream offset $at: restore exit 3" 3 \
			vs restore "$T/bad.img" --bypass-cache --name vm2 --again --verbose
		check "  ... names the chunk, before QEMU started" \
			grep -q "payload digest mismatch at byte $(( $(header_u64 "$img" 48) + at / (1 << 20) * (1 << 20) )): the QEMU stream.*QEMU was not started" "$T/err"
		check "  ... no QEMU was started" not grep -q "starting .*qemu-system" "$T/err"
		check "  ... no QEMU left" not pgrep -f "$T/run/vm2"
	done
	# A chunk table that does not match (or none: images of older vmsnap)
	# means the whole stream is checked first. Restored paused as vm3, so
	# vm1 runs on undisturbed for the next save.
	for how in flip strip; do
		cp "$img" "$T/t.img"
		end=$(( $(header_u64 "$img" 48) + $(header_u64 "$img" 56) ))
		if [ $how = flip ]; then flip_byte "$T/t.img" $(( (end + 4095) / 4096 * 4096 + 40 )); else truncate -s $end "$T/t.img"; fi
		expect_rc "  ... chunk table ${how}ped: restore --bypass-cache still works" 0 \
			vs restore "$T/t.img" --bypass-cache --json --again --name vm3 --paused
		check "  ... the whole stream checked before QEMU" grep -q '"digest_from":"image"' "$T/out"
		vs stop vm3 >/dev/null 2>&1
		check "  ... vm3 gone" not pgrep -f "$T/run/vm3"
	done
	# A definition that brings its own memory backend keeps it: QEMU loads
	# the stream itself, after the whole of it was checked.
	{ cat "$T/vms/vm1.vm"; printf -- '-object memory-backend-ram,id=pc.ram,size=256M\n-machine memory-backend=pc.ram\n'; } >"$T/own.vm"
	expect_rc "  ... a definition with its own memory backend: restore works" 0 \
		vs restore "$img" --bypass-cache --json --again --name vm3 --paused --vm-file "$T/own.vm"
	check "  ... the whole stream checked before QEMU" grep -q '"digest_from":"image"' "$T/out"
	vs stop vm3 >/dev/null 2>&1
done

# A signed v2 image on a block device has its chunk table after the stream
# too: the relay checks each chunk on its way to QEMU, buffered or O_DIRECT.
dev=$(make_loop 320M)
for bypass in "" --bypass-cache; do
	before=$(last_tick vm1)
	expect_rc "block device ${bypass:-buffered}: signed v2 save" 0 vs save vm1 "$dev" $bypass
	skip=$(lines vm1)
	expect_rc "  ... verified restore" 0 vs restore "$dev" $bypass --json
	check "  ... each chunk checked in the relay" grep -q '"digest_from":"in flight","digest_read_bytes":[1-9]' "$T/out"
	check "  ... ticks continue (were at $before)" ticks_continue vm1 "$before" "$skip"
	check "  ... RAM checks out" guest_selfcheck vm1
done
off=$(( $(header_u64 "$dev" 48) + (200 << 20) ))
flip_byte "$dev" $(( off + 4097 ))
expect_rc "  ... a byte of the device's stream flipped: restore --again exit 3" 3 vs restore "$dev" --again --name vm2
check "  ... names its chunk; the guest did not run" err_names "payload digest mismatch at byte $off:.*the guest did not run"
check "  ... that QEMU is gone" not pgrep -f "$T/run/vm2"

# Short of memory for the stream, a signed v3 --bypass-cache save keeps
# direct-io and reads the stream back with O_DIRECT (VMSNAP_SIGNED_DIRECT=1
# takes that path whatever the memory).
expect_rc "v3 --bypass-cache signed with direct-io kept (VMSNAP_SIGNED_DIRECT=1)" 0 \
	env VMSNAP_SIGNED_DIRECT=1 "$VMSNAP" --config "$T/vmsnap.conf" save vm1 "$T/save/d3.img" \
	--format 3 --bypass-cache --keep-running --json
check "  ... direct-io, the digest read back from the disk" grep -q '"direct_io":true.*"digest_from":"disk"' "$T/out"
check "  ... none of the stream cached" cached_little "$T/save/d3.img"
expect_rc "  ... verifies" 0 vs verify "$T/save/d3.img"

# The digest hashed while QEMU writes (sig_early_*) and the one hashed only
# afterwards (VMSNAP_NO_EARLY_DIGEST=1) both verify; the latter hashed nothing
# early. A v3 stream keeps only the chunks within its RAM blocks' pages
# regions: a block's bitmap, written last beside its header, is hashed after.
expect_rc "v2 signed save, the digest only after QEMU finished (VMSNAP_NO_EARLY_DIGEST=1)" 0 \
	env VMSNAP_NO_EARLY_DIGEST=1 "$VMSNAP" --config "$T/vmsnap.conf" save vm1 "$T/save/late.img" \
	--format 2 --keep-running --json
check "  ... nothing hashed early" grep -q '"digest_early_bytes":0,' "$T/out"
expect_rc "  ... verifies" 0 vs verify "$T/save/late.img"
for fmt in 2 3; do
	# v3: the file's chunks, not QEMU's memory (VMSNAP_NO_MEMORY_DIGEST=1)
	expect_rc "v$fmt signed save, hashed while QEMU writes the file" 0 env VMSNAP_NO_MEMORY_DIGEST=1 \
		"$VMSNAP" --config "$T/vmsnap.conf" --verbose save vm1 "$T/save/early.img" --format $fmt --keep-running --json
	early=$(grep -oE '"digest_early_bytes":[0-9]+' "$T/out" | cut -d: -f2)
	echo "# v$fmt early: $(grep -oE '"digest_(early|read)_bytes":[0-9]+' "$T/out" | tr '\n' ' ')"
	check "  ... more than 64 MiB of the stream hashed while QEMU wrote ($early bytes)" \
		test "${early:-0}" -gt $((64 << 20))
	[ $fmt = 3 ] && check "  ... the RAM blocks' pages regions found in the stream" \
		grep -qE "early digest: [1-9][0-9]* pages regions of RAM blocks" "$T/err"
	expect_rc "  ... verifies" 0 vs verify "$T/save/early.img"
	rm -f "$T/save/early.img"
done
expect_rc "v3 signed save through the page cache: the RAM block hashed from QEMU's memory" 0 \
	vs save vm1 "$T/save/early.img" --format 3 --keep-running --json
check "  ... digest_from memory, while QEMU wrote, direct-io not asked for" \
	grep -qE '"direct_io":false.*"digest_from":"memory","digest_read_bytes":[0-9]{1,8},"digest_early_bytes":[0-9]{9,}' "$T/out"
expect_rc "  ... verifies" 0 vs verify "$T/save/early.img"
rm -f "$T/save/late.img" "$T/save/early.img"

# Policy: require_signature refuses unsigned images.
sed -i '/sign_key/d' "$T/vmsnap.conf"
vs save vm1 "$T/save/unsigned.img" >/dev/null || fail "saving an unsigned image"
echo "require_signature = yes" >>"$T/vmsnap.conf"
expect_rc "unsigned image with require_signature = yes: restore exit 3" 3 vs restore "$T/save/unsigned.img"
check "  ... says unsigned and names the setting" \
	err_is "vmsnap: restore: image $T/save/unsigned.img is not signed and signatures are required (require_signature = yes)"
check "  ... no QEMU was started" no_qemu
expect_rc "unsigned image with require_signature = yes: verify exit 3" 3 vs verify "$T/save/unsigned.img"
expect_rc "sign it with the factory key" 0 vs sign "$T/save/unsigned.img" --key "$T/k.pem"
expect_rc "now it restores under require_signature" 0 vs restore "$T/save/unsigned.img"
check "RAM checks out" guest_selfcheck vm1
vs save vm1 "$T/save/w.img" >/dev/null
vs sign "$T/save/w.img" --key "$T/wrong.pem" >/dev/null
expect_rc "signed by a key not in trusted_keys: restore exit 3" 3 vs restore "$T/save/w.img"
check "  ... says wrong key" err_is "vmsnap: restore: image $T/save/w.img: wrong key: no key in $T/trusted matches the image's signer"
chmod o+w "$T/trusted"
expect_rc "a world-writable trusted_keys directory is refused" 3 vs verify "$T/save/unsigned.img"
check "  ... says so" \
	err_is "vmsnap: verify: image $T/save/unsigned.img: trusted_keys directory $T/trusted is writable by group or others: only root may change trusted keys; chown root and chmod go-w it"
chmod o-w "$T/trusted"

# Keys made by openssl work both ways.
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$T/ossl.pem" 2>/dev/null
openssl pkey -in "$T/ossl.pem" -pubout -out "$T/ossl.pub" 2>/dev/null
expect_rc "an openssl P-256 key signs" 0 vs sign "$T/save/w.img" --key "$T/ossl.pem"
expect_rc "  ... and its openssl public key verifies" 0 vs verify "$T/save/w.img" --pubkey "$T/ossl.pub"
expect_rc "  ... and restores with that key" 0 vs restore "$T/save/w.img" --pubkey "$T/ossl.pub"
check "RAM checks out" guest_selfcheck vm1

# A v2 image made before any of this (unsigned, no require) still restores.
sed -i '/require_signature/d' "$T/vmsnap.conf"
before=$(last_tick vm1)
vs save vm1 "$T/save/plain.img" --format 2 >/dev/null
skip=$(lines vm1)
expect_rc "a plain v2 image still restores" 0 vs restore "$T/save/plain.img"
check "  ... and the guest continues (were at $before)" ticks_continue vm1 "$before" "$skip"
