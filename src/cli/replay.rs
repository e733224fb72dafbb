//! `odin-status replay`: read a recording back, one line per snapshot, so it
//! can be fed to a plot without writing code.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use flate2::read::MultiGzDecoder;
use serde_json::{Map, Value};

use super::{capped_lines, fail, is_snapshot, path_line, print_line};

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// A file written by `odin-status record` (.gz read as gzip).
    file: PathBuf,
    /// Path in each snapshot's tree to print (e.g. disk/_/percent); whole records if absent.
    path: Option<String>,
}

pub fn run(args: ReplayArgs) -> ExitCode {
    let file = match File::open(&args.file) {
        Ok(f) => f,
        Err(e) => return fail(format!("{} cannot be read: {e}", args.file.display())),
    };
    let gzip = args.file.extension().is_some_and(|e| e == "gz");
    let reader: Box<dyn Read> = if gzip {
        Box::new(MultiGzDecoder::new(BufReader::new(file)))
    } else {
        Box::new(file)
    };
    let shown = args.file.display();
    let mut skipped = 0;
    for (index, line) in capped_lines(BufReader::new(reader)).enumerate() {
        let number = index + 1;
        let line = match line {
            Ok(line) => line,
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                eprintln!("odin-status: {shown} ends early (it was not closed by its recorder); read up to line {}", number - 1);
                break;
            }
            Err(e) => return fail(format!("{shown}: cannot read line {number}: {e}")),
        };
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let record: Value = match serde_json::from_slice(&line) {
            Ok(record @ Value::Object(_)) => record,
            _ => {
                eprintln!("odin-status: {shown}: line {number} is not a record; skipped");
                skipped += 1;
                continue;
            }
        };
        let out = match &args.path {
            None => record,
            Some(path) => {
                let Some(snapshot) = record.get("snapshot").filter(|s| is_snapshot(s)) else {
                    continue;
                };
                let mut context = Map::new();
                for key in ["endpoint", "received"] {
                    context.insert(key.into(), record.get(key).cloned().unwrap_or(Value::Null));
                }
                path_line(snapshot, path, context)
            }
        };
        if !print_line(&out) {
            break;
        }
    }
    if skipped > 0 {
        eprintln!("odin-status: {shown}: {skipped} line(s) skipped");
    }
    ExitCode::SUCCESS
}
