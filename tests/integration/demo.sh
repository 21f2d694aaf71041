# The README's main command: scripts/demo (what `make demo` runs after
# bootstrap and build) boots the test guest, saves, restores, and reports.
. "$(dirname "$0")/../lib.sh"

for format in 2 3; do
	expect_rc "demo, v$format image, 256 MiB guest" 0 "$TOP/scripts/demo" --mem 256M --format $format
	check "  ... the guest carries on after the restore" grep -qE '^demo: the guest carries on: tick [0-9]+ before the save, tick [0-9]+ after' "$T/out"
	check "  ... its RAM checks out" grep -q '^demo: guest RAM self-check after restore: check ok' "$T/out"
	check "  ... the summary has both times and the image size" \
		grep -qE '^demo: save: [0-9.]+ s, restore: [0-9.]+ s, image [0-9.]+M \([0-9.]+M on disk\)$' "$T/out"
	dir=$(sed -n "s|^saved VM 'demo' to \(/tmp/vmsnap-demo\.[^/]*\)/demo.img: v$format,.*|\1|p" "$T/out")
	check "  ... a v$format image in its scratch directory (${dir:-none found})" test -n "$dir"
	check "  ... which it removes afterwards" test ! -e "${dir:-/nonexistent}"
	check "  ... QEMU is gone" not pgrep -f "${dir:-/nonexistent}/"
done
