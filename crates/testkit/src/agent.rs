//! A real `capstan agent` joined to a `CapstanServer`, with its own temp dir.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::CapstanServer;

/// A running `capstan agent`; stopped (SIGKILL) when dropped.
pub struct CapstanAgent {
    child: Child,
    dir: tempfile::TempDir,
}

impl CapstanAgent {
    /// Starts `binary agent` against `server` with the server's join token and CA, a free
    /// kubelet port and `--runtime simulated` unless `extra_args` names a runtime.
    pub fn start(binary: &Path, server: &CapstanServer, extra_args: &[&str]) -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let log = std::fs::File::create(dir.path().join("agent.log"))?;
        let mut command = Command::new(binary);
        command
            .args(["agent", "--server", server.url(), "--kubelet-port", "0", "--token-file"])
            .arg(server.data_dir().join("token"))
            .arg("--certificate-authority")
            .arg(server.data_dir().join("tls").join("ca.crt"))
            .arg("--data-dir")
            .arg(dir.path().join("data"));
        if !extra_args.contains(&"--runtime") {
            command.args(["--runtime", "simulated"]);
        }
        let child = command
            .args(extra_args)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        Ok(Self { child, dir })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Asks the agent to stop (SIGTERM), as an init system would, and waits up to `within`
    /// for it to exit; kills it after that. True when it exited by itself.
    pub fn terminate(&mut self, within: Duration) -> bool {
        let signalled = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .is_ok_and(|status| status.success());
        let deadline = Instant::now() + within;
        while signalled && Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.stop();
        false
    }

    /// Stops the agent (SIGKILL) and waits for it to exit.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The last lines the agent logged, for failure messages.
    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.path().join("agent.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

impl Drop for CapstanAgent {
    fn drop(&mut self) {
        self.stop();
    }
}
