//! `capstan snapshot save|restore`: consistent copies of the embedded store.

use std::path::PathBuf;

use anyhow::Context;
use capstan_store::SqliteStore;

use crate::server::default_database;

#[derive(clap::Subcommand)]
pub enum SnapshotCommand {
    /// Write a consistent copy of the embedded store to FILE (safe while the server runs).
    Save {
        file: PathBuf,
        #[arg(long, default_value = "/var/lib/capstan")]
        data_dir: PathBuf,
    },
    /// Create a data directory's embedded store from a snapshot FILE.
    Restore {
        file: PathBuf,
        #[arg(long)]
        data_dir: PathBuf,
    },
}

pub fn run(command: SnapshotCommand) -> anyhow::Result<()> {
    match command {
        SnapshotCommand::Save { file, data_dir } => {
            let db = default_database(&data_dir);
            SqliteStore::snapshot_file(&db, &file)
                .with_context(|| format!("saving a snapshot of {}", db.display()))?;
            println!("Snapshot saved to {}", file.display());
        }
        SnapshotCommand::Restore { file, data_dir } => {
            let db = default_database(&data_dir);
            if let Some(dir) = db.parent() {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
            }
            let revision = SqliteStore::restore_file(&file, &db)
                .with_context(|| format!("restoring {} into {}", file.display(), db.display()))?;
            println!("Restored {} at revision {revision} into {}", file.display(), db.display());
        }
    }
    Ok(())
}
