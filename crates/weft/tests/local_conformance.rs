//! The Gateway API mesh conformance cases again, the way a user runs a mesh on a host: each
//! of the fixtures' workloads started by `weft run` in a network namespace of its own, its
//! traffic captured transparently, and mutual TLS STRICT mesh-wide. A case's request is sent
//! from inside its client workload's namespace to the Service's VIP (as the namespace's
//! hosts file resolves the name), origin-form, as an application would send it; the capture
//! rules take it to the client's proxy. Needs root, iproute2 and iptables (SKIPPED loudly
//! without them, failed under CI=true).

mod conformance_cases;
mod local_host;
mod netns;
mod support;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use conformance_cases::{client_of, manifest_path, put_manifest, MeshUnderTest, CONSUMER_NS, NS};
use local_host::{LocalHost, WEFT};
use serde_json::Value;
use support::{admin_get, Proc, Via};

/// `weft run` name, namespace, pod name the echo reports, version label.
const WORKLOADS: [(&str, &str, &str, &str); 3] = [
    ("echo-v1", NS, "echo-v1", "v1"),
    ("echo-v2", NS, "echo-v2", "v2"),
    ("echo-v1-consumer", CONSUMER_NS, "echo-v1", "v1"),
];

const STRICT: &str = "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: default, namespace: istio-system}\nspec: {mtls: {mode: STRICT}}\n";

struct NetnsMesh {
    // Dropped first (Proc's drop kills the runner), so that the host's cleanup, dropped
    // next, finds their leftovers stale and removes them.
    _procs: Vec<Proc>,
    host: LocalHost,
    addresses: BTreeMap<&'static str, Ipv4Addr>,
}

/// The fixtures without their Deployments (`weft run` is what runs the workloads here).
fn fixtures() -> String {
    let text = std::fs::read_to_string(manifest_path("00-fixtures.yaml")).expect("fixtures");
    text.split("\n---")
        .filter(|d| !d.contains("kind: Deployment"))
        .collect::<Vec<_>>()
        .join("\n---")
}

impl NetnsMesh {
    async fn start() -> NetnsMesh {
        let mut host = LocalHost::new(4);
        host.write_config("00-fixtures.yaml", &fixtures());
        host.write_config("01-strict.yaml", STRICT);
        host.start_control().await;
        let mut procs = Vec::new();
        let mut addresses = BTreeMap::new();
        for (name, ns, pod, version) in WORKLOADS {
            // The consumer's copy is selected by no Service of its namespace; its own service
            // name keeps it out of `echo`.
            let service = if ns == NS { "echo" } else { "consumer" };
            let version_label = format!("version={version}");
            let args = host.run_args(
                name,
                service,
                8080,
                &[
                    "--namespace",
                    ns,
                    "--service-account",
                    "echo",
                    "--label",
                    &version_label,
                ],
                &[
                    WEFT,
                    "echo",
                    "--http",
                    "0.0.0.0:8080,0.0.0.0:8443,0.0.0.0:7070",
                    "--tcp",
                    "0.0.0.0:9090",
                    "--pod",
                    pod,
                    "--namespace",
                    ns,
                    "--service",
                    service,
                ],
            );
            let mut proc = Proc::spawn(name, &args, &host.dir);
            let ip = host.wait_running(ns, name, &mut proc).await;
            procs.push(proc);
            addresses.insert(name, ip);
        }
        NetnsMesh {
            host,
            _procs: procs,
            addresses,
        }
    }

    fn run_name(ns: &str, pod: &str) -> &'static str {
        WORKLOADS
            .iter()
            .find(|(_, n, p, _)| *n == ns && *p == pod)
            .map(|(name, ..)| *name)
            .expect("client workload")
    }

    /// The generation the control plane publishes.
    async fn generation(&self) -> u64 {
        let (_, body) = admin_get(self.host.admin, "/status")
            .await
            .unwrap_or_default();
        let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        v["generation"].as_u64().unwrap_or(0)
    }

    fn logs(&self) -> String {
        let dir = self.host.run_dir().join("logs");
        self.addresses
            .keys()
            .map(|name| {
                let text = std::fs::read_to_string(dir.join(format!("{name}.proxy.log")))
                    .unwrap_or_default();
                let lines: Vec<&str> = text.lines().collect();
                format!(
                    "{name}:\n{}",
                    lines[lines.len().saturating_sub(20)..].join("\n")
                )
            })
            .collect::<Vec<_>>()
            .join("\n---\n")
    }
}

/// Resolves `name[:port]` through the client namespace's hosts file, as the application's
/// resolver would; IP literals pass through.
fn resolve(netns: &str, host: &str) -> SocketAddr {
    let (name, port) = match host.rsplit_once(':') {
        Some((n, p)) => (n, p.parse().unwrap_or(80)),
        None => (host, 80),
    };
    if let Ok(ip) = name.parse::<IpAddr>() {
        return SocketAddr::new(ip, port);
    }
    let hosts = std::fs::read_to_string(format!("/etc/netns/{netns}/hosts")).unwrap_or_default();
    let ip = hosts
        .lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| {
            let mut parts = l.split_whitespace();
            let ip: IpAddr = parts.next()?.parse().ok()?;
            parts.any(|n| n == name).then_some(ip)
        })
        .unwrap_or_else(|| panic!("{name} is not in {netns}'s hosts file:\n{hosts}"));
    SocketAddr::new(ip, port)
}

impl MeshUnderTest for NetnsMesh {
    fn via(&self, case: &Value, host: &str) -> Via {
        let (ns, pod) = client_of(case);
        let netns = format!("weft-{}", Self::run_name(ns, pod));
        let addr = resolve(&netns, host);
        Via::Captured { netns, addr }
    }

    fn pod_ip(&self, name: &str) -> String {
        self.addresses
            .get(name)
            .map(|a| a.to_string())
            .unwrap_or_default()
    }

    /// Proxies hold only what they subscribed to, so not every proxy's version changes with
    /// a manifest: wait until the control plane published it, then give the pushes a moment
    /// (cases are retried for a few seconds besides, as the upstream suite does).
    async fn apply(&self, manifest: Option<&str>) {
        let before = self.generation().await;
        put_manifest(&self.host.dir.join("config"), manifest);
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.generation().await == before {
            assert!(
                Instant::now() < deadline,
                "the control plane did not publish {manifest:?} within 20s:\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_api_mesh_conformance_in_network_namespaces_with_strict_mtls() {
    if let Err(reason) = netns::preflight(&["ip", "iptables"]) {
        netns::skip_or_fail("the namespace conformance suite", &reason);
        return;
    }
    let mesh = NetnsMesh::start().await;
    let (passed, failures) = conformance_cases::run_all(&mesh).await;
    println!(
        "conformance in namespaces: {passed} passed, {} failed",
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} of 82 conformance cases failed in namespaces:\n{}\n\nproxy logs:\n{}",
        failures.len(),
        failures.join("\n"),
        mesh.logs()
    );
    // Every request between workloads was mutual TLS: each server's proxy counted inbound
    // requests only under the mutual_tls policy.
    for (name, ip) in &mesh.addresses {
        let (_, metrics) = admin_get(SocketAddr::new((*ip).into(), 4191), "/metrics")
            .await
            .expect("metrics");
        let plaintext: Vec<&str> = metrics
            .lines()
            .filter(|l| {
                l.starts_with("weft_requests_total")
                    && l.contains("direction=\"inbound\"")
                    && !l.contains("mutual_tls")
            })
            .collect();
        assert!(
            plaintext.is_empty(),
            "{name} served requests without mTLS:\n{}",
            plaintext.join("\n")
        );
    }
}
