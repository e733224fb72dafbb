//! Safe defaults and a clean lifecycle: socket limits, ipc permissions, one
//! instance per endpoint, the last snapshot at shutdown, logs for logrotate.

mod common;

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

/// Wraps a service started by hand, once it answers.
fn adopt(child: std::process::Child, dir: TempDir, ctrl: String, publish: String) -> Service {
    let svc = Service {
        child,
        ctrl,
        publish,
        dir,
    };
    eventually(10, "the service to answer", || {
        request(&svc.ctrl, &cmd("request_version", 0, json!({})), 200)
    });
    svc
}

fn stderr_of(svc: &mut Service) -> String {
    let mut text = String::new();
    if let Some(mut err) = svc.child.stderr.take() {
        let _ = err.read_to_string(&mut text);
    }
    text
}

#[test]
fn oversized_requests_are_refused_by_the_socket() {
    let svc = Service::start(&["--interfaces", "lo", "--max-message-size", "65536"]);
    let ctx = zmq::Context::new();
    let dealer = ctx.socket(zmq::DEALER).unwrap();
    dealer.set_linger(0).unwrap();
    dealer.connect(&svc.ctrl).unwrap();
    let path = "y".repeat(70_000);
    dealer
        .send(cmd("get", 1, json!({"path": path})), 0)
        .unwrap();
    assert_eq!(
        dealer.poll(zmq::POLLIN, 1000).unwrap(),
        0,
        "no reply to an oversized request"
    );
    // Just under the limit is answered, and other clients never noticed.
    let path = "y".repeat(60_000);
    let reply = svc.ask("get", 2, json!({"path": path}));
    assert_eq!(reply["msg_type"], "nack");
    assert_eq!(svc.get("network/lo")["msg_type"], "ack");
}

#[test]
fn ipc_files_get_private_permissions() {
    let svc = Service::start(&["--interfaces", "lo"]);
    let mode = std::fs::metadata(svc.dir.path("ctrl"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o660);
    let svc = Service::start(&["--interfaces", "lo", "--ipc-mode", "600"]);
    for name in ["ctrl", "pub"] {
        let mode = std::fs::metadata(svc.dir.path(name))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600, "{name}");
    }
}

#[test]
fn a_second_instance_cannot_steal_the_endpoints() {
    let first = Service::start(&["--interfaces", "lo"]);
    let other_pub = format!("ipc://{}", first.dir.path("other-pub").display());
    let started = Instant::now();
    let out = Command::new(BIN)
        .args(["serve", "--ctrl", &first.ctrl, "--pub", &other_pub])
        .output()
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("another process is listening there"), "{err}");
    // The first instance still owns its endpoint.
    assert_eq!(first.get("network/lo")["msg_type"], "ack");

    // A stale file left by a crashed instance is taken over.
    let dir = TempDir::new("stale");
    let stale = dir.path("ctrl");
    drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
    assert!(stale.exists());
    let child = Command::new(BIN)
        .args([
            "serve",
            "--interfaces",
            "lo",
            "--ctrl",
            &format!("ipc://{}", stale.display()),
        ])
        .args(["--pub", &format!("ipc://{}", dir.path("pub").display())])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let ctrl = format!("ipc://{}", stale.display());
    let publish = format!("ipc://{}", dir.path("pub").display());
    let mut svc = adopt(child, dir, ctrl, publish);
    assert_eq!(svc.get("network/lo")["msg_type"], "ack");
    let (status, _) = svc.stop(15);
    assert_eq!(status.code(), Some(0));
}

#[test]
fn a_connected_subscriber_gets_the_last_snapshot_at_shutdown() {
    // One cycle every 5 s: any snapshot after SIGTERM is the shutdown one.
    let mut svc = Service::start(&["--interfaces", "lo", "--rate", "0.2"]);
    let (_ctx, sub) = subscribe(&svc.publish);
    // The subscription reaches the service; cycle 1, which goes out at
    // start, may have come before it or just after: drained.
    std::thread::sleep(Duration::from_millis(300));
    while receive(&sub, 0).is_some() {}
    send_signal(svc.child.id() as i32, 15);
    let frames = receive(&sub, 2000).expect("the final snapshot");
    let msg: Value = serde_json::from_slice(&frames[0]).unwrap();
    assert_eq!(msg["msg_val"], "status");
    assert_eq!(msg["id"], 2, "the next cycle, published at shutdown");
    assert!(msg["params"]["network"]["lo"].is_object());
    let (status, elapsed) = svc.stop(15);
    assert_eq!(status.code(), Some(0));
    assert!(elapsed < Duration::from_secs(3));
}

#[test]
fn non_loopback_endpoints_are_warned_about() {
    let port = free_port();
    let dir = TempDir::new("net");
    let child = Command::new(BIN)
        .args([
            "serve",
            "--interfaces",
            "lo",
            "--ctrl",
            &format!("tcp://0.0.0.0:{port}"),
        ])
        .args(["--pub", &format!("ipc://{}", dir.path("pub").display())])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let publish = format!("ipc://{}", dir.path("pub").display());
    let mut svc = adopt(child, dir, format!("tcp://127.0.0.1:{port}"), publish);
    assert_eq!(svc.get("network/lo")["msg_type"], "ack");
    svc.stop(15);
    let err = stderr_of(&mut svc);
    assert!(err.contains("readable by the network"), "{err}");
    assert_eq!(
        err.matches("readable by the network").count(),
        1,
        "only the tcp one: {err}"
    );
}

#[test]
fn log_file_is_reopened_on_sighup() {
    let dir = TempDir::new("log");
    let log = dir.path("status.log");
    let svc = Service::start(&["--interfaces", "lo", "--log-file", log.to_str().unwrap()]);
    log_line(&log, "serving control", 5);
    let rotated = dir.path("status.log.1");
    std::fs::rename(&log, &rotated).unwrap();
    send_signal(svc.child.id() as i32, 1);
    log_line(&log, "reopened", 5);
    // Still serving after SIGHUP.
    assert_eq!(svc.get("network/lo")["msg_type"], "ack");
    assert!(std::fs::read_to_string(&rotated)
        .unwrap()
        .contains("serving control"));
}
