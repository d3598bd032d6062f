//! Applying rules to the kernel: the `iptables` commands behind a small trait (a recording fake
//! stands in for unit tests), and the two things done with them — install a ruleset with its
//! hooks, and remove everything under a prefix.

use std::io::Write as _;
use std::process::{Command, Stdio};

use crate::rules::{self, Hook, Ruleset};

#[derive(Debug, thiserror::Error)]
pub enum IptablesError {
    #[error("running {command}: {source}")]
    Spawn { command: String, source: std::io::Error },
    #[error("{command} failed ({status}): {stderr}")]
    Failed { command: String, status: String, stderr: String },
}

/// The iptables commands the proxy runs.
pub trait Iptables: Send + Sync {
    /// `iptables-restore --noflush` with `text` on stdin: all of it or nothing.
    fn restore(&self, text: &str) -> Result<(), IptablesError>;
    /// `iptables-save -t table`.
    fn save(&self, table: &str) -> Result<String, IptablesError>;
    /// `iptables -w args…`; `Ok(false)` when iptables exits 1, which `-C` does for a missing
    /// rule.
    fn run(&self, args: &[String]) -> Result<bool, IptablesError>;
}

/// The host's `iptables`, `iptables-restore` and `iptables-save` (legacy or nf_tables alike).
pub struct SystemIptables;

fn failed(command: &str, output: &std::process::Output) -> IptablesError {
    IptablesError::Failed {
        command: command.to_owned(),
        status: output.status.to_string(),
        stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
    }
}

impl Iptables for SystemIptables {
    fn restore(&self, text: &str) -> Result<(), IptablesError> {
        let command = "iptables-restore --noflush";
        let spawn = |source| IptablesError::Spawn { command: command.into(), source };
        let mut child = Command::new("iptables-restore")
            .args(["-w", "5", "--noflush"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(spawn)?;
        let written = child.stdin.take().map(|mut stdin| stdin.write_all(text.as_bytes()));
        let output = child.wait_with_output().map_err(spawn)?;
        if !output.status.success() {
            return Err(failed(command, &output));
        }
        match written {
            Some(Err(source)) => Err(spawn(source)),
            _ => Ok(()),
        }
    }

    fn save(&self, table: &str) -> Result<String, IptablesError> {
        let command = format!("iptables-save -t {table}");
        let output = Command::new("iptables-save")
            .args(["-t", table])
            .output()
            .map_err(|source| IptablesError::Spawn { command: command.clone(), source })?;
        if !output.status.success() {
            return Err(failed(&command, &output));
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    fn run(&self, args: &[String]) -> Result<bool, IptablesError> {
        let command = format!("iptables {}", args.join(" "));
        let output = Command::new("iptables")
            .args(["-w", "5"])
            .args(args)
            .output()
            .map_err(|source| IptablesError::Spawn { command: command.clone(), source })?;
        match output.status.code() {
            Some(0) => Ok(true),
            Some(1) => Ok(false),
            _ => Err(failed(&command, &output)),
        }
    }
}

/// Installs `ruleset` (replacing `previous`), then makes sure the built-in chains jump to it.
pub fn apply(
    iptables: &dyn Iptables,
    prefix: &str,
    ruleset: &Ruleset,
    previous: Option<&Ruleset>,
) -> Result<(), IptablesError> {
    // The chains must exist before a hook can name them.
    iptables.restore(&ruleset.restore_text(previous))?;
    for hook in rules::hooks(prefix) {
        ensure_hook(iptables, &hook)?;
    }
    Ok(())
}

fn ensure_hook(iptables: &dyn Iptables, hook: &Hook) -> Result<(), IptablesError> {
    let command = |action: &str| {
        let mut args: Vec<String> =
            ["-t", hook.table, action, hook.chain].into_iter().map(String::from).collect();
        if action == "-I" {
            // First, so Services win over rules other programs (Docker) put in the same chain.
            args.push("1".into());
        }
        args.extend(hook.rule.iter().cloned());
        args
    };
    if !iptables.run(&command("-C"))? {
        iptables.run(&command("-I"))?;
    }
    Ok(())
}

/// Removes every chain of a prefix from this host's iptables when dropped (e.g. what a test's
/// proxy installed, even when the test fails).
pub struct ChainsGuard(pub String);

impl Drop for ChainsGuard {
    fn drop(&mut self) {
        if let Err(e) = remove_all(&SystemIptables, &self.0) {
            eprintln!("removing the iptables chains of {}: {e}", self.0);
        }
    }
}

/// Removes every chain named `PREFIX-…` and every jump into one, in both tables: what a proxy
/// with this prefix installed, now or in an earlier life.
pub fn remove_all(iptables: &dyn Iptables, prefix: &str) -> Result<(), IptablesError> {
    for table in ["nat", "filter"] {
        let found = rules::leftovers(&iptables.save(table)?, prefix);
        for jump in &found.jumps {
            let mut args: Vec<String> = vec!["-t".into(), table.into(), "-D".into()];
            args.extend(jump.iter().cloned());
            iptables.run(&args)?;
        }
        if !found.chains.is_empty() {
            iptables.restore(&rules::removal_text(table, &found.chains))?;
        }
    }
    Ok(())
}

/// Records the commands it is given and answers `-C` with "missing" (unit tests).
#[cfg(test)]
#[derive(Default)]
pub struct RecordingIptables {
    pub calls: std::sync::Mutex<Vec<String>>,
    /// What `save` returns, per table.
    pub saved: std::sync::Mutex<std::collections::HashMap<String, String>>,
}

#[cfg(test)]
impl RecordingIptables {
    pub fn calls(&self) -> Vec<String> {
        self.calls.lock().map(|c| c.clone()).unwrap_or_default()
    }

    fn record(&self, call: String) {
        if let Ok(mut calls) = self.calls.lock() {
            calls.push(call);
        }
    }
}

#[cfg(test)]
impl Iptables for RecordingIptables {
    fn restore(&self, text: &str) -> Result<(), IptablesError> {
        self.record(format!("restore\n{text}"));
        Ok(())
    }

    fn save(&self, table: &str) -> Result<String, IptablesError> {
        self.record(format!("save {table}"));
        Ok(self.saved.lock().ok().and_then(|s| s.get(table).cloned()).unwrap_or_default())
    }

    fn run(&self, args: &[String]) -> Result<bool, IptablesError> {
        self.record(args.join(" "));
        Ok(!args.iter().any(|a| a == "-C"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::{RuleConfig, render};

    #[test]
    fn apply_restores_then_inserts_missing_hooks_first_in_their_chains() {
        let iptables = RecordingIptables::default();
        let config = RuleConfig { prefix: "T1".into(), cluster_cidr: None };
        apply(&iptables, "T1", &render(&[], &config), None).unwrap();
        let calls = iptables.calls();
        assert!(calls[0].starts_with("restore\n*filter\n"), "{}", calls[0]);
        assert!(calls.contains(
            &"-t nat -C OUTPUT -m comment --comment capstan proxy T1 -j T1-SERVICES".to_owned()
        ));
        assert!(calls.contains(
            &"-t nat -I OUTPUT 1 -m comment --comment capstan proxy T1 -j T1-SERVICES".to_owned()
        ));
    }

    #[test]
    fn remove_all_deletes_the_jumps_before_the_chains() {
        let iptables = RecordingIptables::default();
        iptables.saved.lock().unwrap().insert(
            "nat".into(),
            "*nat\n:OUTPUT ACCEPT [0:0]\n:T1-SERVICES - [0:0]\n\
             -A OUTPUT -m comment --comment \"capstan proxy T1\" -j T1-SERVICES\nCOMMIT\n"
                .into(),
        );
        remove_all(&iptables, "T1").unwrap();
        assert_eq!(
            iptables.calls(),
            [
                "save nat",
                "-t nat -D OUTPUT -m comment --comment capstan proxy T1 -j T1-SERVICES",
                "restore\n*nat\n:T1-SERVICES - [0:0]\n-X T1-SERVICES\nCOMMIT\n",
                "save filter",
            ]
        );
    }
}
