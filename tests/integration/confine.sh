# Confinement (issue 13, items 15 and 16): the release binary ignores the
# test build's crash points; a failed save with stdin closed still resumes
# the VM; QEMU runs under its seccomp sandbox (-sandbox ... spawn=deny), so a
# definition's tap script= never runs, and can run as an unprivileged user.
. "$(dirname "$0")/../lib.sh"

start_guest vm1 256M 61 100 || { fail "test guest did not boot"; exit 1; }
running() { vs qmp vm1 query-status | grep -q '"running":true'; }

# --- crash points only in the test build -------------------------------------------
# The release binary itself, whichever build the other tests run (SANITIZE=1).
release=$TOP/build/vmsnap
expect_rc "release build/vmsnap, VMSNAP_CRASH_AT=before-header: the save completes" 0 \
	env VMSNAP_CRASH_AT=before-header "$release" --config "$T/vmsnap.conf" save vm1 "$T/save/a.img" --keep-running
check "  ... the image verifies" eval 'vs verify "$T/save/a.img" >/dev/null 2>&1'
check "  ... the VM runs on" running
if [ -x "$VMSNAP_TEST" ]; then
	expect_rc "the control: the test build $VMSNAP_TEST stops there (exit 137)" 137 \
		env VMSNAP_CRASH_AT=before-header "$VMSNAP_TEST" --config "$T/vmsnap.conf" save vm1 "$T/save/b.img" --keep-running
	check "  ... and says so" grep -q "crash injected at before-header" "$T/err"
	vs qmp vm1 cont >/dev/null 2>&1
fi
check "the release binary holds no VMSNAP_CRASH_AT" not grep -q VMSNAP_CRASH_AT "$release"

# --- stdin closed: a failed save resumes the VM --------------------------------------
fs=$(make_ext4 smallfs 64M)
expect_rc "save to a file system too small, stdin closed (0<&-): exit 1" 1 \
	bash -c "exec 0<&-; exec '$VMSNAP' --config '$T/vmsnap.conf' save vm1 '$fs/vm1.img'"
check "  ... says the VM is running again" grep -q "the VM is running again" "$T/err"
check "  ... QEMU says running" running
check "  ... the guest ticks on" wait_log vm1 "^tick $(( $(last_tick vm1) + 2 ))\$" 20

# --- QEMU's seccomp sandbox -----------------------------------------------------------
qpid() { cat "$T/run/$1.pid"; }
argv_of() { tr '\0' '\n' <"/proc/$(qpid "$1")/cmdline"; }
check "QEMU's argv has -sandbox on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny" \
	eval 'argv_of vm1 | grep -A1 -x -- -sandbox | grep -qx "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny"'
check "  ... and the kernel has QEMU under a seccomp filter (Seccomp: 2)" \
	grep -qE '^Seccomp:[[:space:]]+2$' "/proc/$(qpid vm1)/status"
check "  ... QEMU runs in a session of its own (vmsnap daemonizes it)" \
	eval 'test "$(ps -o sid= -p "$(qpid vm1)")" != "$(ps -o sid= -p $$)"'
vs stop vm1 >/dev/null

# spawn=deny: a definition's tap script= never runs; qemu_spawn = yes runs it.
printf '#!/bin/sh\ntouch %s/script-ran\n' "$T" >"$T/ifup.sh" && chmod 755 "$T/ifup.sh"
define_guest tap 64M 64 10
echo "-netdev tap,id=n0,ifname=vst$$,script=$T/ifup.sh,downscript=no" >>"$T/vms/tap.vm"
expect_rc "a definition with -netdev tap,script=: run fails (exit 1), QEMU may not spawn" 1 vs run tap
check "  ... the script did not run" test ! -e "$T/script-ran"
check "  ... no QEMU left" no_qemu
sed '1i qemu_spawn = yes' "$T/vmsnap.conf" >"$T/spawn.conf"
expect_rc "the control, qemu_spawn = yes: the same definition runs" 0 "$VMSNAP" --config "$T/spawn.conf" run tap
check "  ... and its script ran" test -e "$T/script-ran"
check "  ... the sandbox says spawn=allow" eval 'argv_of tap | grep -qx "on,obsolete=deny,elevateprivileges=deny,spawn=allow,resourcecontrol=deny"'
"$VMSNAP" --config "$T/spawn.conf" stop tap >/dev/null

# --- a golden pair under a directory named "x,mem-path=..." (item 4) -------------------
# QEMU is handed the RAM file vmsnap checked (an fd, /proc/self/fd/N), so
# neither the ',' nor a file swapped in after the check can redirect it.
printf '[vm gold]\ninstant = yes\n' >>"$T/vmsnap.conf"
start_guest gold 128M 65 100 || fail "gold: guest did not boot"
evil="$T/x,mem-path=$T/other"
mkdir -p "$evil" "$T/other"
expect_rc "golden save into $evil" 0 vs save gold "$evil/g.img" --golden
ram=$(ls "$evil"/g.img.*.ram)
decoy=$T/other/$(basename "$ram")
truncate -s 128M "$decoy"
skip=$(lines gold)
expect_rc "  ... restore it" 0 vs restore "$evil/g.img"
mapped() { awk '{ print $5 }' "/proc/$(qpid gold)/maps" | grep -qx "$(stat -c %i "$1")"; }
check "  ... QEMU maps the checked RAM file" mapped "$ram"
check "  ... not the file the ',' would have named" not mapped "$decoy"
check "  ... the guest counts on" wait_log gold '^tick ' 30 "$skip"
check "  ... and its RAM checks out" guest_selfcheck gold
vs stop gold >/dev/null

# --- qemu_user: QEMU drops to an unprivileged user (nobody) -----------------------------
sed '1i qemu_user = nobody' "$T/vmsnap.conf" >"$T/user.conf"
vu() { "$VMSNAP" --config "$T/user.conf" "$@"; }
define_guest u1 128M 66 100
quser() { test "$(ps -o user= -p "$(qpid u1)")" = nobody; }
expect_rc "qemu_user = nobody: run" 0 vu run u1
check "  ... the guest boots" eval 'wait_log u1 "^check ok" 120 && wait_log u1 "^tick 5$" 30'
check "  ... QEMU runs as nobody" quser
check "  ... with -run-with user=nobody, the sandbox allowing that one setuid" \
	eval 'argv_of u1 | grep -qx "user=nobody" && argv_of u1 | grep -qx "on,obsolete=deny,elevateprivileges=allow,spawn=deny,resourcecontrol=deny"'
for fmt in 2 3; do
	before=$(last_tick u1)
	expect_rc "  ... v$fmt save" 0 vu save u1 "$T/save/u1-v$fmt.img" --format $fmt
	skip=$(lines u1)
	expect_rc "  ... v$fmt restore" 0 vu restore "$T/save/u1-v$fmt.img"
	check "  ... ticks continue (were at $before)" ticks_continue u1 "$before" "$skip"
	check "  ... QEMU runs as nobody again" quser
done
check "  ... RAM checks out" guest_selfcheck u1
vu stop u1 >/dev/null
# The golden pair again, QEMU as nobody: the RAM file still reaches it as an fd.
skip=$(lines gold)
expect_rc "qemu_user = nobody: golden instant restore" 0 vu restore "$evil/g.img"
check "  ... QEMU runs as nobody" test "$(ps -o user= -p "$(qpid gold)")" = nobody
check "  ... and maps the checked RAM file" mapped "$ram"
check "  ... the guest counts on" wait_log gold '^tick ' 30 "$skip"
check "  ... its RAM checks out" guest_selfcheck gold
vu stop gold >/dev/null
