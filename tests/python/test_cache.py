"""odin_status.cache.SnapshotCache against the real binary: it learns the publisher,
keeps the latest snapshot, says when the service has gone quiet, and follows it
back (restarted, renumbered, reconfigured) without help."""

import threading
import time

import pytest

from conftest import Service, eventually, request

from odin_status.cache import SnapshotCache, pub_from_configuration, stale_after


def state_when(cache, connected):
    """The cache's state when its connected is as given, else None (for eventually)."""
    state = cache.state()
    return state if state.connected == connected else None


def test_learns_the_publisher_and_keeps_the_latest_snapshot(serve):
    svc = serve("--rate", "10", "--disks", "/")
    with SnapshotCache(svc.ctrl) as cache:
        assert cache.wait_for_snapshot(10), cache.state().error
        first = cache.state()
        assert first.connected and first.error is None
        assert first.pub == svc.pub
        assert first.configuration is not None and first.configuration["rate"] == 10.0
        assert set(first.tree["disk"]) == {"_"}
        assert first.stale_after == 2.0  # 3 x 0.1 s is below the 2 s floor
        eventually(lambda: cache.state().cycle > first.cycle, what="a newer cycle")
        later = cache.state()
        assert later.age is not None and 0 <= later.age < 2
        # What the cache holds is the service's own tree of that cycle.
        assert later.tree["monitor"]["cycle"] == later.cycle


def test_a_publisher_alone_is_enough(serve):
    svc = serve("--rate", "10")
    with SnapshotCache(pub=svc.pub) as cache:
        assert cache.wait_for_snapshot(10), cache.state().error
        state = cache.state()
        assert state.connected and state.endpoint == svc.pub and state.configuration is None


def test_stale_then_back_after_a_restart_with_another_configuration(tmp_path):
    where = tmp_path / "svc"
    where.mkdir()
    svc = Service(where, "--rate", "5", "--processes", "one")
    cache = SnapshotCache(svc.ctrl)
    try:
        assert cache.wait_for_snapshot(10), cache.state().error
        before = eventually(lambda: cache.state() if cache.state().cycle >= 5 else None,
                            what="five cycles")
        svc.stop()
        stopped = time.monotonic()
        state = eventually(lambda: state_when(cache, connected=False),
                           timeout=10, what="the cache to notice the silence")
        # Stale after 3 intervals of 0.2 s, but never before 2 s.
        assert time.monotonic() - stopped >= 2.0 - 0.3
        assert svc.pub in state.error and "since" in state.error and svc.ctrl in state.error
        # Reading never waits on the network, even now.
        t0 = time.perf_counter()
        for _ in range(100):
            cache.state()
        assert time.perf_counter() - t0 < 0.5

        svc = Service(where, "--rate", "5", "--processes", "two")
        back = eventually(lambda: state_when(cache, connected=True),
                          timeout=15, what="the cache to reconnect")
        assert back.cycle < before.cycle, "a restarted service numbers its cycles from 1 again"
        assert list(back.tree["process"]) == ["two"]
        eventually(lambda: cache.state().configuration["processes"] == ["two"],
                   timeout=10, what="the new configuration")
    finally:
        cache.close()
        svc.stop()
    assert cache.closed and not cache.state().connected


def test_callbacks_see_snapshots_and_notifications(serve, spawn):
    svc = serve("--rate", "10", "--processes", "cacheprobe")
    snapshots, notes = [], []
    got_event = threading.Event()

    def on_note(snap):
        notes.append(snap)
        got_event.set()

    with SnapshotCache(svc.ctrl, on_snapshot=snapshots.append, on_notification=on_note) as cache:
        assert cache.wait_for_snapshot(10)
        # Snapshots flow; let the service's first cycle pass before the process starts.
        eventually(lambda: len(snapshots) >= 3, what="three snapshots")
        spawn("cacheprobe", "/bin/sleep", "30")
        assert got_event.wait(10), "no process_event arrived"
    assert notes[0].msg_val == "process_event"
    assert notes[0].tree["name"] == "cacheprobe"
    assert all(s.msg_val == "status" for s in snapshots)


def test_a_raising_callback_does_not_stop_the_cache(serve):
    svc = serve("--rate", "10")

    def boom(_snap):
        raise RuntimeError("caller bug")

    with SnapshotCache(svc.ctrl, on_snapshot=boom) as cache:
        assert cache.wait_for_snapshot(10)
        first = cache.state().cycle
        eventually(lambda: cache.state().cycle > first + 2, what="cycles after a raising callback")


def test_no_service_yet_says_why(tmp_path):
    ctrl = f"ipc://{tmp_path}/nothing"
    with SnapshotCache(ctrl) as cache:
        assert not cache.wait_for_snapshot(0.3)
        state = cache.state()
        assert not state.connected and state.cycle is None and state.age is None
        assert ctrl in state.error and "since" in state.error
    # And a service that starts later is found without help.
    where = tmp_path / "late"
    where.mkdir()
    with SnapshotCache(f"ipc://{where}/ctrl") as cache:
        time.sleep(1.2)
        svc = Service(where, "--rate", "10")
        try:
            assert cache.wait_for_snapshot(10), cache.state().error
        finally:
            svc.stop()


def test_an_explicit_pub_wins_over_the_learned_one(serve):
    svc = serve("--rate", "10")
    other = serve("--rate", "10", "--processes", "other")
    with SnapshotCache(svc.ctrl, pub=other.pub) as cache:
        assert cache.wait_for_snapshot(10)
        state = cache.state()
        assert state.pub == other.pub and "other" in state.tree["process"]
        assert state.configuration is not None  # still asked of the control endpoint
        assert request(svc.ctrl, "request_configuration")["params"]["pub_endpoint"] == svc.pub


@pytest.mark.parametrize("reported, ctrl, expected", [
    ("tcp://*:5041", "tcp://daq1:5040", "tcp://daq1:5041"),
    ("tcp://0.0.0.0:5041", "tcp://10.0.0.7:5040", "tcp://10.0.0.7:5041"),
    ("tcp://127.0.0.1:5041", "tcp://daq1:5040", "tcp://daq1:5041"),
    ("tcp://192.168.1.5:6000", "tcp://daq1:5040", "tcp://192.168.1.5:6000"),
    ("ipc:///run/odin/pub", "tcp://daq1:5040", "ipc:///run/odin/pub"),
    ("tcp://*:5041", "ipc:///run/odin/ctrl", "tcp://*:5041"),
])
def test_a_wildcard_or_loopback_publisher_takes_the_control_host(reported, ctrl, expected):
    assert pub_from_configuration(reported, ctrl) == expected


def test_the_staleness_rule():
    assert stale_after(0.1) == 2.0
    assert stale_after(1.0) == 3.0
    assert stale_after(10.0) == 30.0
    assert stale_after(None) == 3.0


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="needs a control endpoint"):
        SnapshotCache()
    with pytest.raises(ValueError, match="must be a ZeroMQ endpoint"):
        SnapshotCache("daq1:5040")


def test_a_service_back_on_another_publisher_is_followed(tmp_path):
    where = tmp_path / "svc"
    where.mkdir()
    svc = Service(where, "--rate", "5")
    cache = SnapshotCache(svc.ctrl)
    try:
        assert cache.wait_for_snapshot(10), cache.state().error
        svc.stop()
        eventually(lambda: state_when(cache, connected=False), timeout=10, what="silence")
        moved = f"ipc://{where}/pub-moved"
        svc = Service(where, "--rate", "5", pub=moved)
        back = eventually(lambda: state_when(cache, connected=True), timeout=15,
                          what="the cache to follow the new publisher")
        assert back.pub == moved and back.configuration["pub_endpoint"] == moved
    finally:
        cache.close()
        svc.stop()
