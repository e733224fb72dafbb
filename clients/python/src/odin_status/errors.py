"""Exceptions, all under one base so a caller can catch everything from us at once."""

from __future__ import annotations

from typing import Optional


class OdinStatusError(Exception):
    """Base of every error this package raises on purpose."""


class StatusError(OdinStatusError):
    """The service refused a request (a nack); ``error`` is its sentence, verbatim."""

    def __init__(self, error: str, msg_val: str = "", msg_id: Optional[int] = None) -> None:
        super().__init__(error)
        self.error = error
        self.msg_val = msg_val
        self.id = msg_id

    def __str__(self) -> str:
        return self.error


class StatusTimeout(OdinStatusError):
    """No reply came in time. The client has already replaced its socket."""


class StatusProtocolError(OdinStatusError):
    """A message that is not an IpcMessage we can use (bad encoding, wrong id, ...)."""
