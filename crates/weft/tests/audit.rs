//! `weft audit` against real meshes on loopback (a `weft control` on a directory, proxies
//! joined with tokens, echo servers), whose traffic the test generates:
//!
//! - a two-service app with no policies: the verdict is that no mesh is needed, for few
//!   services and no reason seen;
//! - a mesh with STRICT mutual TLS, a 50/50 split and an AuthorizationPolicy that denies one
//!   path: the verdict is that the mesh is justified, naming those three reasons, with the
//!   split's traffic, the denies and the adoption path counted.
//!
//! Every number is checked against what the test sent, and every report carries the
//! expressions that count its numbers in Prometheus.

mod control_mesh;
mod support;

use std::time::Duration;

use bytes::Bytes;
use control_mesh::ControlMesh;
use http::Request;
use http_body_util::Full;
use serde_json::Value;
use support::{send, wait_ready, WEFT};

/// `weft audit -o json --window 1h` against the mesh's control plane.
fn audit(mesh: &ControlMesh, format: &str) -> String {
    let out = std::process::Command::new(WEFT)
        .args(["audit", "--window", "1h", "-o", format])
        .args(["--control", &mesh.control_admin().to_string()])
        .output()
        .expect("weft audit");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn audit_json(mesh: &ControlMesh) -> Value {
    serde_json::from_str(&audit(mesh, "json")).expect("the audit's JSON")
}

/// `n` GETs of `path` through the client's proxy to `host`; how many answered `status`.
async fn calls(mesh: &ControlMesh, host: &str, path: &str, n: usize, status: u16) -> usize {
    let mut matched = 0;
    for _ in 0..n {
        let req = Request::get(path)
            .header("host", host)
            .body(Full::new(Bytes::new()))
            .expect("request");
        if let Ok(a) = send(mesh.client(), req, false).await {
            if a.status.as_u16() == status {
                matched += 1;
            }
        }
    }
    matched
}

/// Waits (bounded) until the client's proxy routes `host` (its configuration arrived).
async fn routed(mesh: &ControlMesh, host: &str) {
    for _ in 0..100 {
        if calls(mesh, host, "/ready-check", 1, 200).await == 1 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "the client's proxy never routed {host}:{}",
        mesh.log("proxy-client")
    );
}

fn capability<'a>(report: &'a Value, id: &str) -> &'a Value {
    report["capabilities"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["id"] == id))
        .unwrap_or_else(|| panic!("no capability {id} in {report}"))
}

fn number(n: &Value) -> f64 {
    n["value"].as_f64().unwrap_or(-1.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_two_service_app_with_no_policies_needs_no_mesh() {
    let mut mesh = ControlMesh::start_config(73, "1h", |m| {
        format!(
            "{}---\napiVersion: v1\nkind: Service\nmetadata: {{name: client, namespace: default}}\nspec: {{selector: {{app: client}}, ports: [{{name: http, port: 80, targetPort: 9000, appProtocol: http}}]}}\n",
            m.config("PERMISSIVE")
        )
    })
    .await;
    mesh.start_workloads().await;
    routed(&mesh, "echo.default").await;
    // The first audit sets every proxy's baseline; what follows is counted.
    let _ = audit_json(&mesh);
    assert_eq!(calls(&mesh, "echo.default", "/x", 120, 200).await, 120);

    let report = audit_json(&mesh);
    let v = &report["verdict"];
    assert_eq!(v["answer"], "mesh-not-needed", "{report:#}");
    assert_eq!(v["reasons"].as_array().map(Vec::len), Some(0), "{report:#}");
    assert!(v["signsAgainst"][0]
        .as_str()
        .is_some_and(|s| s.starts_with("few services: 1 produced traffic")));
    assert!(v["questions"].as_array().is_some_and(|q| q.len() >= 2));
    let inv = &report["inventory"];
    assert_eq!(inv["services"], 2);
    assert_eq!(
        inv["servicesWithTraffic"],
        serde_json::json!(["default/echo"])
    );
    assert_eq!(number(&inv["calls"]), 120.0);
    let edge = &inv["edges"][0];
    assert_eq!(edge["source"], "default/client");
    assert_eq!(edge["destination"], "default/echo");
    assert_eq!(number(&edge["requests"]), 120.0);
    assert_eq!(
        edge["mtlsShare"], 1.0,
        "meshed calls are mutual TLS by default"
    );
    // mTLS happened (by default) but nothing requires it: not a reason, and no alternative
    // is offered for what nobody asked for.
    let mtls = capability(&report, "mtls");
    assert_eq!(number(&mtls["numbers"][1]), 120.0);
    assert!(mtls["numbers"][1]["promql"]
        .as_str()
        .is_some_and(|q| q.contains("connection_security_policy=\"mutual_tls\"")));
    assert_eq!(report["adoptionPath"]["applies"], false);
    assert_eq!(capability(&report, "routing")["used"], false);

    // The text and Markdown forms carry the verdict and footnote every number.
    let md = audit(&mesh, "markdown");
    assert!(
        md.contains("**A mesh costs more than it gives here"),
        "{md}"
    );
    assert!(md.contains("120[^"), "{md}");
    assert!(md.contains("]: `sum(increase(weft_requests_total{"), "{md}");
    let text = audit(&mesh, "text");
    assert!(text.contains("Where each number comes from"), "{text}");
}

/// Three workloads: the client, and echo v1 and v2 behind one Service split 50/50 (a 503
/// retried once); STRICT mutual TLS; the echoes allow only the client, and deny it `/admin`.
fn justified(m: &ControlMesh) -> String {
    let (c, v1, v2) = (m.ip(1), m.ip(2), m.ip(3));
    format!(
        r#"
apiVersion: v1
kind: Service
metadata: {{name: echo, namespace: default}}
spec: {{selector: {{app: echo}}, ports: [{{name: http, port: 80, targetPort: 8080, appProtocol: http}}]}}
---
apiVersion: v1
kind: Service
metadata: {{name: echo-v1, namespace: default}}
spec: {{selector: {{app: echo, version: v1}}, ports: [{{name: http, port: 80, targetPort: 8080, appProtocol: http}}]}}
---
apiVersion: v1
kind: Service
metadata: {{name: echo-v2, namespace: default}}
spec: {{selector: {{app: echo, version: v2}}, ports: [{{name: http, port: 80, targetPort: 8080, appProtocol: http}}]}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: echo-split, namespace: default}}
spec:
  parentRefs: [{{group: "", kind: Service, name: echo, port: 80}}]
  rules:
    - backendRefs: [{{name: echo-v1, port: 80, weight: 50}}, {{name: echo-v2, port: 80, weight: 50}}]
      retry: {{codes: [503], attempts: 1, backoff: 1ms}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {{name: echo-1, namespace: default}}
spec: {{address: {v1}, labels: {{app: echo, version: v1}}, serviceAccount: echo}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {{name: echo-2, namespace: default}}
spec: {{address: {v2}, labels: {{app: echo, version: v2}}, serviceAccount: echo}}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {{name: client, namespace: default}}
spec: {{address: {c}, labels: {{app: client}}, serviceAccount: client}}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {{name: default, namespace: istio-system}}
spec: {{mtls: {{mode: STRICT}}}}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {{name: no-admin, namespace: default}}
spec:
  selector: {{matchLabels: {{app: echo}}}}
  action: DENY
  rules: [{{to: [{{operation: {{paths: ["/admin"]}}}}]}}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {{name: client-only, namespace: default}}
spec:
  selector: {{matchLabels: {{app: echo}}}}
  action: ALLOW
  rules: [{{from: [{{source: {{principals: ["cluster.local/ns/default/sa/client"]}}}}]}}]
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strict_mtls_a_split_and_authorization_justify_the_mesh() {
    let mut mesh = ControlMesh::start_config(74, "1h", justified).await;
    let chaos = mesh.dir.join("chaos");
    std::fs::create_dir_all(&chaos).expect("chaos dir");
    for (host, pod) in [(2u8, "echo-1"), (3, "echo-2")] {
        let args: Vec<String> = [
            "echo",
            "--http",
            &format!("{}:8080", mesh.ip(host)),
            "--pod",
            pod,
            "--chaos-dir",
            &chaos.display().to_string(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        mesh.procs.push(support::Proc::spawn(pod, &args, &mesh.dir));
    }
    let tokens = [
        ("client", 1u8, mesh.token("client", &[])),
        ("echo-1", 2, mesh.token("echo-1", &[])),
        ("echo-2", 3, mesh.token("echo-2", &[])),
    ];
    for (workload, host, token) in &tokens {
        let i = mesh.spawn_proxy(workload, *host, token);
        let admin = mesh.addr(*host, 4191);
        wait_ready(admin, &mut mesh.procs[i]).await;
    }
    routed(&mesh, "echo.default").await;
    let _ = audit_json(&mesh);
    assert_eq!(calls(&mesh, "echo.default", "/read", 200, 200).await, 200);
    assert_eq!(calls(&mesh, "echo.default", "/admin", 10, 403).await, 10);

    let report = audit_json(&mesh);
    let v = &report["verdict"];
    assert_eq!(v["answer"], "mesh-justified", "{report:#}");
    let reasons: Vec<&str> = v["reasons"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(reasons.len(), 3, "{reasons:?}");
    assert!(
        reasons[0].starts_with(
            "mTLS between services is required and used: 3 workload(s) STRICT, 100.0%"
        ),
        "{reasons:?}"
    );
    assert!(reasons[1].contains("1 route(s) split"), "{reasons:?}");
    assert!(reasons[2].contains("10 denied"), "{reasons:?}");

    // The split moved traffic to both backends, about half each, and says so.
    let routing = capability(&report, "routing");
    assert_eq!(routing["used"], true);
    let route = &routing["details"]["routes"][0];
    assert_eq!(route["route"], "default/echo-split");
    assert_eq!(route["movedTraffic"], true);
    let by: Vec<f64> = route["byBackend"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|b| number(&b["requests"]))
        .collect();
    assert_eq!(by.iter().sum::<f64>(), 210.0, "{route:#}");
    assert!(by.iter().all(|n| *n >= 60.0), "a 50/50 split: {by:?}");

    let authz = capability(&report, "authorization");
    assert_eq!(number(&authz["numbers"][1]), 10.0, "{authz:#}");
    assert_eq!(
        authz["details"]["deciding"],
        serde_json::json!(["default/client-only", "default/no-admin"])
    );
    assert!(authz["alternative"]["alternative"]
        .as_str()
        .is_some_and(|a| a.contains("OPA")));
    let mtls = capability(&report, "mtls");
    assert_eq!(mtls["details"]["strict"].as_array().map(Vec::len), Some(3));
    assert_eq!(
        number(&mtls["numbers"][2]),
        0.0,
        "no plaintext under STRICT"
    );
    // Every meshed workload is STRICT already: nothing left to move.
    let path = &report["adoptionPath"];
    assert_eq!(path["applies"], true);
    assert_eq!(
        path["toStrict"].as_array().map(Vec::len),
        Some(0),
        "{path:#}"
    );

    // Retries and what they saved: echo-2 answers 503 to half its requests; the route retries
    // a 503 once, on echo-2 again (its backend's one endpoint), so some retries save their
    // request and some do not.
    std::fs::write(chaos.join("echo-2.json"), r#"{"failPercent": 50}"#).expect("chaos file");
    tokio::time::sleep(Duration::from_millis(600)).await;
    let ok = calls(&mesh, "echo.default", "/flaky", 100, 200).await;
    let (_, metrics) = support::admin_get(mesh.addr(1, 4191), "/metrics")
        .await
        .unwrap_or_default();
    let counted = |name: &str| -> f64 {
        metrics
            .lines()
            .filter(|l| l.starts_with(name))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .fold(0.0, |a, b| a + b)
    };
    let (retries, saved) = (
        counted("weft_retries_total"),
        counted("weft_retry_successes_total"),
    );
    assert_eq!(counted("weft_retries_refused_total"), 0.0, "{metrics}");
    assert!(
        retries >= 5.0 && saved >= 1.0 && saved < retries,
        "{metrics}"
    );
    assert_eq!(
        (100 - ok) as f64,
        retries - saved,
        "each failed request was retried once, and the retry did not save it"
    );
    let report = audit_json(&mesh);
    let retry = capability(&report, "retries");
    assert_eq!(retry["used"], true, "{retry:#}");
    assert_eq!(number(&retry["numbers"][0]), retries, "{retry:#}");
    assert_eq!(number(&retry["numbers"][1]), saved, "{retry:#}");
    let md = audit(&mesh, "markdown");
    assert!(
        md.contains("requests that succeeded only on a retry")
            && md.contains("weft_retry_successes_total"),
        "{md}"
    );
}
