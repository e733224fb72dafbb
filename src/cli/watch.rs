//! `odin-status watch`: a live view of the published snapshots, one JSON line each.

use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::Duration;

use clap::Args;
use serde_json::{Map, Value};

use super::{fail, is_snapshot, path_line, print_line, stop_on_signal, CycleGaps};
use crate::config;
use crate::protocol::decode_published;
use crate::transport::{self, Subscriber};

#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Path in each snapshot's tree to print (e.g. disk/_/percent); the whole message if absent.
    path: Option<String>,
    /// Status publisher endpoint of the service.
    #[arg(long = "pub", value_name = "ENDPOINT", default_value = config::DEFAULT_PUB)]
    publish: String,
    /// Stop after this many snapshots (default: until interrupted).
    #[arg(long, value_name = "N")]
    count: Option<u64>,
}

pub fn run(args: WatchArgs) -> ExitCode {
    let stop = stop_on_signal();
    let ctx = transport::Context::new();
    let sub = match Subscriber::connect(&ctx, &args.publish, super::MAX_LINE_BYTES) {
        Ok(sub) => sub,
        Err(e) => return fail(e),
    };
    let mut gaps = CycleGaps::default();
    let mut printed = 0;
    while !stop.load(Ordering::Relaxed) && args.count.is_none_or(|n| printed < n) {
        let frame = match sub.receive(Duration::from_millis(100)) {
            Ok(Some(frame)) => frame,
            Ok(None) => continue,
            Err(e) => return fail(e),
        };
        let message = match decode_published(&frame) {
            Ok(m) => m,
            Err(e) => {
                eprintln!("odin-status: skipped a message from {}: {e}", args.publish);
                continue;
            }
        };
        let snapshot = is_snapshot(&message);
        if snapshot {
            if let Some(cycle) = message.get("id").and_then(Value::as_u64) {
                let missed = gaps.see(cycle);
                if missed > 0 {
                    eprintln!("odin-status: missed {missed} snapshot(s) before cycle {cycle}");
                }
            }
        }
        let line = match &args.path {
            None => message,
            Some(_) if !snapshot => continue,
            Some(path) => path_line(&message, path, Map::new()),
        };
        if !print_line(&line) {
            break;
        }
        printed += 1;
    }
    ExitCode::SUCCESS
}
