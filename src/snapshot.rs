//! One cycle's samples as plain data, and their place in the parameter tree.
//!
//! `sample` fills a [`Snapshot`]; [`Snapshot::to_tree`] lays it out under the
//! names odin-control's SystemStatusAdapter uses (`disk`, `network`, `process`),
//! then the blocks odin does not have (`process_summary`, `host`, and
//! `monitor`, which the server appends). Leaves beyond odin's are only ever
//! appended after odin's own, so odin's part of the tree is unchanged. The
//! params of `process_event` messages are laid out here too.
//! Keeping the layout here, apart from the /proc code and the GET rules, means
//! the tree's shape is written down in one place.

use std::time::SystemTime;

use serde_json::{json, Value};

use crate::protocol::timestamp_at;
use crate::tree::{Kind, Leaf, Node};

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct DiskUsage {
    pub total: u64,
    pub used: u64,
    pub free: u64,
    pub percent: f64,
    pub inodes_total: u64,
    pub inodes_free: u64,
    pub read_only: bool,
    /// Bytes per second by which `used` grew over the recent window; 0.0 when
    /// steady or shrinking.
    pub write_rate: f64,
    /// Seconds until `free` is used up at `write_rate`; `None` when not filling.
    pub time_to_full: Option<f64>,
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

impl NetCounters {
    /// The counters' tree names, in the order of [`NetCounters::values`].
    pub const NAMES: [&'static str; 8] = [
        "bytes_sent",
        "bytes_recv",
        "packets_sent",
        "packets_recv",
        "errin",
        "errout",
        "dropin",
        "dropout",
    ];

    /// The tree names of the counters' rates, in the same order.
    pub const RATE_NAMES: [&'static str; 8] = [
        "bytes_sent_rate",
        "bytes_recv_rate",
        "packets_sent_rate",
        "packets_recv_rate",
        "errin_rate",
        "errout_rate",
        "dropin_rate",
        "dropout_rate",
    ];

    pub fn values(&self) -> [u64; 8] {
        [
            self.bytes_sent,
            self.bytes_recv,
            self.packets_sent,
            self.packets_recv,
            self.errin,
            self.errout,
            self.dropin,
            self.dropout,
        ]
    }
}

/// One interface: counters since boot, their rates over the last cycle, and
/// the link as `/sys/class/net` tells it (`None` where it cannot be read).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NetStats {
    pub counters: NetCounters,
    /// Per second, in the order of [`NetCounters::RATE_NAMES`].
    pub rates: [f64; 8],
    pub link_up: Option<bool>,
    pub speed_mbps: Option<u64>,
    pub mtu: Option<u64>,
}

/// CPU time a process has used since it started, in clock ticks
/// (`utime` and `stime` of `/proc/PID/stat`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CpuTicks {
    pub user: u64,
    pub system: u64,
}

impl CpuTicks {
    pub fn both(self) -> u64 {
        self.user.saturating_add(self.system)
    }
}

impl std::ops::AddAssign for CpuTicks {
    fn add_assign(&mut self, other: CpuTicks) {
        self.user = self.user.saturating_add(other.user);
        self.system = self.system.saturating_add(other.system);
    }
}

/// CPU time in seconds, user and system.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CpuSeconds {
    pub user: f64,
    pub system: f64,
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
    pub cpu_ticks: CpuTicks,
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
    /// CPU time of the processes known now, plus the last seen CPU time of
    /// those that exited since the service started: it never goes back.
    pub cpu_seconds: CpuSeconds,
    /// More processes match than are tracked (a per-name cap, or the
    /// descriptor budget); the figures are of those tracked.
    pub capped: bool,
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
        Node::branch_for(20)
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
            .with(
                "cpu_seconds_total",
                Leaf::float(self.cpu_seconds.user + self.cpu_seconds.system),
            )
            .with("cpu_user_seconds_total", Leaf::float(self.cpu_seconds.user))
            .with(
                "cpu_system_seconds_total",
                Leaf::float(self.cpu_seconds.system),
            )
            .with("capped", Leaf::bool(self.capped))
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
    /// How it ended, when the kernel's process events said: the exit code,
    /// or minus the signal that killed it (Python's `returncode`).
    pub exit_code: Option<i32>,
}

impl ProcessEvent {
    pub const MSG_VAL: &'static str = "process_event";

    /// The message's params; `exit_code` only when it is known.
    pub fn params(&self) -> Value {
        let mut params = json!({
            "name": self.name,
            "pid": self.pid,
            "event": match self.event {
                LifeEvent::Started => "started",
                LifeEvent::Exited => "exited",
            },
            "time": timestamp_at(self.time),
        });
        if let (Some(code), Some(object)) = (self.exit_code, params.as_object_mut()) {
            object.insert("exit_code".into(), json!(code));
        }
        params
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
    pub log_write_errors: u64,
    pub start_time: String,
    /// PIDs the safety-net listing of /proc found the kernel's events missed.
    pub process_table_corrections: u64,
}

impl Monitor {
    pub fn to_node(&self) -> Node {
        Node::branch_for(16)
            .with("version", Leaf::str(self.version.clone()))
            .with("cycle", Leaf::int(self.cycle.into()))
            .with("update_interval", Leaf::float(self.update_interval))
            .with("last_cycle_duration", Leaf::float(self.last_cycle_duration))
            .with("max_cycle_duration", Leaf::float(self.max_cycle_duration))
            .with("processes_scanned", Leaf::int(self.processes_scanned))
            .with("sampling_errors", Leaf::int(self.sampling_errors))
            .with("snapshots_published", Leaf::int(self.snapshots_published))
            .with("requests_served", Leaf::int(self.requests_served))
            .with("log_write_errors", Leaf::int(self.log_write_errors))
            .with("start_time", Leaf::str(self.start_time.clone()))
            .with(
                "process_table_corrections",
                Leaf::int(self.process_table_corrections),
            )
    }
}

/// The host as a whole. Each group is `None` while its /proc file cannot be
/// read, and its leaves are then left out of the tree.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HostStats {
    pub hostname: String,
    /// Seconds since boot (`/proc/uptime`).
    pub uptime: Option<f64>,
    pub cpu: Option<HostCpu>,
    /// 1, 5 and 15 minute load averages, as `getloadavg()` (sysinfo).
    pub load_average: Option<[f64; 3]>,
    pub memory: Option<HostMemory>,
    /// Processes in this cycle's listing of /proc.
    pub processes: u64,
}

/// From `/proc/stat`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HostCpu {
    /// Epoch seconds (`btime`).
    pub boot_time: u64,
    /// psutil's `cpu_percent()` over the last cycle.
    pub percent: f64,
    /// psutil's `cpu_percent(percpu=True)` over the last cycle.
    pub percent_per_core: Vec<f64>,
}

/// From `/proc/meminfo`, with psutil's `virtual_memory` and `swap_memory` formulas.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct HostMemory {
    pub total: u64,
    pub available: u64,
    pub percent: f64,
    pub swap_total: u64,
    pub swap_used: u64,
    pub swap_free: u64,
    pub swap_percent: f64,
}

/// Everything one cycle sampled, in configuration order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    /// Disks that could be read this cycle: (tree key, usage).
    pub disks: Vec<(String, DiskUsage)>,
    /// Interfaces present this cycle: (name, figures).
    pub interfaces: Vec<(String, NetStats)>,
    /// Every configured process name, with the processes reported for it.
    pub processes: Vec<(String, Vec<ProcessStats>)>,
    /// Every configured process name, with its summary.
    pub process_summary: Vec<(String, ProcessSummary)>,
    /// Starts and exits noticed while sampling, to publish before the snapshot.
    pub events: Vec<ProcessEvent>,
    pub host: HostStats,
}

/// The tree key of a disk path: every `/` becomes `_`, as in odin-control.
pub fn disk_key(path: &str) -> String {
    path.replace('/', "_")
}

impl Snapshot {
    pub fn to_tree(&self) -> Node {
        let mut disks = Node::branch_for(self.disks.len());
        for (key, d) in &self.disks {
            disks.insert(
                key.clone(),
                Node::branch_for(9)
                    .with("total", Leaf::int(d.total))
                    .with("used", Leaf::int(d.used))
                    .with("free", Leaf::int(d.free))
                    .with("percent", Leaf::float(d.percent))
                    .with("inodes_total", Leaf::int(d.inodes_total))
                    .with("inodes_free", Leaf::int(d.inodes_free))
                    .with("read_only", Leaf::bool(d.read_only))
                    .with("write_rate", Leaf::float(d.write_rate))
                    .with(
                        "time_to_full",
                        d.time_to_full.map_or(Leaf::null(Kind::Float), Leaf::float),
                    ),
            );
        }
        let mut network = Node::branch_for(self.interfaces.len());
        for (name, n) in &self.interfaces {
            let mut node =
                Node::branch_for(NetCounters::NAMES.len() + NetCounters::RATE_NAMES.len() + 3);
            for (leaf, value) in NetCounters::NAMES.iter().zip(n.counters.values()) {
                node.insert(*leaf, Leaf::int(value));
            }
            for (leaf, rate) in NetCounters::RATE_NAMES.iter().zip(n.rates) {
                node.insert(*leaf, Leaf::float(rate));
            }
            node.insert(
                "link_up",
                n.link_up.map_or(Leaf::null(Kind::Bool), Leaf::bool),
            );
            node.insert(
                "speed_mbps",
                n.speed_mbps.map_or(Leaf::null(Kind::Int), Leaf::int),
            );
            node.insert("mtu", n.mtu.map_or(Leaf::null(Kind::Int), Leaf::int));
            network.insert(name.clone(), node);
        }
        let mut processes = Node::branch_for(self.processes.len());
        for (name, stats) in &self.processes {
            let mut by_pid = Node::branch_for(stats.len());
            for p in stats {
                by_pid.insert(
                    p.pid.to_string(),
                    Node::branch_for(6)
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
        let mut summary = Node::branch_for(self.process_summary.len());
        for (name, s) in &self.process_summary {
            summary.insert(name.clone(), s.to_node());
        }
        Node::branch_for(8)
            .with("disk", disks)
            .with("network", network)
            .with("process", processes)
            .with("process_summary", summary)
            .with("host", self.host.to_tree())
    }
}

impl HostStats {
    fn to_tree(&self) -> Node {
        let mut host = Node::branch_for(20).with("hostname", Leaf::str(self.hostname.clone()));
        if let Some(uptime) = self.uptime {
            host.insert("uptime", Leaf::float(uptime));
        }
        if let Some(cpu) = &self.cpu {
            host.insert("boot_time", Leaf::int(cpu.boot_time));
        }
        if let Some(load) = self.load_average {
            host.insert("load_average", Leaf::float_list(load));
        }
        if let Some(cpu) = &self.cpu {
            host.insert("cpu_percent", Leaf::float(cpu.percent));
            host.insert(
                "cpu_percent_per_core",
                Leaf::float_list(cpu.percent_per_core.iter().copied()),
            );
        }
        if let Some(m) = &self.memory {
            host.insert("memory_total", Leaf::int(m.total));
            host.insert("memory_available", Leaf::int(m.available));
            host.insert("memory_percent", Leaf::float(m.percent));
            host.insert("swap_total", Leaf::int(m.swap_total));
            host.insert("swap_used", Leaf::int(m.swap_used));
            host.insert("swap_free", Leaf::int(m.swap_free));
            host.insert("swap_percent", Leaf::float(m.swap_percent));
        }
        host.insert("processes", Leaf::int(self.processes));
        host
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
    fn layout_matches_odin_adapter_then_appends() {
        let snap = Snapshot {
            disks: vec![(
                "_".into(),
                DiskUsage {
                    total: 10,
                    used: 4,
                    free: 5,
                    percent: 44.4,
                    inodes_total: 100,
                    inodes_free: 90,
                    read_only: true,
                    write_rate: 0.0,
                    time_to_full: None,
                },
            )],
            interfaces: vec![(
                "lo".into(),
                NetStats {
                    rates: [1.5, 0.0, 2.0, 0.0, 0.0, 0.0, 0.0, 0.25],
                    link_up: Some(true),
                    mtu: Some(65536),
                    ..NetStats::default()
                },
            )],
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
                        cpu_ticks: CpuTicks { user: 7, system: 3 },
                    }],
                ),
                ("absent".into(), vec![]),
            ],
            host: HostStats {
                hostname: "daq1".into(),
                uptime: Some(12.5),
                cpu: Some(HostCpu {
                    boot_time: 1764141600,
                    percent: 25.0,
                    percent_per_core: vec![50.0, 0.0],
                }),
                load_average: Some([0.5, 0.25, 0.0]),
                memory: Some(HostMemory {
                    total: 100,
                    available: 60,
                    percent: 40.0,
                    swap_total: 0,
                    swap_used: 0,
                    swap_free: 0,
                    swap_percent: 0.0,
                }),
                processes: 321,
            },
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
                    cpu_seconds: CpuSeconds {
                        user: 1.5,
                        system: 0.25,
                    },
                    capped: false,
                },
            )],
            events: vec![],
        };
        let text = serde_json::to_string(&snap.to_tree()).unwrap();
        assert_eq!(
            text,
            json!({
                "disk": {"_": {"total": 10, "used": 4, "free": 5, "percent": 44.4,
                    "inodes_total": 100, "inodes_free": 90, "read_only": true,
                    "write_rate": 0.0, "time_to_full": null}},
                "network": {"lo": {"bytes_sent": 0, "bytes_recv": 0, "packets_sent": 0,
                    "packets_recv": 0, "errin": 0, "errout": 0, "dropin": 0, "dropout": 0,
                    "bytes_sent_rate": 1.5, "bytes_recv_rate": 0.0, "packets_sent_rate": 2.0,
                    "packets_recv_rate": 0.0, "errin_rate": 0.0, "errout_rate": 0.0,
                    "dropin_rate": 0.0, "dropout_rate": 0.25,
                    "link_up": true, "speed_mbps": null, "mtu": 65536}},
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
                        "cpu_percent": 0.0, "memory_rss": 0, "num_threads": 0, "num_fds": null,
                        "cpu_seconds_total": 1.75, "cpu_user_seconds_total": 1.5,
                        "cpu_system_seconds_total": 0.25, "capped": false}
                },
                "host": {"hostname": "daq1", "uptime": 12.5, "boot_time": 1764141600,
                    "load_average": [0.5, 0.25, 0.0], "cpu_percent": 25.0,
                    "cpu_percent_per_core": [50.0, 0.0], "memory_total": 100,
                    "memory_available": 60, "memory_percent": 40.0, "swap_total": 0,
                    "swap_used": 0, "swap_free": 0, "swap_percent": 0.0, "processes": 321}
            })
            .to_string(),
            "odin's keys first and in odin's order, then the additions, floats as floats"
        );
    }

    #[test]
    fn unreadable_host_files_leave_their_leaves_out() {
        let host = HostStats {
            hostname: "daq1".into(),
            processes: 3,
            ..HostStats::default()
        };
        let tree = serde_json::to_value(host.to_tree()).unwrap();
        assert_eq!(tree, json!({"hostname": "daq1", "processes": 3}));
    }
}
