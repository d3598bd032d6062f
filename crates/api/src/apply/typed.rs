//! Objects walked by their schema, as server-side apply sees them: which paths a value sets,
//! how two values differ, how an applied configuration merges into a live object, and how
//! fields nobody owns any more are removed.

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::ApplyError;
use super::fieldset::{self, FieldSet};
use crate::strategic::schema::{FieldInfo, ListType, Schema, Shape};

/// Objects nested deeper than this are refused (JSON bodies are bounded below it anyway).
const MAX_DEPTH: usize = 100;

/// How a value is owned and merged.
#[derive(Clone, Copy)]
enum Kind<'s> {
    /// One value: scalars, atomic lists, atomic maps and structs.
    Leaf,
    /// Field by field: structs and maps (labels), and objects the schema does not describe.
    Granular(&'s Shape),
    /// Items identified by these key fields.
    Keyed(&'s [Box<str>], &'s Shape),
    /// Items identified by their value.
    Set,
}

/// The schema table plus the walks over it.
#[derive(Clone, Copy)]
pub(super) struct Typed<'s> {
    pub schema: &'s Schema,
}

/// Paths that differ between two values: new in the second, changed, gone from it.
#[derive(Debug, Default)]
pub(super) struct Comparison {
    pub added: FieldSet,
    pub modified: FieldSet,
    pub removed: FieldSet,
}

impl Comparison {
    /// A container (map or list) at `path` counts as added or removed itself when one side
    /// lacks it; the root never does.
    fn container_presence(&mut self, old: Option<&Value>, new: Option<&Value>, path: &[String]) {
        if path.is_empty() {
            return;
        }
        if old.is_none() {
            self.added.insert(path);
        } else if new.is_none() {
            self.removed.insert(path);
        }
    }

    /// Added and modified paths: what a write takes over from other managers (taken out of
    /// the comparison, which keeps its removed paths).
    pub fn changed(&mut self) -> FieldSet {
        let mut changed = std::mem::take(&mut self.added);
        changed.union(&self.modified);
        changed
    }
}

/// Key fields upstream's schema defaults when an item leaves them out.
fn key_default(field: &str) -> Option<Value> {
    (field == "protocol").then(|| Value::String("TCP".into()))
}

impl<'s> Typed<'s> {
    fn kind(&self, info: FieldInfo<'s>, value: &Value) -> Kind<'s> {
        match info.shape {
            Shape::Scalar => Kind::Leaf,
            Shape::Struct(index) if info.atomic || self.schema.is_atomic(*index) => Kind::Leaf,
            Shape::Map(_) if info.atomic => Kind::Leaf,
            Shape::Struct(_) | Shape::Map(_) => Kind::Granular(info.shape),
            Shape::List(items) => match info.list {
                ListType::Atomic => Kind::Leaf,
                ListType::Set => Kind::Set,
                ListType::Map(keys) => Kind::Keyed(keys, items),
            },
            // Upstream deduces the type of undescribed values: maps are granular, lists atomic.
            Shape::Any if value.is_object() => Kind::Granular(info.shape),
            Shape::Any => Kind::Leaf,
        }
    }

    /// The path element of a keyed list item, or `None` when the item is not an object.
    fn item_key(keys: &[Box<str>], item: &Value) -> Option<String> {
        let object = item.as_object()?;
        let mut fields = Vec::with_capacity(keys.len());
        let defaults: Vec<(&str, Value)> = keys
            .iter()
            .filter(|k| !object.contains_key(&***k))
            .filter_map(|k| Some((&**k, key_default(k)?)))
            .collect();
        for key in keys {
            if let Some(value) = object.get(&**key) {
                fields.push((&**key, value));
            }
        }
        fields.extend(defaults.iter().map(|(k, v)| (*k, v)));
        Some(fieldset::key(&fields))
    }

    /// Path elements of a list's items, or `None` when the list is not one of these kinds
    /// (an item that is not an object in a keyed list).
    fn item_elements(kind: Kind<'_>, items: &[Value]) -> Option<Vec<String>> {
        match kind {
            Kind::Keyed(keys, _) => items.iter().map(|item| Self::item_key(keys, item)).collect(),
            Kind::Set => Some(items.iter().map(fieldset::value).collect()),
            Kind::Leaf | Kind::Granular(_) => None,
        }
    }

    fn item_info(kind: Kind<'s>) -> FieldInfo<'s> {
        match kind {
            Kind::Keyed(_, items) => FieldInfo::of(items),
            _ => FieldInfo::any(),
        }
    }

    fn child_info(&self, shape: &'s Shape, key: &str) -> FieldInfo<'s> {
        self.schema.field(shape, key)
    }

    /// Adds the paths `value` sets to `set` (the set of the path `value` is at). Returns
    /// whether that path is itself a member (a leaf).
    pub fn collect(&self, value: &Value, info: FieldInfo<'s>, set: &mut FieldSet) -> bool {
        self.collect_at(value, info, set, 0)
    }

    fn collect_at(
        &self,
        value: &Value,
        info: FieldInfo<'s>,
        set: &mut FieldSet,
        depth: usize,
    ) -> bool {
        if depth > MAX_DEPTH {
            return true;
        }
        let kind = self.kind(info, value);
        match (kind, value) {
            (Kind::Granular(shape), Value::Object(map)) => {
                for (key, child) in map {
                    let element = fieldset::field(key);
                    let mut below = FieldSet::new();
                    let leaf =
                        self.collect_at(child, self.child_info(shape, key), &mut below, depth + 1);
                    let empty = child.is_null() || child.as_object().is_some_and(Map::is_empty);
                    let member = leaf || empty || !self.schema.declares(shape, key);
                    set.add(element, member, below);
                }
                false
            }
            (Kind::Keyed(..) | Kind::Set, Value::Array(items)) => {
                let Some(elements) = Self::item_elements(kind, items) else { return true };
                for (element, item) in elements.into_iter().zip(items) {
                    let mut below = FieldSet::new();
                    if matches!(kind, Kind::Keyed(..)) {
                        self.collect_at(item, Self::item_info(kind), &mut below, depth + 1);
                    }
                    set.add(element, true, below);
                }
                false
            }
            _ => true,
        }
    }

    /// Records in `out` how `new` differs from `old` at `path`.
    pub fn compare<'v>(
        &self,
        old: Option<&'v Value>,
        new: Option<&'v Value>,
        info: FieldInfo<'s>,
        path: &mut Vec<String>,
        out: &mut Comparison,
    ) {
        let Some(sample) = new.or(old) else { return };
        let kind = self.kind(info, sample);
        let container = path.len() < MAX_DEPTH
            && match kind {
                Kind::Granular(_) => old.is_none_or(is_map) && new.is_none_or(is_map),
                Kind::Keyed(..) | Kind::Set => {
                    let indexable = |v: Option<&Value>| match v {
                        None | Some(Value::Null) => true,
                        Some(Value::Array(items)) => Self::item_elements(kind, items).is_some(),
                        Some(_) => false,
                    };
                    indexable(old) && indexable(new)
                }
                Kind::Leaf => false,
            };
        if !container {
            match (old, new) {
                (None, Some(_)) => out.added.insert(path.as_slice()),
                (Some(_), None) => out.removed.insert(path.as_slice()),
                (Some(a), Some(b)) if a != b => out.modified.insert(path.as_slice()),
                _ => {}
            }
            return;
        }
        match kind {
            Kind::Granular(shape) => {
                let empty = Map::new();
                let old_map = old.and_then(Value::as_object).unwrap_or(&empty);
                let new_map = new.and_then(Value::as_object).unwrap_or(&empty);
                for (key, value) in new_map {
                    path.push(fieldset::field(key));
                    let info = self.child_info(shape, key);
                    self.compare(old_map.get(key), Some(value), info, path, out);
                    path.pop();
                }
                for (key, value) in old_map.iter().filter(|(k, _)| !new_map.contains_key(*k)) {
                    path.push(fieldset::field(key));
                    self.compare(Some(value), None, self.child_info(shape, key), path, out);
                    path.pop();
                }
            }
            _ => {
                let items = |v: Option<&'v Value>| -> Vec<(String, &'v Value)> {
                    let list = v.and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[]);
                    let elements = Self::item_elements(kind, list).unwrap_or_default();
                    elements.into_iter().zip(list.iter()).collect()
                };
                let (old_items, new_items) = (items(old), items(new));
                let old_index: HashMap<&str, &Value> =
                    old_items.iter().rev().map(|(k, v)| (k.as_str(), *v)).collect();
                let new_index: HashMap<&str, &Value> =
                    new_items.iter().rev().map(|(k, v)| (k.as_str(), *v)).collect();
                let info = Self::item_info(kind);
                for (element, value) in &new_items {
                    path.push(element.clone());
                    self.compare(
                        old_index.get(element.as_str()).copied(),
                        Some(*value),
                        info,
                        path,
                        out,
                    );
                    path.pop();
                }
                for (element, value) in &old_items {
                    if !new_index.contains_key(element.as_str()) {
                        path.push(element.clone());
                        self.compare(Some(*value), None, info, path, out);
                        path.pop();
                    }
                }
            }
        }
        out.container_presence(old, new, path);
    }

    /// `compare` over the fields `tracks(parent, key)` admits at the top and in `metadata`
    /// (upstream compares only what managers can own), without copying the objects.
    pub fn compare_tracked(
        &self,
        old: Option<&Value>,
        new: Option<&Value>,
        info: FieldInfo<'s>,
        tracks: &dyn Fn(&[String], &str) -> bool,
        path: &mut Vec<String>,
        out: &mut Comparison,
    ) {
        let Some(sample) = new.or(old) else { return };
        let (Kind::Granular(shape), true) =
            (self.kind(info, sample), old.is_none_or(is_map) && new.is_none_or(is_map))
        else {
            return self.compare(old, new, info, path, out);
        };
        let empty = Map::new();
        let old_map = old.and_then(Value::as_object).unwrap_or(&empty);
        let new_map = new.and_then(Value::as_object).unwrap_or(&empty);
        let gone = old_map.iter().filter(|(k, _)| !new_map.contains_key(*k));
        let pairs = new_map.iter().map(|(k, v)| (k, old_map.get(k), Some(v)));
        for (key, old_value, new_value) in pairs.chain(gone.map(|(k, v)| (k, Some(v), None))) {
            if !tracks(path, key) {
                continue;
            }
            let info = self.child_info(shape, key);
            path.push(fieldset::field(key));
            if path.len() == 1 && key == "metadata" {
                self.compare_tracked(old_value, new_value, info, tracks, path, out);
            } else {
                self.compare(old_value, new_value, info, path, out);
            }
            path.pop();
        }
        out.container_presence(old, new, path);
    }

    /// `config` merged into `live`: granular fields merge, keyed lists and sets merge their
    /// items, everything else is replaced. A `null` in the configuration removes the field.
    pub fn merge(
        &self,
        live: Option<&Value>,
        config: &Value,
        info: FieldInfo<'s>,
        path: &mut Vec<String>,
    ) -> Result<Value, ApplyError> {
        if path.len() > MAX_DEPTH {
            return Err(ApplyError::Invalid {
                path: render(path),
                reason: "the object nests too deeply".into(),
            });
        }
        let kind = self.kind(info, config);
        match (kind, config) {
            (Kind::Granular(shape), Value::Object(fields)) => {
                // Live fields keep their places; what the configuration sets is merged rather
                // than copied first; its new fields follow.
                let empty = Map::new();
                let live_fields = live.and_then(Value::as_object).unwrap_or(&empty);
                let mut out = Map::with_capacity(live_fields.len() + fields.len());
                let added = fields.iter().filter(|(k, _)| !live_fields.contains_key(*k));
                let pairs = live_fields.iter().map(|(k, v)| (k, Some(v), fields.get(k)));
                for (key, live_value, value) in pairs.chain(added.map(|(k, v)| (k, None, Some(v))))
                {
                    let merged = match value {
                        None => live_value.cloned(),
                        Some(Value::Null) => None,
                        Some(value) => {
                            path.push(fieldset::field(key));
                            let info = self.child_info(shape, key);
                            let merged = self.merge(live_value, value, info, path)?;
                            path.pop();
                            Some(merged)
                        }
                    };
                    if let Some(merged) = merged {
                        out.insert(key.clone(), merged);
                    }
                }
                Ok(Value::Object(out))
            }
            (Kind::Keyed(..) | Kind::Set, Value::Array(items)) => {
                self.merge_items(kind, live, items, path)
            }
            _ => Ok(config.clone()),
        }
    }

    /// Merges list items by identity. Items both sides share follow the configuration's
    /// order; items only the live list has keep their place; new items go where the
    /// configuration puts them.
    fn merge_items(
        &self,
        kind: Kind<'s>,
        live: Option<&Value>,
        config: &[Value],
        path: &mut Vec<String>,
    ) -> Result<Value, ApplyError> {
        let Some(config_elements) = Self::item_elements(kind, config) else {
            return Err(ApplyError::Invalid {
                path: render(path),
                reason: "the items of this list must be objects".into(),
            });
        };
        let mut seen = HashMap::with_capacity(config.len());
        for element in &config_elements {
            if seen.insert(element.as_str(), ()).is_some() {
                let mut at = path.clone();
                at.push(element.clone());
                return Err(ApplyError::Invalid {
                    path: render(path),
                    reason: format!("duplicate entries for {}", render(&at[path.len()..])),
                });
            }
        }
        let live_items = live.and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[]);
        let live_elements = Self::item_elements(kind, live_items).unwrap_or_default();
        let live_elements = &live_elements[..live_elements.len().min(live_items.len())];
        let mut live_index: HashMap<&str, usize> = HashMap::with_capacity(live_elements.len());
        for (i, element) in live_elements.iter().enumerate().rev() {
            live_index.insert(element.as_str(), i);
        }
        let info = Self::item_info(kind);
        // Shared items in the configuration's order: the next one the live side may emit.
        let shared: Vec<&str> = config_elements
            .iter()
            .map(String::as_str)
            .filter(|e| live_index.contains_key(e))
            .collect();
        let mut next_shared = shared.iter().copied().peekable();
        let mut emitted: HashMap<&str, ()> = HashMap::with_capacity(config.len());
        let mut out = Vec::with_capacity(config.len() + live_items.len());
        let (mut l, mut r) = (0, 0);
        while l < live_elements.len() || r < config.len() {
            if l < live_elements.len() && r < config.len() {
                let element = live_elements[l].as_str();
                if element == config_elements[r] {
                    path.push(config_elements[r].clone());
                    out.push(self.merge_item(
                        kind,
                        Some(&live_items[l]),
                        &config[r],
                        info,
                        path,
                    )?);
                    path.pop();
                    emitted.insert(element, ());
                    next_shared.next();
                    l += 1;
                    r += 1;
                    continue;
                }
                // A shared item the configuration moved: it comes when the configuration does.
                if seen.contains_key(element) && next_shared.peek().is_some_and(|n| *n != element) {
                    l += 1;
                    continue;
                }
            }
            if l < live_elements.len() {
                let element = live_elements[l].as_str();
                if !seen.contains_key(element) {
                    out.push(live_items[l].clone());
                    l += 1;
                    continue;
                }
                if emitted.contains_key(element) {
                    l += 1;
                    continue;
                }
            }
            if r < config.len() {
                let element = config_elements[r].as_str();
                let live_item = live_index.get(element).map(|&i| &live_items[i]);
                path.push(element.to_owned());
                out.push(self.merge_item(kind, live_item, &config[r], info, path)?);
                path.pop();
                emitted.insert(element, ());
                if next_shared.peek() == Some(&element) {
                    next_shared.next();
                }
                r += 1;
            }
        }
        Ok(Value::Array(out))
    }

    fn merge_item(
        &self,
        kind: Kind<'s>,
        live: Option<&Value>,
        config: &Value,
        info: FieldInfo<'s>,
        path: &mut Vec<String>,
    ) -> Result<Value, ApplyError> {
        match kind {
            Kind::Set => Ok(config.clone()),
            _ => self.merge(live, config, info, path),
        }
    }

    /// Removes from `value` the paths of `last` (what an applier applied before) that no
    /// manager owns any more, by `owned` (every manager's set, the applier's new one included).
    /// A path is kept while anyone owns it or anything below it.
    pub fn prune(
        &self,
        value: &mut Value,
        last: &FieldSet,
        owned: Option<&FieldSet>,
        info: FieldInfo<'s>,
        depth: usize,
    ) {
        if depth > MAX_DEPTH || last.is_empty() {
            return;
        }
        let kind = self.kind(info, value);
        match (kind, value) {
            (Kind::Granular(shape), Value::Object(map)) => {
                for (element, _, below) in last.elements() {
                    let Some(key) = element.strip_prefix("f:") else { continue };
                    // The object's identity lives in metadata: never drop it wholesale.
                    let keep_parent = depth == 0 && key == "metadata";
                    if !owned.is_some_and(|o| o.touches(element)) && !keep_parent {
                        map.remove(key);
                    } else if let Some(child) = map.get_mut(key) {
                        let owned_below = owned.and_then(|o| o.child(element));
                        let info = self.child_info(shape, key);
                        self.prune(child, below, owned_below, info, depth + 1);
                    }
                }
            }
            (Kind::Keyed(keys, _), Value::Array(items)) => {
                let Some(elements) = Self::item_elements(kind, items) else { return };
                let mut keep = vec![true; items.len()];
                for (i, element) in elements.iter().enumerate() {
                    let Some(below) = last.child(element) else {
                        if last.has_member(element) && !owned.is_some_and(|o| o.touches(element)) {
                            keep[i] = false;
                        }
                        continue;
                    };
                    if !owned.is_some_and(|o| o.touches(element)) {
                        keep[i] = false;
                        continue;
                    }
                    // Key fields stay while the item does: they are what identifies it.
                    let below = without_keys(below, keys);
                    let owned_below = owned.and_then(|o| o.child(element));
                    self.prune(
                        &mut items[i],
                        &below,
                        owned_below,
                        Self::item_info(kind),
                        depth + 1,
                    );
                }
                let mut flags = keep.into_iter();
                items.retain(|_| flags.next().unwrap_or(true));
            }
            (Kind::Set, Value::Array(items)) => {
                items.retain(|item| {
                    let element = fieldset::value(item);
                    !last.touches(&element) || owned.is_some_and(|o| o.touches(&element))
                });
            }
            _ => {}
        }
    }
}

fn is_map(value: &Value) -> bool {
    value.is_object() || value.is_null()
}

fn without_keys(set: &FieldSet, keys: &[Box<str>]) -> FieldSet {
    let mut key_set = FieldSet::new();
    for key in keys {
        key_set.insert(&[fieldset::field(key)]);
    }
    set.difference(&key_set)
}

/// A path as upstream prints it.
pub(super) fn render(path: &[String]) -> String {
    let elements: Vec<&str> = path.iter().map(String::as_str).collect();
    fieldset::render_path(&elements)
}
