//! The merge itself: objects key by key, merged lists by merge key or as sets, directives, and
//! upstream's ordering rules for merged lists.

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value};

use super::schema::{FieldInfo, Schema, Shape};
use super::{MAX_DEPTH, PatchError, kind};

type Object = Map<String, Value>;
type Result<T> = std::result::Result<T, PatchError>;

const DIRECTIVE: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const SET_ELEMENT_ORDER: &str = "$setElementOrder";
const DELETE_FROM_PRIMITIVE_LIST: &str = "$deleteFromPrimitiveList";

/// A `$patch` value. `merge` only states the default; upstream refuses it, capstan accepts it
/// on objects and list items alike.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Directive {
    Replace,
    Merge,
    Delete,
}

fn directive(value: &Value, path: &Path) -> Result<Directive> {
    match value.as_str() {
        Some("replace") => Ok(Directive::Replace),
        Some("merge") => Ok(Directive::Merge),
        Some("delete") => Ok(Directive::Delete),
        _ => Err(PatchError::UnknownDirective { path: path.render(), value: value.to_string() }),
    }
}

/// Keys that direct the merge of a sibling field rather than being fields themselves.
fn is_directive_key(key: &str) -> bool {
    key == DIRECTIVE
        || key == RETAIN_KEYS
        || key.starts_with(SET_ELEMENT_ORDER)
        || key.starts_with(DELETE_FROM_PRIMITIVE_LIST)
}

/// Where in the object a merge is, for error messages; also bounds the recursion.
pub(super) struct Path<'a> {
    parent: Option<&'a Path<'a>>,
    step: Step<'a>,
    depth: usize,
}

enum Step<'a> {
    Root,
    Field(&'a str),
    /// An item of a merged list, named by its merge key.
    Item(&'a str, &'a Value),
    Index(usize),
}

impl<'a> Path<'a> {
    pub fn root() -> Path<'static> {
        Path { parent: None, step: Step::Root, depth: 0 }
    }

    fn child(&'a self, step: Step<'a>) -> Path<'a> {
        Path { parent: Some(self), step, depth: self.depth + 1 }
    }

    fn field(&'a self, name: &'a str) -> Path<'a> {
        self.child(Step::Field(name))
    }

    fn render(&self) -> String {
        let mut steps = Vec::new();
        let mut at = Some(self);
        while let Some(path) = at {
            steps.push(&path.step);
            at = path.parent;
        }
        let mut out = String::new();
        for step in steps.into_iter().rev() {
            match step {
                Step::Root => {}
                Step::Field(name) if out.is_empty() => out.push_str(name),
                Step::Field(name) => {
                    out.push('.');
                    out.push_str(name);
                }
                Step::Item(key, value) => out.push_str(&format!("[{key}={value}]")),
                Step::Index(i) => out.push_str(&format!("[{i}]")),
            }
        }
        if out.is_empty() { "<root>".to_owned() } else { out }
    }

    fn check_depth(&self) -> Result<()> {
        if self.depth > MAX_DEPTH {
            return Err(PatchError::TooDeep { path: self.render() });
        }
        Ok(())
    }

    fn malformed(&self, directive: &str, reason: &'static str) -> PatchError {
        PatchError::MalformedDirective {
            path: self.render(),
            directive: directive.to_owned(),
            reason,
        }
    }

    fn misplaced(&self, directive: &str, reason: &'static str) -> PatchError {
        PatchError::MisplacedDirective {
            path: self.render(),
            directive: directive.to_owned(),
            reason,
        }
    }

    fn mismatch(&self, expected: &'static str, found: &Value) -> PatchError {
        PatchError::TypeMismatch { path: self.render(), expected, found: kind(found) }
    }

    fn missing_key(&self, key: &str, item: &Value) -> PatchError {
        let mut item = item.to_string();
        if item.len() > 120 {
            let cut = (0..=120).rev().find(|&i| item.is_char_boundary(i)).unwrap_or(0);
            item.truncate(cut);
            item.push('…');
        }
        PatchError::MissingMergeKey { path: self.render(), key: key.to_owned(), item }
    }
}

/// How list items are told apart: a merge key's value, or the scalar itself.
///
/// Numbers compare by value (`80` and `80.0` are one port), as Go's decoded `float64`s do.
fn identity(value: &Value) -> String {
    match value {
        Value::String(s) => format!("s{s}"),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), ..) => format!("n{i}"),
            (None, Some(u), _) => format!("n{u}"),
            (.., Some(f)) if f.fract() == 0.0 && f.abs() < 9.0e15 => format!("n{}", f as i64),
            _ => format!("n{n}"),
        },
        Value::Bool(b) => format!("b{b}"),
        Value::Null => "z".to_owned(),
        other => format!("j{other}"),
    }
}

/// The identity of a list item: its merge key's value for keyed lists, itself otherwise.
fn item_id(item: &Value, key: Option<&str>) -> Option<String> {
    match key {
        Some(key) => item.as_object()?.get(key).map(identity),
        None => Some(identity(item)),
    }
}

/// Position of each identity in a list, first occurrence winning.
fn positions(ids: &[String]) -> HashMap<&str, usize> {
    let mut out = HashMap::with_capacity(ids.len());
    for (i, id) in ids.iter().enumerate() {
        out.entry(id.as_str()).or_insert(i);
    }
    out
}

/// What a merged list holds.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Element {
    Objects,
    Scalars,
}

/// The type of the items of two lists, which must all have one JSON type and not be lists
/// (upstream's `sliceElementType`); `None` when both lists are empty.
fn element_kind(lists: [&[Value]; 2], path: &Path) -> Result<Option<Element>> {
    let mut found = None;
    for item in lists.into_iter().flatten() {
        let this = std::mem::discriminant(item);
        match found {
            _ if item.is_array() => return Err(PatchError::MixedList { path: path.render() }),
            None => found = Some(this),
            Some(first) if first != this => {
                return Err(PatchError::MixedList { path: path.render() });
            }
            Some(_) => {}
        }
    }
    let objects = lists.into_iter().flatten().next().is_some_and(Value::is_object);
    Ok(found.map(|_| if objects { Element::Objects } else { Element::Scalars }))
}

/// A patch value taken as is, where there is nothing to merge it with: nulls in objects mean
/// nothing and directives are dropped (upstream's `discardNullValuesFromPatch` and
/// `removeDirectives`). `None` when the value itself is a deletion.
fn literal(value: Value, path: &Path) -> Result<Option<Value>> {
    path.check_depth()?;
    match value {
        Value::Object(mut object) => match object.shift_remove(DIRECTIVE) {
            Some(d) if directive(&d, path)? == Directive::Delete => Ok(None),
            _ => literal_object(object, path).map(|o| Some(Value::Object(o))),
        },
        Value::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.into_iter().enumerate() {
                let item_path = path.child(Step::Index(i));
                // In a list, `$patch: replace` marks the whole list and `delete` an item to
                // drop: neither is content.
                let marker = item.get(DIRECTIVE).map(|d| directive(d, &item_path)).transpose()?;
                if matches!(marker, Some(Directive::Replace | Directive::Delete)) {
                    continue;
                }
                out.extend(literal(item, &item_path)?);
            }
            Ok(Some(Value::Array(out)))
        }
        scalar => Ok(Some(scalar)),
    }
}

fn literal_object(object: Object, path: &Path) -> Result<Object> {
    let mut out = Object::new();
    for (key, value) in object {
        if value.is_null() || is_directive_key(&key) {
            continue;
        }
        if let Some(value) = literal(value, &path.field(&key))? {
            out.insert(key, value);
        }
    }
    Ok(out)
}

/// Checks that a patch value has the JSON shape its schema declares, so a map patched into a
/// list is refused instead of replacing it.
fn check_shape(shape: &Shape, value: &Value, path: &Path) -> Result<()> {
    let (fits, expected) = match shape {
        Shape::Struct(_) | Shape::Map(_) => (value.is_object(), "an object"),
        Shape::List(_) => (value.is_array(), "a list"),
        Shape::Scalar => (!value.is_object() && !value.is_array(), "a string, number or boolean"),
        Shape::Any => (true, ""),
    };
    if fits || value.is_null() { Ok(()) } else { Err(path.mismatch(expected, value)) }
}

pub(super) struct Merger<'s> {
    schema: &'s Schema,
}

impl<'s> Merger<'s> {
    pub fn new(schema: &'s Schema) -> Self {
        Merger { schema }
    }

    /// Merges `patch` into `original`, both objects of shape `shape` (upstream's `mergeMap`).
    pub fn map(
        &self,
        mut original: Object,
        mut patch: Object,
        shape: &'s Shape,
        path: &Path,
    ) -> Result<Object> {
        path.check_depth()?;
        if let Some(marker) = patch.shift_remove(DIRECTIVE) {
            match directive(&marker, path)? {
                Directive::Replace => return literal_object(patch, path),
                // Upstream leaves an empty object, not an absent field.
                Directive::Delete => return Ok(Object::new()),
                Directive::Merge => {}
            }
        }
        retain_keys(&mut original, &mut patch, path)?;
        self.set_element_orders(&mut original, &mut patch, shape, path)?;
        for (key, value) in patch {
            if let Some(rest) = key.strip_prefix(DELETE_FROM_PRIMITIVE_LIST) {
                self.delete_from_primitive_list(&mut original, rest, value, shape, path)?;
                continue;
            }
            let field = self.schema.field(shape, &key);
            let field_path = path.field(&key);
            if value.is_null() {
                original.shift_remove(&key);
                continue;
            }
            check_shape(field.shape, &value, &field_path)?;
            let merged = match (original.get_mut(&key), value) {
                (Some(Value::Object(current)), Value::Object(value)) if !field.strategy.replace => {
                    let current = std::mem::take(current);
                    Some(Value::Object(self.map(current, value, field.shape, &field_path)?))
                }
                (Some(Value::Array(current)), Value::Array(value)) if field.strategy.merge => {
                    let current = std::mem::take(current);
                    Some(Value::Array(self.list(current, value, field, &field_path)?))
                }
                // New fields, scalars, replaced lists and changes of type take the patch value.
                (_, value) => literal(value, &field_path)?,
            };
            match merged {
                Some(merged) => original.insert(key, merged),
                None => original.shift_remove(&key),
            };
        }
        Ok(original)
    }

    /// Merges two lists of a field with patch strategy `merge` (upstream's `mergeSlice`).
    fn list(
        &self,
        original: Vec<Value>,
        patch: Vec<Value>,
        field: FieldInfo<'s>,
        path: &Path,
    ) -> Result<Vec<Value>> {
        if field.merge_key().is_some()
            && let Some(scalar) = patch.iter().find(|item| !item.is_object())
        {
            return Err(path.mismatch("an object", scalar));
        }
        let Some(element) = element_kind([&original, &patch], path)? else {
            return Ok(original);
        };
        if element == Element::Scalars {
            if field.merge_key().is_some() {
                let item = patch.iter().chain(&original).next().unwrap_or(&Value::Null);
                return Err(path.mismatch("an object", item));
            }
            return merge_scalars(original, &patch, path);
        }
        let Some(key) = field.merge_key() else {
            return Err(
                path.misplaced("patch strategy merge", "a list of objects needs a merge key")
            );
        };
        // Items with `$patch` act on the list; the rest merge into it.
        let mut original = original;
        let mut plain = Vec::with_capacity(patch.len());
        let mut replace = false;
        for item in patch {
            let Value::Object(mut object) = item else {
                return Err(path.mismatch("an object", &item));
            };
            let Some(marker) = object.get(DIRECTIVE) else {
                plain.push(object);
                continue;
            };
            match directive(marker, path)? {
                Directive::Delete => {
                    let Some(id) = object.get(key).map(identity) else {
                        return Err(path.missing_key(key, &Value::Object(object)));
                    };
                    original.retain(|o| item_id(o, Some(key)).as_deref() != Some(id.as_str()));
                }
                Directive::Replace => replace = true,
                Directive::Merge => {
                    object.shift_remove(DIRECTIVE);
                    plain.push(object);
                }
            }
        }
        if replace {
            let mut out = Vec::with_capacity(plain.len());
            for (i, item) in plain.into_iter().enumerate() {
                let item = Value::Object(item);
                if item_id(&item, Some(key)).is_none() {
                    return Err(path.missing_key(key, &item));
                }
                out.extend(literal(item, &path.child(Step::Index(i)))?);
            }
            return Ok(out);
        }
        let server_order = ids(&original, Some(key), path)?;
        let mut patch_order = Vec::with_capacity(plain.len());
        let mut merged = original;
        let mut index: HashMap<String, usize> = HashMap::with_capacity(merged.len());
        for (i, id) in server_order.iter().enumerate() {
            index.entry(id.clone()).or_insert(i);
        }
        for item in plain {
            let Some(key_value) = item.get(key).cloned() else {
                return Err(path.missing_key(key, &Value::Object(item)));
            };
            let id = identity(&key_value);
            let item_path = path.child(Step::Item(key, &key_value));
            match index.get(&id) {
                Some(&at) => {
                    let current = match &mut merged[at] {
                        Value::Object(current) => std::mem::take(current),
                        other => return Err(item_path.mismatch("an object", other)),
                    };
                    merged[at] =
                        Value::Object(self.map(current, item, field.items(), &item_path)?);
                }
                None => {
                    if let Some(value) = literal(Value::Object(item), &item_path)? {
                        index.insert(id.clone(), merged.len());
                        merged.push(value);
                    }
                }
            }
            patch_order.push(id);
        }
        let in_patch: HashSet<&str> = patch_order.iter().map(String::as_str).collect();
        let (patched, server_only) = partition(merged, Some(key), &in_patch);
        normalize(patched, server_only, &patch_order, &server_order, Some(key), path)
    }

    /// Applies every `$setElementOrder/<list>` of `patch`: merges that list and orders it as
    /// the directive says (upstream's `mergePatchIntoOriginal`).
    fn set_element_orders(
        &self,
        original: &mut Object,
        patch: &mut Object,
        shape: &'s Shape,
        path: &Path,
    ) -> Result<()> {
        let directives: Vec<String> =
            patch.keys().filter(|k| k.starts_with(SET_ELEMENT_ORDER)).cloned().collect();
        for directive_key in directives {
            let Some(order) = patch.shift_remove(&directive_key) else { continue };
            let Some(name) = directive_key[SET_ELEMENT_ORDER.len()..]
                .strip_prefix('/')
                .filter(|name| !name.is_empty())
            else {
                return Err(path.malformed(&directive_key, "expected $setElementOrder/<field>"));
            };
            let field_path = path.field(name);
            let Value::Array(order) = order else {
                return Err(field_path.malformed(&directive_key, "it must be a list"));
            };
            let field = self.schema.field(shape, name);
            if !matches!(field.shape, Shape::List(_) | Shape::Any) {
                return Err(field_path.misplaced(&directive_key, "the field is not a list"));
            }
            let current = match original.get_mut(name) {
                None => None,
                Some(Value::Array(list)) => Some(std::mem::take(list)),
                Some(other) => return Err(field_path.mismatch("a list", other)),
            };
            let patched = match patch.shift_remove(name) {
                None => None,
                Some(Value::Array(list)) => Some(list),
                Some(other) => return Err(field_path.mismatch("a list", &other)),
            };
            let element = element_kind(
                [current.as_deref().unwrap_or_default(), patched.as_deref().unwrap_or_default()],
                &field_path,
            )?;
            let key = match (element, field.merge_key()) {
                (Some(Element::Objects), None) => {
                    return Err(field_path
                        .misplaced(&directive_key, "the list is not merged by a merge key"));
                }
                (Some(Element::Objects), Some(key)) => Some(key),
                _ => None,
            };
            if let Some(patched) = &patched {
                check_order(patched, &order, key, &directive_key, &field_path)?;
            }
            let server_order = match &current {
                Some(current) if element.is_some() => ids(current, key, &field_path)?,
                _ => Vec::new(),
            };
            let merged = match (current, patched) {
                (None, None) => continue,
                (Some(current), None) => current,
                (None, Some(patched)) => literal_list(patched, &field_path)?,
                (Some(current), Some(patched)) if field.strategy.merge => {
                    self.list(current, patched, field, &field_path)?
                }
                (Some(_), Some(patched)) => literal_list(patched, &field_path)?,
            };
            let ordered = if element.is_some() {
                let order_ids = ids(&order, key, &field_path)?;
                let wanted: HashSet<&str> = order_ids.iter().map(String::as_str).collect();
                let (listed, server_only) = partition(merged, key, &wanted);
                normalize(listed, server_only, &order_ids, &server_order, key, &field_path)?
            } else {
                merged
            };
            original.insert(name.to_owned(), Value::Array(ordered));
        }
        Ok(())
    }

    /// `$deleteFromPrimitiveList/<list>: [values]` removes those values from a list of
    /// scalars, such as `metadata.finalizers`, whatever its patch strategy (as upstream).
    fn delete_from_primitive_list(
        &self,
        original: &mut Object,
        rest: &str,
        values: Value,
        shape: &'s Shape,
        path: &Path,
    ) -> Result<()> {
        let directive_key = || format!("{DELETE_FROM_PRIMITIVE_LIST}{rest}");
        let Some(name) = rest.strip_prefix('/').filter(|name| !name.is_empty()) else {
            return Err(
                path.malformed(&directive_key(), "expected $deleteFromPrimitiveList/<field>")
            );
        };
        let field_path = path.field(name);
        let field = self.schema.field(shape, name);
        if !matches!(field.shape, Shape::List(_) | Shape::Any)
            || !matches!(field.items(), Shape::Scalar | Shape::Any)
        {
            return Err(field_path.misplaced(
                &directive_key(),
                "the field is not a list of strings, numbers or booleans",
            ));
        }
        match values {
            // Upstream drops the whole list for a null deletion list.
            Value::Null => {
                original.shift_remove(name);
            }
            Value::Array(values) => {
                if values.iter().any(|v| v.is_object() || v.is_array()) {
                    return Err(field_path
                        .malformed(&directive_key(), "it must list strings, numbers or booleans"));
                }
                let doomed: HashSet<String> = values.iter().map(identity).collect();
                if let Some(Value::Array(list)) = original.get_mut(name) {
                    list.retain(|item| !doomed.contains(&identity(item)));
                }
            }
            _ => return Err(field_path.malformed(&directive_key(), "it must be a list")),
        }
        Ok(())
    }
}

/// `$retainKeys: [fields]` clears every field of `original` not listed; every field the patch
/// sets must be listed (upstream's `applyRetainKeysDirective`).
fn retain_keys(original: &mut Object, patch: &mut Object, path: &Path) -> Result<()> {
    let Some(retained) = patch.shift_remove(RETAIN_KEYS) else { return Ok(()) };
    let Value::Array(retained) = retained else {
        return Err(path.malformed(RETAIN_KEYS, "it must be a list of field names"));
    };
    let retained: HashSet<&str> = retained.iter().filter_map(Value::as_str).collect();
    for (key, value) in patch.iter() {
        let directs =
            key.starts_with(SET_ELEMENT_ORDER) || key.starts_with(DELETE_FROM_PRIMITIVE_LIST);
        if !value.is_null() && !directs && !retained.contains(key.as_str()) {
            return Err(PatchError::NotRetained { path: path.render(), field: key.clone() });
        }
    }
    original.retain(|key, _| retained.contains(key.as_str()));
    Ok(())
}

fn literal_list(items: Vec<Value>, path: &Path) -> Result<Vec<Value>> {
    match literal(Value::Array(items), path)? {
        Some(Value::Array(items)) => Ok(items),
        _ => Ok(Vec::new()),
    }
}

/// Union of two lists of scalars, each value once, ordered like upstream.
fn merge_scalars(original: Vec<Value>, patch: &[Value], path: &Path) -> Result<Vec<Value>> {
    let server_order: Vec<String> = original.iter().map(identity).collect();
    let patch_order: Vec<String> = patch.iter().map(identity).collect();
    let mut seen = HashSet::new();
    let merged: Vec<Value> = original
        .into_iter()
        .chain(patch.iter().cloned())
        .filter(|item| seen.insert(identity(item)))
        .collect();
    let in_patch: HashSet<&str> = patch_order.iter().map(String::as_str).collect();
    let (patched, server_only) = partition(merged, None, &in_patch);
    normalize(patched, server_only, &patch_order, &server_order, None, path)
}

/// The identity of every item; keyed lists need the key in each.
fn ids(items: &[Value], key: Option<&str>, path: &Path) -> Result<Vec<String>> {
    items
        .iter()
        .map(|item| {
            item_id(item, key).ok_or_else(|| path.missing_key(key.unwrap_or_default(), item))
        })
        .collect()
}

/// Splits `merged` into the items whose identity is in `wanted` and the others.
fn partition(
    merged: Vec<Value>,
    key: Option<&str>,
    wanted: &HashSet<&str>,
) -> (Vec<Value>, Vec<Value>) {
    merged
        .into_iter()
        .partition(|item| item_id(item, key).is_some_and(|id| wanted.contains(id.as_str())))
}

/// Orders a merged list as upstream does (`normalizeElementOrder`): the patch's items in the
/// patch's order, the server-only items in their stored order, then the two interleaved so
/// that an item the patch names goes before the first stored item it preceded on the server.
fn normalize(
    mut patched: Vec<Value>,
    mut server_only: Vec<Value>,
    patch_order: &[String],
    server_order: &[String],
    key: Option<&str>,
    path: &Path,
) -> Result<Vec<Value>> {
    let id_of = |item: &Value| {
        item_id(item, key).ok_or_else(|| path.missing_key(key.unwrap_or_default(), item))
    };
    let patch_positions = positions(patch_order);
    let server_positions = positions(server_order);
    let position = |positions: &HashMap<&str, usize>, id: &str| positions.get(id).copied();
    let mut keyed_patch = Vec::with_capacity(patched.len());
    for item in patched.drain(..) {
        let id = id_of(&item)?;
        keyed_patch.push((position(&patch_positions, &id).unwrap_or(usize::MAX), id, item));
    }
    let mut keyed_server = Vec::with_capacity(server_only.len());
    for item in server_only.drain(..) {
        let id = id_of(&item)?;
        keyed_server.push((position(&server_positions, &id).unwrap_or(usize::MAX), id, item));
    }
    // Stable sorts: items missing from the order keep their relative place, last.
    keyed_patch.sort_by_key(|(at, ..)| *at);
    keyed_server.sort_by_key(|(at, ..)| *at);

    let mut out = Vec::with_capacity(keyed_patch.len() + keyed_server.len());
    let mut right = keyed_patch.into_iter().peekable();
    let mut left = keyed_server.into_iter().peekable();
    loop {
        let take_left = match (left.peek(), right.peek()) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some((_, l, _)), Some((_, r, _))) => {
                match (position(&server_positions, l), position(&server_positions, r)) {
                    (Some(l), Some(r)) => l < r,
                    _ => false,
                }
            }
        };
        let next = if take_left { left.next() } else { right.next() };
        out.extend(next.map(|(.., item)| item));
    }
    Ok(out)
}

/// Checks a patch list against its `$setElementOrder` list: its items (deletions aside) must
/// appear there, in the same relative order (upstream's `validatePatchWithSetOrderList`).
fn check_order(
    patch: &[Value],
    order: &[Value],
    key: Option<&str>,
    directive_key: &str,
    path: &Path,
) -> Result<()> {
    if patch.is_empty() || order.is_empty() {
        return Ok(());
    }
    let mut wanted = order.iter();
    for item in patch {
        let marker = item.get(DIRECTIVE);
        if key.is_some() && marker.is_some() {
            // Deletions and list markers are not ordered.
            continue;
        }
        let id =
            item_id(item, key).ok_or_else(|| path.missing_key(key.unwrap_or_default(), item))?;
        loop {
            let Some(next) = wanted.next() else {
                return Err(PatchError::OrderMismatch {
                    path: path.render(),
                    directive: directive_key.to_owned(),
                });
            };
            let next_id = item_id(next, key)
                .ok_or_else(|| path.missing_key(key.unwrap_or_default(), next))?;
            if next_id == id {
                break;
            }
        }
    }
    Ok(())
}
