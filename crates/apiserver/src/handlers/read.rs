//! Reads: get and list, served from the watch cache (or from the store at an exact revision),
//! with selectors, paging and the three response forms.

use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::Response;
use base64::Engine;
use bytes::{BufMut, Bytes, BytesMut};
use capstan_api::Resource;
use capstan_api::selector::{FieldSelector, LabelSelector};
use capstan_store::{ListRequest, Revision};
use serde_json::{Value, json};

use super::{Form, Params, Request, json_response, value_response};
use crate::ApiServer;
use crate::cache::CachedObject;
use crate::conversion::from_storage;
use crate::status::{ApiError, ApiResult, from_store};

/// Which objects a list or watch wants.
pub struct Filter {
    pub namespace: Option<String>,
    labels: Option<LabelSelector>,
    fields: Option<FieldSelector>,
}

impl Filter {
    pub fn new(
        resource: &'static Resource,
        namespace: Option<String>,
        params: &Params,
    ) -> ApiResult<Self> {
        let labels = params
            .get("labelSelector")
            .map(|s| LabelSelector::parse(s).map_err(ApiError::bad_request))
            .transpose()?;
        let fields = params
            .get("fieldSelector")
            .map(|s| FieldSelector::parse(s).map_err(ApiError::bad_request))
            .transpose()?;
        if let Some(selector) = &fields {
            capstan_api::fields::check_supported(resource, selector)
                .map_err(ApiError::bad_request)?;
        }
        Ok(Self { namespace, labels, fields })
    }

    /// The store/cache key prefix these objects live under.
    pub fn prefix(&self, resource: &Resource) -> String {
        match &self.namespace {
            Some(ns) if resource.namespaced => resource.namespace_prefix(ns),
            _ => resource.key_prefix(),
        }
    }

    pub fn matches(&self, resource: &'static Resource, object: &CachedObject) -> bool {
        if let Some(labels) = &self.labels
            && !labels.matches_with(|key| object.labels.get(key))
        {
            return false;
        }
        let Some(fields) = &self.fields else { return true };
        let mut parsed: Option<Value> = None;
        fields.matches(|field| match field {
            "metadata.name" => Some(object.name().to_owned()),
            "metadata.namespace" => Some(object.namespace().unwrap_or_default().to_owned()),
            other => object.field(resource, other).or_else(|| {
                let value = parsed.get_or_insert_with(|| object.value());
                capstan_api::fields::field_value(resource, value, other)
            }),
        })
    }
}

/// The continue token: where the next page starts and at which revision.
fn encode_continue(revision: Revision, start: &str) -> String {
    let token = json!({"v": "meta.k8s.io/v1", "rv": revision, "start": start});
    base64::engine::general_purpose::STANDARD.encode(token.to_string())
}

fn decode_continue(token: &str) -> ApiResult<(Revision, String)> {
    let bad = || {
        ApiError::bad_request(
            "continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)",
        )
    };
    let raw = base64::engine::general_purpose::STANDARD.decode(token).map_err(|_| bad())?;
    let value: Value = serde_json::from_slice(&raw).map_err(|_| bad())?;
    let revision = value["rv"].as_i64().filter(|r| *r > 0).ok_or_else(bad)?;
    let start = value["start"].as_str().ok_or_else(bad)?.to_owned();
    Ok((revision, start))
}

fn parse_revision(text: &str) -> ApiResult<Revision> {
    text.parse::<Revision>()
        .ok()
        .filter(|r| *r >= 0)
        .ok_or_else(|| ApiError::bad_request(format!("invalid resource version {text:?}")))
}

pub async fn get(server: &Arc<ApiServer>, request: &Request) -> ApiResult<Response> {
    let t = &request.target;
    let resource = t.resource;
    let name = t.name.as_deref().unwrap_or_default();
    let key = resource.key(t.namespace.as_deref(), name);
    let form = request.form()?;
    // "0": any version will do, the cache's is fine (for a resource the cache keeps).
    let cache = server.cache_for(resource).ok();
    let object = match cache.filter(|_| request.params.get("resourceVersion") == Some("0")) {
        Some(cache) => cache.get(&key),
        None => match server
            .store
            .get(&key)
            .await
            .map_err(|e| from_store(e, resource.group, resource.plural, name))?
        {
            Some(kv) => CachedObject::decode(&kv).map(Arc::new),
            None => None,
        },
    };
    let object =
        object.ok_or_else(|| ApiError::not_found(resource.group, resource.plural, name))?;
    if t.subresource.as_deref() == Some("scale") {
        return Ok(value_response(StatusCode::OK, &scale_of(&object.value())));
    }
    Ok(match form {
        Form::Object => {
            json_response(StatusCode::OK, object.served(resource, request.omit_managed_fields))
        }
        Form::PartialObjectMetadata => {
            json_response(StatusCode::OK, object.partial_metadata(request.omit_managed_fields))
        }
        Form::Table => {
            let table = table(resource, std::slice::from_ref(&object), &request.params, None, None);
            value_response(StatusCode::OK, &table)
        }
    })
}

/// The autoscaling/v1 Scale view of a workload.
pub fn scale_of(object: &Value) -> Value {
    let meta = &object["metadata"];
    let selector = object["spec"]["selector"].clone();
    let selector_text = match &selector {
        Value::Object(map)
            if map.contains_key("matchLabels") || map.contains_key("matchExpressions") =>
        {
            LabelSelector::from_label_selector_json(&selector)
                .map(|s| s.to_query())
                .unwrap_or_default()
        }
        // ReplicationControllers select with a plain map.
        Value::Object(map) => LabelSelector::from_labels_map(map).to_query(),
        _ => String::new(),
    };
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": meta["name"],
            "namespace": meta["namespace"],
            "uid": meta["uid"],
            "resourceVersion": meta["resourceVersion"],
            "creationTimestamp": meta["creationTimestamp"],
        },
        "spec": {"replicas": object["spec"]["replicas"].as_i64().unwrap_or(1)},
        "status": {"replicas": object["status"]["replicas"].as_i64().unwrap_or(0), "selector": selector_text},
    })
}

fn partial(object: &Value) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": object.get("metadata").cloned().unwrap_or_else(|| json!({})),
    })
}

/// Builds a meta.k8s.io/v1 Table of `objects`.
pub fn table(
    resource: &'static Resource,
    objects: &[Arc<CachedObject>],
    params: &Params,
    revision: Option<Revision>,
    continue_token: Option<String>,
) -> Value {
    let now = jiff::Timestamp::now();
    let include = params.get("includeObject").unwrap_or("Metadata");
    let rows: Vec<Value> = objects
        .iter()
        .map(|o| {
            let value = from_storage(resource, o.value());
            let cells = capstan_api::table::cells(resource, &value, now);
            let object = match include {
                "None" => Value::Null,
                "Object" => value,
                _ => partial(&value),
            };
            json!({"cells": cells, "object": object})
        })
        .collect();
    let mut metadata = json!({});
    if let Some(revision) = revision {
        metadata["resourceVersion"] = json!(revision.to_string());
    }
    if let Some(token) = continue_token {
        metadata["continue"] = json!(token);
    }
    let mut table = json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
        "columnDefinitions": capstan_api::table::column_definitions(resource),
        "rows": rows,
    });
    if params.get("includeObject") == Some("None") {
        for row in table["rows"].as_array_mut().into_iter().flatten() {
            if let Some(row) = row.as_object_mut() {
                row.remove("object");
            }
        }
    }
    table
}

pub async fn list(server: &Arc<ApiServer>, request: &Request) -> ApiResult<Response> {
    let t = &request.target;
    let resource = t.resource;
    let params = &request.params;
    let form = request.form()?;
    let filter = Filter::new(resource, t.namespace.clone(), params)?;
    let limit = params.int("limit")?.filter(|l| *l > 0).map(|l| l as usize);
    let rv = params.get("resourceVersion");
    let rv_match = params.get("resourceVersionMatch");
    if rv_match.is_some() && rv.is_none() {
        return Err(ApiError::bad_request(
            "resourceVersionMatch is forbidden unless resourceVersion is provided",
        ));
    }
    if let Some(m) = rv_match
        && !matches!(m, "Exact" | "NotOlderThan")
    {
        return Err(ApiError::bad_request(format!(
            "resourceVersionMatch: unsupported value {m:?}: supported values: \"Exact\", \"NotOlderThan\""
        )));
    }

    let (objects, revision, next) = if let Some(token) = params.get("continue") {
        if rv.is_some_and(|v| v != "0") {
            return Err(ApiError::bad_request(
                "specifying resource version is not allowed when using continue",
            ));
        }
        let (revision, start) = decode_continue(token)?;
        page_from_store(server, resource, &filter, Some(start), revision, limit).await?
    } else if rv_match == Some("Exact") {
        let revision = parse_revision(rv.unwrap_or_default())?;
        page_from_store(server, resource, &filter, None, revision, limit).await?
    } else if !server.is_cached(resource) {
        if let Some(text) = rv {
            parse_revision(text)?;
        }
        // Read at the store's current revision, which is as new as any version asked for.
        let revision = server
            .store
            .current_revision()
            .await
            .map_err(|e| from_store(e, resource.group, resource.plural, ""))?;
        page_from_store(server, resource, &filter, None, revision, limit).await?
    } else {
        match rv {
            None => {
                server.cache.sync().await.map_err(|e| ApiError::timeout(e.to_string()))?;
            }
            Some("0") => {}
            Some(text) => {
                let wanted = parse_revision(text)?;
                if !server.cache.wait_for(wanted).await {
                    return Err(ApiError::timeout(format!(
                        "Too large resource version: {wanted}, current: {}",
                        server.cache.revision()
                    )));
                }
            }
        }
        let revision = server.cache.revision();
        let cache = server.cache_for(resource)?;
        let mut matching = cache
            .range(&filter.prefix(resource), None)
            .into_iter()
            .filter(|o| filter.matches(resource, o));
        let objects: Vec<_> = match limit {
            Some(limit) => matching.by_ref().take(limit).collect(),
            None => matching.by_ref().collect(),
        };
        let next = matching.next().map(|o| encode_continue(revision, &o.key));
        (objects, revision, next)
    };
    let omit = request.omit_managed_fields;
    let next = next.as_deref();
    Ok(match form {
        Form::Object => {
            let (kind, version) = (resource.list_kind(), resource.api_version());
            let body =
                list_body(&kind, &version, revision, next, &objects, |o| o.served(resource, omit));
            json_response(StatusCode::OK, body)
        }
        Form::Table => value_response(
            StatusCode::OK,
            &table(resource, &objects, params, Some(revision), next.map(str::to_owned)),
        ),
        Form::PartialObjectMetadata => {
            let (kind, version) = ("PartialObjectMetadataList", "meta.k8s.io/v1");
            let body =
                list_body(kind, version, revision, next, &objects, |o| o.partial_metadata(omit));
            json_response(StatusCode::OK, body)
        }
    })
}

/// A page read from the store at `revision`, for continued and exact-revision lists.
async fn page_from_store(
    server: &Arc<ApiServer>,
    resource: &'static Resource,
    filter: &Filter,
    start: Option<String>,
    revision: Revision,
    limit: Option<usize>,
) -> ApiResult<(Vec<Arc<CachedObject>>, Revision, Option<String>)> {
    let mut objects = Vec::new();
    let mut request = ListRequest {
        prefix: filter.prefix(resource),
        start_key: start,
        revision: Some(revision),
        limit: limit.map(|l| l + 1),
    };
    loop {
        let page = server.store.list(request.clone()).await.map_err(|e| match e {
            capstan_store::StoreError::Compacted { .. } => ApiError::gone(
                "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.",
            ),
            other => from_store(other, resource.group, resource.plural, ""),
        })?;
        for kv in &page.kvs {
            if let Some(object) = CachedObject::decode(kv).filter(|o| filter.matches(resource, o)) {
                if limit.is_some_and(|l| objects.len() == l) {
                    return Ok((objects, revision, Some(encode_continue(revision, &object.key))));
                }
                objects.push(Arc::new(object));
            }
        }
        match page.kvs.last() {
            Some(last) if page.more => request.start_key = Some(format!("{}\0", last.key)),
            _ => return Ok((objects, revision, None)),
        }
    }
}

/// `{"kind":"<list kind>",…,"items":[…]}` assembled from each object's bytes in `form`,
/// without re-encoding.
pub fn list_body(
    list_kind: &str,
    api_version: &str,
    revision: Revision,
    next: Option<&str>,
    objects: &[Arc<CachedObject>],
    form: impl Fn(&CachedObject) -> Bytes,
) -> Bytes {
    let mut metadata = json!({"resourceVersion": revision.to_string()});
    if let Some(next) = next {
        metadata["continue"] = json!(next);
    }
    let head = format!(
        "{{\"kind\":\"{list_kind}\",\"apiVersion\":\"{api_version}\",\"metadata\":{metadata},\"items\":["
    );
    // Served forms differ in size; this is a capacity hint only.
    let size = head.len() + objects.iter().map(|o| o.bytes.len() + 1).sum::<usize>() + 2;
    let mut body = BytesMut::with_capacity(size);
    body.put_slice(head.as_bytes());
    for (i, object) in objects.iter().enumerate() {
        if i > 0 {
            body.put_u8(b',');
        }
        body.put_slice(&form(object));
    }
    body.put_slice(b"]}");
    body.freeze()
}
