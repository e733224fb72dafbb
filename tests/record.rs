//! watch, record and replay against real services and real files.

mod common;

use std::io::Read;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use common::*;
use serde_json::Value;

fn lines(out: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(out)
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect()
}

fn spawn(args: &[&str]) -> Child {
    Command::new(BIN)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn finish(child: Child) -> Output {
    child.wait_with_output().unwrap()
}

#[test]
fn watch_prints_snapshots_and_values() {
    let svc = Service::start(&["--rate", "20", "--interfaces", "lo", "--disks", "/tmp"]);
    let out = finish(spawn(&["watch", "--pub", &svc.publish, "--count", "3"]));
    assert_eq!(out.status.code(), Some(0));
    let msgs = lines(&out.stdout);
    assert_eq!(msgs.len(), 3);
    for m in &msgs {
        assert_eq!(m["msg_val"], "status");
        assert!(m["params"]["disk"]["_tmp"]["total"].is_u64());
    }
    let out = finish(spawn(&[
        "watch",
        "disk/_tmp/percent",
        "--pub",
        &svc.publish,
        "--count",
        "2",
    ]));
    let vals = lines(&out.stdout);
    assert_eq!(vals.len(), 2);
    for v in &vals {
        assert!(v["value"].is_f64(), "{v}");
        assert!(v["cycle"].is_u64() && v["timestamp"].is_string());
    }
    let out = finish(spawn(&[
        "watch",
        "disk/_nope",
        "--pub",
        &svc.publish,
        "--count",
        "1",
    ]));
    assert_eq!(lines(&out.stdout)[0]["error"], "Invalid path: disk/_nope");
}

#[test]
fn watch_stops_on_sigint() {
    let svc = Service::start(&["--rate", "20", "--interfaces", "lo"]);
    let child = spawn(&["watch", "--pub", &svc.publish]);
    std::thread::sleep(Duration::from_millis(500));
    send_signal(child.id() as i32, 2);
    let out = finish(child);
    assert_eq!(out.status.code(), Some(0));
    assert!(!lines(&out.stdout).is_empty());
}

/// Records from two services into `name` for about a second, stopped by SIGTERM.
fn record_two(dir: &TempDir, name: &str, extra: &[&str]) -> (Vec<Service>, Output) {
    let a = Service::start(&["--rate", "50", "--interfaces", "lo"]);
    let b = Service::start(&[
        "--rate",
        "50",
        "--interfaces",
        "lo",
        "--pub-encoding",
        "msgpack",
    ]);
    let out = dir.path(name);
    let mut args = vec!["record", "--pub", &a.publish, "--pub", &b.publish, "--out"];
    let out_str = out.to_str().unwrap().to_string();
    args.push(&out_str);
    args.extend_from_slice(extra);
    let child = spawn(&args);
    std::thread::sleep(Duration::from_millis(1500));
    send_signal(child.id() as i32, 15);
    let output = finish(child);
    (vec![a, b], output)
}

fn check_recording(services: &[Service], records: &[Value]) {
    for svc in services {
        let cycles: Vec<u64> = records
            .iter()
            .filter(|r| r["endpoint"] == svc.publish.as_str())
            .map(|r| r["snapshot"]["id"].as_u64().unwrap())
            .collect();
        assert!(
            cycles.len() >= 20,
            "{}: {} snapshots",
            svc.publish,
            cycles.len()
        );
        assert!(
            cycles.windows(2).all(|w| w[1] == w[0] + 1),
            "{}: nothing received lost or reordered: {cycles:?}",
            svc.publish
        );
    }
    for r in records {
        assert!(r["received"].as_str().unwrap().len() == 26);
        assert_eq!(r["snapshot"]["msg_type"], "notify");
        assert!(r["snapshot"]["params"]["network"]["lo"].is_object());
    }
}

#[test]
fn record_two_hosts_gzip_and_replay() {
    let dir = TempDir::new("rec");
    let (services, out) = record_two(&dir, "run.jsonl.gz", &[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("0 snapshot(s) missed"), "{stderr}");

    // Closed cleanly: a complete gzip stream with its trailer.
    let file = dir.path("run.jsonl.gz");
    let status = Command::new("gzip").arg("-t").arg(&file).status().unwrap();
    assert!(status.success(), "gzip -t");
    let mut text = String::new();
    flate2::read::MultiGzDecoder::new(std::fs::File::open(&file).unwrap())
        .read_to_string(&mut text)
        .unwrap();
    let records = lines(text.as_bytes());
    check_recording(&services, &records);

    // replay prints the same records, and values at a path.
    let replayed = finish(spawn(&["replay", file.to_str().unwrap()]));
    assert_eq!(replayed.status.code(), Some(0));
    assert_eq!(lines(&replayed.stdout), records);
    let values = finish(spawn(&[
        "replay",
        file.to_str().unwrap(),
        "network/lo/bytes_recv",
    ]));
    let values = lines(&values.stdout);
    assert_eq!(values.len(), records.len());
    for (v, r) in values.iter().zip(&records) {
        assert_eq!(v["endpoint"], r["endpoint"]);
        assert_eq!(v["cycle"], r["snapshot"]["id"]);
        assert_eq!(
            v["value"],
            r["snapshot"]["params"]["network"]["lo"]["bytes_recv"]
        );
    }
}

#[test]
fn record_appends_and_rotates_plain_files() {
    let dir = TempDir::new("rot");
    // Snapshots are 1 to 3 KB: 10 KB files rotate every few lines.
    let (services, out) = record_two(&dir, "run.jsonl", &["--rotate-mb", "0.01"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut records = lines(&std::fs::read(dir.path("run.jsonl")).unwrap());
    let mut n = 1;
    while let Ok(bytes) = std::fs::read(dir.path(&format!("run-{n}.jsonl"))) {
        // The newest file is empty when the last line made the one before rotate.
        assert!(
            bytes.is_empty() || bytes.ends_with(b"\n"),
            "complete lines only"
        );
        records.extend(lines(&bytes));
        n += 1;
    }
    assert!(n > 2, "rotated into {n} files");
    check_recording(&services, &records);
}

#[test]
fn replay_survives_a_killed_recorder_and_bad_lines() {
    let dir = TempDir::new("kill");
    let svc = Service::start(&["--rate", "50", "--interfaces", "lo"]);
    let file = dir.path("k.jsonl.gz");
    let child = spawn(&[
        "record",
        "--pub",
        &svc.publish,
        "--out",
        file.to_str().unwrap(),
    ]);
    std::thread::sleep(Duration::from_millis(800));
    send_signal(child.id() as i32, 9);
    let _ = finish(child);
    // Every line flushed before the kill is readable.
    let out = finish(spawn(&["replay", file.to_str().unwrap()]));
    assert_eq!(out.status.code(), Some(0));
    let records = lines(&out.stdout);
    assert!(records.len() >= 10, "{} records", records.len());
    assert!(String::from_utf8_lossy(&out.stderr).contains("ends early"));

    let plain = dir.path("bad.jsonl");
    std::fs::write(
        &plain,
        "not json\n{\"endpoint\":\"x\",\"snapshot\":{}}\n{\"trunc",
    )
    .unwrap();
    let out = finish(spawn(&["replay", plain.to_str().unwrap()]));
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(lines(&out.stdout).len(), 1);
    assert!(String::from_utf8_lossy(&out.stderr).contains("2 line(s) skipped"));

    let out = finish(spawn(&["replay", "/no/such/recording.jsonl"]));
    assert_eq!(out.status.code(), Some(2));
}
