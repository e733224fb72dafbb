//! The control commands: one variant per `msg_val`, parsed from a decoded
//! request and answered against the latest tree.
//!
//! Parsing checks every parameter a command takes and refuses any it does not,
//! so a misspelt `metdata` is an error rather than a silently plain answer.

use std::sync::Arc;

use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::cache::CachedTree;
use crate::protocol::{describe, nack, Message, MsgType, Request};
use crate::settings::Settings;
use crate::tree::Selection;

/// Every `msg_val` the service answers, in the order `request_commands` lists them.
pub const SUPPORTED: [&str; 7] = [
    "get",
    "status",
    "request_configuration",
    "request_version",
    "request_commands",
    "configure",
    "reset_statistics",
];

#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// `get`, and `status` (odin-data's name, which its C++ clients can send
    /// where they cannot send `get`): the tree at `path`.
    Get {
        path: String,
        metadata: bool,
    },
    RequestConfiguration {
        metadata: bool,
    },
    RequestVersion,
    RequestCommands,
    /// odin-data's msg_val: lifecycle counts and the monitor's error and
    /// worst-cycle figures start again from the next cycle.
    ResetStatistics,
    /// Changes what is monitored; its params are checked against the
    /// configuration in force (see `config::Live::configure`).
    Configure(Map<String, Value>),
}

/// What a command may read: the latest tree (with its cached JSON), and the
/// configuration in force (which `configure` changes).
pub struct Context {
    pub tree: Arc<CachedTree>,
    pub settings: Arc<Settings>,
}

impl Command {
    pub fn parse(request: &Request) -> Result<Command, String> {
        let params = &request.params;
        match request.msg_val.as_str() {
            "get" | "status" => {
                only_params(params, &request.msg_val, &["path", "metadata"])?;
                let path = match params.get("path") {
                    None => String::new(),
                    Some(Value::String(p)) => p.clone(),
                    Some(other) => {
                        return Err(format!("path must be a string, not {}.", describe(other)))
                    }
                };
                let metadata = metadata(params)?;
                Ok(Command::Get { path, metadata })
            }
            "request_configuration" => {
                only_params(params, "request_configuration", &["metadata"])?;
                let metadata = metadata(params)?;
                Ok(Command::RequestConfiguration { metadata })
            }
            "request_version" => {
                only_params(params, "request_version", &[]).map(|_| Command::RequestVersion)
            }
            "request_commands" => {
                only_params(params, "request_commands", &[]).map(|_| Command::RequestCommands)
            }
            "configure" => Ok(Command::Configure(params.clone())),
            "reset_statistics" => {
                only_params(params, "reset_statistics", &[]).map(|_| Command::ResetStatistics)
            }
            other => Err(format!(
                "Unknown msg_val '{other}'; supported: {}.",
                SUPPORTED.join(", ")
            )),
        }
    }

    /// The encoded reply: an ack with the result, or a nack with the error.
    pub fn reply(&self, request: &Request, context: &Context) -> Vec<u8> {
        match self {
            Command::Get { path, metadata } => get_reply(request, context, path, *metadata),
            Command::RequestConfiguration { metadata } => {
                let configuration = context.settings.tree();
                ack(request, Selection::Node(&configuration).view(*metadata))
            }
            Command::RequestVersion => ack(request, version()),
            Command::RequestCommands => ack(request, json!({ "supported": SUPPORTED })),
            Command::Configure(params) => match context.settings.configure(params) {
                Ok(configuration) => ack(request, configuration),
                Err(error) => nack(&request.msg_val, request.id, &error),
            },
            Command::ResetStatistics => match context.settings.request_reset() {
                Ok(()) => ack(request, json!({})),
                Err(error) => nack(&request.msg_val, request.id, &error),
            },
        }
    }
}

/// The reply to a GET of `path`, with or without metadata, from the tree's
/// cached JSON where it can be (see `cache`). `get` and `status` answer here.
pub fn get_reply(request: &Request, context: &Context, path: &str, metadata: bool) -> Vec<u8> {
    match context.tree.answer(path, metadata) {
        Ok(answer) => ack(request, answer),
        Err(invalid) => nack(&request.msg_val, request.id, &invalid.to_string()),
    }
}

fn ack<P: Serialize>(request: &Request, params: P) -> Vec<u8> {
    Message::new(MsgType::Ack, &request.msg_val, request.id, params).to_json()
}

/// The `metadata` flag of `get`, `status` and `request_configuration`.
fn metadata(params: &Map<String, Value>) -> Result<bool, String> {
    match params.get("metadata") {
        None => Ok(false),
        Some(Value::Bool(m)) => Ok(*m),
        Some(other) => Err(format!(
            "metadata must be true or false, not {}.",
            describe(other)
        )),
    }
}

fn only_params(params: &Map<String, Value>, command: &str, allowed: &[&str]) -> Result<(), String> {
    match params.keys().find(|k| !allowed.contains(&k.as_str())) {
        None => Ok(()),
        Some(key) if allowed.is_empty() => {
            Err(format!("{command} takes no params, but was given '{key}'."))
        }
        Some(key) => Err(format!(
            "{command} takes params {}, not '{key}'.",
            allowed.join(" and ")
        )),
    }
}

/// `request_version`'s reply, in odin-data's form.
pub fn version() -> Value {
    let short = env!("CARGO_PKG_VERSION");
    let number = |part: &str| part.parse::<u64>().unwrap_or(0);
    json!({
        "version": {
            "major": number(env!("CARGO_PKG_VERSION_MAJOR")),
            "minor": number(env!("CARGO_PKG_VERSION_MINOR")),
            "patch": number(env!("CARGO_PKG_VERSION_PATCH")),
            "short": short,
            "full": env!("ODIN_STATUS_FULL_VERSION"),
        },
        "name": "odin-status",
    })
}
