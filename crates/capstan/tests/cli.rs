//! The `capstan` binary as a user runs it: help and version, snapshots, server start-up and
//! shutdown, and clear errors for bad input.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use capstan_store::{ListRequest, SqliteOptions, SqliteStore, Store};

fn capstan(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_capstan")).args(args).output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn store_in(data_dir: &Path) -> SqliteStore {
    std::fs::create_dir_all(data_dir.join("db")).unwrap();
    SqliteStore::open(SqliteOptions { path: data_dir.join("db/state.db") }).unwrap()
}

#[test]
fn version_and_help_describe_the_binary() {
    let version = capstan(&["--version"]);
    assert!(version.status.success());
    assert_eq!(text(&version.stdout).trim(), format!("capstan {}", env!("CARGO_PKG_VERSION")));
    let help = capstan(&["--help"]);
    assert!(help.status.success());
    for command in ["server", "snapshot", "bench"] {
        assert!(text(&help.stdout).contains(command), "--help lists {command}");
    }
}

#[tokio::test]
async fn snapshot_save_then_restore_serves_the_saved_keys_and_revision() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("source");
    let store = store_in(&source);
    for i in 0..20 {
        store.create(&format!("/registry/k/{i}"), Bytes::from(format!("{i}"))).await.unwrap();
    }
    let saved = store.list(ListRequest { prefix: "/".into(), ..Default::default() }).await.unwrap();

    let file = dir.path().join("snap.db");
    let save = capstan(&[
        "snapshot",
        "save",
        file.to_str().unwrap(),
        "--data-dir",
        source.to_str().unwrap(),
    ]);
    assert!(save.status.success(), "{}", text(&save.stderr));
    store.create("/registry/k/after", Bytes::from_static(b"late")).await.unwrap();

    let target = dir.path().join("target");
    let restore = capstan(&[
        "snapshot",
        "restore",
        file.to_str().unwrap(),
        "--data-dir",
        target.to_str().unwrap(),
    ]);
    assert!(restore.status.success(), "{}", text(&restore.stderr));
    assert!(text(&restore.stdout).contains(&format!("revision {}", saved.revision)));

    let restored = store_in(&target);
    assert_eq!(restored.current_revision().await.unwrap(), saved.revision);
    let listed =
        restored.list(ListRequest { prefix: "/".into(), ..Default::default() }).await.unwrap();
    assert_eq!(listed.kvs, saved.kvs);

    // Restoring over an existing store is refused and leaves it alone.
    let again = capstan(&[
        "snapshot",
        "restore",
        file.to_str().unwrap(),
        "--data-dir",
        target.to_str().unwrap(),
    ]);
    assert!(!again.status.success());
    assert!(text(&again.stderr).contains("already exists"), "{}", text(&again.stderr));
}

#[test]
fn snapshot_of_a_missing_store_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = capstan(&["snapshot", "save", "x.db", "--data-dir", dir.path().to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("no such database file"), "{}", text(&out.stderr));
}

#[test]
fn server_refuses_a_corrupt_database_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("db")).unwrap();
    std::fs::write(dir.path().join("db/state.db"), vec![0x5a; 4096]).unwrap();
    let out = capstan(&["server", "--data-dir", dir.path().to_str().unwrap()]);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(stderr.contains("not a SQLite database"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn server_rejects_a_malformed_datastore_endpoint() {
    let out = capstan(&["server", "--datastore-endpoint", "postgres://db"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("neither sqlite://PATH nor http(s)://HOST:PORT"));
}

#[test]
fn server_writes_its_kubeconfig_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Command::new(env!("CARGO_BIN_EXE_capstan"))
        .args(["server", "--bind-address", "127.0.0.1", "--https-listen-port", "0"])
        .args(["--data-dir", dir.path().to_str().unwrap()])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut log = BufReader::new(server.stderr.take().unwrap()).lines();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let line = log.next().expect("server exited early").unwrap();
        if line.contains("API server ready") {
            break;
        }
        assert!(Instant::now() < deadline, "no 'API server ready' line");
    }
    assert!(dir.path().join("db/state.db").is_file());
    assert!(dir.path().join("kubeconfig.yaml").is_file());
    assert!(dir.path().join("token").is_file());
    let kill = Command::new("kill").args(["-TERM", &server.id().to_string()]).status().unwrap();
    assert!(kill.success());
    assert!(server.wait().unwrap().success(), "SIGTERM is a clean shutdown");
}

#[test]
fn bench_store_prints_json_figures() {
    let out = capstan(&["bench", "store", "--backend", "sqlite", "--clients", "4", "--ops", "200"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let line: serde_json::Value = serde_json::from_str(text(&out.stdout).trim()).unwrap();
    assert_eq!(line["scenario"], "store");
    assert_eq!(line["backend"], "sqlite");
    assert_eq!(line["clients"], 4);
    for figure in ["writes_per_sec", "p50_ms", "p99_ms", "rss_mb"] {
        assert!(line[figure].as_f64().is_some_and(|v| v > 0.0), "{figure} in {line}");
    }
}
