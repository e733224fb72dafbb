#!/usr/bin/env bash
# Waits until odin-status reports a running process for NAME, as a frame
# processor control script waits for its frameReceiver before it goes on, and
# refuses to go on at all when a data disk is already too full to write to.
#
# usage: wait_for_process.sh [-c ENDPOINT] [-t SECONDS] [-d DISK -l PERCENT] NAME
#
#   NAME         a process name the service watches (its --processes)
#   -c ENDPOINT  the service's control endpoint (default tcp://127.0.0.1:5040)
#   -t SECONDS   how long to wait for NAME, whole seconds (default 30)
#   -d DISK      a disk path the service watches, e.g. /data ...
#   -l PERCENT   ... and fail as soon as its use is above PERCENT
#
# Exit status: 0 NAME is running (its PIDs are printed); 1 NAME did not appear
# in time; 2 usage error, or the service does not watch NAME or DISK; 3 the
# service did not answer; 4 DISK is fuller than PERCENT.
# The odin-status binary is $ODIN_STATUS, or odin-status on the PATH.
#
# The service matches NAME against every argument of a process too, so this
# script (NAME is one of its arguments), the odin-status calls it makes and the
# script that called it would all count as NAME: their PIDs are ignored.
set -euo pipefail

me=$(basename "$0")
odin_status=${ODIN_STATUS:-odin-status}
endpoint=tcp://127.0.0.1:5040
wait_s=30
disk=
limit=

usage() {
    echo "usage: $me [-c ENDPOINT] [-t SECONDS] [-d DISK -l PERCENT] NAME" >&2
    exit 2
}

die() { # status message
    echo "$me: $2" >&2
    exit "$1"
}

while getopts ":c:t:d:l:h" opt; do
    case $opt in
        c) endpoint=$OPTARG ;;
        t) wait_s=$OPTARG ;;
        d) disk=$OPTARG ;;
        l) limit=$OPTARG ;;
        h) usage ;;
        :) echo "$me: -$OPTARG needs a value" >&2; usage ;;
        *) echo "$me: unknown option -$OPTARG" >&2; usage ;;
    esac
done
shift $((OPTIND - 1))
if [ $# -ne 1 ] || [ -z "$1" ]; then
    usage
fi
name=$1

if ! [[ $wait_s =~ ^[0-9]{1,6}$ ]] || [ "$wait_s" -eq 0 ]; then
    die 2 "-t must be a whole number of seconds above 0, not '$wait_s'"
fi
if [ -n "$disk" ] || [ -n "$limit" ]; then
    if [ -z "$disk" ] || [ -z "$limit" ]; then
        die 2 "-d and -l go together"
    fi
    [[ $limit =~ ^[0-9]+([.][0-9]+)?$ ]] || die 2 "-l must be a percentage, not '$limit'"
fi
command -v "$odin_status" >/dev/null || die 2 "cannot run '$odin_status' (set ODIN_STATUS)"

errors=$(mktemp)
trap 'rm -f "$errors"' EXIT

# query PATH: sets $reply to the answer's JSON and $rc to odin-status get's exit
# status (0 ok, 1 nack, 2 usage/connection error, 3 timeout), without tripping set -e.
query() {
    rc=0
    reply=$("$odin_status" get "$1" --ctrl "$endpoint" --timeout 1000 2>"$errors") || rc=$?
}

# others_pids < reply: from the whole process branch, the PIDs reported for
# $name that are not this script, one of its children (even one gone by now) or
# one of its callers. Exits 3 when the service does not watch $name at all.
# (The whole branch is asked for because a name with a "/" cannot be a GET path.)
others_pids() {
    python3 -c '
import json, sys

def parents(pid):
    """The ancestors of pid up to init, or None if pid has gone."""
    chain = []
    while pid > 1:
        try:
            with open("/proc/%d/stat" % pid) as f:
                pid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            return None
        chain.append(pid)
    return chain

name, me = sys.argv[1], int(sys.argv[2])
processes = json.load(sys.stdin)
if name not in processes:
    sys.exit(3)
ours = {me, *(parents(me) or [])}
found = []
for pid in sorted(processes[name], key=int):
    chain = parents(int(pid))
    if chain is not None and int(pid) not in ours and me not in chain:
        found.append(pid)
print(" ".join(found))
' "$name" "$$"
}

# The service names a disk by its path with every "/" replaced by "_".
disk_path="disk/${disk//\//_}/percent"
deadline=$((SECONDS + wait_s))
answered=no

while :; do
    if [ -n "$disk" ]; then
        query "$disk_path"
        case $rc in
            0)  answered=yes
                percent=$(python3 -c 'import json, sys; print(json.load(sys.stdin)["value"])' <<<"$reply")
                if python3 -c 'import sys; sys.exit(0 if float(sys.argv[1]) > float(sys.argv[2]) else 1)' \
                        "$percent" "$limit"; then
                    die 4 "disk $disk is $percent% full, above the limit of $limit%"
                fi ;;
            1)  die 2 "the service does not watch disk $disk ($(cat "$errors"))" ;;
            3)  ;;  # not up yet: keep trying until the deadline
            *)  die 2 "$(cat "$errors")" ;;
        esac
    fi

    query process
    case $rc in
        0)  answered=yes
            found=0
            pids=$(others_pids <<<"$reply") || found=$?
            [ "$found" -eq 0 ] || die 2 "the service does not watch '$name'; add it to its --processes"
            if [ -n "$pids" ]; then
                echo "$name is running: PID $pids"
                exit 0
            fi ;;
        3)  ;;
        *)  die 2 "$(cat "$errors")" ;;
    esac

    if [ "$SECONDS" -gt "$deadline" ]; then
        [ "$answered" = yes ] || die 3 "no answer from odin-status at $endpoint within $wait_s s"
        die 1 "no process matching '$name' within $wait_s s"
    fi
    sleep 0.5
done
