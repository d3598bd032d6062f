//! CertificateSigningRequests: the PEM request, signer name, usages, duration, and
//! approval conditions.

use base64::Engine;
use serde_json::Value;

use super::*;

const USAGES: &[&str] = &[
    "signing",
    "digital signature",
    "content commitment",
    "key encipherment",
    "key agreement",
    "data encipherment",
    "cert sign",
    "crl sign",
    "encipher only",
    "decipher only",
    "any",
    "server auth",
    "client auth",
    "code signing",
    "email protection",
    "s/mime",
    "ipsec end system",
    "ipsec tunnel",
    "ipsec user",
    "timestamping",
    "ocsp signing",
    "microsoft sgc",
    "netscape sgc",
];

pub(super) fn certificate_signing_request(object: &Value, errs: &mut Vec<Cause>) {
    let spec = &object["spec"];
    let request = string(spec, "request");
    if request.is_empty() {
        errs.push(required("spec.request", ""));
    } else {
        let pem = base64::engine::general_purpose::STANDARD.decode(request).unwrap_or_default();
        if !String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE REQUEST-----") {
            errs.push(invalid(
                "spec.request",
                &Value::from("<redacted>"),
                "PEM block type must be CERTIFICATE REQUEST",
            ));
        }
    }
    let usages = list(spec, "usages");
    if usages.is_empty() {
        errs.push(required("spec.usages", ""));
    }
    for (i, usage) in usages.iter().enumerate() {
        if !usage.as_str().is_some_and(|u| USAGES.contains(&u)) {
            errs.push(not_supported(&index("spec.usages", i), usage, USAGES));
        }
    }
    let signer = string(spec, "signerName");
    if signer.is_empty() {
        errs.push(required("spec.signerName", ""));
    } else {
        let valid = signer.split_once('/').is_some_and(|(domain, path)| {
            super::names::is_subdomain(domain) && domain.contains('.') && !path.is_empty()
        });
        if !valid {
            errs.push(invalid_str(
                "spec.signerName",
                signer,
                "must be a fully qualified domain and path of the form 'example.com/signer-name'",
            ));
        }
    }
    if let Some(seconds) = spec["expirationSeconds"].as_i64()
        && seconds < 600
    {
        errs.push(invalid(
            "spec.expirationSeconds",
            &Value::from(seconds),
            "may not specify a duration less than 600 seconds (10 minutes)",
        ));
    }
    conditions(object, errs);
}

/// Conditions are unique by type, and a request is not both Approved and Denied.
pub(super) fn conditions(object: &Value, errs: &mut Vec<Cause>) {
    let conditions = list(&object["status"], "conditions");
    let mut seen = Vec::new();
    for (i, condition) in conditions.iter().enumerate() {
        let path = index("status.conditions", i);
        let kind = string(condition, "type");
        if kind.is_empty() {
            errs.push(required(&child(&path, "type"), ""));
        } else if seen.contains(&kind) && matches!(kind, "Approved" | "Denied" | "Failed") {
            errs.push(duplicate(&child(&path, "type"), &Value::from(kind)));
        }
        seen.push(kind);
        one_of(
            condition,
            "status",
            &child(&path, "status"),
            &["True", "False", "Unknown"],
            true,
            errs,
        );
    }
    if seen.contains(&"Approved") && seen.contains(&"Denied") {
        errs.push(invalid(
            "status.conditions",
            &object["status"]["conditions"],
            "Approved and Denied conditions are mutually exclusive",
        ));
    }
}
