"""odin-status-ioc: the status of one or more odin-status services as EPICS process variables.

At the facilities that run odin detectors, operators watch EPICS screens, the
alarm handler pages them and the archiver keeps history; none of them reads
JSON. This command turns each published snapshot into record updates, with
the ``severity`` leaves the service computes as EPICS alarm severities, so a
full disk or a missing frame processor reaches them like any other alarm.

The data flow, top to bottom:

- one ``SnapshotCache`` per service (``--pub [NAME=]ENDPOINT``) follows its
  publisher on a thread of its own and says when it went quiet;
- ``table``: the PV table, tree paths to records, one row per PV, and
  ``pv_key``, the only place names are made;
- ``records``: before ``iocInit`` the records are made from the first
  snapshot and the configuration (``request_configuration``); after it every
  update runs on the asyncio dispatcher's loop, one thread;
- ``command``: the command line, start and stop.

softioc is an optional dependency (``pip install "odin-status-client[epics]"``):
it is imported only by ``main``, so ``import odin_status`` never needs it.
"""

from .command import entry_point, main
from .table import pv_key

__all__ = ["entry_point", "main", "pv_key"]
