#!/usr/bin/env python3
"""The console test's pty driver (tests/integration/console.sh).

usage: console_driver.py ERRFILE COMMAND...   ({tty} in COMMAND: the pty slave)

A coprocess that owns a pty master and runs COMMAND (vmsnap console --tty
{tty}) on the slave, its stdout and stderr into ERRFILE. It reads one
directive a line on stdin and answers on stdout with what the console
printed (CR LF removed), then a line ".". A line that did not end in CR LF
is preceded by "BARE-LF"; no final line in time gives "TIMEOUT".

directives: prompt, send LINE (ended by CR), sendlf LINE, sendcrlf LINE,
hex BYTES (raw, line end included), long N (N times 'a'), noise SEED N
(random bytes, then resynchronise), quiet (what arrives within 1 s),
termios (the slave's settings), pid, zombies, wait (the console's exit).
"""
import os, random, re, select, subprocess, sys, termios, time, fcntl
master, slave = os.openpty()
dev = os.ttyname(slave)
fcntl.fcntl(master, fcntl.F_SETFL, os.O_NONBLOCK)
err = open(sys.argv[1], "wb")
proc = subprocess.Popen([a.replace("{tty}", dev) for a in sys.argv[2:]],
                        stdin=subprocess.DEVNULL, stdout=err, stderr=err)
buf = b""
FINAL = re.compile(rb"^(OK|ERR [123] .*)$")

def say(s):
    sys.stdout.write(s + "\n"); sys.stdout.flush()

def fill(timeout):
    global buf
    r, _, _ = select.select([master], [], [], timeout)
    if not r:
        return False
    try:
        d = os.read(master, 65536)
    except (BlockingIOError, OSError):
        return False
    buf += d
    return bool(d)

def send(data):
    while data:
        r, w, _ = select.select([master], [master], [], 10)
        if r:
            fill(0)
        if w:
            try:
                data = data[os.write(master, data[:4096]):]
            except BlockingIOError:
                pass

def line(deadline):
    global buf
    while b"\n" not in buf:
        if time.time() > deadline:
            return None
        fill(0.2)
    i = buf.index(b"\n")
    l, buf = buf[:i], buf[i + 1:]
    if not l.endswith(b"\r"):
        say("BARE-LF")
    return l[:-1] if l.endswith(b"\r") else l

# Print lines up to and including the final OK/ERR line (or one matching stop).
def reply(stop=FINAL, show=True, timeout=300):
    deadline = time.time() + timeout
    while True:
        l = line(deadline)
        if l is None:
            say("TIMEOUT"); return
        if show:
            say(l.decode("utf-8", "backslashreplace"))
        if stop.search(l) and FINAL.match(l):
            return

def wait_prompt(timeout=10):
    deadline = time.time() + timeout
    while not buf.endswith(b"vmsnap> ") and time.time() < deadline:
        fill(0.1)
    say("prompt" if buf.endswith(b"vmsnap> ") else "TIMEOUT")

def tio():
    a = termios.tcgetattr(slave)
    names = {getattr(termios, n): n[1:] for n in dir(termios) if re.match(r"^B\d+$", n)}
    say("speed %s cs8 %d parenb %d cstopb %d crtscts %d ixon %d icanon %d echo %d" % (
        names.get(a[5], "?"), a[2] & termios.CSIZE == termios.CS8, bool(a[2] & termios.PARENB),
        bool(a[2] & termios.CSTOPB), bool(a[2] & termios.CRTSCTS), bool(a[0] & termios.IXON),
        bool(a[3] & termios.ICANON), bool(a[3] & termios.ECHO)))

for d in sys.stdin:
    op, _, arg = d.rstrip("\n").partition(" ")
    if op == "prompt":
        wait_prompt()
    elif op == "send":        # a line ended by CR, as a terminal sends it
        send(arg.encode() + b"\r"); reply()
    elif op == "sendlf":
        send(arg.encode() + b"\n"); reply()
    elif op == "sendcrlf":
        send(arg.encode() + b"\r\n"); reply()
    elif op == "hex":         # raw bytes, their line end included
        send(bytes.fromhex(arg)); reply()
    elif op == "long":
        send(b"a" * int(arg) + b"\r"); reply()
    elif op == "noise":       # random bytes (a fixed seed), then resynchronise
        seed, n = map(int, arg.split())
        rnd = random.Random(seed)
        send(bytes(rnd.randrange(256) for _ in range(n)) + b"\r")
        send(b"status zz_sync\r")
        reply(stop=re.compile(rb"zz_sync"), show=False)
        say("synced")
    elif op == "quiet":       # what arrives within a second, besides the prompt
        fill(1)
        say("pending %r" % buf)
    elif op == "termios":
        tio()
    elif op == "pid":
        say(str(proc.pid))
    elif op == "zombies":
        n = 0
        for p in os.listdir("/proc"):
            try:
                s = open("/proc/%s/stat" % p).read().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            n += s[0] == "Z" and s[1] == str(proc.pid)
        say("zombies %d" % n)
    elif op == "wait":
        try:
            say("exit %d" % proc.wait(10))
        except subprocess.TimeoutExpired:
            say("still running")
    say(".")
