"""Python client for odin-status: ask its control socket, follow its status publisher.

``StatusClient`` sends odin-data IpcMessage requests and returns the reply's
params; ``StatusSubscriber`` yields the published snapshots and counts any the
publisher dropped. Both put a timeout on every wait so a script never hangs.
``SnapshotCache`` keeps the latest snapshot of a service on a thread of its own,
for integrations that must answer at once (``odin_status.odin_control``).
"""

from .cache import CacheState, SnapshotCache
from .client import StatusClient
from .errors import OdinStatusError, StatusError, StatusProtocolError, StatusTimeout
from .subscriber import Snapshot, StatusSubscriber

__version__ = "0.1.0"

__all__ = [
    "CacheState",
    "OdinStatusError",
    "Snapshot",
    "SnapshotCache",
    "StatusClient",
    "StatusError",
    "StatusProtocolError",
    "StatusSubscriber",
    "StatusTimeout",
    "__version__",
]
