"""The odin_status package against the real binary, and against sockets the test
controls where the real service cannot misbehave on demand (silence, bad replies,
event messages)."""

import json
import os
import re
import threading
import time
from datetime import datetime, timedelta, timezone

import msgpack
import pytest
import zmq

from conftest import eventually, Service, has_odins_blocks_first, request

from odin_status import (OdinStatusError, Snapshot, StatusClient, StatusError,
                         StatusProtocolError, StatusSubscriber, StatusTimeout, __all__,
                         __version__)
from odin_status.subscriber import cycles_missed

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}$")
SUPPORTED = ["get", "status", "request_configuration", "request_version", "request_commands", "configure",
             "reset_statistics"]


class FakeRouter:
    """A ROUTER the test binds itself. ``answer(identity, request)`` returns the reply
    frame to send, None to stay silent, or a list of (identity, frame) to send.
    Every request is recorded with the identity of the socket that sent it."""

    def __init__(self, endpoint, answer):
        self.endpoint = endpoint
        self.answer = answer
        self.received = []  # (identity, decoded request)
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        assert self._ready.wait(5), "fake router did not start"

    def _run(self):
        sock = zmq.Context.instance().socket(zmq.ROUTER)
        sock.linger = 0
        sock.bind(self.endpoint)
        self._ready.set()
        try:
            while not self._stop.is_set():
                if not sock.poll(50):
                    continue
                identity, delimiter, body = sock.recv_multipart()
                assert delimiter == b""
                req = json.loads(body)
                self.received.append((identity, req))
                reply = self.answer(identity, req)
                if isinstance(reply, bytes):
                    reply = [(identity, reply)]
                for to, frame in reply or []:
                    sock.send_multipart([to, b"", frame])
        finally:
            sock.close()

    def close(self):
        self._stop.set()
        self._thread.join(5)


def ack(req, params, msg_id=None):
    return json.dumps({"msg_type": "ack", "msg_val": req["msg_val"],
                       "id": req["id"] if msg_id is None else msg_id,
                       "timestamp": "2026-11-26T06:08:46.456235", "params": params}).encode()


@pytest.fixture
def router(tmp_path):
    made = []

    def make(answer):
        fake = FakeRouter(f"ipc://{tmp_path}/router{len(made)}", answer)
        made.append(fake)
        return fake

    yield make
    for fake in made:
        fake.close()


# -- StatusClient against the real service ------------------------------------

def test_package_metadata():
    assert re.match(r"^\d+\.\d+\.\d+", __version__)
    for name in ["StatusClient", "StatusSubscriber", "Snapshot", "OdinStatusError",
                 "StatusError", "StatusTimeout", "StatusProtocolError"]:
        assert name in __all__
    assert issubclass(StatusError, OdinStatusError)
    assert issubclass(StatusTimeout, OdinStatusError)
    assert issubclass(StatusProtocolError, OdinStatusError)


def test_every_call(serve, tmp_path):
    svc = serve("--interfaces", "lo", "--disks", f"/,{tmp_path}", "--processes", "no-such-xyz")
    key = str(tmp_path).replace("/", "_")
    with StatusClient(svc.ctrl) as c:
        tree = c.get()
        assert has_odins_blocks_first(tree), list(tree)
        assert sorted(tree["disk"]) == sorted(["_", key])
        assert tree["process"] == {"no-such-xyz": {}}

        percent = c.get("disk/_/percent")
        assert list(percent) == ["value"] and isinstance(percent["value"], float)
        assert abs(percent["value"] - svc.value("disk/_/percent")["value"]) < 1.0
        total = c.get(f"disk/{key}/total")["value"]
        assert total == svc.value(f"disk/{key}/total")["value"] and total > 0
        assert isinstance(c.get("network/lo/bytes_recv")["value"], int)
        assert set(c.get("network/lo/")) == set(svc.value("network/lo"))

        status = c.status()
        assert has_odins_blocks_first(status), list(status)
        assert set(status["network"]) == {"lo"}

        assert c.configuration() == {
            "disks": ["/", str(tmp_path)], "interfaces": ["lo"],
            "processes": ["no-such-xyz"], "rate": 1.0, "ctrl_endpoint": svc.ctrl,
            "pub_endpoint": svc.pub, "pub_encoding": "json", "max_message_size": 65536,
            "ipc_mode": "660", "log_file": None, "allow_configure": False, "metrics": None, "thresholds": {}}
        assert c.version() == request(svc.ctrl, "request_version")["params"]
        assert c.version()["name"] == "odin-status"
        assert c.commands() == {"supported": SUPPORTED}
        assert c.request("get", {"path": "disk/_/total"}) == c.get("disk/_/total")


def test_configure(serve):
    svc = serve("--interfaces", "lo")
    with StatusClient(svc.ctrl) as c:
        with pytest.raises(StatusError, match=r"^configure is disabled; start the service with --allow-configure"):
            c.configure({"rate": 2})
    svc = serve("--interfaces", "lo", "--allow-configure")
    with StatusClient(svc.ctrl) as c:
        after = c.configure({"rate": 2, "processes": {"add": ["x-client"]}})
        assert after == c.configuration()
        assert after["rate"] == 2.0 and after["processes"] == ["x-client"]
        with pytest.raises(StatusError, match=r"^processes.add names 'x-client', which is already configured.$"):
            c.configure({"processes": {"add": ["x-client"]}})


def test_odin_data_commands(serve, spawn):
    """status takes get's params, request_configuration takes metadata, and
    reset_statistics starts the counts again, as odin-data's clients use them."""
    spawn("odst-client-fp", "/bin/sleep", "600")
    svc = serve("--interfaces", "lo", "--rate", "10", "--processes", "fp1=odst-client-fp:1")
    with StatusClient(svc.ctrl) as c:
        eventually(lambda: c.status("process_summary/fp1/count") == {"value": 1}, what="the process")
        assert c.status("process_summary/fp1/expected", metadata=True) == \
            c.get("process_summary/fp1/expected", metadata=True) == \
            {"value": 1, "writeable": False, "type": "int"}
        assert c.status("process/fp1").keys() == c.get("process/fp1").keys()
        assert has_odins_blocks_first(c.status(metadata=True))
        with pytest.raises(StatusError, match=r"^Invalid path: process/odst-client-fp$"):
            c.status("process/odst-client-fp")
        with pytest.raises(TypeError, match="path must be a str"):
            c.status(3)
        configuration = c.configuration(metadata=True)
        assert configuration["processes"] == {
            "value": ["fp1=odst-client-fp:1"], "writeable": False, "type": "list", "element_type": "str"}
        # thresholds is a branch (of one leaf per limit); the rest are leaves.
        assert {k: v.get("value", v) for k, v in configuration.items()} == c.configuration()
        with pytest.raises(StatusError, match=r"^reset_statistics is disabled; start the service with --allow-configure"):
            c.reset_statistics()

    svc = serve("--interfaces", "lo", "--rate", "10", "--processes", "fp1=odst-client-fp:1",
                "--allow-configure")
    with StatusClient(svc.ctrl) as c:
        assert c.configuration(metadata=True)["rate"] == {"value": 10.0, "writeable": True, "type": "float"}
        spawn("odst-client-fp-b", "/bin/sleep", "0.3")  # a start and an exit
        eventually(lambda: c.get("process_summary/fp1/exits")["value"] >= 1, what="an exit")
        assert c.reset_statistics() is None
        eventually(lambda: c.get("process_summary/fp1/starts")["value"] == 0, what="the reset")
        summary = c.get("process_summary/fp1")
        assert (summary["exits"], summary["restarts"], summary["last_exit"]) == (0, 0, None)
        assert summary["count"] == 1 and summary["state"] == "ok"


def test_metadata(serve):
    svc = serve("--interfaces", "lo")
    with StatusClient(svc.ctrl) as c:
        leaf = c.get("disk/_/percent", metadata=True)
        assert set(leaf) == {"value", "writeable", "type"}
        assert leaf["writeable"] is False and leaf["type"] == "float"
        for name, node in c.get("network/lo", metadata=True).items():
            kind = {"link_up": "bool", "speed_mbps": "int", "mtu": "int"}.get(
                name, "float" if name.endswith("_rate") else "int")
            assert node["type"] == kind and node["writeable"] is False, name
            assert node["value"] is None or type(node["value"]).__name__ == kind, name
        assert "type" not in c.get("network/lo/bytes_recv", metadata=False)


def test_nack_raises_status_error_and_client_goes_on(serve):
    svc = serve("--interfaces", "lo")
    with StatusClient(svc.ctrl) as c:
        with pytest.raises(StatusError) as raised:
            c.get("nope")
        assert raised.value.error == "Invalid path: nope"
        assert str(raised.value) == "Invalid path: nope"
        assert raised.value.msg_val == "get"
        assert isinstance(raised.value, OdinStatusError)

        with pytest.raises(StatusError, match=r"^Unknown msg_val 'reboot'; supported: get, "):
            c.request("reboot")
        with pytest.raises(StatusError) as raised:
            c.request("status", {"verbose": True})
        assert raised.value.error == "status takes params path and metadata, not 'verbose'."
        # A nack leaves the REQ socket ready for the next request.
        assert has_odins_blocks_first(c.status()), list(c.status())


def test_bad_arguments_are_refused_at_once(tmp_path):
    for timeout in (0, -1, "2", None, True):
        with pytest.raises(ValueError, match="timeout"):
            StatusClient(f"ipc://{tmp_path}/x", timeout=timeout)
    with pytest.raises(OdinStatusError, match="cannot connect to 'nonsense'"):
        StatusClient("nonsense")
    with StatusClient(f"ipc://{tmp_path}/x", timeout=0.2) as c:
        with pytest.raises(TypeError, match="path"):
            c.get(5)
        with pytest.raises(TypeError, match="metadata"):
            c.get("disk", metadata="yes")


def test_close_and_context_manager(serve):
    svc = serve("--interfaces", "lo")
    ctx = zmq.Context()
    try:
        with StatusClient(svc.ctrl, context=ctx) as c:
            assert c.version()["name"] == "odin-status"
        assert c.closed
        assert not ctx.closed, "a context the caller passed in is the caller's to close"
        with pytest.raises(OdinStatusError, match="closed"):
            c.status()
        c.close()  # twice is fine
    finally:
        ctx.term()
    own = StatusClient(svc.ctrl)
    own.close()
    assert own._context.closed


# -- StatusClient against a ROUTER the test controls ------------------------

def test_requests_carry_incrementing_ids_and_odin_timestamps(router):
    fake = router(lambda identity, req: ack(req, {"echo": req["params"]}))
    # Local time, not UTC: run the client in a zone 5 h 30 min east of UTC.
    saved_tz = os.environ.get("TZ")
    os.environ["TZ"] = "ODN-5:30"
    time.tzset()
    try:
        with StatusClient(fake.endpoint) as c:
            assert c.get("a/b", metadata=True) == {"echo": {"path": "a/b", "metadata": True}}
            assert c.status() == {"echo": {}}
            assert c.configuration() == {"echo": {}}
            assert c.version() == {"echo": {}}
            assert c.commands() == {"echo": {}}
            c._last_id = 2**32 - 1  # the next id wraps to 0, as an unsigned 32-bit counter does
            c.status()
            c.status()
    finally:
        if saved_tz is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = saved_tz
        time.tzset()
    requests = [req for _, req in fake.received]
    assert [r["id"] for r in requests] == [1, 2, 3, 4, 5, 0, 1]
    assert [r["msg_val"] for r in requests[:5]] == [
        "get", "status", "request_configuration", "request_version", "request_commands"]
    there = datetime.now(timezone.utc).replace(tzinfo=None) + timedelta(hours=5, minutes=30)
    for r in requests:
        assert list(r) == ["msg_type", "msg_val", "id", "timestamp", "params"]
        assert r["msg_type"] == "cmd"
        assert TIMESTAMP.match(r["timestamp"]), r["timestamp"]
        sent = datetime.strptime(r["timestamp"], "%Y-%m-%dT%H:%M:%S.%f")
        assert abs((there - sent).total_seconds()) < 30, "timestamp is not local time"


def test_timeout_then_recovery_on_the_same_client(router):
    silent_once = threading.Event()

    def answer(identity, req):
        if not silent_once.is_set():
            silent_once.set()
            return None  # the first request gets no reply in time
        return ack(req, {"answered": req["id"]})

    fake = router(answer)
    with StatusClient(fake.endpoint, timeout=0.3) as c:
        started = time.monotonic()
        with pytest.raises(StatusTimeout, match="no reply"):
            c.status()
        elapsed = time.monotonic() - started
        assert 0.25 <= elapsed < 2.0, elapsed
        assert c.status() == {"answered": 2}
        assert c.get("x") == {"answered": 3}
    (first, _), (second, _), (third, _) = fake.received
    assert first != second, "the client should have replaced its REQ socket"
    assert second == third


def test_stale_reply_never_reaches_the_next_call(router):
    held = []

    def answer(identity, req):
        if req["id"] == 1:
            held.append((identity, req))  # answered only after the client gave up
            return None
        late = [(held_identity, ack(held_req, {"stale": 1})) for held_identity, held_req in held]
        held.clear()
        return late + [(identity, ack(req, {"fresh": req["id"]}))]

    fake = router(answer)
    with StatusClient(fake.endpoint, timeout=0.3) as c:
        with pytest.raises(StatusTimeout):
            c.status()
        assert c.status() == {"fresh": 2}
        assert c.status() == {"fresh": 3}
    assert held == [], "the late reply to request 1 was sent"


def test_timeout_then_a_real_service_on_the_same_endpoint(tmp_path):
    late = tmp_path / "late"
    late.mkdir()
    endpoint = f"ipc://{late}/ctrl"
    with StatusClient(endpoint, timeout=0.3) as c:
        with pytest.raises(StatusTimeout):
            c.version()
        svc = Service(late, "--interfaces", "lo")
        try:
            assert svc.ctrl == endpoint
            assert c.version()["name"] == "odin-status"
            assert c.get("network/lo/bytes_recv")["value"] >= 0
        finally:
            svc.stop()


def test_bad_replies_raise_and_the_client_recovers(router):
    replies = iter([
        lambda req: b"not json",
        lambda req: ack(req, {}, msg_id=req["id"] + 100),
        lambda req: json.dumps([1, 2]).encode(),
        lambda req: json.dumps({"msg_type": "notify", "msg_val": "get", "id": req["id"],
                                "params": {}}).encode(),
        lambda req: json.dumps({"msg_type": "nack", "msg_val": "get", "id": req["id"],
                                "params": {}}).encode(),
        lambda req: ack(req, {"ok": True}),
    ])
    fake = router(lambda identity, req: next(replies)(req))
    with StatusClient(fake.endpoint, timeout=1.0) as c:
        with pytest.raises(StatusProtocolError, match="cannot be decoded|neither"):
            c.status()
        with pytest.raises(StatusProtocolError, match="reply id 102 does not match request id 2"):
            c.status()
        with pytest.raises(StatusProtocolError, match="neither a JSON object"):
            c.status()
        with pytest.raises(StatusProtocolError, match="'notify'"):
            c.status()
        with pytest.raises(StatusError, match="refused"):
            c.status()
        assert c.status() == {"ok": True}


# -- StatusSubscriber against the real service --------------------------------

def check_snapshot(snap):
    assert isinstance(snap, Snapshot)
    assert snap.msg_val == "status"
    assert isinstance(snap.cycle, int) and snap.cycle >= 1
    assert TIMESTAMP.match(snap.timestamp), snap.timestamp
    assert has_odins_blocks_first(snap.tree), list(snap.tree)
    assert isinstance(snap.tree["network"]["lo"]["bytes_recv"], int)
    assert isinstance(snap.tree["disk"]["_"]["percent"], float)


@pytest.mark.parametrize("encoding", ["json", "msgpack"])
def test_subscriber_decodes_both_encodings(serve, encoding):
    svc = serve("--interfaces", "lo", "--rate", "20", "--pub-encoding", encoding)
    with StatusClient(svc.ctrl) as c:
        assert c.configuration()["pub_encoding"] == encoding
    with StatusSubscriber(svc.pub) as sub:
        first = sub.receive(timeout=5)
        assert first is not None, "no snapshot within 5 s"
        check_snapshot(first)
        assert first.missed == 0
        second = sub.receive(timeout=5)
        check_snapshot(second)
        assert second.cycle > first.cycle
        assert second.missed == second.cycle - first.cycle - 1
        assert sub.received == 2
        assert sub.missed_total == second.missed


def test_iteration(serve):
    svc = serve("--interfaces", "lo", "--rate", "20")
    seen = []
    with StatusSubscriber(svc.pub) as sub:
        for snap in sub:
            check_snapshot(snap)
            seen.append(snap)
            if len(seen) == 4:
                break
        assert sub.missed_total == sum(s.missed for s in seen)
    assert seen[0].missed == 0
    for before, after in zip(seen, seen[1:]):
        assert after.cycle > before.cycle
        assert after.missed == after.cycle - before.cycle - 1
    assert sub.closed
    assert list(sub) == [], "a closed subscriber yields nothing"


def test_gaps_are_reported(serve, tmp_path):
    # Big snapshots (300 watched directories) so that the kernel's socket buffers
    # hold only a few, and a SUB queue of 1: a reader that sleeps must lose some.
    dirs = []
    for i in range(300):
        d = tmp_path / "dirs" / f"d{i:03}"
        d.mkdir(parents=True)
        dirs.append(str(d))
    svc = serve("--interfaces", "lo", "--rate", "50", "--disks", ",".join(dirs))
    gaps = []
    with StatusSubscriber(svc.pub, hwm=1, on_gap=gaps.append) as sub:
        seen = [sub.receive(timeout=5)]
        assert seen[0] is not None
        time.sleep(1.0)
        while not seen[-1].missed and len(seen) < 200:
            snap = sub.receive(timeout=5)
            assert snap is not None, "the publisher stopped"
            seen.append(snap)
        assert seen[-1].missed > 0, f"no gap in {len(seen)} snapshots after sleeping"
        assert sub.missed_total == sum(s.missed for s in seen) > 0
    assert seen[0].missed == 0
    for before, after in zip(seen, seen[1:]):
        assert after.missed == after.cycle - before.cycle - 1
    assert gaps == [s for s in seen if s.missed]


def test_receive_times_out_with_none(tmp_path):
    with StatusSubscriber(f"ipc://{tmp_path}/nobody", timeout=0.2) as sub:
        started = time.monotonic()
        assert sub.receive() is None
        assert sub.receive(timeout=0.1) is None
        assert sub.receive(timeout=0) is None
        assert time.monotonic() - started < 2.0
    with pytest.raises(OdinStatusError, match="closed"):
        sub.receive()
    with pytest.raises(ValueError, match="timeout"):
        StatusSubscriber(f"ipc://{tmp_path}/nobody", timeout=0)
    with pytest.raises(ValueError, match="hwm"):
        StatusSubscriber(f"ipc://{tmp_path}/nobody", hwm=-1)
    with pytest.raises(OdinStatusError, match="cannot connect"):
        StatusSubscriber("nonsense")


# -- StatusSubscriber against a publisher the test controls -------------------

def notify(msg_id, msg_val="status", params=None, pack=False):
    msg = {"msg_type": "notify", "msg_val": msg_val, "id": msg_id,
           "timestamp": "2026-11-26T06:08:46.456235", "params": params or {"n": msg_id}}
    return msgpack.packb(msg) if pack else json.dumps(msg).encode()


def test_events_pass_through_or_are_skipped_and_never_count_as_gaps(tmp_path):
    ctx = zmq.Context.instance()
    pub = ctx.socket(zmq.XPUB)  # XPUB: wait for the subscription instead of sleeping
    pub.linger = 0
    pub.bind(f"ipc://{tmp_path}/pub")
    try:
        with StatusSubscriber(f"ipc://{tmp_path}/pub", timeout=2) as sub:
            assert pub.poll(5000), "no subscription arrived"
            assert pub.recv() == b"\x01"
            for frame in [notify(1), notify(99, "event"), notify(2), notify(5),
                          notify(100, "event"), b"  \n" + notify(6), notify(7, pack=True),
                          notify(2**32 - 2), notify(1), notify(3, pack=True)]:
                pub.send(frame)

            assert (sub.receive().cycle, sub.missed_total) == (1, 0)
            snap = sub.receive()  # event 99 skipped by default
            assert (snap.cycle, snap.missed) == (2, 0)
            snap = sub.receive(statuses_only=False)
            assert (snap.cycle, snap.missed, snap.tree) == (5, 2, {"n": 5})
            event = sub.receive(statuses_only=False)
            assert (event.msg_val, event.cycle, event.missed) == ("event", 100, 0)
            # A jump of more than half the 32-bit range counts as a restart, not a gap;
            # from 2**32-2 to 1 only 2**32-1 is missing.
            assert [(s.cycle, s.missed) for s in [sub.receive() for _ in range(5)]] == [
                (6, 0), (7, 0), (2**32 - 2, 0), (1, 1), (3, 1)]
            assert sub.missed_total == 2 + 1 + 1
            assert sub.received == 8

            pub.send(b"hello")
            with pytest.raises(StatusProtocolError, match="neither"):
                sub.receive()
            pub.send(b"\x81\xa1")  # a MessagePack map cut short
            with pytest.raises(StatusProtocolError, match="cannot be decoded"):
                sub.receive()
            pub.send(json.dumps({"msg_type": "notify", "msg_val": "status", "id": -1}).encode())
            with pytest.raises(StatusProtocolError, match="id"):
                sub.receive()
    finally:
        pub.close()


def test_cycles_missed_across_the_wrap_and_a_restart():
    top = 2**32 - 1
    assert cycles_missed(1, 2) == 0
    assert cycles_missed(1, 5) == 3
    assert cycles_missed(top, 1) == 0       # the service goes from 2**32-1 to 1, never 0
    assert cycles_missed(top - 1, 1) == 1
    assert cycles_missed(top, 3) == 2
    assert cycles_missed(500, 1) == 0       # a restarted service starts again at 1
    assert cycles_missed(7, 7) == 0
