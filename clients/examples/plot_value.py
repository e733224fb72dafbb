#!/usr/bin/env python3
"""Records one value of the odin-status tree from its published snapshots, then plots it.

With matplotlib installed (``pip install ./clients/python[plot]``) it draws
the series (to --output, or a window); without it, or with --csv, it prints
the series as CSV, so it is useful on a bare DAQ host too. --output without
matplotlib is an error (exit 2): the file it names could not be written.
``odin-status plot`` draws recordings without Python. Snapshots the subscriber lost are reported and break the
line rather than being drawn through.

    plot_value.py disk/_/percent --seconds 60 --output disk.png
    plot_value.py network/lo/bytes_recv --pub tcp://daq1:5041 --seconds 5 --csv
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
import time
from datetime import datetime
from typing import Any, List, Optional, Tuple

from odin_status import OdinStatusError, StatusSubscriber

Row = Tuple[int, str, float, Optional[float], int]  # cycle, timestamp, seconds, value, missed


class NotANumber(Exception):
    """The path names something in the tree that is not a number (a branch, a list...)."""


def lookup(tree: Any, path: str) -> Optional[float]:
    """The number at ``path`` (``a/b/0`` style, as GET takes it), or None when absent."""
    node = tree
    for part in [p for p in path.split("/") if p != ""]:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return None
    if isinstance(node, bool) or not isinstance(node, (int, float)):
        raise NotANumber(f"{path} is a {type(node).__name__} in the tree, not a number")
    return node


def record(endpoint: str, path: str, seconds: float) -> Tuple[List[Row], int]:
    """Snapshots for ``seconds``: one row each, and the number of snapshots lost."""
    rows: List[Row] = []
    start: Optional[datetime] = None
    deadline = time.monotonic() + seconds
    with StatusSubscriber(endpoint) as sub:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            snap = sub.receive(timeout=left)
            if snap is None:
                break
            stamp = datetime.fromisoformat(snap.timestamp)
            start = start or stamp
            value = lookup(snap.tree, path)
            rows.append((snap.cycle, snap.timestamp, (stamp - start).total_seconds(),
                         value, snap.missed))
        return rows, sub.missed_total


def write_csv(rows: List[Row]) -> None:
    out = csv.writer(sys.stdout, lineterminator="\n")
    out.writerow(["cycle", "timestamp", "seconds", "value", "missed"])
    for cycle, stamp, secs, value, missed in rows:
        out.writerow([cycle, stamp, f"{secs:.6f}", "" if value is None else value, missed])


def plot(plt: Any, rows: List[Row], path: str, output: Optional[str]) -> None:
    xs: List[float] = []
    ys: List[float] = []
    for _, _, secs, value, missed in rows:
        if missed and xs:
            xs.append(math.nan)  # break the line where snapshots were lost
            ys.append(math.nan)
        xs.append(secs)
        ys.append(math.nan if value is None else float(value))
    fig, ax = plt.subplots()
    ax.plot(xs, ys, marker=".")
    ax.set_xlabel(f"seconds since {rows[0][1]}")
    ax.set_ylabel(path)
    ax.set_title(f"odin-status: {path}")
    if output:
        fig.savefig(output)
        print(f"plotted {len(rows)} points to {output}", file=sys.stderr)
    else:
        plt.show()


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("path", help="a leaf of the tree, e.g. disk/_/percent or network/lo/bytes_recv")
    parser.add_argument("--pub", default="tcp://127.0.0.1:5041", metavar="ENDPOINT",
                        help="the service's status publisher (default: %(default)s)")
    parser.add_argument("--seconds", type=float, default=10.0,
                        help="how long to record, in seconds (default: %(default)s)")
    parser.add_argument("--csv", action="store_true", help="print CSV even if matplotlib is installed")
    parser.add_argument("--output", metavar="FILE", help="save the plot here instead of showing it")
    args = parser.parse_args(argv)
    if not args.seconds > 0:
        parser.error("--seconds must be above 0")

    plt: Any = None
    if not args.csv:
        try:
            import matplotlib
            if args.output:
                matplotlib.use("Agg")  # no display needed to write a file
            import matplotlib.pyplot
            plt = matplotlib.pyplot
        except ImportError:
            if args.output:
                print(f"plot_value: --output {args.output} needs matplotlib, which is not installed "
                      "(pip install './clients/python[plot]'), or use --csv", file=sys.stderr)
                return 2
            print("matplotlib is not installed; printing CSV instead", file=sys.stderr)

    try:
        rows, missed = record(args.pub, args.path, args.seconds)
    except (OdinStatusError, NotANumber) as e:
        print(f"plot_value: {e}", file=sys.stderr)
        return 1
    if not rows:
        print(f"plot_value: no snapshot from {args.pub} within {args.seconds:g} s", file=sys.stderr)
        return 1
    if all(value is None for _, _, _, value, _ in rows):
        print(f"plot_value: {args.path} is in none of the {len(rows)} snapshots", file=sys.stderr)
        return 1
    if missed:
        print(f"{missed} snapshots were lost while recording", file=sys.stderr)

    if plt is None:
        write_csv(rows)
    else:
        plot(plt, rows, args.path, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
