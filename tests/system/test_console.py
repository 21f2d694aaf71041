#!/usr/bin/env python3
"""Console (system test 3): a technician session on the booted pc-x86_64
image's second serial port (ttyS1, `vmsnap console` respawned by init):
list, status, save, verify, restore, a bad command and refusals, each reply
ending in exactly the OK / ERR line expected; the guest (on ttyS2) stops at
the save and continues from the saved moment after the restore."""
import os, re, sys, tempfile
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from appliance import Appliance, deadline_guard, fresh_data, ok, summary

BOARD = "pc-x86_64"
IMG = "/var/lib/vmsnap/vm1.img"
FINAL = r"^(vmsnap> )?(OK|ERR [123] .*)$"
deadline_guard(900)
tmp = tempfile.mkdtemp(prefix="vmsnap-console-")
a = Appliance(BOARD, fresh_data(BOARD, tmp), tmp=tmp)


def con(line, timeout=300):
    """Sends a line to the console: (its output lines, its final line)."""
    start = a.s1.mark()
    a.s1.send(line + "\r")
    r = a.s1.wait(FINAL, timeout, start)
    if not r:
        return a.s1.text(start).splitlines(), None
    out = [l for _, l in a.s1.lines[start:r[2]]]
    # The first line is the prompt and the echo of what was typed.
    if out and out[0].endswith(line):
        out = out[1:]
    return out, re.sub(r"^vmsnap> ", "", r[1])


def check(name, line, final, want_out=None):
    out, fin = con(line)
    good = fin == final and (want_out is None or want_out(out))
    ok(good, "%s: %s" % (name, final), "sent: %s\ngot: %s\nfinal: %s" % (line, "\n".join(out), fin))
    return out


r = a.s0.wait(r"vm1: cold-started", 600)
ok(r, "first boot: resume cold-starts vm1 (no image yet)", a.s0.text())
ok(a.s0.wait(r"^vmsnap-image: boot done", 120), "init's rcS finished", a.s0.text())
ok(a.s2.wait(r"^check ok", 600) and a.s2.wait(r"^tick 3$", 60), "the guest filled and checked its RAM and ticks",
   a.s2.text())
ok(a.s1.wait_partial(r"vmsnap> $", 60), "the technician console shows its prompt", a.s1.partial)

check("list", "list", "OK", lambda o: "vm1" in " ".join(o))
check("status of the running VM", "status vm1", "OK", lambda o: any(re.match(r"^vm1 running pid \d+$", l) for l in o))
check("a bad command", "frobnicate", "ERR 2 unknown command 'frobnicate'; try help")
check("a command with too many words", "save vm1 a b", "ERR 2 usage: save NAME [TARGET]")
check("verify of a path outside save_dir", "verify /etc/passwd",
      "ERR 2 /etc/passwd: the console only uses save_dir, the VMs' images and console_paths")
check("status of an undefined VM", "status nosuch",
      "ERR 2 no VM 'nosuch': neither running nor defined in /etc/vmsnap/vms")

before = a.s2.mark()
out = check("save", "save vm1", "OK", lambda o: any(l.startswith("saved VM 'vm1' to %s" % IMG) for l in o))
last = [l for _, l in a.s2.lines if re.match(r"^tick \d+$", l)][-1]
saved_tick = int(last.split()[1])
check("status after the save", "status vm1", "OK", lambda o: "vm1 stopped" in o)
check("save of a stopped VM", "save vm1", "ERR 2 VM 'vm1' is not running (start it with: vmsnap run vm1)")
check("verify", "verify " + IMG, "OK", lambda o: "header: ok" in o)
mark = a.s2.mark()
check("restore", "restore " + IMG, "OK")
t = a.s2.wait(r"^tick \d+$", 120, mark)
ok(t and int(t[1].split()[1]) == saved_tick + 1,
   "after the restore the guest continues from the saved moment (tick %d)" % saved_tick, a.s2.text(mark))
ok(a.s2.wait(r"^vmsnap-guest start", 0, mark) is None, "the guest did not boot afresh", a.s2.text(mark))
check("status after the restore", "status vm1", "OK", lambda o: any(l.startswith("vm1 running pid") for l in o))
out, fin = con("restore " + IMG)
ok(fin == "ERR 3 image %s was already resumed once (consumed): restoring it again "
   "would replay the guest against disks that moved on" % IMG, "a second restore of the image: ERR 3 (consumed)",
   "got: %s\n%s" % (fin, "\n".join(out)))
check("quit", "quit", "OK")
ok(a.s1.wait_partial(r"vmsnap> $", 60), "init respawns the console after quit: a new prompt", a.s1.partial)
ok(con("version")[1] == "OK", "init respawns the console after quit: version: OK")
a.close()
sys.exit(summary())
