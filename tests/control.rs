//! The control channel, end to end: the real binary, real ZeroMQ sockets.

mod common;

use common::*;
use serde_json::{json, Value};

fn assert_reply_shape(reply: &Value, msg_type: &str, msg_val: &str, id: u64) {
    let keys: Vec<&str> = reply
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        ["msg_type", "msg_val", "id", "timestamp", "params"],
        "{reply}"
    );
    assert_eq!(reply["msg_type"], msg_type, "{reply}");
    assert_eq!(reply["msg_val"], msg_val, "{reply}");
    assert_eq!(reply["id"], id, "{reply}");
    let ts = reply["timestamp"].as_str().unwrap();
    assert_eq!(ts.len(), 26, "timestamp {ts}");
    assert_eq!(&ts[10..11], "T");
}

#[test]
fn req_client_gets_tree_branches_and_leaves() {
    let svc = Service::start(&[
        "--disks",
        "/,/tmp",
        "--interfaces",
        "lo",
        "--processes",
        "no-such-process-xyz",
    ]);

    let whole = svc.ask("get", 11, json!({"path": ""}));
    assert_reply_shape(&whole, "ack", "get", 11);
    let tree = &whole["params"];
    let top: Vec<&String> = tree.as_object().unwrap().keys().collect();
    // odin's blocks first, unchanged; then the additions in order, monitor last.
    assert_eq!(
        top,
        [
            "disk",
            "network",
            "process",
            "process_summary",
            "host",
            "monitor"
        ]
    );
    assert_eq!(tree["process"]["no-such-process-xyz"], json!({}));
    for key in ["total", "used", "free"] {
        assert!(tree["disk"]["_tmp"][key].is_u64(), "{key}");
    }
    assert!(tree["disk"]["_"]["percent"].is_f64());
    assert!(tree["network"]["lo"]["bytes_recv"].is_u64());

    // Paths as odin-control answers them.
    assert_eq!(svc.get("disk")["params"], svc.get("disk/")["params"]);
    let total = svc.get("disk/_tmp/total");
    assert_eq!(
        total["params"],
        json!({"value": tree["disk"]["_tmp"]["total"]})
    );
    assert_eq!(svc.get("process/no-such-process-xyz")["params"], json!({}));

    let with_meta = svc.ask(
        "get",
        12,
        json!({"path": "disk/_tmp/percent", "metadata": true}),
    );
    let p = &with_meta["params"];
    assert_eq!(p["writeable"], false);
    assert_eq!(p["type"], "float");

    // status is the whole tree.
    let status = svc.ask("status", 13, json!({}));
    assert_reply_shape(&status, "ack", "status", 13);
    let status_top: Vec<&String> = status["params"].as_object().unwrap().keys().collect();
    assert_eq!(status_top, top);
}

#[test]
fn invalid_paths_are_nacked_with_odins_text() {
    let svc = Service::start(&["--interfaces", "lo"]);
    for path in [
        "nonexistent",
        "/",
        "/disk",
        "disk//",
        "Disk",
        "network/lo/bytes_recv/0",
        "network/eth99",
    ] {
        let reply = svc.ask("get", 5, json!({"path": path}));
        assert_reply_shape(&reply, "nack", "get", 5);
        assert_eq!(
            reply["params"],
            json!({"error": format!("Invalid path: {path}")})
        );
    }
}

#[test]
fn dealer_without_delimiter_and_req_share_one_endpoint() {
    let svc = Service::start_tcp(&["--interfaces", "lo"]);
    let ctx = zmq::Context::new();
    let dealer = ctx.socket(zmq::DEALER).unwrap();
    dealer.set_linger(0).unwrap();
    dealer.connect(&svc.ctrl).unwrap();
    for id in [1u64, 2, 4294967295] {
        dealer
            .send(cmd("get", id, json!({"path": "network/lo"})), 0)
            .unwrap();
        assert!(
            dealer.poll(zmq::POLLIN, 3000).unwrap() > 0,
            "DEALER got no reply"
        );
        let frames = dealer.recv_multipart(0).unwrap();
        assert_eq!(frames.len(), 1, "a DEALER reply has no delimiter frame");
        let reply: Value = serde_json::from_slice(&frames[0]).unwrap();
        assert_reply_shape(&reply, "ack", "get", id);
        assert!(reply["params"]["bytes_sent"].is_u64());
    }
    // A REQ client on the same endpoint at the same time.
    let reply = svc.ask("request_commands", 3, json!({}));
    assert_reply_shape(&reply, "ack", "request_commands", 3);
    let supported = reply["params"]["supported"].as_array().unwrap();
    for c in [
        "get",
        "status",
        "request_configuration",
        "request_version",
        "request_commands",
    ] {
        assert!(supported.contains(&json!(c)), "{c}");
    }
}

#[test]
fn configuration_and_version() {
    let svc = Service::start(&[
        "--disks",
        "/tmp",
        "--interfaces",
        "lo",
        "--processes",
        "a, b:2",
        "--rate",
        "4",
        "--pub-encoding",
        "msgpack",
    ]);
    let reply = svc.ask("request_configuration", 8, json!({}));
    assert_reply_shape(&reply, "ack", "request_configuration", 8);
    assert_eq!(
        reply["params"],
        json!({
            "disks": ["/tmp"], "interfaces": ["lo"], "processes": ["a", "b:2"], "rate": 4.0,
            "ctrl_endpoint": svc.ctrl, "pub_endpoint": svc.publish, "pub_encoding": "msgpack",
            "max_message_size": 65536, "ipc_mode": "660", "log_file": null,
            "allow_configure": false, "metrics": null, "thresholds": {}
        })
    );
    let reply = svc.ask("request_version", 9, json!({}));
    assert_reply_shape(&reply, "ack", "request_version", 9);
    let v = &reply["params"];
    assert_eq!(v["name"], "odin-status");
    let short = format!(
        "{}.{}.{}",
        v["version"]["major"], v["version"]["minor"], v["version"]["patch"]
    );
    assert_eq!(v["version"]["short"], short.as_str());
    assert_eq!(short, env!("CARGO_PKG_VERSION"));
    assert!(v["version"]["full"].as_str().unwrap().starts_with(&short));
}

/// Sends raw frames from a DEALER (optionally REQ-style with a delimiter) and
/// returns every reply that comes back within a short wait.
fn raw_exchange(endpoint: &str, frames: &[&[u8]], delimiter: bool) -> Vec<Value> {
    let ctx = zmq::Context::new();
    let dealer = ctx.socket(zmq::DEALER).unwrap();
    dealer.set_linger(0).unwrap();
    dealer.connect(endpoint).unwrap();
    let mut parts: Vec<&[u8]> = Vec::new();
    if delimiter {
        parts.push(b"");
    }
    parts.extend_from_slice(frames);
    dealer.send_multipart(parts, 0).unwrap();
    let mut replies = Vec::new();
    let mut wait = 3000;
    while dealer.poll(zmq::POLLIN, wait).unwrap() > 0 {
        let mut got = dealer.recv_multipart(0).unwrap();
        if delimiter {
            assert_eq!(
                got.first().map(Vec::len),
                Some(0),
                "REQ-style reply keeps the delimiter"
            );
            got.remove(0);
        }
        assert_eq!(got.len(), 1);
        replies.push(serde_json::from_slice(&got[0]).expect("reply is JSON"));
        wait = 100; // a second reply would be a bug; give it a moment to show up
    }
    replies
}

#[test]
fn every_bad_request_gets_exactly_one_nack() {
    // The 1 MB request must be read and nacked, not refused by the socket.
    let svc = Service::start(&["--interfaces", "lo", "--max-message-size", "1048576"]);
    let huge = format!(
        r#"{{"msg_type":"cmd","msg_val":"get","id":1,"params":{{"path":"{}"}}}}"#,
        "x".repeat(1_000_000)
    );
    let deep = "[".repeat(10_000);
    let cases: Vec<(Vec<&[u8]>, &str, u64, &str)> = vec![
        (
            vec![b"not json"],
            "illegal",
            0,
            "The request is not valid JSON",
        ),
        (
            vec![b"{\"msg_type\":"],
            "illegal",
            0,
            "The request is not valid JSON",
        ),
        (
            vec![b"[1,2,3]"],
            "illegal",
            0,
            "The request must be a JSON object, not an array.",
        ),
        (
            vec![b"\xff\xfe\xfd"],
            "illegal",
            0,
            "The request is not valid UTF-8",
        ),
        (vec![b""], "illegal", 0, "The request is empty"),
        (
            vec![deep.as_bytes()],
            "illegal",
            0,
            "The request is not valid JSON",
        ),
        (
            vec![br#"{"msg_val":"get","id":4}"#],
            "get",
            4,
            "The request has no msg_type.",
        ),
        (
            vec![br#"{"msg_type":"cmd","id":4}"#],
            "illegal",
            4,
            "The request has no msg_val.",
        ),
        (
            vec![br#"{"msg_type":"cmd","msg_val":7,"id":4}"#],
            "illegal",
            4,
            "msg_val must be a string",
        ),
        (
            vec![br#"{"msg_type":"cmd","msg_val":"get","id":-1}"#],
            "get",
            0,
            "id must be an unsigned 32-bit integer",
        ),
        (
            vec![br#"{"msg_type":"cmd","msg_val":"get","id":1.5}"#],
            "get",
            0,
            "id must be an unsigned 32-bit integer",
        ),
        (
            vec![br#"{"msg_type":"cmd","msg_val":"get","id":"1"}"#],
            "get",
            0,
            "id must be an unsigned 32-bit integer",
        ),
        (
            vec![br#"{"msg_type":"cmd","msg_val":"get","id":4294967296}"#],
            "get",
            0,
            "id must be an unsigned 32-bit integer",
        ),
        (
            vec![br#"{"msg_type":"cmd","msg_val":"get","id":4,"params":[]}"#],
            "get",
            4,
            "params must be a JSON object",
        ),
        (
            vec![br#"{"msg_type":"cmd","msg_val":"get","id":4,"params":{"path":3}}"#],
            "get",
            4,
            "path must be a string",
        ),
        (
            vec![br#"{"msg_type":"cmd","msg_val":"get","id":4,"params":{"metadata":"yes"}}"#],
            "get",
            4,
            "metadata must be true or false",
        ),
        (
            vec![br#"{"msg_type":"cmd","msg_val":"get","id":4,"params":{"pth":""}}"#],
            "get",
            4,
            "get takes params path and metadata, not 'pth'.",
        ),
        (
            vec![br#"{"msg_type":"cmd","msg_val":"reboot","id":4}"#],
            "reboot",
            4,
            "Unknown msg_val 'reboot'",
        ),
        (
            vec![br#"{"msg_type":"notify","msg_val":"status","id":4}"#],
            "status",
            4,
            "Unknown msg_type 'notify'",
        ),
        (
            vec![br#"{"msg_type":"cmd","msg_val":"status","id":4,"extra":true}"#],
            "status",
            4,
            "The request has an unknown key 'extra'",
        ),
        (
            vec![br#"{"msg_type":"cmd","msg_val":"get","id":4,"params":{"path":"nope"}}"#],
            "get",
            4,
            "Invalid path: nope",
        ),
        (vec![huge.as_bytes()], "get", 1, "Invalid path: xxxxxxxx"),
        (
            vec![br#"{"msg_type":"cmd","msg_val":"status"}"#, b"second frame"],
            "illegal",
            0,
            "The request has 2 body frames",
        ),
    ];
    for (frames, msg_val, id, error) in &cases {
        for delimiter in [false, true] {
            let replies = raw_exchange(&svc.ctrl, frames, delimiter);
            assert_eq!(
                replies.len(),
                1,
                "exactly one reply to {:?}",
                String::from_utf8_lossy(frames[0])
                    .chars()
                    .take(80)
                    .collect::<String>()
            );
            let reply = &replies[0];
            assert_reply_shape(reply, "nack", msg_val, *id);
            let text = reply["params"]["error"].as_str().unwrap();
            assert!(
                text.starts_with(error),
                "{text:?} should start with {error:?}"
            );
            assert_eq!(reply["params"].as_object().unwrap().len(), 1);
        }
    }
    // Still serving.
    assert_eq!(svc.get("network/lo")["msg_type"], "ack");
}

#[test]
fn lenient_requests_like_odin_data() {
    let svc = Service::start(&["--interfaces", "lo"]);
    let replies = raw_exchange(
        &svc.ctrl,
        &[br#"{"msg_type":"cmd","msg_val":"status"}"#],
        false,
    );
    assert_eq!(replies.len(), 1);
    assert_reply_shape(&replies[0], "ack", "status", 0);
}

#[test]
fn subscriber_receives_every_cycle_json() {
    let svc = Service::start(&["--rate", "20", "--interfaces", "lo", "--disks", "/tmp"]);
    let (_ctx, sub) = subscribe(&svc.publish);
    let mut ids = Vec::new();
    while ids.len() < 10 {
        let frames = receive(&sub, 3000).expect("a snapshot within 3 s");
        assert_eq!(frames.len(), 1, "a snapshot is one frame");
        let msg: Value = serde_json::from_slice(&frames[0]).unwrap();
        assert_reply_shape(&msg, "notify", "status", msg["id"].as_u64().unwrap());
        assert!(msg["params"]["disk"]["_tmp"]["total"].is_u64());
        assert!(msg["params"]["network"]["lo"].is_object());
        ids.push(msg["id"].as_u64().unwrap());
    }
    assert!(
        ids.windows(2).all(|w| w[1] == w[0] + 1),
        "consecutive cycle numbers: {ids:?}"
    );
}

#[test]
fn subscriber_receives_msgpack_with_string_keys() {
    let svc = Service::start_tcp(&[
        "--rate",
        "20",
        "--interfaces",
        "lo",
        "--pub-encoding",
        "msgpack",
    ]);
    let (_ctx, sub) = subscribe(&svc.publish);
    let frames = receive(&sub, 3000).expect("a snapshot within 3 s");
    let msg: Value = rmp_serde::from_slice(&frames[0]).expect("MessagePack");
    assert_eq!(msg["msg_type"], "notify");
    assert_eq!(msg["msg_val"], "status");
    assert!(msg["id"].as_u64().unwrap() >= 1);
    assert!(msg["params"]["network"]["lo"]["bytes_recv"].is_u64());
    assert!(msg["params"]["disk"]["_"]["percent"].is_f64());
}
