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
//!   parent, start time), sorted by PID like the host's process table
//!   (`proc_table`: the listing of `/proc`, or the table kept from the
//!   kernel's events, so that a cycle on a quiet host lists nothing and,
//!   when the table did not change, walks nothing). A process is read
//!   once, and again only when the kernel says it `exec`ed or renamed itself
//!   (see `proc_events`). A PID reused by a new process is noticed without
//!   reading anything: its `/proc` directory comes back from the table with
//!   a new inode number. A process that has already exited when first seen
//!   (a zombie) is not read. Where the kernel's events cannot be had (no
//!   CAP_NET_ADMIN), a process is read again each cycle until it is a second
//!   old (it may not have `exec`ed yet), and every known process is read again
//!   once every [`SWEEP_SECONDS`], a few per cycle, so one that `exec`s later
//!   into a match is found within that time. Which PIDs match each name,
//!   and the children of those, follow from this table alone, so they are
//!   worked out again only when it changes: a steady-state cycle walks the
//!   listing beside the table once and reads nothing.
//! - `tracked`: the processes whose figures are read every cycle (the matches and
//!   their children), with their `stat`/`statm` files kept open and read with
//!   `pread`, their `fd` directory kept open for `num_fds`, and the CPU
//!   baseline for `cpu_percent`.
//!
//! A process can vanish at any point of this; each read that fails leaves that
//! process out of this cycle and nothing else.
//!
//! No odin-status process is ever matched or reported as a child: not this
//! service, not another one, not a `get`, `watch`, `record` or `replay` whose
//! arguments name a watched process. One is recognised, when first read, by
//! its `comm` (`odin-status`, whatever its path) or by its executable being
//! the very file this service runs from (a copy or link under another name);
//! the second needs the right to read `/proc/PID/exe`, which a process of the
//! same user (or root) has.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::fs::File;
use std::time::Instant;

use procfs::Current;

use super::proc_events::Changes;
use super::proc_table::ProcTable;
use super::{pread_all, round1, KeptOpen, Layout};
use crate::snapshot::{CpuTicks, ProcessStats};

/// A process read within this many seconds of its start may still `exec`;
/// it is read again each cycle until it is older.
const SETTLE_SECONDS: f64 = 1.0;

/// Without the kernel's process events, how long a process that `exec`s late
/// into a match may go unnoticed: every known process is read again once in
/// this many seconds, spread evenly over the cycles.
const SWEEP_SECONDS: f64 = 10.0;

/// Above 10 Hz, the memory figures (`statm`), `cpu_affinity` and `num_fds`
/// are read at most this often: each costs a system call per process per
/// cycle (`statm` as much as a quarter of a cycle's reads), and none is a
/// rate that needs the cycle's own reading, as `cpu_percent` does.
const SLOW_FIGURES_AGE: std::time::Duration = std::time::Duration::from_millis(100);

/// How many cycles an exit status is kept for the lifecycle to pick up.
const EXIT_STATUS_CYCLES: u64 = 100;

/// psutil's `comm` limit: names this long may be truncated.
const COMM_LEN: usize = 15;

/// The `comm` of every odin-status process: its binary's name.
const OUR_COMM: &[u8] = b"odin-status";
/// Processes of one name tracked at most. Anyone may start processes whose
/// arguments match a name; past this, new matches of the name are left out
/// (`process_summary/<name>/capped`) instead of costing descriptors.
pub const MAX_PER_NAME: usize = 256;

/// Descriptors held per tracked process: `stat`, `statm`, the `fd`
/// directory, and the lifecycle's pidfd.
const FDS_PER_PROCESS: u64 = 4;

/// Descriptors kept free of tracked processes, beyond a quarter of the
/// limit: the sockets' connections (control and subscriber caps), the log,
/// the `/proc` listing, libzmq's own. So the control socket always accepts
/// and libzmq never spins on EMFILE.
const FD_HEADROOM: u64 = 512;

/// What [`ProcessScanner::report`] left out: per name, whether matches were left
/// out, and whether the descriptor budget ran out.
struct Caps {
    capped: Vec<bool>,
    exhausted: bool,
}

/// How many processes may be tracked in all with `open_files` descriptors.
fn process_budget(open_files: u64) -> usize {
    let spare = (open_files - open_files / 4).saturating_sub(FD_HEADROOM);
    usize::try_from(spare / FDS_PER_PROCESS).unwrap_or(usize::MAX)
}

pub struct ProcessScanner {
    names: Vec<String>,
    own_pid: i32,
    /// Device and inode of this service's executable, to know its copies.
    own_exe: Option<(u64, u64)>,
    ticks_per_second: f64,
    page_size: u64,
    mem_total: u64,
    known: Vec<Known>,
    /// Per configured name, the PIDs in `known` that match it, ascending.
    matches: Vec<Vec<i32>>,
    /// Children of the matched PIDs, ascending, by parent.
    children: HashMap<i32, Vec<i32>>,
    /// `known` changed since `matches` and `children` were worked out.
    derived_stale: bool,
    tracked: HashMap<i32, Tracked>,
    cycle: u64,
    /// Which PIDs exist: listed each cycle, or kept from the kernel's events.
    table: ProcTable,
    /// Some row of `known` is not settled: `known` must be refreshed even
    /// if the table did not change.
    unsettled: bool,
    /// Exit statuses reported by the kernel: PID -> (returncode, cycle seen).
    exit_statuses: HashMap<i32, (i32, u64)>,
    sweep: Sweep,
    /// Processes that may be tracked in all (see [`process_budget`]).
    budget: usize,
    /// Per name, whether matches were left out last cycle.
    capped: Vec<bool>,
    /// Whether the budget was reached last cycle.
    budget_reached: bool,
    read_errors: u64,
    buf: Vec<u8>,
}

/// This cycle's stat of each process looked at (`None`: it could not be read).
type Fresh = HashMap<i32, Option<(Stat, Instant)>>;

/// One row of `known`: kept small so that comparing it with the listing is cheap.
struct Known {
    pid: i32,
    /// Inode of `/proc/PID` when read; a new one means (most likely) a new process.
    inode: u64,
    settled: bool,
    id: Box<Identity>,
}

/// What identifies a process and what it is matched on, read once.
#[derive(Debug, Clone, PartialEq)]
struct Identity {
    start_time: u64,
    comm: Vec<u8>,
    /// psutil's `name()`: `comm`, extended from the command line when truncated.
    name: String,
    cmdline: Vec<String>,
    ppid: i32,
    /// An odin-status process, which matches no name.
    ours: bool,
    /// Indices of the configured names this process matches, worked out once.
    matched: Vec<usize>,
}

/// A process read every cycle.
struct Tracked {
    start_time: u64,
    stat: KeptOpen,
    statm: KeptOpen,
    fds: FdDir,
    cpu_baseline: Option<(u64, Instant)>,
    /// The memory figures, `cpu_affinity` and `num_fds` as last read, and
    /// when: re-read once they are [`SLOW_FIGURES_AGE`] old, so every cycle
    /// below 10 Hz.
    slow: Option<SlowFigures>,
    last_cycle: u64,
}

/// The figures of a tracked process that need no reading of their own each cycle.
#[derive(Debug, Clone)]
struct SlowFigures {
    /// `statm`'s size, resident and shared, in pages.
    memory: (u64, u64, u64),
    affinity: Vec<u64>,
    num_fds: Option<u64>,
    read_at: Instant,
}

/// `/proc/PID/fd` of a tracked process, opened once.
enum FdDir {
    Unopened,
    Open(std::os::fd::OwnedFd),
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
    cpu: CpuTicks,
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
        let open_files = raise_open_file_limit();
        ProcessScanner {
            names: names.to_vec(),
            own_pid: std::process::id() as i32,
            own_exe: exe_identity("/proc/self/exe"),
            ticks_per_second: procfs::ticks_per_second() as f64,
            page_size: procfs::page_size(),
            mem_total,
            known: Vec::new(),
            matches: Vec::new(),
            children: HashMap::new(),
            derived_stale: true,
            tracked: HashMap::new(),
            cycle: 0,
            table: ProcTable::new(|e| {
                tracing::info!(
                    "kernel process events unavailable ({e}): /proc is listed every \
                     cycle, and a process that execs into a match more than a second \
                     after it started is found within {SWEEP_SECONDS} s"
                )
            }),
            unsettled: true,
            exit_statuses: HashMap::new(),
            sweep: Sweep::default(),
            budget: process_budget(open_files),
            capped: Vec::new(),
            budget_reached: false,
            read_errors: 0,
            buf: Vec::with_capacity(4096),
        }
    }

    /// Matches `names` from the next cycle on. Processes still matched keep
    /// their handles and CPU baselines; nothing is read again.
    pub fn set_names(&mut self, names: &[String]) {
        if self.names != names {
            self.names = names.to_vec();
            for k in self.known.iter_mut() {
                k.id.matched = k.id.matched_in(&self.names);
            }
            self.derived_stale = true;
            if names.is_empty() {
                // `sample` no longer visits anything to prune these.
                self.tracked.clear();
            }
        }
    }

    /// How many processes the host has: this cycle's listing of `/proc`,
    /// or the table kept from the kernel's events.
    pub fn listed(&self) -> usize {
        self.table.pids().len()
    }

    /// PIDs the safety-net listing of `/proc` found the kernel's events had
    /// missed, since start (0 without events).
    pub fn table_corrections(&self) -> u64 {
        self.table.corrections()
    }

    /// Reads since start that found their process gone between the listing
    /// of `/proc` and the read (or its figures unreadable).
    pub fn read_errors(&self) -> u64 {
        self.read_errors
    }

    /// Counts read errors from 0 again (`reset_statistics`).
    pub fn reset_read_errors(&mut self) {
        self.read_errors = 0;
    }

    /// One cycle: every configured name with the processes reported for it.
    pub fn sample(&mut self) -> Vec<(String, Vec<ProcessStats>)> {
        self.cycle += 1;
        let (changes, table_changed) = self.table.refresh(self.cycle);
        if self.table.has_events() {
            self.take_changes(changes);
        } else {
            self.sweep.mark(&mut self.known);
            self.unsettled = true;
        }
        if self.names.is_empty() {
            return Vec::new();
        }
        if table_changed || self.unsettled {
            self.refresh_known();
        }
        let (reported, fresh, caps) = self.report();
        let mut result = Vec::with_capacity(self.names.len());
        for (index, pids) in reported.into_iter().enumerate() {
            let stats = pids
                .into_iter()
                .filter_map(|pid| {
                    let (stat, at) = fresh.get(&pid)?.as_ref()?;
                    self.figures(pid, stat, *at)
                })
                .collect();
            let name = self.names.get(index).cloned().unwrap_or_default();
            result.push((name, stats));
        }
        self.note_caps(caps.capped, caps.exhausted);
        let cycle = self.cycle;
        self.tracked.retain(|_, t| t.last_cycle == cycle);
        result
    }

    /// Between cycles: reads the kernel's events and, if a process `exec`ed
    /// into something a configured name now reports, says what each name
    /// would report, as (PID, start time), without reading any figures.
    /// `None` when no `exec` concerns a configured name (the usual case: it
    /// costs one `recv`, and the reads of new processes the next cycle would
    /// do anyway).
    pub fn starts_now(&mut self) -> Option<Vec<Vec<(i32, u64)>>> {
        let changes = self.table.read_events(self.cycle);
        let execs = changes.changed.clone();
        self.take_changes(changes);
        if execs.is_empty() || self.names.is_empty() || !self.table.has_events() {
            return None;
        }
        if self.table.apply_now() || self.unsettled {
            self.refresh_known();
        }
        if self.derived_stale {
            self.derive_matches();
        }
        let concerned = execs.iter().any(|&pid| {
            self.identity(pid).is_some_and(|id| {
                !id.matched.is_empty()
                    || self
                        .identity(id.ppid)
                        .is_some_and(|parent| !parent.matched.is_empty())
            })
        });
        if !concerned {
            return None;
        }
        let (reported, fresh, _) = self.report();
        Some(
            reported
                .into_iter()
                .map(|pids| {
                    pids.into_iter()
                        .filter_map(|pid| {
                            let (stat, _) = fresh.get(&pid).cloned().flatten()?;
                            Some((pid, stat.start_time))
                        })
                        .collect()
                })
                .collect(),
        )
    }

    /// Which PIDs each configured name reports (odin's rules: live matches,
    /// a match with children through its lowest-PID live child), with the
    /// fresh stat of every process looked at, each read at most once.
    fn report(&mut self) -> (Vec<Vec<i32>>, Fresh, Caps) {
        if self.derived_stale {
            self.derive_matches();
        }
        // Sized for last cycle's reads, so it is not grown entry by entry.
        let mut fresh = Fresh::with_capacity(self.tracked.len());
        let matches = std::mem::take(&mut self.matches);
        let children = std::mem::take(&mut self.children);
        let mut left = self.budget;
        let mut capped = vec![false; matches.len()];
        let mut all = Vec::with_capacity(matches.len());
        for (index, matched) in matches.iter().enumerate() {
            let mut reported: Vec<i32> = Vec::new();
            let room = MAX_PER_NAME.min(left);
            for &pid in matched {
                // The fresh read may have found a new process under this PID.
                if !self.is_live(pid, &mut fresh)
                    || !self
                        .identity(pid)
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
                    if reported.len() >= room {
                        // The lowest PIDs are kept: the ones started first.
                        if let Some(flag) = capped.get_mut(index) {
                            *flag = true;
                        }
                        break;
                    }
                    reported.push(target);
                }
            }
            left -= reported.len();
            all.push(reported);
        }
        self.matches = matches;
        self.children = children;
        (
            all,
            fresh,
            Caps {
                capped,
                exhausted: left == 0,
            },
        )
    }

    /// Per configured name, whether some of its matches were left out this
    /// cycle (the per-name cap or the descriptor budget).
    pub fn capped(&self) -> &[bool] {
        &self.capped
    }

    /// Logs each name that starts or stops being capped, and the budget
    /// being reached or recovering: one line per change, never per cycle.
    fn note_caps(&mut self, capped: Vec<bool>, exhausted: bool) {
        for (index, (&now, name)) in capped.iter().zip(&self.names).enumerate() {
            let before = self.capped.get(index).copied().unwrap_or(false);
            if now && !before {
                tracing::warn!(
                    "more processes match {name} than are tracked (at most {MAX_PER_NAME} a name, \
                     {} in all); the rest are left out and process_summary/{name}/capped is true",
                    self.budget
                );
            } else if before && !now {
                tracing::info!("every process matching {name} is tracked again");
            }
        }
        let reached = exhausted && capped.iter().any(|&c| c);
        if reached && !self.budget_reached {
            tracing::warn!(
                "the descriptor budget is reached: {} processes tracked, {FDS_PER_PROCESS} descriptors each, \
                 the rest of the open file limit kept for connections",
                self.budget
            );
        } else if self.budget_reached && !reached {
            tracing::info!("the descriptor budget has room again");
        }
        self.budget_reached = reached;
        self.capped = capped;
    }

    /// How the process `pid` ended, when the kernel said so within the last
    /// hundred cycles: the exit code, or minus the signal that killed it.
    pub fn exit_status(&self, pid: i32) -> Option<i32> {
        self.exit_statuses.get(&pid).map(|(status, _)| *status)
    }

    /// The kernel's event socket (a duplicate), readable when events wait.
    pub fn events_fd(&self) -> Option<std::os::fd::OwnedFd> {
        self.table.events_fd()
    }

    /// Reads the kernel's process events now: marks the processes that
    /// changed for reading again and keeps the exit statuses.
    pub fn read_events(&mut self) {
        let changes = self.table.read_events(self.cycle);
        self.take_changes(changes);
    }

    fn take_changes(&mut self, changes: Changes) {
        let cycle = self.cycle;
        if changes.lost {
            tracing::warn!("kernel process events were lost; every process is read again");
            self.known.iter_mut().for_each(|k| k.settled = false);
            self.unsettled = true;
        }
        for pid in changes.changed {
            if let Ok(at) = self.known.binary_search_by_key(&pid, |k| k.pid) {
                if let Some(k) = self.known.get_mut(at) {
                    k.settled = false;
                    self.unsettled = true;
                }
            }
        }
        self.exit_statuses
            .retain(|_, (_, seen)| cycle.saturating_sub(*seen) < EXIT_STATUS_CYCLES);
        for (pid, status) in changes.exited {
            self.exit_statuses.insert(pid, (status, cycle));
        }
    }

    /// Brings `known` in line with the listing: forgets PIDs that are gone and
    /// reads the new (or not yet settled) ones. When nothing changed, as in
    /// most cycles, this is one walk over both and nothing is read.
    fn refresh_known(&mut self) {
        self.unsettled = false;
        let listed = self.table.lend();
        self.refresh_known_from(&listed);
        self.table.give_back(listed);
    }

    fn refresh_known_from(&mut self, listed: &[(i32, u64)]) {
        let unchanged = self.known.len() == listed.len()
            && (self.known.iter().zip(listed))
                .all(|(k, &(pid, inode))| k.settled && k.pid == pid && k.inode == inode);
        if unchanged {
            return;
        }
        let uptime = read_uptime();
        let mut previous = std::mem::take(&mut self.known).into_iter().peekable();
        let mut known = Vec::with_capacity(listed.len());
        for &(pid, inode) in listed {
            while previous.next_if(|k| k.pid < pid).is_some() {}
            match previous.next_if(|k| k.pid == pid) {
                Some(k) if k.settled && k.inode == inode => known.push(k),
                // Exited since: it can match nothing, and may be gone by the read.
                _ if self.table.has_ended(pid) => {}
                _ => {
                    match self.read_known(pid, inode, uptime) {
                        Some(k) => known.push(k),
                        // Told of by a fork event and gone before its first
                        // read: a short life, not a failed read.
                        None if self.table.has_events() => {}
                        None => self.read_errors += 1,
                    }
                }
            }
        }
        self.known = known;
        self.derived_stale = true;
    }

    /// Works out each name's matches and the children of the matched PIDs.
    fn derive_matches(&mut self) {
        let mut matches = vec![Vec::new(); self.names.len()];
        for k in self.known.iter().filter(|k| k.pid != self.own_pid) {
            for &index in &k.id.matched {
                if let Some(list) = matches.get_mut(index) {
                    list.push(k.pid);
                }
            }
        }
        let mut parents: Vec<i32> = matches.iter().flatten().copied().collect();
        parents.sort_unstable();
        parents.dedup();
        let mut children: HashMap<i32, Vec<i32>> = HashMap::new();
        if !parents.is_empty() {
            for k in self.known.iter().filter(|k| !k.id.ours) {
                if parents.binary_search(&k.id.ppid).is_ok() {
                    children.entry(k.id.ppid).or_default().push(k.pid);
                }
            }
        }
        self.matches = matches;
        self.children = children;
        self.derived_stale = false;
    }

    fn identity(&self, pid: i32) -> Option<&Identity> {
        let at = self.known.binary_search_by_key(&pid, |k| k.pid).ok()?;
        self.known.get(at).map(|k| k.id.as_ref())
    }

    /// Reads what identifies a process and works out which names it matches.
    fn read_known(&mut self, pid: i32, inode: u64, uptime: f64) -> Option<Known> {
        let stat = read_stat_path(pid, &mut self.buf)?;
        let raw_cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        let cmdline = parse_cmdline(&raw_cmdline);
        let age = uptime - stat.start_time as f64 / self.ticks_per_second;
        let ours = stat.comm == OUR_COMM
            || self
                .own_exe
                .is_some_and(|own| exe_identity(&format!("/proc/{pid}/exe")) == Some(own));
        let mut id = Identity {
            name: process_name(&stat.comm, &cmdline),
            ours,
            comm: stat.comm,
            cmdline,
            ppid: stat.ppid,
            start_time: stat.start_time,
            matched: Vec::new(),
        };
        id.matched = id.matched_in(&self.names);
        Some(Known {
            pid,
            inode,
            // With the kernel's events an `exec` is announced; without them a
            // young process is read again until it has had time to `exec`.
            settled: self.table.has_events() || age >= SETTLE_SECONDS,
            id: Box::new(id),
        })
    }

    /// Reads the process's stat (once per cycle) and says whether it is live.
    fn is_live(&mut self, pid: i32, fresh: &mut Fresh) -> bool {
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
        let row = self.known.binary_search_by_key(&pid, |k| k.pid);
        let (stale, inode) = match row.ok().and_then(|at| self.known.get(at)) {
            Some(k) => (
                k.id.start_time != read.0.start_time || k.id.comm != read.0.comm,
                k.inode,
            ),
            None => (true, 0),
        };
        if stale {
            let reread = self.read_known(pid, inode, read_uptime());
            match (row, reread) {
                (Ok(at), Some(k)) => {
                    if let Some(slot) = self.known.get_mut(at) {
                        *slot = k;
                    }
                }
                (Err(at), Some(k)) => self.known.insert(at, k),
                (Ok(at), None) => {
                    self.known.remove(at);
                }
                (Err(_), None) => {}
            }
            self.derived_stale = true;
        }
        Some(read)
    }

    /// Reads `stat` through the kept-open handle, opening it on first use.
    fn read_tracked_stat(&mut self, pid: i32) -> Option<(Stat, Instant)> {
        let cycle = self.cycle;
        let tracked = self.tracked.entry(pid).or_insert_with(|| Tracked {
            start_time: 0,
            stat: KeptOpen::new(format!("/proc/{pid}/stat"), Layout::OneRecord),
            statm: KeptOpen::new(format!("/proc/{pid}/statm"), Layout::OneRecord),
            fds: FdDir::Unopened,
            cpu_baseline: None,
            slow: None,
            last_cycle: cycle,
        });
        tracked.last_cycle = cycle;
        let read = (tracked.stat.read(&mut self.buf).ok()).and_then(|_| parse_stat(&self.buf));
        let at = Instant::now();
        match read {
            Some(stat) if tracked.stat.is_open() && stat.start_time == tracked.start_time => {
                Some((stat, at))
            }
            Some(stat) => {
                // First read, or a new process under this PID: start afresh.
                tracked.start_time = stat.start_time;
                tracked.cpu_baseline = None;
                tracked.statm.close();
                tracked.fds = FdDir::Unopened;
                tracked.slow = None;
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
        let slow = match &tracked.slow {
            Some(slow) if at.duration_since(slow.read_at) < SLOW_FIGURES_AGE => slow.clone(),
            _ => {
                let statm =
                    (tracked.statm.read(&mut self.buf).ok()).and_then(|_| parse_statm(&self.buf));
                let Some(memory) = statm else {
                    self.read_errors += 1;
                    self.tracked.remove(&pid);
                    return None;
                };
                let Some(affinity) = read_affinity(pid) else {
                    self.read_errors += 1;
                    return None;
                };
                let num_fds = count_fds(&mut tracked.fds, pid);
                let slow = SlowFigures {
                    memory,
                    affinity,
                    num_fds,
                    read_at: at,
                };
                tracked.slow = Some(slow.clone());
                slow
            }
        };
        let SlowFigures {
            memory: (size, resident, shared),
            affinity,
            num_fds,
            ..
        } = slow;
        let cpu_percent = match tracked.cpu_baseline {
            Some((ticks, then)) => cpu_percent(
                stat.cpu.both().saturating_sub(ticks),
                at.duration_since(then).as_secs_f64(),
                self.ticks_per_second,
            ),
            None => 0.0,
        };
        tracked.cpu_baseline = Some((stat.cpu.both(), at));
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
            cpu_ticks: stat.cpu,
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

/// psutil's `num_fds()`: the entries of `/proc/PID/fd`. Since Linux 6.2 the
/// directory's size says how many there are, so one `fstat` of the kept-open
/// directory answers; where it says 0 (older kernels, or truly none) the
/// directory is listed. `None` when it cannot be read.
fn count_fds(dir: &mut FdDir, pid: i32) -> Option<u64> {
    if let FdDir::Unopened = dir {
        *dir = match File::open(format!("/proc/{pid}/fd")) {
            Ok(file) => FdDir::Open(file.into()),
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => FdDir::Denied,
            Err(_) => return None,
        };
    }
    let FdDir::Open(fd) = dir else {
        return None;
    };
    let size = rustix::fs::fstat(&*fd).ok()?.st_size;
    if size > 0 {
        return u64::try_from(size).ok();
    }
    let mut listing = rustix::fs::Dir::read_from(&*fd).ok()?;
    let mut count = 0;
    while let Some(entry) = listing.read() {
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

    /// Indices of the names this process matches; none for odin-status's own.
    fn matched_in(&self, names: &[String]) -> Vec<usize> {
        if self.ours {
            return Vec::new();
        }
        (names.iter().enumerate())
            .filter(|(_, name)| self.matches(name))
            .map(|(index, _)| index)
            .collect()
    }
}

/// Device and inode of the file an executable link points to.
fn exe_identity(link: &str) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(link).ok()?;
    Some((meta.dev(), meta.ino()))
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
        cpu: CpuTicks {
            user: utime,
            system: stime,
        },
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
    let file = File::open(format!("/proc/{pid}/stat")).ok()?;
    pread_all(&file, buf).ok()?;
    parse_stat(buf)
}

/// Without the kernel's events: marks a share of the known processes each
/// cycle for reading again, so that every one is read once per
/// [`SWEEP_SECONDS`] whatever the rate.
#[derive(Default)]
struct Sweep {
    cursor: usize,
    /// Processes owed a re-read, carried between cycles as a fraction.
    owed: f64,
    last: Option<Instant>,
}

impl Sweep {
    fn mark(&mut self, known: &mut [Known]) {
        let now = Instant::now();
        let elapsed = self.last.map_or(0.0, |last| (now - last).as_secs_f64());
        self.last = Some(now);
        if known.is_empty() {
            return;
        }
        self.owed += known.len() as f64 * elapsed / SWEEP_SECONDS;
        let due = (self.owed.floor() as usize).min(known.len());
        self.owed -= due as f64;
        for _ in 0..due {
            if self.cursor >= known.len() {
                self.cursor = 0;
            }
            if let Some(k) = known.get_mut(self.cursor) {
                k.settled = false;
            }
            self.cursor += 1;
        }
    }
}

/// Seconds since boot, as the first figure of `/proc/uptime` (which is this
/// clock), without opening a file.
fn read_uptime() -> f64 {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::Boottime);
    now.tv_sec as f64 + now.tv_nsec as f64 / 1e9
}

/// The CPUs a process may run on, ascending, as psutil's `cpu_affinity()`.
/// The walk stops at the last CPU in the set, not at the set's 1,024 bits.
fn read_affinity(pid: i32) -> Option<Vec<u64>> {
    let pid = rustix::process::Pid::from_raw(pid)?;
    let set = rustix::thread::sched_getaffinity(Some(pid)).ok()?;
    let count = set.count() as usize;
    let mut cpus = Vec::with_capacity(count);
    for cpu in 0..rustix::thread::CpuSet::MAX_CPU {
        if cpus.len() == count {
            break;
        }
        if set.is_set(cpu) {
            cpus.push(cpu as u64);
        }
    }
    Some(cpus)
}

/// Kept-open handles need four descriptors per tracked process (stat, statm,
/// fd directory, and the lifecycle's pidfd): asks for the hard limit, so
/// thousands of matches do not run out. Failing is harmless: the budget is
/// then worked out from the soft limit. Returns the soft limit in force.
fn raise_open_file_limit() -> u64 {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut limit = getrlimit(Resource::Nofile);
    let before = limit.current.unwrap_or(u64::MAX);
    if limit.current < limit.maximum {
        limit.current = limit.maximum;
        match setrlimit(Resource::Nofile, limit) {
            Ok(()) => return limit.current.unwrap_or(u64::MAX),
            Err(e) => tracing::debug!("cannot raise the open file limit: {e}"),
        }
    }
    before
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
        assert_eq!(
            st.cpu,
            CpuTicks {
                user: 150,
                system: 25
            }
        );
        assert_eq!(st.cpu.both(), 175);
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
            start_time: 1,
            comm: b"bash".to_vec(),
            name: "bash".into(),
            cmdline: vec!["/bin/bash".into(), "/opt/stFrameProcessor1.sh".into()],
            ppid: 1,
            ours: false,
            matched: vec![],
        };
        assert!(id.matches("stFrameProcessor1.sh"));
        assert!(id.matches("bas"));
        assert!(!id.matches("frameReceiver"));
        // A substring must lie within one argument.
        assert!(!id.matches("bash /opt"));
        let names = ["stFrameProcessor1.sh".to_string(), "nope".to_string()];
        assert_eq!(id.matched_in(&names), [0]);
        // An odin-status process (`watch ... stFrameProcessor1.sh`) matches nothing.
        let ours = Identity { ours: true, ..id };
        assert!(ours.matched_in(&names).is_empty());
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
    fn new_names_keep_the_cpu_baselines_of_kept_processes() {
        let marker = format!("odin-status-burn-{}", std::process::id());
        let mut child = std::process::Command::new("sh")
            .args(["-c", "while :; do :; done", &marker])
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        let mut scanner = ProcessScanner::new(&["no-such-name".to_string()]);
        scanner.sample();
        scanner.set_names(&["other-name".to_string(), marker.clone()]);
        // Once found, a process reads 0.0 in its first cycle only.
        let first = (0..100)
            .find_map(|_| {
                std::thread::sleep(std::time::Duration::from_millis(20));
                let got = scanner.sample();
                got.get(1)?.1.iter().find(|p| p.pid == pid).cloned()
            })
            .expect("the burner found under its new index");
        assert_eq!(first.cpu_percent, 0.0);
        std::thread::sleep(std::time::Duration::from_millis(300));
        scanner.set_names(std::slice::from_ref(&marker));
        let got = scanner.sample();
        let _ = child.kill();
        let _ = child.wait();
        let (name, stats) = &got[0];
        assert_eq!(name, &marker);
        let kept = stats.iter().find(|p| p.pid == pid).expect("still reported");
        assert!(
            kept.cpu_percent > 20.0,
            "baseline kept: {}",
            kept.cpu_percent
        );
        scanner.set_names(&[]);
        assert!(scanner.sample().is_empty());
        assert!(scanner.tracked.is_empty(), "no handles kept for nothing");
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
