//! Services and Endpoints: types, ports (ranges, names, duplicates), selectors, session
//! affinity, traffic policies, addresses, and a Service's fixed ClusterIP.

use std::collections::HashSet;

use serde_json::{Value, json};

use super::meta::labels;
use super::names;
use super::*;

const PROTOCOLS: &[&str] = &["SCTP", "TCP", "UDP"];

pub(super) fn service(object: &Value, errs: &mut Vec<Cause>) {
    let spec = &object["spec"];
    let kind = string(spec, "type");
    let headless = string(spec, "clusterIP") == "None";
    let ports = list(spec, "ports");
    if ports.is_empty() && !headless && kind != "ExternalName" {
        errs.push(required("spec.ports", ""));
    }
    if kind == "ExternalName" {
        let name = string(spec, "externalName");
        let cname = name.strip_suffix('.').unwrap_or(name);
        if cname.is_empty() {
            errs.push(required("spec.externalName", ""));
        } else {
            for msg in crate::selector::dns1123_subdomain_errors(cname) {
                errs.push(invalid_str("spec.externalName", cname, &msg));
            }
        }
    }
    let mut port_names = HashSet::new();
    for (i, port) in ports.iter().enumerate() {
        service_port(port, &index("spec.ports", i), ports.len() > 1, &mut port_names, errs);
    }
    labels(map(spec, "selector"), "spec.selector", errs);
    match string(spec, "sessionAffinity") {
        "" => errs.push(required("spec.sessionAffinity", "")),
        "ClientIP" => {
            let timeout = &spec["sessionAffinityConfig"]["clientIP"]["timeoutSeconds"];
            if let Some(seconds) = timeout.as_i64()
                && !(1..=86400).contains(&seconds)
            {
                errs.push(invalid(
                    "spec.sessionAffinityConfig.clientIP.timeoutSeconds",
                    timeout,
                    "must be greater than 0 and less than 86400",
                ));
            }
        }
        "None" => {
            if is_set(spec, "sessionAffinityConfig") {
                errs.push(forbidden(
                    "spec.sessionAffinityConfig",
                    "must not be set when session affinity is None",
                ));
            }
        }
        other => errs.push(not_supported(
            "spec.sessionAffinity",
            &Value::from(other),
            &["ClientIP", "None"],
        )),
    }
    let cluster_ip = string(spec, "clusterIP");
    if !cluster_ip.is_empty() && cluster_ip != "None" && !names::is_ip(cluster_ip) {
        errs.push(invalid_str(
            "spec.clusterIPs[0]",
            cluster_ip,
            "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
        ));
    }
    let cluster_ips = list(spec, "clusterIPs");
    if let Some(first) = cluster_ips.first().and_then(Value::as_str)
        && !cluster_ip.is_empty()
        && first != cluster_ip
    {
        errs.push(invalid(
            "spec.clusterIPs",
            &spec["clusterIPs"],
            "first value must match `clusterIP`",
        ));
    }
    if cluster_ips.len() > 2 {
        errs.push(invalid("spec.clusterIPs", &spec["clusterIPs"], "may only hold up to 2 values"));
    }
    if list(spec, "ipFamilies").len() > 2 {
        errs.push(invalid("spec.ipFamilies", &spec["ipFamilies"], "may be at most 2"));
    }
    for (i, ip) in list(spec, "externalIPs").iter().enumerate() {
        let ip = ip.as_str().unwrap_or_default();
        if !names::is_ip(ip) {
            errs.push(invalid_str(
                &index("spec.externalIPs", i),
                ip,
                "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
            ));
        }
    }
    for (i, family) in list(spec, "ipFamilies").iter().enumerate() {
        if !matches!(family.as_str(), Some("IPv4" | "IPv6")) {
            errs.push(not_supported(&index("spec.ipFamilies", i), family, &["IPv4", "IPv6"]));
        }
    }
    one_of(
        spec,
        "ipFamilyPolicy",
        "spec.ipFamilyPolicy",
        &["SingleStack", "PreferDualStack", "RequireDualStack"],
        false,
        errs,
    );
    match kind {
        "" => errs.push(required("spec.type", "")),
        "ClusterIP" | "ExternalName" | "LoadBalancer" | "NodePort" => {}
        other => errs.push(not_supported(
            "spec.type",
            &Value::from(other),
            &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"],
        )),
    }
    let mut node_ports = HashSet::new();
    let mut port_keys = HashSet::new();
    for (i, port) in ports.iter().enumerate() {
        let path = index("spec.ports", i);
        let node_port = port["nodePort"].as_i64().unwrap_or(0);
        if node_port != 0 {
            if kind == "ClusterIP" {
                errs.push(forbidden(
                    &child(&path, "nodePort"),
                    "may not be used when `type` is 'ClusterIP'",
                ));
            } else if !node_ports.insert((node_port, string(port, "protocol"))) {
                errs.push(duplicate(&child(&path, "nodePort"), &Value::from(node_port)));
            }
        }
        let port_key = (port["port"].as_i64().unwrap_or(0), string(port, "protocol"));
        if !port_keys.insert(port_key) {
            errs.push(duplicate(&path, &json!({"port": port_key.0, "protocol": port_key.1})));
        }
    }
    let external = kind == "NodePort" || kind == "LoadBalancer";
    match spec.get("externalTrafficPolicy").and_then(Value::as_str) {
        None | Some("") => {}
        Some(_) if !external => errs.push(invalid(
            "spec.externalTrafficPolicy",
            &spec["externalTrafficPolicy"],
            "may only be set when `type` is 'NodePort' or 'LoadBalancer'",
        )),
        Some("Cluster" | "Local") => {}
        Some(other) => errs.push(not_supported(
            "spec.externalTrafficPolicy",
            &Value::from(other),
            &["Cluster", "Local"],
        )),
    }
    one_of(
        spec,
        "internalTrafficPolicy",
        "spec.internalTrafficPolicy",
        &["Cluster", "Local"],
        false,
        errs,
    );
}

fn service_port<'a>(
    port: &'a Value,
    path: &str,
    require_name: bool,
    names_seen: &mut HashSet<&'a str>,
    errs: &mut Vec<Cause>,
) {
    let name = string(port, "name");
    if require_name && name.is_empty() {
        errs.push(required(&child(path, "name"), ""));
    } else if !name.is_empty() {
        for msg in names::dns1123_label_errors(name) {
            errs.push(invalid_str(&child(path, "name"), name, &msg));
        }
        if !names_seen.insert(name) {
            errs.push(duplicate(&child(path, "name"), &Value::from(name)));
        }
    }
    let number = port["port"].as_i64().unwrap_or(0);
    if let Some(msg) = names::port_number_error(number) {
        errs.push(invalid(&child(path, "port"), &Value::from(number), msg));
    }
    one_of(port, "protocol", &child(path, "protocol"), PROTOCOLS, true, errs);
    if let Some(target) = port.get("targetPort").filter(|t| !t.is_null()) {
        port_num_or_name(target, &child(path, "targetPort"), errs);
    }
}

/// `ValidateServiceUpdate`: a ClusterIP stays once allocated (unless the type moves to or
/// from ExternalName, which has none).
pub(super) fn service_update(old: &Value, new: &Value, errs: &mut Vec<Cause>) {
    let (old_spec, new_spec) = (&old["spec"], &new["spec"]);
    if old_spec["type"] == "ExternalName" || new_spec["type"] == "ExternalName" {
        return;
    }
    let old_ip = string(old_spec, "clusterIP");
    let new_ip = string(new_spec, "clusterIP");
    if !old_ip.is_empty() && new_ip != old_ip {
        errs.push(invalid_str("spec.clusterIPs[0]", new_ip, "may not change once set"));
    }
}

pub(super) fn endpoints(object: &Value, errs: &mut Vec<Cause>) {
    for (i, subset) in list(object, "subsets").iter().enumerate() {
        let path = index("subsets", i);
        for field in ["addresses", "notReadyAddresses"] {
            for (j, address) in list(subset, field).iter().enumerate() {
                let at = index(&child(&path, field), j);
                let ip = string(address, "ip");
                if !names::is_ip(ip) {
                    errs.push(invalid_str(
                        &child(&at, "ip"),
                        ip,
                        "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
                    ));
                }
                let hostname = string(address, "hostname");
                if !hostname.is_empty() {
                    for msg in names::dns1123_label_errors(hostname) {
                        errs.push(invalid_str(&child(&at, "hostname"), hostname, &msg));
                    }
                }
            }
        }
        let ports = list(subset, "ports");
        let mut seen = HashSet::new();
        for (j, port) in ports.iter().enumerate() {
            let at = index(&child(&path, "ports"), j);
            let name = string(port, "name");
            if ports.len() > 1 && name.is_empty() {
                errs.push(required(&child(&at, "name"), ""));
            } else if !name.is_empty() {
                for msg in names::dns1123_label_errors(name) {
                    errs.push(invalid_str(&child(&at, "name"), name, &msg));
                }
                if !seen.insert(name) {
                    errs.push(duplicate(&child(&at, "name"), &Value::from(name)));
                }
            }
            let number = port["port"].as_i64().unwrap_or(0);
            if let Some(msg) = names::port_number_error(number) {
                errs.push(invalid(&child(&at, "port"), &Value::from(number), msg));
            }
            one_of(port, "protocol", &child(&at, "protocol"), PROTOCOLS, true, errs);
        }
    }
}
