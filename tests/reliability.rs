//! The service under stress: process churn, stalled and vanished peers, many
//! clients at once. Each test runs for a bounded time against the real binary.

mod common;

use std::collections::HashMap;
use std::os::unix::fs::symlink;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

/// These tests load the host on purpose; run them one at a time so each
/// measures the service, not the other test.
static HEAVY: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap()
}

fn parse_time(ts: &str) -> chrono::NaiveDateTime {
    chrono::NaiveDateTime::parse_from_str(ts, "%Y-%m-%dT%H:%M:%S%.6f").unwrap()
}

/// 200 matched processes a second start and are killed after 50-300 ms, for
/// 30 s, while a subscriber checks every snapshot.
#[test]
fn churn_keeps_names_rate_and_no_stale_pids() {
    const RATE_HZ: f64 = 20.0;
    const SECONDS: u64 = 30;
    let _one_at_a_time = HEAVY.lock().unwrap_or_else(|p| p.into_inner());
    let dir = TempDir::new("churn");
    let name = format!("odstchurn{}", std::process::id());
    let link = dir.path(&name);
    symlink("/bin/sleep", &link).unwrap();
    let svc = Service::start(&[
        "--rate",
        "20",
        "--interfaces",
        "lo",
        "--processes",
        &format!("{name},absentname"),
    ]);
    // Snapshots only: 400 process events a second must not take their room.
    let (_ctx, sub) = subscribe_statuses(&svc.publish);
    std::thread::sleep(Duration::from_millis(300));

    let spawner = std::thread::spawn(move || {
        // Each PID's lives (start, end): a PID may be reused within the run.
        let mut lives: HashMap<u32, Vec<(chrono::NaiveDateTime, chrono::NaiveDateTime)>> =
            HashMap::new();
        let life = |n: u64| Duration::from_millis(50 + (n * 37 % 250));
        let spawned = churn(&link, SECONDS, 200.0, life, |pid, start, end| {
            lives.entry(pid).or_default().push((start, end));
        });
        (spawned, lives)
    });

    let started = Instant::now();
    let mut snapshots: Vec<Value> = Vec::new();
    while started.elapsed() < Duration::from_secs(SECONDS) {
        if let Some(snapshot) = receive_status(&sub, 1000) {
            snapshots.push(snapshot);
        }
    }
    let (spawned, lives) = spawner.join().unwrap();
    assert!(spawned >= 200 * SECONDS * 9 / 10, "spawned only {spawned}");

    // Cycle rate within 20% of the configured rate.
    let expected = RATE_HZ * SECONDS as f64;
    let got = snapshots.len() as f64;
    assert!(
        got >= expected * 0.8 && got <= expected * 1.2,
        "{got} snapshots, expected about {expected}"
    );
    let ids: Vec<u64> = snapshots
        .iter()
        .map(|s| s["id"].as_u64().unwrap())
        .collect();
    let gaps: Vec<&[u64]> = ids.windows(2).filter(|w| w[1] != w[0] + 1).collect();
    assert!(gaps.is_empty(), "no snapshot missed: gaps {gaps:?}");

    // A PID may still be in the snapshot of the cycle during which it exited
    // (sampled before the exit, stamped after it), never in a later one.
    let stamps: Vec<chrono::NaiveDateTime> = snapshots
        .iter()
        .map(|s| parse_time(s["timestamp"].as_str().unwrap()))
        .collect();
    let mut seen_churn = 0;
    for (index, snap) in snapshots.iter().enumerate() {
        let procs = &snap["params"]["process"];
        assert!(
            procs[&name].is_object() && procs["absentname"].is_object(),
            "names stay: {}",
            snap["id"]
        );
        let at = stamps[index];
        for pid in procs[&name].as_object().unwrap().keys() {
            seen_churn += 1;
            let pid: u32 = pid.parse().unwrap();
            let Some(lives) = lives.get(&pid) else {
                continue;
            };
            let alive = lives.iter().any(|(start, end)| {
                // Snapshots stamped after this life ended, before this one.
                let after_end = stamps[..index].iter().filter(|t| *t > end).count();
                at >= *start && (at <= *end || after_end == 0)
            });
            assert!(
                alive,
                "PID {pid} in snapshot {} at {at}, outside its lives {lives:?}",
                snap["id"]
            );
        }
    }
    eprintln!(
        "churn: {spawned} processes in {SECONDS} s, {} snapshots, {seen_churn} churned PIDs reported",
        snapshots.len()
    );
    assert!(
        seen_churn > 1000,
        "churned processes were seen in snapshots: {seen_churn}"
    );
    assert_eq!(svc.get("")["msg_type"], "ack");
}

/// A subscriber that never reads costs bounded memory and does not slow the cycle.
#[test]
fn stalled_subscriber_costs_bounded_memory() {
    const SECONDS: u64 = 30; // 8 s baseline, 2 s filling, 20 s stalled
    let _one_at_a_time = HEAVY.lock().unwrap_or_else(|p| p.into_inner());
    let dir = TempDir::new("stall");
    let name = format!("odststall{}", std::process::id());
    let link = dir.path(&name);
    symlink("/bin/sleep", &link).unwrap();
    // About 330 processes make a ~50 KB snapshot.
    let mut sleepers: Vec<Child> = (0..330)
        .map(|_| Command::new(&link).arg("600").spawn().unwrap())
        .collect();
    let svc = Service::start_tcp(&["--rate", "100", "--interfaces", "lo", "--processes", &name]);
    let ctx = zmq::Context::new();
    let (_ctx2, reader) = subscribe(&svc.publish);

    let first = receive(&reader, 3000).expect("snapshots flow");
    assert!(
        first[0].len() > 40_000,
        "snapshot is {} bytes",
        first[0].len()
    );

    // The service's own cycle rate, from the cycle numbers a reader sees.
    let cycle_rate = |seconds: u64| {
        let mut ids = Vec::new();
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(seconds) {
            if let Some(msg) = receive_status(&reader, 1000) {
                ids.push(msg["id"].as_u64().unwrap());
            }
        }
        let span = ids.last().unwrap() - ids.first().unwrap();
        span as f64 / started.elapsed().as_secs_f64()
    };
    let baseline = cycle_rate(8);

    let stalled = ctx.socket(zmq::SUB).unwrap();
    stalled.set_subscribe(b"").unwrap();
    stalled.set_rcvbuf(4096).unwrap();
    stalled.set_rcvhwm(1).unwrap();
    stalled.connect(&svc.publish).unwrap();
    std::thread::sleep(Duration::from_secs(2)); // the stalled peer's buffers fill
    let rss_before = rss_kb(svc.child.id());
    let with_stalled = cycle_rate(SECONDS - 10);
    let rss_after = rss_kb(svc.child.id());
    for s in &mut sleepers {
        let _ = s.kill();
        let _ = s.wait();
    }
    let growth_mb = (rss_after as f64 - rss_before as f64) / 1024.0;
    eprintln!(
        "stalled subscriber: {} B snapshots, {baseline:.1} Hz -> {with_stalled:.1} Hz, RSS {rss_before} -> {rss_after} kB",
        first[0].len()
    );
    assert!(
        growth_mb < 20.0,
        "RSS grew {growth_mb:.1} MB ({rss_before} -> {rss_after} kB)"
    );
    assert!(
        with_stalled >= baseline * 0.8,
        "cycle rate {with_stalled:.1} Hz with a stalled subscriber, {baseline:.1} Hz without"
    );
    drop(stalled);
}

#[test]
fn vanished_and_concurrent_clients() {
    let svc = Service::start_tcp(&["--interfaces", "lo", "--disks", "/,/tmp"]);
    // Clients that send and vanish before the reply.
    for _ in 0..50 {
        let ctx = zmq::Context::new();
        let req = ctx.socket(zmq::REQ).unwrap();
        req.set_linger(0).unwrap();
        req.connect(&svc.ctrl).unwrap();
        req.send(cmd("status", 1, json!({})), 0).unwrap();
        drop(req);
    }
    // 100 clients at once, each with its own id and path.
    let paths = [
        "disk/_/total",
        "disk/_tmp/free",
        "network/lo/bytes_recv",
        "nope",
    ];
    let handles: Vec<_> = (0..100u64)
        .map(|i| {
            let ctrl = svc.ctrl.clone();
            std::thread::spawn(move || {
                let path = paths[i as usize % paths.len()];
                let reply = request(&ctrl, &cmd("get", 1000 + i, json!({"path": path})), 5000)
                    .expect("a reply within 5 s");
                let reply: Value = serde_json::from_slice(&reply).unwrap();
                (i, path, reply)
            })
        })
        .collect();
    for h in handles {
        let (i, path, reply) = h.join().unwrap();
        assert_eq!(reply["id"], 1000 + i);
        if path == "nope" {
            assert_eq!(reply["params"]["error"], "Invalid path: nope");
        } else {
            assert!(reply["params"]["value"].is_u64(), "{path}: {reply}");
        }
    }
}

/// Garbage from four clients at once for 10 s: every request gets its one
/// nack, the server stays up and the cycle rate holds.
#[test]
fn flood_of_malformed_requests() {
    let _one_at_a_time = HEAVY.lock().unwrap_or_else(|p| p.into_inner());
    // 1 MB requests must be read and nacked, not refused by the socket.
    let svc = Service::start_tcp(&[
        "--rate",
        "20",
        "--interfaces",
        "lo",
        "--max-message-size",
        "1048576",
    ]);
    let (_ctx, sub) = subscribe(&svc.publish);
    let deep = "[".repeat(10_000);
    let big = format!(
        r#"{{"msg_type":"cmd","msg_val":"get","id":1,"params":{{"path":"{}"}}}}"#,
        "z".repeat(1_000_000)
    );
    let bodies: Vec<Vec<Vec<u8>>> = vec![
        vec![b"{".to_vec()],
        vec![b"\xff\x00\xfe".to_vec()],
        vec![Vec::new()],
        vec![deep.into_bytes()],
        vec![big.into_bytes()],
        vec![br#"{"msg_type":"cmd","msg_val":"get","id":99999999999999999999}"#.to_vec()],
        vec![br#"{"msg_type":"cmd","msg_val":"get","id":1,"params":{"path":7}}"#.to_vec()],
        vec![b"a".to_vec(), b"b".to_vec(), b"c".to_vec()],
        vec![br#"{"msg_type":"cmd","msg_val":"get","id":1,"bogus":[]}"#.to_vec()],
    ];
    let started = Instant::now();
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let ctrl = svc.ctrl.clone();
            let bodies = bodies.clone();
            std::thread::spawn(move || {
                let ctx = zmq::Context::new();
                let dealer = ctx.socket(zmq::DEALER).unwrap();
                dealer.set_linger(0).unwrap();
                dealer.connect(&ctrl).unwrap();
                let mut sent = 0u64;
                while started.elapsed() < Duration::from_secs(10) {
                    for body in &bodies {
                        dealer.send_multipart(body, 0).unwrap();
                        assert!(dealer.poll(zmq::POLLIN, 5000).unwrap() > 0, "a reply");
                        let reply = dealer.recv_multipart(0).unwrap();
                        assert_eq!(reply.len(), 1);
                        let reply: Value = serde_json::from_slice(&reply[0]).unwrap();
                        assert_eq!(reply["msg_type"], "nack", "{reply}");
                        sent += 1;
                    }
                }
                sent
            })
        })
        .collect();
    let mut ids = Vec::new();
    while started.elapsed() < Duration::from_secs(10) {
        if let Some(msg) = receive_status(&sub, 1000) {
            ids.push(msg["id"].as_u64().unwrap());
        }
    }
    let sent: u64 = clients.into_iter().map(|c| c.join().unwrap()).sum();
    let rate = (ids.last().unwrap() - ids.first().unwrap()) as f64 / 10.0;
    eprintln!("flood: {sent} malformed requests answered in 10 s; cycle rate {rate:.1} Hz of 20");
    assert!(rate >= 16.0, "cycle rate {rate:.1} Hz under the flood");
    assert_eq!(svc.get("network/lo")["msg_type"], "ack");
}
