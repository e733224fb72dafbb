//! Disk usage of a configured path, as psutil's `disk_usage` computes it.

use super::{round1, Presence};
use crate::snapshot::{disk_key, DiskUsage};

pub struct DiskWatch {
    path: String,
    key: String,
    presence: Presence,
}

impl DiskWatch {
    pub fn new(path: &str) -> Self {
        DiskWatch {
            path: path.to_string(),
            key: disk_key(path),
            presence: Presence::new("disk", path),
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
                Some((
                    self.key.clone(),
                    usage(st.f_blocks, st.f_bfree, st.f_bavail, st.f_frsize),
                ))
            }
            Err(e) => {
                self.presence.missing(&e);
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
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(watch.sample().is_none());
    }
}
