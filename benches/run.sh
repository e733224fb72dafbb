#!/usr/bin/env bash
# Every benchmark figure of odin-status, measured side by side in one run on
# this host, printed as one Markdown report (benches/RESULTS.md holds one).
#
#   benches/run.sh           full run, about 16 minutes (10 of them the memory soak)
#   benches/run.sh --quick   smoke run, about 5 minutes (30 s soak, fewer repetitions)
#
# It builds the release binary, the cycle bench and the echo server; makes (or
# reuses) a throwaway venv with odin-control 2.1.0, pyzmq and psutil at
# $ODIN_STATUS_BENCH_VENV (default /tmp/odin-status-bench-venv, never inside the
# repository); spawns the matched and idle `sleep` processes it needs and stops
# every process it started when it ends, however it ends.
# Needs cargo, python3 (3.9+), strace, and about 5,200 free PIDs.
set -euo pipefail

quick=0
for arg in "$@"; do
    case "$arg" in
        --quick) quick=1 ;;
        -h | --help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "run.sh: unknown option $arg (try --help)" >&2; exit 2 ;;
    esac
done

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
venv=${ODIN_STATUS_BENCH_VENV:-/tmp/odin-status-bench-venv}
venv=$(realpath -m "$venv")
case "$venv/" in
    "$repo"/*) echo "run.sh: the venv must be outside the repository, not $venv" >&2; exit 2 ;;
esac
command -v strace >/dev/null || { echo "run.sh: strace is needed (apt-get install strace)" >&2; exit 2; }

levels=(0 1000 5000)           # extra idle processes on the host
if ((quick)); then
    odin_reps=(3 2 1); seg=0.2; rounds=3; publishes=300
    rt_n=1000; rt_trials=2; strace_s=5; cpu_s=10; rss_s=30; rss_every=5
else
    odin_reps=(10 5 3); seg=0.5; rounds=5; publishes=1000
    rt_n=3000; rt_trials=7; strace_s=20; cpu_s=20; rss_s=600; rss_every=30
fi
disks="/,/tmp"
interfaces="lo"
names50="fpbench_a,frameReceiver,frameProcessor"   # 50 processes match fpbench_a
names100="fpbench_,frameReceiver,frameProcessor"   # 100 match fpbench_ (a and b)
leaf_path="disk/_/percent"

log() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }

# ------------------------------------------------------------ processes we own
work=$(mktemp -d /tmp/odin-status-bench.XXXXXX)
res="$work/results.txt"
: >"$res"
own_pids=()   # services, helpers, echo server, matched sleeps
idle_pids=()  # the extra idle sleeps

cleanup() {
    local status=$?
    trap - EXIT INT TERM
    local all=("${own_pids[@]}" "${idle_pids[@]}")
    if ((${#all[@]})); then
        kill "${all[@]}" 2>/dev/null || true
        local i
        for i in $(seq 100); do   # at most 10 s for them to go
            [[ -z "$(jobs -rp)" ]] && break
            sleep 0.1
        done
        # shellcheck disable=SC2046
        [[ -z "$(jobs -rp)" ]] || kill -KILL $(jobs -rp) 2>/dev/null || true
        wait 2>/dev/null || true
    fi
    rm -rf "$work"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

put() { printf '%s %s\n' "$1" "$2" >>"$res"; }
jget() { python3 -c 'import json,sys; v=json.load(open(sys.argv[1]))[sys.argv[2]]; print(" ".join(map(str,v)) if isinstance(v,list) else v)' "$1" "$2"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
median() { python3 -c 'import statistics,sys; print(statistics.median(float(x) for x in sys.argv[1:]))' "$@"; }

spawn_idle_to() {
    local target=$1
    while ((${#idle_pids[@]} < target)); do
        sleep 7200 >/dev/null 2>&1 &
        idle_pids+=($!)
    done
}

stop_idle() {
    if ((${#idle_pids[@]})); then
        kill "${idle_pids[@]}" 2>/dev/null || true
        wait "${idle_pids[@]}" 2>/dev/null || true
    fi
    idle_pids=()
}

# Runs a command in the background and waits for it: a trapped INT or TERM then
# interrupts `wait` at once (bash would let a foreground command finish first,
# and ignores an INT that only it received), and cleanup stops the command.
fg_run() {
    "$@" &
    local pid=$!
    own_pids+=("$pid")
    wait "$pid"
}

stop_pid() {
    kill "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}

write_cfg() {   # FILE NAMES RATE: an odin-control config, so no name is in any argv
    cat >"$1" <<EOF
[adapter.status]
module = odin_control.adapters.system_status.SystemStatusAdapter
disks = $disks
interfaces = $interfaces
processes = $2
rate = $3
EOF
}

svc_pid=
svc_pin=()   # a command prefix (taskset) for the next services started, or nothing
start_service() {   # TAG CONFIG CTRL PUB
    "${svc_pin[@]}" "$bin" serve --config "$2" --ctrl "$3" --pub "$4" </dev/null >/dev/null 2>"$work/$1.log" &
    svc_pid=$!
    own_pids+=("$svc_pid")
    if ! "$py" benches/bench.py ready --ctrl "$3" >/dev/null; then
        log "odin-status ($1) did not answer:"; cat "$work/$1.log" >&2; exit 1
    fi
}

proc_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
cpu_ns() { cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{ns += $1} END {print ns + 0}'; }   # PID: CPU time of its threads
list_pids() { local d; for d in /proc/[0-9]*; do echo "${d#/proc/}"; done; }
thread_ticks() {   # PID: one line per thread, "role utime stime"
    local t role
    for t in /proc/"$1"/task/*; do
        role=$(cat "$t/comm" 2>/dev/null) || continue
        if [[ ${t##*/} == "$1" ]]; then role=sampler; elif [[ $role == odin-status ]]; then role=zmq-io; fi
        echo "$role $(awk '{print $14, $15}' "$t/stat" 2>/dev/null)"
    done
}

# ------------------------------------------------------------------- build
log "building (release binary, cycle bench, echo server)"
cargo build --release --quiet
cargo build --release --quiet --example echo_server
bin="$repo/target/release/odin-status"
echo_bin="$repo/target/release/examples/echo_server"
cycle_bin=$(cargo bench --no-run --quiet --bench cycle --message-format=json 2>/dev/null |
    python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "cycle" and m.get("executable"):
        print(m["executable"])')
[[ -x "$cycle_bin" ]] || { log "cannot find the cycle bench executable"; exit 1; }

# ------------------------------------------------------------------- venv
py="$venv/bin/python"
if ! "$py" -c 'import importlib.metadata as m, zmq, psutil; assert m.version("odin-control") == "2.1.0"' 2>/dev/null; then
    log "making the venv $venv (odin-control 2.1.0, pyzmq, psutil)"
    [[ -x "$py" ]] || python3 -m venv "$venv"
    "$py" -m pip install --quiet --disable-pip-version-check "odin-control==2.1.0" pyzmq psutil
fi

# ------------------------------------------------------------------- machine
put date "$(date -u '+%Y-%m-%d %H:%M UTC')"
put quick "$quick"
put cpu "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | xargs)"
put cores "$(nproc)"
put mem "$(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)"
put kernel "$(uname -r)"
put rustc "$(rustc --version | cut -d' ' -f2)"
put python "$("$py" -c 'import platform; print(platform.python_version())')"
put odin_version "$("$py" -c 'import importlib.metadata as m; print(m.version("odin-control"))')"
put psutil "$("$py" -c 'import psutil; print(psutil.__version__)')"
put pyzmq "$("$py" -c 'import zmq; print(zmq.__version__)')"
put load_start "$(cut -d' ' -f1-3 /proc/loadavg)"
put disks "$disks"
put interfaces "$interfaces"
put names50 "$names50"
put names100 "$names100"
put leaf_path "$leaf_path"
put levels "${levels[*]}"
export ODIN_BENCH_DISKS="$disks" ODIN_BENCH_INTERFACES="$interfaces"

# ------------------------------------------------------------------- matched processes
sleep_bin=$(command -v sleep)
ln -s "$sleep_bin" "$work/fpbench_a"
ln -s "$sleep_bin" "$work/fpbench_b"
for _ in $(seq 50); do
    "$work/fpbench_a" 7200 </dev/null >/dev/null 2>&1 &
    own_pids+=($!)
    "$work/fpbench_b" 7200 </dev/null >/dev/null 2>&1 &
    own_pids+=($!)
done

# ------------------------------------------------------------------- 1. cycle CPU, odin vs ours, and openat
for i in "${!levels[@]}"; do
    lv=${levels[$i]}
    k="l${lv}_"
    log "item 1 with $lv extra idle processes: spawning"
    spawn_idle_to "$lv"
    fg_run sleep 2   # every process older than the service's 1 s settle time
    log "item 1 with $lv extra: odin-status cycle and floor"
    fg_run env ODIN_BENCH_PROCESSES="$names50" "$cycle_bin" --mode cycle --seconds "$seg" --rounds "$rounds" --kv \
        >"$work/cycle-$lv.txt"
    sed "s/^/$k/" "$work/cycle-$lv.txt" >>"$res"
    log "item 1 with $lv extra: odin-status cycle without the kernel's process events"
    fg_run env ODIN_BENCH_PROCESSES="$names50" ODIN_STATUS_PROCESS_EVENTS=off "$cycle_bin" --mode cycle \
        --seconds "$seg" --rounds "$rounds" --kv >"$work/cycle-noev-$lv.txt"
    sed "s/^/${k}noev_/" "$work/cycle-noev-$lv.txt" >>"$res"
    log "item 1 with $lv extra: odin-control monitor() x ${odin_reps[$i]}"
    fg_run env ODIN_BENCH_PROCESSES="$names50" "$py" benches/bench.py odin --reps "${odin_reps[$i]}" >"$work/odin-$lv.json"
    put "${k}odin_mean_s" "$(jget "$work/odin-$lv.json" mean_s)"
    put "${k}odin_reps" "${odin_reps[$i]}"
    put "${k}odin_matched" "$(jget "$work/odin-$lv.json" matched)"

    log "item 1 with $lv extra: openat of the running service over ${strace_s} s at 10 Hz"
    write_cfg "$work/strace.cfg" "$names100" 10
    start_service "strace-$lv" "$work/strace.cfg" "ipc://$work/strace-ctrl" "ipc://$work/strace-pub"
    list_pids >"$work/pids-before"
    fg_run sleep 3   # past the first cycles, which read every process once, and the 1 s settle time
    "$py" benches/bench.py load --pub "ipc://$work/strace-pub" --seconds "$strace_s" >"$work/strace-load-$lv.json" &
    load_pid=$!
    own_pids+=("$load_pid")
    fg_run timeout -s INT "$strace_s" strace -f -qq -e trace=openat -o "$work/strace-$lv.txt" -p "$svc_pid" || true
    wait "$load_pid" || true
    list_pids >"$work/pids-after"
    stop_pid "$svc_pid"
    cycles=$(python3 -c 'import json, sys
d = json.load(open(sys.argv[1]))
print(d["last_id"] - d["first_id"] + 1 if d["first_id"] is not None else round(10 * float(sys.argv[2])))' \
        "$work/strace-load-$lv.json" "$strace_s")
    "$py" benches/bench.py openat --trace "$work/strace-$lv.txt" --before "$work/pids-before" \
        --after "$work/pids-after" --cycles "$cycles" >"$work/openat-$lv.json"
    put "${k}openat_cycles" "$cycles"
    for key in total per_cycle lasting_pid_opens lasting_per_cycle new_pid_opens new_pids paths; do
        put "${k}openat_$key" "$(jget "$work/openat-$lv.json" "$key")"
    done
done
log "stopping the idle processes"
stop_idle

# ------------------------------------------------------------------- 2. round trips
# Servers on CPU 1 and the client on CPU 0 (when there are two): on this kind of
# VM, unpinned threads that wake each other across vCPUs make the rate swing by
# 2x from one trial to the next; pinned, trials agree far better. Echo and
# odin-status get the same placement, and trials alternate ABBA.
if (($(nproc) >= 2)); then srv_pin=(taskset -c 1); cli_pin=(taskset -c 0); else srv_pin=(); cli_pin=(); fi
write_cfg "$work/rt.cfg" "$names50" 10
echo_tcp="tcp://127.0.0.1:$(free_port)"
echo_ipc="ipc://$work/echo"
"${srv_pin[@]}" "$echo_bin" --seconds 1800 "$echo_tcp" "$echo_ipc" </dev/null >/dev/null 2>"$work/echo.log" &
echo_pid=$!
own_pids+=("$echo_pid")
"$py" benches/bench.py roundtrip --ctrl "$echo_tcp" --n 10 --check echo >/dev/null ||
    { log "the echo server does not answer"; cat "$work/echo.log" >&2; exit 1; }
fg_run env ODIN_BENCH_PROCESSES="$names50" ODIN_BENCH_LEAF="$leaf_path" "$cycle_bin" --mode answer --seconds "$seg" \
    --rounds "$rounds" --kv >>"$res"
put rt_n "$rt_n"
put rt_trials "$rt_trials"
put rt_pinning "${srv_pin[*]:-none} (servers), ${cli_pin[*]:-none} (client)"
roundtrip() {   # ENDPOINT PATH CHECK SERVER_PID THREADS -> "rate server-cpu-us-per-round-trip"
    "${cli_pin[@]}" "$py" benches/bench.py roundtrip --ctrl "$1" --path "$2" --n "$rt_n" --check "$3" \
        --server-pid "$4" --server-threads "$5" >"$work/rt-$3.json"
    echo "$(jget "$work/rt-$3.json" rate) $(jget "$work/rt-$3.json" server_cpu_us_per_rt)"
}
for tr in tcp ipc; do
    if [[ $tr == tcp ]]; then ours="tcp://127.0.0.1:$(free_port)"; echo_ep=$echo_tcp; else ours="ipc://$work/rt-ctrl"; echo_ep=$echo_ipc; fi
    svc_pin=("${srv_pin[@]}")
    start_service "rt-$tr" "$work/rt.cfg" "$ours" "ipc://$work/rt-pub-$tr"
    svc_pin=()
    sleep 1
    for what in leaf tree; do
        # The leaf is compared with the bare echo; the whole tree with an echo
        # whose reply is as large as the tree's, so both move the same bytes.
        if [[ $what == leaf ]]; then
            path=$leaf_path; e_ep=$echo_ep; e_pid=$echo_pid; e_check=echo
        else
            path=""; e_check=sized
            size=$("$py" benches/bench.py roundtrip --ctrl "$ours" --path "" --n 10 --check ack >"$work/size.json" &&
                jget "$work/size.json" reply_bytes)
            if [[ $tr == tcp ]]; then e_ep="tcp://127.0.0.1:$(free_port)"; else e_ep="ipc://$work/echo-sized"; fi
            "${srv_pin[@]}" "$echo_bin" --seconds 1800 --reply-bytes "$size" "$e_ep" </dev/null >/dev/null \
                2>"$work/echo-sized.log" &
            e_pid=$!
            own_pids+=("$e_pid")
            sleep 0.5
        fi
        e=(); o=(); ratios=(); ecpu=(); ocpu=()
        log "item 2: $tr $what, $rt_trials trials of $rt_n round trips each against echo and odin-status"
        for t in $(seq "$rt_trials"); do
            if ((t % 2)); then
                read -r er ec < <(roundtrip "$e_ep" "$path" "$e_check" "$e_pid" all)
                read -r or oc < <(roundtrip "$ours" "$path" ack "$svc_pid" control)
            else
                read -r or oc < <(roundtrip "$ours" "$path" ack "$svc_pid" control)
                read -r er ec < <(roundtrip "$e_ep" "$path" "$e_check" "$e_pid" all)
            fi
            e+=("$er"); o+=("$or"); ecpu+=("$ec"); ocpu+=("$oc")
            ratios+=("$(python3 -c "print($or / $er)")")
        done
        put "rt_${tr}_${what}_echo" "$(median "${e[@]}")"
        put "rt_${tr}_${what}_ours" "$(median "${o[@]}")"
        put "rt_${tr}_${what}_ratio" "$(median "${ratios[@]}")"
        put "rt_${tr}_${what}_echo_cpu" "$(median "${ecpu[@]}")"
        put "rt_${tr}_${what}_ours_cpu" "$(median "${ocpu[@]}")"
        put "rt_${tr}_${what}_echo_all" "${e[*]}"
        put "rt_${tr}_${what}_ours_all" "${o[*]}"
        put "rt_${tr}_${what}_bytes" "$(jget "$work/rt-ack.json" reply_bytes)"
        put "rt_${tr}_${what}_echo_bytes" "$(jget "$work/rt-$e_check.json" reply_bytes)"
        if [[ $what == tree ]]; then stop_pid "$e_pid"; fi
    done
    stop_pid "$svc_pid"
done
stop_pid "$echo_pid"

# ------------------------------------------------------------------- 4. memory soak, in the background
log "item 4: memory soak, ${rss_s} s at 10 Hz (item 3 and the 100 Hz run go on meanwhile)"
write_cfg "$work/rss.cfg" "$names100" 10
start_service rss "$work/rss.cfg" "ipc://$work/rss-ctrl" "ipc://$work/rss-pub"
rss_svc=$svc_pid
"$py" benches/bench.py load --pub "ipc://$work/rss-pub" --ctrl "ipc://$work/rss-ctrl" --seconds "$rss_s" \
    --rss-pid "$rss_svc" --rss-every "$rss_every" >"$work/rss.json" &
rss_load=$!
own_pids+=("$rss_load")

# ------------------------------------------------------------------- 3. encode + publish
log "item 3: encode and publish, 100 matched"
fg_run env ODIN_BENCH_PROCESSES="$names100" "$cycle_bin" --mode publish --seconds "$seg" --rounds "$rounds" \
    --publishes "$publishes" --kv >"$work/publish.txt"
cat "$work/publish.txt" >>"$res"

# ------------------------------------------------------------------- CPU at 100 Hz
log "started-event latency at 1 Hz"
write_cfg "$work/starts.cfg" "fpstart_x,frameReceiver" 1
ln -s "$(command -v sleep)" "$work/fpstart_x"
start_service starts "$work/starts.cfg" "ipc://$work/starts-ctrl" "ipc://$work/starts-pub"
"$py" benches/bench.py starts --pub "ipc://$work/starts-pub" --program "$work/fpstart_x" \
    --n "$((quick ? 8 : 20))" >"$work/starts.json"
stop_pid "$svc_pid"
for key in median_ms max_ms n missed; do put "starts_$key" "$(jget "$work/starts.json" "$key")"; done

log "each read per tracked process (100 matched)"
fg_run env ODIN_BENCH_PROCESSES="$names100" "$cycle_bin" --mode reads --seconds "$seg" --rounds "$rounds" \
    --kv >>"$res"

log "the in-process cycle with 100 matched, paced at 100 Hz"
fg_run env ODIN_BENCH_PROCESSES="$names100" "$cycle_bin" --mode cycle --seconds "$((quick ? 1 : 2))" \
    --rounds "$rounds" --pace-us 10000 --kv >"$work/paced.txt"
sed 's/^/p100_/' "$work/paced.txt" >>"$res"
log "CPU of the running service at 100 Hz over ${cpu_s} s, beside the floor loop at 100 Hz"
write_cfg "$work/cpu.cfg" "$names100" 100
start_service cpu "$work/cpu.cfg" "ipc://$work/cpu-ctrl" "ipc://$work/cpu-pub"
fg_run sleep 3
"$py" benches/bench.py load --pub "ipc://$work/cpu-pub" --seconds "$((cpu_s + 2))" >"$work/cpu-load.json" &
load_pid=$!
own_pids+=("$load_pid")
# The floor loop runs as a process beside the service and both are measured
# over the same windows: on this kind of VM the CPU a loop takes swings by
# up to 2x from one minute to the next, and the same window hits both alike.
env ODIN_BENCH_PROCESSES="$names100" "$cycle_bin" --mode floor-loop --rate 100 --seconds "$((cpu_s + 5))" \
    --kv >"$work/floor-loop.txt" &
floor_pid=$!
own_pids+=("$floor_pid")
for _ in $(seq 100); do grep -q '^ready' "$work/floor-loop.txt" 2>/dev/null && break; sleep 0.1; done
windows=4
ratios=(); svc_pcts=(); floor_pcts=()
t0=$(date +%s.%N); c0=$(proc_ticks "$svc_pid"); thread_ticks "$svc_pid" >"$work/threads0"
for _ in $(seq "$windows"); do
    w0=$(date +%s.%N); s0=$(cpu_ns "$svc_pid"); f0=$(cpu_ns "$floor_pid")
    fg_run sleep "$(python3 -c "print($cpu_s / $windows)")"
    w1=$(date +%s.%N); s1=$(cpu_ns "$svc_pid"); f1=$(cpu_ns "$floor_pid")
    svc_pcts+=("$(python3 -c "print(($s1 - $s0) / 1e9 / ($w1 - $w0) * 100)")")
    floor_pcts+=("$(python3 -c "print(($f1 - $f0) / 1e9 / ($w1 - $w0) * 100)")")
    ratios+=("$(python3 -c "print(($s1 - $s0) / ($f1 - $f0))")")
done
t1=$(date +%s.%N); c1=$(proc_ticks "$svc_pid"); thread_ticks "$svc_pid" >"$work/threads1"
wait "$load_pid" || true
wait "$floor_pid" || true
stop_pid "$svc_pid"
put cpu100_seconds "$cpu_s"
put cpu100_percent "$(python3 -c "print(($c1 - $c0) / $(getconf CLK_TCK) / ($t1 - $t0) * 100)")"
put cpu100_windows "$windows"
put cpu100_window_service "${svc_pcts[*]}"
put cpu100_window_floor "${floor_pcts[*]}"
put cpu100_window_ratios "${ratios[*]}"
put cpu100_ratio "$(median "${ratios[@]}")"
put cpu100_service_median "$(median "${svc_pcts[@]}")"
put cpu100_floor_median "$(median "${floor_pcts[@]}")"
put cpu100_floor_cycles "$(grep '^floor_loop_cycles ' "$work/floor-loop.txt" | cut -d' ' -f2)"
put cpu100_threads "$(python3 - "$work/threads0" "$work/threads1" "$(getconf CLK_TCK)" "$t0" "$t1" <<'PY'
import sys
from collections import defaultdict
def load(path):
    d = defaultdict(lambda: [0, 0])
    for line in open(path):
        role, u, s = line.split()
        d[role][0] += int(u); d[role][1] += int(s)
    return d
a, b = load(sys.argv[1]), load(sys.argv[2])
hz, secs = float(sys.argv[3]), float(sys.argv[5]) - float(sys.argv[4])
parts = []
for role in ("sampler", "publish", "control", "zmq-io"):
    du = (b[role][0] - a[role][0]) / hz / secs * 100
    ds = (b[role][1] - a[role][1]) / hz / secs * 100
    parts.append(f"{role} {du + ds:.1f}% (user {du:.1f}, system {ds:.1f})")
print("; ".join(parts))
PY
)"
put cpu100_hz "$(python3 -c "import json; d = json.load(open('$work/cpu-load.json')); print(d['received'] / d['seconds'])")"

# ------------------------------------------------------------------- 4. memory soak, the end
log "item 4: waiting for the end of the memory soak"
wait "$rss_load" || true
stop_pid "$rss_svc"
put rss_seconds "$rss_s"
put rss_interval "$rss_every"
put rss_samples_kb "$(jget "$work/rss.json" rss_kb)"
put rss_hz "$(python3 -c "import json; d = json.load(open('$work/rss.json')); print(d['received'] / d['seconds'])")"
put matched50 "$(grep '^l0_matched ' "$res" | cut -d' ' -f2)"
put matched100 "$(grep '^pub_matched ' "$res" | cut -d' ' -f2)"
put load_end "$(cut -d' ' -f1-3 /proc/loadavg)"

cp "$res" /tmp/odin-status-bench-last.txt
"$py" benches/bench.py report "$res" | tee /tmp/odin-status-bench-last.md
log "done; raw figures in /tmp/odin-status-bench-last.txt"
