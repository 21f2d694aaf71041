# The power-failure hooks of the rootfs overlay, driven on the host as the
# daemons call them: apcupsd's apccontrol (/etc/apcupsd/EVENT with its four
# arguments), NUT's upsmon NOTIFYCMD ($NOTIFYTYPE) and upssched CMDSCRIPT
# (a timer name), sysvinit's powerfail/powerfailnow/powerokwait lines of
# inittab.vmsnap, run exactly as written there, and systemd's
# vmsnap-powerfail.service (systemd-analyze verify, systemctl enable into
# sigpwr.target.wants, its ExecStart run as systemd runs it). Each saves vm1 (the test
# guest) and brings it back; power returning in the middle of a save (QEMU
# held with SIGSTOP while its stream is half written) cancels it: the guest
# runs on within a second and no image claims to be complete.
. "$(dirname "$0")/../lib.sh"
. "$TOP/tests/faults_lib.sh"
cd "$TOP" || exit 1
R=$T/root
make --no-print-directory O="$T/build" KCONFIG_CONFIG="$T/config" rootfs >/dev/null 2>&1 || fail "make rootfs"
cp -a "$T/build/rootfs" "$R"
# The overlay's config, with the test's directories (lib.sh's helpers use them).
sed -e "s|^vm_dir = .*|vm_dir = $T/vms|" -e "s|^run_dir = .*|run_dir = $T/run|" \
	-e "s|^save_dir = .*|save_dir = $T/save|" -e "s|^trusted_keys = .*|trusted_keys = $T/trusted|" \
	-e "s|^vms =.*|vms = vm1|" "$R/etc/vmsnap.conf" >"$T/vmsnap.conf"
define_guest vm1 256M 51 100
export VMSNAP=${VMSNAP_BIN:-$R/usr/bin/vmsnap} VMSNAP_CONF=$T/vmsnap.conf RUN_DIR=$T/run \
	VMSNAP_INIT=$R/etc/init.d/S95vmsnap VMSNAP_POWER=$R/usr/sbin/vmsnap-power \
	VMSNAP_POWER_LOG=$T/timer.log WATCH_LOG=$T/watch.log
IMG=$T/save/vm1.img

run() { "$@" >"$T/out" 2>"$T/err"; }
timer() { local p; p=$(cat "$T/run/power-timer.pid" 2>/dev/null) && [ -n "$p" ] && kill -0 "$p" 2>/dev/null; }
watching() { local p; p=$(cat "$T/run/watch.pid" 2>/dev/null) && [ -n "$p" ] && kill -0 "$p" 2>/dev/null; }
saved() { [ "$(state "$IMG")" = complete ] && is_gone vm1; }
# up LABEL: vm1 was saved at tick $before; after the hook it runs again from its image.
up() {
	check "$1: ... restores vm1 from its image" wait_until 60 grep -q "vm1: restored from $IMG" "$T/watch.log" "$T/err"
	check "$1: ... the guest counts on from tick $before" ticks_continue vm1 "$before" "$skip"
	check "$1: ... the image is consumed" test "$(state "$IMG")" = consumed
	check "$1: ... the watcher watches again" wait_until 20 watching
}
# down: remember where the guest was (before a save).
down() { before=$(last_tick vm1); skip=$(lines vm1); : >"$T/watch.log"; }

check "start: cold-starts vm1, the watcher runs" run "$VMSNAP_INIT" start
check "  ... the guest boots" wait_log vm1 '^tick 5$' 120
check "  ... the watcher runs" wait_until 20 watching

# --- apcupsd: apccontrol runs /etc/apcupsd/EVENT EVENT UPSNAME CONNECTED POWERED
apc() { local ev=$1; shift; run env "$@" "$R/etc/apcupsd/$ev" "$ev" ups0 1 0; }
check "apcupsd powerout: exit 0, timer armed" apc powerout VMSNAP_SAVE_AFTER=600
check "  ... vm1 still runs" is_running vm1
t1=$(cat "$T/run/power-timer.pid")
check "apcupsd onbattery: exit 0, the armed timer stays" apc onbattery VMSNAP_SAVE_AFTER=600
check "  ... the same timer ($t1)" eval 'timer && [ "$(cat "$T/run/power-timer.pid")" = "$t1" ]'
check "apcupsd mainsback: exit 0" apc mainsback
check "  ... the timer is disarmed" eval '! timer && wait_until 5 not kill -0 "$t1" 2>/dev/null'
check "  ... vm1 runs on, nothing saved" eval 'is_running vm1 && [ ! -e "$IMG" ]'
down
check "apcupsd onbattery, 1 s timer: exit 0" apc onbattery VMSNAP_SAVE_AFTER=1
check "  ... the timer saves vm1 (complete image, QEMU gone)" wait_until 120 saved
check "  ... and the watcher has ended" wait_until 20 not watching
check "apcupsd mainsback: exit 0" apc mainsback
up "apcupsd mainsback"
down
check "apcupsd doshutdown: exit 0" apc doshutdown
check "  ... vm1 saved before it returned" saved
check "apcupsd mainsback: exit 0" apc mainsback
up "apcupsd mainsback"

# --- NUT: upsmon runs NOTIFYCMD with $NOTIFYTYPE; upssched its CMDSCRIPT with a timer name
nut() { local t=$1; shift; run env NOTIFYTYPE="$t" UPSNAME=ups0@localhost "$@" "$R/etc/nut/vmsnap-notify" "UPS ups0@localhost: $t"; }
check "NUT ONBATT: exit 0, timer armed" nut ONBATT VMSNAP_SAVE_AFTER=600
check "  ... the timer runs" timer
check "NUT ONLINE: exit 0, the timer disarmed" eval 'nut ONLINE && ! timer'
check "  ... vm1 runs on, nothing saved" eval 'is_running vm1 && [ "$(state "$IMG")" = consumed ]'
for ev in LOWBATT FSD; do
	down
	check "NUT $ev: exit 0" nut $ev
	check "  ... vm1 saved before it returned" saved
	check "NUT ONLINE: exit 0" nut ONLINE
	up "NUT ONLINE"
done
down
check "NUT ONBATT, 1 s timer: exit 0" nut ONBATT VMSNAP_SAVE_AFTER=1
check "  ... the timer saves vm1" wait_until 120 saved
check "NUT ONLINE: exit 0" nut ONLINE
up "NUT ONLINE"
down
check "upssched CMDSCRIPT vmsnap-onbatt-timer: exit 0, vm1 saved" eval 'run "$R/etc/nut/vmsnap-notify" vmsnap-onbatt-timer && saved'
check "upssched CMDSCRIPT vmsnap-online: exit 0" run "$R/etc/nut/vmsnap-notify" vmsnap-online
up "upssched vmsnap-online"
check "NUT: an unknown upssched command: exit 2" bash -c "'$R/etc/nut/vmsnap-notify' frob 2>/dev/null; test \$? = 2"
check "NUT: an event vmsnap does not act on (COMMOK): exit 0" eval 'nut COMMOK && is_running vm1'

# --- sysvinit: the lines of inittab.vmsnap, as init runs them (/bin/sh -c)
initline() { local cmd; cmd=$(sed -n "s|^[a-z]*::$1:||p" "$R/etc/inittab.vmsnap"); [ -n "$cmd" ] && run env "${@:2}" sh -c "$R$cmd"; }
check "sysvinit powerfail (F): timer armed" eval 'initline powerfail VMSNAP_SAVE_AFTER=600 && timer'
check "sysvinit powerokwait (O): disarmed, vm1 runs on" eval 'initline powerokwait && ! timer && is_running vm1'
down
check "sysvinit powerfailnow (L): vm1 saved before it returned" eval 'initline powerfailnow && saved'
check "sysvinit powerokwait (O)" initline powerokwait
up "sysvinit powerokwait"

# --- systemd: vmsnap-powerfail.service, wanted by sigpwr.target (systemd starts
# the target when PID 1 gets SIGPWR). systemd is not PID 1 here: the unit is
# checked by systemd's own tools offline (--root), against the real
# sigpwr.target of the host's systemd, and its ExecStart is run as systemd
# would run it: no shell, the environment systemd gives a system service (its
# PATH) plus the unit's Environment= lines (none), plus this test's layout.
SD=$R/etc/systemd/system/vmsnap-powerfail.service
sd_key() { sed -n "/^\[$1\]/,/^\[/s/^$2=//p" "$SD"; }
if command -v systemd-analyze >/dev/null && [ -f /lib/systemd/system/sigpwr.target ]; then
	mkdir -p "$R/lib/systemd/system" && cp /lib/systemd/system/sigpwr.target "$R/lib/systemd/system/"
	check "systemd: systemd-analyze verify of the unit, its ExecStart in the root: clean" \
		eval 'systemd-analyze --root="$R" --man=no verify "$SD" >"$T/out" 2>&1 && [ ! -s "$T/out" ]'
	mkdir -p "$T/sdbare/etc/systemd/system" && cp "$SD" "$T/sdbare/etc/systemd/system/"
	check "  ... and it does check ExecStart: refused in a root without vmsnap-power" eval \
		'! systemd-analyze --root="$T/sdbare" --man=no verify "$T/sdbare/etc/systemd/system/${SD##*/}" >"$T/out" 2>&1 &&
		grep -q "vmsnap-power is not executable" "$T/out"'
	check "systemd: systemctl enable links it into sigpwr.target.wants, no warning" eval \
		'systemctl --root="$R" enable "${SD##*/}" >"$T/out" 2>&1 && ! grep -qi "non-existent\|warn" "$T/out" &&
		[ "$(readlink "$R/etc/systemd/system/sigpwr.target.wants/${SD##*/}")" = "/etc/systemd/system/${SD##*/}" ]'
	check "  ... sigpwr.target with its wants verifies" \
		eval 'systemd-analyze --root="$R" --man=no verify "$R/lib/systemd/system/sigpwr.target" >"$T/out" 2>&1 && [ ! -s "$T/out" ]'
	check "  ... [Install] WantedBy=sigpwr.target" test "$(sd_key Install WantedBy)" = sigpwr.target
	check "  ... [Unit] DefaultDependencies=no, Before=shutdown.target (a shutdown waits for the save)" \
		test "$(sd_key Unit DefaultDependencies) $(sd_key Unit Before)" = "no shutdown.target"
	check "  ... [Service] Type=oneshot (done when the images are), TimeoutStartSec=infinity" \
		test "$(sd_key Service Type) $(sd_key Service TimeoutStartSec)" = "oneshot infinity"
	check "  ... ExecStart=/usr/sbin/vmsnap-power fail" test "$(sd_key Service ExecStart)" = "/usr/sbin/vmsnap-power fail"
	down
	# shellcheck disable=SC2046 # ExecStart and Environment= are split into words, as systemd does
	check "systemd: the unit's ExecStart, run as systemd runs it: vm1 saved before it returned" eval \
		'env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin $(sd_key Service Environment) \
			VMSNAP="$VMSNAP" VMSNAP_CONF="$VMSNAP_CONF" RUN_DIR="$RUN_DIR" VMSNAP_INIT="$VMSNAP_INIT" \
			VMSNAP_POWER_LOG="$VMSNAP_POWER_LOG" WATCH_LOG="$WATCH_LOG" "$R"$(sd_key Service ExecStart) \
			>"$T/out" 2>"$T/err" && saved'
	check "  ... the watcher has ended (the save stopped it)" not watching
	check "power back (vmsnap-power ok, as a UPS daemon's hook runs it)" run "$VMSNAP_POWER" ok
	up "systemd, then power back"
else
	fail "systemd: systemd-analyze or /lib/systemd/system/sigpwr.target missing (Debian 12 has both: apt-get install systemd)"
fi

# --- power returns during a save. hold_mid_save: once QEMU has written
# 32 MiB of the stream it is stopped (SIGSTOP), so the save is surely
# unfinished when power returns; the hook runs, QEMU is let go (SIGCONT), and
# the guest must run within a second of the hook's start.
# QEMU's write counter counts its whole life: w0 is taken before the power fails.
hold_mid_save() {
	local q=$1
	wait_io "$q" wchar $((w0 + (32 << 20))) 60 || { echo "# QEMU wrote no 32 MiB" >&2; return 1; }
	kill -STOP "$q"
	qstopped=$q
}
# usr2_pending PID: SIGUSR2 (12: bit 11 of ShdPnd, kill's queue) waits at the stopped PID.
usr2_pending() { local m; m=$(sed -n 's/^ShdPnd:[[:space:]]*//p' "/proc/$1/status") && (( 0x$m & 0x800 )); }
ticked_past() { [ "$(last_tick vm1)" -gt "$1" ]; }
# back_in_time LABEL CMD...: power back while held; the guest runs within 1 s.
back_in_time() {
	local label=$1 t0 ms held hook; shift
	held=$(last_tick vm1)
	t0=$(date +%s%N)
	"$@" >"$T/out" 2>"$T/err" &
	hook=$!
	[ -z "${await_usr2:-}" ] || WAIT_STEP=0.01 wait_until 10 usr2_pending "$qstopped"
	kill -CONT "$qstopped"
	WAIT_STEP=0.01 wait_until 10 ticked_past "$held"
	ms=$((($(date +%s%N) - t0) / 1000000))
	echo "# $label: the guest runs again $ms ms after power back"
	check "$label: the guest runs again within 1 s ($ms ms)" test "$ms" -le 1000
	wait_exit "$hook" 180
}
for how in daemon now; do
	down
	before_state=$(state "$IMG")
	q=$(qpid vm1) && w0=$(io "$q" wchar)
	if [ $how = daemon ]; then
		kill -PWR "$(cat "$T/run/watch.pid")"
		label="SIGPWR to the watcher, then apcupsd mainsback mid-save"
		check "$label: the save is underway" hold_mid_save "$q"
		back_in_time "$label" "$R/etc/apcupsd/mainsback" mainsback ups0 1 1
		# (the guest runs again before the watcher has written its lines)
		check "  ... the watcher cancelled the save" wait_until 10 grep -q "vm1: cancelled: power returned" "$T/watch.log"
		check "  ... and watches again" eval 'wait_until 10 grep -q "watching again" "$T/watch.log" && watching'
	else
		"$R/usr/sbin/vmsnap-power" fail >"$T/now.out" 2>&1 &
		nowpid=$!
		# (vmsnap-power fail as a hook runs it: sysvinit itself starts powerokwait
		# only after a powerfailnow line ends, see tests/system/test_sysvinit.py)
		label="vmsnap-power fail, then the powerokwait line mid-save"
		check "$label: the save is underway" hold_mid_save "$q"
		back_in_time "$label" sh -c "$R$(sed -n 's|^po::powerokwait:||p' "$R/etc/inittab.vmsnap")"
		wait_exit "$nowpid" 60
		check "  ... watch --now exits 1: its save was cancelled" test $? = 1
		check "  ... and says so" grep -q "vm1: cancelled: power returned" "$T/now.out"
		check "  ... a watcher runs again" wait_until 20 watching
	fi
	check "  ... vm1's image is as before the save ($before_state), not complete" \
		test "$(state "$IMG")" = "$before_state"
	check "  ... no partial file left" test ! -e "$(tmp_of "$IMG")"
	check "  ... the guest counts on (no restore, no reboot)" ticks_continue vm1 "$before" "$skip"
	check "  ... its RAM checks out" guest_selfcheck vm1
done
# Power back just after the commit: the test build's save job holds there
# (VMSNAP_HOLD_AT, SIGSTOP) until the hook has run. The image is complete
# but about to be left behind by the running VM: recorded consumed, never
# restored; the VM runs on.
kill "$(cat "$T/run/watch.pid")" && wait_until 10 not watching
: >"$T/watch.log"
VMSNAP_HOLD_AT=after-commit "$VMSNAP_TEST" watch >>"$T/watch.log" 2>&1 &
wait_until 20 grep -q "watching for power failure" "$T/watch.log"
down
old_img=$(stat -c %i "$IMG")
kill -PWR "$(cat "$T/run/watch.pid")"
label="apcupsd mainsback just after the commit"
held_job() { local c; for c in $(pgrep -P "$(cat "$T/run/watch.pid")"); do grep -q '^State:.*T' "/proc/$c/status" && { qstopped=$c; return 0; }; done; return 1; }
check "$label: the save is held after its commit" eval 'wait_until 120 grep -q "held at after-commit" "$T/watch.log" && wait_until 10 held_job'
await_usr2=1 back_in_time "$label" "$R/etc/apcupsd/mainsback" mainsback ups0 1 1
check "  ... the watcher says what it did" wait_until 10 grep -q "vm1: power returned as the save ended: $IMG recorded consumed, the VM runs on" "$T/watch.log"
check "  ... a new image, complete but consumed" \
	eval '[ "$(stat -c %i "$IMG")" != "$old_img" ] && [ "$(state "$IMG")" = consumed ]'
expect_rc "  ... which no restore takes (exit 3)" 3 vs restore "$IMG" --name vm2
check_err "  ... as consumed" "consumed"
check "  ... the guest counts on (no restore, no reboot)" eval 'ticks_continue vm1 "$before" "$skip" && ! grep -q "restored from" "$T/watch.log"'
check "  ... the watcher watches again" eval 'wait_until 10 grep -q "watching again" "$T/watch.log" && watching'

check "power back with no save in progress: the watcher says so and stays" \
	eval '"$R/etc/apcupsd/mainsback" mainsback ups0 1 1 >/dev/null 2>&1 && wait_until 10 grep -q "nothing to cancel" "$T/watch.log" && watching'

check "stop: vm1 saved" eval 'run "$VMSNAP_INIT" stop && saved'
check "usage errors: exit 2" bash -c "'$R/usr/sbin/vmsnap-power' frob 2>/dev/null; a=\$?; '$R/usr/sbin/vmsnap-power' arm x 2>/dev/null; b=\$?; [ \$a = 2 ] && [ \$b = 2 ]"
