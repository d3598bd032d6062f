//! Authentication: client certificates signed by the cluster CA (user = CN, groups = O) and
//! bearer tokens; anonymous requests may only read health and version.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::ApiServer;
use crate::status::ApiError;
use crate::tokens::ISSUER;

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

/// What authentication checks bearer tokens against.
pub struct Authenticator {
    /// Static tokens (the agent join token).
    pub tokens: HashMap<String, Identity>,
    /// Service-account tokens are checked against the live accounts and bound objects.
    pub server: Arc<ApiServer>,
}

impl Authenticator {
    /// Who a bearer token belongs to, if it is valid for `audience` (the API server's own
    /// audience is the issuer; the static tokens are valid for it alone).
    pub async fn token_identity(&self, token: &str, audience: &str) -> Option<Identity> {
        if let Some(identity) = self.tokens.get(token) {
            return (audience == ISSUER).then(|| identity.clone());
        }
        let claims = self.server.tokens.verify(token, audience)?;
        let k8s = &claims["kubernetes.io"];
        let namespace = k8s["namespace"].as_str()?;
        let account = k8s["serviceaccount"]["name"].as_str()?;
        // A token outlives nothing it is bound to: the account, and any pod or secret.
        let mut bound = vec![("serviceaccounts", account, k8s["serviceaccount"]["uid"].as_str()?)];
        for (plural, field) in [("pods", "pod"), ("secrets", "secret")] {
            if let (Some(name), Some(uid)) =
                (k8s[field]["name"].as_str(), k8s[field]["uid"].as_str())
            {
                bound.push((plural, name, uid));
            }
        }
        for (plural, name, uid) in bound {
            let resource = capstan_api::registry::find("", "v1", plural)?;
            let object =
                self.server.cache_for(resource).ok()?.get(&resource.key(Some(namespace), name))?;
            if object.value()["metadata"]["uid"] != uid {
                return None;
            }
        }
        Some(Identity {
            user: format!("system:serviceaccount:{namespace}:{account}"),
            groups: vec![
                "system:serviceaccounts".into(),
                format!("system:serviceaccounts:{namespace}"),
                "system:authenticated".into(),
            ],
        })
    }
}

/// Paths anyone may read, like upstream's system:public-info-viewer.
fn is_public(path: &str) -> bool {
    matches!(path, "/healthz" | "/livez" | "/readyz" | "/version")
        || path.starts_with("/healthz/")
        || path.starts_with("/livez/")
        || path.starts_with("/readyz/")
}

pub async fn authenticate(
    State(authenticator): State<Arc<Authenticator>>,
    mut request: Request,
    next: Next,
) -> Response {
    let from_cert = request.extensions().get::<PeerCertificate>().and_then(|p| p.0.clone());
    let bearer = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|token| token.trim().to_owned());
    let from_token = match bearer {
        Some(token) => Some(authenticator.token_identity(&token, ISSUER).await),
        None => None,
    };
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
    // Token reviews ask the same questions of other tokens.
    request.extensions_mut().insert(authenticator);
    next.run(request).await
}
