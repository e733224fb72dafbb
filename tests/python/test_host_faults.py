"""Faults of the host: a disk that is unmounted or deleted, an interface that
disappears, a service without privileges. Each is absent or reported as it is,
logged once per change, and the rest of the snapshot stays intact.

These tests need root (mount, network namespaces, setpriv); they say why when
they skip.
"""

import os
import shutil
import subprocess
import uuid

import psutil
import pytest

from conftest import Service, eventually

ROOT = os.geteuid() == 0


def run(*cmd):
    return subprocess.run(cmd, capture_output=True, text=True)


def log_lines(path, text):
    try:
        with open(path) as f:
            return [line for line in f if text in line]
    except FileNotFoundError:
        return []


@pytest.mark.skipif(not ROOT, reason="mounting a tmpfs needs root")
def test_unmounted_and_deleted_disks(serve, tmp_path):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    if run("mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mnt)).returncode != 0:
        pytest.skip("this host does not allow mounting a tmpfs")
    gone = tmp_path / "gone"
    gone.mkdir()
    log = tmp_path / "status.log"
    key_mnt, key_gone = str(mnt).replace("/", "_"), str(gone).replace("/", "_")
    try:
        svc = serve("--disks", f"/,{mnt},{gone}", "--interfaces", "lo", "--rate", "20",
                    "--log-file", str(log))
        tree = svc.value("disk")
        assert tree[key_mnt]["total"] == 8 * 1024 * 1024
        assert key_gone in tree

        assert run("umount", str(mnt)).returncode == 0
        # The directory under the mount point is still there: now it reports
        # the file system below, never a stale 8 MiB.
        eventually(lambda: svc.value(f"disk/{key_mnt}/total")["value"] != 8 * 1024 * 1024,
                   what="the unmounted tmpfs to go")
        shutil.rmtree(gone)
        eventually(lambda: key_gone not in svc.value("disk"), what="the deleted path to go")
        tree = svc.value("")
        assert "_" in tree["disk"] and "lo" in tree["network"], "the rest is intact"

        # Many cycles later: logged once, not every cycle.
        eventually(lambda: len(log_lines(log, "cannot be read")) >= 1, what="the warning")
        subprocess.run(["sleep", "1"])
        assert len(log_lines(log, f"disk {gone} cannot be read")) == 1

        gone.mkdir()
        eventually(lambda: key_gone in svc.value("disk"), what="the path to come back")
        eventually(lambda: log_lines(log, f"disk {gone} is back"), what="the note it is back")
    finally:
        run("umount", str(mnt))


@pytest.mark.skipif(not ROOT, reason="network namespaces need root")
def test_interface_that_disappears(tmp_path):
    ns = f"odst{uuid.uuid4().hex[:8]}"
    if run("ip", "netns", "add", ns).returncode != 0:
        pytest.skip("this host does not allow network namespaces")
    nic, peer = f"v{ns[4:]}a", f"v{ns[4:]}b"

    def add():
        r = run("ip", "-n", ns, "link", "add", nic, "type", "veth", "peer", "name", peer)
        assert r.returncode == 0, r.stderr

    log = tmp_path / "status.log"
    svc = None
    try:
        add()
        svc = Service(tmp_path, "--interfaces", f"lo,{nic}", "--rate", "20",
                      "--log-file", str(log), prefix=("ip", "netns", "exec", ns))
        assert set(svc.value("network")) == {"lo", nic}
        assert run("ip", "-n", ns, "link", "del", nic).returncode == 0
        eventually(lambda: nic not in svc.value("network"), what="the interface to go")
        assert "lo" in svc.value("network")
        subprocess.run(["sleep", "1"])
        assert len(log_lines(log, f"interface {nic} cannot be read")) == 1
        add()
        eventually(lambda: nic in svc.value("network"), what="the interface to come back")
        assert log_lines(log, f"interface {nic} is back")
    finally:
        if svc is not None:
            svc.stop()
        run("ip", "netns", "del", ns)


def test_unprivileged_service_reads_other_users_processes(spawn, serve_as_nobody):
    """No privileges needed: run as nobody, watch a root process."""
    name = f"odstroot{os.getpid()}"
    helper = spawn(name, "/bin/sleep", "600")
    svc = serve_as_nobody("--processes", name, "--interfaces", "lo", "--rate", "10")
    assert psutil.Process(svc.proc.pid).username() == "nobody"
    key = str(helper.pid)
    eventually(lambda: key in svc.value(f"process/{name}"), what="the root process")
    ours = svc.value(f"process/{name}/{key}")
    proc = psutil.Process(helper.pid)
    assert proc.username() == "root"
    mem = proc.memory_info()
    assert (ours["memory_rss"], ours["memory_vms"], ours["memory_shared"]) == \
        (mem.rss, mem.vms, mem.shared)
    assert ours["cpu_affinity"] == proc.cpu_affinity()


def test_service_without_process_events_finds_a_late_exec_by_its_sweep(serve, tmp_path):
    """Without the kernel's process events (before Linux 6.6 they need
    CAP_NET_ADMIN; here they are turned off, as this kernel gives them to
    anyone), a process that execs into a match after its first second is found
    by the slow re-read of every process (once per 10 s), not missed for good."""
    name = f"odstsw{os.getpid()}"
    link = tmp_path / name
    link.symlink_to("/bin/sleep")
    script = tmp_path / "launcher.sh"
    script.write_text(f"#!/bin/sh\nsleep 2\nexec {link} 605\n")
    script.chmod(0o755)
    log = tmp_path / "log"
    wrapper = subprocess.Popen([str(script)], stdout=subprocess.DEVNULL)
    try:
        svc = serve("--processes", name, "--interfaces", "lo", "--rate", "10", "--log-file", str(log),
                    prefix=("env", "ODIN_STATUS_PROCESS_EVENTS=off"))
        eventually(lambda: psutil.Process(wrapper.pid).name() == name, what="the exec")
        eventually(lambda: str(wrapper.pid) in svc.value(f"process/{name}"), timeout=15.0,
                   what="the exec'd process found by the sweep")
        assert "kernel process events unavailable" in log.read_text()
    finally:
        wrapper.kill()
        wrapper.wait()
