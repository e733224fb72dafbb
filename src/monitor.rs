//! Self-telemetry for the `monitor` block: what the service has done and what
//! its cycles cost, so an operator sees the monitor's own load at a glance.
//!
//! The socket threads only count (atomics, no locks on their paths); the
//! sampling loop times its cycles and reads the counters when it builds a tree.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::protocol::timestamp_now;
use crate::sample::Sampler;
use crate::snapshot::Monitor;

/// Counted by the publisher and control threads.
#[derive(Debug, Default)]
pub struct Counters {
    snapshots_published: AtomicU64,
    requests_served: AtomicU64,
}

impl Counters {
    /// A snapshot handed to the PUB socket.
    pub fn snapshot_published(&self) {
        self.snapshots_published.fetch_add(1, Ordering::Relaxed);
    }

    /// A request answered (ack or nack), its reply handed to the socket.
    pub fn request_served(&self) {
        self.requests_served.fetch_add(1, Ordering::Relaxed);
    }
}

/// The sampling loop's side: the cycle clock and the fixed figures.
pub struct Telemetry {
    counters: Arc<Counters>,
    start_time: String,
    update_interval: f64,
    last_cycle: Duration,
    max_cycle: Duration,
}

impl Telemetry {
    pub fn new(interval: Duration) -> Telemetry {
        Telemetry {
            counters: Arc::new(Counters::default()),
            start_time: timestamp_now(),
            update_interval: interval.as_secs_f64(),
            last_cycle: Duration::ZERO,
            max_cycle: Duration::ZERO,
        }
    }

    /// The counters, for the socket threads.
    /// The interval from now on (a `configure` or SIGHUP changed the rate).
    pub fn set_interval(&mut self, interval: Duration) {
        self.update_interval = interval.as_secs_f64();
    }

    pub fn counters(&self) -> Arc<Counters> {
        Arc::clone(&self.counters)
    }

    /// The wall time of one cycle's sampling and tree building.
    pub fn record_cycle(&mut self, took: Duration) {
        self.last_cycle = took;
        self.max_cycle = self.max_cycle.max(took);
    }

    /// `reset_statistics`: the worst cycle is looked for again from now on.
    pub fn reset_max(&mut self) {
        self.max_cycle = Duration::ZERO;
    }

    /// The `monitor` block of the tree of `cycle`.
    pub fn monitor(&self, cycle: u32, sampler: &Sampler) -> Monitor {
        Monitor {
            version: env!("ODIN_STATUS_FULL_VERSION").to_string(),
            cycle,
            update_interval: self.update_interval,
            last_cycle_duration: self.last_cycle.as_secs_f64(),
            max_cycle_duration: self.max_cycle.as_secs_f64(),
            processes_scanned: sampler.processes_scanned() as u64,
            sampling_errors: sampler.sampling_errors(),
            snapshots_published: self.counters.snapshots_published.load(Ordering::Relaxed),
            requests_served: self.counters.requests_served.load(Ordering::Relaxed),
            log_write_errors: crate::logging::write_errors(),
            start_time: self.start_time.clone(),
            process_table_corrections: sampler.process_table_corrections(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reset_looks_for_the_worst_cycle_again() {
        let mut telemetry = Telemetry::new(Duration::from_secs(1));
        telemetry.record_cycle(Duration::from_millis(30));
        telemetry.record_cycle(Duration::from_millis(2));
        assert_eq!(telemetry.max_cycle, Duration::from_millis(30));
        telemetry.reset_max();
        telemetry.record_cycle(Duration::from_millis(3));
        assert_eq!(telemetry.max_cycle, Duration::from_millis(3));
        assert_eq!(telemetry.last_cycle, Duration::from_millis(3));
    }
}
