//! One cycle's tree with its JSON, encoded once and reused by every answer.
//!
//! The tree changes once a cycle, but a client may ask for all of it many
//! times a cycle, and encoding it is most of what such an answer costs. So
//! the plain JSON of each top-level branch is made once, the first time
//! anyone needs it (the publisher, for a JSON snapshot, or the control
//! thread), and the whole tree's JSON is those branches put together.
//! `get ""`, `status` and `get` of a top-level branch (without metadata)
//! splice these bytes into their reply's envelope; every other answer is
//! encoded from the tree as before. The bytes are what encoding the tree
//! gives, so a reply is byte for byte the same either way (the tests prove
//! it against the slow path).

use std::ops::Deref;
use std::sync::OnceLock;

use serde::{Serialize, Serializer};
use serde_json::value::RawValue;

use crate::tree::{InvalidPath, Key, Node, Selection, View};

/// The latest tree, as the control thread and the publisher share it.
#[derive(Debug)]
pub struct CachedTree {
    tree: Node,
    json: OnceLock<Encoded>,
}

/// The tree's JSON: the whole, and each top-level child's in the tree's order.
#[derive(Debug)]
struct Encoded {
    whole: Box<RawValue>,
    children: Vec<(Key, Box<RawValue>)>,
}

/// A GET result ready to serialise: cached bytes, or a view of the tree.
#[derive(Debug, Clone, Copy)]
pub enum Answer<'t> {
    Cached(&'t RawValue),
    View(View<'t>),
}

impl Serialize for Answer<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Answer::Cached(raw) => raw.serialize(s),
            Answer::View(view) => view.serialize(s),
        }
    }
}

impl CachedTree {
    pub fn new(tree: Node) -> CachedTree {
        CachedTree {
            tree,
            json: OnceLock::new(),
        }
    }

    /// The whole tree's JSON.
    pub fn json(&self) -> &RawValue {
        &self.encoded().whole
    }

    /// The GET result for `path`, with metadata or not: from the cached bytes
    /// when `path` names the root or a top-level branch and no metadata is
    /// asked for, otherwise from the tree. `get` and `status` both answer
    /// through here.
    pub fn answer(&self, path: &str, metadata: bool) -> Result<Answer<'_>, InvalidPath> {
        let selection = self.tree.get(path)?;
        if let (false, Selection::Node(node @ Node::Branch(_))) = (metadata, selection) {
            if let Some(raw) = self.cached(node) {
                return Ok(Answer::Cached(raw));
            }
        }
        Ok(Answer::View(selection.view(metadata)))
    }

    /// The cached JSON of `node`, if it is the root or a top-level child.
    fn cached(&self, node: &Node) -> Option<&RawValue> {
        if std::ptr::eq(node, &self.tree) {
            return Some(self.json());
        }
        let Node::Branch(children) = &self.tree else {
            return None;
        };
        let at = children
            .values()
            .position(|child| std::ptr::eq(child, node))?;
        self.encoded().children.get(at).map(|(_, raw)| &**raw)
    }

    fn encoded(&self) -> &Encoded {
        self.json.get_or_init(|| Encoded::of(&self.tree))
    }
}

impl Encoded {
    fn of(tree: &Node) -> Encoded {
        let children: Vec<(Key, Box<RawValue>)> = match tree {
            Node::Branch(children) => children
                .iter()
                .map(|(name, child)| (name.clone(), to_raw(child)))
                .collect(),
            Node::Leaf(_) => Vec::new(),
        };
        let whole = match tree {
            // The whole is its children's bytes put together as a map, which
            // is what encoding the branch gives.
            Node::Branch(_) => to_raw(&Together(&children)),
            Node::Leaf(_) => to_raw(tree),
        };
        Encoded { whole, children }
    }
}

/// Top-level children's JSON, serialised as the map they make up.
struct Together<'a>(&'a [(Key, Box<RawValue>)]);

impl Serialize for Together<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|(name, raw)| (name, &**raw)))
    }
}

fn to_raw<T: Serialize + ?Sized>(value: &T) -> Box<RawValue> {
    // Our own types always serialise (every map key is a string); should
    // that ever fail, the default is `null`, still valid JSON.
    serde_json::value::to_raw_value(value).unwrap_or_default()
}

impl Deref for CachedTree {
    type Target = Node;

    fn deref(&self) -> &Node {
        &self.tree
    }
}

impl From<Node> for CachedTree {
    fn from(tree: Node) -> Self {
        CachedTree::new(tree)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{Message, MsgType};
    use crate::sample::Sampler;
    use crate::tree::Leaf;

    /// A reply's bytes with a fixed timestamp, so two can be compared.
    fn reply<P: Serialize>(params: P) -> Vec<u8> {
        Message {
            msg_type: MsgType::Ack,
            msg_val: "get",
            id: 7,
            timestamp: "2026-12-03T12:00:00.000000".into(),
            params,
        }
        .to_json()
    }

    /// Every path's cached answer against the slow path: the tree encoded
    /// through its view, as before the cache.
    fn assert_same_as_slow_path(tree: Node) {
        let cached = CachedTree::new(tree.clone());
        let mut paths = vec![String::new()];
        if let Node::Branch(children) = &tree {
            for (name, child) in children {
                paths.push(name.to_string());
                paths.push(format!("{name}/"));
                if let Node::Branch(grand) = child {
                    paths.extend(grand.keys().map(|g| format!("{name}/{g}")));
                }
            }
        }
        let mut served_cached = 0;
        for path in &paths {
            for metadata in [false, true] {
                let fast = cached.answer(path, metadata).unwrap();
                served_cached += usize::from(matches!(fast, Answer::Cached(_)));
                let slow = tree.get(path).unwrap().view(metadata);
                assert_eq!(
                    String::from_utf8(reply(fast)).unwrap(),
                    String::from_utf8(reply(slow)).unwrap(),
                    "path {path:?}, metadata {metadata}"
                );
            }
        }
        assert!(served_cached >= 1, "the root is served from the cache");
        assert!(cached.answer("no/such", false).is_err());
    }

    #[test]
    fn cached_answers_are_the_slow_path_byte_for_byte() {
        let awkward = Node::branch()
            .with("quote\"d", Leaf::str("a \"b\" \u{e9}\n"))
            .with("f", Leaf::float(1e-7))
            .with("big", Leaf::float(1.5e300))
            .with("list", Leaf::float_list([0.1, 2.0]));
        let tree = Node::branch()
            .with("disk", Node::branch().with("_", awkward.clone()))
            .with("empty", Node::branch())
            .with("ünïcode", awkward)
            .with("leaf", Leaf::int(3));
        assert_same_as_slow_path(tree);
    }

    #[test]
    fn a_sampled_tree_is_served_the_same() {
        let mut sampler = Sampler::new(
            &["/".to_string()],
            &["lo".to_string()],
            &crate::config::ProcessEntry::parse("init")
                .into_iter()
                .collect::<Vec<_>>(),
        );
        let _ = sampler.sample();
        assert_same_as_slow_path(sampler.sample().to_tree());
    }
}
