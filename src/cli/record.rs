//! `odin-status record`: a log recorder that keeps every snapshot it receives.
//!
//! Each received message becomes one line, `{"endpoint", "received",
//! "snapshot"}`, written and flushed before the next is read, so a crash loses
//! nothing already received. A `.gz` file is one gzip member per recorder run,
//! sync-flushed per line: readable up to the last line even if the recorder is
//! killed, and closed properly on SIGINT/SIGTERM.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::Duration;

use clap::Args;
use flate2::write::GzEncoder;
use flate2::Compression;
use serde_json::{json, Value};

use super::{fail, is_snapshot, stop_on_signal, CycleGaps};
use crate::protocol::{decode_published, timestamp_now};
use crate::transport::{self, Subscriber};

#[derive(Debug, Args)]
pub struct RecordArgs {
    /// Status publisher endpoint to follow; repeat for several hosts.
    #[arg(long = "pub", value_name = "ENDPOINT", required = true)]
    publish: Vec<String>,
    /// File to append to, one JSON line per snapshot; a .gz name is gzip-compressed.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// Start a new file (FILE with -1, -2, ... before its extension) past this many MB.
    #[arg(long, value_name = "N")]
    rotate_mb: Option<f64>,
    /// Stop after this many messages (default: until interrupted).
    #[arg(long, value_name = "N")]
    count: Option<u64>,
}

pub fn run(args: RecordArgs) -> ExitCode {
    if let Some(mb) = args.rotate_mb {
        if !(mb.is_finite() && mb > 0.0) {
            return fail(format!("--rotate-mb must be above 0, not {mb}"));
        }
    }
    let stop = stop_on_signal();
    let ctx = transport::Context::new();
    let mut subscribers = Vec::with_capacity(args.publish.len());
    for endpoint in &args.publish {
        match Subscriber::connect(&ctx, endpoint, super::MAX_LINE_BYTES) {
            Ok(sub) => subscribers.push(sub),
            Err(e) => return fail(e),
        }
    }
    let limit = args
        .rotate_mb
        .map(|mb| (mb * 1024.0 * 1024.0) as u64)
        .unwrap_or(u64::MAX);
    let mut file = match RecordFile::open(&args.out, limit) {
        Ok(file) => file,
        Err(e) => {
            return fail(format!(
                "--out {} cannot be opened: {e}",
                args.out.display()
            ))
        }
    };
    let mut gaps = vec![CycleGaps::default(); args.publish.len()];
    let mut recorded: u64 = 0;
    let mut failure = None;
    while !stop.load(Ordering::Relaxed) && args.count.is_none_or(|n| recorded < n) {
        let (index, frame) = match transport::receive_any(&subscribers, Duration::from_millis(100))
        {
            Ok(Some(received)) => received,
            Ok(None) => continue,
            Err(e) => {
                failure = Some(e.to_string());
                break;
            }
        };
        let received = timestamp_now();
        let endpoint = args.publish.get(index).map(String::as_str).unwrap_or("");
        let message = match decode_published(&frame) {
            Ok(m) => m,
            Err(e) => {
                eprintln!("odin-status: skipped a message from {endpoint}: {e}");
                continue;
            }
        };
        if is_snapshot(&message) {
            if let (Some(cycle), Some(g)) = (
                message.get("id").and_then(Value::as_u64),
                gaps.get_mut(index),
            ) {
                g.see(cycle);
            }
        }
        let line = json!({"endpoint": endpoint, "received": received, "snapshot": message});
        if let Err(e) = file.append(&line) {
            failure = Some(format!("cannot write {}: {e}", file.path.display()));
            break;
        }
        recorded += 1;
    }
    let closed = file.close();
    eprintln!(
        "odin-status: recorded {recorded} message(s) to {}",
        args.out.display()
    );
    for (endpoint, g) in args.publish.iter().zip(&gaps) {
        eprintln!(
            "odin-status: {endpoint}: {} snapshot(s) missed (gaps in cycle numbers), {} restart(s)",
            g.missed, g.restarts
        );
    }
    match (failure, closed) {
        (Some(e), _) => fail(e),
        (None, Err(e)) => fail(format!("cannot close {}: {e}", args.out.display())),
        (None, Ok(())) => ExitCode::SUCCESS,
    }
}

/// The file being written, rotated when it passes `limit` bytes.
struct RecordFile {
    base: PathBuf,
    path: PathBuf,
    sink: Sink,
    limit: u64,
}

enum Sink {
    Plain(File),
    Gzip(GzEncoder<Counting>),
}

/// Counts what reaches the file under the gzip encoder, for rotation.
struct Counting {
    file: File,
    written: u64,
}

impl Write for Counting {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl RecordFile {
    fn open(base: &Path, limit: u64) -> io::Result<RecordFile> {
        let path = base.to_path_buf();
        let sink = Sink::open(&path)?;
        Ok(RecordFile {
            base: path.clone(),
            path,
            sink,
            limit,
        })
    }

    fn append(&mut self, line: &Value) -> io::Result<()> {
        let mut text = serde_json::to_vec(line)?;
        text.push(b'\n');
        match &mut self.sink {
            // One write per line: a reader never sees half of one unless the disk fills.
            Sink::Plain(file) => file.write_all(&text)?,
            Sink::Gzip(gz) => {
                gz.write_all(&text)?;
                gz.flush()?;
            }
        }
        if self.sink.size()? > self.limit {
            self.rotate()?;
        }
        Ok(())
    }

    fn rotate(&mut self) -> io::Result<()> {
        let next = (1..)
            .map(|n| numbered(&self.base, n))
            .find(|p| !p.exists())
            .unwrap_or_else(|| self.base.clone());
        let old = std::mem::replace(&mut self.sink, Sink::open(&next)?);
        old.close()?;
        self.path = next;
        Ok(())
    }

    fn close(self) -> io::Result<()> {
        self.sink.close()
    }
}

impl Sink {
    fn open(path: &Path) -> io::Result<Sink> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let gzip = path.extension().is_some_and(|e| e == "gz");
        Ok(if gzip {
            let written = file.metadata()?.len();
            Sink::Gzip(GzEncoder::new(
                Counting { file, written },
                Compression::default(),
            ))
        } else {
            Sink::Plain(file)
        })
    }

    fn size(&self) -> io::Result<u64> {
        match self {
            Sink::Plain(file) => Ok(file.metadata()?.len()),
            Sink::Gzip(gz) => Ok(gz.get_ref().written),
        }
    }

    fn close(self) -> io::Result<()> {
        match self {
            Sink::Plain(file) => file.sync_all(),
            Sink::Gzip(gz) => gz.finish()?.file.sync_all(),
        }
    }
}

/// `run.jsonl.gz` -> `run-3.jsonl.gz`: the number goes before the first dot of the name.
fn numbered(base: &Path, n: u32) -> PathBuf {
    let name = base
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let numbered = match name.find('.').filter(|dot| *dot > 0) {
        Some(dot) => {
            let (stem, extension) = name.split_at(dot);
            format!("{stem}-{n}{extension}")
        }
        None => format!("{name}-{n}"),
    };
    base.with_file_name(numbered)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotated_names() {
        assert_eq!(
            numbered(Path::new("/x/run.jsonl.gz"), 3),
            PathBuf::from("/x/run-3.jsonl.gz")
        );
        assert_eq!(numbered(Path::new("log"), 1), PathBuf::from("log-1"));
        assert_eq!(
            numbered(Path::new(".hidden"), 2),
            PathBuf::from(".hidden-2")
        );
    }
}
