"""``python -m odin_status.ioc``: the same as the odin-status-ioc command."""

from .command import entry_point

entry_point()
