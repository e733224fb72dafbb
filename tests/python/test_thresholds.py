"""Limits for real: a child that burns CPU crosses process_cpu_warn, an `alarm`
notify arrives on the PUB socket and the tree shows the severity; when it stops
burning it returns to ok, and when it exits the alarm is cleared as gone. A
disk over a tiny limit is minor, and psutil agrees with the value reported.
"""

import json
import subprocess
import sys
import time

import psutil
import zmq

from conftest import eventually

# Idles until the file argv[1]/go exists, burns CPU until argv[1]/stop exists,
# then sleeps: one PID throughout, no children.
BURNER = """
import os, sys, time
while not os.path.exists(os.path.join(sys.argv[1], "go")):
    time.sleep(0.05)
while not os.path.exists(os.path.join(sys.argv[1], "stop")):
    pass
time.sleep(600)
"""


def start_burner(tmp_path, marker):
    """A burner whose argument holds `marker`; touch <dir>/go and <dir>/stop to steer it."""
    steer = tmp_path / marker
    steer.mkdir()
    return subprocess.Popen([sys.executable, "-c", BURNER, str(steer)]), steer


def subscriber(svc):
    sub = zmq.Context.instance().socket(zmq.SUB)
    sub.linger = 0
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.connect(svc.pub)
    return sub


def next_message(sub, msg_val, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sub.poll(200):
            msg = json.loads(sub.recv())
            if msg["msg_val"] == msg_val:
                return msg
    raise AssertionError(f"no {msg_val} message within {timeout} s")


def test_busy_process_raises_and_clears_an_alarm(serve, tmp_path):
    marker = f"odin-status-burner-{time.monotonic_ns()}"
    burner, steer = start_burner(tmp_path, marker)
    try:
        svc = serve("--interfaces", "lo", "--processes", marker, "--rate", "5",
                    "--threshold", "process_cpu_warn=30", "--threshold", "process_cpu_alarm=1000")
        sub = subscriber(svc)
        try:
            path = f"process/{marker}/{burner.pid}"
            next_message(sub, "status")  # subscribed: nothing is missed from here
            assert svc.value(f"{path}/severity")["value"] == "ok"
            (steer / "go").touch()
            alarm = next_message(sub, "alarm")
            p = alarm["params"]
            assert (p["path"], p["severity"], p["previous"]) == (path, "minor", "ok"), p
            assert (p["leaf"], p["limit"], p["threshold"], p["gone"]) == \
                ("cpu_percent", 30.0, "process_cpu_warn", False), p
            assert p["value"] >= 30.0
            # psutil sees it burning too.
            assert psutil.Process(burner.pid).cpu_percent(interval=0.5) >= 30.0
            snap = next_message(sub, "status")
            assert snap["id"] >= alarm["id"]
            assert snap["params"]["process"][marker][str(burner.pid)]["severity"] == "minor"
            # The odin keys are all there, severity after them.
            assert list(snap["params"]["process"][marker][str(burner.pid)]) == [
                "cpu_percent", "cpu_affinity", "memory_percent", "memory_rss", "memory_vms",
                "memory_shared", "severity"]

            (steer / "stop").touch()
            back = next_message(sub, "alarm")["params"]
            assert (back["path"], back["severity"], back["previous"]) == (path, "ok", "minor"), back
            assert back["value"] < 30.0 and back["limit"] is None and not back["gone"], back
            eventually(lambda: svc.value(f"{path}/severity")["value"] == "ok",
                       what="severity ok in the tree")
        finally:
            sub.close()
    finally:
        burner.kill()
        burner.wait()


def test_an_exiting_alarmed_process_is_cleared_as_gone(serve, tmp_path):
    marker = f"odin-status-burner-gone-{time.monotonic_ns()}"
    burner, steer = start_burner(tmp_path, marker)
    try:
        svc = serve("--interfaces", "lo", "--processes", marker, "--rate", "5",
                    "--threshold", "process_cpu_alarm=30")
        sub = subscriber(svc)
        try:
            next_message(sub, "status")
            (steer / "go").touch()
            raised = next_message(sub, "alarm")["params"]
            assert raised["severity"] == "major" and raised["threshold"] == "process_cpu_alarm"
            burner.kill()
            burner.wait()
            gone = next_message(sub, "alarm")["params"]
            assert gone["path"] == raised["path"]
            assert (gone["severity"], gone["previous"], gone["gone"]) == ("ok", "major", True), gone
            assert gone["value"] is None and gone["leaf"] == "cpu_percent"
            assert svc.value(f"process/{marker}") == {}
        finally:
            sub.close()
    finally:
        burner.kill()
        burner.wait()


def test_disk_over_a_tiny_limit(serve, tmp_path):
    svc = serve("--disks", f"/,{tmp_path}", "--interfaces", "lo",
                "--threshold", "disk_percent_warn=0.0001",
                "--threshold", "disk_percent_alarm=99.99")
    disk = svc.value("disk")
    key = str(tmp_path).replace("/", "_")
    for k in ["_", key]:
        percent = disk[k]["percent"]
        expected = "major" if percent >= 99.99 else "minor" if percent >= 0.0001 else "ok"
        assert disk[k]["severity"] == expected, disk[k]
    assert abs(disk["_"]["percent"] - psutil.disk_usage("/").percent) < 0.5
    # Nodes without a limit keep their odin shape.
    assert "severity" not in svc.value("network/lo")
