# lib.sh: sourced by every integration test. A scratch directory with its own
# vmsnap.conf, the test guest as VMs, TAP output ("ok - name" / "not ok - name"),
# and a cleanup that stops every QEMU and loop device the test created.
set -u
TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VMSNAP=${VMSNAP_BIN:-$TOP/build/vmsnap}
# The test build (host compiler, crash points on: VMSNAP_CRASH_AT); the
# release build/vmsnap ignores VMSNAP_CRASH_AT. SANITIZE=1 runs have both.
VMSNAP_TEST=${VMSNAP_BIN:-$TOP/build/host/vmsnap}
GUEST=$TOP/build/guest/guest.elf
PATCHECK=$TOP/build/guest/patcheck
T=$(mktemp -d /tmp/vmsnap-it.XXXXXX)
mkdir -p "$T/vms" "$T/run" "$T/save"

cat >"$T/vmsnap.conf" <<CONF
vm_dir = $T/vms
run_dir = $T/run
save_dir = $T/save
trusted_keys = $T/trusted
CONF

vs() { "$VMSNAP" --config "$T/vmsnap.conf" "$@"; }

cleanup() {
	local p
	for p in "$T"/run/*.pid; do
		[ -f "$p" ] && kill -9 "$(cat "$p")" 2>/dev/null
	done
	pkill -9 -f "$T/" 2>/dev/null
	sleep 0.2
	awk -v t="$T/" 'index($2, t) == 1 { print $2 }' /proc/mounts | sort -r | xargs -r -n1 umount
	for p in "$T"/loop.*; do
		[ -f "$p" ] && losetup -j "$p" | cut -d: -f1 | xargs -r -n1 losetup -d
	done
	rm -rf "$T"
}
trap cleanup EXIT

# --- TAP ------------------------------------------------------------------
pass() { echo "ok - $1"; }
fail() { echo "not ok - $1"; shift; for l in "$@"; do echo "#   $l"; done; }
# check NAME CONDITION...: ok if the command succeeds.
check() {
	local name=$1; shift
	if "$@"; then pass "$name"; else fail "$name" "failed: $*"; fi
}
not() { ! "$@"; }
# expect_rc NAME CODE CMD...: the command exits CODE; its stderr is kept in $T/err.
expect_rc() {
	local name=$1 want=$2 rc; shift 2
	"$@" >"$T/out" 2>"$T/err"; rc=$?
	if [ "$rc" = "$want" ]; then pass "$name"; else
		fail "$name" "exit $rc, wanted $want: $*" "stderr: $(head -c 400 "$T/err")"; fi
}
# One-line error that names what is wrong (a pattern, for messages with
# sizes or times in them); err_is: exactly this line (preferred).
err_names() { [ "$(wc -l <"$T/err")" -eq 1 ] && grep -q -- "$1" "$T/err"; }
err_is() {
	[ "$(wc -l <"$T/err")" -eq 1 ] && [ "$(cat "$T/err")" = "$1" ] && return 0
	echo "#   stderr: $(head -c 400 "$T/err")" >&2
	return 1
}
# inspect_has IMAGE PATTERN...: `inspect --json IMAGE` matches every grep PATTERN.
inspect_has() {
	local img=$1 json p; shift
	json=$(vs inspect --json "$img") || { echo "#   inspect --json $img failed" >&2; return 1; }
	for p in "$@"; do
		grep -q -- "$p" <<<"$json" && continue
		echo "#   no '$p' in: $(head -c 400 <<<"$json")" >&2
		return 1
	done
}

# --- the test guest --------------------------------------------------------
# define_guest NAME MEM [SEED] [FILL%]
define_guest() {
	local name=$1 mem=$2 seed=${3:-7} fill=${4:-100}
	cat >"$T/vms/$name.vm" <<VM
# test guest: fills RAM with a seeded pattern, counts, reports on COM1
-machine q35,accel=tcg
-m $mem
-display none
-nodefaults
-kernel $GUEST
-append seed=$seed fill=$fill tick_ms=200
-chardev file,id=ser0,path=$T/$name.log,append=on
-serial chardev:ser0
VM
	: >"$T/$name.log"
}

log_of() { echo "$T/$1.log"; }
# wait_log NAME REGEX SECONDS [SKIP_LINES]: a line matching after SKIP_LINES.
wait_log() {
	local f=$T/$1.log re=$2 deadline=$((SECONDS + $3)) skip=${4:-0}
	while [ $SECONDS -lt $deadline ]; do
		tail -n +"$((skip + 1))" "$f" 2>/dev/null | grep -qE "$re" && return 0
		sleep 0.1
	done
	return 1
}
lines() { wc -l <"$T/$1.log"; }
last_tick() { grep -E '^tick [0-9]+$' "$T/$1.log" | tail -n 1 | cut -d' ' -f2; }

# start_guest NAME MEM [SEED] [FILL]: defined, running, RAM filled and checked.
start_guest() {
	define_guest "$@"
	vs run "$1" >/dev/null || return 1
	wait_log "$1" '^check ok' 300 && wait_log "$1" '^tick 5$' 30
}

# After a restore: the guest counts on from where it was (no reboot, no
# restart from 1). ticks_continue NAME TICK_BEFORE SKIP_LINES
ticks_continue() {
	local name=$1 before=$2 skip=$3 n
	wait_log "$name" '^tick ' 30 "$skip" || { echo "no tick after restore" >&2; return 1; }
	if tail -n +"$((skip + 1))" "$T/$name.log" | grep -q '^vmsnap-guest start'; then
		echo "the guest rebooted" >&2; return 1
	fi
	n=$(tail -n +"$((skip + 1))" "$T/$name.log" | grep -E '^tick ' | head -n 1 | cut -d' ' -f2)
	[ "$n" -gt "$before" ] || { echo "tick $n after restore, $before before" >&2; return 1; }
}

# The guest re-checks all of its RAM itself (key 'c').
guest_selfcheck() {
	local name=$1 skip
	skip=$(lines "$name")
	vs qmp "$name" '{"execute":"send-key","arguments":{"keys":[{"type":"qcode","data":"c"}]}}' >/dev/null || return 1
	wait_log "$name" '^check (ok|FAIL)' 300 "$skip" || return 1
	tail -n +"$((skip + 1))" "$T/$name.log" | grep -qE '^check ok'
}

# Page for page from outside: dump every filled range with pmemsave and
# compare with the pattern. dump_check NAME SEED
dump_check() {
	local name=$1 seed=$2 start end len
	grep -qE '^fill range ' "$T/$name.log" || { echo "no fill ranges in the log" >&2; return 1; }
	grep -E '^fill range ' "$T/$name.log" | head -n 8 | while read -r _ _ start end; do
		len=$((end - start))
		vs qmp "$name" "{\"execute\":\"pmemsave\",\"arguments\":{\"val\":$((start)),\"size\":$len,\"filename\":\"$T/dump\"}}" >/dev/null || exit 1
		"$PATCHECK" --seed "$seed" --base "$start" "$T/dump" >/dev/null || exit 1
		rm -f "$T/dump"
	done
}

# A loop device of SIZE over a file in $T (removed by cleanup): echoes it.
make_loop() {
	local f
	f=$(mktemp "$T/loop.XXXXXX") && truncate -s "$1" "$f" && losetup --find --show "$f"
}
# An ext4 file system of SIZE on a loop device, mounted at $T/NAME: echoes the mount point.
make_ext4() {
	local dev
	dev=$(make_loop "$2") && mkfs.ext4 -q "$dev" && mkdir -p "$T/$1" && mount "$dev" "$T/$1" || return 1
	echo "$T/$1"
}

# --- image surgery (for tamper tests) ----------------------------------------
# flip_byte FILE OFFSET: invert one byte in place.
flip_byte() {
	local b
	b=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ')
	printf "\\x$(printf %02x $((b ^ 1)))" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}
# put_hex FILE OFFSET HEX: write bytes given as hex.
put_hex() { printf "$(echo "$3" | sed 's/../\\x&/g')" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none; }
# rehash_header FILE: recompute the header digest (bytes 4064..4095), as a
# forger would, so that only the signature can notice a change.
rehash_header() { put_hex "$1" 4064 "$(head -c 4064 "$1" | sha256sum | cut -c1-64)"; }
# rehash_definition FILE: recompute the definition digest (header byte 240).
rehash_definition() {
	local len
	len=$(od -An -tu8 -j 40 -N8 "$1" | tr -d ' ')
	put_hex "$1" 240 "$(tail -c +4097 "$1" | head -c "$len" | sha256sum | cut -c1-64)"
	rehash_header "$1"
}
# header_u64 FILE OFFSET
header_u64() { od -An -tu8 -j "$2" -N8 "$1" | tr -d ' '; }
# no_qemu: no QEMU of this test is running (refusals must come before QEMU starts).
no_qemu() { ! pgrep -f "$T/run/" >/dev/null; }
# dirty_pages FILE: its pages in the page cache that are dirty or being
# written back (cachestat(2), Linux 6.5; on older kernels, such as Debian 12's
# 6.1, the whole system's Dirty + Writeback from /proc/meminfo, an upper bound).
dirty_pages() {
	python3 - "$1" <<'PY'
import ctypes, errno, os, sys
libc = ctypes.CDLL(None, use_errno=True)
whole = (ctypes.c_uint64 * 2)(0, 0)
st = (ctypes.c_uint64 * 5)()  # cache, dirty, writeback, evicted, recently evicted
fd = os.open(sys.argv[1], os.O_RDONLY)
if libc.syscall(451, fd, whole, st, 0) == 0:
    print(st[1] + st[2])
elif ctypes.get_errno() == errno.ENOSYS:
    kb = {l.split(':')[0]: int(l.split()[1]) for l in open('/proc/meminfo')}
    print((kb['Dirty'] + kb['Writeback']) // 4)
else:
    sys.exit("cachestat %s: %s" % (sys.argv[1], os.strerror(ctypes.get_errno())))
PY
}
# wait_until SECONDS CMD...: retry CMD until it succeeds, every WAIT_STEP
# seconds (0.1; WAIT_STEP=0.01 wait_until ... where a moment matters).
wait_until() {
	local deadline=$((SECONDS + $1)); shift
	until "$@"; do [ $SECONDS -lt $deadline ] || return 1; sleep "${WAIT_STEP:-0.1}"; done
}
# start_watch OUT: `vmsnap watch` in the background, its output in OUT, its
# pid in $wpid; returns once it watches. OUT goes first: the child truncates
# it only when it runs, and an old "watching" line must not count.
start_watch() {
	rm -f "$1"
	"$VMSNAP" --config "$T/vmsnap.conf" watch >"$1" 2>&1 &
	wpid=$!
	wait_until 30 grep -q "watching for power failure" "$1"
}
# wait_exit PID SECONDS: wait for a background job of this shell; after
# SECONDS it is killed (status 137) rather than hanging the test run.
wait_exit() {
	local rc dog
	{ sleep "$2"; kill -9 "$1"; } 2>/dev/null &
	dog=$!
	wait "$1"; rc=$?
	pkill -P "$dog" sleep; kill "$dog" 2>/dev/null; wait "$dog" 2>/dev/null
	return $rc
}

# --- the real Linux guest (tests/linux/, built by make linux-guest) ----------
# Debian's kernel and a BusyBox initramfs whose /init (tests/linux/init) holds
# a random file in tmpfs, writes a numbered record to its virtio disk every
# 0.5 s and answers "TOKEN COMMAND" lines on its serial port, a socket
# ($T/NAME.sock) whose output QEMU also appends to $T/NAME.log.
LINUX=$TOP/build/linux
linux_built() {
	[ -f "$LINUX/vmlinuz" ] && [ -f "$LINUX/initramfs.cpio.gz" ] && return 0
	echo "#   $LINUX is missing: run make linux-guest" >&2
	return 1
}
# define_linux NAME [MEM] [LINE...]: its definition, a 16 MiB raw disk
# $T/NAME.disk, and any extra definition lines (e.g. another -device).
define_linux() {
	local name=$1 mem=${2:-256M} l
	shift $(($# < 2 ? $# : 2))
	truncate -s 16M "$T/$name.disk"
	{
		cat <<VM
# the real Linux test guest: records on its disk, commands on its serial port
-machine q35,accel=tcg
-m $mem
-display none
-nodefaults
-kernel $LINUX/vmlinuz
-initrd $LINUX/initramfs.cpio.gz
-append console=ttyS0 loglevel=4 blob_mb=32
-drive file=$T/$name.disk,format=raw,if=none,id=disk0
-device virtio-blk-pci,drive=disk0
-chardev socket,id=ser0,path=$T/$name.sock,server=on,wait=off,logfile=$T/$name.log,logappend=on
-serial chardev:ser0
VM
		for l in "$@"; do echo "$l"; done
	} >"$T/vms/$name.vm"
	: >"$T/$name.log"
}
# start_linux NAME [MEM] [LINE...]: defined, running, its file written and
# its writer started ("vmg ready").
start_linux() {
	linux_built || return 1
	define_linux "$@"
	vs run "$1" >/dev/null || return 1
	wait_log "$1" '^vmg ready' 300 || { echo "#   no 'vmg ready': $(tail -c 300 "$T/$1.log")" >&2; return 1; }
	! grep -q '^vmg modprobe failed' "$T/$1.log"
}
# linux_cmd NAME COMMAND [SECONDS]: send COMMAND, print the answer (the
# rest of the line "vmg TOKEN COMMAND ..."). The connection stays open until
# the answer came: QEMU drops what it has not yet passed to the UART when
# the client hangs up.
linux_cmd() {
	local name=$1 cmd=$2 secs=${3:-120} tok skip
	tok=t$RANDOM$RANDOM skip=$(lines "$name")
	{
		printf '%s %s\n' "$tok" "$cmd"
		wait_log "$name" "^vmg $tok " "$secs" "$skip"
	} | socat -u - "UNIX-CONNECT:$T/$name.sock" 2>/dev/null
	tail -n +"$((skip + 1))" "$T/$name.log" | tr -d '\r' | sed -n "s/^vmg $tok ${cmd%% *} //p" | head -n 1 | grep .
}
# linux_blob NAME: the hash the guest printed when it wrote its file.
linux_blob() { sed -n 's/^vmg blob \([0-9a-f]*\).*/\1/p' "$T/$1.log" | head -n 1; }
