//! The configuration in force, shared by the control thread (which answers
//! `request_configuration` and applies `configure`) and the sampling loop
//! (which applies every change, and replaces the whole on SIGHUP).
//!
//! The changeable part sits in a `tokio::sync::watch` channel: a change is
//! checked and stored under the channel's lock, so two changes never
//! interleave, and storing it wakes the sampling loop at once.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use serde_json::{Map, Value};
use tokio::sync::watch;

use crate::config::{Config, Live};
use crate::tree::{Kind, Leaf, Node};

/// Sent when `configure` or `reset_statistics` arrives but the service was
/// not started to allow changes.
pub fn disabled(msg_val: &str) -> String {
    format!("{msg_val} is disabled; start the service with --allow-configure (or allow_configure = true in its config file) to allow it.")
}
/// Names a configure summary lists per list and per direction; the rest are counted.
const SUMMARY_NAMES: usize = 5;
/// Characters of each listed name (or value) kept in a summary.
const SUMMARY_CHARS: usize = 64;

pub struct Settings {
    ctrl_endpoint: String,
    pub_endpoint: String,
    pub_encoding: &'static str,
    max_message_size: i64,
    ipc_mode: u32,
    log_file: Option<PathBuf>,
    metrics: Option<std::net::SocketAddr>,
    live: watch::Sender<Arc<Live>>,
    /// A `reset_statistics` waits for the sampling loop's next cycle.
    reset: AtomicBool,
}

impl Settings {
    pub fn new(config: &Config, live: Live) -> Settings {
        Settings {
            ctrl_endpoint: config.ctrl_endpoint.clone(),
            pub_endpoint: config.pub_endpoint.clone(),
            pub_encoding: config.pub_encoding.as_str(),
            max_message_size: config.max_message_size,
            ipc_mode: config.ipc_mode,
            log_file: config.log_file.clone(),
            metrics: config.metrics,
            live: watch::Sender::new(Arc::new(live)),
            reset: AtomicBool::new(false),
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

    /// `request_configuration`'s reply: each key as the config file names it.
    pub fn reply(&self) -> Value {
        serde_json::to_value(self.tree()).unwrap_or_default()
    }

    /// The configuration as a tree, so that `request_configuration` with
    /// `metadata` answers as a metadata `get` does. What `configure` changes
    /// is writeable when it is allowed; the rest never is.
    pub fn tree(&self) -> Node {
        let live = self.live();
        let changeable = live.allow_configure;
        let strings = |items: &[String]| Leaf::str_list(items.iter().cloned());
        let processes = live.processes.iter().map(ToString::to_string);
        let mut limits = Node::branch();
        if let Value::Object(set) = live.thresholds.to_json() {
            for (name, limit) in set {
                let limit = Leaf::float(limit.as_f64().unwrap_or_default());
                limits.insert(name, limit.writeable(changeable));
            }
        }
        let log_file = match &self.log_file {
            Some(path) => Leaf::str(path.display().to_string()),
            None => Leaf::null(Kind::Str),
        };
        Node::branch()
            .with("disks", strings(&live.disks).writeable(changeable))
            .with(
                "interfaces",
                strings(&live.interfaces).writeable(changeable),
            )
            .with("processes", Leaf::str_list(processes).writeable(changeable))
            .with("rate", Leaf::float(live.rate).writeable(changeable))
            .with("ctrl_endpoint", Leaf::str(self.ctrl_endpoint.clone()))
            .with("pub_endpoint", Leaf::str(self.pub_endpoint.clone()))
            .with("pub_encoding", Leaf::str(self.pub_encoding))
            .with(
                "max_message_size",
                Leaf::int(self.max_message_size.unsigned_abs()),
            )
            .with("ipc_mode", Leaf::str(format!("{:o}", self.ipc_mode)))
            .with("log_file", log_file)
            .with("allow_configure", Leaf::bool(live.allow_configure))
            .with(
                "metrics",
                self.metrics
                    .map_or(Leaf::null(Kind::Str), |a| Leaf::str(a.to_string())),
            )
            .with("thresholds", limits)
    }

    /// Asks the sampling loop to reset the statistics at its next cycle
    /// (`reset_statistics`), when changes are allowed.
    pub fn request_reset(&self) -> Result<(), String> {
        if !self.live().allow_configure {
            return Err(disabled("reset_statistics"));
        }
        self.reset.store(true, Ordering::Release);
        tracing::info!("reset_statistics: counts restart from 0 at the next cycle");
        Ok(())
    }

    /// Whether a reset was asked for since the last call.
    pub fn take_reset(&self) -> bool {
        self.reset.swap(false, Ordering::AcqRel)
    }

    /// Applies a `configure` request's params as a whole; the reply is the new
    /// configuration, the error one sentence.
    pub fn configure(&self, params: &Map<String, Value>) -> Result<Value, String> {
        let mut outcome = Err(disabled("configure"));
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
