#!/usr/bin/python3
# qmp_record: speak QMP to a real QEMU the way vmsnap does (ids vmsnap-1,
# vmsnap-2, ...; fds by SCM_RIGHTS) and write every byte QEMU sent back:
# a real conversation, to seed the QMP fuzz target (tests/fuzz/seed.sh).
# usage: qmp_record.py SOCKET OUT STEPS_JSON
#   STEPS_JSON: [{"execute": ..., "arguments": {...}, "fds": [path...],
#                 "fd_mode": "r"|"w", "wait_migration": true}, ...];
#   qmp_capabilities is step 1.
import json
import os
import socket
import sys
import time

sock_path, out_path, steps = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sock_path)
got = b""


def messages():
    return [json.loads(l) for l in got.split(b"\n") if l.strip()]


def read_until(done, timeout=120):
    global got
    deadline = time.time() + timeout
    while not done():
        s.settimeout(max(0.01, deadline - time.time()))
        try:
            b = s.recv(65536)
        except socket.timeout:
            sys.exit("qmp_record: timed out; got so far: %r" % got[-400:])
        if not b:
            return
        got += b


def run():
    read_until(lambda: b"\n" in got)
    for n, step in enumerate(steps, 1):
        cmd = {"execute": step["execute"], "id": "vmsnap-%d" % n}
        if "arguments" in step:
            cmd["arguments"] = step["arguments"]
        data = json.dumps(cmd, separators=(",", ":")).encode()
        mode = os.O_RDONLY if step.get("fd_mode", "r") == "r" else os.O_WRONLY
        fds = [os.open(p, mode) for p in step.get("fds", [])]
        if fds:
            socket.send_fds(s, [data], fds)
        else:
            s.sendall(data)
        read_until(lambda: any(m.get("id") == cmd["id"] for m in messages()) or
                   (step["execute"] == "quit" and b"SHUTDOWN" in got))
        for f in fds:
            os.close(f)
        failed = any(m.get("id") == cmd["id"] and "error" in m for m in messages())
        if step.get("wait_migration") and not failed:
            read_until(lambda: any(m.get("event") == "MIGRATION" and
                                   m["data"]["status"] in ("completed", "failed")
                                   for m in messages()))


try:
    run()
except (BrokenPipeError, ConnectionResetError):
    pass  # QEMU went away (quit): what it said so far is the conversation
with open(out_path, "wb") as f:
    f.write(got)
