//! The Gateway API mesh conformance cases (`shared/conformance/gateway-api-mesh`), run
//! against real `weft proxy` and `weft echo` processes on loopback.
//!
//! Topology: each of the fixtures' Deployments becomes a WorkloadEntry with a loopback address
//! of its own, an echo server on that address (ports 8080, 8443 and 7070; TCP echo on 9090)
//! and a proxy beside it (outbound :4140, inbound :4143, admin :4191). A case's request is
//! sent from its client workload the way an application without capture would: to its proxy's
//! outbound port as an explicit HTTP proxy request (absolute-form URI, like `curl -x`). The
//! proxy reaches other workloads through their proxies' inbound ports, over the mesh
//! transport. Each manifest is written into the watched config directory in turn; the test
//! waits for every proxy to load it, then checks its cases.

mod conformance_cases;
mod support;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{
    admin_get_as, admin_token_args, wait_listening, wait_ready, Proc, Via, TEST_ADMIN_TOKEN,
};

use conformance_cases::{client_of, manifest_path, put_manifest, MeshUnderTest, CONSUMER_NS, NS};

struct Workload {
    name: &'static str,
    namespace: &'static str,
    ip: &'static str,
    version: &'static str,
}

const WORKLOADS: [Workload; 3] = [
    Workload {
        name: "echo-v1",
        namespace: NS,
        ip: "127.0.40.1",
        version: "v1",
    },
    Workload {
        name: "echo-v2",
        namespace: NS,
        ip: "127.0.40.2",
        version: "v2",
    },
    Workload {
        name: "echo-v1",
        namespace: CONSUMER_NS,
        ip: "127.0.40.3",
        version: "v1",
    },
];

fn addr(ip: &str, port: u16) -> SocketAddr {
    SocketAddr::new(ip.parse().expect("ip"), port)
}

/// The fixtures with Deployments replaced by WorkloadEntries (what a Deployment's pods are
/// outside Kubernetes).
fn base_config() -> String {
    let fixtures = std::fs::read_to_string(manifest_path("00-fixtures.yaml")).expect("fixtures");
    let mut docs: Vec<String> = fixtures
        .split("\n---")
        .filter(|d| !d.contains("kind: Deployment"))
        .map(str::to_string)
        .collect();
    for w in &WORKLOADS {
        docs.push(format!(
            "\napiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata: {{name: {}, namespace: {}}}\nspec: {{address: {}, serviceAccount: echo, labels: {{app: echo, version: {}}}}}\n",
            w.name, w.namespace, w.ip, w.version
        ));
    }
    docs.join("\n---")
}

struct Mesh {
    dir: PathBuf,
    procs: Vec<Proc>,
}

impl Mesh {
    async fn start(dir: PathBuf) -> Mesh {
        std::fs::create_dir_all(dir.join("config")).expect("config dir");
        std::fs::write(dir.join("config/00-base.yaml"), base_config()).expect("write config");
        let mut procs = Vec::new();
        let admin_token = admin_token_args(&dir);
        for (i, w) in WORKLOADS.iter().enumerate() {
            let http = [8080, 8443, 7070]
                .map(|p| addr(w.ip, p).to_string())
                .join(",");
            let echo = Proc::spawn(
                &format!("echo-{i}"),
                &[
                    "echo".into(),
                    "--http".into(),
                    http,
                    "--tcp".into(),
                    addr(w.ip, 9090).to_string(),
                    "--service".into(),
                    w.name.into(),
                    "--namespace".into(),
                    w.namespace.into(),
                    "--pod".into(),
                    w.name.into(),
                ],
                &dir,
            );
            procs.push(echo);
            let mut proxy = Proc::spawn(
                &format!("proxy-{i}"),
                &[
                    "proxy".into(),
                    "--config-dir".into(),
                    dir.join("config").display().to_string(),
                    "--workload".into(),
                    w.name.into(),
                    "--namespace".into(),
                    w.namespace.into(),
                    "--outbound-addr".into(),
                    addr(w.ip, 4140).to_string(),
                    "--inbound-addr".into(),
                    addr(w.ip, 4143).to_string(),
                    "--admin-addr".into(),
                    addr(w.ip, 4191).to_string(),
                    "--app-ip".into(),
                    w.ip.into(),
                    admin_token[0].clone(),
                    admin_token[1].clone(),
                ],
                &dir,
            );
            wait_ready(addr(w.ip, 4191), &mut proxy).await;
            procs.push(proxy);
            wait_listening(addr(w.ip, 8080)).await;
        }
        Mesh { dir, procs }
    }

    async fn versions(&self) -> Vec<String> {
        let mut out = Vec::new();
        for w in &WORKLOADS {
            let (_, body) = admin_get_as(addr(w.ip, 4191), "/config", Some(TEST_ADMIN_TOKEN))
                .await
                .unwrap_or_default();
            let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
            out.push(v["version"].as_str().unwrap_or("").to_string());
        }
        out
    }

    /// Replaces the route manifest and waits until every proxy serves the new config.
    async fn apply_manifest(&self, manifest: Option<&str>) {
        let before = self.versions().await;
        put_manifest(&self.dir.join("config"), manifest);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let now = self.versions().await;
            if now.iter().zip(&before).all(|(a, b)| a != b) {
                return;
            }
            if Instant::now() > deadline {
                let logs: Vec<String> = self
                    .procs
                    .iter()
                    .filter(|p| p.name.starts_with("proxy"))
                    .map(|p| p.log_tail())
                    .collect();
                panic!(
                    "proxies did not load {manifest:?} within 20s ({before:?} -> {now:?}):\n{}",
                    logs.join("\n---\n")
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl MeshUnderTest for Mesh {
    /// Explicit-proxy clients: every request goes to the client workload's outbound port.
    fn via(&self, case: &Value, _host: &str) -> Via {
        let (ns, pod) = client_of(case);
        let w = WORKLOADS
            .iter()
            .find(|w| w.namespace == ns && w.name == pod)
            .expect("client workload");
        Via::Proxy(addr(w.ip, 4140))
    }

    fn pod_ip(&self, name: &str) -> String {
        WORKLOADS
            .iter()
            .find(|w| w.namespace == NS && w.name == name)
            .map(|w| w.ip.to_string())
            .unwrap_or_default()
    }

    async fn apply(&self, manifest: Option<&str>) {
        self.apply_manifest(manifest).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_api_mesh_conformance() {
    let dir = std::env::temp_dir().join(format!("weft-conformance-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mesh = Mesh::start(dir.clone()).await;

    let (passed, failures) = conformance_cases::run_all(&mesh).await;
    println!("conformance: {passed} passed, {} failed", failures.len());
    if !failures.is_empty() {
        let logs: Vec<String> = mesh
            .procs
            .iter()
            .filter(|p| p.name.starts_with("proxy"))
            .map(|p| format!("{}:\n{}", p.name, p.log_tail()))
            .collect();
        panic!(
            "{} of 82 conformance cases failed:\n{}\n\nproxy logs:\n{}",
            failures.len(),
            failures.join("\n"),
            logs.join("\n")
        );
    }
    drop(mesh);
    let _ = std::fs::remove_dir_all(&dir);
}
