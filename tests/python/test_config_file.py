"""An odin-control config file read by `odin-status serve --config`, against
odin-control 2.1.0's own SystemStatusController reading the same section."""

import configparser
import signal
import subprocess
import time

import msgpack
import zmq
from conftest import BIN, eventually, request, stop
from odin_control.adapters.system_status import SystemStatusController

SECTION = "adapter.status"


def odin_options(path):
    """The section as odin-control hands it to an adapter: a dict of strings."""
    parser = configparser.ConfigParser()
    parser.read(path)
    return dict(parser[SECTION])


def test_a_section_with_only_processes_gives_odins_keys(tmp_path, serve):
    cfg = tmp_path / "odin.cfg"
    cfg.write_text("[server]\nhttp_port = 8888\nadapters = status\n\n"
                   f"[{SECTION}]\n"
                   "module = odin_control.adapters.system_status.SystemStatusAdapter\n"
                   "processes = no-such-proc-cfg, other-proc-cfg\n")
    odin = SystemStatusController(odin_options(cfg))
    odin.monitor()
    ours = serve("--config", str(cfg))
    tree = ours.value("")
    for block in ("disk", "network", "process"):
        assert list(tree[block]) == list(odin.get(block)), block
    # Absent disks and interfaces mean none, as odin-control reads them.
    assert tree["disk"] == {} and tree["network"] == {}
    assert list(tree["process"]) == ["no-such-proc-cfg", "other-proc-cfg"]


class Served:
    """`odin-status serve` with only the arguments given (no endpoint flags),
    its stderr kept for reading after it stops."""

    def __init__(self, tmp_path, *args):
        self.log = tmp_path / "stderr.log"
        self._log_file = open(self.log, "wb")
        self.proc = subprocess.Popen([BIN, "serve", *args], stdout=subprocess.DEVNULL,
                                     stderr=self._log_file)

    def stop(self):
        stop(self.proc)
        self._log_file.close()

    def lines(self):
        return self.log.read_text().splitlines()


def test_file_keys_endpoints_warnings_and_what_is_watched(tmp_path):
    ctrl, pub = f"ipc://{tmp_path}/ctrl", f"ipc://{tmp_path}/pub"
    cfg = tmp_path / "odin.cfg"
    body = (f"[{SECTION}]\nmodule = odin_status.odin_control.StatusAdapter\n"
            f"endpoint = tcp://127.0.0.1:5040\n"
            f"ctrl_endpoint = {ctrl}\npub_endpoint = {pub}\npub_encoding = msgpack\n"
            "proceses = sleep\nhttp_prot = 1\nprocesses = fp1=no-such-proc-cfg:1\nrate = 5\n")
    cfg.write_text(body)
    svc = Served(tmp_path, "--config", str(cfg))
    try:
        eventually(lambda: request(ctrl, "request_version", timeout_ms=200) is not None,
                   timeout=10, what="the service on the file's ctrl_endpoint")
        configuration = request(ctrl, "request_configuration")["params"]
        assert configuration["ctrl_endpoint"] == ctrl
        assert configuration["pub_endpoint"] == pub
        assert configuration["pub_encoding"] == "msgpack"
        assert configuration["processes"] == ["fp1=no-such-proc-cfg:1"]
        assert (configuration["disks"], configuration["interfaces"]) == ([], [])

        sub = zmq.Context.instance().socket(zmq.SUB)
        sub.linger = 0
        sub.subscribe(b"")
        sub.connect(pub)
        assert sub.poll(5000), "no snapshot on the file's pub_endpoint"
        snapshot = msgpack.unpackb(sub.recv())
        sub.close()
        assert snapshot["msg_val"] == "status"
        assert snapshot["params"]["process_summary"]["fp1"]["state"] == "missing"

        # SIGHUP re-reads the file: the warnings again, and what is watched after the change.
        cfg.write_text(body.replace("rate = 5", "rate = 4\ndisks = /"))
        svc.proc.send_signal(signal.SIGHUP)
        eventually(lambda: request(ctrl, "request_configuration")["params"]["rate"] == 4.0,
                   what="the re-read file")
        time.sleep(0.2)
    finally:
        svc.stop()

    lines = svc.lines()
    misspelt = "'proceses' in [adapter.status] is not an odin-status key; did you mean 'processes'?"
    assert sum(misspelt in line for line in lines) == 2, lines
    assert sum("'http_prot' in [adapter.status] is not an odin-status key, nor close to one; "
               "it is ignored" in line for line in lines) == 2, lines
    # The adapter's keys are nobody's mistake.
    assert not any("'module'" in line or "'endpoint'" in line for line in lines), lines
    watching = [line for line in lines if "watching disks:" in line]
    assert len(watching) == 2, lines
    assert watching[0].endswith("watching disks: none; interfaces: none; processes: "
                                "no-such-proc-cfg (1 expected, keyed fp1); rate: 5 Hz; limits: none")
    assert watching[1].endswith("watching disks: /; interfaces: none; processes: "
                                "no-such-proc-cfg (1 expected, keyed fp1); rate: 4 Hz; limits: none")
