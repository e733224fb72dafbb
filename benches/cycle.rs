//! Steady-state cost of one sampling cycle, against the floor: a loop that
//! only lists /proc and preads the tracked PIDs' stat and statm.
//!
//! Run: cargo bench --bench cycle [-- MATCHED EXTRA]

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use odin_status::protocol::{Message, MsgType};
use odin_status::sample::Sampler;
use rustix::time::{clock_gettime, ClockId};

fn cpu_now() -> f64 {
    let t = clock_gettime(ClockId::ThreadCPUTime);
    t.tv_sec as f64 + t.tv_nsec as f64 * 1e-9
}

fn spawn_sleeps(n: usize, tag: &str) -> Vec<Child> {
    (0..n)
        .map(|_| {
            Command::new("sleep")
                .arg(tag)
                .stdout(Stdio::null())
                .spawn()
                .expect("spawn sleep")
        })
        .collect()
}

fn floor_cycle(pids: &[u32], files: &[(File, File)], buf: &mut [u8]) -> usize {
    let mut n = 0;
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        if entry
            .file_name()
            .to_str()
            .is_some_and(|s| s.parse::<u32>().is_ok())
        {
            n += 1;
        }
    }
    for (stat, statm) in files {
        n += stat.read_at(buf, 0).unwrap_or(0);
        n += statm.read_at(buf, 0).unwrap_or(0);
    }
    n + pids.len()
}

fn per_cycle(cycles: usize, mut f: impl FnMut()) -> (f64, f64) {
    for _ in 0..5 {
        f();
    }
    let (w0, c0) = (Instant::now(), cpu_now());
    for _ in 0..cycles {
        f();
    }
    let wall = w0.elapsed().as_secs_f64() / cycles as f64;
    let cpu = (cpu_now() - c0) / cycles as f64;
    (wall * 1e6, cpu * 1e6)
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let matched = args.first().copied().unwrap_or(50);
    let extra = args.get(1).copied().unwrap_or(0);
    let tag = format!("{}.{}", 86400 + std::process::id(), 424242);
    let mut children = spawn_sleeps(matched, &tag);
    let mut idle = spawn_sleeps(extra, "86399");
    std::thread::sleep(std::time::Duration::from_millis(1500)); // let them settle

    let mut sampler = Sampler::new(
        &["/".into(), "/tmp".into()],
        &["lo".into()],
        &[tag.clone(), "frameReceiver".into(), "frameProcessor".into()],
    );
    let found = sampler.sample().processes[0].1.len();
    let (wall, cpu) = per_cycle(200, || {
        let _ = sampler.sample();
    });

    let snapshot = sampler.sample();
    let (tree_us, _) = per_cycle(200, || {
        let _ = snapshot.to_tree();
    });
    let tree = snapshot.to_tree();
    let message = Message::new(MsgType::Notify, "status", 1, &tree);
    let json_len = message.to_json().len();
    let (json_us, _) = per_cycle(200, || {
        let _ = message.to_json();
    });
    let (msgpack_us, _) = per_cycle(200, || {
        let _ = message.to_msgpack();
    });

    let pids: Vec<u32> = children.iter().map(Child::id).collect();
    let files: Vec<(File, File)> = pids
        .iter()
        .map(|p| {
            (
                File::open(format!("/proc/{p}/stat")).unwrap(),
                File::open(format!("/proc/{p}/statm")).unwrap(),
            )
        })
        .collect();
    let mut buf = vec![0u8; 4096];
    let (fwall, fcpu) = per_cycle(200, || {
        floor_cycle(&pids, &files, &mut buf);
    });
    let host = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|s| s.parse::<u32>().is_ok())
        })
        .count();
    println!(
        "| matched | host processes | odin-status cycle (us, cpu) | floor (us, cpu) | ratio |"
    );
    println!("|---|---|---|---|---|");
    println!(
        "| {found} | {host} | {cpu:.0} (wall {wall:.0}) | {fcpu:.0} (wall {fwall:.0}) | {:.2} |",
        cpu / fcpu
    );
    println!();
    println!("| snapshot of {found} processes | build tree (us) | encode JSON (us) | encode MessagePack (us) | JSON size (bytes) |");
    println!("|---|---|---|---|---|");
    println!("| | {tree_us:.0} | {json_us:.0} | {msgpack_us:.0} | {json_len} |");
    for c in children.iter_mut().chain(idle.iter_mut()) {
        let _ = c.kill();
        let _ = c.wait();
    }
}
