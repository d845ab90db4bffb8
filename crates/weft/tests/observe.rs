//! Explaining a running mesh from the command line, against a real `weft control` and real
//! proxies on loopback: `weft check`, `weft proxy-config` (and `--diff`), `weft tap`; and the
//! admin endpoints that read configuration or traffic refusing callers without the admin
//! token, while `/ready`, `/live` and `/metrics` stay open.

mod control_mesh;
mod support;

use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use control_mesh::ControlMesh;
use http::Request;
use http_body_util::Full;
use serde_json::Value;
use support::{admin_get, admin_get_as, send, WEFT};

/// `weft ARGS --control ... --admin-token-file ...` against `mesh`.
fn weft(mesh: &ControlMesh, args: &[&str]) -> Output {
    Command::new(WEFT)
        .args(args)
        .arg("--control")
        .arg(mesh.control_admin().to_string())
        .arg("--admin-token-file")
        .arg(mesh.state().join("admin-token"))
        .output()
        .expect("run weft")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}{}",
            stdout(out),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn call(path: &str) -> Request<Full<Bytes>> {
    Request::get(format!("http://echo{path}"))
        .header("host", "echo")
        .header("authorization", "Bearer sekrit-value-1")
        .header("cookie", "session=sekrit-value-2")
        .header("x-team", "payments")
        .body(Full::new(Bytes::new()))
        .expect("request")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protected_admin_routes_need_the_token_and_the_cli_explains_the_mesh() {
    let mut mesh = ControlMesh::start(89, "STRICT", "1h").await;
    mesh.start_workloads().await;
    let token = mesh.admin_token();
    let echo_admin = mesh.addr(2, 4191);

    // The proxy's admin endpoint: health and metrics open, configuration and taps not.
    for path in ["/ready", "/live", "/metrics"] {
        let (status, body) = admin_get(echo_admin, path).await.expect(path);
        assert_eq!(status, 200, "{path}: {body}");
    }
    for path in ["/config", "/tap?max=1&seconds=1"] {
        let (status, _) = admin_get(echo_admin, path).await.expect(path);
        assert_eq!(status, 401, "{path} without a token");
        let (status, _) = admin_get_as(echo_admin, path, Some("not-the-token"))
            .await
            .expect(path);
        assert_eq!(status, 401, "{path} with a wrong token");
    }
    let (status, config) = admin_get_as(echo_admin, "/config", Some(&token))
        .await
        .expect("config");
    assert_eq!(status, 200, "{config}");
    // The control plane: proxies' state and CA rotation need the token too.
    let control = mesh.control_admin();
    let (status, _) = admin_get(control, "/proxies").await.expect("proxies");
    assert_eq!(status, 401);
    let rotate = Request::post("/ca/rotate")
        .header("host", "admin")
        .body(Full::new(Bytes::new()))
        .expect("request");
    let refused = send(control, rotate, false).await.expect("rotate");
    assert_eq!(refused.status, 401);
    let (_, bundle) = admin_get(control, "/ca/bundle.pem").await.expect("bundle");
    assert_eq!(
        bundle.matches("BEGIN CERTIFICATE").count(),
        1,
        "no rotation started"
    );
    assert!(
        mesh.wait_log(
            "control-0",
            "refused an admin request without the admin token",
            2,
            Duration::from_secs(5)
        )
        .await,
        "refusals are logged"
    );

    // weft check: every check passes, as JSON.
    let out = weft(&mesh, &["check", "--skip-host", "-o", "json"]);
    let report = json(&out);
    assert_eq!(out.status.code(), Some(0), "{report:#}");
    assert_eq!(report["ok"], true);
    let checks: Vec<&str> = report["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .filter_map(|c| c["check"].as_str())
        .collect();
    for expected in [
        "control plane",
        "clock skew",
        "configuration",
        "CA root 1",
        "proxy default/client",
        "proxy default/echo-1",
    ] {
        assert!(checks.contains(&expected), "{expected} in {checks:?}");
    }

    // weft proxy-config: the list, one proxy's resources and certificate, in sync.
    let listed = json(&weft(&mesh, &["proxy-config", "-o", "json"]));
    let proxies = listed["proxies"].as_array().expect("proxies");
    assert_eq!(proxies.len(), 2, "{listed:#}");
    assert!(
        proxies
            .iter()
            .all(|p| p["connected"] == true && p["current"] == true),
        "{listed:#}"
    );
    // Make the client hold a Service, then read what it holds.
    let a = send(mesh.client(), call("/warm"), false)
        .await
        .expect("call");
    assert_eq!(a.status, 200);
    let held = json(&weft(&mesh, &["proxy-config", "client", "-o", "json"]));
    let kinds: Vec<(&str, &str)> = held["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .map(|r| {
            (
                r["kind"].as_str().unwrap_or(""),
                r["name"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert!(
        kinds.contains(&("ProxyConfig", "default/client")),
        "{kinds:?}"
    );
    assert!(
        kinds.contains(&("ServiceConfig", "default/echo")),
        "{kinds:?}"
    );
    assert!(held["resources"][0]["receivedUnix"].as_u64().unwrap_or(0) > 1_700_000_000);
    assert_eq!(
        held["certificate"]["spiffeId"],
        "spiffe://cluster.local/ns/default/sa/client"
    );
    let routes = weft(&mesh, &["proxy-config", "default/client", "endpoints"]);
    assert!(
        stdout(&routes).contains(&format!("{}:8080", mesh.ip(2))),
        "{}",
        stdout(&routes)
    );
    let diff = weft(&mesh, &["proxy-config", "client", "--diff", "-o", "json"]);
    assert_eq!(diff.status.code(), Some(0), "{}", stdout(&diff));
    assert_eq!(json(&diff)["inSync"], true);
    let unknown = weft(&mesh, &["proxy-config", "nobody"]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no meshed workload named nobody"));

    // weft tap: live requests at the callee, credentials redacted, nothing secret anywhere.
    let tap = Command::new(WEFT)
        .args([
            "tap",
            "echo-1",
            "--max",
            "2",
            "--seconds",
            "20",
            "-o",
            "json",
            "--path",
            "/tapped",
        ])
        .arg("--control")
        .arg(control.to_string())
        .arg("--admin-token-file")
        .arg(mesh.state().join("admin-token"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("weft tap");
    // Requests until the tap has seen two (it opens a moment after the command starts);
    // bounded in count and time.
    let stop = Arc::new(AtomicBool::new(false));
    let sender = {
        let (client, stop) = (mesh.client(), stop.clone());
        tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) && n < 150 {
                let a = send(client, call(&format!("/tapped/{n}")), false).await;
                assert_eq!(a.map(|a| a.status.as_u16()).ok(), Some(200));
                let _ = send(client, call("/not-this-one"), false).await;
                n += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    let out = tokio::time::timeout(
        Duration::from_secs(20),
        tokio::task::spawn_blocking(move || tap.wait_with_output()),
    )
    .await
    .expect("the tap ended within 20s")
    .expect("join")
    .expect("tap output");
    stop.store(true, Ordering::Relaxed);
    sender.await.expect("sender");
    let text = stdout(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!text.contains("sekrit"), "a credential leaked: {text}");
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(lines.len(), 2, "{text}");
    for l in &lines {
        assert_eq!(l["direction"], "inbound");
        assert!(
            l["path"].as_str().unwrap_or("").starts_with("/tapped/"),
            "{l}"
        );
        assert_eq!(l["status"], 200);
        assert_eq!(
            l["peer_principal"],
            "spiffe://cluster.local/ns/default/sa/client"
        );
        let headers = &l["request_headers"];
        assert_eq!(headers["authorization"], "[redacted]", "{l}");
        assert_eq!(headers["cookie"], "[redacted]", "{l}");
        assert_eq!(headers["x-team"], "payments", "{l}");
    }

    // A proxy that goes away fails the check, naming it; exit 1.
    let echo_proxy = mesh
        .procs
        .iter_mut()
        .find(|p| p.name == "proxy-echo-1")
        .expect("echo proxy");
    echo_proxy.terminate(Duration::from_secs(5));
    let deadline = Instant::now() + Duration::from_secs(10);
    let out = loop {
        let out = weft(&mesh, &["check", "--skip-host"]);
        if out.status.code() != Some(0) || Instant::now() > deadline {
            break out;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.lines().any(|l| l.starts_with("FAIL")
            && l.contains("proxy default/echo-1")
            && l.contains("not connected")),
        "{text}"
    );
    // weft stat names the proxy it cannot read, still reports the rest, and exits 1.
    let out = weft(&mesh, &["stat", "--window", "30s"]);
    let (text, errors) = (
        stdout(&out),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert_eq!(out.status.code(), Some(1), "{text}{errors}");
    assert!(
        errors.contains("the proxy of default/echo-1 could not be read"),
        "{errors}"
    );
    assert!(
        text.lines().any(|l| l.starts_with("default/client")),
        "{text}"
    );
}

fn creds_from(
    ca: &weft_identity::Authority,
    id: &weft_identity::SpiffeId,
) -> weft_identity::Credentials {
    let kc = weft_identity::generate_key_and_csr(id).expect("csr");
    let issued = ca
        .issue(&kc.csr_der, id, Duration::from_secs(600))
        .expect("issue");
    weft_identity::Credentials::new(id.clone(), issued.chain, kc.key, ca.trust_bundle())
        .expect("creds")
}

/// `GET path` over mutual TLS to an admin endpoint as `creds`: the status, or `None` when the
/// handshake or the exchange failed.
async fn admin_over_mtls(
    admin: std::net::SocketAddr,
    creds: &weft_identity::Credentials,
    expect: &weft_identity::SpiffeId,
    path: &str,
) -> Option<u16> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let config = weft_identity::client_config(
        creds,
        weft_identity::ExpectedPeer::Exactly(expect.clone()),
        &[b"http/1.1"],
    )
    .expect("client config");
    let tcp = tokio::net::TcpStream::connect(admin).await.ok()?;
    let name = rustls_pki_types::ServerName::try_from("weft.admin").expect("name");
    let mut tls = tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nhost: admin\r\nconnection: close\r\n\r\n");
    tls.write_all(request.as_bytes()).await.ok()?;
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), tls.read_to_end(&mut buf)).await;
    let text = String::from_utf8_lossy(&buf);
    text.split_whitespace().nth(1)?.parse().ok()
}

/// MeshConfig `admin` lets a SPIFFE identity, proved over mutual TLS to a proxy's admin port,
/// read `/config` without the admin token: the identity and the path its rule names, nothing
/// else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_identity_that_meshconfig_admin_allows_reads_a_proxy_over_mutual_tls() {
    use weft_identity::{Authority, SpiffeId};
    let mut mesh = ControlMesh::start(87, "STRICT", "1h").await;
    let admin_rules = "apiVersion: weft.dev/v1alpha1\nkind: MeshConfig\nmetadata: {name: mesh, namespace: weft-system}\nspec:\n  admin:\n    rules:\n    - from: [{source: {principals: [cluster.local/ns/ops/sa/oncall]}}]\n      to: [{operation: {paths: [/config]}}]\n";
    std::fs::write(mesh.config_dir().join("meshconfig.yaml"), admin_rules).expect("write");
    mesh.start_workloads().await;
    let ca = Authority::load_or_create(&mesh.state(), "cluster.local").expect("the mesh CA");
    let echo_id = SpiffeId::new("cluster.local", "default", "echo").expect("id");
    let admin = mesh.addr(2, 4191);
    let oncall = creds_from(
        &ca,
        &SpiffeId::new("cluster.local", "ops", "oncall").expect("id"),
    );
    let intruder = creds_from(
        &ca,
        &SpiffeId::new("cluster.local", "ops", "intruder").expect("id"),
    );
    // The MeshConfig reaches the proxy with its configuration; wait for it.
    let deadline = Instant::now() + Duration::from_secs(10);
    while admin_over_mtls(admin, &oncall, &echo_id, "/config").await != Some(200) {
        assert!(
            Instant::now() < deadline,
            "the allowed identity never got /config"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Not the tap: the rule names /config only. Not another identity. Open routes stay open.
    assert_eq!(
        admin_over_mtls(admin, &oncall, &echo_id, "/tap?max=1&seconds=1").await,
        Some(403)
    );
    assert_eq!(
        admin_over_mtls(admin, &intruder, &echo_id, "/config").await,
        Some(403)
    );
    assert_eq!(
        admin_over_mtls(admin, &intruder, &echo_id, "/ready").await,
        Some(200)
    );
    // A certificate from another CA does not even get a connection.
    let other = Authority::generate("cluster.local").expect("other CA");
    let mut foreign = creds_from(
        &other,
        &SpiffeId::new("cluster.local", "ops", "oncall").expect("id"),
    );
    foreign.trust_bundle = ca.trust_bundle();
    assert_eq!(
        admin_over_mtls(admin, &foreign, &echo_id, "/config").await,
        None
    );
    assert!(
        mesh.wait_log(
            "proxy-echo-1",
            "MeshConfig admin does not allow this identity",
            2,
            Duration::from_secs(5)
        )
        .await
    );
}
