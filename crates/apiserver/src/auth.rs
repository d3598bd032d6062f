//! Authentication: client certificates signed by the cluster CA (user = CN, groups = O) and
//! bearer tokens; anonymous requests may only read health and version.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::status::ApiError;

/// Who is calling.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub user: String,
    pub groups: Vec<String>,
}

/// The verified client certificate of a TLS connection, if it presented one.
#[derive(Clone, Debug)]
pub struct PeerCertificate(pub Option<Identity>);

impl Identity {
    /// The user a verified client certificate names: CN is the user, each O a group.
    pub fn from_certificate(der: &[u8]) -> Option<Self> {
        let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
        let subject = cert.subject();
        let user = subject.iter_common_name().next()?.as_str().ok()?.to_owned();
        let mut groups: Vec<String> = subject
            .iter_organization()
            .filter_map(|o| o.as_str().ok().map(str::to_owned))
            .collect();
        groups.push("system:authenticated".into());
        Some(Self { user, groups })
    }
}

/// Bearer tokens the server accepts.
#[derive(Default)]
pub struct Tokens(pub HashMap<String, Identity>);

/// Paths anyone may read, like upstream's system:public-info-viewer.
fn is_public(path: &str) -> bool {
    matches!(path, "/healthz" | "/livez" | "/readyz" | "/version")
        || path.starts_with("/healthz/")
        || path.starts_with("/livez/")
        || path.starts_with("/readyz/")
}

pub async fn authenticate(
    State(tokens): State<Arc<Tokens>>,
    mut request: Request,
    next: Next,
) -> Response {
    let from_cert = request.extensions().get::<PeerCertificate>().and_then(|p| p.0.clone());
    let from_token = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|token| tokens.0.get(token.trim()).cloned());
    let identity = match (from_token, from_cert) {
        // A token that is presented must be valid, whatever certificate came with it.
        (Some(None), _) => return ApiError::unauthorized().into_response(),
        (Some(Some(identity)), _) | (None, Some(identity)) => identity,
        (None, None) if is_public(request.uri().path()) => Identity {
            user: "system:anonymous".into(),
            groups: vec!["system:unauthenticated".into()],
        },
        (None, None) => return ApiError::unauthorized().into_response(),
    };
    request.extensions_mut().insert(identity);
    next.run(request).await
}
