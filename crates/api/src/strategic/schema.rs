//! The patch metadata strategic merge patch and server-side apply need — each type's fields,
//! their shapes, patch strategies, merge keys, list types and map types — derived once from
//! the embedded OpenAPI definitions.
//!
//! Only this compact table stays resident: each definition is parsed once while building it,
//! and its descriptions (most of the file) are dropped.

use std::collections::HashMap;
use std::sync::OnceLock;

use serde_json::Value;

use crate::openapi::definitions::{self, V2_REF_PREFIX};

/// What a field holds, as far as merging is concerned.
#[derive(Debug)]
pub(crate) enum Shape {
    /// A definition with properties, by its index in the table.
    Struct(u32),
    /// A free-form map (`additionalProperties`) of values shaped like this.
    Map(Box<Shape>),
    List(Box<Shape>),
    /// A string, number or boolean, including int-or-string and quantities.
    Scalar,
    /// Anything: RawExtension, FieldsV1, preserve-unknown-fields, or a field the schema lacks.
    Any,
}

/// A field's `x-kubernetes-patch-strategy` and `x-kubernetes-patch-merge-key`.
#[derive(Debug, Default)]
pub(crate) struct Strategy {
    /// `merge`: lists merge (by `merge_key` for lists of objects, as sets for scalars).
    pub merge: bool,
    /// `replace`: the patch value replaces the field instead of merging into it.
    pub replace: bool,
    pub merge_key: Option<Box<str>>,
}

/// How server-side apply treats a list, as upstream derives it: `x-kubernetes-list-type`
/// first, else a `merge` patch strategy (by its merge key, or as a set), else atomic.
#[derive(Debug, Default)]
pub(crate) enum ListType {
    #[default]
    Atomic,
    Set,
    /// Items are identified by these fields (`x-kubernetes-list-map-keys`).
    Map(Box<[Box<str>]>),
}

#[derive(Debug)]
pub(crate) struct Field {
    pub shape: Shape,
    pub strategy: Strategy,
    pub list: ListType,
    /// `x-kubernetes-map-type: atomic` on the field: applied and owned as one value.
    pub atomic: bool,
}

/// One definition: its fields sorted by name.
struct Type {
    name: &'static str,
    fields: Vec<(Box<str>, Field)>,
    /// `x-kubernetes-map-type: atomic` on the definition (LabelSelector, ObjectReference, …).
    atomic: bool,
    /// `Shape::Struct` of this type, to lend out by reference.
    shape: Shape,
}

pub(crate) struct Schema {
    /// In definition-name order (the order `definitions::load` yields).
    types: Vec<Type>,
    /// (group, version, kind) of each `x-kubernetes-group-version-kind`, and its type.
    kinds: HashMap<(String, String, String), u32>,
}

/// The shape of every field the schema does not describe.
static ANY: Shape = Shape::Any;
static NO_STRATEGY: Strategy = Strategy { merge: false, replace: false, merge_key: None };
static ATOMIC_LIST: ListType = ListType::Atomic;

pub(crate) fn schema() -> &'static Schema {
    static SCHEMA: OnceLock<Schema> = OnceLock::new();
    SCHEMA.get_or_init(build)
}

fn build() -> Schema {
    let defs = definitions::load();
    let names: Vec<&'static str> = defs.iter().map(|(name, _)| name).collect();
    let mut types = Vec::with_capacity(names.len());
    // The shape a reference to each definition stands for when it has no properties
    // (Quantity and Time are scalars, RawExtension anything); `None` for structs.
    let mut inline = Vec::with_capacity(names.len());
    let mut kinds = HashMap::new();
    // One definition parsed at a time, so the full tree is never resident.
    for (index, (name, raw)) in defs.iter().enumerate() {
        let schema: Value = serde_json::from_str(raw).unwrap_or_default();
        for gvk in schema["x-kubernetes-group-version-kind"].as_array().into_iter().flatten() {
            let part = |key: &str| gvk[key].as_str().unwrap_or_default().to_owned();
            kinds.insert((part("group"), part("version"), part("kind")), index as u32);
        }
        let properties = schema["properties"].as_object();
        inline.push(properties.is_none().then(|| inline_shape(&schema)));
        let mut fields: Vec<(Box<str>, Field)> = properties
            .into_iter()
            .flatten()
            .map(|(field, property)| {
                let field_schema = Field {
                    shape: shape(property, &names),
                    strategy: strategy(property),
                    list: list_type(property),
                    atomic: property["x-kubernetes-map-type"] == "atomic",
                };
                (field.as_str().into(), field_schema)
            })
            .collect();
        fields.sort_by(|a, b| a.0.cmp(&b.0));
        let atomic = schema["x-kubernetes-map-type"] == "atomic";
        types.push(Type { name, fields, atomic, shape: Shape::Struct(index as u32) });
    }
    for field in types.iter_mut().flat_map(|t| t.fields.iter_mut()) {
        resolve(&mut field.1.shape, &inline);
    }
    Schema { types, kinds }
}

/// Replaces references to definitions without properties by the shape they stand for.
fn resolve(shape: &mut Shape, inline: &[Option<Shape>]) {
    match shape {
        Shape::Struct(index) => match inline.get(*index as usize) {
            Some(Some(Shape::Scalar)) => *shape = Shape::Scalar,
            Some(Some(_)) => *shape = Shape::Any,
            _ => {}
        },
        Shape::Map(inner) | Shape::List(inner) => resolve(inner, inline),
        Shape::Scalar | Shape::Any => {}
    }
}

fn shape(property: &Value, names: &[&'static str]) -> Shape {
    let reference = property["$ref"]
        .as_str()
        .or_else(|| property["allOf"][0]["$ref"].as_str())
        .and_then(|r| r.strip_prefix(V2_REF_PREFIX));
    if let Some(reference) = reference {
        return match names.binary_search(&reference) {
            Ok(index) => Shape::Struct(index as u32),
            Err(_) => Shape::Any,
        };
    }
    if property["x-kubernetes-int-or-string"] == true {
        return Shape::Scalar;
    }
    if property["x-kubernetes-preserve-unknown-fields"] == true {
        return Shape::Any;
    }
    match property["type"].as_str() {
        Some("array") => Shape::List(Box::new(shape(&property["items"], names))),
        Some("object") if property["additionalProperties"].is_object() => {
            Shape::Map(Box::new(shape(&property["additionalProperties"], names)))
        }
        _ => inline_shape(property),
    }
}

/// The shape of a schema that neither references a definition nor holds a list or a map.
fn inline_shape(schema: &Value) -> Shape {
    match schema["type"].as_str() {
        Some("string" | "integer" | "number" | "boolean") => Shape::Scalar,
        _ => Shape::Any,
    }
}

fn strategy(property: &Value) -> Strategy {
    let strategies = property["x-kubernetes-patch-strategy"].as_str().unwrap_or_default();
    let has = |name: &str| strategies.split(',').any(|s| s.trim() == name);
    Strategy {
        merge: has("merge"),
        // retainKeys needs nothing here: the server acts on the `$retainKeys` directive alone.
        replace: has("replace"),
        merge_key: property["x-kubernetes-patch-merge-key"].as_str().map(Into::into),
    }
}

fn list_type(property: &Value) -> ListType {
    let keys = || -> Box<[Box<str>]> {
        let keys = property["x-kubernetes-list-map-keys"].as_array();
        keys.into_iter().flatten().filter_map(Value::as_str).map(Into::into).collect()
    };
    match property["x-kubernetes-list-type"].as_str() {
        Some("set") => return ListType::Set,
        Some("map") => return ListType::Map(keys()),
        Some(_) => return ListType::Atomic,
        None => {}
    }
    let strategy = strategy(property);
    match (strategy.merge, strategy.merge_key) {
        (true, Some(key)) => ListType::Map(Box::new([key])),
        (true, None) => ListType::Set,
        (false, _) => ListType::Atomic,
    }
}

/// How one field of a map is patched and applied: its shape, strategy and list type.
#[derive(Clone, Copy)]
pub(crate) struct FieldInfo<'s> {
    pub shape: &'s Shape,
    pub strategy: &'s Strategy,
    pub list: &'s ListType,
    /// Whether the field's own schema says `x-kubernetes-map-type: atomic`.
    pub atomic: bool,
}

impl<'s> FieldInfo<'s> {
    /// A field the schema does not describe.
    pub fn any() -> Self {
        Self::of(&ANY)
    }

    /// A value shaped `shape` with no field-level metadata (a list item, a map value).
    pub fn of(shape: &'s Shape) -> Self {
        FieldInfo { shape, strategy: &NO_STRATEGY, list: &ATOMIC_LIST, atomic: false }
    }

    pub fn merge_key(&self) -> Option<&'s str> {
        self.strategy.merge_key.as_deref()
    }

    /// The shape of the items when this field is a list.
    pub fn items(&self) -> &'s Shape {
        match self.shape {
            Shape::List(items) => items,
            _ => &ANY,
        }
    }
}

impl Schema {
    /// The type of a definition, by name.
    pub fn lookup(&self, definition: &str) -> Option<Shape> {
        let index = self.types.binary_search_by(|t| t.name.cmp(definition)).ok()?;
        Some(Shape::Struct(index as u32))
    }

    /// The type of a definition, by name, borrowed from the table.
    pub fn shape_of(&self, definition: &str) -> Option<&Shape> {
        let index = self.types.binary_search_by(|t| t.name.cmp(definition)).ok()?;
        Some(&self.types[index].shape)
    }

    pub fn definition_for_kind(
        &self,
        group: &str,
        version: &str,
        kind: &str,
    ) -> Option<&'static str> {
        let key = (group.to_owned(), version.to_owned(), kind.to_owned());
        self.kinds.get(&key).map(|&index| self.types[index as usize].name)
    }

    /// Whether the definition `index` is applied and owned as one value.
    pub fn is_atomic(&self, index: u32) -> bool {
        self.types.get(index as usize).is_some_and(|t| t.atomic)
    }

    /// Whether a struct of type `index` declares `key` (map entries and unknown fields are
    /// not declared).
    pub fn declares(&self, shape: &Shape, key: &str) -> bool {
        match shape {
            Shape::Struct(index) => self.known_field(*index, key).is_some(),
            _ => false,
        }
    }

    /// The shape of `key` in a struct of type `index`, or `None` when the type has no such
    /// field (an unknown field, for field validation).
    pub fn known_field(&self, index: u32, key: &str) -> Option<&Shape> {
        let t = self.types.get(index as usize)?;
        let i = t.fields.binary_search_by(|(name, _)| (**name).cmp(key)).ok()?;
        Some(&t.fields[i].1.shape)
    }

    /// How `key` of a map shaped `shape` is patched. Fields the schema does not know are
    /// patched like JSON merge patch (maps merge, lists replace), as upstream does for them.
    pub fn field<'s>(&'s self, shape: &'s Shape, key: &str) -> FieldInfo<'s> {
        match shape {
            Shape::Struct(index) => self
                .types
                .get(*index as usize)
                .and_then(|t| {
                    let i = t.fields.binary_search_by(|(name, _)| (**name).cmp(key)).ok()?;
                    let field = &t.fields[i].1;
                    Some(FieldInfo {
                        shape: &field.shape,
                        strategy: &field.strategy,
                        list: &field.list,
                        atomic: field.atomic,
                    })
                })
                .unwrap_or_else(FieldInfo::any),
            Shape::Map(values) => FieldInfo::of(values),
            Shape::List(_) | Shape::Scalar | Shape::Any => FieldInfo::any(),
        }
    }
}
