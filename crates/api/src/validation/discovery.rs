//! EndpointSlices: address type, addresses matching it, and ports.

use std::collections::HashSet;

use serde_json::Value;

use super::names;
use super::*;

const MAX_ENDPOINTS: usize = 1000;
const MAX_ADDRESSES: usize = 100;
const MAX_PORTS: usize = 100;

pub(super) fn endpoint_slice(object: &Value, errs: &mut Vec<Cause>) {
    let address_type = string(object, "addressType");
    match address_type {
        "" => errs.push(required("addressType", "")),
        "IPv4" | "IPv6" | "FQDN" => {}
        other => {
            errs.push(not_supported("addressType", &Value::from(other), &["IPv4", "IPv6", "FQDN"]))
        }
    }
    let endpoints = list(object, "endpoints");
    if endpoints.len() > MAX_ENDPOINTS {
        errs.push(too_many("endpoints", endpoints.len(), MAX_ENDPOINTS));
    }
    for (i, endpoint) in endpoints.iter().enumerate() {
        let path = child(&index("endpoints", i), "addresses");
        let addresses = list(endpoint, "addresses");
        if addresses.is_empty() {
            errs.push(required(&path, "must contain at least 1 address"));
        } else if addresses.len() > MAX_ADDRESSES {
            errs.push(too_many(&path, addresses.len(), MAX_ADDRESSES));
        }
        for (j, address) in addresses.iter().enumerate() {
            let address = address.as_str().unwrap_or_default();
            let at = index(&path, j);
            let problem = match address_type {
                "IPv4" if address.parse::<std::net::Ipv4Addr>().is_err() => {
                    Some("must be a valid IPv4 address")
                }
                "IPv6" if address.parse::<std::net::Ipv6Addr>().is_err() => {
                    Some("must be a valid IPv6 address")
                }
                "FQDN" if !names::is_subdomain(address) => {
                    Some("should be a domain with at least two segments separated by dots")
                }
                _ => None,
            };
            if let Some(problem) = problem {
                errs.push(invalid_str(&at, address, problem));
            }
        }
        let hostname = endpoint["hostname"].as_str().unwrap_or_default();
        if !hostname.is_empty() {
            for msg in names::dns1123_label_errors(hostname) {
                errs.push(invalid_str(&child(&index("endpoints", i), "hostname"), hostname, &msg));
            }
        }
    }
    let ports = list(object, "ports");
    if ports.len() > MAX_PORTS {
        errs.push(too_many("ports", ports.len(), MAX_PORTS));
    }
    let mut seen = HashSet::new();
    for (i, port) in ports.iter().enumerate() {
        let path = index("ports", i);
        let name = string(port, "name");
        if !name.is_empty() {
            for msg in names::dns1123_label_errors(name) {
                errs.push(invalid_str(&child(&path, "name"), name, &msg));
            }
        }
        if !seen.insert(name) {
            errs.push(duplicate(&child(&path, "name"), &Value::from(name)));
        }
        one_of(port, "protocol", &child(&path, "protocol"), &["SCTP", "TCP", "UDP"], true, errs);
        if let Some(number) = port["port"].as_i64()
            && let Some(msg) = names::port_number_error(number)
        {
            errs.push(invalid(&child(&path, "port"), &Value::from(number), msg));
        }
    }
}
