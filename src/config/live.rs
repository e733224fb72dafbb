//! The configuration that may change while the service runs, and the
//! `configure` request's rules for changing it.
//!
//! A change is checked as a whole against the configuration in force and gives
//! a new [`Live`], or one sentence saying what is wrong; nothing is half
//! applied. Items are checked by the rules a file or flag gets: stripped,
//! non-empty, no commas (a list item in a file could not hold one), disk paths
//! that do not share a tree key, the rate's bounds, the limits' names and bounds.

use std::collections::HashSet;

use serde_json::{Map, Value};

use super::{clashing_entries, colliding_disks, parse_rate, Config, ProcessEntry};
use crate::protocol::describe;
use crate::snapshot::disk_key;
use crate::thresholds::{parse_limit, Limits};

/// What is monitored, how often, with which limits, and whether `configure`
/// may change it.
#[derive(Debug, Clone, PartialEq)]
pub struct Live {
    pub disks: Vec<String>,
    /// Always explicit: when none were configured, those present when the
    /// configuration was made (at start or SIGHUP).
    pub interfaces: Vec<String>,
    pub processes: Vec<ProcessEntry>,
    pub rate: f64,
    pub thresholds: Limits,
    pub allow_configure: bool,
}

/// The params `configure` takes, in the order its errors name them.
const KEYS: [&str; 5] = ["processes", "disks", "interfaces", "rate", "thresholds"];

impl Live {
    /// `present` lists the interfaces there now; it is asked only when the
    /// configuration names none.
    pub fn new(config: &Config, present: impl FnOnce() -> Vec<String>) -> Live {
        Live {
            disks: config.disks.clone(),
            interfaces: config.interfaces.clone().unwrap_or_else(present),
            processes: config.processes.clone(),
            rate: config.rate,
            thresholds: config.thresholds.clone(),
            allow_configure: config.allow_configure,
        }
    }

    /// Seconds between cycles.
    pub fn interval(&self) -> std::time::Duration {
        super::interval_of(self.rate)
    }

    /// What is watched, in one line for the log: at start and after every change.
    pub fn describe(&self) -> String {
        let list = |items: Vec<String>| match items.is_empty() {
            true => "none".to_string(),
            false => items.join(", "),
        };
        let processes = self.processes.iter().map(|e| {
            let mut shown = e.name.clone();
            match (e.expected, &e.label) {
                (Some(n), Some(label)) => shown += &format!(" ({n} expected, keyed {label})"),
                (Some(n), None) => shown += &format!(" ({n} expected)"),
                (None, Some(label)) => shown += &format!(" (keyed {label})"),
                (None, None) => {}
            }
            shown
        });
        let limits = match self.thresholds.to_json() {
            Value::Object(limits) => limits
                .iter()
                .map(|(name, limit)| format!("{name} {limit}"))
                .collect(),
            _ => Vec::new(),
        };
        format!(
            "watching disks: {}; interfaces: {}; processes: {}; rate: {} Hz; limits: {}",
            list(self.disks.clone()),
            list(self.interfaces.clone()),
            list(processes.collect()),
            self.rate,
            list(limits)
        )
    }

    /// The configuration after a `configure` request's `params`, or why not.
    pub fn configure(&self, params: &Map<String, Value>) -> Result<Live, String> {
        if params.is_empty() {
            return Err(format!(
                "configure needs at least one of {}.",
                KEYS.join(", ")
            ));
        }
        if let Some(key) = params.keys().find(|k| !KEYS.contains(&k.as_str())) {
            return Err(format!(
                "configure takes params {}, not '{key}'.",
                KEYS.join(", ")
            ));
        }
        let mut next = self.clone();
        if let Some(change) = params.get("processes") {
            next.processes = edit_processes(&self.processes, change)?;
            if let Some(clash) = clashing_entries(&next.processes) {
                return Err(format!("processes would list {clash}."));
            }
        }
        if let Some(change) = params.get("disks") {
            next.disks = edit_list("disks", &self.disks, change)?;
            if let Some((a, b)) = colliding_disks(&next.disks) {
                let (old, new) = if self.disks.iter().any(|d| d == a) {
                    (a, b)
                } else {
                    (b, a)
                };
                return Err(format!(
                    "disks.add {new} would share the tree key {} with {old}.",
                    disk_key(new)
                ));
            }
        }
        if let Some(change) = params.get("interfaces") {
            next.interfaces = edit_list("interfaces", &self.interfaces, change)?;
        }
        if let Some(rate) = params.get("rate") {
            next.rate = match rate {
                Value::Number(n) => {
                    parse_rate(&n.to_string(), "rate").map_err(|e| format!("{e}."))?
                }
                other => {
                    return Err(format!(
                        "rate must be a number of updates per second, not {}.",
                        describe(other)
                    ))
                }
            };
        }
        if let Some(limits) = params.get("thresholds") {
            next.thresholds = edit_limits(&self.thresholds, limits)?;
        }
        Ok(next)
    }
}

/// `{"add": [...], "remove": [...]}` applied to `current`: removals keep the
/// order of the rest, additions go at the end.
fn edit_list(what: &str, current: &[String], change: &Value) -> Result<Vec<String>, String> {
    edit_items(what, current, change, |item| Ok(item.to_string()), |s| s)
}

/// The same for process entries, compared by key (the label, or else the
/// name): `remove` takes `fp`, `fp:1` or `fp1=fp:1` for the entry that
/// `request_configuration` lists as `fp:1` or `fp1=fp:1` respectively, and
/// `add` of `fp:2` when `fp` is configured is refused.
fn edit_processes(current: &[ProcessEntry], change: &Value) -> Result<Vec<ProcessEntry>, String> {
    let parse = |item: &str| {
        ProcessEntry::parse(item).ok_or_else(|| {
            format!(
                "processes item '{item}' expects too many processes (at most {}).",
                u32::MAX
            )
        })
    };
    edit_items("processes", current, change, parse, ProcessEntry::key)
}

fn edit_items<T: Clone>(
    what: &str,
    current: &[T],
    change: &Value,
    parse: impl Fn(&str) -> Result<T, String>,
    key: impl Fn(&T) -> &str,
) -> Result<Vec<T>, String> {
    let Value::Object(ops) = change else {
        return Err(format!(
            "{what} must be an object with add and/or remove lists, not {}.",
            describe(change)
        ));
    };
    if ops.is_empty() {
        return Err(format!("{what} must have add or remove."));
    }
    if let Some(k) = ops.keys().find(|k| *k != "add" && *k != "remove") {
        return Err(format!("{what} takes add and remove, not '{k}'."));
    }
    let parse_all = |list: Vec<String>| -> Result<Vec<(String, T)>, String> {
        list.into_iter()
            .map(|item| parse(&item).map(|parsed| (item, parsed)))
            .collect()
    };
    let add = parse_all(items(what, "add", ops.get("add"))?)?;
    let remove = parse_all(items(what, "remove", ops.get("remove"))?)?;
    // Sets, so a long list costs no more than reading it.
    let removed: HashSet<&str> = remove.iter().map(|(_, r)| key(r)).collect();
    let configured: HashSet<&str> = current.iter().map(&key).collect();
    if let Some((both, _)) = add.iter().find(|(_, a)| removed.contains(key(a))) {
        return Err(format!("{what} lists '{both}' in both add and remove."));
    }
    if let Some((missing, _)) = remove.iter().find(|(_, r)| !configured.contains(key(r))) {
        return Err(format!(
            "{what}.remove names '{missing}', which is not configured."
        ));
    }
    if let Some((there, _)) = add.iter().find(|(_, a)| configured.contains(key(a))) {
        return Err(format!(
            "{what}.add names '{there}', which is already configured."
        ));
    }
    let mut added: HashSet<&str> = HashSet::with_capacity(add.len());
    if let Some((twice, _)) = add.iter().find(|(_, a)| !added.insert(key(a))) {
        return Err(format!("{what}.add lists '{twice}' twice."));
    }
    let mut next: Vec<T> = current
        .iter()
        .filter(|c| !removed.contains(key(c)))
        .cloned()
        .collect();
    next.extend(add.into_iter().map(|(_, a)| a));
    Ok(next)
}

/// The strings of an `add` or `remove` list, stripped, each once.
fn items(what: &str, op: &str, list: Option<&Value>) -> Result<Vec<String>, String> {
    let list = match list {
        None => return Ok(Vec::new()),
        Some(Value::Array(list)) => list,
        Some(other) => {
            return Err(format!(
                "{what}.{op} must be a list of strings, not {}.",
                describe(other)
            ))
        }
    };
    let mut out: Vec<String> = Vec::with_capacity(list.len());
    let mut seen: HashSet<&str> = HashSet::with_capacity(list.len());
    for item in list {
        let Value::String(item) = item else {
            return Err(format!(
                "{what}.{op} must hold only strings, not {}.",
                describe(item)
            ));
        };
        let item = item.trim();
        if item.is_empty() {
            return Err(format!("{what}.{op} holds an empty name."));
        }
        if item.contains(',') {
            return Err(format!(
                "{what}.{op} item '{item}' holds a comma; configuration lists are comma-separated."
            ));
        }
        if !seen.insert(item) {
            return Err(format!("{what}.{op} lists '{item}' twice."));
        }
        out.push(item.to_string());
    }
    Ok(out)
}

/// `{"name": limit or null, ...}` applied to `current`; null removes a limit.
fn edit_limits(current: &Limits, change: &Value) -> Result<Limits, String> {
    let Value::Object(set) = change else {
        return Err(format!(
            "thresholds must be an object of limits, not {}.",
            describe(change)
        ));
    };
    if set.is_empty() {
        return Err("thresholds must name at least one limit.".to_string());
    }
    let mut next = current.clone();
    for (name, value) in set {
        let limit = match value {
            Value::Null => None,
            Value::Number(n) => Some(n.as_f64().and_then(parse_limit).ok_or_else(|| {
                format!("thresholds.{name} must be a number of at least 0 or null, not {n}.")
            })?),
            other => {
                return Err(format!(
                    "thresholds.{name} must be a number of at least 0 or null, not {}.",
                    describe(other)
                ))
            }
        };
        next.set(name, limit)
            .map_err(|e| format!("thresholds: {e}."))?;
    }
    next.check().map_err(|e| format!("{e}."))?;
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn live() -> Live {
        Live {
            disks: vec!["/".into(), "/data/x_y".into()],
            interfaces: vec!["lo".into(), "eth0".into()],
            processes: entries(&["fp", "fr:1"]),
            rate: 1.0,
            thresholds: Limits::default(),
            allow_configure: true,
        }
    }

    fn entries(items: &[&str]) -> Vec<ProcessEntry> {
        items
            .iter()
            .filter_map(|i| ProcessEntry::parse(i))
            .collect()
    }

    fn configure(params: Value) -> Result<Live, String> {
        live().configure(params.as_object().unwrap())
    }

    #[test]
    fn add_and_remove_keep_order() {
        let next = configure(json!({
            "processes": {"add": [" meta ", "x:2"], "remove": ["fp"]},
            "disks": {"add": ["/tmp"]},
            "interfaces": {"remove": ["lo"]},
            "rate": 5,
            "thresholds": {"disk_percent_warn": 80, "process_cpu_alarm": 150.5},
        }))
        .unwrap();
        assert_eq!(next.processes, entries(&["fr:1", "meta", "x:2"]));
        assert_eq!(next.disks, ["/", "/data/x_y", "/tmp"]);
        assert_eq!(next.interfaces, ["eth0"]);
        assert_eq!(next.rate, 5.0);
        assert_eq!(
            next.thresholds.to_json(),
            json!({"disk_percent_warn": 80.0, "process_cpu_alarm": 150.5})
        );
        assert!(next.allow_configure);
        // null removes a limit; empty lists change nothing.
        let cleared = next
            .configure(
                json!({"thresholds": {"disk_percent_warn": null}, "disks": {"add": []}})
                    .as_object()
                    .unwrap(),
            )
            .unwrap();
        assert_eq!(
            cleared.thresholds.to_json(),
            json!({"process_cpu_alarm": 150.5})
        );
        assert_eq!(cleared.disks, next.disks);
    }

    #[test]
    fn every_fault_is_one_sentence() {
        let cases = [
            (json!({}), "configure needs at least one of processes, disks, interfaces, rate, thresholds."),
            (json!({"rate": 2, "speed": 1}), "configure takes params processes, disks, interfaces, rate, thresholds, not 'speed'."),
            (json!({"processes": ["x"]}), "processes must be an object with add and/or remove lists, not an array."),
            (json!({"processes": {}}), "processes must have add or remove."),
            (json!({"disks": {"add": [], "drop": []}}), "disks takes add and remove, not 'drop'."),
            (json!({"processes": {"add": "x"}}), "processes.add must be a list of strings, not a string."),
            (json!({"processes": {"remove": [1]}}), "processes.remove must hold only strings, not a number."),
            (json!({"processes": {"add": [" "]}}), "processes.add holds an empty name."),
            (json!({"processes": {"add": ["a,b"]}}), "processes.add item 'a,b' holds a comma; configuration lists are comma-separated."),
            (json!({"processes": {"add": ["x", " x"]}}), "processes.add lists 'x' twice."),
            (json!({"processes": {"add": ["x"], "remove": ["x"]}}), "processes lists 'x' in both add and remove."),
            (json!({"processes": {"remove": ["nope"]}}), "processes.remove names 'nope', which is not configured."),
            // Process entries are compared by name, whatever count they expect.
            (json!({"processes": {"add": ["fr:2"]}}), "processes.add names 'fr:2', which is already configured."),
            (json!({"processes": {"add": ["y:1", "y"]}}), "processes.add lists 'y' twice."),
            (json!({"processes": {"add": ["z:99999999999"]}}), "processes item 'z:99999999999' expects too many processes (at most 4294967295)."),
            (json!({"interfaces": {"add": ["lo"]}}), "interfaces.add names 'lo', which is already configured."),
            (json!({"disks": {"add": ["/data/x/y"]}}), "disks.add /data/x/y would share the tree key _data_x_y with /data/x_y."),
            (json!({"rate": 0}), "rate must be above 0 updates per second, not '0'."),
            (json!({"rate": 1001}), "rate must be at most 1000 updates per second, not '1001'."),
            (json!({"rate": "2"}), "rate must be a number of updates per second, not a string."),
            (json!({"thresholds": 5}), "thresholds must be an object of limits, not a number."),
            (json!({"thresholds": {}}), "thresholds must name at least one limit."),
            (json!({"thresholds": {"disk_percent_warn": -1}}), "thresholds.disk_percent_warn must be a number of at least 0 or null, not -1."),
            (json!({"thresholds": {"disk_percent_warn": "9"}}), "thresholds.disk_percent_warn must be a number of at least 0 or null, not a string."),
            (json!({"thresholds": {"disk_percent_warn": 95, "disk_percent_alarm": 90}}), "disk_percent_warn (95) must not be above disk_percent_alarm (90)."),
        ];
        for (params, error) in cases {
            assert_eq!(configure(params.clone()).unwrap_err(), error, "{params}");
        }
        let unknown = configure(json!({"thresholds": {"cpu": 1}})).unwrap_err();
        assert!(
            unknown.starts_with(
                "thresholds: 'cpu' is not a limit; the limits are disk_percent_warn, "
            ),
            "{unknown}"
        );
        // A valid part does not carry an invalid one through.
        assert!(configure(json!({"rate": 5, "processes": {"remove": ["nope"]}})).is_err());
    }
}
