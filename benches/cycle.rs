//! What one update cycle of odin-status costs, against the floor (a loop that
//! only lists /proc and preads the tracked PIDs' stat and statm), and what it
//! costs to turn a snapshot into a published frame.
//!
//! Standalone: `cargo bench --bench cycle [-- MATCHED EXTRA]` spawns MATCHED
//! sleeps to track (default 50) and EXTRA idle ones (default 0) and prints
//! Markdown tables.
//!
//! Driven by `benches/run.sh`, which spawns the processes itself. The service's
//! configuration then comes from the environment, comma-separated:
//! `ODIN_BENCH_DISKS`, `ODIN_BENCH_INTERFACES`, `ODIN_BENCH_PROCESSES`. (Not
//! from the command line: a process name in an argument would make cargo, or
//! any other process holding that argument, match it.) Flags:
//!
//! - `--mode cycle|publish|answer|metrics|reads|floor-loop|all` (default `all`); `answer` times
//!   the control thread's work for one `get` (leaf `ODIN_BENCH_LEAF`, and the whole
//!   tree); `metrics` times rendering `/metrics` from the tree, in both formats;
//!   `reads` what each per-process read of a tracked process costs (stat, statm,
//!   affinity, fd count), per process, beside the floor's two reads
//! - `--seconds S`: wall time of each measured segment (default 0.5)
//! - `--rounds R`: segments per figure, interleaved; medians are reported (default 5)
//! - `--publishes N`: frames sent per encoding in the publish measurement (default 1000)
//! - `--gap-us N`: pause between two publishes (default 2000). The service
//!   publishes at most once a millisecond; libzmq lets a PUB socket see its
//!   subscriber's flow-control credit only when about a millisecond has passed
//!   since it last looked, so with the service's high-water mark of 4, sends
//!   packed closer than that drop every fourth frame for want of credit.
//! - `--pace-us N`: sleep N us after each measured call, as the service sleeps
//!   between cycles (caches go cold); default 0, back to back
//! - `--kv`: print `key value` lines for run.sh instead of tables
//! - `--mode floor-loop --rate HZ`: the floor as a process of its own, woken
//!   on a fixed schedule of HZ cycles a second as the service is, for
//!   `--seconds`; it prints `ready` once it has found its PIDs, and run.sh
//!   measures its CPU from outside, in the same window as the running
//!   service's, so a change of load on the host hits both alike
//!
//! Cycle figures are CPU time of this thread (user + system, CLOCK_THREAD_CPUTIME_ID)
//! per cycle, averaged over each segment: "full" is what the service does every
//! cycle (`Sampler::sample`, `Snapshot::to_tree`, JSON encoding of the status
//! message), "sample" is `Sampler::sample` alone.

use std::fs::File;
use std::hint::black_box;
use std::os::unix::fs::FileExt;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use odin_status::command::Context;
use odin_status::config::ProcessEntry;
use odin_status::protocol::{Message, MsgType};
use odin_status::sample::Sampler;
use odin_status::server::answer;
use odin_status::settings::Settings;
use odin_status::transport::{self, Incoming, Publisher, Subscriber};
use rustix::time::{clock_gettime, ClockId};

struct Options {
    mode: String,
    seconds: f64,
    rounds: usize,
    publishes: usize,
    gap_us: u64,
    pace: Duration,
    rate: f64,
    kv: bool,
    positional: Vec<usize>,
}

fn parse_options() -> Options {
    let mut o = Options {
        mode: "all".into(),
        seconds: 0.5,
        rounds: 5,
        publishes: 1000,
        gap_us: 2000,
        pace: Duration::ZERO,
        rate: 100.0,
        kv: false,
        positional: Vec::new(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--mode" => o.mode = args.next().unwrap_or_default(),
            "--seconds" => o.seconds = args.next().and_then(|s| s.parse().ok()).unwrap_or(0.5),
            "--rounds" => o.rounds = args.next().and_then(|s| s.parse().ok()).unwrap_or(5),
            "--publishes" => o.publishes = args.next().and_then(|s| s.parse().ok()).unwrap_or(1000),
            "--gap-us" => o.gap_us = args.next().and_then(|s| s.parse().ok()).unwrap_or(2000),
            "--rate" => o.rate = args.next().and_then(|v| v.parse().ok()).unwrap_or(100.0),
            "--pace-us" => {
                o.pace =
                    Duration::from_micros(args.next().and_then(|s| s.parse().ok()).unwrap_or(0))
            }
            "--kv" => o.kv = true,
            // cargo bench passes --bench to harness=false targets.
            "--bench" => {}
            other => {
                if let Ok(n) = other.parse() {
                    o.positional.push(n);
                } else {
                    eprintln!("cycle: ignoring argument {other}");
                }
            }
        }
    }
    o.rounds = o.rounds.max(1);
    o.publishes = o.publishes.max(10);
    o
}

fn cpu_now() -> f64 {
    let t = clock_gettime(ClockId::ThreadCPUTime);
    t.tv_sec as f64 + t.tv_nsec as f64 * 1e-9
}

fn list_env(name: &str) -> Option<Vec<String>> {
    let value = std::env::var(name).ok()?;
    Some(
        value
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
    )
}

fn spawn_sleeps(n: usize, arg: &str) -> Vec<Child> {
    (0..n)
        .map(|_| {
            Command::new("sleep")
                .arg(arg)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .spawn()
                .expect("spawn sleep")
        })
        .collect()
}

fn count_pids() -> usize {
    std::fs::read_dir("/proc")
        .map(|dir| {
            dir.flatten()
                .filter(|e| {
                    e.file_name()
                        .to_str()
                        .is_some_and(|s| s.parse::<u32>().is_ok())
                })
                .count()
        })
        .unwrap_or(0)
}

/// The floor: list /proc (parsing each name as a PID) and pread the tracked
/// processes' stat and statm through kept-open handles. Nothing else.
fn floor_cycle(proc_dir: &rustix::fd::OwnedFd, files: &[(File, File)], buf: &mut [u8]) -> usize {
    use std::mem::MaybeUninit;
    let mut n = 0;
    // The cheapest listing there is: /proc kept open, rewound, getdents64 into
    // a stack buffer, names parsed in place.
    if rustix::fs::seek(proc_dir, rustix::fs::SeekFrom::Start(0)).is_ok() {
        let mut space = [MaybeUninit::<u8>::uninit(); 32 * 1024];
        let mut dir = rustix::fs::RawDir::new(proc_dir, &mut space);
        while let Some(Ok(entry)) = dir.next() {
            if (entry.file_name().to_str().ok()).is_some_and(|s| s.parse::<u32>().is_ok()) {
                n += 1;
            }
        }
    }
    for (stat, statm) in files {
        n += stat.read_at(buf, 0).unwrap_or(0);
        n += statm.read_at(buf, 0).unwrap_or(0);
    }
    n
}

/// Per-call CPU and wall time (us) of `f`, run for `seconds` of wall time
/// (and at least 10 calls), with `pace` of sleep after each call when it is not
/// zero (the sleeps count in neither figure, beyond the sleep call's own CPU).
fn segment(seconds: f64, pace: Duration, f: &mut dyn FnMut()) -> (f64, f64, usize) {
    let (w0, c0) = (Instant::now(), cpu_now());
    let mut calls = 0usize;
    let mut busy = Duration::ZERO;
    while calls < 10 || w0.elapsed().as_secs_f64() < seconds {
        let t = Instant::now();
        f();
        busy += t.elapsed();
        calls += 1;
        if !pace.is_zero() {
            std::thread::sleep(pace);
        }
    }
    let wall = busy.as_secs_f64() / calls as f64;
    let cpu = (cpu_now() - c0) / calls as f64;
    (cpu * 1e6, wall * 1e6, calls)
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    }
}

/// Several functions measured in interleaved rounds (A B C A B C ...), so a
/// change of load on the host hits them alike. Returns per function the median
/// over rounds of (cpu us, wall us) per call, and the calls made.
fn interleaved(o: &Options, fs: &mut [&mut dyn FnMut()]) -> Vec<(f64, f64, usize)> {
    let mut per: Vec<(Vec<f64>, Vec<f64>, usize)> = vec![(vec![], vec![], 0); fs.len()];
    for f in fs.iter_mut() {
        for _ in 0..3 {
            f(); // warm up
        }
    }
    for _ in 0..o.rounds {
        for (i, f) in fs.iter_mut().enumerate() {
            let (cpu, wall, calls) = segment(o.seconds, o.pace, *f);
            per[i].0.push(cpu);
            per[i].1.push(wall);
            per[i].2 += calls;
        }
    }
    per.into_iter()
        .map(|(cpu, wall, calls)| (median(cpu), median(wall), calls))
        .collect()
}

struct Out {
    kv: bool,
    lines: Vec<(String, String)>,
}

impl Out {
    fn put(&mut self, key: &str, value: impl std::fmt::Display) {
        self.lines.push((key.to_string(), value.to_string()));
    }
    fn get(&self, key: &str) -> &str {
        self.lines
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .unwrap_or("-")
    }
}

/// The PIDs the service would report for `config`, with their stat and
/// statm kept open, as the floor reads them.
fn floor_files(config: &Config) -> (Vec<(File, File)>, usize) {
    let mut sampler = Sampler::new(&config.disks, &config.interfaces, &config.processes);
    let _ = sampler.sample();
    // Processes younger than a second are read again until they settle.
    std::thread::sleep(Duration::from_millis(1100));
    let snapshot = sampler.sample();
    let matched = snapshot.processes.iter().map(|(_, p)| p.len()).sum();
    let files = snapshot
        .processes
        .iter()
        .flat_map(|(_, p)| p.iter().map(|s| s.pid))
        .filter_map(|p| {
            Some((
                File::open(format!("/proc/{p}/stat")).ok()?,
                File::open(format!("/proc/{p}/statm")).ok()?,
            ))
        })
        .collect();
    (files, matched)
}

fn open_proc() -> rustix::fd::OwnedFd {
    match rustix::fs::open(
        "/proc",
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::DIRECTORY,
        rustix::fs::Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(e) => {
            eprintln!("cannot open /proc: {e}");
            std::process::exit(1);
        }
    }
}

/// The floor loop as a process: one floor cycle every 1/rate s on a fixed
/// schedule (sleeping to the next tick, as the service's timer does).
fn floor_loop(o: &Options, config: &Config, out: &mut Out) {
    let (files, _) = floor_files(config);
    let proc_dir = open_proc();
    let mut buf = vec![0u8; 4096];
    let period = Duration::from_secs_f64(1.0 / o.rate.clamp(0.1, 10_000.0));
    println!("ready {}", files.len());
    let start = Instant::now();
    let mut next = start;
    let mut cycles = 0u64;
    while start.elapsed().as_secs_f64() < o.seconds {
        black_box(floor_cycle(&proc_dir, &files, &mut buf));
        cycles += 1;
        next += period;
        if let Some(wait) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
    }
    out.put("floor_loop_cycles", cycles);
    out.put("floor_loop_tracked", files.len());
}

fn measure_cycle(o: &Options, config: &Config, out: &mut Out) {
    let mut sampler = Sampler::new(&config.disks, &config.interfaces, &config.processes);
    let c0 = cpu_now();
    let _ = sampler.sample();
    out.put("cold_cycle_us", format!("{:.0}", (cpu_now() - c0) * 1e6));
    let (files, matched) = floor_files(config);
    let _ = sampler.sample();
    let mut buf = vec![0u8; 4096];
    let proc_dir = open_proc();
    let mut cycle: u32 = 0;
    let mut sampler2 = Sampler::new(&config.disks, &config.interfaces, &config.processes);
    let _ = sampler2.sample();
    let mut full = || {
        cycle = cycle.wrapping_add(1);
        let tree = sampler.sample().to_tree();
        let message = Message::new(MsgType::Notify, "status", cycle, &tree);
        black_box(message.to_json());
    };
    let mut sample_only = || {
        black_box(sampler2.sample());
    };
    let mut floor = || {
        black_box(floor_cycle(&proc_dir, &files, &mut buf));
    };
    let r = interleaved(o, &mut [&mut full, &mut sample_only, &mut floor]);
    out.put("matched", matched);
    out.put("tracked", files.len());
    out.put("host_processes", count_pids());
    out.put("full_cpu_us", format!("{:.1}", r[0].0));
    out.put("full_wall_us", format!("{:.1}", r[0].1));
    out.put("full_cycles", r[0].2);
    out.put("sample_cpu_us", format!("{:.1}", r[1].0));
    out.put("sample_wall_us", format!("{:.1}", r[1].1));
    out.put("floor_cpu_us", format!("{:.1}", r[2].0));
    out.put("floor_wall_us", format!("{:.1}", r[2].1));
    out.put("floor_cycles", r[2].2);
    out.put("full_over_floor", format!("{:.2}", r[0].0 / r[2].0));
    out.put("sample_over_floor", format!("{:.2}", r[1].0 / r[2].0));
}

fn measure_publish(o: &Options, config: &Config, out: &mut Out) {
    let mut sampler = Sampler::new(&config.disks, &config.interfaces, &config.processes);
    let _ = sampler.sample();
    std::thread::sleep(Duration::from_millis(200)); // a cpu_percent baseline, as in service
    let snapshot = sampler.sample();
    let matched: usize = snapshot.processes.iter().map(|(_, p)| p.len()).sum();
    let tree = snapshot.to_tree();
    let message = Message::new(MsgType::Notify, "status", 1, &tree);
    let json = message.to_json();
    let msgpack = message.to_msgpack();
    let mut build = || {
        black_box(snapshot.to_tree());
    };
    let mut enc_json = || {
        black_box(Message::new(MsgType::Notify, "status", 1, &tree).to_json());
    };
    let mut enc_msgpack = || {
        black_box(Message::new(MsgType::Notify, "status", 1, &tree).to_msgpack());
    };
    let r = interleaved(o, &mut [&mut build, &mut enc_json, &mut enc_msgpack]);
    out.put("pub_matched", matched);
    out.put("tree_us", format!("{:.1}", r[0].1));
    out.put("json_encode_us", format!("{:.1}", r[1].1));
    out.put("msgpack_encode_us", format!("{:.1}", r[2].1));
    out.put("json_bytes", json.len());
    out.put("msgpack_bytes", msgpack.len());

    // The service's own publisher (PUB, its high-water mark, DONTWAIT) on ipc,
    // with one SUB connected and reading on another thread.
    let path = std::env::temp_dir().join(format!("odin-status-bench-{}.pub", std::process::id()));
    let endpoint = format!("ipc://{}", path.display());
    let ctx = transport::Context::new();
    let (publisher, _claim) = Publisher::bind(&ctx, &endpoint, 0o600).expect("bind PUB");
    let (tx, rx) = mpsc::channel::<Instant>();
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let stop = Arc::clone(&stop);
        let ctx = ctx.clone();
        let endpoint = endpoint.clone();
        std::thread::spawn(move || {
            let sub = Subscriber::connect(&ctx, &endpoint, usize::MAX).expect("connect SUB");
            while !stop.load(Ordering::Relaxed) {
                if let Ok(Some(_)) = sub.receive(Duration::from_millis(50)) {
                    if tx.send(Instant::now()).is_err() {
                        return;
                    }
                }
            }
        })
    };
    // Wait for the subscription to reach the publisher (bounded).
    let joined = Instant::now();
    let mut ready = false;
    while joined.elapsed() < Duration::from_secs(5) {
        let _ = publisher.publish(b"probe");
        if rx.recv_timeout(Duration::from_millis(20)).is_ok() {
            ready = true;
            break;
        }
    }
    std::thread::sleep(Duration::from_millis(50));
    while rx.try_recv().is_ok() {}
    for (name, frame) in [("json", &json), ("msgpack", &msgpack)] {
        let mut send = Vec::with_capacity(o.publishes);
        let mut delivered = Vec::with_capacity(o.publishes);
        let mut lost = 0usize;
        if ready {
            for _ in 0..o.publishes {
                let t0 = Instant::now();
                let _ = publisher.publish(frame);
                let t1 = Instant::now();
                send.push((t1 - t0).as_secs_f64() * 1e6);
                match rx.recv_timeout(Duration::from_millis(200)) {
                    Ok(t2) => delivered.push((t2 - t0).as_secs_f64() * 1e6),
                    Err(_) => lost += 1,
                }
                std::thread::sleep(Duration::from_micros(o.gap_us));
            }
        }
        let mean = send.iter().sum::<f64>() / send.len().max(1) as f64;
        out.put(
            &format!("{name}_publish_us"),
            format!("{:.1}", median(send)),
        );
        out.put(&format!("{name}_publish_mean_us"), format!("{mean:.1}"));
        out.put(
            &format!("{name}_delivered_us"),
            format!("{:.1}", median(delivered)),
        );
        out.put(&format!("{name}_lost"), lost);
    }
    stop.store(true, Ordering::Relaxed);
    let _ = reader.join();
    drop(publisher);
    let _ = std::fs::remove_file(&path);
    for name in ["json", "msgpack"] {
        let enc: f64 = out
            .get(&format!("{name}_encode_us"))
            .parse()
            .unwrap_or(f64::NAN);
        let publ: f64 = out
            .get(&format!("{name}_publish_us"))
            .parse()
            .unwrap_or(f64::NAN);
        out.put(&format!("{name}_total_us"), format!("{:.1}", enc + publ));
    }
}

/// What the control thread does per request, in-process: decode, answer
/// against the tree, encode the reply (`server::answer`), for the same
/// request bodies the round-trip client sends.
fn measure_answer(o: &Options, config: &Config, out: &mut Out) {
    let mut sampler = Sampler::new(&config.disks, &config.interfaces, &config.processes);
    let _ = sampler.sample();
    let context = Context {
        tree: Arc::new(sampler.sample().to_tree().into()),
        settings: default_settings(),
    };
    let request = |path: &str| {
        Incoming::split(vec![
            b"client".to_vec(),
            Vec::new(),
            serde_json::json!({
                "msg_type": "cmd", "msg_val": "get", "id": 1,
                "timestamp": "2026-11-26T06:08:46.456235", "params": {"path": path},
            })
            .to_string()
            .into_bytes(),
        ])
    };
    let leaf_path = std::env::var("ODIN_BENCH_LEAF").unwrap_or_else(|_| "disk/_/percent".into());
    let leaf = request(&leaf_path);
    let tree = request("");
    let mut answer_leaf = || {
        black_box(answer(&leaf, &context));
    };
    let mut answer_tree = || {
        black_box(answer(&tree, &context));
    };
    let r = interleaved(o, &mut [&mut answer_leaf, &mut answer_tree]);
    out.put("answer_leaf_us", format!("{:.1}", r[0].0));
    out.put("answer_tree_us", format!("{:.1}", r[1].0));
}

/// What a scrape costs besides the socket: rendering the latest tree.
fn measure_metrics(o: &Options, config: &Config, out: &mut Out) {
    use odin_status::metrics::{render, Format};
    let mut sampler = Sampler::new(&config.disks, &config.interfaces, &config.processes);
    let _ = sampler.sample();
    let snapshot = sampler.sample();
    let tree = snapshot.to_tree();
    let matched: usize = snapshot.processes.iter().map(|(_, p)| p.len()).sum();
    let mut text = || {
        black_box(render(&tree, &config.disks, Format::Prometheus));
    };
    let mut open = || {
        black_box(render(&tree, &config.disks, Format::OpenMetrics));
    };
    let r = interleaved(o, &mut [&mut text, &mut open]);
    out.put("metrics_matched", matched);
    out.put(
        "metrics_bytes",
        render(&tree, &config.disks, Format::Prometheus).len(),
    );
    out.put("metrics_text_us", format!("{:.1}", r[0].0));
    out.put("metrics_openmetrics_us", format!("{:.1}", r[1].0));
}

struct Config {
    disks: Vec<String>,
    interfaces: Vec<String>,
    processes: Vec<ProcessEntry>,
}

/// Names as configured (`name` or `name:N`).
/// What each read the service makes of a tracked process costs, per process:
/// the same system calls on kept-open handles (stat and statm by `pread`,
/// affinity by `sched_getaffinity`, the fd count by one `fstat` of the kept-open
/// `fd` directory), interleaved, against the floor's stat+statm.
fn measure_reads(o: &Options, config: &Config, out: &mut Out) {
    let mut sampler = Sampler::new(&config.disks, &config.interfaces, &config.processes);
    let snapshot = sampler.sample();
    let pids: Vec<i32> = (snapshot.processes.iter())
        .flat_map(|(_, p)| p.iter().map(|s| s.pid))
        .collect();
    let open = |pid: i32, what: &str| File::open(format!("/proc/{pid}/{what}")).ok();
    let handles: Vec<(i32, File, File, File)> = pids
        .iter()
        .filter_map(|&p| Some((p, open(p, "stat")?, open(p, "statm")?, open(p, "fd")?)))
        .collect();
    if handles.is_empty() {
        eprintln!("no tracked process to measure reads on");
        return;
    }
    let mut buf = vec![0u8; 4096];
    let per = handles.len() as f64;
    let mut stat = || {
        for (_, s, _, _) in &handles {
            black_box(s.read_at(&mut buf, 0).ok());
        }
    };
    let mut buf2 = vec![0u8; 4096];
    let mut statm = || {
        for (_, _, m, _) in &handles {
            black_box(m.read_at(&mut buf2, 0).ok());
        }
    };
    let mut affinity = || {
        for (pid, _, _, _) in &handles {
            let pid = rustix::process::Pid::from_raw(*pid);
            black_box(pid.and_then(|p| rustix::thread::sched_getaffinity(Some(p)).ok()));
        }
    };
    let mut fds = || {
        for (_, _, _, d) in &handles {
            black_box(rustix::fs::fstat(d).ok());
        }
    };
    let mut buf3 = vec![0u8; 4096];
    let mut floor = || {
        for (_, s, m, _) in &handles {
            black_box(s.read_at(&mut buf3, 0).ok());
            black_box(m.read_at(&mut buf3, 0).ok());
        }
    };
    let r = interleaved(
        o,
        &mut [&mut stat, &mut statm, &mut affinity, &mut fds, &mut floor],
    );
    out.put("reads_tracked", handles.len());
    for (key, (cpu, _, _)) in ["stat", "statm", "affinity", "fds", "floor"].iter().zip(r) {
        out.put(&format!("read_{key}_us"), format!("{:.3}", cpu / per));
    }
}

fn entries(names: Vec<String>) -> Vec<ProcessEntry> {
    names
        .iter()
        .filter_map(|n| ProcessEntry::parse(n))
        .collect()
}

fn main() {
    let o = parse_options();
    let mut children = Vec::new();
    let config = match list_env("ODIN_BENCH_PROCESSES") {
        Some(processes) => Config {
            disks: list_env("ODIN_BENCH_DISKS").unwrap_or_else(|| vec!["/".into()]),
            interfaces: list_env("ODIN_BENCH_INTERFACES").unwrap_or_default(),
            processes: entries(processes),
        },
        None => {
            // Standalone: spawn our own matched and idle processes.
            let matched = o.positional.first().copied().unwrap_or(50);
            let extra = o.positional.get(1).copied().unwrap_or(0);
            let tag = format!("{}.{}", 86400 + std::process::id(), 424242);
            children.extend(spawn_sleeps(matched, &tag));
            children.extend(spawn_sleeps(extra, "86399"));
            std::thread::sleep(Duration::from_millis(1500)); // let them settle
            Config {
                disks: vec!["/".into(), "/tmp".into()],
                interfaces: vec!["lo".into()],
                processes: entries(vec![tag, "frameReceiver".into(), "frameProcessor".into()]),
            }
        }
    };
    let mut out = Out {
        kv: o.kv,
        lines: Vec::new(),
    };
    if o.mode == "floor-loop" {
        floor_loop(&o, &config, &mut out);
    }
    if o.mode == "cycle" || o.mode == "all" {
        measure_cycle(&o, &config, &mut out);
    }
    if o.mode == "publish" || o.mode == "all" {
        measure_publish(&o, &config, &mut out);
    }
    if o.mode == "answer" || o.mode == "all" {
        measure_answer(&o, &config, &mut out);
    }
    if o.mode == "metrics" || o.mode == "all" {
        measure_metrics(&o, &config, &mut out);
    }
    if o.mode == "reads" || o.mode == "all" {
        measure_reads(&o, &config, &mut out);
    }
    for c in &mut children {
        let _ = c.kill();
        let _ = c.wait();
    }
    if out.kv {
        for (k, v) in &out.lines {
            println!("{k} {v}");
        }
        return;
    }
    if o.mode == "cycle" || o.mode == "all" {
        println!(
            "CPU per cycle (us, this thread), median of {} interleaved rounds",
            o.rounds
        );
        println!();
        println!("| matched | host processes | full cycle | sample() | floor | full/floor | sample/floor | first cycle |");
        println!("|---|---|---|---|---|---|---|---|");
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            out.get("matched"),
            out.get("host_processes"),
            out.get("full_cpu_us"),
            out.get("sample_cpu_us"),
            out.get("floor_cpu_us"),
            out.get("full_over_floor"),
            out.get("sample_over_floor"),
            out.get("cold_cycle_us"),
        );
        println!();
    }
    if o.mode == "answer" || o.mode == "all" {
        println!(
            "Answering one request in-process (us, CPU): get leaf {}, get whole tree {}",
            out.get("answer_leaf_us"),
            out.get("answer_tree_us")
        );
        println!();
    }
    if o.mode == "metrics" || o.mode == "all" {
        println!(
            "Rendering /metrics for {} matched processes (us, CPU): Prometheus text {}, OpenMetrics {} ({} bytes)",
            out.get("metrics_matched"),
            out.get("metrics_text_us"),
            out.get("metrics_openmetrics_us"),
            out.get("metrics_bytes"),
        );
        println!();
    }
    if o.mode == "reads" || o.mode == "all" {
        println!(
            "Each read per tracked process ({} tracked; us of CPU per process): stat {}, statm {}, \
             affinity {}, fd count {}; the floor's stat+statm {}",
            out.get("reads_tracked"),
            out.get("read_stat_us"),
            out.get("read_statm_us"),
            out.get("read_affinity_us"),
            out.get("read_fds_us"),
            out.get("read_floor_us"),
        );
        println!();
    }
    if o.mode == "publish" || o.mode == "all" {
        println!(
            "Snapshot of {} processes to a published frame (us, wall)",
            out.get("pub_matched")
        );
        println!();
        println!("| encoding | bytes | build tree | encode | publish (send) | encode+publish | delivered to SUB |");
        println!("|---|---|---|---|---|---|---|");
        for name in ["json", "msgpack"] {
            println!(
                "| {name} | {} | {} | {} | {} | {} | {} |",
                out.get(&format!("{name}_bytes")),
                out.get("tree_us"),
                out.get(&format!("{name}_encode_us")),
                out.get(&format!("{name}_publish_us")),
                out.get(&format!("{name}_total_us")),
                out.get(&format!("{name}_delivered_us")),
            );
        }
    }
}

/// The settings a service with no options runs with (what `request_configuration` answers).
fn default_settings() -> Arc<Settings> {
    let config = odin_status::config::Config::load(&Default::default()).expect("defaults load");
    let live = odin_status::config::Live::new(&config, Vec::new);
    Arc::new(Settings::new(&config, live))
}
