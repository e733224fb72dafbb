//! The kernel's process events (the netlink "proc connector"): which processes
//! were created, `exec`ed, renamed themselves or exited since the last cycle.
//!
//! Listing `/proc` shows new PIDs but not a process that `exec`s into something
//! else under the same PID, and a wrapper script that sleeps and then `exec`s
//! the frame processor is exactly that. Reading every process every cycle to
//! catch it would cost what odin-control's adapter costs; the kernel instead
//! tells us, for the price of a few bytes per event. It also tells how each
//! process ended, which `/proc` cannot once the process is gone.
//!
//! Before Linux 6.6 listening needs CAP_NET_ADMIN (root, or the capability
//! granted by the service unit), and some kernels accept the subscription but
//! send nothing to a process in a container's namespaces; [`ProcEvents::open`]
//! therefore proves the events flow before it is trusted. Where it fails the
//! scanner falls back to re-reading known processes slowly (see `process.rs`).
//! Setting `ODIN_STATUS_PROCESS_EVENTS=off` chooses that fallback (for a host
//! that forks so much that reading every event costs more than the sweep).

use std::collections::HashMap;
use std::mem::MaybeUninit;
use std::time::{Duration, Instant};

use rustix::fd::OwnedFd;
use rustix::io::Errno;
use rustix::net::{
    bind, netlink, recv, send, socket_with, AddressFamily, RecvFlags, SendFlags, SocketFlags,
    SocketType,
};

/// Multicast group and callback id of process events (`CN_IDX_PROC`, `CN_VAL_PROC`).
const CN_IDX_PROC: u32 = 1;
const CN_VAL_PROC: u32 = 1;
/// `PROC_CN_MCAST_LISTEN`.
const MCAST_LISTEN: u32 = 1;
/// `NLMSG_DONE`: the message type the connector's requests are sent as.
const NLMSG_DONE: u16 = 3;
/// `NLMSG_ERROR`.
const NLMSG_ERROR: u16 = 2;
/// `NLMSG_OVERRUN`: the kernel says data was lost.
const NLMSG_OVERRUN: u16 = 4;

/// `enum proc_event.what` values used here.
const EVENT_FORK: u32 = 0x0000_0001;
const EVENT_EXEC: u32 = 0x0000_0002;
const EVENT_COMM: u32 = 0x0000_0200;
const EVENT_EXIT: u32 = 0x8000_0000;

/// Byte offsets in one message: `nlmsghdr` (16 bytes), `cn_msg` (20 bytes),
/// then `proc_event`: `what`, `cpu`, `timestamp_ns`, and the event's fields.
const NLMSG_TYPE: usize = 4;
const EVENT_WHAT: usize = 36;
const EVENT_DATA: usize = 52;

/// The environment variable that turns the kernel's events off.
pub const SWITCH: &str = "ODIN_STATUS_PROCESS_EVENTS";

/// How long [`ProcEvents::open`] waits for its own probe event.
const PROBE_WAIT: Duration = Duration::from_millis(500);

/// Room asked for in the socket's receive queue: about 100,000 events, so a
/// burst of process starts between two cycles at 1 Hz is not lost.
const RECEIVE_BUFFER: usize = 8 << 20;

/// What the events since the last drain say.
#[derive(Debug, Default, PartialEq)]
pub struct Changes {
    /// Processes (thread-group ids) that `exec`ed or changed their name.
    pub changed: Vec<i32>,
    /// Processes created or `exec`ed (`false`) or ended (`true`), in the order
    /// the kernel told; threads are left out, as `/proc` lists only processes.
    pub lives: Vec<(i32, bool)>,
    /// Processes that ended, with their exit status as Python's
    /// `returncode` gives it: the exit code, or minus the killing signal.
    pub exited: HashMap<i32, i32>,
    /// The kernel dropped events (the queue overflowed) or the socket
    /// failed: anything may have changed.
    pub lost: bool,
}

impl Changes {
    /// Adds what a later drain said after what this one says.
    pub fn extend(&mut self, later: Changes) {
        self.changed.extend(later.changed);
        self.lives.extend(later.lives);
        self.exited.extend(later.exited);
        self.lost |= later.lost;
    }
}

pub struct ProcEvents {
    socket: OwnedFd,
    buf: Vec<u8>,
}

impl ProcEvents {
    /// Subscribes to the kernel's process events and checks they arrive.
    /// The error says why they cannot be had, as a phrase.
    pub fn open() -> Result<ProcEvents, String> {
        if std::env::var(SWITCH).is_ok_and(|v| v == "off") {
            return Err(format!("{SWITCH}=off"));
        }
        let mut events = Self::subscribe()
            .map_err(|e| format!("{e}; before Linux 6.6 they need CAP_NET_ADMIN"))?;
        events.probe()?;
        Ok(events)
    }

    fn subscribe() -> Result<ProcEvents, Errno> {
        let socket = socket_with(
            AddressFamily::NETLINK,
            SocketType::DGRAM,
            SocketFlags::NONBLOCK | SocketFlags::CLOEXEC,
            Some(netlink::CONNECTOR),
        )?;
        bind(&socket, &netlink::SocketAddrNetlink::new(0, CN_IDX_PROC))?;
        if rustix::net::sockopt::set_socket_recv_buffer_size_force(&socket, RECEIVE_BUFFER).is_err()
        {
            // Without CAP_NET_ADMIN the kernel caps this at its rmem_max.
            let _ = rustix::net::sockopt::set_socket_recv_buffer_size(&socket, RECEIVE_BUFFER);
        }
        send(&socket, &listen_request(), SendFlags::empty())?;
        Ok(ProcEvents {
            socket,
            buf: Vec::with_capacity(4096),
        })
    }

    /// Renames this thread to the name it has, which makes the kernel send a
    /// "comm" event for this process, and waits for that event.
    fn probe(&mut self) -> Result<(), String> {
        let name =
            rustix::thread::name().map_err(|e| format!("cannot read the thread name: {e}"))?;
        rustix::thread::set_name(&name)
            .map_err(|e| format!("cannot rename the thread to probe for events: {e}"))?;
        let own = std::process::id() as i32;
        let deadline = Instant::now() + PROBE_WAIT;
        while Instant::now() < deadline {
            if self.drain().changed.contains(&own) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Err(format!(
            "the kernel accepted the subscription but sent no event within {} ms",
            PROBE_WAIT.as_millis()
        ))
    }

    /// A duplicate of the socket, for a caller to wait on (readiness is the
    /// socket's, whichever descriptor reads it).
    pub fn socket_fd(&self) -> Option<OwnedFd> {
        match self.socket.try_clone() {
            Ok(fd) => Some(fd),
            Err(e) => {
                tracing::warn!(
                    "cannot wait for process events ({e}); starts are seen once per cycle"
                );
                None
            }
        }
    }

    /// Reads every event waiting, without blocking.
    pub fn drain(&mut self) -> Changes {
        let mut changes = Changes::default();
        loop {
            self.buf.clear();
            let space: &mut [MaybeUninit<u8>] = self.buf.spare_capacity_mut();
            match recv(&self.socket, space, RecvFlags::DONTWAIT) {
                Ok(((message, _), _)) => read_event(message, &mut changes),
                Err(Errno::AGAIN) => return changes,
                Err(Errno::INTR) => continue,
                Err(Errno::NOBUFS) => changes.lost = true,
                Err(e) => {
                    tracing::debug!("process events: {e}");
                    changes.lost = true;
                    return changes;
                }
            }
        }
    }
}

/// The message that asks the kernel to start sending events.
fn listen_request() -> Vec<u8> {
    let payload = MCAST_LISTEN.to_ne_bytes();
    let mut cn = Vec::with_capacity(20 + payload.len());
    for word in [CN_IDX_PROC, CN_VAL_PROC, 0, 0] {
        cn.extend_from_slice(&word.to_ne_bytes());
    }
    cn.extend_from_slice(&(payload.len() as u16).to_ne_bytes());
    cn.extend_from_slice(&0u16.to_ne_bytes());
    cn.extend_from_slice(&payload);
    let mut message = Vec::with_capacity(16 + cn.len());
    message.extend_from_slice(&((16 + cn.len()) as u32).to_ne_bytes());
    message.extend_from_slice(&NLMSG_DONE.to_ne_bytes());
    message.extend_from_slice(&0u16.to_ne_bytes()); // flags
    message.extend_from_slice(&0u32.to_ne_bytes()); // seq
    message.extend_from_slice(&0u32.to_ne_bytes()); // port: the kernel fills it
    message.extend_from_slice(&cn);
    message
}

fn u32_at(message: &[u8], at: usize) -> Option<u32> {
    let bytes = message.get(at..at + 4)?;
    Some(u32::from_ne_bytes(bytes.try_into().ok()?))
}

fn i32_at(message: &[u8], at: usize) -> Option<i32> {
    u32_at(message, at).map(|v| v as i32)
}

/// Adds one received message to `changes`; anything short or unknown is ignored.
fn read_event(message: &[u8], changes: &mut Changes) {
    let kind = message
        .get(NLMSG_TYPE..NLMSG_TYPE + 2)
        .and_then(|b| b.try_into().ok())
        .map(u16::from_ne_bytes);
    if kind == Some(NLMSG_OVERRUN) {
        changes.lost = true;
        return;
    }
    if kind == Some(NLMSG_ERROR) {
        return;
    }
    let Some(what) = u32_at(message, EVENT_WHAT) else {
        return;
    };
    // Fields of the event: (pid, tgid, ...); a thread's pid differs from its tgid.
    let pid = i32_at(message, EVENT_DATA);
    let tgid = i32_at(message, EVENT_DATA + 4);
    match (what, pid, tgid) {
        (EVENT_FORK, Some(_), Some(_)) => {
            // A fork's fields are the parent's (pid, tgid), then the child's.
            let child = i32_at(message, EVENT_DATA + 8);
            let child_tgid = i32_at(message, EVENT_DATA + 12);
            if let (Some(child), Some(child_tgid)) = (child, child_tgid) {
                if child == child_tgid {
                    changes.lives.push((child, false));
                }
            }
        }
        (EVENT_EXEC, Some(_), Some(tgid)) => {
            changes.changed.push(tgid);
            // Alive, whatever an exit event said before: a thread's `exec`
            // ends the group's leader (one exit event for the group) and
            // carries on under the group's PID.
            changes.lives.push((tgid, false));
        }
        (EVENT_COMM, Some(_), Some(tgid)) => changes.changed.push(tgid),
        (EVENT_EXIT, Some(pid), Some(tgid)) if pid == tgid => {
            if let Some(status) = i32_at(message, EVENT_DATA + 8) {
                changes.exited.insert(tgid, returncode(status));
                changes.lives.push((tgid, true));
            }
        }
        _ => {}
    }
}

/// A wait status as Python's `returncode`: the exit code, or minus the signal.
fn returncode(status: i32) -> i32 {
    let signal = status & 0x7f;
    if signal == 0 {
        (status >> 8) & 0xff
    } else {
        -signal
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(what: u32, fields: &[u32]) -> Vec<u8> {
        let mut m = vec![0u8; EVENT_DATA];
        m.splice(EVENT_WHAT..EVENT_WHAT + 4, what.to_ne_bytes());
        for f in fields {
            m.extend_from_slice(&f.to_ne_bytes());
        }
        m
    }

    #[test]
    fn exec_comm_and_process_exit_are_read() {
        let mut changes = Changes::default();
        read_event(&event(EVENT_EXEC, &[41, 40]), &mut changes);
        read_event(&event(EVENT_COMM, &[50, 50]), &mut changes);
        read_event(&event(EVENT_EXIT, &[60, 60, 3 << 8, 17]), &mut changes);
        read_event(&event(EVENT_EXIT, &[70, 70, 9, 17]), &mut changes);
        // A thread ending is not its process ending.
        read_event(&event(EVENT_EXIT, &[81, 80, 0, 17]), &mut changes);
        assert_eq!(changes.changed, vec![40, 50]);
        assert_eq!(changes.exited, HashMap::from([(60, 3), (70, -9)]));
        assert_eq!(changes.lives, vec![(40, false), (60, true), (70, true)]);
        assert!(!changes.lost);
    }

    #[test]
    fn forks_of_processes_are_read_and_threads_left_out() {
        let mut changes = Changes::default();
        read_event(&event(EVENT_FORK, &[1, 1, 90, 90]), &mut changes);
        // A new thread of process 90.
        read_event(&event(EVENT_FORK, &[90, 90, 91, 90]), &mut changes);
        read_event(&event(EVENT_EXIT, &[90, 90, 0, 17]), &mut changes);
        assert_eq!(changes.lives, vec![(90, false), (90, true)]);
        // A short fork is ignored.
        read_event(&event(EVENT_FORK, &[1, 1, 92]), &mut changes);
        assert_eq!(changes.lives.len(), 2);
    }

    #[test]
    fn an_overrun_is_a_loss() {
        let mut changes = Changes::default();
        let mut m = event(EVENT_EXEC, &[1, 1]);
        m.splice(NLMSG_TYPE..NLMSG_TYPE + 2, NLMSG_OVERRUN.to_ne_bytes());
        read_event(&m, &mut changes);
        assert!(changes.lost);
        assert!(changes.changed.is_empty());
    }

    #[test]
    fn short_or_unknown_messages_are_ignored() {
        let mut changes = Changes::default();
        for m in [
            vec![],
            vec![0u8; 20],
            event(EVENT_EXEC, &[]),
            event(EVENT_EXIT, &[5, 5]),
            event(0x4, &[1, 1, 2, 2]),
        ] {
            read_event(&m, &mut changes);
        }
        assert_eq!(changes, Changes::default());
    }

    #[test]
    fn wait_status_reads_like_python() {
        assert_eq!(returncode(0), 0);
        assert_eq!(returncode(1 << 8), 1);
        assert_eq!(returncode(255 << 8), 255);
        assert_eq!(returncode(15), -15);
        assert_eq!(returncode(9 | 0x80), -9); // core dumped
    }

    #[test]
    fn listen_request_layout() {
        let m = listen_request();
        assert_eq!(m.len(), 40);
        assert_eq!(u32_at(&m, 0), Some(40));
        assert_eq!(u32_at(&m, 16), Some(CN_IDX_PROC));
        assert_eq!(u32_at(&m, 36), Some(MCAST_LISTEN));
    }
}
