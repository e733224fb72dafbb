//! The command line: one module per subcommand, behind one enum.
//!
//! `serve` runs the service; `get` asks it one question; `watch`, `record`
//! and `replay` follow, keep and read back its published snapshots. Exit codes
//! are part of the interface scripts rely on: 0 done, 1 refused (nack),
//! 2 usage, configuration or connection error, 3 no answer in time.

mod get;
mod record;
mod replay;
mod serve;
mod watch;

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
                    format!(
                        "the line is longer than {MAX_LINE_BYTES} bytes, the most a record may be"
                    ),
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

const EXIT_NACK: u8 = 1;
const EXIT_ERROR: u8 = 2;
const EXIT_TIMEOUT: u8 = 3;

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
    Serve(Box<serve::ServeArgs>),
    /// Ask a running service for a path of its tree and print the answer as JSON.
    Get(get::GetArgs),
    /// Print each published snapshot (or the value at PATH) as one JSON line.
    Watch(watch::WatchArgs),
    /// Append every published snapshot, from one or more services, to a file.
    Record(record::RecordArgs),
    /// Print what a recording holds, one line per snapshot (or the value at PATH).
    Replay(replay::ReplayArgs),
}

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
        Commands::Serve(args) => serve::run(*args),
        Commands::Get(args) => get::run(args),
        Commands::Watch(args) => watch::run(args),
        Commands::Record(args) => record::run(args),
        Commands::Replay(args) => replay::run(args),
    }
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
