# bench/run --smoke: the benchmark harness still works end to end (a 128 MiB
# guest, one rep, four modes, the baselines) and reports a number for every
# mode. Its timings are not asserted.
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
scratch_gone() { ! compgen -G "$D/vmsnap-bench.*" >/dev/null; }
no_bench_process() { ! pgrep -f "$D/vmsnap-bench" >/dev/null; }
check "the scratch directory is gone" scratch_gone
check "no QEMU or helper of the bench is left" no_bench_process
