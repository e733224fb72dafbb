//! The host as a whole: uptime, boot time, load, CPU, memory and swap, with
//! psutil's formulas, so the figures agree with `psutil.cpu_percent()`,
//! `virtual_memory()`, `swap_memory()`, `boot_time()` and `getloadavg()`.
//!
//! `/proc/stat`, `/proc/meminfo` and `/proc/uptime` are kept open and read
//! with `pread` each cycle. The host name is one `uname` call and the load
//! averages one `sysinfo` call: glibc's `getloadavg` (so Python's
//! `os.getloadavg`, so psutil's) reads them there, at full precision, where
//! `/proc/loadavg` rounds them to two decimals.
//! A file that cannot be read leaves its leaves out of the cycle (logged once).

use super::{round1, KeptOpen, Layout, Presence};
use crate::snapshot::{HostCpu, HostMemory, HostStats};

pub struct HostWatch {
    stat: Source,
    meminfo: Source,
    uptime: Source,
    buf: Vec<u8>,
    /// Last cycle's CPU times: all CPUs, and each CPU by number.
    cpu_last: Option<CpuTimes>,
    cores_last: Vec<(u32, CpuTimes)>,
}

/// A kept-open /proc file and whether it could be read last time.
struct Source {
    file: KeptOpen,
    presence: Presence,
}

impl Source {
    fn new(path: &'static str) -> Self {
        Source {
            file: KeptOpen::new(path, Layout::OneRecord),
            presence: Presence::new("host file", path),
        }
    }

    /// The file's text, parsed; `None` (logged once) if it cannot be read or parsed.
    fn read<T>(&mut self, buf: &mut Vec<u8>, parse: impl FnOnce(&str) -> Option<T>) -> Option<T> {
        if let Err(e) = self.file.read(buf) {
            self.file.close();
            self.presence.missing(&e);
            return None;
        }
        match std::str::from_utf8(buf).ok().and_then(parse) {
            Some(v) => {
                self.presence.found();
                Some(v)
            }
            None => {
                self.presence.missing(&"its text is not as expected");
                None
            }
        }
    }
}

impl Default for HostWatch {
    fn default() -> Self {
        Self::new()
    }
}

impl HostWatch {
    pub fn new() -> Self {
        HostWatch {
            stat: Source::new("/proc/stat"),
            meminfo: Source::new("/proc/meminfo"),
            uptime: Source::new("/proc/uptime"),
            buf: Vec::with_capacity(4096),
            cpu_last: None,
            cores_last: Vec::new(),
        }
    }

    /// One cycle. `processes` is the number of processes the scanner listed.
    pub fn sample(&mut self, processes: usize) -> HostStats {
        let cpu = match self.stat.read(&mut self.buf, parse_stat) {
            Some(stat) => Some(self.cpu(stat)),
            None => {
                self.cpu_last = None;
                self.cores_last.clear();
                None
            }
        };
        HostStats {
            hostname: rustix::system::uname()
                .nodename()
                .to_string_lossy()
                .into_owned(),
            uptime: self.uptime.read(&mut self.buf, parse_uptime),
            cpu,
            load_average: Some(load_average(&rustix::system::sysinfo().loads)),
            memory: self.meminfo.read(&mut self.buf, parse_meminfo),
            processes: processes as u64,
        }
    }

    /// Percentages since the last cycle; 0.0 for the first cycle and for a
    /// CPU that was not there last cycle (hot-plugged).
    fn cpu(&mut self, stat: Stat) -> HostCpu {
        let percent = self
            .cpu_last
            .map_or(0.0, |before| cpu_percent(&before, &stat.all));
        let percent_per_core = stat
            .cores
            .iter()
            .map(|(cpu, now)| {
                self.cores_last
                    .iter()
                    .find(|(c, _)| c == cpu)
                    .map_or(0.0, |(_, before)| cpu_percent(before, now))
            })
            .collect();
        self.cpu_last = Some(stat.all);
        self.cores_last = stat.cores;
        HostCpu {
            boot_time: stat.boot_time,
            percent,
            percent_per_core,
        }
    }
}

/// A `cpu` line of `/proc/stat` in ticks: user, nice, system, idle, iowait,
/// irq, softirq, steal, guest, guest_nice (missing trailing fields are 0).
type CpuTimes = [u64; 10];

const IDLE: usize = 3;
const IOWAIT: usize = 4;
const GUEST: usize = 8;
const GUEST_NICE: usize = 9;

#[derive(Debug, PartialEq)]
struct Stat {
    all: CpuTimes,
    cores: Vec<(u32, CpuTimes)>,
    boot_time: u64,
}

fn parse_stat(text: &str) -> Option<Stat> {
    let mut all = None;
    let mut cores = Vec::new();
    let mut boot_time = None;
    for line in text.lines() {
        let mut fields = line.split_ascii_whitespace();
        let Some(label) = fields.next() else { continue };
        if label == "btime" {
            boot_time = fields.next()?.parse().ok();
        } else if let Some(rest) = label.strip_prefix("cpu") {
            let mut times: CpuTimes = [0; 10];
            for (slot, field) in times.iter_mut().zip(fields) {
                *slot = field.parse().ok()?;
            }
            if rest.is_empty() {
                all = Some(times);
            } else {
                cores.push((rest.parse().ok()?, times));
            }
        }
    }
    Some(Stat {
        all: all?,
        cores,
        boot_time: boot_time?,
    })
}

/// psutil's `cpu_percent`: busy share of all time between two readings, with
/// each field's delta floored at 0, guest time counted once (it is in user
/// and nice already) and iowait counted as idle; rounded to 1 decimal.
fn cpu_percent(before: &CpuTimes, now: &CpuTimes) -> f64 {
    let mut delta: CpuTimes = [0; 10];
    for ((d, b), n) in delta.iter_mut().zip(before).zip(now) {
        *d = n.saturating_sub(*b);
    }
    let all: u64 = delta.iter().sum::<u64>() - delta[GUEST] - delta[GUEST_NICE];
    let busy = all - delta[IDLE] - delta[IOWAIT];
    if all == 0 {
        return 0.0;
    }
    round1(busy as f64 / all as f64 * 100.0)
}

fn parse_uptime(text: &str) -> Option<f64> {
    text.split_ascii_whitespace().next()?.parse().ok()
}

/// glibc's `getloadavg`: sysinfo's fixed-point loads, 16 fraction bits.
fn load_average(loads: &[std::ffi::c_ulong; 3]) -> [f64; 3] {
    loads.map(|l| l as f64 / 65536.0)
}

/// psutil's `virtual_memory()` (total, available, percent) and
/// `swap_memory()` (total, used, free, percent) from `/proc/meminfo`.
fn parse_meminfo(text: &str) -> Option<HostMemory> {
    let field = |key: &str| -> Option<u64> {
        let line = text.lines().find(|l| {
            l.strip_prefix(key)
                .is_some_and(|rest| rest.starts_with(':'))
        })?;
        let kib: u64 = line
            .get(key.len() + 1..)?
            .split_ascii_whitespace()
            .next()?
            .parse()
            .ok()?;
        Some(kib.saturating_mul(1024))
    };
    let total = field("MemTotal")?;
    let free = field("MemFree")?;
    // MemAvailable is missing before Linux 3.14 and 0 on some buggy kernels:
    // psutil then estimates, and where it cannot, uses free + cached.
    let available = match field("MemAvailable") {
        Some(a) if a > 0 => a,
        _ => free.saturating_add(field("Cached").unwrap_or(0)),
    };
    // More than there is: a container's distorted view; psutil then says free.
    let available = if available > total { free } else { available };
    let swap_total = field("SwapTotal")?;
    let swap_free = field("SwapFree")?;
    let swap_used = swap_total.saturating_sub(swap_free);
    Some(HostMemory {
        total,
        available,
        percent: percent_of(total - available, total),
        swap_total,
        swap_used,
        swap_free,
        swap_percent: percent_of(swap_used, swap_total),
    })
}

/// psutil's `usage_percent(part, whole, round_=1)`: 0.0 of nothing.
fn percent_of(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        return 0.0;
    }
    round1(part as f64 / whole as f64 * 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAT: &str = "\
cpu  100 5 50 1000 20 3 2 1 10 0
cpu0 60 5 30 500 10 2 1 1 10 0
cpu1 40 0 20 500 10 1 1 0 0 0
intr 12345 0 0
ctxt 999
btime 1764141600
processes 4242
procs_running 2
";

    #[test]
    fn parses_stat() {
        let s = parse_stat(STAT).unwrap();
        assert_eq!(s.all, [100, 5, 50, 1000, 20, 3, 2, 1, 10, 0]);
        assert_eq!(s.cores.len(), 2);
        assert_eq!(s.cores[1], (1, [40, 0, 20, 500, 10, 1, 1, 0, 0, 0]));
        assert_eq!(s.boot_time, 1764141600);
        // An old kernel's short cpu line: the missing fields are 0.
        let old = parse_stat("cpu 1 2 3 4\ncpu0 1 2 3 4\nbtime 7\n").unwrap();
        assert_eq!(old.all, [1, 2, 3, 4, 0, 0, 0, 0, 0, 0]);
        assert!(parse_stat("cpu 1 2 3 4\n").is_none(), "no btime");
        assert!(parse_stat("cpu 1 x 3\nbtime 7\n").is_none());
        assert!(parse_stat("").is_none());
    }

    #[test]
    fn cpu_percent_is_psutils() {
        let before = [100, 5, 50, 1000, 20, 3, 2, 1, 10, 0];
        // +30 user (10 of it guest), +10 system, +55 idle, +5 iowait:
        // all = 30+10+55+5 = 100 (guest not counted twice), busy = 40.
        let now = [130, 5, 60, 1055, 25, 3, 2, 1, 20, 0];
        assert_eq!(cpu_percent(&before, &now), 40.0);
        // Checked against psutil's _cpu_times_deltas/_cpu_busy_time in Python:
        // 1 busy tick of 3 -> round(33.333.., 1).
        assert_eq!(cpu_percent(&[0; 10], &[1, 0, 0, 2, 0, 0, 0, 0, 0, 0]), 33.3);
        assert_eq!(cpu_percent(&before, &before), 0.0, "no ticks elapsed");
        // A field that went backwards counts as 0, never negative.
        let mut back = now;
        back[IDLE] = 900;
        assert_eq!(cpu_percent(&before, &back), 88.9); // psutil: 88.9
    }

    #[test]
    fn first_cycle_and_new_cores_are_zero() {
        let mut watch = HostWatch::new();
        let first = watch.cpu(parse_stat(STAT).unwrap());
        assert_eq!(first.percent, 0.0);
        assert_eq!(first.percent_per_core, [0.0, 0.0]);
        let next = "cpu 200 5 50 1100 20 3 2 1 10 0\ncpu0 160 5 30 500 10 2 1 1 10 0\n\
                    cpu2 0 0 0 100 0 0 0 0 0 0\nbtime 1764141600\n";
        let second = watch.cpu(parse_stat(next).unwrap());
        assert_eq!(second.percent, 50.0);
        assert_eq!(
            second.percent_per_core,
            [100.0, 0.0],
            "cpu2 has no baseline"
        );
    }

    #[test]
    fn parses_meminfo_with_psutils_formulas() {
        let text = "MemTotal:       16000000 kB\nMemFree:         2000000 kB\n\
                    MemAvailable:    6000000 kB\nBuffers:          100000 kB\n\
                    Cached:          3000000 kB\nSwapTotal:       4000000 kB\n\
                    SwapFree:        3000000 kB\n";
        let m = parse_meminfo(text).unwrap();
        assert_eq!(m.total, 16000000 * 1024);
        assert_eq!(m.available, 6000000 * 1024);
        assert_eq!(m.percent, 62.5);
        assert_eq!(m.swap_total, 4000000 * 1024);
        assert_eq!(m.swap_used, 1000000 * 1024);
        assert_eq!(m.swap_free, 3000000 * 1024);
        assert_eq!(m.swap_percent, 25.0);

        let no_available = text.replace("MemAvailable:    6000000 kB\n", "");
        assert_eq!(
            parse_meminfo(&no_available).unwrap().available,
            5000000 * 1024
        );
        let no_swap = text
            .replace("SwapTotal:       4000000 kB", "SwapTotal: 0 kB")
            .replace("SwapFree:        3000000 kB", "SwapFree: 0 kB");
        assert_eq!(parse_meminfo(&no_swap).unwrap().swap_percent, 0.0);
        assert!(parse_meminfo("MemTotal: x kB\n").is_none());
    }

    #[test]
    fn load_average_and_uptime() {
        // 3.8681640625 is what os.getloadavg() gave where /proc/loadavg said 3.87.
        assert_eq!(load_average(&[253_504, 65536, 0]), [3.8681640625, 1.0, 0.0]);
        assert_eq!(parse_uptime("12345.67 23456.78\n"), Some(12345.67));
        assert_eq!(parse_uptime(""), None);
    }

    #[test]
    fn samples_this_host() {
        let mut watch = HostWatch::new();
        let h = watch.sample(7);
        assert!(!h.hostname.is_empty());
        assert!(h.uptime.is_some_and(|u| u > 0.0));
        let cpu = h.cpu.unwrap();
        assert!(cpu.boot_time > 1_000_000_000);
        assert!(!cpu.percent_per_core.is_empty());
        assert!(h.memory.is_some_and(|m| m.total >= m.available));
        assert!(h.load_average.is_some());
        assert_eq!(h.processes, 7);
    }
}
