"""The README's install path, followed from this checkout (CI's is a fresh
clone): `cargo install --path . --root DIR` puts `odin-status` on PATH, and
the example scripts, which call it by that name, then work.

One difference from the README, said here so nobody is misled: the test adds
`--debug`, so cargo installs the dev build run-tests.sh has just made (seconds)
instead of building the release profile from scratch (minutes on 2 cores).
The installing, the PATH and everything after are as a user does them.
"""

import os
import shutil
import subprocess
import uuid

from conftest import REPO

WAIT = REPO / "clients" / "examples" / "wait_for_process.sh"


def test_cargo_install_puts_odin_status_on_path_for_the_examples(tmp_path, spawn):
    cargo = shutil.which("cargo")
    assert cargo, "cargo is on PATH wherever run-tests.sh runs"
    root = tmp_path / "root"
    done = subprocess.run(
        [cargo, "install", "--path", str(REPO), "--root", str(root), "--debug",
         "--offline", "--locked", "--quiet"],
        capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr
    installed = root / "bin" / "odin-status"
    assert installed.is_file()

    # A PATH with the install root and the system, nothing from the build tree.
    env = {k: v for k, v in os.environ.items() if k != "ODIN_STATUS"}
    env["PATH"] = f"{root / 'bin'}:/usr/local/bin:/usr/bin:/bin"
    assert shutil.which("odin-status", path=env["PATH"]) == str(installed)
    version = subprocess.run(["odin-status", "version"], capture_output=True, text=True,
                             env=env, timeout=30)
    assert version.stdout.startswith("odin-status "), version.stderr

    name = f"odininstall{uuid.uuid4().hex[:8]}"
    ctrl = f"ipc://{tmp_path}/ctrl"
    pub = f"ipc://{tmp_path}/pub"
    service = subprocess.Popen(
        ["odin-status", "serve", "--ctrl", ctrl, "--pub", pub, "--interfaces", "lo",
         "--processes", name, "--rate", "10"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        sleeper = spawn(name, shutil.which("sleep"), "60")
        done = subprocess.run(["bash", str(WAIT), "-c", ctrl, "-t", "20", name],
                              capture_output=True, text=True, env=env, timeout=60)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == f"{name} is running: PID {sleeper.pid}"
    finally:
        service.terminate()
        service.wait(10)
