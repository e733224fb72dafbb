"""Fixtures that start the real odin-status binary and talk to it over ZeroMQ."""

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import zmq

REPO = Path(__file__).resolve().parents[2]
BIN = os.environ.get("ODIN_STATUS_BIN", str(REPO / "target" / "debug" / "odin-status"))


# odin-control's top-level blocks, then the ones it has not, in the order the
# protocol gives (each addition present or not, monitor always last).
ODIN_BLOCKS = ["disk", "network", "process"]
ADDED_BLOCKS = ["process_summary", "host", "monitor"]


def has_odins_blocks_first(tree):
    """odin's blocks come first, unchanged in order; the rest are the documented
    additions in their order, process_summary and monitor among them."""
    keys = list(tree)
    added = keys[len(ODIN_BLOCKS):]
    return (keys[:len(ODIN_BLOCKS)] == ODIN_BLOCKS
            and added == [b for b in ADDED_BLOCKS if b in added]
            and "process_summary" in added and added[-1] == "monitor")


def request(endpoint, msg_val, params=None, msg_id=1, timeout_ms=3000, ctx=None):
    """One request on a fresh REQ socket; None when no reply comes in time."""
    ctx = ctx or zmq.Context.instance()
    sock = ctx.socket(zmq.REQ)
    sock.linger = 0
    sock.connect(endpoint)
    try:
        sock.send_json({
            "msg_type": "cmd",
            "msg_val": msg_val,
            "id": msg_id,
            "timestamp": "2026-11-26T06:08:46.456235",
            "params": params or {},
        })
        if not sock.poll(timeout_ms):
            return None
        return json.loads(sock.recv())
    finally:
        sock.close()


def stop(proc):
    """SIGTERM, then SIGKILL if it has not exited within 5 s."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Service:
    def __init__(self, tmp_path, *args, prefix=(), ctrl=None, pub=None):
        self.ctrl = ctrl or f"ipc://{tmp_path}/ctrl"
        self.pub = pub or f"ipc://{tmp_path}/pub"
        # `prefix` runs the service through a command that execs it
        # (ip netns exec, setpriv), so the PID is still the service's.
        self.proc = subprocess.Popen(
            [*prefix, BIN, "serve", "--ctrl", self.ctrl, "--pub", self.pub, *args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if request(self.ctrl, "request_version", timeout_ms=200) is not None:
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"odin-status exited: {self.proc.stderr.read().decode()}")
        raise RuntimeError("odin-status did not answer within 10 s")

    def get(self, path="", metadata=False):
        reply = request(self.ctrl, "get", {"path": path, "metadata": metadata})
        assert reply is not None, "no reply"
        return reply

    def value(self, path):
        reply = self.get(path)
        assert reply["msg_type"] == "ack", reply
        return reply["params"]

    def stop(self):
        stop(self.proc)
        self.proc.stderr.close()


@pytest.fixture
def serve(tmp_path):
    """serve(*args) starts a service; every one started is stopped afterwards."""
    started = []

    def start(*args, prefix=()):
        sub = tmp_path / f"svc{len(started)}"
        sub.mkdir()
        sub.chmod(0o777)  # an unprivileged service must create its sockets here
        svc = Service(sub, *args, prefix=prefix)
        started.append(svc)
        return svc

    yield start
    for svc in started:
        svc.stop()


@pytest.fixture
def serve_as_nobody():
    """serve_as_nobody(*args) starts a service as user nobody (skips, saying
    why, without root or setpriv); every one started is stopped afterwards."""
    if os.geteuid() != 0:
        pytest.skip("dropping to another user needs root")
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv (util-linux) is not installed")
    started = []
    work = tempfile.mkdtemp(prefix="odin-status-nobody-")
    os.chmod(work, 0o777)  # nobody must create its sockets here

    def start(*args):
        sub = Path(work) / f"svc{len(started)}"
        sub.mkdir()
        sub.chmod(0o777)
        svc = Service(sub, *args,
                      prefix=("setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"))
        started.append(svc)
        return svc

    yield start
    for svc in started:
        svc.stop()
    shutil.rmtree(work, ignore_errors=True)


@pytest.fixture
def spawn(tmp_path):
    """spawn(name, target, *args) runs target through a link called name."""
    procs = []

    def start(name, target, *args):
        link = tmp_path / name
        link.symlink_to(target)
        proc = subprocess.Popen([str(link), *args], stdout=subprocess.DEVNULL)
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        proc.kill()
        proc.wait()


def eventually(check, timeout=5.0, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)
