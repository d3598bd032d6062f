//! Label selectors (pod affinity, topology spread) and node selector terms (node affinity),
//! parsed once per pod into matchers over a label map; malformed ones are errors, not panics.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{NodeSelectorRequirement, NodeSelectorTerm};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

/// A pod's or node's labels, sorted by key in one slice: a `BTreeMap` allocates a 540-byte
/// node for even one label, and the scheduler holds the labels of every pod in the cluster.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Labels(Box<[(String, String)]>);

impl Labels {
    pub fn get(&self, key: &str) -> Option<&String> {
        let found = self.0.binary_search_by(|(k, _)| k.as_str().cmp(key)).ok()?;
        Some(&self.0[found].1)
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &String)> {
        self.0.iter().map(|(k, v)| (k, v))
    }
}

impl From<BTreeMap<String, String>> for Labels {
    fn from(labels: BTreeMap<String, String>) -> Self {
        Self(labels.into_iter().collect())
    }
}

impl<const N: usize> From<[(String, String); N]> for Labels {
    fn from(labels: [(String, String); N]) -> Self {
        labels.into_iter().collect()
    }
}

/// Sorted by key; a repeated key keeps its last value, as a map would.
impl FromIterator<(String, String)> for Labels {
    fn from_iter<I: IntoIterator<Item = (String, String)>>(labels: I) -> Self {
        labels.into_iter().collect::<BTreeMap<_, _>>().into()
    }
}

impl<'a> IntoIterator for &'a Labels {
    type Item = (&'a String, &'a String);
    type IntoIter = std::iter::Map<
        std::slice::Iter<'a, (String, String)>,
        fn(&'a (String, String)) -> (&'a String, &'a String),
    >;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter().map(|(k, v)| (k, v))
    }
}

impl std::ops::Index<&String> for Labels {
    type Output = String;

    fn index(&self, key: &String) -> &String {
        self.get(key).expect("label present")
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Operator {
    In(Vec<String>),
    NotIn(Vec<String>),
    Exists,
    DoesNotExist,
    Gt(i64),
    Lt(i64),
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Requirement {
    key: String,
    operator: Operator,
}

impl Requirement {
    fn parse(key: &str, operator: &str, values: &[String], numeric: bool) -> Result<Self, String> {
        let count = |want_some: bool| {
            if want_some == values.is_empty() {
                Err(format!(
                    "key {key:?}: operator {operator} {} values",
                    if want_some { "needs" } else { "takes no" }
                ))
            } else {
                Ok(())
            }
        };
        let number = || -> Result<i64, String> {
            match values {
                [one] => one.parse().map_err(|_| format!("key {key:?}: {one:?} is not an integer")),
                _ => Err(format!("key {key:?}: operator {operator} needs exactly one value")),
            }
        };
        let operator = match operator {
            "In" => count(true).map(|()| Operator::In(values.to_vec()))?,
            "NotIn" => count(true).map(|()| Operator::NotIn(values.to_vec()))?,
            "Exists" => count(false).map(|()| Operator::Exists)?,
            "DoesNotExist" => count(false).map(|()| Operator::DoesNotExist)?,
            "Gt" if numeric => Operator::Gt(number()?),
            "Lt" if numeric => Operator::Lt(number()?),
            other => return Err(format!("key {key:?}: {other:?} is not a valid operator")),
        };
        if key.is_empty() {
            return Err("a requirement has an empty key".to_owned());
        }
        Ok(Self { key: key.to_owned(), operator })
    }

    fn matches(&self, value: Option<&str>) -> bool {
        match (&self.operator, value) {
            (Operator::In(values), Some(v)) => values.iter().any(|x| x == v),
            (Operator::In(_), None) => false,
            (Operator::NotIn(values), Some(v)) => !values.iter().any(|x| x == v),
            (Operator::NotIn(_), None) => true,
            (Operator::Exists, v) => v.is_some(),
            (Operator::DoesNotExist, v) => v.is_none(),
            (Operator::Gt(n), Some(v)) => v.parse::<i64>().is_ok_and(|v| v > *n),
            (Operator::Lt(n), Some(v)) => v.parse::<i64>().is_ok_and(|v| v < *n),
            (Operator::Gt(_) | Operator::Lt(_), None) => false,
        }
    }
}

/// A metav1.LabelSelector: every requirement must hold. An empty selector matches everything.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Selector {
    requirements: Vec<Requirement>,
    /// `nothing` selectors (a nil selector where one is optional) match no object.
    nothing: bool,
}

impl Selector {
    pub fn nothing() -> Self {
        Self { requirements: Vec::new(), nothing: true }
    }

    pub fn parse(selector: &LabelSelector) -> Result<Self, String> {
        let mut requirements = Vec::new();
        for (key, value) in selector.match_labels.iter().flatten() {
            requirements.push(Requirement::parse(key, "In", std::slice::from_ref(value), false)?);
        }
        for expression in selector.match_expressions.iter().flatten() {
            let values = expression.values.as_deref().unwrap_or_default();
            requirements.push(Requirement::parse(
                &expression.key,
                &expression.operator,
                values,
                false,
            )?);
        }
        Ok(Self { requirements, nothing: false })
    }

    /// A selector that matches exactly these labels (`matchLabelKeys` adds such terms).
    pub fn with_label(mut self, key: &str, value: &str) -> Self {
        self.requirements.push(Requirement {
            key: key.to_owned(),
            operator: Operator::In(vec![value.to_owned()]),
        });
        self
    }

    /// Whether it has no requirements (and so matches everything, unless it is `nothing`).
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// `key=value` labels one of which every matching object carries (from the first `In`
    /// requirement), so candidates can be looked up in an index; `None` when there are none.
    pub fn required_labels(&self) -> Option<Vec<String>> {
        if self.nothing {
            return Some(Vec::new());
        }
        self.requirements.iter().find_map(|r| match &r.operator {
            Operator::In(values) => {
                let mut labels: Vec<String> =
                    values.iter().map(|v| label_index_key(&r.key, v)).collect();
                labels.sort_unstable();
                labels.dedup();
                Some(labels)
            }
            _ => None,
        })
    }

    pub fn matches(&self, labels: &Labels) -> bool {
        !self.nothing
            && self.requirements.iter().all(|r| r.matches(labels.get(&r.key).map(String::as_str)))
    }
}

/// How a label is filed in indexes (label keys cannot contain `=`).
pub fn label_index_key(key: &str, value: &str) -> String {
    format!("{key}={value}")
}

/// One NodeSelectorTerm: label expressions and `metadata.name` field expressions, all of which
/// must hold. A term with no requirement matches nothing, as upstream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeTerm {
    labels: Vec<Requirement>,
    fields: Vec<Requirement>,
}

impl NodeTerm {
    pub fn parse(term: &NodeSelectorTerm) -> Result<Self, String> {
        let parse_all = |list: Option<&Vec<NodeSelectorRequirement>>, field: bool| {
            list.into_iter()
                .flatten()
                .map(|r| {
                    if field && r.key != "metadata.name" {
                        return Err(format!("{:?} is not a supported field selector", r.key));
                    }
                    let values = r.values.as_deref().unwrap_or_default();
                    Requirement::parse(&r.key, &r.operator, values, !field)
                })
                .collect::<Result<Vec<_>, _>>()
        };
        Ok(Self {
            labels: parse_all(term.match_expressions.as_ref(), false)?,
            fields: parse_all(term.match_fields.as_ref(), true)?,
        })
    }

    pub fn matches(&self, node_name: &str, labels: &Labels) -> bool {
        if self.labels.is_empty() && self.fields.is_empty() {
            return false;
        }
        self.labels.iter().all(|r| r.matches(labels.get(&r.key).map(String::as_str)))
            && self.fields.iter().all(|r| r.matches(Some(node_name)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn labels_are_found_by_key_whatever_order_they_came_in() {
        let l = labels(&[("zone", "a"), ("app", "web"), ("tier", ""), ("app", "db")]);
        assert_eq!(l.get("app").map(String::as_str), Some("db"), "the last value wins");
        assert_eq!(l.get("zone").map(String::as_str), Some("a"));
        assert!(l.contains_key("tier") && !l.contains_key("ap") && !l.contains_key("zzz"));
        let keys: Vec<&String> = l.iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["app", "tier", "zone"]);
        assert!(Labels::default().get("app").is_none() && Labels::default().is_empty());
    }

    fn expression(key: &str, operator: &str, values: &[&str]) -> LabelSelector {
        LabelSelector {
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: key.into(),
                operator: operator.into(),
                values: Some(values.iter().map(|v| v.to_string()).collect()),
            }]),
            ..Default::default()
        }
    }

    #[test]
    fn label_selectors_match_like_upstream() {
        let app_web = labels(&[("app", "web")]);
        let cases = [
            ("In matches", expression("app", "In", &["web", "db"]), true),
            ("In misses", expression("app", "In", &["db"]), false),
            ("NotIn matches a missing key", expression("tier", "NotIn", &["x"]), true),
            ("Exists", expression("app", "Exists", &[]), true),
            ("DoesNotExist", expression("app", "DoesNotExist", &[]), false),
            ("empty selector matches everything", LabelSelector::default(), true),
        ];
        for (what, selector, expected) in cases {
            assert_eq!(Selector::parse(&selector).unwrap().matches(&app_web), expected, "{what}");
        }
        assert!(!Selector::nothing().matches(&app_web));
    }

    #[test]
    fn malformed_selectors_are_errors() {
        for selector in [
            expression("app", "Foo", &["x"]),
            expression("app", "In", &[]),
            expression("app", "Exists", &["x"]),
            expression("app", "Gt", &["1"]),
            expression("", "Exists", &[]),
        ] {
            assert!(Selector::parse(&selector).is_err(), "{selector:?}");
        }
    }

    #[test]
    fn node_terms_match_labels_fields_and_numbers() {
        let term = |exprs: Vec<(&str, &str, Vec<&str>)>, fields: Vec<(&str, &str, Vec<&str>)>| {
            let req = |(k, o, v): (&str, &str, Vec<&str>)| NodeSelectorRequirement {
                key: k.into(),
                operator: o.into(),
                values: Some(v.into_iter().map(str::to_owned).collect()),
            };
            NodeSelectorTerm {
                match_expressions: Some(exprs.into_iter().map(req).collect()),
                match_fields: Some(fields.into_iter().map(req).collect()),
            }
        };
        let node = labels(&[("zone", "a"), ("cores", "8")]);
        let cases = [
            ("label In", term(vec![("zone", "In", vec!["a"])], vec![]), true),
            ("Gt", term(vec![("cores", "Gt", vec!["4"])], vec![]), true),
            ("Lt", term(vec![("cores", "Lt", vec!["4"])], vec![]), false),
            ("name field", term(vec![], vec![("metadata.name", "In", vec!["n1"])]), true),
            ("other name", term(vec![], vec![("metadata.name", "In", vec!["n2"])]), false),
            ("empty term matches nothing", term(vec![], vec![]), false),
        ];
        for (what, t, expected) in cases {
            assert_eq!(NodeTerm::parse(&t).unwrap().matches("n1", &node), expected, "{what}");
        }
        assert!(NodeTerm::parse(&term(vec![], vec![("spec.x", "In", vec!["a"])])).is_err());
        assert!(NodeTerm::parse(&term(vec![("cores", "Gt", vec!["x"])], vec![])).is_err());
    }
}
