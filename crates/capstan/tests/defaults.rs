//! Defaulting as a kubectl user meets it: minimal objects come back with the fields a real
//! API server fills in, and a client's own values are kept.

use std::path::Path;

use capstan_testkit::{CapstanServer, Kubectl};

fn server() -> CapstanServer {
    CapstanServer::start(Path::new(env!("CARGO_BIN_EXE_capstan")), &[])
        .expect("capstan server starts")
}

/// `kubectl get KIND NAME -o jsonpath=PATH` for each (path, expected value).
fn expect(kubectl: &Kubectl, kind: &str, name: &str, fields: &[(&str, &str)]) {
    for (path, want) in fields {
        let got = kubectl.ok(&["get", kind, name, "-o", &format!("jsonpath={path}")]);
        assert_eq!(got, *want, "{kind}/{name} {path}");
    }
}

const DEPLOYMENT: &str = "
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: nginx
        image: nginx
        ports:
        - containerPort: 80
";

const POD: &str = "
apiVersion: v1
kind: Pod
metadata:
  name: tool
spec:
  containers:
  - name: c
    image: busybox:1.36
    readinessProbe:
      httpGet:
        port: 8080
  volumes:
  - name: scratch
  - name: settings
    configMap:
      name: settings
";

const SERVICE: &str = "
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector:
    app: web
  ports:
  - port: 80
";

const SECRET: &str = "
apiVersion: v1
kind: Secret
metadata:
  name: creds
stringData:
  password: hunter2
";

#[test]
fn minimal_objects_come_back_with_upstreams_defaults() {
    let server = server();
    let kubectl = server.kubectl();
    for yaml in [DEPLOYMENT, POD, SERVICE, SECRET] {
        kubectl.create(yaml);
    }
    expect(
        &kubectl,
        "deployment",
        "web",
        &[
            ("{.spec.replicas}", "1"),
            ("{.spec.strategy.type}", "RollingUpdate"),
            ("{.spec.strategy.rollingUpdate.maxUnavailable}", "25%"),
            ("{.spec.strategy.rollingUpdate.maxSurge}", "25%"),
            ("{.spec.revisionHistoryLimit}", "10"),
            ("{.spec.progressDeadlineSeconds}", "600"),
            ("{.spec.template.spec.restartPolicy}", "Always"),
            ("{.spec.template.spec.dnsPolicy}", "ClusterFirst"),
            ("{.spec.template.spec.schedulerName}", "default-scheduler"),
            ("{.spec.template.spec.terminationGracePeriodSeconds}", "30"),
            ("{.spec.template.spec.securityContext}", "{}"),
            ("{.spec.template.spec.containers[0].imagePullPolicy}", "Always"),
            ("{.spec.template.spec.containers[0].terminationMessagePath}", "/dev/termination-log"),
            ("{.spec.template.spec.containers[0].terminationMessagePolicy}", "File"),
            ("{.spec.template.spec.containers[0].ports[0].protocol}", "TCP"),
            // Only Pods get enableServiceLinks; templates do not.
            ("{.spec.template.spec.enableServiceLinks}", ""),
        ],
    );
    expect(
        &kubectl,
        "pod",
        "tool",
        &[
            ("{.spec.restartPolicy}", "Always"),
            ("{.spec.enableServiceLinks}", "true"),
            ("{.spec.terminationGracePeriodSeconds}", "30"),
            ("{.spec.containers[0].imagePullPolicy}", "IfNotPresent"),
            ("{.spec.containers[0].readinessProbe.timeoutSeconds}", "1"),
            ("{.spec.containers[0].readinessProbe.periodSeconds}", "10"),
            ("{.spec.containers[0].readinessProbe.successThreshold}", "1"),
            ("{.spec.containers[0].readinessProbe.failureThreshold}", "3"),
            ("{.spec.containers[0].readinessProbe.httpGet.scheme}", "HTTP"),
            ("{.spec.volumes[0].emptyDir}", "{}"),
            ("{.spec.volumes[1].configMap.defaultMode}", "420"),
        ],
    );
    expect(
        &kubectl,
        "service",
        "web",
        &[
            ("{.spec.type}", "ClusterIP"),
            ("{.spec.sessionAffinity}", "None"),
            ("{.spec.ports[0].protocol}", "TCP"),
            ("{.spec.ports[0].targetPort}", "80"),
            ("{.spec.internalTrafficPolicy}", "Cluster"),
            ("{.spec.ipFamilyPolicy}", "SingleStack"),
            ("{.spec.ipFamilies}", "[\"IPv4\"]"),
        ],
    );
    expect(&kubectl, "secret", "creds", &[("{.type}", "Opaque")]);
}

#[test]
fn updates_keep_client_values_and_restore_dropped_defaults() {
    let server = server();
    let kubectl = server.kubectl();
    kubectl.create(&DEPLOYMENT.replace("spec:\n  selector", "spec:\n  replicas: 3\n  selector"));
    expect(&kubectl, "deployment", "web", &[("{.spec.replicas}", "3")]);
    // A JSON patch that removes a defaulted field: upstream defaults the patched body again.
    let patch = r#"[{"op": "remove", "path": "/spec/revisionHistoryLimit"}]"#;
    kubectl.ok(&["patch", "deployment", "web", "--type=json", "-p", patch]);
    expect(
        &kubectl,
        "deployment",
        "web",
        &[("{.spec.revisionHistoryLimit}", "10"), ("{.spec.replicas}", "3")],
    );
    let patch = r#"{"spec": {"strategy": {"type": "Recreate", "rollingUpdate": null}}}"#;
    kubectl.ok(&["patch", "deployment", "web", "--type=merge", "-p", patch]);
    expect(
        &kubectl,
        "deployment",
        "web",
        &[("{.spec.strategy.type}", "Recreate"), ("{.spec.strategy.rollingUpdate}", "")],
    );
}

#[test]
fn new_jobs_select_their_pods_by_uid() {
    let server = server();
    let kubectl = server.kubectl();
    kubectl.create(
        "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: once\nspec:\n  template:\n    spec:\n      restartPolicy: Never\n      containers:\n      - name: c\n        image: busybox\n",
    );
    let uid = kubectl.ok(&["get", "job", "once", "-o", "jsonpath={.metadata.uid}"]);
    assert!(!uid.is_empty());
    expect(
        &kubectl,
        "job",
        "once",
        &[
            ("{.spec.selector.matchLabels.batch\\.kubernetes\\.io/controller-uid}", uid.as_str()),
            ("{.spec.template.metadata.labels.job-name}", "once"),
            ("{.metadata.labels.batch\\.kubernetes\\.io/job-name}", "once"),
            ("{.spec.backoffLimit}", "6"),
            ("{.spec.completions}", "1"),
            ("{.spec.parallelism}", "1"),
            ("{.spec.completionMode}", "NonIndexed"),
            ("{.spec.suspend}", "false"),
            ("{.spec.manualSelector}", "false"),
            ("{.spec.podReplacementPolicy}", "TerminatingOrFailed"),
        ],
    );
}
