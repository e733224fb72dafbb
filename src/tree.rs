//! The parameter tree and odin-control's GET rules.
//!
//! A snapshot of samples becomes a [`Node`] tree once per cycle; every `get`
//! and every published snapshot reads that tree. The rules follow odin-control's
//! `ParameterTree.get` exactly (recorded in the shared reference), except where
//! odin raises an index or type error: those are `Invalid path` here, since a
//! client should never see an internal exception.

use std::borrow::Cow;

use indexmap::IndexMap;
use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;
use serde_json::Value;

/// The type names odin-control's metadata uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Int,
    Float,
    Str,
    Bool,
    /// A list whose elements are of the given scalar kind.
    List(Scalar),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scalar {
    Int,
    Float,
    Str,
    Bool,
}

impl Scalar {
    fn name(self) -> &'static str {
        match self {
            Scalar::Int => "int",
            Scalar::Float => "float",
            Scalar::Str => "str",
            Scalar::Bool => "bool",
        }
    }
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Int => "int",
            Kind::Float => "float",
            Kind::Str => "str",
            Kind::Bool => "bool",
            Kind::List(_) => "list",
        }
    }
}

/// A value with its type; read-only unless marked [`Leaf::writeable`] (the
/// status tree never is; `request_configuration`'s values may be).
#[derive(Debug, Clone, PartialEq)]
pub struct Leaf {
    value: Value,
    kind: Kind,
    writeable: bool,
}

impl Leaf {
    pub fn int(v: u64) -> Self {
        Leaf {
            value: Value::from(v),
            kind: Kind::Int,
            writeable: false,
        }
    }

    pub fn float(v: f64) -> Self {
        // JSON has no NaN or infinity; a figure that cannot be computed is 0.0.
        let v = if v.is_finite() { v } else { 0.0 };
        Leaf {
            value: Value::from(v),
            kind: Kind::Float,
            writeable: false,
        }
    }

    pub fn str(v: impl Into<String>) -> Self {
        Leaf {
            value: Value::String(v.into()),
            kind: Kind::Str,
            writeable: false,
        }
    }

    pub fn bool(v: bool) -> Self {
        Leaf {
            value: Value::Bool(v),
            kind: Kind::Bool,
            writeable: false,
        }
    }

    /// A value that is not there now (JSON `null`); `kind` is what it is when present.
    pub fn null(kind: Kind) -> Self {
        Leaf {
            value: Value::Null,
            kind,
            writeable: false,
        }
    }

    pub fn int_list(v: impl IntoIterator<Item = u64>) -> Self {
        Leaf {
            value: Value::Array(v.into_iter().map(Value::from).collect()),
            kind: Kind::List(Scalar::Int),
            writeable: false,
        }
    }

    pub fn float_list(v: impl IntoIterator<Item = f64>) -> Self {
        Leaf {
            value: Value::Array(v.into_iter().map(|x| Leaf::float(x).value).collect()),
            kind: Kind::List(Scalar::Float),
            writeable: false,
        }
    }

    pub fn str_list(v: impl IntoIterator<Item = String>) -> Self {
        Leaf {
            value: Value::Array(v.into_iter().map(Value::String).collect()),
            kind: Kind::List(Scalar::Str),
            writeable: false,
        }
    }

    /// The same value, which metadata marks writeable when `writeable` is true.
    pub fn writeable(self, writeable: bool) -> Self {
        Leaf { writeable, ..self }
    }

    pub fn value(&self) -> &Value {
        &self.value
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }
}

/// A child's name: most are the same every cycle (`cpu_percent`) and cost no
/// allocation; PIDs, disks and names given at start are owned.
pub type Key = Cow<'static, str>;

/// A node of the tree: a branch of named children, or a leaf.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    Branch(IndexMap<Key, Node>),
    Leaf(Leaf),
}

impl Default for Node {
    fn default() -> Self {
        Node::Branch(IndexMap::new())
    }
}

impl From<Leaf> for Node {
    fn from(leaf: Leaf) -> Self {
        Node::Leaf(leaf)
    }
}

impl Node {
    /// An empty branch.
    pub fn branch() -> Self {
        Node::default()
    }

    /// An empty branch with room for `children` (built every cycle: growing
    /// it child by child would allocate and copy three times over).
    pub fn branch_for(children: usize) -> Self {
        Node::Branch(IndexMap::with_capacity(children))
    }

    /// Adds (or replaces) a child; a leaf given a child becomes a branch.
    pub fn insert(&mut self, name: impl Into<Key>, child: impl Into<Node>) {
        if let Node::Leaf(_) = self {
            *self = Node::branch();
        }
        if let Node::Branch(children) = self {
            children.insert(name.into(), child.into());
        }
    }

    /// Builder form of [`Node::insert`].
    pub fn with(mut self, name: impl Into<Key>, child: impl Into<Node>) -> Self {
        self.insert(name, child);
        self
    }

    /// Rebuilds a tree from its plain JSON form (a published or recorded
    /// snapshot), inferring each leaf's kind, so clients apply the same GET rules.
    pub fn from_json(value: &Value) -> Node {
        match value {
            Value::Object(members) => Node::Branch(
                members
                    .iter()
                    .map(|(name, child)| (Key::from(name.clone()), Node::from_json(child)))
                    .collect(),
            ),
            Value::Array(items) => {
                let element = match items.first() {
                    Some(Value::Number(n)) if n.is_f64() => Scalar::Float,
                    Some(Value::String(_)) => Scalar::Str,
                    Some(Value::Bool(_)) => Scalar::Bool,
                    _ => Scalar::Int,
                };
                Node::Leaf(Leaf {
                    value: value.clone(),
                    kind: Kind::List(element),
                    writeable: false,
                })
            }
            Value::Number(n) if n.is_f64() => Node::Leaf(Leaf {
                value: value.clone(),
                kind: Kind::Float,
                writeable: false,
            }),
            Value::Number(_) => Node::Leaf(Leaf {
                value: value.clone(),
                kind: Kind::Int,
                writeable: false,
            }),
            Value::Bool(_) => Node::Leaf(Leaf {
                value: value.clone(),
                kind: Kind::Bool,
                writeable: false,
            }),
            Value::String(_) | Value::Null => Node::Leaf(Leaf {
                value: value.clone(),
                kind: Kind::Str,
                writeable: false,
            }),
        }
    }

    pub fn child(&self, name: &str) -> Option<&Node> {
        match self {
            Node::Branch(children) => children.get(name),
            Node::Leaf(_) => None,
        }
    }

    /// odin-control's GET: the node (or list element) at `path`.
    pub fn get<'t>(&'t self, path: &str) -> Result<Selection<'t>, InvalidPath> {
        let invalid = || InvalidPath(path.to_string());
        if path.is_empty() {
            return Ok(Selection::Node(self));
        }
        // One trailing slash is ignored; what is left must name something.
        let trimmed = path.strip_suffix('/').unwrap_or(path);
        if trimmed.is_empty() {
            return Err(invalid());
        }
        let mut node = self;
        let mut segments = trimmed.split('/');
        while let Some(segment) = segments.next() {
            match node {
                Node::Branch(children) => {
                    node = children.get(segment).ok_or_else(invalid)?;
                }
                Node::Leaf(leaf) => {
                    // Only a list leaf goes one level deeper, by a plain decimal index.
                    let Kind::List(_) = leaf.kind else {
                        return Err(invalid());
                    };
                    let index = parse_index(segment).ok_or_else(invalid)?;
                    let element = leaf
                        .value
                        .as_array()
                        .and_then(|items| items.get(index))
                        .ok_or_else(invalid)?;
                    if segments.next().is_some() {
                        return Err(invalid());
                    }
                    return Ok(Selection::Element {
                        value: element,
                        list: leaf,
                    });
                }
            }
        }
        Ok(Selection::Node(node))
    }
}

fn parse_index(segment: &str) -> Option<usize> {
    if segment.is_empty() || !segment.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    segment.parse().ok()
}

/// A path that names nothing in the tree. Its text is odin-control's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Invalid path: {0}")]
pub struct InvalidPath(pub String);

/// What a path names: a node, or one element of a list leaf.
#[derive(Debug, Clone, Copy)]
pub enum Selection<'t> {
    Node(&'t Node),
    Element { value: &'t Value, list: &'t Leaf },
}

impl<'t> Selection<'t> {
    /// What the path names, bare: a leaf's value, an element, or a branch's
    /// nested object (no `{"value": ...}` wrapper), for lines meant for plotting.
    pub fn bare(self) -> Value {
        match self {
            Selection::Node(Node::Leaf(leaf)) => leaf.value.clone(),
            Selection::Node(node) => serde_json::to_value(node).unwrap_or(Value::Null),
            Selection::Element { value, .. } => value.clone(),
        }
    }

    /// The GET result, plain or with metadata, ready to serialise.
    pub fn view(self, metadata: bool) -> View<'t> {
        View {
            selection: self,
            metadata,
        }
    }
}

/// A serialisable GET result: a branch is its nested object, a leaf is
/// `{"value": v}` (plus `writeable`, `type` and `element_type` with metadata).
#[derive(Debug, Clone, Copy)]
pub struct View<'t> {
    selection: Selection<'t>,
    metadata: bool,
}

impl Serialize for View<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.selection {
            Selection::Node(Node::Leaf(leaf)) => {
                LeafObject::new(&leaf.value, leaf, self.metadata).serialize(s)
            }
            Selection::Node(node) => Tree {
                node,
                metadata: self.metadata,
            }
            .serialize(s),
            // odin answers an element with the list's metadata around the element.
            Selection::Element { value, list } => {
                LeafObject::new(value, list, self.metadata).serialize(s)
            }
        }
    }
}

impl Serialize for Node {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        Tree {
            node: self,
            metadata: false,
        }
        .serialize(s)
    }
}

/// A subtree as nested objects: leaves bare, or as metadata objects.
struct Tree<'t> {
    node: &'t Node,
    metadata: bool,
}

impl Serialize for Tree<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.node {
            Node::Leaf(leaf) if self.metadata => {
                LeafObject::new(&leaf.value, leaf, true).serialize(s)
            }
            Node::Leaf(leaf) => leaf.value.serialize(s),
            Node::Branch(children) => {
                let mut map = s.serialize_map(Some(children.len()))?;
                for (name, child) in children {
                    map.serialize_entry(
                        name,
                        &Tree {
                            node: child,
                            metadata: self.metadata,
                        },
                    )?;
                }
                map.end()
            }
        }
    }
}

/// `{"value": v}`, or `{"value": v, "writeable": W, "type": T[, "element_type": E]}`.
struct LeafObject<'t> {
    value: &'t Value,
    kind: Option<Kind>,
    writeable: bool,
}

impl<'t> LeafObject<'t> {
    fn new(value: &'t Value, leaf: &'t Leaf, metadata: bool) -> Self {
        LeafObject {
            value,
            kind: metadata.then_some(leaf.kind),
            writeable: leaf.writeable,
        }
    }
}

impl Serialize for LeafObject<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let Some(kind) = self.kind else {
            let mut map = s.serialize_map(Some(1))?;
            map.serialize_entry("value", self.value)?;
            return map.end();
        };
        let element = match kind {
            Kind::List(element) => Some(element),
            _ => None,
        };
        let mut map = s.serialize_map(Some(if element.is_some() { 4 } else { 3 }))?;
        map.serialize_entry("value", self.value)?;
        map.serialize_entry("writeable", &self.writeable)?;
        map.serialize_entry("type", kind.name())?;
        if let Some(element) = element {
            map.serialize_entry("element_type", element.name())?;
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample_tree() -> Node {
        let usage = Node::branch()
            .with("total", Leaf::int(100))
            .with("used", Leaf::int(40))
            .with("free", Leaf::int(50))
            .with("percent", Leaf::float(44.4));
        let proc_ = Node::branch()
            .with("cpu_percent", Leaf::float(0.0))
            .with("cpu_affinity", Leaf::int_list([0, 1]));
        Node::branch()
            .with(
                "disk",
                Node::branch().with("_", usage.clone()).with("_tmp", usage),
            )
            .with("network", Node::branch())
            .with(
                "process",
                Node::branch()
                    .with("sleep", Node::branch().with("12577", proc_))
                    .with("none", Node::branch()),
            )
    }

    fn get(tree: &Node, path: &str, metadata: bool) -> Result<Value, String> {
        tree.get(path)
            .map(|sel| serde_json::to_value(sel.view(metadata)).unwrap())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn whole_tree_and_branches() {
        let t = sample_tree();
        let whole = get(&t, "", false).unwrap();
        assert_eq!(whole["disk"]["_tmp"]["total"], json!(100));
        assert_eq!(whole["process"]["none"], json!({}));
        assert_eq!(get(&t, "disk", false), get(&t, "disk/", false));
        assert_eq!(
            get(&t, "disk/_tmp", false).unwrap(),
            json!({"total": 100, "used": 40, "free": 50, "percent": 44.4})
        );
    }

    #[test]
    fn leaves_are_wrapped_in_value() {
        let t = sample_tree();
        assert_eq!(
            get(&t, "disk/_tmp/total", false).unwrap(),
            json!({"value": 100})
        );
        assert_eq!(
            get(&t, "disk/_tmp/total/", false).unwrap(),
            json!({"value": 100})
        );
        assert_eq!(
            get(&t, "process/sleep/12577/cpu_affinity/", false).unwrap(),
            json!({"value": [0, 1]})
        );
    }

    #[test]
    fn list_elements_by_plain_index() {
        let t = sample_tree();
        let p = "process/sleep/12577/cpu_affinity";
        assert_eq!(
            get(&t, &format!("{p}/0"), false).unwrap(),
            json!({"value": 0})
        );
        assert_eq!(
            get(&t, &format!("{p}/1"), false).unwrap(),
            json!({"value": 1})
        );
        assert_eq!(
            get(&t, &format!("{p}/0"), true).unwrap(),
            json!({"value": 0, "writeable": false, "type": "list", "element_type": "int"})
        );
        for bad in [
            "5",
            "-1",
            "abc",
            "+1",
            "0/0",
            "0/x",
            "0//",
            "99999999999999999999999",
        ] {
            let path = format!("{p}/{bad}");
            assert_eq!(get(&t, &path, false), Err(format!("Invalid path: {path}")));
        }
    }

    #[test]
    fn invalid_paths_quote_the_path_as_given() {
        let t = sample_tree();
        for path in [
            "/",
            "//",
            "/disk",
            "disk//",
            "disk//_tmp",
            "disk/_tmp//",
            "disk/_tmp/total//",
            "disk/_tmp/total/x",
            "disk/_tmp/total/0",
            "Disk",
            "nonexistent",
            "disk/_nope/total",
            "process/sleep/999999999",
            "status/network/bad",
            "/bad/path",
        ] {
            assert_eq!(get(&t, path, false), Err(format!("Invalid path: {path}")));
            assert_eq!(get(&t, path, true), Err(format!("Invalid path: {path}")));
        }
    }

    #[test]
    fn metadata_wraps_each_leaf_once() {
        let t = sample_tree();
        assert_eq!(
            get(&t, "disk/_tmp/total", true).unwrap(),
            json!({"value": 100, "writeable": false, "type": "int"})
        );
        assert_eq!(
            get(&t, "disk/_tmp", true).unwrap()["percent"],
            json!({"value": 44.4, "writeable": false, "type": "float"})
        );
        assert_eq!(
            get(&t, "", true).unwrap()["process"]["sleep"]["12577"]["cpu_affinity"],
            json!({"value": [0, 1], "writeable": false, "type": "list", "element_type": "int"})
        );
        // A path below a metadata object is not a path in the tree.
        assert!(get(&t, "disk/_tmp/total/value", true).is_err());
    }

    #[test]
    fn floats_stay_floats() {
        let t = sample_tree();
        let text = serde_json::to_string(
            &t.get("process/sleep/12577/cpu_percent")
                .unwrap()
                .view(false),
        )
        .unwrap();
        assert_eq!(text, r#"{"value":0.0}"#);
        assert_eq!(Leaf::float(f64::NAN).value(), &json!(0.0));
    }

    #[test]
    fn json_round_trip_keeps_get_rules() {
        let t = sample_tree();
        let back = Node::from_json(&serde_json::to_value(&t).unwrap());
        for path in [
            "",
            "disk/_tmp",
            "disk/_tmp/percent",
            "process/sleep/12577/cpu_affinity/1",
        ] {
            assert_eq!(get(&back, path, true), get(&t, path, true), "{path}");
        }
        assert_eq!(back.get("disk/_tmp/total").unwrap().bare(), json!(100));
        assert_eq!(
            back.get("process/sleep/12577/cpu_affinity/1")
                .unwrap()
                .bare(),
            json!(1)
        );
        assert_eq!(back.get("process/none").unwrap().bare(), json!({}));
    }

    #[test]
    fn order_is_insertion_order() {
        let t = sample_tree();
        let text = serde_json::to_string(&t).unwrap();
        let d = text.find("\"disk\"").unwrap();
        let n = text.find("\"network\"").unwrap();
        let p = text.find("\"process\"").unwrap();
        assert!(d < n && n < p);
    }
}
