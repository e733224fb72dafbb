//! `odin-status watch`: a live view of the published snapshots, one JSON line each.

use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::Duration;

use clap::Args;
use serde_json::Map;

use super::feed::{seconds, Event, Feed};
use super::{
    fail, is_snapshot, path_line, print_line, pub_endpoint, seconds_above_zero, stop_on_signal,
    EXIT_TIMEOUT,
};
use crate::config;

#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Path in each snapshot's tree to print (e.g. disk/_/percent); the whole message if absent.
    path: Option<String>,
    /// Status publisher endpoint of the service (tcp://HOST:PORT or ipc://PATH).
    #[arg(long = "pub", value_name = "ENDPOINT", default_value = config::DEFAULT_PUB, value_parser = pub_endpoint)]
    publish: String,
    /// Stop after this many messages (default: until interrupted).
    #[arg(long, value_name = "N")]
    count: Option<u64>,
    /// Seconds without a snapshot after which to give up with exit status 3
    /// (default: wait for ever; a warning goes to stderr once the publisher is stale).
    #[arg(long, value_name = "SECONDS", value_parser = seconds_above_zero)]
    timeout: Option<Duration>,
}

pub fn run(args: WatchArgs) -> ExitCode {
    let stop = stop_on_signal();
    let mut feed = match Feed::connect(std::slice::from_ref(&args.publish)) {
        Ok(feed) => feed,
        Err(e) => return fail(e),
    };
    let endpoint = &args.publish;
    let mut printed = 0;
    while !stop.load(Ordering::Relaxed) && args.count.is_none_or(|n| printed < n) {
        let event = match feed.next(Duration::from_millis(100)) {
            Ok(event) => event,
            Err(e) => return fail(e),
        };
        let message = match event {
            Event::Message {
                message, missed, ..
            } => {
                if missed > 0 {
                    let cycle = message.get("id").cloned().unwrap_or_default();
                    eprintln!("odin-status: missed {missed} snapshot(s) before cycle {cycle}");
                }
                message
            }
            Event::Idle => {
                let silent = feed
                    .sources
                    .first()
                    .map(|s| s.staleness.silent(std::time::Instant::now()));
                if let (Some(limit), Some(silent)) = (args.timeout, silent) {
                    if silent >= limit {
                        eprintln!(
                            "odin-status: no snapshot from {endpoint} within {} (--timeout)",
                            seconds(limit)
                        );
                        return ExitCode::from(EXIT_TIMEOUT);
                    }
                }
                continue;
            }
            told => {
                if let Some(line) = feed.tell(&told) {
                    eprintln!("{line}");
                }
                continue;
            }
        };
        let line = match &args.path {
            None => message,
            Some(_) if !is_snapshot(&message) => continue,
            Some(path) => path_line(&message, path, Map::new()),
        };
        if !print_line(&line) {
            break;
        }
        printed += 1;
    }
    ExitCode::SUCCESS
}
