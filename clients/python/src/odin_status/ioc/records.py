"""The records of each service, and their updates on the dispatcher's loop.

Records are made once, before ``iocInit``, from the first snapshot and the
configuration (``plan``, ``create_records``). After it every update runs on
the asyncio dispatcher's loop, one thread: the cache's thread only asks the
loop to ``refresh``, and a tick on the loop notices when a service goes
stale. pythonSoftIOC does not promise that ``set`` is safe from several
threads at once, so nothing else touches a record.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Set, Tuple

from ..cache import CacheState, SnapshotCache
from .table import (AI, BI, CONNECTED, CYCLE, INVALID, LONG_MAX, LONGIN, MAX_PV_NAME,
                    NO_ALARM, STATES, TABLE, TIMEOUT_ALARM, UDF_ALARM, Row, Section,
                    alarm_status, configured_keys, node_severity, process_severity, pv_key,
                    record_value, snapshot_time, walk)

log = logging.getLogger("odin-status-ioc")

#: How often the loop checks whether a service went quiet.
_TICK = 0.1


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


def item_keys(state: CacheState, section: Section) -> List[str]:
    """The items of a section: those in the tree, then configured ones not in it."""
    seen: List[str] = []
    nodes = walk(state.tree, (section.block,))
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
            pv.record.set((state.cycle or 0) % (LONG_MAX + 1), timestamp=stamp)
            continue
        assert pv.section is not None
        node_path: Tuple[Any, ...] = (pv.section.block,) if pv.key is None \
            else (pv.section.block, pv.key)
        node = walk(tree, node_path)
        value = record_value(pv.row, walk(node, pv.row.path))
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
