//! Starts the real `odin-status` binary on private endpoints and talks to it
//! with real ZeroMQ sockets.
#![allow(dead_code)] // each test file uses its own part of this

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

pub const BIN: &str = env!("CARGO_BIN_EXE_odin-status");

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A directory removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("odin-status-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running service, stopped with SIGTERM when dropped.
pub struct Service {
    pub child: Child,
    pub ctrl: String,
    pub publish: String,
    pub dir: TempDir,
}

impl Service {
    /// Starts `odin-status serve` with ipc endpoints in a fresh directory plus `args`.
    pub fn start(args: &[&str]) -> Service {
        let dir = TempDir::new("svc");
        let ctrl = format!("ipc://{}", dir.path("ctrl").display());
        let publish = format!("ipc://{}", dir.path("pub").display());
        Service::start_on(dir, ctrl, publish, args)
    }

    /// Starts it on tcp endpoints on free loopback ports.
    pub fn start_tcp(args: &[&str]) -> Service {
        let dir = TempDir::new("svc");
        let ctrl = format!("tcp://127.0.0.1:{}", free_port());
        let publish = format!("tcp://127.0.0.1:{}", free_port());
        Service::start_on(dir, ctrl, publish, args)
    }

    /// Starts it as [`Service::start`] does, with `env` added to its environment.
    pub fn start_with_env(args: &[&str], env: &[(&str, &str)]) -> Service {
        let dir = TempDir::new("svc");
        let ctrl = format!("ipc://{}", dir.path("ctrl").display());
        let publish = format!("ipc://{}", dir.path("pub").display());
        Service::spawn(dir, ctrl, publish, args, env)
    }

    fn start_on(dir: TempDir, ctrl: String, publish: String, args: &[&str]) -> Service {
        Service::spawn(dir, ctrl, publish, args, &[])
    }

    fn spawn(
        dir: TempDir,
        ctrl: String,
        publish: String,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Service {
        let child = Command::new(BIN)
            .envs(env.iter().copied())
            .arg("serve")
            .args(["--ctrl", &ctrl, "--pub", &publish])
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start odin-status");
        let service = Service {
            child,
            ctrl,
            publish,
            dir,
        };
        service.wait_ready();
        service
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if request(&self.ctrl, &cmd("request_version", 0, json!({})), 200).is_some() {
                return;
            }
        }
        panic!("odin-status did not answer on {} within 10 s", self.ctrl);
    }

    /// The reply to one request from a fresh REQ socket.
    pub fn ask(&self, msg_val: &str, id: u64, params: Value) -> Value {
        let body = cmd(msg_val, id, params);
        let reply = request(&self.ctrl, &body, 3000).expect("a reply within 3 s");
        serde_json::from_slice(&reply).expect("the reply is JSON")
    }

    pub fn get(&self, path: &str) -> Value {
        self.ask("get", 1, json!({"path": path}))
    }

    /// Sends SIGTERM (or another signal) and waits for the exit.
    pub fn stop(&mut self, signal: i32) -> (ExitStatus, Duration) {
        let started = Instant::now();
        send_signal(self.child.id() as i32, signal);
        let deadline = started + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return (status, started.elapsed());
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("odin-status did not stop within 10 s of signal {signal}");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            send_signal(self.child.id() as i32, 15);
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

pub fn send_signal(pid: i32, signal: i32) {
    let _ = Command::new("kill")
        .args([format!("-{signal}"), pid.to_string()])
        .status();
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// An IpcMessage command as a client would write it.
pub fn cmd(msg_val: &str, id: u64, params: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "msg_type": "cmd",
        "msg_val": msg_val,
        "id": id,
        "timestamp": "2026-11-26T06:08:46.456235",
        "params": params,
    }))
    .unwrap()
}

/// One request on a fresh REQ socket; `None` if no reply within `timeout_ms`.
pub fn request(endpoint: &str, body: &[u8], timeout_ms: i64) -> Option<Vec<u8>> {
    let ctx = zmq::Context::new();
    let socket = ctx.socket(zmq::REQ).unwrap();
    socket.set_linger(0).unwrap();
    socket.connect(endpoint).unwrap();
    socket.send(body, 0).unwrap();
    if socket.poll(zmq::POLLIN, timeout_ms).unwrap() == 0 {
        return None;
    }
    Some(socket.recv_bytes(0).unwrap())
}

/// A connected SUB socket.
pub fn subscribe(endpoint: &str) -> (zmq::Context, zmq::Socket) {
    let ctx = zmq::Context::new();
    let socket = ctx.socket(zmq::SUB).unwrap();
    socket.set_linger(0).unwrap();
    socket.set_subscribe(b"").unwrap();
    socket.connect(endpoint).unwrap();
    (ctx, socket)
}

/// A SUB socket subscribed to snapshots only: the prefix every JSON `status`
/// message starts with, so the service never queues other notifications for it.
pub fn subscribe_statuses(endpoint: &str) -> (zmq::Context, zmq::Socket) {
    let ctx = zmq::Context::new();
    let socket = ctx.socket(zmq::SUB).unwrap();
    socket.set_linger(0).unwrap();
    socket
        .set_subscribe(br#"{"msg_type":"notify","msg_val":"status""#)
        .unwrap();
    socket.connect(endpoint).unwrap();
    (ctx, socket)
}

pub fn receive(socket: &zmq::Socket, timeout_ms: i64) -> Option<Vec<Vec<u8>>> {
    if socket.poll(zmq::POLLIN, timeout_ms).unwrap() == 0 {
        return None;
    }
    Some(socket.recv_multipart(0).unwrap())
}

/// The next `status` snapshot (JSON), skipping other notifications such as
/// `process_event`; `None` if none arrives within `timeout_ms`.
pub fn receive_status(socket: &zmq::Socket, timeout_ms: u64) -> Option<Value> {
    let deadline = Instant::now() + Duration::from_millis(timeout_ms);
    loop {
        let left = deadline.checked_duration_since(Instant::now())?;
        let frames = receive(socket, left.as_millis() as i64)?;
        let message: Value = serde_json::from_slice(frames.first()?).ok()?;
        if message["msg_val"] == "status" {
            return Some(message);
        }
    }
}

/// Polls `check` until it returns `Some`, or fails after `seconds`.
pub fn eventually<T>(seconds: u64, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    loop {
        if let Some(value) = check() {
            return value;
        }
        if Instant::now() > deadline {
            panic!("timed out after {seconds} s waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn exists(path: &Path) -> bool {
    path.exists()
}

/// The first line of the log file at `path` holding `text`, waiting up to `seconds`.
pub fn log_line(path: &Path, text: &str, seconds: u64) -> String {
    eventually(seconds, &format!("'{text}' in {}", path.display()), || {
        std::fs::read_to_string(path)
            .ok()?
            .lines()
            .find(|l| l.contains(text))
            .map(str::to_string)
    })
}

/// A command started through a uniquely named link, so its `comm` is that name.
pub fn spawn_as(dir: &TempDir, name: &str, target: &str, args: &[&str]) -> Child {
    let link = dir.path(name);
    if !link.exists() {
        symlink(target, &link).unwrap();
    }
    Command::new(&link)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// A name no other test process holds.
pub fn unique(tag: &str) -> String {
    format!("{tag}{}", std::process::id())
}

/// A child killed and waited for when dropped.
pub struct Reaped(pub Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `process_summary/<key>` as the control socket answers it now.
pub fn summary(svc: &Service, key: &str) -> Value {
    let reply = svc.get(&format!("process_summary/{key}"));
    assert_eq!(reply["msg_type"], "ack", "{reply}");
    reply["params"].clone()
}

/// A summary's (count, state, starts, exits, restarts).
pub fn counts(s: &Value) -> (u64, &str, u64, u64, u64) {
    (
        s["count"].as_u64().unwrap(),
        s["state"].as_str().unwrap(),
        s["starts"].as_u64().unwrap(),
        s["exits"].as_u64().unwrap(),
        s["restarts"].as_u64().unwrap(),
    )
}

/// A service at 10 Hz watching one process entry (`name` or `name:N`).
pub fn serve_watching(entry: &str) -> Service {
    Service::start(&["--rate", "10", "--interfaces", "lo", "--processes", entry])
}

/// Starts `per_second` copies of `program` (with the argument `60`) a second
/// for `seconds`, killing and reaping each `life(n)` after it started (n
/// counts from 0); the last ones are ended when the time is up. Calls
/// `ended(pid, started, ended)` for each, with local times. Returns how many
/// it started.
pub fn churn(
    program: &Path,
    seconds: u64,
    per_second: f64,
    life: impl Fn(u64) -> Duration,
    mut ended: impl FnMut(u32, chrono::NaiveDateTime, chrono::NaiveDateTime),
) -> u64 {
    let started = Instant::now();
    let mut alive: Vec<(Child, Instant, chrono::NaiveDateTime)> = Vec::new();
    let mut end = |mut child: Child, born: chrono::NaiveDateTime| {
        let _ = child.kill();
        let _ = child.wait();
        ended(child.id(), born, chrono::Local::now().naive_local());
    };
    let mut spawned = 0u64;
    while started.elapsed() < Duration::from_secs(seconds) {
        let due = (started.elapsed().as_secs_f64() * per_second) as u64;
        while spawned < due {
            let born = chrono::Local::now().naive_local();
            let child = Command::new(program)
                .arg("60")
                .stdout(Stdio::null())
                .spawn()
                .unwrap();
            alive.push((child, Instant::now() + life(spawned), born));
            spawned += 1;
        }
        let now = Instant::now();
        let mut i = 0;
        while i < alive.len() {
            if alive[i].1 <= now {
                let (child, _, born) = alive.swap_remove(i);
                end(child, born);
            } else {
                i += 1;
            }
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    for (child, _, born) in alive {
        end(child, born);
    }
    spawned
}

/// All a child has written to its piped stderr, read to its end.
pub fn stderr_text(child: &mut Child) -> String {
    use std::io::Read;
    let mut text = String::new();
    child
        .stderr
        .take()
        .expect("stderr is piped")
        .read_to_string(&mut text)
        .expect("stderr is readable");
    text
}
