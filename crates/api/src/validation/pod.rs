//! Pods, pod templates and pod specs: containers, ports, env, probes, resources, volumes and
//! mounts, tolerations, scheduling fields, and what a pod update may change.

use std::collections::HashSet;

use serde_json::Value;

use super::meta::{annotations, label_name, labels};
use super::names;
use super::*;
use crate::quantity::parse_millis;

const PROTOCOLS: &[&str] = &["SCTP", "TCP", "UDP"];
const TAINT_EFFECTS: &[&str] = &["NoSchedule", "PreferNoSchedule", "NoExecute"];
/// Volume sources in the order upstream checks them: the first is the volume's type.
const VOLUME_TYPES: &[&str] = &[
    "emptyDir",
    "hostPath",
    "gitRepo",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "secret",
    "nfs",
    "iscsi",
    "glusterfs",
    "persistentVolumeClaim",
    "rbd",
    "quobyte",
    "flexVolume",
    "cinder",
    "cephfs",
    "flocker",
    "downwardAPI",
    "fc",
    "azureFile",
    "configMap",
    "vsphereVolume",
    "azureDisk",
    "photonPersistentDisk",
    "projected",
    "portworxVolume",
    "scaleIO",
    "storageos",
    "csi",
    "ephemeral",
    "image",
];
const FIELD_REF_PATHS: &[&str] = &[
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
    "spec.nodeName",
    "spec.serviceAccountName",
    "status.hostIP",
    "status.hostIPs",
    "status.podIP",
    "status.podIPs",
];
const UPDATABLE_POD_FIELDS: &str = "`spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)";

pub(super) fn pod(object: &Value, errs: &mut Vec<Cause>) {
    pod_spec(&object["spec"], "spec", errs);
}

pub(super) fn pod_template(object: &Value, errs: &mut Vec<Cause>) {
    pod_template_spec(&object["template"], "template", errs);
}

/// `ValidatePodTemplateSpec`: upstream reports template labels at `<path>.labels`.
pub(super) fn pod_template_spec(template: &Value, path: &str, errs: &mut Vec<Cause>) {
    let meta = &template["metadata"];
    labels(map(meta, "labels"), &child(path, "labels"), errs);
    annotations(map(meta, "annotations"), &child(path, "annotations"), errs);
    pod_spec(&template["spec"], &child(path, "spec"), errs);
}

pub(super) fn pod_spec(spec: &Value, path: &str, errs: &mut Vec<Cause>) {
    let volumes = volumes(list(spec, "volumes"), &child(path, "volumes"), errs);
    let containers = list(spec, "containers");
    if containers.is_empty() {
        errs.push(required(&child(path, "containers"), ""));
    }
    let mut names = HashSet::new();
    let host_network = spec["hostNetwork"] == true;
    for (i, c) in list(spec, "initContainers").iter().enumerate() {
        let path = index(&child(path, "initContainers"), i);
        container(c, &path, &volumes, &mut names, host_network, errs);
        init_container_rules(c, &path, errs);
    }
    for (i, c) in containers.iter().enumerate() {
        let path = index(&child(path, "containers"), i);
        container(c, &path, &volumes, &mut names, host_network, errs);
        if is_set(c, "restartPolicy") {
            errs.push(forbidden(
                &child(&path, "restartPolicy"),
                "may not be set for non-init containers",
            ));
        }
        for probe in ["livenessProbe", "startupProbe"] {
            if let Some(threshold) = c[probe]["successThreshold"].as_i64()
                && threshold != 1
            {
                errs.push(invalid(
                    &child(&child(&path, probe), "successThreshold"),
                    &Value::from(threshold),
                    "must be 1",
                ));
            }
        }
    }
    for (i, c) in list(spec, "ephemeralContainers").iter().enumerate() {
        let path = index(&child(path, "ephemeralContainers"), i);
        container(c, &path, &volumes, &mut names, host_network, errs);
    }
    host_ports(spec, path, errs);
    one_of(
        spec,
        "restartPolicy",
        &child(path, "restartPolicy"),
        &["Always", "OnFailure", "Never"],
        true,
        errs,
    );
    one_of(
        spec,
        "dnsPolicy",
        &child(path, "dnsPolicy"),
        &["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"],
        true,
        errs,
    );
    if string(spec, "dnsPolicy") == "None" && !is_set(spec, "dnsConfig") {
        errs.push(required(
            &child(path, "dnsConfig"),
            "must provide `dnsConfig` when `dnsPolicy` is None",
        ));
    }
    labels(map(spec, "nodeSelector"), &child(path, "nodeSelector"), errs);
    for (field, check) in [
        ("serviceAccountName", Check::Subdomain),
        ("nodeName", Check::Subdomain),
        ("priorityClassName", Check::Subdomain),
        ("hostname", Check::Label),
        ("subdomain", Check::Label),
    ] {
        let value = string(spec, field);
        if !value.is_empty() {
            let problems = match check {
                Check::Subdomain => crate::selector::dns1123_subdomain_errors(value),
                Check::Label => names::dns1123_label_errors(value),
            };
            for msg in problems {
                errs.push(invalid_str(&child(path, field), value, &msg));
            }
        }
    }
    if let Some(deadline) = spec.get("activeDeadlineSeconds").and_then(Value::as_i64)
        && !(1..=i64::from(i32::MAX)).contains(&deadline)
    {
        errs.push(invalid(
            &child(path, "activeDeadlineSeconds"),
            &Value::from(deadline),
            "must be between 1 and 2147483647, inclusive",
        ));
    }
    tolerations(list(spec, "tolerations"), &child(path, "tolerations"), errs);
    dns_config(spec, path, errs);
    for (i, alias) in list(spec, "hostAliases").iter().enumerate() {
        let at = index(&child(path, "hostAliases"), i);
        let ip = string(alias, "ip");
        if !names::is_ip(ip) {
            errs.push(invalid_str(&child(&at, "ip"), ip, "must be a valid IP address"));
        }
        for (j, hostname) in list(alias, "hostnames").iter().enumerate() {
            let hostname = hostname.as_str().unwrap_or_default();
            for msg in crate::selector::dns1123_subdomain_errors(hostname) {
                errs.push(invalid_str(&index(&child(&at, "hostnames"), j), hostname, &msg));
            }
        }
    }
    for (i, gate) in list(spec, "readinessGates").iter().enumerate() {
        let condition = string(gate, "conditionType");
        label_name(
            condition,
            &child(&index(&child(path, "readinessGates"), i), "conditionType"),
            errs,
        );
    }
    security_context_ids(&spec["securityContext"], &child(path, "securityContext"), errs);
    topology_spread(
        list(spec, "topologySpreadConstraints"),
        &child(path, "topologySpreadConstraints"),
        errs,
    );
    affinity(&spec["affinity"], &child(path, "affinity"), errs);
}

/// `validatePodDNSConfig`: at most 3 nameservers (IPs), 32 search domains, named options;
/// with `dnsPolicy: None` at least one nameserver.
fn dns_config(spec: &Value, path: &str, errs: &mut Vec<Cause>) {
    let Some(config) = spec.get("dnsConfig").filter(|c| c.is_object()) else { return };
    let path = child(path, "dnsConfig");
    let nameservers = list(config, "nameservers");
    if string(spec, "dnsPolicy") == "None" && nameservers.is_empty() {
        errs.push(required(
            &child(&path, "nameservers"),
            "must provide at least one DNS nameserver when `dnsPolicy` is None",
        ));
    }
    if nameservers.len() > 3 {
        errs.push(invalid(
            &child(&path, "nameservers"),
            &config["nameservers"],
            "must not have more than 3 nameservers",
        ));
    }
    for (i, server) in nameservers.iter().enumerate() {
        let server = server.as_str().unwrap_or_default();
        if !names::is_ip(server) {
            errs.push(invalid_str(
                &index(&child(&path, "nameservers"), i),
                server,
                "must be a valid IP address",
            ));
        }
    }
    let searches = list(config, "searches");
    if searches.len() > 32 {
        errs.push(invalid(
            &child(&path, "searches"),
            &config["searches"],
            "must not have more than 32 search paths",
        ));
    }
    for (i, search) in searches.iter().enumerate() {
        let search = search.as_str().unwrap_or_default();
        let domain = search.strip_suffix('.').unwrap_or(search);
        for msg in crate::selector::dns1123_subdomain_errors(domain) {
            errs.push(invalid_str(&index(&child(&path, "searches"), i), search, &msg));
        }
    }
    for (i, option) in list(config, "options").iter().enumerate() {
        if string(option, "name").is_empty() {
            errs.push(required(
                &child(&index(&child(&path, "options"), i), "name"),
                "must not be empty",
            ));
        }
    }
}

/// User, group and fsGroup IDs are 32-bit and not negative.
fn security_context_ids(context: &Value, path: &str, errs: &mut Vec<Cause>) {
    for field in ["runAsUser", "runAsGroup", "fsGroup"] {
        if let Some(id) = context.get(field).and_then(Value::as_i64)
            && !(0..=i64::from(i32::MAX)).contains(&id)
        {
            errs.push(invalid(
                &child(path, field),
                &Value::from(id),
                "must be between 0 and 2147483647, inclusive",
            ));
        }
    }
}

enum Check {
    Subdomain,
    Label,
}

/// Volumes by name, with duplicate names and sources checked (`ValidateVolumes`).
fn volumes<'a>(volumes: &'a [Value], path: &str, errs: &mut Vec<Cause>) -> HashSet<&'a str> {
    let mut names = HashSet::new();
    for (i, volume) in volumes.iter().enumerate() {
        let path = index(path, i);
        let before = errs.len();
        volume_source(volume, &path, errs);
        let name = string(volume, "name");
        let name_path = child(&path, "name");
        if name.is_empty() {
            errs.push(required(&name_path, ""));
        } else {
            for msg in names::dns1123_label_errors(name) {
                errs.push(invalid_str(&name_path, name, &msg));
            }
        }
        if names.contains(name) {
            errs.push(duplicate(&name_path, &Value::from(name)));
        }
        if errs.len() == before {
            names.insert(name);
        }
    }
    names
}

fn volume_source(volume: &Value, path: &str, errs: &mut Vec<Cause>) {
    let kinds: Vec<&str> = VOLUME_TYPES.iter().copied().filter(|k| is_set(volume, k)).collect();
    match kinds.as_slice() {
        [] => errs.push(required(path, "must specify a volume type")),
        [_, extra @ ..] => {
            for kind in extra {
                errs.push(forbidden(&child(path, kind), "may not specify more than 1 volume type"));
            }
        }
    }
    let required_string = |source: &str, field: &str, errs: &mut Vec<Cause>| {
        if let Some(s) = volume.get(source).filter(|s| s.is_object())
            && string(s, field).is_empty()
        {
            errs.push(required(&child(&child(path, source), field), ""));
        }
    };
    required_string("hostPath", "path", errs);
    required_string("secret", "secretName", errs);
    required_string("configMap", "name", errs);
    required_string("persistentVolumeClaim", "claimName", errs);
    required_string("nfs", "server", errs);
    required_string("nfs", "path", errs);
    if let Some(host_path) = volume.get("hostPath") {
        one_of(
            host_path,
            "type",
            &child(&child(path, "hostPath"), "type"),
            &[
                "",
                "DirectoryOrCreate",
                "Directory",
                "FileOrCreate",
                "File",
                "Socket",
                "CharDevice",
                "BlockDevice",
            ],
            false,
            errs,
        );
    }
    if let Some(size) = volume["emptyDir"]["sizeLimit"].as_str() {
        quantity(size, &child(&child(path, "emptyDir"), "sizeLimit"), errs);
    }
    for source in ["secret", "configMap", "downwardAPI", "projected"] {
        if let Some(mode) = volume[source]["defaultMode"].as_i64() {
            file_mode(mode, &child(&child(path, source), "defaultMode"), errs);
        }
    }
    for source in ["secret", "configMap"] {
        for (i, item) in list(&volume[source], "items").iter().enumerate() {
            let item_path = index(&child(&child(path, source), "items"), i);
            if string(item, "key").is_empty() {
                errs.push(required(&child(&item_path, "key"), ""));
            }
            local_path(string(item, "path"), &child(&item_path, "path"), errs);
        }
    }
    for (i, projection) in list(&volume["projected"], "sources").iter().enumerate() {
        let projection_path = index(&child(&child(path, "projected"), "sources"), i);
        let kinds =
            ["secret", "downwardAPI", "configMap", "serviceAccountToken", "clusterTrustBundle"]
                .into_iter()
                .filter(|k| is_set(projection, k))
                .count();
        if kinds != 1 {
            errs.push(forbidden(
                &projection_path,
                "may not specify more than 1 volume type per source",
            ));
        }
        if let Some(token) = projection.get("serviceAccountToken")
            && string(token, "path").is_empty()
        {
            errs.push(required(
                &child(&child(&projection_path, "serviceAccountToken"), "path"),
                "",
            ));
        }
    }
}

fn file_mode(mode: i64, path: &str, errs: &mut Vec<Cause>) {
    if !(0..=0o777).contains(&mode) {
        errs.push(invalid(
            path,
            &Value::from(mode),
            "must be a number between 0 and 0777 (octal), both inclusive",
        ));
    }
}

/// `validateLocalDescendingPath`: relative, without `..` elements.
fn local_path(target: &str, path: &str, errs: &mut Vec<Cause>) {
    if target.is_empty() {
        errs.push(required(path, ""));
        return;
    }
    if target.starts_with('/') {
        errs.push(invalid_str(path, target, "must be a relative path"));
    }
    if target.split('/').any(|part| part == "..") {
        errs.push(invalid_str(path, target, "must not contain '..'"));
    }
}

fn container(
    c: &Value,
    path: &str,
    volumes: &HashSet<&str>,
    names: &mut HashSet<String>,
    host_network: bool,
    errs: &mut Vec<Cause>,
) {
    let name = string(c, "name");
    let name_path = child(path, "name");
    if name.is_empty() {
        errs.push(required(&name_path, ""));
    } else {
        for msg in names::dns1123_label_errors(name) {
            errs.push(invalid_str(&name_path, name, &msg));
        }
        if !names.insert(name.to_owned()) {
            errs.push(duplicate(&name_path, &Value::from(name)));
        }
    }
    let image = string(c, "image");
    if image.is_empty() {
        errs.push(required(&child(path, "image"), ""));
    } else if image.trim() != image {
        errs.push(invalid_str(
            &child(path, "image"),
            image,
            "must not have leading or trailing whitespace",
        ));
    }
    one_of(
        c,
        "imagePullPolicy",
        &child(path, "imagePullPolicy"),
        &["Always", "IfNotPresent", "Never"],
        true,
        errs,
    );
    one_of(
        c,
        "terminationMessagePolicy",
        &child(path, "terminationMessagePolicy"),
        &["File", "FallbackToLogsOnError"],
        true,
        errs,
    );
    container_ports(list(c, "ports"), &child(path, "ports"), host_network, errs);
    env(list(c, "env"), &child(path, "env"), errs);
    for (i, source) in list(c, "envFrom").iter().enumerate() {
        let source_path = index(&child(path, "envFrom"), i);
        let kinds = ["configMapRef", "secretRef"].into_iter().filter(|k| is_set(source, k)).count();
        if kinds == 0 {
            errs.push(invalid(
                &source_path,
                &Value::from(""),
                "must specify one of: `configMapRef` or `secretRef`",
            ));
        } else if kinds > 1 {
            errs.push(invalid(
                &source_path,
                &Value::from(""),
                "may not have more than one field specified at a time",
            ));
        }
    }
    volume_mounts(list(c, "volumeMounts"), &child(path, "volumeMounts"), volumes, errs);
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(p) = c.get(probe).filter(|p| p.is_object()) {
            self::probe(p, &child(path, probe), errs);
        }
    }
    for hook in ["postStart", "preStop"] {
        if let Some(h) = c["lifecycle"].get(hook).filter(|h| h.is_object()) {
            handler(
                h,
                &child(&child(path, "lifecycle"), hook),
                &["exec", "httpGet", "tcpSocket", "sleep"],
                errs,
            );
        }
    }
    resources(&c["resources"], &child(path, "resources"), errs);
    security_context_ids(&c["securityContext"], &child(path, "securityContext"), errs);
}

/// Init containers: only sidecars (`restartPolicy: Always`) may have probes and hooks.
fn init_container_rules(c: &Value, path: &str, errs: &mut Vec<Cause>) {
    match c.get("restartPolicy").and_then(Value::as_str) {
        Some("Always") => return,
        Some(other) => errs.push(not_supported(
            &child(path, "restartPolicy"),
            &Value::from(other),
            &["Always"],
        )),
        None => {}
    }
    for field in ["lifecycle", "livenessProbe", "readinessProbe", "startupProbe"] {
        if is_set(c, field) {
            errs.push(forbidden(
                &child(path, field),
                "may not be set for init containers without restartPolicy=Always",
            ));
        }
    }
}

fn container_ports(ports: &[Value], path: &str, host_network: bool, errs: &mut Vec<Cause>) {
    let mut names = HashSet::new();
    for (i, port) in ports.iter().enumerate() {
        let path = index(path, i);
        let name = string(port, "name");
        if !name.is_empty() {
            let problems = names::port_name_errors(name);
            for msg in &problems {
                errs.push(invalid_str(&child(&path, "name"), name, msg));
            }
            if problems.is_empty() && !names.insert(name) {
                errs.push(duplicate(&child(&path, "name"), &Value::from(name)));
            }
        }
        let container_port = port["containerPort"].as_i64().unwrap_or(0);
        if container_port == 0 {
            errs.push(required(&child(&path, "containerPort"), ""));
        } else if let Some(msg) = names::port_number_error(container_port) {
            errs.push(invalid(&child(&path, "containerPort"), &Value::from(container_port), msg));
        }
        let host_port = port["hostPort"].as_i64().unwrap_or(0);
        if host_port != 0
            && let Some(msg) = names::port_number_error(host_port)
        {
            errs.push(invalid(&child(&path, "hostPort"), &Value::from(host_port), msg));
        }
        if host_network && host_port != container_port && host_port != 0 {
            errs.push(invalid(
                &child(&path, "hostPort"),
                &Value::from(host_port),
                "must match `containerPort` when `hostNetwork` is true",
            ));
        }
        one_of(port, "protocol", &child(&path, "protocol"), PROTOCOLS, true, errs);
    }
}

/// Host ports may be claimed once per protocol and address across all containers.
fn host_ports(spec: &Value, path: &str, errs: &mut Vec<Cause>) {
    let mut seen = HashSet::new();
    for field in ["initContainers", "containers"] {
        for (i, c) in list(spec, field).iter().enumerate() {
            for (j, port) in list(c, "ports").iter().enumerate() {
                let host_port = port["hostPort"].as_i64().unwrap_or(0);
                if host_port == 0 {
                    continue;
                }
                let key =
                    format!("{}/{host_port}/{}", string(port, "hostIP"), string(port, "protocol"));
                if !seen.insert(key) {
                    let at = child(
                        &index(&child(&index(&child(path, field), i), "ports"), j),
                        "hostPort",
                    );
                    let shown = format!("{host_port}/{}", string(port, "protocol"));
                    errs.push(duplicate(&at, &Value::from(shown)));
                }
            }
        }
    }
}

fn env(vars: &[Value], path: &str, errs: &mut Vec<Cause>) {
    for (i, var) in vars.iter().enumerate() {
        let path = index(path, i);
        let name = string(var, "name");
        if name.is_empty() {
            errs.push(required(&child(&path, "name"), ""));
        } else if let Some(msg) = names::env_var_name_error(name) {
            errs.push(invalid_str(&child(&path, "name"), name, msg));
        }
        let Some(from) = var.get("valueFrom").filter(|v| v.is_object()) else { continue };
        let from_path = child(&path, "valueFrom");
        let sources: Vec<&str> =
            ["fieldRef", "resourceFieldRef", "configMapKeyRef", "secretKeyRef"]
                .into_iter()
                .filter(|k| is_set(from, k))
                .collect();
        if sources.is_empty() {
            errs.push(invalid(
                &from_path,
                &Value::from(""),
                "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`",
            ));
        } else if !string(var, "value").is_empty() {
            errs.push(invalid(
                &from_path,
                &Value::from(""),
                "may not be specified when `value` is not empty",
            ));
        } else if sources.len() > 1 {
            errs.push(invalid(
                &from_path,
                &Value::from(""),
                "may not have more than one field specified at a time",
            ));
        }
        if let Some(field_ref) = from.get("fieldRef").filter(|f| f.is_object()) {
            let field_path = string(field_ref, "fieldPath");
            let at = child(&child(&from_path, "fieldRef"), "fieldPath");
            if field_path.is_empty() {
                errs.push(required(&at, ""));
            } else if !FIELD_REF_PATHS.contains(&field_path)
                && !field_path.starts_with("metadata.labels[")
                && !field_path.starts_with("metadata.annotations[")
                && !matches!(field_path, "metadata.labels" | "metadata.annotations")
            {
                let mut supported = vec!["metadata.annotations", "metadata.labels"];
                supported.extend(FIELD_REF_PATHS);
                errs.push(not_supported(&at, &Value::from(field_path), &supported));
            }
        }
        if let Some(resource_ref) = from.get("resourceFieldRef").filter(|f| f.is_object())
            && string(resource_ref, "resource").is_empty()
        {
            errs.push(required(&child(&child(&from_path, "resourceFieldRef"), "resource"), ""));
        }
        for source in ["configMapKeyRef", "secretKeyRef"] {
            if let Some(reference) = from.get(source).filter(|f| f.is_object()) {
                let at = child(&from_path, source);
                if string(reference, "name").is_empty() {
                    errs.push(required(&child(&at, "name"), ""));
                }
                let key = string(reference, "key");
                if key.is_empty() {
                    errs.push(required(&child(&at, "key"), ""));
                } else {
                    for msg in names::config_key_errors(key) {
                        errs.push(invalid_str(&child(&at, "key"), key, &msg));
                    }
                }
            }
        }
    }
}

fn volume_mounts(mounts: &[Value], path: &str, volumes: &HashSet<&str>, errs: &mut Vec<Cause>) {
    let mut mount_paths = HashSet::new();
    for (i, mount) in mounts.iter().enumerate() {
        let path = index(path, i);
        let name = string(mount, "name");
        if name.is_empty() {
            errs.push(required(&child(&path, "name"), ""));
        }
        if !volumes.contains(name) {
            errs.push(not_found(&child(&path, "name"), &Value::from(name)));
        }
        let mount_path = string(mount, "mountPath");
        if mount_path.is_empty() {
            errs.push(required(&child(&path, "mountPath"), ""));
        }
        if !mount_paths.insert(mount_path) {
            errs.push(invalid_str(&child(&path, "mountPath"), mount_path, "must be unique"));
        }
        let sub_path = string(mount, "subPath");
        if !sub_path.is_empty() {
            local_path(sub_path, &child(&path, "subPath"), errs);
        }
    }
}

fn probe(probe: &Value, path: &str, errs: &mut Vec<Cause>) {
    handler(probe, path, &["exec", "httpGet", "tcpSocket", "grpc"], errs);
    for field in [
        "initialDelaySeconds",
        "timeoutSeconds",
        "periodSeconds",
        "successThreshold",
        "failureThreshold",
    ] {
        nonnegative(probe, field, &child(path, field), errs);
    }
    if let Some(grace) = probe.get("terminationGracePeriodSeconds").and_then(Value::as_i64)
        && grace <= 0
    {
        errs.push(invalid(
            &child(path, "terminationGracePeriodSeconds"),
            &Value::from(grace),
            "must be greater than 0",
        ));
    }
}

/// A probe or lifecycle hook names exactly one handler, and that handler is well formed.
fn handler(object: &Value, path: &str, kinds: &[&str], errs: &mut Vec<Cause>) {
    let present: Vec<&str> = kinds.iter().copied().filter(|k| is_set(object, k)).collect();
    match present.as_slice() {
        [] => errs.push(required(path, "must specify a handler type")),
        [_, extra @ ..] => {
            for kind in extra {
                errs.push(forbidden(
                    &child(path, kind),
                    "may not specify more than 1 handler type",
                ));
            }
        }
    }
    if let Some(exec) = object.get("exec").filter(|e| e.is_object())
        && list(exec, "command").is_empty()
    {
        errs.push(required(&child(&child(path, "exec"), "command"), ""));
    }
    if let Some(http) = object.get("httpGet").filter(|h| h.is_object()) {
        let http_path = child(path, "httpGet");
        port_num_or_name(&http["port"], &child(&http_path, "port"), errs);
        one_of(http, "scheme", &child(&http_path, "scheme"), &["HTTP", "HTTPS"], false, errs);
        for (i, header) in list(http, "httpHeaders").iter().enumerate() {
            let name = string(header, "name");
            if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
                errs.push(invalid_str(
                    &child(&index(&child(&http_path, "httpHeaders"), i), "name"),
                    name,
                    "a valid HTTP header must consist of alphanumeric characters or '-' (e.g. 'X-Header-Name',  regex used for validation is '[-A-Za-z0-9]+')",
                ));
            }
        }
    }
    if let Some(tcp) = object.get("tcpSocket").filter(|t| t.is_object()) {
        port_num_or_name(&tcp["port"], &child(&child(path, "tcpSocket"), "port"), errs);
    }
    if let Some(grpc) = object.get("grpc").filter(|g| g.is_object()) {
        let port = grpc["port"].as_i64().unwrap_or(0);
        if let Some(msg) = names::port_number_error(port) {
            errs.push(invalid(&child(&child(path, "grpc"), "port"), &Value::from(port), msg));
        }
    }
    if let Some(seconds) = object["sleep"]["seconds"].as_i64()
        && seconds < 0
    {
        errs.push(invalid(
            &child(&child(path, "sleep"), "seconds"),
            &Value::from(seconds),
            "must be non-negative",
        ));
    }
}

/// A quantity string that parses and is not negative.
fn quantity(text: &str, path: &str, errs: &mut Vec<Cause>) -> Option<i128> {
    match parse_millis(text) {
        None => {
            errs.push(invalid_str(
                path,
                text,
                "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
            ));
            None
        }
        Some(m) if m < 0 => {
            errs.push(invalid_str(path, text, "must be greater than or equal to 0"));
            None
        }
        Some(m) => Some(m),
    }
}

fn is_standard_container_resource(name: &str) -> bool {
    matches!(name, "cpu" | "memory" | "ephemeral-storage") || name.starts_with("hugepages-")
}

/// `ValidateContainerResourceRequirements`: names, quantities, requests ≤ limits.
pub(super) fn resources(resources: &Value, path: &str, errs: &mut Vec<Cause>) {
    let limits_path = child(path, "limits");
    let requests_path = child(path, "requests");
    let mut limits = Vec::new();
    for (name, q) in map(resources, "limits").into_iter().flatten() {
        let at = key(&limits_path, name);
        resource_name(name, &at, errs);
        if let Some(m) = q.as_str().and_then(|q| quantity(q, &at, errs)) {
            limits.push((name.as_str(), m, q.as_str().unwrap_or_default()));
        }
    }
    for (name, q) in map(resources, "requests").into_iter().flatten() {
        let at = key(&requests_path, name);
        resource_name(name, &at, errs);
        let Some(text) = q.as_str() else { continue };
        let Some(request) = quantity(text, &at, errs) else { continue };
        let overcommit = !name.starts_with("hugepages-") && is_standard_container_resource(name);
        match limits.iter().find(|(n, _, _)| *n == name) {
            Some((_, limit, limit_text)) if !overcommit && request != *limit => {
                errs.push(invalid_str(
                    &requests_path,
                    text,
                    &format!("must be equal to {name} limit of {limit_text}"),
                ))
            }
            Some((_, limit, limit_text)) if request > *limit => errs.push(invalid_str(
                &requests_path,
                text,
                &format!("must be less than or equal to {name} limit of {limit_text}"),
            )),
            None if !overcommit => errs
                .push(required(&limits_path, "Limit must be set for non overcommitable resources")),
            _ => {}
        }
    }
}

fn resource_name(name: &str, path: &str, errs: &mut Vec<Cause>) {
    if name.contains('/') {
        label_name(name, path, errs);
    } else if !is_standard_container_resource(name) {
        errs.push(invalid_str(path, name, "must be a standard resource for containers"));
    }
}

/// `ValidateTolerations`.
fn tolerations(tolerations: &[Value], path: &str, errs: &mut Vec<Cause>) {
    for (i, t) in tolerations.iter().enumerate() {
        let path = index(path, i);
        let key = string(t, "key");
        let operator = string(t, "operator");
        if !key.is_empty() {
            label_name(key, &child(&path, "key"), errs);
        }
        if key.is_empty() && operator != "Exists" {
            errs.push(invalid_str(
                &child(&path, "operator"),
                operator,
                "operator must be Exists when `key` is empty, which means \"match all values and all keys\"",
            ));
        }
        if is_set(t, "tolerationSeconds") && string(t, "effect") != "NoExecute" {
            errs.push(invalid_str(
                &child(&path, "effect"),
                string(t, "effect"),
                "effect must be 'NoExecute' when `tolerationSeconds` is set",
            ));
        }
        let value = string(t, "value");
        match operator {
            "Equal" | "" => {
                let problems = crate::selector::label_value_errors(value);
                if !problems.is_empty() {
                    errs.push(invalid_str(&child(&path, "operator"), value, &problems.join(";")));
                }
            }
            "Exists" => {
                if !value.is_empty() {
                    errs.push(invalid(
                        &child(&path, "operator"),
                        t,
                        "value must be empty when `operator` is 'Exists'",
                    ));
                }
            }
            other => errs.push(not_supported(
                &child(&path, "operator"),
                &Value::from(other),
                &["Equal", "Exists"],
            )),
        }
        one_of(t, "effect", &child(&path, "effect"), TAINT_EFFECTS, false, errs);
    }
}

fn topology_spread(constraints: &[Value], path: &str, errs: &mut Vec<Cause>) {
    for (i, c) in constraints.iter().enumerate() {
        let path = index(path, i);
        if let Some(skew) = c["maxSkew"].as_i64()
            && skew <= 0
        {
            errs.push(invalid(
                &child(&path, "maxSkew"),
                &Value::from(skew),
                "must be greater than zero",
            ));
        }
        let topology_key = string(c, "topologyKey");
        if topology_key.is_empty() {
            errs.push(required(&child(&path, "topologyKey"), "can not be empty"));
        } else {
            label_name(topology_key, &child(&path, "topologyKey"), errs);
        }
        one_of(
            c,
            "whenUnsatisfiable",
            &child(&path, "whenUnsatisfiable"),
            &["DoNotSchedule", "ScheduleAnyway"],
            true,
            errs,
        );
        if let Some(selector) = c.get("labelSelector").filter(|s| s.is_object()) {
            super::meta::label_selector(selector, &child(&path, "labelSelector"), errs);
        }
    }
}

fn affinity(affinity: &Value, path: &str, errs: &mut Vec<Cause>) {
    let node = &affinity["nodeAffinity"];
    let required_path =
        child(&child(path, "nodeAffinity"), "requiredDuringSchedulingIgnoredDuringExecution");
    if let Some(required_terms) =
        node.get("requiredDuringSchedulingIgnoredDuringExecution").filter(|r| r.is_object())
    {
        let terms = list(required_terms, "nodeSelectorTerms");
        let terms_path = child(&required_path, "nodeSelectorTerms");
        if terms.is_empty() {
            errs.push(required(&terms_path, "must have at least one node selector term"));
        }
        for (i, term) in terms.iter().enumerate() {
            node_selector_term(term, &index(&terms_path, i), errs);
        }
    }
    let preferred_path =
        child(&child(path, "nodeAffinity"), "preferredDuringSchedulingIgnoredDuringExecution");
    for (i, preferred) in
        list(node, "preferredDuringSchedulingIgnoredDuringExecution").iter().enumerate()
    {
        let path = index(&preferred_path, i);
        if let Some(weight) = preferred["weight"].as_i64()
            && !(1..=100).contains(&weight)
        {
            errs.push(invalid(
                &child(&path, "weight"),
                &Value::from(weight),
                "must be in the range 1-100",
            ));
        }
        node_selector_term(&preferred["preference"], &child(&path, "preference"), errs);
    }
    for kind in ["podAffinity", "podAntiAffinity"] {
        let kind_path = child(path, kind);
        let required_path = child(&kind_path, "requiredDuringSchedulingIgnoredDuringExecution");
        for (i, term) in list(&affinity[kind], "requiredDuringSchedulingIgnoredDuringExecution")
            .iter()
            .enumerate()
        {
            pod_affinity_term(term, &index(&required_path, i), errs);
        }
        let preferred_path = child(&kind_path, "preferredDuringSchedulingIgnoredDuringExecution");
        for (i, weighted) in
            list(&affinity[kind], "preferredDuringSchedulingIgnoredDuringExecution")
                .iter()
                .enumerate()
        {
            let path = index(&preferred_path, i);
            if let Some(weight) = weighted["weight"].as_i64()
                && !(1..=100).contains(&weight)
            {
                errs.push(invalid(
                    &child(&path, "weight"),
                    &Value::from(weight),
                    "must be in the range 1-100",
                ));
            }
            pod_affinity_term(&weighted["podAffinityTerm"], &child(&path, "podAffinityTerm"), errs);
        }
    }
}

fn node_selector_term(term: &Value, path: &str, errs: &mut Vec<Cause>) {
    for (i, requirement) in list(term, "matchExpressions").iter().enumerate() {
        let path = index(&child(path, "matchExpressions"), i);
        let values = list(requirement, "values");
        match string(requirement, "operator") {
            "In" | "NotIn" if values.is_empty() => errs.push(required(
                &child(&path, "values"),
                "must be specified when `operator` is 'In' or 'NotIn'",
            )),
            "Exists" | "DoesNotExist" if !values.is_empty() => errs.push(forbidden(
                &child(&path, "values"),
                "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
            )),
            "Gt" | "Lt" if values.len() != 1 => errs.push(required(
                &child(&path, "values"),
                "must be specified single value when `operator` is 'Lt' or 'Gt'",
            )),
            "In" | "NotIn" | "Exists" | "DoesNotExist" | "Gt" | "Lt" => {}
            other => errs.push(invalid_str(
                &child(&path, "operator"),
                other,
                "not a valid selector operator",
            )),
        }
        label_name(string(requirement, "key"), &child(&path, "key"), errs);
    }
}

fn pod_affinity_term(term: &Value, path: &str, errs: &mut Vec<Cause>) {
    let topology_key = string(term, "topologyKey");
    if topology_key.is_empty() {
        errs.push(required(&child(path, "topologyKey"), "can not be empty"));
    } else {
        label_name(topology_key, &child(path, "topologyKey"), errs);
    }
    if let Some(selector) = term.get("labelSelector").filter(|s| s.is_object()) {
        super::meta::label_selector(selector, &child(path, "labelSelector"), errs);
    }
    for (i, namespace) in list(term, "namespaces").iter().enumerate() {
        let namespace = namespace.as_str().unwrap_or_default();
        for msg in names::dns1123_label_errors(namespace) {
            errs.push(invalid_str(&index(&child(path, "namespaces"), i), namespace, &msg));
        }
    }
}

/// `ValidatePodUpdate`: only images, activeDeadlineSeconds, added tolerations and the grace
/// period may change in a pod's spec.
pub(super) fn pod_update(old: &Value, new: &Value, errs: &mut Vec<Cause>) {
    let (old_spec, new_spec) = (&old["spec"], &new["spec"]);
    let mut munged = new_spec.clone();
    for field in ["containers", "initContainers"] {
        let (old_list, new_list) = (list(old_spec, field), list(new_spec, field));
        if old_list.len() == new_list.len() {
            for (i, old_container) in old_list.iter().enumerate() {
                munged[field][i]["image"] = old_container["image"].clone();
            }
        }
    }
    match (old_spec["activeDeadlineSeconds"].as_i64(), new_spec["activeDeadlineSeconds"].as_i64()) {
        (Some(_), None) => errs.push(invalid(
            "spec.activeDeadlineSeconds",
            &Value::Null,
            "must not update from a positive integer to nil value",
        )),
        (Some(before), Some(after)) if after > before => errs.push(invalid(
            "spec.activeDeadlineSeconds",
            &Value::from(after),
            "must be less than or equal to previous value",
        )),
        _ => {}
    }
    copy_field(old_spec, &mut munged, "activeDeadlineSeconds");
    copy_field(old_spec, &mut munged, "terminationGracePeriodSeconds");
    only_added_tolerations(list(old_spec, "tolerations"), list(new_spec, "tolerations"), errs);
    copy_field(old_spec, &mut munged, "tolerations");
    // Scheduling gates may only be removed.
    let old_gates = list(old_spec, "schedulingGates");
    if list(new_spec, "schedulingGates").iter().all(|g| old_gates.contains(g)) {
        copy_field(old_spec, &mut munged, "schedulingGates");
    }
    if !semantically_equal(&munged, old_spec) {
        errs.push(forbidden(
            "spec",
            &format!("pod updates may not change fields other than {UPDATABLE_POD_FIELDS}"),
        ));
    }
}

fn copy_field(from: &Value, to: &mut Value, field: &str) {
    let Some(to) = to.as_object_mut() else { return };
    match from.get(field) {
        Some(v) => to.insert(field.to_owned(), v.clone()),
        None => to.remove(field),
    };
}

/// Every old toleration is still there (its tolerationSeconds may shrink).
fn only_added_tolerations(old: &[Value], new: &[Value], errs: &mut Vec<Cause>) {
    for toleration in old {
        let without_seconds = |t: &Value| {
            let mut t = t.clone();
            if let Some(map) = t.as_object_mut() {
                map.remove("tolerationSeconds");
            }
            t
        };
        let kept = new.iter().any(|n| {
            n == toleration
                || (without_seconds(n) == without_seconds(toleration)
                    && match (
                        n["tolerationSeconds"].as_i64(),
                        toleration["tolerationSeconds"].as_i64(),
                    ) {
                        (Some(after), Some(before)) => after <= before,
                        _ => false,
                    })
        });
        if !kept {
            errs.push(forbidden(
                "spec.tolerations",
                "existing toleration can not be modified except its tolerationSeconds",
            ));
            return;
        }
    }
}
