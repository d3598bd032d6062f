//! Service endpoints as kubectl shows them: Endpoints and EndpointSlices follow the selected
//! pods' readiness, named target ports resolve per pod, selector-less Services are left alone.

use std::path::Path;
use std::time::Duration;

use capstan_testkit::{CapstanServer, Kubectl, wait_until};

const WAIT: Duration = Duration::from_secs(60);

fn pod(name: &str, port_name: &str, port: u16) -> String {
    format!(
        "apiVersion: v1
kind: Pod
metadata:
  name: {name}
  labels: {{app: web}}
spec:
  containers:
  - name: c
    image: busybox
    ports: [{{name: {port_name}, containerPort: {port}}}]
"
    )
}

const SERVICE: &str = "
apiVersion: v1
kind: Service
metadata:
  name: web
  labels: {tier: front}
spec:
  selector: {app: web}
  ports:
  - {name: http, port: 80, targetPort: http}
";

/// Sets what a kubelet would report: the pod's IP and readiness.
fn report(kubectl: &Kubectl, pod: &str, ip: &str, ready: bool) {
    let status = if ready { "True" } else { "False" };
    let patch = format!(
        r#"{{"status":{{"phase":"Running","podIP":"{ip}","podIPs":[{{"ip":"{ip}"}}],"conditions":[{{"type":"Ready","status":"{status}"}}]}}}}"#
    );
    kubectl.ok(&["patch", "pod", pod, "--subresource=status", "--type=merge", "-p", &patch]);
}

fn get(kubectl: &Kubectl, args: &[&str]) -> String {
    let mut get = vec!["get"];
    get.extend_from_slice(args);
    kubectl.run(&get).stdout
}

#[test]
fn endpoints_and_slices_follow_pod_readiness_with_named_ports_resolved_per_pod() {
    let server = CapstanServer::start(Path::new(env!("CARGO_BIN_EXE_capstan")), &[])
        .expect("capstan starts");
    let kubectl = server.kubectl();
    kubectl.create(SERVICE);
    kubectl.create(&pod("a", "http", 8080));
    kubectl.create(&pod("b", "http", 9090));
    report(&kubectl, "a", "10.42.0.10", true);
    report(&kubectl, "b", "10.42.0.11", false);

    let endpoints =
        |path: &str| get(&kubectl, &["endpoints", "web", "-o", &format!("jsonpath={path}")]);
    wait_until("a is ready and b is not", WAIT, || {
        endpoints("{.subsets[*].addresses[*].ip}") == "10.42.0.10"
            && endpoints("{.subsets[*].notReadyAddresses[*].ip}") == "10.42.0.11"
    });
    // Each pod's named port resolves to its own container port.
    let ports = endpoints("{range .subsets[*]}{.ports[0].port} {end}");
    assert!(ports.contains("8080") && ports.contains("9090"), "ports: {ports}");
    assert_eq!(endpoints("{.metadata.labels.tier}"), "front");

    let slices = |path: &str| {
        get(
            &kubectl,
            &[
                "endpointslices",
                "-l",
                "kubernetes.io/service-name=web",
                "-o",
                &format!("jsonpath={path}"),
            ],
        )
    };
    wait_until("the slices list both pods", WAIT, || {
        let mut ready: Vec<String> =
            slices("{range .items[*].endpoints[*]}{.addresses[0]}={.conditions.ready} {end}")
                .split_whitespace()
                .map(str::to_owned)
                .collect();
        ready.sort();
        ready == ["10.42.0.10=true", "10.42.0.11=false"]
    });
    assert_eq!(
        slices("{.items[0].metadata.labels.endpointslice\\.kubernetes\\.io/managed-by}"),
        "endpointslice-controller.k8s.io"
    );
    assert_eq!(slices("{.items[0].metadata.ownerReferences[0].name}"), "web");

    report(&kubectl, "b", "10.42.0.11", true);
    wait_until("b becomes ready", WAIT, || {
        let mut ips: Vec<String> = endpoints("{.subsets[*].addresses[*].ip}")
            .split_whitespace()
            .map(str::to_owned)
            .collect();
        ips.sort();
        ips == ["10.42.0.10", "10.42.0.11"]
            && endpoints("{.subsets[*].notReadyAddresses}").is_empty()
    });

    kubectl.ok(&["label", "pod", "a", "app=other", "--overwrite"]);
    wait_until("a pod that stops matching leaves", WAIT, || {
        endpoints("{.subsets[*].addresses[*].ip}") == "10.42.0.11"
            && slices("{.items[*].endpoints[*].addresses[0]}") == "10.42.0.11"
    });

    kubectl.ok(&["delete", "service", "web"]);
    wait_until("the service's endpoints go with it", WAIT, || {
        !kubectl.run(&["get", "endpoints", "web"]).success && slices("{.items}") == "[]"
    });
}

#[test]
fn publish_not_ready_addresses_lists_unready_pods_as_ready() {
    let server = CapstanServer::start(Path::new(env!("CARGO_BIN_EXE_capstan")), &[])
        .expect("capstan starts");
    let kubectl = server.kubectl();
    kubectl.create(&SERVICE.replace("selector:", "publishNotReadyAddresses: true\n  selector:"));
    kubectl.create(&pod("a", "http", 8080));
    report(&kubectl, "a", "10.42.0.10", false);
    wait_until("the unready pod is published", WAIT, || {
        get(&kubectl, &["endpoints", "web", "-o", "jsonpath={.subsets[*].addresses[*].ip}"])
            == "10.42.0.10"
    });
}

#[test]
fn services_without_selectors_are_left_to_the_user() {
    let server = CapstanServer::start(Path::new(env!("CARGO_BIN_EXE_capstan")), &[])
        .expect("capstan starts");
    let kubectl = server.kubectl();
    kubectl.create(
        "{apiVersion: v1, kind: Service, metadata: {name: manual}, spec: {ports: [{port: 80}]}}",
    );
    kubectl.create(
        "
apiVersion: v1
kind: Endpoints
metadata: {name: manual}
subsets:
- addresses: [{ip: 192.0.2.7}]
  ports: [{port: 80}]
",
    );
    kubectl.create(&pod("a", "http", 80));
    report(&kubectl, "a", "10.42.0.10", true);
    // The bootstrap service keeps the API server's address, written by the API server.
    wait_until("the kubernetes service has its endpoints", WAIT, || {
        !get(&kubectl, &["endpoints", "kubernetes", "-o", "jsonpath={.subsets[*].addresses[*].ip}"])
            .is_empty()
    });
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        get(&kubectl, &["endpoints", "manual", "-o", "jsonpath={.subsets[*].addresses[*].ip}"]),
        "192.0.2.7"
    );
    assert_eq!(
        get(&kubectl, &["endpointslices", "-l", "kubernetes.io/service-name=manual", "-o", "name"]),
        ""
    );
}
