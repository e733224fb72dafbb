"""The figures odin-status adds beyond odin's tree, made to happen for real:
the host block against psutil, disk inodes and read-only against statvfs, a
tmpfs being filled and its time_to_full, link state and traffic rates on a veth
pair in network namespaces the test makes.

The tests that mount or make namespaces need root; they say why when they skip.
"""

import json
import os
import socket
import statistics
import subprocess
import sys
import time
import uuid

import psutil
import pytest
import zmq
from psutil._common import usage_percent

from conftest import Service, eventually

ROOT = os.geteuid() == 0
MIB = 1024 * 1024


def run(*cmd):
    return subprocess.run(cmd, capture_output=True, text=True)


def must(*cmd):
    r = run(*cmd)
    assert r.returncode == 0, (cmd, r.stderr)
    return r.stdout


def proc_uptime():
    with open("/proc/uptime") as f:
        return float(f.read().split()[0])


def test_host_block_agrees_with_psutil(serve):
    svc = serve("--interfaces", "lo", "--rate", "10")
    eventually(lambda: svc.value("host").get("cpu_percent_per_core"), what="a host block")

    up_before = proc_uptime()
    host = svc.value("host")
    up_after = proc_uptime()
    assert host["hostname"] == socket.gethostname()
    assert host["boot_time"] == psutil.boot_time()
    assert isinstance(host["boot_time"], int)
    # Sampled within the last cycle (0.1 s), more on a loaded machine.
    assert up_before - 2.0 <= host["uptime"] <= up_after

    # Load averages move every 5 s: agree when psutil reads the same twice around ours.
    def load_agrees():
        before = psutil.getloadavg()
        ours = svc.value("host/load_average")["value"]
        after = psutil.getloadavg()
        return before == after and ours == list(before)

    eventually(load_agrees, timeout=12, what="load averages to agree with psutil")

    assert len(host["cpu_percent_per_core"]) == psutil.cpu_count() == \
        len(psutil.cpu_percent(percpu=True))
    for value in [host["cpu_percent"], *host["cpu_percent_per_core"]]:
        assert isinstance(value, float) and 0.0 <= value <= 100.0 and round(value, 1) == value

    vm, swap = psutil.virtual_memory(), psutil.swap_memory()
    assert host["memory_total"] == vm.total
    assert host["swap_total"] == swap.total
    # Other processes move memory between two reads: close, and psutil's formulas exact.
    assert abs(host["memory_available"] - vm.available) < 0.05 * vm.total
    assert host["memory_percent"] == usage_percent(
        host["memory_total"] - host["memory_available"], host["memory_total"], round_=1)
    assert abs(host["swap_used"] - swap.used) < 0.05 * max(swap.total, 1) + MIB
    assert host["swap_used"] == host["swap_total"] - host["swap_free"]
    assert host["swap_percent"] == usage_percent(host["swap_used"], host["swap_total"], round_=1)

    pids = len(psutil.pids())
    assert abs(host["processes"] - pids) <= max(30, pids // 10), (host["processes"], pids)


def test_busy_cpus_show_in_cpu_percent(serve, spawn):
    """A spinning child on every CPU: the host is all busy, as psutil sees it too."""
    svc = serve("--interfaces", "lo", "--rate", "1")
    n = psutil.cpu_count()
    spinners = [spawn(f"odstburn{os.getpid()}x{i}", "/bin/sh", "-c", "while :; do :; done")
                for i in range(n)]
    for proc in spinners:
        os.setpriority(os.PRIO_PROCESS, proc.pid, 19)  # busy, but last in line
    time.sleep(2.2)  # two cycles with the spinners running throughout
    ours, theirs = [], []
    psutil.cpu_percent()
    for _ in range(3):
        time.sleep(1.0)
        theirs.append(psutil.cpu_percent())
        ours.append(svc.value("host/cpu_percent")["value"])
    per_core = svc.value("host/cpu_percent_per_core")["value"]
    assert statistics.mean(ours) > 90, ours
    assert abs(statistics.mean(ours) - statistics.mean(theirs)) < 10, (ours, theirs)
    assert min(per_core) > 80, per_core


def test_disk_inodes_agree_with_statvfs(serve):
    svc = serve("--disks", "/", "--interfaces", "lo", "--rate", "20")

    def agrees():
        before = os.statvfs("/")
        time.sleep(0.1)
        ours = svc.value("disk/_")
        after = os.statvfs("/")
        return before.f_ffree == after.f_ffree and \
            (ours["inodes_total"], ours["inodes_free"]) == (before.f_files, before.f_ffree)

    eventually(agrees, timeout=10, what="inodes to agree with statvfs")
    assert svc.value("disk/_/read_only")["value"] is bool(os.statvfs("/").f_flag & os.ST_RDONLY)


@pytest.fixture
def tmpfs(tmp_path):
    """tmpfs(size, *options) mounts a tmpfs the test owns; all are unmounted after."""
    if not ROOT:
        pytest.skip("mounting a tmpfs needs root")
    mounted = []

    def mount(size, *options):
        mnt = tmp_path / f"mnt{len(mounted)}"
        mnt.mkdir()
        opts = ",".join([f"size={size}", *options])
        if run("mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(mnt)).returncode != 0:
            pytest.skip("this host does not allow mounting a tmpfs")
        mounted.append(mnt)
        return mnt

    yield mount
    for mnt in mounted:
        run("umount", "-l", str(mnt))


def test_inodes_and_read_only_of_a_tmpfs(serve, tmpfs):
    mnt = tmpfs("8m", "nr_inodes=1000")
    key = str(mnt).replace("/", "_")
    svc = serve("--disks", str(mnt), "--interfaces", "lo", "--rate", "20")
    disk = svc.value(f"disk/{key}")
    st = os.statvfs(mnt)
    assert disk["inodes_total"] == st.f_files == 1000
    assert disk["inodes_free"] == st.f_ffree
    assert disk["read_only"] is False
    for i in range(10):
        (mnt / f"f{i}").write_text("x")
    eventually(lambda: svc.value(f"disk/{key}/inodes_free")["value"] == st.f_ffree - 10,
               what="ten inodes to be used")
    assert svc.value(f"disk/{key}/inodes_free")["value"] == os.statvfs(mnt).f_ffree

    must("mount", "-o", "remount,ro", str(mnt))
    assert os.statvfs(mnt).f_flag & os.ST_RDONLY
    eventually(lambda: svc.value(f"disk/{key}/read_only")["value"] is True,
               what="read_only after remount,ro")
    must("mount", "-o", "remount,rw", str(mnt))
    eventually(lambda: svc.value(f"disk/{key}/read_only")["value"] is False,
               what="read_only false after remount,rw")


WRITER = """
import sys, time
path, rate, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
chunk = b"\\1" * (rate // 16)
start = time.monotonic()
with open(path, "wb", buffering=0) as f:
    for i in range(int(seconds * 16)):
        f.write(chunk)
        time.sleep(max(0.0, start + (i + 1) / 16 - time.monotonic()))
"""


def test_time_to_full_of_a_tmpfs_being_filled(serve, tmpfs):
    mnt = tmpfs("64m")
    key = str(mnt).replace("/", "_")
    svc = serve("--disks", str(mnt), "--interfaces", "lo", "--rate", "20")
    time.sleep(1.0)
    idle = svc.value(f"disk/{key}")
    assert idle["write_rate"] == 0.0 and idle["time_to_full"] is None, idle

    rate, seconds = 4 * MIB, 13.0
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(mnt / "fill"), str(rate),
                               str(seconds)])
    try:
        started = time.monotonic()
        eventually(lambda: svc.value(f"disk/{key}/time_to_full")["value"] is not None,
                   timeout=3, what="time_to_full to become a number")
        # The rate is over the last ~10 s: once 10 s of writing are behind, it is the rate.
        time.sleep(max(0.0, started + 11.5 - time.monotonic()))
        disk = svc.value(f"disk/{key}")
        assert writer.poll() is None, "the writer is still writing"
        assert abs(disk["write_rate"] - rate) < 0.2 * rate, disk
        assert disk["time_to_full"] == pytest.approx(disk["free"] / disk["write_rate"], rel=1e-9)
        assert disk["time_to_full"] == pytest.approx(disk["free"] / rate, rel=0.25), disk
        assert writer.wait(10) == 0
    finally:
        writer.kill()
        writer.wait()
    # Writing stopped: within the window the rate is 0.0 and nothing counts down.
    eventually(lambda: svc.value(f"disk/{key}/time_to_full")["value"] is None,
               timeout=14, what="time_to_full to go back to null")
    assert svc.value(f"disk/{key}/write_rate")["value"] == 0.0


@pytest.fixture
def netns():
    """netns() makes a network namespace; all are deleted after."""
    if not ROOT:
        pytest.skip("network namespaces need root")
    made = []

    def make():
        ns = f"odst{uuid.uuid4().hex[:8]}"
        if run("ip", "netns", "add", ns).returncode != 0:
            pytest.skip("this host does not allow network namespaces")
        made.append(ns)
        return ns

    yield make
    for ns in made:
        run("ip", "netns", "del", ns)


def in_ns(ns, *cmd):
    return must("ip", "netns", "exec", ns, *cmd)


def psutil_in_ns(ns):
    out = in_ns(ns, sys.executable, "-c",
                "import json, psutil; print(json.dumps({k: v._asdict() for k, v in "
                "psutil.net_if_stats().items()}))")
    return json.loads(out)


def test_link_up_speed_and_mtu_agree_with_sysfs_and_psutil(netns, tmp_path):
    ns = netns()
    nic, peer = f"v{ns[4:]}a", f"v{ns[4:]}b"
    must("ip", "-n", ns, "link", "add", nic, "mtu", "1400", "type", "veth", "peer", "name", peer)
    svc = Service(tmp_path, "--interfaces", f"lo,{nic}", "--rate", "20",
                  prefix=("ip", "netns", "exec", ns))
    try:
        def ours():
            return svc.value(f"network/{nic}")

        def check_against_oracles():
            mine, theirs = ours(), psutil_in_ns(ns)[nic]
            # sysfs refuses (EINVAL) the speed of an interface that is down, where
            # psutil asks the driver for its nominal speed: the service says null then.
            speed = in_ns(ns, "sh", "-c", f"cat /sys/class/net/{nic}/speed 2>/dev/null || true")
            sys_speed = int(speed) if speed.strip() not in ("", "-1") else None
            return (mine["link_up"] == theirs["isup"] and mine["mtu"] == theirs["mtu"]
                    and mine["speed_mbps"] == sys_speed
                    and (sys_speed is None or sys_speed == theirs["speed"]))

        assert ours()["mtu"] == 1400
        assert ours()["link_up"] is False  # created down
        assert ours()["speed_mbps"] is None  # the kernel does not say while down
        eventually(check_against_oracles, what="a down veth to agree with psutil and /sys")

        must("ip", "-n", ns, "link", "set", nic, "up")
        must("ip", "-n", ns, "link", "set", peer, "up")
        eventually(lambda: ours()["link_up"] is True, what="link_up after ip link set up")
        eventually(check_against_oracles, what="an up veth to agree with psutil and /sys")

        must("ip", "-n", ns, "link", "set", nic, "mtu", "1300")
        eventually(lambda: ours()["mtu"] == 1300, what="the new mtu")
        must("ip", "-n", ns, "link", "set", peer, "down")  # no carrier: not running
        eventually(lambda: ours()["link_up"] is False, what="link_up false without a carrier")
        eventually(check_against_oracles, what="a veth without carrier to agree")
        lo, theirs = svc.value("network/lo"), psutil_in_ns(ns)["lo"]
        assert lo["link_up"] is theirs["isup"] is False  # a new namespace's lo is down
        assert lo["speed_mbps"] is None and lo["mtu"] == theirs["mtu"]
    finally:
        svc.stop()


SENDER = """
import socket, sys, time
dest, pps, size, seconds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
payload = b"x" * size
start = time.monotonic()
for i in range(int(pps * seconds)):
    s.sendto(payload, (dest, 9))
    time.sleep(max(0.0, start + (i + 1) / pps - time.monotonic()))
"""


def veth_between(netns):
    """A veth pair with one end in each of two new namespaces, addressed and up."""
    here, there = netns(), netns()
    nic, peer = f"v{here[4:]}a", f"v{here[4:]}b"
    must("ip", "-n", here, "link", "add", nic, "type", "veth", "peer", "name", peer,
         "netns", there)
    net = f"10.{int(here[4:6], 16)}.{int(here[6:8], 16)}"
    must("ip", "-n", here, "addr", "add", f"{net}.1/24", "dev", nic)
    must("ip", "-n", there, "addr", "add", f"{net}.2/24", "dev", peer)
    must("ip", "-n", here, "link", "set", nic, "up")
    must("ip", "-n", there, "link", "set", peer, "up")
    return here, there, nic, peer, f"{net}.2"


def test_rates_follow_traffic_sent_on_a_veth(netns, tmp_path):
    here, _, nic, _, dest = veth_between(netns)
    svc = Service(tmp_path, "--interfaces", nic, "--rate", "2",
                  prefix=("ip", "netns", "exec", here))
    pps, size = 400, 1000
    # On the wire: payload + UDP 8 + IPv4 20 + Ethernet 14 bytes.
    wire = size + 8 + 20 + 14
    sender = subprocess.Popen(["ip", "netns", "exec", here, sys.executable, "-c", SENDER,
                               dest, str(pps), str(size), "6"])
    try:
        time.sleep(1.5)  # ARP done, and a full cycle of steady sending behind
        samples = []
        for _ in range(6):
            samples.append(svc.value(f"network/{nic}"))
            time.sleep(0.5)
        assert sender.poll() is None, "the sender is still sending"
        for leaf, expected in [("bytes_sent_rate", pps * wire), ("packets_sent_rate", pps)]:
            values = [s[leaf] for s in samples]
            assert all(isinstance(v, float) for v in values)
            # A loaded machine sends late sometimes: the median, within a quarter.
            assert abs(statistics.median(values) - expected) < 0.25 * expected, (leaf, values)
        assert all(s["errout_rate"] == 0.0 for s in samples)
        assert sender.wait(10) == 0
    finally:
        sender.kill()
        sender.wait()
        svc.stop()


def test_recreated_interface_reopens_and_never_gives_negative_rates(netns, tmp_path):
    here, there, nic, peer, dest = veth_between(netns)
    log = tmp_path / "status.log"
    svc = Service(tmp_path, "--interfaces", nic, "--rate", "1", "--log-file", str(log),
                  prefix=("ip", "netns", "exec", here))
    sub = zmq.Context.instance().socket(zmq.SUB)
    sub.linger = 0
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.connect(svc.pub)
    try:
        in_ns(here, sys.executable, "-c", SENDER, dest, "1000", "100", "0.3")
        eventually(lambda: svc.value(f"network/{nic}/packets_sent")["value"] >= 300,
                   what="the packets to be counted")
        # Right after a cycle, delete the interface and make it again with another
        # mtu: done long before the next cycle, so the service never sees it absent.
        assert sub.poll(5000), "no snapshot published"
        sub.recv()
        must("sh", "-c", f"ip -n {here} link del {nic} && "
             f"ip -n {here} link add {nic} mtu 1280 type veth peer name {peer} netns {there}")
        seen = []
        deadline = time.monotonic() + 2.5
        while time.monotonic() < deadline:
            seen.append(svc.value(f"network/{nic}"))
            time.sleep(0.1)
        assert seen[-1]["mtu"] == 1280, "the new interface's sysfs files were opened"
        assert seen[-1]["packets_sent"] < 300, "the counters are the new interface's"
        for s in seen:
            for leaf in s:
                if leaf.endswith("_rate"):
                    assert 0.0 <= s[leaf] < 1e9, (leaf, s[leaf])
        with open(log) as f:
            assert f"interface {nic} cannot be read" not in f.read(), \
                "the interface was never absent: the reopen came from its stale files"
    finally:
        sub.close()
        svc.stop()
