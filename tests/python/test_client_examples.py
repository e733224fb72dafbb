"""clients/examples against the real binary: the shell script a control script
would call, and the recorder in its CSV mode."""

import csv
import importlib.util
import io
import os
import shutil
import subprocess
import sys
import time
import uuid

from conftest import BIN, REPO

EXAMPLES = REPO / "clients" / "examples"
WAIT = EXAMPLES / "wait_for_process.sh"
PLOT = EXAMPLES / "plot_value.py"


def unique_name():
    return f"odinwait{uuid.uuid4().hex[:10]}"


def wait_for(*args, timeout=30):
    """Runs wait_for_process.sh to the end; (status, stdout, stderr, seconds)."""
    started = time.monotonic()
    done = subprocess.run(["bash", str(WAIT), *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "ODIN_STATUS": BIN})
    return done.returncode, done.stdout, done.stderr, time.monotonic() - started


def test_wait_for_process_sees_it_start(serve, spawn):
    name = unique_name()
    svc = serve("--interfaces", "lo", "--rate", "10", "--processes", name)
    script = subprocess.Popen(
        ["bash", str(WAIT), "-c", svc.ctrl, "-t", "20", "-d", "/", "-l", "100", name],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "ODIN_STATUS": BIN})
    try:
        time.sleep(1.0)
        assert script.poll() is None, f"finished before {name} started: {script.communicate()}"
        proc = spawn(name, shutil.which("sleep"), "30")
        out, err = script.communicate(timeout=20)
    finally:
        if script.poll() is None:
            script.kill()
            script.communicate()
    assert script.returncode == 0, err
    assert out.strip() == f"{name} is running: PID {proc.pid}"


def test_wait_for_process_name_with_a_slash(serve, spawn, tmp_path):
    # A configured name may hold a "/" (it is a substring of an argument);
    # GET cannot take it as a path, so the script reads the whole process branch.
    name = unique_name()
    proc = spawn(name, shutil.which("sleep"), "30")
    watched = f"{tmp_path.name}/{name}"
    svc = serve("--interfaces", "lo", "--processes", watched)
    status, out, err, _ = wait_for("-c", svc.ctrl, "-t", "10", watched)
    assert status == 0, err
    assert out.strip() == f"{watched} is running: PID {proc.pid}"


def test_wait_for_process_fails_on_a_full_disk(serve, spawn):
    name = unique_name()
    spawn(name, shutil.which("sleep"), "30")
    svc = serve("--interfaces", "lo", "--processes", name)
    status, out, err, took = wait_for("-c", svc.ctrl, "-t", "20", "-d", "/", "-l", "0", name)
    assert status == 4, (out, err)
    assert out == ""
    assert "disk / is" in err and "above the limit of 0%" in err
    assert took < 10, "a full disk should fail at once, not after the wait"


def test_wait_for_process_gives_up_after_its_timeout(serve):
    name = unique_name()
    svc = serve("--interfaces", "lo", "--processes", name)
    status, out, err, took = wait_for("-c", svc.ctrl, "-t", "1", name)
    assert status == 1, (out, err)
    assert f"no process matching '{name}' within 1 s" in err
    assert 1.0 <= took < 10


def test_wait_for_process_refusals(serve, tmp_path):
    svc = serve("--interfaces", "lo", "--processes", "something-else")
    status, _, err, _ = wait_for("-c", svc.ctrl, "-t", "5", "not-watched")
    assert status == 2 and "does not watch 'not-watched'" in err, err

    status, _, err, _ = wait_for("-c", svc.ctrl, "-d", "/data-nope", "-l", "90", "something-else")
    assert status == 2 and "does not watch disk /data-nope" in err, err

    status, _, err, took = wait_for("-c", f"ipc://{tmp_path}/nobody", "-t", "1", "x")
    assert status == 3 and "no answer from odin-status" in err, err

    for args in [[], ["-t", "soon", "x"], ["-d", "/", "x"], ["-l", "abc", "-d", "/", "x"],
                 ["-q", "x"], ["a", "b"]]:
        status, out, err, _ = wait_for(*args)
        assert status == 2, (args, out, err)
        assert err.strip(), args


def test_plot_value_prints_csv_without_matplotlib(serve):
    svc = serve("--interfaces", "lo", "--rate", "20")
    args = [sys.executable, str(PLOT), "network/lo/bytes_recv", "--pub", svc.pub, "--seconds", "1"]
    has_matplotlib = importlib.util.find_spec("matplotlib") is not None
    if has_matplotlib:
        print("matplotlib is installed here: asking for CSV with --csv")
        args.append("--csv")
    done = subprocess.run(args, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    if not has_matplotlib:
        assert "matplotlib is not installed" in done.stderr
    rows = list(csv.DictReader(io.StringIO(done.stdout)))
    assert len(rows) >= 5, done.stdout
    assert list(rows[0]) == ["cycle", "timestamp", "seconds", "value", "missed"]
    cycles = [int(r["cycle"]) for r in rows]
    values = [int(r["value"]) for r in rows]
    assert cycles == sorted(set(cycles))
    assert values == sorted(values), "bytes_recv never goes down"
    assert float(rows[0]["seconds"]) == 0.0
    assert 0.3 < float(rows[-1]["seconds"]) < 2.0
    for before, after in zip(rows, rows[1:]):
        assert int(after["missed"]) == int(after["cycle"]) - int(before["cycle"]) - 1


def test_plot_value_refuses_what_it_cannot_plot(serve, tmp_path):
    svc = serve("--interfaces", "lo", "--rate", "20")

    def run(*args):
        return subprocess.run([sys.executable, str(PLOT), *args, "--csv"],
                              capture_output=True, text=True, timeout=30)

    done = run("network/lo", "--pub", svc.pub, "--seconds", "0.5")
    assert done.returncode == 1 and "network/lo is a dict in the tree, not a number" in done.stderr
    done = run("network/eth99/bytes_recv", "--pub", svc.pub, "--seconds", "0.5")
    assert done.returncode == 1 and "is in none of the" in done.stderr
    done = run("disk/_/percent", "--pub", f"ipc://{tmp_path}/nobody", "--seconds", "0.3")
    assert done.returncode == 1 and "no snapshot from" in done.stderr
    done = run("disk/_/percent", "--seconds", "0")
    assert done.returncode == 2 and "--seconds must be above 0" in done.stderr


def test_plot_value_output_without_matplotlib_is_an_error(serve, tmp_path):
    if importlib.util.find_spec("matplotlib") is not None:
        # Hide it: a module set to None in sys.modules cannot be imported.
        prelude = "import sys; sys.modules['matplotlib'] = None; "
        print("matplotlib is installed here: hiding it from plot_value.py")
    else:
        prelude = ""
    svc = serve("--interfaces", "lo", "--rate", "20")
    out = tmp_path / "disk.png"
    code = (prelude + "import runpy, sys; sys.argv = sys.argv[1:]; "
            "runpy.run_path(sys.argv[0], run_name='__main__')")
    done = subprocess.run([sys.executable, "-c", code, str(PLOT), "disk/_/percent", "--pub", svc.pub,
                           "--seconds", "0.5", "--output", str(out)],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr == (f"plot_value: --output {out} needs matplotlib, which is not installed "
                           "(pip install './clients/python[plot]'), or use --csv\n")
    assert not out.exists()
