# The files a golden instant pair names, under an attacker who can write image
# files: a save over a forged header must not remove the file it names, and
# provision must not write over the source pair's own RAM file.
. "$(dirname "$0")/../lib.sh"

printf '[vm gold]\ninstant = yes\n' >>"$T/vmsnap.conf"
mkdir -p "$T/trusted" && chmod 755 "$T/trusted"
vs keygen "$T/k.pem" "$T/trusted/k.pem" >/dev/null || fail "keygen"
echo "sign_key = $T/k.pem" | sed -i "1r /dev/stdin" "$T/vmsnap.conf"
start_guest gold 128M 71 100 || { fail "gold: guest did not boot"; exit 1; }
img=$T/save/gold.img
# ram_path FILE PATH: what a forger writes into the v4 RAM file path field.
ram_path() {
	dd if=/dev/zero of="$1" bs=1 seek=512 count=256 conv=notrunc status=none &&
		printf '%s' "$2" | dd of="$1" bs=1 seek=512 conv=notrunc status=none && rehash_header "$1"
}

# ram_of IMAGE: its RAM file (the header names it relative to the image).
ram_of() {
	local r
	r=$("$VMSNAP" --config "$T/vmsnap.conf" inspect --json "$1" | sed -n 's/.*"ram_file":"\([^"]*\)".*/\1/p')
	[ -n "$r" ] && echo "$(dirname "$1")/$r"
}
again() { vs run gold >/dev/null 2>&1 && wait_log gold '^tick 3$' 60 "$(($(lines gold) - 1))"; }

# 1. A save over a genuine signed golden pair removes the link the old image had.
expect_rc "golden instant save (signed)" 0 vs save gold "$img" --golden
old=$(ram_of "$img")
again
expect_rc "a save over the signed golden pair" 0 vs save gold "$img" --golden
check "  ... removes the RAM link the replaced image had" test -n "$old" -a ! -e "$old"
check "  ... and keeps the new pair's" test -f "$(ram_of "$img")"

# 2. A save over a golden header rewritten to name another file leaves that file alone.
echo precious >"$T/victim"
echo beside >"$T/save/victim.ram"
for target in "$T/victim" victim.ram; do
	again
	ram_path "$img" "$target"
	expect_rc "save over a golden header forged to name $target" 0 vs save gold "$img" --golden
done
check "  ... the absolute file it named is still there (test fails before this change)" \
	grep -q precious "$T/victim"
check "  ... so is the relative one beside the image (test fails before this change)" \
	grep -q beside "$T/save/victim.ram"

# 3. Provision onto the pair's own RAM file, or onto the name its copy gets.
ram=$(ram_of "$img")
sum=$(md5sum <"$ram")
expect_rc "provision onto the source pair's RAM file: exit 2" 2 vs provision "$img" "$ram"
check "  ... says why in one line (test fails before this change)" err_names "is the RAM file of image"
check "  ... the RAM file is unchanged" test "$(md5sum <"$ram")" = "$sum"
mkdir -p "$T/other"
expect_rc "provision onto the name of the RAM file that goes beside it: exit 2" 2 \
	vs provision "$img" "$T/other/$(basename "$ram")"
check "  ... says why" err_names "has the name of the RAM file"
check "  ... nothing was written" test -z "$(ls -A "$T/other")"
expect_rc "the source pair still verifies" 0 vs verify "$img"
expect_rc "provision to another directory works" 0 vs provision "$img" "$T/other/kiosk.img"
