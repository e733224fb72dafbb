//! Processes matched by configured names, with odin-control's rules and
//! psutil's figures.
//!
//! Matching follows odin's `find_processes`: a configured name matches a process
//! when it is a substring of the process name (psutil's rule, which extends the
//! 15-character `comm` from the command line) or of any single argument.
//! Zombie, stopped and dead processes are skipped, and a matched process with
//! children is reported through its lowest-PID live child, so a `.sh` wrapper
//! stands for the program it launched.
//!
//! The scanner keeps two tables between cycles:
//! - `known`: what was read of each PID when first seen (name, arguments,
//!   parent, start time). A process is read once, not every cycle; one that was
//!   very young when read (it may not have `exec`ed yet) is read again until it
//!   has settled. A PID reused by a new process is noticed without reading
//!   anything: its `/proc` directory comes back from the listing with a new
//!   inode number.
//! - `tracked`: the processes whose figures are read every cycle (the matches and
//!   their children), with their `stat`/`statm` files kept open and read with
//!   `pread`, their `fd` directory kept open and listed again each cycle for
//!   `num_fds`, and the CPU baseline for `cpu_percent`.
//!
//! A process can vanish at any point of this; each read that fails leaves that
//! process out of this cycle and nothing else.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::time::Instant;

use procfs::Current;

use super::round1;
use crate::snapshot::ProcessStats;

/// A process read within this many seconds of its start may still `exec`;
/// it is read again each cycle until it is older.
const SETTLE_SECONDS: f64 = 1.0;

/// psutil's `comm` limit: names this long may be truncated.
const COMM_LEN: usize = 15;

pub struct ProcessScanner {
    names: Vec<String>,
    own_pid: i32,
    ticks_per_second: f64,
    page_size: u64,
    mem_total: u64,
    known: HashMap<i32, Identity>,
    tracked: HashMap<i32, Tracked>,
    cycle: u64,
    listed: usize,
    read_errors: u64,
    buf: Vec<u8>,
}

/// What identifies a process and what it is matched on, read once.
#[derive(Debug, Clone, PartialEq)]
struct Identity {
    /// Inode of `/proc/PID` when read; a new one means (most likely) a new process.
    inode: u64,
    start_time: u64,
    comm: Vec<u8>,
    /// psutil's `name()`: `comm`, extended from the command line when truncated.
    name: String,
    cmdline: Vec<String>,
    ppid: i32,
    settled: bool,
    /// Indices of the configured names this process matches, worked out once.
    matched: Vec<usize>,
}

/// A process read every cycle.
struct Tracked {
    start_time: u64,
    stat: Option<File>,
    statm: Option<File>,
    fds: FdDir,
    cpu_baseline: Option<(u64, Instant)>,
    last_cycle: u64,
}

/// `/proc/PID/fd` of a tracked process, opened once and rewound each cycle.
enum FdDir {
    Unopened,
    Open(rustix::fs::Dir),
    /// Not ours to list (another user's process and the service is not root):
    /// not tried again, as psutil's `num_fds()` raises AccessDenied every time.
    Denied,
}

/// The fields of `/proc/PID/stat` this module uses.
#[derive(Debug, Clone, PartialEq)]
struct Stat {
    comm: Vec<u8>,
    state: u8,
    ppid: i32,
    cpu_ticks: u64,
    num_threads: u64,
    start_time: u64,
}

impl Stat {
    /// odin skips zombie, stopped and dead processes.
    fn is_live(&self) -> bool {
        !matches!(self.state, b'Z' | b'T' | b'X' | b'x')
    }
}

impl ProcessScanner {
    pub fn new(names: &[String]) -> Self {
        let mem_total = procfs::Meminfo::current()
            .map(|m| m.mem_total)
            .unwrap_or_else(|e| {
                tracing::warn!("cannot read /proc/meminfo ({e}); memory_percent will be 0");
                0
            });
        raise_open_file_limit();
        ProcessScanner {
            names: names.to_vec(),
            own_pid: std::process::id() as i32,
            ticks_per_second: procfs::ticks_per_second() as f64,
            page_size: procfs::page_size(),
            mem_total,
            known: HashMap::new(),
            tracked: HashMap::new(),
            cycle: 0,
            listed: 0,
            read_errors: 0,
            buf: Vec::with_capacity(4096),
        }
    }

    /// How many processes the last cycle's listing of `/proc` found.
    pub fn listed(&self) -> usize {
        self.listed
    }

    /// Reads since start that found their process gone between the listing
    /// of `/proc` and the read (or its figures unreadable).
    pub fn read_errors(&self) -> u64 {
        self.read_errors
    }

    /// One cycle: every configured name with the processes reported for it.
    pub fn sample(&mut self) -> Vec<(String, Vec<ProcessStats>)> {
        self.cycle += 1;
        let listed = list_pids();
        self.listed = listed.len();
        if self.names.is_empty() {
            return Vec::new();
        }
        self.refresh_known(&listed);
        let pids: Vec<i32> = listed.iter().map(|(pid, _)| *pid).collect();

        // One pass over the listing: children of every known process and the
        // matches of every name, lowest PID first (pids is sorted).
        let mut children: HashMap<i32, Vec<i32>> = HashMap::new();
        let mut matched: Vec<Vec<i32>> = vec![Vec::new(); self.names.len()];
        for pid in &pids {
            if let Some(id) = self.known.get(pid) {
                children.entry(id.ppid).or_default().push(*pid);
                if *pid != self.own_pid {
                    for &index in &id.matched {
                        if let Some(list) = matched.get_mut(index) {
                            list.push(*pid);
                        }
                    }
                }
            }
        }

        // Fresh stat of each process looked at this cycle, read at most once.
        let mut fresh: HashMap<i32, Option<(Stat, Instant)>> = HashMap::new();
        let mut result = Vec::with_capacity(self.names.len());
        for (index, matched) in matched.into_iter().enumerate() {
            let mut reported: Vec<i32> = Vec::new();
            for pid in matched {
                // The fresh read may have found a new process under this PID.
                if !self.is_live(pid, &mut fresh)
                    || !self
                        .known
                        .get(&pid)
                        .is_some_and(|id| id.matched.contains(&index))
                {
                    continue;
                }
                let child = children.get(&pid).and_then(|kids| {
                    kids.iter().copied().find(|kid| {
                        *kid != self.own_pid
                            && self.is_live(*kid, &mut fresh)
                            && fresh
                                .get(kid)
                                .and_then(Option::as_ref)
                                .is_some_and(|(st, _)| st.ppid == pid)
                    })
                });
                let target = child.unwrap_or(pid);
                if !reported.contains(&target) {
                    reported.push(target);
                }
            }
            let stats = reported
                .into_iter()
                .filter_map(|pid| {
                    let (stat, at) = fresh.get(&pid).cloned().flatten()?;
                    self.figures(pid, &stat, at)
                })
                .collect();
            let name = self.names.get(index).cloned().unwrap_or_default();
            result.push((name, stats));
        }

        let cycle = self.cycle;
        self.tracked.retain(|_, t| t.last_cycle == cycle);
        result
    }

    /// Forgets PIDs that are gone and reads the new (or not yet settled) ones.
    fn refresh_known(&mut self, listed: &[(i32, u64)]) {
        let present: HashSet<i32> = listed.iter().map(|(pid, _)| *pid).collect();
        self.known.retain(|pid, _| present.contains(pid));
        self.tracked.retain(|pid, _| present.contains(pid));
        let mut uptime = None;
        for &(pid, inode) in listed {
            if self
                .known
                .get(&pid)
                .is_some_and(|id| id.settled && id.inode == inode)
            {
                continue;
            }
            let uptime = *uptime.get_or_insert_with(read_uptime);
            match self.read_identity(pid, inode, uptime) {
                Some(id) => {
                    self.known.insert(pid, id);
                }
                None => {
                    self.read_errors += 1;
                    self.known.remove(&pid);
                }
            }
        }
    }

    fn read_identity(&mut self, pid: i32, inode: u64, uptime: Option<f64>) -> Option<Identity> {
        let stat = read_stat_path(pid, &mut self.buf)?;
        let raw_cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        let cmdline = parse_cmdline(&raw_cmdline);
        let age = uptime.map(|up| up - stat.start_time as f64 / self.ticks_per_second);
        let mut id = Identity {
            inode,
            name: process_name(&stat.comm, &cmdline),
            comm: stat.comm,
            cmdline,
            ppid: stat.ppid,
            start_time: stat.start_time,
            settled: age.is_some_and(|age| age >= SETTLE_SECONDS),
            matched: Vec::new(),
        };
        id.matched = (self.names.iter().enumerate())
            .filter(|(_, name)| id.matches(name))
            .map(|(index, _)| index)
            .collect();
        Some(id)
    }

    /// Reads the process's stat (once per cycle) and says whether it is live.
    fn is_live(&mut self, pid: i32, fresh: &mut HashMap<i32, Option<(Stat, Instant)>>) -> bool {
        if let Entry::Vacant(slot) = fresh.entry(pid) {
            slot.insert(self.read_current(pid));
        }
        fresh
            .get(&pid)
            .and_then(Option::as_ref)
            .is_some_and(|(stat, _)| stat.is_live())
    }

    /// This cycle's stat of a process. Notices a reused PID or an `exec` and
    /// reads the identity again then.
    fn read_current(&mut self, pid: i32) -> Option<(Stat, Instant)> {
        let read = self.read_tracked_stat(pid)?;
        let (stale, inode) = match self.known.get(&pid) {
            Some(id) => (
                id.start_time != read.0.start_time || id.comm != read.0.comm,
                id.inode,
            ),
            None => (true, 0),
        };
        if stale {
            match self.read_identity(pid, inode, read_uptime()) {
                Some(id) => {
                    self.known.insert(pid, id);
                }
                None => {
                    self.known.remove(&pid);
                }
            }
        }
        Some(read)
    }

    /// Reads `stat` through the kept-open handle, opening it on first use.
    fn read_tracked_stat(&mut self, pid: i32) -> Option<(Stat, Instant)> {
        let cycle = self.cycle;
        let tracked = self.tracked.entry(pid).or_insert_with(|| Tracked {
            start_time: 0,
            stat: None,
            statm: None,
            fds: FdDir::Unopened,
            cpu_baseline: None,
            last_cycle: cycle,
        });
        tracked.last_cycle = cycle;
        let read = read_kept_open(&mut tracked.stat, pid, "stat", &mut self.buf)
            .and_then(|_| parse_stat(&self.buf));
        let at = Instant::now();
        match read {
            Some(stat) if tracked.stat.is_some() && stat.start_time == tracked.start_time => {
                Some((stat, at))
            }
            Some(stat) => {
                // First read, or a new process under this PID: start afresh.
                tracked.start_time = stat.start_time;
                tracked.cpu_baseline = None;
                tracked.statm = None;
                tracked.fds = FdDir::Unopened;
                Some((stat, at))
            }
            None => {
                self.read_errors += 1;
                self.tracked.remove(&pid);
                None
            }
        }
    }

    /// The reported figures of one process, or `None` if it vanished meanwhile.
    fn figures(&mut self, pid: i32, stat: &Stat, at: Instant) -> Option<ProcessStats> {
        let tracked = self.tracked.get_mut(&pid)?;
        let statm = read_kept_open(&mut tracked.statm, pid, "statm", &mut self.buf)
            .and_then(|_| parse_statm(&self.buf));
        let Some((size, resident, shared)) = statm else {
            self.read_errors += 1;
            self.tracked.remove(&pid);
            return None;
        };
        let Some(affinity) = read_affinity(pid) else {
            self.read_errors += 1;
            return None;
        };
        let num_fds = count_fds(&mut tracked.fds, pid);
        let cpu_percent = match tracked.cpu_baseline {
            Some((ticks, then)) => cpu_percent(
                stat.cpu_ticks.saturating_sub(ticks),
                at.duration_since(then).as_secs_f64(),
                self.ticks_per_second,
            ),
            None => 0.0,
        };
        tracked.cpu_baseline = Some((stat.cpu_ticks, at));
        let rss = resident.saturating_mul(self.page_size);
        Some(ProcessStats {
            pid,
            cpu_percent,
            cpu_affinity: affinity,
            memory_percent: if self.mem_total == 0 {
                0.0
            } else {
                rss as f64 / self.mem_total as f64 * 100.0
            },
            memory_rss: rss,
            memory_vms: size.saturating_mul(self.page_size),
            memory_shared: shared.saturating_mul(self.page_size),
            start_time: stat.start_time,
            num_threads: stat.num_threads,
            num_fds,
        })
    }
}

/// The start time (clock ticks after boot) of the process now under `pid`,
/// read afresh; `None` if there is none or it has ended (zombie or dead).
pub fn start_time_unless_ended(pid: i32) -> Option<u64> {
    read_stat_path(pid, &mut Vec::new())
        .filter(|stat| !matches!(stat.state, b'Z' | b'X' | b'x'))
        .map(|stat| stat.start_time)
}

/// psutil's `num_fds()`: the entries of `/proc/PID/fd`, listed through the
/// kept-open directory (a rewind and `getdents`, no `openat`, after the first
/// cycle). `None` when it cannot be listed.
fn count_fds(dir: &mut FdDir, pid: i32) -> Option<u64> {
    if let FdDir::Unopened = dir {
        *dir = match File::open(format!("/proc/{pid}/fd")) {
            Ok(file) => match rustix::fs::Dir::new(std::os::fd::OwnedFd::from(file)) {
                Ok(d) => FdDir::Open(d),
                Err(_) => FdDir::Denied,
            },
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => FdDir::Denied,
            Err(_) => return None,
        };
    }
    let FdDir::Open(d) = dir else {
        return None;
    };
    d.rewind();
    let mut count = 0;
    while let Some(entry) = d.read() {
        let name = entry.ok()?;
        if !matches!(name.file_name().to_bytes(), b"." | b"..") {
            count += 1;
        }
    }
    Some(count)
}

impl Identity {
    fn matches(&self, name: &str) -> bool {
        self.name.contains(name) || self.cmdline.iter().any(|arg| arg.contains(name))
    }
}

/// psutil's `cpu_percent`: CPU seconds used over wall seconds elapsed, as a
/// percentage of one CPU, rounded to one decimal.
fn cpu_percent(delta_ticks: u64, delta_seconds: f64, ticks_per_second: f64) -> f64 {
    if delta_seconds <= 0.0 || ticks_per_second <= 0.0 {
        return 0.0;
    }
    round1(delta_ticks as f64 / ticks_per_second / delta_seconds * 100.0)
}

/// psutil's `name()`: `comm`, or the command's basename when `comm` was cut
/// at 15 characters and the basename extends it.
fn process_name(comm: &[u8], cmdline: &[String]) -> String {
    let comm = String::from_utf8_lossy(comm).into_owned();
    if comm.len() >= COMM_LEN {
        if let Some(first) = cmdline.first() {
            let base = first.rsplit('/').next().unwrap_or(first);
            if base.starts_with(&comm) {
                return base.to_string();
            }
        }
    }
    comm
}

/// psutil's `cmdline()`: NUL-separated arguments, keeping empty ones; a process
/// that rewrote its command line with spaces is split on spaces.
fn parse_cmdline(raw: &[u8]) -> Vec<String> {
    if raw.is_empty() {
        return Vec::new();
    }
    let text = String::from_utf8_lossy(raw);
    let sep = if text.ends_with('\0') { '\0' } else { ' ' };
    let text = text.strip_suffix(sep).unwrap_or(&text);
    let args: Vec<String> = text.split(sep).map(str::to_owned).collect();
    if sep == '\0' && args.len() == 1 && text.contains(' ') {
        return text.split(' ').map(str::to_owned).collect();
    }
    args
}

/// Parses `/proc/PID/stat`. The command name may hold spaces and parentheses,
/// so the fields after it are found from the last `)`.
fn parse_stat(data: &[u8]) -> Option<Stat> {
    let open = data.iter().position(|&b| b == b'(')?;
    let close = data.iter().rposition(|&b| b == b')')?;
    let comm = data.get(open + 1..close)?.to_vec();
    let rest = std::str::from_utf8(data.get(close + 1..)?).ok()?;
    let mut fields = rest.split_ascii_whitespace();
    // Fields are numbered from 1 in proc(5); `rest` starts at field 3 (state).
    let state = *fields.next()?.as_bytes().first()?;
    let ppid = fields.next()?.parse().ok()?;
    let mut fields = fields.skip(9); // fields 5-13
    let utime: u64 = fields.next()?.parse().ok()?; // 14
    let stime: u64 = fields.next()?.parse().ok()?; // 15
    let num_threads = fields.nth(4)?.parse().ok()?; // 20
    let start_time = fields.nth(1)?.parse().ok()?; // 22
    Some(Stat {
        comm,
        state,
        ppid,
        cpu_ticks: utime.saturating_add(stime),
        num_threads,
        start_time,
    })
}

/// `/proc/PID/statm`: size, resident and shared, in pages.
fn parse_statm(data: &[u8]) -> Option<(u64, u64, u64)> {
    let text = std::str::from_utf8(data).ok()?;
    let mut fields = text.split_ascii_whitespace().map(|f| f.parse::<u64>().ok());
    Some((fields.next()??, fields.next()??, fields.next()??))
}

fn read_stat_path(pid: i32, buf: &mut Vec<u8>) -> Option<Stat> {
    let file = open_proc(pid, "stat")?;
    pread_all(&file, buf).ok()?;
    parse_stat(buf)
}

/// Reads a /proc file of `pid` through its kept-open handle, opening it on
/// first use; `None` once the process is gone.
fn read_kept_open(
    handle: &mut Option<File>,
    pid: i32,
    file: &str,
    buf: &mut Vec<u8>,
) -> Option<()> {
    if handle.is_none() {
        *handle = open_proc(pid, file);
    }
    pread_all(handle.as_ref()?, buf).ok()
}

fn open_proc(pid: i32, file: &str) -> Option<File> {
    File::open(format!("/proc/{pid}/{file}")).ok()
}

/// Reads a whole /proc file from offset 0 into `buf`: one `pread` for a file
/// shorter than a page.
fn pread_all(file: &File, buf: &mut Vec<u8>) -> io::Result<()> {
    buf.clear();
    let mut chunk = [0u8; 4096];
    loop {
        let n = file.read_at(&mut chunk, buf.len() as u64)?;
        buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
        // /proc files hand over everything they have in one read: a short
        // read is the end, so no second pread just to see 0.
        if n < chunk.len() {
            return Ok(());
        }
    }
}

/// The PIDs in `/proc` with their directories' inode numbers, ascending.
fn list_pids() -> Vec<(i32, u64)> {
    use std::os::unix::fs::DirEntryExt;
    let mut pids: Vec<(i32, u64)> = match std::fs::read_dir("/proc") {
        Ok(dir) => dir
            .filter_map(|entry| {
                let entry = entry.ok()?;
                let pid: i32 = entry.file_name().to_str()?.parse().ok()?;
                (pid > 0).then(|| (pid, entry.ino()))
            })
            .collect(),
        Err(e) => {
            tracing::error!("cannot list /proc: {e}");
            Vec::new()
        }
    };
    pids.sort_unstable();
    pids
}

fn read_uptime() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/uptime").ok()?;
    text.split_ascii_whitespace().next()?.parse().ok()
}

/// The CPUs a process may run on, ascending, as psutil's `cpu_affinity()`.
fn read_affinity(pid: i32) -> Option<Vec<u64>> {
    let pid = rustix::process::Pid::from_raw(pid)?;
    let set = rustix::thread::sched_getaffinity(Some(pid)).ok()?;
    Some(
        (0..rustix::thread::CpuSet::MAX_CPU)
            .filter(|cpu| set.is_set(*cpu))
            .map(|cpu| cpu as u64)
            .collect(),
    )
}

/// Kept-open handles need four descriptors per tracked process (stat, statm,
/// fd directory, and the lifecycle's pidfd); ask for the
/// hard limit so thousands of matches do not run out. Failing is harmless:
/// a handle that cannot be opened just leaves that process out.
fn raise_open_file_limit() {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        limit.current = limit.maximum;
        if let Err(e) = setrlimit(Resource::Nofile, limit) {
            tracing::debug!("cannot raise the open file limit: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_awkward_comm() {
        let line = b"4242 (a) b (c)) S 1 4242 4242 0 -1 4194560 100 0 0 0 150 25 0 0 20 0 3 0 98765 1000 10 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n";
        let st = parse_stat(line).unwrap();
        assert_eq!(st.comm, b"a) b (c)");
        assert_eq!(st.state, b'S');
        assert_eq!(st.ppid, 1);
        assert_eq!(st.cpu_ticks, 175);
        assert_eq!(st.num_threads, 3);
        assert_eq!(st.start_time, 98765);
    }

    #[test]
    fn truncated_stat_is_none() {
        assert!(parse_stat(b"12 (x) S 1 2 3").is_none());
        assert!(parse_stat(b"").is_none());
        assert!(parse_stat(b"12 x S").is_none());
    }

    #[test]
    fn statm_pages() {
        assert_eq!(
            parse_statm(b"730 447 420 5 0 104 0\n"),
            Some((730, 447, 420))
        );
        assert_eq!(parse_statm(b"730 x"), None);
    }

    #[test]
    fn cmdline_like_psutil() {
        assert_eq!(parse_cmdline(b""), Vec::<String>::new());
        assert_eq!(parse_cmdline(b"sleep\x0060\x00"), ["sleep", "60"]);
        // Empty arguments are kept.
        assert_eq!(parse_cmdline(b"prog\x00\x00x\x00"), ["prog", "", "x"]);
        // A rewritten command line without NULs is split on spaces.
        assert_eq!(
            parse_cmdline(b"nginx: worker process"),
            ["nginx:", "worker", "process"]
        );
        assert_eq!(parse_cmdline(b"a b c\x00"), ["a", "b", "c"]);
        // Non-UTF-8 bytes do not fail the read.
        assert_eq!(parse_cmdline(b"x\xff\x00").len(), 1);
    }

    #[test]
    fn name_is_extended_past_comm_limit() {
        let cmd = vec!["/opt/odin/bin/frameProcessorX".to_string()];
        assert_eq!(process_name(b"frameProcessorX", &cmd), "frameProcessorX");
        let cmd = vec!["/opt/odin/bin/frameProcessorLong".to_string()];
        assert_eq!(process_name(b"frameProcessorL", &cmd), "frameProcessorLong");
        // A short comm is never extended.
        assert_eq!(process_name(b"sh", &["shell-wrapper".to_string()]), "sh");
        // A basename that does not extend comm is ignored.
        assert_eq!(
            process_name(b"frameProcessorL", &["python3".to_string()]),
            "frameProcessorL"
        );
    }

    #[test]
    fn psutil_cpu_formula() {
        // 150 ticks at 100 Hz over 2 s: 1.5 CPU-seconds / 2 s = 75%.
        assert_eq!(cpu_percent(150, 2.0, 100.0), 75.0);
        // A busy process on two cores can pass 100%.
        assert_eq!(cpu_percent(400, 2.0, 100.0), 200.0);
        assert_eq!(cpu_percent(1, 3.0, 100.0), 0.3);
        assert_eq!(cpu_percent(5, 0.0, 100.0), 0.0);
    }

    #[test]
    fn matches_name_or_any_argument() {
        let id = Identity {
            inode: 1,
            start_time: 1,
            comm: b"bash".to_vec(),
            name: "bash".into(),
            cmdline: vec!["/bin/bash".into(), "/opt/stFrameProcessor1.sh".into()],
            ppid: 1,
            settled: true,
            matched: vec![],
        };
        assert!(id.matches("stFrameProcessor1.sh"));
        assert!(id.matches("bas"));
        assert!(!id.matches("frameReceiver"));
        // A substring must lie within one argument.
        assert!(!id.matches("bash /opt"));
    }

    #[test]
    fn scanner_finds_and_measures_itself_only_when_not_self() {
        // The test process runs as `odin_status-<hash>`; the scanner excludes
        // only its own PID, and this is that PID, so nothing is reported.
        let exe = std::env::current_exe().unwrap();
        let name = exe.file_name().unwrap().to_str().unwrap().to_string();
        let mut scanner = ProcessScanner::new(std::slice::from_ref(&name));
        let got = scanner.sample();
        assert_eq!(got.len(), 1);
        assert!(got[0].1.iter().all(|p| p.pid != std::process::id() as i32));
    }

    #[test]
    fn scanner_reports_a_child_with_psutil_figures() {
        let mut child = std::process::Command::new("sleep")
            .arg("30.123456")
            .spawn()
            .unwrap();
        let mut scanner = ProcessScanner::new(&["30.123456".to_string()]);
        // Until the child has exec'd it is a copy of this test: sample again.
        let got = (0..100)
            .map(|_| {
                let got = scanner.sample();
                if got[0].1.is_empty() {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                got
            })
            .find(|got| !got[0].1.is_empty())
            .unwrap_or_default();
        let _ = child.kill();
        let _ = child.wait();
        let (name, stats) = &got[0];
        assert_eq!(name, "30.123456");
        assert_eq!(stats.len(), 1);
        let p = &stats[0];
        assert_eq!(p.pid, child.id() as i32);
        assert_eq!(p.cpu_percent, 0.0, "first sample is 0.0");
        assert!(p.memory_rss > 0 && p.memory_vms >= p.memory_rss);
        assert!(!p.cpu_affinity.is_empty());
        assert!(p.memory_percent > 0.0 && p.memory_percent < 100.0);
        // Gone after it exits, and the name stays.
        let got = scanner.sample();
        assert_eq!(got, vec![("30.123456".to_string(), vec![])]);
    }
}
