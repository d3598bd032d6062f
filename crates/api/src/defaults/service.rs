//! Service networking defaulting: Services (SetDefaults_Service, plus the IP family fields the
//! Service REST storage fills in on every write), Endpoints and EndpointSlices.

use serde_json::{Map, Value, json};

use super::{default_pointer, default_string, is_unset, items, pointer_field, struct_field};

/// `DefaultClientIPServiceAffinitySeconds`: three hours.
const CLIENT_IP_AFFINITY_SECONDS: i64 = 10800;

pub(super) fn service(service: &mut Map<String, Value>) {
    let Some(spec) = struct_field(service, "spec") else { return };
    default_string(spec, "sessionAffinity", "None");
    match spec.get("sessionAffinity").and_then(Value::as_str) {
        // Upstream drops a config that `None` cannot use.
        Some("None") => {
            spec.remove("sessionAffinityConfig");
        }
        Some("ClientIP") => {
            let timeout = struct_field(spec, "sessionAffinityConfig")
                .and_then(|config| struct_field(config, "clientIP"));
            if let Some(client_ip) = timeout {
                default_pointer(client_ip, "timeoutSeconds", CLIENT_IP_AFFINITY_SECONDS);
            }
        }
        _ => {}
    }
    default_string(spec, "type", "ClusterIP");
    for port in items(spec, "ports") {
        default_string(port, "protocol", "TCP");
        // targetPort 0, "" or unset means "the same as port".
        let unset_target = match port.get("targetPort") {
            None | Some(Value::Null) => true,
            Some(Value::Number(n)) => n.as_i64() == Some(0),
            Some(Value::String(s)) => s.is_empty(),
            Some(_) => false,
        };
        if unset_target && let Some(number) = port.get("port").filter(|p| p.is_i64()).cloned() {
            port.insert("targetPort".into(), number);
        }
    }
    let service_type = spec.get("type").and_then(Value::as_str).unwrap_or_default().to_owned();
    let has_external_ips =
        spec.get("externalIPs").and_then(Value::as_array).is_some_and(|ips| !ips.is_empty());
    let externally_accessible = matches!(service_type.as_str(), "NodePort" | "LoadBalancer")
        || (service_type == "ClusterIP" && has_external_ips);
    if externally_accessible {
        default_string(spec, "externalTrafficPolicy", "Cluster");
    }
    if matches!(service_type.as_str(), "ClusterIP" | "NodePort" | "LoadBalancer") {
        default_pointer(spec, "internalTrafficPolicy", "Cluster");
    }
    if service_type == "LoadBalancer" {
        default_pointer(spec, "allocateLoadBalancerNodePorts", true);
    }
    if service_type != "ExternalName" {
        ip_families(spec);
    }
    if service_type == "LoadBalancer"
        && let Some(status) = pointer_field(service, "status")
        && let Some(balancer) = pointer_field(status, "loadBalancer")
    {
        for ingress in items(balancer, "ingress") {
            let has_ip = ingress.get("ip").and_then(Value::as_str).is_some_and(|ip| !ip.is_empty());
            if has_ip {
                default_pointer(ingress, "ipMode", "VIP");
            }
        }
    }
}

/// The family of an IP address as the API names it.
fn family_of(ip: &str) -> &'static str {
    if ip.contains(':') { "IPv6" } else { "IPv4" }
}

/// What the Service storage infers on a single-stack IPv4 cluster: SingleStack unless the
/// client asked for two families or two IPs, families from the given IPs or IPv4.
fn ip_families(spec: &mut Map<String, Value>) {
    let count = |spec: &Map<String, Value>, key: &str| {
        spec.get(key).and_then(Value::as_array).map_or(0, Vec::len)
    };
    if is_unset(spec, "ipFamilyPolicy") {
        let dual = count(spec, "ipFamilies") == 2 || count(spec, "clusterIPs") == 2;
        spec.insert(
            "ipFamilyPolicy".into(),
            json!(if dual { "RequireDualStack" } else { "SingleStack" }),
        );
    }
    let is_empty_list = match spec.get("ipFamilies") {
        None | Some(Value::Null) => true,
        Some(Value::Array(families)) => families.is_empty(),
        Some(_) => false,
    };
    if is_empty_list {
        let cluster_ips: Vec<&str> = spec
            .get("clusterIPs")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .take_while(|ip| !ip.is_empty() && *ip != "None")
            .collect();
        let families: Vec<&str> = if cluster_ips.is_empty() {
            let single = spec.get("clusterIP").and_then(Value::as_str);
            match single.filter(|ip| !ip.is_empty() && *ip != "None") {
                Some(ip) => vec![family_of(ip)],
                None => vec!["IPv4"],
            }
        } else {
            cluster_ips.into_iter().map(family_of).collect()
        };
        spec.insert("ipFamilies".into(), json!(families));
    }
    // A headless Service without a selector that may be dual-stack lists both families.
    let headless = spec.get("clusterIP").and_then(Value::as_str) == Some("None");
    let selectorless = match spec.get("selector") {
        None | Some(Value::Null) => true,
        Some(Value::Object(selector)) => selector.is_empty(),
        Some(_) => false,
    };
    let single_stack = spec.get("ipFamilyPolicy").and_then(Value::as_str) == Some("SingleStack");
    if headless
        && selectorless
        && !single_stack
        && let Some(families) = spec.get_mut("ipFamilies").and_then(Value::as_array_mut)
        && families.len() == 1
    {
        let other = if families[0] == "IPv6" { "IPv4" } else { "IPv6" };
        families.push(json!(other));
    }
}

pub(super) fn endpoints(endpoints: &mut Map<String, Value>) {
    for subset in items(endpoints, "subsets") {
        for port in items(subset, "ports") {
            default_string(port, "protocol", "TCP");
        }
    }
}

pub(super) fn endpoint_slice(slice: &mut Map<String, Value>) {
    for port in items(slice, "ports") {
        default_pointer(port, "name", "");
        default_pointer(port, "protocol", "TCP");
    }
}
