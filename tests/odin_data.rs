//! odin-data's own clients, end to end: its controller's requests from a
//! DEALER socket, `status` as `get`, `reset_statistics`, process labels, and
//! odin-status's own processes never counted among the watched ones.

mod common;

use std::process::{Command, Stdio};

use common::*;
use serde_json::{json, Value};

/// A DEALER as odin-data's `IpcChannel` makes it: its own identity, no
/// delimiter frame, the request as one frame.
struct Dealer {
    _ctx: zmq::Context,
    socket: zmq::Socket,
    next_id: u64,
}

impl Dealer {
    fn connect(endpoint: &str) -> Dealer {
        let ctx = zmq::Context::new();
        let socket = ctx.socket(zmq::DEALER).unwrap();
        socket.set_linger(0).unwrap();
        socket.set_identity(b"odin-data-controller").unwrap();
        socket.connect(endpoint).unwrap();
        Dealer {
            _ctx: ctx,
            socket,
            next_id: 1,
        }
    }

    /// The reply to one request, checked to answer it.
    fn ask(&mut self, msg_val: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        self.socket.send(cmd(msg_val, id, params), 0).unwrap();
        let frames = receive(&self.socket, 5000).expect("a reply within 5 s");
        assert_eq!(frames.len(), 1, "one frame, no delimiter: {frames:?}");
        let reply: Value = serde_json::from_slice(&frames[0]).unwrap();
        assert_eq!(reply["id"], id, "{reply}");
        assert_eq!(reply["msg_val"], msg_val, "{reply}");
        reply
    }
}

fn ack_params(reply: Value) -> Value {
    assert_eq!(reply["msg_type"], "ack", "{reply}");
    reply["params"].clone()
}

#[test]
fn odin_data_controller_gets_acks_and_status_answers_as_get() {
    let name = unique("odstctl");
    let entry = format!("fp1={name}:1");
    let svc = Service::start(&["--disks", "/", "--interfaces", "lo", "--processes", &entry]);
    let mut dealer = Dealer::connect(&svc.ctrl);

    // OdinDataController asks both, with metadata, every cycle.
    let tree = ack_params(dealer.ask("status", json!({"metadata": true})));
    assert_eq!(
        tree["process_summary"]["fp1"]["expected"],
        json!({"value": 1, "writeable": false, "type": "int"})
    );
    assert_eq!(tree["disk"]["_"]["total"]["type"], "int");
    assert_eq!(tree["process"]["fp1"], json!({}));
    assert!(tree["process"].get(&name).is_none(), "keyed by its label");
    let configuration = ack_params(dealer.ask("request_configuration", json!({"metadata": true})));
    assert_eq!(
        configuration["processes"],
        json!({"value": [entry], "writeable": false, "type": "list", "element_type": "str"})
    );
    assert_eq!(
        configuration["ctrl_endpoint"],
        json!({"value": svc.ctrl, "writeable": false, "type": "str"})
    );
    assert_eq!(
        configuration["log_file"],
        json!({"value": null, "writeable": false, "type": "str"})
    );

    // status with params is get with the same params, answers and refusals alike.
    for path in [
        "",
        "disk/_/total",
        "network/lo/mtu",
        "process/fp1",
        "process_summary/fp1/expected",
        "monitor/version",
        &format!("process/{name}"),
        "disk//",
        "nope",
    ] {
        for metadata in [false, true] {
            let params = json!({"path": path, "metadata": metadata});
            let by_status = dealer.ask("status", params.clone());
            let by_get = svc.ask("get", 1, params);
            assert_eq!(by_status["msg_type"], by_get["msg_type"], "{path}");
            if path.is_empty() {
                // Live figures move between two requests; the shape may not.
                assert_eq!(shape(&by_status["params"]), shape(&by_get["params"]));
            } else {
                assert_eq!(by_status["params"], by_get["params"], "{path} {metadata}");
            }
        }
    }
    let refused = dealer.ask("status", json!({"path": 3}));
    assert_eq!(
        refused["params"]["error"],
        "path must be a string, not a number."
    );
}

/// Keys and leaf types, without the live numbers.
fn shape(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), shape(v))).collect())
        }
        Value::Array(_) => json!("list"),
        Value::Number(n) if n.is_f64() => json!("float"),
        Value::Number(_) => json!("int"),
        other => other.clone(),
    }
}

#[test]
fn reset_statistics_restarts_the_counts() {
    let dir = TempDir::new("reset");
    let name = unique("odstreset");
    let entry = format!("fp1={name}:1");
    let svc = Service::start(&[
        "--rate",
        "10",
        "--disks",
        "/,/no/such/odin-status-dir",
        "--interfaces",
        "lo",
        "--processes",
        &entry,
        "--allow-configure",
    ]);
    let first = Reaped(spawn_as(&dir, &name, "/bin/sleep", &["600"]));
    eventually(10, "a start", || {
        (counts(&summary(&svc, "fp1")) == (1, "ok", 1, 0, 0)).then_some(())
    });
    send_signal(first.0.id() as i32, 9);
    drop(first);
    let _second = Reaped(spawn_as(&dir, &name, "/bin/sleep", &["601"]));
    eventually(10, "a restart", || {
        (counts(&summary(&svc, "fp1")) == (1, "ok", 2, 1, 1)).then_some(())
    });
    let errors = |svc: &Service| {
        ack_params(svc.get("monitor/sampling_errors"))["value"]
            .as_u64()
            .unwrap()
    };
    // The missing disk counts one error a cycle.
    eventually(10, "sampling errors", || (errors(&svc) >= 10).then_some(()));
    let before = errors(&svc);

    let reply = svc.ask("reset_statistics", 5, json!({}));
    assert_eq!(reply["msg_type"], "ack", "{reply}");
    assert_eq!(reply["params"], json!({}));
    let s = eventually(5, "the counts reset", || {
        let s = summary(&svc, "fp1");
        (s["starts"] == 0).then_some(s)
    });
    // The process still running is not counted as starting again.
    assert_eq!(counts(&s), (1, "ok", 0, 0, 0), "{s}");
    assert!(s["last_start"].is_null() && s["last_exit"].is_null(), "{s}");
    let after = errors(&svc);
    assert!(after < before, "sampling_errors {before} -> {after}");
    let monitor = ack_params(svc.get("monitor"));
    assert!(
        monitor["max_cycle_duration"].as_f64().unwrap()
            >= monitor["last_cycle_duration"].as_f64().unwrap()
    );
}

#[test]
fn labelled_entries_round_trip_through_configure() {
    let name = unique("odstlabel");
    let entry = format!("fp1={name}:1");
    let svc = Service::start(&[
        "--interfaces",
        "lo",
        "--processes",
        &entry,
        "--allow-configure",
    ]);
    let listed = ack_params(svc.ask("request_configuration", 1, json!({})));
    assert_eq!(listed["processes"], json!([entry]));
    // What request_configuration lists, configure takes back.
    let removed = ack_params(svc.ask("configure", 2, json!({"processes": {"remove": [entry]}})));
    assert_eq!(removed["processes"], json!([]));
    let added = ack_params(svc.ask("configure", 3, json!({"processes": {"add": [entry]}})));
    assert_eq!(added["processes"], json!([entry]));
    eventually(5, "the labelled node", || {
        (svc.get("process_summary/fp1/expected")["params"]["value"] == 1).then_some(())
    });
    // Each name once, each key once.
    let clash = svc.ask(
        "configure",
        4,
        json!({"processes": {"add": [format!("fp2={name}")]}}),
    );
    assert_eq!(
        clash["params"]["error"],
        format!("processes would list {entry} and fp2={name}, which both match {name}; give each name once.")
    );
    let clash = svc.ask("configure", 5, json!({"processes": {"add": ["fp1=other"]}}));
    assert_eq!(
        clash["params"]["error"],
        "processes.add names 'fp1=other', which is already configured."
    );
}

#[test]
fn odin_status_processes_are_never_matched() {
    let dir = TempDir::new("ours");
    let name = unique("odstours");
    let watched = Reaped(spawn_as(&dir, &name, "/bin/sleep", &["600"]));
    let svc = Service::start(&[
        "--rate",
        "10",
        "--interfaces",
        "lo",
        "--processes",
        &format!("{name}:1"),
    ]);
    eventually(10, "the one process", || {
        (summary(&svc, &name)["state"] == "ok").then_some(())
    });
    // Another service and a get, both naming the process in their arguments,
    // run while a watch (naming it too) prints the state for a while.
    let other = Service::start(&["--rate", "10", "--interfaces", "lo", "--processes", &name]);
    let path = format!("process_summary/{name}/state");
    let watch = Command::new(BIN)
        .args(["watch", "--pub", &svc.publish, "--count", "15", &path])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let get = Command::new(BIN)
        .args(["get", "--ctrl", &svc.ctrl, &format!("process/{name}")])
        .output()
        .unwrap();
    assert!(get.status.success());
    let pids: Value = serde_json::from_slice(&get.stdout).unwrap();
    assert_eq!(
        pids.as_object().unwrap().keys().collect::<Vec<_>>(),
        [&watched.0.id().to_string()]
    );
    let output = watch.wait_with_output().unwrap();
    let lines: Vec<Value> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 15);
    for line in &lines {
        assert_eq!(line["value"], "ok", "{line}");
    }
    // The other service sees the process and not the first service either.
    assert_eq!(summary(&other, &name)["count"], 1);
    drop(watched);
}
