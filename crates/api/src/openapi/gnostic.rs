//! `/openapi/v2` as protobuf, the only form client-go asks for: the swagger document encoded as
//! gnostic's `openapi.v2.Document` (gnostic-models `openapiv2/OpenAPIv2.proto`; the field
//! numbers below are that file's). Vendor extensions travel as `NamedAny` whose `Any.yaml`
//! holds the value as YAML, which is how gnostic's own parser stores them.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

/// Encodes swagger 2.0 documents, remembering keys the message schema has no field for.
#[derive(Default)]
pub(super) struct Encoder {
    /// `Message.key` of every JSON key left out; tests insist it stays empty.
    pub skipped: BTreeSet<String>,
}

/// Field numbers of the non-body parameter messages: query and formData parameters carry
/// `allowEmptyValue` at 5, which shifts every later field by one against path and header.
struct NonBodyLayout {
    message: &'static str,
    allow_empty_value: Option<u32>,
    ty: u32,
    format: u32,
    unique_items: u32,
    vendor_extension: u32,
}

const QUERY_LAYOUT: NonBodyLayout = NonBodyLayout {
    message: "QueryParameterSubSchema",
    allow_empty_value: Some(5),
    ty: 6,
    format: 7,
    unique_items: 20,
    vendor_extension: 23,
};

const PATH_LAYOUT: NonBodyLayout = NonBodyLayout {
    message: "PathParameterSubSchema",
    allow_empty_value: None,
    ty: 5,
    format: 6,
    unique_items: 19,
    vendor_extension: 22,
};

impl Encoder {
    /// The `Document`: `head` holds every member but `paths` and `definitions`, which come
    /// already encoded so that neither is ever held as JSON.
    pub(super) fn document(
        &mut self,
        head: &Value,
        paths: Message,
        definitions: Message,
    ) -> Vec<u8> {
        // Each member encodes on its own, then all go out in field order, as protoc would.
        let mut fields = vec![(8, paths), (9, definitions)];
        for (key, value) in entries(head) {
            let mut m = Message::default();
            let field = match key {
                "swagger" => {
                    m.string(1, value);
                    1
                }
                "info" => {
                    m.message(2, self.info(value));
                    2
                }
                "parameters" => {
                    m.message(10, self.named(1, value, Self::parameter));
                    10
                }
                "security" => {
                    for requirement in items(value) {
                        m.message(12, self.security_requirement(requirement));
                    }
                    12
                }
                "securityDefinitions" => {
                    m.message(13, self.named(1, value, Self::security_definition));
                    13
                }
                _ => {
                    self.other(&mut m, 16, "Document", key, value);
                    16
                }
            };
            fields.push((field, m));
        }
        fields.sort_by_key(|(field, _)| *field);
        let mut out = Vec::new();
        for (field, m) in fields {
            if matches!(field, 8 | 9) {
                let mut wrapped = Message::default();
                wrapped.message(field, m);
                out.extend(wrapped.0);
            } else {
                out.extend(m.0);
            }
        }
        out
    }

    /// `Paths` from (path, PathItem JSON) pairs.
    pub(super) fn paths<'a>(&mut self, items: impl Iterator<Item = (&'a str, Value)>) -> Message {
        let mut m = Message::default();
        for (path, item) in items {
            let mut named = Message::default();
            named.bytes(1, path.as_bytes());
            named.message(2, self.path_item(&item));
            m.message(2, named);
        }
        m
    }

    /// `Definitions` from (name, Schema JSON) pairs.
    pub(super) fn definitions<'a>(
        &mut self,
        definitions: impl Iterator<Item = (&'a str, Value)>,
    ) -> Message {
        let mut m = Message::default();
        for (name, schema) in definitions {
            let mut named = Message::default();
            named.bytes(1, name.as_bytes());
            named.message(2, self.schema(&schema));
            m.message(1, named);
        }
        m
    }

    fn info(&mut self, info: &Value) -> Message {
        let mut m = Message::default();
        for (key, value) in entries(info) {
            match key {
                "title" => m.string(1, value),
                "version" => m.string(2, value),
                "description" => m.string(3, value),
                _ => self.other(&mut m, 7, "Info", key, value),
            }
        }
        m
    }

    fn path_item(&mut self, item: &Value) -> Message {
        let mut m = Message::default();
        for (key, value) in entries(item) {
            let field = match key {
                "$ref" => {
                    m.string(1, value);
                    continue;
                }
                "get" => 2,
                "put" => 3,
                "post" => 4,
                "delete" => 5,
                "options" => 6,
                "head" => 7,
                "patch" => 8,
                "parameters" => {
                    for p in items(value) {
                        m.message(9, self.parameters_item(p));
                    }
                    continue;
                }
                _ => {
                    self.other(&mut m, 10, "PathItem", key, value);
                    continue;
                }
            };
            m.message(field, self.operation(value));
        }
        m
    }

    fn operation(&mut self, op: &Value) -> Message {
        let mut m = Message::default();
        for (key, value) in entries(op) {
            match key {
                "tags" => m.strings(1, value),
                "summary" => m.string(2, value),
                "description" => m.string(3, value),
                "operationId" => m.string(5, value),
                "produces" => m.strings(6, value),
                "consumes" => m.strings(7, value),
                "parameters" => {
                    for p in items(value) {
                        m.message(8, self.parameters_item(p));
                    }
                }
                "responses" => m.message(9, self.responses(value)),
                "schemes" => m.strings(10, value),
                "deprecated" => m.bool(11, value),
                _ => self.other(&mut m, 13, "Operation", key, value),
            }
        }
        m
    }

    fn parameters_item(&mut self, item: &Value) -> Message {
        let mut m = Message::default();
        match item.get("$ref") {
            Some(reference) => {
                let mut json_reference = Message::default();
                json_reference.string(1, reference);
                m.message(2, json_reference);
            }
            None => m.message(1, self.parameter(item)),
        }
        m
    }

    /// `Parameter`: a body parameter, or a non-body one chosen by `in`.
    fn parameter(&mut self, p: &Value) -> Message {
        let mut m = Message::default();
        let location = p["in"].as_str().unwrap_or_default();
        if location == "body" {
            m.message(1, self.body_parameter(p));
            return m;
        }
        let (field, layout) = match location {
            "header" => (1, &PATH_LAYOUT),
            "formData" => (2, &QUERY_LAYOUT),
            "query" => (3, &QUERY_LAYOUT),
            _ => (4, &PATH_LAYOUT),
        };
        let mut non_body = Message::default();
        non_body.message(field, self.non_body_parameter(p, layout));
        m.message(2, non_body);
        m
    }

    fn body_parameter(&mut self, p: &Value) -> Message {
        let mut m = Message::default();
        for (key, value) in entries(p) {
            match key {
                "description" => m.string(1, value),
                "name" => m.string(2, value),
                "in" => m.string(3, value),
                "required" => m.bool(4, value),
                "schema" => m.message(5, self.schema(value)),
                _ => self.other(&mut m, 6, "BodyParameter", key, value),
            }
        }
        m
    }

    fn non_body_parameter(&mut self, p: &Value, layout: &NonBodyLayout) -> Message {
        let mut m = Message::default();
        for (key, value) in entries(p) {
            match (key, layout.allow_empty_value) {
                ("required", _) => m.bool(1, value),
                ("in", _) => m.string(2, value),
                ("description", _) => m.string(3, value),
                ("name", _) => m.string(4, value),
                ("allowEmptyValue", Some(field)) => m.bool(field, value),
                ("type", _) => m.string(layout.ty, value),
                ("format", _) => m.string(layout.format, value),
                ("uniqueItems", _) => m.bool(layout.unique_items, value),
                _ => self.other(&mut m, layout.vendor_extension, layout.message, key, value),
            }
        }
        m
    }

    fn responses(&mut self, responses: &Value) -> Message {
        let mut m = Message::default();
        for (key, value) in entries(responses) {
            if key.starts_with("x-") {
                m.message(2, named_any(key, value));
                continue;
            }
            let mut response_value = Message::default();
            response_value.message(1, self.response(value));
            let mut named = Message::default();
            named.bytes(1, key.as_bytes());
            named.message(2, response_value);
            m.message(1, named);
        }
        m
    }

    fn response(&mut self, response: &Value) -> Message {
        let mut m = Message::default();
        for (key, value) in entries(response) {
            match key {
                "description" => m.string(1, value),
                "schema" => {
                    let mut schema_item = Message::default();
                    schema_item.message(1, self.schema(value));
                    m.message(2, schema_item);
                }
                _ => self.other(&mut m, 5, "Response", key, value),
            }
        }
        m
    }

    fn schema(&mut self, schema: &Value) -> Message {
        let mut m = Message::default();
        for (key, value) in entries(schema) {
            match key {
                "$ref" => m.string(1, value),
                "format" => m.string(2, value),
                "title" => m.string(3, value),
                "description" => m.string(4, value),
                "uniqueItems" => m.bool(16, value),
                "required" => m.strings(19, value),
                "additionalProperties" => {
                    let mut item = Message::default();
                    match value {
                        Value::Bool(b) => item.bool_always(2, *b),
                        _ => item.message(1, self.schema(value)),
                    }
                    m.message(21, item);
                }
                "type" => {
                    let mut type_item = Message::default();
                    match value {
                        Value::Array(_) => type_item.strings(1, value),
                        _ => type_item.string(1, value),
                    }
                    m.message(22, type_item);
                }
                "items" => {
                    let mut items_item = Message::default();
                    match value {
                        Value::Array(schemas) => {
                            for s in schemas {
                                items_item.message(1, self.schema(s));
                            }
                        }
                        _ => items_item.message(1, self.schema(value)),
                    }
                    m.message(23, items_item);
                }
                "allOf" => {
                    for s in items(value) {
                        m.message(24, self.schema(s));
                    }
                }
                "properties" => m.message(25, self.named(1, value, Self::schema)),
                "discriminator" => m.string(26, value),
                "readOnly" => m.bool(27, value),
                _ => self.other(&mut m, 31, "Schema", key, value),
            }
        }
        m
    }

    fn security_requirement(&mut self, requirement: &Value) -> Message {
        let mut m = Message::default();
        for (name, scopes) in entries(requirement) {
            let mut array = Message::default();
            array.strings(1, scopes);
            let mut named = Message::default();
            named.bytes(1, name.as_bytes());
            named.message(2, array);
            m.message(1, named);
        }
        m
    }

    /// Only API-key schemes (the bearer token is one) are described.
    fn security_definition(&mut self, definition: &Value) -> Message {
        let mut api_key = Message::default();
        for (key, value) in entries(definition) {
            match key {
                "type" => api_key.string(1, value),
                "name" => api_key.string(2, value),
                "in" => api_key.string(3, value),
                "description" => api_key.string(4, value),
                _ => self.other(&mut api_key, 5, "ApiKeySecurity", key, value),
            }
        }
        let mut m = Message::default();
        m.message(2, api_key);
        m
    }

    /// A message whose only field is a repeated `Named<T>` { name = 1, value = 2 }.
    fn named(
        &mut self,
        field: u32,
        map: &Value,
        value: fn(&mut Self, &Value) -> Message,
    ) -> Message {
        let mut m = Message::default();
        for (name, v) in entries(map) {
            let mut named = Message::default();
            named.bytes(1, name.as_bytes());
            named.message(2, value(self, v));
            m.message(field, named);
        }
        m
    }

    /// Vendor extensions go to the message's `vendor_extension` field; anything else is a key
    /// this encoder has no field for.
    fn other(
        &mut self,
        m: &mut Message,
        vendor_extension: u32,
        message: &str,
        key: &str,
        value: &Value,
    ) {
        if key.starts_with("x-") {
            m.message(vendor_extension, named_any(key, value));
        } else {
            self.skipped.insert(format!("{message}.{key}"));
        }
    }
}

fn entries(value: &Value) -> impl Iterator<Item = (&str, &Value)> {
    value.as_object().into_iter().flat_map(Map::iter).map(|(k, v)| (k.as_str(), v))
}

fn items(value: &Value) -> impl Iterator<Item = &Value> {
    value.as_array().into_iter().flatten()
}

/// `NamedAny` { name = 1, value = Any { yaml = 2 } }.
fn named_any(name: &str, value: &Value) -> Message {
    let mut any = Message::default();
    any.bytes(2, yaml(value).as_bytes());
    let mut m = Message::default();
    m.bytes(1, name.as_bytes());
    m.message(2, any);
    m
}

/// Block-style YAML with every scalar in JSON form (a double-quoted YAML scalar, a number, a
/// boolean or null), which YAML parsers read back as the same value.
pub(super) fn yaml(value: &Value) -> String {
    let mut out = String::new();
    yaml_block(value, 0, &mut out);
    out
}

fn yaml_block(value: &Value, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match value {
        Value::Array(list) if !list.is_empty() => {
            for item in list {
                out.push_str(&pad);
                out.push_str("- ");
                // The item's first line continues after the dash.
                let mut block = String::new();
                yaml_block(item, indent + 2, &mut block);
                out.push_str(&block[indent + 2..]);
            }
        }
        Value::Object(map) if !map.is_empty() => {
            for (key, item) in map {
                out.push_str(&pad);
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                match item {
                    Value::Array(v) if !v.is_empty() => {
                        out.push('\n');
                        yaml_block(item, indent + 2, out);
                    }
                    Value::Object(v) if !v.is_empty() => {
                        out.push('\n');
                        yaml_block(item, indent + 2, out);
                    }
                    _ => {
                        out.push(' ');
                        out.push_str(&item.to_string());
                        out.push('\n');
                    }
                }
            }
        }
        _ => {
            out.push_str(&pad);
            out.push_str(&value.to_string());
            out.push('\n');
        }
    }
}

/// Protobuf wire encoding of one message; proto3 leaves default scalars out.
#[derive(Default)]
pub(super) struct Message(Vec<u8>);

impl Message {
    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }

    fn key(&mut self, field: u32, wire_type: u8) {
        self.varint(u64::from(field) << 3 | u64::from(wire_type));
    }

    fn bytes(&mut self, field: u32, bytes: &[u8]) {
        self.key(field, 2);
        self.varint(bytes.len() as u64);
        self.0.extend_from_slice(bytes);
    }

    fn string(&mut self, field: u32, value: &Value) {
        if let Some(s) = value.as_str().filter(|s| !s.is_empty()) {
            self.bytes(field, s.as_bytes());
        }
    }

    fn strings(&mut self, field: u32, value: &Value) {
        for s in items(value).filter_map(Value::as_str) {
            self.bytes(field, s.as_bytes());
        }
    }

    fn bool(&mut self, field: u32, value: &Value) {
        if value.as_bool() == Some(true) {
            self.bool_always(field, true);
        }
    }

    /// A bool inside a oneof, where `false` must still be written to select the case.
    fn bool_always(&mut self, field: u32, value: bool) {
        self.key(field, 0);
        self.varint(u64::from(value));
    }

    /// Embedded messages are written even when empty: their presence is meaningful.
    fn message(&mut self, field: u32, message: Message) {
        self.bytes(field, &message.0);
    }
}
