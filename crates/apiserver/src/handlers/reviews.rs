//! Reviews — TokenReview, SelfSubjectReview and the access reviews: created to ask a question,
//! answered in their status, never stored.

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};

use super::{Request, value_response};
use crate::auth::Identity;
use crate::objects;
use crate::status::{ApiError, ApiResult};
use crate::tokens::ISSUER;

/// What every access review answers while authorization is not enforced.
const NOT_ENFORCED: &str =
    "capstan does not enforce authorization yet: every authenticated user may do everything";

pub async fn create(request: &Request) -> ApiResult<Response> {
    let resource = request.target.resource;
    let mut review = request.json_body()?;
    objects::check_type(resource, &mut review, resource.kind, &resource.api_version())?;
    crate::typecheck::check(resource, &review)?;
    let status = match resource.kind {
        "TokenReview" => token_review(request, &review).await?,
        "SelfSubjectReview" => json!({"userInfo": user_info(&request.user)}),
        _ => {
            if review["spec"]["resourceAttributes"].is_null()
                == review["spec"]["nonResourceAttributes"].is_null()
            {
                return Err(invalid(
                    resource.kind,
                    "spec.resourceAttributes",
                    "exactly one of nonResourceAttributes or resourceAttributes must be specified",
                ));
            }
            json!({"allowed": true, "reason": NOT_ENFORCED})
        }
    };
    if let Some(object) = review.as_object_mut() {
        object.insert("status".into(), status);
        object
            .entry("metadata")
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .map(|m| m.insert("creationTimestamp".into(), Value::Null));
    }
    Ok(value_response(StatusCode::CREATED, &review))
}

async fn token_review(request: &Request, review: &Value) -> ApiResult<Value> {
    let token = review["spec"]["token"].as_str().unwrap_or_default();
    if token.is_empty() {
        return Err(invalid("TokenReview", "spec.token", "token must not be empty"));
    }
    let asked: Vec<String> = review["spec"]["audiences"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect())
        .unwrap_or_default();
    let audiences = if asked.is_empty() { vec![ISSUER.to_owned()] } else { asked.clone() };
    let Some(authenticator) = &request.authenticator else {
        return Err(ApiError::internal("no authenticator for token reviews"));
    };
    for audience in &audiences {
        if let Some(identity) = authenticator.token_identity(token, audience).await {
            return Ok(json!({
                "authenticated": true,
                "user": user_info(&identity),
                "audiences": [audience],
            }));
        }
    }
    Ok(json!({"authenticated": false, "user": {}, "error": "invalid bearer token"}))
}

fn user_info(identity: &Identity) -> Value {
    json!({"username": identity.user, "groups": identity.groups})
}

fn invalid(kind: &str, field: &str, message: &str) -> ApiError {
    let group =
        if kind == "TokenReview" { "authentication.k8s.io" } else { "authorization.k8s.io" };
    ApiError::invalid(
        group,
        kind,
        "",
        vec![(field.to_owned(), "FieldValueRequired".to_owned(), message.to_owned())],
    )
}
