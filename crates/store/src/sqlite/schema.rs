//! Opening a capstan SQLite database: durability pragmas, schema, and refusing foreign files.

use std::path::Path;

use rusqlite::{Connection, OpenFlags, OptionalExtension};

use crate::{Revision, StoreError};

/// `PRAGMA application_id` of a capstan database ("caps"), so a foreign SQLite file is refused.
pub(crate) const APPLICATION_ID: i32 = 0x6361_7073;
const SCHEMA_VERSION: i32 = 1;

/// `log` holds every revision (kine-style): the latest row of a key is its current state, older
/// rows are history for watches and reads at a revision until compaction removes them.
/// A deletion is a row with `deleted = 1` carrying the last value, for watchers.
const SCHEMA: &str = "
CREATE TABLE log (
    rev INTEGER PRIMARY KEY,
    key BLOB NOT NULL,
    create_rev INTEGER NOT NULL,
    deleted INTEGER NOT NULL,
    value BLOB NOT NULL
);
CREATE INDEX log_key_rev ON log (key, rev);
CREATE TABLE meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
INSERT INTO meta (name, value) VALUES ('revision', 0), ('compacted', 0);
";

/// What a database's `meta` table says about its revisions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Revisions {
    pub current: Revision,
    pub compacted: Revision,
}

pub(crate) fn corrupt(path: &Path, reason: impl ToString) -> StoreError {
    StoreError::Corrupt { path: path.display().to_string(), reason: reason.to_string() }
}

/// Opens (creating if missing) the database the writer uses, with the settings that make an
/// acknowledged commit durable: WAL, and `synchronous = FULL` so each commit syncs the WAL.
pub(crate) fn open_writer(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open(path).map_err(|e| corrupt(path, e))?;
    configure(&conn, path)?;
    conn.pragma_update(None, "journal_mode", "WAL").map_err(|e| corrupt(path, describe(e)))?;
    conn.pragma_update(None, "synchronous", "FULL").map_err(|e| corrupt(path, e))?;
    conn.pragma_update(None, "cache_size", -8192).map_err(|e| corrupt(path, e))?;
    initialize(&conn, path)?;
    Ok(conn)
}

/// Opens a connection for reads (WAL lets these run beside the writer).
pub(crate) fn open_reader(path: &Path) -> Result<Connection, StoreError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(|e| corrupt(path, e))?;
    configure(&conn, path)?;
    conn.pragma_update(None, "query_only", true).map_err(|e| corrupt(path, e))?;
    Ok(conn)
}

/// Opens an existing database read-only and checks that it is capstan's (for snapshots).
pub(crate) fn open_existing_read_only(path: &Path) -> Result<Connection, StoreError> {
    if !path.is_file() {
        return Err(corrupt(path, "no such database file"));
    }
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(|e| corrupt(path, e))?;
    configure(&conn, path)?;
    check_identity(&conn, path)?;
    Ok(conn)
}

fn configure(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    conn.busy_timeout(std::time::Duration::from_secs(10)).map_err(|e| corrupt(path, e))?;
    // One plan per statement whatever is bound: otherwise (this SQLite is built with STAT4)
    // each cached statement is compiled again whenever a parameter on an indexed column
    // changes, i.e. for every key a write looks up.
    conn.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)
        .map_err(|e| corrupt(path, e))?;
    Ok(())
}

/// Creates the schema in an empty database, or checks that an existing one is ours.
fn initialize(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    let tables: i64 = conn
        .query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))
        .map_err(|e| corrupt(path, describe(e)))?;
    if tables == 0 {
        conn.execute_batch(&format!(
            "BEGIN IMMEDIATE; {SCHEMA} PRAGMA application_id = {APPLICATION_ID}; \
             PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"
        ))
        .map_err(|e| corrupt(path, e))?;
        return Ok(());
    }
    check_identity(conn, path)
}

fn check_identity(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    let id: i32 = conn
        .pragma_query_value(None, "application_id", |r| r.get(0))
        .map_err(|e| corrupt(path, describe(e)))?;
    if id != APPLICATION_ID {
        return Err(corrupt(path, format!("not a capstan database (application_id {id:#x})")));
    }
    let version: i32 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(|e| corrupt(path, e))?;
    if version != SCHEMA_VERSION {
        return Err(corrupt(
            path,
            format!("schema version {version}, this capstan reads version {SCHEMA_VERSION}"),
        ));
    }
    read_revisions(conn).map_err(|e| corrupt(path, e))?;
    Ok(())
}

/// Turns SQLite's terse "file is not a database" into something a person can act on.
fn describe(e: rusqlite::Error) -> String {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::NotADatabase) => {
            "not a SQLite database (the file is corrupt or of another format)".to_owned()
        }
        _ => e.to_string(),
    }
}

pub(crate) fn read_revisions(conn: &Connection) -> rusqlite::Result<Revisions> {
    let get = |name: &str| -> rusqlite::Result<Revision> {
        conn.query_row("SELECT value FROM meta WHERE name = ?1", [name], |r| r.get(0))
            .optional()
            .map(|v| v.unwrap_or(0))
    };
    Ok(Revisions { current: get("revision")?, compacted: get("compacted")? })
}
