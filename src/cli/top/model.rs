//! What `top` shows, kept apart from the terminal: the latest snapshot of each
//! host, the latest events, and the person's choices (sort, filter, pause,
//! host, expanded rows). The loop feeds it messages and keys; the view draws
//! it. Tests drive it the same way from recorded snapshots.

use std::collections::{BTreeSet, VecDeque};
use std::time::Duration;

use serde_json::Value;

/// Events kept for the pane (the newest are shown).
const EVENTS_KEPT: usize = 200;

/// One publisher followed.
#[derive(Debug, Default, Clone)]
pub struct Host {
    pub endpoint: String,
    /// The latest snapshot's tree (its params), cycle and timestamp.
    pub tree: Option<Value>,
    pub cycle: Option<u64>,
    pub timestamp: String,
    /// Age of the latest snapshot (None before the first) and whether the
    /// publisher is stale, by the feed's rule.
    pub age: Option<Duration>,
    pub stale: bool,
    /// Snapshots lost to gaps in the cycle numbers.
    pub missed: u64,
}

impl Host {
    /// The leaf or branch at `pointer` (`/host/cpu_percent`) of the latest tree.
    pub fn at(&self, pointer: &str) -> Option<&Value> {
        self.tree.as_ref()?.pointer(pointer)
    }

    /// The host name the service reports, once a snapshot told it.
    pub fn hostname(&self) -> Option<&str> {
        self.at("/host/hostname").and_then(Value::as_str)
    }

    /// The host name, else the endpoint.
    pub fn name(&self) -> &str {
        self.hostname().unwrap_or(&self.endpoint)
    }
}

/// A `process_event` or `alarm` message, as the pane lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    pub host: usize,
    pub time: String,
    pub text: String,
    /// "ok", "minor", "major" for alarms; "started"/"exited" for process events.
    pub level: String,
}

/// The process table's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sort {
    Name,
    State,
    Cpu,
    Memory,
}

impl Sort {
    fn next(self) -> Sort {
        match self {
            Sort::Name => Sort::State,
            Sort::State => Sort::Cpu,
            Sort::Cpu => Sort::Memory,
            Sort::Memory => Sort::Name,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Sort::Name => "name",
            Sort::State => "state",
            Sort::Cpu => "cpu",
            Sort::Memory => "rss",
        }
    }
}

/// A key the person pressed, already translated from the terminal's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    Char(char),
    Enter,
    Escape,
    Backspace,
    Tab,
    BackTab,
    Up,
    Down,
    Quit,
}

#[derive(Debug, Clone)]
pub struct Model {
    pub hosts: Vec<Host>,
    pub current: usize,
    pub notices: VecDeque<Notice>,
    pub sort: Sort,
    pub filter: String,
    /// The filter is being typed (after `/`, until Enter or Esc).
    pub typing: bool,
    pub paused: bool,
    /// Process names shown with their PIDs.
    pub expanded: BTreeSet<String>,
    /// The selected row of the process table, by name.
    pub selected: Option<String>,
    /// Messages that arrived while paused, applied on resume.
    held: Vec<(usize, Value)>,
}

impl Model {
    pub fn new(endpoints: &[String]) -> Model {
        Model {
            hosts: endpoints
                .iter()
                .map(|e| Host {
                    endpoint: e.clone(),
                    ..Host::default()
                })
                .collect(),
            current: 0,
            notices: VecDeque::new(),
            sort: Sort::Name,
            filter: String::new(),
            typing: false,
            paused: false,
            expanded: BTreeSet::new(),
            selected: None,
            held: Vec::new(),
        }
    }

    pub fn host(&self) -> Option<&Host> {
        self.hosts.get(self.current)
    }

    /// A published message from host `index`: a snapshot replaces the
    /// host's tree, an event or alarm joins the pane. Held while paused.
    pub fn receive(&mut self, index: usize, message: Value) {
        if self.paused {
            // Only the latest snapshot matters on resume; every event does.
            let is_status = message.get("msg_val").and_then(Value::as_str) == Some("status");
            if is_status {
                self.held.retain(|(i, m)| {
                    *i != index || m.get("msg_val").and_then(Value::as_str) != Some("status")
                });
            }
            self.held.push((index, message));
            return;
        }
        let Some(host) = self.hosts.get_mut(index) else {
            return;
        };
        let time = message
            .get("timestamp")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let params = message.get("params").cloned().unwrap_or(Value::Null);
        match message.get("msg_val").and_then(Value::as_str) {
            Some("status") => {
                host.cycle = message.get("id").and_then(Value::as_u64);
                host.timestamp = time;
                host.tree = Some(params);
            }
            Some("process_event") => self.notice(index, time, process_event(&params)),
            Some("alarm") => self.notice(index, time, alarm(&params)),
            _ => {}
        }
    }

    fn notice(&mut self, host: usize, time: String, (text, level): (String, String)) {
        self.notices.push_back(Notice {
            host,
            time,
            text,
            level,
        });
        while self.notices.len() > EVENTS_KEPT {
            self.notices.pop_front();
        }
    }

    /// A key; returns false when it means quit.
    pub fn key(&mut self, key: Key) -> bool {
        if self.typing {
            match key {
                Key::Enter => self.typing = false,
                Key::Escape => {
                    self.typing = false;
                    self.filter.clear();
                }
                Key::Backspace => {
                    self.filter.pop();
                }
                Key::Char(c) if !c.is_control() => self.filter.push(c),
                Key::Quit => return false,
                _ => {}
            }
            return true;
        }
        match key {
            Key::Char('q') | Key::Quit => return false,
            Key::Char('s') => self.sort = self.sort.next(),
            Key::Char('/') => {
                self.typing = true;
                self.filter.clear();
            }
            Key::Escape => self.filter.clear(),
            Key::Char('p') => {
                self.paused = !self.paused;
                if !self.paused {
                    for (index, message) in std::mem::take(&mut self.held) {
                        self.receive(index, message);
                    }
                }
            }
            Key::Tab if !self.hosts.is_empty() => {
                self.current = (self.current + 1) % self.hosts.len()
            }
            Key::BackTab if !self.hosts.is_empty() => {
                self.current = (self.current + self.hosts.len() - 1) % self.hosts.len()
            }
            Key::Up | Key::Down => self.move_selection(key == Key::Down),
            Key::Enter | Key::Char(' ') => {
                if let Some(name) = self.selected.clone() {
                    if !self.expanded.remove(&name) {
                        self.expanded.insert(name);
                    }
                }
            }
            _ => {}
        }
        true
    }

    fn move_selection(&mut self, down: bool) {
        let names: Vec<String> = self.processes().into_iter().map(|p| p.name).collect();
        let at = self
            .selected
            .as_ref()
            .and_then(|s| names.iter().position(|n| n == s));
        let next = match (at, down) {
            (None, _) => 0,
            (Some(i), true) => (i + 1).min(names.len().saturating_sub(1)),
            (Some(i), false) => i.saturating_sub(1),
        };
        self.selected = names.get(next).cloned();
    }

    /// The current host's processes, filtered and sorted as chosen.
    pub fn processes(&self) -> Vec<ProcessRow> {
        let Some(summary) = self
            .host()
            .and_then(|h| h.at("/process_summary"))
            .and_then(Value::as_object)
        else {
            return Vec::new();
        };
        let filter = self.filter.to_lowercase();
        let mut rows: Vec<ProcessRow> = summary
            .iter()
            .filter(|(name, _)| name.to_lowercase().contains(&filter))
            .map(|(name, s)| ProcessRow::from_summary(name, s))
            .collect();
        match self.sort {
            Sort::Name => rows.sort_by(|a, b| a.name.cmp(&b.name)),
            Sort::State => rows.sort_by_key(|r| (state_rank(&r.state), r.name.clone())),
            Sort::Cpu => rows.sort_by(|a, b| b.cpu.total_cmp(&a.cpu)),
            Sort::Memory => rows.sort_by_key(|r| std::cmp::Reverse(r.rss)),
        }
        rows
    }
}

/// Problems first.
fn state_rank(state: &str) -> u8 {
    match state {
        "missing" => 0,
        "extra" => 1,
        "unknown" => 2,
        _ => 3,
    }
}

/// One line of the process table, from `process_summary/<name>`.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessRow {
    pub name: String,
    pub count: u64,
    pub expected: Option<u64>,
    pub state: String,
    pub restarts: u64,
    pub uptime: Option<f64>,
    pub cpu: f64,
    pub rss: u64,
    pub threads: u64,
    pub fds: Option<u64>,
}

impl ProcessRow {
    fn from_summary(name: &str, s: &Value) -> ProcessRow {
        let int = |k: &str| s.get(k).and_then(Value::as_u64);
        ProcessRow {
            name: name.to_string(),
            count: int("count").unwrap_or(0),
            expected: int("expected"),
            state: s
                .get("state")
                .and_then(Value::as_str)
                .unwrap_or("unknown")
                .to_string(),
            restarts: int("restarts").unwrap_or(0),
            uptime: s.get("uptime").and_then(Value::as_f64),
            cpu: s.get("cpu_percent").and_then(Value::as_f64).unwrap_or(0.0),
            rss: int("memory_rss").unwrap_or(0),
            threads: int("num_threads").unwrap_or(0),
            fds: int("num_fds"),
        }
    }
}

fn text(v: &Value, key: &str) -> String {
    match v.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

fn process_event(p: &Value) -> (String, String) {
    let event = text(p, "event");
    let mut line = format!("{} pid {} {event}", text(p, "name"), text(p, "pid"));
    if let Some(code) = p.get("exit_code").and_then(Value::as_i64) {
        line += &format!(" (exit code {code})");
    }
    (line, event)
}

fn alarm(p: &Value) -> (String, String) {
    let severity = text(p, "severity");
    let mut line = format!(
        "{} {} (was {})",
        text(p, "path"),
        severity,
        text(p, "previous")
    );
    if p.get("gone").and_then(Value::as_bool) == Some(true) {
        line += ", gone";
    } else if let Some(limit) = p.get("limit").and_then(Value::as_f64) {
        line += &format!(": {} {} >= {limit}", text(p, "leaf"), text(p, "value"));
    }
    (line, severity)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn status(cycle: u64, fp_state: &str, cpu: f64) -> Value {
        json!({"msg_type": "notify", "msg_val": "status", "id": cycle, "timestamp": "2026-12-03T10:00:00.000000",
            "params": {"process_summary": {
                "fp": {"count": 1, "expected": 1, "state": fp_state, "cpu_percent": cpu, "memory_rss": 10},
                "fr": {"count": 1, "expected": 1, "state": "ok", "cpu_percent": 5.0, "memory_rss": 20}}}})
    }

    #[test]
    fn keys_sort_filter_pause_and_hosts() {
        let mut m = Model::new(&["a".into(), "b".into()]);
        m.receive(0, status(1, "ok", 1.0));
        let names =
            |m: &Model| -> Vec<String> { m.processes().into_iter().map(|r| r.name).collect() };
        assert_eq!(names(&m), ["fp", "fr"]);
        m.key(Key::Char('s'));
        m.key(Key::Char('s'));
        assert_eq!(m.sort, Sort::Cpu);
        assert_eq!(names(&m), ["fr", "fp"]);
        for k in [Key::Char('/'), Key::Char('F'), Key::Char('P'), Key::Enter] {
            m.key(k);
        }
        assert_eq!(names(&m), ["fp"]);
        m.key(Key::Escape);
        m.key(Key::Char('p'));
        m.receive(0, status(2, "missing", 0.0));
        assert_eq!(m.host().and_then(|h| h.cycle), Some(1), "paused");
        m.key(Key::Char('p'));
        assert_eq!(m.host().and_then(|h| h.cycle), Some(2));
        let fp = m.processes().into_iter().find(|r| r.name == "fp");
        assert_eq!(fp.map(|r| r.state), Some("missing".to_string()));
        m.key(Key::Tab);
        assert_eq!(m.current, 1);
        assert!(m.processes().is_empty());
        m.key(Key::Tab);
        assert_eq!(m.current, 0);
        m.key(Key::Down);
        m.key(Key::Enter);
        assert!(m.expanded.contains("fr"), "the first row by CPU");
        assert!(!m.key(Key::Char('q')));
    }

    #[test]
    fn events_and_alarms_become_notices() {
        let mut m = Model::new(&["a".into()]);
        m.receive(
            0,
            json!({"msg_val": "process_event", "timestamp": "t",
            "params": {"name": "fp", "pid": 7, "event": "exited", "exit_code": -9}}),
        );
        m.receive(
            0,
            json!({"msg_val": "alarm", "timestamp": "t",
            "params": {"path": "disk/_", "severity": "major", "previous": "ok", "leaf": "percent",
                       "value": 97.5, "limit": 95.0, "gone": false}}),
        );
        let texts: Vec<&str> = m.notices.iter().map(|n| n.text.as_str()).collect();
        assert_eq!(
            texts,
            [
                "fp pid 7 exited (exit code -9)",
                "disk/_ major (was ok): percent 97.5 >= 95"
            ]
        );
    }
}
