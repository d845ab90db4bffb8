//! AuthorizationPolicy through a real two-hop mesh on loopback (client proxy → peer proxy →
//! echo server), proxies configured from a directory:
//!
//! 1. DENY before ALLOW, ALLOW by method, AUDIT beside them; paths normalized before they
//!    are judged; 403 with `weft-error` naming the policy and rule (gRPC: status 7); the
//!    decisions counted; and `weft authz check` agreeing with the proxy on every case;
//! 2. open connections (opaque TCP, a WebSocket upgrade) closed when a new policy denies
//!    them, and new ones refused;
//! 3. policies swapped back and forth under load: a request both policies deny is never
//!    allowed, and one both allow is never denied.
//!
//! The hop is plaintext here (no control plane, so no identities): identity-based rules are
//! the end-to-end tests' (`authz_local.rs`, mutual TLS in network namespaces).

mod mesh;
mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use mesh::{metric_sum, TestMesh};
use support::{admin_get, grpc_echo, send, WEFT};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const NO_ROUTES: &str = "apiVersion: v1\nkind: Namespace\nmetadata: {name: t}\n";

const POLICIES: &str = r#"apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-reads, namespace: t}
spec:
  rules:
  - to: [{operation: {methods: [GET, HEAD]}}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-admin, namespace: t}
spec:
  action: DENY
  rules:
  - to: [{operation: {paths: ["/admin/*"]}}]
  - when: [{key: "request.headers[x-block]", values: ["*"]}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: audit-reads, namespace: t}
spec:
  action: AUDIT
  rules:
  - to: [{operation: {paths: [/read]}}]
"#;

/// Writes `policies.yaml` in the mesh's directory atomically (a half-written file would be
/// a rejected change, not a test of the swap).
fn write_policies(mesh: &TestMesh, yaml: &str) {
    let dir = mesh.dir.join("config");
    let tmp = dir.join(".policies.yaml.tmp");
    std::fs::write(&tmp, yaml).expect("write policies");
    std::fs::rename(&tmp, dir.join("policies.yaml")).expect("rename policies");
}

async fn get(mesh: &TestMesh, method: &str, path: &str, headers: &[(&str, &str)]) -> (u16, String) {
    let mut req = Request::builder()
        .method(method)
        .uri(format!("http://echo.t{path}"));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req.body(Full::new(Bytes::new())).expect("request");
    match send(mesh.client(), req, false).await {
        Ok(a) => (
            a.status.as_u16(),
            a.headers
                .get("weft-error")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string(),
        ),
        Err(e) => (0, e),
    }
}

/// Waits until the proxies hold the policies: `/admin/x` is denied.
async fn wait_enforced(mesh: &TestMesh, path: &str, want: u16) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (status, _) = get(mesh, "GET", path, &[]).await;
        if status == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "GET {path} still {status}, not {want}, 15 s after the change:\n{}",
            mesh.logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `weft authz check` on the mesh's directory for a plaintext caller: its exit code and
/// output.
fn authz_check(dir: &Path, method: &str, path: &str, headers: &[&str]) -> (i32, String) {
    let mut args = vec![
        "authz".to_string(),
        "check".into(),
        "--config-dir".into(),
        dir.display().to_string(),
        "--plaintext".into(),
        "--to".into(),
        "echo.t:80".into(),
        "--method".into(),
        method.into(),
        "--path".into(),
        path.into(),
    ];
    for h in headers {
        args.push("--header".into());
        args.push(h.to_string());
    }
    let out = std::process::Command::new(WEFT)
        .args(&args)
        .output()
        .expect("run weft authz check");
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[tokio::test]
async fn policies_decide_requests_and_authz_check_agrees() {
    let mut mesh = TestMesh::start(83, NO_ROUTES, &[]).await;
    write_policies(&mesh, POLICIES);
    wait_enforced(&mesh, "/admin/x", 403).await;
    let dir = mesh.dir.join("config");

    /// (method, path, headers, status, weft-error prefix)
    type Case = (
        &'static str,
        &'static str,
        &'static [(&'static str, &'static str)],
        u16,
        &'static str,
    );
    let cases: [Case; 7] = [
        ("GET", "/read", &[], 200, ""),
        (
            "GET",
            "/admin/users",
            &[],
            403,
            "denied; DENY t/deny-admin rule 0",
        ),
        (
            "GET",
            "/public/../admin/users",
            &[],
            403,
            "denied; DENY t/deny-admin rule 0",
        ),
        (
            "GET",
            "/%61dmin/users",
            &[],
            403,
            "denied; DENY t/deny-admin rule 0",
        ),
        (
            "GET",
            "/read",
            &[("x-block", "1")],
            403,
            "denied; DENY t/deny-admin rule 1",
        ),
        (
            "POST",
            "/read",
            &[],
            403,
            "denied; no ALLOW policy matched (t/allow-reads)",
        ),
        (
            "DELETE",
            "/read",
            &[],
            403,
            "denied; no ALLOW policy matched",
        ),
    ];
    for (method, path, headers, status, error) in cases {
        let (got, weft_error) = get(&mesh, method, path, headers).await;
        assert_eq!(got, status, "{method} {path} {headers:?}: {weft_error}");
        assert!(
            weft_error.starts_with(error),
            "{method} {path}: `{weft_error}`, expected `{error}…`"
        );
        // The same question to `weft authz check`: the same answer, from the same code.
        let hs: Vec<String> = headers.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let hs: Vec<&str> = hs.iter().map(String::as_str).collect();
        let (code, out) = authz_check(&dir, method, path, &hs);
        assert_eq!(
            code,
            if status == 200 { 0 } else { 1 },
            "authz check {method} {path}:\n{out}"
        );
        if status == 403 {
            let decided = error.trim_start_matches("denied; ");
            assert!(
                out.contains(decided),
                "authz check names `{decided}`:\n{out}"
            );
        }
    }
    let (_, out) = authz_check(&dir, "GET", "/public/../admin/users", &[]);
    assert!(out.contains("path as evaluated: /admin/users"), "{out}");
    assert!(
        out.contains("policies.yaml:"),
        "the deciding rule's file and line:\n{out}"
    );
    // An encoded NUL is refused outright, by both.
    let (status, weft_error) = get(&mesh, "GET", "/a%00b", &[]).await;
    assert_eq!(
        (status, weft_error.split(';').next().unwrap_or("")),
        (400, "bad-request")
    );
    assert_eq!(authz_check(&dir, "GET", "/a%00b", &[]).0, 2);

    // A method that is not upper-case is refused, as Istio does (over HTTP/2: an HTTP/1
    // client's lower-case method is not taken for HTTP at all).
    let lower = Request::builder()
        .method(http::Method::from_bytes(b"get").expect("method"))
        .uri("http://echo.t/read")
        .body(Full::new(Bytes::new()))
        .expect("request");
    let answer = send(mesh.client(), lower, true).await.expect("h2 request");
    assert_eq!(answer.status.as_u16(), 400, "{:?}", answer.headers);

    // gRPC is POST: denied with PERMISSION_DENIED in the gRPC status.
    let (answer, status) = grpc_echo(mesh.client(), "echo.t:7070", &[])
        .await
        .expect("grpc call");
    assert_eq!(
        status, 7,
        "PERMISSION_DENIED expected, got {status} ({answer:?})"
    );

    // AUDIT: logged and counted, the request still allowed.
    let (status, _) = get(&mesh, "GET", "/read", &[]).await;
    assert_eq!(status, 200);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let logs = format!(
        "{}{}",
        mesh.proc("proxy-a").log_tail(),
        mesh.proc("proxy-b").log_tail()
    );
    // Earlier requests matched the AUDIT rule too (denied ones): this one was allowed.
    let audit = logs
        .lines()
        .filter(|l| l.contains("AUDIT policy matched") && l.contains("AUDIT t/audit-reads rule 0"))
        .find(|l| l.contains(r#"decision="allowed""#));
    let audit = audit.unwrap_or_else(|| panic!("no AUDIT line in:\n{logs}"));
    assert!(
        audit.contains(r#"decision="allowed""#) && audit.contains(r#"path="/read""#),
        "{audit}"
    );
    let mut counted = 0.0;
    let mut audited = 0.0;
    for host in [1, 2] {
        let (_, m) = admin_get(mesh.admin(host), "/metrics")
            .await
            .expect("metrics");
        counted += metric_sum(
            &m,
            "weft_authz_decisions_total",
            &[
                r#"policy="t/deny-admin""#,
                r#"action="DENY""#,
                r#"result="denied""#,
            ],
        );
        audited += metric_sum(
            &m,
            "weft_authz_decisions_total",
            &[r#"policy="t/audit-reads""#, r#"result="audited""#],
        );
    }
    assert!(counted >= 4.0, "DENY decisions counted: {counted}");
    let (_, m) = admin_get(mesh.admin(1), "/metrics").await.expect("metrics");
    assert!(
        !m.contains(r#"action="DENY",result="allowed""#)
            && !m.contains(r#"action="ALLOW",result="audited""#),
        "a policy exports only what its action does:\n{m}"
    );
    assert!(audited >= 2.0, "AUDIT matches counted: {audited}");
}

async fn read_some(s: &mut TcpStream, limit: Duration) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; 4096];
    match tokio::time::timeout(limit, s.read(&mut buf)).await {
        Ok(Ok(0)) | Ok(Err(_)) => None,
        Ok(Ok(n)) => Some(buf[..n].to_vec()),
        Err(_) => Some(Vec::new()),
    }
}

/// Reads until the connection closes (true) or `limit` passes (false).
async fn closed_within(s: &mut TcpStream, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    let mut buf = [0u8; 1024];
    while Instant::now() < deadline {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => {}
            Err(_) => return false,
        }
    }
    false
}

const UPGRADE: &[u8] =
    b"GET /ws HTTP/1.1\r\nHost: echo.t\r\nConnection: upgrade\r\nUpgrade: weft-echo\r\n\r\n";

/// Opens a connection through the client's proxy with `request`, checks the answer starts
/// with `answer`, and that `ping` comes back echoed.
async fn open(mesh: &TestMesh, request: &[u8], answer: &str, ping: &[u8]) -> TcpStream {
    let mut s = TcpStream::connect(mesh.client()).await.expect("connect");
    s.write_all(request).await.expect("write");
    let head = read_some(&mut s, Duration::from_secs(5))
        .await
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&head);
    assert!(text.starts_with(answer), "{text}");
    s.write_all(ping).await.expect("write");
    assert_eq!(
        read_some(&mut s, Duration::from_secs(5)).await.as_deref(),
        Some(ping)
    );
    s
}

#[tokio::test]
async fn open_connections_are_closed_when_a_new_policy_denies_them() {
    let mesh = TestMesh::start(84, NO_ROUTES, &[]).await;
    // Opaque TCP to the echo's raw port, and a WebSocket-style upgrade, both open.
    let mut tcp = open(
        &mesh,
        b"CONNECT echo.t:9090 HTTP/1.1\r\nHost: echo.t:9090\r\n\r\n",
        "HTTP/1.1 200",
        b"ping",
    )
    .await;
    let mut ws = open(&mesh, UPGRADE, "HTTP/1.1 101", b"hello").await;

    // A policy that allows only GET /read (and nothing on the raw port): both are now denied.
    write_policies(&mesh, "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: only-read, namespace: t}\nspec:\n  rules: [{to: [{operation: {methods: [GET], paths: [/read]}}]}]\n");
    assert!(
        closed_within(&mut tcp, Duration::from_secs(10)).await,
        "the TCP connection was not closed"
    );
    assert!(
        closed_within(&mut ws, Duration::from_secs(10)).await,
        "the upgraded connection was not closed"
    );
    // New ones are refused: the upgrade with a 403 naming the policy.
    let mut ws = TcpStream::connect(mesh.client()).await.expect("connect");
    ws.write_all(UPGRADE).await.expect("write");
    let head = read_some(&mut ws, Duration::from_secs(5))
        .await
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&head);
    assert!(text.starts_with("HTTP/1.1 403"), "{text}");
    assert!(
        text.contains("weft-error: denied; no ALLOW policy matched (t/only-read)"),
        "{text}"
    );
    // Allowed requests still pass.
    assert_eq!(get(&mesh, "GET", "/read", &[]).await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_swaps_under_load_open_no_window() {
    let mesh = TestMesh::start(85, NO_ROUTES, &[]).await;
    // Both deny POST /write; both allow GET /read. Only GET /health changes.
    let narrow = "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: p, namespace: t}\nspec:\n  rules: [{to: [{operation: {methods: [GET], paths: [/read]}}]}]\n";
    let wide = "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: p, namespace: t}\nspec:\n  rules: [{to: [{operation: {methods: [GET], paths: [/read, /health]}}]}]\n";
    write_policies(&mesh, narrow);
    wait_enforced(&mesh, "/health", 403).await;
    let client = mesh.client();
    let load = |method: &'static str, path: &'static str| {
        tokio::spawn(async move {
            let mut statuses = Vec::new();
            let mut s = TcpStream::connect(client).await.expect("connect");
            let deadline = Instant::now() + Duration::from_secs(8);
            // Bounded: at most 2,000 requests or 8 s, on one keep-alive connection.
            while statuses.len() < 2000 && Instant::now() < deadline {
                let req = format!(
                    "{method} {path} HTTP/1.1\r\nHost: echo.t\r\ncontent-length: 0\r\n\r\n"
                );
                if s.write_all(req.as_bytes()).await.is_err() {
                    s = TcpStream::connect(client).await.expect("reconnect");
                    continue;
                }
                let head = read_some(&mut s, Duration::from_secs(5))
                    .await
                    .unwrap_or_default();
                let text = String::from_utf8_lossy(&head).to_string();
                let status: u16 = text.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
                statuses.push(status);
                if text.contains("connection: close") || status == 0 {
                    s = TcpStream::connect(client).await.expect("reconnect");
                }
            }
            statuses
        })
    };
    let writes = load("POST", "/write");
    let reads = load("GET", "/read");
    let mut swaps = 0;
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(6) {
        write_policies(&mesh, if swaps % 2 == 0 { wide } else { narrow });
        swaps += 1;
        tokio::time::sleep(Duration::from_millis(60)).await;
    }
    let writes = writes.await.expect("writes");
    let reads = reads.await.expect("reads");
    assert!(
        swaps >= 20 && writes.len() >= 50 && reads.len() >= 50,
        "swaps {swaps}, writes {}, reads {}",
        writes.len(),
        reads.len()
    );
    let allowed_writes = writes.iter().filter(|s| **s == 200).count();
    assert_eq!(
        allowed_writes,
        0,
        "POST /write, denied by both policies, was allowed {allowed_writes} times in {} requests",
        writes.len()
    );
    let denied_reads = reads.iter().filter(|s| **s == 403).count();
    assert_eq!(
        denied_reads,
        0,
        "GET /read, allowed by both, was denied {denied_reads} times in {} requests",
        reads.len()
    );
    // The swaps really happened: the proxies reloaded many times.
    let (_, m) = admin_get(mesh.admin(1), "/metrics").await.expect("metrics");
    let reloads = metric_sum(&m, "weft_config_reloads_total", &[r#"result="ok""#]);
    assert!(reloads >= 10.0, "reloads: {reloads}");
}

#[tokio::test]
async fn an_http2_connection_the_new_policy_refuses_is_closed() {
    let mesh = TestMesh::start(87, NO_ROUTES, &[]).await;
    // A slow request on the proxies' multiplexed HTTP/2 connection, allowed when it starts.
    let client = mesh.client();
    let slow = tokio::spawn(async move {
        let req = Request::get("http://echo.t/slow?delay=6s")
            .body(Full::new(Bytes::new()))
            .expect("request");
        let started = Instant::now();
        let status = send(client, req, false)
            .await
            .map(|a| a.status.as_u16())
            .unwrap_or(0);
        (status, started.elapsed())
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Only a principal this (plaintext) hop cannot have may call now: no request on the open
    // connection could be allowed, so it is closed, the slow stream with it.
    write_policies(&mesh, "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: only-frontend, namespace: t}\nspec:\n  rules: [{from: [{source: {principals: [\"cluster.local/ns/t/sa/frontend\"]}}]}]\n");
    let (status, took) = slow.await.expect("slow request");
    assert_ne!(
        status, 200,
        "the stream outlived the policy that refuses it ({took:?})"
    );
    assert!(
        took < Duration::from_secs(5),
        "cut after {took:?}, not at the change"
    );
    // New requests get the new policy's answer.
    wait_enforced(&mesh, "/read", 403).await;
    let (_, m) = admin_get(mesh.admin(1), "/metrics").await.expect("metrics");
    let (_, m2) = admin_get(mesh.admin(2), "/metrics").await.expect("metrics");
    let refused = metric_sum(&m, "weft_proxy_errors_total", &[r#"reason="denied""#])
        + metric_sum(&m2, "weft_proxy_errors_total", &[r#"reason="denied""#]);
    assert!(refused >= 1.0, "the closing is counted");
}
