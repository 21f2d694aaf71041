# console: the line protocol over a real pty (--tty: raw, echo, CRLF) and
# over a pipe (stdin): every reply ends OK or ERR CODE MSG, a save/restore of
# a running guest works from it, and bad input never ends the session.
. "$(dirname "$0")/../lib.sh"

# The pty driver (tests/console_driver.py, its directives there): a
# coprocess that owns the pty master and runs the console on the slave.
DRIVER=$TOP/tests/console_driver.py

# drv DIRECTIVE: one directive to the driver; its answer in $T/reply.
drv() {
	printf '%s\n' "$1" >&"${DRV[1]}"
	: >"$T/reply"
	local l
	while IFS= read -r -t 400 l <&"${DRV[0]}"; do
		[ "$l" = . ] && return 0
		printf '%s\n' "$l" >>"$T/reply"
	done
	echo "driver gave no answer to: $1" >&2
	return 1
}
# con LINE: send one command line; reply lines (without the echo) in $T/body.
con() { drv "send $1" && grep -v '^vmsnap> ' "$T/reply" >"$T/body"; }
final() { tail -n 1 "$T/reply"; }
# is_final TEXT: the reply's last line is exactly TEXT.
is_final() { [ "$(final)" = "$1" ] || { echo "last line: '$(final)', wanted '$1'" >&2; return 1; }; }
has() { grep -qE -- "$1" "$T/body" || { echo "no line /$1/ in: $(cat "$T/body")" >&2; return 1; }; }
replied() { ! grep -qE '^(TIMEOUT|BARE-LF)$' "$T/reply"; }
# con_check NAME LINE FINAL: send LINE, expect the final line FINAL and CR LF line ends.
con_check() {
	con "$2"
	if [ "$(final)" = "$3" ] && replied; then pass "$1"; else
		fail "$1" "sent: $2" "wanted last line: $3" "got: $(tr '\n' '|' <"$T/reply")"; fi
}

# end_driver: close the driver's input; it ends, and so does a console left running.
end_driver() {
	local fd=${DRV[1]} p=$DRV_PID
	exec {fd}>&-
	wait "$p" 2>/dev/null
}

if vs console </dev/null 2>&1 | grep -q 'built without it'; then
	echo "ok - console # SKIP built without CONFIG_CONSOLE"
	exit 0
fi

start_guest vm1 256M 3 100 || { fail "test guest did not boot"; exit 1; }
pass "test guest boots (256 MiB)"

coproc DRV { python3 "$DRIVER" "$T/console.err" "$VMSNAP" --config "$T/vmsnap.conf" console --tty '{tty}'; }
drv prompt
check "--tty: the console shows its prompt on the pty" grep -qx prompt "$T/reply"
drv termios
check "--tty: port is raw, 8N1, no flow control, 115200 baud" \
	grep -qx 'speed 115200 cs8 1 parenb 0 cstopb 0 crtscts 0 ixon 0 icanon 0 echo 0' "$T/reply"

con_check "help: OK" help OK
check "help lists save and restore" has '^  save NAME \[TARGET\] '
check "echo: the typed line comes back after the prompt" grep -qx 'vmsnap> help' "$T/reply"
con_check "version: OK" version OK
check "version: prints the version line" has '^vmsnap .*mbedtls'
con_check "list: OK" list OK
pid=$(cat "$T/run/vm1.pid")
check "list: vm1 running with its pid" has "^vm1 +running +$pid\$"
con_check "status vm1: OK" "status vm1" OK
check "status vm1: 'vm1 running pid $pid'" test "$(head -n 1 "$T/body")" = "vm1 running pid $pid"

con_check "unknown command: ERR 2" frobnicate "ERR 2 unknown command 'frobnicate'; try help"
con_check "status without NAME: ERR 2" status "ERR 2 usage: status NAME"
con_check "save with three words: ERR 2" "save vm1 a b" "ERR 2 usage: save NAME [TARGET]"
con_check "status of an undefined VM: ERR 2" "status nosuch" \
	"ERR 2 no VM 'nosuch': neither running nor defined in $T/vms"
con_check "run of a running VM: ERR 1" "run vm1" "ERR 1 VM 'vm1' is already running"
con_check "verify of a missing file: ERR 2" "verify $T/missing.img" \
	"ERR 2 image $T/missing.img: No such file or directory"
head -c 8192 /dev/zero >"$T/zero.img"
con "verify $T/zero.img"
check "verify of a non-image: ERR 3 naming it" bash -c "[[ '$(final)' == 'ERR 3 '*zero.img* ]]"
drv zombies
check "no zombie children after the failed commands" grep -qx 'zombies 0' "$T/reply"

# save with the default target (<save_dir>/vm1.img), then restore from the console.
before=$(last_tick vm1)
con_check "save vm1 (default target): OK" "save vm1" OK
check "save: reports the image it wrote" has "^saved VM 'vm1' to $T/save/vm1.img: v2"
check "save: progress and QEMU's parameters are relayed" has '^vmsnap: '
con_check "status after the save: OK" "status vm1" OK
check "status after the save: 'vm1 stopped'" test "$(head -n 1 "$T/body")" = "vm1 stopped"
con_check "verify: OK" "verify $T/save/vm1.img" OK
check "verify: header and definition ok" bash -c "grep -qx 'header: ok' '$T/body' && grep -qx 'definition: ok' '$T/body'"
con_check "inspect: OK" "inspect $T/save/vm1.img" OK
check "inspect: shows the embedded definition" has '-m 256M'
skip=$(lines vm1)
con_check "restore: OK" "restore $T/save/vm1.img" OK
check "restore: reports the VM running" has "^restored VM 'vm1' from $T/save/vm1.img: running"
check "restore: ticks continue (were at $before)" ticks_continue vm1 "$before" "$skip"
con_check "status after the restore: running" "status vm1" OK
check "status after the restore: new pid" has "^vm1 running pid $(cat "$T/run/vm1.pid")\$"
con_check "save to an explicit target: OK" "save vm1 $T/save/other.img" OK
con_check "save of a stopped VM: ERR 2, the console goes on" "save vm1 $T/save/x.img" \
	"ERR 2 VM 'vm1' is not running (start it with: vmsnap run vm1)"
con_check "run vm1 again: OK" "run vm1" OK

# Line ends and editing.
con_check "LF ends a line" "version" OK
drv "sendcrlf version"
check "CR LF ends a line: one reply" is_final OK
drv quiet
check "  ... and no second reply for the LF" grep -qx "pending b'vmsnap> '" "$T/reply"
drv "sendlf version"
check "LF alone ends a line" is_final OK
drv "hex 76657273697a7f6f6e0d"
check "backspace (DEL) erases: 'versiz<DEL>on' runs version" is_final OK
check "  ... and the terminal is told to erase" grep -qP 'versiz\x08 \x08on' "$T/reply"
drv "hex 6c6f6e6773747566660376657273696f6e0d"
check "^C abandons the line: 'longstuff^Cversion' runs version" is_final OK
check "  ... and shows ^C" grep -q '^vmsnap> longstuff^C$' "$T/reply"

# Bad input never ends the session.
drv "hex 00011b5b41fffec0afeda080207f08076c69737400000d"
check "NULs, escapes and invalid UTF-8: ERR 2" is_final "ERR 2 line has control characters or invalid UTF-8"
drv "hex c3a97461740d"
check "valid UTF-8 is a word like any other" is_final "ERR 2 unknown command 'état'; try help"
drv "long 65536"
check "a 64 KiB line: ERR 2 line too long" is_final "ERR 2 line too long"
con_check "  ... then version: OK" version OK
drv "long 1024"
check "a 1024-byte line is not too long" is_final "ERR 2 unknown command '$(head -c 1024 /dev/zero | tr '\0' a)'; try help"
drv "noise 1 20000"
check "20000 random bytes: the console resynchronises" grep -qx synced "$T/reply"
con_check "  ... then version: OK" version OK
drv zombies
check "no zombie children after the whole session" grep -qx 'zombies 0' "$T/reply"

con_check "quit: OK" quit OK
drv wait
check "quit ends the console with exit 0" grep -qx 'exit 0' "$T/reply"
drv termios
check "the port's settings are given back" grep -q 'icanon 1 echo 1' "$T/reply"
check "the console wrote nothing on its own stderr" test ! -s "$T/console.err"
end_driver

# --baud, and refusals of the console's own options.
coproc DRV { python3 "$DRIVER" "$T/console.err" "$VMSNAP" --config "$T/vmsnap.conf" console --tty '{tty}' --baud 9600; }
drv prompt
drv termios
check "--baud 9600 sets 9600 baud" grep -q '^speed 9600 cs8 1 ' "$T/reply"
con_check "--baud 9600: quit" quit OK
end_driver
expect_rc "--baud 1234: exit 2" 2 vs console --tty /dev/null --baud 1234
check "  ... names the rate and the choices" \
	err_is "vmsnap: console: --baud 1234: use 1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, 230400, 460800 or 921600"
expect_rc "--tty of a missing device: exit 2" 2 vs console --tty "$T/nodev"
check "  ... names the device" err_is "vmsnap: console: --tty $T/nodev: No such file or directory"
expect_rc "--tty of a non-terminal: exit 2" 2 vs console --tty /dev/null
check "  ... says it is not a terminal" err_is "vmsnap: console: --tty /dev/null: not a terminal; give a serial port"

# stdin mode: no prompt, no echo, plain LF; output compared exactly.
pid=$(cat "$T/run/vm1.pid")
printf 'version\nstatus vm1\n\nfoo  bar\r\nsave\nstatus\001x\nquit\nlist\n' | vs console >"$T/out" 2>"$T/err"
rc=$?
cat >"$T/want" <<EOF
$(vs version)
OK
vm1 running pid $pid
OK
ERR 2 unknown command 'foo'; try help
ERR 2 usage: save NAME [TARGET]
ERR 2 line has control characters or invalid UTF-8
OK
EOF
check "stdin: exit 0 after quit" test "$rc" = 0
check "stdin: replies as expected, plain LF, nothing after quit" cmp -s "$T/out" "$T/want"
printf 'status vm1' | vs console >"$T/out" 2>&1
check "stdin: a last line without its end still runs; EOF ends the session" \
	test "$(cat "$T/out")" = "$(printf 'vm1 running pid %s\nOK' "$pid")"
check "the guest still ticks after the session" wait_log vm1 "^tick $(( $(last_tick vm1) + 2 ))\$" 30
