"""The client package is typed: mypy --strict finds nothing in it (odin-control,
which ships no type hints, is only reached through importlib)."""

import subprocess
import sys

from conftest import REPO


def test_client_package_is_mypy_strict_clean(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(tmp_path / "cache"),
         str(REPO / "clients" / "python" / "src")],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
