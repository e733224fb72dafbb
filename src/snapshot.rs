//! One cycle's samples as plain data, and their place in the parameter tree.
//!
//! `sample` fills a [`Snapshot`]; [`Snapshot::to_tree`] lays it out under the
//! names odin-control's SystemStatusAdapter uses (`disk`, `network`, `process`),
//! then the blocks odin has not (`process_summary`, and `monitor`, which the
//! server appends). The params of `process_event` messages are laid out here too.
//! Keeping the layout here, apart from the /proc code and the GET rules, means
//! the tree's shape is written down in one place.

use std::time::SystemTime;

use serde_json::{json, Value};

use crate::protocol::timestamp_at;
use crate::tree::{Kind, Leaf, Node};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DiskUsage {
    pub total: u64,
    pub used: u64,
    pub free: u64,
    pub percent: f64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NetCounters {
    pub bytes_sent: u64,
    pub bytes_recv: u64,
    pub packets_sent: u64,
    pub packets_recv: u64,
    pub errin: u64,
    pub errout: u64,
    pub dropin: u64,
    pub dropout: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ProcessStats {
    pub pid: i32,
    pub cpu_percent: f64,
    pub cpu_affinity: Vec<u64>,
    pub memory_percent: f64,
    pub memory_rss: u64,
    pub memory_vms: u64,
    pub memory_shared: u64,
    /// Clock ticks after boot: with the PID, what identifies the process.
    pub start_time: u64,
    pub num_threads: u64,
    /// `None` when its `fd` directory cannot be listed (another user's process).
    pub num_fds: Option<u64>,
}

/// `process_summary/<name>`: the processes of one name taken together.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessSummary {
    pub count: u64,
    pub expected: Option<u32>,
    pub starts: u64,
    pub exits: u64,
    pub restarts: u64,
    pub last_start: Option<SystemTime>,
    pub last_exit: Option<SystemTime>,
    /// Seconds since the oldest reported process started.
    pub uptime: Option<f64>,
    pub cpu_percent: f64,
    pub memory_rss: u64,
    pub num_threads: u64,
    /// `None` when any reported process's descriptors cannot be counted.
    pub num_fds: Option<u64>,
}

impl ProcessSummary {
    /// `ok` when as many run as expected, `missing` when fewer, `extra` when
    /// more, `unknown` when nothing is expected.
    pub fn state(&self) -> &'static str {
        match self.expected {
            None => "unknown",
            Some(n) if self.count < u64::from(n) => "missing",
            Some(n) if self.count > u64::from(n) => "extra",
            Some(_) => "ok",
        }
    }

    fn to_node(&self) -> Node {
        let time =
            |t: Option<SystemTime>| t.map_or(Leaf::null(Kind::Str), |t| Leaf::str(timestamp_at(t)));
        Node::branch()
            .with("count", Leaf::int(self.count))
            .with(
                "expected",
                self.expected
                    .map_or(Leaf::null(Kind::Int), |n| Leaf::int(n.into())),
            )
            .with("state", Leaf::str(self.state()))
            .with("starts", Leaf::int(self.starts))
            .with("exits", Leaf::int(self.exits))
            .with("restarts", Leaf::int(self.restarts))
            .with("last_start", time(self.last_start))
            .with("last_exit", time(self.last_exit))
            .with(
                "uptime",
                self.uptime.map_or(Leaf::null(Kind::Float), Leaf::float),
            )
            .with("cpu_percent", Leaf::float(self.cpu_percent))
            .with("memory_rss", Leaf::int(self.memory_rss))
            .with("num_threads", Leaf::int(self.num_threads))
            .with(
                "num_fds",
                self.num_fds.map_or(Leaf::null(Kind::Int), Leaf::int),
            )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LifeEvent {
    Started,
    Exited,
}

/// A matched process started or exited: published at once as a `process_event`.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessEvent {
    pub name: String,
    pub pid: i32,
    pub event: LifeEvent,
    /// When it started (from its start time) or when its exit was noticed.
    pub time: SystemTime,
}

impl ProcessEvent {
    pub const MSG_VAL: &'static str = "process_event";

    /// The message's params. No `exit_code`: the processes are not the
    /// service's children, and /proc does not keep the code of others'.
    pub fn params(&self) -> Value {
        json!({
            "name": self.name,
            "pid": self.pid,
            "event": match self.event {
                LifeEvent::Started => "started",
                LifeEvent::Exited => "exited",
            },
            "time": timestamp_at(self.time),
        })
    }
}

/// The top-level `monitor` block: the service's own figures.
#[derive(Debug, Clone, PartialEq)]
pub struct Monitor {
    pub version: String,
    pub cycle: u32,
    pub update_interval: f64,
    pub last_cycle_duration: f64,
    pub max_cycle_duration: f64,
    pub processes_scanned: u64,
    pub sampling_errors: u64,
    pub snapshots_published: u64,
    pub requests_served: u64,
    pub start_time: String,
}

impl Monitor {
    pub fn to_node(&self) -> Node {
        Node::branch()
            .with("version", Leaf::str(self.version.clone()))
            .with("cycle", Leaf::int(self.cycle.into()))
            .with("update_interval", Leaf::float(self.update_interval))
            .with("last_cycle_duration", Leaf::float(self.last_cycle_duration))
            .with("max_cycle_duration", Leaf::float(self.max_cycle_duration))
            .with("processes_scanned", Leaf::int(self.processes_scanned))
            .with("sampling_errors", Leaf::int(self.sampling_errors))
            .with("snapshots_published", Leaf::int(self.snapshots_published))
            .with("requests_served", Leaf::int(self.requests_served))
            .with("start_time", Leaf::str(self.start_time.clone()))
    }
}

/// Everything one cycle sampled, in configuration order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    /// Disks that could be read this cycle: (tree key, usage).
    pub disks: Vec<(String, DiskUsage)>,
    /// Interfaces present this cycle: (name, counters).
    pub interfaces: Vec<(String, NetCounters)>,
    /// Every configured process name, with the processes reported for it.
    pub processes: Vec<(String, Vec<ProcessStats>)>,
    /// Every configured process name, with its summary.
    pub process_summary: Vec<(String, ProcessSummary)>,
    /// Starts and exits noticed while sampling, to publish before the snapshot.
    pub events: Vec<ProcessEvent>,
}

/// The tree key of a disk path: every `/` becomes `_`, as in odin-control.
pub fn disk_key(path: &str) -> String {
    path.replace('/', "_")
}

impl Snapshot {
    pub fn to_tree(&self) -> Node {
        let mut disks = Node::branch();
        for (key, d) in &self.disks {
            disks.insert(
                key.clone(),
                Node::branch()
                    .with("total", Leaf::int(d.total))
                    .with("used", Leaf::int(d.used))
                    .with("free", Leaf::int(d.free))
                    .with("percent", Leaf::float(d.percent)),
            );
        }
        let mut network = Node::branch();
        for (name, n) in &self.interfaces {
            network.insert(
                name.clone(),
                Node::branch()
                    .with("bytes_sent", Leaf::int(n.bytes_sent))
                    .with("bytes_recv", Leaf::int(n.bytes_recv))
                    .with("packets_sent", Leaf::int(n.packets_sent))
                    .with("packets_recv", Leaf::int(n.packets_recv))
                    .with("errin", Leaf::int(n.errin))
                    .with("errout", Leaf::int(n.errout))
                    .with("dropin", Leaf::int(n.dropin))
                    .with("dropout", Leaf::int(n.dropout)),
            );
        }
        let mut processes = Node::branch();
        for (name, stats) in &self.processes {
            let mut by_pid = Node::branch();
            for p in stats {
                by_pid.insert(
                    p.pid.to_string(),
                    Node::branch()
                        .with("cpu_percent", Leaf::float(p.cpu_percent))
                        .with(
                            "cpu_affinity",
                            Leaf::int_list(p.cpu_affinity.iter().copied()),
                        )
                        .with("memory_percent", Leaf::float(p.memory_percent))
                        .with("memory_rss", Leaf::int(p.memory_rss))
                        .with("memory_vms", Leaf::int(p.memory_vms))
                        .with("memory_shared", Leaf::int(p.memory_shared)),
                );
            }
            processes.insert(name.clone(), by_pid);
        }
        let mut summary = Node::branch();
        for (name, s) in &self.process_summary {
            summary.insert(name.clone(), s.to_node());
        }
        Node::branch()
            .with("disk", disks)
            .with("network", network)
            .with("process", processes)
            .with("process_summary", summary)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn disk_keys_follow_odin() {
        assert_eq!(disk_key("/"), "_");
        assert_eq!(disk_key("/tmp"), "_tmp");
        assert_eq!(disk_key("/data/raw/"), "_data_raw_");
    }

    #[test]
    fn layout_matches_odin_adapter() {
        let snap = Snapshot {
            disks: vec![(
                "_".into(),
                DiskUsage {
                    total: 10,
                    used: 4,
                    free: 5,
                    percent: 44.4,
                },
            )],
            interfaces: vec![("lo".into(), NetCounters::default())],
            processes: vec![
                (
                    "sleep".into(),
                    vec![ProcessStats {
                        pid: 42,
                        cpu_percent: 1.5,
                        cpu_affinity: vec![0, 1],
                        memory_percent: 0.25,
                        memory_rss: 4096,
                        memory_vms: 8192,
                        memory_shared: 2048,
                        start_time: 100,
                        num_threads: 1,
                        num_fds: Some(3),
                    }],
                ),
                ("absent".into(), vec![]),
            ],
            process_summary: vec![(
                "absent".into(),
                ProcessSummary {
                    count: 0,
                    expected: Some(1),
                    starts: 2,
                    exits: 2,
                    restarts: 1,
                    last_start: None,
                    last_exit: Some(SystemTime::UNIX_EPOCH),
                    uptime: None,
                    cpu_percent: 0.0,
                    memory_rss: 0,
                    num_threads: 0,
                    num_fds: None,
                },
            )],
            events: vec![],
        };
        let tree = serde_json::to_value(snap.to_tree()).unwrap();
        assert_eq!(
            tree,
            json!({
                "disk": {"_": {"total": 10, "used": 4, "free": 5, "percent": 44.4}},
                "network": {"lo": {"bytes_sent": 0, "bytes_recv": 0, "packets_sent": 0,
                    "packets_recv": 0, "errin": 0, "errout": 0, "dropin": 0, "dropout": 0}},
                "process": {
                    "sleep": {"42": {"cpu_percent": 1.5, "cpu_affinity": [0, 1],
                        "memory_percent": 0.25, "memory_rss": 4096, "memory_vms": 8192,
                        "memory_shared": 2048}},
                    "absent": {}
                },
                "process_summary": {
                    "absent": {"count": 0, "expected": 1, "state": "missing", "starts": 2,
                        "exits": 2, "restarts": 1, "last_start": null,
                        "last_exit": timestamp_at(SystemTime::UNIX_EPOCH), "uptime": null,
                        "cpu_percent": 0.0, "memory_rss": 0, "num_threads": 0, "num_fds": null}
                }
            })
        );
    }
}
