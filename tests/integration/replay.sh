# Replay of resume-once images by someone who can rewrite image files but has
# no signing key: a consumed image whose state is forged back, a copy of it,
# an older image, an image of another VM at this VM's path, a manual restore
# followed by boot-time resume, and a symlink swapped in during a restore.
. "$(dirname "$0")/../lib.sh"

mkdir -p "$T/trusted" && chmod 755 "$T/trusted"
vs keygen "$T/k.pem" "$T/trusted/k.pem" >/dev/null || fail "keygen"
printf 'sign_key = %s\nrequire_signature = yes\nvms = vm1\n' "$T/k.pem" >>"$T/vmsnap.conf"
img=$T/save/vm1.img
start_guest vm1 256M 51 100 || { fail "test guest did not boot"; exit 1; }

# What the attacker does: state back to "DONE", header SHA-256 recomputed.
unconsume() { put_hex "$1" 16 444f4e45 && rehash_header "$1"; }
state_of() { "$VMSNAP" --config "$T/vmsnap.conf" inspect --json "$1" | grep -o '"state":"[a-z]*"'; }
# cold_started REASON SKIP: resume logged REASON for vm1 and the guest booted afresh.
cold_started() {
	grep -q "vm1: cold-started: .*$1" "$T/err" && [ "$(grep -c 'vm1: ' "$T/err")" -eq 1 ] &&
		wait_log vm1 '^vmsnap-guest start' 30 "$2"
}

# 1. Consumed, then the state forged back: resume and restore refuse it.
vs save vm1 "$img" >/dev/null || fail "save"
cp "$img" "$T/copy.img"
t=$(last_tick vm1) s=$(lines vm1)
expect_rc "resume restores the pending signed image" 0 vs resume
check "  ... the guest counts on" ticks_continue vm1 "$t" "$s"
check "  ... its header says consumed" test "$(state_of "$img")" = '"state":"consumed"'
check "  ... and the consumption record is root's alone" \
	test "$(stat -c %a.%u "$T/save/.consumed")" = 700.0 -a -f "$T/save/.consumed/vm1"
unconsume "$img"
check "the forged header says complete and verifies (state and header digest are unkeyed)" \
	bash -c "'$VMSNAP' --config '$T/vmsnap.conf' verify '$img' >/dev/null && test '$(state_of "$img")' = '\"state\":\"complete\"'"
check "  ... but verify says restore would refuse it" \
	bash -c "'$VMSNAP' --config '$T/vmsnap.conf' verify '$img' | grep -q '^replay: refused: .*already restored once'"
vs stop vm1 >/dev/null
s=$(lines vm1)
expect_rc "resume of the forged image" 0 vs resume
check "  ... refuses the replay in one line and cold-starts (test fails before the record)" \
	cold_started "already restored once" "$s"
check "  ... and sets the image aside" test -f "$img.stale" -a ! -e "$img"
vs stop vm1 >/dev/null
expect_rc "restore of an untouched copy of the consumed image: exit 3" 3 vs restore "$T/copy.img"
check "  ... says why in one line" err_names "was already restored once"
check "  ... no QEMU was started" no_qemu
expect_rc "restore --again restores it all the same (the operator's override)" 0 vs restore "$T/copy.img" --again --paused
vs stop vm1 >/dev/null

# 2. An older image that was never restored: refused once a newer one was.
s=$(lines vm1)
vs run vm1 >/dev/null && wait_log vm1 '^tick 3$' 60 "$s" || fail "cold start"
vs save vm1 "$img" --keep-running >/dev/null || fail "save A"
sleep 1 # images are ordered by their creation second
cp "$img" "$T/older.img"
vs save vm1 "$img" >/dev/null || fail "save B"
expect_rc "resume restores the newer image" 0 vs resume
vs stop vm1 >/dev/null
cp "$T/older.img" "$img"
s=$(lines vm1)
expect_rc "resume with the older, never-restored image put back" 0 vs resume
check "  ... refuses it as older than the last one restored and cold-starts" \
	cold_started "older than the last image of VM 'vm1' restored" "$s"

# 3. A manual restore consumes a pending image too: the next boot does not replay it.
wait_log vm1 '^tick 3$' 60 "$s"
vs save vm1 "$img" >/dev/null || fail "save C"
t=$(last_tick vm1) s=$(lines vm1)
expect_rc "manual restore of the pending image" 0 vs restore "$img"
check "  ... the guest counts on" ticks_continue vm1 "$t" "$s"
vs stop vm1 >/dev/null
s=$(lines vm1)
expect_rc "resume after the manual restore" 0 vs resume
check "  ... cold-starts instead of replaying it (test fails before this change)" \
	cold_started "consumed" "$s"

# 4. Images are bound to their VM: another VM's signed image at vm1's path.
wait_log vm1 '^tick 3$' 60 "$s"
start_guest vm2 128M 52 50 || fail "vm2 did not boot"
vs save vm2 "$img" >/dev/null || fail "save of vm2"
vs stop vm1 >/dev/null
s=$(lines vm1)
expect_rc "resume of vm2's image at vm1's path" 0 vs resume
check "  ... refused as another VM's, cold-started (test fails before this change)" \
	cold_started "belongs to VM 'vm2', not to VM 'vm1'" "$s"
check "  ... vm2 was not started" test ! -e "$T/run/vm2.pid"

# 5. A symlink swapped in while QEMU loads the image at boot: the consumed
#    state goes to the image that was verified, not to the file the link
#    names by then.
wait_log vm1 '^tick 3$' 60 "$s"
vs save vm1 "$T/real.img" >/dev/null || fail "save D"
head -c 8192 /dev/urandom >"$T/victim" && cp "$T/victim" "$T/victim.orig"
rm -f "$img" && ln -s "$T/real.img" "$img"
"$VMSNAP" --config "$T/vmsnap.conf" resume >"$T/bg.out" 2>&1 &
bgpid=$!
wait_until 60 test -s "$T/run/vm1.pid" && ln -sfn "$T/victim" "$img"
wait_exit $bgpid 120; rc=$?
check "resume through a symlink swapped during the load: exit 0, restored" \
	bash -c "test $rc -eq 0 && grep -q 'vm1: restored from' '$T/bg.out'"
check "  ... the file the link names now is untouched (test fails before this change)" \
	cmp -s "$T/victim" "$T/victim.orig"
check "  ... the verified image is the one marked consumed" test "$(state_of "$T/real.img")" = '"state":"consumed"'
