//! The host's process table: every PID `/proc` lists, with the inode number
//! of its directory (which tells a reused PID from the process before it).
//!
//! Listing `/proc` costs about a microsecond per process, so a host's size
//! would be paid every cycle. Where the kernel's process events are proven
//! (see `proc_events`), the table is instead kept from them: each fork and
//! exit names a PID, and the table is brought up to date for just those PIDs
//! by asking `/proc` about each one (one `statx`), so a steady-state cycle on
//! a quiet host costs one empty `recv` whatever the host's size.
//!
//! Events are trusted but checked: `/proc` is still listed as a safety net,
//! at least every [`SAFETY_NET_SECONDS`] and at once when the event socket
//! reports lost messages (`ENOBUFS`, an overrun) or fails. The listing then
//! replaces the table, and every PID it disagrees on that no event accounts
//! for within [`SUSPECT_GRACE`] is a *correction*: an event was missed. They
//! are counted for the `monitor` block (`process_table_corrections`).
//!
//! "Within a grace", not "by the listing", because the kernel's events
//! trail `/proc` both ways: a child is in `/proc` a moment before its fork
//! event is sent, and an exiting process can leave `/proc` before its exit
//! event is sent (`do_exit` sends it after `exit_notify`, which reaps at once
//! a child whose parent ignores `SIGCHLD`, and wakes any other parent to reap).
//!
//! A process that has exited but is still listed (a zombie its parent has
//! not reaped, or a process whose first thread ended before the others) stays
//! in the table, as in the listing; it is asked about each cycle until it is
//! gone, since reaping sends no event.
//!
//! Without events the table is the listing, made afresh every cycle.
//!
//! For tests only, `ODIN_STATUS_DEBUG_DROP_EVENTS=CYCLE` discards every event
//! read during that cycle as if the kernel had dropped them silently (so
//! only the periodic listing can notice), and `CYCLE:lost` as the kernel
//! really does, reporting the loss.

use std::time::{Duration, Instant};

use rustix::fd::OwnedFd;
use rustix::io::Errno;

use super::proc_events::{Changes, ProcEvents};

/// The longest time the event-kept table goes without a listing of `/proc`.
pub const SAFETY_NET_SECONDS: u64 = 10;

/// How long the kernel's event for a PID a listing disagreed on may trail the
/// listing. It is sent microseconds after the change `/proc` shows, unless
/// the process is preempted in between, which on a loaded host lasts a few
/// scheduling periods.
const SUSPECT_GRACE: Duration = Duration::from_secs(1);

/// The test-only trigger that discards a cycle's events (see the module docs).
const DROP_SWITCH: &str = "ODIN_STATUS_DEBUG_DROP_EVENTS";

pub struct ProcTable {
    dir: ProcDir,
    events: Option<ProcEvents>,
    /// (PID, inode of `/proc/PID`), ascending.
    pids: Vec<(i32, u64)>,
    /// PIDs created or ended since the table was last brought up to date,
    /// in the kernel's order: (PID, ended).
    lives: Vec<(i32, bool)>,
    /// Exited but still listed: asked about each cycle until gone. Ascending.
    lingering: Vec<i32>,
    last_listing: Option<Instant>,
    /// PIDs a listing disagreed on (found, or not found) that no event had
    /// told of yet, with when: missed, unless the event comes within
    /// [`SUSPECT_GRACE`].
    suspects: Vec<(i32, Instant)>,
    /// PIDs events told of since the suspects were found (the table may be
    /// brought up to date between cycles, which empties `lives`).
    told: Vec<i32>,
    /// The events cannot be trusted until the next listing.
    relist: bool,
    corrections: u64,
    drop_events: Option<DropEvents>,
    /// The test trigger has been obeyed (it is logged once).
    dropped: bool,
}

/// A test's order to discard the events of one cycle.
#[derive(Debug, Clone, Copy, PartialEq)]
struct DropEvents {
    cycle: u64,
    report_loss: bool,
}

impl ProcTable {
    /// Subscribes to the kernel's events when they can be had; `why_not`
    /// is told why they cannot, as a phrase.
    pub fn new(why_not: impl FnOnce(&str)) -> ProcTable {
        let events = match ProcEvents::open() {
            Ok(events) => Some(events),
            Err(e) => {
                why_not(&e);
                None
            }
        };
        ProcTable::with_events(events)
    }

    fn with_events(events: Option<ProcEvents>) -> ProcTable {
        let drop_events = std::env::var(DROP_SWITCH).ok().and_then(|v| parse_drop(&v));
        ProcTable {
            dir: ProcDir::default(),
            events,
            pids: Vec::new(),
            lives: Vec::new(),
            lingering: Vec::new(),
            last_listing: None,
            suspects: Vec::new(),
            told: Vec::new(),
            relist: true,
            corrections: 0,
            drop_events,
            dropped: false,
        }
    }

    pub fn has_events(&self) -> bool {
        self.events.is_some()
    }

    /// The table: (PID, inode), ascending.
    pub fn pids(&self) -> &[(i32, u64)] {
        &self.pids
    }

    /// Brings the table up to date with the events read so far, between
    /// cycles; says whether anything changed.
    pub fn apply_now(&mut self) -> bool {
        !self.relist && self.apply_lives()
    }

    /// A duplicate of the event socket, to wait on; `None` without events.
    pub fn events_fd(&self) -> Option<OwnedFd> {
        self.events.as_ref()?.socket_fd()
    }

    /// Whether `pid` has exited though `/proc` still lists it (a zombie):
    /// there is nothing of it worth reading.
    pub fn has_ended(&self, pid: i32) -> bool {
        self.lingering.binary_search(&pid).is_ok()
    }

    /// Lends the table out, to walk it beside something that needs `&mut`;
    /// [`ProcTable::give_back`] returns it.
    pub fn lend(&mut self) -> Vec<(i32, u64)> {
        std::mem::take(&mut self.pids)
    }

    pub fn give_back(&mut self, pids: Vec<(i32, u64)>) {
        self.pids = pids;
    }

    /// PIDs the safety-net listing found the events had missed, since start.
    pub fn corrections(&self) -> u64 {
        self.corrections
    }

    /// Reads the events waiting, keeping the creations and exits for the
    /// next [`ProcTable::refresh`]. `cycle` is the scanner's cycle.
    pub fn read_events(&mut self, cycle: u64) -> Changes {
        let Some(events) = self.events.as_mut() else {
            return Changes::default();
        };
        let mut changes = events.drain();
        if let Some(drop) = self.drop_events.filter(|d| d.cycle == cycle) {
            if !self.dropped {
                tracing::warn!(
                    "discarding the process events of cycle {cycle}, as {DROP_SWITCH} asks"
                );
                self.dropped = true;
            }
            changes = Changes {
                lost: drop.report_loss,
                ..Changes::default()
            };
        }
        if changes.lost {
            self.relist = true;
        }
        self.lives.extend_from_slice(&changes.lives);
        if !self.suspects.is_empty() {
            self.told.extend(changes.lives.iter().map(|(pid, _)| *pid));
        }
        changes
    }

    /// Brings the table up to date at the start of a cycle; returns what the
    /// events said since the last call (nothing without events) and whether
    /// the table may have changed.
    pub fn refresh(&mut self, cycle: u64) -> (Changes, bool) {
        if self.events.is_none() {
            self.list();
            return (Changes::default(), true);
        }
        let due = self.relist
            || self
                .last_listing
                .is_none_or(|at| at.elapsed() >= Duration::from_secs(SAFETY_NET_SECONDS));
        let mut changes = Changes::default();
        if !due {
            changes = self.read_events(cycle);
            if self.judge_suspects() > 0 {
                // What else the missed events said (an `exec`) is unknown too.
                changes.lost = true;
            }
            if !self.relist {
                let changed = self.apply_lives();
                return (changes, changed);
            }
        }
        // Listed first and the events read after, so an event that raced the
        // listing is known to account for the difference it makes.
        let before = self.pids.clone();
        let first = self.last_listing.is_none();
        let listed = self.list();
        let later = self.read_events(cycle);
        let lost_again = later.lost;
        changes.extend(later);
        if lost_again {
            // What was read is incomplete: the listing stands as it is and
            // is checked again next cycle.
            self.lives.clear();
            self.lingering.clear();
            self.suspects.clear();
            self.told.clear();
            return (changes, true);
        }
        if self.judge_suspects() > 0 {
            changes.lost = true;
        }
        if listed {
            self.relist = false;
        }
        if listed && !first {
            self.reconcile(&before);
        }
        self.apply_lives();
        (changes, true)
    }

    /// Lists `/proc` into the table; false if it cannot be listed.
    fn list(&mut self) -> bool {
        let listed = self.dir.list(&mut self.pids);
        if listed {
            self.last_listing = Some(Instant::now());
        }
        listed
    }

    /// Notes as suspects the PIDs the fresh listing disagrees with `before`
    /// on that no event read so far accounts for; [`ProcTable::judge_suspects`]
    /// counts those no event tells of within [`SUSPECT_GRACE`].
    fn reconcile(&mut self, before: &[(i32, u64)]) {
        let mut explained: Vec<i32> = self.lives.iter().map(|(pid, _)| *pid).collect();
        explained.extend_from_slice(&self.lingering);
        explained.sort_unstable();
        let unexplained = |pid: &i32| explained.binary_search(pid).is_err();
        let now = Instant::now();
        let mut old = before.iter().map(|(pid, _)| *pid).peekable();
        let mut new = self.pids.iter().map(|(pid, _)| *pid).peekable();
        loop {
            match (old.peek().copied(), new.peek().copied()) {
                (Some(a), Some(b)) if a == b => {
                    old.next();
                    new.next();
                }
                // In the table, not listed: gone, its exit event perhaps
                // still to be sent.
                (Some(a), next) if next.is_none_or(|b| a < b) => {
                    old.next();
                    if unexplained(&a) {
                        self.suspects.push((a, now));
                    }
                }
                // Listed, not in the table: new, its fork event perhaps
                // still to be sent.
                (_, Some(b)) => {
                    new.next();
                    if unexplained(&b) {
                        self.suspects.push((b, now));
                    }
                }
                (_, None) => break,
            }
        }
    }

    /// Counts the suspects older than [`SUSPECT_GRACE`] no event has told of
    /// since they were suspected; younger ones wait.
    fn judge_suspects(&mut self) -> u64 {
        if self.suspects.is_empty() {
            return 0;
        }
        let now = Instant::now();
        let told = &self.told;
        let mut missed = 0;
        self.suspects.retain(|&(pid, since)| {
            if told.contains(&pid) {
                return false;
            }
            if now.duration_since(since) < SUSPECT_GRACE {
                return true;
            }
            tracing::debug!("PID {pid} started or ended without an event");
            missed += 1;
            false
        });
        if self.suspects.is_empty() {
            self.told.clear();
        }
        self.count_missed(missed);
        missed
    }

    fn count_missed(&mut self, missed: u64) {
        if missed > 0 {
            tracing::info!(
                "the listing of /proc corrected {missed} PIDs the kernel's process events missed"
            );
            self.corrections += missed;
        }
    }

    /// Asks `/proc` about every PID created or ended since the last cycle,
    /// and about those still lingering, and puts the answers in the table.
    /// Returns whether anything was asked.
    fn apply_lives(&mut self) -> bool {
        if self.lives.is_empty() && self.lingering.is_empty() {
            return false;
        }
        // The last word on each PID: created or ended.
        let mut last: Vec<(i32, bool)> = std::mem::take(&mut self.lives);
        last.extend(self.lingering.drain(..).map(|pid| (pid, true)));
        last.reverse();
        last.sort_by_key(|(pid, _)| *pid); // stable: the latest first
        last.dedup_by_key(|(pid, _)| *pid);
        let mut updates: Vec<(i32, Option<u64>)> = Vec::with_capacity(last.len());
        for (pid, ended) in last {
            match self.dir.inode_of(pid) {
                Ok(inode) => {
                    if ended {
                        self.lingering.push(pid);
                    }
                    updates.push((pid, Some(inode)));
                }
                Err(Errno::NOENT | Errno::SRCH) => updates.push((pid, None)),
                Err(e) => {
                    tracing::debug!("cannot look up /proc/{pid}: {e}");
                    self.relist = true;
                }
            }
        }
        self.lingering.sort_unstable();
        self.pids = merge(&self.pids, &updates);
        true
    }
}

/// `table` with `updates` (ascending by PID) applied: `Some(inode)` puts the
/// PID in, `None` takes it out.
fn merge(table: &[(i32, u64)], updates: &[(i32, Option<u64>)]) -> Vec<(i32, u64)> {
    let mut merged = Vec::with_capacity(table.len() + updates.len());
    let mut rows = table.iter().copied().peekable();
    for &(pid, inode) in updates {
        while let Some(row) = rows.next_if(|(p, _)| *p < pid) {
            merged.push(row);
        }
        rows.next_if(|(p, _)| *p == pid);
        if let Some(inode) = inode {
            merged.push((pid, inode));
        }
    }
    merged.extend(rows);
    merged
}

fn parse_drop(value: &str) -> Option<DropEvents> {
    let (cycle, report_loss) = match value.split_once(':') {
        Some((cycle, "lost")) => (cycle, true),
        Some(_) => return None,
        None => (value, false),
    };
    Some(DropEvents {
        cycle: cycle.parse().ok()?,
        report_loss,
    })
}

/// `/proc`, kept open: each listing rewinds it and reads the PIDs with
/// `getdents64` into a reused buffer, with no `open` and no allocation per entry.
#[derive(Default)]
struct ProcDir {
    fd: Option<OwnedFd>,
    buf: Vec<u8>,
    /// The last listing failed; logged once until one succeeds.
    failing: bool,
}

impl ProcDir {
    /// Fills `pids` with the PIDs in `/proc` and their directories' inode
    /// numbers, ascending, and says whether it could. If `/proc` cannot be
    /// read, `pids` keeps the last listing: a failed listing must not look
    /// like every process exiting.
    fn list(&mut self, pids: &mut Vec<(i32, u64)>) -> bool {
        match self.try_list(pids) {
            Ok(()) => {
                if self.failing {
                    tracing::info!("/proc can be listed again");
                }
                self.failing = false;
                true
            }
            Err(e) => {
                if !self.failing {
                    tracing::error!(
                        "cannot list /proc ({e}); the last listing is used until it can"
                    );
                }
                self.failing = true;
                self.fd = None;
                false
            }
        }
    }

    fn open(&mut self) -> rustix::io::Result<&OwnedFd> {
        use rustix::fs::{open, Mode, OFlags};
        if self.fd.is_none() {
            self.fd = Some(open(
                "/proc",
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )?);
        }
        self.fd.as_ref().ok_or(Errno::BADF)
    }

    fn try_list(&mut self, pids: &mut Vec<(i32, u64)>) -> rustix::io::Result<()> {
        use rustix::fs::{seek, RawDir, SeekFrom};
        self.open()?;
        let Some(fd) = self.fd.take() else {
            return Err(Errno::BADF);
        };
        seek(&fd, SeekFrom::Start(0))?;
        if self.buf.capacity() == 0 {
            self.buf.reserve(32 * 1024);
        }
        let mut fresh = Vec::with_capacity(pids.len());
        let mut dir = RawDir::new(&fd, self.buf.spare_capacity_mut());
        while let Some(entry) = dir.next() {
            let entry = entry?;
            let pid = (entry.file_name().to_str().ok()).and_then(|name| name.parse::<i32>().ok());
            if let Some(pid) = pid.filter(|pid| *pid > 0) {
                fresh.push((pid, entry.ino()));
            }
        }
        fresh.sort_unstable();
        *pids = fresh;
        self.fd = Some(fd);
        Ok(())
    }

    /// The inode number of `/proc/PID`, as a listing would give it.
    fn inode_of(&mut self, pid: i32) -> rustix::io::Result<u64> {
        use rustix::fs::{statx, AtFlags, StatxFlags};
        let fd = self.open()?;
        let name = pid.to_string();
        Ok(statx(
            fd,
            name.as_str(),
            AtFlags::SYMLINK_NOFOLLOW,
            StatxFlags::INO,
        )?
        .stx_ino)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn updates_merge_into_the_table() {
        let table = [(1, 10), (5, 50), (9, 90)];
        let updates = [(2, Some(20)), (5, None), (9, Some(91)), (12, Some(120))];
        assert_eq!(
            merge(&table, &updates),
            vec![(1, 10), (2, 20), (9, 91), (12, 120)]
        );
        assert_eq!(merge(&[], &[(3, None)]), vec![]);
    }

    #[test]
    fn the_drop_trigger_reads_a_cycle_and_a_kind() {
        let silent = DropEvents {
            cycle: 13,
            report_loss: false,
        };
        assert_eq!(parse_drop("13"), Some(silent));
        let lost = DropEvents {
            cycle: 13,
            report_loss: true,
        };
        assert_eq!(parse_drop("13:lost"), Some(lost));
        assert_eq!(parse_drop("13:what"), None);
        assert_eq!(parse_drop("soon"), None);
    }

    #[test]
    fn corrections_count_only_what_no_event_explains_by_the_next_cycle() {
        let mut table = ProcTable::with_events(None);
        table.pids = vec![(1, 1), (3, 3), (5, 5), (7, 7), (9, 9)];
        let before = table.pids.clone();
        // Listed now: 3, 7 and 9 gone, 4 and 8 new. The events told of 7
        // ending and 8 starting; 5 is exiting (lingering).
        table.pids = vec![(1, 1), (4, 4), (5, 5), (8, 8)];
        table.lives = vec![(7, true), (8, false)];
        table.lingering = vec![5];
        table.reconcile(&before);
        let suspected: Vec<i32> = table.suspects.iter().map(|(pid, _)| *pid).collect();
        assert_eq!(suspected, vec![3, 4, 9]);
        // Events may trail the listing: nothing is judged within the grace.
        assert_eq!(table.judge_suspects(), 0);
        assert_eq!(table.suspects.len(), 3);
        // The events tell of 4's fork and 9's exit, which the kernel sent
        // after the listing; the grace passes: 3's exit alone was missed.
        table.told = vec![4, 9];
        for (_, since) in table.suspects.iter_mut() {
            *since -= SUSPECT_GRACE;
        }
        assert_eq!(table.judge_suspects(), 1);
        assert_eq!(table.corrections(), 1);
        assert!(table.suspects.is_empty() && table.told.is_empty());
    }

    /// The kernel's events, or why a test cannot have them (before Linux
    /// 6.6 they need CAP_NET_ADMIN; CI runs as root).
    fn real_table(test: &str) -> Option<ProcTable> {
        match ProcEvents::open() {
            Ok(events) => Some(ProcTable::with_events(Some(events))),
            Err(e) => {
                eprintln!("SKIPPED {test}: no kernel process events here ({e})");
                None
            }
        }
    }

    fn python(script: &str) -> std::process::Child {
        std::process::Command::new("python3")
            .args(["-c", script])
            .spawn()
            .expect("python3 runs (the tests' churn is written in it)")
    }

    /// A parent that ignores SIGCHLD has its children reaped inside their
    /// exit, before the kernel sends the exit event: listings racing such
    /// exits must not count them as missed.
    #[test]
    fn exits_told_after_leaving_proc_are_not_corrections() {
        let Some(mut table) = real_table("exits_told_after_leaving_proc_are_not_corrections")
        else {
            return;
        };
        let mut churn = python(
            "import os, signal, time\n\
             signal.signal(signal.SIGCHLD, signal.SIG_IGN)\n\
             end = time.time() + 3\n\
             while time.time() < end:\n\
             \x20   os.fork() or os._exit(0)\n\
             \x20   time.sleep(0.0005)\n",
        );
        let start = Instant::now();
        let mut listings = 0;
        let mut cycle = 0;
        table.refresh(cycle);
        while start.elapsed() < Duration::from_millis(3200) {
            cycle += 1;
            // Every other cycle lists /proc; the one between judges.
            table.relist = cycle % 2 == 0;
            listings += u64::from(table.relist);
            table.refresh(cycle);
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(churn.wait().expect("the churn ends").success());
        // The last listings' suspects are judged once the grace has passed.
        std::thread::sleep(SUSPECT_GRACE);
        table.refresh(cycle + 1);
        assert!(table.suspects.is_empty());
        assert!(listings > 300, "only {listings} listings in 3 s");
        assert_eq!(table.corrections(), 0, "over {listings} listings");
    }

    /// A process whose thread `exec`s gets an exit event for its group's
    /// leader and lives on under the same PID: it must stay in the table as
    /// a live process, not one that has ended.
    #[test]
    fn a_thread_that_execs_leaves_its_process_alive() {
        let Some(mut table) = real_table("a_thread_that_execs_leaves_its_process_alive") else {
            return;
        };
        table.refresh(0);
        let mut child = python(
            "import os, threading\n\
             threading.Thread(target=lambda: os.execv('/bin/sleep', ['sleep', '5'])).start()\n\
             threading.Event().wait()\n",
        );
        let pid = child.id() as i32;
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::fs::read_to_string(format!("/proc/{pid}/comm"))
            .ok()
            .as_deref()
            != Some("sleep\n")
        {
            assert!(
                Instant::now() < deadline,
                "the thread's exec did not happen"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis(20));
        table.refresh(1);
        let listed = table.pids().iter().any(|(p, _)| *p == pid);
        let ended = table.has_ended(pid);
        let _ = child.kill();
        let _ = child.wait();
        assert!(listed, "PID {pid} is not in the table");
        assert!(!ended, "PID {pid} is taken for ended");
    }
}
