//! `metadata.managedFields`: one entry per manager, operation (Apply/Update), API version (for
//! updates) and subresource, each with the set of fields it owns.

use serde_json::{Value, json};

use super::fieldset::FieldSet;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Operation {
    Apply,
    Update,
}

impl Operation {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Apply => "Apply",
            Self::Update => "Update",
        }
    }
}

/// Who writes: the request's field manager, the API version it writes in, the subresource.
#[derive(Debug, Clone, Copy)]
pub struct Manager<'a> {
    pub name: &'a str,
    pub api_version: &'a str,
    pub subresource: Option<&'a str>,
    /// When the write happens (RFC 3339), recorded in the manager's entry.
    pub time: &'a str,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub manager: String,
    pub operation: Operation,
    pub api_version: String,
    pub subresource: Option<String>,
    pub time: Option<String>,
    pub fields: FieldSet,
}

impl Entry {
    /// Whether this entry is `manager`'s for `operation`. Appliers keep one entry whatever
    /// the version they apply in; updaters one per version, as upstream identifies them.
    pub fn is(&self, manager: &Manager<'_>, operation: Operation) -> bool {
        self.manager == manager.name
            && self.operation == operation
            && self.subresource.as_deref() == manager.subresource
            && (operation == Operation::Apply || self.api_version == manager.api_version)
    }

    /// How upstream names a manager in conflict messages.
    pub fn describe(&self) -> String {
        let mut out = format!("{:?}", self.manager);
        if let Some(sub) = &self.subresource {
            out.push_str(&format!(" with subresource {sub:?}"));
        }
        if self.operation == Operation::Update {
            out.push_str(&format!(" using {}", self.api_version));
        }
        out
    }

    fn to_json(&self) -> Value {
        let mut entry = json!({
            "manager": self.manager,
            "operation": self.operation.as_str(),
            "apiVersion": self.api_version,
        });
        if let Some(time) = &self.time {
            entry["time"] = json!(time);
        }
        entry["fieldsType"] = json!("FieldsV1");
        entry["fieldsV1"] = self.fields.to_fields_v1();
        if let Some(sub) = &self.subresource {
            entry["subresource"] = json!(sub);
        }
        entry
    }

    /// One entry of `metadata.managedFields`; `None` when it is not a FieldsV1 entry of a
    /// known operation.
    fn from_json(value: &Value) -> Option<Entry> {
        let operation = match value["operation"].as_str()? {
            "Apply" => Operation::Apply,
            "Update" => Operation::Update,
            _ => return None,
        };
        if value.get("fieldsType").is_some_and(|t| t != "FieldsV1") {
            return None;
        }
        let fields = match value.get("fieldsV1") {
            None | Some(Value::Null) => FieldSet::new(),
            Some(v) => FieldSet::from_fields_v1(v).ok()?,
        };
        Some(Entry {
            manager: value["manager"].as_str().unwrap_or_default().to_owned(),
            operation,
            api_version: value["apiVersion"].as_str().unwrap_or_default().to_owned(),
            subresource: value["subresource"].as_str().filter(|s| !s.is_empty()).map(Into::into),
            time: value["time"].as_str().map(Into::into),
            fields,
        })
    }
}

/// Every manager's entry of one object.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ManagedFields {
    pub entries: Vec<Entry>,
}

impl ManagedFields {
    /// The entries of an object's `metadata.managedFields`; entries that do not read are
    /// dropped, as upstream resets managed fields it cannot decode.
    pub fn of(object: &Value) -> ManagedFields {
        let entries = object["metadata"]["managedFields"].as_array();
        ManagedFields {
            entries: entries.into_iter().flatten().filter_map(Entry::from_json).collect(),
        }
    }

    /// The JSON of `metadata.managedFields`, in upstream's order (operation, time, manager,
    /// version, subresource).
    pub fn to_json(&self) -> Value {
        let mut entries: Vec<&Entry> = self.entries.iter().collect();
        entries.sort_by(|a, b| {
            (a.operation, &a.time, &a.manager, &a.api_version, &a.subresource).cmp(&(
                b.operation,
                &b.time,
                &b.manager,
                &b.api_version,
                &b.subresource,
            ))
        });
        Value::Array(entries.into_iter().map(Entry::to_json).collect())
    }

    pub fn find(&self, manager: &Manager<'_>, operation: Operation) -> Option<&Entry> {
        self.entries.iter().find(|e| e.is(manager, operation))
    }

    /// Sets `manager`'s fields for `operation`, keeping the entry's time when nothing about
    /// it changed (so a repeated no-op write stays a no-op).
    pub fn set(&mut self, manager: &Manager<'_>, operation: Operation, fields: FieldSet) {
        let time = Some(manager.time.to_owned());
        match self.entries.iter_mut().find(|e| e.is(manager, operation)) {
            Some(entry) => {
                if entry.fields != fields || entry.api_version != manager.api_version {
                    entry.time = time;
                }
                entry.fields = fields;
                entry.api_version = manager.api_version.to_owned();
            }
            None => self.entries.push(Entry {
                manager: manager.name.to_owned(),
                operation,
                api_version: manager.api_version.to_owned(),
                subresource: manager.subresource.map(Into::into),
                time,
                fields,
            }),
        }
    }

    /// Every field some manager owns.
    pub fn owned(&self) -> FieldSet {
        let mut all = FieldSet::new();
        for entry in &self.entries {
            all.union(&entry.fields);
        }
        all
    }

    pub fn drop_empty(&mut self) {
        self.entries.retain(|e| !e.fields.is_empty());
    }

    /// Keeps at most `MAX_UPDATE_MANAGERS` Update entries, as upstream does: the oldest are
    /// merged, per API version, into one `ancient-changes` entry, which takes the time of the
    /// newest update merged into it. Apply entries are never merged.
    pub fn cap_updates(&mut self) {
        let mut updaters: Vec<usize> = (0..self.entries.len())
            .filter(|&i| self.entries[i].operation == Operation::Update)
            .collect();
        if updaters.len() <= MAX_UPDATE_MANAGERS {
            return;
        }
        updaters.sort_by(|&a, &b| {
            let (a, b) = (&self.entries[a], &self.entries[b]);
            (&a.time, &a.manager).cmp(&(&b.time, &b.manager))
        });
        let mut remaining = updaters.len();
        // The first entry of each version seen; a second one of the same version makes the
        // bucket, into which both go.
        let mut first_of_version: Vec<(String, usize)> = Vec::new();
        let mut merged_away = Vec::new();
        for &i in &updaters {
            if remaining <= MAX_UPDATE_MANAGERS {
                break;
            }
            let version = self.entries[i].api_version.clone();
            match first_of_version.iter().find(|(v, _)| *v == version) {
                None => first_of_version.push((version, i)),
                Some(&(_, bucket)) => {
                    let entry = self.entries[i].clone();
                    let target = &mut self.entries[bucket];
                    target.manager = ANCIENT_CHANGES.to_owned();
                    target.subresource = None;
                    target.fields.union(&entry.fields);
                    target.time = entry.time;
                    merged_away.push(i);
                    remaining -= 1;
                }
            }
        }
        merged_away.sort_unstable();
        for i in merged_away.into_iter().rev() {
            self.entries.remove(i);
        }
    }
}

/// Update entries kept per object before the oldest are merged (upstream's cap).
pub const MAX_UPDATE_MANAGERS: usize = 10;
/// The manager the oldest updates are merged into.
pub const ANCIENT_CHANGES: &str = "ancient-changes";
