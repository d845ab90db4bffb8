//! Proxy behaviour through a real two-hop mesh on loopback (client proxy → peer proxy →
//! echo server): protocols, bad input, timeouts, retries, mirroring, balancing, config
//! reloads, metrics and shutdown. Each test has its own address block.

mod mesh;
mod support;

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use mesh::{metric_sum, TestMesh};
use support::{admin_get, admin_get_as, grpc_echo, send, TEST_ADMIN_TOKEN};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Reads from `stream` until `done(bytes so far)` or EOF or `limit` passes.
async fn read_until(
    stream: &mut TcpStream,
    limit: Duration,
    done: impl Fn(&[u8]) -> bool,
) -> (Vec<u8>, bool) {
    let mut buf = Vec::new();
    let deadline = Instant::now() + limit;
    let mut chunk = [0u8; 8192];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut chunk)).await {
            Ok(Ok(0)) => return (buf, true),
            Ok(Ok(n)) => {
                buf.extend_from_slice(&chunk[..n]);
                if done(&buf) {
                    return (buf, false);
                }
            }
            Ok(Err(_)) => return (buf, true),
            Err(_) => return (buf, false),
        }
    }
}

fn count(haystack: &[u8], needle: &str) -> usize {
    String::from_utf8_lossy(haystack).matches(needle).count()
}

const NO_ROUTES: &str = "apiVersion: v1\nkind: Namespace\nmetadata: {name: t}\n";

#[tokio::test]
async fn http1_keepalive_chunked_bodies_and_upgrades() {
    let mesh = TestMesh::start(71, NO_ROUTES, &[]).await;
    let mut s = TcpStream::connect(mesh.client()).await.expect("connect");
    // Two requests on one connection; the second has a chunked body of 5 + 6 bytes.
    s.write_all(b"GET /one HTTP/1.1\r\nHost: echo.t\r\n\r\nPOST /two HTTP/1.1\r\nHost: echo.t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
        .await
        .expect("write");
    let (buf, closed) = read_until(&mut s, Duration::from_secs(5), |b| {
        count(b, "HTTP/1.1 200") == 2 && count(b, "\"pod\"") == 2
    })
    .await;
    let text = String::from_utf8_lossy(&buf);
    assert_eq!(
        count(&buf, "HTTP/1.1 200"),
        2,
        "two answers on one keep-alive connection:\n{text}"
    );
    assert!(!closed, "connection stays open");
    assert!(
        text.contains("x-echo-body-bytes: 11"),
        "chunked body carried whole through two proxies:\n{text}"
    );
    assert!(
        text.contains("\"proto\": \"HTTP/1.1\""),
        "the application sees HTTP/1.1 again:\n{text}"
    );
    // An idle keep-alive connection stays open (the default head/idle timeout is 60 s).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    s.write_all(b"GET /three HTTP/1.1\r\nHost: echo.t\r\n\r\n")
        .await
        .expect("write after idle");
    let (buf, _) = read_until(&mut s, Duration::from_secs(5), |b| count(b, "\"pod\"") == 1).await;
    assert!(
        String::from_utf8_lossy(&buf).starts_with("HTTP/1.1 200"),
        "keep-alive survives 1.5 s idle"
    );

    // A request line longer than protocol detection reads is still HTTP.
    let long = format!("/search?q={}", "a".repeat(3000));
    let req = Request::get(format!("http://echo.t{long}"))
        .body(Full::new(Bytes::new()))
        .expect("req");
    let answer = send(mesh.client(), req, false)
        .await
        .expect("long request line");
    assert_eq!(answer.status, 200);
    let json: serde_json::Value = serde_json::from_slice(&answer.body).expect("json");
    assert_eq!(json["path"], long.as_str());

    // Upgrade: the echo server answers 101 and then echoes raw bytes.
    let mut u = TcpStream::connect(mesh.client()).await.expect("connect");
    u.write_all(
        b"GET /ws HTTP/1.1\r\nHost: echo.t\r\nConnection: upgrade\r\nUpgrade: weft-echo\r\n\r\n",
    )
    .await
    .expect("write");
    let (head, _) = read_until(&mut u, Duration::from_secs(5), |b| {
        b.windows(4).any(|w| w == b"\r\n\r\n")
    })
    .await;
    assert!(
        String::from_utf8_lossy(&head).starts_with("HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    u.write_all(b"ping through the mesh").await.expect("write");
    let (echoed, _) = read_until(&mut u, Duration::from_secs(5), |b| b.ends_with(b"mesh")).await;
    assert!(
        echoed.ends_with(b"ping through the mesh"),
        "{}",
        String::from_utf8_lossy(&echoed)
    );
}

#[tokio::test]
async fn connect_tunnels_opaque_bytes_to_a_service_port() {
    let mesh = TestMesh::start(79, NO_ROUTES, &[]).await;
    let mut s = TcpStream::connect(mesh.client()).await.expect("connect");
    s.write_all(b"CONNECT echo.t:9090 HTTP/1.1\r\nHost: echo.t:9090\r\n\r\n")
        .await
        .expect("write");
    let (head, _) = read_until(&mut s, Duration::from_secs(5), |b| {
        b.windows(4).any(|w| w == b"\r\n\r\n")
    })
    .await;
    assert!(
        String::from_utf8_lossy(&head).starts_with("HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    s.write_all(b"opaque \x00\x01 bytes").await.expect("write");
    let (echoed, _) = read_until(&mut s, Duration::from_secs(5), |b| b.ends_with(b"bytes")).await;
    assert_eq!(echoed, b"opaque \x00\x01 bytes");
    let mut s = TcpStream::connect(mesh.client()).await.expect("connect");
    s.write_all(b"CONNECT nowhere.t:443 HTTP/1.1\r\nHost: nowhere.t:443\r\n\r\n")
        .await
        .expect("write");
    let (head, _) = read_until(&mut s, Duration::from_secs(5), |b| {
        b.windows(4).any(|w| w == b"\r\n\r\n")
    })
    .await;
    let head = String::from_utf8_lossy(&head);
    assert!(
        head.starts_with("HTTP/1.1 404") && head.contains("weft-error: unknown-service"),
        "{head}"
    );
}

#[tokio::test]
async fn h2c_and_grpc_statuses_and_trailers_pass_through() {
    let mesh = TestMesh::start(72, NO_ROUTES, &[]).await;
    let (resp, status) = grpc_echo(mesh.client(), "echo.t:7070", &[])
        .await
        .expect("grpc");
    assert_eq!(status, 0);
    let a = resp.and_then(|r| r.assertions).expect("assertions");
    assert_eq!(a.authority, "echo.t:7070");
    let (_, status) = grpc_echo(mesh.client(), "echo.t:7070", &[("grpc-echo-status", "7")])
        .await
        .expect("grpc");
    assert_eq!(
        status, 7,
        "a non-zero grpc-status in trailers survives both proxies"
    );
    // Each call counted when its stream ended, with the status from its trailers: on the
    // client's proxy (outbound) and on the proxy of whichever echo answered (inbound).
    for code in ["0", "7"] {
        let label = format!("grpc_status=\"{code}\"");
        let deadline = Instant::now() + Duration::from_secs(3);
        let (outbound, inbound) = loop {
            let mut counts = [0.0; 2];
            for (i, (host, direction)) in [(3, "outbound"), (1, "inbound"), (2, "inbound")]
                .into_iter()
                .enumerate()
            {
                let (_, m) = admin_get(mesh.admin(host), "/metrics")
                    .await
                    .expect("metrics");
                let direction = format!("direction=\"{direction}\"");
                counts[i.min(1)] += metric_sum(&m, "weft_requests_total", &[&direction, &label]);
            }
            if counts == [1.0, 1.0] || Instant::now() > deadline {
                break (counts[0], counts[1]);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert_eq!((outbound, inbound), (1.0, 1.0), "gRPC calls by {label}");
    }
    // Plain h2c (prior knowledge) GET through the mesh.
    let req = Request::get("http://echo.t:8081/h2")
        .body(Full::new(Bytes::new()))
        .expect("req");
    let answer = send(mesh.client(), req, true).await.expect("h2c");
    assert_eq!(answer.status, 200);
    let json: serde_json::Value = serde_json::from_slice(&answer.body).expect("json");
    assert_eq!(json["proto"], "HTTP/2.0");
    assert_eq!(json["path"], "/h2");
    // Port 80 is declared `appProtocol: http`: an HTTP/2 client's request reaches the
    // application as HTTP/1.1, with its authority as Host.
    let req = Request::get("http://echo.t/downgraded")
        .body(Full::new(Bytes::new()))
        .expect("req");
    let answer = send(mesh.client(), req, true)
        .await
        .expect("h2c to an HTTP/1 port");
    assert_eq!(answer.status, 200);
    let json: serde_json::Value = serde_json::from_slice(&answer.body).expect("json");
    assert_eq!(json["proto"], "HTTP/1.1");
    assert_eq!(json["host"], "echo.t");
}

#[tokio::test]
async fn bad_input_is_refused_clearly() {
    let mesh = TestMesh::start(
        73,
        NO_ROUTES,
        &["--header-read-timeout", "1s", "--max-headers", "20"],
    )
    .await;
    // Malformed request line: 400, then the connection closes.
    let mut s = TcpStream::connect(mesh.client()).await.expect("connect");
    s.write_all(b"GET / HTTP/1.1\r\nHost: echo.t\r\nBad Header\r\n\r\n")
        .await
        .expect("write");
    let (buf, closed) = read_until(&mut s, Duration::from_secs(5), |_| false).await;
    assert!(
        String::from_utf8_lossy(&buf).starts_with("HTTP/1.1 400"),
        "{}",
        String::from_utf8_lossy(&buf)
    );
    assert!(closed, "connection closed after a malformed request");
    // Too many headers: 431.
    let mut s = TcpStream::connect(mesh.client()).await.expect("connect");
    let mut req = String::from("GET / HTTP/1.1\r\nHost: echo.t\r\n");
    for i in 0..40 {
        req.push_str(&format!("x-h{i}: v\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).await.expect("write");
    let (buf, _) = read_until(&mut s, Duration::from_secs(5), |_| false).await;
    assert!(
        String::from_utf8_lossy(&buf).starts_with("HTTP/1.1 431"),
        "{}",
        String::from_utf8_lossy(&buf)
    );
    // A huge head: 431.
    let mut s = TcpStream::connect(mesh.client()).await.expect("connect");
    let big = format!(
        "GET / HTTP/1.1\r\nHost: echo.t\r\nx-big: {}\r\n\r\n",
        "a".repeat(100 * 1024)
    );
    let _ = s.write_all(big.as_bytes()).await;
    let (buf, _) = read_until(&mut s, Duration::from_secs(5), |_| false).await;
    assert!(
        String::from_utf8_lossy(&buf).starts_with("HTTP/1.1 431"),
        "{}",
        String::from_utf8_lossy(&buf)
    );
    // A slow head: the connection is closed once the header read timeout passes.
    let mut s = TcpStream::connect(mesh.client()).await.expect("connect");
    s.write_all(b"GET / HTTP/1.1\r\nHost: echo.t\r\n")
        .await
        .expect("write");
    let started = Instant::now();
    let (_, closed) = read_until(&mut s, Duration::from_secs(5), |_| false).await;
    assert!(
        closed && started.elapsed() < Duration::from_secs(4),
        "slow client dropped after ~1s ({:?})",
        started.elapsed()
    );
    // Not HTTP, made to the proxy directly: closed, and the log says why.
    let mut s = TcpStream::connect(mesh.client()).await.expect("connect");
    s.write_all(b"\x16\x03\x01\x00\x05hello")
        .await
        .expect("write");
    let (buf, closed) = read_until(&mut s, Duration::from_secs(5), |_| false).await;
    assert!(closed && buf.is_empty());
    // An unknown host: 404 with the reason.
    let req = Request::get("http://nowhere.t/")
        .body(Full::new(Bytes::new()))
        .expect("req");
    let answer = send(mesh.client(), req, false).await.expect("send");
    assert_eq!(answer.status, 404);
    let reason = answer
        .headers
        .get("weft-error")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    assert!(reason.starts_with("unknown-service"), "{reason}");
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut mesh = mesh;
    let log = std::fs::read_to_string(&mesh.proc("proxy-client").log).unwrap_or_default();
    assert!(
        log.contains("did not start with an HTTP request"),
        "refusal is logged:\n{log}"
    );
}

const RESILIENCE_ROUTES: &str = r#"
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r, namespace: t}
spec:
  parentRefs: [{group: "", kind: Service, name: echo, port: 80}]
  rules:
  - matches: [{path: {type: PathPrefix, value: /slow}}]
    timeouts: {request: 300ms}
    backendRefs: [{name: echo, port: 80}]
  - matches: [{path: {type: PathPrefix, value: /retry}}]
    filters: [{type: URLRewrite, urlRewrite: {path: {type: ReplaceFullPath, replaceFullPath: /status/503}}}]
    retry: {codes: [503], attempts: 2, backoff: 10ms}
    backendRefs: [{name: echo, port: 80}]
  - matches: [{path: {type: PathPrefix, value: /mirror}}]
    filters: [{type: RequestMirror, requestMirror: {backendRef: {name: echo-b, port: 80}}}]
    backendRefs: [{name: echo, port: 80}]
"#;

#[tokio::test]
async fn timeouts_retries_and_mirrors() {
    let mesh = TestMesh::start(74, RESILIENCE_ROUTES, &[]).await;
    let get = |path: &str| {
        Request::get(format!("http://echo.t{path}"))
            .body(Full::new(Bytes::new()))
            .expect("req")
    };

    let started = Instant::now();
    let answer = send(mesh.client(), get("/slow?delay=3s"), false)
        .await
        .expect("send");
    assert_eq!(answer.status, 504);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "timed out at ~300ms, took {:?}",
        started.elapsed()
    );
    let reason = answer
        .headers
        .get("weft-error")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    assert!(reason.starts_with("timeout"), "{reason}");

    let answer = send(mesh.client(), get("/retry"), false)
        .await
        .expect("send");
    assert_eq!(answer.status, 503);
    // One attempt plus two retries reached the servers, counted by their inbound proxies.
    let mut attempts = 0.0;
    for host in [1, 2] {
        let (_, m) = admin_get(mesh.admin(host), "/metrics")
            .await
            .expect("metrics");
        attempts += metric_sum(
            &m,
            "weft_requests_total",
            &["direction=\"inbound\"", "response_code=\"503\""],
        );
    }
    assert_eq!(attempts, 3.0, "1 try + 2 retries");

    let (_, before) = admin_get(mesh.admin(2), "/metrics").await.expect("metrics");
    let before = metric_sum(&before, "weft_requests_total", &["direction=\"inbound\""]);
    for _ in 0..5 {
        let answer = send(mesh.client(), get("/mirror"), false)
            .await
            .expect("send");
        assert_eq!(answer.status, 200);
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (_, after) = admin_get(mesh.admin(2), "/metrics").await.expect("metrics");
        // b receives every mirrored copy (5), plus whatever share of the real requests.
        if metric_sum(&after, "weft_requests_total", &["direction=\"inbound\""]) - before >= 5.0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "mirrored requests did not reach echo-b"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn destination_rule_balancers() {
    let rr = "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: d, namespace: t}\nspec:\n  host: echo\n  trafficPolicy:\n    loadBalancer: {simple: ROUND_ROBIN}\n    portLevelSettings:\n    - port: {number: 8081}\n      loadBalancer: {consistentHash: {httpHeaderName: x-user}}\n";
    let mesh = TestMesh::start(75, rr, &[]).await;
    let pod_of = |answer: &support::Answer| -> String {
        let json: serde_json::Value = serde_json::from_slice(&answer.body).unwrap_or_default();
        json["pod"].as_str().unwrap_or("").to_string()
    };
    let mut pods = Vec::new();
    for _ in 0..6 {
        let req = Request::get("http://echo.t/")
            .body(Full::new(Bytes::new()))
            .expect("req");
        pods.push(pod_of(
            &send(mesh.client(), req, false).await.expect("send"),
        ));
    }
    assert!(
        pods.windows(2).all(|w| w[0] != w[1]),
        "round robin alternates: {pods:?}"
    );
    for user in ["alice", "bob", "carol"] {
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..5 {
            let req = Request::get("http://echo.t:8081/")
                .header("x-user", user)
                .body(Full::new(Bytes::new()))
                .expect("req");
            seen.insert(pod_of(
                &send(mesh.client(), req, false).await.expect("send"),
            ));
        }
        assert_eq!(
            seen.len(),
            1,
            "x-user {user} always lands on one endpoint: {seen:?}"
        );
    }
}

#[tokio::test]
async fn config_changes_apply_without_dropping_connections_and_bad_ones_are_rejected() {
    let mut mesh = TestMesh::start(76, NO_ROUTES, &[]).await;
    // An idle proxy does not reload: reading its own files is not a change.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (_, m) = admin_get(mesh.admin(3), "/metrics").await.expect("metrics");
    assert_eq!(
        metric_sum(&m, "weft_config_reloads_total", &["result=\"unchanged\""]),
        0.0,
        "{m}"
    );
    let mut s = TcpStream::connect(mesh.client()).await.expect("connect");
    let ask = b"GET / HTTP/1.1\r\nHost: echo.t\r\n\r\n";
    s.write_all(ask).await.expect("write");
    let (first, _) = read_until(&mut s, Duration::from_secs(5), |b| count(b, "\"pod\"") == 1).await;
    assert!(!String::from_utf8_lossy(&first).contains("x-route: on"));

    let route = "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r, namespace: t}\nspec:\n  parentRefs: [{group: \"\", kind: Service, name: echo, port: 80}]\n  rules:\n  - filters: [{type: ResponseHeaderModifier, responseHeaderModifier: {set: [{name: x-route, value: \"on\"}]}}]\n    backendRefs: [{name: echo, port: 80}]\n";
    mesh.write_config(route);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        s.write_all(ask)
            .await
            .expect("the same connection is still open");
        let (resp, closed) =
            read_until(&mut s, Duration::from_secs(5), |b| count(b, "\"pod\"") == 1).await;
        assert!(!closed, "connection dropped by a config change");
        if String::from_utf8_lossy(&resp).contains("x-route: on") {
            break;
        }
        assert!(Instant::now() < deadline, "new route not applied");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // An invalid change is rejected: /config says why, and the route keeps working.
    std::fs::write(mesh.dir.join("config/bad.yaml"), "apiVersion: v1\nkind: Service\nmetadata: {name: bad, namespace: t}\nspec: {ports: [{port: 99999}]}\n").expect("write");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, config) = admin_get_as(mesh.admin(3), "/config", Some(TEST_ADMIN_TOKEN))
            .await
            .expect("config");
        let json: serde_json::Value = serde_json::from_str(&config).expect("json");
        if let Some(rejected) = json["rejected"].as_array() {
            let text = format!("{rejected:?}");
            assert!(
                text.contains("bad.yaml:4"),
                "rejection names file and line: {text}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "invalid change not reported");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    s.write_all(ask).await.expect("write");
    let (resp, _) = read_until(&mut s, Duration::from_secs(5), |b| count(b, "\"pod\"") == 1).await;
    assert!(
        String::from_utf8_lossy(&resp).contains("x-route: on"),
        "last good config still serves"
    );
    let log = std::fs::read_to_string(&mesh.proc("proxy-client").log).unwrap_or_default();
    assert!(
        log.contains("configuration change rejected"),
        "rejection is logged"
    );
}

#[tokio::test]
async fn metrics_pass_promtool_and_access_log_is_json() {
    let mesh = TestMesh::start(77, NO_ROUTES, &["--access-log"]).await;
    for path in ["/a", "/b?secret=1"] {
        let req = Request::get(format!("http://echo.t{path}"))
            .body(Full::new(Bytes::new()))
            .expect("req");
        assert_eq!(
            send(mesh.client(), req, false).await.expect("send").status,
            200
        );
    }
    let (status, metrics) = admin_get(mesh.admin(3), "/metrics").await.expect("metrics");
    assert_eq!(status, 200);
    assert_eq!(
        metric_sum(
            &metrics,
            "weft_requests_total",
            &[
                "direction=\"outbound\"",
                "destination_service=\"t/echo\"",
                "response_code=\"200\""
            ]
        ),
        2.0,
        "{metrics}"
    );
    assert!(
        metrics.contains("weft_request_duration_seconds_bucket"),
        "{metrics}"
    );
    assert!(!metrics.contains("secret"), "no paths or queries in labels");
    match std::process::Command::new("promtool")
        .arg("check")
        .arg("metrics")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
    {
        Ok(mut child) => {
            if let Some(mut stdin) = child.stdin.take() {
                use std::io::Write;
                stdin
                    .write_all(metrics.as_bytes())
                    .expect("write to promtool");
            }
            let out = child.wait_with_output().expect("promtool");
            assert!(
                out.status.success(),
                "promtool check metrics failed:\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Err(e) => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "promtool is required in CI (apt-get install prometheus): {e}"
            );
            eprintln!("SKIPPED promtool check: promtool not installed ({e}); ./scripts/test.sh installs it");
        }
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let log = std::fs::read_to_string(mesh.dir.join("proxy-client.log")).unwrap_or_default();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .filter(|l| l.starts_with('{'))
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert_eq!(
        lines.len(),
        2,
        "one JSON access log line per request:\n{log}"
    );
    assert_eq!(lines[1]["path"], "/b");
    assert_eq!(lines[1]["status"], 200);
    assert_eq!(lines[1]["destination_service"], "t/echo");
}

#[tokio::test]
async fn sigterm_lets_in_flight_requests_finish_then_exits_zero() {
    let mut mesh = TestMesh::start(78, NO_ROUTES, &[]).await;
    let client = mesh.client();
    let slow = tokio::spawn(async move {
        let req = Request::get("http://echo.t/?delay=1s")
            .body(Full::new(Bytes::new()))
            .expect("req");
        send(client, req, false).await
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let proxy = mesh.proc("proxy-client");
    // SAFETY: kill(2) on a child we spawned.
    unsafe {
        libc::kill(proxy.child.id() as i32, libc::SIGTERM);
    }
    let answer = slow
        .await
        .expect("join")
        .expect("in-flight request completes");
    assert_eq!(answer.status, 200);
    let deadline = Instant::now() + Duration::from_secs(6);
    let status = loop {
        if let Ok(Some(status)) = proxy.child.try_wait() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "proxy did not exit after draining"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(status.code(), Some(0), "clean exit");
}
