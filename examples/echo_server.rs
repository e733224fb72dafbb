//! A bare libzmq echo server: the ceiling for control-channel round trips.
//!
//! One ROUTER socket, bound to every endpoint given, sends each multipart
//! message straight back as it came (envelope and body), which is exactly what a
//! REQ client needs for a reply. Nothing is parsed or built. `benches/run.sh`
//! measures pyzmq REQ round trips against this and against `odin-status serve`
//! on the same transport, in the same run.
//!
//! With `--reply-bytes N` the body frame it sends back is N bytes long (the
//! request's own bytes, then spaces), so a whole-tree `get` can be compared
//! with an echo of a reply as large as the tree's: the same bytes to move.
//!
//! Run: cargo run --release --example echo_server -- [--seconds N] [--reply-bytes N] ENDPOINT...
//! It stops on SIGINT/SIGTERM (default action) or after N seconds (default 600),
//! so a forgotten one cannot run for long.

use std::time::{Duration, Instant};

fn main() {
    let mut endpoints = Vec::new();
    let mut lifetime = Duration::from_secs(600);
    let mut reply_bytes: usize = 0;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--seconds" {
            let secs: u64 = args
                .next()
                .and_then(|s| s.parse().ok())
                .unwrap_or_else(|| usage("--seconds needs a whole number"));
            lifetime = Duration::from_secs(secs);
        } else if arg == "--reply-bytes" {
            reply_bytes = args
                .next()
                .and_then(|s| s.parse().ok())
                .unwrap_or_else(|| usage("--reply-bytes needs a whole number"));
        } else if arg.starts_with("--") {
            usage(&format!("unknown option {arg}"));
        } else {
            endpoints.push(arg);
        }
    }
    if endpoints.is_empty() {
        usage("give at least one endpoint");
    }

    let ctx = zmq::Context::new();
    let socket = ctx.socket(zmq::ROUTER).expect("ROUTER socket");
    socket.set_linger(0).expect("linger");
    // Wake up now and then to honour the lifetime; a blocking recv otherwise.
    socket.set_rcvtimeo(100).expect("rcvtimeo");
    for endpoint in &endpoints {
        if let Err(e) = socket.bind(endpoint) {
            eprintln!("echo_server: cannot bind {endpoint}: {e}");
            std::process::exit(2);
        }
    }
    eprintln!("echo_server: echoing on {}", endpoints.join(", "));
    let deadline = Instant::now() + lifetime;
    let mut echoed: u64 = 0;
    while Instant::now() < deadline {
        match socket.recv_multipart(0) {
            Ok(mut frames) => {
                if let Some(body) = frames.last_mut().filter(|_| reply_bytes > 0) {
                    body.resize(reply_bytes, b' ');
                }
                if let Err(e) = socket.send_multipart(frames, zmq::DONTWAIT) {
                    eprintln!("echo_server: send: {e}");
                }
                echoed += 1;
            }
            Err(zmq::Error::EAGAIN) | Err(zmq::Error::EINTR) => {}
            Err(e) => {
                eprintln!("echo_server: recv: {e}");
                break;
            }
        }
    }
    eprintln!("echo_server: {echoed} messages echoed");
    for endpoint in &endpoints {
        if let Some(path) = endpoint.strip_prefix("ipc://") {
            let _ = std::fs::remove_file(path);
        }
    }
}

fn usage(problem: &str) -> ! {
    eprintln!(
        "echo_server: {problem}\nusage: echo_server [--seconds N] [--reply-bytes N] ENDPOINT..."
    );
    std::process::exit(2);
}
