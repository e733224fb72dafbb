//! Process lifecycle end to end: `process_summary` counts and states, and
//! `process_event` messages on the PUB socket, for real processes started and
//! killed by the test.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

/// The next published message with this `msg_val`, with when it arrived.
fn next_published(sub: &zmq::Socket, msg_val: &str, seconds: u64) -> (Value, Instant) {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let frames = receive(sub, left.as_millis() as i64)
            .unwrap_or_else(|| panic!("no {msg_val} message within {seconds} s"));
        let message: Value = serde_json::from_slice(&frames[0]).unwrap();
        if message["msg_val"] == msg_val {
            return (message, Instant::now());
        }
    }
}

/// Waits for the `process_event` of `pid`; earlier events must be of other PIDs.
fn event_of(sub: &zmq::Socket, name: &str, pid: u32, event: &str) -> Value {
    loop {
        let (message, _) = next_published(sub, "process_event", 10);
        let params = &message["params"];
        if params["pid"] == pid && params["event"] == event {
            assert_eq!(params["name"], name, "{message}");
            assert_eq!(message["msg_type"], "notify");
            if event == "started" {
                assert!(params.get("exit_code").is_none(), "{message}");
            }
            let time = params["time"].as_str().unwrap();
            assert_eq!(time.len(), 26, "{time}");
            assert_eq!(time.as_bytes()[10], b'T');
            return message;
        }
    }
}

#[test]
fn starts_exits_restarts_and_states_follow_real_processes() {
    let dir = TempDir::new("life");
    let name = unique("odstlife");
    let svc = serve_watching(&format!("{name}:1"));
    let (_ctx, sub) = subscribe(&svc.publish);
    next_published(&sub, "status", 5); // subscribed from here on

    let s = summary(&svc, &name);
    assert_eq!(counts(&s), (0, "missing", 0, 0, 0), "{s}");
    assert_eq!(s["expected"], 1);
    for key in ["last_start", "last_exit", "uptime"] {
        assert!(s[key].is_null(), "{key}: {s}");
    }
    assert_eq!(
        svc.get(&format!("process_summary/{name}/uptime"))["params"]["value"],
        Value::Null
    );

    let first = Reaped(spawn_as(&dir, &name, "/bin/sleep", &["600"]));
    let pid1 = first.0.id();
    event_of(&sub, &name, pid1, "started");
    eventually(5, "one running, as expected", || {
        let s = summary(&svc, &name);
        (counts(&s) == (1, "ok", 1, 0, 0)).then_some(())
    });
    let s = summary(&svc, &name);
    assert!(
        s["last_start"].is_string() && s["last_exit"].is_null(),
        "{s}"
    );
    assert!(s["uptime"].as_f64().unwrap() >= 0.0);

    // Killed and not yet waited for: a zombie has exited all the same.
    send_signal(pid1 as i32, 9);
    event_of(&sub, &name, pid1, "exited");
    eventually(5, "none running: missing", || {
        let s = summary(&svc, &name);
        (counts(&s) == (0, "missing", 1, 1, 0)).then_some(())
    });
    assert!(summary(&svc, &name)["last_exit"].is_string());
    drop(first);

    let second = Reaped(spawn_as(&dir, &name, "/bin/sleep", &["601"]));
    event_of(&sub, &name, second.0.id(), "started");
    eventually(5, "restarted: ok again", || {
        let s = summary(&svc, &name);
        (counts(&s) == (1, "ok", 2, 1, 1)).then_some(())
    });

    let third = Reaped(spawn_as(&dir, &name, "/bin/sleep", &["602"]));
    event_of(&sub, &name, third.0.id(), "started");
    eventually(5, "two running: extra", || {
        let s = summary(&svc, &name);
        // A second start with no exit left to pair with is not a restart.
        (counts(&s) == (2, "extra", 3, 1, 1)).then_some(())
    });

    // Totals are over what process/<name> reports, in the same tree.
    let tree = svc.ask("status", 2, serde_json::json!({}))["params"].clone();
    let reported = tree["process"][&name].as_object().unwrap();
    let s = &tree["process_summary"][&name];
    assert_eq!(s["count"].as_u64().unwrap(), reported.len() as u64);
    let rss: u64 = reported
        .values()
        .map(|p| p["memory_rss"].as_u64().unwrap())
        .sum();
    assert_eq!(s["memory_rss"].as_u64().unwrap(), rss);
    assert_eq!(s["num_threads"], 2, "sleep has one thread: {s}");
    let fds: u64 = reported
        .keys()
        .map(|pid| {
            std::fs::read_dir(format!("/proc/{pid}/fd"))
                .unwrap()
                .count() as u64
        })
        .sum();
    assert_eq!(s["num_fds"], fds, "{s}");
}

#[test]
fn an_exit_is_published_at_once_not_at_the_next_cycle() {
    let dir = TempDir::new("prompt");
    let name = unique("odstprompt");
    let running = Reaped(spawn_as(&dir, &name, "/bin/sleep", &["600"]));
    let pid = running.0.id();
    eventually(5, "the helper exec'd", || {
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
        (comm.trim() == name).then_some(())
    });
    // One cycle every 5 s.
    let svc = Service::start(&["--rate", "0.2", "--interfaces", "lo", "--processes", &name]);
    let (_ctx, sub) = subscribe(&svc.publish);
    let (snapshot, _) = next_published(&sub, "status", 10);
    let cycle = snapshot["id"].as_u64().unwrap();
    let s = &snapshot["params"]["process_summary"][&name];
    // Running when the service started: known, but not seen starting.
    assert_eq!(counts(s), (1, "unknown", 0, 0, 0), "{s}");
    assert!(s["expected"].is_null());

    send_signal(pid as i32, 15);
    let event = event_of(&sub, &name, pid, "exited");
    let told = Instant::now();
    // Not our child, yet its end is known from the kernel's process events
    // (root has them on every kernel; see the README's threat model).
    if rustix::process::geteuid().is_root() {
        assert_eq!(event["params"]["exit_code"], -15, "{event}");
    }
    assert_eq!(
        event["id"],
        cycle + 1,
        "the id is the first snapshot that shows it"
    );
    let (next, arrived) = next_published(&sub, "status", 10);
    assert_eq!(next["id"], cycle + 1);
    assert!(
        arrived.duration_since(told) > Duration::from_secs(2),
        "the exit was told {:?} before the next snapshot, not with it",
        arrived.duration_since(told)
    );
    let s = &next["params"]["process_summary"][&name];
    assert_eq!(counts(s), (0, "unknown", 0, 1, 0), "{s}");
    drop(running);
}
