//! The configuration in force, shared by the control thread (which answers
//! `request_configuration` and applies `configure`) and the sampling loop
//! (which applies every change, and replaces the whole on SIGHUP).
//!
//! The changeable part sits in a `tokio::sync::watch` channel: a change is
//! checked and stored under the channel's lock, so two changes never
//! interleave, and storing it wakes the sampling loop at once.

use std::sync::Arc;

use serde_json::{Map, Value};
use tokio::sync::watch;

use crate::config::{Config, Live};

/// Names a configure summary lists per list and per direction; the rest are counted.
const SUMMARY_NAMES: usize = 5;
/// Characters of each listed name (or value) kept in a summary.
const SUMMARY_CHARS: usize = 64;

/// Sent when `configure` arrives but the service was not started to allow it.
pub const CONFIGURE_DISABLED: &str = "configure is disabled; start the service with --allow-configure (or allow_configure = true in its config file) to allow it.";

pub struct Settings {
    ctrl_endpoint: String,
    pub_endpoint: String,
    pub_encoding: &'static str,
    live: watch::Sender<Arc<Live>>,
}

impl Settings {
    pub fn new(config: &Config, live: Live) -> Settings {
        Settings {
            ctrl_endpoint: config.ctrl_endpoint.clone(),
            pub_endpoint: config.pub_endpoint.clone(),
            pub_encoding: config.pub_encoding.as_str(),
            live: watch::Sender::new(Arc::new(live)),
        }
    }

    /// What is in force now.
    pub fn live(&self) -> Arc<Live> {
        Arc::clone(&self.live.borrow())
    }

    /// A receiver that wakes on every change after this call.
    pub fn subscribe(&self) -> watch::Receiver<Arc<Live>> {
        self.live.subscribe()
    }

    /// `request_configuration`'s reply.
    pub fn reply(&self) -> Value {
        self.reply_for(&self.live())
    }

    fn reply_for(&self, live: &Live) -> Value {
        let mut map = Map::new();
        let mut changeable = live.to_json();
        // The historical key order first, the additions after.
        for key in ["disks", "interfaces", "processes", "rate"] {
            if let Some(v) = changeable.shift_remove(key) {
                map.insert(key.to_string(), v);
            }
        }
        map.insert("ctrl_endpoint".into(), self.ctrl_endpoint.clone().into());
        map.insert("pub_endpoint".into(), self.pub_endpoint.clone().into());
        map.insert("pub_encoding".into(), self.pub_encoding.into());
        map.extend(changeable);
        Value::Object(map)
    }

    /// Applies a `configure` request's params as a whole; the reply is the new
    /// configuration, the error one sentence.
    pub fn configure(&self, params: &Map<String, Value>) -> Result<Value, String> {
        let mut outcome = Err(CONFIGURE_DISABLED.to_string());
        self.live.send_if_modified(|live| {
            if !live.allow_configure {
                return false;
            }
            match live.configure(params) {
                Ok(next) => {
                    let changed = next != **live;
                    if changed {
                        *live = Arc::new(next);
                    }
                    outcome = Ok(());
                    changed
                }
                Err(e) => {
                    outcome = Err(e);
                    false
                }
            }
        });
        outcome.map(|()| {
            tracing::info!("configure applied: {}", summary(params));
            self.reply()
        })
    }

    /// Replaces the whole (SIGHUP); nothing happens when nothing changed.
    pub fn replace(&self, live: Live) -> bool {
        self.live.send_if_modified(|current| {
            if **current == live {
                return false;
            }
            *current = Arc::new(live);
            true
        })
    }
}

/// An accepted `configure` as one bounded log line: per list how many were
/// added and removed with the first few names (each cut short), the rate,
/// and which limits changed. A request may carry megabytes; the log gets a
/// few hundred bytes of it.
fn summary(params: &Map<String, Value>) -> String {
    let short = |value: &Value| -> String {
        let text = match value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let mut cut: String = text.chars().take(SUMMARY_CHARS).collect();
        if cut.len() < text.len() {
            cut.push('…');
        }
        cut
    };
    let mut parts = Vec::new();
    for (key, value) in params {
        match value {
            Value::Object(change) => {
                for (op, sign) in [("add", '+'), ("remove", '-')] {
                    let items = change.get(op).and_then(Value::as_array);
                    let Some(items) = items.filter(|items| !items.is_empty()) else {
                        continue;
                    };
                    let names: Vec<String> = items.iter().take(SUMMARY_NAMES).map(short).collect();
                    let more = items.len().saturating_sub(SUMMARY_NAMES);
                    let tail = if more > 0 {
                        format!(" and {more} more")
                    } else {
                        String::new()
                    };
                    parts.push(format!(
                        "{key} {sign}{} ({}{tail})",
                        items.len(),
                        names.join(", ")
                    ));
                }
                if key == "thresholds" {
                    let names: Vec<String> = change
                        .keys()
                        .take(SUMMARY_NAMES)
                        .map(|k| short(&Value::String(k.clone())))
                        .collect();
                    parts.push(format!("thresholds {}", names.join(", ")));
                }
            }
            other => parts.push(format!("{key} {}", short(other))),
        }
    }
    parts.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_huge_configure_is_logged_as_a_short_summary() {
        let many: Vec<String> = (0..10_000)
            .map(|i| format!("{}{i}", "p".repeat(500)))
            .collect();
        let params = json!({"processes": {"add": many, "remove": ["old"]}, "rate": 5});
        let line = summary(params.as_object().unwrap());
        assert!(line.len() < 1000, "{} bytes", line.len());
        assert!(line.starts_with("processes +10000 ("), "{line}");
        assert!(
            line.contains("and 9995 more); processes -1 (old); rate 5"),
            "{line}"
        );
    }
}
