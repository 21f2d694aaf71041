# Confinement (issue 13, items 15 and 16): the release binary ignores the
# test build's crash points; a failed save with stdin closed still resumes
# the VM; QEMU runs under its seccomp sandbox (-sandbox ... spawn=deny), so a
# definition's tap script= never runs, and can run as an unprivileged user.
. "$(dirname "$0")/../lib.sh"

start_guest vm1 256M 61 100 || { fail "test guest did not boot"; exit 1; }
running() { vs qmp vm1 query-status | grep -q '"running":true'; }

# --- crash points only in the test build -------------------------------------------
expect_rc "release build/vmsnap, VMSNAP_CRASH_AT=before-header: the save completes" 0 \
	env VMSNAP_CRASH_AT=before-header "$VMSNAP" --config "$T/vmsnap.conf" save vm1 "$T/save/a.img" --keep-running
check "  ... the image verifies" eval 'vs verify "$T/save/a.img" >/dev/null 2>&1'
check "  ... the VM runs on" running
if [ -x "$VMSNAP_TEST" ] && [ "$VMSNAP_TEST" != "$VMSNAP" ]; then
	expect_rc "the control: the test build $VMSNAP_TEST stops there (exit 137)" 137 \
		env VMSNAP_CRASH_AT=before-header "$VMSNAP_TEST" --config "$T/vmsnap.conf" save vm1 "$T/save/b.img" --keep-running
	check "  ... and says so" grep -q "crash injected at before-header" "$T/err"
	vs qmp vm1 cont >/dev/null 2>&1
fi
check "the release binary holds no VMSNAP_CRASH_AT" not grep -q VMSNAP_CRASH_AT "$VMSNAP"

# --- stdin closed: a failed save resumes the VM --------------------------------------
fs=$(make_ext4 smallfs 64M)
expect_rc "save to a file system too small, stdin closed (0<&-): exit 1" 1 \
	bash -c "exec 0<&-; exec '$VMSNAP' --config '$T/vmsnap.conf' save vm1 '$fs/vm1.img'"
check "  ... says the VM is running again" grep -q "the VM is running again" "$T/err"
check "  ... QEMU says running" running
check "  ... the guest ticks on" wait_log vm1 "^tick $(( $(last_tick vm1) + 2 ))\$" 20
