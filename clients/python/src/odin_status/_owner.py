"""What a client and a subscriber share: one socket, maybe its own context,
closed once (and again harmlessly), usable as a context manager."""

from __future__ import annotations

from types import TracebackType
from typing import Any, Optional, Type, TypeVar

import zmq

_Self = TypeVar("_Self", bound="SocketOwner")


class SocketOwner:
    _socket: Optional[zmq.Socket[Any]]

    def _init_context(self, context: Optional[zmq.Context[Any]]) -> None:
        self._socket = None
        self._owns_context = context is None
        self._context = zmq.Context() if context is None else context

    def close(self) -> None:
        """Closes the socket (and the context, if this object made it). Safe to repeat."""
        if self._socket is not None:
            self._socket.close(linger=0)
            self._socket = None
        if self._owns_context and not self._context.closed:
            self._context.term()

    @property
    def closed(self) -> bool:
        return self._socket is None

    def __enter__(self: _Self) -> _Self:
        return self

    def __exit__(self, exc_type: Optional[Type[BaseException]],
                 exc: Optional[BaseException], tb: Optional[TracebackType]) -> None:
        self.close()
