"""`serve --metrics` checked by Prometheus's own tools: promtool's linter on
the exposition, and a real Prometheus server scraping the service once a
second, queried over its HTTP API while the test kills and restarts
processes. Both come from Debian's `prometheus` package, which run-tests.sh
installs when it runs as root."""

import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request

import pytest

from conftest import eventually, stop

PROMTOOL = shutil.which("promtool")
PROMETHEUS = shutil.which("prometheus")
needs_prometheus = pytest.mark.skipif(
    PROMTOOL is None or PROMETHEUS is None,
    reason="promtool and prometheus are not installed (Debian package prometheus; "
    "run-tests.sh installs it when run as root)",
)

# Uses some CPU, then waits to be killed: CPU time for the counter to keep.
WORKER = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.3: pass\ntime.sleep(600)\n"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fetch(url, accept=None):
    request = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.headers.get("Content-Type"), response.read().decode()


@pytest.fixture
def worker(spawn):
    """worker(name) starts a Python process named `name`, busy for 0.3 s of
    CPU and then asleep."""
    return lambda name: spawn(name, sys.executable, "-c", WORKER)


@needs_prometheus
def test_promtool_accepts_the_exposition(serve, worker):
    name = "odin-prom-lint"
    worker(name)
    address = f"127.0.0.1:{free_port()}"
    serve("--interfaces", "lo", "--disks", "/,/tmp", "--processes", f"{name}:1",
          "--threshold", "disk_percent_warn=0", "--threshold", "process_cpu_warn=0",
          "--metrics", address)
    url = f"http://{address}/metrics"
    body = eventually(lambda: (lambda t: t if f'name="{name}"}} 1' in t else None)(fetch(url)[1]),
                      what="the worker in /metrics")
    checked = subprocess.run([PROMTOOL, "check", "metrics"], input=body.encode(),
                             capture_output=True, timeout=30)
    assert checked.returncode == 0, checked.stdout.decode() + checked.stderr.decode()
    assert checked.stdout == b"" and checked.stderr == b"", "no lint warnings"
    for family in ["odin_status_up", "odin_status_build_info", "odin_status_cycles_total",
                   "odin_status_disk_free_bytes", "odin_status_network_receive_bytes_total",
                   "odin_status_process_running", "odin_status_process_cpu_seconds_total",
                   "odin_status_host_load1", "odin_status_severity"]:
        assert f"\n# TYPE {family} " in body, family
    assert "pid" not in body, "no PID anywhere"

    content_type, open_metrics = fetch(url, "application/openmetrics-text; version=1.0.0")
    assert content_type.startswith("application/openmetrics-text; version=1.0.0")
    assert open_metrics.endswith("# EOF\n")


class Prometheus:
    """A Prometheus server on loopback with its own data directory."""

    def __init__(self, tmp_path, target):
        self.port = free_port()
        config = tmp_path / "prometheus.yml"
        config.write_text(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
            "scrape_configs:\n  - job_name: odin-status\n"
            f"    static_configs:\n      - targets: ['{target}']\n")
        self.log = open(tmp_path / "prometheus.log", "wb")
        self.proc = subprocess.Popen(
            [PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"],
            stdout=self.log, stderr=subprocess.STDOUT)
        self.url = f"http://127.0.0.1:{self.port}"
        eventually(self.ready, timeout=30, what="Prometheus ready")

    def ready(self):
        try:
            return urllib.request.urlopen(f"{self.url}/-/ready", timeout=2).status == 200
        except OSError:
            return False

    def api(self, path, **params):
        url = f"{self.url}/api/v1/{path}?{urllib.parse.urlencode(params)}"
        with urllib.request.urlopen(url, timeout=10) as response:
            reply = json.load(response)
        assert reply["status"] == "success", reply
        return reply["data"]

    def value(self, expr):
        """The value of a one-series instant query, or None while it has none."""
        result = self.api("query", query=expr)["result"]
        assert len(result) <= 1, result
        return float(result[0]["value"][1]) if result else None

    def stop(self):
        stop(self.proc)
        self.log.close()


def wait_for(prom, expr, check, what, timeout=20):
    """Waits until Prometheus's value of `expr` passes `check`; returns it."""
    def current():
        value = prom.value(expr)
        # A tuple, so that a value of 0 counts as found.
        return (value,) if value is not None and check(value) else None
    return eventually(current, timeout=timeout, what=f"{what} ({expr})")[0]


@needs_prometheus
def test_prometheus_scrapes_counts_restarts_traffic_and_cpu(serve, worker, tmp_path):
    name = "odin-prom-fp"
    first, second = worker(name), worker(name)
    address = f"127.0.0.1:{free_port()}"
    serve("--interfaces", "lo", "--processes", f"{name}:2", "--rate", "2",
          "--metrics", address)
    prom = Prometheus(tmp_path, address)
    try:
        started = time.time()
        sel = f'{{name="{name}"}}'
        cpu = f"sum(odin_status_process_cpu_seconds_total{sel})"
        wait_for(prom, 'up{job="odin-status"}', lambda v: v == 1, "a successful scrape")
        targets = prom.api("targets")["activeTargets"]
        assert [t["lastError"] for t in targets] == [""], targets

        # As many as match, and both have used their CPU.
        wait_for(prom, f"odin_status_process_running{sel}", lambda v: v == 2, "two running")
        wait_for(prom, f'odin_status_process_state{{name="{name}",state="ok"}}',
                 lambda v: v == 1, "state ok")
        assert prom.value(f"odin_status_process_restarts_total{sel}") == 0
        used = wait_for(prom, cpu, lambda v: v >= 0.5, "CPU time of both workers", timeout=40)

        # Kill one and start another: a restart, and the CPU time stays.
        first.kill()
        first.wait()
        third = worker(name)
        wait_for(prom, f"odin_status_process_restarts_total{sel}", lambda v: v >= 1,
                 "a restart")
        wait_for(prom, f"odin_status_process_running{sel}", lambda v: v == 2, "two again")
        before_exits = wait_for(prom, cpu, lambda v: v >= used + 0.2,
                                "the new worker's CPU time added", timeout=40)
        # Both exit for good: the CPU time they used stays.
        second.kill()
        third.kill()
        second.wait()
        third.wait()
        wait_for(prom, f"odin_status_process_running{sel}", lambda v: v == 0, "none left")
        final = wait_for(prom, f"odin_status_process_exits_total{sel}", lambda v: v == 3,
                         "three exits")
        assert final == 3
        after = prom.value(cpu)
        assert after >= before_exits

        # Never decreasing: not one reset, and every scraped value at least the one before.
        window = f"{int(time.time() - started) + 5}s"
        for mode in ("user", "system"):
            resets = prom.value(
                f'resets(odin_status_process_cpu_seconds_total{{name="{name}",mode="{mode}"}}'
                f"[{window}])")
            assert resets == 0, mode
        series = prom.api("query_range", query=cpu, start=started, end=time.time(),
                          step="1")["result"]
        values = [float(v) for _, v in series[0]["values"]]
        assert values == sorted(values), values
        assert values[-1] >= after

        # Loopback traffic: the scrapes themselves, and a burst of our own.
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rx, \
                socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
            rx.bind(("127.0.0.1", 0))
            for _ in range(200):
                tx.sendto(b"x" * 1000, rx.getsockname())
        wait_for(prom, 'rate(odin_status_network_receive_bytes_total{interface="lo"}[5s])',
                 lambda v: v > 0, "loopback traffic")
    finally:
        prom.stop()
