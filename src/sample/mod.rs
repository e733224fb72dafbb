//! Sampling: the only code that reads `/proc` and asks the kernel about the host.
//!
//! A [`Sampler`] is built once from the configuration and called once per cycle;
//! it returns a [`Snapshot`] and keeps what must survive between cycles (CPU
//! baselines, which items were missing, open handles of tracked processes,
//! the lifecycle of each process name) and counts the reads that failed.
//! Every figure follows psutil's formula on Linux, so the numbers agree with
//! what odin-control's adapter would show.

mod disk;
mod lifecycle;
mod network;
mod process;

use std::os::fd::OwnedFd;
use std::sync::Arc;

use crate::config::ProcessEntry;
use crate::snapshot::{ProcessEvent, Snapshot};

pub use network::present_interfaces;
pub use process::ProcessScanner;

/// Samples everything configured, once per call.
pub struct Sampler {
    disks: Vec<disk::DiskWatch>,
    interfaces: network::InterfaceWatch,
    interface_count: usize,
    processes: ProcessScanner,
    lifecycle: lifecycle::Lifecycle,
    /// Configured disks and interfaces found missing, one per item per cycle.
    missing: u64,
}

impl Sampler {
    pub fn new(disks: &[String], interfaces: &[String], processes: &[ProcessEntry]) -> Self {
        let names: Vec<String> = processes.iter().map(|p| p.name.clone()).collect();
        Sampler {
            disks: disks.iter().map(|d| disk::DiskWatch::new(d)).collect(),
            interfaces: network::InterfaceWatch::new(interfaces),
            interface_count: interfaces.len(),
            processes: ProcessScanner::new(&names),
            lifecycle: lifecycle::Lifecycle::new(processes),
            missing: 0,
        }
    }

    pub fn sample(&mut self) -> Snapshot {
        let disks: Vec<_> = self.disks.iter_mut().filter_map(|d| d.sample()).collect();
        let interfaces = self.interfaces.sample();
        let missing = (self.disks.len() - disks.len())
            + self.interface_count.saturating_sub(interfaces.len());
        self.missing += missing as u64;
        let processes = self.processes.sample();
        let events = self.lifecycle.observe(&processes);
        Snapshot {
            disks,
            interfaces,
            process_summary: self.lifecycle.summaries(&processes),
            processes,
            events,
        }
    }

    /// Readable when a watched process has exited; then call [`Sampler::reap_exits`].
    pub fn exit_fd(&self) -> Option<Arc<OwnedFd>> {
        self.lifecycle.exit_fd()
    }

    /// Exits noticed since the last cycle, recorded for the next snapshot.
    pub fn reap_exits(&mut self) -> Vec<ProcessEvent> {
        self.lifecycle.reap()
    }

    /// Processes in the last listing of `/proc`.
    pub fn processes_scanned(&self) -> usize {
        self.processes.listed()
    }

    /// Reads since start that failed: a configured disk or interface missing
    /// (one per item per cycle), a process gone between listing and reading.
    pub fn sampling_errors(&self) -> u64 {
        self.missing + self.processes.read_errors()
    }
}

/// Rounds to one decimal as Python's `round(x, 1)` does (correctly rounded from
/// the binary value), which is what psutil applies to its percentages.
pub fn round1(x: f64) -> f64 {
    format!("{x:.1}").parse().unwrap_or(x)
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
