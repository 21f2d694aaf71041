#!/usr/bin/env python3
"""sysvinit power failure (system test): the pc-x86_64 image booted with
Debian's sysvinit as PID 1 (run-image --init /sbin/init.sysv: sysvinit-core's
init, /etc/inittab.sysv = image/sysvinit/inittab.sysv + the powerfail,
powerfailnow and powerokwait lines of rootfs-overlay/etc/inittab.vmsnap as
shipped). A UPS daemon's part is played on the root console: the letter into
/var/run/powerstatus, then SIGPWR to PID 1; init runs the matching lines.

  boot 1  F, then O before the timer ends: disarmed, nothing saved.
          F: the timer saves; held half-way (QEMU stopped at 16 MiB written),
          O: powerokwait cancels the save, the guest runs on within 1 s, no
          image claims completeness. F: the timer's save completes; power cut.
  boot 2  vm1 restored from the saved moment (RAM checks out).
          L, and O while its save runs: sysvinit waits for the powerfailnow
          line before it starts any other, so the save completes, then
          powerokwait restores vm1 from it. L again; power cut after the save.
  boot 3  vm1 restored from the moment of the last save (RAM checks out).

The kernel command line sets VMSNAP_SAVE_AFTER (the powerfail timer, 8 s)
and VMSNAP_POWER_LOG=/dev/console (the timer's save logs on the console)
in init's environment, which sysvinit hands to what it runs."""
import os, re, sys, tempfile, time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from appliance import Appliance, TOP, deadline_guard, fresh_data, ok, summary

BOARD = "pc-x86_64"
IMG = "/var/lib/vmsnap/vm1.img"
AFTER = 8
APPEND = "VMSNAP_SAVE_AFTER=%d VMSNAP_POWER_LOG=/dev/console" % AFTER
SAVING = r"power fail: saving 1 VM"
DURABLE = r"power fail: every image is complete and durable"
ARMED = r"vmsnap-power: on battery: saving the VMs in %d s unless power returns" % AFTER
SELFCHECK = ("vmsnap qmp vm1 '{\"execute\":\"send-key\",\"arguments\":{\"keys\":"
             "[{\"type\":\"qcode\",\"data\":\"c\"}]}}' >/dev/null")
deadline_guard(900)
tmp = tempfile.mkdtemp(prefix="vmsnap-sysvinit-")
data = fresh_data(BOARD, tmp)
T0 = time.monotonic()
timing = []


def boot(n):
    """Boot n with sysvinit as PID 1: the appliance once vm1 ticks and the shell answers."""
    t = time.monotonic()
    a = Appliance(BOARD, data, tmp=tmp, init="/sbin/init.sysv", append=APPEND)
    ok(a.s0.wait(r"^INIT: version [0-9.]+ booting", 120), "boot %d: sysvinit starts as PID 1" % n, a.s0.text())
    ok(a.s0.wait(r"^vmsnap-image: boot done", 300), "boot %d: its sysinit line ran rcS" % n, a.s0.text())
    ok(a.s0.wait(r"INIT: Entering runlevel: 2", 60), "boot %d: runlevel 2" % n, a.s0.text())
    tick = a.s2.wait(r"^tick \d+$", 180)
    ok(tick, "boot %d: vm1 ticks" % n, a.s2.text())
    ok(a.s0.wait_partial(r"# ", 60), "boot %d: getty's root shell on ttyS0" % n, a.s0.partial)
    timing.append("boot %d: vm1 ticks %.1f s after power-on" % (n, (tick[0] if tick else time.monotonic()) - t))
    return a


def cut(a, n):
    """The power cut; the boot's console and guest lines are kept in tmp (shown on failure)."""
    a.kill()
    for port, name in ((a.s0, "s0"), (a.s2, "guest")):
        with open(os.path.join(tmp, "%s-%d.log" % (name, n)), "w") as f:
            f.write(port.text() + "\n")


def ticks(a, start=0):
    return [int(l.split()[1]) for _, l in a.s2.lines[start:] if re.match(r"^tick \d+$", l)]


def last_tick(a):
    t = ticks(a)
    return t[-1] if t else -1


def power(a, letter):
    """The UPS daemon's part: the letter in /var/run/powerstatus, SIGPWR to init."""
    rc, out = a.shell("echo %s >/var/run/powerstatus && kill -PWR 1" % letter)
    ok(rc == 0, "%s delivered: powerstatus written, SIGPWR sent to PID 1" % letter, out)


def shell_ok(a, cmd, name, timeout=60):
    rc, out = a.shell(cmd, timeout)
    ok(rc == 0, name, "%s\n-> rc %s\n%s" % (cmd, rc, out))
    return out


def restored(a, n, saved_tick):
    """After the boot: vm1 restored (not cold-started) from saved_tick, its RAM intact."""
    r = a.s0.wait(r"vm1: (restored from|cold-started)", 60)
    ok(r and "restored from" in r[1], "boot %d: resume restores vm1 from its image" % n, a.s0.text())
    t = ticks(a)
    ok(t and saved_tick < t[0] <= saved_tick + 5 and a.s2.wait(r"^vmsnap-guest start", 0) is None,
       "boot %d: the guest continues from the saved moment (tick %d before the cut, %s after)"
       % (n, saved_tick, t[0] if t else None), a.s2.text())
    self_check(a, "boot %d" % n)


def self_check(a, label):
    m = a.s2.mark()
    shell_ok(a, SELFCHECK, "%s: the guest is asked to re-check its RAM" % label)
    r = a.s2.wait(r"^check (ok|FAIL)", 300, m)
    ok(r and r[1].startswith("check ok"), "%s: its RAM checks out (not torn)" % label, a.s2.text(m))


def image_state(a):
    rc, out = a.shell("vmsnap inspect --json %s 2>/dev/null | sed -n 's/.*\"state\":\"\\([a-z]*\\)\".*/\\1/p'; "
                      "test -e %s || echo absent" % (IMG, IMG))
    return out.strip().splitlines()[-1] if out.strip() else ""


def watching(a, label):
    shell_ok(a, "n=0; until [ -f /run/vmsnap/watch.pid ] && kill -0 $(cat /run/vmsnap/watch.pid) 2>/dev/null; do "
             "[ $n -lt 300 ] || exit 1; usleep 100000; n=$((n+1)); done", label)


# --- boot 1: the inittab, then F / O / the timer --------------------------------
a = boot(1)
ok(a.s0.wait(r"vm1: cold-started: no image", 0), "boot 1: vm1 cold-started (no image yet)", a.s0.text())
out = shell_ok(a, "readlink /proc/1/exe", "PID 1's program is readable")
ok(out.strip().splitlines()[-1:] == ["/lib/sysvinit/init"], "PID 1 is sysvinit-core's init", out)
shipped = [l for l in open(os.path.join(TOP, "rootfs-overlay", "etc", "inittab.vmsnap")).read().splitlines()
           if re.match(r"^[^#:]+:[^:]*:power", l)]
out = shell_ok(a, "grep -E '^[^#:]+:[^:]*:power' /etc/inittab", "/etc/inittab has power lines")
ok(len(shipped) == 3 and out.strip().splitlines()[-3:] == shipped,
   "/etc/inittab's power lines are rootfs-overlay/etc/inittab.vmsnap's: " + " | ".join(shipped), out)

# F, then O before the timer ends: nothing is saved.
m = a.s0.mark()
power(a, "F")
arm = a.s0.wait(ARMED, 30, m)
ok(arm, "F: init runs powerfail -> vmsnap-power arm: the timer is armed (%d s)" % AFTER, a.s0.text(m))
power(a, "O")
dis = a.s0.wait(r"vmsnap-power: timer disarmed", 30, m)
ok(dis and arm and dis[0] - arm[0] < AFTER, "O: init runs powerokwait -> vmsnap-power ok: the timer is disarmed "
   "%.1f s after it was armed" % ((dis[0] - arm[0]) if dis and arm else -1), a.s0.text(m))
ok(a.s0.wait(r"vmsnap-power: power returned", 30, m), "O: ... and says power returned", a.s0.text(m))
t = last_tick(a)
# The guest's ticks (5 a second) are the clock: AFTER + 4 s later nothing has saved.
ok(a.s2.wait(r"^tick %d$" % (t + (AFTER + 4) * 5), 120), "vm1 runs on past the disarmed timer's end", a.s2.text())
ok(a.s0.wait(SAVING + "|" + r"power failure: saving", 0, m) is None, "... and nothing saved it", a.s0.text(m))
ok(image_state(a) == "absent", "... no image file", "")
watching(a, "... the watcher still runs")

# F; the timer's save is held half-way (QEMU stopped once 16 MiB of the stream
# are written); O cancels it: the guest runs on within 1 s, no image is complete.
# QEMU 10.0.2 (Debian 12 backports) has been seen to segfault in its cancel (3
# of 12 attempts here; the kernel logs it): that attempt is said, checked for what still
# must hold (no image claims completeness; powerokwait cold-starts vm1 again),
# and the case is run again, at most 3 times in all.
HOLD = ("q=$(cat /run/vmsnap/vm1.pid); w() { sed -n 's/^wchar: //p' /proc/$q/io; }; w0=$(w); "
        "echo F >/var/run/powerstatus && kill -PWR 1; n=0; "
        "while [ $(w) -lt $((w0 + 16777216)) ] && [ $n -lt 600 ]; do usleep 50000; n=$((n+1)); done; "
        "kill -STOP $q && echo held at $((($(w) - w0) >> 20)) MiB")
QEMU_CRASHES = [0]


def no_image_left(a, label):
    st = image_state(a)
    ok(st == "absent", "%s: vm1's image is as before the save (absent), not complete: %s" % (label, st), "")
    ok(shell_ok(a, "ls -a /var/lib/vmsnap", "save_dir listed").find("partial") < 0,
       "%s: no partial file left" % label, "")


def cancel_mid_save(a, attempt):
    """One attempt; False if QEMU crashed in the cancel (checked, to be retried)."""
    label = "O mid-save" + (" (attempt %d)" % attempt if attempt > 1 else "")
    m, g = a.s0.mark(), a.s2.mark()
    out = shell_ok(a, HOLD, "%s: F: the timer's save starts; QEMU held mid-save" % label, timeout=120)
    ok(a.s0.wait(SAVING, 0, m) and re.search(r"held at \d+ MiB", out) and a.s0.wait(DURABLE, 0, m) is None,
       "%s: the save is underway, not complete (%s)" % (label, (re.findall(r"held at \d+ MiB", out) or ["?"])[0]),
       a.s0.text(m))
    held_tick = last_tick(a)
    t0 = time.monotonic()
    shell_ok(a, "echo O >/var/run/powerstatus && kill -PWR 1 && kill -CONT $(cat /run/vmsnap/vm1.pid)",
             "%s: O delivered, QEMU let go" % label)
    r = a.s2.wait(r"^tick %d$" % (held_tick + 1), 30, g)
    ok(a.s0.wait(r"vm1: cancelled: power returned", 30, m), "%s: the save says: cancelled: power returned" % label,
       a.s0.text(m))
    crash = a.s0.wait(r"QEMU closed the QMP connection", 0, m)
    if crash:
        _, dmesg = a.shell("dmesg | grep 'qemu-system-x86.*segfault' | tail -n 1")
        print("# %s: the inner QEMU died in the cancel (%s)" % (label, dmesg.strip().splitlines()[-1:]))
        QEMU_CRASHES[0] += 1
        ok(a.s0.wait(r"vm1: cold-started", 60, m) and a.s2.wait(r"^tick 3$", 120, g),
           "%s: QEMU gone: powerokwait cold-starts vm1 again" % label, a.s0.text(m))
        no_image_left(a, label)
        watching(a, "%s: a watcher runs again" % label)
        return False
    dt = (r[0] - t0) if r else -1
    timing.append("%s: the guest ticks again %.2f s after O was sent" % (label, dt))
    ok(r and dt <= 1.0, "%s: the guest runs again within 1 s (%.2f s)" % (label, dt), a.s2.text(g))
    ok(a.s2.wait(r"^vmsnap-guest start", 0, g) is None and ticks(a, g)[-1] > held_tick,
       "%s: the guest counts on (no restore, no reboot)" % label, a.s2.text(g))
    no_image_left(a, label)
    watching(a, "%s: a watcher runs again" % label)
    return True


for attempt in (1, 2, 3):
    if cancel_mid_save(a, attempt):
        break
else:
    ok(False, "O mid-save: QEMU crashed in the cancel 3 times in a row")

# F; the timer's save completes; the power is cut right after it says so.
m = a.s0.mark()
power(a, "F")
arm = a.s0.wait(ARMED, 30, m)
fire = a.s0.wait(r"vmsnap-power: power failure: saving every VM", AFTER + 60, m)
ok(arm and fire and fire[0] - arm[0] >= AFTER - 1, "F: the timer saves %.1f s after it was armed"
   % ((fire[0] - arm[0]) if arm and fire else -1), a.s0.text(m))
done = a.s0.wait(DURABLE, 180, m)
saved = last_tick(a)
cut(a, 1)
ok(done, "F: the timer's save reports every image complete and durable; power cut (tick %d)" % saved, a.s0.text(m))

# --- boot 2: restored; L with O during its save; L and a cut ----------------------
a = boot(2)
restored(a, 2, saved)
m, g = a.s0.mark(), a.s2.mark()
power(a, "L")
ok(a.s0.wait(SAVING, 60, m), "L: init runs powerfailnow -> vmsnap-power fail: the save starts", a.s0.text(m))
power(a, "O")
done = a.s0.wait(DURABLE, 180, m)
saved = last_tick(a)
back = a.s0.wait(r"vmsnap-power: power returned", 60, m)
ok(done and back and done[2] < back[2], "O during L's save: init waits for the powerfailnow line; the save "
   "completes, then powerokwait runs", a.s0.text(m))
ok(a.s0.wait(r"vm1: restored from", 60, m), "... vmsnap-power ok restores vm1 from the image", a.s0.text(m))
r = a.s2.wait(r"^tick %d$" % (saved + 1), 60, g)
ok(r and a.s2.wait(r"^vmsnap-guest start", 0, g) is None, "... the guest continues from the saved moment "
   "(tick %d)" % saved, a.s2.text(g))
ok(image_state(a) == "consumed", "... its image is consumed", "")
watching(a, "... a watcher runs again")

m = a.s0.mark()
power(a, "L")
done = a.s0.wait(DURABLE, 180, m)
saved = last_tick(a)
cut(a, 2)
ok(done, "L: the save reports every image complete and durable; power cut (tick %d)" % saved, a.s0.text(m))

# --- boot 3: restored from the last save ------------------------------------------
a = boot(3)
restored(a, 3, saved)
cut(a, 3)
a.close()
for l in timing:
    print("# " + l)
print("# inner QEMU crashes in a cancel (attempt repeated): %d" % QEMU_CRASHES[0])
print("# sysvinit system test: %.0f s" % (time.monotonic() - T0))
sys.exit(summary())
