# valgrind on the plain host build (build/host/vmsnap, which make check
# builds) over the save and restore path: v2, v3 and a signed v3 of a
# 256 MiB guest, each exit 0 with no memory errors and no definite leaks.
. "$(dirname "$0")/../lib.sh"

HOSTBIN=$TOP/build/host/vmsnap
[ -x "$HOSTBIN" ] || { fail "valgrind: $HOSTBIN is missing (make check builds it)"; exit 1; }
command -v valgrind >/dev/null || { fail "valgrind: not installed (scripts/bootstrap installs it)"; exit 1; }
# vg LABEL ARGS...: vmsnap ARGS under valgrind; its report in $T/vg.LABEL.
vg() {
	local label=$1; shift
	valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
		--show-leak-kinds=definite --track-fds=no --log-file="$T/vg.$label" \
		"$HOSTBIN" --config "$CONF" "$@"
}
# LABEL: valgrind reported nothing ("==PID==" lines; "--PID--" lines are
# its own notes, e.g. that it does not know pidfd_open, which vmsnap then
# does without).
clean() {
	grep -q '^==[0-9]*==' "$T/vg.$1" || return 0
	grep '^==[0-9]*==' "$T/vg.$1" | head -n 30 | sed 's/^/#   /'
	return 1
}

start_guest vm1 256M 21 25 || { fail "test guest did not boot"; exit 1; }
vs keygen "$T/k.pem" "$T/k.pub.pem" >/dev/null
mkdir -p "$T/trusted" && chmod 755 "$T/trusted" && cp "$T/k.pub.pem" "$T/trusted/k.pem"
cp "$T/vmsnap.conf" "$T/signed.conf" && echo "sign_key = $T/k.pem" >>"$T/signed.conf"
for c in "2 vmsnap.conf" "3 vmsnap.conf" "3 signed.conf"; do
	set -- $c
	fmt=$1 CONF=$T/$2 label=v$1${2%%.conf}
	label=${label%vmsnap}
	before=$(last_tick vm1)
	expect_rc "$label: save under valgrind: exit 0" 0 vg "save-$label" save vm1 "$T/save/$label.img" --format "$fmt"
	check "  ... no errors, no definite leaks" clean "save-$label"
	skip=$(lines vm1)
	expect_rc "$label: restore under valgrind: exit 0" 0 vg "restore-$label" restore "$T/save/$label.img"
	check "  ... no errors, no definite leaks" clean "restore-$label"
	check "  ... the guest counts on (was at $before)" ticks_continue vm1 "$before" "$skip"
done
check "the restored guest's RAM checks out" guest_selfcheck vm1
