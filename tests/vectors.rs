//! The shared protocol test vectors (protocol/vectors/*.json), run against the
//! real binary. tests/python/test_vectors.py runs the same files, so the Rust
//! and Python views of the protocol cannot drift apart.
//!
//! Each vector is sent twice: from a DEALER as odin-data sends it (no
//! delimiter) and from a DEALER with an empty delimiter frame first, the
//! envelope a REQ socket adds. After each request the runner sends a sentinel
//! request on the same socket; the server answers in order, so everything that
//! arrives before the sentinel's reply is the vector's answer, and there must
//! be exactly one.

mod common;

use std::collections::BTreeSet;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use common::*;
use serde_json::{json, Map, Value};

/// The id of the sentinel request; no vector may expect it.
const SENTINEL_ID: u64 = 3_141_592_653;
const REPLY_KEYS: [&str; 5] = ["msg_type", "msg_val", "id", "timestamp", "params"];
const VECTOR_FILES: [&str; 6] = [
    "malformed.json",
    "commands.json",
    "paths.json",
    "process.json",
    "configure.json",
    "odin_data.json",
];

fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("protocol/vectors")
}

fn load(file: &str) -> Value {
    let path = vectors_dir().join(file);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// Replaces `{name}` placeholders in every string of `value`.
fn substitute(value: &Value, vars: &[(&str, String)]) -> Value {
    match value {
        Value::String(s) => {
            let mut s = s.clone();
            for (name, with) in vars {
                s = s.replace(&format!("{{{name}}}"), with);
            }
            Value::String(s)
        }
        Value::Array(items) => Value::Array(items.iter().map(|v| substitute(v, vars)).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), substitute(v, vars)))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn decode_hex(hex: &str) -> Vec<u8> {
    assert!(hex.len() % 2 == 0, "odd-length hex {hex:?}");
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex digits"))
        .collect()
}

/// One frame from `{"json": v}`, `{"text": s}` or `{"hex": h}`.
fn frame(spec: &Value) -> Vec<u8> {
    let spec = spec.as_object().expect("a frame is an object");
    assert_eq!(spec.len(), 1, "a frame has exactly one form: {spec:?}");
    if let Some(v) = spec.get("json") {
        serde_json::to_vec(v).unwrap()
    } else if let Some(Value::String(t)) = spec.get("text") {
        t.as_bytes().to_vec()
    } else if let Some(Value::String(h)) = spec.get("hex") {
        decode_hex(h)
    } else {
        panic!("unknown frame form {spec:?}")
    }
}

/// The body frames of a request: one frame, or `{"frames": [...]}`.
fn frames(request: &Value) -> Vec<Vec<u8>> {
    match request.get("frames") {
        Some(Value::Array(parts)) => parts.iter().map(frame).collect(),
        Some(other) => panic!("frames must be a list, not {other}"),
        None => vec![frame(request)],
    }
}

/// The sleep binary started through a link with the given name.
struct Sleeper {
    child: Child,
    _dir: TempDir,
}

impl Sleeper {
    fn start(name: &str) -> Sleeper {
        let sleep = std::env::var_os("PATH")
            .and_then(|paths| {
                std::env::split_paths(&paths)
                    .map(|dir| dir.join("sleep"))
                    .find(|candidate| candidate.is_file())
            })
            .expect("a sleep binary on PATH");
        let dir = TempDir::new("vectors-sleeper");
        let link = dir.path(name);
        symlink(&sleep, &link).unwrap();
        let child = Command::new(&link)
            .arg("600")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the sleeper");
        Sleeper { child, _dir: dir }
    }
}

impl Drop for Sleeper {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A DEALER that talks to the control socket with or without the REQ delimiter.
struct Client {
    _ctx: zmq::Context,
    socket: zmq::Socket,
    req_style: bool,
}

impl Client {
    fn connect(endpoint: &str, req_style: bool) -> Client {
        let ctx = zmq::Context::new();
        let socket = ctx.socket(zmq::DEALER).unwrap();
        socket.set_linger(0).unwrap();
        socket.connect(endpoint).unwrap();
        Client {
            _ctx: ctx,
            socket,
            req_style,
        }
    }

    fn envelope(&self) -> &'static str {
        if self.req_style {
            "REQ-style envelope"
        } else {
            "DEALER without delimiter"
        }
    }

    fn send(&self, body: &[Vec<u8>]) {
        let mut parts: Vec<&[u8]> = Vec::new();
        if self.req_style {
            parts.push(b"");
        }
        parts.extend(body.iter().map(Vec::as_slice));
        self.socket.send_multipart(parts, 0).unwrap();
    }

    /// Sends `body`, then the sentinel; returns every reply body before the
    /// sentinel's reply.
    fn exchange(&self, body: &[Vec<u8>]) -> Result<Vec<Vec<u8>>, String> {
        self.send(body);
        let sentinel = json!({"msg_type": "cmd", "msg_val": "request_commands", "id": SENTINEL_ID});
        self.send(&[serde_json::to_vec(&sentinel).unwrap()]);
        let mut replies = Vec::new();
        loop {
            if self.socket.poll(zmq::POLLIN, 5000).unwrap() == 0 {
                return Err(format!(
                    "no sentinel reply within 5 s ({} replies before it)",
                    replies.len()
                ));
            }
            let mut got = self.socket.recv_multipart(0).unwrap();
            if self.req_style {
                if got.first().map(Vec::len) != Some(0) {
                    return Err(format!("reply lost its delimiter: {got:?}"));
                }
                got.remove(0);
            }
            if got.len() != 1 {
                return Err(format!("a reply of {} frames", got.len()));
            }
            let body = got.remove(0);
            let is_sentinel = serde_json::from_slice::<Value>(&body)
                .map(|r| r["msg_val"] == "request_commands" && r["id"] == SENTINEL_ID)
                .unwrap_or(false);
            if is_sentinel {
                return Ok(replies);
            }
            replies.push(body);
        }
    }
}

/// `YYYY-MM-DDTHH:MM:SS.ffffff`, no zone.
fn check_timestamp(ts: &str) -> Result<(), String> {
    let b = ts.as_bytes();
    let digits = |range: std::ops::Range<usize>| range.into_iter().all(|i| b[i].is_ascii_digit());
    let ok = b.len() == 26
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b'T'
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19)
        && b[19] == b'.'
        && digits(20..26);
    if ok {
        Ok(())
    } else {
        Err(format!(
            "timestamp {ts:?} is not YYYY-MM-DDTHH:MM:SS.ffffff"
        ))
    }
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(_) => "int",
        Value::String(_) => "str",
        Value::Array(_) => "list",
        Value::Object(_) => "object",
    }
}

fn is_pid(key: &str) -> bool {
    !key.is_empty() && !key.starts_with('0') && key.bytes().all(|b| b.is_ascii_digit())
}

fn check_count(op: &Map<String, Value>, len: usize, at: &str) -> Result<(), String> {
    match op.get("$min_items").and_then(Value::as_u64) {
        Some(min) if (len as u64) < min => {
            Err(format!("{at}: {len} items, expected at least {min}"))
        }
        _ => Ok(()),
    }
}

/// Matches `value` against a shape (see protocol/vectors/README.md).
fn check_shape(
    shape: &Value,
    value: &Value,
    shapes: &Map<String, Value>,
    at: &str,
) -> Result<(), String> {
    match shape {
        Value::Object(op) if op.keys().any(|k| k.starts_with('$')) => {
            if let Some(name) = op.get("$shape") {
                let name = name.as_str().expect("$shape names a shape");
                let named = shapes
                    .get(name)
                    .unwrap_or_else(|| panic!("no shape named {name:?}"));
                return check_shape(named, value, shapes, at);
            }
            if let Some(kind) = op.get("$type") {
                // One type, or a list of the types allowed (["float", "null"]).
                let kinds: Vec<&str> = match kind {
                    Value::Array(kinds) => kinds.iter().filter_map(Value::as_str).collect(),
                    _ => vec![kind.as_str().expect("$type is a string or a list")],
                };
                if !kinds.contains(&json_type(value)) {
                    return Err(format!(
                        "{at}: {value} is of type {}, expected {kind}",
                        json_type(value)
                    ));
                }
                if let (Some(places), Some(v)) =
                    (op.get("$decimals").and_then(Value::as_i64), value.as_f64())
                {
                    let scale = 10f64.powi(places as i32);
                    if (v * scale).round() / scale != v {
                        return Err(format!("{at}: {v} has more than {places} decimals"));
                    }
                }
                return Ok(());
            }
            if let Some(element) = op.get("$list_of") {
                let Value::Array(items) = value else {
                    return Err(format!("{at}: {value} is not a list"));
                };
                check_count(op, items.len(), at)?;
                for (i, item) in items.iter().enumerate() {
                    check_shape(element, item, shapes, &format!("{at}/{i}"))?;
                }
                return Ok(());
            }
            if let Some(element) = op.get("$map_of") {
                let Value::Object(map) = value else {
                    return Err(format!("{at}: {value} is not an object"));
                };
                check_count(op, map.len(), at)?;
                let keys = op.get("$keys").and_then(Value::as_str).unwrap_or("any");
                for (key, item) in map {
                    if keys == "pid" && !is_pid(key) {
                        return Err(format!("{at}: key {key:?} is not a PID"));
                    }
                    check_shape(element, item, shapes, &format!("{at}/{key}"))?;
                }
                return Ok(());
            }
            panic!("unknown shape operator in {shape}")
        }
        Value::Object(fields) => {
            let Value::Object(map) = value else {
                return Err(format!("{at}: {value} is not an object"));
            };
            let want: BTreeSet<&String> = fields.keys().collect();
            let have: BTreeSet<&String> = map.keys().collect();
            if want != have {
                return Err(format!("{at}: keys {have:?}, expected {want:?}"));
            }
            for (key, field) in fields {
                check_shape(field, &map[key], shapes, &format!("{at}/{key}"))?;
            }
            Ok(())
        }
        Value::Array(items) => {
            let Value::Array(got) = value else {
                return Err(format!("{at}: {value} is not a list"));
            };
            if items.len() != got.len() {
                return Err(format!(
                    "{at}: {value} has {} items, expected {}",
                    got.len(),
                    items.len()
                ));
            }
            for (i, (item, g)) in items.iter().zip(got).enumerate() {
                check_shape(item, g, shapes, &format!("{at}/{i}"))?;
            }
            Ok(())
        }
        // serde_json keeps 1 and 1.0 apart, so this equality is type-strict.
        scalar if scalar == value => Ok(()),
        scalar => Err(format!("{at}: {value}, expected {scalar}")),
    }
}

/// Checks one reply body against a vector's expected reply.
fn check_reply(body: &[u8], expected: &Value, shapes: &Map<String, Value>) -> Result<(), String> {
    let reply: Value = serde_json::from_slice(body)
        .map_err(|e| format!("reply is not JSON ({e}): {}", String::from_utf8_lossy(body)))?;
    let Value::Object(map) = &reply else {
        return Err(format!("reply is not an object: {reply}"));
    };
    let keys: Vec<&str> = map.keys().map(String::as_str).collect();
    if keys != REPLY_KEYS {
        return Err(format!("reply keys {keys:?}: {reply}"));
    }
    check_timestamp(reply["timestamp"].as_str().unwrap_or_default())?;
    for key in ["msg_type", "msg_val", "id"] {
        if reply[key] != expected[key] {
            return Err(format!(
                "{key} is {}, expected {}: {reply}",
                reply[key], expected[key]
            ));
        }
    }
    check_shape(&expected["params"], &reply["params"], shapes, "params")
        .map_err(|e| format!("{e}\nreply: {reply}"))
}

fn run_file(file: &str) {
    let doc = load(file);
    let serve_args: Vec<String> = doc["serve_args"]
        .as_array()
        .expect("serve_args")
        .iter()
        .map(|a| a.as_str().expect("serve_args are strings").to_string())
        .collect();
    let shapes = doc
        .get("shapes")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let vectors = doc["vectors"].as_array().expect("vectors");

    let sleeper = doc["sleeper"]
        .as_str()
        .map(|name| (name, Sleeper::start(name)));
    let args: Vec<&str> = serve_args.iter().map(String::as_str).collect();
    let svc = Service::start(&args);
    let mut vars = vec![("ctrl", svc.ctrl.clone()), ("pub", svc.publish.clone())];
    if let Some((name, sleeper)) = &sleeper {
        let pid = sleeper.child.id().to_string();
        let path = format!("process/{name}/{pid}");
        eventually(10, "the sleeper in the tree", || {
            (svc.get(&path)["msg_type"] == "ack").then_some(())
        });
        vars.push(("pid", pid));
    }

    let clients = [
        Client::connect(&svc.ctrl, false),
        Client::connect(&svc.ctrl, true),
    ];
    let mut failures = Vec::new();
    for vector in vectors {
        let vector = substitute(vector, &vars);
        let name = vector["name"].as_str().expect("a vector has a name");
        let expected = &vector["reply"];
        assert_ne!(expected["id"], SENTINEL_ID, "{name} uses the sentinel id");
        let body = frames(&vector["request"]);
        for client in &clients {
            let outcome = client.exchange(&body).and_then(|replies| {
                if replies.len() != 1 {
                    let texts: Vec<_> =
                        replies.iter().map(|r| String::from_utf8_lossy(r)).collect();
                    return Err(format!(
                        "{} replies, expected exactly one: {texts:?}",
                        replies.len()
                    ));
                }
                check_reply(&replies[0], expected, &shapes)
            });
            if let Err(e) = outcome {
                failures.push(format!("{file} {name} ({}): {e}", client.envelope()));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} vector runs failed:\n{}",
        failures.len(),
        vectors.len() * clients.len(),
        failures.join("\n")
    );
    // The service is still there after every vector.
    assert_eq!(svc.ask("status", 1, json!({}))["msg_type"], "ack");
}

#[test]
fn malformed_vectors() {
    run_file("malformed.json");
}

#[test]
fn command_vectors() {
    run_file("commands.json");
}

#[test]
fn path_vectors() {
    run_file("paths.json");
}

#[test]
fn process_vectors() {
    run_file("process.json");
}

#[test]
fn configure_vectors() {
    run_file("configure.json");
}

#[test]
fn odin_data_vectors() {
    run_file("odin_data.json");
}

/// odin-data's C++ IpcMessage, in strict mode, refuses a message whose
/// msg_val it does not know: every request and reply of odin_data.json keeps
/// to its list, so a C++ client can send each request and read each reply.
#[test]
fn odin_data_vectors_keep_to_its_msg_vals() {
    let doc = load("odin_data.json");
    let known: Vec<&str> = doc["odin_data_msg_vals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for absent in ["get", "process_event", "alarm"] {
        assert!(!known.contains(&absent), "{absent}");
    }
    for vector in doc["vectors"].as_array().unwrap() {
        let request = &vector["request"]["json"];
        let keys: Vec<&str> = request
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, REPLY_KEYS, "{}: the strict form", vector["name"]);
        for msg_val in [&request["msg_val"], &vector["reply"]["msg_val"]] {
            assert!(
                known.contains(&msg_val.as_str().unwrap()),
                "{}: {msg_val}",
                vector["name"]
            );
        }
    }
}

/// A vector file nobody runs would be a silent gap.
#[test]
fn every_vector_file_is_run() {
    let on_disk: BTreeSet<String> = std::fs::read_dir(vectors_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json"))
        .collect();
    let run: BTreeSet<String> = VECTOR_FILES.iter().map(|f| f.to_string()).collect();
    assert_eq!(
        on_disk, run,
        "protocol/vectors/*.json and VECTOR_FILES differ"
    );
}

/// The files keep to their format: unique names, known keys, a reply per vector.
#[test]
fn vector_files_are_well_formed() {
    let mut total = 0;
    for file in VECTOR_FILES {
        let doc = load(file);
        for key in doc.as_object().unwrap().keys() {
            assert!(
                [
                    "description",
                    "serve_args",
                    "sleeper",
                    "shapes",
                    "vectors",
                    "odin_data_msg_vals"
                ]
                .contains(&key.as_str()),
                "{file}: unknown key {key}"
            );
        }
        let mut names = BTreeSet::new();
        for vector in doc["vectors"].as_array().unwrap() {
            let name = vector["name"].as_str().unwrap();
            assert!(names.insert(name.to_string()), "{file}: {name} twice");
            for key in vector.as_object().unwrap().keys() {
                assert!(
                    ["name", "note", "request", "reply"].contains(&key.as_str()),
                    "{file} {name}: unknown key {key}"
                );
            }
            let reply = vector["reply"].as_object().unwrap();
            let keys: Vec<&str> = reply.keys().map(String::as_str).collect();
            assert_eq!(
                keys,
                ["msg_type", "msg_val", "id", "params"],
                "{file} {name}"
            );
            assert!(!frames(&substitute(&vector["request"], &[])).is_empty());
        }
        total += names.len();
    }
    assert!(total >= 60, "only {total} vectors");
}
