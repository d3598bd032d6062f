//! The HTTP surface: health, version, discovery, OpenAPI, and every resource path.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use crate::ApiServer;
use crate::auth::{Authenticator, Identity, authenticate};
use crate::handlers::{self, MAX_BODY_BYTES, Params, value_response};
use crate::status::ApiError;
use crate::{connect, discovery};

pub fn router(server: Arc<ApiServer>, authenticator: Arc<Authenticator>) -> Router {
    Router::new()
        .route("/healthz", get(ok))
        .route("/livez", get(ok))
        .route("/readyz", get(ok))
        .route("/version", get(version))
        .route("/metrics", get(metrics))
        .route("/.well-known/openid-configuration", get(openid_configuration))
        .route("/openid/v1/jwks", get(jwks))
        .route("/openapi/v2", get(openapi_v2))
        .route("/openapi/v3", get(openapi_v3_index))
        .route("/openapi/v3/{*path}", get(openapi_v3))
        .fallback(api)
        .with_state(server)
        .layer(axum::middleware::from_fn_with_state(authenticator, authenticate))
}

/// OIDC discovery for service-account token verifiers.
async fn openid_configuration(State(server): State<Arc<ApiServer>>) -> Response {
    let jwks_uri = format!("{}/openid/v1/jwks", server.url());
    value_response(
        StatusCode::OK,
        &json!({
            "issuer": crate::tokens::ISSUER,
            "jwks_uri": jwks_uri,
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["ES256"],
        }),
    )
}

async fn jwks(State(server): State<Arc<ApiServer>>) -> Response {
    let mut response = value_response(StatusCode::OK, &server.tokens.jwks());
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/jwk-set+json"));
    response
}

/// Prometheus text: what the in-process components count (authenticated, as upstream's is).
async fn metrics(State(server): State<Arc<ApiServer>>) -> Response {
    let text = server.config.metrics.0.as_ref().map(|render| render()).unwrap_or_default();
    let mut response = text.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

async fn ok() -> &'static str {
    "ok"
}

async fn version() -> Response {
    value_response(
        StatusCode::OK,
        &json!({
            "major": "1",
            "minor": "33",
            "emulationMajor": "1",
            "emulationMinor": "33",
            "gitVersion": format!("v1.33.0+capstan-{}", env!("CARGO_PKG_VERSION")),
            "gitCommit": "",
            "gitTreeState": "clean",
            "buildDate": "1970-01-01T00:00:00Z",
            "goVersion": "none (capstan is written in Rust)",
            "compiler": "rustc",
            "platform": format!("{}/{}", std::env::consts::OS, if cfg!(target_arch = "x86_64") { "amd64" } else { std::env::consts::ARCH }),
        }),
    )
}

fn bytes_response(content_type: &str, body: &'static [u8]) -> Response {
    let mut response = (StatusCode::OK, Body::from(body)).into_response();
    if let Ok(v) = HeaderValue::from_str(content_type) {
        response.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    response
}

/// `/openapi/v2`: protobuf when asked for (client-go only asks for that), JSON otherwise.
async fn openapi_v2(headers: HeaderMap) -> Response {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("");
    if capstan_api::openapi::accepts_v2_protobuf(accept) {
        return bytes_response(
            capstan_api::openapi::V2_PROTOBUF_CONTENT_TYPE,
            capstan_api::openapi::v2_protobuf(),
        );
    }
    bytes_response("application/json", capstan_api::openapi::v2_json())
}

async fn openapi_v3_index() -> Response {
    let mut response =
        (StatusCode::OK, Body::from(capstan_api::openapi::v3_index())).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

async fn openapi_v3(axum::extract::Path(path): axum::extract::Path<String>, uri: Uri) -> Response {
    let Some(document) = capstan_api::openapi::v3_document(&path) else {
        return ApiError::not_found_path().into_response();
    };
    let mut response = bytes_response("application/json", document);
    // A request naming the current hash may be cached for good, as upstream allows.
    let hash = Params::parse(uri.query()).get("hash").map(str::to_owned);
    if hash.is_some() && hash.as_deref() == capstan_api::openapi::v3_hash(&path) {
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("public, immutable"));
    }
    response
}

/// Bodies are drained up to this size before a 413, so an HTTP/1.1 client that is still
/// sending reads the answer instead of a reset connection.
const DRAIN_LIMIT: usize = 64 * 1024 * 1024;

/// The request body, refused with 413 over `MAX_BODY_BYTES`.
async fn read_body(body: Body) -> Result<bytes::Bytes, ApiError> {
    use http_body_util::BodyExt;
    let mut body = body;
    let mut collected = bytes::BytesMut::new();
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let frame =
            frame.map_err(|e| ApiError::bad_request(format!("reading the request body: {e}")))?;
        let Ok(data) = frame.into_data() else { continue };
        seen += data.len();
        if seen <= MAX_BODY_BYTES {
            collected.extend_from_slice(&data);
        } else if seen > DRAIN_LIMIT {
            break;
        }
    }
    if seen > MAX_BODY_BYTES {
        return Err(ApiError::too_large(format!(
            "the request body is over the {MAX_BODY_BYTES}-byte limit"
        )));
    }
    Ok(collected.freeze())
}

/// Discovery documents, then resource requests.
async fn api(
    State(server): State<Arc<ApiServer>>,
    // Authentication has run: only authenticated requests get here.
    Extension(identity): Extension<Identity>,
    request: axum::extract::Request,
) -> Response {
    match serve_api(server, identity, request).await {
        Ok(response) => response,
        Err(e) => e.into_response(),
    }
}

async fn serve_api(
    server: Arc<ApiServer>,
    user: Identity,
    request: axum::extract::Request,
) -> Result<Response, ApiError> {
    let (method, uri, headers) =
        (request.method().clone(), request.uri().clone(), request.headers().clone());
    let path = uri.path().trim_end_matches('/');
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("");
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let discovery_doc = match segments.as_slice() {
        ["api"] | ["apis"] => {
            if let Some(version) = discovery::aggregated_version(accept) {
                let document = discovery::aggregated(segments[0] == "api", version);
                let mut response = value_response(StatusCode::OK, &document);
                if let Ok(v) = HeaderValue::from_str(&discovery::aggregated_content_type(version)) {
                    response.headers_mut().insert(header::CONTENT_TYPE, v);
                }
                return Ok(response);
            }
            Some(if segments[0] == "api" {
                let address = format!("{}:{}", server.config.advertise_address, server.config.port);
                discovery::api_versions(&address)
            } else {
                discovery::api_group_list()
            })
        }
        ["apis", group] => Some(discovery::api_group(group).ok_or_else(ApiError::not_found_path)?),
        ["api", version] => {
            Some(discovery::api_resource_list("", version).ok_or_else(ApiError::not_found_path)?)
        }
        ["apis", group, version] => Some(
            discovery::api_resource_list(group, version).ok_or_else(ApiError::not_found_path)?,
        ),
        _ => None,
    };
    if let Some(document) = discovery_doc {
        if method != Method::GET {
            return Err(ApiError::method_not_allowed(format!("{method} is not allowed on {path}")));
        }
        return Ok(value_response(StatusCode::OK, &document));
    }
    let (target, legacy_watch) = handlers::parse_path(path)?;
    if target.resource.plural == "pods"
        && target.subresource.as_deref().is_some_and(|s| connect::POD_CONNECT.contains(&s))
    {
        return connect::serve(&server, &target, request).await;
    }
    let mut params = Params::parse(uri.query());
    if legacy_watch {
        params = Params::parse(Some(&format!("{}&watch=true", uri.query().unwrap_or(""))));
    }
    let authenticator = request.extensions().get::<Arc<Authenticator>>().cloned();
    let omit_managed_fields = request.extensions().get::<handlers::OmitManagedFields>().is_some();
    let body = read_body(request.into_body()).await?;
    let request = handlers::Request {
        user,
        authenticator,
        method,
        target,
        params,
        headers,
        body,
        omit_managed_fields,
    };
    handlers::dispatch(server, request).await
}
