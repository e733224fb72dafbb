"""odin_status.odin_control.StatusAdapter in real odin-control servers, 1.6.2 and 2.1.0.

Each test writes one config file, starts odin-status from it (`serve --config`)
and an unmodified odin-control server from it (`odin_control --config`), with
odin-control's own SystemStatusAdapter loaded in the same server as the oracle,
and asks both over HTTP. run-tests.sh makes a venv per odin-control version and
installs the odin_status package in each.
"""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from conftest import REPO, Service, eventually
from test_odin_oracle import check_odin_part

ENTRY = {
    1: os.environ.get("ODIN_CONTROL_1", str(REPO / ".venv-odin1" / "bin" / "odin_control")),
    2: os.environ.get("ODIN_CONTROL_2", str(Path(sys.executable).parent / "odin_control")),
}
ORACLE = {1: "odin.adapters.system_status.SystemStatusAdapter",
          2: "odin_control.adapters.system_status.SystemStatusAdapter"}
# A process only these tests run (through a link of this name to sleep).
PROBE = "odinadapterprobe"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method, url, metadata=False):
    """(status, decoded body) of one request; a body that is not JSON comes back as text."""
    headers = {"Accept": "application/json;metadata=true"} if metadata else {}
    data = None
    if method in ("PUT", "POST"):
        data, headers["Content-Type"] = b"{}", "application/json"
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as reply:
            status, body = reply.status, reply.read()
    except urllib.error.HTTPError as e:
        status, body = e.code, e.read()
    try:
        return status, json.loads(body)
    except ValueError:
        return status, body.decode(errors="replace")


class OdinServer:
    """`odin_control --config FILE` of one version, on the port the file gives."""

    def __init__(self, major, config, port, api_version):
        entry = ENTRY[major]
        if not os.access(entry, os.X_OK):
            pytest.skip(f"odin-control {major}.x is not installed at {entry}; "
                        "./run-tests.sh makes its venv")
        self.api = f"http://127.0.0.1:{port}/api" + ("/0.1" if api_version else "")
        self.log = open(config.with_suffix(f".odin{major}.log"), "wb")
        self.proc = subprocess.Popen([entry, "--config", str(config)],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if http("GET", f"{self.api}/adapters")[0] == 200:
                    return
            except OSError:
                pass
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"odin-control {major}.x did not serve: "
                           f"{config.with_suffix(f'.odin{major}.log').read_text()}")

    def get(self, adapter, path, metadata=False):
        return http("GET", f"{self.api}/{adapter}/{path}", metadata)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


class Site:
    """One config file for odin-status and odin-control, and what runs from it."""

    def __init__(self, tmp_path, major, status_keys, api_version=True, oracle=True):
        self.tmp_path, self.major = tmp_path, major
        self.port = free_port()
        self.config = tmp_path / f"odin{major}.cfg"
        adapters = "status, sys" if oracle else "status"
        text = "[server]\nhttp_addr = 127.0.0.1\n" \
            f"http_port = {self.port}\nadapters = {adapters}\n"
        if api_version:
            text += "api_version = 0.1\n"
        text += "\n[adapter.status]\nmodule = odin_status.odin_control.StatusAdapter\n"
        text += "".join(f"{k} = {v}\n" for k, v in status_keys.items())
        if oracle:
            text += f"\n[adapter.sys]\nmodule = {ORACLE[major]}\n" \
                f"disks = /\ninterfaces = lo\nprocesses = {PROBE}\n"
        self.config.write_text(text)
        self.services = []
        self.odin = None

    def service(self, ctrl, pub):
        """odin-status serve --config FILE, on the endpoints given."""
        where = self.tmp_path / f"svc{len(self.services)}"
        where.mkdir(exist_ok=True)
        svc = Service(where, "--config", str(self.config), ctrl=ctrl, pub=pub)
        self.services.append(svc)
        return svc

    def start_odin(self, api_version=True):
        self.odin = OdinServer(self.major, self.config, self.port, api_version)
        return self.odin

    def stop(self):
        if self.odin is not None:
            self.odin.stop()
        for svc in self.services:
            svc.stop()


@pytest.fixture
def site(tmp_path, spawn):
    spawn(PROBE, "/bin/sleep", "120")
    made = []

    def make(*args, **kwargs):
        where = tmp_path / f"site{len(made)}"
        where.mkdir()
        s = Site(where, *args, **kwargs)
        made.append(s)
        return s

    yield make
    for s in made:
        s.stop()


def tcp_pair():
    return f"tcp://127.0.0.1:{free_port()}", f"tcp://127.0.0.1:{free_port()}"


def single(site, major, api_version=True):
    ctrl, pub = tcp_pair()
    s = site(major, {"endpoint": ctrl, "disks": "/", "interfaces": "lo",
                     "processes": PROBE, "rate": "5"}, api_version=api_version)
    svc = s.service(ctrl, pub)
    odin = s.start_odin(api_version)
    prefix = "status/" if major == 1 else ""
    eventually(lambda: odin.get("status", prefix + "disk")[0] == 200, timeout=15,
               what="the adapter's first snapshot")
    return s, svc, odin


def probe_pid(svc):
    pids = eventually(lambda: list(svc.value(f"process/{PROBE}")), what="the probe process")
    assert len(pids) == 1, pids
    return pids[0]


def unwrapped(odin, major, path):
    """(status, body) of a GET of the adapter, without 1.x's wrapping in the last name."""
    status, body = odin.get("status", path)
    if major == 1 and status == 200 and path:
        body = body[path.rstrip("/").rsplit("/", 1)[-1]]
    return status, body


def check_silent(odin, major, conn_path, data_path, endpoint, stopped):
    """After a service stopped (at monotonic time ``stopped``): its connection says so
    and why, a GET into its tree is a 400 naming it, and GETs stay fast. Returns the
    whole tree then, for the caller to check that nothing of it is left."""
    down = eventually(lambda: (c := unwrapped(odin, major, conn_path)[1])["connected"] is False
                      and c, timeout=10, what="connected false")
    assert time.monotonic() - stopped >= 1.5, "stale before 3 intervals (at least 2 s)"
    assert " s (since " in down["error"] and endpoint in down["error"], down
    assert isinstance(down["cycle"], int) and down["age"] >= 2.0  # the last snapshot's
    status, body = odin.get("status", data_path)
    assert status == 400 and endpoint in body["error"] and " s (since " in body["error"], body
    slowest = 0.0
    for _ in range(20):
        t0 = time.perf_counter()
        status, whole = odin.get("status", "")
        slowest = max(slowest, time.perf_counter() - t0)
        assert status == 200
    assert slowest < 0.5, f"a GET took {slowest:.3f} s while the service was down"
    print(f"slowest of 20 GETs while {endpoint} was down: {slowest * 1000:.1f} ms")
    return whole


# -- odin-control 2.1.0 -------------------------------------------------------

PATHS_2 = ["", "disk", "disk/", "disk/_", "disk/_/total", "network", "network/lo",
           "network/lo/bytes_recv", "process", f"process/{PROBE}"]
INVALID_2 = ["nope", "disk/_nope", "disk//_", "Disk", "network/eth99", "disk/_/total/x",
             "disk/_/total/0"]


@pytest.mark.parametrize("api_version", [True, False], ids=["api_version", "no_api_version"])
def test_odin_control_2_answers_as_its_system_status_adapter(site, api_version):
    s, svc, odin = single(site, 2, api_version)
    pid = probe_pid(svc)
    paths = PATHS_2 + [f"process/{PROBE}/{pid}", f"process/{PROBE}/{pid}/cpu_affinity",
                       f"process/{PROBE}/{pid}/cpu_affinity/0"]
    for metadata in (False, True):
        for path in paths:
            status, ours = odin.get("status", path, metadata)
            oracle_status, theirs = odin.get("sys", path, metadata)
            assert (status, oracle_status) == (200, 200), (path, ours, theirs)
            if path == "":
                assert list(ours)[-1] == "connection"
                ours = {k: v for k, v in ours.items() if k != "connection"}
            check_odin_part(ours, theirs, tuple(p for p in path.split("/") if p))
    # The service's values, not another sampling's.
    assert odin.get("status", "disk/_/total")[1] == svc.value("disk/_/total")
    assert list(odin.get("status", f"process/{PROBE}")[1]) == [pid]
    # Invalid paths: odin's status code and odin's text.
    for path in INVALID_2:
        assert odin.get("status", path) == odin.get("sys", path), path
    # Where odin's own tree raises a TypeError (an HTTP 500), a sentence instead.
    below = f"process/{PROBE}/{pid}/cpu_affinity/0/0"
    assert odin.get("sys", below)[0] == 500
    assert odin.get("status", below) == (400, {"error": f"Invalid path: {below}"})
    # connection, and nothing may be written.
    status, conn = odin.get("status", "connection")
    assert status == 200 and conn["connected"] is True and conn["error"] is None
    assert conn["endpoint"] == svc.ctrl and isinstance(conn["cycle"], int) and conn["age"] < 2
    status, meta = odin.get("status", "connection/connected", metadata=True)
    assert meta == {"value": True, "writeable": False, "type": "bool"}
    for method in ("PUT", "DELETE", "POST"):
        status, body = http(method, f"{odin.api}/status/disk")
        assert status == 405 and "read-only" in body["error"], (method, status, body)
    assert "StatusAdapter" in json.dumps(http("GET", f"{odin.api}/adapters")[1])


# -- odin-control 1.6.2 -------------------------------------------------------

PATHS_1 = ["", "status", "status/", "status/disk", "status/disk/_", "status/disk/_/total",
           "status/network", "status/network/lo", "status/network/lo/bytes_recv",
           "status/process"]
INVALID_1 = ["nope", "status/nope", "status/disk/_nope", "status/disk/_/total/x", "Status"]


def unwrap_1(answer, path):
    """odin 1.x wraps each answer in its last path element's name; the part and its place."""
    parts = [p for p in path.split("/") if p] or ["status"]
    assert list(answer)[:1] == [parts[-1]], (path, answer)
    return answer[parts[-1]], tuple(parts[1:])


def test_odin_control_1_answers_as_its_system_status_adapter(site):
    s, svc, odin = single(site, 1)
    pid = probe_pid(svc)
    for metadata in (False, True):  # 1.x's adapter gives no metadata; neither do we
        for path in PATHS_1:
            status, ours = odin.get("status", path, metadata)
            oracle_status, theirs = odin.get("sys", path, metadata)
            assert (status, oracle_status) == (200, 200), (path, ours, theirs)
            if path == "":
                assert list(ours) == ["status", "connection"]
            ours, where = unwrap_1(ours, path)
            theirs, _ = unwrap_1(theirs, path)
            check_odin_part(ours, theirs, where)
    assert odin.get("status", "status/disk/_/total")[1] == {"total": svc.value("disk/_/total")["value"]}
    assert list(odin.get("status", f"status/process/{PROBE}")[1][PROBE]) == [pid]
    for path in INVALID_1:
        assert odin.get("status", path) == odin.get("sys", path), path
    # odin 1.x's tree raises a TypeError below a number (an HTTP 500); we answer a sentence.
    assert odin.get("sys", "status/disk/_/total/0")[0] == 500
    assert odin.get("status", "status/disk/_/total/0") == (
        400, {"error": "Invalid path: status/disk/_/total/0"})
    status, conn = odin.get("status", "connection/connected")
    assert (status, conn) == (200, {"connected": True})
    for method in ("PUT", "DELETE"):
        status, body = http(method, f"{odin.api}/status/status/disk")
        assert status == 405 and "read-only" in body["error"], (method, status, body)

    svc.stop()
    whole = check_silent(odin, 1, "connection", "status/disk/_/total", svc.ctrl, time.monotonic())
    assert list(whole) == ["connection"], "no stale values in the tree"
    svc = s.service(svc.ctrl, svc.pub)
    eventually(lambda: odin.get("status", "status/disk/_/total")[0] == 200, timeout=15,
               what="the tree to return")
    assert odin.get("status", "connection/connected")[1] == {"connected": True}


# -- several services -----------------------------------------------------------

@pytest.mark.parametrize("major", [2, 1])
def test_two_targets(site, major):
    (ctrl1, pub1), (ctrl2, pub2) = tcp_pair(), tcp_pair()
    s = site(major, {"targets": f"daq1={ctrl1}, daq2={ctrl2}", "disks": "/",
                     "interfaces": "lo", "processes": f"{PROBE}:1", "rate": "5",
                     "disk_percent_warn": "0"}, oracle=False)
    s.service(ctrl1, pub1)
    svc2 = s.service(ctrl2, pub2)
    odin = s.start_odin()
    inner = "/status" if major == 1 else ""

    def get(path):
        return unwrapped(odin, major, path)

    summary = eventually(lambda: (b := get("summary")[1])["connected"] == 2 and b,
                         timeout=15, what="both targets")
    assert summary["targets"] == 2
    assert summary["severity"] == "minor"  # every disk is at or above 0 %
    assert summary["process"] == {PROBE: {"count": 2, "expected": 2}}
    for name, ctrl in (("daq1", ctrl1), ("daq2", ctrl2)):
        assert get(f"{name}{inner}/disk/_/total")[0] == 200
        conn = get(f"connection/{name}")[1]
        assert conn["endpoint"] == ctrl and conn["connected"] is True
    assert list(get("")[1]) == ["daq1", "daq2", "connection", "summary"]

    svc2.stop()
    whole = check_silent(odin, major, "connection/daq2", f"daq2{inner}/disk", ctrl2,
                         time.monotonic())
    assert list(whole) == ["daq1", "connection", "summary"], "no stale values in the tree"
    assert get(f"daq1{inner}/disk/_/total")[0] == 200
    summary = get("summary")[1]
    assert summary["connected"] == 1 and summary["process"] == {PROBE: {"count": 1, "expected": 1}}
    s.service(ctrl2, pub2)
    eventually(lambda: get(f"daq2{inner}/disk/_/total")[0] == 200, timeout=15,
               what="daq2's tree to return")
    assert get("summary")[1]["connected"] == 2


# -- the section's keys, and the package without odin-control -------------------

def test_importing_odin_status_never_needs_odin_control():
    hide = "import sys; sys.modules['odin_control'] = sys.modules['odin'] = None; "
    ok = subprocess.run([sys.executable, "-c", hide + "import odin_status; print('ok')"],
                        capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0 and ok.stdout.strip() == "ok", ok.stderr
    adapter = subprocess.run([sys.executable, "-c", hide + "import odin_status.odin_control"],
                             capture_output=True, text=True, timeout=60)
    assert adapter.returncode != 0
    assert "needs odin-control installed" in adapter.stderr, adapter.stderr


@pytest.mark.parametrize("options, expected", [
    ({"endpoint": "tcp://daq1:5040"}, [(None, "tcp://daq1:5040", None)]),
    ({"endpoint": "tcp://daq1:5040", "pub": "tcp://daq1:6000"},
     [(None, "tcp://daq1:5040", "tcp://daq1:6000")]),
    # No endpoint: the service's own ctrl_endpoint from the same section, reached on loopback.
    ({"ctrl_endpoint": "tcp://0.0.0.0:5050"}, [(None, "tcp://127.0.0.1:5050", None)]),
    ({}, [(None, "tcp://127.0.0.1:5040", None)]),
    ({"targets": "daq1=tcp://daq1:5040, daq2=tcp://daq2:5040", "pub": "daq2=tcp://daq2:6000"},
     [("daq1", "tcp://daq1:5040", None), ("daq2", "tcp://daq2:5040", "tcp://daq2:6000")]),
])
def test_targets_from_the_section(options, expected):
    from odin_status.odin_control import targets_from_options
    assert [(t.name, t.endpoint, t.pub) for t in targets_from_options(options)] == expected


@pytest.mark.parametrize("options, says", [
    ({"endpoint": "daq1:5040"}, "'endpoint' must be a ZeroMQ endpoint"),
    ({"targets": "daq1"}, "'targets' takes name=endpoint pairs"),
    ({"targets": "connection=tcp://a:1"}, "cannot name a target"),
    ({"targets": "daq-1=tcp://a:1"}, "cannot name a target"),  # not a PV name part
    ({"targets": "a=tcp://a:1, a=tcp://b:1"}, "'a' is named twice"),
    ({"targets": "a=tcp://a:1", "endpoint": "tcp://a:1"}, "not both"),
    ({"targets": "a=tcp://a:1", "pub": "b=tcp://b:1"}, "not one of the targets"),
])
def test_a_bad_section_is_answered_with_a_sentence(options, says):
    from odin_control.adapters.request import ApiAdapterRequest
    from odin_status.odin_control import ConfigError, StatusAdapter, targets_from_options
    with pytest.raises(ConfigError, match=says):
        targets_from_options(options)
    # The server keeps running; every GET says what is wrong.
    adapter = StatusAdapter(**options)
    try:
        reply = adapter.get("disk", ApiAdapterRequest(None))
        assert reply.status_code == 400
        assert reply.data["error"].startswith("The odin-status adapter cannot run: ")
        assert says in reply.data["error"]
    finally:
        adapter.cleanup()
