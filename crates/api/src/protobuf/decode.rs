//! One message's fields to JSON, with encoding/json's rules: keys in Go field order, zero
//! `omitempty` values left out unless the Go field is a pointer, bytes as base64, and the
//! hand-marshalled apimachinery types (Time, Quantity, IntOrString, …) in their JSON forms.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Map, Number, Value};

use super::schema::{Field, Schema, Type};
use super::wire::{Reader, WireValue, malformed};
use super::{DecodeError, MAGIC, MAX_DEPTH, decode_at, text};

pub(super) struct Decoder<'s> {
    pub schema: &'s Schema,
}

/// What the occurrences of one field have added up to so far.
enum Slot {
    Empty,
    One(Value),
    Items(Vec<Value>),
    Entries(Map<String, Value>),
}

impl Decoder<'_> {
    /// A message's fields as a JSON object.
    pub(super) fn message(
        &self,
        id: usize,
        buf: &[u8],
        depth: usize,
    ) -> Result<Map<String, Value>, DecodeError> {
        if depth > MAX_DEPTH {
            return Err(malformed(format!("objects nest deeper than {MAX_DEPTH} levels")));
        }
        let message = &self.schema.messages[id];
        // One slot per field, filled as the fields arrive (in any order, possibly repeated),
        // emitted afterwards in Go's order.
        let mut slots: Vec<Slot> = message.fields.iter().map(|_| Slot::Empty).collect();
        let mut reader = Reader::new(buf);
        while !reader.is_empty() {
            let (number, wire) = reader.field()?;
            // Unknown fields are skipped, as upstream's decoder does: newer clients may send
            // fields this schema does not have.
            let Some((slot, field)) = message.field(number) else { continue };
            let in_field = |e: DecodeError| match e {
                DecodeError::Malformed(m) => {
                    let name = if field.json.is_empty() { "(inline)" } else { &field.json };
                    malformed(format!("{}.{name}: {m}", short(&message.name)))
                }
                other => other,
            };
            self.field(field, wire, &mut slots[slot], depth).map_err(in_field)?;
        }
        let mut object = Map::new();
        for (field, slot) in message.fields.iter().zip(slots) {
            let value = match slot {
                Slot::Empty => continue,
                Slot::One(value) => value,
                Slot::Items(items) => Value::Array(items),
                Slot::Entries(entries) => Value::Object(entries),
            };
            if field.inline {
                if let Value::Object(inner) = value {
                    object.extend(inner);
                }
            } else if field.pointer
                || !field.omitempty
                || !field.ty.omittable()
                || !is_empty(&value)
            {
                object.insert(field.json.clone(), value);
            }
        }
        Ok(object)
    }

    /// One occurrence of a field, merged into what earlier occurrences left in its slot.
    fn field(
        &self,
        field: &Field,
        wire: WireValue,
        slot: &mut Slot,
        depth: usize,
    ) -> Result<(), DecodeError> {
        if field.repeated {
            if !matches!(slot, Slot::Items(_)) {
                *slot = Slot::Items(Vec::new());
            }
            if let Slot::Items(items) = slot {
                self.repeated(&field.ty, wire, items, depth)?;
            }
        } else if let Type::Map(key_type, value_type) = &field.ty {
            let (key, value) = self.map_entry(key_type, value_type, wire, depth)?;
            match slot {
                Slot::Entries(entries) => {
                    entries.insert(key, value);
                }
                _ => *slot = Slot::Entries(Map::from_iter([(key, value)])),
            }
        } else {
            // A message seen twice merges, as protobuf specifies; a scalar's last value wins.
            match (slot, self.value(&field.ty, wire, depth)?) {
                (Slot::One(Value::Object(existing)), Value::Object(more)) => existing.extend(more),
                (slot, value) => *slot = Slot::One(value),
            }
        }
        Ok(())
    }

    /// Elements of a repeated field: one per occurrence, or several packed into one
    /// length-delimited run for numeric types.
    fn repeated(
        &self,
        ty: &Type,
        wire: WireValue,
        items: &mut Vec<Value>,
        depth: usize,
    ) -> Result<(), DecodeError> {
        match (wire, packed_wire(ty)) {
            (WireValue::Bytes(run), Some(width)) => {
                let mut reader = Reader::new(run);
                while !reader.is_empty() {
                    let element = match width {
                        0 => WireValue::Varint(reader.varint()?),
                        4 => WireValue::Fixed32(reader.fixed32()?),
                        _ => WireValue::Fixed64(reader.fixed64()?),
                    };
                    items.push(self.value(ty, element, depth)?);
                }
            }
            (wire, _) => items.push(self.value(ty, wire, depth)?),
        }
        Ok(())
    }

    /// A map entry message: key (1) and value (2), each defaulting to its zero value.
    fn map_entry(
        &self,
        key_type: &Type,
        value_type: &Type,
        wire: WireValue,
        depth: usize,
    ) -> Result<(String, Value), DecodeError> {
        let entry = bytes(wire)?;
        let (mut key, mut value) = (None, None);
        let mut reader = Reader::new(entry);
        while !reader.is_empty() {
            match reader.field()? {
                (1, wire) => key = Some(self.value(key_type, wire, depth)?),
                (2, wire) => value = Some(self.value(value_type, wire, depth + 1)?),
                _ => {}
            }
        }
        // encoding/json writes map keys of any kind as strings.
        let key = match key.unwrap_or_else(|| zero(key_type)) {
            Value::String(s) => s,
            other => other.to_string(),
        };
        Ok((key, value.unwrap_or_else(|| zero(value_type))))
    }

    /// One value of a type.
    fn value(&self, ty: &Type, wire: WireValue, depth: usize) -> Result<Value, DecodeError> {
        Ok(match ty {
            Type::Bool => Value::Bool(varint(wire)? != 0),
            // Go truncates to the field's width; negative int32s travel sign-extended.
            Type::Int32 => Value::from(varint(wire)? as i32),
            Type::Int64 => Value::from(varint(wire)? as i64),
            Type::Uint32 => Value::from(varint(wire)? as u32),
            Type::Uint64 => Value::from(varint(wire)?),
            Type::Float => match wire {
                WireValue::Fixed32(bits) => float(f64::from(f32::from_bits(bits)))?,
                other => return Err(wrong_wire("fixed32", other)),
            },
            Type::Double => match wire {
                WireValue::Fixed64(bits) => float(f64::from_bits(bits))?,
                other => return Err(wrong_wire("fixed64", other)),
            },
            Type::String => Value::String(text(bytes(wire)?)),
            Type::Bytes => Value::String(BASE64.encode(bytes(wire)?)),
            Type::Time => time(bytes(wire)?, "%Y-%m-%dT%H:%M:%SZ")?,
            Type::MicroTime => time(bytes(wire)?, "%Y-%m-%dT%H:%M:%S%.6fZ")?,
            Type::Duration => {
                let nanos = scalar_field(bytes(wire)?, 1)?.map_or(Ok(0), varint)? as i64;
                Value::String(go_duration(nanos))
            }
            Type::Quantity => match scalar_field(bytes(wire)?, 1)? {
                Some(s) => Value::String(text(bytes(s)?)),
                None => Value::String("0".into()),
            },
            Type::IntOrString => int_or_string(bytes(wire)?)?,
            Type::RawJson => match scalar_field(bytes(wire)?, 1)? {
                Some(raw) => raw_json(bytes(raw)?, depth + 1)?,
                None => Value::Null,
            },
            Type::Message(id) => Value::Object(self.message(*id, bytes(wire)?, depth + 1)?),
            Type::List(elem) => {
                let mut items = Vec::new();
                let mut reader = Reader::new(bytes(wire)?);
                while !reader.is_empty() {
                    if let (1, wire) = reader.field()? {
                        self.repeated(elem, wire, &mut items, depth + 1)?;
                    }
                }
                Value::Array(items)
            }
            Type::Map(..) => return Err(malformed("a map cannot be a map value")),
        })
    }
}

/// Embedded JSON bytes (RawExtension, FieldsV1), or an embedded protobuf object.
pub(super) fn raw_json(raw: &[u8], depth: usize) -> Result<Value, DecodeError> {
    if raw.is_empty() {
        return Ok(Value::Null);
    }
    if raw.starts_with(MAGIC) {
        return decode_at(raw, depth + 1);
    }
    if depth > MAX_DEPTH {
        return Err(malformed(format!("objects nest deeper than {MAX_DEPTH} levels")));
    }
    serde_json::from_slice(raw).map_err(|e| malformed(format!("embedded JSON: {e}")))
}

impl Type {
    /// Whether `omitempty` can drop the Go type: booleans, numbers, strings, slices and maps.
    /// Structs never, even those that read as a scalar (`"targetPort": 0`, a zero Quantity's
    /// `"0"`, a zero Time's `null`).
    fn omittable(&self) -> bool {
        !matches!(
            self,
            Type::Time
                | Type::MicroTime
                | Type::Duration
                | Type::Quantity
                | Type::IntOrString
                | Type::RawJson
                | Type::Message(_)
        )
    }
}

/// Whether encoding/json's `omitempty` drops a value of an omittable type: false, 0, "",
/// empty arrays and maps.
fn is_empty(value: &Value) -> bool {
    match value {
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        Value::Null => false,
    }
}

/// The JSON of a type's Go zero value, for a map entry without a value.
fn zero(ty: &Type) -> Value {
    match ty {
        Type::Bool => Value::Bool(false),
        Type::Int32 | Type::Int64 | Type::Uint32 | Type::Uint64 | Type::IntOrString => 0.into(),
        Type::Float | Type::Double => Value::from(0.0),
        Type::String | Type::Bytes => Value::String(String::new()),
        Type::Duration => Value::String("0s".into()),
        Type::Quantity => Value::String("0".into()),
        Type::Time | Type::MicroTime | Type::RawJson => Value::Null,
        Type::Message(_) | Type::Map(..) => Value::Object(Map::new()),
        Type::List(_) => Value::Array(Vec::new()),
    }
}

/// For a numeric type, the element width in a packed run: 0 for varints, else bytes.
fn packed_wire(ty: &Type) -> Option<usize> {
    match ty {
        Type::Bool | Type::Int32 | Type::Int64 | Type::Uint32 | Type::Uint64 => Some(0),
        Type::Float => Some(4),
        Type::Double => Some(8),
        _ => None,
    }
}

fn varint(wire: WireValue) -> Result<u64, DecodeError> {
    match wire {
        WireValue::Varint(v) => Ok(v),
        other => Err(wrong_wire("varint", other)),
    }
}

fn bytes(wire: WireValue<'_>) -> Result<&[u8], DecodeError> {
    match wire {
        WireValue::Bytes(b) => Ok(b),
        other => Err(wrong_wire("length-delimited", other)),
    }
}

fn wrong_wire(expected: &str, got: WireValue) -> DecodeError {
    malformed(format!("expected a {expected} value, got {}", got.type_name()))
}

fn float(f: f64) -> Result<Value, DecodeError> {
    Number::from_f64(f).map(Value::Number).ok_or_else(|| malformed("NaN or infinite number"))
}

/// The last occurrence of one field of a small message (Time, Quantity, RawExtension, …).
fn scalar_field(buf: &[u8], number: u32) -> Result<Option<WireValue<'_>>, DecodeError> {
    let mut reader = Reader::new(buf);
    let mut found = None;
    while !reader.is_empty() {
        let (n, wire) = reader.field()?;
        if n == number {
            found = Some(wire);
        }
    }
    Ok(found)
}

/// metav1.Time and MicroTime: `seconds` (1), `nanos` (2). Go writes a zero time as an empty
/// message and as JSON `null`.
fn time(buf: &[u8], format: &str) -> Result<Value, DecodeError> {
    if buf.is_empty() {
        return Ok(Value::Null);
    }
    let (mut seconds, mut nanos) = (0i64, 0i32);
    let mut reader = Reader::new(buf);
    while !reader.is_empty() {
        match reader.field()? {
            (1, wire) => seconds = varint(wire)? as i64,
            (2, wire) => nanos = varint(wire)? as i32,
            _ => {}
        }
    }
    const GO_ZERO_TIME: i64 = -62_135_596_800; // 0001-01-01T00:00:00Z
    if seconds == GO_ZERO_TIME && nanos == 0 {
        return Ok(Value::Null);
    }
    let timestamp = jiff::Timestamp::new(seconds, nanos)
        .map_err(|e| malformed(format!("time out of range: {e}")))?;
    Ok(Value::String(timestamp.strftime(format).to_string()))
}

/// intstr.IntOrString: `type` (1: 0 int, 1 string), `intVal` (2), `strVal` (3).
fn int_or_string(buf: &[u8]) -> Result<Value, DecodeError> {
    let (mut is_string, mut int, mut string) = (false, 0i32, String::new());
    let mut reader = Reader::new(buf);
    while !reader.is_empty() {
        match reader.field()? {
            (1, wire) => is_string = varint(wire)? == 1,
            (2, wire) => int = varint(wire)? as i32,
            (3, wire) => string = text(bytes(wire)?),
            _ => {}
        }
    }
    Ok(if is_string { Value::String(string) } else { Value::from(int) })
}

/// Go's `time.Duration.String()`: `1h2m3.5s`, `1.5ms`, `0s`.
pub(super) fn go_duration(nanos: i64) -> String {
    let sign = if nanos < 0 { "-" } else { "" };
    let n = nanos.unsigned_abs();
    if n == 0 {
        return "0s".into();
    }
    if n < 1_000_000_000 {
        let (digits, unit) = if n < 1_000 {
            (0, "ns")
        } else if n < 1_000_000 {
            (3, "µs")
        } else {
            (6, "ms")
        };
        return format!("{sign}{}{unit}", decimal(n, digits));
    }
    let (hours, rest) = (n / 3_600_000_000_000, n % 3_600_000_000_000);
    let (minutes, seconds) = (rest / 60_000_000_000, rest % 60_000_000_000);
    let seconds = format!("{}s", decimal(seconds, 9));
    match (hours, minutes) {
        (0, 0) => format!("{sign}{seconds}"),
        (0, m) => format!("{sign}{m}m{seconds}"),
        (h, m) => format!("{sign}{h}h{m}m{seconds}"),
    }
}

/// `value / 10^digits` with the fraction's trailing zeros (and a bare dot) trimmed.
fn decimal(value: u64, digits: u32) -> String {
    let scale = 10u64.pow(digits);
    let (whole, fraction) = (value / scale, value % scale);
    if fraction == 0 {
        return whole.to_string();
    }
    let fraction = format!("{fraction:0width$}", width = digits as usize);
    format!("{whole}.{}", fraction.trim_end_matches('0'))
}

/// `io.k8s.api.apps.v1.DeploymentSpec` → `DeploymentSpec`, for error messages.
fn short(name: &str) -> &str {
    name.rsplit('.').next().unwrap_or(name)
}
