//! Sampling: the only code that reads `/proc` and asks the kernel about the host.
//!
//! A [`Sampler`] is built once from the configuration and called once per cycle;
//! it returns a [`Snapshot`] and keeps what must survive between cycles (CPU
//! baselines, which items were missing, open handles of tracked processes).
//! Every figure follows psutil's formula on Linux, so the numbers agree with
//! what odin-control's adapter would show.

mod disk;
mod network;
mod process;

use crate::snapshot::Snapshot;

pub use network::present_interfaces;
pub use process::ProcessScanner;

/// Samples everything configured, once per call.
pub struct Sampler {
    disks: Vec<disk::DiskWatch>,
    interfaces: network::InterfaceWatch,
    processes: ProcessScanner,
}

impl Sampler {
    pub fn new(disks: &[String], interfaces: &[String], processes: &[String]) -> Self {
        Sampler {
            disks: disks.iter().map(|d| disk::DiskWatch::new(d)).collect(),
            interfaces: network::InterfaceWatch::new(interfaces),
            processes: ProcessScanner::new(processes),
        }
    }

    /// Watches a new set of items from the next cycle on. Items kept keep
    /// their state (CPU baselines, open handles, missing-item logging).
    pub fn reconfigure(&mut self, disks: &[String], interfaces: &[String], processes: &[String]) {
        let mut old = std::mem::take(&mut self.disks);
        self.disks = disks
            .iter()
            .map(|d| match old.iter().position(|w| w.path() == d) {
                Some(i) => old.swap_remove(i),
                None => disk::DiskWatch::new(d),
            })
            .collect();
        self.interfaces.set_names(interfaces);
        self.processes.set_names(processes);
    }

    pub fn sample(&mut self) -> Snapshot {
        Snapshot {
            disks: self.disks.iter_mut().filter_map(|d| d.sample()).collect(),
            interfaces: self.interfaces.sample(),
            processes: self.processes.sample(),
        }
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
