//! Logs to stderr, or to a file that SIGHUP reopens, so logrotate can move it
//! away and the service carries on writing to a fresh one.
//!
//! Log lines carry text from outside (disk paths, process names, configure
//! params, error messages), so every line passes one gate before it is
//! written: control characters are escaped (a `\n` in a name cannot forge a
//! line), a line is cut at [`MAX_LINE_BYTES`], at most [`LINES_PER_WINDOW`]
//! lines are written per [`WINDOW`] (then one line says how many were
//! dropped), and a failed write (a full disk) is counted for `monitor`.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The longest log line written, newline included; longer ones are cut.
pub const MAX_LINE_BYTES: usize = 2048;
/// Lines written per window; the rest are counted and dropped.
pub const LINES_PER_WINDOW: u32 = 300;
/// The rate limit's window.
pub const WINDOW: Duration = Duration::from_secs(60);

/// Log lines that could not be written (disk full, stderr closed).
static WRITE_ERRORS: AtomicU64 = AtomicU64::new(0);

/// How many log lines could not be written since start.
pub fn write_errors() -> u64 {
    WRITE_ERRORS.load(Ordering::Relaxed)
}

/// The rate limit's state, shared by every writer.
static BUDGET: Mutex<Budget> = Mutex::new(Budget {
    window_start: None,
    written: 0,
    dropped: 0,
});

struct Budget {
    window_start: Option<Instant>,
    written: u32,
    dropped: u64,
}

impl Budget {
    /// Whether a line may go out now, and how many were dropped before it
    /// (to be told first).
    fn admit(&mut self, now: Instant) -> Option<u64> {
        let fresh = match self.window_start {
            Some(start) => now.duration_since(start) >= WINDOW,
            None => true,
        };
        if fresh {
            self.window_start = Some(now);
            self.written = 0;
        }
        if self.written >= LINES_PER_WINDOW {
            self.dropped += 1;
            return None;
        }
        self.written += 1;
        Some(std::mem::take(&mut self.dropped))
    }
}

/// One formatted event made safe to write: control characters escaped, the
/// line cut to [`MAX_LINE_BYTES`], one newline at the end.
pub fn sanitize(event: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(event);
    let text = text.strip_suffix('\n').unwrap_or(&text);
    let mut line = String::with_capacity(text.len().min(MAX_LINE_BYTES) + 1);
    const CUT: &str = " [cut]";
    for c in text.chars() {
        let piece = match c {
            '\n' => "\\n".to_string(),
            '\r' => "\\r".to_string(),
            '\t' => "\\t".to_string(),
            c if c.is_control() => format!("\\u{{{:x}}}", c as u32),
            c => c.to_string(),
        };
        if line.len() + piece.len() > MAX_LINE_BYTES - 1 - CUT.len() {
            line.push_str(CUT);
            break;
        }
        line.push_str(&piece);
    }
    line.push('\n');
    line.into_bytes()
}

/// A writer behind the gate. Each `write` is one event (tracing formats an
/// event whole, then writes it at once).
struct Gated<W: Write>(W);

impl<W: Write> Write for Gated<W> {
    fn write(&mut self, event: &[u8]) -> io::Result<usize> {
        let admitted = BUDGET
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .admit(Instant::now());
        let Some(dropped) = admitted else {
            return Ok(event.len());
        };
        let mut out = Vec::new();
        if dropped > 0 {
            let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.6fZ");
            out.extend_from_slice(
                format!(
                    "{now}  WARN {dropped} log lines were dropped (at most {LINES_PER_WINDOW} are written a minute)\n"
                )
                .as_bytes(),
            );
        }
        out.extend(sanitize(event));
        if self
            .0
            .write_all(&out)
            .and_then(|()| self.0.flush())
            .is_err()
        {
            WRITE_ERRORS.fetch_add(1, Ordering::Relaxed);
        }
        // Consumed either way: a failed log line must not fail the caller.
        Ok(event.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

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
    // No colours: the gate escapes every control character, ESC included.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(false);
    match log_file {
        None => builder.with_writer(|| Gated(io::stderr())).init(),
        Some(path) => {
            let file = open(path)?;
            let _ = LOG_FILE.set(LogFile {
                path: path.to_path_buf(),
                file: Mutex::new(file),
            });
            builder.with_writer(|| Gated(FileWriter)).init();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_text_cannot_forge_or_flood_lines() {
        let out = sanitize(b"configure: disk /a\n2026-01-01 INFO forged\0\x1b[31m\n");
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "configure: disk /a\\n2026-01-01 INFO forged\\u{0}\\u{1b}[31m\n"
        );
        let long = sanitize("é".repeat(10_000).as_bytes());
        assert!(long.len() <= MAX_LINE_BYTES, "{}", long.len());
        assert!(String::from_utf8(long).unwrap().ends_with(" [cut]\n"));
    }

    #[test]
    fn repeats_beyond_the_budget_are_counted_then_told() {
        let mut budget = Budget {
            window_start: None,
            written: 0,
            dropped: 0,
        };
        let t0 = Instant::now();
        for _ in 0..LINES_PER_WINDOW {
            assert_eq!(budget.admit(t0), Some(0));
        }
        assert_eq!(budget.admit(t0), None);
        assert_eq!(budget.admit(t0 + Duration::from_secs(1)), None);
        assert_eq!(budget.admit(t0 + WINDOW), Some(2));
        assert_eq!(budget.admit(t0 + WINDOW), Some(0));
    }
}
