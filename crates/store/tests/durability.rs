//! Crash durability of the embedded store: a child process writing under load is killed with
//! SIGKILL; every write it had acknowledged must be there after reopening, and the revision
//! must never go backwards.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;

use bytes::Bytes;
use capstan_store::{SqliteOptions, SqliteStore, Store};

const DB_ENV: &str = "CAPSTAN_DURABILITY_DB";
const CYCLE_ENV: &str = "CAPSTAN_DURABILITY_CYCLE";
const CYCLES: usize = 5;
const ACKS_BEFORE_KILL: usize = 2000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state.db");
    let mut last_revision = 0;
    let mut acked: BTreeMap<String, i64> = BTreeMap::new();
    for cycle in 0..CYCLES {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["durability_child", "--exact", "--ignored", "--nocapture"])
            .env(DB_ENV, &db)
            .env(CYCLE_ENV, cycle.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut this_cycle = 0;
        while this_cycle < ACKS_BEFORE_KILL {
            let line = lines.next().expect("child stopped early").unwrap();
            if record_ack(&line, &mut acked) {
                this_cycle += 1;
            }
        }
        child.kill().unwrap(); // SIGKILL
        // Acks printed before the kill are still in the pipe.
        for line in lines {
            record_ack(&line.unwrap(), &mut acked);
        }
        child.wait().unwrap();

        let store = SqliteStore::open(SqliteOptions { path: db.clone() }).unwrap();
        let revision = store.current_revision().await.unwrap();
        assert!(revision >= last_revision, "revision went back from {last_revision} to {revision}");
        for (key, mod_revision) in &acked {
            let kv = store.get(key).await.unwrap().unwrap_or_else(|| panic!("lost {key}"));
            assert_eq!(kv.mod_revision, *mod_revision, "{key}");
            assert_eq!(kv.value, Bytes::from(key.clone()));
            assert!(*mod_revision <= revision);
        }
        last_revision = revision;
    }
    assert!(acked.len() >= CYCLES * ACKS_BEFORE_KILL);
}

fn record_ack(line: &str, acked: &mut BTreeMap<String, i64>) -> bool {
    let Some(rest) = line.strip_prefix("ACK ") else { return false };
    let (key, revision) = rest.split_once(' ').expect("ACK key revision");
    acked.insert(key.to_owned(), revision.parse().unwrap());
    true
}

/// The child side: writes from many tasks until killed, printing each acknowledged write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run as a child process by acknowledged_writes_survive_sigkill"]
async fn durability_child() {
    let Ok(db) = std::env::var(DB_ENV) else { return };
    let cycle = std::env::var(CYCLE_ENV).unwrap();
    let store = Arc::new(SqliteStore::open(SqliteOptions { path: db.into() }).unwrap());
    let writers: Vec<_> = (0..32)
        .map(|task| {
            let store = store.clone();
            let cycle = cycle.clone();
            tokio::spawn(async move {
                for i in 0.. {
                    let key = format!("/registry/durable/{cycle}-{task}-{i}");
                    let kv = store.create(&key, Bytes::from(key.clone())).await.unwrap();
                    // Straight to the pipe, past the test harness's output capture.
                    let mut out = std::io::stdout().lock();
                    writeln!(out, "ACK {key} {}", kv.mod_revision).unwrap();
                    out.flush().unwrap();
                }
            })
        })
        .collect();
    futures::future::join_all(writers).await;
}
