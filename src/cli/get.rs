//! `odin-status get` and `config`: one question for a control script,
//! answered on stdout.

use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use serde_json::{json, Value};

use super::{ctrl_endpoint, fail, milliseconds, print_line, EXIT_NACK, EXIT_TIMEOUT};
use crate::config;
use crate::protocol::timestamp_now;
use crate::transport;

/// Where the service's control socket is, and how long to wait for it.
#[derive(Debug, Args)]
pub struct CtrlArgs {
    /// Control endpoint of the service (tcp://HOST:PORT or ipc://PATH).
    #[arg(long, value_name = "ENDPOINT", default_value = config::DEFAULT_CTRL, value_parser = ctrl_endpoint)]
    ctrl: String,
    /// Milliseconds to wait for the answer (above 0).
    #[arg(long, value_name = "MS", default_value_t = 2000, value_parser = milliseconds)]
    timeout: u64,
}

#[derive(Debug, Args)]
pub struct GetArgs {
    /// Path in the tree, e.g. process/frameProcessor or disk/_data/percent; empty for all.
    #[arg(default_value = "")]
    path: String,
    /// Answer with each leaf's type and writeability.
    #[arg(long)]
    metadata: bool,
    #[command(flatten)]
    ctrl: CtrlArgs,
}

#[derive(Debug, Args)]
pub struct ConfigArgs {
    #[command(flatten)]
    ctrl: CtrlArgs,
}

pub fn run(args: GetArgs) -> ExitCode {
    let params = json!({"path": args.path, "metadata": args.metadata});
    match ask(&args.ctrl, "get", params) {
        Ok(answer) => {
            print_line(&answer);
            ExitCode::SUCCESS
        }
        Err(code) => code,
    }
}

/// `config`: the configuration in force, pretty-printed for a person.
pub fn run_config(args: ConfigArgs) -> ExitCode {
    match ask(&args.ctrl, "request_configuration", json!({})) {
        Ok(answer) => {
            let text = serde_json::to_string_pretty(&answer).unwrap_or_default();
            println!("{text}");
            ExitCode::SUCCESS
        }
        Err(code) => code,
    }
}

/// Sends one request and returns the ack's params; anything else has been
/// told on stderr and becomes the exit code.
fn ask(ctrl: &CtrlArgs, msg_val: &str, params: Value) -> Result<Value, ExitCode> {
    let request = json!({
        "msg_type": "cmd",
        "msg_val": msg_val,
        "id": 1,
        "timestamp": timestamp_now(),
        "params": params,
    });
    let body = request.to_string().into_bytes();
    let endpoint = &ctrl.ctrl;
    let reply = match transport::request(endpoint, &body, Duration::from_millis(ctrl.timeout)) {
        Ok(Some(reply)) => reply,
        Ok(None) => {
            // ZeroMQ connects in the background: nothing listening and a
            // service that does not answer look the same from here.
            eprintln!(
                "odin-status: no answer from {endpoint} within {} ms (is the service running there?)",
                ctrl.timeout
            );
            return Err(ExitCode::from(EXIT_TIMEOUT));
        }
        Err(e) => return Err(fail(e)),
    };
    let reply: Value = match serde_json::from_slice(&reply) {
        Ok(v) => v,
        Err(e) => return Err(fail(format!("the reply from {endpoint} is not JSON: {e}"))),
    };
    match reply.get("msg_type").and_then(Value::as_str) {
        Some("ack") => Ok(reply.get("params").cloned().unwrap_or(Value::Null)),
        Some("nack") => {
            let error = reply
                .pointer("/params/error")
                .and_then(Value::as_str)
                .unwrap_or("the request was refused without a reason");
            eprintln!("{error}");
            Err(ExitCode::from(EXIT_NACK))
        }
        _ => Err(fail(format!("unexpected reply from {endpoint}: {reply}"))),
    }
}
