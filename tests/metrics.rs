//! `serve --metrics`: the real binary's HTTP endpoint, spoken to over real
//! loopback TCP, including clients that send too much, too slowly or too many.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;

/// The service's own limits (src/metrics/http.rs).
const MAX_HEAD: usize = 8 * 1024;
const HEAD_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_CONNECTIONS: usize = 16;

fn serve_metrics(extra: &[&str]) -> (Service, String) {
    let address = format!("127.0.0.1:{}", free_port());
    let mut args = vec!["--interfaces", "lo", "--metrics", &address];
    args.extend_from_slice(extra);
    (Service::start(&args), address)
}

fn connect(address: &str) -> TcpStream {
    let stream = TcpStream::connect(address).expect("connect to the metrics endpoint");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    stream
}

/// One response read from `stream`: status line, headers, body.
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Reads one response; the body is `Content-Length` long, or empty for HEAD.
fn read_response(stream: &mut TcpStream, head_only: bool) -> Response {
    let mut bytes = Vec::new();
    let mut byte = [0u8; 1];
    while !bytes.ends_with(b"\r\n\r\n") {
        let n = stream.read(&mut byte).expect("a response");
        assert_eq!(
            n,
            1,
            "closed mid-head after {:?}",
            String::from_utf8_lossy(&bytes)
        );
        bytes.push(byte[0]);
    }
    let head = String::from_utf8(bytes).unwrap();
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap()[9..12].parse().unwrap();
    let headers: Vec<(String, String)> = lines
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (n, v) = l.split_once(':').unwrap();
            (n.to_string(), v.trim().to_string())
        })
        .collect();
    let mut response = Response {
        status,
        headers,
        body: String::new(),
    };
    let length: usize = response.header("content-length").unwrap().parse().unwrap();
    if !head_only {
        let mut body = vec![0u8; length];
        stream.read_exact(&mut body).unwrap();
        response.body = String::from_utf8(body).unwrap();
    }
    response
}

fn exchange(address: &str, request: &str) -> Response {
    let mut stream = connect(address);
    stream.write_all(request.as_bytes()).unwrap();
    read_response(&mut stream, request.starts_with("HEAD"))
}

/// What arrives until the peer closes; `None` if the read fails instead.
fn rest(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut rest = Vec::new();
    stream.read_to_end(&mut rest).ok().map(|_| rest)
}

/// True when the peer has closed: a read returns end of file.
fn closed(stream: &mut TcpStream) -> bool {
    rest(stream).is_some()
}

#[test]
fn get_serves_both_formats_and_everything_else_is_refused() {
    let (svc, address) = serve_metrics(&[
        "--processes",
        "no-such-process-metrics-test:1,fp1=no-such-process-metrics-labelled",
    ]);

    let plain = exchange(&address, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(plain.status, 200);
    assert_eq!(
        plain.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    assert!(
        plain.body.contains("\nodin_status_up 1\n"),
        "{}",
        plain.body
    );
    assert!(plain
        .body
        .contains("odin_status_process_running{name=\"no-such-process-metrics-test\"} 0\n"));
    assert!(plain.body.contains(
        "odin_status_process_state{name=\"no-such-process-metrics-test\",state=\"missing\"} 1\n"
    ));
    // A labelled name is shown by its label, as in the tree.
    assert!(plain
        .body
        .contains("odin_status_process_running{name=\"fp1\"} 0\n"));
    assert!(!plain.body.contains("# EOF"));

    let open = exchange(
        &address,
        "GET /metrics HTTP/1.1\r\nAccept: application/openmetrics-text;version=1.0.0,text/plain;q=0.5\r\n\r\n",
    );
    assert_eq!(open.status, 200);
    assert_eq!(
        open.header("content-type"),
        Some("application/openmetrics-text; version=1.0.0; charset=utf-8")
    );
    assert!(open.body.ends_with("\n# EOF\n"));
    assert!(open
        .body
        .contains("# TYPE odin_status_network_receive_bytes counter\n"));

    let head = exchange(&address, "HEAD /metrics HTTP/1.1\r\n\r\n");
    assert_eq!(head.status, 200);
    assert!(
        head.header("content-length")
            .unwrap()
            .parse::<usize>()
            .unwrap()
            > 1000
    );

    let post = exchange(
        &address,
        "POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
    );
    assert_eq!(post.status, 405);
    assert_eq!(post.header("allow"), Some("GET, HEAD"));
    for path in ["/", "/metrics/", "/Metrics", "/metricsx", "/favicon.ico"] {
        let other = exchange(&address, &format!("GET {path} HTTP/1.1\r\n\r\n"));
        assert_eq!(other.status, 404, "{path}");
        assert_eq!(other.body, "Not found: only /metrics is served here.\n");
    }
    for garbage in [
        "hello\r\n\r\n",
        "GET /metrics\r\n\r\n",
        "\u{0}\u{1}\r\n\r\n",
    ] {
        assert_eq!(exchange(&address, garbage).status, 400, "{garbage:?}");
    }
    assert_eq!(
        exchange(&address, "GET /metrics HTTP/2.0\r\n\r\n").status,
        505
    );

    // Keep-alive: Prometheus scrapes over one connection, requests may be pipelined.
    let mut stream = connect(&address);
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\n\r\nGET /nothing HTTP/1.1\r\n\r\n")
        .unwrap();
    assert_eq!(read_response(&mut stream, false).status, 200);
    assert_eq!(read_response(&mut stream, false).status, 404);
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nConnection: close\r\n\r\n")
        .unwrap();
    let last = read_response(&mut stream, false);
    assert_eq!(last.status, 200);
    assert_eq!(last.header("connection"), Some("close"));
    assert!(closed(&mut stream));

    // The control socket is unaffected, and names the metrics address.
    assert_eq!(svc.get("network/lo")["msg_type"], "ack");
    let configuration = svc.ask("request_configuration", 2, serde_json::json!({}));
    assert_eq!(configuration["params"]["metrics"], address.as_str());
}

#[test]
fn oversized_stalled_and_surplus_clients_are_bounded() {
    let (svc, address) = serve_metrics(&["--rate", "10"]);

    // A head that never ends: refused once it passes the limit.
    let mut big = connect(&address);
    let mut sent = b"GET /metrics HTTP/1.1\r\n".to_vec();
    while sent.len() <= MAX_HEAD + 1024 {
        sent.extend_from_slice(b"X-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
    }
    // The service may close while we still write; only its answer matters.
    let _ = big.write_all(&sent);
    let refused = read_response(&mut big, false);
    assert_eq!(refused.status, 431);
    assert_eq!(
        refused.body,
        format!("The request head is larger than {MAX_HEAD} bytes.\n")
    );
    assert!(closed(&mut big));
    drop(big);
    std::thread::sleep(Duration::from_millis(300)); // its slot is given back

    // Fill every connection slot: one idle client, clients that stop
    // mid-head, and one slowloris trickler.
    let started = Instant::now();
    let mut idle = connect(&address);
    let mut stalled: Vec<TcpStream> = (0..MAX_CONNECTIONS - 2)
        .map(|_| {
            let mut s = connect(&address);
            s.write_all(b"GET /metrics HTTP/1.1\r\n").unwrap();
            s
        })
        .collect();
    let answered = Arc::new(AtomicBool::new(false));
    let trickler = {
        let mut writer = connect(&address);
        let mut reader = writer.try_clone().unwrap();
        let done = Arc::clone(&answered);
        std::thread::spawn(move || {
            for byte in b"GET /metrics HTTP/1.1\r\nX-Slow: "
                .iter()
                .cycle()
                .take(200)
            {
                if done.load(Ordering::Relaxed) || writer.write_all(&[*byte]).is_err() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        std::thread::spawn(move || {
            let status = read_response(&mut reader, false).status;
            answered.store(true, Ordering::Relaxed);
            status
        })
    };
    std::thread::sleep(Duration::from_millis(300)); // all accepted

    // One more: answered at once with 503, not left waiting.
    let surplus = exchange(&address, "GET /metrics HTTP/1.1\r\n\r\n");
    assert_eq!(surplus.status, 503);
    assert!(started.elapsed() < HEAD_TIMEOUT);

    // The sampler goes on meanwhile.
    let cycle = |svc: &Service| {
        svc.get("monitor/cycle")["params"]["value"]
            .as_u64()
            .unwrap()
    };
    let before = cycle(&svc);
    std::thread::sleep(Duration::from_millis(500));
    assert!(cycle(&svc) > before, "cycles go on while clients stall");

    // An idle connection is closed quietly once its time is up.
    assert_eq!(rest(&mut idle), Some(vec![]));
    assert!(started.elapsed() >= HEAD_TIMEOUT - Duration::from_millis(500));
    // Each stalled client gets 408 once its time is up, trickling or not.
    for s in &mut stalled {
        let timed_out = read_response(s, false);
        assert_eq!(timed_out.status, 408);
        assert!(closed(s));
    }
    assert_eq!(trickler.join().unwrap(), 408);
    let waited = started.elapsed();
    assert!(
        waited >= HEAD_TIMEOUT - Duration::from_millis(500) && waited < HEAD_TIMEOUT * 3,
        "timed out after {waited:?}"
    );

    drop(stalled);

    // The slots are free again (each within a second of its answer).
    eventually(5, "a free connection slot", || {
        (exchange(&address, "GET /metrics HTTP/1.1\r\n\r\n").status == 200).then_some(())
    });
}

#[test]
fn a_bad_metrics_address_stops_the_start_and_a_public_one_is_warned_about() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let dir = TempDir::new("metrics-bind");
    let output = Command::new(BIN)
        .args(["serve", "--interfaces", "lo", "--metrics", &address])
        .args(["--ctrl", &format!("ipc://{}", dir.path("ctrl").display())])
        .args(["--pub", &format!("ipc://{}", dir.path("pub").display())])
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(
        err.contains(&format!("--metrics cannot listen on {address}: ")),
        "{err}"
    );
    assert!(
        !dir.path("ctrl").exists(),
        "the bound sockets are cleaned up"
    );

    let log = dir.path("status.log");
    let public = format!("0.0.0.0:{}", free_port());
    let _svc = Service::start(&[
        "--interfaces",
        "lo",
        "--metrics",
        &public,
        "--log-file",
        log.to_str().unwrap(),
    ]);
    log_line(
        &log,
        &format!("tcp://{public} is not a loopback address"),
        5,
    );
    log_line(
        &log,
        &format!("serving metrics on http://{public}/metrics"),
        5,
    );
}
