//! The retry stage against real sockets: endpoints without a proxy on loopback (one that
//! refuses, one that hangs up, one that answers 503), balanced round robin so that every
//! other request meets the bad one first.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use http::{Request, StatusCode};
use http_body_util::BodyExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::*;
use crate::http::full;
use crate::metrics::Metrics;
use crate::state::{Registry, Snapshot};

#[derive(Clone, Copy)]
enum Behaviour {
    /// 200, echoing the request body.
    Echo,
    /// 503 to everything.
    Unavailable,
    /// Reads the request, then closes without a word.
    HangUp,
    /// 500 to everything.
    ServerError,
    /// 200 after 300 ms.
    Slow,
}

/// An endpoint at `addr`; counts the requests it reads.
async fn endpoint(addr: SocketAddr, behaviour: Behaviour) -> Arc<AtomicUsize> {
    endpoint_counting(addr, behaviour).await.0
}

/// [`endpoint`], also counting the connections it accepts.
async fn endpoint_counting(
    addr: SocketAddr,
    behaviour: Behaviour,
) -> (Arc<AtomicUsize>, Arc<AtomicUsize>) {
    let listener = TcpListener::bind(addr).await.expect("bind");
    let seen = Arc::new(AtomicUsize::new(0));
    let accepted = Arc::new(AtomicUsize::new(0));
    let (count, accepts) = (seen.clone(), accepted.clone());
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            accepts.fetch_add(1, Ordering::SeqCst);
            let count = count.clone();
            tokio::spawn(serve(stream, behaviour, count));
        }
    });
    (seen, accepted)
}

async fn serve(mut stream: TcpStream, behaviour: Behaviour, seen: Arc<AtomicUsize>) {
    let mut buf = Vec::new();
    loop {
        let Some(body) = read_request(&mut stream, &mut buf).await else {
            return;
        };
        seen.fetch_add(1, Ordering::SeqCst);
        let answer = match behaviour {
            Behaviour::HangUp => return,
            Behaviour::Unavailable => {
                "HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n".to_string()
            }
            Behaviour::Slow => {
                tokio::time::sleep(Duration::from_millis(300)).await;
                "HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n".to_string()
            }
            Behaviour::ServerError => {
                "HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\n\r\n".to_string()
            }
            Behaviour::Echo => format!(
                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{}",
                body.len(),
                String::from_utf8_lossy(&body)
            ),
        };
        if stream.write_all(answer.as_bytes()).await.is_err() {
            return;
        }
    }
}

/// One request (head and Content-Length body) off `stream`; its body.
async fn read_request(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<Vec<u8>> {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                let body = buf[end + 4..end + 4 + len].to_vec();
                buf.drain(..end + 4 + len);
                return Some(body);
            }
        }
        let mut chunk = [0u8; 4096];
        match tokio::time::timeout(Duration::from_secs(5), stream.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => buf.extend_from_slice(&chunk[..n]),
            _ => return None,
        }
    }
}

/// A free port on both 127.0.0.2 and 127.0.0.3 (and nothing on 127.0.0.4).
async fn port() -> u16 {
    for _ in 0..20 {
        let a = TcpListener::bind("127.0.0.2:0").await.expect("bind");
        let port = a.local_addr().expect("addr").port();
        if TcpListener::bind(("127.0.0.3", port)).await.is_ok() {
            return port;
        }
    }
    panic!("no port free on both addresses");
}

/// Service `t/echo` on `port`, endpoints at `addrs` (without proxies), round robin; `route`
/// is an HTTPRoute rule's `retry` (none: the Service's default rule); `retries` MeshConfig's.
fn snapshot(
    port: u16,
    addrs: &[&str],
    route: Option<&str>,
    retries: &str,
) -> (Snapshot, Arc<Metrics>) {
    snapshot_with(port, addrs, route, retries, "")
}

/// [`snapshot`], with more of the DestinationRule's `trafficPolicy` (`, outlierDetection: …`).
fn snapshot_with(
    port: u16,
    addrs: &[&str],
    route: Option<&str>,
    retries: &str,
    policy: &str,
) -> (Snapshot, Arc<Metrics>) {
    let mut yaml = format!(
        "apiVersion: v1\nkind: Service\nmetadata: {{name: echo, namespace: t}}\nspec:\n  selector: {{app: echo}}\n  ports: [{{port: 80, targetPort: {port}, appProtocol: http}}]\n---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {{name: rr, namespace: t}}\nspec:\n  host: echo\n  trafficPolicy: {{loadBalancer: {{simple: ROUND_ROBIN}}{policy}}}\n---\napiVersion: weft.dev/v1alpha1\nkind: MeshConfig\nmetadata: {{name: mesh}}\nspec:\n  retries: {retries}\n"
    );
    for (i, a) in addrs.iter().enumerate() {
        yaml.push_str(&format!(
            "---\napiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata: {{name: e{i}, namespace: t, annotations: {{weft.dev/proxy: none}}}}\nspec: {{address: {a}, labels: {{app: echo}}}}\n"
        ));
    }
    if let Some(retry) = route {
        yaml.push_str(&format!(
            "---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {{name: r, namespace: t}}\nspec:\n  parentRefs: [{{group: \"\", kind: Service, name: echo, port: 80}}]\n  rules:\n  - backendRefs: [{{name: echo, port: 80}}]\n    retry: {retry}\n"
        ));
    }
    let (resources, diags) = weft_api::load::load_str(std::path::Path::new("t.yaml"), &yaml);
    let (model, more) = weft_api::validate::build(&resources);
    let model = model.unwrap_or_else(|| panic!("{diags}{more}"));
    let who = weft_api::compile::ProxyIdentity {
        namespace: "t".into(),
        workload: None,
    };
    let view = weft_api::compile::compile(&model, &who).expect("compile");
    let metrics = Metrics::new();
    let snapshot = Snapshot::build(view, "t", &metrics, &Registry::default());
    (snapshot, metrics)
}

/// Sends `method` with `body` through the stage; the status and the body that came back.
async fn send(snapshot: &Snapshot, method: &str, body: &'static str) -> (StatusCode, Vec<u8>) {
    let port = &snapshot.services[0].ports[0];
    let rule = port.http.rules.first().unwrap_or(&port.default_rule);
    let backend = rule.backends[0].backend.as_ref().expect("backend");
    let mut seen = Observed::default();
    let tries = Tries {
        backend,
        rule,
        settings: &snapshot.mesh.retries,
        client: SocketAddr::from(([127, 0, 0, 1], 1)),
        connect_timeout: Duration::from_secs(1),
        fields: Fields::Map,
        grpc: false,
        seen: &mut seen,
    };
    let req = Request::builder()
        .method(method)
        .uri("/")
        .header("host", "echo.t")
        .header("content-length", body.len())
        .body(if body.is_empty() { empty() } else { full(body) })
        .expect("request");
    match tries.run(req).await {
        Ok(resp) => {
            let status = resp.status();
            let bytes = resp.into_body().collect().await.expect("body").to_bytes();
            (status, bytes.to_vec())
        }
        Err(e) => (e.reason.status(), e.to_string().into_bytes()),
    }
}

fn metric(metrics: &Metrics, name: &str, label: &str) -> u64 {
    metrics
        .encode()
        .lines()
        .filter(|l| l.starts_with(name) && l.contains(label))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

#[tokio::test]
async fn a_refused_connection_is_retried_elsewhere_with_the_whole_body() {
    let port = port().await;
    let good = endpoint(SocketAddr::from(([127, 0, 0, 2], port)), Behaviour::Echo).await;
    // 127.0.0.4: nothing listens, the connection is refused.
    let (snapshot, metrics) = snapshot(port, &["127.0.0.2", "127.0.0.4"], None, "{}");
    for _ in 0..10 {
        let (status, body) = send(&snapshot, "POST", "payload").await;
        assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
        assert_eq!(body, b"payload");
    }
    assert_eq!(good.load(Ordering::SeqCst), 10);
    let retries = metric(&metrics, "weft_retries_total", "");
    assert!(retries >= 4);
    assert_eq!(
        metric(&metrics, "weft_retry_successes_total", ""),
        retries,
        "each retry went to the good endpoint and saved its request"
    );
}

#[tokio::test]
async fn the_default_never_sends_a_request_twice_but_a_route_may() {
    let port = port().await;
    let good = endpoint(SocketAddr::from(([127, 0, 0, 2], port)), Behaviour::Echo).await;
    let bad = endpoint(SocketAddr::from(([127, 0, 0, 3], port)), Behaviour::HangUp).await;
    // Without a route's retry: a request that reached the endpoint is not sent again, even
    // a GET (the safe default retries only requests that never left the proxy).
    let (plain, metrics) = snapshot(port, &["127.0.0.2", "127.0.0.3"], None, "{}");
    let mut failed = 0;
    for _ in 0..6 {
        if send(&plain, "GET", "").await.0 == StatusCode::BAD_GATEWAY {
            failed += 1;
        }
    }
    assert_eq!(
        failed,
        bad.load(Ordering::SeqCst),
        "each hang-up failed its request once"
    );
    assert!(failed >= 2, "round robin sent requests to the bad endpoint");
    assert_eq!(metric(&metrics, "weft_retries_total", ""), 0);
    assert_eq!(metric(&metrics, "weft_retry_successes_total", ""), 0);
    // A route that asks for retries: connection errors are retried, POSTs included.
    let (routed, _) = snapshot(
        port,
        &["127.0.0.2", "127.0.0.3"],
        Some("{attempts: 2, backoff: 1ms}"),
        "{}",
    );
    let before = good.load(Ordering::SeqCst);
    for _ in 0..6 {
        assert_eq!(send(&routed, "POST", "twice").await.0, StatusCode::OK);
    }
    assert_eq!(good.load(Ordering::SeqCst) - before, 6);
}

#[tokio::test]
async fn a_route_retries_its_codes_only_within_the_budget() {
    let port = port().await;
    endpoint(SocketAddr::from(([127, 0, 0, 2], port)), Behaviour::Echo).await;
    endpoint(
        SocketAddr::from(([127, 0, 0, 3], port)),
        Behaviour::Unavailable,
    )
    .await;
    let (snapshot, metrics) = snapshot(
        port,
        &["127.0.0.2", "127.0.0.3"],
        Some("{codes: [503], attempts: 2, backoff: 1ms}"),
        "{budget: {retryRatio: 0.2, minRetriesPerSecond: 0, ttl: 60s}}",
    );
    let mut unavailable = 0;
    for _ in 0..40 {
        if send(&snapshot, "POST", "x").await.0 == StatusCode::SERVICE_UNAVAILABLE {
            unavailable += 1;
        }
    }
    let retries = metric(&metrics, "weft_retries_total", "");
    let refused = metric(&metrics, "weft_retries_refused_total", "reason=\"budget\"");
    assert!(retries >= 1, "some retries were allowed");
    assert!(retries <= 8, "at most a fifth of 40 requests: {retries}");
    assert_eq!(
        refused, unavailable,
        "every 503 returned was one the budget refused"
    );
    assert!(unavailable >= 5);
    // Each allowed retry went to the healthy endpoint: each saved its request; a request
    // answered on its first try is no retry's success.
    assert_eq!(metric(&metrics, "weft_retry_successes_total", ""), retries);
}

#[tokio::test]
async fn a_retry_that_fails_too_saved_nothing() {
    let port = port().await;
    for ip in [[127, 0, 0, 2], [127, 0, 0, 3]] {
        endpoint(SocketAddr::from((ip, port)), Behaviour::Unavailable).await;
    }
    let (snapshot, metrics) = snapshot(
        port,
        &["127.0.0.2", "127.0.0.3"],
        Some("{codes: [503], attempts: 1, backoff: 1ms}"),
        "{budget: {retryRatio: 1.0, minRetriesPerSecond: 100, ttl: 10s}}",
    );
    for _ in 0..5 {
        assert_eq!(
            send(&snapshot, "GET", "").await.0,
            StatusCode::SERVICE_UNAVAILABLE
        );
    }
    assert_eq!(metric(&metrics, "weft_retries_total", ""), 5);
    assert_eq!(metric(&metrics, "weft_retry_successes_total", ""), 0);
}

#[tokio::test]
async fn a_body_over_the_cap_is_not_sent_twice() {
    let port = port().await;
    endpoint(SocketAddr::from(([127, 0, 0, 2], port)), Behaviour::Echo).await;
    let bad = endpoint(SocketAddr::from(([127, 0, 0, 3], port)), Behaviour::HangUp).await;
    let (snapshot, metrics) = snapshot(
        port,
        &["127.0.0.2", "127.0.0.3"],
        Some("{codes: [503], attempts: 2, backoff: 1ms}"),
        "{maxBodyBytes: 4}",
    );
    let mut failed = 0;
    for _ in 0..6 {
        let (status, _) = send(&snapshot, "POST", "longer than four").await;
        if status == StatusCode::BAD_GATEWAY {
            failed += 1;
        }
        // Under the cap, the same route retries the hang-up.
        assert_eq!(send(&snapshot, "POST", "tiny").await.0, StatusCode::OK);
    }
    assert!(
        failed >= 1,
        "round robin sent long bodies to the bad endpoint"
    );
    assert_eq!(
        metric(&metrics, "weft_retries_refused_total", "reason=\"body\""),
        failed
    );
    assert!(bad.load(Ordering::SeqCst) >= 2);
}

#[tokio::test]
async fn outlier_detection_ejects_an_endpoint_answering_500() {
    let port = port().await;
    let good = endpoint(SocketAddr::from(([127, 0, 0, 2], port)), Behaviour::Echo).await;
    let bad = endpoint(
        SocketAddr::from(([127, 0, 0, 3], port)),
        Behaviour::ServerError,
    )
    .await;
    let (snapshot, metrics) = snapshot_with(
        port,
        &["127.0.0.2", "127.0.0.3"],
        None,
        "{}",
        ", outlierDetection: {consecutive5xxErrors: 2, baseEjectionTime: 30s, maxEjectionPercent: 50}",
    );
    let mut errors = 0;
    for _ in 0..20 {
        if send(&snapshot, "GET", "").await.0 == StatusCode::INTERNAL_SERVER_ERROR {
            errors += 1;
        }
    }
    assert_eq!(
        bad.load(Ordering::SeqCst),
        2,
        "ejected after two 500s in a row"
    );
    assert_eq!(errors, 2);
    assert_eq!(good.load(Ordering::SeqCst), 18);
    assert_eq!(
        metric(
            &metrics,
            "weft_outlier_ejections_total",
            "reason=\"consecutive_5xx\""
        ),
        1
    );
}

#[tokio::test]
async fn requests_over_http2_max_requests_are_refused_at_once() {
    let port = port().await;
    endpoint(SocketAddr::from(([127, 0, 0, 2], port)), Behaviour::Slow).await;
    let (snapshot, metrics) = snapshot_with(
        port,
        &["127.0.0.2"],
        None,
        "{}",
        ", connectionPool: {http: {http2MaxRequests: 2}}",
    );
    let snapshot = Arc::new(snapshot);
    let started = std::time::Instant::now();
    let sends: Vec<_> = (0..5)
        .map(|_| {
            let snapshot = snapshot.clone();
            tokio::spawn(async move {
                let t = std::time::Instant::now();
                let (status, body) = send(&snapshot, "GET", "").await;
                (
                    status,
                    String::from_utf8_lossy(&body).into_owned(),
                    t.elapsed(),
                )
            })
        })
        .collect();
    let mut ok = 0;
    for s in sends {
        let (status, body, took) = s.await.expect("task");
        if status == StatusCode::OK {
            ok += 1;
        } else {
            assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
            assert!(
                body.contains("overloaded; connectionPool.http.http2MaxRequests (2) of t/echo"),
                "{body}"
            );
            assert!(
                took < Duration::from_millis(100),
                "refused at once: {took:?}"
            );
        }
    }
    assert_eq!(ok, 2);
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(
        metric(
            &metrics,
            "weft_overflows_total",
            "limit=\"http2MaxRequests\""
        ),
        3
    );
    // Places come back: the next request goes through.
    assert_eq!(send(&snapshot, "GET", "").await.0, StatusCode::OK);
}

#[tokio::test]
async fn max_connections_queue_up_to_pending_then_refuse_and_connections_retire() {
    let port = port().await;
    let (_, accepted) =
        endpoint_counting(SocketAddr::from(([127, 0, 0, 2], port)), Behaviour::Slow).await;
    let (snapshot, metrics) = snapshot_with(
        port,
        &["127.0.0.2"],
        None,
        "{}",
        ", connectionPool: {tcp: {maxConnections: 1}, http: {http1MaxPendingRequests: 1, maxRequestsPerConnection: 2}}",
    );
    let snapshot = Arc::new(snapshot);
    let sends: Vec<_> = (0..3)
        .map(|i| {
            let snapshot = snapshot.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(20 * i)).await;
                send(&snapshot, "GET", "").await.0
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for s in sends {
        statuses.push(s.await.expect("task"));
    }
    // The first has the connection, the second waits for it, the third is refused.
    assert_eq!(
        statuses,
        [
            StatusCode::OK,
            StatusCode::OK,
            StatusCode::SERVICE_UNAVAILABLE
        ]
    );
    assert_eq!(
        metric(
            &metrics,
            "weft_overflows_total",
            "limit=\"http1MaxPendingRequests\""
        ),
        1
    );
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        1,
        "the waiter reused the one connection"
    );
    // It carried two requests: retired, the next needs a new one.
    assert_eq!(send(&snapshot, "GET", "").await.0, StatusCode::OK);
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn tries_that_time_out_count_for_outlier_detection() {
    let port = port().await;
    endpoint(SocketAddr::from(([127, 0, 0, 2], port)), Behaviour::Echo).await;
    let slow = endpoint(SocketAddr::from(([127, 0, 0, 3], port)), Behaviour::Slow).await;
    let (snapshot, metrics) = snapshot_with(
        port,
        &["127.0.0.2", "127.0.0.3"],
        Some("{attempts: 1, backoff: 1ms}\n    timeouts: {backendRequest: 100ms}"),
        "{}",
        ", outlierDetection: {consecutiveGatewayErrors: 2, baseEjectionTime: 30s, maxEjectionPercent: 50}",
    );
    for _ in 0..12 {
        assert_eq!(send(&snapshot, "GET", "").await.0, StatusCode::OK);
    }
    assert_eq!(
        slow.load(Ordering::SeqCst),
        2,
        "ejected after two timed-out tries"
    );
    assert_eq!(
        metric(
            &metrics,
            "weft_outlier_ejections_total",
            "reason=\"consecutive_gateway\""
        ),
        1
    );
}

#[test]
fn backoff_is_full_jitter_doubling_and_capped() {
    for n in 1..=10u32 {
        let full = 100u64 << (n - 1).min(6);
        let mut below_half = false;
        for _ in 0..200 {
            let d = backoff(100, n);
            assert!(d <= Duration::from_millis(full), "retry {n}: {d:?}");
            below_half |= d < Duration::from_millis(full / 2);
        }
        assert!(below_half, "retry {n}: full jitter reaches below half");
    }
    assert!(backoff(0, 1) <= Duration::from_millis(1));
}
