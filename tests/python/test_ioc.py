"""odin-status-ioc against the real service, read with a real Channel Access
client (pyepics; p4p for pvAccess): values and timestamps equal the service's
snapshots, severities follow the tree's severity leaves and the process state, every PV
goes INVALID when the service stops and comes back when it returns, and two
services behind one IOC give two PV sets.

The IOC runs as a subprocess (it is a command, and pyepics and softioc in one
process can clash), on Channel Access and pvAccess ports that are free on
loopback, so parallel runs never meet."""

import os
import socket
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

import psutil
import pytest

from conftest import Service, eventually, stop

from odin_status import StatusClient, StatusSubscriber
from odin_status.ioc import pv_key

epics = pytest.importorskip("epics", reason="pyepics is not installed (run-tests.sh installs it)")
pytest.importorskip("softioc", reason="softioc is not installed (run-tests.sh installs it)")

# pyepics warns on every read that times out, as reads do until the IOC is up.
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:epics.ca")

IOC = str(Path(sys.executable).parent / "odin-status-ioc")
NO_ALARM, MINOR, MAJOR, INVALID = 0, 1, 2, 3
HIGH_ALARM, TIMEOUT_ALARM, STATE_ALARM, UDF_ALARM = 4, 10, 7, 17

# The issue's table, written out here rather than taken from the IOC: PV suffix
# -> path below the item's node.
HOST = {"CPU": ("cpu_percent",), "MEM": ("memory_percent",), "LOAD1": ("load_average", 0),
        "UPTIME": ("uptime",)}
DISK = {"PERCENT": ("percent",), "FREE": ("free",), "TOTAL": ("total",),
        "TIME_TO_FULL": ("time_to_full",)}
NET = {"RX_RATE": ("bytes_recv_rate",), "TX_RATE": ("bytes_sent_rate",),
       "RX_DROP_RATE": ("dropin_rate",), "TX_DROP_RATE": ("dropout_rate",), "LINK": ("link_up",)}
PROC = {"COUNT": ("count",), "EXPECTED": ("expected",), "RESTARTS": ("restarts",),
        "CPU": ("cpu_percent",), "RSS": ("memory_rss",), "UPTIME": ("uptime",),
        "STATE": ("state",)}
STATES = ["ok", "missing", "extra", "unknown"]


def free_port(kind=socket.SOCK_STREAM, also=None):
    """A port free on loopback for ``kind`` (and for ``also`` too, when given)."""
    while True:
        with socket.socket(socket.AF_INET, kind) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if also is None:
            return port
        try:
            with socket.socket(socket.AF_INET, also) as s:
                s.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue


@pytest.fixture(scope="module")
def epics_env():
    """EPICS's own variables for a test-only CA and PVA setup on loopback, in
    this process (pyepics reads them when it first connects) and for the IOC."""
    ca = free_port(socket.SOCK_STREAM, also=socket.SOCK_DGRAM)
    pva = free_port(socket.SOCK_STREAM, also=socket.SOCK_DGRAM)
    env = {
        "EPICS_CA_SERVER_PORT": str(ca),
        "EPICS_CA_REPEATER_PORT": str(free_port(socket.SOCK_DGRAM)),
        "EPICS_CA_ADDR_LIST": "127.0.0.1",
        "EPICS_CA_AUTO_ADDR_LIST": "NO",
        "EPICS_CAS_INTF_ADDR_LIST": "127.0.0.1",
        "EPICS_CAS_BEACON_ADDR_LIST": "127.0.0.1",
        "EPICS_CAS_AUTO_BEACON_ADDR_LIST": "NO",
        "EPICS_PVA_SERVER_PORT": str(pva),
        "EPICS_PVAS_SERVER_PORT": str(pva),
        "EPICS_PVA_BROADCAST_PORT": str(free_port(socket.SOCK_DGRAM)),
        "EPICS_PVA_ADDR_LIST": "127.0.0.1",
        "EPICS_PVA_AUTO_ADDR_LIST": "NO",
        "EPICS_PVAS_INTF_ADDR_LIST": "127.0.0.1",
    }
    env["EPICS_CAS_BEACON_PORT"] = env["EPICS_CA_REPEATER_PORT"]
    env["EPICS_PVAS_BROADCAST_PORT"] = env["EPICS_PVA_BROADCAST_PORT"]
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    yield env
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


class Ioc:
    def __init__(self, env, *args):
        self.proc = subprocess.Popen([IOC, *args], env={**os.environ, **env},
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT)
        self.output = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.output.append(line.decode(errors="replace"))

    def log(self):
        return "".join(self.output)

    def stop(self):
        stop(self.proc)
        return self.proc.returncode


@pytest.fixture
def ioc(epics_env):
    started = []

    def start(*args):
        started.append(Ioc(epics_env, *args))
        return started[-1]

    yield start
    for one in started:
        one.stop()


class Snapshots:
    """Every snapshot of a service by its timestamp in epoch seconds, read the
    way the IOC reads it, so a PV's timestamp finds the tree it came from."""

    def __init__(self, pub):
        self.by_time = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(pub,), daemon=True)
        self._thread.start()

    def _run(self, pub):
        with StatusSubscriber(pub, hwm=100) as sub:
            while not self._stop.is_set():
                snap = sub.receive(timeout=0.1)
                if snap is not None:
                    stamp = datetime.fromisoformat(snap.timestamp).timestamp()
                    self.by_time[round(stamp, 6)] = snap

    def at(self, stamp):
        return self.by_time.get(round(stamp, 6))

    def close(self):
        self._stop.set()
        self._thread.join(2)


def read(name, timeout=5.0):
    """One DBR_TIME read: value, severity, status and timestamp at once."""
    pv = epics.get_pv(name, connect=True, timeout=timeout, auto_monitor=False)
    assert pv.connected, f"{name} is not served"
    md = pv.get_with_metadata(form="time", use_monitor=False, timeout=timeout)
    assert md is not None, f"no answer for {name}"
    return md


def walk(tree, path):
    for step in path:
        tree = tree[step]
    return tree


def expected_pvs(prefix, tree, process):
    """(PV name, tree node path, leaf path) for every PV of the issue's table."""
    out = [(f"{prefix}:HOST:{s}", ("host",), p) for s, p in HOST.items()]
    for key in tree["disk"]:
        out += [(f"{prefix}:DISK:{pv_key(key)}:{s}", ("disk", key), p) for s, p in DISK.items()]
    for nic in tree["network"]:
        out += [(f"{prefix}:NET:{pv_key(nic)}:{s}", ("network", nic), p) for s, p in NET.items()]
    out += [(f"{prefix}:PROC:{pv_key(process)}:{s}", ("process_summary", process), p)
            for s, p in PROC.items()]
    return out


def test_pv_names_follow_the_issue():
    assert [pv_key(k) for k in ["/", "/data", "stFrameProcessor1.sh", "eth0.100", "a b:c"]] \
        == ["_", "_data", "stFrameProcessor1_sh", "eth0_100", "a_b_c"]


def test_leaves_become_record_values_or_none():
    """The table's reading of leaves, without EPICS: what a record can hold, or
    None (then INVALID), never an exception."""
    from odin_status.ioc import table as t

    ai, longin, bi, mbbi = (t.Row("X", (), kind, "") for kind in (t.AI, t.LONGIN, t.BI, t.MBBI))
    assert [t.record_value(ai, v) for v in (1, 2.5, None, "1", True, float("nan"), [1])] \
        == [1.0, 2.5, None, None, None, None, None]
    assert [t.record_value(longin, v) for v in (3, 2**40, -2**40, 1.9)] \
        == [3, 2**31 - 1, -2**31, 1]
    assert [t.record_value(bi, v) for v in (True, False, 1)] == [1, 0, None]
    assert [t.record_value(mbbi, v) for v in ("ok", "missing", "extra", "unknown", "odd", 1)] \
        == [0, 1, 2, 3, None, None]
    assert t.node_severity({"severity": "major"}) == MAJOR
    assert t.node_severity({"severity": 3}) == t.node_severity([]) == NO_ALARM
    assert t.process_severity({"process": {"fp": {"1": {"severity": "minor"},
                                                   "2": {"severity": "major"}}}}, "fp") == MAJOR
    free = next(r for r in t.TABLE[1].rows if r.suffix == "FREE")
    assert (t.alarm_status(free, MINOR), t.alarm_status(ai, MAJOR)) == (6, 3)  # LOW, HIHI
    config = {"disks": ["/", "/data", 7], "interfaces": "eth0", "processes": ["fp:2", "a:b"]}
    assert t.configured_keys(config, "disk") == ["_", "_data"]
    assert t.configured_keys(config, "network") == []
    assert t.configured_keys(config, "process_summary") == ["fp", "a:b"]
    assert t.snapshot_time("not a time", 12.5) == 12.5


def test_pvs_follow_the_service_through_a_stop_and_a_restart(tmp_path, spawn, ioc):
    process = f"ioc.t{os.getpid()}"
    sleeper = spawn(process, "/bin/sleep", "600")
    percent = psutil.disk_usage("/").percent
    assert percent > 0.2, "the tested disk must hold something"
    missing_disk = f"/odst-absent-{os.getpid()}"  # short: a PV name holds 60 characters
    where = tmp_path / "svc"
    where.mkdir()
    args = ("--processes", f"{process}:1", "--disks", f"/,{missing_disk}",
            "--interfaces", "lo", "--rate", "4",
            "--threshold", f"disk_percent_warn={percent / 2:.2f}")
    svc = Service(where, *args)
    snaps = Snapshots(svc.pub)
    prefix = f"ODST{os.getpid()}"
    the_ioc = ioc("--prefix", prefix, "--pub", svc.pub, "--ctrl", svc.ctrl)
    try:
        eventually(lambda: epics.caget(f"{prefix}:CONNECTED", timeout=1) == 1, timeout=30,
                   what=f"the IOC to serve {prefix}:CONNECTED\n{the_ioc.log()}")

        # Every PV equals its leaf in the snapshot its timestamp names.
        tree = svc.value("")
        pvs = expected_pvs(prefix, tree, process)
        assert len(pvs) == 4 + 4 + 5 + 7
        checked = 0
        for name, node, leaf in pvs:
            md = eventually(lambda: (lambda m: m if snaps.at(m["timestamp"]) else None)(read(name)),
                            what=f"{name} to carry the time of a snapshot seen")
            snap_tree = snaps.at(md["timestamp"]).tree
            want = walk(snap_tree, node + leaf)
            if leaf == ("state",):
                want = STATES.index(want)
            if want is None:
                assert md["severity"] == INVALID, (name, md)
            else:
                assert md["value"] == want, (name, md["value"], want)
                checked += 1
        assert checked >= len(pvs) - 3  # only null leaves (TIME_TO_FULL, UPTIME) are not compared

        assert epics.caget(f"{prefix}:PROC:{pv_key(process)}:STATE", as_string=True) == "ok"
        disk = read(f"{prefix}:DISK:_:PERCENT")
        assert (disk["severity"], disk["status"]) == (MINOR, HIGH_ALARM), disk
        assert read(f"{prefix}:CONNECTED")["severity"] == NO_ALARM
        # Configured but absent: served, and INVALID until it exists.
        absent = read(f"{prefix}:DISK:{pv_key(missing_disk)}:PERCENT")
        assert absent["severity"] == INVALID, absent
        ctrl = epics.get_pv(f"{prefix}:DISK:_:PERCENT", form="ctrl", auto_monitor=False)
        ctrl.wait_for_connection(5)
        ctrlvars = ctrl.get_ctrlvars(timeout=5)
        assert (ctrlvars["units"], ctrlvars["precision"]) == ("%", 1), ctrlvars

        # The process goes: STATE missing, MAJOR.
        sleeper.kill()
        sleeper.wait()
        state_pv = f"{prefix}:PROC:{pv_key(process)}:STATE"
        eventually(lambda: epics.caget(state_pv, as_string=True, timeout=1) == "missing",
                   timeout=10, what="STATE missing")
        state = read(state_pv)
        assert (state["severity"], state["status"]) == (MAJOR, STATE_ALARM), state

        # The service stops: every PV INVALID within the stale time (2 s here),
        # CONNECTED 0 and MAJOR.
        total = read(f"{prefix}:DISK:_:TOTAL")["value"]
        svc.stop()
        stopped = time.monotonic()
        names = [name for name, _, _ in pvs] + [f"{prefix}:CYCLE"]
        eventually(lambda: all(read(n)["severity"] == INVALID for n in names),
                   timeout=15, what="every PV INVALID")
        took = time.monotonic() - stopped
        assert took < 2.0 + 3.0, f"INVALID after {took:.1f} s"
        for n in names:
            assert read(n)["status"] == TIMEOUT_ALARM, n
        assert read(f"{prefix}:DISK:_:TOTAL")["value"] == total  # the last value is kept
        connected = read(f"{prefix}:CONNECTED")
        assert (connected["value"], connected["severity"]) == (0, MAJOR), connected

        # It comes back by itself when the service does.
        svc = Service(where, *args)
        eventually(lambda: epics.caget(f"{prefix}:CONNECTED", timeout=1) == 1, timeout=15,
                   what="CONNECTED back to 1")
        eventually(lambda: read(f"{prefix}:DISK:_:PERCENT")["severity"] == MINOR, timeout=5,
                   what="the disk PV valid again")
        assert read(f"{prefix}:HOST:CPU")["severity"] != INVALID
        assert the_ioc.proc.poll() is None, the_ioc.log()
    finally:
        snaps.close()
        svc.stop()
    assert the_ioc.stop() == 0, the_ioc.log()


def test_two_services_behind_one_ioc(serve, spawn, ioc):
    pa, pb = f"iocA{os.getpid()}", f"iocB{os.getpid()}"
    spawn(pa, "/bin/sleep", "600")
    a = serve("--processes", f"{pa}:1", "--interfaces", "lo", "--rate", "4", "--allow-configure")
    b = serve("--processes", f"{pb}:2", "--interfaces", "lo", "--rate", "4")
    prefix = f"ODST{os.getpid()}-2"
    the_ioc = ioc("--prefix", prefix, "--pub", f"a={a.pub}", "--ctrl", f"a={a.ctrl}",
                  "--pub", f"b={b.pub}")
    for name in ("a", "b"):
        eventually(lambda: epics.caget(f"{prefix}:{name}:CONNECTED", timeout=1) == 1,
                   timeout=30, what=f"{prefix}:{name}:CONNECTED\n{the_ioc.log()}")
    assert epics.caget(f"{prefix}:a:PROC:{pa}:STATE", as_string=True) == "ok"
    assert epics.caget(f"{prefix}:b:PROC:{pb}:STATE", as_string=True) == "missing"
    assert epics.caget(f"{prefix}:a:PROC:{pa}:EXPECTED") == 1
    assert epics.caget(f"{prefix}:b:PROC:{pb}:EXPECTED") == 2
    # pvAccess serves the same records, with their alarms.
    pva = pytest.importorskip("p4p.client.thread",
                              reason="p4p is not installed (run-tests.sh installs it)")
    ctx = pva.Context("pva")  # EPICS_PVA_* from epics_env
    try:
        state = ctx.get(f"{prefix}:b:PROC:{pb}:STATE", timeout=5)
        assert (str(state), state.severity) == ("missing", MAJOR), state
        assert ctx.get(f"{prefix}:a:CONNECTED", timeout=5).raw.value.index == 1
    finally:
        ctx.close()
    # Each set is its own service's: neither has the other's process.
    assert epics.caget(f"{prefix}:a:PROC:{pb}:STATE", timeout=1, connection_timeout=1) is None
    assert epics.caget(f"{prefix}:b:CYCLE") > 0 and epics.caget(f"{prefix}:a:CYCLE") > 0

    # An item added later gets no PVs until a restart: said once, nothing breaks.
    with StatusClient(a.ctrl) as client:
        client.configure({"processes": {"add": ["late"]}})
    eventually(lambda: "process_summary/late appeared after the IOC started" in the_ioc.log(),
               what=f"the new item logged\n{the_ioc.log()}")
    assert epics.caget(f"{prefix}:a:PROC:late:STATE", timeout=1, connection_timeout=1) is None
    assert the_ioc.log().count("process_summary/late appeared") == 1
    assert the_ioc.proc.poll() is None and epics.caget(f"{prefix}:a:CONNECTED") == 1


def test_bad_use_is_told_in_a_sentence():
    def run(*args, block_softioc=False):
        code = ("import sys\n"
                + ("sys.modules['softioc'] = None\n" if block_softioc else "")
                + "import odin_status, odin_status.ioc\n"
                "sys.exit(odin_status.ioc.main(sys.argv[1:]))\n")
        return subprocess.run([sys.executable, "-c", code, *args], capture_output=True,
                              text=True, timeout=30)

    # Importing the package never needs softioc; the command says what is missing.
    r = run("--prefix", "P", "--pub", "tcp://127.0.0.1:1", block_softioc=True)
    assert r.returncode == 2 and "odin-status-client[epics]" in r.stderr, r.stderr
    for args, words in [
        (("--prefix", "P"), "give at least one --pub"),
        (("--prefix", "P", "--pub", "nonsense"), "must be a ZeroMQ endpoint"),
        (("--prefix", "P", "--pub", "tcp://no-port"), "must be a ZeroMQ endpoint"),
        (("--prefix", "P", "--pub", "a=tcp://h:1", "--pub", "tcp://h:3"), "needs a NAME="),
        (("--prefix", "P", "--pub", "a b=tcp://h:1"), "only letters, digits"),
        (("--prefix", "P", "--pub", "tcp://h:1", "--stale-after", "0"), "above 0 seconds"),
        (("--prefix", "BL.99", "--pub", "tcp://h:1"), "not a usable PV prefix"),
    ]:
        r = run(*args)
        assert r.returncode == 2 and words in r.stderr, (args, r.stderr)
        assert "Traceback" not in r.stderr


def test_odd_trees_never_stop_it(tmp_path, ioc):
    """A publisher the test controls sends a tree whose leaves have the wrong
    types, then a good one: the IOC marks the odd values INVALID and carries
    on; silent for --stale-after seconds, everything goes INVALID."""
    import zmq

    good = {"disk": {"_": {"percent": 42.5, "free": 10, "total": 20, "time_to_full": None}},
            "network": {}, "process": {}, "process_summary": {},
            "host": {"cpu_percent": 1.5, "memory_percent": 2.5, "load_average": [0.5, 0, 0],
                     "uptime": 100.0},
            "monitor": {"update_interval": 0.2}}
    odd = {"disk": {"_": {"percent": "full", "free": [1], "total": True}},
           "network": [], "process_summary": "none", "host": {"load_average": []},
           "monitor": {"update_interval": "fast"}}
    sock = zmq.Context.instance().socket(zmq.PUB)
    sock.linger = 0
    pub = f"ipc://{tmp_path}/pub"
    sock.bind(pub)
    sending = {"tree": good, "on": True}
    stop_sending = threading.Event()

    def send():
        cycle = 0
        while not stop_sending.wait(0.2):
            if sending["on"]:
                cycle += 1
                sock.send_json({"msg_type": "notify", "msg_val": "status", "id": cycle,
                                "timestamp": datetime.now().isoformat(),
                                "params": sending["tree"]})

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    prefix = f"ODST{os.getpid()}-3"
    the_ioc = ioc("--prefix", prefix, "--pub", pub, "--stale-after", "1")
    try:
        eventually(lambda: epics.caget(f"{prefix}:DISK:_:PERCENT", timeout=1) == 42.5,
                   timeout=30, what=f"{prefix}:DISK:_:PERCENT\n{the_ioc.log()}")
        sending["tree"] = odd
        eventually(lambda: read(f"{prefix}:DISK:_:PERCENT")["severity"] == INVALID,
                   what="the odd percent INVALID")
        for name in ("DISK:_:FREE", "DISK:_:TOTAL", "HOST:LOAD1", "HOST:CPU"):
            md = read(f"{prefix}:{name}")
            assert (md["severity"], md["status"]) == (INVALID, UDF_ALARM), (name, md)
        assert read(f"{prefix}:DISK:_:PERCENT")["value"] == 42.5  # the last value stays
        assert epics.caget(f"{prefix}:CONNECTED") == 1
        sending["tree"] = good
        eventually(lambda: read(f"{prefix}:DISK:_:PERCENT")["severity"] == NO_ALARM,
                   what="the percent valid again")
        # Silent past --stale-after (1 s): INVALID, TIMEOUT.
        sending["on"] = False
        stopped = time.monotonic()
        eventually(lambda: read(f"{prefix}:HOST:CPU")["status"] == TIMEOUT_ALARM, timeout=10,
                   what="the PVs INVALID after 1 s of silence")
        assert 1.0 - 0.3 <= time.monotonic() - stopped < 1.0 + 3.0
        assert epics.caget(f"{prefix}:CONNECTED") == 0
        assert the_ioc.proc.poll() is None and "Traceback" not in the_ioc.log(), the_ioc.log()
    finally:
        stop_sending.set()
        sender.join(2)
        sock.close()
