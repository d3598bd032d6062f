//! API discovery: the legacy documents (`/api`, `/apis`, per group-version resource lists) and
//! aggregated discovery (`apidiscovery.k8s.io/v2` and `v2beta1`), all derived from the registry.

use capstan_api::registry::{self, RESOURCES, Resource};
use serde_json::{Value, json};

/// `/api`: the core group's versions.
pub fn api_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    })
}

/// Named groups in registry order with their versions.
fn groups() -> Vec<(&'static str, Vec<&'static str>)> {
    let mut groups: Vec<(&str, Vec<&str>)> = Vec::new();
    for (group, version) in registry::group_versions() {
        if group.is_empty() {
            continue;
        }
        match groups.iter_mut().find(|(g, _)| *g == group) {
            Some((_, versions)) => versions.push(version),
            None => groups.push((group, vec![version])),
        }
    }
    groups
}

fn group_json(group: &str, versions: &[&str]) -> Value {
    let versions: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": format!("{group}/{v}"), "version": v}))
        .collect();
    json!({
        "name": group,
        "versions": versions,
        "preferredVersion": versions[0],
    })
}

/// `/apis`: every named group.
pub fn api_group_list() -> Value {
    let groups: Vec<Value> = groups().iter().map(|(g, v)| group_json(g, v)).collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `/apis/<group>`.
pub fn api_group(group: &str) -> Option<Value> {
    let (name, versions) = groups().into_iter().find(|(g, _)| *g == group)?;
    let mut value = group_json(name, &versions);
    value["kind"] = json!("APIGroup");
    value["apiVersion"] = json!("v1");
    Some(value)
}

fn in_group_version<'a>(
    group: &'a str,
    version: &'a str,
) -> impl Iterator<Item = &'static Resource> + 'a {
    RESOURCES.iter().filter(move |r| r.group == group && r.version == version)
}

/// `/api/v1` or `/apis/<group>/<version>`: the resources and subresources served there.
pub fn api_resource_list(group: &str, version: &str) -> Option<Value> {
    let mut resources = Vec::new();
    for r in in_group_version(group, version) {
        let mut entry = json!({
            "name": r.plural,
            "singularName": r.singular,
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": r.verbs,
        });
        if !r.short_names.is_empty() {
            entry["shortNames"] = json!(r.short_names);
        }
        if !r.categories.is_empty() {
            entry["categories"] = json!(r.categories);
        }
        resources.push(entry);
        for s in r.subresources {
            let mut sub = json!({
                "name": format!("{}/{}", r.plural, s.name),
                "singularName": "",
                "namespaced": r.namespaced,
                "kind": s.kind,
                "verbs": s.verbs,
            });
            if let Some((g, v)) = s.group_version {
                sub["group"] = json!(g);
                sub["version"] = json!(v);
            }
            resources.push(sub);
        }
    }
    if resources.is_empty() {
        return None;
    }
    let group_version =
        if group.is_empty() { version.to_owned() } else { format!("{group}/{version}") };
    Some(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": resources,
    }))
}

/// The aggregated discovery media type a client asked for, if any: `v2` or `v2beta1`.
pub fn aggregated_version(accept: &str) -> Option<&'static str> {
    accept.split(',').find_map(|media| {
        let params: Vec<&str> = media.split(';').map(str::trim).collect();
        let wants = |p: &str| params.contains(&p);
        if !(wants("g=apidiscovery.k8s.io") && wants("as=APIGroupDiscoveryList")) {
            return None;
        }
        if wants("v=v2") {
            Some("v2")
        } else if wants("v=v2beta1") {
            Some("v2beta1")
        } else {
            None
        }
    })
}

pub fn aggregated_content_type(version: &str) -> String {
    format!("application/json;g=apidiscovery.k8s.io;v={version};as=APIGroupDiscoveryList")
}

/// The aggregated document for `/api` (core) or `/apis` (named groups).
pub fn aggregated(core: bool, version: &str) -> Value {
    let mut items = Vec::new();
    let group_names: Vec<&str> =
        if core { vec![""] } else { groups().into_iter().map(|(g, _)| g).collect() };
    for group in group_names {
        let versions: Vec<&str> = registry::group_versions()
            .into_iter()
            .filter(|(g, _)| *g == group)
            .map(|(_, v)| v)
            .collect();
        let versions: Vec<Value> = versions
            .iter()
            .map(|v| {
                let resources: Vec<Value> =
                    in_group_version(group, v).map(aggregated_resource).collect();
                json!({"version": v, "resources": resources, "freshness": "Current"})
            })
            .collect();
        let mut item = json!({"metadata": {"creationTimestamp": null}, "versions": versions});
        if !group.is_empty() {
            item["metadata"]["name"] = json!(group);
        }
        items.push(item);
    }
    json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": format!("apidiscovery.k8s.io/{version}"),
        "metadata": {},
        "items": items,
    })
}

fn aggregated_resource(r: &'static Resource) -> Value {
    let subresources: Vec<Value> = r
        .subresources
        .iter()
        .map(|s| {
            let (group, version) = s.group_version.unwrap_or((r.group, r.version));
            json!({
                "subresource": s.name,
                "responseKind": {"group": group, "version": version, "kind": s.kind},
                "verbs": s.verbs,
            })
        })
        .collect();
    let mut entry = json!({
        "resource": r.plural,
        "responseKind": {"group": r.group, "version": r.version, "kind": r.kind},
        "scope": if r.namespaced { "Namespaced" } else { "Cluster" },
        "singularResource": r.singular,
        "verbs": r.verbs,
    });
    if !r.short_names.is_empty() {
        entry["shortNames"] = json!(r.short_names);
    }
    if !r.categories.is_empty() {
        entry["categories"] = json!(r.categories);
    }
    if !subresources.is_empty() {
        entry["subresources"] = json!(subresources);
    }
    entry
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aggregated_discovery_is_chosen_by_accept_parameters() {
        let kubectl = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json";
        assert_eq!(aggregated_version(kubectl), Some("v2"));
        assert_eq!(aggregated_version("application/json"), None);
    }

    #[test]
    fn scale_subresources_carry_their_response_kind() {
        let apps = aggregated(false, "v2");
        let deployments = apps["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["metadata"]["name"] == "apps")
            .unwrap()["versions"][0]["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["resource"] == "deployments")
            .unwrap()
            .clone();
        let scale = deployments["subresources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["subresource"] == "scale")
            .unwrap();
        assert_eq!(
            scale["responseKind"],
            json!({"group": "autoscaling", "version": "v1", "kind": "Scale"})
        );
        assert!(api_resource_list("", "v1").unwrap()["resources"].as_array().unwrap().len() > 10);
        assert!(api_group("apps").is_some() && api_group("nope").is_none());
    }
}
