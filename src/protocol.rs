//! The IpcMessage wire form: what is said on the control and publish sockets.
//!
//! odin-data processes exchange single-frame JSON objects with exactly the keys
//! `msg_type`, `msg_val`, `id`, `timestamp` and `params`. This module turns bytes
//! into a validated [`Request`] and typed replies back into bytes. It knows nothing
//! of sockets (that is `transport`) nor of what a command does (that is `command`).
//!
//! Decoding is lenient where odin-data is (no `timestamp`, no `params`, no `id`)
//! and strict everywhere else, so that a client's mistake gets a sentence back
//! instead of a silently wrong answer.

use serde::Serialize;
use serde_json::{Map, Value};

/// The keys an IpcMessage may carry; anything else is refused.
const MESSAGE_KEYS: [&str; 5] = ["msg_type", "msg_val", "id", "timestamp", "params"];

/// `msg_val` and `id` used in a nack when the request's own could not be read.
pub const ILLEGAL_MSG_VAL: &str = "illegal";

/// A request that decoded cleanly: a `cmd` with a `msg_val`, an id and params.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub msg_val: String,
    pub id: u32,
    pub params: Map<String, Value>,
}

/// Why a request could not be decoded, with what could still be read of it so
/// the nack can carry the request's own `msg_val` and `id`.
#[derive(Debug, Clone, PartialEq)]
pub struct Malformed {
    pub msg_val: String,
    pub id: u32,
    pub error: String,
}

impl Malformed {
    /// A request so broken that neither its `msg_val` nor its `id` could be read.
    pub fn unreadable(error: impl Into<String>) -> Self {
        Malformed {
            msg_val: ILLEGAL_MSG_VAL.to_string(),
            id: 0,
            error: error.into(),
        }
    }
}

/// Decodes one request frame.
pub fn decode_request(frame: &[u8]) -> Result<Request, Malformed> {
    let text = std::str::from_utf8(frame).map_err(|e| {
        Malformed::unreadable(format!(
            "The request is not valid UTF-8 (bad byte at offset {}).",
            e.valid_up_to()
        ))
    })?;
    if text.trim().is_empty() {
        return Err(Malformed::unreadable(
            "The request is empty; expected a JSON object.",
        ));
    }
    let value: Value = serde_json::from_str(text)
        .map_err(|e| Malformed::unreadable(format!("The request is not valid JSON: {e}.")))?;
    let Value::Object(mut object) = value else {
        return Err(Malformed::unreadable(format!(
            "The request must be a JSON object, not {}.",
            describe(&value)
        )));
    };

    // Read what identifies the request first, so every later error can quote it.
    let msg_val = object
        .get("msg_val")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let id = object.get("id").map(read_id);
    let readable_id = match &id {
        Some(Ok(id)) => *id,
        _ => 0,
    };
    let partial = |error: String| Malformed {
        msg_val: msg_val
            .clone()
            .unwrap_or_else(|| ILLEGAL_MSG_VAL.to_string()),
        id: readable_id,
        error,
    };

    if let Some(key) = object.keys().find(|k| !MESSAGE_KEYS.contains(&k.as_str())) {
        return Err(partial(format!(
            "The request has an unknown key '{key}'; a request has only msg_type, msg_val, id, timestamp and params."
        )));
    }
    let msg_type = match object.get("msg_type") {
        None => return Err(partial("The request has no msg_type.".to_string())),
        Some(Value::String(t)) => t.as_str(),
        Some(other) => {
            return Err(partial(format!(
                "msg_type must be a string, not {}.",
                describe(other)
            )))
        }
    };
    if msg_type != "cmd" {
        return Err(partial(format!(
            "Unknown msg_type '{msg_type}'; requests must have msg_type 'cmd'."
        )));
    }
    match object.get("msg_val") {
        None => return Err(partial("The request has no msg_val.".to_string())),
        Some(Value::String(_)) => {}
        Some(other) => {
            return Err(partial(format!(
                "msg_val must be a string, not {}.",
                describe(other)
            )))
        }
    }
    let id = match id {
        None => 0,
        Some(Ok(id)) => id,
        Some(Err(error)) => return Err(partial(error)),
    };
    match object.get("timestamp") {
        None | Some(Value::String(_)) => {}
        Some(other) => {
            return Err(partial(format!(
                "timestamp must be a string, not {}.",
                describe(other)
            )))
        }
    }
    let params = match object.remove("params") {
        None => Map::new(),
        Some(Value::Object(params)) => params,
        Some(other) => {
            return Err(partial(format!(
                "params must be a JSON object, not {}.",
                describe(&other)
            )))
        }
    };
    Ok(Request {
        msg_val: msg_val.unwrap_or_default(),
        id,
        params,
    })
}

fn read_id(value: &Value) -> Result<u32, String> {
    value
        .as_u64()
        .and_then(|id| u32::try_from(id).ok())
        .ok_or_else(|| {
            format!(
                "id must be an unsigned 32-bit integer (0 to 4294967295), not {}.",
                describe_short(value)
            )
        })
}

/// Names a JSON value's kind for an error sentence ("an array", "a number").
pub fn describe(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Quotes a scalar for an error sentence, or names its kind when it is large.
fn describe_short(value: &Value) -> String {
    match value {
        Value::Number(n) => n.to_string(),
        Value::String(s) if s.len() <= 40 => format!("the string {s:?}"),
        other => describe(other).to_string(),
    }
}

/// The kinds of message this service sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MsgType {
    Ack,
    Nack,
    Notify,
}

impl MsgType {
    pub fn as_str(self) -> &'static str {
        match self {
            MsgType::Ack => "ack",
            MsgType::Nack => "nack",
            MsgType::Notify => "notify",
        }
    }
}

impl Serialize for MsgType {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// An outgoing IpcMessage. `params` is anything serialisable, so a reply can
/// borrow a subtree instead of copying it.
#[derive(Debug, Serialize)]
pub struct Message<'a, P: Serialize> {
    pub msg_type: MsgType,
    pub msg_val: &'a str,
    pub id: u32,
    pub timestamp: String,
    pub params: P,
}

impl<'a, P: Serialize> Message<'a, P> {
    pub fn new(msg_type: MsgType, msg_val: &'a str, id: u32, params: P) -> Self {
        Message {
            msg_type,
            msg_val,
            id,
            timestamp: timestamp_now(),
            params,
        }
    }

    pub fn to_json(&self) -> Vec<u8> {
        // Serialising our own types into a Vec cannot fail: every map key is a string.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// MessagePack with string keys (a map, not an array), the same structure as JSON.
    pub fn to_msgpack(&self) -> Vec<u8> {
        rmp_serde::to_vec_named(self).unwrap_or_default()
    }
}

/// A nack reply for a malformed request.
pub fn nack(msg_val: &str, id: u32, error: &str) -> Vec<u8> {
    let mut params = Map::new();
    params.insert("error".to_string(), Value::String(error.to_string()));
    Message::new(MsgType::Nack, msg_val, id, params).to_json()
}

/// Decodes a published message, JSON or MessagePack, told apart by its first
/// byte: a JSON object opens with `{` (after optional white space), a
/// MessagePack map with a map marker.
pub fn decode_published(frame: &[u8]) -> Result<Value, String> {
    let first = frame.iter().find(|b| !b.is_ascii_whitespace());
    let value: Value = match first {
        None => return Err("the message is empty".to_string()),
        Some(b'{') => serde_json::from_slice(frame).map_err(|e| format!("bad JSON: {e}"))?,
        Some(_) => rmp_serde::from_slice(frame).map_err(|e| format!("bad MessagePack: {e}"))?,
    };
    match value {
        Value::Object(_) => Ok(value),
        other => Err(format!(
            "the message is {}, not an object",
            describe(&other)
        )),
    }
}

/// Local time as odin-data writes it: ISO 8601 with `T`, six digits of
/// microseconds and no zone. chrono's `Local` honours `TZ`.
pub fn timestamp_now() -> String {
    timestamp_at(std::time::SystemTime::now())
}

/// [`timestamp_now`]'s form for another moment.
pub fn timestamp_at(time: std::time::SystemTime) -> String {
    chrono::DateTime::<chrono::Local>::from(time)
        .format("%Y-%m-%dT%H:%M:%S%.6f")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn malformed(frame: &[u8]) -> Malformed {
        match decode_request(frame) {
            Err(m) => m,
            Ok(r) => panic!("expected a malformed request, decoded {r:?}"),
        }
    }

    #[test]
    fn full_request_decodes() {
        let r = decode_request(
            br#"{"msg_type":"cmd","msg_val":"get","id":7,"timestamp":"2026-01-01T00:00:00.000000","params":{"path":"disk"}}"#,
        )
        .unwrap();
        assert_eq!(r.msg_val, "get");
        assert_eq!(r.id, 7);
        assert_eq!(r.params.get("path"), Some(&json!("disk")));
    }

    #[test]
    fn lenient_where_odin_data_is() {
        let r = decode_request(br#"{"msg_type":"cmd","msg_val":"status"}"#).unwrap();
        assert_eq!(r.id, 0);
        assert!(r.params.is_empty());
    }

    #[test]
    fn largest_id_is_accepted() {
        let r =
            decode_request(br#"{"msg_type":"cmd","msg_val":"status","id":4294967295}"#).unwrap();
        assert_eq!(r.id, u32::MAX);
    }

    #[test]
    fn bad_ids_are_malformed_and_keep_msg_val() {
        for id in ["-1", "1.5", "\"3\"", "4294967296", "null", "[1]", "1e3"] {
            let frame = format!(r#"{{"msg_type":"cmd","msg_val":"get","id":{id}}}"#);
            let m = malformed(frame.as_bytes());
            assert_eq!(m.msg_val, "get", "id {id}");
            assert_eq!(m.id, 0, "id {id}");
            assert!(m.error.starts_with("id must be"), "id {id}: {}", m.error);
        }
    }

    #[test]
    fn unreadable_requests_are_illegal_and_zero() {
        for frame in [
            &b"\xff\xfe"[..],
            b"",
            b"   ",
            b"{",
            b"[1,2]",
            b"\"get\"",
            b"42",
        ] {
            let m = malformed(frame);
            assert_eq!(m.msg_val, ILLEGAL_MSG_VAL);
            assert_eq!(m.id, 0);
            assert!(m.error.ends_with('.'), "{}", m.error);
        }
    }

    #[test]
    fn every_key_is_type_checked() {
        let cases = [
            (
                r#"{"msg_val":"get","id":3}"#,
                "The request has no msg_type.",
            ),
            (
                r#"{"msg_type":"cmd","id":3}"#,
                "The request has no msg_val.",
            ),
            (
                r#"{"msg_type":5,"msg_val":"get","id":3}"#,
                "msg_type must be a string, not a number.",
            ),
            (
                r#"{"msg_type":"cmd","msg_val":["get"],"id":3}"#,
                "msg_val must be a string, not an array.",
            ),
            (
                r#"{"msg_type":"cmd","msg_val":"get","id":3,"timestamp":1}"#,
                "timestamp must be a string, not a number.",
            ),
            (
                r#"{"msg_type":"cmd","msg_val":"get","id":3,"params":[]}"#,
                "params must be a JSON object, not an array.",
            ),
            (
                r#"{"msg_type":"ack","msg_val":"get","id":3}"#,
                "Unknown msg_type 'ack'; requests must have msg_type 'cmd'.",
            ),
        ];
        for (frame, error) in cases {
            let m = malformed(frame.as_bytes());
            assert_eq!(m.error, error, "{frame}");
            assert_eq!(m.id, 3, "{frame}");
        }
    }

    #[test]
    fn unknown_keys_are_refused() {
        let m = malformed(br#"{"msg_type":"cmd","msg_val":"get","id":9,"extra":1}"#);
        assert_eq!(m.id, 9);
        assert!(m.error.contains("'extra'"));
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let frame = "[".repeat(10_000);
        let m = malformed(frame.as_bytes());
        assert!(m.error.starts_with("The request is not valid JSON"));
    }

    #[test]
    fn timestamp_has_odin_data_shape() {
        let ts = timestamp_now();
        // 2026-11-26T06:08:46.456235
        assert_eq!(ts.len(), 26, "{ts}");
        assert_eq!(&ts[10..11], "T");
        assert_eq!(&ts[19..20], ".");
        assert!(ts[20..].chars().all(|c| c.is_ascii_digit()));
    }

    #[test]
    fn message_keys_are_in_odin_order() {
        let m = Message::new(MsgType::Ack, "get", 1, json!({}));
        let text = String::from_utf8(m.to_json()).unwrap();
        let order: Vec<usize> = MESSAGE_KEYS
            .iter()
            .map(|k| text.find(&format!("\"{k}\"")).unwrap())
            .collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{text}");
    }

    #[test]
    fn published_messages_decode_from_either_encoding() {
        let m = Message::new(MsgType::Notify, "status", 3, json!({"disk": {}}));
        assert_eq!(decode_published(&m.to_json()).unwrap()["id"], 3);
        assert_eq!(decode_published(&m.to_msgpack()).unwrap()["id"], 3);
        assert!(decode_published(b"").is_err());
        assert!(decode_published(b"{oops").is_err());
        assert!(decode_published(b"\xc1").is_err());
        assert!(decode_published(b"[1]").is_err());
    }

    #[test]
    fn msgpack_uses_string_keys() {
        let m = Message::new(MsgType::Notify, "status", 2, json!({"a": 1}));
        let decoded: Value = rmp_serde::from_slice(&m.to_msgpack()).unwrap();
        assert_eq!(decoded["msg_type"], "notify");
        assert_eq!(decoded["id"], 2);
        assert_eq!(decoded["params"]["a"], 1);
    }
}
