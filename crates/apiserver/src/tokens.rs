//! Service-account tokens: bound JWTs (ES256) signed by a key kept in the data dir, issued
//! through `serviceaccounts/<name>/token`, checked by authentication (the account and any
//! bound pod or secret must still exist), and published through OIDC discovery.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, KeyPair};
use serde_json::{Value, json};

/// The issuer and default audience of every token, as upstream's default.
pub const ISSUER: &str = "https://kubernetes.default.svc.cluster.local";

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("{path}: {message}")]
    Key { path: String, message: String },
}

pub struct TokenIssuer {
    key: EcdsaKeyPair,
    /// Key id: a digest of the public key, so verifiers can pick it from the JWKS.
    kid: String,
    rng: SystemRandom,
}

impl TokenIssuer {
    /// Loads `DIR/tls/service-account.key`, creating it on first start.
    pub fn load_or_create(dir: &Path) -> Result<Self, TokenError> {
        let path = dir.join("tls").join("service-account.key");
        let error = |message: String| TokenError::Key { path: path.display().to_string(), message };
        let pem = match std::fs::read_to_string(&path) {
            Ok(pem) => pem,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = rcgen::KeyPair::generate().map_err(|e| error(e.to_string()))?;
                let pem = key.serialize_pem();
                std::fs::write(&path, &pem).map_err(|e| error(e.to_string()))?;
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                    .map_err(|e| error(e.to_string()))?;
                pem
            }
            Err(e) => return Err(error(e.to_string())),
        };
        let der = rcgen::KeyPair::from_pem(&pem).map_err(|e| error(e.to_string()))?.serialize_der();
        let rng = SystemRandom::new();
        let key = EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &der, &rng)
            .map_err(|e| error(format!("not a P-256 key: {e}")))?;
        let digest = ring::digest::digest(&ring::digest::SHA256, key.public_key().as_ref());
        let kid = URL_SAFE_NO_PAD.encode(&digest.as_ref()[..16]);
        Ok(Self { key, kid, rng })
    }

    /// A signed JWT carrying `claims`.
    pub fn sign(&self, claims: &Value) -> Option<String> {
        let header = json!({"alg": "ES256", "kid": self.kid});
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = self.key.sign(&self.rng, signing_input.as_bytes()).ok()?;
        Some(format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature.as_ref())))
    }

    /// The claims of a token this issuer signed that is in its validity window, for `audience`.
    pub fn verify(&self, token: &str, audience: &str) -> Option<Value> {
        let mut parts = token.split('.');
        let (header, payload, sig) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).ok()?).ok()?;
        if header["alg"] != "ES256" || header["kid"] != self.kid.as_str() {
            return None;
        }
        let public = signature::UnparsedPublicKey::new(
            &signature::ECDSA_P256_SHA256_FIXED,
            self.key.public_key().as_ref(),
        );
        let signature = URL_SAFE_NO_PAD.decode(sig).ok()?;
        public
            .verify(
                format!("{header_b64}.{payload}", header_b64 = token.split('.').next()?).as_bytes(),
                &signature,
            )
            .ok()?;
        let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
        let now = jiff::Timestamp::now().as_second();
        let in_window = claims["exp"].as_i64().is_some_and(|exp| now < exp)
            && claims["nbf"].as_i64().is_none_or(|nbf| now >= nbf);
        let for_us = claims["iss"] == ISSUER
            && claims["aud"].as_array().is_some_and(|a| a.iter().any(|x| x == audience));
        (in_window && for_us).then_some(claims)
    }

    /// The JSON Web Key Set verifiers fetch from `/openid/v1/jwks`.
    pub fn jwks(&self) -> Value {
        let point = self.key.public_key().as_ref();
        // An uncompressed P-256 point: 0x04 || X (32 bytes) || Y (32 bytes).
        let (x, y) = (&point[1..33], &point[33..65]);
        json!({"keys": [{
            "use": "sig", "kty": "EC", "kid": self.kid, "crv": "P-256", "alg": "ES256",
            "x": URL_SAFE_NO_PAD.encode(x), "y": URL_SAFE_NO_PAD.encode(y),
        }]})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_verify_only_unexpired_for_their_audience_and_untampered() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("tls")).unwrap();
        let issuer = TokenIssuer::load_or_create(dir.path()).unwrap();
        let now = jiff::Timestamp::now().as_second();
        let claims = json!({"iss": ISSUER, "aud": [ISSUER], "sub": "system:serviceaccount:default:x", "iat": now, "nbf": now, "exp": now + 600});
        let token = issuer.sign(&claims).unwrap();
        assert_eq!(issuer.verify(&token, ISSUER), Some(claims.clone()));
        assert!(issuer.verify(&token, "someone-else").is_none());
        let expired =
            issuer.sign(&json!({"iss": ISSUER, "aud": [ISSUER], "exp": now - 1})).unwrap();
        assert!(issuer.verify(&expired, ISSUER).is_none());
        let mut tampered = token.clone();
        tampered.replace_range(token.len() - 3.., "AAA");
        assert!(issuer.verify(&tampered, ISSUER).is_none());
        // The same key is used after a restart.
        let again = TokenIssuer::load_or_create(dir.path()).unwrap();
        assert!(again.verify(&token, ISSUER).is_some());
        assert_eq!(issuer.jwks()["keys"][0]["crv"], "P-256");
    }
}
