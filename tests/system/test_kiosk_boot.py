#!/usr/bin/env python3
"""Kiosk boot (system test 1): the kiosk-x86_64 image boots, init runs
`vmsnap resume`, the signed golden image made at build time is restored and
the test guest's tick continues from the golden moment, with its RAM intact;
a second boot does the same. A third boot, with the golden image moved away
through the console, cold-starts the same VM in the same image: the report
compares boot-to-guest-running of both."""
import os, re, sys, tempfile
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from appliance import Appliance, TOP, deadline_guard, fresh_data, ok, summary

BOARD = "kiosk-x86_64"
GOLDEN = "/var/lib/vmsnap/golden/kiosk.img"
deadline_guard(1200)
tmp = tempfile.mkdtemp(prefix="vmsnap-kiosk-")
data = fresh_data(BOARD, tmp)
golden_tick = int(open(os.path.join(TOP, "build", "images", BOARD, "golden-kiosk.tick")).read())
times = {}


def boot(n, expect):
    """One boot: (appliance, seconds from power-on to the guest's first tick)."""
    a = Appliance(BOARD, data, tmp=tmp)
    m = a.s0.wait(r"^vmsnap-image: mounted", 600)
    a.mounted = m[0] if m else None
    r = a.s0.wait(r"vmsnap: kiosk: |kiosk: (restored|cold-started)", 600)
    a.resume_line = r[1] if r else ""
    ok(r and expect in r[1], "boot %d: resume says kiosk %s" % (n, expect), a.s0.text())
    tick = a.s2.wait(r"^tick \d+$", 300)
    if not ok(tick, "boot %d: the guest ticks" % n, a.s2.text()):
        return a, None
    ok(a.s0.wait(r"^vmsnap-image: boot done", 60), "boot %d: init's rcS finished" % n, a.s0.text())
    return a, tick


def self_check(a, n):
    start = a.s2.mark()
    rc, out = a.shell("vmsnap qmp kiosk '{\"execute\":\"send-key\",\"arguments\":{\"keys\":"
                      "[{\"type\":\"qcode\",\"data\":\"c\"}]}}'")
    ok(rc == 0, "boot %d: the shell on ttyS0 asks the guest to re-check its RAM" % n, out)
    r = a.s2.wait(r"^check (ok|FAIL)", 300, start)
    ok(r and r[1].startswith("check ok"), "boot %d: the guest's RAM checks out" % n, a.s2.text(start))


def to_tick(a, cmd, name):
    """Seconds from sending cmd to the shell to the guest's next first-tick line."""
    rc, out = a.shell("vmsnap stop kiosk")
    ok(rc == 0, "%s: the shell stops the kiosk VM" % name, out)
    start, t0 = a.s2.mark(), __import__("time").monotonic()
    rc, out = a.shell(cmd, 300)
    ok(rc == 0, "%s: %s" % (name, cmd), out)
    t = a.s2.wait(r"^tick \d+$", 300, start)
    ok(t, "%s: the guest ticks" % name, a.s2.text(start))
    return t[0] - t0 if t else None


def in_boot(a):
    """Within one boot, from the shell: a cold start of the VM against a
    restore of the golden image with and without the payload check."""
    nv = "sed 's/^verify_payload = yes/verify_payload = no/' /etc/vmsnap.conf >/tmp/nv.conf && "
    times["in-boot cold"] = to_tick(a, "vmsnap run kiosk", "in-boot cold start")
    times["in-boot restore"] = to_tick(a, "vmsnap restore " + GOLDEN, "in-boot restore")
    times["in-boot restore, no verify"] = to_tick(a, nv + "vmsnap --config /tmp/nv.conf restore " + GOLDEN,
                                                  "in-boot restore without the payload check")


for n in (1, 2):
    a, tick = boot(n, "restored")
    if tick:
        first = int(tick[1].split()[1])
        ok(first == golden_tick + 1, "boot %d: the guest continues from the golden moment "
           "(tick %d, saved at %d)" % (n, first, golden_tick))
        ok("vmsnap-guest start" not in a.s2.text(), "boot %d: the guest did not boot afresh" % n,
           a.s2.text())
        times["restore%d" % n] = (tick[0] - a.t0, tick[0] - (a.mounted or a.t0))
        ms = re.search(r"restored from .* in (\d+) ms", a.resume_line)
        if ms:
            print("# boot %d: resume says the restore took %s ms (verify_payload = yes: the 64 MiB "
                  "RAM's SHA-256 is recomputed at every boot)" % (n, ms.group(1)))
        self_check(a, n)
    rc, out = a.shell("vmsnap inspect --json %s" % GOLDEN)
    ok(rc == 0 and '"golden":true' in out.replace(" ", "") and '"state":"complete"' in out.replace(" ", ""),
       "boot %d: the golden image stays complete and golden" % n, out)
    if n == 2:
        in_boot(a)
        rc, out = a.shell("mv %s %s.away && sync" % (GOLDEN, GOLDEN))
        ok(rc == 0, "the golden image moved away for a cold boot", out)
    a.qmp("quit")
    ok(a.wait_exit(60) is not None, "boot %d: QEMU quits on QMP quit" % n)
    a.close()

a, tick = boot(3, "cold-started")
if tick:
    ok(a.s2.wait(r"^vmsnap-guest start", 1) is not None, "boot 3: the guest booted afresh", a.s2.text())
    ok(int(tick[1].split()[1]) == 1, "boot 3: its tick starts at 1", tick[1])
    times["cold"] = (tick[0] - a.t0, tick[0] - (a.mounted or a.t0))
a.close()

for k in ("in-boot cold", "in-boot restore", "in-boot restore, no verify"):
    if times.get(k):
        print("# %-34s %5.1f s (shell command to the guest's first tick)" % (k + ":", times[k]))
times = {k: v for k, v in times.items() if not k.startswith("in-boot")}
if len(times) == 3:
    print("# kiosk boot-to-guest-running, nested TCG: outer QEMU start (and the data disk mounted,")
    print("# i.e. resume starting) to the guest's first tick:")
    for k, what in (("restore1", "golden restore, boot 1"), ("restore2", "golden restore, boot 2"),
                    ("cold", "cold start, boot 3")):
        print("#   %-24s %6.1f s  (%5.1f s)" % ((what,) + times[k]))
ok(len(times) == 3, "boot-to-running measured for two restores and a cold start")
sys.exit(summary())
