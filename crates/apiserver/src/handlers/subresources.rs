//! Subresources with their own semantics: `scale` (read and write replicas through an
//! autoscaling/v1 Scale), `pods/binding` (the scheduler's decision) and `pods/eviction`
//! (deletion that honours PodDisruptionBudgets).

use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::Response;
use capstan_api::selector::LabelSelector;
use capstan_store::StoreError;
use serde_json::{Value, json};

use super::read::scale_of;
use super::write::{
    Patch, current_for_update, decode, delete_one, delete_options_from, dry_run, encode,
    record_update, with_revision,
};
use super::{Request, value_response};
use crate::ApiServer;
use crate::objects::{self, metadata_mut, now_rfc3339};
use crate::status::{ApiError, ApiResult, from_store};

fn success(details: Value) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201, "details": details})
}

/// Whether a subresource write records its change in the object's managedFields.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Fields {
    Recorded,
    /// Written straight to storage, as upstream's binding is: no manager owns a pod's node.
    Untracked,
}

/// Reads the object, lets `change` edit it, and writes it back with compare-and-swap, retrying
/// lost races unless the client pinned a resourceVersion.
async fn modify(
    server: &Arc<ApiServer>,
    request: &Request,
    precondition: Option<i64>,
    fields: Fields,
    mut change: impl FnMut(&mut Value) -> ApiResult<()>,
) -> ApiResult<Value> {
    let t = &request.target;
    let resource = t.resource;
    let name = t.name.clone().unwrap_or_default();
    let key = resource.key(t.namespace.as_deref(), &name);
    let store_error = |e| from_store(e, resource.group, resource.plural, &name);
    let mut from_cache = true;
    loop {
        let current = current_for_update(server, request, precondition, from_cache).await?;
        // A refusal or a no-op seen on the cached copy is confirmed against the store.
        let cached = std::mem::replace(&mut from_cache, false);
        let old = decode(&current)?;
        let mut new = old.clone();
        if let Err(error) = change(&mut new) {
            if cached {
                continue;
            }
            return Err(error);
        }
        if new == old {
            if cached {
                continue;
            }
            return Ok(new);
        }
        if fields == Fields::Recorded {
            record_update(request, &old, &mut new);
        }
        if dry_run(request)? {
            return Ok(new);
        }
        match server.store.update(&key, encode(&mut new)?, current.mod_revision).await {
            Ok(kv) => return Ok(with_revision(new, &kv)),
            Err(StoreError::Conflict { .. }) if precondition.is_none() => continue,
            Err(e) => return Err(store_error(e)),
        }
    }
}

fn precondition(body: &Value) -> ApiResult<Option<i64>> {
    body["metadata"]["resourceVersion"]
        .as_str()
        .filter(|rv| !rv.is_empty())
        .map(|rv| {
            rv.parse::<i64>()
                .map_err(|_| ApiError::bad_request(format!("invalid resourceVersion {rv:?}")))
        })
        .transpose()
}

/// The replicas an autoscaling/v1 Scale asks for, checked.
fn wanted_replicas(scale: &Value, name: &str) -> ApiResult<i64> {
    if let Some(kind) = scale.get("kind").and_then(Value::as_str)
        && kind != "Scale"
    {
        return Err(ApiError::bad_request(format!(
            "the kind in the data ({kind}) does not match the expected kind (Scale)"
        )));
    }
    match scale["spec"]["replicas"].as_i64() {
        Some(r) if (0..=i64::from(i32::MAX)).contains(&r) => Ok(r),
        _ => Err(ApiError::invalid(
            "autoscaling",
            "Scale",
            name,
            vec![(
                "spec.replicas".into(),
                "FieldValueInvalid".into(),
                "Invalid value: must be greater than or equal to 0".into(),
            )],
        )),
    }
}

fn set_replicas(resource: &capstan_api::Resource, object: &mut Value, replicas: i64) {
    if object["spec"]["replicas"].as_i64() != Some(replicas) {
        object["spec"]["replicas"] = json!(replicas);
        if objects::tracks_generation(resource) {
            let generation = object["metadata"]["generation"].as_i64().unwrap_or(0) + 1;
            metadata_mut(object).insert("generation".into(), json!(generation));
        }
    }
}

/// PUT `…/scale`: sets `spec.replicas` from an autoscaling/v1 Scale.
pub async fn update_scale(server: &Arc<ApiServer>, request: &Request) -> ApiResult<Response> {
    let body = request.json_body()?;
    let resource = request.target.resource;
    let name = request.target.name.clone().unwrap_or_default();
    let replicas = wanted_replicas(&body, &name)?;
    let updated = modify(server, request, precondition(&body)?, Fields::Recorded, |object| {
        set_replicas(resource, object, replicas);
        Ok(())
    })
    .await?;
    Ok(value_response(StatusCode::OK, &scale_of(&updated)))
}

/// PATCH `…/scale` (what `kubectl scale` sends): the patch applies to the Scale view.
pub async fn patch_scale(
    server: &Arc<ApiServer>,
    request: &Request,
    patch: &Patch,
) -> ApiResult<Response> {
    let resource = request.target.resource;
    let name = request.target.name.clone().unwrap_or_default();
    let updated = modify(server, request, None, Fields::Recorded, |object| {
        let scale = patch.apply(scale_of(object))?;
        let replicas = wanted_replicas(&scale, &name)?;
        set_replicas(resource, object, replicas);
        Ok(())
    })
    .await?;
    Ok(value_response(StatusCode::OK, &scale_of(&updated)))
}

/// POST `pods/<name>/binding`: assigns the pod to a node, once.
pub async fn bind(server: &Arc<ApiServer>, request: &Request) -> ApiResult<Response> {
    let body = request.json_body()?;
    let name = request.target.name.clone().unwrap_or_default();
    let Some(node) = body["target"]["name"].as_str().filter(|n| !n.is_empty()).map(str::to_owned)
    else {
        return Err(ApiError::invalid(
            "",
            "Binding",
            &name,
            vec![("target.name".into(), "FieldValueRequired".into(), "Required value".into())],
        ));
    };
    modify(server, request, None, Fields::Untracked, |pod| {
        if pod["metadata"].get("deletionTimestamp").is_some_and(|t| !t.is_null()) {
            return Err(ApiError::conflict("", "pods", &name, "pod is being deleted, cannot be assigned to a host"));
        }
        match pod["spec"]["nodeName"].as_str().filter(|n| !n.is_empty()) {
            Some(current) => Err(ApiError::conflict("", "pods", &name, &format!("pod {name} is already assigned to node \"{current}\""))),
            None => {
                pod["spec"]["nodeName"] = json!(node);
                let mut conditions: Vec<Value> = pod["status"]["conditions"].as_array().cloned().unwrap_or_default();
                conditions.retain(|c| c["type"] != "PodScheduled");
                conditions.push(json!({"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": now_rfc3339()}));
                pod["status"]["conditions"] = Value::Array(conditions);
                Ok(())
            }
        }
    })
    .await?;
    Ok(value_response(StatusCode::CREATED, &success(json!({"name": name, "kind": "pods"}))))
}

/// POST `pods/<name>/eviction`: deletes the pod unless a PodDisruptionBudget selecting it
/// allows no disruption now (429, as upstream). An allowed eviction spends one disruption in
/// the budget's status at once, so concurrent evictions cannot overrun it before the
/// disruption controller recounts.
pub async fn evict(server: &Arc<ApiServer>, request: &Request) -> ApiResult<Response> {
    let body = request.json_body()?;
    let t = &request.target;
    let name = t.name.clone().unwrap_or_default();
    let namespace = t.namespace.clone().unwrap_or_default();
    let key = t.resource.key(Some(&namespace), &name);
    let pod = server
        .store
        .get(&key)
        .await
        .map_err(|e| from_store(e, "", "pods", &name))?
        .ok_or_else(|| ApiError::not_found("", "pods", &name))?;
    let pod = decode(&pod)?;
    let dry_run = dry_run(request)?;
    // Upstream lets pods that are not running, or already going, leave without a budget.
    let terminating = pod["metadata"].get("deletionTimestamp").is_some_and(|t| !t.is_null());
    let running = pod["status"]["phase"].as_str() == Some("Running");
    if running && !terminating {
        let labels = pod["metadata"]["labels"].as_object().cloned().unwrap_or_default();
        let pdbs = capstan_api::registry::find("policy", "v1", "poddisruptionbudgets")
            .expect("pdbs are served");
        server.cache.sync().await.map_err(|e| ApiError::timeout(e.to_string()))?;
        let selecting: Vec<String> = server
            .cache_for(pdbs)?
            .range(&pdbs.namespace_prefix(&namespace), None)
            .into_iter()
            .filter(|pdb| {
                LabelSelector::from_label_selector_json(&pdb.value()["spec"]["selector"])
                    .is_ok_and(|s| s.matches(&labels))
            })
            .map(|pdb| pdb.key.to_string())
            .collect();
        if selecting.len() > 1 {
            return Err(ApiError::internal(
                "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.",
            ));
        }
        if let Some(pdb_key) = selecting.first() {
            spend_disruption(server, pdb_key, &name, &pod, dry_run).await?;
        }
    }
    let options = delete_options_from(request, body.get("deleteOptions").unwrap_or(&Value::Null))?;
    delete_one(server, t.resource, &key, &name, &options, dry_run).await?;
    Ok(value_response(StatusCode::CREATED, &success(json!({"name": name, "kind": "pods"}))))
}

fn is_ready(pod: &Value) -> bool {
    pod["status"]["conditions"]
        .as_array()
        .is_some_and(|c| c.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"))
}

/// Takes one allowed disruption from the budget (compare-and-swap), or refuses with 429. An
/// unready pod may go without one while the budget is met (upstream's IfHealthyBudget).
async fn spend_disruption(
    server: &Arc<ApiServer>,
    pdb_key: &str,
    pod_name: &str,
    pod: &Value,
    dry_run: bool,
) -> ApiResult<()> {
    loop {
        let Some(current) = server
            .store
            .get(pdb_key)
            .await
            .map_err(|e| from_store(e, "policy", "poddisruptionbudgets", pod_name))?
        else {
            return Ok(());
        };
        let mut pdb = decode(&current)?;
        let status = &pdb["status"];
        let healthy = status["currentHealthy"].as_i64().unwrap_or(0);
        let desired = status["desiredHealthy"].as_i64().unwrap_or(0);
        if !is_ready(pod) && status.get("observedGeneration").is_some() && healthy >= desired {
            return Ok(());
        }
        let allowed = status["disruptionsAllowed"].as_i64().unwrap_or(0);
        if allowed < 1 {
            let mut e = ApiError::too_many_requests(
                "Cannot evict pod as it would violate the pod's disruption budget.",
            );
            e.details = Some(json!({"causes": [{"reason": "DisruptionBudget", "message": format!(
                "The disruption budget {} needs {desired} healthy pods and has {healthy} currently",
                pdb["metadata"]["name"].as_str().unwrap_or_default()
            )}]}));
            return Err(e);
        }
        if dry_run {
            return Ok(());
        }
        pdb["status"]["disruptionsAllowed"] = json!(allowed - 1);
        pdb["status"]["disruptedPods"][pod_name] = json!(now_rfc3339());
        match server.store.update(pdb_key, encode(&mut pdb)?, current.mod_revision).await {
            Ok(_) => return Ok(()),
            Err(StoreError::Conflict { .. }) => continue,
            Err(e) => return Err(from_store(e, "policy", "poddisruptionbudgets", pod_name)),
        }
    }
}

/// Upstream's bounds on a requested token lifetime.
const MIN_TOKEN_SECONDS: i64 = 600;
const MAX_TOKEN_SECONDS: i64 = 48 * 3600;

/// POST `serviceaccounts/<name>/token`: a bound, expiring token for the account.
pub async fn request_token(server: &Arc<ApiServer>, request: &Request) -> ApiResult<Response> {
    let body = request.json_body()?;
    let t = &request.target;
    let namespace = t.namespace.clone().unwrap_or_default();
    let name = t.name.clone().unwrap_or_default();
    let account = server
        .cached("", "serviceaccounts", Some(&namespace), &name)
        .await?
        .ok_or_else(|| ApiError::not_found("", "serviceaccounts", &name))?
        .value();
    let spec = &body["spec"];
    let seconds = spec["expirationSeconds"].as_i64().unwrap_or(3600);
    if seconds < MIN_TOKEN_SECONDS {
        return Err(ApiError::invalid(
            "authentication.k8s.io",
            "TokenRequest",
            &name,
            vec![(
                "spec.expirationSeconds".into(),
                "FieldValueInvalid".into(),
                format!(
                    "Invalid value: {seconds}: may not specify a duration less than 10 minutes"
                ),
            )],
        ));
    }
    let seconds = seconds.min(MAX_TOKEN_SECONDS);
    let audiences: Vec<Value> = match spec["audiences"].as_array() {
        Some(list) if !list.is_empty() => list.clone(),
        _ => vec![json!(crate::tokens::ISSUER)],
    };
    let now = jiff::Timestamp::now().as_second();
    let mut claims = json!({
        "aud": audiences,
        "exp": now + seconds,
        "iat": now,
        "nbf": now,
        "iss": crate::tokens::ISSUER,
        "jti": uuid::Uuid::new_v4().to_string(),
        "sub": format!("system:serviceaccount:{namespace}:{name}"),
        "kubernetes.io": {
            "namespace": namespace,
            "serviceaccount": {"name": name, "uid": account["metadata"]["uid"]},
        },
    });
    let bound = &spec["boundObjectRef"];
    if let Some(kind) = bound["kind"].as_str() {
        let (plural, field) = match kind {
            "Pod" => ("pods", "pod"),
            "Secret" => ("secrets", "secret"),
            other => {
                return Err(ApiError::invalid(
                    "authentication.k8s.io",
                    "TokenRequest",
                    &name,
                    vec![(
                        "spec.boundObjectRef.kind".into(),
                        "FieldValueNotSupported".into(),
                        format!(
                            "Unsupported value: {other:?}: supported values: \"Pod\", \"Secret\""
                        ),
                    )],
                ));
            }
        };
        let bound_name = bound["name"].as_str().unwrap_or_default();
        let object = server
            .cached("", plural, Some(&namespace), bound_name)
            .await?
            .ok_or_else(|| ApiError::not_found("", plural, bound_name))?
            .value();
        let uid = object["metadata"]["uid"].clone();
        if let Some(wanted) = bound["uid"].as_str()
            && uid != wanted
        {
            return Err(ApiError::conflict(
                "",
                plural,
                bound_name,
                "the UID in the bound object reference does not match",
            ));
        }
        claims["kubernetes.io"][field] = json!({"name": bound_name, "uid": uid});
    }
    let token = server
        .tokens
        .sign(&claims)
        .ok_or_else(|| ApiError::internal("signing the token failed"))?;
    let expiration = jiff::Timestamp::from_second(now + seconds)
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default();
    let mut response = body.clone();
    response["apiVersion"] = json!("authentication.k8s.io/v1");
    response["kind"] = json!("TokenRequest");
    response["metadata"] = json!({"name": name, "namespace": namespace, "creationTimestamp": null});
    response["spec"]["audiences"] = json!(claims["aud"]);
    response["spec"]["expirationSeconds"] = json!(seconds);
    response["status"] = json!({"token": token, "expirationTimestamp": expiration});
    Ok(value_response(StatusCode::CREATED, &response))
}

/// A response carrying a scalable object, turned into its autoscaling/v1 Scale (what a write
/// to `…/scale` answers with).
pub async fn as_scale(response: Response) -> ApiResult<Response> {
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .map_err(|e| ApiError::internal(format!("reading the updated object: {e}")))?;
    let object: Value = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::internal(format!("reading the updated object: {e}")))?;
    let mut scale = value_response(parts.status, &scale_of(&object));
    for warning in parts.headers.get_all(axum::http::header::WARNING) {
        scale.headers_mut().append(axum::http::header::WARNING, warning.clone());
    }
    Ok(scale)
}
