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


for n in (1, 2):
    a, tick = boot(n, "restored")
    if tick:
        first = int(tick[1].split()[1])
        ok(first == golden_tick + 1, "boot %d: the guest continues from the golden moment "
           "(tick %d, saved at %d)" % (n, first, golden_tick))
        ok("vmsnap-guest start" not in a.s2.text(), "boot %d: the guest did not boot afresh" % n,
           a.s2.text())
        times["restore%d" % n] = (tick[0] - a.t0, tick[0] - (a.mounted or a.t0))
        self_check(a, n)
    rc, out = a.shell("vmsnap inspect --json %s" % GOLDEN)
    ok(rc == 0 and '"golden":true' in out.replace(" ", "") and '"state":"complete"' in out.replace(" ", ""),
       "boot %d: the golden image stays complete and golden" % n, out)
    if n == 2:
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

if len(times) == 3:
    print("# kiosk boot-to-guest-running, nested TCG: outer QEMU start (and the data disk mounted,")
    print("# i.e. resume starting) to the guest's first tick:")
    for k, what in (("restore1", "golden restore, boot 1"), ("restore2", "golden restore, boot 2"),
                    ("cold", "cold start, boot 3")):
        print("#   %-24s %6.1f s  (%5.1f s)" % ((what,) + times[k]))
ok(len(times) == 3, "boot-to-running measured for two restores and a cold start")
sys.exit(summary())
