//! What the data plane needs from Services and EndpointSlices: one entry per Service port, with
//! the endpoints traffic to it may go to.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;

/// The label naming the Service an EndpointSlice belongs to.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
/// `sessionAffinityConfig.clientIP.timeoutSeconds`' default (three hours).
const DEFAULT_AFFINITY_SECONDS: u32 = 10_800;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
}

impl Protocol {
    /// A Service or EndpointSlice port's protocol; unset means TCP.
    fn parse(protocol: Option<&str>) -> Option<Self> {
        match protocol.unwrap_or("TCP") {
            "TCP" => Some(Self::Tcp),
            "UDP" => Some(Self::Udp),
            "SCTP" => Some(Self::Sctp),
            _ => None,
        }
    }

    /// The name `iptables -p` and `-m` take.
    pub fn iptables_name(self) -> &'static str {
        match self {
            Self::Tcp => "tcp",
            Self::Udp => "udp",
            Self::Sctp => "sctp",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Endpoint {
    pub ip: Ipv4Addr,
    pub port: u16,
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.ip, self.port)
    }
}

/// One port of a Service with a ClusterIP.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServicePort {
    pub namespace: String,
    pub service: String,
    /// The port's name; empty for a Service's only, unnamed port.
    pub port_name: String,
    pub protocol: Protocol,
    pub cluster_ip: Ipv4Addr,
    pub port: u16,
    pub node_port: Option<u16>,
    /// Seconds a client keeps its endpoint under `sessionAffinity: ClientIP`.
    pub affinity_seconds: Option<u32>,
    /// Where traffic goes: the ready endpoints or, when none is ready, the serving ones that are
    /// terminating (so connections still land while a rollout replaces the last pods).
    pub endpoints: Vec<Endpoint>,
}

impl ServicePort {
    /// Upstream's service port name, `namespace/service:port`, for comments and logs.
    pub fn id(&self) -> String {
        format!("{}/{}:{}", self.namespace, self.service, self.port_name)
    }
}

/// An endpoint as one EndpointSlice reports it.
struct SliceEndpoint {
    endpoint: Endpoint,
    ready: bool,
    serving_and_terminating: bool,
}

/// Every IPv4 ClusterIP Service port with its endpoints, ordered by namespace, name and port.
/// Headless and ExternalName Services have no rules; IPv6 addresses are left out.
pub fn service_ports<'a>(
    services: impl IntoIterator<Item = &'a Service>,
    slices: impl IntoIterator<Item = &'a EndpointSlice>,
) -> Vec<ServicePort> {
    let mut by_service: BTreeMap<(&str, &str), Vec<&EndpointSlice>> = BTreeMap::new();
    for slice in slices {
        let (Some(namespace), Some(service)) = (
            slice.metadata.namespace.as_deref(),
            slice.metadata.labels.as_ref().and_then(|l| l.get(SERVICE_NAME_LABEL)),
        ) else {
            continue;
        };
        if slice.address_type == "IPv4" {
            by_service.entry((namespace, service.as_str())).or_default().push(slice);
        }
    }
    let mut ports = Vec::new();
    for service in services {
        let (Some(namespace), Some(name), Some(spec)) = (
            service.metadata.namespace.as_deref(),
            service.metadata.name.as_deref(),
            service.spec.as_ref(),
        ) else {
            continue;
        };
        if spec.type_.as_deref() == Some("ExternalName") {
            continue;
        }
        let Some(cluster_ip) = spec.cluster_ip.as_deref().and_then(|ip| ip.parse().ok()) else {
            continue;
        };
        let affinity_seconds = (spec.session_affinity.as_deref() == Some("ClientIP")).then(|| {
            spec.session_affinity_config
                .as_ref()
                .and_then(|c| c.client_ip.as_ref())
                .and_then(|c| c.timeout_seconds)
                .and_then(|seconds| u32::try_from(seconds).ok())
                .filter(|seconds| *seconds > 0)
                .unwrap_or(DEFAULT_AFFINITY_SECONDS)
        });
        let slices = by_service.get(&(namespace, name)).map(Vec::as_slice).unwrap_or_default();
        for port in spec.ports.iter().flatten() {
            let (Some(protocol), Ok(number)) =
                (Protocol::parse(port.protocol.as_deref()), u16::try_from(port.port))
            else {
                continue;
            };
            let port_name = port.name.clone().unwrap_or_default();
            let endpoints = endpoints_for(slices, &port_name, protocol);
            ports.push(ServicePort {
                namespace: namespace.to_owned(),
                service: name.to_owned(),
                port_name,
                protocol,
                cluster_ip,
                port: number,
                node_port: port.node_port.and_then(|p| u16::try_from(p).ok()).filter(|p| *p > 0),
                affinity_seconds,
                endpoints,
            });
        }
    }
    ports.sort_by(|a, b| {
        (&a.namespace, &a.service, &a.port_name, a.protocol).cmp(&(
            &b.namespace,
            &b.service,
            &b.port_name,
            b.protocol,
        ))
    });
    ports
}

/// The endpoints of one Service port across its slices (deduplicated, sorted): the ready ones,
/// or when none is, the serving ones that are terminating.
fn endpoints_for(slices: &[&EndpointSlice], port_name: &str, protocol: Protocol) -> Vec<Endpoint> {
    let mut all = Vec::new();
    for slice in slices {
        let Some(port) = slice.ports.iter().flatten().find(|p| {
            p.name.as_deref().unwrap_or_default() == port_name
                && Protocol::parse(p.protocol.as_deref()) == Some(protocol)
        }) else {
            continue;
        };
        let Some(number) = port.port.and_then(|p| u16::try_from(p).ok()).filter(|p| *p > 0) else {
            continue;
        };
        for endpoint in &slice.endpoints {
            let Some(ip) = endpoint.addresses.first().and_then(|ip| ip.parse().ok()) else {
                continue;
            };
            let conditions = endpoint.conditions.clone().unwrap_or_default();
            // Unset conditions mean ready, serving as ready, not terminating.
            let ready = conditions.ready.unwrap_or(true);
            let serving = conditions.serving.unwrap_or(ready);
            let terminating = conditions.terminating.unwrap_or(false);
            all.push(SliceEndpoint {
                endpoint: Endpoint { ip, port: number },
                ready,
                serving_and_terminating: serving && terminating,
            });
        }
    }
    let ready: BTreeSet<Endpoint> = all.iter().filter(|e| e.ready).map(|e| e.endpoint).collect();
    if !ready.is_empty() {
        return ready.into_iter().collect();
    }
    let fallback: BTreeSet<Endpoint> =
        all.iter().filter(|e| e.serving_and_terminating).map(|e| e.endpoint).collect();
    fallback.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn service(spec: Value) -> Service {
        serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "shop"},
            "spec": spec,
        }))
        .unwrap()
    }

    fn slice(name: &str, ports: Value, endpoints: Value) -> EndpointSlice {
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "shop",
                         "labels": {"kubernetes.io/service-name": "web"}},
            "addressType": "IPv4",
            "ports": ports,
            "endpoints": endpoints,
        }))
        .unwrap()
    }

    fn ep(ip: &str, port: u16) -> Endpoint {
        Endpoint { ip: ip.parse().unwrap(), port }
    }

    fn endpoints_of(spec: Value, slices: &[EndpointSlice]) -> Vec<Vec<Endpoint>> {
        service_ports([&service(spec)], slices).into_iter().map(|p| p.endpoints).collect()
    }

    const HTTP: fn() -> Value = || json!([{"name": "http", "port": 8080, "protocol": "TCP"}]);

    #[test]
    fn endpoints_are_the_ready_ones_or_else_the_serving_terminating_ones() {
        let spec = json!({"clusterIP": "10.43.0.9", "ports": [{"name": "http", "port": 80}]});
        let cases = [
            (
                "unset conditions mean ready",
                json!([{"addresses": ["10.42.0.1"]}]),
                vec![ep("10.42.0.1", 8080)],
            ),
            (
                "not-ready endpoints are left out",
                json!([
                    {"addresses": ["10.42.0.1"], "conditions": {"ready": true}},
                    {"addresses": ["10.42.0.2"], "conditions": {"ready": false}},
                ]),
                vec![ep("10.42.0.1", 8080)],
            ),
            (
                "serving terminating endpoints stand in when none is ready",
                json!([
                    {"addresses": ["10.42.0.2"], "conditions": {"ready": false, "serving": true, "terminating": true}},
                    {"addresses": ["10.42.0.3"], "conditions": {"ready": false, "serving": false, "terminating": true}},
                ]),
                vec![ep("10.42.0.2", 8080)],
            ),
            (
                "serving terminating endpoints do not join ready ones",
                json!([
                    {"addresses": ["10.42.0.1"], "conditions": {"ready": true}},
                    {"addresses": ["10.42.0.2"], "conditions": {"ready": false, "serving": true, "terminating": true}},
                ]),
                vec![ep("10.42.0.1", 8080)],
            ),
            ("no endpoints", json!([]), vec![]),
        ];
        for (what, endpoints, expected) in cases {
            let slices = [slice("a", HTTP(), endpoints)];
            assert_eq!(endpoints_of(spec.clone(), &slices), vec![expected], "{what}");
        }
    }

    #[test]
    fn slices_are_merged_matched_by_port_name_and_protocol_and_deduplicated() {
        let spec = json!({"clusterIP": "10.43.0.9", "ports": [
            {"name": "http", "port": 80},
            {"name": "dns", "port": 53, "protocol": "UDP"},
        ]});
        let slices = [
            slice(
                "a",
                json!([{"name": "http", "port": 8080}, {"name": "dns", "port": 5353, "protocol": "UDP"}]),
                json!([{"addresses": ["10.42.0.2"]}, {"addresses": ["10.42.0.1"]}]),
            ),
            slice("b", HTTP(), json!([{"addresses": ["10.42.0.1"]}, {"addresses": ["10.42.0.3"]}])),
            slice(
                "c",
                json!([{"name": "dns", "port": 5353}]),
                json!([{"addresses": ["10.42.0.9"]}]),
            ),
        ];
        let ports = service_ports([&service(spec)], &slices);
        let summary: Vec<(String, Protocol, Vec<Endpoint>)> =
            ports.into_iter().map(|p| (p.port_name, p.protocol, p.endpoints)).collect();
        assert_eq!(
            summary,
            [
                ("dns".into(), Protocol::Udp, vec![ep("10.42.0.1", 5353), ep("10.42.0.2", 5353)]),
                (
                    "http".into(),
                    Protocol::Tcp,
                    vec![ep("10.42.0.1", 8080), ep("10.42.0.2", 8080), ep("10.42.0.3", 8080)]
                ),
            ]
        );
    }

    #[test]
    fn headless_external_name_and_ipv6_services_have_no_ports() {
        for spec in [
            json!({"clusterIP": "None", "ports": [{"port": 80}]}),
            json!({"type": "ExternalName", "externalName": "example.com", "ports": [{"port": 80}]}),
            json!({"clusterIP": "fd00::1", "ports": [{"port": 80}]}),
            json!({"ports": [{"port": 80}]}),
        ] {
            assert_eq!(service_ports([&service(spec.clone())], []), [], "{spec}");
        }
    }

    #[test]
    fn node_ports_and_client_ip_affinity_are_read_from_the_spec() {
        let spec = json!({
            "type": "NodePort", "clusterIP": "10.43.0.9",
            "ports": [{"port": 80, "nodePort": 30080}],
            "sessionAffinity": "ClientIP",
        });
        let port = service_ports([&service(spec)], []).remove(0);
        assert_eq!(port.node_port, Some(30080));
        assert_eq!(port.affinity_seconds, Some(10_800));
        assert_eq!(port.id(), "shop/web:");

        let spec = json!({
            "clusterIP": "10.43.0.9", "ports": [{"port": 80}], "sessionAffinity": "ClientIP",
            "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 60}},
        });
        assert_eq!(service_ports([&service(spec)], [])[0].affinity_seconds, Some(60));
    }
}
