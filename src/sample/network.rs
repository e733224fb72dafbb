//! Interface counters from `/proc/net/dev`, mapped to psutil's names.

use super::Presence;
use crate::snapshot::NetCounters;

const NET_DEV: &str = "/proc/net/dev";

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
    watched: Vec<Presence>,
}

impl InterfaceWatch {
    pub fn new(names: &[String]) -> Self {
        InterfaceWatch {
            watched: names
                .iter()
                .map(|n| Presence::new("interface", n))
                .collect(),
        }
    }

    /// Watches `names` from now on; interfaces kept keep their logging state.
    pub fn set_names(&mut self, names: &[String]) {
        let mut old = std::mem::take(&mut self.watched);
        self.watched = names
            .iter()
            .map(|n| match old.iter().position(|w| w.name == *n) {
                Some(i) => old.swap_remove(i),
                None => Presence::new("interface", n),
            })
            .collect();
    }

    /// One read of `/proc/net/dev` for all watched interfaces.
    pub fn sample(&mut self) -> Vec<(String, NetCounters)> {
        if self.watched.is_empty() {
            return Vec::new();
        }
        let all = match std::fs::read_to_string(NET_DEV) {
            Ok(text) => parse_net_dev(&text),
            Err(e) => {
                tracing::warn!("cannot read {NET_DEV}: {e}");
                Vec::new()
            }
        };
        let mut out = Vec::with_capacity(self.watched.len());
        for watch in &mut self.watched {
            match all.iter().find(|(name, _)| *name == watch.name) {
                Some((name, counters)) => {
                    watch.found();
                    out.push((name.clone(), *counters));
                }
                None => watch.missing(&"it is not in /proc/net/dev"),
            }
        }
        out
    }
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
}
