//! The official Python client (PyPI `kubernetes`, installed by `scripts/install-deps.sh test`)
//! creates, strategically patches and scales a Deployment.

use std::path::{Path, PathBuf};
use std::process::Command;

use capstan_testkit::CapstanServer;
use serde_json::Value;

fn python() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let python = root.join("target/python-client/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run `scripts/install-deps.sh test` (make test does)",
        python.display()
    );
    python
}

#[test]
fn python_client_creates_patches_and_scales_a_deployment() {
    let server = CapstanServer::start(Path::new(env!("CARGO_BIN_EXE_capstan")), &[])
        .expect("capstan starts");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/deployment.py");
    let output =
        Command::new(python()).arg(script).arg(server.kubeconfig()).output().expect("python runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let report: Value = serde_json::from_slice(&output.stdout).expect("the script prints JSON");
    assert!(report["created_uid"].as_str().is_some_and(|uid| !uid.is_empty()));
    assert_eq!(report["patched_generation"], 2);
    assert_eq!(report["scale_kind"], "Scale");
    assert_eq!(report["replicas"], 3);
    assert_eq!(report["containers"]["web"], "nginx:1.26");
    assert_eq!(report["containers"]["side"], "busybox:1.36", "the other container is untouched");
    assert_eq!(report["env"], serde_json::json!(["A"]), "the merge kept web's env");
}
