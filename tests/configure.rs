//! Live reconfiguration end to end: `configure` requests and SIGHUP re-reads
//! change what the real service monitors without a restart, all or nothing;
//! limits give nodes a severity and publish `alarm` notifications.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

const DISABLED: &str = "configure is disabled; start the service with --allow-configure (or allow_configure = true in its config file) to allow it.";

struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `sleep` with an argument no other process has (`tag` is a digit), so the
/// argument is a name to match.
fn sleeper(tag: u8) -> (Reaped, String) {
    let name = format!("600.{}{tag}", std::process::id());
    let child = Command::new("sleep")
        .arg(&name)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    (Reaped(child), name)
}

fn configuration(svc: &Service) -> Value {
    let reply = svc.ask("request_configuration", 5, json!({}));
    assert_eq!(reply["msg_type"], "ack", "{reply}");
    reply["params"].clone()
}

/// `configure` that must be acked; its params are the new configuration.
fn configure(svc: &Service, params: Value) -> Value {
    let reply = svc.ask("configure", 9, params);
    assert_eq!(reply["msg_type"], "ack", "{reply}");
    assert_eq!(reply["params"], configuration(svc));
    reply["params"].clone()
}

fn has(svc: &Service, path: &str) -> bool {
    svc.get(path)["msg_type"] == "ack"
}

/// The next published message with this `msg_val`, within `seconds`.
fn next_notify(sub: &zmq::Socket, msg_val: &str, seconds: u64) -> Option<Value> {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    while Instant::now() < deadline {
        let Some(frames) = receive(sub, 200) else {
            continue;
        };
        let msg: Value = serde_json::from_slice(frames.first()?).ok()?;
        if msg["msg_val"] == msg_val {
            return Some(msg);
        }
    }
    None
}

#[test]
fn configure_is_refused_unless_allowed() {
    let svc = Service::start(&["--interfaces", "lo"]);
    let before = configuration(&svc);
    assert_eq!(before["allow_configure"], false);
    for params in [json!({"rate": 5}), json!({}), json!({"nonsense": 1})] {
        let reply = svc.ask("configure", 3, params);
        assert_eq!(reply["msg_type"], "nack", "{reply}");
        assert_eq!(reply["msg_val"], "configure");
        assert_eq!(reply["params"], json!({"error": DISABLED}));
    }
    assert_eq!(configuration(&svc), before);
    let commands = svc.ask("request_commands", 4, json!({}));
    assert!(commands["params"]["supported"]
        .as_array()
        .unwrap()
        .contains(&json!("configure")));
}

#[test]
fn processes_and_disks_are_added_and_removed_live() {
    let (helper, name) = sleeper(1);
    let pid = helper.0.id();
    let dir = TempDir::new("cfgdisk");
    let path = dir.0.to_str().unwrap().to_string();
    let key = path.replace('/', "_");
    let svc = Service::start(&[
        "--allow-configure",
        "--rate",
        "10",
        "--interfaces",
        "lo",
        "--processes",
        "no-such-process-cfg",
    ]);
    assert!(!has(&svc, &format!("process/{name}")));

    let after = configure(&svc, json!({"processes": {"add": [name]}}));
    assert_eq!(after["processes"], json!(["no-such-process-cfg", name]));
    eventually(5, "the added name's process in the tree", || {
        has(&svc, &format!("process/{name}/{pid}")).then_some(())
    });

    let after = configure(
        &svc,
        json!({"processes": {"remove": ["no-such-process-cfg"]}, "disks": {"add": [path]}}),
    );
    assert_eq!(after["processes"], json!([name]));
    assert_eq!(after["disks"], json!(["/", path]));
    eventually(5, "the added disk in the tree", || {
        (has(&svc, &format!("disk/{key}/total")) && !has(&svc, "process/no-such-process-cfg"))
            .then_some(())
    });
    // The kept process is the same entry, still there.
    assert!(has(&svc, &format!("process/{name}/{pid}")));

    configure(
        &svc,
        json!({"processes": {"remove": [name]}, "disks": {"remove": [path]}}),
    );
    eventually(5, "the removed name and disk gone", || {
        (!has(&svc, &format!("process/{name}")) && !has(&svc, &format!("disk/{key}"))).then_some(())
    });
    let tree = svc.get("")["params"].clone();
    assert_eq!(tree["process"], json!({}));
    assert_eq!(tree["disk"].as_object().unwrap().len(), 1, "{tree}");
}

#[test]
fn interfaces_become_an_explicit_list() {
    let svc = Service::start(&["--allow-configure", "--rate", "10"]);
    let present = configuration(&svc)["interfaces"].clone();
    assert!(
        present.as_array().unwrap().contains(&json!("lo")),
        "{present}"
    );
    let after = configure(&svc, json!({"interfaces": {"remove": ["lo"]}}));
    assert!(!after["interfaces"]
        .as_array()
        .unwrap()
        .contains(&json!("lo")));
    eventually(5, "lo gone from the tree", || {
        (!has(&svc, "network/lo")).then_some(())
    });
    configure(&svc, json!({"interfaces": {"add": ["lo"]}}));
    eventually(5, "lo back in the tree", || {
        has(&svc, "network/lo/bytes_recv").then_some(())
    });
}

/// Seconds between the first and last of `n` consecutive snapshots.
fn span_of_snapshots(sub: &zmq::Socket, n: usize) -> f64 {
    let mut first = None;
    let mut got = 0;
    while got < n {
        next_notify(sub, "status", 10).expect("a snapshot");
        first.get_or_insert_with(Instant::now);
        got += 1;
    }
    first.map_or(0.0, |t| t.elapsed().as_secs_f64())
}

#[test]
fn a_new_rate_retimes_the_snapshots_at_once() {
    let svc = Service::start(&["--allow-configure", "--rate", "2", "--interfaces", "lo"]);
    let (_ctx, sub) = subscribe(&svc.publish);
    next_notify(&sub, "status", 5).expect("a first snapshot");
    // 3 intervals at 2 Hz: about 1.5 s.
    let slow = span_of_snapshots(&sub, 4);
    assert!(slow > 1.2, "3 intervals at 2 Hz took {slow:.2} s");

    let asked = Instant::now();
    assert_eq!(configure(&svc, json!({"rate": 20}))["rate"], 20.0);
    // The next snapshot comes within one old interval, then 20 a second.
    next_notify(&sub, "status", 5).expect("a snapshot after the change");
    assert!(
        asked.elapsed() < Duration::from_millis(700),
        "{:?}",
        asked.elapsed()
    );
    let fast = span_of_snapshots(&sub, 21);
    assert!(
        (0.7..1.6).contains(&fast),
        "20 intervals at 20 Hz took {fast:.2} s"
    );

    // Slower again: the loop waits the new interval.
    configure(&svc, json!({"rate": 1.5}));
    next_notify(&sub, "status", 5).expect("a snapshot after the change");
    let slower = span_of_snapshots(&sub, 3);
    assert!(slower > 1.0, "2 intervals at 1.5 Hz took {slower:.2} s");
}

#[test]
fn invalid_requests_are_refused_whole() {
    let dir = TempDir::new("cfgbad");
    let fresh = dir.0.to_str().unwrap().to_string();
    let svc = Service::start(&[
        "--allow-configure",
        "--disks",
        "/,/data/x_y",
        "--interfaces",
        "lo",
        "--processes",
        "fp-cfg-bad",
    ]);
    let before = configuration(&svc);
    let cases = [
        (
            json!({}),
            "configure needs at least one of processes, disks, interfaces, rate, thresholds.",
        ),
        (
            json!({"rate": 5, "bogus": 1}),
            "configure takes params processes, disks, interfaces, rate, thresholds, not 'bogus'.",
        ),
        (
            json!({"rate": 5, "processes": {"remove": ["nope"]}}),
            "processes.remove names 'nope', which is not configured.",
        ),
        (
            json!({"disks": {"add": [fresh]}, "processes": {"add": ["fp-cfg-bad"]}}),
            "processes.add names 'fp-cfg-bad', which is already configured.",
        ),
        (
            json!({"processes": {"add": ["x"]}, "rate": 0}),
            "rate must be above 0 updates per second, not '0'.",
        ),
        (
            json!({"rate": 1000.5}),
            "rate must be at most 1000 updates per second, not '1000.5'.",
        ),
        (
            json!({"rate": true}),
            "rate must be a number of updates per second, not a boolean.",
        ),
        (
            json!({"disks": {"add": ["/data/x/y"]}}),
            "disks.add /data/x/y would share the tree key _data_x_y with /data/x_y.",
        ),
        (
            json!({"interfaces": {"add": [7]}}),
            "interfaces.add must hold only strings, not a number.",
        ),
        (
            json!({"interfaces": null}),
            "interfaces must be an object with add and/or remove lists, not null.",
        ),
        (
            json!({"processes": {"add": ["a"], "remove": ["a"]}}),
            "processes lists 'a' in both add and remove.",
        ),
        (
            json!({"thresholds": {"disk_percent_warn": 90, "disk_percent_alarm": 80}}),
            "disk_percent_warn (90) must not be above disk_percent_alarm (80).",
        ),
    ];
    for (params, error) in cases {
        let reply = svc.ask("configure", 77, params.clone());
        assert_eq!(reply["msg_type"], "nack", "{params}: {reply}");
        assert_eq!(reply["id"], 77);
        assert_eq!(reply["params"], json!({"error": error}), "{params}");
        assert_eq!(configuration(&svc), before, "{params} changed something");
    }
    // Nothing partly applied reached the tree either.
    std::thread::sleep(Duration::from_millis(1200));
    let disks = svc.get("disk")["params"].clone();
    assert!(disks.get(fresh.replace('/', "_")).is_none(), "{disks}");
}

#[test]
fn sighup_rereads_the_file_and_keeps_the_old_one_when_broken() {
    let dir = TempDir::new("cfghup");
    let file = dir.path("odin.cfg");
    let log = dir.path("status.log");
    let extra = dir.path("extra");
    std::fs::create_dir(&extra).unwrap();
    let extra = extra.to_str().unwrap().to_string();
    let (helper, name) = sleeper(2);
    let pid = helper.0.id();
    std::fs::write(
        &file,
        "[adapter.status]\ndisks = /\ninterfaces = lo\nprocesses = no-such-process-hup\nrate = 5\n",
    )
    .unwrap();
    let mut svc = Service::start(&[
        "--config",
        file.to_str().unwrap(),
        "--rate",
        "10",
        "--log-file",
        log.to_str().unwrap(),
    ]);
    let before = configuration(&svc);
    assert_eq!(before["rate"], 10.0, "the flag wins over the file");
    assert_eq!(before["processes"], json!(["no-such-process-hup"]));

    std::fs::write(
        &file,
        format!(
            "[adapter.status]\ndisks = /, {extra}\ninterfaces = lo\nprocesses = {name}\nrate = 3\nallow_configure = true\ndisk_percent_warn = 0.0001\n"
        ),
    )
    .unwrap();
    send_signal(svc.child.id() as i32, 1);
    let after = eventually(5, "the re-read configuration", || {
        let c = configuration(&svc);
        (c != before).then_some(c)
    });
    assert_eq!(after["disks"], json!(["/", extra]));
    assert_eq!(after["processes"], json!([name]));
    assert_eq!(after["rate"], 10.0, "the flag still wins after a re-read");
    assert_eq!(after["allow_configure"], true);
    assert_eq!(after["thresholds"], json!({"disk_percent_warn": 0.0001}));
    eventually(
        5,
        "the file's process, disk and severity in the tree",
        || {
            (has(&svc, &format!("process/{name}/{pid}"))
                && has(&svc, &format!("disk/{}", extra.replace('/', "_")))
                && svc.get("disk/_/severity")["params"]["value"] == "minor")
                .then_some(())
        },
    );
    // configure is now allowed, by the file.
    configure(&svc, json!({"processes": {"add": ["another-hup"]}}));

    // A broken file changes nothing, and the service says why in one line.
    // (A bad rate would not do: --rate wins over the file, which is not read for it.)
    let in_force = configuration(&svc);
    std::fs::write(
        &file,
        "[adapter.status]\nprocesses = x\ndisk_percent_warn = lots\n",
    )
    .unwrap();
    send_signal(svc.child.id() as i32, 1);
    let line = log_line(&log, "SIGHUP", 5);
    assert!(
        line.contains(&format!(
            "SIGHUP: 'disk_percent_warn' in [adapter.status] of {} must be a number of at least 0, not 'lots', so the configuration in force is kept",
            file.display()
        )),
        "{line}"
    );
    assert_eq!(configuration(&svc), in_force);
    std::fs::remove_file(&file).unwrap();
    send_signal(svc.child.id() as i32, 1);
    log_line(
        &log,
        "cannot be read: no such file, so the configuration in force is kept",
        5,
    );
    assert_eq!(configuration(&svc), in_force);
    let (status, _) = svc.stop(15);
    assert!(status.success());
}

#[test]
fn limits_set_live_give_severity_and_alarms() {
    let svc = Service::start(&["--allow-configure", "--rate", "10", "--interfaces", "lo"]);
    let (_ctx, sub) = subscribe(&svc.publish);
    next_notify(&sub, "status", 5).expect("a first snapshot");
    assert!(!has(&svc, "disk/_/severity"), "no severity without limits");

    configure(&svc, json!({"thresholds": {"disk_percent_warn": 0.0001}}));
    let alarm = next_notify(&sub, "alarm", 5).expect("an alarm for disk /");
    let p = &alarm["params"];
    assert_eq!(alarm["msg_type"], "notify");
    assert_eq!(p["path"], "disk/_");
    assert_eq!(
        (p["severity"].as_str(), p["previous"].as_str()),
        (Some("minor"), Some("ok"))
    );
    assert_eq!(p["leaf"], "percent");
    assert_eq!(p["limit"], 0.0001);
    assert_eq!(p["threshold"], "disk_percent_warn");
    assert_eq!(p["gone"], false);
    assert!(p["value"].as_f64().unwrap() >= 0.0001);
    assert!(p["time"].is_string());
    // The snapshot of the same cycle shows it.
    let snap = next_notify(&sub, "status", 1).expect("the snapshot after the alarm");
    assert_eq!(snap["id"], alarm["id"]);
    assert_eq!(snap["params"]["disk"]["_"]["severity"], "minor");

    configure(&svc, json!({"thresholds": {"disk_percent_alarm": 0.0002}}));
    let alarm = next_notify(&sub, "alarm", 5).expect("the rise to major");
    assert_eq!(alarm["params"]["severity"], "major");
    assert_eq!(alarm["params"]["previous"], "minor");
    assert_eq!(alarm["params"]["threshold"], "disk_percent_alarm");

    // Limits removed: the leaf goes and the alarm is cleared.
    configure(
        &svc,
        json!({"thresholds": {"disk_percent_warn": null, "disk_percent_alarm": null}}),
    );
    let alarm = next_notify(&sub, "alarm", 5).expect("the alarm cleared");
    assert_eq!(alarm["params"]["severity"], "ok");
    assert_eq!(alarm["params"]["gone"], true);
    eventually(5, "no severity leaf", || {
        (!has(&svc, "disk/_/severity")).then_some(())
    });
    assert_eq!(configuration(&svc)["thresholds"], json!({}));
}

#[test]
fn limits_from_flags_apply_at_start() {
    let svc = Service::start(&[
        "--interfaces",
        "lo",
        "--threshold",
        "disk_percent_warn=0.0001",
        "--threshold",
        "disk_percent_alarm=100",
    ]);
    assert_eq!(svc.get("disk/_/severity")["params"]["value"], "minor");
    assert_eq!(
        configuration(&svc)["thresholds"],
        json!({"disk_percent_warn": 0.0001, "disk_percent_alarm": 100.0})
    );
    // Only limited nodes change shape.
    assert!(!has(&svc, "network/lo/severity"));
}
