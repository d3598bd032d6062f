//! Docker for end-to-end tests. Test images imported into the local Docker Engine (these machines cannot pull): a busybox
//! rootfs from Debian's `busybox-static`, a pause image on it, and one with `kubectl` added.
//! Built once per machine; concurrent tests (and test processes) serialise on a lock file.

use std::fs::{self, File};
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

/// `/bin/sh` and the busybox applets.
pub const BUSYBOX_IMAGE: &str = "capstan.test/busybox:1";
/// A sandbox image: sleeps until SIGTERM, then exits 0.
pub const PAUSE_IMAGE: &str = "capstan.test/pause:1";
/// The busybox image plus `/usr/bin/kubectl`.
pub const KUBECTL_IMAGE: &str = "capstan.test/kubectl:1";

const BUSYBOX: &str = "/bin/busybox";
const LOCK: &str = "capstan-test-images.lock";
/// Sleeps in the background so the TERM trap runs at once, as a pause container must exit
/// promptly when stopped.
const PAUSE_LOOP: &str = "trap 'exit 0' TERM INT; while :; do sleep 3600 & wait $!; done";

/// Imports the three test images unless the Docker Engine already has them.
pub fn ensure_test_images() -> Result<()> {
    let lock_path = std::env::temp_dir().join(LOCK);
    let lock =
        File::create(&lock_path).with_context(|| format!("creating {}", lock_path.display()))?;
    lock.lock().context("locking the test image lock")?;
    let result = build_missing();
    let _ = lock.unlock();
    result
}

fn build_missing() -> Result<()> {
    let wanted = [BUSYBOX_IMAGE, PAUSE_IMAGE, KUBECTL_IMAGE];
    if wanted.iter().all(|image| image_exists(image)) {
        return Ok(());
    }
    if !Path::new(BUSYBOX).is_file() {
        bail!(
            "{BUSYBOX} is missing: install Debian's busybox-static (scripts/install-deps.sh test)"
        );
    }
    let root = tempfile::tempdir()?;
    let rootfs = root.path().join("rootfs");
    busybox_rootfs(&rootfs)?;
    if !image_exists(BUSYBOX_IMAGE) {
        import(&rootfs, BUSYBOX_IMAGE, &[r#"CMD ["/bin/sh"]"#])?;
    }
    if !image_exists(PAUSE_IMAGE) {
        let cmd = format!("CMD {}", exec_form(&["/bin/sh", "-c", PAUSE_LOOP]));
        import(&rootfs, PAUSE_IMAGE, &[&cmd])?;
    }
    if !image_exists(KUBECTL_IMAGE) {
        let kubectl = std::env::var("KUBECTL").unwrap_or_else(|_| "/usr/bin/kubectl".into());
        let target = rootfs.join("usr/bin/kubectl");
        fs::create_dir_all(target.parent().unwrap_or(&rootfs))?;
        // kubectl is a static Go binary: the file behind the symlink is all it needs.
        fs::copy(fs::canonicalize(&kubectl)?, &target)
            .with_context(|| format!("copying {kubectl}"))?;
        import(&rootfs, KUBECTL_IMAGE, &[r#"CMD ["/bin/sh"]"#])?;
    }
    Ok(())
}

fn image_exists(image: &str) -> bool {
    Command::new("docker")
        .args(["image", "inspect", image])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// `/bin/busybox` with a symlink per applet (not over `busybox` itself, which `--list`
/// names too), and the directories a container runtime mounts over.
fn busybox_rootfs(rootfs: &Path) -> Result<()> {
    for dir in ["bin", "usr/bin", "etc", "tmp", "proc", "sys", "dev", "var/run", "root"] {
        fs::create_dir_all(rootfs.join(dir))?;
    }
    fs::copy(BUSYBOX, rootfs.join("bin/busybox"))?;
    let list = Command::new(BUSYBOX).arg("--list").output().context("busybox --list")?;
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        let applet = applet.trim();
        if applet.is_empty() || applet == "busybox" || applet.contains('/') {
            continue;
        }
        let link = rootfs.join("bin").join(applet);
        if !link.exists() {
            std::os::unix::fs::symlink("busybox", link)?;
        }
    }
    fs::write(rootfs.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n")?;
    fs::write(rootfs.join("etc/group"), "root:x:0:\n")?;
    Ok(())
}

/// `docker import` of `rootfs` as `tag`, with Dockerfile `changes`.
fn import(rootfs: &Path, tag: &str, changes: &[&str]) -> Result<()> {
    let tar = rootfs.with_extension("tar");
    let status = Command::new("tar")
        .arg("-C")
        .arg(rootfs)
        .arg("-cf")
        .arg(&tar)
        .arg(".")
        .status()
        .context("running tar")?;
    if !status.success() {
        bail!("tar of {} failed", rootfs.display());
    }
    let mut command = Command::new("docker");
    command.arg("import");
    for change in changes {
        command.args(["--change", change]);
    }
    let out = command.arg(&tar).arg(tag).output().context("running docker import")?;
    if !out.status.success() {
        bail!("docker import {tag}: {}", String::from_utf8_lossy(&out.stderr));
    }
    let _ = fs::remove_file(&tar);
    Ok(())
}

/// A JSON array of strings (Dockerfile exec form).
fn exec_form(items: &[&str]) -> String {
    let quoted: Vec<String> = items
        .iter()
        .map(|s| format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\"")))
        .collect();
    format!("[{}]", quoted.join(","))
}

/// Removes, when dropped, every container a test's node left in Docker (by the kubelet's
/// `capstan.io/node` label) and the node's network `capstan-<node>`.
pub struct DockerNodeCleanup {
    pub node: String,
}

impl DockerNodeCleanup {
    /// Ids of the node's containers, sandboxes included.
    pub fn containers(&self) -> Vec<String> {
        let out = Command::new("docker")
            .args(["ps", "-aq", "--no-trunc", "--filter"])
            .arg(format!("label=capstan.io/node={}", self.node))
            .output();
        match out {
            Ok(out) => String::from_utf8_lossy(&out.stdout).lines().map(str::to_owned).collect(),
            Err(_) => Vec::new(),
        }
    }
}

impl Drop for DockerNodeCleanup {
    fn drop(&mut self) {
        let ids = self.containers();
        if !ids.is_empty() {
            let _ = Command::new("docker").args(["rm", "-f", "-v"]).args(&ids).output();
        }
        let network = format!("capstan-{}", self.node);
        let _ = Command::new("docker").args(["network", "rm", &network]).output();
    }
}
