//! REST handlers: routing Kubernetes paths to resources, decoding requests, negotiating the
//! response form (object, Table, PartialObjectMetadata), and the verbs themselves.

mod apply;
mod read;
mod reviews;
mod subresources;
mod watch;
mod write;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use capstan_api::protobuf::{self, DecodeError};
use capstan_api::{Resource, registry};
use serde_json::Value;

use crate::auth::{Authenticator, Identity};
use crate::status::{ApiError, ApiResult};
use crate::{ApiServer, admission};

/// Request bodies over this are refused with 413, like upstream's 3 MiB limit.
pub const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;

/// What a resource path names.
#[derive(Debug)]
pub struct Target {
    pub resource: &'static Resource,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub subresource: Option<String>,
}

/// Splits `/api/v1/...` or `/apis/<group>/<version>/...` into a target and whether it used the
/// legacy `/watch/` prefix.
pub fn parse_path(path: &str) -> ApiResult<(Target, bool)> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, version, mut rest) = match segments.as_slice() {
        ["api", version, rest @ ..] => ("", *version, rest),
        ["apis", group, version, rest @ ..] => (*group, *version, rest),
        _ => return Err(ApiError::not_found_path()),
    };
    let mut legacy_watch = false;
    if rest.first() == Some(&"watch") {
        legacy_watch = true;
        rest = &rest[1..];
    }
    let find =
        |plural: &str| registry::find(group, version, plural).ok_or_else(ApiError::not_found_path);
    let (namespace, plural, tail) = match rest {
        ["namespaces", namespace, plural, tail @ ..]
            if registry::find(group, version, plural).is_some_and(|r| r.namespaced) =>
        {
            (Some((*namespace).to_owned()), *plural, tail)
        }
        [plural, tail @ ..] => (None, *plural, tail),
        _ => return Err(ApiError::not_found_path()),
    };
    let resource = find(plural)?;
    let (name, subresource) = match tail {
        [] => (None, None),
        [name] => (Some(*name), None),
        [name, sub] => (Some(*name), Some(*sub)),
        _ => return Err(ApiError::not_found_path()),
    };
    // A namespaced object is only named inside its namespace (without one, it is listable
    // across all namespaces).
    if resource.namespaced && namespace.is_none() && name.is_some() {
        return Err(ApiError::not_found_path());
    }
    let target = Target {
        resource,
        namespace,
        name: name.map(str::to_owned),
        subresource: subresource.map(str::to_owned),
    };
    if let Some(name) = &target.name
        && (name.is_empty() || name == "." || name == ".." || name.contains('%'))
    {
        return Err(ApiError::bad_request(format!("invalid resource name {name:?}")));
    }
    if let Some(sub) = &target.subresource
        && target.resource.subresource(sub).is_none()
    {
        return Err(ApiError::not_found_path());
    }
    Ok((target, legacy_watch))
}

/// Query parameters, first value wins.
#[derive(Clone)]
pub struct Params(HashMap<String, String>);

impl Params {
    pub fn parse(query: Option<&str>) -> Self {
        let mut map = HashMap::new();
        for (k, v) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            map.entry(k.into_owned()).or_insert_with(|| v.into_owned());
        }
        Self(map)
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str).filter(|v| !v.is_empty())
    }

    pub fn flag(&self, key: &str) -> bool {
        matches!(self.get(key), Some("true" | "1"))
    }

    pub fn int(&self, key: &str) -> ApiResult<Option<i64>> {
        self.get(key)
            .map(|v| {
                v.parse::<i64>().map_err(|_| {
                    ApiError::bad_request(format!("{key}: invalid value {v:?}: must be an integer"))
                })
            })
            .transpose()
    }
}

/// How the client wants objects back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Form {
    Object,
    Table,
    PartialObjectMetadata,
}

/// Picks the response form from `Accept`; 406 when nothing acceptable is offered.
pub fn negotiate(headers: &HeaderMap) -> ApiResult<Form> {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("*/*");
    for media in accept.split(',') {
        let parts: Vec<&str> = media.split(';').map(str::trim).collect();
        let base = parts[0];
        if !matches!(base, "application/json" | "*/*" | "application/*" | "") {
            continue;
        }
        let is = |p: &str| parts.contains(&p);
        if is("as=Table") {
            if is("g=meta.k8s.io") && (is("v=v1") || is("v=v1beta1")) {
                return Ok(Form::Table);
            }
            continue;
        }
        if is("as=PartialObjectMetadata") || is("as=PartialObjectMetadataList") {
            if is("g=meta.k8s.io") {
                return Ok(Form::PartialObjectMetadata);
            }
            continue;
        }
        if parts.iter().any(|p| p.starts_with("as=")) {
            continue;
        }
        return Ok(Form::Object);
    }
    Err(ApiError::not_acceptable(format!(
        "only the following media types are accepted: application/json (asked for {accept:?})"
    )))
}

pub fn json_response(code: StatusCode, body: impl Into<Body>) -> Response {
    (code, [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], body.into())
        .into_response()
}

pub fn value_response(code: StatusCode, value: &Value) -> Response {
    json_response(code, serde_json::to_vec(value).unwrap_or_default())
}

/// Everything a verb needs about one request.
pub struct Request {
    /// Who is asking, as authentication found.
    pub user: Identity,
    /// For token reviews.
    pub authenticator: Option<Arc<Authenticator>>,
    pub method: Method,
    pub target: Target,
    pub params: Params,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// Reads serve objects without `metadata.managedFields`: the caller is a component in the
    /// server's own process ([`OmitManagedFields`]), none of which reads them.
    pub omit_managed_fields: bool,
}

/// Marks a request from a component inside the server's process (an extension, so no remote
/// client can set it): objects it reads come without managedFields, which are often most of an
/// object's size and which it would decode only to drop.
#[derive(Debug, Clone, Copy)]
pub struct OmitManagedFields;

impl Request {
    pub fn form(&self) -> ApiResult<Form> {
        negotiate(&self.headers)
    }

    /// The request body as a JSON object. Protobuf bodies (client-go's typed clients send
    /// them, kubectl's generators among them) become the JSON a JSON client would have sent;
    /// YAML bodies are refused with 415.
    pub fn json_body(&self) -> ApiResult<Value> {
        let content_type = self
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("application/json");
        let base = content_type.split(';').next().unwrap_or("").trim();
        match base {
            "application/json" | "" => serde_json::from_slice(&self.body).map_err(|e| {
                ApiError::bad_request(format!("the request body is not valid JSON: {e}"))
            }),
            protobuf::MEDIA_TYPE => protobuf::decode(&self.body).map_err(|e| match e {
                // Like upstream for custom resources: a kind without a protobuf schema is an
                // unsupported media type, not a malformed body.
                DecodeError::UnknownKind { .. } | DecodeError::UnsupportedEncoding(_) => {
                    let mut error = ApiError::unsupported_media_type(content_type);
                    error.message = e.to_string();
                    error
                }
                DecodeError::Malformed(_) => ApiError::bad_request(e.to_string()),
            }),
            _ => Err(ApiError::unsupported_media_type(content_type)),
        }
    }

    pub fn user_agent(&self) -> Option<&str> {
        self.headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok())
    }
}

/// The longest a request that is not a watch may take, as upstream's `--request-timeout`; a
/// request's `timeout` parameter may shorten it.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Routes a resource request to its verb, within its deadline (watches end by their own).
pub async fn dispatch(server: Arc<ApiServer>, request: Request) -> ApiResult<Response> {
    if request.params.flag("watch") {
        return route(server, request).await;
    }
    let deadline = match request.params.get("timeout") {
        None => REQUEST_TIMEOUT,
        Some(text) => parse_duration(text)
            .filter(|d| !d.is_zero())
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "invalid timeout specified in the request URL: {text:?}"
                ))
            })?
            .min(REQUEST_TIMEOUT),
    };
    let verb = if request.target.name.is_some() || request.method != Method::GET {
        request.method.as_str().to_lowercase()
    } else {
        "list".to_owned()
    };
    let plural = request.target.resource.plural;
    tokio::time::timeout(deadline, route(server, request)).await.unwrap_or_else(|_| {
        Err(ApiError::timeout(format!(
            "The {verb} operation against {plural} could not be completed at this time, please try again."
        )))
    })
}

/// NodeRestriction for creates, deletes and evictions by a node (updates are checked against
/// the object they would store, in the update path).
async fn restrict_node_before(server: &Arc<ApiServer>, request: &Request) -> ApiResult<()> {
    use admission::node_restriction::Verb;
    let t = &request.target;
    let verb = match (&request.method, t.subresource.as_deref()) {
        (&Method::POST, None) => Verb::Create,
        (&Method::POST, Some("eviction")) => Verb::Create,
        (&Method::DELETE, _) => Verb::Delete,
        _ => return Ok(()),
    };
    let object = match verb {
        Verb::Create if t.subresource.is_none() => Some(request.json_body()?),
        _ => None,
    };
    let name = match (&t.name, &object) {
        (Some(name), _) => name.clone(),
        (None, Some(object)) => object["metadata"]["name"].as_str().unwrap_or_default().to_owned(),
        (None, None) => String::new(),
    };
    let stored = match &t.name {
        Some(name) if t.resource.version == "v1" => server
            .cached(t.resource.group, t.resource.plural, t.namespace.as_deref(), name)
            .await?
            .map(|o| o.value()),
        _ => None,
    };
    restrict_node(request, verb, &name, object.as_ref(), stored.as_ref())
}

/// Refuses with 403 what NodeRestriction does not let the requesting node write.
pub(crate) fn restrict_node(
    request: &Request,
    verb: admission::node_restriction::Verb,
    name: &str,
    object: Option<&Value>,
    stored: Option<&Value>,
) -> ApiResult<()> {
    let Some(node) = admission::node_restriction::node_of(&request.user) else { return Ok(()) };
    let t = &request.target;
    let write = admission::node_restriction::Write {
        group: t.resource.group,
        plural: t.resource.plural,
        subresource: t.subresource.as_deref(),
        namespace: t.namespace.as_deref(),
        name,
        verb,
        object,
        stored,
    };
    admission::node_restriction::check(node, &write).map_err(|why| {
        let what = crate::status::qualified(t.resource.group, t.resource.plural);
        ApiError::forbidden(format!("{what} \"{name}\" is forbidden: {why}"))
    })
}

/// A Go duration such as `30s`, `1m30s` or `500ms`.
fn parse_duration(text: &str) -> Option<Duration> {
    if text.is_empty() {
        return None;
    }
    let mut rest = text;
    let mut total = 0f64;
    while !rest.is_empty() {
        let number_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let value: f64 = rest[..number_end].parse().ok()?;
        rest = &rest[number_end..];
        let unit_end = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let seconds = match &rest[..unit_end] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += value * seconds;
        rest = &rest[unit_end..];
    }
    (total.is_finite() && total < 1e9).then(|| Duration::from_secs_f64(total))
}

async fn route(server: Arc<ApiServer>, request: Request) -> ApiResult<Response> {
    let watch = request.params.flag("watch");
    let t = &request.target;
    if t.resource.is_review() {
        if request.method != Method::POST || t.name.is_some() {
            return Err(ApiError::method_not_allowed(format!(
                "{} is not supported on {}: reviews can only be created",
                request.method, t.resource.plural
            )));
        }
        return reviews::create(&request).await;
    }
    if admission::node_restriction::node_of(&request.user).is_some() {
        restrict_node_before(&server, &request).await?;
    }
    let mut response = match (&request.method, t.name.is_some(), t.subresource.as_deref()) {
        (&Method::GET, false, None) if watch => watch::watch(&server, &request).await?,
        (&Method::GET, false, None) => read::list(&server, &request).await?,
        (&Method::GET, true, None | Some("status" | "scale")) => {
            read::get(&server, &request).await?
        }
        (&Method::POST, false, None) => write::create(&server, &request).await?,
        (&Method::PUT, true, None | Some("status" | "finalize" | "approval")) => {
            write::update(&server, &request).await?
        }
        (&Method::PATCH, true, None | Some("status" | "scale")) => {
            write::patch(&server, &request).await?
        }
        (&Method::PUT, true, Some("scale")) => {
            subresources::update_scale(&server, &request).await?
        }
        (&Method::POST, true, Some("binding")) => subresources::bind(&server, &request).await?,
        (&Method::POST, true, Some("token")) => {
            subresources::request_token(&server, &request).await?
        }
        (&Method::POST, true, Some("eviction")) => subresources::evict(&server, &request).await?,
        (&Method::DELETE, true, None) => write::delete(&server, &request).await?,
        (&Method::DELETE, false, None) => write::delete_collection(&server, &request).await?,
        (method, _, sub) => {
            return Err(ApiError::method_not_allowed(format!(
                "{method} is not supported on {}{}{} by this server yet",
                t.resource.plural,
                if t.name.is_some() { "/{name}" } else { "" },
                sub.map(|s| format!("/{s}")).unwrap_or_default()
            )));
        }
    };
    // Only writes warn: a list or watch of such objects is not a mistake worth flagging.
    let writes = matches!(request.method, Method::POST | Method::PUT | Method::PATCH);
    if t.resource.controller_pending && writes {
        let warning = format!(
            "299 - \"capstan has no {} controller yet: these objects are stored and served but nothing acts on them\"",
            t.resource.kind
        );
        if let Ok(value) = HeaderValue::from_str(&warning) {
            response.headers_mut().append(header::WARNING, value);
        }
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    #[test]
    fn go_durations_parse_like_go() {
        use std::time::Duration;
        assert_eq!(super::parse_duration("30s"), Some(Duration::from_secs(30)));
        assert_eq!(super::parse_duration("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(super::parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(super::parse_duration("1.5h"), Some(Duration::from_secs(5400)));
        for bad in ["", "30", "s", "1x", "-1s", "1e9h"] {
            assert_eq!(super::parse_duration(bad), None, "{bad:?}");
        }
    }

    use super::*;

    #[test]
    fn paths_resolve_to_targets() {
        let (t, watch) = parse_path("/api/v1/namespaces/default/pods/web/status").unwrap();
        assert_eq!(
            (
                t.resource.plural,
                t.namespace.as_deref(),
                t.name.as_deref(),
                t.subresource.as_deref()
            ),
            ("pods", Some("default"), Some("web"), Some("status"))
        );
        assert!(!watch);
        let (t, _) = parse_path("/api/v1/namespaces/kube-system").unwrap();
        assert_eq!((t.resource.plural, t.name.as_deref()), ("namespaces", Some("kube-system")));
        let (t, _) = parse_path("/api/v1/namespaces/x/status").unwrap();
        assert_eq!((t.resource.plural, t.subresource.as_deref()), ("namespaces", Some("status")));
        let (t, watch) = parse_path("/apis/apps/v1/watch/namespaces/a/deployments").unwrap();
        assert!(watch && t.resource.plural == "deployments" && t.namespace.as_deref() == Some("a"));
        let (t, _) = parse_path("/apis/apps/v1/deployments").unwrap();
        assert!(t.namespace.is_none() && t.name.is_none());
        assert!(parse_path("/api/v1/pods/x").is_err(), "namespaced objects need a namespace");
        assert!(parse_path("/api/v1/nonsense").is_err());
        assert!(parse_path("/api/v1/namespaces/a/pods/x/bogus").is_err());
        assert!(parse_path("/apis/apps/v9/deployments").is_err());
    }

    #[test]
    fn accept_headers_pick_the_form() {
        let form = |accept: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::ACCEPT, HeaderValue::from_str(accept).unwrap());
            negotiate(&h)
        };
        let kubectl = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";
        assert_eq!(form(kubectl).unwrap(), Form::Table);
        assert_eq!(form("application/json").unwrap(), Form::Object);
        assert_eq!(
            form("application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1").unwrap(),
            Form::PartialObjectMetadata
        );
        assert_eq!(
            form("application/vnd.kubernetes.protobuf").unwrap_err().code,
            StatusCode::NOT_ACCEPTABLE
        );
    }
}
