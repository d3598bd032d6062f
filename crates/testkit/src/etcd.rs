//! A real single-member etcd (Debian's `etcd` binary) on free loopback ports in a temp dir.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use tempfile::TempDir;

/// Attempts at starting etcd: the ports are picked by binding and releasing them, so another
/// process can grab one before etcd does.
const START_ATTEMPTS: usize = 3;
/// How long etcd may take to elect itself and answer `/health` (slow, loaded CI machines).
const START_TIMEOUT: Duration = Duration::from_secs(30);
const POLL_INTERVAL: Duration = Duration::from_millis(20);
/// Room for the key and the transaction around the largest value the store accepts
/// (`capstan_store::MAX_VALUE_BYTES`, 1.5 MiB): etcd's default limit counts the whole request.
const MAX_REQUEST_BYTES: u32 = 2 * 1024 * 1024;
const MEMBER_NAME: &str = "capstan-test";

/// A running etcd, killed (and its data dir deleted) on drop.
pub struct EtcdServer {
    binary: PathBuf,
    /// `None` while stopped.
    child: Option<Child>,
    client_port: u16,
    peer_port: u16,
    /// Holds the data dir and `etcd.log`; kept across `stop`/`restart`.
    dir: TempDir,
}

impl EtcdServer {
    /// Starts etcd and waits until it has elected itself leader and answers `/health`.
    /// Blocks the calling thread meanwhile (about a second), which async tests can afford.
    pub fn start() -> Result<Self> {
        let binary = find_on_path("etcd").context(
            "etcd not found on PATH (install Debian's etcd-server package to run etcd tests)",
        )?;
        let dir = tempfile::Builder::new()
            .prefix("capstan-etcd-")
            .tempdir()
            .context("creating a temp dir for etcd")?;
        let mut server = EtcdServer { binary, child: None, client_port: 0, peer_port: 0, dir };
        let mut attempt = 1;
        loop {
            (server.client_port, server.peer_port) = free_port_pair()?;
            match server.spawn_and_wait() {
                Ok(()) => return Ok(server),
                // An early exit is most likely a lost port race: try fresh ports and a clean
                // data dir, since etcd may have written its membership before failing.
                Err(StartFailure::Exited(_)) if attempt < START_ATTEMPTS => {
                    attempt += 1;
                    let data_dir = server.data_dir();
                    if data_dir.exists() {
                        fs::remove_dir_all(&data_dir)
                            .with_context(|| format!("removing {}", data_dir.display()))?;
                    }
                }
                Err(failure) => return Err(server.start_error(failure)),
            }
        }
    }

    /// The client URL, `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.client_port)
    }

    /// The directory holding the data dir and `etcd.log`.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Kills etcd (SIGKILL: etcd is crash-safe) and reaps it, keeping its data, so a test can see
    /// how clients behave while etcd is unreachable. A no-op when already stopped.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // Errors mean the process is already gone, which is what we want.
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts etcd again on the same ports with the same data, after `stop`.
    pub fn restart(&mut self) -> Result<()> {
        self.stop();
        self.spawn_and_wait().map_err(|failure| self.start_error(failure))
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("etcd.log")
    }

    fn spawn_and_wait(&mut self) -> Result<(), StartFailure> {
        let child = self.spawn().map_err(StartFailure::Spawn)?;
        self.child = Some(child);
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(child) = self.child.as_mut() {
                match child.try_wait() {
                    Ok(Some(status)) => {
                        self.child = None;
                        return Err(StartFailure::Exited(status));
                    }
                    Ok(None) => {}
                    Err(error) => {
                        self.stop();
                        return Err(StartFailure::Spawn(error.into()));
                    }
                }
            }
            if is_healthy(self.client_port) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                self.stop();
                return Err(StartFailure::TimedOut);
            }
            std::thread::sleep(POLL_INTERVAL);
        }
    }

    fn spawn(&self) -> Result<Child> {
        let log_path = self.log_path();
        let log = File::options()
            .create(true)
            .append(true)
            .open(&log_path)
            .with_context(|| format!("opening {}", log_path.display()))?;
        let client_url = format!("http://127.0.0.1:{}", self.client_port);
        let peer_url = format!("http://127.0.0.1:{}", self.peer_port);
        let mut command = Command::new(&self.binary);
        command
            .arg("--name")
            .arg(MEMBER_NAME)
            .arg("--data-dir")
            .arg(self.data_dir())
            .args(["--listen-client-urls", &client_url])
            .args(["--advertise-client-urls", &client_url])
            .args(["--listen-peer-urls", &peer_url])
            .args(["--initial-advertise-peer-urls", &peer_url])
            .args(["--initial-cluster", &format!("{MEMBER_NAME}={peer_url}")])
            .args(["--initial-cluster-state", "new"])
            .args(["--max-request-bytes", &MAX_REQUEST_BYTES.to_string()])
            .args(["--logger", "zap"])
            // etcd 3.4 refuses to run on architectures other than amd64 and ppc64le unless this
            // names the running one; on those two it is ignored.
            .env("ETCD_UNSUPPORTED_ARCH", go_arch())
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        // etcd also reads its flags from ETCD_* variables and refuses to start when one
        // conflicts with a flag, so the developer's environment must not leak in.
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("ETCD_") {
                command.env_remove(name);
            }
        }
        command.spawn().with_context(|| format!("running {}", self.binary.display()))
    }

    fn start_error(&self, failure: StartFailure) -> anyhow::Error {
        let what = match failure {
            StartFailure::Spawn(error) => return error,
            StartFailure::Exited(status) => format!("etcd exited with {status}"),
            StartFailure::TimedOut => format!(
                "etcd did not answer /health on port {} within {START_TIMEOUT:?}",
                self.client_port
            ),
        };
        // The log itself goes away with the temp dir, so the error carries its end.
        anyhow::anyhow!("{what}; last lines of its log:\n{}", log_tail(&self.log_path(), 30))
    }
}

impl Drop for EtcdServer {
    fn drop(&mut self) {
        self.stop();
    }
}

enum StartFailure {
    Spawn(anyhow::Error),
    Exited(ExitStatus),
    TimedOut,
}

/// Two distinct free loopback ports (client, peer). Both listeners are held until both ports are
/// known, so the pair cannot collide with itself.
fn free_port_pair() -> Result<(u16, u16)> {
    let bind = || TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("binding a free port");
    let client = bind()?;
    let peer = bind()?;
    Ok((client.local_addr()?.port(), peer.local_addr()?.port()))
}

/// etcd's `/health` says `{"health":"true"}` only once the member has a leader.
fn is_healthy(port: u16) -> bool {
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let Ok(mut stream) = TcpStream::connect_timeout(&address, Duration::from_millis(200)) else {
        return false;
    };
    let timeout = Some(Duration::from_secs(1));
    if stream.set_read_timeout(timeout).is_err() || stream.set_write_timeout(timeout).is_err() {
        return false;
    }
    let request = "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut response = String::new();
    stream.read_to_string(&mut response).is_ok()
        && response.starts_with("HTTP/1.1 200")
        && response.contains(r#""health":"true""#)
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(name)).find(|candidate| candidate.is_file())
}

/// Go's name for the architecture we run on.
fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        other => other,
    }
}

fn log_tail(path: &Path, lines: usize) -> String {
    match fs::read_to_string(path) {
        Ok(log) => {
            let all: Vec<&str> = log.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        }
        Err(error) => format!("(cannot read the log: {error})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn started_etcd_answers_health_until_stopped_and_again_after_restart() {
        let mut etcd = EtcdServer::start().expect("etcd starts");
        assert!(etcd.endpoint().starts_with("http://127.0.0.1:"));
        assert!(is_healthy(etcd.client_port));

        etcd.stop();
        assert!(!is_healthy(etcd.client_port));

        etcd.restart().expect("etcd restarts");
        assert!(is_healthy(etcd.client_port));
    }

    #[test]
    fn dropping_the_server_deletes_its_dir() {
        let etcd = EtcdServer::start().expect("etcd starts");
        let dir = etcd.dir().to_owned();
        assert!(dir.join("data").exists());
        drop(etcd);
        assert!(!dir.exists());
    }
}
