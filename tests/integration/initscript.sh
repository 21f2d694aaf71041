# The init script from the rootfs overlay, run in a scratch root: start
# resumes (cold start, then restore from the image the stop saved), stop
# saves every running VM.
. "$(dirname "$0")/../lib.sh"
cd "$TOP" || exit 1
R=$T/root
make --no-print-directory O="$T/build" KCONFIG_CONFIG="$T/config" rootfs >/dev/null 2>&1 || fail "make rootfs"
cp -a "$T/build/rootfs" "$R"
# Point the overlay's config into the scratch root, and give it the test guest.
sed -i -e "s|^vm_dir = .*|vm_dir = $R/etc/vmsnap/vms|" -e "s|^run_dir = .*|run_dir = $R/run/vmsnap|" \
	-e "s|^save_dir = .*|save_dir = $R/var/lib/vmsnap|" -e "s|^trusted_keys = .*|trusted_keys = $R/etc/vmsnap/trusted|" \
	-e "s|^vms =.*|vms = vm1|" "$R/etc/vmsnap.conf"
define_guest vm1 256M 51 100
mv "$T/vms/vm1.vm" "$R/etc/vmsnap/vms/vm1.vm"
export VMSNAP=$R/usr/bin/vmsnap VMSNAP_CONF=$R/etc/vmsnap.conf RUN_DIR=$R/run/vmsnap
rc_script() { "$R/etc/init.d/S95vmsnap" "$@" >"$T/rc.out" 2>&1; }
vr() { "$VMSNAP" "$@"; }

check "start: exit 0" rc_script start
check "  ... cold-starts vm1 (no image yet)" grep -q "vm1: cold-started: no image" "$T/rc.out"
check "  ... the guest boots" wait_log vm1 '^tick 5$' 120
check "  ... the watcher runs" wait_until 10 test -s "$R/run/vmsnap/watch.pid"
wpid=$(cat "$R/run/vmsnap/watch.pid")
before=$(last_tick vm1)
check "stop: exit 0" rc_script stop
check "  ... the watcher is gone" wait_until 10 not kill -0 "$wpid" 2>/dev/null
check "  ... vm1 saved, image complete" \
	inspect_has "$R/var/lib/vmsnap/vm1.img" '"state":"complete"'
check "  ... QEMU gone" not pgrep -f "$R/run/vmsnap/vm1"
skip=$(lines vm1)
check "start again: exit 0" rc_script start
check "  ... restores vm1 from its image" grep -q "vm1: restored from" "$T/rc.out"
check "  ... the guest continues (was at $before)" ticks_continue vm1 "$before" "$skip"
check "  ... and its image is consumed" \
	inspect_has "$R/var/lib/vmsnap/vm1.img" '"state":"consumed"'
check "stop again: exit 0" rc_script stop
check "usage error: exit 2" bash -c "'$R/etc/init.d/S95vmsnap' frob 2>/dev/null; test \$? -eq 2"
