#!/usr/bin/env bash
# The long mixed hostile soak (benches/soak.py): subscription, identity,
# idle-connection, process and configure floods at once against the release
# binary, while a well-behaved client and subscriber measure answers and
# snapshots. Prints one Markdown table (README, "Reliability").
#
#   benches/soak.sh              10 minutes
#   benches/soak.sh --seconds N  N seconds
#   benches/soak.sh --loads configure,idle   only some loads (see soak.py)
#   benches/soak.sh --max-message-size 2000000   let the 1 MB floods in
#
# Makes (or reuses) a venv with pyzmq at $ODIN_STATUS_SOAK_VENV (default
# /tmp/odin-status-soak-venv, outside the repository).
set -euo pipefail
seconds=600
loads=subscriptions,identities,idle,processes,configure
size=65536
while [ $# -gt 0 ]; do
    case "$1" in
        --seconds) seconds=$2; shift 2 ;;
        --loads) loads=$2; shift 2 ;;
        --max-message-size) size=$2; shift 2 ;;
        -h | --help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "soak.sh: unknown option $1 (try --help)" >&2; exit 2 ;;
    esac
done
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
venv=${ODIN_STATUS_SOAK_VENV:-/tmp/odin-status-soak-venv}
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check pyzmq
cargo build --release --quiet
exec "$venv/bin/python" benches/soak.py --bin "$repo/target/release/odin-status" --seconds "$seconds" --loads "$loads" --max-message-size "$size"
