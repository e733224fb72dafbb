"""odin-status-ioc: the status of one or more odin-status services as EPICS process variables.

At the facilities that run odin detectors, operators watch EPICS screens, the
alarm handler pages them and the archiver keeps history; none of them reads
JSON. This command turns each published snapshot into record updates, with
the ``severity`` leaves the service computes as EPICS alarm severities, so a
full disk or a missing frame processor reaches them like any other alarm.

The data flow, top to bottom:

- one ``SnapshotCache`` per service (``--pub [NAME=]ENDPOINT``) follows its
  publisher on a thread of its own and says when it went quiet;
- before ``iocInit`` the records are made from the first snapshot and the
  configuration (``request_configuration``): ``TABLE`` below maps tree paths
  to records, one row per PV, and ``pv_key`` is the only place names are made;
- after ``iocInit`` every record update runs on the asyncio dispatcher's
  loop, one thread: the cache's thread only asks the loop to refresh, and a
  tick on the loop notices when a service goes stale. pythonSoftIOC's
  ``set`` is not promised to be safe from several threads at once.

softioc is an optional dependency (``pip install "odin-status-client[epics]"``):
it is imported only by ``main``, so ``import odin_status`` never needs it.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Dict, List, Optional, Sequence, Set, Tuple, Union

from .cache import CacheState, SnapshotCache

log = logging.getLogger("odin-status-ioc")

#: EPICS severities and alarm statuses (EPICS base's alarm.h), so that the
#: table and the update logic need no softioc import.
NO_ALARM, MINOR, MAJOR, INVALID = 0, 1, 2, 3
HIHI_ALARM, HIGH_ALARM, LOLO_ALARM, LOW_ALARM = 3, 4, 5, 6
UDF_ALARM, TIMEOUT_ALARM = 17, 10

#: A record name longer than this is refused by EPICS base (PVNAME_STRINGSZ - 1).
MAX_PV_NAME = 60
#: A longin holds a signed 32-bit value.
_LONG_MAX = 2**31 - 1
#: How often the loop checks whether a service went quiet.
_TICK = 0.1
#: How long a start waits for the configuration once a snapshot has come.
_CONFIGURATION_WAIT = 2.0


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

_MISSING = object()


def _walk(node: Any, path: Sequence[Any]) -> Any:
    """The value at ``path`` below ``node`` (keys and list indexes), or _MISSING."""
    for step in path:
        if isinstance(step, int):
            if not isinstance(node, list) or not -1 < step < len(node):
                return _MISSING
        elif not isinstance(node, dict) or step not in node:
            return _MISSING
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
        return max(-_LONG_MAX - 1, min(_LONG_MAX, int(value)))
    return float(value) if row.kind == AI else None


def node_severity(node: Any) -> int:
    """The EPICS severity of a node's ``severity`` leaf (no leaf: no alarm)."""
    leaf = node.get("severity") if isinstance(node, dict) else None
    return {"minor": MINOR, "major": MAJOR}.get(leaf, NO_ALARM) if isinstance(leaf, str) else NO_ALARM


def process_severity(tree: Any, name: str) -> int:
    """The worst severity of a name's processes: ``process/<name>/<pid>/severity``
    (the limits apply per process; PROC:<name> shows their totals)."""
    pids = _walk(tree, ("process", name))
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


# -- the services and their PVs ------------------------------------------------------

@dataclass
class Pv:
    """One record and where its value comes from."""

    name: str
    row: Row
    section: Optional[Section]
    key: Optional[str]
    record: Any = None


@dataclass
class Service:
    """One odin-status service behind this IOC and the PVs made for it."""

    name: Optional[str]
    prefix: str
    cache: SnapshotCache
    pvs: List[Pv] = field(default_factory=list)
    #: (section name, tree key) of every item with PVs, to notice new ones.
    items: Dict[Tuple[str, str], str] = field(default_factory=dict)
    #: New items already logged (each once).
    told: Set[Tuple[str, str]] = field(default_factory=set)
    shown_cycle: Optional[int] = None
    shown_connected: Optional[bool] = None

    @property
    def label(self) -> str:
        return f"service {self.name} ({self.cache.endpoint})" if self.name \
            else f"the service at {self.cache.endpoint}"


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


def item_keys(state: CacheState, section: Section) -> List[str]:
    """The items of a section: those in the tree, then configured ones not in it."""
    seen: List[str] = []
    nodes = _walk(state.tree, (section.block,))
    if isinstance(nodes, dict):
        seen.extend(str(k) for k in nodes)
    for key in configured_keys(state.configuration, section.block):
        if key not in seen:
            seen.append(key)
    return seen


def plan(service: Service, state: CacheState) -> None:
    """Fills ``service.pvs`` from a snapshot and configuration: the PV table
    applied to what the service has. Clashing or too long names are logged
    and left out."""
    taken: Dict[str, str] = {}

    def add(row: Row, section: Optional[Section], key: Optional[str], where: str) -> None:
        middle = "" if section is None else f"{section.name}:" + (
            "" if key is None else f"{pv_key(key)}:")
        name = f"{service.prefix}:{middle}{row.suffix}"
        if len(name) > MAX_PV_NAME:
            log.error("%s: no PV for %s: its name %s is longer than EPICS's %d characters",
                      service.label, where, name, MAX_PV_NAME)
            return
        if name in taken:
            log.error("%s: no PV for %s: its name %s is already that of %s",
                      service.label, where, name, taken[name])
            return
        taken[name] = where
        service.pvs.append(Pv(name, row, section, key))

    add(CONNECTED, None, None, "the connection")
    add(CYCLE, None, None, "the cycle")
    for section in TABLE:
        keys: List[Optional[str]] = [*item_keys(state, section)] if section.per_item else [None]
        for key in keys:
            where = section.block if key is None else f"{section.block}/{key}"
            if key is not None:
                service.items[(section.name, key)] = where
            for row in section.rows:
                add(row, section, key, where)


def create_records(service: Service, builder: Any) -> None:
    """Makes the records of ``service.pvs`` (before iocInit)."""
    for pv in service.pvs:
        row = pv.row
        # TSE -2: the time is the one given with each value (the snapshot's),
        # not the moment EPICS processes the record.
        common: Dict[str, Any] = {"DESC": row.desc[:40], "TSE": -2}
        if row.kind == AI:
            pv.record = builder.aIn(pv.name, EGU=row.egu or None, PREC=row.prec, **common)
        elif row.kind == LONGIN:
            pv.record = builder.longIn(pv.name, EGU=row.egu or None, **common)
        elif row.kind == BI:
            zsv = "MAJOR" if row is CONNECTED else "NO_ALARM"
            pv.record = builder.boolIn(pv.name, row.znam, row.onam, ZSV=zsv, **common)
        else:
            pv.record = builder.mbbIn(pv.name, *STATES, **common)


# -- updates, on the dispatcher's loop ----------------------------------------------------

def refresh(service: Service) -> None:
    """Brings the service's records up to the cache's latest state: the new
    snapshot's values and severities, or INVALID everywhere when stale."""
    state = service.cache.state()
    wall = time.time()
    if state.connected and state.snapshot is not None:
        if state.cycle == service.shown_cycle and service.shown_connected:
            return
        show_snapshot(service, state, snapshot_time(state.snapshot.timestamp, wall))
        notice_new_items(service, state)
    elif service.shown_connected is not False:
        show_stale(service, state, wall)
    service.shown_cycle = state.cycle
    service.shown_connected = state.connected


def show_snapshot(service: Service, state: CacheState, stamp: float) -> None:
    tree = state.tree
    for pv in service.pvs:
        if pv.row is CONNECTED:
            pv.record.set(1, timestamp=stamp)
            continue
        if pv.row is CYCLE:
            pv.record.set((state.cycle or 0) % (_LONG_MAX + 1), timestamp=stamp)
            continue
        assert pv.section is not None
        node_path: Tuple[Any, ...] = (pv.section.block,) if pv.key is None \
            else (pv.section.block, pv.key)
        node = _walk(tree, node_path)
        value = record_value(pv.row, _walk(node, pv.row.path))
        if value is None:
            # Null, or the item has left the tree: the last value stays, marked invalid.
            pv.record.set_alarm(INVALID, UDF_ALARM, timestamp=stamp)
            continue
        severity = NO_ALARM
        if pv.row.severity is not None:
            severity = process_severity(tree, pv.key or "") if pv.section.name == "PROC" \
                else node_severity(node)
        pv.record.set(value, severity=severity, alarm=alarm_status(pv.row, severity),
                      timestamp=stamp)


def show_stale(service: Service, state: CacheState, stamp: float) -> None:
    """Every PV INVALID (TIMEOUT), CONNECTED 0 (MAJOR through its ZSV), values kept;
    stamped with the time the silence was noticed."""
    if service.shown_connected:
        log.warning("%s: %s; its PVs are INVALID until it is back", service.label, state.error)
    for pv in service.pvs:
        if pv.row is CONNECTED:
            pv.record.set(0, timestamp=stamp)
        else:
            pv.record.set_alarm(INVALID, TIMEOUT_ALARM, timestamp=stamp)


def notice_new_items(service: Service, state: CacheState) -> None:
    """Items that appeared after the records were made get no PVs until a
    restart: said once each, never a crash."""
    for section in TABLE:
        if not section.per_item:
            continue
        for key in item_keys(state, section):
            ident = (section.name, key)
            if ident in service.items or ident in service.told:
                continue
            service.told.add(ident)
            log.warning("%s: %s/%s appeared after the IOC started; restart odin-status-ioc "
                        "to serve its PVs", service.label, section.block, key)


# -- the command ---------------------------------------------------------------------------

def _named(values: Optional[List[str]], flag: str) -> Dict[Optional[str], str]:
    """``[NAME=]ENDPOINT`` arguments by name (None for an unnamed one)."""
    out: Dict[Optional[str], str] = {}
    for value in values or []:
        name: Optional[str] = None
        endpoint = value
        head, sep, tail = value.partition("=")
        if sep and "://" not in head:
            name, endpoint = head, tail
            if not re.fullmatch(r"[A-Za-z0-9_-]+", name):
                raise ValueError(f"{flag} {value}: a service name may hold only letters, "
                                 "digits, '_' and '-'")
        if "://" not in endpoint:
            raise ValueError(f"{flag} {value}: the endpoint must be a ZeroMQ endpoint such "
                             "as tcp://127.0.0.1:5041")
        if name in out:
            raise ValueError(f"{flag} names service {name or '(unnamed)'} twice")
        out[name] = endpoint
    return out


def derived_ctrl(pub: str) -> Optional[str]:
    """odin-status's default pairing: the control socket one port below the
    publisher (5040 and 5041). Only for tcp; an ipc publisher names nothing."""
    match = re.fullmatch(r"tcp://(.+):([0-9]+)", pub)
    if match is None or int(match.group(2)) < 2:
        return None
    return f"tcp://{match.group(1)}:{int(match.group(2)) - 1}"


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="odin-status-ioc",
        description="Serve the status of odin-status services as EPICS process variables "
                    "(Channel Access and pvAccess).")
    p.add_argument("--prefix", required=True,
                   help="the PV prefix P (with several services: P:NAME)")
    p.add_argument("--pub", action="append", metavar="[NAME=]ENDPOINT",
                   help="a service's status publisher; repeat with NAME= for several")
    p.add_argument("--ctrl", action="append", metavar="[NAME=]ENDPOINT",
                   help="a service's control socket, for its configuration (default: for a "
                        "tcp publisher, the port below it; alone, the publisher is learned "
                        "from it)")
    p.add_argument("--stale-after", type=float, metavar="SECONDS",
                   help="seconds without a snapshot after which PVs go INVALID "
                        "(default: 3 update intervals, at least 2 s)")
    p.add_argument("--startup-wait", type=float, default=10.0, metavar="SECONDS",
                   help="how long to wait at start for each service's first snapshot "
                        "(default: 10)")
    p.add_argument("--no-pva", action="store_true", help="serve Channel Access only")
    p.add_argument("-v", "--verbose", action="store_true", help="log more")
    return p.parse_args(argv)


def services_from(args: argparse.Namespace) -> List[Tuple[Optional[str], Optional[str], Optional[str]]]:
    """(name, ctrl, pub) per service, checked; ValueError says what is wrong."""
    pubs = _named(args.pub, "--pub")
    ctrls = _named(args.ctrl, "--ctrl")
    names = list(dict.fromkeys([*pubs, *ctrls]))
    if not names:
        raise ValueError("give at least one --pub (or --ctrl) endpoint")
    if len(names) > 1 and None in names:
        raise ValueError("with several services every --pub and --ctrl needs a NAME= before "
                         "its endpoint")
    if args.stale_after is not None and not args.stale_after > 0:
        raise ValueError(f"--stale-after must be above 0 seconds, not {args.stale_after}")
    if args.startup_wait < 0:
        raise ValueError(f"--startup-wait must be 0 seconds or more, not {args.startup_wait}")
    # The characters EPICS allows in a record name ('.' would start a field name).
    if not re.fullmatch(r"[A-Za-z0-9_:+\[\]<>;{}-]+", args.prefix):
        raise ValueError(f"--prefix {args.prefix!r} is not a usable PV prefix: use letters, "
                         "digits and _ - : + [ ] < > ; { }")
    out = []
    for name in names:
        pub = pubs.get(name)
        ctrl = ctrls.get(name) or (derived_ctrl(pub) if pub else None)
        out.append((name, ctrl, pub))
    return out


def wait_for_start(services: List[Service], wait: float) -> None:
    """Waits for every service's first snapshot (and, where a control socket
    is known, its configuration), ``wait`` seconds at most in all."""
    deadline = time.monotonic() + wait
    for service in services:
        if not service.cache.wait_for_snapshot(max(0.0, deadline - time.monotonic())):
            log.warning("%s: no snapshot within %.0f s (%s); it gets only CONNECTED, CYCLE, "
                        "HOST and its configured items until the IOC restarts",
                        service.label, wait, service.cache.state().error)
    for service in services:
        limit = min(deadline, time.monotonic() + _CONFIGURATION_WAIT)
        while service.cache.state().configuration is None and service.cache.state().pub \
                and service.cache.endpoint != service.cache.state().pub \
                and time.monotonic() < limit:
            time.sleep(0.05)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        specs = services_from(args)
    except ValueError as e:
        print(f"odin-status-ioc: {e}", file=sys.stderr)
        return 2
    # numpy comes with softioc; the IOC does no linear algebra, so no BLAS threads.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    try:
        from softioc import (  # type: ignore[import-untyped, import-not-found, unused-ignore]
            asyncio_dispatcher, builder, softioc)
    except ImportError as e:
        print("odin-status-ioc: needs pythonSoftIOC, which is not installed here "
              f"({e}); install the package with its epics extra: "
              "pip install 'odin-status-client[epics]'", file=sys.stderr)
        return 2

    services = []
    for name, ctrl, pub in specs:
        prefix = args.prefix if name is None else f"{args.prefix}:{name}"
        cache = SnapshotCache(ctrl, pub, stale_after=args.stale_after,
                              name=f"odin-status-ioc {name or prefix}")
        services.append(Service(name, prefix, cache))
    wait_for_start(services, args.startup_wait)

    for service in services:
        plan(service, service.cache.state())
        create_records(service, builder)
        log.info("%s: %d PVs under %s", service.label, len(service.pvs), service.prefix)

    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())

    builder.LoadDatabase()
    dispatcher = asyncio_dispatcher.AsyncioDispatcher()
    softioc.iocInit(dispatcher, enable_pva=not args.no_pva)
    halt = threading.Event()
    run_updates(services, dispatcher.loop, halt)
    log.info("serving %d PVs over Channel Access%s", sum(len(s.pvs) for s in services),
             "" if args.no_pva else " and pvAccess")
    stop.wait()
    halt.set()  # no update after this: closing the caches is not the services going quiet
    for service in services:
        service.cache.close()
    log.info("stopped")
    return 0


def run_updates(services: List[Service], loop: Any, halt: threading.Event) -> None:
    """Hands every record update to ``loop``: a refresh when a snapshot arrives
    (posted from the cache's thread), and a tick that notices silence; none
    once ``halt`` is set."""
    def update(service: Service) -> None:
        if halt.is_set():
            return
        try:
            refresh(service)
        except Exception:  # noqa: BLE001 - one bad update must not stop the IOC
            log.exception("%s: updating its PVs failed", service.label)

    for service in services:
        def arrived(_snapshot: Any, service: Service = service) -> None:
            loop.call_soon_threadsafe(update, service)
        service.cache.on_snapshot = arrived

    def tick() -> None:
        for service in services:
            update(service)
        if not halt.is_set():
            loop.call_later(_TICK, tick)

    loop.call_soon_threadsafe(tick)


def entry_point() -> None:
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # Ctrl-C while waiting for the services at start
        sys.exit(130)


if __name__ == "__main__":
    entry_point()
