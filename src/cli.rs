//! The command line: `serve` runs the service, `get` asks it one question.
//!
//! `get` is what a frame processor control script calls, so its exit codes
//! are part of its interface: 0 answered, 1 refused (nack), 2 usage or
//! connection error, 3 no answer within the timeout.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use serde_json::{json, Value};

use crate::config::{self, Config, Sources};
use crate::protocol::timestamp_now;
use crate::{server, transport};

#[derive(Debug, Parser)]
#[command(
    name = "odin-status",
    version,
    about = "Disk, network and process status of a DAQ host, over ZeroMQ"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Commands,
}

#[derive(Debug, Subcommand)]
enum Commands {
    /// Run the service: sample every cycle, answer the control socket, publish snapshots.
    Serve(ServeArgs),
    /// Ask a running service for a path of its tree and print the answer as JSON.
    Get(GetArgs),
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// odin-control config file (INI); options come from its [adapter.status] section.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// The config file section to read instead of [adapter.status].
    #[arg(long, value_name = "NAME")]
    section: Option<String>,
    /// Comma-separated paths whose disk usage is reported [default: /].
    #[arg(long, value_name = "LIST")]
    disks: Option<String>,
    /// Comma-separated network interfaces [default: every interface present at start].
    #[arg(long, value_name = "LIST")]
    interfaces: Option<String>,
    /// Comma-separated process names (substring of the name or of one argument).
    #[arg(long, value_name = "LIST")]
    processes: Option<String>,
    /// Update cycles per second [default: 1].
    #[arg(long, value_name = "HZ", allow_hyphen_values = true)]
    rate: Option<String>,
    /// Control endpoint (ROUTER) [default: tcp://127.0.0.1:5040].
    #[arg(long, value_name = "ENDPOINT")]
    ctrl: Option<String>,
    /// Status publisher endpoint (PUB) [default: tcp://127.0.0.1:5041].
    #[arg(long = "pub", value_name = "ENDPOINT")]
    publish: Option<String>,
    /// Encoding of published snapshots: json or msgpack [default: json].
    #[arg(long, value_name = "ENCODING")]
    pub_encoding: Option<String>,
}

#[derive(Debug, Args)]
struct GetArgs {
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

/// Exit codes of `get`.
const EXIT_NACK: u8 = 1;
const EXIT_ERROR: u8 = 2;
const EXIT_TIMEOUT: u8 = 3;

pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(
                e.kind(),
                ErrorKind::DisplayHelp
                    | ErrorKind::DisplayVersion
                    | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            ) {
                let _ = e.print();
                return ExitCode::SUCCESS;
            }
            // One line: clap's first, without its usage block.
            let text = e.to_string();
            let first = text.lines().next().unwrap_or("invalid arguments");
            eprintln!(
                "odin-status: {} (see --help)",
                first.trim_start_matches("error: ")
            );
            return ExitCode::from(EXIT_ERROR);
        }
    };
    match cli.command {
        Commands::Serve(args) => serve(args),
        Commands::Get(args) => get(args),
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .init();
}

fn serve(args: ServeArgs) -> ExitCode {
    let sources = Sources {
        config_file: args.config,
        section: args.section,
        disks: args.disks,
        interfaces: args.interfaces,
        processes: args.processes,
        rate: args.rate,
        ctrl: args.ctrl,
        publish: args.publish,
        pub_encoding: args.pub_encoding,
    };
    let config = match Config::load(&sources) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("odin-status: {e}");
            return ExitCode::from(EXIT_ERROR);
        }
    };
    init_logging();
    match server::run(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("odin-status: {e}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}

fn get(args: GetArgs) -> ExitCode {
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
        Err(e) => {
            eprintln!("odin-status: {e}");
            return ExitCode::from(EXIT_ERROR);
        }
    };
    let reply: Value = match serde_json::from_slice(&reply) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("odin-status: the reply from {} is not JSON: {e}", args.ctrl);
            return ExitCode::from(EXIT_ERROR);
        }
    };
    match reply.get("msg_type").and_then(Value::as_str) {
        Some("ack") => {
            println!("{}", reply.get("params").unwrap_or(&Value::Null));
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
        _ => {
            eprintln!("odin-status: unexpected reply from {}: {reply}", args.ctrl);
            ExitCode::from(EXIT_ERROR)
        }
    }
}
