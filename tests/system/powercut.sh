#!/bin/bash
# System test: power failure and power cut on the booted pc-x86_64 appliance
# (`make image`: BusyBox init, QEMU, vmsnap, the test guest as vm1 with its
# console on the host's ttyS2). Driven only through the image's serial
# console (ttyS0, a pipe: commands in, lines out) and the outer QEMU itself
# (SIGKILL is the power cut). The data disk is attached cache=directsync
# (scripts/run-image): what the appliance synced is in the file, what it had
# only in its page cache dies with QEMU.
#
# One chain per way of delivering the power failure (SIGPWR to PID 1, so
# BusyBox init runs ::shutdown: -> rcK -> S95vmsnap stop; NUT's NOTIFYCMD
# with NOTIFYTYPE=LOWBATT; apcupsd's doshutdown), on a fresh data disk:
#   boot 1: vm1 cold-starts (no image). Power failure; cut right AFTER the
#           save reports success ("every image is complete and durable").
#   boot 2: vm1 must be restored: no reboot of the guest, its tick continues
#           from the saved moment, its RAM checks out. Power failure; cut in
#           the MIDDLE of the save (8 MiB of the stream written to the disk).
#   boot 3: vm1 cold-starts (no complete image; the image boot 2 restored is
#           consumed, never replayed), or, if the cut came after the commit,
#           is restored from the saved moment. Power failure delivered and
#           cut at once, BEFORE the save starts.
#   boot 4: vm1 cold-starts (nothing saved; nothing replayed).
# Every wait has a hard timeout and waits for a marker line; the outcome
# table (runs, restored, cold-started, failures) ends the output.
# Environment: POWERCUT_IMAGE (build/images/pc-x86_64), POWERCUT_ROUNDS (1:
# each round is every way x every cut point), POWERCUT_WAYS (sigpwr nut apc),
# POWERCUT_BOOT_S (240: a boot's timeout).
set -u
TOP=$(cd "$(dirname "$0")/../.." && pwd)
IMG=${POWERCUT_IMAGE:-$TOP/build/images/pc-x86_64}
ROUNDS=${POWERCUT_ROUNDS:-1}
WAYS=${POWERCUT_WAYS:-sigpwr nut apc}
BOOT_S=${POWERCUT_BOOT_S:-240}
for f in bzImage initramfs.cpio data.img; do
	[ -f "$IMG/$f" ] || { echo "not ok - $IMG/$f missing (make image BOARD=pc-x86_64)"; exit 1; }
done
W=$(mktemp -d /tmp/vmsnap-powercut.XXXXXX)
QPID= RPID= IN= QEMU_CRASHES=0
declare -A runs restored cold failures

cleanup() {
	[ -n "$QPID" ] && kill -9 "$QPID" 2>/dev/null
	[ -n "$RPID" ] && kill "$RPID" 2>/dev/null
	wait 2>/dev/null
	rm -rf "$W"
}
trap cleanup EXIT

pass() { echo "ok - $1"; }
FAILS=0
fail() { FAILS=$((FAILS + 1)); echo "not ok - $1"; shift; for l in "$@"; do echo "#   $l"; done; }
exec {NAP}<> <(:)
nap() { read -r -t "${1:-0.01}" -u "$NAP"; }

# wait_for FILE REGEX SECONDS: a line matching in FILE (the marker), or 1.
wait_for() {
	local deadline=$((SECONDS + $3))
	while [ $SECONDS -lt $deadline ]; do
		grep -qE "$2" "$1" 2>/dev/null && return 0
		nap 0.05
	done
	return 1
}
# wait_booted FILE SECONDS: the boot's end marker, or 1 (at once if QEMU is gone).
wait_booted() {
	local deadline=$((SECONDS + $2))
	while [ $SECONDS -lt $deadline ] && kill -0 "$QPID" 2>/dev/null; do
		grep -q '^vmsnap-image: boot done' "$1" && return 0
		nap 0.05
	done
	grep -q '^vmsnap-image: boot done' "$1"
}
# io_w PID: bytes the process has written (its data disk writes are most of them).
io_w() { sed -n 's/^wchar: //p' "/proc/$1/io" 2>/dev/null; }

# boot N: the image on $W/data.img; console lines in $W/s0-N.log, the
# guest's in $W/guest-N.log. Returns once vm1 ticks (or 1 on timeout).
boot() {
	local n=$1
	S0=$W/s0-$n.log G=$W/guest-$n.log
	rm -f "$W/s0.in" "$W/s0.out" && mkfifo "$W/s0.in" "$W/s0.out"
	: >"$S0"
	cat "$W/s0.out" >>"$S0" &
	RPID=$!
	exec {IN}<>"$W/s0.in"
	"$TOP/scripts/run-image" "$IMG" --data "$W/data.img" --ttyS0 "pipe,path=$W/s0" --ttyS1 null \
		--ttyS2 "file,path=$G" --qmp "socket,path=$W/qmp.sock,server=on,wait=off" \
		>"$W/qemu-$n.out" 2>&1 &
	QPID=$!
	if ! wait_booted "$S0" "$BOOT_S"; then
		if ! kill -0 "$QPID" 2>/dev/null && [ -z "${retried:-}" ]; then
			# The outer QEMU died on its own (TCG has asserted here, in
			# firmware, before any console line): one more power cycle, said.
			echo "# boot $n: the outer QEMU died by itself: $(tail -n 1 "$W/qemu-$n.out"); booting again"
			QEMU_CRASHES=$((QEMU_CRASHES + 1))
			cut
			retried=1 boot "$n"
			return
		fi
		echo "# boot $n: no 'boot done' in $BOOT_S s" >&2
		return 1
	fi
	wait_for "$G" '^tick ([3-9]|[0-9]{2,})[[:space:]]*$' 120 || { echo "# boot $n: vm1 does not tick" >&2; return 1; }
}
say() { printf '%s\n' "$1" >&"$IN"; }
# cut: the power goes (QEMU killed), the console reader ends.
cut() {
	kill -9 "$QPID" 2>/dev/null
	wait "$QPID" 2>/dev/null
	exec {IN}>&-
	wait "$RPID" 2>/dev/null
	QPID= RPID=
}
last_tick() { grep -aE '^tick [0-9]+' "$1" | tail -n 1 | sed 's/^tick \([0-9]*\).*/\1/'; }
first_tick() { grep -aE '^tick [0-9]+' "$1" | head -n 1 | sed 's/^tick \([0-9]*\).*/\1/'; }

# deliver WAY: the power failure, as that way does it, on the console.
deliver() {
	case $1 in
	sigpwr) say 'kill -PWR 1' ;;
	nut) say 'NOTIFYTYPE=LOWBATT UPSNAME=ups0@localhost /etc/nut/vmsnap-notify "UPS ups0@localhost battery is low"; echo "hook-exit $?"' ;;
	apc) say '/etc/apcupsd/doshutdown doshutdown ups0 1 0; echo "hook-exit $?"' ;;
	esac
}
OK_MARK='power fail: every image is complete and durable'
START_MARK='power fail: saving 1 VM'

# judge LABEL POINT TICK_BEFORE: what this boot did with vm1 after a cut at
# POINT; counts the outcome. after: restored; mid: restored or cold; before: cold.
judge() {
	local label=$1 point=$2 t=$3 first how
	runs[$point]=$((${runs[$point]:-0} + 1))
	if grep -q 'vm1: restored from' "$S0"; then how=restored; else how=cold; fi
	first=$(first_tick "$G")
	if [ $how = restored ]; then
		restored[$point]=$((${restored[$point]:-0} + 1))
		# From the saved moment: the guest did not reboot and counts on from
		# the last tick seen before the cut (a tick or two may still have been
		# in the serial line's buffers then).
		if grep -aq '^vmsnap-guest start' "$G" || [ -z "$first" ] || [ "$first" -le "$t" ] || [ "$first" -gt $((t + 5)) ]; then
			failures[$point]=$((${failures[$point]:-0} + 1))
			fail "$label: restored, but not from the saved moment (tick $first after the cut, $t before)"
			return
		fi
		pass "$label: restored from the saved moment (tick $t before the cut, $first after)"
		say 'vmsnap qmp vm1 '"'"'{"execute":"send-key","arguments":{"keys":[{"type":"qcode","data":"c"}]}}'"'"
		if wait_for "$G" '^check (ok|FAIL)' 120 && grep -aq '^check ok' <(grep -aE '^check ' "$G" | tail -n 1); then
			pass "$label: ... its RAM checks out (not torn)"
		else
			failures[$point]=$((${failures[$point]:-0} + 1))
			fail "$label: ... its RAM does not check out"
		fi
		[ "$point" = before ] && { failures[$point]=$((${failures[$point]:-0} + 1)); fail "$label: restored after a cut before the save: a replay"; }
	else
		cold[$point]=$((${cold[$point]:-0} + 1))
		if grep -aq '^vmsnap-guest start' "$G" && [ "${first:-0}" -le 3 ] && grep -q 'vm1: cold-started' "$S0"; then
			pass "$label: cold-started ($(grep -o 'cold-started: [^;]*' "$S0" | head -n 1))"
		else
			failures[$point]=$((${failures[$point]:-0} + 1))
			fail "$label: neither restored nor a clean cold start" "$(tail -n 5 "$S0")"
		fi
		[ "$point" = after ] && { failures[$point]=$((${failures[$point]:-0} + 1)); fail "$label: the save had completed, yet vm1 was not restored"; }
	fi
}

chain() {
	local way=$1 r=$2 lab t w0 w off
	lab="$way #$r"
	cp --sparse=always "$IMG/data.img" "$W/data.img"
	boot "1$way$r" || { fail "$lab: boot 1"; cut; return; }
	if grep -q 'vm1: cold-started: no image' "$S0"; then pass "$lab: boot 1 cold-starts vm1 (no image)"; else fail "$lab: boot 1 did not cold-start vm1"; fi

	# AFTER: cut as soon as the save says it succeeded.
	deliver "$way"
	if wait_for "$S0" "$OK_MARK" 120; then
		t=$(last_tick "$G"); cut
		pass "$lab: the save reports success; cut right after (tick $t)"
	else
		t=$(last_tick "$G"); cut; fail "$lab: no '$OK_MARK' in 120 s" "$(tail -n 5 "$S0")"
	fi
	boot "2$way$r" || { fail "$lab: boot 2"; cut; return; }
	judge "$lab: after" after "$t"

	# MIDDLE: cut once the save has written 8 MiB to the data disk.
	wait_for "$G" "^tick $(($(last_tick "$G") + 2))[[:space:]]*\$" 30
	deliver "$way"
	if wait_for "$S0" "$START_MARK" 120; then
		w0=$(io_w "$QPID")
		while [ "$(io_w "$QPID")" -lt $((w0 + (8 << 20))) ] && ! grep -q "$OK_MARK" "$S0"; do nap 0.002; done
		t=$(last_tick "$G") w=$(( ($(io_w "$QPID") - w0) >> 20 ))
		if grep -q "$OK_MARK" "$S0"; then
			cut; fail "$lab: the save ended before 8 MiB were seen written: not a mid-save cut"
		else
			cut; pass "$lab: cut in the middle of the save ($w MiB written)"
		fi
	else
		t=$(last_tick "$G"); cut; fail "$lab: no '$START_MARK' in 120 s"
	fi
	boot "3$way$r" || { fail "$lab: boot 3"; cut; return; }
	judge "$lab: middle" mid "$t"

	# BEFORE: cut the moment the power failure is sent, before anything saves.
	wait_for "$G" "^tick $(($(last_tick "$G") + 2))[[:space:]]*\$" 30
	off=$(wc -l <"$S0")
	deliver "$way"
	t=$(last_tick "$G"); cut
	if tail -n +"$((off + 1))" "$S0" | grep -q "$START_MARK"; then
		fail "$lab: the save had started: not a cut before it"
	else
		pass "$lab: cut before the save started"
	fi
	boot "4$way$r" || { fail "$lab: boot 4"; cut; return; }
	judge "$lab: before" before "$t"
	cut
}

t0=$SECONDS
for r in $(seq 1 "$ROUNDS"); do
	for way in $WAYS; do chain "$way" "$r"; done
done
echo "# power cuts on pc-x86_64 ($((SECONDS - t0)) s; ways: $WAYS; rounds: $ROUNDS)"
echo "# outer QEMU crashes by itself (booted again): $QEMU_CRASHES"
echo "# cut point | runs | restored | cold-started | failures"
for p in after mid before; do
	echo "# $p | ${runs[$p]:-0} | ${restored[$p]:-0} | ${cold[$p]:-0} | ${failures[$p]:-0}"
done
[ "$FAILS" -eq 0 ]
