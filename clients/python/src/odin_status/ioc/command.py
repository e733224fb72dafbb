"""The command line: which services, under which prefix; then start, serve, stop."""

from __future__ import annotations

import argparse
import logging
import os
import re
import signal
import sys
import threading
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

import zmq

from ..cache import SnapshotCache
from .records import Service, create_records, plan, run_updates

log = logging.getLogger("odin-status-ioc")

#: How long a start waits for the configuration once a snapshot has come.
_CONFIGURATION_WAIT = 2.0


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
        if "://" not in endpoint or not _connectable(endpoint):
            raise ValueError(f"{flag} {value}: the endpoint must be a ZeroMQ endpoint such "
                             "as tcp://127.0.0.1:5041")
        if name in out:
            raise ValueError(f"{flag} names service {name or '(unnamed)'} twice")
        out[name] = endpoint
    return out


def _connectable(endpoint: str) -> bool:
    """Whether ZeroMQ accepts the endpoint (a typo is then told at start, not
    found later in a log)."""
    sock: zmq.Socket[Any] = zmq.Context.instance().socket(zmq.SUB)
    try:
        sock.connect(endpoint)
        return True
    except zmq.ZMQError:
        return False
    finally:
        sock.close(linger=0)


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
        while _awaits_configuration(service.cache) and time.monotonic() < limit:
            time.sleep(0.05)


def _awaits_configuration(cache: SnapshotCache) -> bool:
    """A control socket is known beside the publisher and has not answered yet."""
    state = cache.state()
    return state.configuration is None and state.pub is not None and cache.endpoint != state.pub


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


def entry_point() -> None:
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # Ctrl-C while waiting for the services at start
        sys.exit(130)
