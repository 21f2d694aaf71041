# v2 images: the sequential stream through vmsnap's relay, to a regular file
# and to a block device, buffered and with --bypass-cache; the guest must
# count on and its RAM must check out page for page after every restore.
. "$(dirname "$0")/../lib.sh"

SEED=11
# round_trip LABEL TARGET [SAVE_OPTIONS...]: save vm1, restore it, check it.
round_trip() {
	local label=$1 target=$2 before skip; shift 2
	before=$(last_tick vm1)
	expect_rc "$label: save" 0 vs save vm1 "$target" "$@"
	check "$label: QEMU is gone after the save" test -z "$(vs list | awk '$1 == "vm1" && $3 != 0')"
	check "$label: inspect shows a complete v2 image" \
		inspect_has "$target" '"version":2,"state":"complete"'
	skip=$(lines vm1)
	expect_rc "$label: restore" 0 vs restore "$target" "$@"
	check "$label: ticks continue after restore (were at $before)" ticks_continue vm1 "$before" "$skip"
	check "$label: RAM pattern checks out page for page (pmemsave)" dump_check vm1 $SEED
	check "$label: the guest's own full RAM check passes" guest_selfcheck vm1
}

start_guest vm1 256M $SEED 100 || { fail "test guest did not boot"; exit 1; }
pass "test guest boots and fills 256 MiB"

round_trip "file" "$T/save/vm1.img"
round_trip "file --bypass-cache" "$T/save/vm1-direct.img" --bypass-cache
dev=$(make_loop 320M)
round_trip "block device $dev" "$dev"
round_trip "block device --bypass-cache" "$dev" --bypass-cache

# --keep-running: the image is written and the VM never went away.
before=$(last_tick vm1)
expect_rc "--keep-running: save" 0 vs save vm1 "$T/save/keep.img" --keep-running
check "--keep-running: VM still running" bash -c "'$VMSNAP' --config '$T/vmsnap.conf' qmp vm1 query-status | grep -q '\"running\":true'"
check "--keep-running: still ticking" wait_log vm1 "^tick $((before + 3))\$" 30
vs stop vm1 >/dev/null

# --paused keeps a restored guest stopped; cont resumes it.
expect_rc "restore --paused" 0 vs restore "$T/save/keep.img" --paused
check "--paused: QEMU reports paused" bash -c "'$VMSNAP' --config '$T/vmsnap.conf' qmp vm1 query-status | grep -q '\"running\":false'"
skip=$(lines vm1)
sleep 1
check "--paused: no ticks while paused" test "$(tail -n +$((skip + 1)) "$T/vm1.log" | grep -c '^tick')" -eq 0
vs qmp vm1 cont >/dev/null
check "--paused: ticks after cont" wait_log vm1 '^tick ' 30 "$skip"

# Durability bits: mode 0600, no temp file left behind.
check "image is mode 0600" test "$(stat -c %a "$T/save/vm1.img")" = 600
check "no temp files left in the target directory" test -z "$(ls -A "$T/save" | grep vmsnap-partial)"

# The checks above can fail: after the guest overwrites some of its pages,
# both the outside dump and the guest's own check must report it.
vs qmp vm1 '{"execute":"send-key","arguments":{"keys":[{"type":"qcode","data":"m"}]}}' >/dev/null
check "control: the guest reports mutated pages" wait_log vm1 '^mutate done' 30
check "control: the pmemsave check catches mutated pages" not dump_check vm1 $SEED
check "control: the guest's own check catches them" not guest_selfcheck vm1
