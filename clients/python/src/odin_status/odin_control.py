"""An odin-control adapter that serves odin-status's tree over HTTP, as SystemStatusAdapter did.

A site moving to odin-status keeps its odin-control server, its web pages and
the clients that read ``/api/0.1/status/...`` (ADOdin, fastcs-odin): one line
of its config file changes, ``module = odin_status.odin_control.StatusAdapter``,
and ``endpoint =`` names the service. The same section is what
``odin-status serve --config`` reads, so one file describes both.

The adapter samples nothing. A ``SnapshotCache`` per service keeps the latest
published tree on a thread of its own, and each GET builds the loaded
odin-control version's own ``ParameterTree`` from it. That is how the answers
follow each version's rules without restating them: 1.x keeps the tree under
``status/`` and wraps every answer in the name of its last path element; 2.x
keeps it at the root, answers a leaf as ``{"value": v}`` and gives metadata on
request. A GET therefore never waits on the network and never stalls the
server's other adapters. The adapter is synchronous because odin-control
2.1.0's stock entry point never answers HTTP once an asynchronous adapter is
loaded.

Old values are never shown as current: while a service is silent (no snapshot
for 3 of its update intervals, at least 2 s) its tree leaves the adapter's
tree, ``connection`` says why and since when, and a GET into it is a 400 that
names the endpoint and how long it has been silent.

Importing this module needs odin-control, 1.x (package ``odin``) or 2.x
(package ``odin_control``); importing ``odin_status`` does not.
"""

from __future__ import annotations

import importlib
import logging
import re
import sys
import threading
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

import zmq

from . import __version__
from .cache import CacheState, SnapshotCache
from .subscriber import Snapshot

log = logging.getLogger(__name__)

DEFAULT_ENDPOINT = "tcp://127.0.0.1:5040"
#: Names the adapter's root holds besides the services' trees.
CONNECTION, SUMMARY = "connection", "summary"
#: EPICS alarm severities, best first, as the service's ``severity`` leaves give them.
SEVERITIES = ("ok", "minor", "major")


# -- the odin-control that loaded us --------------------------------------

@dataclass(frozen=True)
class _Odin:
    """The parts of one odin-control version the adapter uses."""

    major: int
    adapter: ModuleType
    parameter_tree: ModuleType


def _load_odin() -> _Odin:
    """The odin-control package of the server that is loading this module.

    The server has imported its own package already, so that one is taken
    first; the name ``odin`` alone is not trusted, since an unrelated PyPI
    project uses it too.
    """
    candidates = [(2, "odin_control"), (1, "odin")]
    candidates.sort(key=lambda c: c[1] not in sys.modules)
    problems = []
    for major, package in candidates:
        try:
            return _Odin(major,
                         importlib.import_module(f"{package}.adapters.adapter"),
                         importlib.import_module(f"{package}.adapters.parameter_tree"))
        except ImportError as e:
            problems.append(f"{package}: {e}")
    raise ImportError(
        "odin_status.odin_control runs inside an odin-control server and needs odin-control "
        "installed (1.x as package 'odin' or 2.x as 'odin_control'): " + "; ".join(problems))


_ODIN = _load_odin()
ParameterTree: Any = _ODIN.parameter_tree.ParameterTree
ParameterTreeError: Any = _ODIN.parameter_tree.ParameterTreeError
ApiAdapter: Any = _ODIN.adapter.ApiAdapter
ApiAdapterResponse: Any = _ODIN.adapter.ApiAdapterResponse
_Handler = Callable[[Any, str, Any], Any]
response_types: Callable[..., Callable[[_Handler], _Handler]] = _ODIN.adapter.response_types
wants_metadata: Callable[[Any], bool] = _ODIN.adapter.wants_metadata


# -- the section's keys -----------------------------------------------------

@dataclass(frozen=True)
class Target:
    """One service: its name (None for a lone ``endpoint``), control endpoint and pub override."""

    name: Optional[str]
    endpoint: str
    pub: Optional[str] = None


class ConfigError(ValueError):
    """A key of the adapter's section that cannot be used, as a sentence."""


# Target names become path parts; fastcs-odin makes PVs only of [A-Za-z0-9_] parts.
_TARGET_NAME = re.compile(r"^[A-Za-z0-9_]+$")


def _pairs(key: str, value: str) -> Dict[str, str]:
    """``a=tcp://x:1, b=tcp://y:1`` as a dict, in order."""
    pairs: Dict[str, str] = {}
    for item in (part.strip() for part in value.split(",")):
        if not item:
            continue
        name, eq, endpoint = (s.strip() for s in item.partition("="))
        if not eq or not name or not endpoint:
            raise ConfigError(f"'{key}' takes name=endpoint pairs separated by commas, "
                              f"such as daq1=tcp://daq1:5040; '{item}' is not one")
        if not _TARGET_NAME.match(name) or name in (CONNECTION, SUMMARY):
            raise ConfigError(f"'{name}' in '{key}' cannot name a target: use letters, digits "
                              f"and _ (not '{CONNECTION}' or '{SUMMARY}')")
        if name in pairs:
            raise ConfigError(f"'{name}' is named twice in '{key}'")
        pairs[name] = _endpoint(key, endpoint)
    return pairs


def _endpoint(key: str, value: str) -> str:
    value = value.strip()
    if not re.match(r"^(tcp|ipc|inproc)://.+", value):
        raise ConfigError(f"'{key}' must be a ZeroMQ endpoint such as tcp://127.0.0.1:5040, "
                          f"not '{value}'")
    return value


def targets_from_options(options: Mapping[str, Any]) -> List[Target]:
    """The services the section names: ``targets``, else ``endpoint``, else the
    service's own ``ctrl_endpoint`` from the same section, else the default."""
    targets = str(options.get("targets", "")).strip()
    pub = str(options.get("pub", "")).strip()
    if targets:
        if "endpoint" in options:
            raise ConfigError("give 'endpoint' for one service or 'targets' for several, not both")
        named = _pairs("targets", targets)
        if not named:
            raise ConfigError("'targets' names no service")
        pubs = _pairs("pub", pub) if pub else {}
        for name in pubs:
            if name not in named:
                raise ConfigError(f"'pub' names '{name}', which is not one of the targets")
        return [Target(name, endpoint, pubs.get(name)) for name, endpoint in named.items()]
    endpoint = str(options.get("endpoint", "")).strip()
    if not endpoint:
        ctrl = str(options.get("ctrl_endpoint", "")).strip()
        # The service binds ctrl_endpoint; a wildcard host is reached on loopback.
        endpoint = re.sub(r"^tcp://(\*|0\.0\.0\.0):", "tcp://127.0.0.1:", ctrl) or DEFAULT_ENDPOINT
    return [Target(None, _endpoint("endpoint", endpoint),
                   _endpoint("pub", pub) if pub else None)]


# -- from snapshots to the version's ParameterTree ----------------------------

def _read_only(node: Any) -> Any:
    """odin-control 2.x: every leaf a read-only accessor (metadata says writeable false),
    every branch a ParameterTree of its own, so that an accessor's name in an index
    error is the leaf's own, as in SystemStatusAdapter's trees."""
    if isinstance(node, dict):
        return ParameterTree({key: _read_only(value) for key, value in node.items()})
    return (node, None)


def _as_version(node: Dict[str, Any]) -> Dict[str, Any]:
    """A branch's children in the loaded version's form: 2.x read-only leaves; 1.x one
    read-only accessor per child, as its SystemStatusAdapter has for each block."""
    if _ODIN.major >= 2:
        return {key: _read_only(value) for key, value in node.items()}
    return {key: (value, None) for key, value in node.items()}


def service_branch(tree: Dict[str, Any]) -> Dict[str, Any]:
    """The service's tree where the loaded version puts it (1.x: under ``status``).
    Built once per snapshot: a ParameterTree inside a dict is taken as it is."""
    if _ODIN.major >= 2:
        return _as_version(tree)
    return {"status": ParameterTree(_as_version(tree))}


def connection_leaves(state: CacheState) -> Dict[str, Any]:
    return {
        "endpoint": state.endpoint,
        "connected": state.connected,
        "cycle": state.cycle,
        "age": None if state.age is None else round(state.age, 3),
        "error": state.error,
    }


def worst_severity(node: Any) -> Optional[str]:
    """The worst ``severity`` leaf in a tree, or None when it has none."""
    worst: Optional[str] = None
    stack = [node]
    while stack:
        here = stack.pop()
        if not isinstance(here, dict):
            continue
        found = here.get("severity")
        if isinstance(found, str) and found in SEVERITIES and (
                worst is None or SEVERITIES.index(found) > SEVERITIES.index(worst)):
            worst = found
        stack.extend(v for v in here.values() if isinstance(v, dict))
    return worst


def summary_leaves(states: List[CacheState]) -> Dict[str, Any]:
    """Across services: how many answer, the worst severity, process counts summed."""
    current = [s for s in states if s.connected and isinstance(s.tree, dict)]
    severities = [worst_severity(s.tree) for s in current]
    known = [sev for sev in severities if sev is not None]
    processes: Dict[str, Dict[str, Optional[int]]] = {}
    for state in current:
        block = state.tree.get("process_summary") if isinstance(state.tree, dict) else None
        for name, entry in (block.items() if isinstance(block, dict) else ()):
            if not isinstance(entry, dict):
                continue
            total = processes.setdefault(name, {"count": 0, "expected": None})
            count, expected = entry.get("count"), entry.get("expected")
            if isinstance(count, int):
                total["count"] = (total["count"] or 0) + count
            if isinstance(expected, int):
                total["expected"] = (total["expected"] or 0) + expected
    return {
        "connected": len(current),
        "targets": len(states),
        "severity": max(known, key=SEVERITIES.index) if known else None,
        "process": processes,
    }


# -- the adapter ----------------------------------------------------------------

class StatusAdapter(ApiAdapter):  # type: ignore[misc]  # odin-control ships no type hints
    """odin-status's tree in an odin-control server, answered as SystemStatusAdapter answers.

    Section keys: ``endpoint`` (the service's control endpoint), or ``targets``
    (``name=endpoint, ...`` for several services), and optionally ``pub`` (the
    publisher, overriding what the service reports; with targets,
    ``name=endpoint, ...``). Every other key is the service's and is ignored here.
    """

    is_async = False
    version = __version__

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._context: zmq.Context[Any] = zmq.Context()
        self._caches: List[Tuple[Target, SnapshotCache]] = []
        self._config_error: Optional[str] = None
        self._lock = threading.Lock()
        # Per service: the snapshot last made into a tree, and that tree (2.x: built once).
        self._built: Dict[Optional[str], Tuple[Snapshot, Any]] = {}
        self._multi = False
        try:
            targets = targets_from_options(self.options)
        except ConfigError as e:
            self._config_error = f"The odin-status adapter cannot run: {e}."
            log.error("%s", self._config_error)
            return
        self._multi = targets[0].name is not None
        for target in targets:
            cache = SnapshotCache(target.endpoint, target.pub, context=self._context,
                                  name=f"odin-status adapter {target.name or target.endpoint}")
            self._caches.append((target, cache))
        log.info("odin-status adapter for odin-control %d.x following %s", _ODIN.major,
                 ", ".join(f"{t.name}={t.endpoint}" if t.name else t.endpoint
                           for t, _ in self._caches))

    # -- HTTP verbs ------------------------------------------------------

    @response_types("application/json", default="application/json")
    def get(self, path: str, request: Any) -> Any:
        metadata = _ODIN.major >= 2 and wants_metadata(request)
        try:
            data, status = self.answer(path, metadata), 200
        except (ParameterTreeError, _NoAnswer) as e:
            data, status = {"error": str(e)}, 400
        except TypeError:
            # Below a number (odin's own trees raise TypeError here, an HTTP 500).
            data, status = {"error": f"Invalid path: {path}"}, 400
        return ApiAdapterResponse(data, content_type="application/json", status_code=status)

    def put(self, path: str, request: Any) -> Any:
        return self._read_only("PUT", path)

    def post(self, path: str, request: Any) -> Any:
        return self._read_only("POST", path)

    def delete(self, path: str, request: Any) -> Any:
        return self._read_only("DELETE", path)

    def initialize(self, adapters: Any) -> None:
        """Nothing to share with other adapters."""

    def cleanup(self) -> None:
        for _, cache in self._caches:
            cache.close()
        if not any(cache.running for _, cache in self._caches):
            self._context.term()

    # -- answering -------------------------------------------------------

    def answer(self, path: str, metadata: bool = False) -> Any:
        """What a GET of ``path`` answers, from memory. Raises ParameterTreeError
        (invalid path) or _NoAnswer (see there)."""
        if self._config_error is not None:
            raise _NoAnswer(self._config_error)
        states = [(target, cache.state()) for target, cache in self._caches]
        first = path.split("/", 1)[0]
        for target, state in states:
            if self._multi:
                names_it = first == target.name
            else:
                names_it = first not in ("", CONNECTION) if _ODIN.major >= 2 else first == "status"
            if names_it and not state.connected:
                raise _NoAnswer(f"'{path}' has no current value: {state.error}")
        tree = ParameterTree(self._root(states))
        if _ODIN.major >= 2:
            return tree.get(path, with_metadata=metadata)
        return tree.get(path)

    def _root(self, states: List[Tuple[Target, CacheState]]) -> Dict[str, Any]:
        """The adapter's tree now: each current service's tree, ``connection``,
        and with several services ``summary``."""
        root: Dict[str, Any] = {}
        for target, state in states:
            if state.connected and state.snapshot is not None:
                branch = self._service(target.name, state.snapshot)
                if self._multi:
                    root[str(target.name)] = branch
                else:
                    root.update(branch)
        if self._multi:
            root.update(_as_version({
                CONNECTION: {str(t.name): connection_leaves(s) for t, s in states},
                SUMMARY: summary_leaves([s for _, s in states]),
            }))
        else:
            root.update(_as_version({CONNECTION: connection_leaves(states[0][1])}))
        return root

    def _service(self, name: Optional[str], snapshot: Snapshot) -> Any:
        """A service's branch, built once per snapshot (the tree is large; GETs are many)."""
        with self._lock:
            built = self._built.get(name)
            if built is None or built[0] is not snapshot:
                tree = snapshot.tree if isinstance(snapshot.tree, dict) else {}
                built = (snapshot, service_branch(tree))
                self._built[name] = built
            return built[1]

    def _read_only(self, verb: str, path: str) -> Any:
        return ApiAdapterResponse(
            {"error": f"The status tree is read-only: odin-status values cannot be changed "
                      f"over HTTP ({verb} on '{path}' refused)."},
            content_type="application/json", status_code=405)


class _NoAnswer(Exception):
    """A GET that is a 400 for a reason of ours: the path is in the tree of a service
    that sends no snapshots, or the adapter's section is wrong."""
