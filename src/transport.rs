//! ZeroMQ sockets, and nothing else: how messages travel, not what they say.
//!
//! The control socket is a ROUTER so that one endpoint serves both pyzmq REQ
//! clients (`[identity, "", body]`) and odin-data's DEALER IpcChannel clients
//! (`[identity, body]`, no delimiter): a reply goes back with exactly the
//! envelope its request came with. The publisher is a PUB with a small send
//! high-water mark, so a subscriber that stops reading costs a few snapshots of
//! memory and never slows the sender.
//!
//! libzmq sockets are not thread-safe; each socket here is owned by one thread.
//!
//! libzmq trusts its peers with memory: any peer may subscribe to as many
//! topics of any length as it likes, present a routing id as long as a
//! message, keep a connection open without a word, and open as many as the
//! file descriptors allow. So every bound socket here has bounds of its own
//! (README, "Memory bound"): messages and subscriptions are capped in size
//! (`ZMQ_MAXMSGSIZE`), silent peers are dropped (ZMTP heartbeats, a handshake
//! deadline), connections are counted from libzmq's monitor events and new
//! ones shed beyond a cap, a control client whose routing id is longer than
//! ZMTP allows is disconnected at its first request, and the publisher counts distinct subscription
//! topics and drops the newest subscriber while there are too many.

use std::collections::VecDeque;
use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, RawFd};
use std::path::PathBuf;
use std::time::Duration;

pub use zmq::Context;

/// Snapshots queued per subscriber before new ones are dropped for it.
pub const PUB_HIGH_WATER_MARK: i32 = 4;

/// How long closing the publisher may wait to deliver what is queued.
const PUB_LINGER_MS: i32 = 500;

/// The longest subscription topic kept. The ones that make sense are short
/// prefixes: `""` (everything) or the head of a `status` message (38 bytes).
pub const MAX_TOPIC_BYTES: usize = 64;

/// A ZMTP 3.1 SUBSCRIBE command frame is its name (10 bytes) and the topic;
/// a ZMTP 3.0 subscription is one flag byte and the topic.
const SUBSCRIBE_FRAME_BYTES: i64 = 10 + MAX_TOPIC_BYTES as i64;

/// Distinct topics the publisher keeps before it drops subscribers. libzmq
/// keeps every distinct subscription in a trie (about 32 bytes per topic
/// byte), with no limit of its own.
pub const MAX_TOPICS: usize = 64;

/// Subscriptions libzmq takes in from a peer per call on the publisher,
/// so the topic count is checked often during a flood.
const PUB_RECEIVE_HWM: i32 = 64;

/// Subscribers connected at once; beyond this a new connection is dropped.
pub const MAX_SUBSCRIBERS: usize = 256;

/// Memory the control socket's connections may hold between them. Each may
/// hold its routing id twice (libzmq keeps the handshake's copy and the
/// ROUTER's) and a partial request, each up to the message size cap.
pub const CONTROL_MEMORY_BUDGET: i64 = 48 << 20;

/// Messages' worth of memory one control connection may hold (see above).
const MESSAGES_PER_CONNECTION: i64 = 3;

/// The longest routing id a control client may present: ZMTP (RFC 23) and
/// libzmq's own `ZMQ_ROUTING_ID` allow 255 bytes, but a ROUTER keeps whatever
/// a raw peer sends, up to the message size cap, for as long as it is there.
pub const MAX_ROUTING_ID_BYTES: usize = 255;

/// The message property where libzmq (4.1 and later) keeps the descriptor of
/// the connection a message came from (what `ZMQ_SRCFD` reads).
const SOURCE_FD: &str = "__fd";

/// Control connections at once whatever the message size: at least this many...
const MIN_CONTROL_CONNECTIONS: usize = 16;
/// ... and at most this many.
const MAX_CONTROL_CONNECTIONS: usize = 1024;

/// ZMTP heartbeats: a PING this often, and a peer that sends nothing (not
/// even the PONG) for the timeout is dropped. Idle clients of libzmq answer
/// on their own, so only dead or stalled peers go.
const HEARTBEAT_IVL_MS: i32 = 2_000;
const HEARTBEAT_TIMEOUT_MS: i32 = 6_000;

/// A connection that has not finished the ZMTP handshake by then is dropped.
const HANDSHAKE_MS: i32 = 5_000;

/// Control connections at once for a message size cap: the memory budget
/// divided by what one connection may hold.
pub fn max_control_connections(max_message_size: i64) -> usize {
    let per_connection = max_message_size
        .saturating_mul(MESSAGES_PER_CONNECTION)
        .max(1);
    let fits = usize::try_from(CONTROL_MEMORY_BUDGET / per_connection).unwrap_or(0);
    fits.clamp(MIN_CONTROL_CONNECTIONS, MAX_CONTROL_CONNECTIONS)
}

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("{flag} cannot bind {endpoint}: {reason}")]
    Bind {
        flag: &'static str,
        endpoint: String,
        reason: zmq::Error,
    },
    #[error("{flag} cannot bind {endpoint}: another process is listening there")]
    InUse {
        flag: &'static str,
        endpoint: String,
    },
    #[error("{flag} cannot lock {path}: {reason}")]
    Lock {
        flag: &'static str,
        path: String,
        reason: std::io::Error,
    },
    #[error("cannot connect to {endpoint}: {reason}")]
    Connect {
        endpoint: String,
        reason: zmq::Error,
    },
    #[error("socket error: {0}")]
    Socket(#[from] zmq::Error),
    /// The HTTP listener of `--metrics`.
    #[error("{flag} cannot listen on {address}: {reason}")]
    Listen {
        flag: &'static str,
        address: std::net::SocketAddr,
        reason: std::io::Error,
    },
}

/// Polls one socket for input. A signal arriving mid-wait (EINTR) counts as
/// "nothing yet", so the caller can look at its stop flag and wait again.
fn wait_readable(socket: &zmq::Socket, timeout: Duration) -> Result<bool, TransportError> {
    match socket.poll(zmq::POLLIN, millis(timeout)) {
        Ok(ready) => Ok(ready > 0),
        Err(zmq::Error::EINTR) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

fn millis(timeout: Duration) -> i64 {
    timeout.as_millis().try_into().unwrap_or(i64::MAX)
}

/// A request as it arrived: the routing envelope and the body frames.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incoming {
    envelope: Vec<Vec<u8>>,
    pub body: Vec<Vec<u8>>,
}

impl Incoming {
    /// Splits a ROUTER message. Everything up to and including the first empty
    /// delimiter is envelope (REQ clients, and REQs behind proxies); without a
    /// delimiter, only the identity is (DEALER clients).
    pub fn split(mut frames: Vec<Vec<u8>>) -> Incoming {
        let delimiter = frames
            .iter()
            .enumerate()
            .skip(1)
            .find(|(i, f)| f.is_empty() && *i + 1 < frames.len())
            .map(|(i, _)| i);
        let body_start = match delimiter {
            Some(i) => i + 1,
            None => 1.min(frames.len()),
        };
        let body = frames.split_off(body_start);
        Incoming {
            envelope: frames,
            body,
        }
    }
}

pub struct ControlSocket {
    socket: zmq::Socket,
    connections: Connections,
    /// A request was answered within the last [`ASKING_AGAIN_MS`].
    answering: bool,
}

/// After an answer, how long the next request is waited for on the ROUTER
/// alone, with a blocking receive as a bare ROUTER would: a client that
/// asks in a loop asks again within this, and a wait on one socket costs
/// less per request than polling it beside the connection monitor. Then
/// the wait falls back to polling both, so new connections are still
/// shed as they come while no one asks.
const ASKING_AGAIN_MS: i32 = 20;

impl ControlSocket {
    /// Binds the ROUTER. Requests larger than `max_message_size` bytes are
    /// refused by libzmq itself (it drops the sending peer), so a client cannot
    /// make the service buffer an arbitrarily large message; the same cap
    /// bounds a peer's routing id, which arrives in a handshake frame.
    pub fn bind(
        ctx: &Context,
        endpoint: &str,
        max_message_size: i64,
        ipc_mode: u32,
    ) -> Result<(Self, Option<IpcClaim>), TransportError> {
        let socket = ctx.socket(zmq::ROUTER)?;
        socket.set_linger(0)?;
        socket.set_maxmsgsize(max_message_size)?;
        guard_peers(&socket)?;
        let cap = max_control_connections(max_message_size);
        let connections = Connections::watch(ctx, &socket, "ctrl", cap)?;
        socket.set_rcvtimeo(ASKING_AGAIN_MS)?;
        let claim = bind(&socket, "--ctrl", endpoint, ipc_mode)?;
        Ok((
            ControlSocket {
                socket,
                connections,
                answering: false,
            },
            claim,
        ))
    }

    /// Waits up to `timeout` for one request, shedding new connections
    /// beyond the cap as they arrive.
    pub fn receive(&mut self, timeout: Duration) -> Result<Option<Incoming>, TransportError> {
        let mut first = zmq::Message::new();
        if self.answering {
            match self.socket.recv(&mut first, 0) {
                Ok(()) => {
                    // Connections made meanwhile: a non-blocking look.
                    self.connections.tend();
                    return self.take(first);
                }
                Err(zmq::Error::EAGAIN | zmq::Error::EINTR) => self.answering = false,
                Err(e) => return Err(e.into()),
            }
        }
        let (request, events) = {
            let mut items = [
                self.socket.as_poll_item(zmq::POLLIN),
                self.connections.events.as_poll_item(zmq::POLLIN),
            ];
            match zmq::poll(&mut items, millis(timeout)) {
                Ok(_) => {}
                Err(zmq::Error::EINTR) => return Ok(None),
                Err(e) => return Err(e.into()),
            }
            (items[0].is_readable(), items[1].is_readable())
        };
        if events {
            self.connections.tend();
        }
        if !request {
            return Ok(None);
        }
        match self.socket.recv(&mut first, zmq::DONTWAIT) {
            Ok(()) => self.take(first),
            Err(zmq::Error::EAGAIN) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The rest of a request whose first frame has come.
    fn take(&mut self, mut first: zmq::Message) -> Result<Option<Incoming>, TransportError> {
        // The first frame is the routing id the ROUTER keeps for the peer.
        if first.len() > MAX_ROUTING_ID_BYTES {
            self.drop_sender(&mut first)?;
            return Ok(None);
        }
        let mut frames = vec![first.to_vec()];
        if first.get_more() {
            frames.extend(self.socket.recv_multipart(zmq::DONTWAIT)?);
        }
        self.answering = true;
        Ok(Some(Incoming::split(frames)))
    }

    /// Drops the connection a message came from, unanswered: the rest of the
    /// message is read and discarded, and the connection (named by the
    /// descriptor libzmq attaches to the frames it receives, tcp and ipc
    /// alike) is shut down like one over the cap.
    fn drop_sender(&mut self, first: &mut zmq::Message) -> Result<(), TransportError> {
        let routing_id_bytes = first.len();
        // libzmq 4.3.4 leaves the routing id frame without properties when
        // the ROUTER was polled first; the frames the peer sent carry them.
        let mut fd = source_fd(first);
        let mut more = first.get_more();
        while more {
            let mut rest = zmq::Message::new();
            self.socket.recv(&mut rest, zmq::DONTWAIT)?;
            fd = fd.or_else(|| source_fd(&mut rest));
            more = rest.get_more();
        }
        match fd {
            Some(fd) => {
                shut_down(fd);
                tracing::warn!(
                    "a client presented a {routing_id_bytes}-byte routing id (ZMTP allows {MAX_ROUTING_ID_BYTES}); it was disconnected unanswered"
                );
            }
            None => tracing::warn!(
                "a client presented a {routing_id_bytes}-byte routing id (ZMTP allows {MAX_ROUTING_ID_BYTES}); it was not answered (libzmq did not say which connection it came from)"
            ),
        }
        Ok(())
    }

    /// Sends `body` back along the request's envelope. A client that has gone
    /// is silently skipped by ROUTER, so this never blocks.
    pub fn reply(&self, to: &Incoming, body: &[u8]) -> Result<(), TransportError> {
        let mut frames: Vec<&[u8]> = to.envelope.iter().map(Vec::as_slice).collect();
        frames.push(body);
        self.socket.send_multipart(frames, zmq::DONTWAIT)?;
        Ok(())
    }
}

/// The descriptor of the connection a received frame came from.
fn source_fd(frame: &mut zmq::Message) -> Option<RawFd> {
    frame.gets(SOURCE_FD)?.parse().ok()
}

/// The status publisher: an XPUB, so the service sees each distinct topic
/// subscribed to and can bound how many libzmq keeps.
pub struct Publisher {
    socket: zmq::Socket,
    connections: Connections,
    /// Distinct topics subscribed to now, counted from XPUB's notifications.
    topics: usize,
}

impl Publisher {
    pub fn bind(
        ctx: &Context,
        endpoint: &str,
        ipc_mode: u32,
    ) -> Result<(Self, Option<IpcClaim>), TransportError> {
        let socket = ctx.socket(zmq::XPUB)?;
        socket.set_sndhwm(PUB_HIGH_WATER_MARK)?;
        // Long enough for the last snapshot to reach connected subscribers at
        // shutdown, short enough to stop within a second.
        socket.set_linger(PUB_LINGER_MS)?;
        // Subscribers send nothing but subscriptions: a longer frame drops the
        // peer before libzmq allocates it.
        socket.set_maxmsgsize(SUBSCRIBE_FRAME_BYTES)?;
        socket.set_rcvhwm(PUB_RECEIVE_HWM)?;
        guard_peers(&socket)?;
        let connections = Connections::watch(ctx, &socket, "pub", MAX_SUBSCRIBERS)?;
        let claim = bind(&socket, "--pub", endpoint, ipc_mode)?;
        let publisher = Publisher {
            socket,
            connections,
            topics: 0,
        };
        Ok((publisher, claim))
    }

    /// Queues one message for every subscriber; PUB drops it for any whose
    /// queue is full instead of waiting.
    pub fn publish(&self, message: &[u8]) -> Result<(), TransportError> {
        self.socket.send(message, zmq::DONTWAIT)?;
        Ok(())
    }

    /// Takes in what subscribers sent and sheds what is over a bound: new
    /// connections beyond [`MAX_SUBSCRIBERS`], and while more than
    /// [`MAX_TOPICS`] distinct topics are held, the newest subscriber (a
    /// flood comes from a recent one; the others reconnect on their own).
    /// Call it often: libzmq takes subscriptions in only when asked.
    pub fn tend(&mut self) {
        // Bounded, so a flood cannot keep this thread from publishing.
        for _ in 0..4 * PUB_RECEIVE_HWM {
            match self.socket.recv_bytes(zmq::DONTWAIT) {
                Ok(note) => match note.first() {
                    Some(1) => self.topics += 1,
                    Some(0) => self.topics = self.topics.saturating_sub(1),
                    _ => {}
                },
                Err(_) => break,
            }
        }
        self.connections.tend();
        if self.topics > MAX_TOPICS && self.connections.drop_newest() {
            tracing::warn!(
                "subscribers hold {} distinct topics (at most {MAX_TOPICS} are kept); the newest subscriber was disconnected",
                self.topics
            );
        }
    }
}

/// Options every bound socket gets: silent peers are dropped.
fn guard_peers(socket: &zmq::Socket) -> Result<(), TransportError> {
    socket.set_heartbeat_ivl(HEARTBEAT_IVL_MS)?;
    socket.set_heartbeat_timeout(HEARTBEAT_TIMEOUT_MS)?;
    socket.set_handshake_ivl(HANDSHAKE_MS)?;
    Ok(())
}

/// The connections accepted on one bound socket, oldest first, known from
/// libzmq's monitor events (each carries the connection's descriptor).
/// libzmq offers no way to close one peer, so one over the cap is shut down
/// at the socket level; libzmq sees the end of the stream and cleans up.
/// Beyond the cap the newest go: connections that are there keep their
/// place (a flood cannot evict a working client), and one that stops
/// answering heartbeats frees its place within seconds.
struct Connections {
    events: zmq::Socket,
    open: VecDeque<RawFd>,
    cap: usize,
    /// The connection shut down for holding too much, until its end is seen.
    dropping: Option<RawFd>,
}

impl Connections {
    fn watch(
        ctx: &Context,
        socket: &zmq::Socket,
        name: &str,
        cap: usize,
    ) -> Result<Connections, TransportError> {
        let endpoint = format!("inproc://odin-status-connections-{name}");
        let wanted = zmq::SocketEvent::ACCEPTED as i32 | zmq::SocketEvent::DISCONNECTED as i32;
        socket.monitor(&endpoint, wanted)?;
        let events = ctx.socket(zmq::PAIR)?;
        events.set_linger(0)?;
        // Room for a burst of short-lived connections between two reads.
        events.set_rcvhwm(100_000)?;
        events.connect(&endpoint)?;
        Ok(Connections {
            events,
            open: VecDeque::new(),
            cap,
            dropping: None,
        })
    }

    /// Reads the queued events and shuts down the newest connections over the cap.
    fn tend(&mut self) {
        while let Ok(frames) = self.events.recv_multipart(zmq::DONTWAIT) {
            let Some((event, fd)) = frames.first().and_then(|f| monitor_event(f)) else {
                continue;
            };
            if event == zmq::SocketEvent::ACCEPTED {
                self.open.push_back(fd);
            } else if event == zmq::SocketEvent::DISCONNECTED {
                self.open.retain(|&open| open != fd);
                if self.dropping == Some(fd) {
                    self.dropping = None;
                }
            }
        }
        let mut shed = 0usize;
        while self.open.len() > self.cap {
            if let Some(fd) = self.open.pop_back() {
                shut_down(fd);
                shed += 1;
            }
        }
        if shed > 0 {
            tracing::warn!(
                "{shed} new connection(s) dropped: at most {} are kept at once",
                self.cap
            );
        }
    }

    /// Shuts down the newest connection, unless one shut down before has not
    /// ended yet (so one flood costs one subscriber at a time). Whether one was.
    fn drop_newest(&mut self) -> bool {
        if self.dropping.is_some() {
            return false;
        }
        let Some(fd) = self.open.pop_back() else {
            return false;
        };
        shut_down(fd);
        self.dropping = Some(fd);
        true
    }
}

/// The event and descriptor of a monitor message's first frame (a 16-bit
/// event and a 32-bit value, in the host's byte order).
fn monitor_event(frame: &[u8]) -> Option<(zmq::SocketEvent, RawFd)> {
    let event = u16::from_ne_bytes(frame.get(0..2)?.try_into().ok()?);
    let value = i32::from_ne_bytes(frame.get(2..6)?.try_into().ok()?);
    Some((zmq::SocketEvent::from_raw(event), value))
}

/// Ends a libzmq connection from outside: its I/O thread then reads the end
/// of the stream and closes the descriptor itself.
fn shut_down(fd: RawFd) {
    // SAFETY: the descriptor is only borrowed for the call; shutdown neither
    // closes nor keeps it. Should it have been closed and its number reused
    // since the event, shutdown fails on anything but a socket, and ends at
    // worst some other connection of this process, which its peer retries.
    let fd = unsafe { BorrowedFd::borrow_raw(fd) };
    let _ = rustix::net::shutdown(fd, rustix::net::Shutdown::Both);
}

/// An ipc endpoint held by this process: a lock on `<socket>.lock`, taken
/// before binding, so two services started together cannot both bind the
/// socket file (libzmq unlinks whatever is there). Dropping it removes the
/// socket file and the lock file, on every way out of `serve` that unwinds.
pub struct IpcClaim {
    socket_path: PathBuf,
    lock_path: PathBuf,
    _lock: File,
}

impl IpcClaim {
    fn take(
        flag: &'static str,
        endpoint: &str,
        path: PathBuf,
        mode: u32,
    ) -> Result<IpcClaim, TransportError> {
        use std::os::unix::fs::OpenOptionsExt;
        let mut lock_name = path.clone().into_os_string();
        lock_name.push(".lock");
        let lock_path = PathBuf::from(lock_name);
        let failed = |reason: std::io::Error| TransportError::Lock {
            flag,
            path: lock_path.display().to_string(),
            reason,
        };
        // A lock file removed by its holder between our open and our lock is
        // not the lock any more: take it again until the file we locked is
        // the one at the path.
        for _ in 0..100 {
            let lock = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .mode(mode & 0o666)
                .open(&lock_path)
                .map_err(failed)?;
            match rustix::fs::flock(&lock, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
                Ok(()) => {}
                Err(rustix::io::Errno::WOULDBLOCK) => {
                    return Err(TransportError::InUse {
                        flag,
                        endpoint: endpoint.to_string(),
                    })
                }
                Err(e) => return Err(failed(e.into())),
            }
            let held = rustix::fs::fstat(lock.as_fd()).map_err(|e| failed(e.into()))?;
            match rustix::fs::stat(&lock_path) {
                Ok(at_path) if at_path.st_dev == held.st_dev && at_path.st_ino == held.st_ino => {
                    return Ok(IpcClaim {
                        socket_path: path,
                        lock_path,
                        _lock: lock,
                    })
                }
                _ => continue,
            }
        }
        Err(failed(std::io::Error::other(
            "it kept being replaced while it was taken",
        )))
    }
}

impl Drop for IpcClaim {
    fn drop(&mut self) {
        // The socket file first, then the lock file while the lock is still held.
        for path in [&self.socket_path, &self.lock_path] {
            match std::fs::remove_file(path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => tracing::warn!("cannot remove {}: {e}", path.display()),
            }
        }
    }
}

/// Binds `socket`. An ipc endpoint is claimed first (see [`IpcClaim`]) and its
/// file is created with `ipc_mode` already in force: the umask is set for the
/// bind, so no peer can connect through wider permissions in between.
fn bind(
    socket: &zmq::Socket,
    flag: &'static str,
    endpoint: &str,
    ipc_mode: u32,
) -> Result<Option<IpcClaim>, TransportError> {
    let claim = match ipc_file(endpoint) {
        Some(path) => Some(IpcClaim::take(flag, endpoint, path, ipc_mode)?),
        None => None,
    };
    // libzmq binds an ipc socket in this thread (bind(2) then listen(2)), so
    // the umask is in force for exactly that file. Nothing else creates files
    // while the service starts.
    let mask = rustix::fs::Mode::from_raw_mode(!ipc_mode & 0o777);
    let previous = claim.as_ref().map(|_| rustix::process::umask(mask));
    let bound = socket.bind(endpoint);
    if let Some(previous) = previous {
        rustix::process::umask(previous);
    }
    bound.map_err(|reason| TransportError::Bind {
        flag,
        endpoint: endpoint.to_string(),
        reason,
    })?;
    Ok(claim)
}

fn connect(socket: &zmq::Socket, endpoint: &str) -> Result<(), TransportError> {
    // libzmq takes a port it cannot use and then never connects; say so now.
    if let Some(port) = endpoint
        .strip_prefix("tcp://")
        .and_then(|address| address.rsplit_once(':'))
        .map(|(_, port)| port)
        .filter(|port| !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()))
    {
        if !matches!(port.parse::<u16>(), Ok(1..)) {
            return Err(TransportError::Connect {
                endpoint: endpoint.to_string(),
                reason: zmq::Error::EINVAL,
            });
        }
    }
    socket
        .connect(endpoint)
        .map_err(|reason| TransportError::Connect {
            endpoint: endpoint.to_string(),
            reason,
        })
}

/// Whether a tcp endpoint listens beyond this host (anything but loopback).
pub fn reachable_from_network(endpoint: &str) -> bool {
    let Some(address) = endpoint.strip_prefix("tcp://") else {
        return false;
    };
    let host = match address.rsplit_once(':') {
        Some((host, _port)) => host,
        None => address,
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.eq_ignore_ascii_case("localhost") || host.eq_ignore_ascii_case("lo") {
        return false;
    }
    match host.parse::<std::net::IpAddr>() {
        Ok(ip) => !ip.is_loopback(),
        // `*`, an interface name or a host name: assume the network can reach it.
        Err(_) => true,
    }
}

/// The file behind an `ipc://` endpoint, if it has one (abstract `@` names do not).
pub fn ipc_file(endpoint: &str) -> Option<PathBuf> {
    let path = endpoint.strip_prefix("ipc://")?;
    (!path.is_empty() && !path.starts_with('@')).then(|| PathBuf::from(path))
}

/// One request and its reply, from a fresh REQ socket; `Ok(None)` on timeout.
/// A fresh socket per call means a lost reply cannot wedge the next call.
pub fn request(
    endpoint: &str,
    body: &[u8],
    timeout: Duration,
) -> Result<Option<Vec<u8>>, TransportError> {
    let ctx = Context::new();
    let socket = ctx.socket(zmq::REQ)?;
    socket.set_linger(0)?;
    connect(&socket, endpoint)?;
    socket.send(body, 0)?;
    if !wait_readable(&socket, timeout)? {
        return Ok(None);
    }
    Ok(Some(socket.recv_bytes(zmq::DONTWAIT)?))
}

/// A SUB socket subscribed to everything the publisher sends.
pub struct Subscriber {
    socket: zmq::Socket,
}

impl Subscriber {
    /// Messages longer than `max_message` bytes drop the publisher's
    /// connection instead of being taken in (libzmq reconnects).
    pub fn connect(
        ctx: &Context,
        endpoint: &str,
        max_message: usize,
    ) -> Result<Self, TransportError> {
        let socket = ctx.socket(zmq::SUB)?;
        socket.set_linger(0)?;
        socket.set_maxmsgsize(i64::try_from(max_message).unwrap_or(i64::MAX))?;
        socket.set_subscribe(b"")?;
        connect(&socket, endpoint)?;
        Ok(Subscriber { socket })
    }

    pub fn receive(&self, timeout: Duration) -> Result<Option<Vec<u8>>, TransportError> {
        if !wait_readable(&self.socket, timeout)? {
            return Ok(None);
        }
        Ok(Some(self.socket.recv_bytes(zmq::DONTWAIT)?))
    }
}

/// Waits up to `timeout` for a message on any of `subscribers`; returns the
/// index of the one it came from, so a recorder knows its source.
pub fn receive_any(
    subscribers: &[Subscriber],
    timeout: Duration,
) -> Result<Option<(usize, Vec<u8>)>, TransportError> {
    let mut items: Vec<zmq::PollItem> = subscribers
        .iter()
        .map(|s| s.socket.as_poll_item(zmq::POLLIN))
        .collect();
    match zmq::poll(&mut items, millis(timeout)) {
        Ok(0) | Err(zmq::Error::EINTR) => return Ok(None),
        Ok(_) => {}
        Err(e) => return Err(e.into()),
    }
    let Some(ready) = items.iter().position(|item| item.is_readable()) else {
        return Ok(None);
    };
    drop(items);
    match subscribers.get(ready) {
        Some(sub) => Ok(Some((ready, sub.socket.recv_bytes(zmq::DONTWAIT)?))),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(parts: &[&[u8]]) -> Vec<Vec<u8>> {
        parts.iter().map(|p| p.to_vec()).collect()
    }

    #[test]
    fn req_envelope_keeps_delimiter() {
        let inc = Incoming::split(frames(&[b"id", b"", b"{}"]));
        assert_eq!(inc.envelope, frames(&[b"id", b""]));
        assert_eq!(inc.body, frames(&[b"{}"]));
    }

    #[test]
    fn dealer_envelope_is_identity_only() {
        let inc = Incoming::split(frames(&[b"id", b"{}"]));
        assert_eq!(inc.envelope, frames(&[b"id"]));
        assert_eq!(inc.body, frames(&[b"{}"]));
        // A DEALER that sends one empty frame sent an empty body, not a delimiter.
        let inc = Incoming::split(frames(&[b"id", b""]));
        assert_eq!(inc.envelope, frames(&[b"id"]));
        assert_eq!(inc.body, frames(&[b""]));
    }

    #[test]
    fn proxied_req_keeps_whole_envelope() {
        let inc = Incoming::split(frames(&[b"id1", b"id2", b"", b"{}"]));
        assert_eq!(inc.envelope, frames(&[b"id1", b"id2", b""]));
        assert_eq!(inc.body, frames(&[b"{}"]));
    }

    #[test]
    fn several_body_frames_are_kept_for_the_caller_to_refuse() {
        let inc = Incoming::split(frames(&[b"id", b"a", b"b"]));
        assert_eq!(inc.body.len(), 2);
    }

    #[test]
    fn loopback_or_network() {
        for ep in [
            "tcp://127.0.0.1:5040",
            "tcp://localhost:1",
            "tcp://[::1]:5",
            "tcp://127.1.2.3:9",
            "ipc:///tmp/x",
            "tcp://lo:5040",
        ] {
            assert!(!reachable_from_network(ep), "{ep}");
        }
        for ep in [
            "tcp://*:5040",
            "tcp://0.0.0.0:5040",
            "tcp://192.168.1.4:5040",
            "tcp://eth0:5040",
            "tcp://[::]:1",
            "tcp://daq1:5040",
        ] {
            assert!(reachable_from_network(ep), "{ep}");
        }
    }

    #[test]
    fn ipc_files() {
        assert_eq!(
            ipc_file("ipc:///tmp/x.sock"),
            Some(PathBuf::from("/tmp/x.sock"))
        );
        assert_eq!(ipc_file("ipc://@abstract"), None);
        assert_eq!(ipc_file("tcp://127.0.0.1:5040"), None);
    }
}
