//! One cycle's samples as plain data, and their place in the parameter tree.
//!
//! `sample` fills a [`Snapshot`]; [`Snapshot::to_tree`] lays it out under the
//! names odin-control's SystemStatusAdapter uses (`disk`, `network`, `process`).
//! Keeping the layout here, apart from the /proc code and the GET rules, means
//! the tree's shape is written down in one place.

use crate::tree::{Leaf, Node};

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
        Node::branch()
            .with("disk", disks)
            .with("network", network)
            .with("process", processes)
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
                    }],
                ),
                ("absent".into(), vec![]),
            ],
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
                }
            })
        );
    }
}
