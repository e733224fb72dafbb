"""process_summary totals against psutil, for processes with known threads and
open files; process_event messages through the Python client; and what an
unprivileged service reports for another user's descriptors."""

import json
import os
import pwd
import sys
import time

import psutil
import pytest
from odin_status import StatusSubscriber

from conftest import eventually

# Three extra threads and seven extra open files, then sleep.
HELPER = """
import threading, time
files = [open("/dev/null") for _ in range(7)]
for _ in range(3):
    threading.Thread(target=time.sleep, args=(600,), daemon=True).start()
time.sleep(600)
"""


def psutil_totals(pids):
    procs = [psutil.Process(pid) for pid in pids]
    return {
        "num_threads": sum(p.num_threads() for p in procs),
        "num_fds": sum(p.num_fds() for p in procs),
        "memory_rss": sum(p.memory_info().rss for p in procs),
        "oldest": min(p.create_time() for p in procs),
    }


def test_totals_are_psutils_sums(serve, spawn):
    name = f"odstsum{os.getpid()}"
    python = spawn(name, sys.executable, "-c", HELPER)
    sleeper = spawn(f"{name}-sleep", "/bin/sleep", "600")
    svc = serve("--processes", f"{name}:1", "--interfaces", "lo", "--rate", "10")
    pids = {python.pid, sleeper.pid}
    # Both matched, the helper's threads started.
    eventually(lambda: {int(p) for p in svc.value(f"process/{name}")} == pids
               and psutil.Process(python.pid).num_threads() == 4, what="both processes")

    def agree():
        ours = svc.value(f"process_summary/{name}")
        theirs = psutil_totals(pids)
        same = all(ours[k] == theirs[k] for k in ("num_threads", "num_fds", "memory_rss"))
        return (ours, theirs) if same else None

    ours, theirs = eventually(agree, what="totals equal to psutil's")
    assert ours["num_threads"] == 4 + 1
    assert ours["num_fds"] >= 7 + 2 * 3
    assert (ours["count"], ours["expected"], ours["state"]) == (2, 1, "extra")
    assert abs(ours["uptime"] - (time.time() - theirs["oldest"])) < 1.5
    assert isinstance(ours["cpu_percent"], float)


def test_events_reach_the_python_client(serve, spawn):
    name = f"odstevent{os.getpid()}"
    svc = serve("--processes", name, "--interfaces", "lo", "--rate", "10")
    with StatusSubscriber(svc.pub, timeout=5) as sub:
        assert sub.receive() is not None  # subscribed from here on
        helper = spawn(name, "/bin/sleep", "600")
        started = None
        while started is None:
            event = sub.receive(statuses_only=False)
            assert event is not None, "no started event within 5 s"
            if event.msg_val == "process_event" and event.tree["pid"] == helper.pid:
                assert event.tree["event"] == "started", event
                started = event
        assert started.missed == 0
        assert set(started.tree) == {"name", "pid", "event", "time"}
        assert started.tree["name"] == name
        created = psutil.Process(helper.pid).create_time()
        stamp = time.mktime(time.strptime(started.tree["time"][:19], "%Y-%m-%dT%H:%M:%S"))
        assert abs(stamp + float("0." + started.tree["time"][20:]) - created) < 1.0


def test_unprivileged_service_cannot_count_another_users_fds(spawn, serve_as_nobody):
    name = f"odstfds{os.getpid()}"
    helper = spawn(name, "/bin/sleep", "600")
    svc = serve_as_nobody("--processes", name, "--interfaces", "lo", "--rate", "10")
    summary = eventually(lambda: (s := svc.value(f"process_summary/{name}"))["count"] == 1 and s,
                         what="the root process counted")
    # psutil raises AccessDenied here; the total is unknown, not 0.
    with pytest.raises(psutil.AccessDenied):
        _num_fds_as(helper.pid, "nobody")
    assert summary["num_fds"] is None
    assert summary["num_threads"] == 1
    assert summary["memory_rss"] == psutil.Process(helper.pid).memory_info().rss


def _num_fds_as(pid, user):
    """psutil's num_fds() of `pid` in a child running as `user`; raises
    AccessDenied as psutil does there."""
    uid = pwd.getpwnam(user).pw_uid
    child = os.fork()
    if child == 0:
        try:
            os.setuid(uid)
            psutil.Process(pid).num_fds()
            os._exit(0)
        except psutil.AccessDenied:
            os._exit(13)
        except BaseException:
            os._exit(1)
    _, status = os.waitpid(child, 0)
    if os.waitstatus_to_exitcode(status) == 13:
        raise psutil.AccessDenied(pid)
    return None


def test_new_blocks_and_events_match_the_schemas(serve, spawn):
    from test_vectors import validator
    reply_schema, snapshot_schema = validator("reply"), validator("snapshot")
    name = f"odstschema{os.getpid()}"
    svc = serve("--processes", f"{name}:1", "--interfaces", "lo", "--rate", "10")
    with StatusSubscriber(svc.pub, timeout=5) as sub:
        assert sub.receive() is not None
        helper = spawn(name, "/bin/sleep", "600")
        messages = []
        while not any(m["msg_val"] == "process_event" for m in messages):
            got = sub._socket.poll(5000) and json.loads(sub._socket.recv())
            assert got, "no process_event within 5 s"
            messages.append(got)
        helper.kill()
        helper.wait()
    for msg in messages:
        errors = list(snapshot_schema.iter_errors(msg))
        assert not errors, (errors[0].message, msg)
    event = messages[-1]
    for bad in [{"event": "restarted"}, {"pid": "1"}, {"time": "yesterday"}, {"extra": 1}]:
        assert not snapshot_schema.is_valid({**event, "params": {**event["params"], **bad}}), bad
    # Every leaf of the new blocks, plain and with metadata, as get answers it.
    for path in [f"process_summary/{name}", "monitor"]:
        for leaf in svc.value(path):
            for metadata in (False, True):
                reply = svc.get(f"{path}/{leaf}", metadata)
                errors = list(reply_schema.iter_errors(reply))
                assert not errors, (errors[0].message, reply)
    whole = svc.get("")
    assert reply_schema.is_valid(whole) and reply_schema.is_valid(svc.get("", True))
    whole["params"]["process_summary"][name]["state"] = "fine"
    assert not reply_schema.is_valid(whole)
