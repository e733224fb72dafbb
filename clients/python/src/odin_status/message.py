"""The IpcMessage wire form, kept apart from sockets so both clients share one reading of it.

A message is one frame: a JSON object (requests, replies, and by default the
published snapshots) or the same object in MessagePack (``--pub-encoding msgpack``).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Dict, Optional

import msgpack  # type: ignore[import-untyped]  # no stubs; unpackb returns Any

from .errors import StatusProtocolError

#: Request ids are unsigned 32-bit and wrap, as in odin-data.
ID_MODULUS = 1 << 32

_JSON_WHITESPACE = b" \t\r\n"


def timestamp() -> str:
    """Local time as odin-data writes it: ``2026-11-26T06:08:46.456235`` (no zone)."""
    return datetime.now().strftime("%Y-%m-%dT%H:%M:%S.%f")


def encode_request(msg_val: str, msg_id: int, params: Optional[Dict[str, Any]] = None) -> bytes:
    """One ``cmd`` request frame."""
    return json.dumps({
        "msg_type": "cmd",
        "msg_val": msg_val,
        "id": msg_id,
        "timestamp": timestamp(),
        "params": params or {},
    }).encode()


def decode(frame: bytes) -> Dict[str, Any]:
    """A JSON or MessagePack frame as a dict, told apart by its first byte.

    JSON objects start with ``{`` (after optional whitespace); MessagePack maps
    start with a fixmap byte (0x80-0x8f) or map16/map32 (0xde, 0xdf).
    """
    first = frame[:1]
    value: Dict[str, Any]
    try:
        if frame.lstrip(_JSON_WHITESPACE)[:1] == b"{":
            value = json.loads(frame)
        elif first and (0x80 <= first[0] <= 0x8F or first[0] in (0xDE, 0xDF)):
            value = msgpack.unpackb(frame, raw=False)
        else:
            raise StatusProtocolError(
                f"message is neither a JSON object nor a MessagePack map "
                f"(starts with {frame[:16]!r})")
    except (ValueError, msgpack.UnpackException) as e:
        # json.JSONDecodeError, UnicodeDecodeError and msgpack's errors are ValueErrors.
        raise StatusProtocolError(f"message cannot be decoded: {e}") from e
    msg_id = value.get("id")
    if not isinstance(msg_id, int) or isinstance(msg_id, bool) or not 0 <= msg_id < ID_MODULUS:
        raise StatusProtocolError(f"message id must be an unsigned 32-bit integer, not {msg_id!r}")
    for key in ("msg_type", "msg_val"):
        if not isinstance(value.get(key), str):
            raise StatusProtocolError(f"message {key} must be a string, not {value.get(key)!r}")
    return value
