//! The command line: one module per subcommand, behind one enum.
//!
//! `serve` runs the service; `get` and `config` ask it one question; `watch`,
//! `record` and `top` follow its published snapshots (through one `feed`);
//! `replay` and `plot` read recordings back (through one `recording`). Exit
//! codes are part of the interface scripts rely on: 0 done, 1 refused (a nack,
//! or a file that is not a recording), 2 usage, configuration or connection
//! error, 3 nothing in time.

mod feed;
mod get;
mod plot;
mod record;
mod recording;
mod replay;
mod serve;
mod top;
mod watch;

use std::error::Error as _;
use std::io::Write;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use clap::{Parser, Subcommand};
use serde_json::{Map, Value};

use crate::tree::Node;

/// The longest line `record` writes and `replay` reads: a snapshot of
/// thousands of processes is a few MB, and a longer line (input with no
/// newline, `/dev/zero`) must stop with an error before it takes the host's
/// memory.
pub const MAX_LINE_BYTES: usize = 16 << 20;

/// Lines of `reader` (without their `\n`), each at most [`MAX_LINE_BYTES`]:
/// a longer one is an error, and the lines end there.
fn capped_lines<R: std::io::BufRead>(
    mut reader: R,
) -> impl Iterator<Item = std::io::Result<Vec<u8>>> {
    let mut failed = false;
    std::iter::from_fn(move || {
        if failed {
            return None;
        }
        let mut line = Vec::new();
        let limit = MAX_LINE_BYTES as u64 + 1;
        let read = std::io::BufRead::read_until(
            &mut std::io::Read::take(&mut reader, limit),
            b'\n',
            &mut line,
        );
        match read {
            Ok(0) => None,
            Ok(_) if line.last() == Some(&b'\n') => {
                line.pop();
                Some(Ok(line))
            }
            Ok(n) if n as u64 >= limit => {
                failed = true;
                Some(Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    LineTooLong,
                )))
            }
            Ok(_) => Some(Ok(line)),
            Err(e) => {
                failed = true;
                Some(Err(e))
            }
        }
    })
}

/// The error [`capped_lines`] ends with when a line passes the cap.
#[derive(Debug)]
struct LineTooLong;

impl std::fmt::Display for LineTooLong {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the line is longer than {MAX_LINE_BYTES} bytes, the most a record may be"
        )
    }
}

impl std::error::Error for LineTooLong {}

/// Whether `error` is [`capped_lines`]' own, not one of the reader's.
fn is_line_too_long(error: &std::io::Error) -> bool {
    error
        .get_ref()
        .is_some_and(|inner| inner.downcast_ref::<LineTooLong>().is_some())
}

const EXIT_NACK: u8 = 1;
const EXIT_ERROR: u8 = 2;
const EXIT_TIMEOUT: u8 = 3;

#[derive(Debug, Parser)]
#[command(
    name = "odin-status",
    version,
    about = "Disk, network and process status of a DAQ host, over ZeroMQ",
    arg_required_else_help = true
)]
pub struct Cli {
    #[command(subcommand)]
    command: Commands,
}

#[derive(Debug, Subcommand)]
enum Commands {
    /// Run the service: sample every cycle, answer the control socket, publish snapshots.
    Serve(Box<serve::ServeArgs>),
    /// Ask a running service for a path of its tree and print the answer as JSON.
    Get(get::GetArgs),
    /// Print each published snapshot (or the value at PATH) as one JSON line.
    Watch(watch::WatchArgs),
    /// Append every published snapshot, from one or more services, to a file.
    Record(record::RecordArgs),
    /// Print what a recording holds, one line per snapshot (or the value at PATH).
    Replay(replay::ReplayArgs),
    /// Live full-screen view of one or more services: processes, disks, interfaces, events.
    Top(top::TopArgs),
    /// Draw numeric leaves of recordings over time to a PNG or SVG file.
    Plot(plot::PlotArgs),
    /// Print the configuration a running service is using (its request_configuration answer).
    Config(get::ConfigArgs),
    /// Print this program's version.
    Version,
}

pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(&e),
    };
    match cli.command {
        Commands::Serve(args) => serve::run(*args),
        Commands::Get(args) => get::run(args),
        Commands::Watch(args) => watch::run(args),
        Commands::Record(args) => record::run(args),
        Commands::Replay(args) => replay::run(args),
        Commands::Top(args) => top::run(args),
        Commands::Plot(args) => plot::run(args),
        Commands::Config(args) => get::run_config(args),
        Commands::Version => {
            println!("odin-status {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
    }
}

/// Help and version go to stdout with exit 0 when asked for; anything else
/// is one sentence on stderr naming what is wrong, and exit 2. Bare
/// `odin-status` is a usage error too: the help goes to stderr.
fn usage_error(e: &clap::Error) -> ExitCode {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            eprint!("{}", e.render());
            return ExitCode::from(EXIT_ERROR);
        }
        _ => {}
    }
    let context = |kind| match e.get(kind) {
        Some(ContextValue::String(s)) => vec![s.clone()],
        Some(ContextValue::Strings(v)) => v.clone(),
        Some(ContextValue::StyledStr(s)) => vec![s.to_string()],
        Some(ContextValue::StyledStrs(v)) => v.iter().map(ToString::to_string).collect(),
        _ => Vec::new(),
    };
    let quoted = |v: Vec<String>| {
        v.iter()
            .map(|s| format!("'{s}'"))
            .collect::<Vec<_>>()
            .join(" or ")
    };
    let invalid = context(ContextKind::InvalidArg);
    let invalid = match invalid.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
        _ => invalid.join(""),
    };
    // "Usage: odin-status record --pub ..." names the subcommand the help is for.
    let usage = context(ContextKind::Usage).join("");
    let help = match usage.split_whitespace().nth(2) {
        Some(sub) if !sub.starts_with(['-', '<', '[']) => format!("odin-status {sub} --help"),
        _ => "odin-status --help".to_string(),
    };
    let message = match e.kind() {
        ErrorKind::MissingRequiredArgument => format!("missing {invalid}"),
        ErrorKind::InvalidSubcommand => {
            let mut m = format!(
                "unknown subcommand '{}'",
                context(ContextKind::InvalidSubcommand).join("")
            );
            let suggested = context(ContextKind::SuggestedSubcommand);
            if !suggested.is_empty() {
                m += &format!("; did you mean {}?", quoted(suggested));
            }
            m
        }
        ErrorKind::UnknownArgument => {
            let mut m = format!("unknown argument '{invalid}'");
            let suggested = context(ContextKind::SuggestedArg);
            if !suggested.is_empty() {
                m += &format!("; did you mean {}?", quoted(suggested));
            }
            m
        }
        ErrorKind::ValueValidation | ErrorKind::InvalidValue => {
            let value = context(ContextKind::InvalidValue).join("");
            // Our own parsers' reasons are whole sentences naming the flag.
            match e.source().map(ToString::to_string) {
                Some(reason) => reason,
                None if value.is_empty() => format!("{invalid} needs a value"),
                None => format!("'{value}' is not a valid value for {invalid}"),
            }
        }
        _ => {
            // clap's first line, without its usage block.
            let text = e.to_string();
            text.lines()
                .next()
                .unwrap_or("invalid arguments")
                .trim_start_matches("error: ")
                .to_string()
        }
    };
    eprintln!("odin-status: {message} (see {help})");
    ExitCode::from(EXIT_ERROR)
}

/// `--ctrl`: a tcp:// or ipc:// endpoint, explained as `serve` explains it.
fn ctrl_endpoint(value: &str) -> Result<String, String> {
    crate::config::check_endpoint(value, "--ctrl").map_err(|e| e.to_string())
}

/// `--pub`: a tcp:// or ipc:// endpoint, explained as `serve` explains it.
fn pub_endpoint(value: &str) -> Result<String, String> {
    crate::config::check_endpoint(value, "--pub").map_err(|e| e.to_string())
}

/// `--timeout MS` of the control requests: whole milliseconds above 0.
fn milliseconds(value: &str) -> Result<u64, String> {
    match value.trim().parse::<u64>() {
        Ok(ms) if ms > 0 => Ok(ms),
        _ => Err(format!(
            "--timeout must be a whole number of milliseconds above 0, not '{value}'"
        )),
    }
}

/// `--timeout SECONDS` of the stream readers: seconds above 0, fractions allowed.
fn seconds_above_zero(value: &str) -> Result<std::time::Duration, String> {
    value
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|s| *s > 0.0)
        .and_then(|s| std::time::Duration::try_from_secs_f64(s).ok())
        .ok_or_else(|| format!("--timeout must be a number of seconds above 0, not '{value}'"))
}

fn fail(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("odin-status: {message}");
    ExitCode::from(EXIT_ERROR)
}

/// A flag raised by SIGINT or SIGTERM, for loops that must finish cleanly
/// (close a file, print a summary) instead of dying mid-write.
fn stop_on_signal() -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    let raised = Arc::clone(&stop);
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let spawned = std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            use tokio::signal::unix::{signal, SignalKind};
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_io()
                .build()
            {
                Ok(rt) => rt,
                Err(_) => return,
            };
            runtime.block_on(async {
                let (Ok(mut int), Ok(mut term)) = (
                    signal(SignalKind::interrupt()),
                    signal(SignalKind::terminate()),
                ) else {
                    return;
                };
                let _ = ready_tx.send(());
                tokio::select! {
                    _ = int.recv() => {}
                    _ = term.recv() => {}
                }
                raised.store(true, Ordering::Relaxed);
            });
        });
    if spawned.is_ok() {
        // Wait until the handlers are in place, so an early signal is not lost.
        let _ = ready_rx.recv_timeout(std::time::Duration::from_secs(1));
    }
    stop
}

/// Writes one JSON line to stdout; false once stdout is closed (e.g. `| head`).
fn print_line(value: &Value) -> bool {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer(&mut out, value).is_ok()
        && out.write_all(b"\n").is_ok()
        && out.flush().is_ok()
}

/// A line for one snapshot at `path`: cycle, timestamp and the bare value
/// (or the error when the path names nothing in that snapshot). `context`
/// fields (endpoint, receive time) come first.
fn path_line(message: &Value, path: &str, context: Map<String, Value>) -> Value {
    let mut line = context;
    line.insert(
        "cycle".into(),
        message.get("id").cloned().unwrap_or(Value::Null),
    );
    line.insert(
        "timestamp".into(),
        message.get("timestamp").cloned().unwrap_or(Value::Null),
    );
    let tree = Node::from_json(message.get("params").unwrap_or(&Value::Null));
    match tree.get(path) {
        Ok(selection) => line.insert("value".into(), selection.bare()),
        Err(invalid) => line.insert("error".into(), Value::String(invalid.to_string())),
    };
    Value::Object(line)
}

/// Whether a published message is a status snapshot (not an event).
fn is_snapshot(message: &Value) -> bool {
    message.get("msg_type").and_then(Value::as_str) == Some("notify")
        && message.get("msg_val").and_then(Value::as_str) == Some("status")
}

/// Counts snapshots missed from one publisher, from gaps in its cycle numbers.
/// A cycle number that goes back means the service restarted, not a gap.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct CycleGaps {
    last: Option<u64>,
    missed: u64,
    restarts: u64,
}

impl CycleGaps {
    /// Records a cycle number; returns how many were missed just before it.
    fn see(&mut self, cycle: u64) -> u64 {
        let missed = match self.last {
            Some(last) if cycle > last => cycle - last - 1,
            Some(_) => {
                self.restarts += 1;
                0
            }
            None => 0,
        };
        self.last = Some(cycle);
        self.missed += missed;
        missed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn gaps_and_restarts() {
        let mut g = CycleGaps::default();
        assert_eq!(g.see(5), 0);
        assert_eq!(g.see(6), 0);
        assert_eq!(g.see(9), 2);
        assert_eq!(g.see(1), 0);
        assert_eq!(g.see(2), 0);
        assert_eq!(
            g,
            CycleGaps {
                last: Some(2),
                missed: 2,
                restarts: 1
            }
        );
    }

    #[test]
    fn path_lines() {
        let msg = json!({"msg_type": "notify", "msg_val": "status", "id": 4, "timestamp": "t",
            "params": {"disk": {"_": {"percent": 13.1}}}});
        assert!(is_snapshot(&msg));
        assert_eq!(
            path_line(&msg, "disk/_/percent", Map::new()),
            json!({"cycle": 4, "timestamp": "t", "value": 13.1})
        );
        assert_eq!(
            path_line(&msg, "disk/_x", Map::new()),
            json!({"cycle": 4, "timestamp": "t", "error": "Invalid path: disk/_x"})
        );
    }
}
