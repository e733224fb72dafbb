//! `odin-status get`: one question for a control script, answered on stdout.

use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use serde_json::{json, Value};

use super::{fail, print_line, EXIT_NACK, EXIT_TIMEOUT};
use crate::config;
use crate::protocol::timestamp_now;
use crate::transport;

#[derive(Debug, Args)]
pub struct GetArgs {
    /// Path in the tree, e.g. process/frameProcessor or disk/_data/percent; empty for all.
    #[arg(default_value = "")]
    path: String,
    /// Control endpoint of the service.
    #[arg(long, value_name = "ENDPOINT", default_value = config::DEFAULT_CTRL)]
    ctrl: String,
    /// Answer with each leaf's type and writeability.
    #[arg(long)]
    metadata: bool,
    /// Milliseconds to wait for the answer.
    #[arg(long, value_name = "MS", default_value_t = 2000)]
    timeout: u64,
}

pub fn run(args: GetArgs) -> ExitCode {
    let request = json!({
        "msg_type": "cmd",
        "msg_val": "get",
        "id": 1,
        "timestamp": timestamp_now(),
        "params": {"path": args.path, "metadata": args.metadata},
    });
    let body = request.to_string().into_bytes();
    let reply = match transport::request(&args.ctrl, &body, Duration::from_millis(args.timeout)) {
        Ok(Some(reply)) => reply,
        Ok(None) => {
            eprintln!(
                "odin-status: no answer from {} within {} ms (is the service running?)",
                args.ctrl, args.timeout
            );
            return ExitCode::from(EXIT_TIMEOUT);
        }
        Err(e) => return fail(e),
    };
    let reply: Value = match serde_json::from_slice(&reply) {
        Ok(v) => v,
        Err(e) => return fail(format!("the reply from {} is not JSON: {e}", args.ctrl)),
    };
    match reply.get("msg_type").and_then(Value::as_str) {
        Some("ack") => {
            print_line(reply.get("params").unwrap_or(&Value::Null));
            ExitCode::SUCCESS
        }
        Some("nack") => {
            let error = reply
                .pointer("/params/error")
                .and_then(Value::as_str)
                .unwrap_or("the request was refused without a reason");
            eprintln!("{error}");
            ExitCode::from(EXIT_NACK)
        }
        _ => fail(format!("unexpected reply from {}: {reply}", args.ctrl)),
    }
}
