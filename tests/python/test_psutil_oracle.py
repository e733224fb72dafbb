"""The service's numbers against psutil's, read on the same host at the same time."""

import os
import time

import psutil

from conftest import BIN, eventually


def disk_key(path):
    return path.replace("/", "_")


def test_disk_usage_matches_psutil(serve):
    svc = serve("--disks", "/,/tmp", "--interfaces", "lo", "--rate", "20")
    for path in ["/", "/tmp"]:
        # Other writers can move used/free between two reads; the formula is
        # right when some read agrees exactly.
        def agrees():
            before = psutil.disk_usage(path)
            time.sleep(0.1)  # at least one fresh cycle
            ours = svc.value(f"disk/{disk_key(path)}")
            after = psutil.disk_usage(path)
            # psutil's four come first and equal; odin-status appends its own.
            return before == after and dict(list(ours.items())[:4]) == before._asdict()

        eventually(agrees, timeout=10, what=f"disk {path} to agree with psutil")


def test_disk_percent_is_a_float_with_one_decimal(serve):
    svc = serve("--disks", "/", "--interfaces", "lo")
    percent = svc.value("disk/_/percent")["value"]
    assert isinstance(percent, float)
    assert round(percent, 1) == percent


def test_network_counters_match_psutil(serve):
    svc = serve("--interfaces", ",".join(psutil.net_io_counters(pernic=True)), "--rate", "20")
    fields = ["bytes_sent", "bytes_recv", "packets_sent", "packets_recv",
              "errin", "errout", "dropin", "dropout"]
    for nic in psutil.net_io_counters(pernic=True):
        before = psutil.net_io_counters(pernic=True)[nic]
        time.sleep(0.15)  # the service samples after `before`
        ours = svc.value(f"network/{nic}")
        after = psutil.net_io_counters(pernic=True)[nic]
        assert list(ours)[:len(fields)] == fields  # then odin-status's own leaves
        for field in fields:
            assert getattr(before, field) <= ours[field] <= getattr(after, field), (nic, field)


def test_process_memory_and_affinity_match_psutil(serve, spawn):
    name = f"odstmem{os.getpid()}"
    helper = spawn(name, "/bin/sleep", "600")
    os.sched_setaffinity(helper.pid, {0})
    svc = serve("--processes", name, "--interfaces", "lo", "--rate", "10")
    key = str(helper.pid)
    eventually(lambda: key in svc.value(f"process/{name}"), what="helper in the tree")
    ours = svc.value(f"process/{name}/{key}")
    proc = psutil.Process(helper.pid)
    mem = proc.memory_info()
    assert ours["memory_rss"] == mem.rss
    assert ours["memory_vms"] == mem.vms
    assert ours["memory_shared"] == mem.shared
    assert ours["memory_percent"] == proc.memory_percent()
    assert ours["cpu_affinity"] == proc.cpu_affinity() == [0]
    assert ours["cpu_percent"] == 0.0  # an idle sleep


def test_busy_process_cpu_percent_agrees_with_psutil(serve, spawn):
    name = f"odstspin{os.getpid()}"
    busy = spawn(name, "/bin/sh", "-c", "while :; do :; done")
    svc = serve("--processes", name, "--interfaces", "lo", "--rate", "2")
    proc = psutil.Process(busy.pid)
    path = f"process/{name}/{busy.pid}/cpu_percent"
    eventually(lambda: svc.value(path)["value"] > 0, what="a second sample")
    ours = []
    theirs = []
    for _ in range(3):
        theirs.append(proc.cpu_percent(interval=1.0))
        ours.append(svc.value(path)["value"])
    mean_ours = sum(ours) / len(ours)
    mean_theirs = sum(theirs) / len(theirs)
    assert mean_theirs > 20, theirs  # busy (the bar is low: a loaded host shares the core)
    assert abs(mean_ours - mean_theirs) < 20, (ours, theirs)


def is_odin_status(proc):
    """An odin-status process (its comm, or the very binary under test), which
    the service never matches: another test's service or `watch` among them."""
    try:
        if proc.name() == "odin-status":
            return True
        return os.path.samefile(proc.exe(), BIN)
    except (psutil.Error, OSError):
        return False


def expected_pids(name, exclude):
    """The issue's matching rule, computed with psutil."""
    bad = {psutil.STATUS_ZOMBIE, psutil.STATUS_STOPPED, psutil.STATUS_DEAD}
    reported = []
    for proc in psutil.process_iter(["name", "cmdline", "status"]):
        if proc.pid == exclude or is_odin_status(proc):
            continue
        info = proc.info
        args = info["cmdline"] or []
        if not (name in (info["name"] or "") or any(name in a for a in args)):
            continue
        if info["status"] in bad:
            continue
        try:
            kids = sorted(
                (c for c in proc.children()
                 if c.status() not in bad and c.pid != exclude and not is_odin_status(c)),
                key=lambda c: c.pid,
            )
        except psutil.Error:
            continue
        pid = kids[0].pid if kids else proc.pid
        if pid not in reported:
            reported.append(pid)
    return sorted(reported)


def test_matching_agrees_with_psutil_rule(serve, spawn, tmp_path):
    tag = f"odstmatch{os.getpid()}"
    spawn(tag + "a", "/bin/sleep", "600")
    spawn(tag + "b", "/bin/sleep", "600")
    script = tmp_path / f"{tag}.sh"
    script.write_text("#!/bin/sh\nsleep 600 &\nwait\n")
    script.chmod(0o755)
    spawn(f"{tag}wrap.sh", str(script))
    names = [tag, "sleep", "python"]
    svc = serve("--processes", ",".join(names), "--interfaces", "lo", "--rate", "10")
    for name in names:
        def agrees():
            before = expected_pids(name, svc.proc.pid)
            ours = sorted(int(p) for p in svc.value(f"process/{name}"))
            after = expected_pids(name, svc.proc.pid)
            return ours in (before, after)
        eventually(agrees, timeout=10, what=f"{name} to match psutil's rule")
    assert len(svc.value(f"process/{tag}")) == 3
