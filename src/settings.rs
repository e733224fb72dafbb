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
            let change = Value::Object(params.clone()).to_string();
            tracing::info!("configure applied: {change}");
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
