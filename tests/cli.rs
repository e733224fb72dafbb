//! The command line as scripts use it: `serve` configuration errors, `get`
//! exit codes, and shutdown on signals.

mod common;

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

fn run(args: &[&str]) -> (Output, Duration) {
    let started = Instant::now();
    let out = Command::new(BIN).args(args).output().unwrap();
    (out, started.elapsed())
}

#[test]
fn get_prints_params_and_exits_zero() {
    let svc = Service::start(&["--interfaces", "lo", "--disks", "/tmp"]);
    let (out, _) = run(&["get", "disk/_tmp/total", "--ctrl", &svc.ctrl]);
    assert_eq!(out.status.code(), Some(0));
    let value: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(value["value"].as_u64().unwrap() > 0);

    let (out, _) = run(&["get", "network/lo", "--metadata", "--ctrl", &svc.ctrl]);
    assert_eq!(out.status.code(), Some(0));
    let value: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(value["bytes_recv"]["type"], "int");

    let (out, _) = run(&["get", "--ctrl", &svc.ctrl]);
    let value: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(value["disk"]["_tmp"].is_object());
}

#[test]
fn get_nack_prints_error_and_exits_one() {
    let svc = Service::start(&["--interfaces", "lo"]);
    let (out, _) = run(&["get", "disk/nope", "--ctrl", &svc.ctrl]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "Invalid path: disk/nope"
    );
}

#[test]
fn get_without_service_times_out_with_exit_three() {
    let port = free_port();
    let ctrl = format!("tcp://127.0.0.1:{port}");
    let (out, elapsed) = run(&["get", "--ctrl", &ctrl, "--timeout", "300"]);
    assert_eq!(out.status.code(), Some(3));
    // Nothing listening and a service that does not answer look alike through
    // ZeroMQ (it connects in the background): both are exit 3.
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "odin-status: no answer from {ctrl} within 300 ms (is the service running there?)\n"
        )
    );
    assert!(elapsed >= Duration::from_millis(300));
}

/// Each bad configuration: a non-zero exit, quickly, with one line naming the option.
#[test]
fn bad_configuration_exits_with_one_clear_line() {
    let dir = TempDir::new("cfg");
    let cfg = dir.path("odin.cfg");
    std::fs::write(
        &cfg,
        "[server]\nadapters = status\n[adapter.status]\nrate = 0\n",
    )
    .unwrap();
    let cfg = cfg.to_str().unwrap();
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy_ep = format!("tcp://127.0.0.1:{}", busy.local_addr().unwrap().port());
    let ok_pub = format!("ipc://{}", dir.path("p").display());
    let ok_ctrl = format!("ipc://{}", dir.path("c").display());
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["--config", "/no/such/file.cfg"],
            "--config /no/such/file.cfg cannot be read",
        ),
        (
            vec!["--config", cfg, "--section", "adapter.nope"],
            "has no [adapter.nope] section (it has [server], [adapter.status]; choose one with --section)",
        ),
        (vec!["--config", cfg], "'rate' in [adapter.status]"),
        (vec!["--rate", "fast"], "--rate must be a number"),
        (vec!["--rate", "0"], "--rate must be above 0"),
        (vec!["--rate", "-1"], "--rate must be above 0"),
        (
            vec!["--pub-encoding", "xml"],
            "--pub-encoding must be json or msgpack",
        ),
        (
            vec!["--ctrl", "bogus"],
            "--ctrl must be a tcp://HOST:PORT or ipc://PATH endpoint",
        ),
        (
            vec!["--ctrl", &busy_ep, "--pub", &ok_pub],
            "--ctrl cannot bind",
        ),
        (
            vec!["--ctrl", &ok_ctrl, "--pub", &busy_ep],
            "--pub cannot bind",
        ),
        (
            vec!["--ctrl", "tcp://256.0.0.1:1", "--pub", &ok_pub],
            "--ctrl cannot bind",
        ),
        (vec!["--no-such-flag"], "--no-such-flag"),
    ];
    for (args, expected) in cases {
        let mut full = vec!["serve"];
        full.extend(&args);
        let (out, elapsed) = run(&full);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} should fail");
        assert!(
            elapsed < Duration::from_secs(2),
            "{args:?} took {elapsed:?}"
        );
        assert_eq!(
            err.trim_end().lines().count(),
            1,
            "{args:?}: one line, got {err:?}"
        );
        assert!(
            err.contains(expected),
            "{args:?}: {err:?} should name {expected:?}"
        );
    }
    // The failed bind left no ipc file behind.
    assert!(!dir.path("c").exists());
}

#[test]
fn odin_config_with_integer_rate_runs() {
    // odin-control crashes on `rate = 2` read from a file; this must not.
    let dir = TempDir::new("odincfg");
    let cfg = dir.path("odin.cfg");
    std::fs::write(
        &cfg,
        "[server]\nadapters = status\n\n[adapter.status]\n\
         module = odin_control.adapters.system_status.SystemStatusAdapter\n\
         disks = /, /tmp\ninterfaces = lo\nprocesses = sleep, python3\nrate = 2\n",
    )
    .unwrap();
    let svc = Service::start(&["--config", cfg.to_str().unwrap()]);
    let reply = svc.ask("request_configuration", 1, serde_json::json!({}));
    assert_eq!(reply["params"]["rate"], 2.0);
    assert_eq!(
        reply["params"]["processes"],
        serde_json::json!(["sleep", "python3"])
    );
    let tree = svc.get("")["params"].clone();
    assert!(tree["disk"]["_"].is_object() && tree["disk"]["_tmp"].is_object());
    assert!(tree["process"]["sleep"].is_object() && tree["process"]["python3"].is_object());
}

#[test]
fn sigterm_and_sigint_stop_cleanly_and_remove_ipc_files() {
    for signal in [15, 2] {
        let mut svc = Service::start(&["--interfaces", "lo"]);
        let ctrl_file = svc.dir.path("ctrl");
        let pub_file = svc.dir.path("pub");
        assert!(ctrl_file.exists() && pub_file.exists());
        let (status, elapsed) = svc.stop(signal);
        assert_eq!(status.code(), Some(0), "signal {signal}");
        // The target is a second; allow for a loaded CI machine here.
        assert!(
            elapsed < Duration::from_secs(3),
            "signal {signal}: {elapsed:?}"
        );
        assert!(
            !ctrl_file.exists() && !pub_file.exists(),
            "ipc files removed"
        );
    }
}

#[test]
fn no_options_serves_defaults() {
    // Nothing else in this suite binds the defaults; a host that does cannot run this test.
    assert!(
        std::net::TcpListener::bind("127.0.0.1:5040").is_ok()
            && std::net::TcpListener::bind("127.0.0.1:5041").is_ok(),
        "ports 5040 and 5041 must be free to test the default endpoints"
    );
    let mut child = Command::new(BIN)
        .arg("serve")
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let reply = eventually(10, "an answer on the default endpoint", || {
        request(
            "tcp://127.0.0.1:5040",
            &cmd("request_configuration", 1, serde_json::json!({})),
            200,
        )
    });
    send_signal(child.id() as i32, 15);
    let status = child.wait().unwrap();
    let reply: Value = serde_json::from_slice(&reply).unwrap();
    let config = &reply["params"];
    assert_eq!(config["disks"], serde_json::json!(["/"]));
    assert_eq!(config["processes"], serde_json::json!([]));
    assert_eq!(config["rate"], 1.0);
    assert!(config["interfaces"]
        .as_array()
        .unwrap()
        .contains(&serde_json::json!("lo")));
    assert_eq!(status.code(), Some(0));
}

/// Every usage error: exit 2, one sentence on stderr, nothing on stdout.
#[test]
fn usage_errors_name_what_is_wrong() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["server"],
            "odin-status: unknown subcommand 'server'; did you mean 'serve'? (see odin-status --help)",
        ),
        (
            &["get", "--metdata"],
            "odin-status: unknown argument '--metdata'; did you mean '--metadata'? (see odin-status get --help)",
        ),
        (
            &["record"],
            "odin-status: missing --pub <ENDPOINT> and --out <FILE> (see odin-status record --help)",
        ),
        (
            &["record", "--pub", "tcp://127.0.0.1:1"],
            "odin-status: missing --out <FILE> (see odin-status record --help)",
        ),
        (
            &["replay"],
            "odin-status: missing <FILE>... (see odin-status replay --help)",
        ),
        (
            &["get", "--ctrl", "127.0.0.1:5040"],
            "odin-status: --ctrl must be a tcp://HOST:PORT or ipc://PATH endpoint, not '127.0.0.1:5040' (see odin-status --help)",
        ),
        (
            &["watch", "--pub", "daq1:5041"],
            "odin-status: --pub must be a tcp://HOST:PORT or ipc://PATH endpoint, not 'daq1:5041' (see odin-status --help)",
        ),
        (
            &["get", "--timeout", "0"],
            "odin-status: --timeout must be a whole number of milliseconds above 0, not '0' (see odin-status --help)",
        ),
        (
            &["config", "--timeout", "1.5"],
            "odin-status: --timeout must be a whole number of milliseconds above 0, not '1.5' (see odin-status --help)",
        ),
        (
            &["watch", "--timeout", "0"],
            "odin-status: --timeout must be a number of seconds above 0, not '0' (see odin-status --help)",
        ),
        (
            &["plot", "r.jsonl", "--path", "host", "--out", "p.png", "--width", "5"],
            "odin-status: --width must be a whole number of pixels from 100 to 8000, not '5' (see odin-status --help)",
        ),
    ];
    for (args, expected) in cases {
        let (out, _) = run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            format!("{expected}\n"),
            "{args:?}"
        );
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}

#[test]
fn bare_command_prints_usage_on_stderr_and_exits_two() {
    let (out, _) = run(&[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with("Disk, network and process status of a DAQ host, over ZeroMQ\n\nUsage: odin-status <COMMAND>\n"), "{err}");
    for sub in [
        "serve", "get", "watch", "record", "replay", "top", "plot", "config", "version",
    ] {
        assert!(
            err.contains(&format!("\n  {sub} ")),
            "{sub} listed in {err}"
        );
    }
    // --help is asked for: stdout, exit 0.
    let (out, _) = run(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("Usage: odin-status <COMMAND>"));
}

/// Every duration and size a flag takes says its unit in --help.
#[test]
fn help_names_units() {
    let units: &[(&str, &[&str])] = &[
        ("get", &["--timeout <MS>", "Milliseconds"]),
        ("config", &["--timeout <MS>", "Milliseconds"]),
        (
            "watch",
            &["--timeout <SECONDS>", "Seconds without a snapshot"],
        ),
        ("record", &["--rotate-mb <MB>", "MB (MiB)"]),
        ("plot", &["--width <PX>", "pixels"]),
        ("serve", &["--rate <HZ>"]),
    ];
    for (sub, wanted) in units {
        let (out, _) = run(&[sub, "--help"]);
        let help = String::from_utf8_lossy(&out.stdout);
        for w in *wanted {
            assert!(help.contains(w), "{sub} --help lacks {w:?}:\n{help}");
        }
    }
}

#[test]
fn version_and_config() {
    let (out, _) = run(&["version"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("odin-status {}\n", env!("CARGO_PKG_VERSION"))
    );
    let svc = Service::start(&["--interfaces", "lo", "--disks", "/tmp", "--rate", "4"]);
    let (out, _) = run(&["config", "--ctrl", &svc.ctrl]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    let config: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        config,
        svc.ask("request_configuration", 2, serde_json::json!({}))["params"]
    );
    // Pretty-printed: one key a line, indented.
    assert!(
        text.starts_with("{\n  \"disks\": [\n    \"/tmp\"\n  ],\n"),
        "{text}"
    );
    assert!(text.contains("\n  \"rate\": 4.0,\n"), "{text}");
}
