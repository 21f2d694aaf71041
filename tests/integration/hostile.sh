# Hostile definitions with the real binary and QEMU: shell syntax in a
# definition reaches QEMU as literal arguments (execve, no shell) through
# run, save and restore; forged images whose embedded definition reaches for
# vmsnap's control plane (another VM's QMP socket, run_dir, -incoming ...)
# are refused with exit 3 before any QEMU starts; a signed image's unowned
# header bytes cannot be changed under its signature.
. "$(dirname "$0")/../lib.sh"

# --- shell syntax is data -------------------------------------------------------
NAME='$(touch '"$T"'/pwned1) `touch '"$T"'/pwned2`; touch '"$T"'/pwned3 | x && y'
APPEND="seed=3 fill=10 tick_ms=200 a;touch $T/pwned4 \$(touch $T/pwned5)"
define_guest lit 64M 3 10
sed -i "s|^-append .*|-append $APPEND|" "$T/vms/lit.vm"
echo "-name $NAME" >>"$T/vms/lit.vm"
quiet() { "$@" >/dev/null 2>&1; }
nothing_ran() { ! ls "$T"/pwned* >/dev/null 2>&1; }
# QEMU's argv, one argument a line; the element after OPTION.
argv_after() { tr '\0' '\n' <"/proc/$(cat "$T/run/lit.pid")/cmdline" | grep -A1 -x -- "$1" | tail -n 1; }
name_is_literal() { vs qmp lit query-name | grep -qF "{\"name\":\"$NAME\"}"; }

expect_rc "run with shell syntax in -name and -append" 0 vs run lit
check "  ... the guest boots" wait_log lit '^tick 3$' 60
check "  ... no shell ran any of it (no $T/pwned*)" nothing_ran
check "  ... QEMU reports the name literally (query-name)" name_is_literal
check "  ... QEMU's argv holds -name literally" test "$(argv_after -name)" = "$NAME"
check "  ... QEMU's argv holds -append literally" test "$(argv_after -append)" = "$APPEND"
expect_rc "save it (the definition goes into the image)" 0 vs save lit "$T/save/lit.img"
check "  ... the image embeds the definition as written" \
	bash -c "'$VMSNAP' --config '$T/vmsnap.conf' inspect '$T/save/lit.img' | grep -qF -- '-name $NAME'"
expect_rc "restore it" 0 vs restore "$T/save/lit.img"
check "  ... still no shell ran (no $T/pwned*)" nothing_ran
check "  ... the restored QEMU has the literal name" name_is_literal
check "  ... and the literal -append" test "$(argv_after -append)" = "$APPEND"
vs stop lit >/dev/null

# --- forged images ----------------------------------------------------------------
# forge IMAGE DEFINITION: put DEFINITION in IMAGE as a forger with no key
# would: same padded area (stream offset unchanged), def_length, definition
# digest and header digest right; the stream and its digest stay valid.
forge() {
	local img=$1 def=$2 len
	len=$(printf '%s' "$def" | wc -c)
	[ "$len" -le 4096 ] || return 1
	dd if=/dev/zero of="$img" bs=1 seek=4096 count=4096 conv=notrunc status=none
	printf '%s' "$def" | dd of="$img" bs=1 seek=4096 conv=notrunc status=none
	put_hex "$img" 40 "$(printf '%016x' "$len" | sed 's/../& /g' | awk '{for (i = NF; i; i--) printf "%s", $i}')"
	rehash_definition "$img"
}
good_def=$(grep -v '^-name' "$T/vms/lit.vm")
cp "$T/save/lit.img" "$T/good.img"
put_hex "$T/good.img" 16 444f4e45 # lit.img was restored (consumed): the forger says "DONE"
forge "$T/good.img" "$good_def" || fail "forging the control image"
# The extra line comes after the harmless definition: its line number.
evil_line=$(( $(printf '%s\n' "$good_def" | wc -l) + 1 ))
manages="is not allowed: vmsnap manages it"
qmp_sock="names a QMP socket (*.qmp): only vmsnap talks to QEMU's monitors"
in_run="names a file in run_dir $T/run, where vmsnap keeps each VM's QMP socket, pidfile and lock"
refused() { # LABEL MESSAGE EXTRA_LINE
	cp "$T/good.img" "$T/evil.img"
	forge "$T/evil.img" "$good_def
$3
"
	expect_rc "forged image, $1: restore exit 3" 3 vs restore "$T/evil.img" --name evil
	check "  ... says: ${2%% is not*}" err_is "vmsnap: restore: image $T/evil.img definition:$evil_line: $2"
	check "  ... verify accepts it (the refusal is the definition's, not a digest's)" \
		quiet vs verify "$T/evil.img"
	check "  ... no QEMU started" no_qemu
}
refused "-incoming" "option -incoming $manages" "-incoming tcp:127.0.0.1:4444"
refused "-qmp" "option -qmp $manages" "-qmp unix:$T/evil.sock,server=on,wait=off"
refused "-daemonize" "option -daemonize $manages" "-daemonize"
refused "-monitor" "option -monitor $manages" "-monitor unix:$T/mon.sock,server=on,wait=off"
refused "-mon" "option -mon $manages" "-mon chardev=ser0,mode=control"
refused "-readconfig" "option -readconfig $manages" "-readconfig $T/evil.cfg"
refused "-chardev to another VM's QMP socket" \
	"option -chardev 'socket,id=evil,path=$T/run/vm2.qmp' $qmp_sock" \
	"-chardev socket,id=evil,path=$T/run/vm2.qmp"
refused "-chardev into run_dir" "option -chardev 'socket,id=evil,path=$T/run/../run/x.sock' $in_run" \
	"-chardev socket,id=evil,path=$T/run/../run/x.sock"
refused "-chardev file over another VM's pidfile" "option -chardev 'file,id=evil,path=$T/run/vm2.pid' $in_run" \
	"-chardev file,id=evil,path=$T/run/vm2.pid"
refused "a *.qmp socket outside run_dir" "option -serial 'unix:/tmp/other.qmp' $qmp_sock" \
	"-serial unix:/tmp/other.qmp"
# Security round 2 (issue 13): each of these passed the filter before.
refused "-trace {} with a file after the JSON" \
	"option -trace '{},file=$T/run/vm2.pid' is JSON vmsnap cannot read (one object, nothing after it), so cannot check" \
	"-trace {},file=$T/run/vm2.pid"
jdrive="if=none,file=json:{\"driver\":\"file\",,\"filename\":\"$T/run/vm2.pid\"}"
refused "a json: file name" \
	"option -drive '$jdrive' is a json: file name: give the block options as -blockdev JSON instead" \
	"-drive $jdrive"
refused "an HMP monitor on -serial mon:" \
	"option -serial 'mon:unix:$T/hmp.sock,server=on,wait=off' opens a monitor (mon:): only vmsnap talks to QEMU's monitors" \
	"-serial mon:unix:$T/hmp.sock,server=on,wait=off"
refused "the guest agent's chardev, defined by the image" \
	"option -chardev 'socket,id=vmsnap-qga,path=$T/x.sock,server=on,wait=off': the character device vmsnap-qga is vmsnap's (the guest agent's socket in run_dir): leave this line out" \
	"-chardev socket,id=vmsnap-qga,path=$T/x.sock,server=on,wait=off"
refused "-readconfig in the value slot of -nodefaults" \
	"option -nodefaults: value '-readconfig' starts with '-': QEMU could read it as an option" \
	"-nodefaults -readconfig"

# The control: the forged image with the harmless definition restores.
vs stop lit >/dev/null 2>&1
expect_rc "the control forgery (harmless definition) restores" 0 vs restore "$T/good.img" --name ctl
check "  ... and runs" bash -c "'$VMSNAP' --config '$T/vmsnap.conf' qmp ctl query-status | grep -q running"
vs stop ctl >/dev/null

# Header bytes 338..339 (between sig_len and the signature) belong to no
# field, so the signature does not cover them: fuzz_header found that any
# value there was accepted in a signed image. Now they must be zero.
mkdir -p "$T/trusted" && chmod 755 "$T/trusted"
vs keygen "$T/k.pem" "$T/trusted/k.pem" >/dev/null
cp "$T/vmsnap.conf" "$T/signed.conf" && echo "sign_key = $T/k.pem" >>"$T/signed.conf"
expect_rc "a signed image for the padding test" 0 vs restore "$T/good.img" --name pad --again
expect_rc "  ... saved signed" 0 "$VMSNAP" --config "$T/signed.conf" save pad "$T/signed.img"
cp "$T/signed.img" "$T/pad.img" && put_hex "$T/pad.img" 338 5a && rehash_header "$T/pad.img"
expect_rc "signed image, padding byte set and header digest forged: verify exit 3" 3 vs verify "$T/pad.img"
check "  ... names the reserved bytes" err_is "vmsnap: verify: image $T/pad.img: header field reserved is not zero"
expect_rc "  ... restore exit 3" 3 vs restore "$T/pad.img"
check "  ... no QEMU started" no_qemu
expect_rc "the unchanged signed image verifies" 0 vs verify "$T/signed.img"

# --- inspect on crafted headers ----------------------------------------------------
# Digests right, values no real save writes: a creation time no date can
# hold (gmtime() had no answer: inspect crashed) and a stream version with
# the top bit set (shifted into an int's sign bit: printed negative).
C=$TOP/tests/fuzz/corpus/inspect
expect_rc "inspect, created = 2^63-1: exit 0 (no crash)" 0 vs inspect "$C/regress-created-huge"
check "  ... prints the number, not a date" grep -qE '^created +9223372036854775808 \(not a date\)$' "$T/out"
expect_rc "inspect --json of the same: exit 0" 0 vs inspect --json "$C/regress-created-huge"
expect_rc "inspect, a stream starting QEVM\\x80: exit 0" 0 vs inspect "$C/regress-stream-version-sign"
check "  ... stream_version is 0x80000003, unsigned" grep -qE '^stream_version +2147483651$' "$T/out"
