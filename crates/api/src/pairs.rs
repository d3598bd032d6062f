//! String pairs (labels) kept compactly: caches that hold a record of every object in the
//! cluster keep its labels as one string, not as a map with an allocation per key and value.

use serde_json::{Map, Value};

/// String pairs (an object's labels) in one string, with where each key and value ends (a
/// map would allocate per key and per value; a `BTreeMap` a 540-byte node for even one label).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pairs {
    text: Box<str>,
    /// Per pair, where its key ends and where its value ends in `text`.
    ends: Box<[(u32, u32)]>,
}

impl Pairs {
    /// The string-valued labels of `labels` (a stored object's labels are all strings).
    pub fn of_labels(labels: &Map<String, Value>) -> Self {
        Self::of(labels.iter().filter_map(|(key, value)| Some((key.as_str(), value.as_str()?))))
    }

    pub fn of<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)>) -> Self {
        let mut text = String::new();
        let mut ends = Vec::with_capacity(pairs.size_hint().0);
        for (key, value) in pairs {
            text.push_str(key);
            let key_end = text.len();
            text.push_str(value);
            // Stored objects are far smaller than 4 GiB.
            ends.push((key_end as u32, text.len() as u32));
        }
        Self { text: text.into_boxed_str(), ends: ends.into_boxed_slice() }
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        let mut start = 0;
        self.ends.iter().map(move |&(key_end, value_end)| {
            let (key_end, value_end) = (key_end as usize, value_end as usize);
            let label = (&self.text[start..key_end], &self.text[key_end..value_end]);
            start = value_end;
            label
        })
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.iter().find(|(k, _)| *k == key).map(|(_, value)| value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_keep_every_string_label_for_selectors() {
        let labels = serde_json::json!({"app": "web", "tier": "", "a/b.c": "v-1"});
        let labels = Pairs::of_labels(labels.as_object().unwrap());
        assert_eq!(labels.get("app"), Some("web"));
        assert_eq!(labels.get("tier"), Some(""));
        assert_eq!(labels.get("a/b.c"), Some("v-1"));
        assert_eq!(labels.get("ap"), None);
        assert_eq!(labels.iter().count(), 3);
        let selector = crate::selector::LabelSelector::parse("app=web,tier,a/b.c!=v-2").unwrap();
        assert!(selector.matches_with(|key| labels.get(key)));
        let selector = crate::selector::LabelSelector::parse("app in (db),!tier").unwrap();
        assert!(!selector.matches_with(|key| labels.get(key)));
        assert_eq!(Pairs::default().get("app"), None);
    }
}
