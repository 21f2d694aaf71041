# Appliance flow: the power-fail watcher saves every VM at once, boot-time
# resume restores each image once and cold-starts whatever it cannot restore.
. "$(dirname "$0")/../lib.sh"

echo "vms = vm1 vm2" >>"$T/vmsnap.conf"
echo "powerfail_deadline_ms = 30000" >>"$T/vmsnap.conf"
start_guest vm1 256M 41 100 && start_guest vm2 256M 42 50 || { fail "test guests did not boot"; exit 1; }
pass "two test guests run"

# 1. SIGPWR: both saved in parallel, complete and durable; a second signal is ignored.
check "watch starts watching" start_watch "$T/watch.out"
check "watch writes its pidfile" test -s "$T/run/watch.pid"
check "watch pidfile holds its pid" test "$(cat "$T/run/watch.pid")" = "$wpid"
t1=$(last_tick vm1) t2=$(last_tick vm2)
# The second SIGPWR once the first is taken, while two 256 MiB VMs are saved.
kill -PWR $wpid
WAIT_STEP=0.01 wait_until 10 grep -q "power fail: signal SIGPWR" "$T/watch.out"
kill -PWR $wpid
wait_exit $wpid 120; rc=$?
check "watch exits 0 after saving both" test $rc -eq 0
check "watch reports each VM's time against the deadline" \
	bash -c "grep -q 'vm1: saved to .* ms of the 30000 ms deadline' '$T/watch.out' && grep -q 'vm2: saved to' '$T/watch.out'"
check "the second SIGPWR started no second save" grep -q "during the save: ignored" "$T/watch.out"
check "watch says every image is complete" grep -q "every image is complete and durable" "$T/watch.out"
for vm in vm1 vm2; do
	check "$vm: image is a complete v3 image" \
		inspect_has "$T/save/$vm.img" '"version":3,"state":"complete"'
done
check "both QEMUs are gone" no_qemu

# Boot: resume restores both, consumes the images.
s1=$(lines vm1) s2=$(lines vm2)
expect_rc "resume restores both" 0 vs resume
check "resume says restored" bash -c "grep -q 'vm1: restored from' '$T/err' && grep -q 'vm2: restored from' '$T/err'"
check "vm1 continues (was at $t1)" ticks_continue vm1 "$t1" "$s1"
check "vm2 continues (was at $t2)" ticks_continue vm2 "$t2" "$s2"
check "vm1 RAM checks out" guest_selfcheck vm1
check "vm2 RAM checks out" guest_selfcheck vm2
check "vm1 image is consumed" \
	inspect_has "$T/save/vm1.img" '"state":"consumed"'
expect_rc "a consumed image is refused by restore" 3 vs restore "$T/save/vm1.img" --name other
check "  ... says consumed" \
	err_is "vmsnap: restore: image $T/save/vm1.img was already resumed once (consumed): restoring it again would replay the guest against disks that moved on"

# Next boot with the images consumed: cold starts, never a second restore.
vs stop vm1 >/dev/null; vs stop vm2 >/dev/null
s1=$(lines vm1)
expect_rc "second resume" 0 vs resume
check "it cold-starts instead of restoring a consumed image" \
	bash -c "grep -q 'vm1: cold-started: .*consumed' '$T/err' && grep -q 'vm2: cold-started' '$T/err'"
check "vm1 booted afresh" wait_log vm1 '^vmsnap-guest start' 30 "$s1"
wait_log vm1 '^tick 5$' 120 "$s1"; wait_log vm2 '^check ok' 120

# 2. Policy: under require_signature an unsigned pending image is refused and the VM cold-starts;
#    so is a corrupt one.
echo "require_signature = yes" >>"$T/vmsnap.conf"
vs watch --now >/dev/null 2>&1
flip_byte "$T/save/vm2.img" 4100
s1=$(lines vm1)
expect_rc "resume under require_signature" 0 vs resume
check "vm1: unsigned image refused, logged, cold-started" grep -q "vm1: cold-started: .*not signed" "$T/err"
check "vm2: corrupt image refused, logged, cold-started" grep -q "vm2: cold-started: .*definition digest mismatch" "$T/err"
check "vm1 booted afresh" wait_log vm1 '^vmsnap-guest start' 30 "$s1"
check "the refused images are set aside, so no later boot restores them" \
	bash -c "test -f '$T/save/vm1.img.stale' -a ! -e '$T/save/vm1.img' -a -f '$T/save/vm2.img.stale'"
check "  ... and resume says so" grep -q "vm1: cold-started: .*set aside as" "$T/err"
sed -i '/require_signature/d' "$T/vmsnap.conf"

# 3. The trigger file and a golden image.
wait_log vm1 '^tick 5$' 120 "$s1"; wait_log vm2 '^check ok' 120
echo "powerfail_trigger = $T/powerfail" >>"$T/vmsnap.conf"
start_watch "$T/watch.out" || fail "watch did not start watching"
touch "$T/powerfail"
wait_exit $wpid 120; rc=$?
check "the trigger file starts the save; watch exits 0" test $rc -eq 0
check "  ... logged" grep -q "powerfail appeared" "$T/watch.out"
vs resume >/dev/null 2>&1
vs save vm1 "$T/save/vm1.img" --golden >/dev/null || fail "golden save"
for boot in 1 2; do
	vs stop vm1 >/dev/null 2>&1
	s1=$(lines vm1)
	expect_rc "golden image, boot $boot: resume" 0 vs resume
	check "golden image, boot $boot: restored, not consumed" grep -q "vm1: restored from .*golden" "$T/err"
	check "golden image, boot $boot: no reboot of the guest" not wait_log vm1 '^vmsnap-guest start' 2 "$s1"
done

# A power failure never overwrites a golden image.
sum=$(md5sum <"$T/save/vm1.img")
vs watch --now >"$T/watch.out" 2>&1
check "watch --now leaves vm1's golden image alone" grep -q "vm1: its image .* is golden: not overwritten" "$T/watch.out"
check "  ... byte for byte" test "$(md5sum <"$T/save/vm1.img")" = "$sum"
