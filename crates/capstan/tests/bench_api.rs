//! `capstan bench api` at smoke size: it starts its own server, runs every phase, stops by
//! itself, and prints one JSON line per phase with its figures (their values are not judged).

use std::process::Command;

use serde_json::Value;

#[test]
fn bench_api_prints_every_phase_with_its_figures() {
    let output = Command::new(env!("CARGO_BIN_EXE_capstan"))
        .args(["bench", "api", "--clients", "4", "--objects", "200", "--watchers", "5"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "bench failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines: Vec<Value> = stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{line:?}: {e}")))
        .collect();
    let phase = |name: &str| {
        lines
            .iter()
            .find(|l| l["phase"] == name)
            .unwrap_or_else(|| panic!("no {name} line in:\n{stdout}"))
    };
    let expected: [(&str, &[&str]); 5] = [
        ("idle", &["rss_mb"]),
        ("create", &["clients", "objects", "writes_per_sec", "p50_ms", "p99_ms"]),
        ("list", &["objects", "p50_ms", "p99_ms"]),
        ("loaded", &["objects", "rss_mb"]),
        ("watch", &["watchers", "writes", "events", "p50_ms", "p99_ms"]),
    ];
    for (name, figures) in expected {
        let line = phase(name);
        assert_eq!(line.as_object().unwrap().keys().next().unwrap(), "scenario", "{line}");
        assert_eq!(line["scenario"], "api");
        for figure in figures {
            assert!(line[figure].is_number(), "{name} line lacks {figure}: {line}");
        }
    }
    assert_eq!(phase("create")["objects"], 200);
    assert_eq!(phase("list")["objects"], 200);
    // Every watcher saw every write: delivery is complete, whatever it cost.
    let watch = phase("watch");
    assert_eq!(
        watch["events"],
        watch["watchers"].as_u64().unwrap() * watch["writes"].as_u64().unwrap()
    );
}

#[test]
fn bench_api_patch_prints_patch_and_apply_figures() {
    let output = Command::new(env!("CARGO_BIN_EXE_capstan"))
        .args(["bench", "api-patch", "--clients", "4", "--objects", "50"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "bench failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines: Vec<Value> = stdout.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    let expected = [
        ("apply-create", "applies_per_sec"),
        ("strategic", "patches_per_sec"),
        ("apply", "applies_per_sec"),
    ];
    for (name, figure) in expected {
        let line = lines
            .iter()
            .find(|l| l["phase"] == name)
            .unwrap_or_else(|| panic!("no {name} line in:\n{stdout}"));
        assert_eq!(line["scenario"], "api-patch");
        assert_eq!(line["objects"], 50);
        for field in [figure, "p50_ms", "p99_ms"] {
            assert!(line[field].is_number(), "{name} line lacks {field}: {line}");
        }
    }
}
