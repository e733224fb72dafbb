#!/usr/bin/env bash
# Every test of odin-status: Rust unit and integration tests, then the Python
# tests that check the real binary against psutil and odin-control 2.1.0, and
# the odin-control adapter in real 1.6.2 and 2.1.0 servers.
# Python test dependencies go into a venv of their own (.venv, or $ODIN_STATUS_VENV;
# odin-control 1.6.2 in .venv-odin1, or $ODIN_STATUS_VENV_ODIN1).
set -euo pipefail
cd "$(dirname "$0")"

# System tools the tests drive: tmux (the terminal `top` is tested in), a
# TrueType font (plot's labels), promtool and a Prometheus server (/metrics),
# all Debian packages. Installed with apt-get when missing and root.
missing=()
command -v tmux >/dev/null || missing+=(tmux)
[ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || [ -n "${ODIN_STATUS_FONT:-}" ] \
    || missing+=(fonts-dejavu-core)
{ command -v promtool >/dev/null && command -v prometheus >/dev/null; } || missing+=(prometheus)
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    else
        echo "run-tests.sh: the tests need ${missing[*]}; install them (apt-get install ${missing[*]})" >&2
        exit 2
    fi
fi

venv="${ODIN_STATUS_VENV:-.venv}"
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r tests/python/requirements.txt
if [ -f clients/python/pyproject.toml ]; then
    # With its epics extra (softioc) for odin-status-ioc's tests.
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "./clients/python[epics]"
fi

# odin-control 1.6.2 for the adapter's tests; 2.1.0 is in the venv above.
venv1="${ODIN_STATUS_VENV_ODIN1:-.venv-odin1}"
if [ ! -x "$venv1/bin/python" ]; then
    python3 -m venv "$venv1"
fi
"$venv1/bin/python" -m pip install --quiet --disable-pip-version-check -r tests/python/requirements-odin1.txt
"$venv1/bin/python" -m pip install --quiet --disable-pip-version-check ./clients/python

cargo build --quiet
cargo test --quiet --lib --bins --tests
ODIN_STATUS_BIN="$PWD/target/debug/odin-status" \
ODIN_CONTROL_1="$(cd "$venv1" && pwd)/bin/odin_control" \
ODIN_CONTROL_2="$(cd "$venv" && pwd)/bin/odin_control" \
    "$venv/bin/python" -m pytest tests/python -q -rs
