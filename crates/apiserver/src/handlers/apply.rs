//! Server-side apply: PATCH with `application/apply-patch+yaml`. The field manager's
//! configuration is merged into the live object (or creates it) by `capstan_api::apply`, and
//! the result is stored under the same rules as any update or create.

use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::Response;
use capstan_api::apply::{self, ApplyError, Manager, Scope};
use serde_json::{Value, json};

use super::Request;
use super::write;
use crate::ApiServer;
use crate::objects;
use crate::status::{ApiError, ApiResult};

pub const CONTENT_TYPE: &str = "application/apply-patch+yaml";

/// Whether the request is an apply patch.
pub fn is_apply(request: &Request) -> bool {
    let content_type = request
        .headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    content_type.split(';').next().unwrap_or("").trim() == CONTENT_TYPE
}

/// Upstream's PatchOptions validation: `force` only for apply, `fieldManager` required for it.
pub fn check_options(request: &Request, apply: bool) -> ApiResult<()> {
    let invalid = |field: &str, reason: &str, message: &str| {
        ApiError::invalid(
            "meta.k8s.io",
            "PatchOptions",
            "",
            vec![(field.into(), reason.into(), message.into())],
        )
    };
    if !apply && request.params.get("force").is_some() {
        return Err(invalid(
            "force",
            "FieldValueForbidden",
            "Forbidden: may not be specified for non-apply patch",
        ));
    }
    if apply && request.params.get("fieldManager").is_none() {
        return Err(invalid(
            "fieldManager",
            "FieldValueRequired",
            "Required value: is required for apply patch",
        ));
    }
    if let Some(manager) = request.params.get("fieldManager")
        && (manager.chars().count() > 128 || manager.chars().any(char::is_control))
    {
        return Err(invalid(
            "fieldManager",
            "FieldValueInvalid",
            "Invalid value: must be at most 128 printable characters",
        ));
    }
    Ok(())
}

/// The applied configuration: YAML or JSON, one object.
fn configuration(request: &Request) -> ApiResult<Value> {
    let body = &request.body;
    let parsed: Result<Value, String> = if body.trim_ascii_start().starts_with(b"{") {
        serde_json::from_slice(body).map_err(|e| e.to_string())
    } else {
        serde_saphyr::from_slice(body).map_err(|e| e.to_string())
    };
    let config = parsed.map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?;
    if !config.is_object() {
        return Err(ApiError::bad_request("the applied configuration must be an object"));
    }
    for field in ["apiVersion", "kind"] {
        if config[field].as_str().is_none_or(|s| s.is_empty()) {
            return Err(ApiError::bad_request(format!(
                "Object '{}' is missing in the applied configuration",
                if field == "kind" { "Kind" } else { "apiVersion" }
            )));
        }
    }
    Ok(config)
}

fn to_api_error(e: ApplyError) -> ApiError {
    match e {
        ApplyError::Conflicts(conflicts) => {
            let causes: Vec<Value> = conflicts
                .iter()
                .map(|c| json!({"reason": "FieldManagerConflict", "message": format!("conflict with {}", c.manager), "field": c.field}))
                .collect();
            let mut error = ApiError::conflict("", "", "", "");
            error.message = ApplyError::Conflicts(conflicts).to_string();
            error.details = Some(json!({"causes": causes}));
            error
        }
        invalid @ ApplyError::Invalid { .. } => ApiError::unprocessable(invalid.to_string()),
    }
}

pub async fn apply(server: &Arc<ApiServer>, request: &Request) -> ApiResult<Response> {
    check_options(request, true)?;
    let t = &request.target;
    let resource = t.resource;
    let name = t.name.clone().unwrap_or_default();
    let mut config = configuration(request)?;
    let scale = t.subresource.as_deref() == Some("scale");
    if scale {
        config = scale_configuration(resource, config)?;
    }
    objects::check_type(resource, &mut config, resource.kind, &resource.api_version())?;
    match objects::meta_str(&config, "name") {
        None => {
            objects::metadata_mut(&mut config).insert("name".into(), json!(name));
        }
        Some(body_name) if body_name != name => {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
        Some(_) => {}
    }
    let warnings = write::field_validation(request, resource, &mut config)?;
    let precondition = write::resource_version_of(&config)?;
    let force = request.params.flag("force");
    let manager_name = request.params.get("fieldManager").unwrap_or_default().to_owned();
    let api_version = resource.api_version();
    let scope = Scope { resource, subresource: t.subresource.as_deref() };
    let merge = |live: Option<&Value>| {
        let time = objects::now_rfc3339();
        let who = Manager {
            name: &manager_name,
            api_version: &api_version,
            subresource: t.subresource.as_deref(),
            time: &time,
        };
        apply::apply(scope, live, &config, &who, force).map_err(to_api_error)
    };
    // Apply creates what does not exist; a create that loses a race applies to the winner.
    for _ in 0..2 {
        let updated =
            write::apply_update(server, request, precondition, |old| merge(Some(old))).await;
        match updated {
            Err(e)
                if e.code == StatusCode::NOT_FOUND
                    && t.subresource.is_none()
                    && precondition.is_none() =>
            {
                let created = merge(None)?;
                let managed = created["metadata"]["managedFields"].clone();
                match write::create_object(server, request, created, Some(managed)).await {
                    Err(e) if e.reason == "AlreadyExists" => continue,
                    result => return result.map(|r| write::with_warnings(r, &warnings)),
                }
            }
            Ok(response) if scale => {
                return Ok(write::with_warnings(
                    super::subresources::as_scale(response).await?,
                    &warnings,
                ));
            }
            result => return result.map(|r| write::with_warnings(r, &warnings)),
        }
    }
    Err(ApiError::stale(resource.group, resource.plural, &name))
}

/// An applied autoscaling/v1 Scale as the part of its parent it stands for: `spec.replicas`
/// (upstream records the applier's fields against the parent, under subresource `scale`).
fn scale_configuration(resource: &capstan_api::Resource, config: Value) -> ApiResult<Value> {
    let (api_version, kind) = (config["apiVersion"].as_str(), config["kind"].as_str());
    if api_version != Some("autoscaling/v1") || kind != Some("Scale") {
        return Err(ApiError::bad_request(format!(
            "the applied configuration of a scale subresource must be autoscaling/v1 Scale, not {} {}",
            api_version.unwrap_or_default(),
            kind.unwrap_or_default()
        )));
    }
    let mut parent = json!({
        "apiVersion": resource.api_version(),
        "kind": resource.kind,
        "metadata": config["metadata"].clone(),
    });
    if let Some(replicas) = config["spec"].get("replicas") {
        parent["spec"] = json!({"replicas": replicas});
    }
    Ok(parent)
}
