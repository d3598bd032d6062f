//! A real `capstan server` on a free port in a temp dir, and `kubectl` pointed at it.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

const START_DEADLINE: Duration = Duration::from_secs(60);

/// A running `capstan server`; stopped (SIGKILL) when dropped.
pub struct CapstanServer {
    child: Child,
    dir: tempfile::TempDir,
    url: String,
}

/// `binary`, or `binary` run by the command in `CAPSTAN_SERVER_WRAPPER` (for profiling a
/// server a test or bench starts, e.g. `CAPSTAN_SERVER_WRAPPER="heaptrack -o /tmp/server"`).
fn wrapped(binary: &Path) -> Command {
    let wrapper = std::env::var("CAPSTAN_SERVER_WRAPPER").unwrap_or_default();
    let mut words = wrapper.split_whitespace();
    match words.next() {
        Some(program) => {
            let mut command = Command::new(program);
            command.args(words).arg(binary);
            command
        }
        None => Command::new(binary),
    }
}

impl CapstanServer {
    /// Starts `binary server` with its data in a fresh temp dir, on a free loopback port (or
    /// the `--bind-address` in `extra_args`), and waits until its kubeconfig is written and
    /// `/readyz` answers.
    pub fn start(binary: &Path, extra_args: &[&str]) -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let log = std::fs::File::create(dir.path().join("server.log"))?;
        let mut command = wrapped(binary);
        command.args(["server", "--https-listen-port", "0", "--data-dir"]).arg(dir.path());
        if !extra_args.contains(&"--bind-address") {
            command.args(["--bind-address", "127.0.0.1"]);
        }
        let child = command
            .args(extra_args)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let mut server = Self { child, dir, url: String::new() };
        server.url = server.wait_ready()?;
        Ok(server)
    }

    fn wait_ready(&mut self) -> Result<String> {
        let deadline = Instant::now() + START_DEADLINE;
        let kubeconfig = self.kubeconfig();
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!("capstan server exited with {status}:\n{}", self.log_tail());
            }
            if let Ok(text) = std::fs::read_to_string(&kubeconfig)
                && let Some(url) = text.lines().find_map(|l| l.trim().strip_prefix("server: "))
            {
                return Ok(url.to_owned());
            }
            if Instant::now() > deadline {
                bail!("capstan server did not become ready:\n{}", self.log_tail());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// The server's process id, e.g. to read its memory from `/proc/<pid>/status`.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.path().join("kubeconfig.yaml")
    }

    pub fn kubectl(&self) -> Kubectl {
        Kubectl { kubeconfig: self.kubeconfig() }
    }

    /// The last lines the server logged, for failure messages.
    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

impl Drop for CapstanServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `/usr/bin/kubectl` (or `$KUBECTL`) with a kubeconfig.
pub struct Kubectl {
    pub kubeconfig: PathBuf,
}

/// What a kubectl run printed.
pub struct KubectlOutput {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for KubectlOutput {
    fn from(o: Output) -> Self {
        Self {
            success: o.status.success(),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl Kubectl {
    fn command(&self) -> Command {
        let binary = std::env::var("KUBECTL").unwrap_or_else(|_| "/usr/bin/kubectl".into());
        let mut command = Command::new(binary);
        command.arg("--kubeconfig").arg(&self.kubeconfig);
        // Keep kubectl's discovery cache inside the test's own directory.
        if let Some(dir) = self.kubeconfig.parent() {
            command.arg("--cache-dir").arg(dir.join("kubectl-cache"));
        }
        command
    }

    /// Runs kubectl with `args`.
    pub fn run(&self, args: &[&str]) -> KubectlOutput {
        self.command().args(args).output().expect("running kubectl").into()
    }

    /// Runs kubectl with `args`, feeding `input` on stdin (for `-f -`).
    pub fn run_with_input(&self, args: &[&str], input: &str) -> KubectlOutput {
        let mut child = self
            .command()
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("running kubectl");
        child.stdin.take().expect("stdin").write_all(input.as_bytes()).expect("writing stdin");
        child.wait_with_output().expect("kubectl output").into()
    }

    /// `kubectl get ARGS -o jsonpath=PATH`'s output, or "" if the get fails (e.g. not found yet).
    pub fn jsonpath(&self, args: &[&str], path: &str) -> String {
        let template = format!("jsonpath={path}");
        let mut all = vec!["get"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["-o", &template]);
        let out = self.run(&all);
        if out.success { out.stdout } else { String::new() }
    }

    /// Runs kubectl and returns its stdout, panicking with stderr if it failed.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(out.success, "kubectl {} failed:\n{}", args.join(" "), out.stderr);
        out.stdout
    }

    /// Runs kubectl with `input` on stdin and returns its stdout, panicking with stderr if it
    /// failed.
    pub fn ok_with_input(&self, args: &[&str], input: &str) -> String {
        let out = self.run_with_input(args, input);
        assert!(out.success, "kubectl {} failed:\n{}", args.join(" "), out.stderr);
        out.stdout
    }

    /// `kubectl create -f -` of a manifest, which must succeed.
    pub fn create(&self, manifest: &str) {
        self.ok_with_input(&["create", "-f", "-"], manifest);
    }

    /// Asserts that `kubectl get …args` fails with NotFound.
    pub fn assert_not_found(&self, args: &[&str]) {
        let mut get = vec!["get"];
        get.extend_from_slice(args);
        let out = self.run(&get);
        assert!(
            !out.success && out.stderr.contains("NotFound"),
            "expected NotFound: {}",
            out.stderr
        );
    }

    /// Spawns a long-running kubectl (e.g. `get -w`) with piped stdout.
    pub fn spawn(&self, args: &[&str]) -> Child {
        self.command()
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("running kubectl")
    }
}

/// Polls `check` until it holds, failing the test with `what` after `within`.
pub fn wait_until(what: &str, within: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}
