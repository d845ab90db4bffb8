//! The replicated store's setup (`--replicas N`): a three-member etcd (Debian's `etcd`) and N
//! `weft control --store etcd` replicas on 127.0.121.x, sharing an operator CA given as files
//! (so the benchmark can sign its clients' certificates), the mesh written with `weft apply`,
//! and each change applied with `weft apply` through the replicas in turn.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use weft_identity::Authority;

use crate::{wait_listening, Killed};

/// The etcd members' client URLs.
const ETCD: [&str; 3] = ["127.0.121.101", "127.0.121.102", "127.0.121.103"];

pub struct Replicated {
    pub grpc: Vec<SocketAddr>,
    admin: Vec<SocketAddr>,
    pub replicas: Vec<Killed>,
    _etcd: Vec<Killed>,
    dir: PathBuf,
    weft: PathBuf,
    applies: usize,
}

/// Starts etcd and the replicas, and applies the mesh in `dir/config`.
pub async fn start(weft: &Path, dir: &Path, replicas: usize, ca: &Authority) -> Result<Replicated> {
    let cluster: Vec<String> = ETCD
        .iter()
        .enumerate()
        .map(|(i, ip)| format!("n{i}=http://{ip}:2380"))
        .collect();
    let mut etcd = Vec::new();
    for (i, ip) in ETCD.iter().enumerate() {
        let log = std::fs::File::create(dir.join(format!("etcd-{i}.log")))?;
        let client = format!("http://{ip}:2379");
        let peer = format!("http://{ip}:2380");
        let child = Command::new("etcd")
            .args(["--name", &format!("n{i}"), "--data-dir"])
            .arg(dir.join(format!("etcd-{i}")))
            .args([
                "--listen-client-urls",
                &client,
                "--advertise-client-urls",
                &client,
            ])
            .args([
                "--listen-peer-urls",
                &peer,
                "--initial-advertise-peer-urls",
                &peer,
            ])
            .args([
                "--initial-cluster",
                &cluster.join(","),
                "--initial-cluster-state",
                "new",
            ])
            .args(["--quota-backend-bytes", "4294967296"])
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .context("starting etcd (apt-get install -y etcd-server)")?;
        etcd.push(Killed(child));
    }
    let pem = ca.export_pem();
    std::fs::write(dir.join("ca-cert.pem"), &pem.cert)?;
    std::fs::write(dir.join("ca-key.pem"), &pem.key)?;
    let endpoints: Vec<String> = ETCD.iter().map(|ip| format!("http://{ip}:2379")).collect();
    let mut set = Replicated {
        grpc: Vec::new(),
        admin: Vec::new(),
        replicas: Vec::new(),
        _etcd: etcd,
        dir: dir.to_path_buf(),
        weft: weft.to_path_buf(),
        applies: 0,
    };
    for n in 1..=replicas {
        let grpc: SocketAddr = format!("127.0.121.{n}:4180").parse()?;
        let admin: SocketAddr = format!("127.0.121.{n}:4181").parse()?;
        let log = std::fs::File::create(dir.join(format!("control-{n}.log")))?;
        let child = Command::new(weft)
            .args([
                "control",
                "--store",
                "etcd",
                "--etcd-endpoints",
                &endpoints.join(","),
            ])
            .arg("--ca-cert")
            .arg(dir.join("ca-cert.pem"))
            .arg("--ca-key")
            .arg(dir.join("ca-key.pem"))
            .arg("--state-dir")
            .arg(dir.join(format!("state-{n}")))
            .args([
                "--grpc-addr",
                &grpc.to_string(),
                "--admin-addr",
                &admin.to_string(),
            ])
            .env(
                "WEFT_LOG",
                std::env::var("BENCH_CONTROL_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .with_context(|| format!("starting {}", weft.display()))?;
        set.replicas.push(Killed(child));
        set.grpc.push(grpc);
        set.admin.push(admin);
    }
    for grpc in &set.grpc {
        wait_listening(*grpc, Duration::from_secs(120)).await?;
    }
    set.apply(&dir.join("config"))?;
    Ok(set)
}

/// The `/status` of the replica whose admin endpoint is `admin` (a plain HTTP/1.1 GET).
fn status(admin: SocketAddr) -> Result<serde_json::Value> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect_timeout(&admin, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.write_all(b"GET /status HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n")?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b)
        .unwrap_or_default();
    Ok(serde_json::from_str(body)?)
}

impl Replicated {
    /// Waits until every replica serves `services` Services and `workloads` WorkloadEntries
    /// (a write is done when etcd has it; each replica learns it from its watch a moment
    /// later).
    pub async fn wait_counts(&self, services: u64, workloads: u64, within: Duration) -> Result<()> {
        let deadline = std::time::Instant::now() + within;
        for admin in &self.admin {
            loop {
                let counted = status(*admin).ok().map(|s| {
                    let count = |kind: &str| s["counts"][kind].as_u64().unwrap_or(0);
                    (count("Service"), count("WorkloadEntry"))
                });
                if counted == Some((services, workloads)) {
                    break;
                }
                if std::time::Instant::now() > deadline {
                    bail!("the replica at {admin} serves (Services, WorkloadEntries) {counted:?}, not {:?}, after {within:?}", (services, workloads));
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        Ok(())
    }

    /// `weft apply -f path` through the next replica in turn.
    pub fn apply(&mut self, path: &Path) -> Result<()> {
        let n = self.applies % self.admin.len();
        self.applies += 1;
        let out = Command::new(&self.weft)
            .args(["apply", "-f"])
            .arg(path)
            .args([
                "--control",
                &self.admin[n].to_string(),
                "--admin-token-file",
            ])
            .arg(self.dir.join(format!("state-{}/admin-token", n + 1)))
            .output()
            .context("running weft apply")?;
        if !out.status.success() {
            bail!(
                "weft apply through replica {}: {}",
                n + 1,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(())
    }
}
