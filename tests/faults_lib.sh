# faults_lib.sh: sourced after lib.sh by tests/integration/faults_*.sh.
# Background commands, waiting on a process's I/O counters, the state of
# images and VMs, and flaky disks (build/guest/flakydisk: a FUSE file that
# drops or fails writes on command; a loop device over it is a block device
# that can lose power or fail, as dm-flakey would if this kernel had it).

FLAKYDISK=$TOP/build/guest/flakydisk

# bg NAME CMD...: vmsnap in the background, output in $T/NAME.out and .err; its pid in $BG.
bg() {
	local name=$1; shift
	"$VMSNAP" --config "$T/vmsnap.conf" "$@" >"$T/$name.out" 2>"$T/$name.err" &
	BG=$!
}
# bg_wait: the background command's exit status in $BG_RC and the seconds it still took in $BG_S.
bg_wait() {
	local t0=$SECONDS
	wait "$BG"; BG_RC=$?
	BG_S=$((SECONDS - t0))
}

qpid() { cat "$T/run/$1.pid" 2>/dev/null; }

# A nap without a fork (the polls below must not miss a window of 100 ms).
exec {NAP}<> <(:)
nap() { read -r -t "${1:-0.005}" -u "$NAP"; }

# io PID FIELD: a counter from /proc/PID/io (rchar, wchar: bytes through read/write calls).
io() {
	local k v
	while read -r k v; do [ "$k" = "$2:" ] && { echo "$v"; return 0; }; done <"/proc/$1/io" 2>/dev/null
	return 1
}
# wait_io PID FIELD BYTES SECONDS: until the counter reaches BYTES (fails if PID ends first).
wait_io() {
	local pid=$1 field=$2 want=$3 deadline=$((SECONDS + $4)) k v
	while [ $SECONDS -lt $deadline ]; do
		{ while read -r k v; do
			[ "$k" = "$field:" ] && break
		done <"/proc/$pid/io"; } 2>/dev/null || return 1
		[ "$k" = "$field:" ] || return 1 # the process is gone
		[ "$v" -ge "$want" ] && return 0
		nap
	done
	return 1
}
# wait_pidfile NAME SECONDS: until VM NAME's QEMU has written its pidfile; echoes the pid.
wait_pidfile() {
	local f=$T/run/$1.pid deadline=$((SECONDS + $2)) p
	while [ $SECONDS -lt $deadline ]; do
		if [ -s "$f" ]; then read -r p <"$f" && [ -d "/proc/$p" ] && { echo "$p"; return 0; }; fi
		nap
	done
	return 1
}

# state IMAGE: what inspect says of it (complete, partial, consumed), "refused" if it is not an image.
state() {
	local j
	j=$("$VMSNAP" --config "$T/vmsnap.conf" inspect --json "$1" 2>/dev/null) || { echo refused; return; }
	echo "$j" | sed -n 's/.*"state":"\([a-z]*\)".*/\1/p'
}
json_has() { "$VMSNAP" --config "$T/vmsnap.conf" inspect --json "$1" 2>/dev/null | grep -q "$2"; }
tmp_of() { echo "$(dirname "$1")/.$(basename "$1").vmsnap-partial"; }
# No temp file at all, or one that is refused as incomplete (exit 3).
tmp_not_complete() {
	local t
	t=$(tmp_of "$1")
	[ ! -e "$t" ] || { "$VMSNAP" --config "$T/vmsnap.conf" verify "$t" >/dev/null 2>&1; [ $? = 3 ]; }
}
verifies() { "$VMSNAP" --config "$T/vmsnap.conf" verify "$1" >/dev/null 2>&1; }
refused() { "$VMSNAP" --config "$T/vmsnap.conf" verify "$1" >/dev/null 2>&1; [ $? = 3 ]; }

vm_status() { "$VMSNAP" --config "$T/vmsnap.conf" qmp "$1" query-status 2>/dev/null; }
is_running() { vm_status "$1" | grep -q '"running":true'; }
is_paused() { vm_status "$1" | grep -q '"running":false'; }
is_gone() { ! vs list | awk -v n="$1" '$1 == n && $2 != "stopped" { found = 1 } END { exit !found }'; }
ticking() { local t; t=$(last_tick "$1"); wait_log "$1" "^tick $((t + 2))\$" 20; }
no_fdsets() { [ "$(vs qmp "$1" query-fdsets)" = "[]" ]; }
no_leftovers() {
	tmp_not_complete "$2" && [ ! -e "$(tmp_of "$2")" ] && [ ! -e "$T/run/$1.save-stopped" ]
}
one_line() { [ "$(wc -l <"$1")" -eq 1 ]; }

# --- flaky disks ------------------------------------------------------------
# flaky_start NAME SIZE [FAIL_AFTER]: a flaky disk; echoes the loop device over it.
flaky_start() {
	local n=$1
	truncate -s "$2" "$T/$n.back" && mkdir -p "$T/$n.fuse" || return 1
	# Not on our stdout: $(flaky_start ...) would wait for the server to end.
	"$FLAKYDISK" "$T/$n.back" "$T/$n.fuse" ${3:-} >/dev/null 2>"$T/$n.flaky" &
	echo $! >"$T/$n.fpid"
	wait_until 10 test -e "$T/$n.fuse/disk" || return 1
	losetup --find --show "$T/$n.fuse/disk" | tee "$T/$n.dev"
}
# flaky NAME ok|drop|fail: writes go through, vanish (power cut), fail with
# EIO. Returns once the server has logged this change (the log holds the
# earlier ones too: a new line is waited for, not any).
flaky() {
	local sig n
	case $2 in ok) sig=HUP ;; drop) sig=USR1 ;; fail) sig=USR2 ;; esac
	n=$(grep -c "mode $2" "$T/$1.flaky")
	kill -"$sig" "$(cat "$T/$1.fpid")"
	wait_until 5 test "$(grep -c "mode $2" "$T/$1.flaky")" -gt "$n"
}
# Flaky disks go before lib.sh's cleanup: QEMU and ext4 first, then the
# loop devices, then the FUSE servers.
faults_cleanup() {
	local p n
	for p in "$T"/run/*.pid; do [ -f "$p" ] && kill -9 "$(cat "$p")" 2>/dev/null; done
	pkill -9 -f -- "--config $T/" 2>/dev/null
	sleep 0.2
	awk -v t="$T/" 'index($2, t) == 1 && $3 != "fuse.flakydisk" { print $2 }' /proc/mounts |
		sort -r | xargs -r -n1 umount -l
	for n in "$T"/*.dev; do [ -f "$n" ] && losetup -d "$(cat "$n")" 2>/dev/null; done
	for n in "$T"/*.fpid; do
		[ -f "$n" ] || continue
		umount -l "${n%.fpid}.fuse" 2>/dev/null
		kill -9 "$(cat "$n")" 2>/dev/null
	done
	cleanup
}
trap faults_cleanup EXIT
[ -x "$FLAKYDISK" ] || { fail "$FLAKYDISK is missing (make builds it)"; exit 1; }
# check_err NAME REGEX: stderr of the last expect_rc is one line matching REGEX (shown if not).
check_err() {
	if err_names "$2"; then pass "$1"; else
		fail "$1" "wanted one line matching: $2" "stderr: $(head -c 600 "$T/err")"; fi
}
