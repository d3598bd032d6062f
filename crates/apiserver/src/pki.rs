//! The cluster's certificates: a CA made on first start and kept in the data dir, a serving
//! certificate for every address the API server answers on, the admin client certificate, the
//! admin kubeconfig and the agent join token.

use std::fs;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use base64::Engine;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};

#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("certificate: {0}")]
    Certificate(#[from] rcgen::Error),
}

/// PEM-encoded material the server needs at run time.
pub struct Pki {
    pub ca_cert: String,
    pub serving_cert: String,
    pub serving_key: String,
    /// Bearer token agents present to join (also accepted by the API server).
    pub agent_token: String,
    pub dir: PathBuf,
}

/// The names a serving certificate must carry.
pub struct ServingNames {
    pub ips: Vec<IpAddr>,
    pub dns: Vec<String>,
}

const CA_DAYS: i64 = 3650;
const LEAF_DAYS: i64 = 365;

fn read(path: &Path) -> Result<Option<String>, PkiError> {
    match fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(PkiError::Io { path: path.to_owned(), source }),
    }
}

fn write(path: &Path, contents: &str, private: bool) -> Result<(), PkiError> {
    let io = |source| PkiError::Io { path: path.to_owned(), source };
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, contents).map_err(io)?;
    if private {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&tmp, fs::Permissions::from_mode(0o600)).map_err(io)?;
    }
    fs::rename(&tmp, path).map_err(io)
}

/// Go rejects negative serials: 16 random bytes with the top bit clear.
fn serial() -> SerialNumber {
    let mut bytes = *uuid::Uuid::new_v4().as_bytes();
    bytes[0] &= 0x7f;
    bytes[0] |= 0x01;
    SerialNumber::from_slice(&bytes)
}

fn params(common_name: &str, organization: Option<&str>, days: i64) -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, common_name);
    if let Some(org) = organization {
        name.push(DnType::OrganizationName, org);
    }
    params.distinguished_name = name;
    params.serial_number = Some(serial());
    let now = std::time::SystemTime::now();
    params.not_before = (now - std::time::Duration::from_secs(3600)).into();
    params.not_after = (now + std::time::Duration::from_secs(days as u64 * 86_400)).into();
    params
}

impl Pki {
    /// Loads the CA, admin credentials and token from `dir`, creating what is missing, and
    /// issues a serving certificate for `names` unless the one on disk already has them.
    pub fn load_or_create(dir: &Path, names: &ServingNames) -> Result<Self, PkiError> {
        let tls = dir.join("tls");
        fs::create_dir_all(&tls).map_err(|source| PkiError::Io { path: tls.clone(), source })?;
        let (ca_cert, ca_key) = match (read(&tls.join("ca.crt"))?, read(&tls.join("ca.key"))?) {
            (Some(cert), Some(key)) => (cert, key),
            _ => {
                let key = KeyPair::generate()?;
                let mut ca = params("capstan-ca", None, CA_DAYS);
                ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
                ca.key_usages = vec![
                    KeyUsagePurpose::KeyCertSign,
                    KeyUsagePurpose::CrlSign,
                    KeyUsagePurpose::DigitalSignature,
                ];
                let cert = ca.self_signed(&key)?.pem();
                write(&tls.join("ca.key"), &key.serialize_pem(), true)?;
                write(&tls.join("ca.crt"), &cert, false)?;
                (cert, key.serialize_pem())
            }
        };
        let issuer = Issuer::from_ca_cert_pem(&ca_cert, KeyPair::from_pem(&ca_key)?)?;

        let sans = san_list(names);
        let serving_paths =
            (tls.join("serving.crt"), tls.join("serving.key"), tls.join("serving.sans"));
        let (serving_cert, serving_key) =
            match (read(&serving_paths.0)?, read(&serving_paths.1)?, read(&serving_paths.2)?) {
                (Some(cert), Some(key), Some(recorded)) if recorded == sans.join("\n") => {
                    (cert, key)
                }
                _ => {
                    let key = KeyPair::generate()?;
                    let mut leaf = params("kube-apiserver", None, LEAF_DAYS);
                    leaf.subject_alt_names = names
                        .ips
                        .iter()
                        .map(|ip| SanType::IpAddress(*ip))
                        .chain(
                            names
                                .dns
                                .iter()
                                .filter_map(|d| d.clone().try_into().ok().map(SanType::DnsName)),
                        )
                        .collect();
                    leaf.key_usages =
                        vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
                    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
                    let cert = leaf.signed_by(&key, &issuer)?.pem();
                    write(&serving_paths.1, &key.serialize_pem(), true)?;
                    write(&serving_paths.0, &cert, false)?;
                    write(&serving_paths.2, &sans.join("\n"), false)?;
                    (cert, key.serialize_pem())
                }
            };

        // The admin, and the API server itself when it calls kubelets (logs, exec, …).
        for (file, user) in [("admin", "system:admin"), ("kubelet-client", "kube-apiserver")] {
            let (cert_path, key_path) =
                (tls.join(format!("{file}.crt")), tls.join(format!("{file}.key")));
            if read(&cert_path)?.is_some() && read(&key_path)?.is_some() {
                continue;
            }
            let key = KeyPair::generate()?;
            let mut client = params(user, Some("system:masters"), LEAF_DAYS);
            client.key_usages =
                vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
            client.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
            let cert = client.signed_by(&key, &issuer)?.pem();
            write(&key_path, &key.serialize_pem(), true)?;
            write(&cert_path, &cert, false)?;
        }

        let token_path = dir.join("token");
        let agent_token = match read(&token_path)? {
            Some(token) if !token.trim().is_empty() => token.trim().to_owned(),
            _ => {
                let token =
                    format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
                write(&token_path, &format!("{token}\n"), true)?;
                token
            }
        };
        Ok(Self { ca_cert, serving_cert, serving_key, agent_token, dir: dir.to_owned() })
    }

    /// Writes `DIR/kubeconfig.yaml`: the admin's credentials and the CA, for `server_url`.
    pub fn write_admin_kubeconfig(&self, server_url: &str) -> Result<PathBuf, PkiError> {
        let tls = self.dir.join("tls");
        let b64 = |text: &str| base64::engine::general_purpose::STANDARD.encode(text);
        let cert = read(&tls.join("admin.crt"))?.unwrap_or_default();
        let key = read(&tls.join("admin.key"))?.unwrap_or_default();
        let kubeconfig = format!(
            "apiVersion: v1
kind: Config
clusters:
- cluster:
    certificate-authority-data: {ca}
    server: {server_url}
  name: capstan
contexts:
- context:
    cluster: capstan
    user: admin
  name: capstan
current-context: capstan
preferences: {{}}
users:
- name: admin
  user:
    client-certificate-data: {cert}
    client-key-data: {key}
",
            ca = b64(&self.ca_cert),
            cert = b64(&cert),
            key = b64(&key),
        );
        let path = self.dir.join("kubeconfig.yaml");
        write(&path, &kubeconfig, true)?;
        Ok(path)
    }
}

fn san_list(names: &ServingNames) -> Vec<String> {
    names.ips.iter().map(|ip| ip.to_string()).chain(names.dns.iter().cloned()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> ServingNames {
        ServingNames { ips: vec!["127.0.0.1".parse().unwrap()], dns: vec!["localhost".into()] }
    }

    #[test]
    fn certificates_are_made_once_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let first = Pki::load_or_create(dir.path(), &names()).unwrap();
        let second = Pki::load_or_create(dir.path(), &names()).unwrap();
        assert_eq!(first.ca_cert, second.ca_cert);
        assert_eq!(first.serving_cert, second.serving_cert);
        assert_eq!(first.agent_token, second.agent_token);
        assert_eq!(first.agent_token.len(), 64);

        let more =
            ServingNames { ips: names().ips, dns: vec!["localhost".into(), "api.example".into()] };
        let third = Pki::load_or_create(dir.path(), &more).unwrap();
        assert_eq!(third.ca_cert, first.ca_cert, "the CA survives new names");
        assert_ne!(third.serving_cert, first.serving_cert, "new names get a new serving cert");
    }

    #[test]
    fn certificates_have_what_go_clients_require() {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::load_or_create(dir.path(), &names()).unwrap();
        let der = |pem_text: &str| {
            let (_, pem) = x509_parser::pem::parse_x509_pem(pem_text.as_bytes()).unwrap();
            pem.contents
        };
        let ca_der = der(&pki.ca_cert);
        let (_, ca) = x509_parser::parse_x509_certificate(&ca_der).unwrap();
        let bc = ca.basic_constraints().unwrap().unwrap();
        assert!(bc.critical && bc.value.ca, "critical basicConstraints CA:true");
        assert!(ca.tbs_certificate.raw_serial()[0] & 0x80 == 0, "positive serial");
        let leaf_der = der(&pki.serving_cert);
        let (_, leaf) = x509_parser::parse_x509_certificate(&leaf_der).unwrap();
        let sans = leaf.subject_alternative_name().unwrap().unwrap();
        assert_eq!(sans.value.general_names.len(), 2);
        assert!(leaf.key_usage().unwrap().is_some());
        let kubeconfig =
            std::fs::read_to_string(pki.write_admin_kubeconfig("https://127.0.0.1:6443").unwrap())
                .unwrap();
        assert!(kubeconfig.contains("server: https://127.0.0.1:6443"));
        assert!(kubeconfig.contains("certificate-authority-data: "));
    }
}
