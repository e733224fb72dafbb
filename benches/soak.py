#!/usr/bin/env python3
"""A mixed hostile load on a running odin-status, while a well-behaved client
and subscriber measure that answers and snapshots keep coming.

Run by benches/soak.sh (which builds the release binary and makes the venv).
Hostile loads, all at once for the whole run, each in its own thread:

- subscription floods: a SUB with 10,000 distinct 32-byte subscriptions
  connects for 2 s, and a raw peer announces a 32 MiB subscription, every 5 s;
- identity floods: 40 raw ZMTP peers with 1 MB routing ids and half-sent
  1 MiB requests, held 3 s, every 5 s;
- idle connections: 200 raw TCP connections that never speak, reopened as
  the service drops them;
- process floods: 300 processes matching the configured name, started every
  10 s and killed 5 s later;
- configure floods: alternating add/remove of 2,000 long names and a name
  holding a newline, back to back.

Prints one Markdown table of what the witness saw.
"""

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time

import zmq

STOP = threading.Event()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def cmd(msg_val, ident, params):
    return json.dumps({"msg_type": "cmd", "msg_val": msg_val, "id": ident,
                       "timestamp": "2026-12-03T00:00:00.000000", "params": params}).encode()


def greeting():
    g = bytes([0xFF, 0, 0, 0, 0, 0, 0, 0, 1, 0x7F, 3, 0]) + b"NULL".ljust(20, b"\0") + b"\0"
    return g.ljust(64, b"\0")


def long_frame(flags, size):
    return bytes([flags | 0x02]) + struct.pack(">Q", size)


def ready(socket_type, identity=b""):
    body = b"\x05READY"
    for name, value in ((b"Socket-Type", socket_type), (b"Identity", identity)):
        body += bytes([len(name)]) + name + struct.pack(">I", len(value)) + value
    return long_frame(0x04, len(body)) + body


def raw(address, payload, hold):
    host, port = address.rsplit(":", 1)
    try:
        s = socket.create_connection((host, int(port)), timeout=2)
        s.sendall(payload)
    except OSError:
        return None
    return s


def loop(every, body):
    def run():
        while not STOP.is_set():
            started = time.monotonic()
            try:
                body()
            except Exception as e:  # a hostile load must not end the soak
                print(f"soak: load error: {e}", file=sys.stderr)
            STOP.wait(max(0.0, every - (time.monotonic() - started)))
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--seconds", type=float, default=600)
    ap.add_argument("--max-message-size", default="65536",
                    help="the service's --max-message-size; 2000000 lets the 1 MB floods in")
    ap.add_argument("--loads", default="subscriptions,identities,idle,processes,configure",
                    help="comma-separated hostile loads to run (default: all)")
    args = ap.parse_args()

    work = tempfile.mkdtemp(prefix="odin-status-soak.")
    name = f"odstsoak{os.getpid()}"
    link = os.path.join(work, name)
    os.symlink("/bin/sleep", link)
    ctrl_port, pub_port = free_port(), free_port()
    ctrl, pub = f"tcp://127.0.0.1:{ctrl_port}", f"tcp://127.0.0.1:{pub_port}"
    log = os.path.join(work, "log")
    svc = subprocess.Popen([args.bin, "serve", "--rate", "10", "--interfaces", "lo",
                            "--processes", name, "--allow-configure", "--log-file", log,
                            "--max-message-size", args.max_message_size,
                            "--ctrl", ctrl, "--pub", pub])
    ctx = zmq.Context()
    children = []
    try:
        req = ctx.socket(zmq.REQ)
        req.setsockopt(zmq.LINGER, 0)
        req.connect(ctrl)
        req.send(cmd("request_version", 0, {}))
        if not req.poll(10000):
            raise SystemExit("soak: the service did not answer")
        req.recv()
        sub = ctx.socket(zmq.SUB)
        sub.setsockopt(zmq.SUBSCRIBE, b'{"msg_type":"notify","msg_val":"status"')
        sub.connect(pub)
        time.sleep(0.5)

        def sub_flood():
            s = ctx.socket(zmq.SUB)
            s.setsockopt(zmq.LINGER, 0)
            for i in range(10000):
                s.setsockopt(zmq.SUBSCRIBE, b"%032d" % i)
            s.connect(pub)
            big = raw(pub[6:], greeting() + ready(b"SUB") + long_frame(0, 32 << 20) + b"\x01" + b"x" * (1 << 20), 0)
            STOP.wait(2)
            s.close()
            if big:
                big.close()

        def identity_flood():
            peers = [raw(ctrl[6:], greeting() + ready(b"DEALER", b"i" * 1_000_000)
                         + long_frame(0, 1 << 20) + b"{" * (1 << 19), 0) for _ in range(40)]
            STOP.wait(3)
            for p in peers:
                if p:
                    p.close()

        idle = []

        def idle_connections():
            idle[:] = [s for s in idle if s.fileno() >= 0]
            while len(idle) < 200 and not STOP.is_set():
                s = raw(ctrl[6:], b"", 0)
                if s is None:
                    break
                idle.append(s)

        def process_flood():
            batch = [subprocess.Popen([link, "600"]) for _ in range(300)]
            children.extend(batch)
            STOP.wait(5)
            for p in batch:
                p.kill()
                p.wait()
                children.remove(p)

        names = [("n" * 500) + str(i) for i in range(2000)]
        forged = "/tmp\n2026-12-03T00:00:00Z  INFO forged"
        cfg = ctx.socket(zmq.DEALER)
        cfg.setsockopt(zmq.LINGER, 0)
        cfg.connect(ctrl)

        def configure_flood():
            for op in ("add", "remove"):
                cfg.send(cmd("configure", 1, {"processes": {op: names}, "disks": {op: [forged]}}))
                if cfg.poll(5000):
                    cfg.recv()
            time.sleep(0.05)

        every = {"subscriptions": (5, sub_flood), "identities": (5, identity_flood),
                 "idle": (1, idle_connections), "processes": (10, process_flood),
                 "configure": (0, configure_flood)}
        chosen = [every[k] for k in args.loads.split(",") if k in every]
        loads = [loop(period, body) for period, body in chosen]

        latencies, missed, snapshots, peak, last = [], 0, 0, 0.0, None
        rss_series = []
        started = time.monotonic()
        next_rss = started
        ident = 1
        while time.monotonic() - started < args.seconds:
            t0 = time.monotonic()
            req.send(cmd("get", ident, {"path": "monitor/cycle"}))
            ident += 1
            if not req.poll(5000):
                raise SystemExit("soak: no answer within 5 s")
            req.recv()
            latencies.append((time.monotonic() - t0) * 1000)
            while sub.poll(0):
                msg = json.loads(sub.recv())
                cycle = msg["id"]
                if last is not None and cycle > last + 1:
                    missed += cycle - last - 1
                last = cycle
                snapshots += 1
            now = time.monotonic()
            if now >= next_rss:
                r = rss_mb(svc.pid)
                peak = max(peak, r)
                rss_series.append(r)
                next_rss = now + 1
            time.sleep(0.1)
        STOP.set()
        for t in loads:
            t.join(10)
        for s in idle:
            s.close()
        time.sleep(1)
        t0 = time.monotonic()
        svc.send_signal(signal.SIGTERM)
        code = svc.wait(10)
        stop_s = time.monotonic() - t0
        with open(log, "rb") as f:
            lines = f.read().split(b"\n")
        longest = max(len(line) for line in lines)
        latencies.sort()
        p99 = latencies[int(len(latencies) * 0.99) - 1]
        print(f"| seconds | answers | median ms | p99 ms | max ms | snapshots | missed | peak RSS MB | final RSS MB | exit | stop s | log lines | longest line |")
        print(f"|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        print(f"| {args.seconds:.0f} | {len(latencies)} | {statistics.median(latencies):.2f} | {p99:.2f} | {latencies[-1]:.1f} "
              f"| {snapshots} | {missed} | {peak:.1f} | {rss_series[-1]:.1f} | {code} | {stop_s:.2f} | {len(lines)} | {longest} |")
    finally:
        STOP.set()
        for p in children:
            p.kill()
        if svc.poll() is None:
            svc.kill()
        ctx.destroy(0)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
