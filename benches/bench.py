"""Python side of benches/run.sh: odin-control's monitor(), pyzmq clients, the report.

Subcommands (each prints one JSON object on stdout, except `report`):

  odin --reps N          time SystemStatusController.monitor() of odin-control
                         (configuration from ODIN_BENCH_DISKS, ODIN_BENCH_INTERFACES,
                         ODIN_BENCH_PROCESSES, as for the cycle bench)
  ready --ctrl EP        wait until a service answers request_version
  roundtrip --ctrl EP --path P --n N [--check echo|ack]
                         N sequential REQ round trips of one `get` request
  load --pub EP [--ctrl EP] --seconds S [--rss-pid PID --rss-every T]
                         a subscriber that reads every snapshot (and, with --ctrl,
                         gets the whole tree once a second) for S seconds, sampling
                         PID's VmRSS at the start, every T seconds and at the end
  openat --trace F --before F --after F --cycles N
                         classify the openat calls of an strace log
  report RESULTS         the Markdown report from run.sh's `key value` file

The process names come from the environment, never the command line: a process
whose arguments hold a configured name would match it.
"""

import argparse
import json
import os
import sys
import time

REQUEST_TIMESTAMP = "2026-11-26T06:08:46.456235"


def request_body(msg_val, params, msg_id=1):
    return json.dumps({
        "msg_type": "cmd",
        "msg_val": msg_val,
        "id": msg_id,
        "timestamp": REQUEST_TIMESTAMP,
        "params": params,
    }).encode()


def env_list(name, default=""):
    return os.environ.get(name, default)


def cmd_odin(args):
    from odin_control.adapters.system_status import SystemStatusController

    options = {
        "disks": env_list("ODIN_BENCH_DISKS", "/"),
        "interfaces": env_list("ODIN_BENCH_INTERFACES", "lo"),
        "processes": env_list("ODIN_BENCH_PROCESSES"),
    }
    # The constructor runs monitor() once (and schedules the next on an IOLoop
    # that never runs here), which also fills psutil's process cache.
    controller = SystemStatusController(options)
    controller.monitor()  # one more warm-up, as in steady state
    times = []
    for _ in range(args.reps):
        t0 = time.process_time()
        controller.monitor()
        times.append(time.process_time() - t0)
    first = options["processes"].split(",")[0].strip()
    matched = len(controller._process_tree.get(first, {}))  # noqa: SLF001 - a count for the table
    print(json.dumps({"per_call_s": times, "mean_s": sum(times) / len(times), "matched": matched}))


def connect(ctx, kind, endpoint):
    import zmq

    sock = ctx.socket(kind)
    sock.linger = 0
    sock.connect(endpoint)
    return sock


def cmd_ready(args):
    import zmq

    ctx = zmq.Context.instance()
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline:
        sock = connect(ctx, zmq.REQ, args.ctrl)
        try:
            sock.send(request_body("request_version", {}))
            if sock.poll(200):
                reply = json.loads(sock.recv())
                if reply.get("msg_type") == "ack":
                    print(json.dumps({"ready": True}))
                    return 0
        finally:
            sock.close()
        time.sleep(0.05)
    print(json.dumps({"ready": False}))
    return 1


def cmd_roundtrip(args):
    import zmq

    ctx = zmq.Context.instance()
    sock = connect(ctx, zmq.REQ, args.ctrl)
    sock.rcvtimeo = 5000
    body = request_body("get", {"path": args.path})
    sock.send(body)
    first = sock.recv()
    if args.check == "sized" and not first.startswith(body):
        print(json.dumps({"error": "the sized echo does not start with the request"}))
        return 1
    if args.check == "echo" and first != body:
        print(json.dumps({"error": "the echo differs from the request"}))
        return 1
    if args.check == "ack":
        reply = json.loads(first)
        if reply.get("msg_type") != "ack":
            print(json.dumps({"error": f"not an ack: {reply}"}))
            return 1
    for _ in range(min(500, args.n)):  # warm up
        sock.send(body)
        sock.recv()
    send, recv = sock.send, sock.recv
    cpu0 = server_cpu_ns(args.server_pid, args.server_threads)
    t0 = time.perf_counter()
    for _ in range(args.n):
        send(body)
        recv()
    elapsed = time.perf_counter() - t0
    cpu1 = server_cpu_ns(args.server_pid, args.server_threads)
    sock.close()
    result = {"n": args.n, "seconds": elapsed, "rate": args.n / elapsed,
              "reply_bytes": len(first), "request_bytes": len(body)}
    if args.server_pid:
        result["server_cpu_us_per_rt"] = (cpu1 - cpu0) / 1e3 / args.n
    print(json.dumps(result))
    return 0


def server_cpu_ns(pid, which):
    """CPU time (ns, from schedstat) of a server's threads: `all` of them, or
    `control`: all but the main (sampling) thread and the `publish` thread,
    i.e. what serves requests in odin-status (the control thread and libzmq's)."""
    if not pid:
        return 0
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/comm", encoding="utf-8") as f:
                comm = f.read().strip()
            with open(f"/proc/{pid}/task/{tid}/schedstat", encoding="ascii") as f:
                ns = int(f.read().split()[0])
        except OSError:
            continue
        if which == "control" and (int(tid) == pid or comm == "publish"):
            continue
        total += ns
    return total


def cmd_load(args):
    import zmq

    ctx = zmq.Context.instance()
    sub = connect(ctx, zmq.SUB, args.pub)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    ctrl = connect(ctx, zmq.REQ, args.ctrl) if args.ctrl else None
    received, first_id, last_id, gets, failed_gets = 0, None, None, 0, 0
    rss = []
    start = time.monotonic()
    deadline = start + args.seconds
    next_get = start + 1.0
    next_rss = start
    while True:
        now = time.monotonic()
        if args.rss_pid and now >= next_rss:
            rss.append(vm_rss_kb(args.rss_pid))
            next_rss += args.rss_every
        if now >= deadline:
            break
        if sub.poll(min(100, int((deadline - now) * 1000) + 1)):
            frame = sub.recv()
            received += 1
            msg_id = cycle_id(frame)
            if msg_id is not None:
                first_id = msg_id if first_id is None else first_id
                last_id = msg_id
        if ctrl is not None and time.monotonic() >= next_get:
            next_get += 1.0
            ctrl.send(request_body("get", {"path": ""}))
            if ctrl.poll(2000):
                ctrl.recv()
                gets += 1
            else:  # a REQ socket that lost its reply cannot send again
                failed_gets += 1
                ctrl.close()
                ctrl = connect(ctx, zmq.REQ, args.ctrl)
    if args.rss_pid:
        rss.append(vm_rss_kb(args.rss_pid))
    print(json.dumps({"received": received, "first_id": first_id, "last_id": last_id,
                      "seconds": time.monotonic() - start, "gets": gets,
                      "failed_gets": failed_gets, "rss_kb": rss}))
    return 0


def cmd_starts(args):
    """Latency of `started` events: from just before starting a matched
    process (Popen returns once it has exec'd) to its event at a subscriber,
    for processes started at spread-out moments of the cycle."""
    import subprocess

    import zmq

    ctx = zmq.Context.instance()
    sub = connect(ctx, zmq.SUB, args.pub)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    time.sleep(1.5)  # past cycle 1, and the subscription in place
    latencies, missed = [], 0
    for i in range(args.n):
        time.sleep(args.gap + (i * 0.37) % 1.0)  # land at different points of the cycle
        t0 = time.perf_counter()
        child = subprocess.Popen([args.program, "600"], stdout=subprocess.DEVNULL)
        seen = None
        deadline = t0 + 5.0
        while seen is None and time.perf_counter() < deadline:
            if not sub.poll(100):
                continue
            message = json.loads(sub.recv())
            params = message.get("params", {})
            if (message.get("msg_val") == "process_event" and params.get("pid") == child.pid
                    and params.get("event") == "started"):
                seen = time.perf_counter() - t0
        child.kill()
        child.wait()
        if seen is None:
            missed += 1
        else:
            latencies.append(seen * 1e3)
    latencies.sort()
    median = latencies[len(latencies) // 2] if latencies else float("nan")
    print(json.dumps({"median_ms": median, "max_ms": max(latencies, default=float("nan")),
                      "n": len(latencies), "missed": missed,
                      "all_ms": [round(x, 1) for x in latencies]}))
    return 0


def vm_rss_kb(pid):
    """VmRSS of a process in kB, or None once it has gone."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def cycle_id(frame):
    """The cycle number of a published snapshot, JSON or MessagePack."""
    if frame[:1] == b"{":
        try:
            return json.loads(frame)["id"]
        except (ValueError, KeyError):
            return None
    try:
        import msgpack
    except ImportError:
        return None
    try:
        return msgpack.unpackb(frame)["id"]
    except Exception:  # noqa: BLE001 - any undecodable frame just has no id
        return None


def cmd_openat(args):
    """Classifies the openat calls of an `strace -f -e trace=openat -o FILE` log.

    A /proc/PID/... open is of a *lasting* process when PID was in /proc both in
    the listing taken (seconds) before the trace and in the one taken after it:
    such a process was there, settled, for the whole window, so a steady-state
    cycle has no reason to open its files (tracked ones are kept open). Any
    other PID was born during the window (or just before it), and the service
    reads a new process to learn whether it matches.
    """
    import re
    from collections import Counter

    def pids(path):
        with open(path, encoding="ascii") as f:
            return {int(x) for x in f.read().split() if x.isdigit()}

    lasting = pids(args.before) & pids(args.after)
    pattern = re.compile(r'openat\([^"]*"([^"]*)"')
    per_pid = re.compile(r"^/proc/(\d+)/(.*)$")
    paths = Counter()
    total = lasting_opens = new_opens = 0
    new_pids = set()
    with open(args.trace, encoding="utf-8", errors="replace") as f:
        for line in f:
            m = pattern.search(line)
            if not m:
                continue
            total += 1
            path = m.group(1)
            pm = per_pid.match(path)
            if pm:
                pid = int(pm.group(1))
                if pid in lasting:
                    lasting_opens += 1
                    path = f"/proc/LASTING/{pm.group(2)}"
                else:
                    new_opens += 1
                    new_pids.add(pid)
                    path = f"/proc/NEW/{pm.group(2)}"
            paths[path] += 1
    cycles = max(1, args.cycles)
    print(json.dumps({
        "total": total,
        "per_cycle": total / cycles,
        "lasting_pid_opens": lasting_opens,
        "lasting_per_cycle": lasting_opens / cycles,
        "new_pid_opens": new_opens,
        "new_pids": len(new_pids),
        "lasting_pids": len(lasting),
        "paths": ", ".join(f"{p} x{n}" for p, n in paths.most_common()),
    }))
    return 0


# ---------------------------------------------------------------- the report


def fnum(value, digits=1):
    try:
        return f"{float(value):,.{digits}f}"
    except (TypeError, ValueError):
        return "-"


def fnums(values, digits=1):
    """A space-separated list of figures, each as fnum gives it."""
    return " ".join(fnum(v, digits) for v in (values or "").split()) or "-"


def flt(r, key):
    try:
        return float(r[key])
    except (KeyError, ValueError):
        return float("nan")


def verdict(ok):
    if ok is None:
        return "n/a"
    return "holds" if ok else "MISSES"


def cmd_report(args):
    r = {}
    with open(args.results, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if " " in line:
                key, value = line.split(" ", 1)
                r[key] = value
    levels = r.get("levels", "0 1000 5000").split()
    out = []
    p = out.append
    p(f"## odin-status benchmark, {r.get('date', '?')}{' (quick run)' if r.get('quick') == '1' else ''}")
    p("")
    p(f"Machine: {r.get('cpu', '?')}, {r.get('cores', '?')} cores, {r.get('mem', '?')} memory, "
      f"Linux {r.get('kernel', '?')}; rustc {r.get('rustc', '?')}, Python {r.get('python', '?')}, "
      f"odin-control {r.get('odin_version', '?')}, psutil {r.get('psutil', '?')}, pyzmq {r.get('pyzmq', '?')}. "
      f"Load average at start {r.get('load_start', '?')}, at end {r.get('load_end', '?')}.")
    p("")
    p(f"Configuration everywhere: disks `{r.get('disks')}`, interface `{r.get('interfaces')}`, "
      f"3 process names. Item 1 and 2: `{r.get('names50')}` ({r.get('matched50', '?')} matched `sleep`s); "
      f"items 3, 4 and openat: `{r.get('names100')}` ({r.get('matched100', '?')} matched).")
    p("")

    p("### 1. CPU time per cycle: odin-control 2.1.0 `SystemStatusController.monitor()` vs odin-status")
    p("")
    p("odin = `time.process_time()` around `monitor()`, mean of the calls shown; "
      "ours = thread CPU time of one full service cycle (`Sampler::sample` + `to_tree` + JSON encode), "
      "median of interleaved rounds; floor = list /proc + pread the tracked PIDs' stat and statm; "
      "openat = `strace -f -e trace=openat` on the running service (10 Hz, 100 matched) over a known number of cycles.")
    p("")
    p("| extra idle processes | host processes | matched (ours/odin) | odin `monitor()` (ms) | odin-status cycle (us) | odin/ours | "
      "`sample()` alone (us) | floor (us) | ours/floor | sample/floor | first cycle (us) | "
      "openat per cycle | of which files of lasting processes | new processes read |")
    p("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for lv in levels:
        k = f"l{lv}_"
        odin_ms = flt(r, k + "odin_mean_s") * 1e3
        ours = flt(r, k + "full_cpu_us")
        ratio = odin_ms * 1e3 / ours if ours == ours and ours > 0 else float("nan")
        p(f"| {int(lv):,} | {r.get(k + 'host_processes', '-')} | "
          f"{r.get(k + 'matched', '-')}/{r.get(k + 'odin_matched', '-')} | {fnum(odin_ms, 1)} "
          f"(n={r.get(k + 'odin_reps', '?')}) | {fnum(ours)} | **{fnum(ratio, 0)}x** | "
          f"{fnum(r.get(k + 'sample_cpu_us'))} | {fnum(r.get(k + 'floor_cpu_us'))} | "
          f"{fnum(r.get(k + 'full_over_floor'), 2)} | {fnum(r.get(k + 'sample_over_floor'), 2)} | "
          f"{fnum(r.get(k + 'cold_cycle_us'), 0)} | "
          f"{fnum(r.get(k + 'openat_per_cycle'), 2)} ({r.get(k + 'openat_total', '-')} in "
          f"{r.get(k + 'openat_cycles', '-')} cycles) | **{fnum(r.get(k + 'openat_lasting_per_cycle'), 2)}** | "
          f"{r.get(k + 'openat_new_pids', '-')} ({r.get(k + 'openat_new_pid_opens', '-')} opens) |")
    lo, hi = levels[0], levels[-1]
    dn = float(r.get(f"l{hi}_host_processes", "nan")) - float(r.get(f"l{lo}_host_processes", "nan"))
    slope_ours = (flt(r, f"l{hi}_full_cpu_us") - flt(r, f"l{lo}_full_cpu_us")) / dn if dn else float("nan")
    slope_floor = (flt(r, f"l{hi}_floor_cpu_us") - flt(r, f"l{lo}_floor_cpu_us")) / dn if dn else float("nan")
    slope_noev = (flt(r, f"l{hi}_noev_full_cpu_us") - flt(r, f"l{lo}_noev_full_cpu_us")) / dn if dn else float("nan")
    p("")
    p("Files opened by the service in the traced cycles (LASTING = a process present before and after the "
      "trace window, NEW = one born during it, which the service reads to learn whether it matches: once "
      "when the kernel's process events are available, as for root, otherwise each cycle until it is 1 s old):")
    p("")
    for lv in levels:
        p(f"- {int(lv):,} extra, {r.get(f'l{lv}_openat_cycles', '-')} cycles: "
          f"{r.get(f'l{lv}_openat_paths') or 'none'}")
    p("")
    p(f"Cost per extra host process, {int(lo):,} to {int(hi):,} extra ({fnum(dn, 0)} more in /proc): "
      f"odin-status {fnum(slope_ours, 3)} us with the kernel's process events (the table kept from "
      f"them, /proc listed every 10 s), {fnum(slope_noev, 3)} us without them (/proc listed every "
      f"cycle); floor {fnum(slope_floor, 3)} us (listing /proc alone). Full cycle without events: "
      + ", ".join(f"{fnum(r.get(f'l{lv}_noev_full_cpu_us'))} us at {int(lv):,}" for lv in levels) + ".")
    p("")
    p(f"Each read of a tracked process, per process per cycle ({r.get('reads_tracked', '-')} tracked, "
      f"us of CPU): stat {fnum(r.get('read_stat_us'), 3)}, statm {fnum(r.get('read_statm_us'), 3)}, "
      f"affinity {fnum(r.get('read_affinity_us'), 3)}, fd count {fnum(r.get('read_fds_us'), 3)}; "
      f"the floor's stat+statm {fnum(r.get('read_floor_us'), 3)}.")
    p("")

    p("### 2. Control channel round trips per second (pyzmq REQ, sequential)")
    p("")
    p(f"{r.get('rt_n', '?')} round trips per trial, {r.get('rt_trials', '?')} trials alternating echo and odin-status "
      f"(ABBA); rates are medians, ours/echo is the median of the per-trial ratios. Pinning: {r.get('rt_pinning', '?')}. "
      "Echo = `examples/echo_server.rs`, a bare libzmq ROUTER that sends every message back "
      "(for the whole-tree row a second one, `--reply-bytes`, sends back a reply as large as odin-status's "
      "whole-tree reply, so both move the same bytes). "
      "odin-status runs at 10 Hz with the item-1 configuration (50 matched).")
    p("")
    p(f"In-process, `server::answer` (decode, GET against the tree, encode the reply) takes "
      f"{fnum(r.get('answer_leaf_us'))} us of CPU for the leaf and {fnum(r.get('answer_tree_us'))} us for the whole tree "
      "(cycle bench `--mode answer`); everything else in a round trip is transport, the same as the echo server's.")
    p("")
    p("Server CPU per round trip = CPU time (schedstat) of the echo server's threads, and of odin-status's "
      "control and libzmq threads (its sampling and publishing threads left out), over a trial, divided by the round trips.")
    p("")
    p("| transport | request | echo server (rt/s) | odin-status (rt/s) | ours/echo | server CPU per round trip, echo / ours (us) "
      "| reply bytes (ours) | all trials, echo / ours (rt/s) |")
    p("|---|---|---|---|---|---|---|---|")
    for tr in ("tcp", "ipc"):
        for what, label in (("leaf", f"`get` leaf `{r.get('leaf_path')}`"), ("tree", "`get` whole tree `\"\"`")):
            e = flt(r, f"rt_{tr}_{what}_echo")
            o = flt(r, f"rt_{tr}_{what}_ours")
            ratio = flt(r, f"rt_{tr}_{what}_ratio")
            trials = (" ".join(str(round(float(x))) for x in r.get(f"rt_{tr}_{what}_echo_all", "").split())
                      + " / " + " ".join(str(round(float(x))) for x in r.get(f"rt_{tr}_{what}_ours_all", "").split()))
            p(f"| {tr} | {label} | {fnum(e, 0)} | {fnum(o, 0)} | **{fnum(ratio * 100, 0)}%** "
              f"| {fnum(r.get(f'rt_{tr}_{what}_echo_cpu'))} / {fnum(r.get(f'rt_{tr}_{what}_ours_cpu'))} "
              f"| {r.get(f'rt_{tr}_{what}_bytes', '-')} | {trials} |")
    p("")

    p(f"### 3. Encode + publish of one snapshot ({r.get('pub_matched', '?')} matched processes)")
    p("")
    p("Wall time per call, median; publish = the service's `Publisher::publish` (PUB, HWM 4, DONTWAIT) "
      "on ipc with one SUB connected and reading; delivered = from the send call to the SUB's receive.")
    p("")
    p("| encoding | frame bytes | build tree (us) | encode (us) | publish (us) | **encode+publish (us)** | delivered (us) |")
    p("|---|---|---|---|---|---|---|")
    for enc in ("json", "msgpack"):
        p(f"| {enc} | {r.get(enc + '_bytes', '-')} | {fnum(r.get('tree_us'))} | {fnum(r.get(enc + '_encode_us'))} | "
          f"{fnum(r.get(enc + '_publish_us'))} | **{fnum(r.get(enc + '_total_us'))}** | "
          f"{fnum(r.get(enc + '_delivered_us'))} |")
    p("")

    p(f"### 4. The running service (`target/release/odin-status serve`, {r.get('matched100', '?')} matched, one subscriber)")
    p("")
    rss = [float(x) for x in r.get("rss_samples_kb", "").split()] if r.get("rss_samples_kb") else []
    p("| measure | figure |")
    p("|---|---|")
    p(f"| CPU at `--rate 100`, over {r.get('cpu100_seconds', '?')} s (utime+stime from /proc/PID/stat) | "
      f"**{fnum(r.get('cpu100_percent'), 2)}% of one core**; {fnum(r.get('cpu100_hz'), 1)} snapshots/s received |")
    p(f"| the same, by thread (/proc/PID/task/*/stat) | {r.get('cpu100_threads', '-')} |")
    p(f"| the service beside the floor loop at 100 Hz (cycle bench `--mode floor-loop`, its own process, "
      f"{r.get('cpu100_floor_cycles', '?')} cycles), CPU of each (schedstat) over the same "
      f"{r.get('cpu100_windows', '?')} windows | service {fnums(r.get('cpu100_window_service'), 2)} %; "
      f"floor loop {fnums(r.get('cpu100_window_floor'), 2)} %; service/floor {fnums(r.get('cpu100_window_ratios'), 2)}; "
      f"median **{fnum(r.get('cpu100_ratio'), 2)}x** |")
    pc = flt(r, "p100_full_cpu_us")
    p(f"| in-process full cycle with {r.get('p100_matched', '?')} matched, paced at 100 Hz (cycle bench `--pace-us 10000`) | "
      f"{fnum(pc)} us per cycle = {fnum(pc / 100, 1)}% of one core at 100 Hz; `sample()` {fnum(r.get('p100_sample_cpu_us'))} us, "
      f"floor {fnum(r.get('p100_floor_cpu_us'))} us |")
    if rss:
        p(f"| VmRSS at `--rate 10` over {r.get('rss_seconds', '?')} s, every {r.get('rss_interval', '?')} s "
          f"(a whole-tree `get` each second too) | start {fnum(rss[0] / 1024, 2)} MB, end {fnum(rss[-1] / 1024, 2)} MB, "
          f"max {fnum(max(rss) / 1024, 2)} MB; {fnum(r.get('rss_hz'), 1)} snapshots/s received |")
        p(f"| VmRSS samples (kB) | {' '.join(str(int(x)) for x in rss)} |")
    p("")

    p("### Targets")
    p("")
    ratio1000 = None
    if "1000" in levels:
        ours = flt(r, "l1000_full_cpu_us")
        ratio1000 = flt(r, "l1000_odin_mean_s") * 1e6 / ours if ours > 0 else float("nan")
    max_floor = max((flt(r, f"l{lv}_full_over_floor") for lv in levels), default=float("nan"))
    max_sfloor = max((flt(r, f"l{lv}_sample_over_floor") for lv in levels), default=float("nan"))
    openat_pid = max((flt(r, f"l{lv}_openat_lasting_per_cycle") for lv in levels), default=float("nan"))
    leaf = [flt(r, f"rt_{tr}_leaf_ratio") for tr in ("tcp", "ipc")]
    whole = [flt(r, f"rt_{tr}_tree_ratio") for tr in ("tcp", "ipc")]
    pub = max(flt(r, "json_total_us"), flt(r, "msgpack_total_us"))
    cpu100 = flt(r, "cpu100_percent")
    rss_ok = None
    if rss:
        rss_ok = max(rss) < 20 * 1024 and (rss[-1] - rss[len(rss) // 2]) < 0.05 * rss[-1]

    def ok(x):
        return None if x != x else x

    p("| target | figure | |")
    p("|---|---|---|")
    p(f"| cycle CPU at least 200x below odin-control's at 1,000 extra processes | {fnum(ratio1000, 0)}x | "
      f"{verdict(ok(ratio1000 >= 200) if ratio1000 is not None else None)} |")
    p(f"| 0 to 5,000 extra idle processes, with the kernel's process events: at most 0.1 us per extra process "
      f"| {fnum(slope_ours, 3)} us (without events {fnum(slope_noev, 3)} us; the floor, listing alone: "
      f"{fnum(slope_floor, 3)} us) | {verdict(ok(slope_ours <= 0.1) if slope_ours == slope_ours else None)} |")
    p(f"| no file of an untracked process read in a steady-state cycle | {fnum(openat_pid, 2)} opens per cycle of a lasting process's files | "
      f"{verdict(ok(openat_pid == 0) if openat_pid == openat_pid else None)} |")
    p(f"| within 2x of the floor | full cycle up to {fnum(max_floor, 2)}x, `sample()` up to {fnum(max_sfloor, 2)}x | "
      f"{verdict(ok(max_floor <= 2.0) if max_floor == max_floor else None)} (full cycle) / "
      f"{verdict(ok(max_sfloor <= 2.0) if max_sfloor == max_sfloor else None)} (`sample()`) |")
    p(f"| leaf `get` round trips at least 90% of the echo server's | tcp {fnum(leaf[0] * 100, 0)}%, ipc {fnum(leaf[1] * 100, 0)}% | "
      f"{verdict(ok(min(leaf) >= 0.9) if min(leaf) == min(leaf) else None)} |")
    p(f"| whole-tree `get` round trips at least 90% of an echo of a reply as large | tcp {fnum(whole[0] * 100, 0)}%, "
      f"ipc {fnum(whole[1] * 100, 0)}% | {verdict(ok(min(whole) >= 0.9) if min(whole) == min(whole) else None)} |")
    starts = flt(r, "starts_median_ms")
    p(f"| `started` event from exec to subscriber at 1 Hz: median under 20 ms | median {fnum(starts, 1)} ms, "
      f"max {fnum(r.get('starts_max_ms'), 1)} ms over {r.get('starts_n', '-')} starts ({r.get('starts_missed', '-')} missed) | "
      f"{verdict(ok(starts < 20) if starts == starts else None)} |")
    p(f"| 100-process snapshot encoded and published in under 1 ms | up to {fnum(pub)} us | "
      f"{verdict(ok(pub < 1000) if pub == pub else None)} |")
    p(f"| under 10% of one core at 100 Hz, 100 matched | {fnum(cpu100, 2)}% | "
      f"{verdict(ok(cpu100 < 10) if cpu100 == cpu100 else None)} |")
    over100 = flt(r, "cpu100_ratio")
    p(f"| 100 Hz, 100 matched: at most 1.3x the floor loop's CPU (both running, same windows) | "
      f"median of {r.get('cpu100_windows', '?')} windows {fnum(over100, 2)}x (service "
      f"{fnum(r.get('cpu100_service_median'), 2)}%, floor loop {fnum(r.get('cpu100_floor_median'), 2)}%) | "
      f"{verdict(ok(over100 <= 1.3) if over100 == over100 else None)} |")
    p(f"| resident memory under 20 MB, flat over time | max {fnum(max(rss) / 1024 if rss else float('nan'), 2)} MB, "
      f"second half {'+' if rss and rss[-1] >= rss[len(rss) // 2] else ''}{fnum((rss[-1] - rss[len(rss) // 2]) if rss else float('nan'), 0)} kB | "
      f"{verdict(rss_ok)} |")
    print("\n".join(out))
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("odin")
    a.add_argument("--reps", type=int, default=3)
    a = sub.add_parser("ready")
    a.add_argument("--ctrl", required=True)
    a.add_argument("--timeout", type=float, default=15.0)
    a = sub.add_parser("roundtrip")
    a.add_argument("--ctrl", required=True)
    a.add_argument("--path", default="")
    a.add_argument("--n", type=int, default=5000)
    a.add_argument("--check", choices=("echo", "sized", "ack"), default="ack")
    a.add_argument("--server-pid", type=int, help="also measure this server's CPU per round trip")
    a.add_argument("--server-threads", choices=("all", "control"), default="all")
    a = sub.add_parser("load")
    a.add_argument("--pub", required=True)
    a.add_argument("--ctrl")
    a.add_argument("--seconds", type=float, required=True)
    a.add_argument("--rss-pid", type=int, help="sample this process's VmRSS")
    a.add_argument("--rss-every", type=float, default=30.0)
    a = sub.add_parser("starts")
    a.add_argument("--pub", required=True)
    a.add_argument("--program", required=True, help="a matched program (a link to sleep)")
    a.add_argument("--n", type=int, default=20)
    a.add_argument("--gap", type=float, default=0.5)
    a = sub.add_parser("openat")
    a.add_argument("--trace", required=True)
    a.add_argument("--before", required=True)
    a.add_argument("--after", required=True)
    a.add_argument("--cycles", type=int, required=True)
    a = sub.add_parser("report")
    a.add_argument("results")
    args = parser.parse_args()
    handler = {"odin": cmd_odin, "ready": cmd_ready, "roundtrip": cmd_roundtrip,
               "load": cmd_load, "starts": cmd_starts, "openat": cmd_openat,
               "report": cmd_report}[args.cmd]
    return handler(args) or 0


if __name__ == "__main__":
    sys.exit(main())
