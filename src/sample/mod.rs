//! Sampling: the only code that reads `/proc` and asks the kernel about the host.
//!
//! A [`Sampler`] is built once from the configuration and called once per cycle;
//! it returns a [`Snapshot`] and keeps what must survive between cycles (CPU
//! baselines, which items were missing, open handles of tracked processes,
//! the lifecycle of each process name) and counts the reads that failed.
//! Every figure follows psutil's formula on Linux, so the numbers agree with
//! what odin-control's adapter would show.
//!
//! Files read every cycle are opened once and read with `pread` from offset 0
//! ([`KeptOpen`]): /proc and /sys generate a file afresh on a read at offset 0,
//! so a steady-state cycle costs reads, not opens.

mod disk;
mod host;
mod lifecycle;
mod network;
mod proc_events;
mod proc_table;
mod process;

use std::fs::File;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::Arc;

use crate::config::ProcessEntry;
use crate::snapshot::{LifeEvent, ProcessEvent, Snapshot};

pub use network::present_interfaces;
pub use process::ProcessScanner;

/// Samples everything configured, once per call.
pub struct Sampler {
    disks: Vec<disk::DiskWatch>,
    interfaces: network::InterfaceWatch,
    interface_count: usize,
    processes: ProcessScanner,
    /// Per configured name, the label that keys its nodes instead of the name.
    labels: Vec<Option<String>>,
    host: host::HostWatch,
    lifecycle: lifecycle::Lifecycle,
    /// Configured disks and interfaces found missing, one per item per cycle.
    missing: u64,
}

impl Sampler {
    pub fn new(disks: &[String], interfaces: &[String], processes: &[ProcessEntry]) -> Self {
        let names = entry_names(processes);
        Sampler {
            disks: disks.iter().map(|d| disk::DiskWatch::new(d)).collect(),
            interfaces: network::InterfaceWatch::new(interfaces),
            interface_count: interfaces.len(),
            processes: ProcessScanner::new(&names),
            labels: entry_labels(processes),
            host: host::HostWatch::new(),
            lifecycle: lifecycle::Lifecycle::new(processes),
            missing: 0,
        }
    }

    /// Watches a new set of items from the next cycle on. Items kept keep
    /// their state (CPU baselines, open handles, missing-item logging).
    pub fn reconfigure(
        &mut self,
        disks: &[String],
        interfaces: &[String],
        processes: &[ProcessEntry],
    ) {
        let mut old = std::mem::take(&mut self.disks);
        self.disks = disks
            .iter()
            .map(|d| match old.iter().position(|w| w.path() == d) {
                Some(i) => old.swap_remove(i),
                None => disk::DiskWatch::new(d),
            })
            .collect();
        self.interfaces.set_names(interfaces);
        self.interface_count = interfaces.len();
        self.processes.set_names(&entry_names(processes));
        self.labels = entry_labels(processes);
        self.lifecycle.set_entries(processes);
    }

    pub fn sample(&mut self) -> Snapshot {
        let disks: Vec<_> = self.disks.iter_mut().filter_map(|d| d.sample()).collect();
        let interfaces = self.interfaces.sample();
        let missing = (self.disks.len() - disks.len())
            + self.interface_count.saturating_sub(interfaces.len());
        self.missing += missing as u64;
        let mut processes = self.processes.sample();
        // The scanner reports by name; the tree and the lifecycle know a
        // labelled name by its label.
        for ((key, _), label) in processes.iter_mut().zip(&self.labels) {
            if let Some(label) = label {
                key.clone_from(label);
            }
        }
        // After the scanner: `processes` counts this cycle's listing of /proc.
        let host = self.host.sample(self.processes.listed());
        let mut events = self.lifecycle.observe(&processes);
        self.add_exit_codes(&mut events);
        let mut process_summary = self.lifecycle.summaries(&processes);
        for ((_, summary), &capped) in process_summary.iter_mut().zip(self.processes.capped()) {
            summary.capped = capped;
        }
        Snapshot {
            disks,
            interfaces,
            process_summary,
            processes,
            events,
            host,
        }
    }

    /// Readable when a watched process has exited; then call [`Sampler::reap_exits`].
    pub fn exit_fd(&self) -> Option<Arc<OwnedFd>> {
        self.lifecycle.exit_fd()
    }

    /// The kernel's event socket, readable when a process was created,
    /// `exec`ed or ended; then call [`Sampler::starts_now`].
    pub fn events_fd(&self) -> Option<OwnedFd> {
        self.processes.events_fd()
    }

    /// Matched processes that have just started (the kernel reported their
    /// `exec`), recorded for the next snapshot, which is the first to show
    /// them: their `started` events, to publish now.
    pub fn starts_now(&mut self) -> Vec<ProcessEvent> {
        match self.processes.starts_now() {
            Some(report) => self.lifecycle.announce(&report),
            None => Vec::new(),
        }
    }

    /// Exits noticed since the last cycle, recorded for the next snapshot.
    pub fn reap_exits(&mut self) -> Vec<ProcessEvent> {
        let mut events = self.lifecycle.reap();
        self.add_exit_codes(&mut events);
        events
    }

    /// Fills in the exit codes the kernel reported (its events are read
    /// first: an exit is announced there before a pidfd wakes).
    fn add_exit_codes(&mut self, events: &mut [ProcessEvent]) {
        if events.iter().any(|e| e.event == LifeEvent::Exited) {
            self.processes.read_events();
        }
        for event in events.iter_mut().filter(|e| e.event == LifeEvent::Exited) {
            event.exit_code = self.processes.exit_status(event.pid);
        }
    }

    /// `reset_statistics`: lifecycle counts and sampling errors from 0 again.
    pub fn reset_statistics(&mut self) {
        self.lifecycle.reset_counts();
        self.missing = 0;
        self.processes.reset_read_errors();
    }

    /// Processes on the host: the last listing of `/proc`, or the table
    /// kept from the kernel's process events.
    pub fn processes_scanned(&self) -> usize {
        self.processes.listed()
    }

    /// PIDs the safety-net listing of `/proc` found the kernel's process
    /// events had missed, since start.
    pub fn process_table_corrections(&self) -> u64 {
        self.processes.table_corrections()
    }

    /// Reads since start that failed: a configured disk or interface missing
    /// (one per item per cycle), a process gone between listing and reading.
    pub fn sampling_errors(&self) -> u64 {
        self.missing + self.processes.read_errors()
    }
}

fn entry_names(entries: &[ProcessEntry]) -> Vec<String> {
    entries.iter().map(|e| e.name.clone()).collect()
}

fn entry_labels(entries: &[ProcessEntry]) -> Vec<Option<String>> {
    entries.iter().map(|e| e.label.clone()).collect()
}

/// Rounds to one decimal as Python's `round(x, 1)` does (correctly rounded from
/// the binary value), which is what psutil applies to its percentages.
pub fn round1(x: f64) -> f64 {
    format!("{x:.1}").parse().unwrap_or(x)
}

/// How a file hands over its content on a read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    /// Generated as one record (`/proc/stat`, `/proc/PID/stat`, a sysfs value):
    /// each read gives all it has left, so a short read is the end.
    OneRecord,
    /// Generated record by record (`/proc/net/dev`): a read stops at a page
    /// boundary between records, so only a read of 0 bytes is the end.
    Records,
}

/// Reads a whole /proc file from offset 0 into `buf`: one `pread` for a file
/// shorter than a page.
pub(crate) fn pread_all(file: &File, buf: &mut Vec<u8>) -> io::Result<()> {
    pread_whole(file, buf, Layout::OneRecord)
}

fn pread_whole(file: &File, buf: &mut Vec<u8>, layout: Layout) -> io::Result<()> {
    buf.clear();
    let mut chunk = [0u8; 4096];
    loop {
        let n = file.read_at(&mut chunk, buf.len() as u64)?;
        buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
        let end = match layout {
            Layout::OneRecord => n < chunk.len(),
            Layout::Records => n == 0,
        };
        if end {
            return Ok(());
        }
    }
}

/// A file read every cycle through a handle opened once. A failed open is
/// tried again at the next read; [`KeptOpen::close`] forgets the handle (the
/// file's object is gone) so the next read opens the path afresh.
#[derive(Debug)]
struct KeptOpen {
    path: PathBuf,
    layout: Layout,
    file: Option<File>,
}

impl KeptOpen {
    fn new(path: impl Into<PathBuf>, layout: Layout) -> Self {
        KeptOpen {
            path: path.into(),
            layout,
            file: None,
        }
    }

    /// Opens the file now unless it is open; says whether it is.
    fn open(&mut self) -> io::Result<()> {
        if self.file.is_none() {
            self.file = Some(File::open(&self.path)?);
        }
        Ok(())
    }

    /// The whole file, read from offset 0 into `buf`.
    fn read(&mut self, buf: &mut Vec<u8>) -> io::Result<()> {
        self.open()?;
        match &self.file {
            Some(file) => pread_whole(file, buf, self.layout),
            None => Err(io::ErrorKind::NotFound.into()),
        }
    }

    fn close(&mut self) {
        self.file = None;
    }

    fn is_open(&self) -> bool {
        self.file.is_some()
    }

    fn path(&self) -> &std::path::Path {
        &self.path
    }
}

/// Remembers whether a configured item was there last cycle, so a missing disk
/// or interface is logged once when it goes and once when it comes back, not
/// every cycle.
#[derive(Debug)]
struct Presence {
    what: &'static str,
    name: String,
    present: Option<bool>,
}

impl Presence {
    fn new(what: &'static str, name: &str) -> Self {
        Presence {
            what,
            name: name.to_string(),
            present: None,
        }
    }

    fn found(&mut self) {
        if self.present == Some(false) {
            tracing::info!("{} {} is back", self.what, self.name);
        }
        self.present = Some(true);
    }

    fn missing(&mut self, reason: &dyn std::fmt::Display) {
        if self.present != Some(false) {
            tracing::warn!(
                "{} {} cannot be read ({reason}); it is left out of the tree and retried every cycle",
                self.what,
                self.name
            );
        }
        self.present = Some(false);
    }
}

#[cfg(test)]
mod tests {
    use super::round1;

    #[test]
    fn rounds_like_python() {
        // Values checked against CPython's round(x, 1).
        assert_eq!(round1(13.14999), 13.1);
        assert_eq!(round1(13.15), 13.2); // 13.15 is stored as 13.1500000000000003552...
        assert_eq!(round1(0.25), 0.2); // an exact tie rounds to even
        assert_eq!(round1(0.35), 0.3); // stored as 0.34999999999999997779...
        assert_eq!(round1(99.96), 100.0);
        assert_eq!(round1(0.0), 0.0);
    }
}
