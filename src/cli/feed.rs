//! The PUB stream as `watch`, `record` and `top` read it: one subscriber per
//! endpoint, the latest snapshot of each with its age, gaps in the cycle
//! numbers, and one staleness rule.
//!
//! Staleness is the rule every reader of the stream uses (the Python
//! subscriber too): a publisher is stale once no snapshot has come for three
//! of its update intervals, and never sooner than 2 s. Until its first
//! snapshot says what its interval is, 5 s of silence count as stale. Each
//! silence is reported once, and its end once.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{is_snapshot, CycleGaps};
use crate::protocol::decode_published;
use crate::transport::{self, Subscriber, TransportError};

/// Silence that makes a publisher stale before its interval is known.
const FIRST_SNAPSHOT_LIMIT: Duration = Duration::from_secs(5);
/// The shortest silence called stale, whatever the interval.
const LEAST_LIMIT: Duration = Duration::from_secs(2);
/// Update intervals without a snapshot that make a publisher stale.
const INTERVALS: u32 = 3;

/// How long one publisher has been quiet, and whether that is too long.
#[derive(Debug, Clone)]
pub struct Staleness {
    since: Instant,
    last: Option<Instant>,
    interval: Option<Duration>,
    reported: bool,
}

impl Staleness {
    pub fn new(now: Instant) -> Staleness {
        Staleness {
            since: now,
            last: None,
            interval: None,
            reported: false,
        }
    }

    /// The silence after which the publisher counts as stale.
    pub fn limit(&self) -> Duration {
        match self.interval {
            Some(interval) => (interval * INTERVALS).max(LEAST_LIMIT),
            None => FIRST_SNAPSHOT_LIMIT,
        }
    }

    /// Time since the last snapshot, or since the start when none came yet.
    pub fn silent(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.last.unwrap_or(self.since))
    }

    /// Age of the last snapshot; None before the first.
    pub fn age(&self, now: Instant) -> Option<Duration> {
        self.last.map(|last| now.saturating_duration_since(last))
    }

    pub fn is_stale(&self, now: Instant) -> bool {
        self.silent(now) >= self.limit()
    }

    /// A snapshot arrived. Returns the silence it ends when that silence had
    /// been reported stale.
    pub fn arrived(&mut self, now: Instant, interval: Option<Duration>) -> Option<Duration> {
        let silence = self.silent(now);
        self.last = Some(now);
        if interval.is_some() {
            self.interval = interval;
        }
        std::mem::take(&mut self.reported).then_some(silence)
    }

    /// Returns the limit the first time the silence passes it, then None
    /// until a snapshot arrives.
    pub fn check(&mut self, now: Instant) -> Option<Duration> {
        if self.reported || !self.is_stale(now) {
            return None;
        }
        self.reported = true;
        Some(self.limit())
    }
}

/// The update interval a snapshot states (`monitor/update_interval`, seconds).
fn stated_interval(message: &Value) -> Option<Duration> {
    let seconds = message
        .pointer("/params/monitor/update_interval")
        .and_then(Value::as_f64)?;
    Duration::try_from_secs_f64(seconds)
        .ok()
        .filter(|d| !d.is_zero())
}

/// One publisher being followed.
pub struct Source {
    pub endpoint: String,
    pub gaps: CycleGaps,
    pub staleness: Staleness,
}

/// What the stream did.
#[derive(Debug)]
pub enum Event {
    /// A message from source `index`; `missed` snapshots were lost just before it.
    Message {
        index: usize,
        message: Value,
        missed: u64,
    },
    /// A frame from source `index` that is not an IpcMessage.
    Undecodable { index: usize, error: String },
    /// Source `index` has sent no snapshot for `limit`, its staleness limit
    /// (told once per silence).
    Stale { index: usize, limit: Duration },
    /// Source `index` sends again after a silence told as Stale.
    Back { index: usize, silent: Duration },
    /// Nothing within the wait.
    Idle,
}

/// Subscribers on every endpoint, read as one stream.
pub struct Feed {
    _ctx: transport::Context,
    subscribers: Vec<Subscriber>,
    pub sources: Vec<Source>,
    pending: VecDeque<Event>,
}

impl Feed {
    pub fn connect(endpoints: &[String]) -> Result<Feed, TransportError> {
        let ctx = transport::Context::new();
        let now = Instant::now();
        let mut subscribers = Vec::with_capacity(endpoints.len());
        let mut sources = Vec::with_capacity(endpoints.len());
        for endpoint in endpoints {
            subscribers.push(Subscriber::connect(&ctx, endpoint, super::MAX_LINE_BYTES)?);
            sources.push(Source {
                endpoint: endpoint.clone(),
                gaps: CycleGaps::default(),
                staleness: Staleness::new(now),
            });
        }
        Ok(Feed {
            _ctx: ctx,
            subscribers,
            sources,
            pending: VecDeque::new(),
        })
    }

    /// The endpoint of source `index` ("" if there is none).
    pub fn endpoint(&self, index: usize) -> &str {
        self.sources
            .get(index)
            .map(|s| s.endpoint.as_str())
            .unwrap_or("")
    }

    /// The sentence for stderr that a Stale, Back or Undecodable event
    /// deserves; None for a message or nothing.
    pub fn tell(&self, event: &Event) -> Option<String> {
        Some(match event {
            Event::Stale { index, limit } => format!(
                "odin-status: no snapshot from {} for {}; still waiting (is the service running there?)",
                self.endpoint(*index),
                seconds(*limit)
            ),
            Event::Back { index, silent } => format!(
                "odin-status: snapshots from {} again after {}",
                self.endpoint(*index),
                seconds(*silent)
            ),
            Event::Undecodable { index, error } => format!(
                "odin-status: skipped a message from {}: {error}",
                self.endpoint(*index)
            ),
            Event::Message { .. } | Event::Idle => return None,
        })
    }

    /// The next thing that happened, waiting up to `wait` for a message.
    pub fn next(&mut self, wait: Duration) -> Result<Event, TransportError> {
        if let Some(event) = self.pending.pop_front() {
            return Ok(event);
        }
        let now = Instant::now();
        for (index, source) in self.sources.iter_mut().enumerate() {
            if let Some(limit) = source.staleness.check(now) {
                self.pending.push_back(Event::Stale { index, limit });
            }
        }
        if let Some(event) = self.pending.pop_front() {
            return Ok(event);
        }
        let Some((index, frame)) = transport::receive_any(&self.subscribers, wait)? else {
            return Ok(Event::Idle);
        };
        let message = match decode_published(&frame) {
            Ok(message) => message,
            Err(error) => return Ok(Event::Undecodable { index, error }),
        };
        let mut missed = 0;
        if let (true, Some(source)) = (is_snapshot(&message), self.sources.get_mut(index)) {
            if let Some(cycle) = message.get("id").and_then(Value::as_u64) {
                missed = source.gaps.see(cycle);
            }
            let back = source
                .staleness
                .arrived(Instant::now(), stated_interval(&message));
            if let Some(silent) = back {
                self.pending.push_back(Event::Message {
                    index,
                    message,
                    missed,
                });
                return Ok(Event::Back { index, silent });
            }
        }
        Ok(Event::Message {
            index,
            message,
            missed,
        })
    }
}

/// `1.5 s`, `12 s`: a duration for a person.
pub fn seconds(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 10.0 {
        format!("{s:.1} s")
    } else {
        format!("{s:.0} s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn stale_after_three_intervals_at_least_two_seconds() {
        let t0 = Instant::now();
        let mut s = Staleness::new(t0);
        assert_eq!(s.limit(), FIRST_SNAPSHOT_LIMIT);
        assert_eq!(s.check(t0 + Duration::from_secs(4)), None);
        assert_eq!(
            s.check(t0 + Duration::from_millis(5100)),
            Some(Duration::from_secs(5))
        );
        assert_eq!(s.check(t0 + Duration::from_secs(9)), None, "told once");
        let t1 = t0 + Duration::from_secs(10);
        assert_eq!(
            s.arrived(t1, Some(Duration::from_secs(1))),
            Some(Duration::from_secs(10))
        );
        assert_eq!(s.limit(), Duration::from_secs(3));
        assert_eq!(s.arrived(t1, None), None, "back is told once");
        s.arrived(t1, Some(Duration::from_millis(100)));
        assert_eq!(s.limit(), LEAST_LIMIT);
        assert!(!s.is_stale(t1 + Duration::from_millis(1999)));
        assert!(s.is_stale(t1 + Duration::from_secs(2)));
    }

    #[test]
    fn interval_from_the_monitor_block() {
        let m = json!({"params": {"monitor": {"update_interval": 0.5}}});
        assert_eq!(stated_interval(&m), Some(Duration::from_millis(500)));
        assert_eq!(stated_interval(&json!({"params": {}})), None);
        let zero = json!({"params": {"monitor": {"update_interval": 0.0}}});
        assert_eq!(stated_interval(&zero), None);
        let negative = json!({"params": {"monitor": {"update_interval": -1.0}}});
        assert_eq!(stated_interval(&negative), None);
    }
}
