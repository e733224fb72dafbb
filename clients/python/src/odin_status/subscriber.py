"""Status snapshots from the publisher, with lost ones counted rather than hidden.

The service publishes the whole tree every cycle with the cycle number as the
message ``id`` (1, 2, 3, ...). PUB/SUB drops messages for a subscriber that
falls behind, so the subscriber compares each cycle with the previous one and
reports how many were skipped: a plot or an alarm can then say "data missing"
instead of drawing a straight line through the gap.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Optional

import zmq

from . import message
from ._owner import SocketOwner
from .errors import OdinStatusError

DEFAULT_PUB = "tcp://127.0.0.1:5041"

#: Cycle numbers run 1..2**32-1 and then start again at 1 (0 is never sent).
_CYCLE_RING = message.ID_MODULUS - 1


@dataclass(frozen=True)
class Snapshot:
    """One published message.

    ``cycle`` is the message id and ``tree`` its params (the whole tree for a
    status message). ``missed`` is how many cycles were skipped since the
    previous status snapshot this subscriber saw: 0 for the first, and always
    0 for messages whose ``msg_val`` is not "status".
    """

    cycle: int
    timestamp: str
    tree: Any
    msg_val: str
    missed: int = 0


def cycles_missed(previous: int, cycle: int) -> int:
    """Cycles skipped between two status snapshots, across the 32-bit wrap.

    A cycle at or before the previous one (a restarted service) starts a new
    count rather than reporting four billion missed cycles.
    """
    step = (cycle - previous) % _CYCLE_RING
    if step == 0 or step > _CYCLE_RING // 2:
        return 0
    return step - 1


class StatusSubscriber(SocketOwner):
    """A SUB socket on the status publisher; JSON or MessagePack is detected per frame.

    ``hwm`` is how many snapshots ZeroMQ queues here before it drops newer ones
    (which then show up as ``missed``): a slow reader gets recent data and a
    count of what it lost rather than an ever older backlog. ``on_gap`` is
    called with each snapshot whose ``missed`` is above 0.
    ``receive`` waits ``timeout`` seconds by default; iterating waits forever.
    """

    def __init__(self, endpoint: str = DEFAULT_PUB, timeout: float = 2.0, hwm: int = 4,
                 on_gap: Optional[Callable[[Snapshot], None]] = None,
                 context: Optional[zmq.Context[Any]] = None) -> None:
        self.timeout = _seconds(timeout)
        if isinstance(hwm, bool) or not isinstance(hwm, int) or hwm < 0:
            raise ValueError(f"hwm must be an int of 0 (no limit) or more, not {hwm!r}")
        self.endpoint = endpoint
        self.on_gap = on_gap
        #: Cycles skipped in total since this subscriber started.
        self.missed_total = 0
        #: Status snapshots received.
        self.received = 0
        self._last_cycle: Optional[int] = None
        self._init_context(context)
        self._socket: Optional[zmq.Socket[Any]] = None
        sock = self._context.socket(zmq.SUB)
        sock.linger = 0
        sock.rcvhwm = hwm
        sock.setsockopt(zmq.SUBSCRIBE, b"")
        try:
            sock.connect(endpoint)
        except zmq.ZMQError as e:
            sock.close(linger=0)
            self.close()
            raise OdinStatusError(f"cannot connect to {endpoint!r}: {e}") from e
        self._socket = sock

    def receive(self, timeout: Optional[float] = None,
                statuses_only: bool = True) -> Optional[Snapshot]:
        """The next snapshot, or None when none comes within ``timeout`` seconds
        (default: the subscriber's ``timeout``).

        With ``statuses_only`` (the default) messages whose ``msg_val`` is not
        ``"status"`` are skipped; without it they are returned, with ``missed`` 0.
        A frame that is not an IpcMessage raises StatusProtocolError.
        """
        if self._socket is None:
            raise OdinStatusError("this StatusSubscriber is closed")
        wait = self.timeout if timeout is None else _seconds(timeout, allow_zero=True)
        deadline = time.monotonic() + wait
        while True:
            left_ms = max(0, int((deadline - time.monotonic()) * 1000))
            if not self._socket.poll(left_ms, zmq.POLLIN):
                return None
            snapshot = self._accept(message.decode(self._socket.recv(zmq.NOBLOCK)))
            if snapshot.msg_val == "status" or not statuses_only:
                return snapshot

    def _accept(self, msg: Any) -> Snapshot:
        cycle, msg_val = msg["id"], msg["msg_val"]
        missed = 0
        if msg_val == "status":
            if self._last_cycle is not None:
                missed = cycles_missed(self._last_cycle, cycle)
            self._last_cycle = cycle
            self.missed_total += missed
            self.received += 1
        snapshot = Snapshot(cycle=cycle, timestamp=str(msg.get("timestamp", "")),
                            tree=msg.get("params", {}), msg_val=msg_val, missed=missed)
        if missed and self.on_gap is not None:
            self.on_gap(snapshot)
        return snapshot

    def __iter__(self) -> Iterator[Snapshot]:
        """Status snapshots, forever (until the subscriber is closed)."""
        while self._socket is not None:
            snapshot = self.receive(timeout=1.0)
            if snapshot is not None:
                yield snapshot

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"StatusSubscriber({self.endpoint!r}, missed_total={self.missed_total}) [{state}]"


def _seconds(value: Any, allow_zero: bool = False) -> float:
    least = "0 or more" if allow_zero else "above 0"
    if (isinstance(value, bool) or not isinstance(value, (int, float))
            or not (value >= 0 if allow_zero else value > 0)):
        raise ValueError(f"timeout must be a number of seconds {least}, not {value!r}")
    return float(value)
