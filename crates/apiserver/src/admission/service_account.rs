//! ServiceAccount admission: a pod runs as `default` unless it names an account, and the
//! account must exist in its namespace.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::ApiServer;
use crate::status::{ApiError, ApiResult};

pub async fn admit(server: &Arc<ApiServer>, pod: &mut Value) -> ApiResult<()> {
    let namespace = pod["metadata"]["namespace"].as_str().unwrap_or("default").to_owned();
    let name = pod["spec"]["serviceAccountName"]
        .as_str()
        .or_else(|| pod["spec"]["serviceAccount"].as_str())
        .filter(|n| !n.is_empty())
        .unwrap_or("default")
        .to_owned();
    if server.cached("", "serviceaccounts", Some(&namespace), &name).await?.is_none() {
        return Err(ApiError::forbidden(format!(
            "error looking up service account {namespace}/{name}: serviceaccount \"{name}\" not found"
        )));
    }
    if pod["spec"].is_object() {
        pod["spec"]["serviceAccountName"] = json!(name);
        // The deprecated alias is kept in step, as upstream does.
        pod["spec"]["serviceAccount"] = json!(name);
    }
    Ok(())
}
