//! Authorization end to end, as a user runs it: `weft control` on a directory of policies,
//! workloads meshed with `weft run` in network namespaces (capture, mutual TLS with SPIFFE
//! ids from the control plane), curl as the callers.
//!
//! - the reader's identity may GET /read on web and is refused /write (403, `weft-error`);
//!   an AUDIT rule logs reads without blocking them;
//! - JWTs checked against a key set the control plane fetched from a `jwksUri` (served here on
//!   loopback): a valid token passes, an invalid one gets 401, none gets no principal;
//! - a client outside the mesh (plaintext) is refused by the ALLOW-by-principal policy while
//!   mTLS is PERMISSIVE, and by STRICT once the namespace is;
//! - policies swapped back and forth under load from a meshed client: a write both deny is
//!   never allowed;
//! - `weft authz check --control` gives the proxy's answer for every one of those requests.
//!
//! Needs root, iproute2, iptables and curl (a loud SKIPPED otherwise; a failure under CI=true).

mod jwt_support;
mod local_host;
mod netns;
mod support;

use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use jwt_support::{now, Signer};
use local_host::{snapshot, LocalHost, WEFT};
use serde_json::json;
use support::Proc;

const ISSUER: &str = "https://issuer.weft.test";
const READER: &str = "spiffe://cluster.local/ns/demo/sa/reader";

fn preflight() -> bool {
    match netns::preflight(&["ip", "iptables", "curl"]) {
        Ok(()) => true,
        Err(reason) => {
            netns::skip_or_fail("authorization in network namespaces", &reason);
            false
        }
    }
}

/// The policies: web readable by the reader (GET /read*), /jwt open to any verified token,
/// reads audited; `extra_path` is added to the reader's paths (the swap test changes it).
fn policies(jwks_uri: &str, extra_path: &str) -> String {
    format!(
        r#"apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {{name: web-readers, namespace: demo}}
spec:
  selector: {{matchLabels: {{app: web}}}}
  rules:
  - from: [{{source: {{principals: ["cluster.local/ns/demo/sa/reader"]}}}}]
    to: [{{operation: {{methods: [GET], paths: ["/read*"{extra_path}]}}}}]
  - from: [{{source: {{requestPrincipals: ["{ISSUER}/*"]}}}}]
    to: [{{operation: {{paths: [/jwt]}}}}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {{name: audit-reads, namespace: demo}}
spec:
  selector: {{matchLabels: {{app: web}}}}
  action: AUDIT
  rules: [{{to: [{{operation: {{paths: [/read]}}}}]}}]
---
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {{name: web-jwt, namespace: demo}}
spec:
  selector: {{matchLabels: {{app: web}}}}
  jwtRules:
  - issuer: "{ISSUER}"
    jwksUri: "{jwks_uri}"
"#
    )
}

/// Serves `body` at every path on a loopback port (the issuer's key set); bounded to the
/// test's life.
async fn serve_jwks(body: String) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let body = body.clone();
            tokio::spawn(async move {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let mut buf = [0u8; 4096];
                let _ = tokio::time::timeout(Duration::from_secs(5), conn.read(&mut buf)).await;
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = conn.write_all(answer.as_bytes()).await;
            });
        }
    });
    addr
}

/// A meshed client's curl: `status weft-error` of one request.
fn curl(host: &LocalHost, name: &str, sa: &str, args: &[&str]) -> (String, String) {
    let mut cmd = vec![
        "curl",
        "-s",
        "-o",
        "/dev/null",
        "-m",
        "5",
        "-D",
        "-",
        "-w",
        "STATUS=%{http_code}\n",
    ];
    cmd.extend_from_slice(args);
    let run = host.run_args(
        name,
        "client",
        9999,
        &["--namespace", "demo", "--service-account", sa],
        &cmd,
    );
    let (code, out, err) = host.run_to_end(&run, Duration::from_secs(60));
    assert_eq!(code, 0, "the meshed client failed:\n{out}\n{err}");
    let status = out
        .lines()
        .find_map(|l| l.strip_prefix("STATUS="))
        .unwrap_or("")
        .trim()
        .to_string();
    let weft_error = out
        .lines()
        .find_map(|l| l.strip_prefix("weft-error: "))
        .unwrap_or("")
        .trim()
        .to_string();
    (status, weft_error)
}

/// `weft authz check --control` for the same request: its exit code.
fn authz_check(
    host: &LocalHost,
    from: Option<&str>,
    method: &str,
    path: &str,
    claims: Option<&str>,
) -> i32 {
    let admin = host.admin.to_string();
    let mut args = vec![
        "authz",
        "check",
        "--control",
        &admin,
        "--to",
        "web.demo:8080",
        "--method",
        method,
        "--path",
        path,
    ];
    match from {
        Some(id) => args.extend(["--from", id]),
        None => args.push("--plaintext"),
    }
    if let Some(c) = claims {
        args.extend(["--jwt-claims", c]);
    }
    let out = std::process::Command::new(WEFT)
        .args(&args)
        .output()
        .expect("weft authz check");
    out.status.code().unwrap_or(-1)
}

/// One plaintext request from the host (outside the mesh): the answer's first line and
/// `weft-error`, or `None` when the connection was refused or closed without one.
fn plain_get(addr: SocketAddr, path: &str) -> Option<(String, String)> {
    use std::io::{Read, Write};
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(3))).ok()?;
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: web\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .ok()?;
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    let first = out.lines().next()?.to_string();
    let err = out
        .lines()
        .find_map(|l| l.strip_prefix("weft-error: "))
        .unwrap_or("")
        .to_string();
    first.starts_with("HTTP/1.").then_some((first, err))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn who_may_call_what_end_to_end() {
    if !preflight() {
        return;
    }
    let before = snapshot();
    let signer = Signer::new("e2e");
    let jwks = serve_jwks(signer.jwks()).await;
    let jwks_uri = format!("http://{jwks}/jwks");
    let mut host = LocalHost::new(5);
    host.write_config("policies.yaml", &policies(&jwks_uri, ""));
    host.start_control().await;
    let web_args = host.run_args(
        "web-1",
        "web",
        8080,
        &["--namespace", "demo", "--service-account", "web"],
        &[WEFT, "echo", "--http", "0.0.0.0:8080", "--pod", "web-1"],
    );
    let mut web = Proc::spawn("web-1", &web_args, &host.dir);
    let web_ip = host.wait_running("demo", "web-1", &mut web).await;

    // The reader may read, not write; and the proxy and `weft authz check` agree.
    let (status, _) = curl(&host, "reader-1", "reader", &["http://web:8080/read"]);
    assert_eq!(status, "200");
    assert_eq!(authz_check(&host, Some(READER), "GET", "/read", None), 0);
    let (status, weft_error) = curl(
        &host,
        "reader-2",
        "reader",
        &["-X", "POST", "http://web:8080/write"],
    );
    assert_eq!(status, "403");
    assert!(
        weft_error.starts_with("denied; no ALLOW policy matched (demo/web-readers)"),
        "{weft_error}"
    );
    assert_eq!(authz_check(&host, Some(READER), "POST", "/write", None), 1);
    // Someone else may not read.
    let (status, _) = curl(&host, "other-1", "other", &["http://web:8080/read"]);
    assert_eq!(status, "403");
    assert_eq!(
        authz_check(
            &host,
            Some("spiffe://cluster.local/ns/demo/sa/other"),
            "GET",
            "/read",
            None
        ),
        1
    );
    // The AUDIT rule logged the read without blocking it.
    let proxy_log =
        std::fs::read_to_string(host.run_dir().join("logs/web-1.proxy.log")).unwrap_or_default();
    let audit = proxy_log
        .lines()
        .find(|l| l.contains("AUDIT policy matched"));
    let audit = audit.unwrap_or_else(|| panic!("no AUDIT line in web's proxy log:\n{proxy_log}"));
    assert!(
        audit.contains("cluster.local/ns/demo/sa/reader") && audit.contains("\"allowed\""),
        "{audit}"
    );

    // JWT: the control plane fetched the key set and pushed it; a valid token opens /jwt.
    let valid = signer.token(&json!({"iss": ISSUER, "sub": "carol", "exp": now() + 600}));
    let bearer = format!("authorization: Bearer {valid}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, weft_error) = curl(
            &host,
            "jwt-1",
            "other",
            &["-H", &bearer, "http://web:8080/jwt"],
        );
        if status == "200" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "a valid token still gets {status} ({weft_error}) after 30 s"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let claims = format!(r#"{{"iss":"{ISSUER}","sub":"carol"}}"#);
    assert_eq!(
        authz_check(
            &host,
            Some("spiffe://cluster.local/ns/demo/sa/other"),
            "GET",
            "/jwt",
            Some(&claims)
        ),
        0
    );
    let forged = Signer::new("e2e").token(&json!({"iss": ISSUER, "sub": "carol"}));
    let (status, weft_error) = curl(
        &host,
        "jwt-2",
        "other",
        &[
            "-H",
            &format!("authorization: Bearer {forged}"),
            "http://web:8080/jwt",
        ],
    );
    assert_eq!(status, "401");
    assert!(weft_error.starts_with("unauthenticated; "), "{weft_error}");
    let (status, _) = curl(&host, "jwt-3", "other", &["http://web:8080/jwt"]);
    assert_eq!(
        status, "403",
        "no token: no principal, so the rule does not match"
    );
    assert_eq!(
        authz_check(
            &host,
            Some("spiffe://cluster.local/ns/demo/sa/other"),
            "GET",
            "/jwt",
            None
        ),
        1
    );

    // Outside the mesh, PERMISSIVE: plaintext reaches the proxy and the ALLOW-by-principal
    // policy refuses it (it has no principal).
    let app = SocketAddr::new(web_ip.into(), 8080);
    let (first, weft_error) = plain_get(app, "/read").expect("an answer from web's proxy");
    assert!(first.starts_with("HTTP/1.1 403"), "{first}");
    assert!(weft_error.starts_with("denied; "), "{weft_error}");
    assert_eq!(authz_check(&host, None, "GET", "/read", None), 1);

    // Policies swapped under load: POST /write is denied by both versions, never allowed.
    let loop_cmd = "for i in $(seq 150); do curl -s -o /dev/null -m 5 -w '%{http_code}\\n' -X POST http://web:8080/write; done";
    let load = host.run_args(
        "loader-1",
        "client",
        9999,
        &["--namespace", "demo", "--service-account", "reader"],
        &["sh", "-c", loop_cmd],
    );
    let loader =
        std::thread::spawn(move || local_host::run_weft(&load, Duration::from_secs(120), None));
    let started = Instant::now();
    let mut swaps = 0;
    while !loader.is_finished() && started.elapsed() < Duration::from_secs(100) {
        let extra = if swaps % 2 == 0 { ", /health" } else { "" };
        host.write_config("policies.yaml", &policies(&jwks_uri, extra));
        swaps += 1;
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    let (code, out, err) = loader.join().expect("loader thread");
    assert_eq!(code, 0, "{out}\n{err}");
    let statuses: Vec<&str> = out.lines().filter(|l| l.len() == 3).collect();
    assert!(
        statuses.len() >= 100 && swaps >= 5,
        "{} requests, {swaps} swaps",
        statuses.len()
    );
    assert!(
        !statuses.contains(&"200"),
        "POST /write was allowed during a policy swap: {statuses:?}"
    );

    // STRICT: plaintext is now refused before authorization; the reader still reads.
    host.write_config(
        "strict.yaml",
        "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: default, namespace: demo}\nspec: {mtls: {mode: STRICT}}\n",
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while plain_get(app, "/read").is_some() {
        assert!(
            Instant::now() < deadline,
            "plaintext still answered 20 s after STRICT"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        curl(&host, "reader-3", "reader", &["http://web:8080/read"]).0,
        "200"
    );
    assert_eq!(
        curl(
            &host,
            "reader-4",
            "reader",
            &["-X", "POST", "http://web:8080/write"]
        )
        .0,
        "403"
    );

    web.terminate(Duration::from_secs(30))
        .expect("weft run exits after SIGTERM");
    drop(host);
    assert_eq!(snapshot(), before, "the test left something behind");
}
