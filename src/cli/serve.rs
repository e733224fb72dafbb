//! `odin-status serve`: configuration from flags and an odin-control file.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::config::{Config, Sources};
use crate::server;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// odin-control config file (INI); options come from its [adapter.status] section,
    /// each under the key request_configuration names it (--ctrl: ctrl_endpoint).
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
    /// Largest request accepted, in bytes; larger ones are refused by the socket [default: 65536].
    #[arg(long, value_name = "BYTES")]
    max_message_size: Option<String>,
    /// Octal permissions of the ipc socket files created [default: 660].
    #[arg(long, value_name = "MODE")]
    ipc_mode: Option<String>,
    /// Log to FILE instead of stderr; SIGHUP reopens it (for logrotate).
    #[arg(long, value_name = "FILE")]
    log_file: Option<PathBuf>,
    /// Let `configure` requests change what is monitored, and `reset_statistics` (off by default).
    #[arg(long)]
    allow_configure: bool,
    /// A limit that gives nodes a severity, e.g. disk_percent_warn=90 (repeatable).
    #[arg(long, value_name = "NAME=LIMIT")]
    threshold: Vec<String>,
    /// Serve Prometheus metrics on http://ADDR/metrics, e.g. 127.0.0.1:9640 (off by default).
    #[arg(long, value_name = "ADDR")]
    metrics: Option<String>,
}

pub fn run(args: ServeArgs) -> ExitCode {
    // First, before anything can take long or start a thread: a stop or
    // reload signal from now on waits for the loop instead of killing us.
    server::hold_signals();
    crate::memory::tune();
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
        max_message_size: args.max_message_size,
        ipc_mode: args.ipc_mode,
        log_file: args.log_file,
        allow_configure: args.allow_configure,
        thresholds: args.threshold,
        metrics: args.metrics,
    };
    let config = match Config::load(&sources) {
        Ok(config) => config,
        Err(e) => return super::fail(e),
    };
    if let Err(e) = crate::logging::init(config.log_file.as_deref()) {
        let shown = config
            .log_file
            .as_deref()
            .unwrap_or(std::path::Path::new(""))
            .display();
        // The file's key when the flag did not give it.
        let origin = match sources.log_file {
            Some(_) => "--log-file",
            None => "log_file",
        };
        return super::fail(format!("{origin} {shown} cannot be opened: {e}"));
    }
    for warning in &config.warnings {
        tracing::warn!("{warning}");
    }
    match server::run(config, sources) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => super::fail(e),
    }
}
