# The VM generation ID (QEMU's -device vmgenid) with the real Linux guest,
# whose vmgenid driver reseeds its RNG when the ID changes. vmsnap pins the
# ID at cold start (the definition recorded in run_dir, and so each image,
# holds it): a resume-once restore keeps it, and the guest sees no change;
# every restore of a golden image gets a new one, and the guest reseeds. A
# golden save of a VM without vmgenid warns that its copies share RNG state.
. "$(dirname "$0")/../lib.sh"

linux_built || { fail "the Linux guest is built (make linux-guest)"; exit 1; }

genid() { vs qmp "$1" query-vm-generation-id | sed -n 's/.*"guid":"\([0-9a-f-]*\)".*/\1/p'; }
json_genid() { sed -n 's/.*"vm_generation_id":"\([0-9a-f-]*\)".*/\1/p' "$T/out"; }
is_uuid() { [[ $1 =~ ^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$ ]]; }
no_genid_warning() { ! grep -q vmgenid "$T/err"; }

check "the guest boots with -device vmgenid" start_linux lv 256M '-device vmgenid'
check "the guest's vmgenid driver is bound" test "$(linux_cmd lv vmgenid)" = yes
id0=$(genid lv)
check "QEMU reports a generation ID ($id0)" is_uuid "$id0"
check "  ... pinned in the definition the VM runs with (run_dir), the one in vm_dir untouched" \
	bash -c "grep -qx -- '-device vmgenid,guid=$id0' '$T/run/lv.vm' && grep -qx -- '-device vmgenid' '$T/vms/lv.vm'"
r0=$(linux_cmd lv reseeds)
check "the guest has not reseeded for a VM fork yet ($r0)" test "$r0" = 0

# A resume-once image: the guest continues, the same generation.
expect_rc "resume-once: save" 0 vs save lv "$T/save/once.img"
check "  ... the image's definition holds the ID" \
	bash -c "'$VMSNAP' --config '$T/vmsnap.conf' inspect '$T/save/once.img' | grep -q -- 'vmgenid,guid=$id0'"
expect_rc "resume-once: restore" 0 vs restore "$T/save/once.img" --json
check "  ... --json names the ID the guest got ($(json_genid))" test "$(json_genid)" = "$id0"
check "  ... QEMU reports the same ID" test "$(genid lv)" = "$id0"
check "  ... the guest did not reseed (no change seen)" test "$(linux_cmd lv reseeds)" = 0

# A golden image: every restore is a new generation.
expect_rc "golden: save --golden" 0 vs save lv "$T/save/g.img" --golden
check "  ... no warning about shared RNG state (the VM has vmgenid)" no_genid_warning
ids=()
for n in 1 2; do
	expect_rc "golden restore #$n" 0 vs restore "$T/save/g.img" --json
	id=$(genid lv)
	ids+=("$id")
	echo "# golden restore #$n: generation ID $id"
	check "golden restore #$n: a new ID ($id), not the golden VM's ($id0)" \
		bash -c "[[ '$id' =~ ^[0-9a-f-]{36}\$ && '$id' != '$id0' ]]"
	check "golden restore #$n: --json names it" test "$(json_genid)" = "$id"
	check "golden restore #$n: the guest saw the change (its RNG reseeded once: 'crng reseeded due to virtual machine fork')" \
		test "$(linux_cmd lv reseeds)" = 1
	check "golden restore #$n: the running definition holds it" grep -qx -- "-device vmgenid,guid=$id" "$T/run/lv.vm"
	vs stop lv >/dev/null
done
check "the two golden restores have different IDs (${ids[0]}, ${ids[1]})" test "${ids[0]}" != "${ids[1]}"

# Without vmgenid a golden save warns (the test guest: no ACPI driver needed).
define_guest plain 64M
vs run plain >/dev/null
expect_rc "a VM without vmgenid: save --golden succeeds" 0 vs save plain "$T/save/plain.img" --golden
check "  ... and warns that restored copies share their RNG state" \
	err_is "vmsnap: warning: golden image of VM 'plain': its definition has no -device vmgenid, so restored copies will share their RNG state: add -device vmgenid to the definition"
expect_rc "  ... its restore gives no generation ID" 0 vs restore "$T/save/plain.img" --json
check "  ... (--json has none)" test -z "$(json_genid)"
vs stop plain >/dev/null
