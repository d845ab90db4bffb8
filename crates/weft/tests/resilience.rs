//! Resilience through a real mesh on loopback (client proxy → peer proxies → echo servers):
//! local rate limits, fault injection, outlier detection with the safe default retries, and
//! a drain that keeps the admin endpoint answering and loses no access-log line. Each test
//! has its own address block (100–103).

mod mesh;
mod support;

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use mesh::{metric_sum, TestMesh};
use support::{admin_get, grpc_echo, send};

fn get(uri: &str) -> Request<Full<Bytes>> {
    Request::get(uri)
        .body(Full::new(Bytes::new()))
        .expect("request")
}

const RATE_LIMIT: &str = r#"
apiVersion: policy.linkerd.io/v1alpha1
kind: HTTPLocalRateLimitPolicy
metadata: {name: rl, namespace: t}
spec:
  targetRef: {kind: Service, name: echo}
  total: {requestsPerSecond: 5}
"#;

#[tokio::test]
async fn a_rate_limit_answers_429_with_retry_after_and_grpc_resource_exhausted() {
    let mesh = TestMesh::start(100, RATE_LIMIT, &[]).await;
    let (mut ok, mut limited) = (0, 0);
    for _ in 0..40 {
        let answer = send(mesh.client(), get("http://echo.t/"), false)
            .await
            .expect("answer");
        match answer.status.as_u16() {
            200 => ok += 1,
            429 => {
                limited += 1;
                assert_eq!(answer.headers["retry-after"], "1");
                let why = answer.headers["weft-error"].to_str().unwrap_or("");
                assert!(
                    why.starts_with("rate-limited; HTTPLocalRateLimitPolicy t/rl total limit"),
                    "{why}"
                );
            }
            other => panic!(
                "unexpected {other}: {}\n{}",
                String::from_utf8_lossy(&answer.body),
                mesh.logs()
            ),
        }
    }
    // Two endpoints, a burst of five each, and whatever refilled meanwhile.
    assert!((10..=20).contains(&ok), "{ok} passed, {limited} limited");
    assert!(limited >= 20, "{limited}");
    // 429 is load, not failure: the client's proxy does not retry it (one answer each).
    let client = admin_get(mesh.admin(3), "/metrics")
        .await
        .expect("metrics")
        .1;
    assert_eq!(metric_sum(&client, "weft_retries_total", &[]), 0.0);
    let mut refused = 0.0;
    for host in [1, 2] {
        let text = admin_get(mesh.admin(host), "/metrics")
            .await
            .expect("metrics")
            .1;
        refused += metric_sum(&text, "weft_rate_limited_total", &["limit=\"total\""]);
    }
    assert_eq!(refused, f64::from(limited));
    // gRPC callers get RESOURCE_EXHAUSTED.
    let mut exhausted = 0;
    for _ in 0..30 {
        let (_, status) = grpc_echo(mesh.client(), "echo.t:7070", &[])
            .await
            .expect("grpc");
        if status == 8 {
            exhausted += 1;
        }
    }
    assert!(exhausted > 0, "some gRPC calls were rate limited");
}

const FAULTS: &str = r#"
apiVersion: weft.dev/v1alpha1
kind: FaultInjection
metadata: {name: outage, namespace: t}
spec:
  abort: {httpStatus: 503, percentage: {value: 100}}
---
apiVersion: weft.dev/v1alpha1
kind: FaultInjection
metadata: {name: slow, namespace: t}
spec:
  delay: {fixedDelay: 300ms, percentage: {value: 100}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: faults, namespace: t}
spec:
  parentRefs: [{group: "", kind: Service, name: echo, port: 80}]
  rules:
  - matches: [{path: {type: PathPrefix, value: /outage}}]
    filters: [{type: ExtensionRef, extensionRef: {group: weft.dev, kind: FaultInjection, name: outage}}]
    backendRefs: [{name: echo, port: 80}]
  - matches: [{path: {type: PathPrefix, value: /slow}}]
    filters: [{type: ExtensionRef, extensionRef: {group: weft.dev, kind: FaultInjection, name: slow}}]
    backendRefs: [{name: echo, port: 80}]
  - backendRefs: [{name: echo, port: 80}]
"#;

#[tokio::test]
async fn fault_injection_aborts_and_delays_the_rules_that_ask() {
    let mesh = TestMesh::start(101, FAULTS, &[]).await;
    let answer = send(mesh.client(), get("http://echo.t/outage"), false)
        .await
        .expect("answer");
    assert_eq!(answer.status, 503);
    assert_eq!(
        answer.headers["weft-error"],
        "fault-injected; FaultInjection t/outage"
    );
    let started = Instant::now();
    let answer = send(mesh.client(), get("http://echo.t/slow"), false)
        .await
        .expect("answer");
    assert_eq!(answer.status, 200);
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "{:?}",
        started.elapsed()
    );
    let started = Instant::now();
    let answer = send(mesh.client(), get("http://echo.t/other"), false)
        .await
        .expect("answer");
    assert_eq!(answer.status, 200);
    assert!(started.elapsed() < Duration::from_millis(300));
    let client = admin_get(mesh.admin(3), "/metrics")
        .await
        .expect("metrics")
        .1;
    assert_eq!(
        metric_sum(
            &client,
            "weft_faults_injected_total",
            &["fault=\"t/outage\"", "kind=\"abort\""]
        ),
        1.0
    );
    assert_eq!(
        metric_sum(
            &client,
            "weft_faults_injected_total",
            &["fault=\"t/slow\"", "kind=\"delay\""]
        ),
        1.0
    );
    // The aborted request never left the client's proxy: the endpoints saw two of three.
    let mut reached = 0.0;
    for host in [1, 2] {
        let text = admin_get(mesh.admin(host), "/metrics")
            .await
            .expect("metrics")
            .1;
        reached += metric_sum(&text, "weft_requests_total", &["direction=\"inbound\""]);
    }
    assert_eq!(reached, 2.0);
}

const OUTLIER: &str = r#"
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: echo, namespace: t}
spec:
  host: echo
  trafficPolicy:
    outlierDetection: {consecutiveGatewayErrors: 3, baseEjectionTime: 30s, maxEjectionPercent: 50}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: echo, namespace: t}
spec:
  parentRefs: [{group: "", kind: Service, name: echo, port: 80}]
  rules:
  - backendRefs: [{name: echo, port: 80}]
    retry: {attempts: 2, backoff: 10ms}
"#;

#[tokio::test]
async fn an_endpoint_whose_app_died_is_retried_around_then_ejected() {
    let mut mesh = TestMesh::start(102, OUTLIER, &[]).await;
    // b's application dies; its proxy answers 502 app-unreachable, which the route's
    // retries send elsewhere (a POST too: it never reached an application).
    drop(
        mesh.procs.remove(
            mesh.procs
                .iter()
                .position(|p| p.name == "echo-b")
                .expect("echo-b"),
        ),
    );
    for i in 0..40 {
        let req = Request::post("http://echo.t/")
            .body(Full::new(Bytes::from_static(b"not idempotent")))
            .expect("request");
        let answer = send(mesh.client(), req, false).await.expect("answer");
        assert_eq!(
            answer.status,
            200,
            "request {i}: {}\n{}",
            String::from_utf8_lossy(&answer.body),
            mesh.logs()
        );
    }
    let client = admin_get(mesh.admin(3), "/metrics")
        .await
        .expect("metrics")
        .1;
    assert_eq!(
        metric_sum(
            &client,
            "weft_outlier_ejections_total",
            &["reason=\"consecutive_gateway\""]
        ),
        1.0,
        "{client}"
    );
    let retries = metric_sum(&client, "weft_retries_total", &[]);
    assert!(
        (1.0..=3.0).contains(&retries),
        "retried around b until it was ejected: {retries}"
    );
    let b = admin_get(mesh.admin(2), "/metrics")
        .await
        .expect("metrics")
        .1;
    let reached_b = metric_sum(&b, "weft_requests_total", &["direction=\"inbound\""]);
    assert!(
        reached_b <= 3.0,
        "b got nothing after its ejection: {reached_b}"
    );
}

#[tokio::test]
async fn a_draining_proxy_answers_ready_503_and_metrics_and_writes_every_log_line() {
    let mut mesh = TestMesh::start(103, "", &["--access-log"]).await;
    let client = mesh.client();
    let admin = mesh.admin(3);
    let slow =
        tokio::spawn(async move { send(client, get("http://echo.t/?delay=1500ms"), false).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let proxy = mesh.proc("proxy-client");
    // SAFETY: kill(2) on a child we spawned.
    unsafe {
        libc::kill(proxy.child.id() as i32, libc::SIGTERM);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (status, body) = admin_get(admin, "/ready")
        .await
        .expect("ready while draining");
    assert_eq!((status, body.trim()), (503, "not ready: shutting down"));
    let (status, metrics) = admin_get(admin, "/metrics")
        .await
        .expect("metrics while draining");
    assert_eq!(status, 200);
    assert!(
        metrics.contains("weft_requests_total") || metrics.contains("process_"),
        "{metrics}"
    );
    // New connections to the draining proxy are refused.
    assert!(tokio::net::TcpStream::connect(client).await.is_err());
    let answer = slow
        .await
        .expect("join")
        .expect("the in-flight request finishes");
    assert_eq!(answer.status, 200);
    let deadline = Instant::now() + Duration::from_secs(6);
    let proxy = mesh.proc("proxy-client");
    let status = loop {
        if let Ok(Some(status)) = proxy.child.try_wait() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the proxy did not exit after draining"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(status.code(), Some(0));
    let log = std::fs::read_to_string(mesh.dir.join("proxy-client.log")).unwrap_or_default();
    let line = log
        .lines()
        .filter(|l| l.starts_with('{'))
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["path"] == "/?delay=1500ms" || v["path"] == "/")
        .unwrap_or_else(|| panic!("the drained request's access-log line was written:\n{log}"));
    assert_eq!(line["status"], 200);
}
