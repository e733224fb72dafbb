//! The HTTP side of `--metrics`: a small HTTP/1.1 responder on the service's
//! own tokio runtime, serving `GET /metrics` and nothing else.
//!
//! Written by hand rather than with an HTTP library: one route, no request
//! bodies, and each guard below is a few lines. Measured on the same tokio,
//! hyper 1.x (http1 server, with hyper-util and http-body-util) added 280 KB
//! to a stripped binary and 11 s to a clean one-job build, and still needed
//! the connection cap written by hand; this whole module and its renderer
//! add 178 KB. A scraper sees a plain HTTP/1.1 server with keep-alive.
//!
//! Bad or stalled clients cost little and never stop a scrape from others:
//! - a request head larger than [`MAX_HEAD`] gets `431` and the connection closes;
//! - a request head not complete within [`HEAD_TIMEOUT`] of waiting for it
//!   (trickled a byte at a time or never sent) gets `408`, or, on an idle
//!   keep-alive connection, is closed quietly;
//! - beyond [`MAX_CONNECTIONS`] open connections, a new one gets `503` at
//!   once and is closed;
//! - a response the client does not read within [`WRITE_TIMEOUT`] closes it.
//!
//! Rendering runs on the runtime's blocking pool, so the sampling loop that
//! shares the runtime is never held up by a scrape.

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use super::{render, Format};
use crate::cache::CachedTree;
use crate::settings::Settings;
use crate::transport::TransportError;

/// Largest request head (request line and headers) accepted.
pub const MAX_HEAD: usize = 8 * 1024;
/// Time a client has to send a whole request head.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(5);
/// Time a client has to take a whole response.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long input is drained after an answer that closes the connection.
const LINGER: Duration = Duration::from_secs(1);
/// Connections served at once; a scraper needs one.
pub const MAX_CONNECTIONS: usize = 16;

/// What a scrape reads: the latest tree, and the settings for disk paths.
#[derive(Clone)]
pub struct Source {
    pub latest: Arc<RwLock<Arc<CachedTree>>>,
    pub settings: Arc<Settings>,
}

/// Binds the listener before anything runs, so a bad address fails the start.
pub fn bind(address: SocketAddr) -> Result<std::net::TcpListener, TransportError> {
    let listen = || -> std::io::Result<std::net::TcpListener> {
        let listener = std::net::TcpListener::bind(address)?;
        listener.set_nonblocking(true)?;
        Ok(listener)
    };
    listen().map_err(|reason| TransportError::Listen {
        flag: "--metrics",
        address,
        reason,
    })
}

/// Accepts connections until the runtime stops. Must run inside the runtime.
pub async fn serve(listener: std::net::TcpListener, source: Source) {
    let listener = match TcpListener::from_std(listener) {
        Ok(listener) => listener,
        Err(e) => {
            tracing::error!("cannot serve metrics: {e}");
            return;
        }
    };
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of descriptors, most likely: wait rather than spin.
                tracing::warn!("metrics: cannot accept a connection: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        match Arc::clone(&slots).try_acquire_owned() {
            Ok(slot) => {
                let source = source.clone();
                tokio::spawn(async move {
                    connection(stream, source).await;
                    drop(slot);
                });
            }
            Err(_) => {
                // A short answer the socket buffer takes at once: no task, no wait.
                let busy = Response::error(
                    Status::Unavailable,
                    "Too many connections to the metrics endpoint; try again shortly.",
                );
                let _ = stream.try_write(&busy.bytes());
            }
        }
    }
}

/// Serves requests on one connection until it closes, errs or stalls.
async fn connection(mut stream: TcpStream, source: Source) {
    let mut buffer = Vec::with_capacity(1024);
    loop {
        let head = tokio::time::timeout(HEAD_TIMEOUT, read_head(&mut stream, &mut buffer)).await;
        let response = match head {
            Ok(Ok(Some(end))) => {
                let response = match std::str::from_utf8(buffer.get(..end).unwrap_or_default()) {
                    Ok(text) => respond(text, &source).await,
                    Err(_) => Response::error(Status::BadRequest, "The request is not text."),
                };
                buffer.drain(..end);
                response
            }
            Ok(Ok(None)) => return,
            Ok(Err(HeadError::TooLarge)) => Response::error(
                Status::TooLarge,
                &format!("The request head is larger than {MAX_HEAD} bytes."),
            ),
            Ok(Err(HeadError::Io)) => return,
            Err(_) if buffer.is_empty() => return,
            Err(_) => Response::error(
                Status::Timeout,
                &format!(
                    "The request head did not arrive within {} seconds.",
                    HEAD_TIMEOUT.as_secs()
                ),
            ),
        };
        let sent = tokio::time::timeout(WRITE_TIMEOUT, stream.write_all(&response.bytes())).await;
        if !matches!(sent, Ok(Ok(()))) {
            return;
        }
        if response.close {
            linger(stream).await;
            return;
        }
    }
}

/// Closes after an answer the client may still be sending into: our side
/// first, then what still arrives is read and dropped for a moment. Closing
/// with unread input would reset the connection, and a reset can destroy the
/// answer before the client reads it.
async fn linger(mut stream: TcpStream) {
    let _ = tokio::time::timeout(WRITE_TIMEOUT, stream.shutdown()).await;
    let mut sink = [0u8; 1024];
    let drain = async {
        let mut left = MAX_HEAD * 8;
        while left > 0 {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => return,
                Ok(n) => left = left.saturating_sub(n),
            }
        }
    };
    let _ = tokio::time::timeout(LINGER, drain).await;
}

enum HeadError {
    TooLarge,
    Io,
}

/// Reads until `buffer` holds a whole request head; returns its length
/// (through the blank line), or `None` when the client closed before one began.
async fn read_head(
    stream: &mut TcpStream,
    buffer: &mut Vec<u8>,
) -> Result<Option<usize>, HeadError> {
    let mut chunk = [0u8; 1024];
    loop {
        if let Some(end) = head_end(buffer) {
            return Ok(Some(end));
        }
        if buffer.len() > MAX_HEAD {
            return Err(HeadError::TooLarge);
        }
        match stream.read(&mut chunk).await {
            Ok(0) if buffer.is_empty() => return Ok(None),
            Ok(0) | Err(_) => return Err(HeadError::Io),
            Ok(n) => buffer.extend_from_slice(chunk.get(..n).unwrap_or_default()),
        }
    }
}

/// The length of the head in `buffer`: up to and including `\r\n\r\n`
/// (or a bare `\n\n`, which RFC 9112 lets a server accept).
fn head_end(buffer: &[u8]) -> Option<usize> {
    let crlf = buffer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|at| at + 4);
    let lf = buffer
        .windows(2)
        .position(|w| w == b"\n\n")
        .map(|at| at + 2);
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The parts of a request head this server looks at.
#[derive(Debug, PartialEq)]
struct Request<'h> {
    method: &'h str,
    path: &'h str,
    /// HTTP/1.0, or `Connection: close`.
    close: bool,
    accept: Option<&'h str>,
    /// It announced a body, which this server does not read.
    has_body: bool,
}

fn parse(head: &str) -> Result<Request<'_>, Response> {
    let mut lines = head.lines();
    let request_line = lines.next().unwrap_or_default();
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Response::error(
            Status::BadRequest,
            "The request line is not METHOD PATH HTTP/1.1.",
        ));
    };
    let close = match version {
        "HTTP/1.1" => false,
        "HTTP/1.0" => true,
        _ if version.starts_with("HTTP/") => {
            return Err(Response::error(
                Status::VersionNotSupported,
                "Only HTTP/1.1 and HTTP/1.0 are served here.",
            ))
        }
        _ => {
            return Err(Response::error(
                Status::BadRequest,
                "The request line is not METHOD PATH HTTP/1.1.",
            ))
        }
    };
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_alphabetic()) {
        return Err(Response::error(
            Status::BadRequest,
            "The method is not a word.",
        ));
    }
    let mut request = Request {
        method,
        path: target.split('?').next().unwrap_or_default(),
        close,
        accept: None,
        has_body: false,
    };
    for line in lines.map(|l| l.trim_end_matches('\r')) {
        if line.is_empty() {
            break;
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(Response::error(
                Status::BadRequest,
                "A header line has no colon.",
            ));
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("accept") {
            request.accept = Some(value);
        } else if name.eq_ignore_ascii_case("connection") {
            request.close |= value.eq_ignore_ascii_case("close");
        } else if name.eq_ignore_ascii_case("transfer-encoding")
            || (name.eq_ignore_ascii_case("content-length") && value != "0")
        {
            request.has_body = true;
        }
    }
    Ok(request)
}

/// The answer to one request head.
async fn respond(head: &str, source: &Source) -> Response {
    let request = match parse(head) {
        Ok(request) => request,
        Err(response) => return response,
    };
    let mut response = match (request.path, request.method) {
        ("/metrics", "GET" | "HEAD") => {
            let format = Format::from_accept(request.accept);
            let tree = Arc::clone(&*source.latest.read().unwrap_or_else(|p| p.into_inner()));
            let disks = source.settings.live().disks.clone();
            let rendered = tokio::task::spawn_blocking(move || render(&tree, &disks, format)).await;
            match rendered {
                Ok(body) => Response {
                    status: Status::Ok,
                    content_type: format.content_type(),
                    extra: "Vary: Accept\r\n",
                    body: body.into_bytes(),
                    head_only: request.method == "HEAD",
                    close: false,
                },
                Err(e) => {
                    tracing::error!("metrics: rendering failed: {e}");
                    Response::error(Status::Internal, "The metrics could not be rendered.")
                }
            }
        }
        ("/metrics", _) => Response {
            extra: "Allow: GET, HEAD\r\n",
            ..Response::error(
                Status::MethodNotAllowed,
                "Only GET and HEAD are served on /metrics.",
            )
        },
        _ => Response {
            close: false,
            ..Response::error(Status::NotFound, "Not found: only /metrics is served here.")
        },
    };
    response.close |= request.close || request.has_body;
    response.head_only = request.method == "HEAD";
    response
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Ok,
    BadRequest,
    NotFound,
    MethodNotAllowed,
    Timeout,
    TooLarge,
    Internal,
    Unavailable,
    VersionNotSupported,
}

impl Status {
    fn line(self) -> &'static str {
        match self {
            Status::Ok => "200 OK",
            Status::BadRequest => "400 Bad Request",
            Status::NotFound => "404 Not Found",
            Status::MethodNotAllowed => "405 Method Not Allowed",
            Status::Timeout => "408 Request Timeout",
            Status::TooLarge => "431 Request Header Fields Too Large",
            Status::Internal => "500 Internal Server Error",
            Status::Unavailable => "503 Service Unavailable",
            Status::VersionNotSupported => "505 HTTP Version Not Supported",
        }
    }
}

#[derive(Debug, PartialEq)]
struct Response {
    status: Status,
    content_type: &'static str,
    /// Further header lines, each ending in CRLF.
    extra: &'static str,
    body: Vec<u8>,
    /// HEAD: the headers GET would give, without the body.
    head_only: bool,
    close: bool,
}

impl Response {
    /// An error with a one-sentence body; the connection closes after it.
    fn error(status: Status, sentence: &str) -> Response {
        Response {
            status,
            content_type: "text/plain; charset=utf-8",
            extra: "",
            body: format!("{sentence}\n").into_bytes(),
            head_only: false,
            close: true,
        }
    }

    fn bytes(&self) -> Vec<u8> {
        let mut out = format!(
            "HTTP/1.1 {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n{}{}\r\n",
            self.status.line(),
            self.content_type,
            self.body.len(),
            self.extra,
            if self.close {
                "Connection: close\r\n"
            } else {
                ""
            },
        )
        .into_bytes();
        if !self.head_only {
            out.extend_from_slice(&self.body);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_end_at_the_blank_line() {
        assert_eq!(head_end(b"GET / HTTP/1.1\r\n\r\nGET"), Some(18));
        assert_eq!(head_end(b"GET / HTTP/1.1\n\n"), Some(16));
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nHost: x\r\n"), None);
    }

    #[test]
    fn requests_are_read_for_what_matters() {
        let request = parse(
            "GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\nACCEPT: text/plain\r\nConnection: Close\r\n\r\n",
        );
        assert_eq!(
            request,
            Ok(Request {
                method: "GET",
                path: "/metrics",
                close: true,
                accept: Some("text/plain"),
                has_body: false,
            })
        );
        let posted = parse("POST /metrics HTTP/1.1\r\nContent-Length: 5\r\n\r\n");
        assert!(posted.is_ok_and(|r| r.has_body && !r.close));
        assert!(parse("HTTP/1.0 GET /\r\n\r\n").is_err());
        assert!(parse("GET /metrics HTTP/2\r\n\r\n")
            .is_err_and(|r| r.status == Status::VersionNotSupported));
        assert!(parse("GET /metrics HTTP/1.1\r\nno colon\r\n\r\n")
            .is_err_and(|r| r.status == Status::BadRequest));
        assert!(parse("G\u{e9}T /metrics HTTP/1.1\r\n\r\n").is_err());
    }
}
