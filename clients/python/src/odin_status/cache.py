"""The latest snapshot of one service, with its age, kept by a background thread.

Integrations that answer their own clients (the odin-control adapter, an EPICS
IOC) must never wait on the network to do so: a slow or stopped service would
stall everything else they serve. ``SnapshotCache`` therefore owns a daemon
thread that follows the service's publisher and keeps only the newest status
snapshot; a reader takes it from memory under a lock, in microseconds.

The thread learns the publisher from the control socket (``request_configuration``
names it), so a site configures one endpoint, as it does for odin-data. It
asks again whenever the stream goes quiet or restarts, so a service that comes
back on another port, or with another configuration, is followed without help.

Staleness is one rule, the same everywhere odin-status data is shown: no
snapshot for 3 update intervals (the tree's ``monitor/update_interval``), and
never less than 2 s. Past that the cache says ``connected`` false and why,
rather than presenting old numbers as current. ``connected``, ``age`` and
``error`` are worked out when they are read, so they are right at that moment
and not one tick of the thread late.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Dict, Optional

import zmq

from .client import StatusClient
from .errors import OdinStatusError
from .subscriber import Snapshot, StatusSubscriber

log = logging.getLogger(__name__)

#: A service is stale after this many update intervals without a snapshot ...
STALE_INTERVALS = 3
#: ... and never sooner than this many seconds.
STALE_MINIMUM = 2.0
#: The update interval assumed until a tree or a configuration gives one.
DEFAULT_INTERVAL = 1.0

#: How long one control request may take, and how often one is retried.
_REQUEST_TIMEOUT = 1.0
_RETRY_INTERVAL = 1.0
#: The thread's longest sleep: how quickly ``close`` takes effect.
_TICK = 0.1

_WILDCARD_HOSTS = {"*", "0.0.0.0", "[::]", "::", "127.0.0.1", "localhost", "[::1]", "::1"}


def stale_after(update_interval: Optional[float]) -> float:
    """Seconds without a snapshot after which a service counts as stale."""
    interval = update_interval if update_interval and update_interval > 0 else DEFAULT_INTERVAL
    return max(STALE_INTERVALS * interval, STALE_MINIMUM)


def pub_from_configuration(pub_endpoint: str, control_endpoint: str) -> str:
    """The publisher a client should connect to, from what ``request_configuration`` says.

    A service bound to a wildcard (``*``, ``0.0.0.0``) or to loopback reports
    that host, which only means something on its own machine; the host the
    client already reaches it by (that of the control endpoint) is used instead.
    """
    scheme, sep, address = pub_endpoint.partition("://")
    ctrl_scheme, ctrl_sep, ctrl_address = control_endpoint.partition("://")
    if not sep or scheme != "tcp" or ctrl_scheme != "tcp" or not ctrl_sep:
        return pub_endpoint
    host, colon, port = address.rpartition(":")
    ctrl_host = ctrl_address.rpartition(":")[0]
    if colon and host in _WILDCARD_HOSTS and ctrl_host:
        return f"tcp://{ctrl_host}:{port}"
    return pub_endpoint


def _clock(wall: float) -> str:
    """A wall-clock time as a sentence shows it: ``2026-12-03 11:30:02 UTC``."""
    return datetime.fromtimestamp(wall, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


@dataclass(frozen=True)
class CacheState:
    """What a cache knows at one moment; every field is consistent with the others.

    ``endpoint`` is the service's control endpoint (the publisher's when the
    cache was given only that); ``pub`` the publisher followed, once known.
    ``connected`` is true while snapshots arrive in time; ``age`` is seconds
    since the latest one arrived; ``error`` says, as a sentence, why the cache
    is not connected and since when (None while it is). ``snapshot`` is kept
    when the service goes quiet, so a caller that wants the last known values
    can have them, but only ``connected`` says whether they are current.
    """

    endpoint: str
    pub: Optional[str]
    connected: bool
    cycle: Optional[int]
    age: Optional[float]
    error: Optional[str]
    snapshot: Optional[Snapshot]
    #: ``time.monotonic()`` when the snapshot arrived.
    received: Optional[float]
    #: The latest ``request_configuration`` reply (None with only a publisher).
    configuration: Optional[Dict[str, Any]]
    #: The staleness limit in force, in seconds.
    stale_after: float

    @property
    def tree(self) -> Optional[Any]:
        return None if self.snapshot is None else self.snapshot.tree


class SnapshotCache:
    """Follows one odin-status service and keeps its latest status snapshot.

    Give ``endpoint`` (the control socket: the publisher is learned from it)
    or ``pub`` (the publisher: then no control request is made), or both (the
    given ``pub`` wins over the learned one). The thread starts at once.

    ``on_snapshot(snapshot)`` is called for each status snapshot and
    ``on_notification(snapshot)`` for every other published message
    (``process_event``, ``alarm``), both on the cache's thread: keep them
    short. An exception in a callback is logged and the cache carries on.

    ``stale_after`` (seconds) replaces the staleness rule for a site that
    wants another limit (``odin-status-ioc --stale-after``).
    """

    def __init__(self, endpoint: Optional[str] = None, pub: Optional[str] = None, *,
                 on_snapshot: Optional[Callable[[Snapshot], None]] = None,
                 on_notification: Optional[Callable[[Snapshot], None]] = None,
                 context: Optional[zmq.Context[Any]] = None,
                 name: Optional[str] = None,
                 stale_after: Optional[float] = None) -> None:
        if endpoint is None and pub is None:
            raise ValueError("a SnapshotCache needs a control endpoint, a pub endpoint or both")
        for what, value in (("endpoint", endpoint), ("pub", pub)):
            if value is not None and (not isinstance(value, str) or "://" not in value):
                raise ValueError(f"{what} must be a ZeroMQ endpoint such as "
                                 f"tcp://127.0.0.1:5040, not {value!r}")
        if stale_after is not None and not stale_after > 0:
            raise ValueError(f"stale_after must be a number of seconds above 0, not {stale_after!r}")
        self.endpoint: str = endpoint if endpoint is not None else str(pub)
        self._stale_override = stale_after
        self._control = endpoint
        self._fixed_pub = pub
        self.on_snapshot = on_snapshot
        self.on_notification = on_notification
        self._owns_context = context is None
        self._context: zmq.Context[Any] = zmq.Context() if context is None else context

        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        # Guarded by _lock: what readers see.
        self._pub: Optional[str] = pub
        self._snapshot: Optional[Snapshot] = None
        self._received: Optional[float] = None
        self._received_wall: Optional[float] = None
        self._configuration: Optional[Dict[str, Any]] = None
        self._interval: Optional[float] = None
        self._since = time.time()
        self._failure: Optional[str] = None
        self._waiting_for = ("no answer yet from the control endpoint " + self.endpoint
                             if pub is None else f"no snapshot yet from {pub}")

        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name=name or f"odin-status cache {self.endpoint}")
        self._thread.start()

    # -- what readers call -------------------------------------------------

    def state(self) -> CacheState:
        """Everything known now, taken at once (never waits on the network)."""
        now = time.monotonic()
        with self._lock:
            limit = self._stale_limit()
            age = None if self._received is None else now - self._received
            connected = (age is not None and age <= limit and not self._stop.is_set()
                         and self._failure is None)
            error = None if connected else self._error(age)
            return CacheState(
                endpoint=self.endpoint, pub=self._pub, connected=connected,
                cycle=None if self._snapshot is None else self._snapshot.cycle,
                age=age, error=error, snapshot=self._snapshot, received=self._received,
                configuration=self._configuration, stale_after=limit)

    def wait_for_snapshot(self, timeout: float) -> bool:
        """Waits up to ``timeout`` seconds for a first snapshot; True once there is one."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while self._snapshot is None:
                left = deadline - time.monotonic()
                if left <= 0 or self._stop.is_set():
                    return False
                self._arrived.wait(left)
            return True

    def close(self) -> None:
        """Stops the thread and closes its sockets. Safe to repeat."""
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(_REQUEST_TIMEOUT + 2 * _TICK + 1.0)
        if self._owns_context and not self._context.closed and not self._thread.is_alive():
            self._context.term()

    @property
    def closed(self) -> bool:
        return self._stop.is_set()

    @property
    def running(self) -> bool:
        """Whether the thread still runs (after ``close``, only while it finishes a request)."""
        return self._thread.is_alive()

    def __enter__(self) -> SnapshotCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        s = self.state()
        how = "connected" if s.connected else "not connected"
        return f"SnapshotCache({self.endpoint!r}, pub={s.pub!r}) [{how}, cycle {s.cycle}]"

    def _stale_limit(self) -> float:
        """The staleness limit in force (called under the lock)."""
        if self._stale_override is not None:
            return self._stale_override
        return stale_after(self._interval)

    def _error(self, age: Optional[float]) -> str:
        """Why there is no current snapshot, as a sentence (called under the lock)."""
        if self._failure is not None:
            return self._failure
        if self._stop.is_set():
            return f"the cache for {self.endpoint} is closed"
        if age is None or self._received_wall is None:
            waited = max(0.0, time.time() - self._since)
            return f"{self._waiting_for} (for {waited:.1f} s, since {_clock(self._since)})"
        return (f"no snapshot from {self._pub} for {age:.1f} s (since {_clock(self._received_wall)}); "
                f"the service at {self.endpoint} may have stopped")

    # -- the thread --------------------------------------------------------

    def _run(self) -> None:
        client: Optional[StatusClient] = None
        sub: Optional[StatusSubscriber] = None
        # When to ask the control socket next (0: now); None: no need to.
        ask_at: Optional[float] = 0.0 if self._control is not None else None
        last_cycle: Optional[int] = None
        current = False  # snapshots arrive in time (for logging the changes only)
        try:
            if self._control is not None:
                client = StatusClient(self._control, timeout=_REQUEST_TIMEOUT,
                                      context=self._context)
            while not self._stop.is_set():
                now = time.monotonic()
                if client is not None and ask_at is not None and now >= ask_at:
                    ask_at = None if self._ask_configuration(client) else now + _RETRY_INTERVAL
                with self._lock:
                    pub = self._pub
                    quiet = (self._received is None
                             or now - self._received > self._stale_limit())
                if pub is not None and (sub is None or sub.endpoint != pub):
                    if sub is not None:
                        sub.close()
                    sub = self._subscribe(pub)
                if sub is None:
                    self._stop.wait(_TICK)
                    continue
                if quiet and current:
                    log.warning("%s", self.state().error)
                current = current and not quiet
                if quiet and client is not None and ask_at is None:
                    # The stream stopped: the service may come back elsewhere.
                    ask_at = time.monotonic() + _RETRY_INTERVAL
                snapshot = self._receive(sub)
                if snapshot is None:
                    continue
                if snapshot.msg_val != "status":
                    self._call(self.on_notification, snapshot)
                    continue
                if not current:
                    log.info("snapshots from %s arrive (cycle %d)", pub, snapshot.cycle)
                    current = True
                restarted = last_cycle is not None and snapshot.cycle <= last_cycle
                last_cycle = snapshot.cycle
                self._keep(snapshot)
                if client is not None and (quiet or restarted):
                    # Back after a silence, or a new service: its configuration may differ.
                    ask_at = 0.0
                self._call(self.on_snapshot, snapshot)
        except Exception as e:  # noqa: BLE001 - the thread must say why it died, not vanish
            log.exception("the odin-status cache for %s stopped on an unexpected error",
                          self.endpoint)
            with self._lock:
                self._failure = f"the cache for {self.endpoint} stopped on an unexpected error: {e!r}"
        finally:
            if sub is not None:
                sub.close()
            if client is not None:
                client.close()
            with self._arrived:
                self._arrived.notify_all()

    def _ask_configuration(self, client: StatusClient) -> bool:
        """One ``request_configuration``; True when it was answered."""
        try:
            reply = client.configuration()
        except OdinStatusError as e:
            log.debug("request_configuration to %s: %s", self._control, e)
            return False
        if not isinstance(reply, dict):
            log.warning("request_configuration from %s is not an object: %r", self._control, reply)
            return False
        pub = self._fixed_pub
        learned = reply.get("pub_endpoint")
        if pub is None and isinstance(learned, str) and self._control is not None:
            pub = pub_from_configuration(learned, self._control)
        rate = reply.get("rate")
        with self._lock:
            self._configuration = reply
            if isinstance(rate, (int, float)) and not isinstance(rate, bool) and rate > 0 \
                    and self._interval is None:
                self._interval = 1.0 / rate
            if pub is None:
                self._waiting_for = (f"the service at {self.endpoint} names no pub_endpoint "
                                     "in its configuration")
                return True
            if pub != self._pub or self._snapshot is None:
                self._waiting_for = f"no snapshot yet from {pub}"
                if pub != self._pub:
                    self._since = time.time()
            self._pub = pub
        return True

    def _subscribe(self, pub: str) -> Optional[StatusSubscriber]:
        try:
            return StatusSubscriber(pub, timeout=_TICK, hwm=4, context=self._context)
        except OdinStatusError as e:
            with self._lock:
                self._waiting_for = f"cannot subscribe to {pub}: {e}"
            self._stop.wait(_RETRY_INTERVAL)
            return None

    def _receive(self, sub: StatusSubscriber) -> Optional[Snapshot]:
        try:
            return sub.receive(timeout=_TICK, statuses_only=False)
        except OdinStatusError as e:
            log.warning("ignoring a message from %s: %s", sub.endpoint, e)
            return None

    def _keep(self, snapshot: Snapshot) -> None:
        interval = _update_interval(snapshot.tree)
        with self._arrived:
            self._snapshot = snapshot
            self._received = time.monotonic()
            self._received_wall = time.time()
            if interval is not None:
                self._interval = interval
            self._arrived.notify_all()

    def _call(self, callback: Optional[Callable[[Snapshot], None]], snapshot: Snapshot) -> None:
        if callback is None:
            return
        try:
            callback(snapshot)
        except Exception:  # noqa: BLE001 - a caller's bug must not stop the cache
            log.exception("a callback of the odin-status cache for %s raised", self.endpoint)


def _update_interval(tree: Any) -> Optional[float]:
    """``monitor/update_interval`` of a tree, when it is a positive number."""
    monitor = tree.get("monitor") if isinstance(tree, dict) else None
    value = monitor.get("update_interval") if isinstance(monitor, dict) else None
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        return float(value)
    return None
