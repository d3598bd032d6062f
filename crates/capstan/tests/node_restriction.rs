//! NodeRestriction with the real kubectl: a client certificate naming `system:node:n1` (group
//! `system:nodes`, signed by the cluster CA as a kubelet's would be) may write node n1, its
//! Lease and pods bound to it, and nothing of other nodes.

use std::path::Path;

use base64::Engine;
use capstan_testkit::{CapstanServer, Kubectl};

/// A kubeconfig for `system:node:NAME`, with a certificate signed by the cluster CA.
fn node_kubectl(server: &CapstanServer, node: &str) -> Kubectl {
    let tls = server.data_dir().join("tls");
    let ca_cert = std::fs::read_to_string(tls.join("ca.crt")).unwrap();
    let ca_key =
        rcgen::KeyPair::from_pem(&std::fs::read_to_string(tls.join("ca.key")).unwrap()).unwrap();
    let issuer = rcgen::Issuer::from_ca_cert_pem(&ca_cert, ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name.push(rcgen::DnType::CommonName, format!("system:node:{node}"));
    params.distinguished_name.push(rcgen::DnType::OrganizationName, "system:nodes");
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let cert = params.signed_by(&key, &issuer).unwrap();
    let b64 = |text: &str| base64::engine::general_purpose::STANDARD.encode(text);
    let kubeconfig = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- cluster:\n    certificate-authority-data: {}\n    server: {}\n  name: c\ncontexts:\n- context: {{cluster: c, user: node}}\n  name: c\ncurrent-context: c\nusers:\n- name: node\n  user:\n    client-certificate-data: {}\n    client-key-data: {}\n",
        b64(&ca_cert),
        server.url(),
        b64(&cert.pem()),
        b64(&key.serialize_pem()),
    );
    let dir = server.data_dir().join(format!("node-{node}"));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("kubeconfig.yaml");
    std::fs::write(&path, kubeconfig).unwrap();
    Kubectl { kubeconfig: path }
}

fn node(name: &str) -> String {
    format!("apiVersion: v1\nkind: Node\nmetadata: {{name: {name}}}\n")
}

fn pod(name: &str, node: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  nodeName: {node}\n  containers: [{{name: c, image: busybox}}]\n"
    )
}

#[test]
fn a_node_may_write_only_itself_its_lease_and_its_pods() {
    let server = CapstanServer::start(Path::new(env!("CARGO_BIN_EXE_capstan")), &[])
        .expect("capstan starts");
    let admin = server.kubectl();
    let n1 = node_kubectl(&server, "n1");
    assert_eq!(
        n1.ok(&["auth", "whoami", "-o", "jsonpath={.status.userInfo.username}"]),
        "system:node:n1"
    );

    n1.ok_with_input(&["create", "-f", "-"], &node("n1"));
    admin.ok_with_input(&["create", "-f", "-"], &node("n2"));
    n1.ok(&["label", "node", "n1", "disk=ssd"]);
    let other = n1.run(&["label", "node", "n2", "disk=ssd"]);
    assert!(!other.success);
    assert!(
        other.stderr.contains("node \"n1\" is not allowed to modify node \"n2\""),
        "{}",
        other.stderr
    );
    let restricted = n1.run(&["label", "node", "n1", "node-restriction.kubernetes.io/fast=true"]);
    assert!(restricted.stderr.contains("not allowed to modify labels"), "{}", restricted.stderr);

    let lease = |name: &str| {
        format!(
            "apiVersion: coordination.k8s.io/v1\nkind: Lease\nmetadata: {{name: {name}, namespace: kube-node-lease}}\nspec: {{holderIdentity: {name}}}\n"
        )
    };
    n1.ok_with_input(&["create", "-f", "-"], &lease("n1"));
    let foreign = n1.run_with_input(&["create", "-f", "-"], &lease("n2"));
    assert!(
        foreign.stderr.contains("can only access node lease with the same name"),
        "{}",
        foreign.stderr
    );

    admin.ok_with_input(&["create", "-f", "-"], &pod("mine", "n1"));
    admin.ok_with_input(&["create", "-f", "-"], &pod("theirs", "n2"));
    let created = n1.run_with_input(&["create", "-f", "-"], &pod("made", "n1"));
    assert!(created.stderr.contains("can only create mirror pods"), "{}", created.stderr);
    let theirs = n1.run(&["delete", "pod", "theirs", "--grace-period=0", "--force"]);
    assert!(
        theirs.stderr.contains("can only delete pods with spec.nodeName set to itself"),
        "{}",
        theirs.stderr
    );
    n1.ok(&["delete", "pod", "mine", "--grace-period=0", "--force"]);
    admin.ok(&["get", "pod", "theirs"]);
    admin.assert_not_found(&["pod", "mine"]);
}
