"""Requests on the control socket: one call, one reply, and never a hang.

ZeroMQ's REQ socket is strict: until the reply to its last request arrives it
refuses to send another, so one lost reply would wedge it for good. On a
timeout the client therefore closes its socket (linger 0, so nothing queued
survives) and opens a fresh one, the ZeroMQ guide's "lazy pirate", and the
next call works without the caller doing anything.
A reply that still arrives for the old request goes to the closed socket and
is dropped, so it can never be mistaken for the answer to a later request.
"""

from __future__ import annotations

import time
from typing import Any, Dict, Optional

import zmq

from . import message
from ._owner import SocketOwner
from .errors import OdinStatusError, StatusError, StatusProtocolError, StatusTimeout

DEFAULT_CTRL = "tcp://127.0.0.1:5040"


def _tree_params(path: str, metadata: bool) -> Dict[str, Any]:
    """``get``'s and ``status``'s params, checked before anything is sent."""
    if not isinstance(path, str):
        raise TypeError(f"path must be a str, not {type(path).__name__}")
    if not isinstance(metadata, bool):
        raise TypeError(f"metadata must be a bool, not {type(metadata).__name__}")
    return {"path": path, "metadata": metadata}


def _ms_left(deadline: float) -> int:
    """Milliseconds to the deadline for zmq's poll, which treats -1 as forever."""
    return max(0, int((deadline - time.monotonic()) * 1000))


class StatusClient(SocketOwner):
    """A connection to an odin-status control socket (or any odin-data IpcMessage ROUTER).

    ``timeout`` (seconds) bounds every call, sending included. Each request
    carries an incrementing unsigned 32-bit ``id``, and a reply must carry the
    same one. Not thread-safe: use one client per thread, as with any ZeroMQ socket.
    """

    def __init__(self, endpoint: str = DEFAULT_CTRL, timeout: float = 2.0,
                 context: Optional[zmq.Context[Any]] = None) -> None:
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
            raise ValueError(f"timeout must be a number of seconds above 0, not {timeout!r}")
        self.endpoint = endpoint
        self.timeout = float(timeout)
        self._init_context(context)
        self._socket: Optional[zmq.Socket[Any]] = None
        self._last_id = 0
        try:
            self._open()
        except BaseException:
            self.close()
            raise

    # -- the commands ------------------------------------------------------

    def get(self, path: str = "", metadata: bool = False) -> Any:
        """The tree at ``path`` (``""`` for all); a leaf is ``{"value": v}``."""
        return self.request("get", _tree_params(path, metadata))

    def status(self, path: str = "", metadata: bool = False) -> Any:
        """odin-data's ``status``: the whole tree, or with ``path`` and
        ``metadata`` exactly what :meth:`get` answers."""
        params = _tree_params(path, metadata)
        # Without them, no params at all, as odin-data's own clients send it.
        return self.request("status", params if path or metadata else None)

    def configuration(self, metadata: bool = False) -> Any:
        """The configuration in force (``request_configuration``); with
        ``metadata`` each value as ``{"value", "writeable", "type"}``, writeable
        where :meth:`configure` may change it."""
        if not isinstance(metadata, bool):
            raise TypeError(f"metadata must be a bool, not {type(metadata).__name__}")
        return self.request("request_configuration", {"metadata": True} if metadata else None)

    def reset_statistics(self) -> None:
        """Starts the lifecycle counts (starts, exits, restarts, last_start,
        last_exit), ``monitor/max_cycle_duration`` and ``monitor/sampling_errors``
        again from the next snapshot. Only a service started with
        ``--allow-configure`` accepts it; a refusal raises StatusError."""
        self.request("reset_statistics")

    def configure(self, changes: Dict[str, Any]) -> Any:
        """Changes what is monitored, e.g. ``{"processes": {"add": ["fp"]}, "rate": 5}``;
        returns the new configuration. Only a service started with
        ``--allow-configure`` accepts it; a refusal raises StatusError."""
        if not isinstance(changes, dict):
            raise TypeError(f"changes must be a dict, not {type(changes).__name__}")
        return self.request("configure", changes)

    def version(self) -> Any:
        """``{"version": {...}, "name": "odin-status"}`` (``request_version``)."""
        return self.request("request_version")

    def commands(self) -> Any:
        """``{"supported": [...]}`` (``request_commands``)."""
        return self.request("request_commands")

    def request(self, msg_val: str, params: Optional[Dict[str, Any]] = None) -> Any:
        """Sends one ``cmd`` and returns the ack's ``params``.

        Raises StatusError for a nack, StatusTimeout when no reply comes within
        ``timeout``, StatusProtocolError for a reply that is not a usable
        IpcMessage. After a timeout or a bad reply the socket has been replaced.
        """
        sock = self._require_socket()
        self._last_id = (self._last_id + 1) % message.ID_MODULUS
        msg_id = self._last_id
        frame = message.encode_request(msg_val, msg_id, params)
        deadline = time.monotonic() + self.timeout
        try:
            if not sock.poll(_ms_left(deadline), zmq.POLLOUT):
                raise StatusTimeout(f"cannot send to {self.endpoint} within {self.timeout:g} s")
            sock.send(frame, zmq.NOBLOCK)
            if not sock.poll(_ms_left(deadline), zmq.POLLIN):
                raise StatusTimeout(
                    f"no reply from {self.endpoint} within {self.timeout:g} s "
                    f"to {msg_val} (id {msg_id}); is the service running?")
            reply = message.decode(sock.recv(zmq.NOBLOCK))
        except OdinStatusError:
            self._reopen()
            raise
        if reply["id"] != msg_id:
            # A REQ socket takes one reply per request: this one answers something else.
            self._reopen()
            raise StatusProtocolError(
                f"reply id {reply['id']} does not match request id {msg_id}; reply discarded")
        params = reply.get("params", {})
        if reply["msg_type"] == "nack":
            error = params.get("error") if isinstance(params, dict) else None
            raise StatusError(error if isinstance(error, str) else f"refused: {params!r}",
                              reply["msg_val"], msg_id)
        if reply["msg_type"] != "ack":
            raise StatusProtocolError(f"reply msg_type is {reply['msg_type']!r}, not ack or nack")
        return params

    # -- socket lifetime ---------------------------------------------------

    def _open(self) -> None:
        sock = self._context.socket(zmq.REQ)
        sock.linger = 0
        try:
            sock.connect(self.endpoint)
        except zmq.ZMQError as e:
            sock.close(linger=0)
            raise OdinStatusError(f"cannot connect to {self.endpoint!r}: {e}") from e
        self._socket = sock

    def _reopen(self) -> None:
        if self._socket is not None:
            self._socket.close(linger=0)
            self._socket = None
        self._open()

    def _require_socket(self) -> zmq.Socket[Any]:
        if self._socket is None:
            raise OdinStatusError("this StatusClient is closed")
        return self._socket

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"StatusClient({self.endpoint!r}, timeout={self.timeout:g}) [{state}]"
