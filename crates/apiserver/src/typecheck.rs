//! Type checking of request bodies against upstream's types (k8s-openapi), so a field of the
//! wrong JSON type is a 400 like upstream's decoder gives, not a stored surprise.

use capstan_api::Resource;
use k8s_openapi::api::{
    apps, batch, certificates, coordination, core, discovery, events, policy, rbac, scheduling,
};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::status::{ApiError, ApiResult};

fn decode<T: DeserializeOwned>(object: &Value) -> Result<(), String> {
    T::deserialize(object).map(drop).map_err(|e| e.to_string())
}

/// Checks that `object` decodes as the typed kind `resource` serves.
pub fn check(resource: &Resource, object: &Value) -> ApiResult<()> {
    let result = match (resource.group, resource.kind) {
        ("", "Namespace") => decode::<core::v1::Namespace>(object),
        ("", "Pod") => decode::<core::v1::Pod>(object),
        ("", "Node") => decode::<core::v1::Node>(object),
        ("", "Service") => decode::<core::v1::Service>(object),
        ("", "Endpoints") => decode::<core::v1::Endpoints>(object),
        ("", "ConfigMap") => decode::<core::v1::ConfigMap>(object),
        ("", "Secret") => decode::<core::v1::Secret>(object),
        ("", "ServiceAccount") => decode::<core::v1::ServiceAccount>(object),
        ("", "Event") => decode::<core::v1::Event>(object),
        ("", "ReplicationController") => decode::<core::v1::ReplicationController>(object),
        ("", "PodTemplate") => decode::<core::v1::PodTemplate>(object),
        ("", "ResourceQuota") => decode::<core::v1::ResourceQuota>(object),
        ("", "LimitRange") => decode::<core::v1::LimitRange>(object),
        ("apps", "Deployment") => decode::<apps::v1::Deployment>(object),
        ("apps", "ReplicaSet") => decode::<apps::v1::ReplicaSet>(object),
        ("apps", "StatefulSet") => decode::<apps::v1::StatefulSet>(object),
        ("apps", "DaemonSet") => decode::<apps::v1::DaemonSet>(object),
        ("apps", "ControllerRevision") => decode::<apps::v1::ControllerRevision>(object),
        ("batch", "Job") => decode::<batch::v1::Job>(object),
        ("batch", "CronJob") => decode::<batch::v1::CronJob>(object),
        ("coordination.k8s.io", "Lease") => decode::<coordination::v1::Lease>(object),
        ("discovery.k8s.io", "EndpointSlice") => decode::<discovery::v1::EndpointSlice>(object),
        ("events.k8s.io", "Event") => decode::<events::v1::Event>(object),
        ("scheduling.k8s.io", "PriorityClass") => decode::<scheduling::v1::PriorityClass>(object),
        ("policy", "PodDisruptionBudget") => decode::<policy::v1::PodDisruptionBudget>(object),
        ("certificates.k8s.io", "CertificateSigningRequest") => {
            decode::<certificates::v1::CertificateSigningRequest>(object)
        }
        ("rbac.authorization.k8s.io", "Role") => decode::<rbac::v1::Role>(object),
        ("rbac.authorization.k8s.io", "RoleBinding") => decode::<rbac::v1::RoleBinding>(object),
        ("rbac.authorization.k8s.io", "ClusterRole") => decode::<rbac::v1::ClusterRole>(object),
        ("rbac.authorization.k8s.io", "ClusterRoleBinding") => {
            decode::<rbac::v1::ClusterRoleBinding>(object)
        }
        _ => Ok(()),
    };
    result.map_err(|e| {
        ApiError::bad_request(format!(
            "unable to decode {} {}: {e}",
            resource.api_version(),
            resource.kind
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn wrong_field_types_are_bad_requests() {
        let cm = capstan_api::registry::find("", "v1", "configmaps").unwrap();
        assert!(check(cm, &json!({"metadata": {"name": "x"}, "data": {"a": "b"}})).is_ok());
        let e = check(cm, &json!({"metadata": {"name": "x"}, "data": 5})).unwrap_err();
        assert_eq!(e.code, 400);
        let deploy = capstan_api::registry::find("apps", "v1", "deployments").unwrap();
        let bad = json!({"metadata": {"name": "x"}, "spec": {"replicas": "three", "selector": {}, "template": {}}});
        assert!(check(deploy, &bad).is_err());
    }
}
