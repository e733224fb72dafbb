"""The PV table: which leaf of the tree becomes which record, under which
name, with which value and alarm.

One row per PV, read top to bottom like the issue's table; ``pv_key`` is the
only place a tree key becomes part of a name. Everything here is a pure
function of a tree, so the mapping is checked without EPICS, and nothing here
imports softioc.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

#: EPICS severities and alarm statuses (EPICS base's alarm.h), so that the
#: table and the update logic need no softioc import.
NO_ALARM, MINOR, MAJOR, INVALID = 0, 1, 2, 3
HIHI_ALARM, HIGH_ALARM, LOLO_ALARM, LOW_ALARM = 3, 4, 5, 6
UDF_ALARM, TIMEOUT_ALARM = 17, 10

#: A record name longer than this is refused by EPICS base (PVNAME_STRINGSZ - 1).
MAX_PV_NAME = 60
#: A longin holds a signed 32-bit value.
LONG_MAX = 2**31 - 1


def pv_key(key: str) -> str:
    """A tree key as it appears in a PV name: every character outside
    ``[A-Za-z0-9_-]`` becomes ``_`` (``/data`` -> ``_data``)."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", key)


# -- the PV table --------------------------------------------------------------

AI, LONGIN, BI, MBBI = "ai", "longin", "bi", "mbbi"

#: process_summary/<name>/state, in the order of the mbbi's states, with the
#: severity each gives.
STATES: Tuple[Tuple[str, int], ...] = (
    ("ok", NO_ALARM), ("missing", MAJOR), ("extra", MINOR), ("unknown", NO_ALARM))


@dataclass(frozen=True)
class Row:
    """One PV of an item: ``P:<SECTION>:<key>:<suffix>`` from ``<node>/<path>``.

    ``severity`` says whether the node's severity reaches this PV, and as
    which alarm status: ``high`` (HIGH/HIHI, the value rising is the trouble),
    ``low`` (LOW/LOLO: free space falling) or None (it never does).
    """

    suffix: str
    path: Tuple[Any, ...]
    kind: str
    desc: str
    egu: str = ""
    prec: int = 0
    severity: Optional[str] = "high"
    znam: str = ""
    onam: str = ""


@dataclass(frozen=True)
class Section:
    """A kind of item: the PVs made for each child of ``block`` in the tree
    (or for ``block`` itself when ``per_item`` is false)."""

    name: str
    block: str
    per_item: bool
    rows: Tuple[Row, ...]


TABLE: Tuple[Section, ...] = (
    Section("HOST", "host", False, (
        Row("CPU", ("cpu_percent",), AI, "CPU use of the host", "%", 1),
        Row("MEM", ("memory_percent",), AI, "Memory use of the host", "%", 1),
        Row("LOAD1", ("load_average", 0), AI, "Load average over 1 min", "", 2),
        Row("UPTIME", ("uptime",), AI, "Time since the host booted", "s", 0),
    )),
    Section("DISK", "disk", True, (
        Row("PERCENT", ("percent",), AI, "Disk space used", "%", 1),
        Row("FREE", ("free",), AI, "Disk space free", "B", 0, severity="low"),
        Row("TOTAL", ("total",), AI, "Disk size", "B", 0),
        Row("TIME_TO_FULL", ("time_to_full",), AI, "Time until full at this rate", "s", 0,
            severity="low"),
    )),
    Section("NET", "network", True, (
        Row("RX_RATE", ("bytes_recv_rate",), AI, "Bytes received per second", "B/s", 0),
        Row("TX_RATE", ("bytes_sent_rate",), AI, "Bytes sent per second", "B/s", 0),
        Row("RX_DROP_RATE", ("dropin_rate",), AI, "Incoming packets dropped per s", "/s", 1),
        Row("TX_DROP_RATE", ("dropout_rate",), AI, "Outgoing packets dropped per s", "/s", 1),
        Row("LINK", ("link_up",), BI, "Interface link", znam="Down", onam="Up"),
    )),
    Section("PROC", "process_summary", True, (
        Row("COUNT", ("count",), LONGIN, "Processes running now", severity=None),
        Row("EXPECTED", ("expected",), LONGIN, "Processes expected", severity=None),
        Row("RESTARTS", ("restarts",), LONGIN, "Restarts since the service began",
            severity=None),
        Row("CPU", ("cpu_percent",), AI, "CPU use, % of one core", "%", 1),
        Row("RSS", ("memory_rss",), AI, "Resident memory", "B", 0),
        Row("UPTIME", ("uptime",), AI, "Age of the oldest process", "s", 1, severity=None),
        Row("STATE", ("state",), MBBI, "Processes running as expected", severity=None),
    )),
)

#: The PVs of a whole service, beside its items.
CONNECTED = Row("CONNECTED", (), BI, "Snapshots arriving in time", znam="No", onam="Yes",
                severity=None)
CYCLE = Row("CYCLE", (), LONGIN, "Snapshot id (cycle), mod 2^31", severity=None)


# -- reading the tree ---------------------------------------------------------------

MISSING = object()


def walk(node: Any, path: Sequence[Any]) -> Any:
    """The value at ``path`` below ``node`` (keys and list indexes), or MISSING."""
    for step in path:
        if isinstance(step, int):
            if not isinstance(node, list) or not -1 < step < len(node):
                return MISSING
        elif not isinstance(node, dict) or step not in node:
            return MISSING
        node = node[step]
    return node


def record_value(row: Row, value: Any) -> Union[int, float, None]:
    """A tree leaf as the value its record holds (an int for longin, bi and
    mbbi, a float for ai); None when it has none (null, absent, or of a type
    the record cannot hold)."""
    if row.kind == MBBI:
        names = [name for name, _ in STATES]
        return names.index(value) if value in names else None
    if isinstance(value, bool):
        return int(value) if row.kind == BI else None
    if not isinstance(value, (int, float)) or value != value:  # NaN is no value either
        return None
    if row.kind == LONGIN:
        return max(-LONG_MAX - 1, min(LONG_MAX, int(value)))
    return float(value) if row.kind == AI else None


def node_severity(node: Any) -> int:
    """The EPICS severity of a node's ``severity`` leaf (no leaf: no alarm)."""
    leaf = node.get("severity") if isinstance(node, dict) else None
    return {"minor": MINOR, "major": MAJOR}.get(leaf, NO_ALARM) if isinstance(leaf, str) else NO_ALARM


def process_severity(tree: Any, name: str) -> int:
    """The worst severity of a name's processes: ``process/<name>/<pid>/severity``
    (the limits apply per process; PROC:<name> shows their totals)."""
    pids = walk(tree, ("process", name))
    if not isinstance(pids, dict):
        return NO_ALARM
    return max((node_severity(p) for p in pids.values()), default=NO_ALARM)


def alarm_status(row: Row, severity: int) -> int:
    if severity == NO_ALARM:
        return NO_ALARM
    if row.severity == "low":
        return LOLO_ALARM if severity == MAJOR else LOW_ALARM
    return HIHI_ALARM if severity == MAJOR else HIGH_ALARM


def snapshot_time(timestamp: str, fallback: float) -> float:
    """A snapshot's ``timestamp`` (the service host's local time, no zone) as
    epoch seconds, read in this host's zone; ``fallback`` when it cannot be read."""
    try:
        return datetime.fromisoformat(timestamp).timestamp()
    except (TypeError, ValueError):
        return fallback


def configured_keys(configuration: Optional[Dict[str, Any]], block: str) -> List[str]:
    """The tree keys ``request_configuration`` promises under ``block``, so that
    an item configured but absent at start (a disk not mounted yet) has PVs."""
    if not isinstance(configuration, dict):
        return []
    entries = {"disk": "disks", "network": "interfaces", "process_summary": "processes"}
    listed = configuration.get(entries.get(block, ""))
    if not isinstance(listed, list):
        return []
    keys = []
    for entry in listed:
        if not isinstance(entry, str):
            continue
        if block == "disk":
            keys.append(entry.replace("/", "_"))
        elif block == "process_summary":
            keys.append(re.sub(r":[0-9]+$", "", entry))
        else:
            keys.append(entry)
    return keys
