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
//! replaces the table, and every PID it disagrees on that no event since the
//! last cycle accounts for is a *correction*: an event was missed. They are
//! counted for the `monitor` block (`process_table_corrections`).
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
    /// PIDs the last listing found and no event had told of yet: missed,
    /// unless the event comes by the next cycle (a fork is listed a moment
    /// before the kernel sends its event).
    suspects: Vec<i32>,
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
        if listed && !first && self.reconcile(&before) > 0 {
            changes.lost = true;
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

    /// Counts the PIDs the fresh listing disagrees with `before` on that no
    /// event read since then accounts for. A PID listed but not in `before`
    /// is only a suspect until the next cycle's events have been read.
    fn reconcile(&mut self, before: &[(i32, u64)]) -> u64 {
        let mut explained: Vec<i32> = self.lives.iter().map(|(pid, _)| *pid).collect();
        explained.extend_from_slice(&self.lingering);
        explained.sort_unstable();
        let unexplained = |pid: &i32| explained.binary_search(pid).is_err();
        let mut missed = 0;
        let mut old = before.iter().map(|(pid, _)| *pid).peekable();
        let mut new = self.pids.iter().map(|(pid, _)| *pid).peekable();
        loop {
            match (old.peek().copied(), new.peek().copied()) {
                (None, None) => break,
                (Some(a), Some(b)) if a == b => {
                    old.next();
                    new.next();
                }
                // In the table, not listed: its exit (sent before it can go
                // from /proc) was missed.
                (Some(a), Some(b)) if a < b => {
                    old.next();
                    if unexplained(&a) {
                        tracing::debug!("PID {a} ended without an event");
                        missed += 1;
                    }
                }
                (Some(a), None) => {
                    old.next();
                    if unexplained(&a) {
                        tracing::debug!("PID {a} ended without an event");
                        missed += 1;
                    }
                }
                (_, Some(b)) => {
                    new.next();
                    if unexplained(&b) {
                        self.suspects.push(b);
                    }
                }
            }
        }
        self.count_missed(missed);
        missed
    }

    /// Counts the suspects no event has told of since the listing.
    fn judge_suspects(&mut self) -> u64 {
        if self.suspects.is_empty() {
            return 0;
        }
        let suspects = std::mem::take(&mut self.suspects);
        let told = std::mem::take(&mut self.told);
        let missed = suspects.iter().filter(|pid| !told.contains(pid)).count() as u64;
        for pid in suspects.iter().filter(|pid| !told.contains(pid)) {
            tracing::debug!("PID {pid} started without an event");
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
    fn corrections_count_only_what_no_event_explains() {
        let mut table = ProcTable::with_events(None);
        table.pids = vec![(1, 1), (3, 3), (5, 5), (7, 7)];
        let before = table.pids.clone();
        // Listed now: 3 and 7 gone, 4 and 8 new. The events told of 7 ending
        // and 8 starting; 5 is exiting (lingering).
        table.pids = vec![(1, 1), (4, 4), (5, 5), (8, 8)];
        table.lives = vec![(7, true), (8, false)];
        table.lingering = vec![5];
        // 3's exit was missed; 4 is a suspect until the next events.
        assert_eq!(table.reconcile(&before), 1);
        assert_eq!(table.suspects, vec![4]);
        // Its fork event comes late: not a correction.
        table.told = vec![4];
        assert_eq!(table.judge_suspects(), 0);
        assert_eq!(table.corrections(), 1);
        // A suspect no event tells of is one.
        table.suspects = vec![6];
        assert_eq!(table.judge_suspects(), 1);
        assert_eq!(table.corrections(), 2);
    }
}
