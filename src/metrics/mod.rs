//! Prometheus `/metrics`: the latest cycle's tree as metric families.
//!
//! A scrape is one more reader of the tree the sampler last built, like a
//! `get` request: it never samples, never waits on a cycle and never delays
//! one. [`FAMILIES`] is the whole mapping, one row per metric family in the
//! order they are exposed: the block of the tree a family reads (which also
//! gives its label), the leaf, and how the leaf becomes a number. A new
//! figure in the tree becomes a metric by adding one row here.
//!
//! Prometheus's rules shape the table: base units (bytes, seconds), `_total`
//! only on counters that never go back, and no label per PID, so a restarting
//! process never makes a new series (per-PID severities fold into their
//! name's worst one).
//!
//! Two formats: Prometheus text 0.0.4 by default, OpenMetrics 1.0 when the
//! scraper's `Accept` asks for it. They differ only in framing: OpenMetrics
//! names a counter family without `_total` (its samples keep it), adds
//! `# UNIT` lines, calls `build_info` an `info` family, and ends with `# EOF`.

pub mod http;

use std::fmt::Write;

use indexmap::IndexMap;
use serde_json::Value;

use crate::snapshot::disk_key;
use crate::tree::{Key, Node};

/// The exposition format a scraper asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// The Prometheus text format, version 0.0.4.
    Prometheus,
    /// OpenMetrics 1.0.
    OpenMetrics,
}

impl Format {
    /// OpenMetrics when `Accept` lists `application/openmetrics-text` (and
    /// does not give it `q=0`), else the Prometheus text format.
    pub fn from_accept(accept: Option<&str>) -> Format {
        let wants_openmetrics = accept.is_some_and(|accept| {
            accept.split(',').any(|range| {
                let mut parts = range.split(';').map(str::trim);
                let media = parts.next().unwrap_or_default();
                media.eq_ignore_ascii_case("application/openmetrics-text")
                    && !parts.any(|p| {
                        p.strip_prefix("q=")
                            .and_then(|q| q.parse::<f64>().ok())
                            .is_some_and(|q| q <= 0.0)
                    })
            })
        });
        if wants_openmetrics {
            Format::OpenMetrics
        } else {
            Format::Prometheus
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Prometheus => "text/plain; version=0.0.4; charset=utf-8",
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Type {
    Gauge,
    /// Samples end in `_total`; never goes back while the service runs.
    Counter,
    /// A gauge of 1 whose labels carry the information; samples end in `_info`.
    Info,
}

/// The block of the tree a family reads, and the label its keys become.
#[derive(Debug, Clone, Copy)]
enum Scope {
    /// One sample, read from the top of the tree.
    Service,
    /// One sample per `disk/<key>`, labelled `path` (the configured path).
    Disk,
    /// One sample per `network/<interface>`, labelled `interface`.
    Network,
    /// One sample per `process_summary/<name>`, labelled `name`.
    Process,
    /// One sample, read from `host`.
    Host,
    /// One sample per node with a `severity` leaf, labelled `node`.
    Severity,
}

/// How a family's value is read from the node of its scope.
#[derive(Debug, Clone, Copy)]
enum Read {
    /// A number, or a bool as 1/0; no sample when absent or null.
    Leaf(&'static str),
    /// A number times a factor.
    Scaled(&'static str, f64),
    /// One element of a list leaf.
    Element(&'static str, usize),
    /// Always 1.
    One,
    /// 1, labelled `version` with the service's version.
    Version,
    /// One sample per word a str leaf can take, labelled `label`: 1 for the
    /// word it holds now, 0 for the others.
    OneOf {
        leaf: &'static str,
        label: &'static str,
        words: &'static [&'static str],
    },
    /// One sample per (label value, leaf).
    Split {
        label: &'static str,
        leaves: &'static [(&'static str, &'static str)],
    },
    /// A leaf summed over the name's processes under `process/<name>/<pid>`.
    SumOverProcesses(&'static str),
    /// Epoch seconds at which the oldest reported process of the name
    /// started: boot time plus the host's uptime less the name's uptime.
    OldestStart,
    /// `severity` as a number: ok 0, minor 1, major 2.
    Severity,
}

/// One metric family: its name without the `_total`/`_info` of its samples.
#[derive(Debug)]
pub struct Family {
    name: &'static str,
    kind: Type,
    /// OpenMetrics `# UNIT`, the name's last word; empty when it has none.
    unit: &'static str,
    help: &'static str,
    scope: Scope,
    read: Read,
}

const fn gauge(name: &'static str, unit: &'static str, help: &'static str) -> Family {
    Family {
        name,
        kind: Type::Gauge,
        unit,
        help,
        scope: Scope::Service,
        read: Read::One,
    }
}

const fn counter(name: &'static str, unit: &'static str, help: &'static str) -> Family {
    Family {
        kind: Type::Counter,
        ..gauge(name, unit, help)
    }
}

impl Family {
    const fn of(self, scope: Scope, read: Read) -> Family {
        Family {
            scope,
            read,
            ..self
        }
    }
}

const STATES: &[&str] = &["ok", "missing", "extra", "unknown"];
const CPU_MODES: &[(&str, &str)] = &[
    ("user", "cpu_user_seconds_total"),
    ("system", "cpu_system_seconds_total"),
];
/// Mbit/s (`speed_mbps`) in bytes per second.
const MEGABITS: f64 = 1e6 / 8.0;

use Read::*;
use Scope::*;

/// Every metric, in the order a scrape lists them.
pub const FAMILIES: &[Family] = &[
    // The service.
    gauge("odin_status_up", "", "1 while the service is running.").of(Service, One),
    Family {
        kind: Type::Info,
        ..gauge("odin_status_build", "", "The version of odin-status.").of(Service, Version)
    },
    counter(
        "odin_status_cycles",
        "",
        "Update cycles since the service started.",
    )
    .of(Service, Leaf("monitor/cycle")),
    gauge(
        "odin_status_cycle_duration_seconds",
        "seconds",
        "How long the last update cycle took.",
    )
    .of(Service, Leaf("monitor/last_cycle_duration")),
    // disk/<key>
    gauge(
        "odin_status_disk_total_bytes",
        "bytes",
        "Size of the file system holding the path.",
    )
    .of(Disk, Leaf("total")),
    gauge(
        "odin_status_disk_used_bytes",
        "bytes",
        "Bytes used on the file system holding the path.",
    )
    .of(Disk, Leaf("used")),
    gauge(
        "odin_status_disk_free_bytes",
        "bytes",
        "Bytes free for unprivileged users on the file system holding the path.",
    )
    .of(Disk, Leaf("free")),
    gauge(
        "odin_status_disk_inodes",
        "",
        "Inodes of the file system holding the path.",
    )
    .of(Disk, Leaf("inodes_total")),
    gauge(
        "odin_status_disk_inodes_free",
        "",
        "Free inodes of the file system holding the path.",
    )
    .of(Disk, Leaf("inodes_free")),
    gauge(
        "odin_status_disk_read_only",
        "",
        "1 when the file system holding the path is mounted read-only.",
    )
    .of(Disk, Leaf("read_only")),
    gauge(
        "odin_status_disk_time_to_full_seconds",
        "seconds",
        "Seconds until the file system is full at its recent write rate; absent when not filling.",
    )
    .of(Disk, Leaf("time_to_full")),
    // network/<interface>
    counter(
        "odin_status_network_receive_bytes",
        "bytes",
        "Bytes received by the interface.",
    )
    .of(Network, Leaf("bytes_recv")),
    counter(
        "odin_status_network_transmit_bytes",
        "bytes",
        "Bytes sent by the interface.",
    )
    .of(Network, Leaf("bytes_sent")),
    counter(
        "odin_status_network_receive_packets",
        "",
        "Packets received by the interface.",
    )
    .of(Network, Leaf("packets_recv")),
    counter(
        "odin_status_network_transmit_packets",
        "",
        "Packets sent by the interface.",
    )
    .of(Network, Leaf("packets_sent")),
    counter(
        "odin_status_network_receive_errors",
        "",
        "Receive errors of the interface.",
    )
    .of(Network, Leaf("errin")),
    counter(
        "odin_status_network_transmit_errors",
        "",
        "Transmit errors of the interface.",
    )
    .of(Network, Leaf("errout")),
    counter(
        "odin_status_network_receive_drop",
        "",
        "Received packets the interface dropped.",
    )
    .of(Network, Leaf("dropin")),
    counter(
        "odin_status_network_transmit_drop",
        "",
        "Outgoing packets the interface dropped.",
    )
    .of(Network, Leaf("dropout")),
    gauge(
        "odin_status_network_up",
        "",
        "1 when the interface is up; absent when unknown.",
    )
    .of(Network, Leaf("link_up")),
    gauge(
        "odin_status_network_mtu_bytes",
        "bytes",
        "MTU of the interface; absent when unknown.",
    )
    .of(Network, Leaf("mtu")),
    gauge(
        "odin_status_network_speed_bytes",
        "bytes",
        "Link speed in bytes per second; absent when unknown.",
    )
    .of(Network, Scaled("speed_mbps", MEGABITS)),
    // process_summary/<name> and process/<name>
    gauge(
        "odin_status_process_running",
        "",
        "Processes reported for the name now.",
    )
    .of(Process, Leaf("count")),
    gauge(
        "odin_status_process_expected",
        "",
        "Processes expected for the name (name:N); absent without an expectation.",
    )
    .of(Process, Leaf("expected")),
    gauge(
        "odin_status_process_state",
        "",
        "1 for the name's state now (ok, missing, extra or unknown), 0 for the others.",
    )
    .of(
        Process,
        OneOf {
            leaf: "state",
            label: "state",
            words: STATES,
        },
    ),
    counter(
        "odin_status_process_starts",
        "",
        "Processes of the name seen starting since the service started.",
    )
    .of(Process, Leaf("starts")),
    counter(
        "odin_status_process_exits",
        "",
        "Processes of the name seen exiting since the service started.",
    )
    .of(Process, Leaf("exits")),
    counter(
        "odin_status_process_restarts",
        "",
        "Starts of the name that followed an exit.",
    )
    .of(Process, Leaf("restarts")),
    counter(
        "odin_status_process_cpu_seconds",
        "seconds",
        "CPU time of the name's processes, keeping that of the processes that exited.",
    )
    .of(
        Process,
        Split {
            label: "mode",
            leaves: CPU_MODES,
        },
    ),
    gauge(
        "odin_status_process_resident_memory_bytes",
        "bytes",
        "Resident memory of the name's processes.",
    )
    .of(Process, Leaf("memory_rss")),
    gauge(
        "odin_status_process_virtual_memory_bytes",
        "bytes",
        "Virtual memory of the name's processes.",
    )
    .of(Process, SumOverProcesses("memory_vms")),
    gauge(
        "odin_status_process_threads",
        "",
        "Threads of the name's processes.",
    )
    .of(Process, Leaf("num_threads")),
    gauge(
        "odin_status_process_open_fds",
        "",
        "Open file descriptors of the name's processes; absent when they cannot be counted.",
    )
    .of(Process, Leaf("num_fds")),
    gauge(
        "odin_status_process_oldest_start_time_seconds",
        "seconds",
        "Start time of the name's oldest process, in seconds since the epoch.",
    )
    .of(Process, OldestStart),
    // host
    gauge("odin_status_host_load1", "", "1-minute load average.")
        .of(Host, Element("load_average", 0)),
    gauge("odin_status_host_load5", "", "5-minute load average.")
        .of(Host, Element("load_average", 1)),
    gauge("odin_status_host_load15", "", "15-minute load average.")
        .of(Host, Element("load_average", 2)),
    gauge(
        "odin_status_host_memory_total_bytes",
        "bytes",
        "Memory of the host.",
    )
    .of(Host, Leaf("memory_total")),
    gauge(
        "odin_status_host_memory_available_bytes",
        "bytes",
        "Memory available for new work without swapping.",
    )
    .of(Host, Leaf("memory_available")),
    gauge(
        "odin_status_host_boot_time_seconds",
        "seconds",
        "Boot time of the host, in seconds since the epoch.",
    )
    .of(Host, Leaf("boot_time")),
    // every node with a limit
    gauge(
        "odin_status_severity",
        "",
        "Severity of the node under its limits: 0 ok, 1 minor, 2 major.",
    )
    .of(Scope::Severity, Read::Severity),
];

/// A sample's value: integers stay exact.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Number {
    Int(u64),
    Float(f64),
}

impl Number {
    fn of(value: &Value) -> Option<Number> {
        match value {
            Value::Bool(b) => Some(Number::Int(u64::from(*b))),
            Value::Number(n) => match n.as_u64() {
                Some(i) => Some(Number::Int(i)),
                None => n.as_f64().map(Number::Float),
            },
            _ => None,
        }
    }

    fn as_f64(self) -> f64 {
        match self {
            Number::Int(i) => i as f64,
            Number::Float(f) => f,
        }
    }
}

/// The value of the leaf at `path` (`a/b/c`) below `node`.
fn leaf<'t>(node: &'t Node, path: &str) -> Option<&'t Value> {
    let mut at = node;
    for name in path.split('/') {
        at = at.child(name)?;
    }
    match at {
        Node::Leaf(leaf) => Some(leaf.value()),
        Node::Branch(_) => None,
    }
}

fn number(node: &Node, path: &str) -> Option<Number> {
    leaf(node, path).and_then(Number::of)
}

fn children(node: Option<&Node>) -> impl Iterator<Item = (&Key, &Node)> {
    let map = match node {
        Some(Node::Branch(map)) => Some(map),
        _ => None,
    };
    map.into_iter().flatten()
}

/// The tree's latest cycle, rendered in `format`. `disks` are the configured
/// disk paths, which label the `disk/<key>` they are keyed by.
pub fn render(tree: &Node, disks: &[String], format: Format) -> String {
    let mut out = String::with_capacity(16 * 1024);
    let severities = severities(tree);
    for family in FAMILIES {
        let start = out.len();
        family.header(&mut out, format);
        let header = out.len();
        family.samples(&mut out, tree, disks, &severities);
        if out.len() == header {
            // Nothing to say: the family is left out rather than left empty.
            out.truncate(start);
        }
    }
    if format == Format::OpenMetrics {
        out.push_str("# EOF\n");
    }
    out
}

impl Family {
    /// The name its samples carry.
    fn sample_name(&self) -> String {
        match self.kind {
            Type::Gauge => self.name.to_string(),
            Type::Counter => format!("{}_total", self.name),
            Type::Info => format!("{}_info", self.name),
        }
    }

    fn header(&self, out: &mut String, format: Format) {
        let (name, kind) = match format {
            Format::Prometheus => (
                self.sample_name(),
                match self.kind {
                    Type::Counter => "counter",
                    Type::Gauge | Type::Info => "gauge",
                },
            ),
            Format::OpenMetrics => (
                self.name.to_string(),
                match self.kind {
                    Type::Counter => "counter",
                    Type::Gauge => "gauge",
                    Type::Info => "info",
                },
            ),
        };
        // HELP texts are ours and hold nothing that needs escaping.
        let _ = writeln!(out, "# HELP {name} {}", self.help);
        let _ = writeln!(out, "# TYPE {name} {kind}");
        if format == Format::OpenMetrics && !self.unit.is_empty() {
            let _ = writeln!(out, "# UNIT {name} {}", self.unit);
        }
    }

    fn samples(
        &self,
        out: &mut String,
        tree: &Node,
        disks: &[String],
        severities: &IndexMap<String, u64>,
    ) {
        let name = self.sample_name();
        let mut write = |labels: &[(&str, &str)], node: &Node, key: &str| {
            self.read_into(out, &name, labels, tree, node, key);
        };
        match self.scope {
            Scope::Service => write(&[], tree, ""),
            Scope::Host => {
                if let Some(host) = tree.child("host") {
                    write(&[], host, "");
                }
            }
            Scope::Disk => {
                for (key, node) in children(tree.child("disk")) {
                    let path = disks
                        .iter()
                        .find(|p| disk_key(p) == *key)
                        .map_or(key.as_ref(), String::as_str);
                    write(&[("path", path)], node, key);
                }
            }
            Scope::Network => {
                for (interface, node) in children(tree.child("network")) {
                    write(&[("interface", interface)], node, interface);
                }
            }
            Scope::Process => {
                for (name, node) in children(tree.child("process_summary")) {
                    write(&[("name", name)], node, name);
                }
            }
            Scope::Severity => {
                for (path, level) in severities {
                    sample(out, &name, &[("node", path)], Number::Int(*level));
                }
            }
        }
    }

    /// Writes the samples `self.read` finds in `node` (the child `key` of
    /// its scope's block).
    fn read_into(
        &self,
        out: &mut String,
        name: &str,
        labels: &[(&str, &str)],
        tree: &Node,
        node: &Node,
        key: &str,
    ) {
        let value = match self.read {
            Leaf(path) => number(node, path),
            Scaled(path, factor) => number(node, path).map(|n| Number::Float(n.as_f64() * factor)),
            Element(path, index) => match leaf(node, path) {
                Some(Value::Array(items)) => items.get(index).and_then(Number::of),
                _ => None,
            },
            One => Some(Number::Int(1)),
            Version => {
                if let Some(Value::String(version)) = leaf(tree, "monitor/version") {
                    sample(out, name, &[("version", version)], Number::Int(1));
                }
                return;
            }
            OneOf {
                leaf: at,
                label,
                words,
            } => {
                if let Some(Value::String(now)) = leaf(node, at) {
                    for word in words {
                        let mut all = labels.to_vec();
                        all.push((label, word));
                        sample(out, name, &all, Number::Int(u64::from(now == word)));
                    }
                }
                return;
            }
            Split { label, leaves } => {
                for (word, path) in leaves {
                    if let Some(value) = number(node, path) {
                        let mut all = labels.to_vec();
                        all.push((label, word));
                        sample(out, name, &all, value);
                    }
                }
                return;
            }
            SumOverProcesses(path) => {
                let processes = tree.child("process").and_then(|p| p.child(key));
                Some(Number::Int(
                    children(processes)
                        .filter_map(|(_, p)| number(p, path))
                        .map(|n| match n {
                            Number::Int(i) => i,
                            Number::Float(f) => f as u64,
                        })
                        .fold(0, u64::saturating_add),
                ))
            }
            OldestStart => {
                let host = tree.child("host");
                let boot = host.and_then(|h| number(h, "boot_time"));
                let host_uptime = host.and_then(|h| number(h, "uptime"));
                let uptime = number(node, "uptime");
                match (boot, host_uptime, uptime) {
                    (Some(boot), Some(host_uptime), Some(uptime)) => Some(Number::Float(
                        // One decimal, as the uptimes it comes from.
                        ((boot.as_f64() + host_uptime.as_f64() - uptime.as_f64()) * 10.0).round()
                            / 10.0,
                    )),
                    _ => None,
                }
            }
            Read::Severity => None,
        };
        if let Some(value) = value {
            sample(out, name, labels, value);
        }
    }
}

/// `severity` of every node that has one, by tree path, in tree order. A
/// process's severity folds into its name's worst (`process/<name>`), so no
/// PID becomes a label value.
fn severities(tree: &Node) -> IndexMap<String, u64> {
    fn walk(node: &Node, path: &mut Vec<String>, found: &mut IndexMap<String, u64>) {
        let Node::Branch(children) = node else {
            return;
        };
        if let Some(Node::Leaf(leaf)) = children.get("severity") {
            let level = match leaf.value().as_str() {
                Some("ok") => Some(0),
                Some("minor") => Some(1),
                Some("major") => Some(2),
                _ => None,
            };
            if let Some(level) = level {
                let shown = match path.as_slice() {
                    [process, name, _pid] if process == "process" => format!("process/{name}"),
                    _ => path.join("/"),
                };
                let worst = found.entry(shown).or_insert(level);
                *worst = (*worst).max(level);
            }
        }
        for (name, child) in children {
            path.push(name.to_string());
            walk(child, path, found);
            path.pop();
        }
    }
    let mut found = IndexMap::new();
    walk(tree, &mut Vec::new(), &mut found);
    found
}

/// One sample line: `name{label="value",...} value`.
fn sample(out: &mut String, name: &str, labels: &[(&str, &str)], value: Number) {
    out.push_str(name);
    if !labels.is_empty() {
        out.push('{');
        for (i, (label, text)) in labels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(label);
            out.push_str("=\"");
            escape_label_value(out, text);
            out.push('"');
        }
        out.push('}');
    }
    let _ = match value {
        Number::Int(i) => writeln!(out, " {i}"),
        // Leaves are always finite (the tree turns NaN and infinity into 0.0).
        Number::Float(f) => writeln!(out, " {f}"),
    };
}

/// A label value as both formats want it: `\`, `"` and newline escaped.
fn escape_label_value(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::{Kind, Leaf};

    fn tree() -> Node {
        let summary = Node::branch()
            .with("count", Leaf::int(2))
            .with("expected", Leaf::null(Kind::Int))
            .with("state", Leaf::str("unknown"))
            .with("starts", Leaf::int(3))
            .with("exits", Leaf::int(1))
            .with("restarts", Leaf::int(1))
            .with("uptime", Leaf::float(100.0))
            .with("memory_rss", Leaf::int(4096))
            .with("num_threads", Leaf::int(7))
            .with("num_fds", Leaf::null(Kind::Int))
            .with("cpu_seconds_total", Leaf::float(1.75))
            .with("cpu_user_seconds_total", Leaf::float(1.5))
            .with("cpu_system_seconds_total", Leaf::float(0.25));
        let pid = |vms: u64, severity: &str| {
            Node::branch()
                .with("memory_vms", Leaf::int(vms))
                .with("severity", Leaf::str(severity))
        };
        Node::branch()
            .with(
                "disk",
                Node::branch().with(
                    "_data_x",
                    Node::branch()
                        .with("total", Leaf::int(1000))
                        .with("read_only", Leaf::bool(true))
                        .with("time_to_full", Leaf::null(Kind::Float))
                        .with("severity", Leaf::str("minor")),
                ),
            )
            .with(
                "network",
                Node::branch().with(
                    "lo",
                    Node::branch()
                        .with("bytes_recv", Leaf::int(u64::MAX))
                        .with("speed_mbps", Leaf::int(1000))
                        .with("link_up", Leaf::null(Kind::Bool)),
                ),
            )
            .with(
                "process",
                Node::branch().with(
                    "odd \"name\"\\\n",
                    Node::branch()
                        .with("11", pid(100, "ok"))
                        .with("12", pid(23, "major")),
                ),
            )
            .with(
                "process_summary",
                Node::branch().with("odd \"name\"\\\n", summary),
            )
            .with(
                "host",
                Node::branch()
                    .with("uptime", Leaf::float(500.5))
                    .with("boot_time", Leaf::int(1_700_000_000))
                    .with("load_average", Leaf::float_list([0.5, 0.25, 0.0])),
            )
            .with(
                "monitor",
                Node::branch()
                    .with("version", Leaf::str("0.1.0"))
                    .with("cycle", Leaf::int(42)),
            )
    }

    fn lines(text: &str) -> Vec<&str> {
        text.lines().filter(|l| !l.starts_with('#')).collect()
    }

    #[test]
    fn samples_follow_the_table() {
        let text = render(&tree(), &["/data/x".to_string()], Format::Prometheus);
        let name = r#"name="odd \"name\"\\\n""#;
        assert_eq!(
            lines(&text),
            [
                "odin_status_up 1".to_string(),
                r#"odin_status_build_info{version="0.1.0"} 1"#.into(),
                "odin_status_cycles_total 42".into(),
                r#"odin_status_disk_total_bytes{path="/data/x"} 1000"#.into(),
                r#"odin_status_disk_read_only{path="/data/x"} 1"#.into(),
                r#"odin_status_network_receive_bytes_total{interface="lo"} 18446744073709551615"#
                    .into(),
                r#"odin_status_network_speed_bytes{interface="lo"} 125000000"#.into(),
                format!("odin_status_process_running{{{name}}} 2"),
                format!(r#"odin_status_process_state{{{name},state="ok"}} 0"#),
                format!(r#"odin_status_process_state{{{name},state="missing"}} 0"#),
                format!(r#"odin_status_process_state{{{name},state="extra"}} 0"#),
                format!(r#"odin_status_process_state{{{name},state="unknown"}} 1"#),
                format!("odin_status_process_starts_total{{{name}}} 3"),
                format!("odin_status_process_exits_total{{{name}}} 1"),
                format!("odin_status_process_restarts_total{{{name}}} 1"),
                format!(r#"odin_status_process_cpu_seconds_total{{{name},mode="user"}} 1.5"#),
                format!(r#"odin_status_process_cpu_seconds_total{{{name},mode="system"}} 0.25"#),
                format!("odin_status_process_resident_memory_bytes{{{name}}} 4096"),
                format!("odin_status_process_virtual_memory_bytes{{{name}}} 123"),
                format!("odin_status_process_threads{{{name}}} 7"),
                format!("odin_status_process_oldest_start_time_seconds{{{name}}} 1700000400.5"),
                "odin_status_host_load1 0.5".into(),
                "odin_status_host_load5 0.25".into(),
                "odin_status_host_load15 0".into(),
                "odin_status_host_boot_time_seconds 1700000000".into(),
                r#"odin_status_severity{node="disk/_data_x"} 1"#.into(),
                r#"odin_status_severity{node="process/odd \"name\"\\\n"} 2"#.into(),
            ]
        );
    }

    #[test]
    fn each_family_has_help_and_type_in_either_format() {
        let tree = tree();
        let prometheus = render(&tree, &[], Format::Prometheus);
        assert!(prometheus.contains(
            "# HELP odin_status_cycles_total Update cycles since the service started.\n\
             # TYPE odin_status_cycles_total counter\nodin_status_cycles_total 42\n"
        ));
        assert!(prometheus.contains("# TYPE odin_status_build_info gauge\n"));
        assert!(!prometheus.contains("# EOF") && !prometheus.contains("# UNIT"));
        assert!(
            !prometheus.contains("odin_status_disk_time_to_full_seconds"),
            "a family with no sample is left out whole"
        );
        let open = render(&tree, &[], Format::OpenMetrics);
        assert!(open.contains(
            "# HELP odin_status_network_receive_bytes Bytes received by the interface.\n\
             # TYPE odin_status_network_receive_bytes counter\n\
             # UNIT odin_status_network_receive_bytes bytes\n\
             odin_status_network_receive_bytes_total{interface=\"lo\"} "
        ));
        assert!(open.contains("# TYPE odin_status_build info\nodin_status_build_info{"));
        assert!(open.ends_with("\n# EOF\n"));
        assert_eq!(lines(&open), lines(&prometheus), "the same samples");
    }

    #[test]
    fn names_follow_prometheus_rules() {
        for family in FAMILIES {
            let name = family.name;
            assert!(name.starts_with("odin_status_"), "{name}");
            assert!(
                name.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
                "{name}"
            );
            assert!(
                !name.ends_with("_total"),
                "{name}: _total is for counter samples"
            );
            if !family.unit.is_empty() {
                assert!(name.ends_with(&format!("_{}", family.unit)), "{name}");
            }
        }
    }

    #[test]
    fn accept_chooses_the_format() {
        let prometheus_default = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert_eq!(
            Format::from_accept(Some(prometheus_default)),
            Format::OpenMetrics
        );
        assert_eq!(Format::from_accept(None), Format::Prometheus);
        assert_eq!(Format::from_accept(Some("*/*")), Format::Prometheus);
        assert_eq!(
            Format::from_accept(Some("text/plain, application/openmetrics-text; q=0")),
            Format::Prometheus
        );
    }
}
