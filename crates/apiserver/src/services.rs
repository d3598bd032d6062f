//! Service address allocation: ClusterIPs from `--service-cluster-ip-range` and NodePorts from
//! 30000–32767. Each allocation is a store key created atomically (like upstream's IPAddress
//! objects), so two writers never hand out the same address and restarts lose nothing.

use std::net::Ipv4Addr;

use capstan_store::{Store, StoreError};
use serde_json::{Value, json};

use crate::status::{ApiError, ApiResult, from_store};

const IP_PREFIX: &str = "/registry/ipallocations/";
const PORT_PREFIX: &str = "/registry/nodeportallocations/";
pub const NODE_PORTS: std::ops::RangeInclusive<u16> = 30000..=32767;

/// An IPv4 range Services take addresses from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServiceRange {
    pub network: Ipv4Addr,
    pub prefix: u8,
}

impl ServiceRange {
    pub fn parse(cidr: &str) -> Option<Self> {
        let (network, prefix) = cidr.split_once('/')?;
        let network: Ipv4Addr = network.parse().ok()?;
        let prefix: u8 = prefix.parse().ok().filter(|p| *p <= 30)?;
        let mask = if prefix == 0 { 0 } else { u32::MAX << (32 - prefix) };
        Some(Self { network: Ipv4Addr::from(u32::from(network) & mask), prefix })
    }

    fn size(self) -> u32 {
        1u32 << (32 - u32::from(self.prefix))
    }

    /// The first usable address: the `kubernetes` Service's.
    pub fn first(self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) + 1)
    }

    pub fn contains(self, ip: Ipv4Addr) -> bool {
        let offset = u32::from(ip).wrapping_sub(u32::from(self.network));
        offset > 0 && offset < self.size() - 1
    }

    fn nth(self, offset: u32) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) + offset)
    }
}

fn invalid(name: &str, field: &str, message: String) -> ApiError {
    ApiError::invalid(
        "",
        "Service",
        name,
        vec![(field.into(), "FieldValueInvalid".into(), message)],
    )
}

/// Claims `key` for `owner`; false when someone holds it already.
async fn claim(store: &dyn Store, key: &str, owner: &str) -> ApiResult<bool> {
    match store.create(key, json!({"owner": owner}).to_string().into()).await {
        Ok(_) => Ok(true),
        Err(StoreError::AlreadyExists(_)) => Ok(false),
        Err(e) => Err(from_store(e, "", "services", owner)),
    }
}

/// Gives a new Service its ClusterIP (unless headless or ExternalName) and NodePorts.
pub async fn allocate(
    store: &dyn Store,
    range: ServiceRange,
    service: &mut Value,
) -> ApiResult<()> {
    let name = service["metadata"]["name"].as_str().unwrap_or_default().to_owned();
    let owner = format!("{}/{name}", service["metadata"]["namespace"].as_str().unwrap_or_default());
    let kind = service["spec"]["type"].as_str().unwrap_or("ClusterIP").to_owned();
    if kind != "ExternalName" {
        match service["spec"]["clusterIP"].as_str().filter(|ip| !ip.is_empty()) {
            Some("None") => {}
            Some(requested) => {
                let ip: Ipv4Addr = requested.parse().map_err(|_| {
                    invalid(
                        &name,
                        "spec.clusterIPs[0]",
                        format!("Invalid value: \"{requested}\": must be a valid IP address"),
                    )
                })?;
                if !range.contains(ip) {
                    return Err(invalid(
                        &name,
                        "spec.clusterIPs[0]",
                        format!(
                            "Invalid value: \"{requested}\": failed to allocate IP {requested}: the provided IP ({requested}) is not in the valid range. The range of valid IPs is {}/{}",
                            range.network, range.prefix
                        ),
                    ));
                }
                if !claim(store, &format!("{IP_PREFIX}{ip}"), &owner).await? {
                    return Err(invalid(
                        &name,
                        "spec.clusterIPs[0]",
                        format!(
                            "Invalid value: \"{requested}\": failed to allocate IP {requested}: provided IP is already allocated"
                        ),
                    ));
                }
            }
            None => {
                let ip = allocate_ip(store, range, &owner).await?;
                service["spec"]["clusterIP"] = json!(ip.to_string());
            }
        }
        if let Some(ip) = service["spec"]["clusterIP"].as_str().map(str::to_owned) {
            service["spec"]["clusterIPs"] = json!([ip]);
        }
    }
    if matches!(kind.as_str(), "NodePort" | "LoadBalancer") {
        let ports = service["spec"]["ports"].as_array().cloned().unwrap_or_default();
        let mut assigned = Vec::with_capacity(ports.len());
        for mut port in ports {
            match port["nodePort"].as_u64() {
                Some(requested) => {
                    let valid = u16::try_from(requested).ok().filter(|p| NODE_PORTS.contains(p));
                    let Some(requested) = valid else {
                        return Err(invalid(
                            &name,
                            "spec.ports[0].nodePort",
                            format!(
                                "Invalid value: {requested}: provided port is not in the valid range. The range of valid ports is 30000-32767"
                            ),
                        ));
                    };
                    if !claim(store, &format!("{PORT_PREFIX}{requested}"), &owner).await? {
                        return Err(invalid(
                            &name,
                            "spec.ports[0].nodePort",
                            format!(
                                "Invalid value: {requested}: provided port is already allocated"
                            ),
                        ));
                    }
                }
                None => port["nodePort"] = json!(allocate_port(store, &owner).await?),
            }
            assigned.push(port);
        }
        service["spec"]["ports"] = Value::Array(assigned);
    }
    Ok(())
}

/// A random free address, walking on from a random start so allocations spread out.
async fn allocate_ip(store: &dyn Store, range: ServiceRange, owner: &str) -> ApiResult<Ipv4Addr> {
    let usable = range.size() - 2;
    let start =
        u32::from_le_bytes(uuid::Uuid::new_v4().as_bytes()[..4].try_into().unwrap_or_default())
            % usable;
    for step in 0..usable {
        // Offsets 1..=usable: the network address and the `kubernetes` Service's are skipped.
        let offset = 1 + (start + step) % usable;
        let ip = range.nth(offset);
        if ip == range.first() {
            continue;
        }
        if claim(store, &format!("{IP_PREFIX}{ip}"), owner).await? {
            return Ok(ip);
        }
    }
    Err(ApiError::internal(format!("the service range {}/{} is full", range.network, range.prefix)))
}

async fn allocate_port(store: &dyn Store, owner: &str) -> ApiResult<u16> {
    let count = u32::from(NODE_PORTS.end() - NODE_PORTS.start()) + 1;
    let start =
        u32::from_le_bytes(uuid::Uuid::new_v4().as_bytes()[..4].try_into().unwrap_or_default())
            % count;
    for step in 0..count {
        let port = NODE_PORTS.start() + ((start + step) % count) as u16;
        if claim(store, &format!("{PORT_PREFIX}{port}"), owner).await? {
            return Ok(port);
        }
    }
    Err(ApiError::internal("no NodePort is free in 30000-32767"))
}

/// Releases what a deleted Service held.
pub async fn release(store: &dyn Store, service: &Value) {
    let mut keys = Vec::new();
    for ip in
        service["spec"]["clusterIPs"].as_array().into_iter().flatten().filter_map(Value::as_str)
    {
        if ip != "None" {
            keys.push(format!("{IP_PREFIX}{ip}"));
        }
    }
    for port in service["spec"]["ports"].as_array().into_iter().flatten() {
        if let Some(node_port) = port["nodePort"].as_u64() {
            keys.push(format!("{PORT_PREFIX}{node_port}"));
        }
    }
    for key in keys {
        match store.delete(&key, None).await {
            Ok(_) | Err(StoreError::NotFound(_)) => {}
            Err(e) => tracing::warn!(key, "cannot release a service allocation: {e}"),
        }
    }
}

/// On update, a Service keeps its addresses: omitted ones are carried over, changed ones are
/// refused (they are immutable).
pub fn keep_allocations(old: &Value, new: &mut Value) -> ApiResult<()> {
    let name = old["metadata"]["name"].as_str().unwrap_or_default();
    let old_ip = &old["spec"]["clusterIP"];
    match new["spec"]["clusterIP"].as_str() {
        None | Some("") => {
            if !old_ip.is_null() && new["spec"].is_object() {
                new["spec"]["clusterIP"] = old_ip.clone();
                new["spec"]["clusterIPs"] = old["spec"]["clusterIPs"].clone();
            }
        }
        Some(ip) if Some(ip) != old_ip.as_str() && !old_ip.is_null() => {
            return Err(invalid(
                name,
                "spec.clusterIPs[0]",
                format!("Invalid value: \"{ip}\": field is immutable"),
            ));
        }
        Some(_) => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_parse_and_contain_their_usable_addresses() {
        let range = ServiceRange::parse("10.43.0.0/16").unwrap();
        assert_eq!(range.first(), Ipv4Addr::new(10, 43, 0, 1));
        assert!(range.contains(Ipv4Addr::new(10, 43, 200, 7)));
        assert!(!range.contains(Ipv4Addr::new(10, 43, 0, 0)), "the network address");
        assert!(!range.contains(Ipv4Addr::new(10, 43, 255, 255)), "the broadcast address");
        assert!(!range.contains(Ipv4Addr::new(10, 44, 0, 1)));
        assert!(ServiceRange::parse("10.43.0.0").is_none());
    }
}
