//! Limits on tree leaves, the `severity` they give a node, and the `alarm`
//! notifications sent when a severity changes.
//!
//! A limit is defined by the leaf it watches, not by the sample that produced
//! it: [`RULES`] maps each limit's name to a node pattern and leaf names, and
//! [`Evaluator::apply`] works on the built tree. Any part of the tree that gains
//! such a leaf gains limits by adding one row here.
//!
//! The words are the EPICS alarm severities operators know: a value at or
//! above its `_warn` limit is `minor`, at or above its `_alarm` limit `major`,
//! else `ok`. There is no hysteresis (EPICS's default, `HYST = 0`): a value
//! that hovers at a limit changes severity each time it crosses it. A node only
//! gets a `severity` leaf when a limit that applies to it is configured, so the
//! default tree stays odin-identical.

use std::collections::HashMap;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::tree::{Leaf, Node};

/// One kind of limit: the nodes it applies to (`*` matches any child name)
/// and the leaves it compares; with several leaves the worst one counts.
#[derive(Debug)]
pub struct Rule {
    pub name: &'static str,
    pub nodes: &'static [&'static str],
    pub leaves: &'static [&'static str],
}

/// Every limit the configuration may set, as `<name>_warn` and `<name>_alarm`.
pub const RULES: [Rule; 7] = [
    Rule {
        name: "disk_percent",
        nodes: &["disk", "*"],
        leaves: &["percent"],
    },
    Rule {
        name: "process_cpu",
        nodes: &["process", "*", "*"],
        leaves: &["cpu_percent"],
    },
    Rule {
        name: "process_memory_percent",
        nodes: &["process", "*", "*"],
        leaves: &["memory_percent"],
    },
    Rule {
        name: "network_drop_rate",
        nodes: &["network", "*"],
        leaves: &["dropin_rate", "dropout_rate"],
    },
    Rule {
        name: "network_error_rate",
        nodes: &["network", "*"],
        leaves: &["errin_rate", "errout_rate"],
    },
    Rule {
        name: "host_cpu_percent",
        nodes: &["host"],
        leaves: &["cpu_percent"],
    },
    Rule {
        name: "host_memory_percent",
        nodes: &["host"],
        leaves: &["memory_percent"],
    },
];

/// The EPICS alarm severities, in rising order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Ok,
    Minor,
    Major,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Ok => "ok",
            Severity::Minor => "minor",
            Severity::Major => "major",
        }
    }
}

/// The `_warn` and `_alarm` limits of one rule.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Pair {
    warn: Option<f64>,
    alarm: Option<f64>,
}

/// The configured limits, one pair per rule of [`RULES`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Limits {
    pairs: [Pair; RULES.len()],
}

impl Limits {
    /// Every limit name, in table order: `disk_percent_warn`, `disk_percent_alarm`, ...
    pub fn names() -> impl Iterator<Item = String> {
        RULES
            .iter()
            .flat_map(|r| [format!("{}_warn", r.name), format!("{}_alarm", r.name)])
    }

    fn slot(&mut self, name: &str) -> Option<&mut Option<f64>> {
        let (rule, level) = name
            .strip_suffix("_warn")
            .map(|r| (r, Severity::Minor))
            .or_else(|| name.strip_suffix("_alarm").map(|r| (r, Severity::Major)))?;
        let index = RULES.iter().position(|r| r.name == rule)?;
        let pair = self.pairs.get_mut(index)?;
        Some(if level == Severity::Major {
            &mut pair.alarm
        } else {
            &mut pair.warn
        })
    }

    /// Sets (or with `None` clears) a limit; `Err` names the known limits.
    pub fn set(&mut self, name: &str, limit: Option<f64>) -> Result<(), String> {
        match self.slot(name) {
            Some(slot) => {
                *slot = limit;
                Ok(())
            }
            None => Err(format!(
                "'{name}' is not a limit; the limits are {}",
                Limits::names().collect::<Vec<_>>().join(", ")
            )),
        }
    }

    /// A warn limit above its alarm limit would make `major` skip `minor`
    /// and then fall back to it: refused.
    pub fn check(&self) -> Result<(), String> {
        for (rule, pair) in RULES.iter().zip(&self.pairs) {
            if let (Some(warn), Some(alarm)) = (pair.warn, pair.alarm) {
                if warn > alarm {
                    return Err(format!(
                        "{0}_warn ({warn}) must not be above {0}_alarm ({alarm})",
                        rule.name
                    ));
                }
            }
        }
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.pairs
            .iter()
            .all(|p| p.warn.is_none() && p.alarm.is_none())
    }

    /// The configured limits by name, in table order (for `request_configuration`).
    pub fn to_json(&self) -> Value {
        let mut out = Map::new();
        for (rule, pair) in RULES.iter().zip(&self.pairs) {
            if let Some(warn) = pair.warn {
                out.insert(format!("{}_warn", rule.name), Value::from(warn));
            }
            if let Some(alarm) = pair.alarm {
                out.insert(format!("{}_alarm", rule.name), Value::from(alarm));
            }
        }
        Value::Object(out)
    }
}

/// Parses a limit: a finite number of at least 0.
pub fn parse_limit(value: f64) -> Option<f64> {
    (value.is_finite() && value >= 0.0).then_some(value)
}

/// A severity change, published as the params of a `notify` `alarm`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alarm {
    /// The node, e.g. `disk/_data` or `process/stFrameProcessor1.sh/2609`.
    pub path: String,
    pub severity: Severity,
    pub previous: Severity,
    /// The leaf that decided: the one over a limit, or (on return to `ok`)
    /// the one that was.
    pub leaf: String,
    /// That leaf's value now; `null` when the node is gone.
    pub value: Option<f64>,
    /// The limit crossed; `null` for `ok`.
    pub limit: Option<f64>,
    /// The limit's name, e.g. `process_cpu_warn`; `null` for `ok`.
    pub threshold: Option<String>,
    /// The node is no longer evaluated: it left the tree (a process exited, a
    /// disk went) or its limits were removed.
    pub gone: bool,
    pub time: String,
}

/// Why a node has its severity.
#[derive(Debug, Clone)]
struct Verdict {
    severity: Severity,
    leaf: &'static str,
    /// The limit crossed, with its rule's name and `warn` or `alarm`.
    crossed: Option<(f64, &'static str, &'static str)>,
}

/// Applies the limits to each cycle's tree and remembers each node's
/// severity, to notice changes.
#[derive(Debug, Default)]
pub struct Evaluator {
    limits: Limits,
    /// Nodes not `ok` last cycle: path -> (severity, deciding leaf).
    raised: HashMap<String, (Severity, &'static str)>,
}

impl Evaluator {
    pub fn new(limits: Limits) -> Self {
        Evaluator {
            limits,
            raised: HashMap::new(),
        }
    }

    /// New limits take effect at the next [`Evaluator::apply`]; severities
    /// seen so far are kept, so only real changes are notified.
    pub fn set_limits(&mut self, limits: Limits) {
        self.limits = limits;
    }

    /// Adds a `severity` leaf to every node a configured limit applies to,
    /// and returns the changes since the last call.
    pub fn apply(&mut self, tree: &mut Node) -> Vec<Alarm> {
        if self.limits.is_empty() && self.raised.is_empty() {
            return Vec::new();
        }
        // What is left of last cycle's raised nodes after this walk is gone.
        let mut before = std::mem::take(&mut self.raised);
        let mut raised = HashMap::new();
        let mut alarms = Vec::new();
        let mut time: Option<String> = None;
        let limits = &self.limits;
        let mut patterns: Vec<&'static [&'static str]> = Vec::new();
        for (rule, pair) in RULES.iter().zip(&limits.pairs) {
            if (pair.warn.is_some() || pair.alarm.is_some()) && !patterns.contains(&rule.nodes) {
                patterns.push(rule.nodes);
            }
        }
        for pattern in patterns {
            let mut visit = |path: &str, node: &mut Node| {
                let Some(verdict) = judge(limits, pattern, node) else {
                    return;
                };
                node.insert("severity", Leaf::str(verdict.severity.as_str()));
                let previous = before.remove(path);
                let was = previous.map_or(Severity::Ok, |(s, _)| s);
                if verdict.severity != was {
                    // Back to ok: report the leaf that was at fault.
                    let leaf = match (verdict.severity, previous) {
                        (Severity::Ok, Some((_, leaf))) => leaf,
                        _ => verdict.leaf,
                    };
                    alarms.push(Alarm {
                        path: path.to_string(),
                        severity: verdict.severity,
                        previous: was,
                        leaf: leaf.to_string(),
                        value: leaf_value(node, leaf),
                        limit: verdict.crossed.map(|(limit, _, _)| limit),
                        threshold: verdict
                            .crossed
                            .map(|(_, rule, suffix)| format!("{rule}_{suffix}")),
                        gone: false,
                        time: time
                            .get_or_insert_with(crate::protocol::timestamp_now)
                            .clone(),
                    });
                }
                if verdict.severity != Severity::Ok {
                    raised.insert(path.to_string(), (verdict.severity, verdict.leaf));
                }
            };
            for_each_match(tree, pattern, &mut String::new(), &mut visit);
        }
        for (path, (severity, leaf)) in before {
            alarms.push(Alarm {
                path,
                severity: Severity::Ok,
                previous: severity,
                leaf: leaf.to_string(),
                value: None,
                limit: None,
                threshold: None,
                gone: true,
                time: time
                    .get_or_insert_with(crate::protocol::timestamp_now)
                    .clone(),
            });
        }
        alarms.sort_by(|a, b| a.path.cmp(&b.path));
        self.raised = raised;
        alarms
    }
}

/// The worst severity over the configured rules of this node pattern;
/// `None` when none of their leaves is there. Ties go to the first rule.
fn judge(limits: &Limits, pattern: &[&str], node: &Node) -> Option<Verdict> {
    let mut worst: Option<Verdict> = None;
    for (rule, pair) in RULES.iter().zip(&limits.pairs) {
        if rule.nodes != pattern || (pair.warn.is_none() && pair.alarm.is_none()) {
            continue;
        }
        for &leaf in rule.leaves {
            let Some(value) = leaf_value(node, leaf) else {
                continue;
            };
            let crossed = [
                (pair.alarm, Severity::Major, "alarm"),
                (pair.warn, Severity::Minor, "warn"),
            ]
            .into_iter()
            .find_map(|(limit, severity, suffix)| {
                let limit = limit?;
                (value >= limit).then_some((severity, (limit, rule.name, suffix)))
            });
            let verdict = Verdict {
                severity: crossed.map_or(Severity::Ok, |(s, _)| s),
                leaf,
                crossed: crossed.map(|(_, c)| c),
            };
            if worst.as_ref().is_none_or(|w| verdict.severity > w.severity) {
                worst = Some(verdict);
            }
        }
    }
    worst
}

fn leaf_value(node: &Node, leaf: &str) -> Option<f64> {
    match node.child(leaf)? {
        Node::Leaf(l) => l.value().as_f64(),
        Node::Branch(_) => None,
    }
}

/// Calls `visit` with the path and node of every node matching `pattern`;
/// `path` is one buffer, grown and cut back as the walk goes.
fn for_each_match(
    node: &mut Node,
    pattern: &[&str],
    path: &mut String,
    visit: &mut dyn FnMut(&str, &mut Node),
) {
    let Some((first, rest)) = pattern.split_first() else {
        visit(path, node);
        return;
    };
    let Node::Branch(children) = node else {
        return;
    };
    let len = path.len();
    for (name, child) in children.iter_mut() {
        if *first == "*" || first == name {
            if len > 0 {
                path.push('/');
            }
            path.push_str(name);
            for_each_match(child, rest, path, visit);
            path.truncate(len);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tree(disk_percent: f64, cpu: &[(i32, f64)]) -> Node {
        let mut procs = Node::branch();
        for (pid, c) in cpu {
            procs.insert(
                pid.to_string(),
                Node::branch()
                    .with("cpu_percent", Leaf::float(*c))
                    .with("memory_percent", Leaf::float(0.5)),
            );
        }
        Node::branch()
            .with(
                "disk",
                Node::branch().with(
                    "_",
                    Node::branch()
                        .with("total", Leaf::int(10))
                        .with("percent", Leaf::float(disk_percent)),
                ),
            )
            .with(
                "network",
                Node::branch().with("lo", Node::branch().with("errin", Leaf::int(0))),
            )
            .with("process", Node::branch().with("burn", procs))
    }

    fn limits(pairs: &[(&str, f64)]) -> Limits {
        let mut l = Limits::default();
        for (name, v) in pairs {
            l.set(name, Some(*v)).unwrap();
        }
        l
    }

    #[test]
    fn no_limits_leave_the_tree_alone() {
        let mut t = tree(50.0, &[(7, 90.0)]);
        let before = t.clone();
        assert!(Evaluator::default().apply(&mut t).is_empty());
        assert_eq!(t, before);
    }

    #[test]
    fn limits_are_inclusive_and_alarm_beats_warn() {
        let mut e = Evaluator::new(limits(&[
            ("disk_percent_warn", 50.0),
            ("disk_percent_alarm", 90.0),
        ]));
        let severity = |e: &mut Evaluator, p: f64| {
            let mut t = tree(p, &[]);
            e.apply(&mut t);
            serde_json::to_value(&t).unwrap()["disk"]["_"]["severity"].clone()
        };
        assert_eq!(severity(&mut e, 49.9), json!("ok"));
        assert_eq!(severity(&mut e, 50.0), json!("minor"));
        assert_eq!(severity(&mut e, 89.9), json!("minor"));
        assert_eq!(severity(&mut e, 90.0), json!("major"));
        // Only the limited nodes get the leaf; severity comes last.
        let mut t = tree(10.0, &[(7, 99.0)]);
        e.apply(&mut t);
        let v = serde_json::to_value(&t).unwrap();
        assert_eq!(v["process"]["burn"]["7"].get("severity"), None);
        assert_eq!(v["network"]["lo"].get("severity"), None);
        let keys: Vec<_> = v["disk"]["_"].as_object().unwrap().keys().collect();
        assert_eq!(keys, ["total", "percent", "severity"]);
    }

    #[test]
    fn host_limits_apply_to_the_host_block() {
        let mut e = Evaluator::new(limits(&[
            ("host_memory_percent_warn", 40.0),
            ("host_cpu_percent_alarm", 90.0),
        ]));
        let mut t = tree(10.0, &[]);
        t.insert(
            "host",
            Node::branch()
                .with("cpu_percent", Leaf::float(95.0))
                .with("memory_percent", Leaf::float(41.5)),
        );
        let raised = e.apply(&mut t);
        let v = serde_json::to_value(&t).unwrap();
        assert_eq!(v["host"]["severity"], json!("major"));
        assert_eq!(raised.len(), 1);
        assert_eq!(raised[0].path, "host");
        assert_eq!(raised[0].leaf, "cpu_percent");
        assert_eq!(v["disk"]["_"].get("severity"), None);
    }

    #[test]
    fn changes_are_notified_once_each() {
        let mut e = Evaluator::new(limits(&[("process_cpu_warn", 50.0)]));
        assert!(e.apply(&mut tree(1.0, &[(7, 10.0)])).is_empty());
        let up = e.apply(&mut tree(1.0, &[(7, 80.0)]));
        assert_eq!(up.len(), 1);
        let a = &up[0];
        assert_eq!(a.path, "process/burn/7");
        assert_eq!((a.severity, a.previous), (Severity::Minor, Severity::Ok));
        assert_eq!(a.leaf, "cpu_percent");
        assert_eq!(a.value, Some(80.0));
        assert_eq!(a.limit, Some(50.0));
        assert_eq!(a.threshold.as_deref(), Some("process_cpu_warn"));
        assert!(!a.gone);
        // Still minor: nothing new.
        assert!(e.apply(&mut tree(1.0, &[(7, 70.0)])).is_empty());
        let down = e.apply(&mut tree(1.0, &[(7, 5.0)]));
        assert_eq!(down.len(), 1);
        assert_eq!(
            (down[0].severity, down[0].previous),
            (Severity::Ok, Severity::Minor)
        );
        assert_eq!(down[0].value, Some(5.0));
        assert_eq!((down[0].limit, down[0].threshold.clone()), (None, None));
    }

    #[test]
    fn a_node_that_goes_clears_its_alarm() {
        let mut e = Evaluator::new(limits(&[("process_cpu_alarm", 50.0)]));
        assert_eq!(e.apply(&mut tree(1.0, &[(7, 80.0)])).len(), 1);
        // A new process straight at ok is not news; the old one's exit is.
        let gone = e.apply(&mut tree(1.0, &[(8, 1.0)]));
        assert_eq!(gone.len(), 1);
        assert_eq!(gone[0].path, "process/burn/7");
        assert_eq!(
            (gone[0].severity, gone[0].previous),
            (Severity::Ok, Severity::Major)
        );
        assert!(gone[0].gone && gone[0].value.is_none());
        // Limits removed: the raised node is cleared the same way.
        assert_eq!(e.apply(&mut tree(1.0, &[(8, 90.0)])).len(), 1);
        e.set_limits(Limits::default());
        let cleared = e.apply(&mut tree(1.0, &[(8, 90.0)]));
        assert_eq!(cleared.len(), 1);
        assert!(cleared[0].gone);
        assert!(e.apply(&mut tree(1.0, &[(8, 90.0)])).is_empty());
    }

    #[test]
    fn worst_rule_of_a_node_wins() {
        let mut e = Evaluator::new(limits(&[
            ("process_cpu_warn", 50.0),
            ("process_memory_percent_alarm", 0.1),
        ]));
        let got = e.apply(&mut tree(1.0, &[(7, 80.0)]));
        assert_eq!(got[0].severity, Severity::Major);
        assert_eq!(got[0].leaf, "memory_percent");
    }

    #[test]
    fn limits_by_name() {
        let mut l = Limits::default();
        assert!(l.is_empty());
        l.set("disk_percent_alarm", Some(90.0)).unwrap();
        l.set("disk_percent_warn", Some(80.0)).unwrap();
        assert_eq!(
            l.to_json(),
            json!({"disk_percent_warn": 80.0, "disk_percent_alarm": 90.0})
        );
        assert!(l.check().is_ok());
        l.set("disk_percent_warn", Some(95.0)).unwrap();
        assert_eq!(
            l.check().unwrap_err(),
            "disk_percent_warn (95) must not be above disk_percent_alarm (90)"
        );
        assert!(l.set("disk_warn", Some(1.0)).unwrap_err().starts_with(
            "'disk_warn' is not a limit; the limits are disk_percent_warn, disk_percent_alarm, process_cpu_warn"
        ));
        l.set("disk_percent_warn", None).unwrap();
        l.set("disk_percent_alarm", None).unwrap();
        assert!(l.is_empty());
        assert_eq!(parse_limit(-1.0), None);
        assert_eq!(parse_limit(f64::NAN), None);
        assert_eq!(parse_limit(0.0001), Some(0.0001));
    }
}
