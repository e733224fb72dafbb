//! Interface counters from `/proc/net/dev`, mapped to psutil's names; their
//! rates over the last cycle; and the link from `/sys/class/net/<nic>`.
//!
//! `/proc/net/dev` and each interface's `operstate`, `speed` and `mtu` are
//! kept open and read with `pread`. A sysfs handle outlives its interface:
//! once the interface is deleted, reads through it fail (ENODEV), so a failed
//! read of `mtu` (always readable while the interface exists) means the
//! interface went, and perhaps came back under the same name: the files are
//! opened again and its rates start afresh.

use std::path::PathBuf;
use std::time::Instant;

use super::{KeptOpen, Layout, Presence};
use crate::snapshot::{NetCounters, NetStats};

const NET_DEV: &str = "/proc/net/dev";
const SYS_CLASS_NET: &str = "/sys/class/net";

/// The interfaces present now, in the kernel's order.
pub fn present_interfaces() -> Vec<String> {
    match std::fs::read_to_string(NET_DEV) {
        Ok(text) => parse_net_dev(&text).into_iter().map(|(n, _)| n).collect(),
        Err(e) => {
            tracing::warn!("cannot read {NET_DEV}: {e}");
            Vec::new()
        }
    }
}

pub struct InterfaceWatch {
    net_dev: KeptOpen,
    buf: Vec<u8>,
    watched: Vec<Interface>,
}

struct Interface {
    presence: Presence,
    /// The counters of the previous cycle and when they were read.
    last: Option<(NetCounters, Instant)>,
    link: Link,
}

impl Interface {
    fn new(name: &str) -> Self {
        Interface {
            presence: Presence::new("interface", name),
            last: None,
            link: Link::Unopened,
        }
    }
}

/// The interface's sysfs files, opened when it is first seen.
enum Link {
    Unopened,
    Open {
        operstate: KeptOpen,
        speed: KeptOpen,
        mtu: KeptOpen,
    },
    /// `mtu` could not be opened (no sysfs for this network namespace):
    /// the link leaves are null until the interface goes and comes back.
    Unavailable,
}

impl InterfaceWatch {
    pub fn new(names: &[String]) -> Self {
        InterfaceWatch {
            net_dev: KeptOpen::new(NET_DEV, Layout::Records),
            buf: Vec::with_capacity(4096),
            watched: names.iter().map(|n| Interface::new(n)).collect(),
        }
    }

    /// Watches `names` from now on; interfaces kept keep their logging state.
    pub fn set_names(&mut self, names: &[String]) {
        let mut old = std::mem::take(&mut self.watched);
        self.watched = names
            .iter()
            .map(|n| match old.iter().position(|w| w.presence.name == *n) {
                Some(i) => old.swap_remove(i),
                None => Interface::new(n),
            })
            .collect();
    }

    /// One read of `/proc/net/dev` for all watched interfaces.
    pub fn sample(&mut self) -> Vec<(String, NetStats)> {
        if self.watched.is_empty() {
            return Vec::new();
        }
        let all = match self.net_dev.read(&mut self.buf) {
            Ok(()) => parse_net_dev(&String::from_utf8_lossy(&self.buf)),
            Err(e) => {
                tracing::warn!("cannot read {NET_DEV}: {e}");
                self.net_dev.close();
                Vec::new()
            }
        };
        let now = Instant::now();
        let mut out = Vec::with_capacity(self.watched.len());
        for nic in &mut self.watched {
            match all.iter().find(|(name, _)| *name == nic.presence.name) {
                Some((name, counters)) => {
                    nic.presence.found();
                    let mut stats = nic.link.read(name, &mut self.buf);
                    if stats.mtu.is_none() && matches!(nic.link, Link::Open { .. }) {
                        // The interface was deleted since the last cycle: a new one.
                        nic.link = Link::Unopened;
                        nic.last = None;
                        stats = nic.link.read(name, &mut self.buf);
                    }
                    stats.rates = nic.last.map_or([0.0; 8], |(before, then)| {
                        rates(&before, counters, then, now)
                    });
                    stats.counters = *counters;
                    nic.last = Some((*counters, now));
                    out.push((name.clone(), stats));
                }
                None => {
                    nic.presence.missing(&"it is not in /proc/net/dev");
                    nic.last = None;
                    nic.link = Link::Unopened;
                }
            }
        }
        out
    }
}

impl Link {
    /// `link_up`, `speed_mbps` and `mtu`, opening the files on first use.
    /// `mtu` is `None` when a kept-open handle has stopped working.
    fn read(&mut self, name: &str, buf: &mut Vec<u8>) -> NetStats {
        if let Link::Unopened = self {
            let dir = PathBuf::from(SYS_CLASS_NET).join(name);
            let mut mtu = KeptOpen::new(dir.join("mtu"), Layout::OneRecord);
            *self = match mtu.open() {
                Ok(()) => Link::Open {
                    operstate: KeptOpen::new(dir.join("operstate"), Layout::OneRecord),
                    speed: KeptOpen::new(dir.join("speed"), Layout::OneRecord),
                    mtu,
                },
                Err(e) => {
                    tracing::warn!(
                        "cannot open {} ({e}); link_up, speed_mbps and mtu of {name} are null",
                        mtu.path().display()
                    );
                    Link::Unavailable
                }
            };
        }
        let Link::Open {
            operstate,
            speed,
            mtu,
        } = self
        else {
            return NetStats::default();
        };
        let mut value = |file: &mut KeptOpen| {
            file.read(buf).ok()?;
            Some(String::from_utf8_lossy(buf).trim().to_string())
        };
        let mtu = value(mtu).and_then(|v| v.parse().ok());
        let link_up = value(operstate).map(|v| is_running(&v));
        // Unknown speed reads as -1, or fails (EINVAL) for lo, veth when down, ...
        let speed_mbps = value(speed)
            .and_then(|v| v.parse::<i64>().ok())
            .and_then(|s| u64::try_from(s).ok());
        NetStats {
            link_up,
            speed_mbps,
            mtu,
            ..NetStats::default()
        }
    }
}

/// psutil's `isup` is the IFF_RUNNING flag: the interface is up and its
/// operational state is up or unknown (as for `lo`).
fn is_running(operstate: &str) -> bool {
    matches!(operstate, "up" | "unknown")
}

/// Per-second rates from two readings. A counter that went backwards means
/// the interface was reset or recreated: every rate of that cycle is 0.0.
fn rates(before: &NetCounters, now: &NetCounters, then: Instant, at: Instant) -> [f64; 8] {
    let seconds = at.saturating_duration_since(then).as_secs_f64();
    let (old, new) = (before.values(), now.values());
    if seconds <= 0.0 || old.iter().zip(new).any(|(o, n)| n < *o) {
        return [0.0; 8];
    }
    let mut out = [0.0; 8];
    for ((rate, o), n) in out.iter_mut().zip(old).zip(new) {
        *rate = (n - o) as f64 / seconds;
    }
    out
}

/// Parses `/proc/net/dev` as psutil does: the name is everything before the last
/// colon; receive columns 0-3 and transmit columns 8-11. Malformed lines are skipped.
fn parse_net_dev(text: &str) -> Vec<(String, NetCounters)> {
    text.lines()
        .skip(2)
        .filter_map(|line| {
            let colon = line.rfind(':')?;
            let name = line.get(..colon)?.trim();
            let fields: Vec<u64> = line
                .get(colon + 1..)?
                .split_whitespace()
                .map(|f| f.parse().ok())
                .collect::<Option<_>>()?;
            let field = |i: usize| fields.get(i).copied();
            Some((
                name.to_string(),
                NetCounters {
                    bytes_recv: field(0)?,
                    packets_recv: field(1)?,
                    errin: field(2)?,
                    dropin: field(3)?,
                    bytes_sent: field(8)?,
                    packets_sent: field(9)?,
                    errout: field(10)?,
                    dropout: field(11)?,
                },
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const SAMPLE: &str = "\
Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:   20351     252    0    0    0     0          0         0    20351     252    0    0    0     0       0          0
  eth0: 123456789012 9876 1 2 0 0 0 7 555 66 3 4 0 0 0 0
 bad: 1 2 x
";

    #[test]
    fn maps_columns_to_psutil_names() {
        let parsed = parse_net_dev(SAMPLE);
        assert_eq!(parsed.len(), 2);
        let (name, lo) = &parsed[0];
        assert_eq!(name, "lo");
        assert_eq!(lo.bytes_recv, 20351);
        assert_eq!(lo.packets_sent, 252);
        let (name, eth) = &parsed[1];
        assert_eq!(name, "eth0");
        assert_eq!(
            *eth,
            NetCounters {
                bytes_recv: 123456789012,
                packets_recv: 9876,
                errin: 1,
                dropin: 2,
                bytes_sent: 555,
                packets_sent: 66,
                errout: 3,
                dropout: 4,
            }
        );
    }

    #[test]
    fn missing_interface_is_left_out() {
        let mut watch = InterfaceWatch::new(&["lo".into(), "no-such-nic0".into()]);
        let got = watch.sample();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, "lo");
    }

    #[test]
    fn lo_first_cycle_has_zero_rates_and_its_link() {
        let mut watch = InterfaceWatch::new(&["lo".into()]);
        let got = watch.sample();
        let (_, lo) = &got[0];
        assert_eq!(lo.rates, [0.0; 8]);
        assert_eq!(lo.link_up, Some(true), "lo is up, operstate unknown");
        assert_eq!(lo.speed_mbps, None, "lo has no speed");
        assert!(lo.mtu.is_some_and(|m| m > 0));
    }

    fn counters(v: u64) -> NetCounters {
        NetCounters {
            bytes_sent: v * 1000,
            bytes_recv: v * 2000,
            packets_sent: v,
            packets_recv: v * 2,
            errin: 0,
            errout: 0,
            dropin: v / 10,
            dropout: 0,
        }
    }

    #[test]
    fn rates_are_deltas_over_elapsed_seconds() {
        let t0 = Instant::now();
        let r = rates(
            &counters(100),
            &counters(150),
            t0,
            t0 + Duration::from_millis(500),
        );
        assert_eq!(r, [100_000.0, 200_000.0, 100.0, 200.0, 0.0, 0.0, 10.0, 0.0]);
    }

    #[test]
    fn counters_going_backwards_give_zero_not_negative_or_huge() {
        let t0 = Instant::now();
        let t1 = t0 + Duration::from_secs(1);
        // The interface was recreated: everything starts again from 0 ...
        assert_eq!(rates(&counters(1000), &counters(3), t0, t1), [0.0; 8]);
        // ... or only one counter went back (a driver's 32-bit counter wrapped).
        let mut wrapped = counters(1001);
        wrapped.bytes_sent = 5;
        assert_eq!(rates(&counters(1000), &wrapped, t0, t1), [0.0; 8]);
        // No time elapsed: no rate rather than infinity.
        assert_eq!(rates(&counters(1), &counters(2), t1, t1), [0.0; 8]);
        assert_eq!(rates(&counters(1), &counters(2), t1, t0), [0.0; 8]);
    }

    #[test]
    fn running_is_up_or_unknown() {
        assert!(is_running("up"));
        assert!(is_running("unknown"));
        for state in [
            "down",
            "lowerlayerdown",
            "dormant",
            "notpresent",
            "testing",
            "",
        ] {
            assert!(!is_running(state), "{state}");
        }
    }
}
