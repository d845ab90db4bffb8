//! Control-plane replicas on a three-member etcd under steady load through a STRICT mTLS
//! mesh (a client proxy and an echo workload's proxy, each given the replicas in another
//! order): a replica killed, an etcd member killed, then every replica restarted one by one.
//! The target for each phase is 0 failed requests; each reports its failures and how long
//! the mesh took to be whole again (every proxy connected to a live replica and holding its
//! latest configuration). Real processes on loopback (127.0.88.x) and a real etcd cluster.
//!
//! Needs etcd (installed with apt-get when running as root); without it the test prints a
//! loud SKIPPED line, and fails under CI=true.

mod control_mesh;
mod etcd_support;
mod netns;
mod support;

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use support::{admin_get, admin_get_as, proxy_args, send, wait_ready, Proc, WEFT};

/// Loopback block of this test's processes (127.0.<BLOCK>.x).
const BLOCK: u8 = 88;
const REPLICAS: [u8; 3] = [1, 2, 3];
/// Proxies and their hosts: the client at .11, the echo workload at .12.
const CLIENT: u8 = 11;
const ECHO: u8 = 12;

fn ip(host: u8) -> String {
    format!("127.0.{BLOCK}.{host}")
}

fn addr(host: u8, port: u16) -> SocketAddr {
    format!("{}:{port}", ip(host)).parse().expect("addr")
}

/// A Service applied while an etcd member is down.
const LATER: &str = "apiVersion: v1
kind: Service
metadata: {name: later, namespace: default}
spec:
  selector: {app: later}
  ports: [{name: http, port: 80, targetPort: 8080}]
";

struct Mesh {
    dir: PathBuf,
    endpoints: String,
    replicas: Vec<Option<Proc>>,
    starts: usize,
}

impl Mesh {
    fn state(&self, n: u8) -> PathBuf {
        self.dir.join(format!("state-{n}"))
    }

    async fn start_replica(&mut self, n: u8) {
        let args: Vec<String> = [
            "control",
            "--store",
            "etcd",
            "--etcd-endpoints",
            &self.endpoints,
            "--ca-seal-key",
            &self.dir.join("seal.key").display().to_string(),
            "--state-dir",
            &self.state(n).display().to_string(),
            "--grpc-addr",
            &addr(n, 4180).to_string(),
            "--admin-addr",
            &addr(n, 4181).to_string(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        self.starts += 1;
        let mut proc = Proc::spawn(&format!("control-{n}-{}", self.starts), &args, &self.dir);
        wait_ready(addr(n, 4181), &mut proc).await;
        self.replicas[usize::from(n - 1)] = Some(proc);
    }

    fn kill_replica(&mut self, n: u8) {
        if let Some(mut proc) = self.replicas[usize::from(n - 1)].take() {
            let _ = proc.child.kill();
            let _ = proc.child.wait();
        }
    }

    fn live(&self) -> Vec<u8> {
        REPLICAS
            .into_iter()
            .filter(|n| self.replicas[usize::from(n - 1)].is_some())
            .collect()
    }

    fn token_of(&self, n: u8) -> String {
        std::fs::read_to_string(self.state(n).join("admin-token"))
            .unwrap_or_default()
            .trim()
            .to_string()
    }

    /// `weft ARGS --control <replica n>`: success, stdout, stderr.
    fn weft(&self, n: u8, args: &[&str]) -> (bool, String, String) {
        let out = Command::new(WEFT)
            .args(args)
            .args([
                "--control",
                &addr(n, 4181).to_string(),
                "--admin-token-file",
            ])
            .arg(self.state(n).join("admin-token"))
            .output()
            .expect("running weft");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Which live replica `node` is connected to and current with, if any.
    async fn serving(&self, node: &str) -> Option<u8> {
        for n in self.live() {
            let token = self.token_of(n);
            let Ok((200, body)) = admin_get_as(addr(n, 4181), "/proxies", Some(&token)).await
            else {
                continue;
            };
            let list: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
            let current = list["proxies"].as_array().is_some_and(|ps| {
                ps.iter()
                    .any(|p| p["node"] == node && p["connected"] == true && p["current"] == true)
            });
            if current {
                return Some(n);
            }
        }
        None
    }

    /// Waits until both proxies are connected to live replicas and current, and every live
    /// replica serves `services` Services; how long that took.
    async fn whole_again(&self, since: Instant, services: u64, within: Duration) -> Duration {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            let mut whole = self.serving("default/client").await.is_some()
                && self.serving("default/echo-1").await.is_some();
            for n in self.live() {
                let (_, body) = admin_get(addr(n, 4181), "/status")
                    .await
                    .unwrap_or_default();
                let status: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
                whole &= status["counts"]["Service"].as_u64() == Some(services);
            }
            if whole {
                return since.elapsed();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the mesh was not whole again within {within:?}");
    }
}

/// Requests through the client proxy to echo: counts of answered and failed.
#[derive(Default)]
struct Load {
    ok: AtomicUsize,
    failed: Mutex<Vec<String>>,
    stop: AtomicBool,
}

impl Load {
    fn failures(&self) -> usize {
        self.failed.lock().map(|f| f.len()).unwrap_or(usize::MAX)
    }
}

async fn drive(load: Arc<Load>) {
    let client = addr(CLIENT, 4140);
    // Bounded: at most 40,000 requests per task (about 4 minutes at this pace).
    for _ in 0..40_000 {
        if load.stop.load(Ordering::Relaxed) {
            return;
        }
        let req = Request::get("http://echo/")
            .header("host", "echo")
            .body(Full::new(Bytes::new()))
            .expect("request");
        match send(client, req, false).await {
            Ok(a) if a.status == 200 => {
                load.ok.fetch_add(1, Ordering::Relaxed);
            }
            Ok(a) => push(&load, format!("status {}", a.status)),
            Err(e) => push(&load, e),
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn push(load: &Load, failure: String) {
    if let Ok(mut f) = load.failed.lock() {
        f.push(failure);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replica_and_etcd_member_kills_and_a_rolling_restart_fail_no_request() {
    let Some(dir) = etcd_support::test_dir("the replica failover tests", "weft-replicas") else {
        return;
    };
    let ips = [ip(101), ip(102), ip(103)];
    let mut etcd = etcd_support::Etcd::start_cluster(&[&ips[0], &ips[1], &ips[2]], &dir);
    let endpoints: Vec<String> = etcd.iter().map(|e| e.client_url.clone()).collect();
    let seal = Command::new(WEFT)
        .args(["ca", "seal-key", "--out"])
        .arg(dir.join("seal.key"))
        .status()
        .expect("weft ca seal-key");
    assert!(seal.success());
    let mut mesh = Mesh {
        dir: dir.clone(),
        endpoints: endpoints.join(","),
        replicas: vec![None, None, None],
        starts: 0,
    };
    for n in REPLICAS {
        mesh.start_replica(n).await;
    }
    std::fs::write(
        dir.join("mesh.yaml"),
        control_mesh::mesh_yaml(&ip(ECHO), &ip(CLIENT), "STRICT"),
    )
    .expect("write");
    let (ok, out, err) = mesh.weft(
        1,
        &["apply", "-f", &dir.join("mesh.yaml").display().to_string()],
    );
    assert!(ok, "{out}{err}");

    // The workloads: echo, and a proxy for each side; each proxy knows every replica, in its
    // own order, and gets its certificate through its first (the CA is shared).
    let echo = [
        "echo",
        "--http",
        &format!("{}:8080", ip(ECHO)),
        "--pod",
        "echo-1",
    ];
    let mut procs = vec![Proc::spawn("echo", &echo.map(String::from), &dir)];
    let grpc = |order: [u8; 3]| order.map(|n| addr(n, 4180).to_string()).join(",");
    for (workload, host, order) in [("client", CLIENT, [2, 3, 1]), ("echo-1", ECHO, [3, 1, 2])] {
        let (ok, token, err) = mesh.weft(order[0], &["token", "create", "--workload", workload]);
        assert!(ok, "{err}");
        let ca = mesh.state(order[0]).join("ca/bundle.pem");
        let args = proxy_args(&ip(host), &grpc(order), &ca, workload, token.trim());
        let mut proc = Proc::spawn(&format!("proxy-{workload}"), &args, &dir);
        wait_ready(addr(host, 4191), &mut proc).await;
        procs.push(proc);
    }
    mesh.whole_again(Instant::now(), 1, Duration::from_secs(20))
        .await;
    // Any replica reads any proxy's /config (`weft proxy-config`, the dashboard's
    // certificates), whichever replica the proxy is connected to: each replica has an admin
    // token of its own, and proves the control plane's identity over mutual TLS instead.
    for n in REPLICAS {
        let token = mesh.token_of(n);
        let (code, body) = admin_get_as(
            addr(n, 4181),
            "/proxies/default/client/config",
            Some(&token),
        )
        .await
        .unwrap_or_default();
        assert_eq!(code, 200, "replica {n}: {body}");
        assert!(
            body.contains("spiffe://cluster.local/ns/default/sa/client"),
            "replica {n}: {body}"
        );
    }

    let load = Arc::new(Load::default());
    let drivers: Vec<_> = (0..2).map(|_| tokio::spawn(drive(load.clone()))).collect();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut report = Vec::new();

    // 1. The replica the client's proxy is connected to is killed.
    let before = load.failures();
    let victim = mesh
        .serving("default/client")
        .await
        .expect("the client is served");
    let t0 = Instant::now();
    mesh.kill_replica(victim);
    let took = mesh.whole_again(t0, 1, Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    report.push((
        format!("replica {victim} killed"),
        load.failures() - before,
        took,
    ));

    // 2. An etcd member is killed, and a change is applied through a live replica.
    let before = load.failures();
    let t0 = Instant::now();
    etcd[0].kill();
    std::fs::write(dir.join("later.yaml"), LATER).expect("write");
    let through = mesh.live()[0];
    let (ok, out, err) = mesh.weft(
        through,
        &["apply", "-f", &dir.join("later.yaml").display().to_string()],
    );
    assert!(ok, "apply with an etcd member down: {out}{err}");
    // A registration (what `weft run` makes) with the member down goes through too.
    let registration = serde_json::json!({
        "service": "later",
        "address": ip(30),
        "ports": [8080],
        "owner": "replicas-test",
        "ttlSeconds": 60,
    });
    let req = Request::put("/workloads/default/later-1")
        .header("host", "admin")
        .header(
            "authorization",
            format!("Bearer {}", mesh.token_of(through)),
        )
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(registration.to_string())))
        .expect("request");
    let registered = send(addr(through, 4181), req, false).await.expect("admin");
    assert_eq!(
        registered.status,
        200,
        "registration with an etcd member down: {}",
        String::from_utf8_lossy(&registered.body)
    );
    let took = mesh.whole_again(t0, 2, Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    report.push((
        "etcd member n1 killed, change applied".into(),
        load.failures() - before,
        took,
    ));

    // 3. Every replica restarted, one at a time (the one killed above comes back first).
    let before = load.failures();
    let t0 = Instant::now();
    mesh.start_replica(victim).await;
    for n in REPLICAS.into_iter().filter(|n| *n != victim) {
        mesh.whole_again(Instant::now(), 2, Duration::from_secs(30))
            .await;
        mesh.kill_replica(n);
        mesh.start_replica(n).await;
    }
    let took = mesh.whole_again(t0, 2, Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    report.push((
        "rolling restart of 3 replicas".into(),
        load.failures() - before,
        took,
    ));

    load.stop.store(true, Ordering::Relaxed);
    for d in drivers {
        let _ = d.await;
    }
    let mut table =
        String::from("\nphase                                   failed  whole again after\n");
    for (phase, failed, took) in &report {
        table.push_str(&format!(
            "{phase:<40}{failed:>6}  {:.1} s\n",
            took.as_secs_f64()
        ));
    }
    table.push_str(&format!(
        "requests answered: {}\n",
        load.ok.load(Ordering::Relaxed)
    ));
    let _ = writeln!(std::io::stderr(), "{table}");
    let failed = load.failed.lock().map(|f| f.clone()).unwrap_or_default();
    assert!(
        failed.is_empty(),
        "{} requests failed: {:?}{table}",
        failed.len(),
        &failed[..failed.len().min(10)]
    );
    assert!(
        load.ok.load(Ordering::Relaxed) > 1000,
        "too little load to mean anything{table}"
    );
    drop(procs);
    let _ = std::fs::remove_dir_all(&dir);
}
