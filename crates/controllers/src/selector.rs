//! Label selectors as controllers match them: kube's parsed expressions, matched against labels
//! in whatever form an object keeps them (a cached pod keeps its labels compactly, outside its
//! metadata, so kube's `Selector::matches` over a label map cannot read them).

use k8s_openapi::api::apps::v1::ReplicaSet;
use kube::core::{Expression, Selector};

/// An object a selector can match: its labels, looked up by key.
pub trait Labeled {
    fn label(&self, key: &str) -> Option<&str>;
}

impl Labeled for ReplicaSet {
    fn label(&self, key: &str) -> Option<&str> {
        self.metadata.labels.as_ref()?.get(key).map(String::as_str)
    }
}

/// A selector that selects something (an empty one manages nothing, so it is never built).
#[derive(Clone, Debug, PartialEq)]
pub struct LabelSelector(Vec<Expression>);

impl LabelSelector {
    /// `None` when `selector` is empty.
    pub fn new(selector: Selector) -> Option<Self> {
        (!selector.selects_all()).then(|| Self(selector.into_iter().collect()))
    }

    pub fn matches(&self, object: &impl Labeled) -> bool {
        self.0.iter().all(|expression| match expression {
            Expression::In(key, values) => object.label(key).is_some_and(|v| values.contains(v)),
            Expression::NotIn(key, values) => {
                !object.label(key).is_some_and(|v| values.contains(v))
            }
            Expression::Equal(key, value) => object.label(key) == Some(value),
            Expression::NotEqual(key, value) => object.label(key) != Some(value),
            Expression::Exists(key) => object.label(key).is_some(),
            Expression::DoesNotExist(key) => object.label(key).is_none(),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::apimachinery::pkg::apis::meta::v1 as meta;
    use kube::core::SelectorExt;

    use super::*;

    struct Labels(BTreeMap<String, String>);

    impl Labeled for Labels {
        fn label(&self, key: &str) -> Option<&str> {
            self.0.get(key).map(String::as_str)
        }
    }

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        Labels(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
    }

    #[test]
    fn matches_as_kube_selectors_match_label_maps() {
        let requirement =
            |key: &str, operator: &str, values: &[&str]| meta::LabelSelectorRequirement {
                key: key.into(),
                operator: operator.into(),
                values: Some(values.iter().map(|v| v.to_string()).collect()),
            };
        let selector = meta::LabelSelector {
            match_labels: Some(BTreeMap::from([("app".into(), "web".into())])),
            match_expressions: Some(vec![
                requirement("tier", "In", &["front", "edge"]),
                requirement("track", "NotIn", &["canary"]),
                requirement("zone", "Exists", &[]),
                requirement("legacy", "DoesNotExist", &[]),
            ]),
        };
        let kube_selector = Selector::try_from(selector).unwrap();
        let ours = LabelSelector::new(kube_selector.clone()).unwrap();
        let cases = [
            labels(&[("app", "web"), ("tier", "front"), ("zone", "a")]),
            labels(&[("app", "web"), ("tier", "edge"), ("zone", "a"), ("track", "stable")]),
            labels(&[("app", "web"), ("tier", "front"), ("zone", "a"), ("track", "canary")]),
            labels(&[("app", "web"), ("tier", "back"), ("zone", "a")]),
            labels(&[("app", "web"), ("tier", "front")]),
            labels(&[("app", "web"), ("tier", "front"), ("zone", "a"), ("legacy", "")]),
            labels(&[("app", "db"), ("tier", "front"), ("zone", "a")]),
            labels(&[]),
        ];
        let matched: Vec<bool> = cases.iter().map(|l| ours.matches(l)).collect();
        assert_eq!(matched, [true, true, false, false, false, false, false, false]);
        for case in &cases {
            assert_eq!(ours.matches(case), kube_selector.matches(&case.0), "{:?}", case.0);
        }
        let not_equal: Selector =
            [Expression::NotEqual("app".into(), "web".into())].into_iter().collect();
        let not_equal = LabelSelector::new(not_equal).unwrap();
        assert!(not_equal.matches(&labels(&[])) && !not_equal.matches(&labels(&[("app", "web")])));
    }

    #[test]
    fn an_empty_selector_selects_nothing_to_manage() {
        assert_eq!(LabelSelector::new(Selector::default()), None);
    }
}
