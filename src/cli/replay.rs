//! `odin-status replay`: read recordings back, one line per snapshot, so a
//! value can be followed over a run (`odin-status plot` draws it).

use std::process::ExitCode;

use clap::Args;
use serde_json::{Map, Value};

use super::recording::{self, is_pattern};
use super::{is_snapshot, path_line, print_line};

#[derive(Debug, Args)]
#[command(after_help = "To draw values over time instead, see `odin-status plot --help`.")]
pub struct ReplayArgs {
    /// Files written by `odin-status record` (gzip or not; a rotated set, or a
    /// quoted glob, is read in the order it was written). A last argument that
    /// is no file is taken as PATH.
    #[arg(value_name = "FILE", required = true)]
    files: Vec<String>,
    /// Path in each snapshot's tree to print (e.g. disk/_/percent); whole records if absent.
    #[arg(long)]
    path: Option<String>,
}

pub fn run(mut args: ReplayArgs) -> ExitCode {
    // `replay FILE PATH`, as before FILE... existed: a trailing argument that
    // cannot be a file is the path.
    if args.path.is_none() && args.files.len() > 1 {
        if let Some(last) = args.files.last() {
            if !is_pattern(last) && !std::path::Path::new(last).exists() {
                args.path = args.files.pop();
            }
        }
    }
    let files = match recording::files(&args.files) {
        Ok(files) => files,
        Err(f) => return failed(f),
    };
    let result = recording::read(&files, |record| {
        let out = match &args.path {
            None => record,
            Some(path) => {
                let Some(snapshot) = record.get("snapshot").filter(|s| is_snapshot(s)) else {
                    return true;
                };
                let mut context = Map::new();
                for key in ["endpoint", "received"] {
                    context.insert(key.into(), record.get(key).cloned().unwrap_or(Value::Null));
                }
                path_line(snapshot, path, context)
            }
        };
        print_line(&out)
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => failed(f),
    }
}

fn failed(f: recording::Failure) -> ExitCode {
    eprintln!("odin-status: {}", f.message);
    ExitCode::from(f.code)
}
