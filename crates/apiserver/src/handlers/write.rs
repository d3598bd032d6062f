//! Writes: create, update (PUT, including the status and finalize subresources), delete with
//! preconditions, finalizers, graceful pod deletion and propagation policy, and
//! deletecollection.

use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::Response;
use bytes::Bytes;
use capstan_api::Resource;
use capstan_store::{KeyValue, StoreError};
use serde_json::{Map, Value, json};

use super::read::Filter;
use super::{Request, json_response, value_response};
use crate::ApiServer;
use crate::admission::node_restriction::Verb;
use crate::conversion::{from_storage, to_storage};
use crate::objects::{self, meta_str, metadata_mut};
use crate::status::{ApiError, ApiResult, from_store};

/// Fields of metadata the server owns: a client's values are ignored on update.
const SERVER_OWNED: &[&str] = &[
    "uid",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "generation",
    "namespace",
    "name",
];

/// The stored form of `object`, which loses its resourceVersion (the revision is the
/// resourceVersion; it is never stored in the value) and selfLink.
pub(super) fn encode(object: &mut Value) -> ApiResult<Bytes> {
    if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("resourceVersion");
        meta.remove("selfLink");
    }
    serde_json::to_vec(object).map(Bytes::from).map_err(|e| ApiError::internal(e.to_string()))
}

pub(super) fn decode(kv: &KeyValue) -> ApiResult<Value> {
    let mut object: Value = serde_json::from_slice(&kv.value)
        .map_err(|e| ApiError::internal(format!("stored object {} is corrupt: {e}", kv.key)))?;
    metadata_mut(&mut object).insert("resourceVersion".into(), json!(kv.mod_revision.to_string()));
    Ok(object)
}

/// The response to a write: the stored bytes with the new resourceVersion spliced in, so the
/// object is not encoded a second time (unless its served form converts from storage).
fn written(code: StatusCode, resource: &Resource, object: Value, kv: &KeyValue) -> Response {
    if !crate::conversion::needs_conversion(resource)
        && let Some(bytes) = crate::cache::stamped(&kv.value, kv.mod_revision)
    {
        return json_response(code, bytes);
    }
    value_response(code, &from_storage(resource, with_revision(object, kv)))
}

pub(super) fn with_revision(mut object: Value, kv: &KeyValue) -> Value {
    metadata_mut(&mut object).insert("resourceVersion".into(), json!(kv.mod_revision.to_string()));
    object
}

/// Records in `new`'s managed fields that the request's manager updated `old` into it.
pub(super) fn record_update(request: &Request, old: &Value, new: &mut Value) {
    let t = &request.target;
    let api_version = t.resource.api_version();
    let subresource = t.subresource.as_deref();
    objects::record_managed_fields(
        t.resource,
        Some(old),
        new,
        &manager(request),
        &api_version,
        subresource,
    );
}

pub(super) fn dry_run(request: &Request) -> ApiResult<bool> {
    match request.params.get("dryRun") {
        None => Ok(false),
        Some("All") => Ok(true),
        Some(other) => Err(ApiError::bad_request(format!(
            "dryRun: unsupported value {other:?}: supported values: \"All\""
        ))),
    }
}

pub(super) fn manager(request: &Request) -> String {
    request
        .params
        .get("fieldManager")
        .map(str::to_owned)
        .unwrap_or_else(|| objects::manager_from_user_agent(request.user_agent()))
}

/// Refuses writes into a namespace that does not exist or is being deleted.
async fn check_namespace(
    server: &Arc<ApiServer>,
    resource: &Resource,
    namespace: &str,
) -> ApiResult<()> {
    let found = server.cached("", "namespaces", None, namespace).await?;
    let Some(ns) = found else {
        return Err(ApiError::not_found("", "namespaces", namespace));
    };
    if ns.value()["status"]["phase"] == "Terminating" {
        let mut e = ApiError::forbidden(format!(
            "unable to create new content in namespace {namespace} because it is being terminated"
        ));
        e.details = Some(
            json!({"name": namespace, "kind": resource.plural, "causes": [{"reason": "NamespaceTerminating", "message": format!("namespace {namespace} is being terminated"), "field": "metadata.namespace"}]}),
        );
        return Err(e);
    }
    Ok(())
}

pub async fn create(server: &Arc<ApiServer>, request: &Request) -> ApiResult<Response> {
    create_object(server, request, request.json_body()?, None).await
}

/// Creates `object`. Its managed fields are `applied` when server-side apply creates it, else
/// the creating manager's update.
pub(super) async fn create_object(
    server: &Arc<ApiServer>,
    request: &Request,
    mut object: Value,
    applied: Option<Value>,
) -> ApiResult<Response> {
    let t = &request.target;
    let resource = t.resource;
    objects::check_type(resource, &mut object, resource.kind, &resource.api_version())?;
    let warnings = field_validation(request, resource, &mut object)?;
    crate::typecheck::check(resource, &object)?;
    capstan_api::defaults::apply(resource, &mut object);
    let mut object = to_storage(resource, object);
    let namespace = if resource.namespaced {
        let path_ns = t.namespace.clone().ok_or_else(|| {
            ApiError::method_not_allowed(format!(
                "{} must be created in a namespace",
                resource.plural
            ))
        })?;
        match meta_str(&object, "namespace") {
            Some(ns) if ns != path_ns => {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
            _ => {}
        }
        Some(path_ns)
    } else {
        None
    };
    let name = match (meta_str(&object, "name"), meta_str(&object, "generateName")) {
        (Some(name), _) => name.to_owned(),
        (None, Some(base)) => objects::generate_name(base),
        (None, None) => {
            return Err(ApiError::invalid(
                resource.group,
                resource.kind,
                "",
                vec![(
                    "metadata.name".into(),
                    "FieldValueRequired".into(),
                    "Required value: name or generateName is required".into(),
                )],
            ));
        }
    };
    if meta_str(&object, "resourceVersion").is_some() {
        return Err(ApiError::bad_request(
            "resourceVersion should not be set on objects to be created",
        ));
    }
    if let Some(ns) = &namespace {
        check_namespace(server, resource, ns).await?;
    }
    let meta = metadata_mut(&mut object);
    meta.insert("name".into(), json!(name));
    if let Some(ns) = &namespace {
        meta.insert("namespace".into(), json!(ns));
    } else {
        meta.remove("namespace");
    }
    meta.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
    meta.insert("creationTimestamp".into(), json!(objects::now_rfc3339()));
    for gone in ["deletionTimestamp", "deletionGracePeriodSeconds", "selfLink", "managedFields"] {
        meta.remove(gone);
    }
    if objects::tracks_generation(resource) {
        meta.insert("generation".into(), json!(1));
    } else {
        meta.remove("generation");
    }
    // The creator owns what it sent, defaults included; as upstream, what the server adds
    // afterwards (status on create, admission's service-account volume, tolerations and
    // priority) is owned by no manager.
    match applied {
        Some(fields) => {
            metadata_mut(&mut object).insert("managedFields".into(), fields);
        }
        None => objects::record_managed_fields(
            resource,
            None,
            &mut object,
            &manager(request),
            &resource.api_version(),
            None,
        ),
    }
    objects::prepare_for_create(resource, &mut object);
    capstan_api::defaults::prepare_for_create(resource, &mut object);
    crate::admission::admit_create(server, resource, &mut object).await?;

    if dry_run(request)? {
        let response = value_response(StatusCode::CREATED, &from_storage(resource, object));
        return Ok(with_warnings(response, &warnings));
    }
    if resource.kind == "Service" {
        crate::services::allocate(&*server.store, server.config.service_range, &mut object).await?;
    }
    let key = resource.key(namespace.as_deref(), &name);
    let created = server.store.create(&key, encode(&mut object)?).await;
    if created.is_err() && resource.kind == "Service" {
        crate::services::release(&*server.store, &object).await;
    }
    let kv = created.map_err(|e| from_store(e, resource.group, resource.plural, &name))?;
    let response = written(StatusCode::CREATED, resource, object, &kv);
    Ok(with_warnings(response, &warnings))
}

pub async fn update(server: &Arc<ApiServer>, request: &Request) -> ApiResult<Response> {
    let body = request.json_body()?;
    let precondition = resource_version_of(&body)?;
    apply_update(server, request, precondition, |_| Ok(body.clone())).await
}

/// PATCH: JSON merge patch (RFC 7386), JSON patch (RFC 6902) or strategic merge patch of the
/// current object, then the same rules as an update.
pub async fn patch(server: &Arc<ApiServer>, request: &Request) -> ApiResult<Response> {
    if super::apply::is_apply(request) {
        return super::apply::apply(server, request).await;
    }
    super::apply::check_options(request, false)?;
    let patch = Patch::parse(request)?;
    if request.target.subresource.as_deref() == Some("scale") {
        return super::subresources::patch_scale(server, request, &patch).await;
    }
    // A resourceVersion in a merge patch is a precondition, as upstream treats it.
    let precondition = match &patch {
        Patch::Merge(document) | Patch::Strategic { patch: document, .. } => {
            resource_version_of(document)?
        }
        Patch::Json(_) => None,
    };
    apply_update(server, request, precondition, |old| patch.apply(old.clone())).await
}

/// A parsed PATCH body.
pub enum Patch {
    Merge(Value),
    Json(json_patch::Patch),
    /// A strategic merge patch, applied by the schema of `definition` (the request's kind,
    /// or `Scale` for the scale subresource).
    Strategic {
        patch: Value,
        definition: &'static str,
    },
}

/// Upstream refuses JSON patches with more operations than this.
const MAX_JSON_PATCH_OPERATIONS: usize = 10_000;

impl Patch {
    fn parse(request: &Request) -> ApiResult<Self> {
        let content_type = request
            .headers
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let base = content_type.split(';').next().unwrap_or("").trim();
        let document: Value = match base {
            "application/merge-patch+json"
            | "application/json-patch+json"
            | "application/strategic-merge-patch+json" => serde_json::from_slice(&request.body)
                .map_err(|e| ApiError::bad_request(format!("the patch is not valid JSON: {e}")))?,
            _ => {
                let mut e = ApiError::unsupported_media_type(content_type);
                e.message = format!(
                    "the patch type {base:?} is not supported by this server yet; \
                     supported: application/merge-patch+json, application/json-patch+json, \
                     application/strategic-merge-patch+json"
                );
                return Err(e);
            }
        };
        if base == "application/merge-patch+json" {
            if !document.is_object() {
                return Err(ApiError::bad_request("a merge patch must be a JSON object"));
            }
            return Ok(Self::Merge(document));
        }
        if base == "application/strategic-merge-patch+json" {
            if !document.is_object() {
                return Err(ApiError::bad_request("a strategic merge patch must be a JSON object"));
            }
            let t = &request.target;
            let definition =
                capstan_api::strategic::definition_for(t.resource, t.subresource.as_deref())
                    .ok_or_else(|| {
                        let mut e = ApiError::unsupported_media_type(content_type);
                        e.message = format!(
                            "strategic merge patch is not supported for {}",
                            t.resource.plural
                        );
                        e
                    })?;
            return Ok(Self::Strategic { patch: document, definition });
        }
        if document.as_array().is_some_and(|ops| ops.len() > MAX_JSON_PATCH_OPERATIONS) {
            return Err(ApiError::too_large(format!(
                "The allowed maximum operations in a JSON patch is {MAX_JSON_PATCH_OPERATIONS}"
            )));
        }
        serde_json::from_value(document)
            .map(Self::Json)
            .map_err(|e| ApiError::bad_request(format!("the JSON patch is malformed: {e}")))
    }

    /// The patched document; a patch that does not apply is a 422 and changes nothing.
    pub fn apply(&self, mut document: Value) -> ApiResult<Value> {
        match self {
            Self::Merge(patch) => json_patch::merge(&mut document, patch),
            Self::Json(patch) => json_patch::patch(&mut document, patch).map_err(|e| {
                ApiError::unprocessable(format!("the JSON patch does not apply: {e}"))
            })?,
            // Malformed directives are 400s, patches that do not fit the object 422s, as upstream.
            Self::Strategic { patch, definition } => {
                document = capstan_api::strategic::apply(&document, patch, definition).map_err(
                    |e| match e.is_malformed() {
                        true => ApiError::bad_request(e.to_string()),
                        false => ApiError::unprocessable(e.to_string()),
                    },
                )?;
            }
        }
        Ok(document)
    }
}

/// The stored object a request targets, checked against the client's resourceVersion
/// precondition (a mismatch is 409, a missing object 404).
/// The object an update starts from: from the store, or `from_cache` from the watch cache
/// when there (as upstream's GuaranteedUpdate starts). The write is compare-and-swap on its
/// revision, so a stale copy costs only a retry from the store.
pub(super) async fn current_for_update(
    server: &Arc<ApiServer>,
    request: &Request,
    precondition: Option<i64>,
    from_cache: bool,
) -> ApiResult<KeyValue> {
    let t = &request.target;
    let (resource, name) = (t.resource, t.name.as_deref().unwrap_or_default());
    let key = resource.key(t.namespace.as_deref(), name);
    if from_cache
        && let Ok(cache) = server.cache_for(resource)
        && let Some(cached) = cache.get(&key)
        && precondition.is_none_or(|rv| rv == cached.revision)
    {
        return Ok(KeyValue {
            key,
            value: cached.bytes.clone(),
            create_revision: 0,
            mod_revision: cached.revision,
        });
    }
    let current = server
        .store
        .get(&key)
        .await
        .map_err(|e| from_store(e, resource.group, resource.plural, name))?
        .ok_or_else(|| ApiError::not_found(resource.group, resource.plural, name))?;
    if precondition.is_some_and(|rv| rv != current.mod_revision) {
        return Err(ApiError::stale(resource.group, resource.plural, name));
    }
    Ok(current)
}

/// `fieldValidation`: unknown fields are refused (Strict, what kubectl sends), reported as
/// warnings (Warn, the default) or silently dropped (Ignore); stored objects never keep them.
pub(super) fn field_validation(
    request: &Request,
    resource: &Resource,
    object: &mut Value,
) -> ApiResult<Vec<String>> {
    let unknown = capstan_api::openapi::prune_unknown_fields(resource, object);
    let messages = unknown.iter().map(|path| format!("unknown field \"{path}\""));
    match request.params.get("fieldValidation").unwrap_or("Warn") {
        "Strict" if !unknown.is_empty() => Err(ApiError::bad_request(format!(
            "strict decoding error: {}",
            messages.collect::<Vec<_>>().join(", ")
        ))),
        "Strict" | "Ignore" => Ok(Vec::new()),
        "Warn" => Ok(messages.collect()),
        other => Err(ApiError::bad_request(format!(
            "fieldValidation: unsupported value {other:?}: supported values: \"Ignore\", \"Strict\", \"Warn\""
        ))),
    }
}

/// Adds one `Warning` header per message, as upstream does.
pub(super) fn with_warnings(mut response: Response, warnings: &[String]) -> Response {
    for warning in warnings {
        let text = format!("299 - {:?}", warning);
        if let Ok(value) = axum::http::HeaderValue::from_str(&text) {
            response.headers_mut().append(axum::http::header::WARNING, value);
        }
    }
    response
}

pub(super) fn resource_version_of(body: &Value) -> ApiResult<Option<i64>> {
    meta_str(body, "resourceVersion")
        .map(|rv| {
            rv.parse::<i64>()
                .map_err(|_| ApiError::bad_request(format!("invalid resourceVersion {rv:?}")))
        })
        .transpose()
}

/// Validates the body `body_for` makes from the current object and stores the result under
/// update rules (server-owned metadata, status split, generation, finalizers).
pub(super) async fn apply_update(
    server: &Arc<ApiServer>,
    request: &Request,
    precondition: Option<i64>,
    body_for: impl Fn(&Value) -> ApiResult<Value>,
) -> ApiResult<Response> {
    let mut warnings = Vec::new();
    let response =
        update_with_retries(server, request, precondition, body_for, &mut warnings).await?;
    Ok(with_warnings(response, &warnings))
}

async fn update_with_retries(
    server: &Arc<ApiServer>,
    request: &Request,
    precondition: Option<i64>,
    body_for: impl Fn(&Value) -> ApiResult<Value>,
    warnings: &mut Vec<String>,
) -> ApiResult<Response> {
    // The first attempt starts from the watch cache, as upstream's GuaranteedUpdate does; the
    // write is compare-and-swap on the revision, so a stale copy costs a retry from the store,
    // and a refusal or a no-op seen on the cached copy is confirmed against the store.
    let mut from_cache = true;
    loop {
        let current = current_for_update(server, request, precondition, from_cache).await?;
        let cached = std::mem::replace(&mut from_cache, false);
        match update_once(server, request, &body_for, warnings, &current).await {
            Err(_) | Ok(Step::Unchanged(_)) if cached => continue,
            Err(e) => return Err(e),
            Ok(Step::Unchanged(response) | Step::Written(response)) => return Ok(response),
            // Optimistic concurrency: retry a lost race only when the client gave no
            // resourceVersion.
            Ok(Step::Lost) if precondition.is_none() => continue,
            Ok(Step::Lost) => {
                let t = &request.target;
                let name = t.name.as_deref().unwrap_or_default();
                return Err(ApiError::stale(t.resource.group, t.resource.plural, name));
            }
        }
    }
}

/// How one attempt at an update ended.
enum Step {
    /// Nothing changed, so nothing was written.
    Unchanged(Response),
    Written(Response),
    /// The object changed since `current` was read.
    Lost,
}

async fn update_once(
    server: &Arc<ApiServer>,
    request: &Request,
    body_for: &impl Fn(&Value) -> ApiResult<Value>,
    warnings: &mut Vec<String>,
    current: &KeyValue,
) -> ApiResult<Step> {
    let t = &request.target;
    let resource = t.resource;
    let name = t.name.as_deref().unwrap_or_default();
    let subresource = t.subresource.as_deref();
    let store_error = |e| from_store(e, resource.group, resource.plural, name);
    let old = decode(current)?;
    let mut body = if crate::conversion::needs_conversion(resource) {
        body_for(&from_storage(resource, old.clone()))?
    } else {
        body_for(&old)?
    };
    objects::check_type(resource, &mut body, resource.kind, &resource.api_version())?;
    *warnings = field_validation(request, resource, &mut body)?;
    if subresource.is_none() || subresource == Some("status") {
        crate::typecheck::check(resource, &body)?;
    }
    // Upstream defaults every decoded body, so a PUT or patch that drops a defaulted field gets
    // it back.
    capstan_api::defaults::apply(resource, &mut body);
    let mut body = to_storage(resource, body);
    if let Some(body_name) = meta_str(&body, "name")
        && body_name != name
    {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({body_name}) does not match the name on the URL ({name})"
        )));
    }
    if let (Some(ns), Some(body_ns)) = (&t.namespace, meta_str(&body, "namespace"))
        && ns != body_ns
    {
        return Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        ));
    }
    if resource.kind == "Service" && subresource.is_none() {
        crate::services::keep_allocations(&old, &mut body)?;
    }
    let applied_managed = super::apply::is_apply(request)
        .then(|| body["metadata"].get("managedFields").cloned())
        .flatten();
    let mut new = merge_update(resource, &old, body, subresource);
    if let Some(managed) = applied_managed {
        // A subresource write keeps the old metadata; the applier's ownership goes with it.
        metadata_mut(&mut new).insert("managedFields".into(), managed);
    }
    super::restrict_node(request, Verb::Update, name, Some(&new), Some(&old))?;
    if new == old {
        // A no-op update writes nothing and keeps the resourceVersion.
        return Ok(Step::Unchanged(value_response(StatusCode::OK, &from_storage(resource, old))));
    }
    crate::validation::check_update(resource, &old, &new, subresource)?;
    // Server-side apply has recorded its own managed fields.
    if !super::apply::is_apply(request) {
        record_update(request, &old, &mut new);
    }
    if dry_run(request)? {
        return Ok(Step::Written(value_response(StatusCode::OK, &from_storage(resource, new))));
    }
    let key = &current.key;
    if finalized(resource, &new) {
        return match server.store.delete(key, Some(current.mod_revision)).await {
            Ok(kv) => {
                released(server, resource, &new).await;
                let deleted = from_storage(resource, with_revision(new, &kv));
                Ok(Step::Written(value_response(StatusCode::OK, &deleted)))
            }
            Err(StoreError::Conflict { .. }) => Ok(Step::Lost),
            Err(e) => Err(store_error(e)),
        };
    }
    match server.store.update(key, encode(&mut new)?, current.mod_revision).await {
        Ok(kv) => Ok(Step::Written(written(StatusCode::OK, resource, new, &kv))),
        Err(StoreError::Conflict { .. }) => Ok(Step::Lost),
        Err(e) => Err(store_error(e)),
    }
}

/// Frees what a deleted object held outside itself (a Service's addresses).
async fn released(server: &Arc<ApiServer>, resource: &Resource, object: &Value) {
    if resource.kind == "Service" {
        crate::services::release(&*server.store, object).await;
    }
}

/// The object an update stores: the body, with server-owned metadata kept from the old object
/// and the spec/status split enforced.
fn merge_update(resource: &Resource, old: &Value, body: Value, subresource: Option<&str>) -> Value {
    let mut new = match subresource {
        Some("status") => {
            let mut new = old.clone();
            new["status"] = body.get("status").cloned().unwrap_or(Value::Null);
            if new["status"].is_null()
                && let Some(map) = new.as_object_mut()
            {
                map.remove("status");
            }
            return new;
        }
        Some("approval") => {
            let mut new = old.clone();
            new["status"]["conditions"] = body["status"]["conditions"].clone();
            return new;
        }
        Some("finalize") => {
            let mut new = old.clone();
            new["spec"]["finalizers"] = body["spec"]["finalizers"].clone();
            return new;
        }
        _ => body,
    };
    let empty = Map::new();
    let old_meta = old.get("metadata").and_then(Value::as_object).unwrap_or(&empty);
    let meta = metadata_mut(&mut new);
    for field in SERVER_OWNED {
        match old_meta.get(*field) {
            Some(value) => meta.insert((*field).to_owned(), value.clone()),
            None => meta.remove(*field),
        };
    }
    meta.insert(
        "resourceVersion".into(),
        old_meta.get("resourceVersion").cloned().unwrap_or(Value::Null),
    );
    if let Some(fields) = old_meta.get("managedFields")
        && !meta.contains_key("managedFields")
    {
        meta.insert("managedFields".into(), fields.clone());
    }
    if objects::has_status_subresource(resource) {
        match old.get("status") {
            Some(status) => new["status"] = status.clone(),
            None => {
                if let Some(map) = new.as_object_mut() {
                    map.remove("status");
                }
            }
        }
    }
    if objects::tracks_generation(resource) && objects::spec_part(&new) != objects::spec_part(old) {
        let generation = old["metadata"]["generation"].as_i64().unwrap_or(0) + 1;
        metadata_mut(&mut new).insert("generation".into(), json!(generation));
    }
    new
}

/// An object being deleted whose last finalizer is gone is removed for good (pods wait for
/// their node to finish graceful termination, which ends with a delete of its own).
fn finalized(resource: &Resource, object: &Value) -> bool {
    let meta = &object["metadata"];
    if meta.get("deletionTimestamp").is_none_or(Value::is_null) {
        return false;
    }
    let no_finalizers = meta["finalizers"].as_array().is_none_or(Vec::is_empty)
        // A namespace also waits for the namespace controller's `spec.finalizers`.
        && object["spec"]["finalizers"].as_array().is_none_or(Vec::is_empty);
    let pod_done = resource.kind != "Pod"
        || meta["deletionGracePeriodSeconds"].as_i64() == Some(0)
        || object["spec"]["nodeName"].as_str().is_none_or(str::is_empty);
    no_finalizers && pod_done
}

/// DeleteOptions from the body and the query.
pub(super) struct DeleteOptions {
    grace_period: Option<i64>,
    propagation: Option<String>,
    uid: Option<String>,
    resource_version: Option<i64>,
}

fn delete_options(request: &Request) -> ApiResult<DeleteOptions> {
    let body: Value = if request.body.is_empty() { Value::Null } else { request.json_body()? };
    delete_options_from(request, &body)
}

/// DeleteOptions from a JSON body (a DeleteOptions, or an Eviction's `deleteOptions`) and the
/// request's query.
pub(super) fn delete_options_from(request: &Request, body: &Value) -> ApiResult<DeleteOptions> {
    if !body.is_null() && !body.is_object() {
        return Err(ApiError::bad_request("DeleteOptions must be a JSON object"));
    }
    let grace_period = match request.params.int("gracePeriodSeconds")? {
        Some(g) => Some(g),
        None => body.get("gracePeriodSeconds").and_then(Value::as_i64),
    };
    let propagation = request
        .params
        .get("propagationPolicy")
        .map(str::to_owned)
        .or_else(|| body.get("propagationPolicy").and_then(Value::as_str).map(str::to_owned))
        .or_else(|| {
            let orphan = request
                .params
                .get("orphanDependents")
                .map(|v| v == "true")
                .or_else(|| body.get("orphanDependents").and_then(Value::as_bool));
            orphan.map(|o| if o { "Orphan" } else { "Background" }.to_owned())
        });
    if let Some(p) = &propagation
        && !matches!(p.as_str(), "Orphan" | "Background" | "Foreground")
    {
        return Err(ApiError::bad_request(format!(
            "propagationPolicy: unsupported value {p:?}: supported values: \"Background\", \"Foreground\", \"Orphan\""
        )));
    }
    let preconditions = body.get("preconditions");
    let uid = preconditions.and_then(|p| p.get("uid")).and_then(Value::as_str).map(str::to_owned);
    let resource_version = preconditions
        .and_then(|p| p.get("resourceVersion"))
        .and_then(Value::as_str)
        .map(|rv| {
            rv.parse::<i64>().map_err(|_| {
                ApiError::bad_request(format!("invalid precondition resourceVersion {rv:?}"))
            })
        })
        .transpose()?;
    Ok(DeleteOptions { grace_period, propagation, uid, resource_version })
}

pub async fn delete(server: &Arc<ApiServer>, request: &Request) -> ApiResult<Response> {
    let t = &request.target;
    let name = t.name.clone().unwrap_or_default();
    let options = delete_options(request)?;
    let key = t.resource.key(t.namespace.as_deref(), &name);
    let object = delete_one(server, t.resource, &key, &name, &options, dry_run(request)?).await?;
    Ok(value_response(StatusCode::OK, &from_storage(t.resource, object)))
}

pub(super) async fn delete_one(
    server: &Arc<ApiServer>,
    resource: &'static Resource,
    key: &str,
    name: &str,
    options: &DeleteOptions,
    dry_run: bool,
) -> ApiResult<Value> {
    let store_error = |e| from_store(e, resource.group, resource.plural, name);
    loop {
        let current = server
            .store
            .get(key)
            .await
            .map_err(store_error)?
            .ok_or_else(|| ApiError::not_found(resource.group, resource.plural, name))?;
        let mut object = decode(&current)?;
        if let Some(uid) = &options.uid
            && meta_str(&object, "uid") != Some(uid)
        {
            return Err(ApiError::conflict(
                resource.group,
                resource.plural,
                name,
                &format!(
                    "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                    meta_str(&object, "uid").unwrap_or_default()
                ),
            ));
        }
        if let Some(rv) = options.resource_version
            && rv != current.mod_revision
        {
            return Err(ApiError::conflict(
                resource.group,
                resource.plural,
                name,
                &format!(
                    "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                    current.mod_revision
                ),
            ));
        }
        let before = object.clone();
        apply_deletion(resource, &mut object, options);
        if dry_run {
            return Ok(object);
        }
        let result = if finalized(resource, &object)
            || (object == before && before["metadata"].get("deletionTimestamp").is_none())
        {
            match server.store.delete(key, Some(current.mod_revision)).await {
                Ok(_) => {
                    released(server, resource, &object).await;
                    Ok(object)
                }
                Err(e) => Err(e),
            }
        } else if object == before {
            // Already being deleted and nothing to change.
            return Ok(object);
        } else {
            match server.store.update(key, encode(&mut object)?, current.mod_revision).await {
                Ok(kv) => Ok(with_revision(object, &kv)),
                Err(e) => Err(e),
            }
        };
        match result {
            Ok(object) => return Ok(object),
            Err(StoreError::Conflict { .. }) => continue,
            Err(e) => return Err(store_error(e)),
        }
    }
}

/// Marks an object for deletion: propagation finalizers, deletionTimestamp when anything must
/// finish first (finalizers, a running pod's grace period), namespaces to Terminating.
fn apply_deletion(resource: &Resource, object: &mut Value, options: &DeleteOptions) {
    let deleting = object["metadata"].get("deletionTimestamp").is_some_and(|t| !t.is_null());
    // As upstream: the policy asked for replaces the other policy's finalizer, even on an
    // object already being deleted; no policy keeps what is there.
    let (add, remove): (&[&str], &[&str]) = match options.propagation.as_deref() {
        Some("Orphan") => (&["orphan"], &["foregroundDeletion"]),
        Some("Foreground") => (&["foregroundDeletion"], &["orphan"]),
        Some(_) => (&[], &["orphan", "foregroundDeletion"]),
        None => (&[], &[]),
    };
    if !add.is_empty() || !remove.is_empty() {
        let meta = metadata_mut(object);
        let mut finalizers =
            meta.get("finalizers").and_then(Value::as_array).cloned().unwrap_or_default();
        let before = finalizers.len();
        finalizers.retain(|f| !remove.iter().any(|r| f == r));
        for finalizer in add {
            if !finalizers.iter().any(|f| f == finalizer) {
                finalizers.push(json!(finalizer));
            }
        }
        if finalizers.len() != before || !add.is_empty() {
            meta.insert("finalizers".into(), Value::Array(finalizers));
        }
    }
    if resource.kind == "Namespace" {
        object["status"]["phase"] = json!("Terminating");
        if !deleting {
            metadata_mut(object).insert("deletionTimestamp".into(), json!(objects::now_rfc3339()));
            metadata_mut(object).insert("deletionGracePeriodSeconds".into(), json!(0));
        }
        return;
    }
    let has_finalizers = object["metadata"]["finalizers"].as_array().is_some_and(|f| !f.is_empty());
    let scheduled = object["spec"]["nodeName"].as_str().is_some_and(|n| !n.is_empty());
    let grace = if resource.kind == "Pod" && scheduled {
        options
            .grace_period
            .or_else(|| object["spec"]["terminationGracePeriodSeconds"].as_i64())
            .unwrap_or(30)
            .max(0)
    } else {
        0
    };
    if deleting {
        // A shorter grace period may replace a longer one (`--grace-period=0 --force`).
        let current = object["metadata"]["deletionGracePeriodSeconds"].as_i64().unwrap_or(0);
        if resource.kind == "Pod" && grace < current {
            metadata_mut(object).insert("deletionGracePeriodSeconds".into(), json!(grace));
            metadata_mut(object)
                .insert("deletionTimestamp".into(), json!(objects::rfc3339_after(grace)));
        }
        return;
    }
    if has_finalizers || grace > 0 {
        let meta = metadata_mut(object);
        meta.insert("deletionTimestamp".into(), json!(objects::rfc3339_after(grace)));
        meta.insert("deletionGracePeriodSeconds".into(), json!(grace));
        if resource.has_verb("update") {
            increment_generation(object);
        }
    }
}

/// Upstream bumps generation when deletion starts, so controllers notice.
fn increment_generation(object: &mut Value) {
    if let Some(generation) = object["metadata"]["generation"].as_i64() {
        metadata_mut(object).insert("generation".into(), json!(generation + 1));
    }
}

pub async fn delete_collection(server: &Arc<ApiServer>, request: &Request) -> ApiResult<Response> {
    let t = &request.target;
    let resource = t.resource;
    if !resource.has_verb("deletecollection") {
        return Err(ApiError::method_not_allowed(format!(
            "deletecollection is not supported on {}",
            resource.plural
        )));
    }
    let filter = Filter::new(resource, t.namespace.clone(), &request.params)?;
    let options = delete_options(request)?;
    let dry_run = dry_run(request)?;
    server.cache.sync().await.map_err(|e| ApiError::timeout(e.to_string()))?;
    let mut items = Vec::new();
    for object in server
        .objects_under(resource, &filter.prefix(resource))
        .await?
        .into_iter()
        .filter(|o| filter.matches(resource, o))
    {
        match delete_one(server, resource, &object.key, object.name(), &options, dry_run).await {
            Ok(deleted) => items.push(from_storage(resource, deleted)),
            // Gone meanwhile: that is what was asked for.
            Err(e) if e.code == StatusCode::NOT_FOUND => {}
            Err(e) => return Err(e),
        }
    }
    Ok(value_response(
        StatusCode::OK,
        &json!({"kind": resource.list_kind(), "apiVersion": resource.api_version(), "metadata": {}, "items": items}),
    ))
}
