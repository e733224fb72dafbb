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

use std::path::PathBuf;
use std::time::Duration;

pub use zmq::Context;

/// Snapshots queued per subscriber before new ones are dropped for it.
pub const PUB_HIGH_WATER_MARK: i32 = 4;

/// How long closing the publisher may wait to deliver what is queued.
const PUB_LINGER_MS: i32 = 500;

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
    #[error("{flag} cannot set the permissions of {path}: {reason}")]
    Permissions {
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
}

impl ControlSocket {
    /// Binds the ROUTER. Requests larger than `max_message_size` bytes are
    /// refused by libzmq itself (it drops the sending peer), so a client cannot
    /// make the service buffer an arbitrarily large message.
    pub fn bind(
        ctx: &Context,
        endpoint: &str,
        max_message_size: i64,
        ipc_mode: u32,
    ) -> Result<Self, TransportError> {
        let socket = ctx.socket(zmq::ROUTER)?;
        socket.set_linger(0)?;
        socket.set_maxmsgsize(max_message_size)?;
        bind(&socket, "--ctrl", endpoint, ipc_mode)?;
        Ok(ControlSocket { socket })
    }

    /// Waits up to `timeout` for one request.
    pub fn receive(&self, timeout: Duration) -> Result<Option<Incoming>, TransportError> {
        if !wait_readable(&self.socket, timeout)? {
            return Ok(None);
        }
        let frames = self.socket.recv_multipart(zmq::DONTWAIT)?;
        Ok(Some(Incoming::split(frames)))
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

pub struct Publisher {
    socket: zmq::Socket,
}

impl Publisher {
    pub fn bind(ctx: &Context, endpoint: &str, ipc_mode: u32) -> Result<Self, TransportError> {
        let socket = ctx.socket(zmq::PUB)?;
        socket.set_sndhwm(PUB_HIGH_WATER_MARK)?;
        // Long enough for the last snapshot to reach connected subscribers at
        // shutdown, short enough to stop within a second.
        socket.set_linger(PUB_LINGER_MS)?;
        bind(&socket, "--pub", endpoint, ipc_mode)?;
        Ok(Publisher { socket })
    }

    /// Queues one message for every subscriber; PUB drops it for any whose
    /// queue is full instead of waiting.
    pub fn publish(&self, message: &[u8]) -> Result<(), TransportError> {
        self.socket.send(message, zmq::DONTWAIT)?;
        Ok(())
    }
}

/// Binds `socket`, refusing to take over an ipc file another process is
/// listening on (libzmq would silently unlink it and steal the endpoint), and
/// giving a new ipc file `ipc_mode` permissions.
fn bind(
    socket: &zmq::Socket,
    flag: &'static str,
    endpoint: &str,
    ipc_mode: u32,
) -> Result<(), TransportError> {
    let file = ipc_file(endpoint);
    if let Some(path) = &file {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(TransportError::InUse {
                flag,
                endpoint: endpoint.to_string(),
            });
        }
    }
    socket
        .bind(endpoint)
        .map_err(|reason| TransportError::Bind {
            flag,
            endpoint: endpoint.to_string(),
            reason,
        })?;
    if let Some(path) = file {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(ipc_mode)).map_err(
            |reason| TransportError::Permissions {
                flag,
                path: path.display().to_string(),
                reason,
            },
        )?;
    }
    Ok(())
}

fn connect(socket: &zmq::Socket, endpoint: &str) -> Result<(), TransportError> {
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
    pub fn connect(ctx: &Context, endpoint: &str) -> Result<Self, TransportError> {
        let socket = ctx.socket(zmq::SUB)?;
        socket.set_linger(0)?;
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
