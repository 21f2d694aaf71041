# bench/run --smoke: the benchmark harness still works end to end (a 64 MiB
# guest, one rep, a few modes, the baselines, the integrity rows: signed and
# unsigned, a block device, provision, power fail, virsh where libvirt is
# installed) and reports a number for every mode. Its timings are not asserted.
. "$(dirname "$0")/../lib.sh"

# Images on the root file system, like the real run (/tmp may be a tmpfs, which refuses O_DIRECT).
D=$(mktemp -d /var/tmp/vmsnap-bench-smoke.XXXXXX)
trap 'rm -rf "$D"; cleanup' EXIT
out=$T/results.md
expect_rc "bench/run --smoke finishes" 0 "$TOP/bench/run" --smoke --dir "$D" --out "$out"
check "  ... and wrote the report" test -s "$out"

# table SECTION: the rows of the "### SECTION" table of the first size.
table() { awk -v s="### $1" '$0 == s { on = 1; next } on && /^#/ { exit } on && /^\|/' "$out"; }
# has_row SECTION LABEL: a row for LABEL whose time cell is a number (median, min–max).
has_row() {
	table "$1" | grep -F "| $2 |" | grep -qE '^\| [^|]+ \| [0-9]+\.[0-9]{2}( \([0-9.]+–[0-9.]+\))? \| [^|]*\|'
}
for op in Save Restore; do
	for label in "v2" "v3, $(nproc) channels, --bypass-cache" "v3, $(nproc) channels, --bypass-cache, signed" \
		"QEMU by hand: mapped-ram, $(nproc) channels, direct-io" "dd O_DIRECT bs=1M (storage limit)"; do
		check "$op table has a timed row for: $label" has_row "$op" "$label"
	done
done
check "the signed save shows a digest time" \
	bash -c "grep -F '| v3, $(nproc) channels, --bypass-cache, signed |' '$out' | head -n 1 | awk -F'|' '{ exit !(\$8 + 0 > 0) }'"
check "the report has the targets and how to reproduce" \
	bash -c "grep -q '^## Targets' '$out' && grep -q '^## How to reproduce' '$out'"
# The integrity section (issue 12): the pairs, provision, power fail, virsh.
section() { awk -v s="### $1" 'index($0, s) == 1 { on = 1; next } on && /^#/ { exit } on && /^\|/' "$out"; }
sec="[0-9]+\.[0-9]{2}"
check "integrity: signed vs unsigned v3 --bypass-cache, save and restore ratios" \
	bash -c "grep -F '| v3, $(nproc) channels, --bypass-cache |' '$out' | grep -qE '^\| [^|]+ \| $sec \| $sec \| [0-9.]+× \*\*(met|missed)\*\* \| [0-9]+ \| [0-9.]+ \| $sec \| $sec \| [0-9.]+×'"
check "integrity: a signed v2 save to a block device and its verified restore" \
	bash -c "grep -F '| v2 to a block device' '$out' | grep -qE '^\| [^|]+ \| [^|]+ \| $sec \| [^|]+ \| [1-9][0-9]* \|'"
has_section() { section "$1" | grep -qE "$2"; }
check "integrity: provision (its copy and read-back in ms) against cp --sparse=always, with a ratio" \
	has_section "64M, fully filled: provisioning" "^\| $sec \| [0-9]+ \| [0-9]+ \| $sec \| [0-9.]+×"
check "integrity: the power-fail save through watch, against the 10 s deadline" \
	has_section "64M, fully filled: signed power-fail" "^\| $sec \| [0-9]+ \|.*\| 10000 \| -?[0-9]+ ms; -?[0-9]+ ms"
if command -v virsh >/dev/null && command -v libvirtd >/dev/null; then
	check "virsh: save and restore through a private libvirtd, beside vmsnap" \
		has_section "64M, fully filled: libvirt" "^\| virsh save/restore [^|]+ \| $sec \| $sec \| $sec \|"
else
	check "virsh: reported as skipped (libvirt not installed)" grep -q 'virsh save/restore: skipped' "$out"
fi
no_loop_left() { ! losetup -a | grep -qF "$D/vmsnap-bench"; }
check "no loop device of the bench is left" no_loop_left
no_libvirt_guest() { ! pgrep -f 'qemu-system-x86_64 -name guest=g,' >/dev/null; }
check "no libvirt guest of the bench is left" no_libvirt_guest
scratch_gone() { ! compgen -G "$D/vmsnap-bench.*" >/dev/null; }
no_bench_process() { ! pgrep -f "$D/vmsnap-bench" >/dev/null; }
check "the scratch directory is gone" scratch_gone
check "no QEMU or helper of the bench is left" no_bench_process
