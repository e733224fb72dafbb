//! The process table kept from the kernel's process events: right under
//! churn, and put right by the safety-net listing of /proc when events are
//! lost (forced here by the service's test-only trigger).

mod common;

use std::os::unix::fs::symlink;
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

/// Processes in /proc as this test sees them now.
fn proc_count() -> u64 {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| n.parse::<u32>().is_ok())
        })
        .count() as u64
}

/// The kernel's process events need root (CAP_NET_ADMIN) before Linux 6.6;
/// CI runs as root. Says why when they cannot be had.
fn events_possible() -> bool {
    let root = rustix::process::geteuid().is_root();
    if !root {
        eprintln!(
            "SKIPPED: the kernel's process events need root (CAP_NET_ADMIN) before Linux 6.6"
        );
    }
    root
}

fn monitor_corrections(snapshot: &Value) -> u64 {
    snapshot["params"]["monitor"]["process_table_corrections"]
        .as_u64()
        .expect("process_table_corrections is an int")
}

/// 200 matched processes a second start and are killed after 50 ms to 2 s,
/// for 30 s (so some outlive a cycle and are in the table when they end); the events of one cycle in the middle are discarded without a word,
/// as if the kernel had lost them silently. No correction before that, at
/// least one after (the next safety-net listing), and the table agrees with
/// /proc at the end.
#[test]
fn table_stays_right_under_churn_and_a_lost_cycle_is_corrected() {
    const SECONDS: u64 = 30;
    // 1 Hz: the first safety-net listing (10 s) falls at about cycle 11 and
    // checks the table under churn; the events of cycle 13 (12 s) are lost;
    // the next listing (20 s) must find what they said.
    const DROP_CYCLE: u64 = 13;
    if !events_possible() {
        return;
    }
    let dir = TempDir::new("table");
    let name = unique("odsttable");
    let link = dir.path(&name);
    symlink("/bin/sleep", &link).unwrap();
    let drop = DROP_CYCLE.to_string();
    let svc = Service::start_with_env(
        &["--rate", "1", "--interfaces", "lo", "--processes", &name],
        &[("ODIN_STATUS_DEBUG_DROP_EVENTS", &drop)],
    );
    let (_ctx, sub) = subscribe_statuses(&svc.publish);

    let spawner = std::thread::spawn(move || {
        let life = |n: u64| Duration::from_millis(50 + (n * 37 % 1950));
        churn(&link, SECONDS, 200.0, life, |_, _, _| {})
    });

    let started = Instant::now();
    let mut snapshots: Vec<Value> = Vec::new();
    while started.elapsed() < Duration::from_secs(SECONDS) {
        if let Some(snapshot) = receive_status(&sub, 1000) {
            snapshots.push(snapshot);
        }
    }
    let spawned = spawner.join().unwrap();
    assert!(spawned >= 200 * SECONDS * 9 / 10, "spawned only {spawned}");
    let last_id = snapshots.last().map_or(0, |s| s["id"].as_u64().unwrap());
    assert!(
        last_id >= SECONDS * 8 / 10,
        "the cycle kept its rate: last snapshot {last_id}"
    );

    // Before the loss, under churn, the listing at 10 s found nothing missed.
    for snapshot in snapshots
        .iter()
        .filter(|s| s["id"].as_u64() < Some(DROP_CYCLE))
    {
        assert_eq!(
            monitor_corrections(snapshot),
            0,
            "no correction without a loss: snapshot {}",
            snapshot["id"]
        );
    }
    // After it, the next listing (at most 10 s later) corrected the table.
    let corrected = snapshots
        .iter()
        .find(|s| monitor_corrections(s) > 0)
        .expect("the lost events were found by a safety-net listing");
    let at = corrected["id"].as_u64().unwrap();
    assert!(
        (DROP_CYCLE..=DROP_CYCLE + 11).contains(&at),
        "corrected at cycle {at}, within 10 s of the loss at cycle {DROP_CYCLE}"
    );
    let total = monitor_corrections(snapshots.last().unwrap());
    eprintln!("table: {spawned} processes in {SECONDS} s; {total} PIDs corrected at cycle {at}");

    // Once the churn is over the table agrees with /proc (give or take what
    // other work on the host starts and ends meanwhile) and no churned PID
    // is left under the name.
    eventually(5, "host/processes agrees with /proc", || {
        let before = proc_count();
        let got = svc.get("host/processes")["params"]["value"].as_u64()?;
        let after = proc_count();
        let (low, high) = (before.min(after), before.max(after));
        (got + 3 >= low && got <= high + 3).then_some(())
    });
    eventually(5, "no churned PID is left", || {
        let reply = svc.get(&format!("process/{name}"));
        reply["params"].as_object()?.is_empty().then_some(())
    });
    assert_eq!(
        svc.get(&format!("process_summary/{name}/count"))["params"]["value"],
        0
    );
}

/// A matched process that starts is told at once, not at the next cycle:
/// at 0.2 Hz a cycle is 5 s away, the `started` event well under it. Its id
/// is the next snapshot's, and that snapshot is the first to show it.
#[test]
fn a_start_is_told_at_once_and_the_next_snapshot_shows_it() {
    if !events_possible() {
        return;
    }
    let dir = TempDir::new("starts");
    let name = unique("odststart");
    let svc = Service::start(&["--rate", "0.2", "--interfaces", "lo", "--processes", &name]);
    let (_ctx, sub) = subscribe(&svc.publish);
    // The first snapshot is out (cycle 1), so early starts are told.
    let mut last_id = 0;
    while last_id == 0 {
        let frames = receive(&sub, 15_000).expect("a first snapshot");
        let message: Value = serde_json::from_slice(&frames[0]).unwrap();
        if message["msg_val"] == "status" {
            last_id = message["id"].as_u64().unwrap();
        }
    }
    std::thread::sleep(Duration::from_millis(200));
    let spawned_at = Instant::now();
    let helper = Reaped(spawn_as(&dir, &name, "/bin/sleep", &["600"]));
    let pid = helper.0.id();
    let mut started_id = None;
    loop {
        let frames = receive(&sub, 15_000).expect("messages keep coming");
        let message: Value = serde_json::from_slice(&frames[0]).unwrap();
        let id = message["id"].as_u64().unwrap();
        if message["msg_val"] == "process_event" && message["params"]["pid"] == pid {
            assert_eq!(message["params"]["event"], "started", "{message}");
            let latency = spawned_at.elapsed();
            assert!(
                latency < Duration::from_millis(2_500),
                "told {latency:?} after the start, not at the next cycle"
            );
            assert_eq!(id, last_id + 1, "the id is the next snapshot's: {message}");
            started_id = Some(id);
        }
        if message["msg_val"] == "status" {
            let shown = message["params"]["process"][&name][pid.to_string()].is_object();
            match started_id {
                Some(started) => {
                    assert_eq!(id, started, "the next snapshot follows the event");
                    assert!(shown, "snapshot {id} shows the process told of");
                    break;
                }
                None => {
                    assert!(!shown, "snapshot {id} shows {pid} before its event");
                    last_id = id;
                }
            }
        }
    }
    // Told once: the cycle that shows it does not tell again.
    let summary = svc.get(&format!("process_summary/{name}/starts"));
    assert_eq!(summary["params"]["value"], 1, "{summary}");
}
