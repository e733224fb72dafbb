//! The life of the processes reported for each configured name: which started
//! and exited since the service started, and whether as many run as expected.
//!
//! It is fed, once per cycle, what the scanner reported under `process/<name>`.
//! A process is identified by PID and start time, so a PID reused by a new
//! process is a new process. An identity reported for the first time after
//! the first cycle has *started*; one that ends has *exited*. Processes
//! already running at the first cycle are known but were not seen starting:
//! no event, not counted in `starts`. A known process that is alive but no
//! longer reported (stopped, or now reported through its child) has not
//! exited; it is simply not counted.
//!
//! Exits are noticed through a pidfd per known process, all in one epoll set
//! that the sampling loop waits on, so an exit is seen within milliseconds,
//! not at the next cycle. Where pidfds are unavailable (kernels before 5.3) a
//! known process is looked up in `/proc` when it is no longer reported, and
//! its exit is seen at that cycle.
//!
//! Each name also keeps a CPU-time counter for Prometheus's `rate()`: the
//! CPU time last seen of every known process plus that of the processes that
//! exited, so it never goes back when a process of the name ends.

use std::collections::HashMap;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rustix::event::epoll;
use rustix::process::{pidfd_open, Pid, PidfdFlags};

use super::process::start_time_unless_ended;
use super::round1;
use crate::config::ProcessEntry;
use crate::snapshot::{
    CpuSeconds, CpuTicks, LifeEvent, ProcessEvent, ProcessStats, ProcessSummary,
};

/// A process as the lifecycle knows it: PID and start time (clock ticks after boot).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Identity {
    pid: i32,
    start_time: u64,
}

/// What is kept of one configured name between cycles.
#[derive(Debug, Default)]
struct NameLife {
    /// The entry's key: its label, or else its name.
    name: String,
    expected: Option<u32>,
    /// Every identity reported under this name that has not yet exited.
    known: HashMap<Identity, Watched>,
    /// The last CPU time seen of the processes that exited.
    exited_cpu: CpuTicks,
    starts: u64,
    exits: u64,
    restarts: u64,
    /// Exits not yet followed by a start: the next start is a restart.
    unpaired_exits: u64,
    last_start: Option<SystemTime>,
    last_exit: Option<SystemTime>,
}

/// What is kept of one known process.
#[derive(Debug, Clone, Copy)]
struct Watched {
    /// The token of its pidfd in the epoll set (`None` without one).
    token: Option<u64>,
    /// Its CPU time when last reported.
    cpu: CpuTicks,
}

pub struct Lifecycle {
    names: Vec<NameLife>,
    ticks_per_second: f64,
    cycles: u64,
    watch: Option<ExitWatch>,
}

/// One epoll set holding a pidfd per known process.
struct ExitWatch {
    epoll: Arc<OwnedFd>,
    /// token -> (index of the name, identity, pidfd)
    pidfds: HashMap<u64, (usize, Identity, OwnedFd)>,
    next_token: u64,
}

impl Lifecycle {
    pub fn new(entries: &[ProcessEntry]) -> Self {
        let watch = match epoll::create(epoll::CreateFlags::CLOEXEC) {
            Ok(epoll) => Some(ExitWatch {
                epoll: Arc::new(epoll),
                pidfds: HashMap::new(),
                next_token: 0,
            }),
            Err(e) => {
                tracing::warn!(
                    "cannot create an epoll set ({e}); process exits are seen once per cycle"
                );
                None
            }
        };
        Lifecycle::with_watch(entries, watch)
    }

    fn with_watch(entries: &[ProcessEntry], watch: Option<ExitWatch>) -> Self {
        Lifecycle {
            names: entries
                .iter()
                .map(|e| NameLife {
                    name: e.key().to_string(),
                    expected: e.expected,
                    ..NameLife::default()
                })
                .collect(),
            ticks_per_second: procfs::ticks_per_second() as f64,
            cycles: 0,
            watch,
        }
    }

    /// Follows `entries` from now on. Names kept keep their counts, known
    /// processes and pidfds (with the new expectation); names dropped are
    /// forgotten, their pidfds closed (which takes them out of the epoll set).
    pub fn set_entries(&mut self, entries: &[ProcessEntry]) {
        let mut old: Vec<Option<NameLife>> = std::mem::take(&mut self.names)
            .into_iter()
            .map(Some)
            .collect();
        let mut moved_to: Vec<Option<usize>> = vec![None; old.len()];
        for (index, entry) in entries.iter().enumerate() {
            let kept = old
                .iter()
                .position(|life| life.as_ref().is_some_and(|l| l.name == entry.key()));
            let life = match kept.and_then(|at| old.get_mut(at).and_then(Option::take)) {
                Some(mut life) => {
                    if let Some(slot) = kept.and_then(|at| moved_to.get_mut(at)) {
                        *slot = Some(index);
                    }
                    life.expected = entry.expected;
                    life
                }
                None => NameLife {
                    name: entry.key().to_string(),
                    expected: entry.expected,
                    ..NameLife::default()
                },
            };
            self.names.push(life);
        }
        if let Some(watch) = self.watch.as_mut() {
            watch.pidfds.retain(
                |_, (index, _, _)| match moved_to.get(*index).copied().flatten() {
                    Some(new) => {
                        *index = new;
                        true
                    }
                    None => false,
                },
            );
        }
    }

    /// `reset_statistics`: every name's counts start again from 0; the
    /// processes known stay known, so they are not counted as starting again.
    pub fn reset_counts(&mut self) {
        for life in &mut self.names {
            life.starts = 0;
            life.exits = 0;
            life.restarts = 0;
            life.unpaired_exits = 0;
            life.last_start = None;
            life.last_exit = None;
        }
    }

    /// The epoll set that becomes readable when a known process exits; the
    /// caller then calls [`Lifecycle::reap`].
    pub fn exit_fd(&self) -> Option<Arc<OwnedFd>> {
        self.watch.as_ref().map(|w| Arc::clone(&w.epoll))
    }

    /// The exits the pidfds have signalled since the last call, recorded.
    pub fn reap(&mut self) -> Vec<ProcessEvent> {
        let Some(watch) = self.watch.as_mut() else {
            return Vec::new();
        };
        let now = SystemTime::now();
        let mut events = Vec::new();
        for token in watch.ready() {
            if let Some((index, id, _pidfd)) = watch.pidfds.remove(&token) {
                if let Some(life) = self.names.get_mut(index) {
                    if let Some(watched) = life.known.remove(&id) {
                        events.push(life.exited(id, watched.cpu, now));
                    }
                }
            }
        }
        events
    }

    /// One cycle's report: records starts and exits and returns their events,
    /// exits first.
    pub fn observe(&mut self, report: &[(String, Vec<ProcessStats>)]) -> Vec<ProcessEvent> {
        self.cycles += 1;
        let first = self.cycles == 1;
        let mut events = self.reap();
        let now = SystemTime::now();
        let boot = boot_instant(now);
        for (index, stats) in report.iter().map(|(_, s)| s).enumerate() {
            let Some(life) = self.names.get_mut(index) else {
                continue;
            };
            let reported: Vec<(Identity, CpuTicks)> = stats
                .iter()
                .map(|p| {
                    let id = Identity {
                        pid: p.pid,
                        start_time: p.start_time,
                    };
                    (id, p.cpu_ticks)
                })
                .collect();
            // Gone without a pidfd to say so: looked up in /proc.
            let gone: Vec<(Identity, CpuTicks)> = life
                .known
                .iter()
                .filter(|(id, watched)| {
                    watched.token.is_none()
                        && !reported.iter().any(|(r, _)| r == *id)
                        && !is_alive(**id)
                })
                .map(|(id, watched)| (*id, watched.cpu))
                .collect();
            for (id, cpu) in gone {
                life.known.remove(&id);
                events.push(life.exited(id, cpu, now));
            }
            self.add_reported(index, reported, !first, now, boot, &mut events);
        }
        events
    }

    /// Processes reported between cycles, as (PID, start time) per name, when
    /// the kernel said they `exec`ed: those not yet known have started. They
    /// are recorded now, so the next cycle does not announce them again.
    pub fn announce(&mut self, report: &[Vec<(i32, u64)>]) -> Vec<ProcessEvent> {
        let mut events = Vec::new();
        if self.cycles == 0 {
            return events; // what runs at the first cycle was not seen starting
        }
        let now = SystemTime::now();
        let boot = boot_instant(now);
        for (index, pids) in report.iter().enumerate() {
            // Their CPU time is read with the next cycle's figures.
            let ids = pids
                .iter()
                .map(|&(pid, start_time)| (Identity { pid, start_time }, CpuTicks::default()))
                .collect();
            self.add_reported(index, ids, true, now, boot, &mut events);
        }
        events
    }

    /// Records the identities reported under name `index` that are not yet
    /// known, with a pidfd each, and their `started` events if `announce`;
    /// those already known take their latest CPU time.
    fn add_reported(
        &mut self,
        index: usize,
        reported: Vec<(Identity, CpuTicks)>,
        announce: bool,
        now: SystemTime,
        boot: Option<SystemTime>,
        events: &mut Vec<ProcessEvent>,
    ) {
        let Some(life) = self.names.get_mut(index) else {
            return;
        };
        for (id, cpu) in reported {
            if let Some(watched) = life.known.get_mut(&id) {
                // The same process's CPU time only grows; max() keeps the
                // counter whole even if a read were ever out of order.
                watched.cpu.user = watched.cpu.user.max(cpu.user);
                watched.cpu.system = watched.cpu.system.max(cpu.system);
                continue;
            }
            let (token, alive) = match self.watch.as_mut() {
                Some(watch) => watch.add(index, id),
                None => (None, true),
            };
            if announce {
                let started = boot.map_or(now, |boot| {
                    boot + Duration::from_secs_f64(id.start_time as f64 / self.ticks_per_second)
                });
                events.push(life.started(id, started));
            }
            if alive {
                life.known.insert(id, Watched { token, cpu });
            } else {
                events.push(life.exited(id, cpu, now));
            }
        }
    }

    /// `process_summary/<name>` for each name, from this cycle's report.
    pub fn summaries(
        &self,
        report: &[(String, Vec<ProcessStats>)],
    ) -> Vec<(String, ProcessSummary)> {
        let now = SystemTime::now();
        let boot = boot_instant(now);
        self.names
            .iter()
            .zip(report.iter().map(|(_, s)| s))
            .map(|(life, stats)| {
                let oldest = stats.iter().map(|p| p.start_time).min();
                let uptime = oldest.zip(boot).map(|(ticks, boot)| {
                    let started =
                        boot + Duration::from_secs_f64(ticks as f64 / self.ticks_per_second);
                    round1(
                        now.duration_since(started)
                            .unwrap_or_default()
                            .as_secs_f64(),
                    )
                });
                let summary = ProcessSummary {
                    count: stats.len() as u64,
                    expected: life.expected,
                    starts: life.starts,
                    exits: life.exits,
                    restarts: life.restarts,
                    last_start: life.last_start,
                    last_exit: life.last_exit,
                    uptime,
                    // A fold from 0.0: an empty f64 sum is -0.0.
                    cpu_percent: round1(stats.iter().fold(0.0, |sum, p| sum + p.cpu_percent)),
                    memory_rss: stats.iter().map(|p| p.memory_rss).sum(),
                    num_threads: stats.iter().map(|p| p.num_threads).sum(),
                    num_fds: stats.iter().map(|p| p.num_fds).sum(),
                    cpu_seconds: life.cpu_seconds(self.ticks_per_second),
                    capped: false,
                };
                (life.name.clone(), summary)
            })
            .collect()
    }
}

impl NameLife {
    fn started(&mut self, id: Identity, at: SystemTime) -> ProcessEvent {
        self.starts += 1;
        if self.unpaired_exits > 0 {
            self.unpaired_exits -= 1;
            self.restarts += 1;
        }
        self.last_start = Some(at);
        self.event(id, LifeEvent::Started, at)
    }

    fn exited(&mut self, id: Identity, last_cpu: CpuTicks, at: SystemTime) -> ProcessEvent {
        self.exited_cpu += last_cpu;
        self.exits += 1;
        self.unpaired_exits += 1;
        self.last_exit = Some(at);
        self.event(id, LifeEvent::Exited, at)
    }

    /// CPU time of the known processes and of those that exited.
    fn cpu_seconds(&self, ticks_per_second: f64) -> CpuSeconds {
        let mut ticks = self.exited_cpu;
        for watched in self.known.values() {
            ticks += watched.cpu;
        }
        let seconds = |t: u64| {
            if ticks_per_second > 0.0 {
                t as f64 / ticks_per_second
            } else {
                0.0
            }
        };
        CpuSeconds {
            user: seconds(ticks.user),
            system: seconds(ticks.system),
        }
    }

    fn event(&self, id: Identity, event: LifeEvent, time: SystemTime) -> ProcessEvent {
        ProcessEvent {
            name: self.name.clone(),
            pid: id.pid,
            event,
            time,
            exit_code: None,
        }
    }
}

impl ExitWatch {
    /// Opens a pidfd for `id` and adds it to the set: its token, and whether
    /// the process is still the one identified (false: it exited already).
    fn add(&mut self, index: usize, id: Identity) -> (Option<u64>, bool) {
        let Some(pid) = Pid::from_raw(id.pid) else {
            return (None, false);
        };
        let pidfd = match pidfd_open(pid, PidfdFlags::empty()) {
            Ok(fd) => fd,
            Err(rustix::io::Errno::SRCH) => return (None, false),
            Err(e) => {
                tracing::debug!("no pidfd for {} ({e}); its exit is seen per cycle", id.pid);
                return (None, true);
            }
        };
        // The PID may have been reused between the scan and the pidfd.
        if start_time_unless_ended(id.pid) != Some(id.start_time) {
            return (None, false);
        }
        let token = self.next_token;
        self.next_token += 1;
        let added = epoll::add(
            self.epoll.as_fd(),
            pidfd.as_fd(),
            epoll::EventData::new_u64(token),
            epoll::EventFlags::IN,
        );
        match added {
            Ok(()) => {
                self.pidfds.insert(token, (index, id, pidfd));
                (Some(token), true)
            }
            Err(e) => {
                tracing::debug!(
                    "cannot watch pidfd of {} ({e}); its exit is seen per cycle",
                    id.pid
                );
                (None, true)
            }
        }
    }

    /// Tokens of the pidfds that signalled an exit, without waiting. A pidfd
    /// dropped afterwards leaves the epoll set with it.
    fn ready(&mut self) -> Vec<u64> {
        let mut tokens = Vec::new();
        let mut events = Vec::with_capacity(64);
        let zero = rustix::time::Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        loop {
            events.clear();
            match epoll::wait(
                self.epoll.as_fd(),
                rustix::buffer::spare_capacity(&mut events),
                Some(&zero),
            ) {
                Ok(_) => {}
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => {
                    tracing::warn!("cannot read the exit watch: {e}");
                    return tokens;
                }
            }
            let before = tokens.len();
            for event in &events {
                let token = event.data.u64();
                // Out of the set at once, so it is not reported twice.
                if let Some((_, _, pidfd)) = self.pidfds.get(&token) {
                    let _ = epoll::delete(self.epoll.as_fd(), pidfd.as_fd());
                }
                tokens.push(token);
            }
            if events.len() < events.capacity() || tokens.len() == before {
                return tokens;
            }
        }
    }
}

/// Whether the process `id` is still there (a zombie has ended).
fn is_alive(id: Identity) -> bool {
    start_time_unless_ended(id.pid) == Some(id.start_time)
}

/// The wall-clock time of boot as CLOCK_BOOTTIME sees it, the clock process
/// start times count from.
fn boot_instant(now: SystemTime) -> Option<SystemTime> {
    let since = rustix::time::clock_gettime(rustix::time::ClockId::Boottime);
    let since = Duration::new(
        u64::try_from(since.tv_sec).ok()?,
        u32::try_from(since.tv_nsec).ok()?,
    );
    now.checked_sub(since)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A PID above any default pid_max: no process has it.
    const NO_SUCH_PID: i32 = 4_194_303;

    fn entry(name: &str, expected: Option<u32>) -> ProcessEntry {
        ProcessEntry {
            label: None,
            name: name.into(),
            expected,
        }
    }

    fn stats(pid: i32, start_time: u64) -> ProcessStats {
        ProcessStats {
            pid,
            cpu_percent: 1.5,
            cpu_affinity: vec![0],
            memory_percent: 0.1,
            memory_rss: 1000,
            memory_vms: 2000,
            memory_shared: 500,
            start_time,
            num_threads: 2,
            num_fds: Some(4),
            cpu_ticks: CpuTicks::default(),
        }
    }

    fn report(procs: Vec<ProcessStats>) -> Vec<(String, Vec<ProcessStats>)> {
        vec![("fp".to_string(), procs)]
    }

    fn kinds(events: &[ProcessEvent]) -> Vec<(i32, LifeEvent)> {
        events.iter().map(|e| (e.pid, e.event)).collect()
    }

    #[test]
    fn a_reused_pid_is_a_new_process() {
        let mut life = Lifecycle::with_watch(&[entry("fp", Some(1))], None);
        assert!(life
            .observe(&report(vec![stats(NO_SUCH_PID, 10)]))
            .is_empty());
        // Same PID, another start time: the first exited, a new one started.
        let events = life.observe(&report(vec![stats(NO_SUCH_PID, 20)]));
        assert_eq!(
            kinds(&events),
            [
                (NO_SUCH_PID, LifeEvent::Exited),
                (NO_SUCH_PID, LifeEvent::Started)
            ]
        );
        let (_, s) = &life.summaries(&report(vec![stats(NO_SUCH_PID, 20)]))[0];
        assert_eq!((s.starts, s.exits, s.restarts), (1, 1, 1));
        assert!(s.last_start.is_some() && s.last_exit.is_some());
        // Seen again: nothing new.
        assert!(life
            .observe(&report(vec![stats(NO_SUCH_PID, 20)]))
            .is_empty());
    }

    fn busy(pid: i32, start_time: u64, user: u64, system: u64) -> ProcessStats {
        ProcessStats {
            cpu_ticks: CpuTicks { user, system },
            ..stats(pid, start_time)
        }
    }

    #[test]
    fn cpu_time_keeps_what_exited_processes_used() {
        let mut life = Lifecycle::with_watch(&[entry("fp", None)], None);
        let tps = life.ticks_per_second;
        let seconds = |life: &Lifecycle, r: &[(String, Vec<ProcessStats>)]| {
            let c = life.summaries(r)[0].1.cpu_seconds;
            (
                (c.user * tps).round() as u64,
                (c.system * tps).round() as u64,
            )
        };
        let two = report(vec![busy(NO_SUCH_PID, 10, 100, 20), busy(1, 1, 5, 5)]);
        life.observe(&two);
        assert_eq!(seconds(&life, &two), (105, 25));
        let grown = report(vec![busy(NO_SUCH_PID, 10, 150, 30), busy(1, 1, 5, 5)]);
        life.observe(&grown);
        assert_eq!(seconds(&life, &grown), (155, 35));
        // NO_SUCH_PID exits: its last figures stay in the counter.
        let one = report(vec![busy(1, 1, 6, 5)]);
        life.observe(&one);
        assert_eq!(seconds(&life, &one), (156, 35));
        // A new process under the reused PID adds from its own zero.
        let again = report(vec![busy(NO_SUCH_PID, 99, 1, 0), busy(1, 1, 6, 5)]);
        life.observe(&again);
        assert_eq!(seconds(&life, &again), (157, 35));
    }

    #[test]
    fn running_at_the_first_cycle_is_not_a_start() {
        let mut life = Lifecycle::with_watch(&[entry("fp", None)], None);
        assert!(life
            .observe(&report(vec![stats(NO_SUCH_PID, 10)]))
            .is_empty());
        let (_, s) = &life.summaries(&report(vec![stats(NO_SUCH_PID, 10)]))[0];
        assert_eq!((s.starts, s.exits, s.restarts), (0, 0, 0));
        assert_eq!(s.last_start, None);
        assert_eq!(s.state(), "unknown");
        // Gone (no such PID in /proc): an exit, no restart until a start.
        let events = life.observe(&report(vec![]));
        assert_eq!(kinds(&events), [(NO_SUCH_PID, LifeEvent::Exited)]);
        let (_, s) = &life.summaries(&report(vec![]))[0];
        assert_eq!((s.starts, s.exits, s.restarts), (0, 1, 0));
    }

    #[test]
    fn each_exit_pairs_with_at_most_one_later_start() {
        let mut life = Lifecycle::with_watch(&[entry("fp", Some(2))], None);
        life.observe(&report(vec![]));
        life.observe(&report(vec![stats(NO_SUCH_PID, 1)]));
        life.observe(&report(vec![])); // exit
        life.observe(&report(vec![
            stats(NO_SUCH_PID, 2),
            stats(NO_SUCH_PID - 1, 3),
        ]));
        let (_, s) = &life.summaries(&report(vec![]))[0];
        // Three starts, one exit: one of the two later starts is a restart.
        assert_eq!((s.starts, s.exits, s.restarts), (3, 1, 1));
    }

    #[test]
    fn totals_and_state() {
        let life = Lifecycle::with_watch(&[entry("fp", Some(1))], None);
        let none = &life.summaries(&report(vec![]))[0].1;
        assert_eq!((none.count, none.state()), (0, "missing"));
        assert_eq!((none.uptime, none.num_fds), (None, Some(0)));
        let one = &life.summaries(&report(vec![stats(1, 0)]))[0].1;
        assert_eq!(one.state(), "ok");
        // Started at boot: up as long as the machine.
        assert!(one.uptime.is_some_and(|up| up > 0.0));
        let mut b = stats(2, 5);
        b.num_fds = None;
        let two = &life.summaries(&report(vec![stats(1, 0), b]))[0].1;
        assert_eq!(two.state(), "extra");
        assert_eq!(two.cpu_percent, 3.0);
        assert_eq!(two.memory_rss, 2000);
        assert_eq!(two.num_threads, 4);
        assert_eq!(two.num_fds, None, "a partial sum is not reported");
    }

    #[test]
    fn a_pidfd_tells_of_an_exit_without_a_cycle() {
        let mut child = std::process::Command::new("sleep")
            .arg("60")
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        let start = start_time_unless_ended(pid).unwrap();
        let mut life = Lifecycle::new(&[entry("fp", Some(1))]);
        assert!(life.exit_fd().is_some());
        life.observe(&report(vec![]));
        let events = life.observe(&report(vec![stats(pid, start)]));
        assert_eq!(kinds(&events), [(pid, LifeEvent::Started)]);
        assert!(life.reap().is_empty(), "alive");
        child.kill().unwrap();
        // A zombie has exited: the pidfd says so before anyone waits on it.
        let mut reaped = Vec::new();
        for _ in 0..100 {
            reaped = life.reap();
            if !reaped.is_empty() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(kinds(&reaped), [(pid, LifeEvent::Exited)]);
        child.wait().unwrap();
        assert!(life.reap().is_empty(), "told once");
        let (_, s) = &life.summaries(&report(vec![]))[0];
        assert_eq!((s.starts, s.exits, s.restarts), (1, 1, 0));
    }
}
