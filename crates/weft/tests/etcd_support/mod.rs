//! A real etcd (Debian's `etcd-server`) on loopback for tests: one member, its data in a
//! temporary directory, killed when dropped. Installed with apt-get when missing and running
//! as root; otherwise the caller skips loudly (and fails under CI=true).

#![allow(dead_code)]

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Etcd {
    pub client_url: String,
    pub dir: PathBuf,
    child: Child,
}

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether `etcd` and `etcdctl` can run here, installing them as root if needed.
pub fn available() -> Result<(), String> {
    // `etcd --version` and `etcdctl version` (etcd 3.4's spellings).
    let works = |tool: &str, arg: &str| {
        Command::new(tool)
            .arg(arg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if works("etcd", "--version") && works("etcdctl", "version") {
        return Ok(());
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err("etcd is not installed and installing it needs root (apt-get install -y etcd-server etcd-client)".into());
    }
    let status = Command::new("apt-get")
        .args(["install", "-y", "-qq", "etcd-server", "etcd-client"])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .stdout(Stdio::null())
        .status()
        .map_err(|e| format!("apt-get: {e}"))?;
    if !status.success() {
        return Err(format!("apt-get install etcd-server etcd-client: {status}"));
    }
    Ok(())
}

impl Etcd {
    /// Starts one member on `ip` (client port 2379, peer port 2380) with its data in `dir`.
    pub fn start(ip: &str, dir: &Path) -> Etcd {
        let data = dir.join("etcd");
        let _ = std::fs::remove_dir_all(&data);
        let client_url = format!("http://{ip}:2379");
        let peer_url = format!("http://{ip}:2380");
        let log = std::fs::File::create(dir.join("etcd.log")).expect("etcd log");
        let child = Command::new("etcd")
            .args([
                "--name",
                "n1",
                "--data-dir",
                &data.display().to_string(),
                "--listen-client-urls",
                &client_url,
                "--advertise-client-urls",
                &client_url,
                "--listen-peer-urls",
                &peer_url,
                "--initial-advertise-peer-urls",
                &peer_url,
                "--initial-cluster",
                &format!("n1={peer_url}"),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("starting etcd");
        let etcd = Etcd {
            client_url,
            dir: dir.to_path_buf(),
            child,
        };
        let addr: SocketAddr = format!("{ip}:2379").parse().expect("addr");
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
                && etcd.ctl(&["endpoint", "health"]).is_ok()
            {
                return etcd;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "etcd did not start: {}",
            std::fs::read_to_string(dir.join("etcd.log")).unwrap_or_default()
        );
    }

    /// Runs `etcdctl` against this member; its stdout, or its stderr as the error.
    pub fn ctl(&self, args: &[&str]) -> Result<String, String> {
        let out = Command::new("etcdctl")
            .env("ETCDCTL_API", "3")
            .arg(format!("--endpoints={}", self.client_url))
            .args(args)
            .output()
            .map_err(|e| format!("etcdctl: {e}"))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    /// The keys under `prefix`.
    pub fn keys(&self, prefix: &str) -> Vec<String> {
        self.ctl(&["get", prefix, "--prefix", "--keys-only"])
            .unwrap_or_default()
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect()
    }
}
