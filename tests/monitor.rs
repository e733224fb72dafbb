//! The `monitor` block: the service's own figures, read from published
//! snapshots and over the control socket while the service works.

mod common;

use common::*;
use serde_json::{json, Value};

/// The next `status` messages on `sub`, `n` of them.
fn statuses(sub: &zmq::Socket, n: usize) -> Vec<Value> {
    let mut out = Vec::new();
    while out.len() < n {
        let frames = receive(sub, 5000).expect("a snapshot within 5 s");
        let message: Value = serde_json::from_slice(&frames[0]).unwrap();
        if message["msg_val"] == "status" {
            out.push(message);
        }
    }
    out
}

#[test]
fn monitor_follows_cycles_and_counts_errors() {
    // One configured disk is missing: one sampling error per cycle.
    let svc = Service::start(&[
        "--rate",
        "20",
        "--interfaces",
        "lo",
        "--disks",
        "/,/no/such/odin-status-disk",
    ]);
    let (_ctx, sub) = subscribe(&svc.publish);
    let got = statuses(&sub, 6);
    let version = svc.ask("request_version", 1, json!({}))["params"]["version"]["full"].clone();
    let mut previous: Option<&Value> = None;
    for message in &got {
        let m = &message["params"]["monitor"];
        assert_eq!(m["cycle"], message["id"], "{m}");
        assert_eq!(m["version"], version);
        assert_eq!(m["update_interval"], 0.05);
        let last = m["last_cycle_duration"].as_f64().unwrap();
        let max = m["max_cycle_duration"].as_f64().unwrap();
        assert!(last > 0.0 && max >= last, "{m}");
        assert!(m["processes_scanned"].as_u64().unwrap() > 1, "{m}");
        let published = m["snapshots_published"].as_u64().unwrap();
        assert!(published < message["id"].as_u64().unwrap(), "{m}");
        if let Some(p) = previous {
            let p = &p["params"]["monitor"];
            assert_eq!(m["cycle"].as_u64(), p["cycle"].as_u64().map(|c| c + 1));
            assert_eq!(m["start_time"], p["start_time"]);
            assert!(max >= p["max_cycle_duration"].as_f64().unwrap());
            let errors = m["sampling_errors"].as_u64().unwrap();
            assert_eq!(errors, p["sampling_errors"].as_u64().unwrap() + 1, "{m}");
            assert!(
                published > p["snapshots_published"].as_u64().unwrap(),
                "{m}"
            );
        }
        previous = Some(message);
    }
    assert_eq!(
        got[0]["params"]["monitor"]["start_time"]
            .as_str()
            .unwrap()
            .len(),
        26
    );
}

#[test]
fn requests_served_counts_every_reply() {
    let svc = Service::start(&["--rate", "20", "--interfaces", "lo"]);
    let before = svc.get("monitor/requests_served")["params"]["value"]
        .as_u64()
        .unwrap();
    for id in 0..10 {
        assert_eq!(svc.get("disk/_/percent")["msg_type"], "ack");
        assert_eq!(
            svc.ask("get", id, json!({"path": "Disk"}))["msg_type"],
            "nack"
        );
    }
    // 20 replies, plus the one that read `before`, show in a later tree.
    eventually(5, "the replies counted", || {
        let now = svc.get("monitor/requests_served")["params"]["value"].as_u64()?;
        (now >= before + 21).then_some(now)
    });
    // Nothing missing, no processes: no sampling errors.
    assert_eq!(svc.get("monitor/sampling_errors")["params"]["value"], 0);
    let meta = svc.ask(
        "get",
        1,
        json!({"path": "monitor/last_cycle_duration", "metadata": true}),
    );
    assert_eq!(meta["params"]["type"], "float", "{meta}");
}
