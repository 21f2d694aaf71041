# Faults, 1 of 3: vmsnap killed (kill -9, or VMSNAP_CRASH_AT, which _exits
# the same way) at each point of a save; QEMU killed in a save and in a
# restore; two commands on one VM at once. After each: the earlier image is
# intact and restores, nothing new claims to be complete, the VM is still
# there, and a re-run of the save succeeds (it cancels the dead save's
# migration, drops its fdset and resumes the VM that it left paused).
. "$(dirname "$0")/../lib.sh"
VMSNAP=$VMSNAP_TEST # VMSNAP_CRASH_AT needs the test build
[ -x "$VMSNAP" ] || { echo "not ok - $VMSNAP missing (make build/host/vmsnap)"; exit 1; }
. "$TOP/tests/faults_lib.sh"

SEED=31
vs keygen "$T/sign.key" "$T/sign.pub" >/dev/null
echo "vms = vm1" >>"$T/vmsnap.conf"
# 1 GiB: a stream long enough (about half a second) to kill vmsnap inside it.
start_guest vm1 1G $SEED 100 || { fail "test guest did not boot"; exit 1; }
pass "test guest boots with 1 GiB"

F=$T/save/vm1.img
expect_rc "reference save to a file" 0 vs save vm1 "$F" --keep-running
good=$(md5sum <"$F")

# killed_save HOW TARGET [SAVE_OPTIONS...]: a save that dies, with $rc its status.
#   crash:STEP  VMSNAP_CRASH_AT=STEP (after-stop, before-data-sync, ...)
#   stream      kill -9 once QEMU has written 300 MiB of the stream
#   digest      kill -9 once vmsnap has read 100 MiB of the image back to sign it
killed_save() {
	local how=$1 target=$2 q base; shift 2
	q=$(qpid vm1)
	base=$(io "$q" wchar)
	case $how in
	crash:*) VMSNAP_CRASH_AT=${how#crash:} bg kill save vm1 "$target" --keep-running "$@" ;;
	*) bg kill save vm1 "$target" --keep-running "$@" ;;
	esac
	case $how in
	stream) wait_io "$q" wchar $((base + (300 << 20))) 30 && kill -9 "$BG" ;;
	digest) wait_io "$BG" rchar $((100 << 20)) 30 && kill -9 "$BG" ;;
	esac
	bg_wait
	rc=$BG_RC
}

# after_kill LABEL TARGET WANT_TARGET WANT_TMP: the checks after a killed save.
#   WANT_TARGET: old (the earlier image, byte for byte), new (a new complete
#   image), partial (a block device's "in progress" header)
#   WANT_TMP: none (no temp file, or one refused as incomplete), complete
after_kill() {
	local label=$1 target=$2 want=$3 want_tmp=$4
	check "$label: vmsnap died (status 137)" test "$rc" = 137
	case $want in
	old)
		check "$label: the earlier image is intact (md5)" test "$(md5sum <"$target")" = "$good"
		check "$label: ... and still verifies" verifies "$target" ;;
	new)
		check "$label: the target holds a new image" test "$(md5sum <"$target")" != "$good"
		check "$label: ... complete, and it verifies" verifies "$target" ;;
	partial)
		check "$label: the device's header says in progress" test "$(state "$target")" = partial
		check "$label: ... and verify refuses it (exit 3)" refused "$target" ;;
	esac
	if [ "$want_tmp" = complete ]; then
		# Sealed but not renamed: complete under its temp name, which nothing
		# reads; the next save truncates it.
		check "$label: the temp file is sealed (complete) but not in place" verifies "$(tmp_of "$target")"
	else
		check "$label: no temp file claims to be complete" tmp_not_complete "$target"
	fi
	check "$label: QEMU still runs, the VM is paused" is_paused vm1
}

# rerun LABEL TARGET [SAVE_OPTIONS...]: the operator runs the save again.
rerun() {
	local label=$1 target=$2; shift 2
	expect_rc "$label: a re-run of the save succeeds" 0 vs save vm1 "$target" --keep-running "$@"
	check "$label: ... it resumed the VM that the dead save had paused" grep -q "left paused by a save that did not finish: resuming it first" "$T/err"
	check "$label: ... the new image is complete and records a running VM" json_has "$target" '"state":"complete","name":"vm1".*"was_running":true'
	check "$label: ... the VM runs on" ticking vm1
	check "$label: ... no fdset left in QEMU" no_fdsets vm1
	check "$label: ... no temp file or stop mark left" no_leftovers vm1 "$target"
	good=$(md5sum <"$target")
}

# 1. A file target: the earlier image stays until the new one is complete.
for how in crash:after-stop stream crash:before-data-sync crash:before-header crash:before-rename crash:after-commit; do
	label="file, $how"
	killed_save $how "$F"
	case $how in
	crash:before-rename) after_kill "$label" "$F" old complete ;;
	crash:after-commit) after_kill "$label" "$F" new none ;;
	*) after_kill "$label" "$F" old none ;;
	esac
	if [ $how = stream ]; then
		# The earlier image restores while the killed save's VM waits, paused.
		sed "s|$T/vm1.log|$T/old.log|" "$T/run/vm1.vm" >"$T/old.vm"
		: >"$T/old.log"
		expect_rc "$label: the earlier image restores (as VM old, beside the paused vm1)" 0 \
			vs restore "$F" --name old --vm-file "$T/old.vm"
		check "$label: ... and its RAM checks out" guest_selfcheck old
		vs stop old >/dev/null
	fi
	rerun "$label" "$F"
done

# The digest: with sign_key, the save reads its stream back after QEMU is done.
echo "sign_key = $T/sign.key" >>"$T/vmsnap.conf"
killed_save digest "$F"
after_kill "file, in the digest" "$F" old none
rerun "file, in the digest" "$F"
check "file, in the digest: ... the re-run's image is signed" json_has "$F" '"signature":"present'
sed -i '/^sign_key/d' "$T/vmsnap.conf"

# v3: QEMU's multifd channels write the file themselves and go on without vmsnap.
killed_save stream "$F" --format 3
after_kill "v3 file, stream" "$F" old none
rerun "v3 file, stream" "$F" --format 3

# 2. A block device: written in place, so it holds an "in progress" header
#    until the complete one, written last, is synced.
dev=$(make_loop 1100M)
expect_rc "reference save to a block device" 0 vs save vm1 "$dev" --keep-running
for how in crash:after-stop stream crash:before-data-sync crash:before-header crash:before-rename; do
	label="block device, $how"
	killed_save $how "$dev"
	# Past the header's sync the image is complete; stor_place has nothing to rename.
	if [ $how = crash:before-rename ]; then after_kill "$label" "$dev" new none
	else after_kill "$label" "$dev" partial none; fi
	rerun "$label" "$dev"
done
killed_save stream "$dev" --bypass-cache
after_kill "block device --bypass-cache, stream" "$dev" partial none
rerun "block device --bypass-cache, stream" "$dev" --bypass-cache

# After all of that, the last image restores and the guest counts on.
before=$(last_tick vm1)
expect_rc "final save (QEMU quits)" 0 vs save vm1 "$F"
skip=$(lines vm1)
expect_rc "final restore" 0 vs restore "$F"
check "ticks continue after the restore (were at $before)" ticks_continue vm1 "$before" "$skip"
check "RAM checks out page for page (pmemsave)" dump_check vm1 $SEED

# 3. QEMU killed in the middle of a save and of a restore.
good=$(md5sum <"$F")
said_gone() {
	one_line "$T/qk.err" && grep -q 'QEMU exited during the migration' "$T/qk.err" &&
		grep -q "QEMU of VM 'vm1' is gone: start it again with vmsnap run vm1" "$T/qk.err"
}
listed_stopped() {
	vs list | grep -qE '^vm1 +stopped' && [ ! -e "$T/run/vm1.pid" ] && [ ! -e "$T/run/vm1.qmp" ]
}
# qemu_killed_save LABEL TARGET [SAVE_OPTIONS...]
qemu_killed_save() {
	local label=$1 target=$2 q; shift 2
	q=$(qpid vm1)
	bg qk save vm1 "$target" "$@"
	wait_io "$q" wchar $(( $(io "$q" wchar) + (300 << 20) )) 30 && kill -9 "$q"
	bg_wait
	check "$label: the save fails with exit 1" test "$BG_RC" = 1
	check "$label: ... in one line saying QEMU exited and how to start the VM" said_gone
	check "$label: ... at once (${BG_S} s), without waiting for a dead QEMU to resume" test "$BG_S" -le 3
	check "$label: ... the VM is listed as stopped, its run files are gone" listed_stopped
	check "$label: ... no temp file claims to be complete" tmp_not_complete "$target"
}
# vm1 runs, restored from $F.
qemu_killed_save "QEMU killed in a save to a file" "$F"
check "  ... the earlier image is intact (md5)" test "$(md5sum <"$F")" = "$good"
check "  ... and verifies" verifies "$F"
start_guest vm1 1G $SEED 100 || fail "test guest did not boot again"
qemu_killed_save "QEMU killed in a save to a block device" "$dev"
check "  ... the device's header says in progress" test "$(state "$dev")" = partial

# Restore: the image is opened read-only and consumed only after QEMU has it.
# $F ran once already (the final restore above): --again, as an operator would.
bg qr restore "$F" --again
q=$(wait_pidfile vm1 30) && wait_io "$q" rchar $((300 << 20)) 30 && kill -9 "$q"
bg_wait
check "QEMU killed in a restore: exit 1" test "$BG_RC" = 1
check "  ... one line saying QEMU exited during the migration" \
	eval 'one_line "$T/qr.err" && grep -q "QEMU exited during the migration" "$T/qr.err"'
check "  ... the image is untouched (md5)" test "$(md5sum <"$F")" = "$good"
check "  ... no QEMU of the restore is left" is_gone vm1
skip=$(lines vm1)
expect_rc "  ... a second restore of the same image works" 0 vs restore "$F" --again
check "  ... the guest counts on (ticks were at $before)" ticks_continue vm1 "$before" "$skip"
check "  ... its RAM checks out" guest_selfcheck vm1

# vmsnap killed in a restore: QEMU, left alone, reads on (the image is its
# fdset) and ends paused; the name is taken until it is stopped.
expect_rc "save again (QEMU quits)" 0 vs save vm1 "$F"
good=$(md5sum <"$F")
before=$(last_tick vm1)
bg kr restore "$F"
q=$(wait_pidfile vm1 30) && wait_io "$q" rchar $((300 << 20)) 30 && kill -9 "$BG"
bg_wait
check "vmsnap killed in a restore: status 137" test "$BG_RC" = 137
check "  ... the image is untouched (md5) and still complete" eval '[ "$(md5sum <"$F")" = "$good" ] && verifies "$F"'
check "  ... QEMU stays, paused" is_paused vm1
expect_rc "  ... a restore under the same name is refused: exit 1" 1 vs restore "$F"
check_err "  ... one line: already running, stop it first" "VM 'vm1' is already running: stop it first"
expect_rc "  ... vmsnap stop ends the half-restored QEMU" 0 vs stop vm1
skip=$(lines vm1)
expect_rc "  ... then the restore works" 0 vs restore "$F"
check "  ... the guest counts on (ticks were at $before)" ticks_continue vm1 "$before" "$skip"
check "  ... its RAM checks out" guest_selfcheck vm1

# 4. Two commands on one VM at once: the second is refused as busy, the first
#    finishes, nothing is corrupted. QEMU is held (SIGSTOP) in the middle of
#    the first so that the second surely comes while it runs.
# hold QEMU_PID PID FIELD BYTES: once PID's I/O counter FIELD grew by BYTES, SIGSTOP QEMU.
hold() { wait_io "$2" "$3" $(( $(io "$2" "$3") + $4 )) 30 && kill -STOP "$1"; }
q=$(qpid vm1)
sum=$(md5sum <"$F")
bg first save vm1 "$T/save/a.img" --keep-running
hold "$q" "$q" wchar $((200 << 20))
expect_rc "a second save of vm1 while one runs: exit 1" 1 vs save vm1 "$T/save/b.img" --keep-running
check_err "  ... one line: VM 'vm1' is busy" "VM 'vm1' is busy"
expect_rc "watch --now while a save of vm1 runs: exit 1" 1 vs watch --now
check "  ... it logs vm1's save as failed: busy" grep -q "vm1: save FAILED .*VM 'vm1' is busy" "$T/err"
kill -CONT "$q"
bg_wait
check "the first save finishes (exit 0)" test "$BG_RC" = 0
check "  ... its image verifies" verifies "$T/save/a.img"
check "  ... the refused save left no file" test ! -e "$T/save/b.img" -a ! -e "$(tmp_of "$T/save/b.img")"
check "  ... watch left vm1's image alone (md5)" test "$(md5sum <"$F")" = "$sum"
check "  ... the VM runs on" ticking vm1

# Another VM's save to the very file being written: the temp file's lock.
start_guest vm2 256M 32 100 || fail "second guest did not boot"
bg first save vm1 "$T/save/shared.img" --keep-running
hold "$q" "$q" wchar $((200 << 20))
expect_rc "vm2 saved to the file vm1's save is writing: exit 1" 1 vs save vm2 "$T/save/shared.img" --keep-running
check_err "  ... one line: the target is busy" "target $T/save/shared.img is busy"
check "  ... vm2 was never stopped" ticking vm2
kill -CONT "$q"
bg_wait
check "vm1's save finishes" test "$BG_RC" = 0
check "  ... the image is vm1's and complete" json_has "$T/save/shared.img" '"state":"complete","name":"vm1"'
vs stop vm2 >/dev/null

# A save during a restore of the same VM.
expect_rc "save before the restore race (QEMU quits)" 0 vs save vm1 "$F"
before=$(last_tick vm1)
bg rst restore "$F"
q=$(wait_pidfile vm1 30) && hold "$q" "$q" rchar $((200 << 20))
expect_rc "a save of vm1 while it is being restored: exit 1" 1 vs save vm1 "$T/save/c.img"
check_err "  ... one line: VM 'vm1' is busy" "VM 'vm1' is busy"
expect_rc "a second restore of vm1 while one runs: exit 1" 1 vs restore "$F"
check_err "  ... one line: VM 'vm1' is busy" "VM 'vm1' is busy"
skip=$(lines vm1)
kill -CONT "$q"
bg_wait
check "the restore finishes (exit 0)" test "$BG_RC" = 0
check "  ... the guest counts on (ticks were at $before)" ticks_continue vm1 "$before" "$skip"
check "  ... its RAM checks out" guest_selfcheck vm1
check "  ... the refused save left no file" test ! -e "$T/save/c.img"
