//! Validation on the write path: runs `capstan_api::validation` after defaulting and
//! admission and answers a failure as upstream's 422 Invalid listing every offending field.

use capstan_api::Resource;
use capstan_api::validation::{self, Cause};
use serde_json::Value;

use crate::status::{ApiError, ApiResult};

/// Refuses a new object with any invalid field.
pub fn check_create(resource: &Resource, object: &Value) -> ApiResult<()> {
    refuse(resource, object, validation::validate_create(resource, object))
}

/// Refuses an update (of the object or of `subresource`) that is invalid or changes an
/// immutable field.
pub fn check_update(
    resource: &Resource,
    old: &Value,
    new: &Value,
    subresource: Option<&str>,
) -> ApiResult<()> {
    refuse(resource, new, validation::validate_update(resource, old, new, subresource))
}

fn refuse(resource: &Resource, object: &Value, causes: Vec<Cause>) -> ApiResult<()> {
    if causes.is_empty() {
        return Ok(());
    }
    let name = object["metadata"]["name"].as_str().unwrap_or_default();
    let causes = causes.into_iter().map(|c| (c.field, c.reason.to_owned(), c.message)).collect();
    Err(ApiError::invalid(resource.group, resource.kind, name, causes))
}
