//! Disk usage of a configured path, as psutil's `disk_usage` computes it, plus
//! inodes, the read-only flag and how fast the file system is filling.
//!
//! `write_rate` is the growth of `used` over the last [`WINDOW`], not over one
//! cycle: at 100 cycles a second a file system's `used` moves in block-sized
//! steps and per-cycle rates would be noise. A sample of `used` is kept at most
//! every [`STEP`], so the history stays a dozen entries at any cycle rate.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::{round1, Presence};
use crate::snapshot::{disk_key, DiskUsage};

/// The span `write_rate` is measured over.
const WINDOW: Duration = Duration::from_secs(10);
/// Samples of `used` closer together than this are not kept.
const STEP: Duration = Duration::from_secs(1);
/// Below this span (just after start) there is no rate yet: 0.0.
const MIN_SPAN: Duration = Duration::from_millis(500);

pub struct DiskWatch {
    path: String,
    key: String,
    presence: Presence,
    growth: Growth,
}

impl DiskWatch {
    pub fn new(path: &str) -> Self {
        DiskWatch {
            path: path.to_string(),
            key: disk_key(path),
            presence: Presence::new("disk", path),
            growth: Growth::default(),
        }
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    /// The path's usage, or `None` while it cannot be read (missing, unmounted).
    pub fn sample(&mut self) -> Option<(String, DiskUsage)> {
        match rustix::fs::statvfs(self.path.as_str()) {
            Ok(st) => {
                self.presence.found();
                let mut u = usage(st.f_blocks, st.f_bfree, st.f_bavail, st.f_frsize);
                // df -i's figures; f_favail equals f_ffree on Linux.
                u.inodes_total = st.f_files;
                u.inodes_free = st.f_ffree;
                u.read_only = st.f_flag.contains(rustix::fs::StatVfsMountFlags::RDONLY);
                // Another file system under the path (a mount or unmount) is a new history.
                let rate = self
                    .growth
                    .rate((st.f_fsid, u.total), Instant::now(), u.used);
                u.write_rate = rate;
                u.time_to_full = (rate > 0.0).then(|| u.free as f64 / rate);
                Some((self.key.clone(), u))
            }
            Err(e) => {
                self.presence.missing(&e);
                self.growth = Growth::default();
                None
            }
        }
    }
}

/// psutil: used counts blocks reserved for root, percent is of what a user can fill.
fn usage(blocks: u64, bfree: u64, bavail: u64, frsize: u64) -> DiskUsage {
    let total = blocks.saturating_mul(frsize);
    let used = blocks.saturating_sub(bfree).saturating_mul(frsize);
    let free = bavail.saturating_mul(frsize);
    let user_total = used.saturating_add(free);
    let percent = if user_total == 0 {
        0.0
    } else {
        round1(used as f64 / user_total as f64 * 100.0)
    };
    DiskUsage {
        total,
        used,
        free,
        percent,
        ..DiskUsage::default()
    }
}

/// Recent samples of `used` for one file system, oldest first.
#[derive(Debug, Default)]
struct Growth {
    /// (fsid, total) of the file system the samples are of.
    fs: Option<(u64, u64)>,
    samples: VecDeque<(Instant, u64)>,
}

impl Growth {
    /// Bytes per second `used` grew from the newest sample at least [`WINDOW`]
    /// old (or the oldest, early on) to `used` now; 0.0 when it did not grow.
    fn rate(&mut self, fs: (u64, u64), now: Instant, used: u64) -> f64 {
        if self.fs != Some(fs) {
            self.fs = Some(fs);
            self.samples.clear();
        }
        let horizon = now.checked_sub(WINDOW);
        while let (Some(h), Some(second)) = (horizon, self.samples.get(1)) {
            if second.0 > h {
                break;
            }
            self.samples.pop_front();
        }
        let rate = match self.samples.front() {
            Some(&(then, before)) => {
                let span = now.saturating_duration_since(then);
                if span < MIN_SPAN || used <= before {
                    0.0
                } else {
                    (used - before) as f64 / span.as_secs_f64()
                }
            }
            None => 0.0,
        };
        let due = self
            .samples
            .back()
            .is_none_or(|&(last, _)| now.saturating_duration_since(last) >= STEP);
        if due {
            self.samples.push_back((now, used));
        }
        rate
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn psutil_formula() {
        // Figures from the odin reference host: total 270553174016, used 12786003968,
        // free 84786745344, percent 13.1, with a 4096-byte fragment.
        let frsize = 4096;
        let blocks = 270553174016 / frsize;
        let bfree = blocks - 12786003968 / frsize;
        let bavail = 84786745344 / frsize;
        let u = usage(blocks, bfree, bavail, frsize);
        assert_eq!(u.total, 270553174016);
        assert_eq!(u.used, 12786003968);
        assert_eq!(u.free, 84786745344);
        assert_eq!(u.percent, 13.1);
    }

    #[test]
    fn empty_filesystem_is_zero_percent() {
        assert_eq!(usage(0, 0, 0, 4096).percent, 0.0);
    }

    #[test]
    fn missing_path_is_absent_then_present() {
        let dir = std::env::temp_dir().join(format!("odin-status-disk-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut watch = DiskWatch::new(dir.to_str().unwrap());
        assert!(watch.sample().is_none());
        std::fs::create_dir_all(&dir).unwrap();
        let (key, u) = watch.sample().unwrap();
        assert_eq!(key, disk_key(dir.to_str().unwrap()));
        assert!(u.total > 0);
        assert!(u.inodes_total >= u.inodes_free);
        assert_eq!(u.time_to_full, None, "no rate on the first sample");
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(watch.sample().is_none());
    }

    const FS: (u64, u64) = (7, 1 << 30);
    const MIB: u64 = 1 << 20;

    /// Feeds `used` at `hz` samples a second for `seconds`, growing by `per_second`.
    fn feed(
        g: &mut Growth,
        t0: Instant,
        from: f64,
        seconds: f64,
        hz: f64,
        start: u64,
        per_second: u64,
    ) -> f64 {
        let mut rate = 0.0;
        let steps = (seconds * hz) as u64;
        for i in 0..=steps {
            let t = from + i as f64 / hz;
            let used = start + (per_second as f64 * (t - from)) as u64;
            rate = g.rate(FS, t0 + Duration::from_secs_f64(t), used);
        }
        rate
    }

    #[test]
    fn first_sample_and_short_spans_have_no_rate() {
        let mut g = Growth::default();
        let t0 = Instant::now();
        assert_eq!(g.rate(FS, t0, 100 * MIB), 0.0);
        assert_eq!(g.rate(FS, t0 + Duration::from_millis(10), 101 * MIB), 0.0);
        let r = g.rate(FS, t0 + Duration::from_secs(1), 101 * MIB);
        assert!((r - MIB as f64).abs() < 1.0, "{r}");
    }

    #[test]
    fn steady_growth_at_100_hz_is_its_rate_and_history_stays_small() {
        let mut g = Growth::default();
        let t0 = Instant::now();
        let r = feed(&mut g, t0, 0.0, 30.0, 100.0, 0, 4 * MIB);
        assert!((r / (4 * MIB) as f64 - 1.0).abs() < 0.01, "{r}");
        assert!(g.samples.len() <= 12, "{}", g.samples.len());
        // The front is at least a window old: the rate is over ~10 s, not one cycle.
        let span = (t0 + Duration::from_secs(30)).duration_since(g.samples[0].0);
        assert!(span >= WINDOW && span < WINDOW + STEP + STEP, "{span:?}");
    }

    #[test]
    fn stopping_decays_to_zero_within_the_window_and_shrinking_is_zero() {
        let mut g = Growth::default();
        let t0 = Instant::now();
        feed(&mut g, t0, 0.0, 20.0, 10.0, 0, 4 * MIB);
        let top = 80 * MIB;
        let r = feed(&mut g, t0, 20.1, 5.0, 10.0, top, 0);
        assert!(r > 0.0 && r < (4 * MIB) as f64, "half a window later: {r}");
        let r = feed(&mut g, t0, 25.2, 7.0, 10.0, top, 0);
        assert_eq!(r, 0.0, "a window after the last write");
        // used going down (files deleted) is not negative growth
        assert_eq!(g.rate(FS, t0 + Duration::from_secs(40), MIB), 0.0);
    }

    #[test]
    fn slow_cycles_use_the_previous_sample() {
        let mut g = Growth::default();
        let t0 = Instant::now();
        assert_eq!(g.rate(FS, t0, 0), 0.0);
        let r = g.rate(FS, t0 + Duration::from_secs(30), 30 * MIB);
        assert!((r - MIB as f64).abs() < 1.0, "{r}");
        let r = g.rate(FS, t0 + Duration::from_secs(60), 90 * MIB);
        assert!((r - 2.0 * MIB as f64).abs() < 1.0, "{r}");
    }

    #[test]
    fn another_file_system_starts_a_new_history() {
        let mut g = Growth::default();
        let t0 = Instant::now();
        feed(&mut g, t0, 0.0, 5.0, 10.0, 0, MIB);
        // Unmounted: the path now shows the larger file system below.
        let r = g.rate((8, 1 << 40), t0 + Duration::from_secs(6), 500 * MIB);
        assert_eq!(r, 0.0);
        assert_eq!(g.samples.len(), 1);
    }
}
