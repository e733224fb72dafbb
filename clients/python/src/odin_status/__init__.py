"""Python client for odin-status: ask its control socket, follow its status publisher.

``StatusClient`` sends odin-data IpcMessage requests and returns the reply's
params; ``StatusSubscriber`` yields the published snapshots and counts any the
publisher dropped. Both put a timeout on every wait so a script never hangs.
"""

from .client import StatusClient
from .errors import OdinStatusError, StatusError, StatusProtocolError, StatusTimeout
from .subscriber import Snapshot, StatusSubscriber

__version__ = "0.1.0"

__all__ = [
    "OdinStatusError",
    "Snapshot",
    "StatusClient",
    "StatusError",
    "StatusProtocolError",
    "StatusSubscriber",
    "StatusTimeout",
    "__version__",
]
