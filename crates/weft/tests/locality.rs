//! `trafficDistribution: PreferClose` on loopback (static mode): a caller sends every request
//! to the endpoint in its zone while it is usable, and to the others once outlier detection
//! ejects it; without the setting, both endpoints get traffic.

mod mesh;
mod support;

use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use mesh::TestMesh;
use support::send;

const NEAR: &str = r#"apiVersion: v1
kind: Service
metadata: {name: near, namespace: t}
spec:
  selector: {app: echo}
  trafficDistribution: PreferClose
  ports: [{name: http, port: 80, targetPort: 8080, appProtocol: http}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: near, namespace: t}
spec:
  host: near
  trafficPolicy:
    # Round robin: without a preference, calls alternate between the two.
    loadBalancer: {simple: ROUND_ROBIN}
    outlierDetection: {consecutive5xxErrors: 1, interval: 1s, baseEjectionTime: 30s, maxEjectionPercent: 100}
"#;

/// The mesh's config with zones: the client and workload `b` in `z-b`, `a` in `z-a`.
fn zoned(mesh: &TestMesh, routes: &str) -> String {
    let zone = |labels: &str, z: &str| {
        (
            labels.to_string(),
            labels.replace('}', &format!(", topology.kubernetes.io/zone: {z}}}")),
        )
    };
    let mut config = mesh.config(routes);
    for (from, to) in [
        zone("labels: {app: echo, version: a}", "z-a"),
        zone("labels: {app: echo, version: b}", "z-b"),
        zone("labels: {app: client}", "z-b"),
    ] {
        assert!(config.contains(&from), "{from}");
        config = config.replace(&from, &to);
    }
    config
}

/// Who answered `n` calls to `near.t` (pod names), failures as `!status`.
async fn answers(mesh: &TestMesh, n: usize) -> Vec<String> {
    let mut who = Vec::new();
    for _ in 0..n {
        let req = Request::get("http://near.t/")
            .header("host", "near.t")
            .body(Full::new(Bytes::new()))
            .expect("request");
        match send(mesh.client(), req, false).await {
            Ok(a) if a.status == 200 => {
                let body: serde_json::Value = serde_json::from_slice(&a.body).unwrap_or_default();
                who.push(body["pod"].as_str().unwrap_or_default().to_string());
            }
            Ok(a) => who.push(format!("!{}", a.status)),
            Err(e) => who.push(format!("!{e}")),
        }
    }
    who
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_stay_in_the_callers_zone_until_its_endpoint_is_ejected() {
    let mut mesh = TestMesh::start(82, NEAR, &[]).await;
    std::fs::write(mesh.dir.join("config/mesh.yaml"), zoned(&mesh, NEAR)).expect("config");
    // Until the client's proxy has the zones, calls may go anywhere.
    let mut settled = false;
    for _ in 0..50 {
        if answers(&mesh, 10).await.iter().all(|p| p == "b") {
            settled = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(settled, "{}", mesh.logs());
    let who = answers(&mesh, 40).await;
    assert!(who.iter().all(|p| p == "b"), "{who:?}");

    // The close endpoint's application dies: its proxy answers 502, the endpoint is ejected,
    // and calls go to the other zone.
    let echo_b = mesh.proc("echo-b");
    let _ = echo_b.child.kill();
    let _ = echo_b.child.wait();
    let who = answers(&mesh, 20).await;
    let tail = &who[who.len() - 10..];
    assert!(tail.iter().all(|p| p == "a"), "{who:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_setting_calls_spread_over_zones() {
    let plain = NEAR.replace("  trafficDistribution: PreferClose\n", "");
    let mesh = TestMesh::start(73, &plain, &[]).await;
    std::fs::write(mesh.dir.join("config/mesh.yaml"), zoned(&mesh, &plain)).expect("config");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let who = answers(&mesh, 60).await;
    assert!(
        who.iter().any(|p| p == "a") && who.iter().any(|p| p == "b"),
        "{who:?}"
    );
}
