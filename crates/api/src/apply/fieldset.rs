//! Sets of field paths, as `metadata.managedFields` records them (upstream's FieldsV1:
//! `f:<field>`, `k:<key JSON>`, `v:<value JSON>`, with `.` marking a path that is itself a
//! member as well as a parent).

use std::collections::BTreeMap;
use std::fmt::Write;

use serde_json::{Map, Value};

/// A set of paths, as a trie keyed by path element (`f:spec`, `k:{"name":"app"}`, …).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSet {
    children: BTreeMap<String, Node>,
}

/// One path element's entry: whether the path ending here is in the set, and longer paths.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Node {
    member: bool,
    set: FieldSet,
}

impl Node {
    fn is_empty(&self) -> bool {
        !self.member && self.set.is_empty()
    }
}

/// Why a FieldsV1 document does not read as a field set.
#[derive(Debug, thiserror::Error)]
#[error("invalid fieldsV1 at {path:?}: {reason}")]
pub struct FieldsV1Error {
    path: String,
    reason: &'static str,
}

impl FieldSet {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn is_empty(&self) -> bool {
        self.children.is_empty()
    }

    /// Adds the path `elements` (each in FieldsV1 form) to the set.
    pub fn insert<S: AsRef<str>>(&mut self, elements: &[S]) {
        let Some((last, parents)) = elements.split_last() else { return };
        let mut set = self;
        for element in parents {
            set = &mut set.children.entry(element.as_ref().to_owned()).or_default().set;
        }
        set.children.entry(last.as_ref().to_owned()).or_default().member = true;
    }

    /// Adds `element` below this set, as a member or not, with the paths `below` it.
    pub fn add(&mut self, element: String, member: bool, below: FieldSet) {
        if !member && below.is_empty() {
            return;
        }
        let node = self.children.entry(element).or_default();
        node.member |= member;
        node.set.union(&below);
    }

    /// Whether the path `elements` is a member of the set.
    pub fn contains<S: AsRef<str>>(&self, elements: &[S]) -> bool {
        let Some((last, parents)) = elements.split_last() else { return false };
        let mut set = self;
        for element in parents {
            match set.child(element.as_ref()) {
                Some(below) => set = below,
                None => return false,
            }
        }
        set.has_member(last.as_ref())
    }

    /// Whether the path ending in `element` directly below this set is a member.
    pub fn has_member(&self, element: &str) -> bool {
        self.children.get(element).is_some_and(|n| n.member)
    }

    /// Whether the set holds the path ending in `element` or any path below it.
    pub fn touches(&self, element: &str) -> bool {
        self.children.contains_key(element)
    }

    /// The paths below `element`, if any.
    pub fn child(&self, element: &str) -> Option<&FieldSet> {
        self.children.get(element).map(|n| &n.set)
    }

    /// Direct path elements below this set, each with whether it is a member itself.
    pub fn elements(&self) -> impl Iterator<Item = (&str, bool, &FieldSet)> {
        self.children.iter().map(|(k, n)| (k.as_str(), n.member, &n.set))
    }

    pub fn union(&mut self, other: &FieldSet) {
        for (element, node) in &other.children {
            let mine = self.children.entry(element.clone()).or_default();
            mine.member |= node.member;
            mine.set.union(&node.set);
        }
    }

    /// The paths of `self` that are not in `other`.
    pub fn difference(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet::new();
        for (element, node) in &self.children {
            let result = match other.children.get(element) {
                None => node.clone(),
                Some(theirs) => Node {
                    member: node.member && !theirs.member,
                    set: node.set.difference(&theirs.set),
                },
            };
            if !result.is_empty() {
                out.children.insert(element.clone(), result);
            }
        }
        out
    }

    /// The paths in both sets.
    pub fn intersection(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet::new();
        for (element, node) in &self.children {
            let Some(theirs) = other.children.get(element) else { continue };
            let result = Node {
                member: node.member && theirs.member,
                set: node.set.intersection(&theirs.set),
            };
            if !result.is_empty() {
                out.children.insert(element.clone(), result);
            }
        }
        out
    }

    /// Every member path, each as its elements, in set order.
    pub fn paths(&self) -> Vec<Vec<&str>> {
        let mut out = Vec::new();
        self.collect_paths(&mut Vec::new(), &mut out);
        out
    }

    fn collect_paths<'a>(&'a self, prefix: &mut Vec<&'a str>, out: &mut Vec<Vec<&'a str>>) {
        for (element, node) in &self.children {
            prefix.push(element);
            if node.member {
                out.push(prefix.clone());
            }
            node.set.collect_paths(prefix, out);
            prefix.pop();
        }
    }

    /// The FieldsV1 document of this set.
    pub fn to_fields_v1(&self) -> Value {
        let mut map = Map::new();
        for (element, node) in &self.children {
            let mut child = Map::new();
            if node.member && !node.set.is_empty() {
                child.insert(".".into(), Value::Object(Map::new()));
            }
            if let Value::Object(below) = node.set.to_fields_v1() {
                child.extend(below);
            }
            map.insert(element.clone(), Value::Object(child));
        }
        Value::Object(map)
    }

    /// Reads a FieldsV1 document.
    pub fn from_fields_v1(value: &Value) -> Result<FieldSet, FieldsV1Error> {
        let mut set = FieldSet::new();
        read_fields_v1(value, &mut set, &mut String::new(), 0)?;
        Ok(set)
    }
}

/// Deeper documents are refused rather than recursed into.
const MAX_DEPTH: usize = 100;

/// Reads the entries of `value` into `set`; returns whether `value` held `.`.
fn read_fields_v1(
    value: &Value,
    set: &mut FieldSet,
    path: &mut String,
    depth: usize,
) -> Result<bool, FieldsV1Error> {
    let error = |path: &String, reason| FieldsV1Error { path: path.clone(), reason };
    if depth > MAX_DEPTH {
        return Err(error(path, "nested too deeply"));
    }
    let Value::Object(map) = value else { return Err(error(path, "expected an object")) };
    let mut dot = false;
    for (element, child) in map {
        if element == "." {
            dot = true;
            continue;
        }
        if !["f:", "k:", "v:", "i:"].iter().any(|prefix| element.starts_with(prefix)) {
            return Err(error(path, "path elements start with f:, k:, v: or i:"));
        }
        let len = path.len();
        path.push_str(element);
        let mut node = Node::default();
        let is_leaf = child.as_object().is_some_and(Map::is_empty);
        node.member = read_fields_v1(child, &mut node.set, path, depth + 1)? || is_leaf;
        path.truncate(len);
        set.children.insert(element.clone(), node);
    }
    Ok(dot)
}

/// A path as upstream prints it in conflict messages: `.spec.containers[name="app"].image`.
pub fn render_path(elements: &[&str]) -> String {
    let mut out = String::new();
    for element in elements {
        let (kind, rest) = element.split_at(element.len().min(2));
        match kind {
            "f:" => {
                out.push('.');
                out.push_str(rest);
            }
            "k:" => {
                let key: Map<String, Value> = serde_json::from_str(rest).unwrap_or_default();
                let fields: Vec<String> = key.iter().map(|(k, v)| format!("{k}={v}")).collect();
                let _ = write!(out, "[{}]", fields.join(","));
            }
            "v:" => {
                let _ = write!(out, "[={rest}]");
            }
            "i:" => {
                let _ = write!(out, "[{rest}]");
            }
            _ => out.push_str(element),
        }
    }
    out
}

/// The path element of a struct field or map entry.
pub fn field(name: &str) -> String {
    format!("f:{name}")
}

/// The path element of a set item.
pub fn value(item: &Value) -> String {
    format!("v:{item}")
}

/// The path element of a keyed list item, from its key fields in name order.
pub fn key(fields: &[(&str, &Value)]) -> String {
    let mut sorted: Vec<_> = fields.to_vec();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    let map: Map<String, Value> =
        sorted.into_iter().map(|(k, v)| (k.to_owned(), v.clone())).collect();
    format!("k:{}", Value::Object(map))
}
