"""The system tests' harness: boots an image `make image` built
(scripts/run-image) with its three serial ports and QMP connected to
sockets this process listens on, and drives it only through them.

  ttyS0  the host's serial console: boot messages, a root shell
  ttyS1  the technician console (vmsnap console: OK / ERR lines)
  ttyS2  the inner VM's serial console (the test guest's ticks)
  qmp    the outer QEMU's own controls (quit, SIGKILL-like power cut)

Every wait has a deadline and looks for a line (a marker), never sleeps
for a while and hopes. Tests print TAP-like "ok - ..." / "not ok - ..."
lines; ok() counts them and summary() prints "N passed, N failed".
"""
import atexit, json, os, re, shutil, signal, socket, subprocess, sys, tempfile, threading, time

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PASSED, FAILED = [0], [0]
BOOTED = []     # every Appliance started: killed at exit, whatever ended the test
TMPDIRS = []    # removed at exit when every check passed, kept to look at otherwise


@atexit.register
def _cleanup():
    for a in BOOTED:
        a.close()
    if not FAILED[0]:
        for d in TMPDIRS:
            shutil.rmtree(d, ignore_errors=True)
    else:
        for d in TMPDIRS:
            print("# kept for inspection: " + d, flush=True)


def ok(cond, name, detail=""):
    if cond:
        PASSED[0] += 1
        print("ok - " + name, flush=True)
    else:
        FAILED[0] += 1
        print("not ok - " + name, flush=True)
        if detail:
            for l in str(detail).splitlines()[-15:]:
                print("#   " + l, flush=True)
    return bool(cond)


def summary():
    print("%d passed, %d failed" % (PASSED[0], FAILED[0]), flush=True)
    return 1 if FAILED[0] else 0


class Port:
    """One serial port: a listening socket QEMU connects to; every line that
    arrives is kept with its arrival time (monotonic)."""

    def __init__(self, path):
        self.path = path
        self.srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.srv.bind(path)
        self.srv.listen(1)
        self.conn = None
        self.lines = []          # (time, text)
        self.partial = b""
        self.cv = threading.Condition()

    def accept(self, timeout):
        self.srv.settimeout(timeout)
        self.conn, _ = self.srv.accept()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        while True:
            try:
                d = self.conn.recv(65536)
            except OSError:
                d = b""
            with self.cv:
                if not d:
                    self.closed = True
                    self.cv.notify_all()
                    return
                self.partial += d
                while b"\n" in self.partial:
                    l, self.partial = self.partial.split(b"\n", 1)
                    self.lines.append((time.monotonic(),
                                       l.replace(b"\r", b"").decode("utf-8", "replace")))
                self.cv.notify_all()

    def mark(self):
        """The index of the next line (wait() after it)."""
        with self.cv:
            return len(self.lines)

    def wait(self, regex, timeout, start=0):
        """The first (time, line, index) at or after start matching regex, else None."""
        rx = re.compile(regex)
        deadline = time.monotonic() + timeout
        with self.cv:
            i = start
            while True:
                while i < len(self.lines):
                    if rx.search(self.lines[i][1]):
                        return self.lines[i] + (i,)
                    i += 1
                left = deadline - time.monotonic()
                if left <= 0 or getattr(self, "closed", False):
                    return None
                self.cv.wait(left)

    def wait_partial(self, regex, timeout):
        """Until the unfinished last line (a prompt) matches regex; True if it did."""
        rx = re.compile(regex)
        deadline = time.monotonic() + timeout
        with self.cv:
            while not rx.search(self.partial.replace(b"\r", b"").decode("utf-8", "replace")):
                left = deadline - time.monotonic()
                if left <= 0 or getattr(self, "closed", False):
                    return False
                self.cv.wait(left)
            return True

    def text(self, start=0):
        with self.cv:
            return "\n".join(l for _, l in self.lines[start:])

    def send(self, data):
        self.conn.sendall(data.encode() if isinstance(data, str) else data)


class Appliance:
    """A boot of an image: Appliance(board, data_disk) boots; .s0 .s1 .s2
    are the ports, .qmp() talks to the outer QEMU, .kill() cuts the power.
    init: the image's first program (run-image --init; None: BusyBox init);
    append: more kernel command-line words (run-image --append)."""

    def __init__(self, board, data, mem="1G", tmp=None, init=None, append=None):
        self.dir = os.path.join(TOP, "build", "images", board)
        self.tmp = tmp or tempfile.mkdtemp(prefix="vmsnap-sys-")
        if self.tmp not in TMPDIRS:
            TMPDIRS.append(self.tmp)
        for n in ("s0", "s1", "s2", "qmp"):
            p = os.path.join(self.tmp, n + ".sock")
            if os.path.exists(p):
                os.unlink(p)
        self.s0, self.s1, self.s2 = (Port(os.path.join(self.tmp, n + ".sock")) for n in ("s0", "s1", "s2"))
        self.qmp_path = os.path.join(self.tmp, "qmp.sock")
        self.log = open(os.path.join(self.tmp, "qemu.err"), "ab")
        self.t0 = time.monotonic()
        self.proc = subprocess.Popen(
            [os.path.join(TOP, "scripts", "run-image"), self.dir, "--data", data, "--mem", mem,
             "--ttyS0", "socket,path=" + self.s0.path, "--ttyS1", "socket,path=" + self.s1.path,
             "--ttyS2", "socket,path=" + self.s2.path,
             "--qmp", "socket,path=%s,server=on,wait=off" % self.qmp_path]
            + (["--init", init] if init else []) + (["--append", append] if append else []),
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log)
        BOOTED.append(self)
        for p in (self.s0, self.s1, self.s2):
            p.accept(60)

    def qmp(self, command, args=None):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(30)
        s.connect(self.qmp_path)
        f = s.makefile("rwb")
        f.readline()
        for c in ({"execute": "qmp_capabilities"},
                  dict({"execute": command}, **({"arguments": args} if args else {}))):
            f.write(json.dumps(c).encode() + b"\n")
            f.flush()
            while True:
                r = json.loads(f.readline())
                if "return" in r or "error" in r:
                    break
        s.close()
        return r

    def shell(self, cmd, timeout=60):
        """Runs cmd in the root shell on ttyS0; its output lines (the command's
        exit status is on the marker line)."""
        tag = "M%d" % int(time.monotonic() * 1000)
        start = self.s0.mark()
        self.s0.send("%s; echo %s-rc=$?\n" % (cmd, tag))
        hit = self.s0.wait(r"^%s-rc=\d+$" % tag, timeout, start)
        if not hit:
            return None, self.s0.text(start)
        out = [l for _, l in self.s0.lines[start:hit[2]]]
        out = [l for l in out if tag not in l]
        return int(hit[1].split("=")[1]), "\n".join(out)

    def kill(self):
        """The power cut: the outer QEMU dies at once."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)

    def wait_exit(self, timeout):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def close(self):
        self.kill()
        self.log.close()
        for p in (self.s0, self.s1, self.s2):
            try:
                p.srv.close()
                if p.conn:
                    p.conn.close()
            except OSError:
                pass


def fresh_data(board, tmp):
    """A copy of the image's pristine data disk for one test run."""
    d = os.path.join(tmp, "data.img")
    subprocess.run(["cp", "--sparse=always", os.path.join(TOP, "build", "images", board, "data.img"), d],
                   check=True)
    return d


def deadline_guard(seconds):
    """The test's hard timeout: SIGALRM ends it with a failure line."""
    def expired(*_):
        ok(False, "test finished within its %d s hard timeout" % seconds)
        sys.exit(summary())
    signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
