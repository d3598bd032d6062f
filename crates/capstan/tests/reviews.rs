//! Reviews with the real kubectl: `auth whoami` (SelfSubjectReview), `auth can-i` (access
//! reviews) and TokenReviews of service-account tokens.

use std::path::Path;

use capstan_testkit::CapstanServer;
use serde_json::Value;

fn start() -> CapstanServer {
    CapstanServer::start(Path::new(env!("CARGO_BIN_EXE_capstan")), &[]).expect("capstan starts")
}

#[test]
fn whoami_names_the_admin_and_can_i_answers() {
    let server = start();
    let kubectl = server.kubectl();
    let me: Value =
        serde_json::from_str(&kubectl.ok(&["auth", "whoami", "-o", "json"])).expect("JSON");
    assert_eq!(me["kind"], "SelfSubjectReview");
    assert_eq!(me["status"]["userInfo"]["username"], "system:admin");
    let groups = me["status"]["userInfo"]["groups"].to_string();
    assert!(groups.contains("system:masters") && groups.contains("system:authenticated"));

    assert_eq!(kubectl.ok(&["auth", "can-i", "create", "pods"]).trim(), "yes");
    // Reviews are answers, not objects: nothing to list.
    let listed =
        kubectl.run(&["get", "--raw", "/apis/authentication.k8s.io/v1/selfsubjectreviews"]);
    assert!(!listed.success);
    assert!(
        listed.stderr.contains("MethodNotAllowed") || listed.stderr.contains("not allowed"),
        "{}",
        listed.stderr
    );
}

fn review(server: &CapstanServer, token: &str, audiences: &[&str]) -> Value {
    let manifest = serde_json::json!({
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenReview",
        "spec": {"token": token, "audiences": audiences},
    });
    // Posted raw: kubectl's client-side schema check looks for CRDs, which capstan doesn't serve.
    let out = server.kubectl().ok_with_input(
        &["create", "--raw", "/apis/authentication.k8s.io/v1/tokenreviews", "-f", "-"],
        &manifest.to_string(),
    );
    serde_json::from_str(&out).expect("a TokenReview comes back")
}

#[test]
fn token_reviews_authenticate_service_account_tokens_for_their_audience() {
    let server = start();
    let kubectl = server.kubectl();
    capstan_testkit::wait_until(
        "the default service account",
        std::time::Duration::from_secs(30),
        || kubectl.run(&["get", "serviceaccount", "default"]).success,
    );
    let token = kubectl.ok(&["create", "token", "default"]).trim().to_owned();

    let accepted = review(&server, &token, &[]);
    assert_eq!(accepted["status"]["authenticated"], true, "{accepted}");
    assert_eq!(accepted["status"]["user"]["username"], "system:serviceaccount:default:default");
    let groups = accepted["status"]["user"]["groups"].to_string();
    assert!(groups.contains("system:serviceaccounts:default"), "{groups}");

    let other_audience = review(&server, &token, &["vault"]);
    assert_eq!(other_audience["status"]["authenticated"], false, "{other_audience}");

    let vault_token =
        kubectl.ok(&["create", "token", "default", "--audience", "vault"]).trim().to_owned();
    let for_vault = review(&server, &vault_token, &["vault"]);
    assert_eq!(for_vault["status"]["authenticated"], true, "{for_vault}");
    assert_eq!(for_vault["status"]["audiences"], serde_json::json!(["vault"]));

    let forged = review(&server, &format!("{token}x"), &[]);
    assert_eq!(forged["status"]["authenticated"], false);

    let empty = kubectl.run_with_input(
        &["create", "--raw", "/apis/authentication.k8s.io/v1/tokenreviews", "-f", "-"],
        r#"{"apiVersion":"authentication.k8s.io/v1","kind":"TokenReview","spec":{}}"#,
    );
    assert!(!empty.success);
    assert!(empty.stderr.contains("spec.token"), "{}", empty.stderr);
}
