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
    let mut written = vec![dir.path("run.jsonl").display().to_string()];
    let mut n = 1;
    while let Ok(bytes) = std::fs::read(dir.path(&format!("run-{n}.jsonl"))) {
        // No file is left empty: the next one is opened for a line to write.
        assert!(!bytes.is_empty(), "run-{n}.jsonl is empty");
        assert!(bytes.ends_with(b"\n"), "complete lines only");
        records.extend(lines(&bytes));
        written.push(dir.path(&format!("run-{n}.jsonl")).display().to_string());
        n += 1;
    }
    assert!(n > 2, "rotated into {n} files");
    check_recording(&services, &records);
    let summary = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        summary.lines().next(),
        Some(
            format!(
                "odin-status: recorded {} message(s) to {}",
                records.len(),
                written.join(", ")
            )
            .as_str()
        ),
        "the summary names every file"
    );
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

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A rotated gzip set of two services read back by shell order, by a quoted
/// glob and by names given out of order: always in the order written.
#[test]
fn replay_and_plot_a_rotated_gzip_set_of_two_services() {
    let dir = TempDir::new("set");
    let (services, out) = record_two(&dir, "run.jsonl.gz", &["--rotate-mb", "0.004"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let mut files = vec![dir.path("run.jsonl.gz")];
    let mut n = 1;
    while dir.path(&format!("run-{n}.jsonl.gz")).exists() {
        files.push(dir.path(&format!("run-{n}.jsonl.gz")));
        n += 1;
    }
    assert!(files.len() >= 3, "rotated into {} files", files.len());
    let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    let first: Vec<&str> = vec!["replay", &names[0]];
    let in_order = lines(&finish(spawn(&first)).stdout);
    // Only the first file: the set needs all its names.
    let mut all: Vec<&str> = vec!["replay"];
    all.extend(names.iter().rev().map(String::as_str));
    let reversed = finish(spawn(&all));
    assert_eq!(reversed.status.code(), Some(0), "{}", stderr(&reversed));
    let records = lines(&reversed.stdout);
    assert!(records.len() > in_order.len());
    check_recording(&services, &records);
    let glob = dir.path("run*.jsonl.gz").display().to_string();
    let globbed = finish(spawn(&["replay", &glob]));
    assert_eq!(lines(&globbed.stdout), records);
    // A bare trailing path still works where it cannot be a file.
    let values = finish(spawn(&["replay", &glob, "host/cpu_percent"]));
    assert_eq!(lines(&values.stdout).len(), records.len());

    // plot: a PNG and an SVG of the requested size, one line per endpoint and leaf.
    let png = dir.path("load.png");
    let png_s = png.display().to_string();
    let out = finish(spawn(&[
        "plot",
        &glob,
        "--path",
        "host/load_average",
        "--out",
        &png_s,
        "--width",
        "640",
        "--height",
        "480",
    ]));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        stderr(&out).trim(),
        format!(
            "odin-status: plotted 6 line(s) from {} snapshot(s) to {png_s}",
            records.len()
        )
    );
    let bytes = std::fs::read(&png).unwrap();
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "a PNG signature");
    assert_eq!(&bytes[12..16], b"IHDR");
    let size = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
    assert_eq!((size(16), size(20)), (640, 480));

    let svg = dir.path("net.svg");
    let svg_s = svg.display().to_string();
    let mut args = vec!["plot"];
    args.extend(names.iter().map(String::as_str));
    args.extend([
        "--path",
        "network/lo/bytes_recv_rate",
        "--path",
        "host/cpu_percent",
        "--out",
        &svg_s,
    ]);
    let out = finish(spawn(&args));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = std::fs::read_to_string(&svg).unwrap();
    assert!(text.starts_with("<svg") && text.trim_end().ends_with("</svg>"));
    assert!(
        text.contains(r#"width="1200" height="600""#),
        "default size"
    );
    // Data lines are coloured polylines; axes and ticks are black.
    let lines_drawn = text
        .split("<polyline")
        .skip(1)
        .filter_map(|p| p.split('>').next())
        .filter(|p| !p.contains(r##"stroke="#000000""##))
        .count();
    assert_eq!(lines_drawn, 4, "2 endpoints x 2 leaves");
    for svc in &services {
        assert!(text.contains(&format!("{} host/cpu_percent (%)", svc.publish)));
    }
    assert!(text.contains("bytes/s"), "the unit is in the labels");

    let out = finish(spawn(&[
        "plot",
        &glob,
        "--path",
        "disk/_nope",
        "--out",
        &svg_s,
    ]));
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out).trim(),
        format!(
            "odin-status: none of the {} snapshot(s) has a number at disk/_nope",
            records.len()
        )
    );
    let out = finish(spawn(&["plot", &glob, "--path", "host", "--out", "x.jpg"]));
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out).trim(),
        "odin-status: --out must name a .png or .svg file, not 'x.jpg'"
    );
}

#[test]
fn replay_refuses_what_is_not_a_recording() {
    let dir = TempDir::new("notrec");
    let fake_gz = dir.path("a.jsonl.gz");
    std::fs::write(&fake_gz, "{\"endpoint\": 1}\n").unwrap();
    let text = dir.path("notes.txt");
    std::fs::write(&text, "hello\nworld\n").unwrap();
    let cases = [
        (
            fake_gz.display().to_string(),
            1,
            format!(
                "odin-status: {} is not gzip, though its name ends in .gz",
                fake_gz.display()
            ),
        ),
        (
            text.display().to_string(),
            1,
            format!("odin-status: {} is not a recording: none of its first 2 line(s) is a record written by odin-status record", text.display()),
        ),
        (
            dir.path("nothing*.jsonl").display().to_string(),
            2,
            format!("odin-status: no file matches {}", dir.path("nothing*.jsonl").display()),
        ),
    ];
    for (file, code, message) in cases {
        let out = finish(spawn(&["replay", &file]));
        assert_eq!(out.status.code(), Some(code), "{file}");
        assert_eq!(stderr(&out).trim(), message);
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn watch_gives_up_after_its_timeout() {
    let dir = TempDir::new("wt");
    let endpoint = format!("ipc://{}", dir.path("nobody").display());
    let out = finish(spawn(&["watch", "--pub", &endpoint, "--timeout", "0.5"]));
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(
        stderr(&out).trim(),
        format!("odin-status: no snapshot from {endpoint} within 0.5 s (--timeout)")
    );
}

/// The service stops: one warning once snapshots are 3 intervals (at least
/// 2 s) late; it comes back on the same endpoint: one line saying so.
#[test]
fn watch_warns_once_when_stale_and_once_when_back() {
    let mut svc = Service::start(&["--rate", "20", "--interfaces", "lo"]);
    let endpoint = svc.publish.clone();
    let mut child = spawn(&["watch", "host/uptime", "--pub", &endpoint]);
    std::thread::sleep(Duration::from_millis(800));
    svc.stop(15);
    std::thread::sleep(Duration::from_millis(3500));
    let mut again = Command::new(BIN)
        .args(["serve", "--ctrl", &svc.ctrl, "--pub", &endpoint])
        .args(["--rate", "20", "--interfaces", "lo"])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(2000));
    send_signal(child.id() as i32, 2);
    let err = stderr_text(&mut child);
    let out = finish(child);
    assert_eq!(out.status.code(), Some(0));
    let warnings: Vec<&str> = err.lines().collect();
    assert_eq!(warnings.len(), 2, "{err}");
    assert_eq!(
        warnings[0],
        format!("odin-status: no snapshot from {endpoint} for 2.0 s; still waiting (is the service running there?)")
    );
    let back = format!("odin-status: snapshots from {endpoint} again after ");
    assert!(
        warnings[1].starts_with(&back) && warnings[1].ends_with(" s"),
        "{err}"
    );
    send_signal(again.id() as i32, 15);
    let _ = again.wait();
}
