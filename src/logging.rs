//! Logs to stderr, or to a file that SIGHUP reopens, so logrotate can move it
//! away and the service carries on writing to a fresh one.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use tracing_subscriber::fmt::MakeWriter;

static LOG_FILE: OnceLock<LogFile> = OnceLock::new();

struct LogFile {
    path: PathBuf,
    file: Mutex<File>,
}

fn open(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

/// Starts logging; `RUST_LOG` sets the level (info by default).
pub fn init(log_file: Option<&Path>) -> io::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    match log_file {
        None => builder
            .with_writer(io::stderr)
            .with_ansi(io::IsTerminal::is_terminal(&io::stderr()))
            .init(),
        Some(path) => {
            let file = open(path)?;
            let _ = LOG_FILE.set(LogFile {
                path: path.to_path_buf(),
                file: Mutex::new(file),
            });
            builder.with_writer(FileWriter).with_ansi(false).init();
        }
    }
    Ok(())
}

/// Reopens the log file (after logrotate moved it); nothing when logging to stderr.
pub fn reopen() {
    let Some(log) = LOG_FILE.get() else { return };
    match open(&log.path) {
        Ok(fresh) => {
            *log.file.lock().unwrap_or_else(|p| p.into_inner()) = fresh;
            tracing::info!("log file {} reopened", log.path.display());
        }
        Err(e) => tracing::error!("cannot reopen log file {}: {e}", log.path.display()),
    }
}

struct FileWriter;

impl Write for FileWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match LOG_FILE.get() {
            Some(log) => log
                .file
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .write(buf),
            None => io::stderr().write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match LOG_FILE.get() {
            Some(log) => log.file.lock().unwrap_or_else(|p| p.into_inner()).flush(),
            None => io::stderr().flush(),
        }
    }
}

impl<'a> MakeWriter<'a> for FileWriter {
    type Writer = FileWriter;

    fn make_writer(&'a self) -> Self::Writer {
        FileWriter
    }
}
