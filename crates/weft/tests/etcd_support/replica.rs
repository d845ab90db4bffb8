//! A control-plane replica on the etcd store, for the tests that run several: started on a
//! loopback address of the test's block, sharing the test's CA seal key; and the admin calls
//! the tests make of it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Request;
use http_body_util::Full;

use crate::support::{admin_get, admin_get_as, send, Proc, WEFT};

/// A `weft control --store etcd` replica at `127.0.<block>.<host>` (gRPC 4180, admin 4181),
/// its state in `dir/state-<host>`.
pub struct Replica {
    pub proc: Proc,
    pub admin: SocketAddr,
    pub state: PathBuf,
    pub args: Vec<String>,
}

impl Replica {
    pub fn start(dir: &Path, block: u8, host: u8, etcd: &str) -> Replica {
        Replica::start_with(dir, block, host, etcd, &[])
    }

    /// Like [`Replica::start`] with more `weft control` arguments (etcd TLS files). Every
    /// replica of a test shares `dir/seal.key` unless `extra` names another.
    pub fn start_with(dir: &Path, block: u8, host: u8, etcd: &str, extra: &[&str]) -> Replica {
        let seal = seal_key(dir, "seal.key");
        let seal_args: &[&str] = if extra.contains(&"--ca-seal-key") {
            &[]
        } else {
            &["--ca-seal-key", &seal]
        };
        let state = dir.join(format!("state-{host}"));
        let admin: SocketAddr = format!("127.0.{block}.{host}:4181").parse().expect("addr");
        let args: Vec<String> = [
            "control",
            "--store",
            "etcd",
            "--etcd-endpoints",
            etcd,
            "--state-dir",
            &state.display().to_string(),
            "--grpc-addr",
            &format!("127.0.{block}.{host}:4180"),
            "--admin-addr",
            &admin.to_string(),
        ]
        .iter()
        .chain(seal_args)
        .chain(extra)
        .map(|s| s.to_string())
        .collect();
        let proc = Proc::spawn(&format!("control-{host}"), &args, dir);
        Replica {
            proc,
            admin,
            state,
            args,
        }
    }

    pub fn token(&self) -> String {
        std::fs::read_to_string(self.state.join("admin-token"))
            .expect("admin token")
            .trim()
            .to_string()
    }

    /// `weft SUBCOMMAND ARGS --control <this replica>`: exit success, stdout, stderr.
    pub fn weft(&self, args: &[&str]) -> (bool, String, String) {
        let out = Command::new(WEFT)
            .args(args)
            .args([
                "--control",
                &self.admin.to_string(),
                "--admin-token-file",
                &self.state.join("admin-token").display().to_string(),
            ])
            .output()
            .expect("running weft");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    pub fn grpc(&self) -> String {
        self.admin.to_string().replace(":4181", ":4180")
    }

    pub async fn status(&self) -> serde_json::Value {
        let (code, body) = admin_get(self.admin, "/status").await.unwrap_or_default();
        assert_eq!(code, 200, "{body}");
        serde_json::from_str(&body).unwrap_or_default()
    }

    pub async fn workloads(&self) -> String {
        admin_get_as(self.admin, "/workloads", Some(&self.token()))
            .await
            .map(|(_, b)| b)
            .unwrap_or_default()
    }
}

/// `dir/name`, a CA seal key made by `weft ca seal-key --out` if it is not there yet.
pub fn seal_key(dir: &Path, name: &str) -> String {
    let path = dir.join(name);
    if !path.exists() {
        let out = Command::new(WEFT)
            .args(["ca", "seal-key", "--out", &path.display().to_string()])
            .output()
            .expect("running weft ca seal-key");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    path.display().to_string()
}

/// `POST path` on a replica's admin endpoint: the status and body.
pub async fn post(replica: &Replica, path: &str) -> (u16, String) {
    let req = Request::post(path)
        .header("host", "admin")
        .header("authorization", format!("Bearer {}", replica.token()))
        .body(Full::new(Bytes::new()))
        .expect("request");
    send(replica.admin, req, false)
        .await
        .map(|a| {
            (
                a.status.as_u16(),
                String::from_utf8_lossy(&a.body).into_owned(),
            )
        })
        .unwrap_or_default()
}

/// Polls `check` every 100 ms for up to `within`; panics with `what` if it never holds.
pub async fn eventually<F, Fut>(within: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("not within {within:?}: {what}");
}
