//! `weft control` end to end, with real processes on loopback: mutual TLS between two proxies
//! configured over delta xDS, certificate renewal and a control-plane restart under load
//! (no request may fail), refusals of bad clients and bad join tokens by a STRICT workload,
//! and a proxy that starts before its control plane.

mod control_mesh;
mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use control_mesh::ControlMesh;
use http::Request;
use http_body_util::Full;
use support::{admin_get, admin_get_as, send};

fn get(path: &str) -> Request<Full<Bytes>> {
    Request::get(format!("http://echo{path}"))
        .header("host", "echo")
        .body(Full::new(Bytes::new()))
        .expect("request")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mtls_survives_renewal_and_control_plane_restart_under_load() {
    // Certificates live 6 s, so each proxy renews every ~3 s during the run.
    let mut mesh = ControlMesh::start(90, "STRICT", "6s").await;
    mesh.start_workloads().await;

    let client = mesh.client();
    let ok = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut load = Vec::new();
    for _ in 0..4 {
        let (ok, failures, stop) = (ok.clone(), failures.clone(), stop.clone());
        load.push(tokio::spawn(async move {
            // Bounded in count and time.
            for _ in 0..4000 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                match send(client, get("/load"), false).await {
                    Ok(a) if a.status == 200 => {
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(a) => failures.lock().expect("lock").push(format!(
                        "status {}: {}",
                        a.status,
                        String::from_utf8_lossy(&a.body)
                    )),
                    Err(e) => failures.lock().expect("lock").push(e),
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }));
    }

    // A renewal on both proxies while the control plane is up.
    let renewed = |m: &ControlMesh, name: &str| m.log(name).matches("certificate renewed").count();
    assert!(
        mesh.wait_log(
            "proxy-client",
            "certificate renewed",
            1,
            Duration::from_secs(10)
        )
        .await,
        "no renewal:\n{}",
        mesh.log("proxy-client")
    );
    assert!(
        mesh.wait_log(
            "proxy-echo-1",
            "certificate renewed",
            1,
            Duration::from_secs(10)
        )
        .await
    );

    // Kill the control plane: traffic goes on, renewals fail and the current certificate stays.
    mesh.kill_control();
    let killed_at = Instant::now();
    let renewals_before = renewed(&mesh, "proxy-client");
    assert!(
        mesh.wait_log(
            "proxy-client",
            "renewal failed; keeping the current certificate",
            1,
            Duration::from_secs(8)
        )
        .await,
        "renewal did not fail while the control plane was down:\n{}",
        mesh.log("proxy-client")
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    let served_while_down = ok.load(Ordering::Relaxed);

    // Bring it back on the same state directory: same CA, proxies reconnect and renew.
    mesh.start_control().await;
    assert!(
        mesh.wait_log(
            "proxy-client",
            "connected to the control plane",
            2,
            Duration::from_secs(10)
        )
        .await,
        "client proxy did not reconnect:\n{}",
        mesh.log("proxy-client")
    );
    assert!(
        mesh.wait_log(
            "proxy-echo-1",
            "connected to the control plane",
            2,
            Duration::from_secs(10)
        )
        .await
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while renewed(&mesh, "proxy-client") <= renewals_before && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        renewed(&mesh, "proxy-client") > renewals_before,
        "no renewal after the restart"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::Relaxed);
    for t in load {
        t.await.expect("load task");
    }

    let failures = failures.lock().expect("lock").clone();
    let total = ok.load(Ordering::Relaxed);
    assert!(
        failures.is_empty(),
        "{} of {} requests failed: {:?}",
        failures.len(),
        total + failures.len(),
        &failures[..failures.len().min(5)]
    );
    assert!(total > 200, "too little load to mean anything: {total}");
    assert!(served_while_down > 0 && killed_at.elapsed() > Duration::from_secs(2));

    // The echo side saw mutual TLS from the client's SPIFFE id, in logs and metrics.
    let access = mesh.log("proxy-echo-1");
    assert!(
        access.contains(
            r#""peer_principal":"spiffe://cluster.local/ns/default/sa/client","mtls":true"#
        ),
        "{access}"
    );
    let (_, metrics) = admin_get(mesh.addr(2, 4191), "/metrics")
        .await
        .expect("metrics");
    assert!(metrics.contains(r#"source_principal="spiffe://cluster.local/ns/default/sa/client",connection_security_policy="mutual_tls""#), "{metrics}");
}

/// Connects to the STRICT echo proxy's inbound port with `config` and sends a mesh header
/// and a request; returns whether an HTTP answer came back.
async fn try_tls(mesh: &ControlMesh, config: Arc<rustls::ClientConfig>) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(tcp) = tokio::net::TcpStream::connect(mesh.echo_inbound()).await else {
        return false;
    };
    let name = rustls_pki_types::ServerName::try_from("weft.mesh").expect("name");
    let Ok(mut tls) = tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
    else {
        return false;
    };
    // Opaque carriage to port 8080, then a plain HTTP/1 request to the echo server.
    let mut header = b"weft\x01\x00".to_vec();
    header.extend_from_slice(&8080u16.to_be_bytes());
    header.extend_from_slice(b"GET / HTTP/1.1\r\nhost: echo\r\nconnection: close\r\n\r\n");
    if tls.write_all(&header).await.is_err() {
        return false;
    }
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), tls.read_to_end(&mut buf)).await;
    buf.starts_with(b"HTTP/1.1 200")
}

/// Credentials for `id` signed by `ca` (the test plays a workload).
fn creds_from(
    ca: &weft_identity::Authority,
    id: &weft_identity::SpiffeId,
    ttl: Duration,
) -> weft_identity::Credentials {
    let kc = weft_identity::generate_key_and_csr(id).expect("csr");
    let issued = ca.issue(&kc.csr_der, id, ttl).expect("issue");
    weft_identity::Credentials::new(id.clone(), issued.chain, kc.key, ca.trust_bundle())
        .expect("creds")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strict_workload_refuses_plaintext_foreign_expired_and_anonymous_clients() {
    use weft_identity::{Authority, ExpectedPeer, SpiffeId};
    let mut mesh = ControlMesh::start(91, "STRICT", "1h").await;
    mesh.start_workloads().await;
    let echo_id = SpiffeId::new("cluster.local", "default", "echo").expect("id");
    let alpn: &[&[u8]] = &[b"weft/1"];
    let ca = Authority::load_or_create(&mesh.state(), "cluster.local").expect("the mesh CA");
    let me = SpiffeId::new("cluster.local", "default", "tester").expect("id");

    // Control: a certificate from the mesh CA gets through (the tests below can fail).
    let good = creds_from(&ca, &me, Duration::from_secs(600));
    let config = weft_identity::client_config(&good, ExpectedPeer::Exactly(echo_id.clone()), alpn)
        .expect("config");
    assert!(
        try_tls(&mesh, config).await,
        "a valid mesh certificate was refused:\n{}",
        mesh.log("proxy-echo-1")
    );

    // No client certificate.
    let anonymous = weft_identity::anonymous_client_config(
        &ca.trust_bundle(),
        ExpectedPeer::Exactly(echo_id.clone()),
        alpn,
    )
    .expect("config");
    assert!(!try_tls(&mesh, anonymous).await);
    // A certificate from another CA (same trust domain name).
    let other = Authority::generate("cluster.local").expect("other CA");
    let mut foreign = creds_from(&other, &me, Duration::from_secs(600));
    foreign.trust_bundle = ca.trust_bundle();
    let config =
        weft_identity::client_config(&foreign, ExpectedPeer::Exactly(echo_id.clone()), alpn)
            .expect("config");
    assert!(!try_tls(&mesh, config).await);
    // An expired certificate from the mesh CA.
    let expiring = creds_from(&ca, &me, Duration::from_secs(1));
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let config =
        weft_identity::client_config(&expiring, ExpectedPeer::Exactly(echo_id.clone()), alpn)
            .expect("config");
    assert!(!try_tls(&mesh, config).await);
    // A certificate for another trust domain (the wrong SPIFFE id for this mesh).
    let elsewhere = Authority::generate("elsewhere.example").expect("CA");
    let stranger = SpiffeId::new("elsewhere.example", "default", "tester").expect("id");
    let mut wrong = creds_from(&elsewhere, &stranger, Duration::from_secs(600));
    wrong.trust_bundle = ca.trust_bundle();
    let config = weft_identity::client_config(&wrong, ExpectedPeer::Exactly(echo_id.clone()), alpn)
        .expect("config");
    assert!(!try_tls(&mesh, config).await);

    // Plaintext with a mesh header (as a peer proxy without mTLS would send): refused.
    {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut tcp = tokio::net::TcpStream::connect(mesh.echo_inbound())
            .await
            .expect("connect");
        let mut bytes = b"weft\x01\x00".to_vec();
        bytes.extend_from_slice(&8080u16.to_be_bytes());
        bytes.extend_from_slice(b"GET / HTTP/1.1\r\nhost: echo\r\nconnection: close\r\n\r\n");
        let _ = tcp.write_all(&bytes).await;
        let mut buf = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut buf)).await;
        assert!(
            buf.is_empty(),
            "plaintext reached a STRICT workload: {}",
            String::from_utf8_lossy(&buf)
        );
    }

    // Every refusal was logged with its reason.
    let log = mesh.log("proxy-echo-1");
    for reason in [
        "peer sent no certificates",
        "unknown issuer",
        "certificate expired",
        "PeerAuthentication is STRICT",
    ] {
        assert!(
            log.contains(reason),
            "no refusal logged for {reason}:\n{log}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replayed_and_forged_join_tokens_get_no_certificate() {
    let mut mesh = ControlMesh::start(92, "PERMISSIVE", "1h").await;
    let token = mesh.token("client", &[]);
    // First use: a certificate.
    let first = mesh.spawn_proxy("client", 1, &token);
    support::wait_ready(mesh.addr(1, 4191), &mut mesh.procs[first]).await;
    // Replay by a second proxy (another address, same workload and token): refused.
    let replay = mesh.spawn_proxy("client", 3, &token);
    // Forged: right id, wrong secret.
    let (id, _) = token.split_once('.').expect("token shape");
    let forged = format!("{id}.{}", "0".repeat(40));
    let forger = mesh.spawn_proxy("client", 4, &forged);
    let control = mesh
        .control
        .as_ref()
        .map(|c| c.name.clone())
        .expect("control");
    assert!(
        mesh.wait_log(&control, "was already used", 1, Duration::from_secs(10))
            .await,
        "{}",
        mesh.log(&control)
    );
    assert!(
        mesh.wait_log(
            &control,
            "wrong secret (forged)",
            1,
            Duration::from_secs(10)
        )
        .await,
        "{}",
        mesh.log(&control)
    );
    for (host, idx) in [(3, replay), (4, forger)] {
        let (status, body) = admin_get(mesh.addr(host, 4191), "/ready")
            .await
            .expect("admin");
        assert_eq!(status, 503, "{body}");
        assert!(mesh
            .log(&mesh.procs[idx].name.clone())
            .contains("cannot get a certificate"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_started_before_its_control_plane_says_so_then_becomes_ready() {
    let mut mesh = ControlMesh::start(93, "PERMISSIVE", "1h").await;
    let token = mesh.token("client", &[]);
    mesh.kill_control();
    let p = mesh.spawn_proxy("client", 1, &token);
    let admin = mesh.addr(1, 4191);
    support::wait_listening(admin).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (status, body) = admin_get(admin, "/ready").await.expect("admin");
    assert_eq!(status, 503);
    assert!(body.contains("waiting for the control plane"), "{body}");
    assert!(mesh
        .log(&mesh.procs[p].name.clone())
        .contains("cannot get a certificate"));
    mesh.start_control().await;
    support::wait_ready(admin, &mut mesh.procs[p]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_change_keeps_the_last_model_and_weft_check_says_why() {
    let mut mesh = ControlMesh::start(94, "PERMISSIVE", "1h").await;
    mesh.start_workloads().await;
    let check = || {
        std::process::Command::new(support::WEFT)
            .args(["check", "--admin", &mesh.control_admin().to_string()])
            .output()
            .expect("weft check")
    };
    let out = check();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let bad = "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r}\nspec:\n  parentRefs: [{kind: Service, name: nowhere, port: 80}]\n";
    std::fs::write(mesh.config_dir().join("bad.yaml"), bad).expect("write");
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut out = check();
    while out.status.success() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        out = check();
    }
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("REJECTED") && text.contains("bad.yaml:5"),
        "{text}"
    );
    // The mesh still routes on the last valid model.
    let a = send(mesh.client(), get("/still"), false)
        .await
        .expect("request");
    assert_eq!(a.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn root_rotation_under_load_fails_no_request() {
    let mut mesh = ControlMesh::start(95, "STRICT", "1h").await;
    mesh.start_workloads().await;
    let client = mesh.client();
    let failures = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let ok = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut load = Vec::new();
    for _ in 0..2 {
        let (ok, failures, stop) = (ok.clone(), failures.clone(), stop.clone());
        load.push(tokio::spawn(async move {
            for _ in 0..4000 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                match send(client, get("/rotate"), false).await {
                    Ok(a) if a.status == 200 => {
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(a) => failures
                        .lock()
                        .expect("lock")
                        .push(format!("status {}", a.status)),
                    Err(e) => failures.lock().expect("lock").push(e),
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }));
    }
    let tester = weft_identity::SpiffeId::new("cluster.local", "default", "tester").expect("id");
    let echo_id = weft_identity::SpiffeId::new("cluster.local", "default", "echo").expect("id");
    let ca = weft_identity::Authority::load_or_create(&mesh.state(), "cluster.local").expect("CA");
    let old_root_creds = creds_from(&ca, &tester, Duration::from_secs(600));
    let alpn: &[&[u8]] = &[b"weft/1"];
    let admin = mesh.control_admin();
    let token = mesh.admin_token();
    let post = |path: &'static str| {
        let token = token.clone();
        async move {
            let req = Request::post(path)
                .header("host", "admin")
                .header("authorization", format!("Bearer {token}"))
                .body(Full::new(Bytes::new()))
                .expect("req");
            send(admin, req, false).await.expect("admin")
        }
    };
    // Step 1: a new root signs, both roots are trusted; every proxy renews from the new root.
    let a = post("/ca/rotate").await;
    assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
    for p in ["proxy-client", "proxy-echo-1"] {
        assert!(
            mesh.wait_log(p, "certificate renewed", 1, Duration::from_secs(15))
                .await,
            "{p} did not renew:\n{}",
            mesh.log(p)
        );
    }
    // Step 2: only the new root is trusted.
    let a = post("/ca/finish-rotation").await;
    assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
    let (_, bundle) = admin_get(admin, "/ca/bundle.pem").await.expect("bundle");
    assert_eq!(bundle.matches("BEGIN CERTIFICATE").count(), 1);
    tokio::time::sleep(Duration::from_secs(2)).await;
    // The echo proxy now trusts only the new root: a new-root client gets in, an old-root one
    // does not (its certificate was valid until the rotation finished).
    let ca = weft_identity::Authority::load_or_create(&mesh.state(), "cluster.local").expect("CA");
    let mut new_root_creds = creds_from(&ca, &tester, Duration::from_secs(600));
    new_root_creds.trust_bundle = ca.trust_bundle();
    let expect_echo = weft_identity::ExpectedPeer::Exactly(echo_id);
    let config =
        weft_identity::client_config(&new_root_creds, expect_echo.clone(), alpn).expect("config");
    assert!(
        try_tls(&mesh, config).await,
        "a new-root certificate was refused:\n{}",
        mesh.log("proxy-echo-1")
    );
    let mut old = old_root_creds;
    old.trust_bundle = ca.trust_bundle();
    let config = weft_identity::client_config(&old, expect_echo, alpn).expect("config");
    assert!(
        !try_tls(&mesh, config).await,
        "an old-root certificate still works after the rotation"
    );
    stop.store(true, Ordering::Relaxed);
    for t in load {
        t.await.expect("load task");
    }
    let failures = failures.lock().expect("lock").clone();
    assert!(
        failures.is_empty(),
        "{} requests failed: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    assert!(ok.load(Ordering::Relaxed) > 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_bytes_and_malformed_grpc_do_not_take_the_control_plane_down() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use weft_proto::weft::identity_client::IdentityClient;
    use weft_proto::weft::CertifyRequest;
    let mesh = ControlMesh::start(96, "PERMISSIVE", "1h").await;
    // Junk instead of a TLS handshake.
    let mut junk = tokio::net::TcpStream::connect(mesh.grpc())
        .await
        .expect("connect");
    let _ = junk.write_all(&[0xff; 4096]).await;
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), junk.read_to_end(&mut buf)).await;

    let bundle_pem = std::fs::read_to_string(mesh.state().join("ca/bundle.pem")).expect("bundle");
    let bundle = weft_identity::parse_pem_certs(&bundle_pem).expect("pem");
    let expected = weft_identity::ExpectedPeer::Workload {
        namespace: "weft-system".into(),
        service_account: "weft-control".into(),
    };
    let tls = weft_identity::anonymous_client_config(&bundle, expected, &[b"h2"]).expect("tls");
    let connect =
        || weft_proxy::control::channel::connect(mesh.grpc(), tls.clone(), Duration::from_secs(5));

    // An oversized request: refused with a status, not a crash.
    let mut client = IdentityClient::new(connect().await.expect("channel"));
    let huge = CertifyRequest {
        join_token: "x".into(),
        namespace: "default".into(),
        workload: "client".into(),
        csr: vec![0u8; 512 * 1024],
    };
    let status = client
        .certify(huge)
        .await
        .expect_err("oversized request accepted");
    assert_eq!(status.code(), tonic::Code::OutOfRange, "{status:?}");

    // A gRPC frame that is not a protobuf message.
    let mut channel = connect().await.expect("channel");
    let mut frame = vec![0u8];
    frame.extend_from_slice(&5u32.to_be_bytes());
    frame.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0xff]);
    let req = http::Request::post("/weft.v1.Identity/Certify")
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(tonic::body::Body::new(Full::new(Bytes::from(frame))))
        .expect("request");
    let resp = tonic::codegen::Service::call(&mut channel, req)
        .await
        .expect("response");
    let (parts, body) = resp.into_parts();
    let trailers = http_body_util::BodyExt::collect(body)
        .await
        .expect("body")
        .trailers()
        .cloned();
    let status = trailers
        .as_ref()
        .and_then(|t| t.get("grpc-status"))
        .or_else(|| parts.headers.get("grpc-status"))
        .and_then(|v| v.to_str().ok())
        .unwrap_or("0")
        .to_string();
    assert_ne!(status, "0", "garbage was accepted");

    // The control plane still works: a real certificate request succeeds.
    let token = mesh.token("client", &[]);
    let kc = weft_identity::generate_key_and_csr(
        &weft_identity::SpiffeId::new("cluster.local", "default", "client").expect("id"),
    )
    .expect("csr");
    let mut client = IdentityClient::new(connect().await.expect("channel"));
    let ok = client
        .certify(CertifyRequest {
            join_token: token,
            namespace: "default".into(),
            workload: "client".into(),
            csr: kc.csr_der,
        })
        .await
        .expect("certify after the hostile requests");
    assert_eq!(
        ok.into_inner().spiffe_id,
        "spiffe://cluster.local/ns/default/sa/client"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_is_learnt_on_demand_by_its_vip() {
    let mut mesh = ControlMesh::start(97, "STRICT", "1h").await;
    // Give the Service a fixed VIP, then call it by address, as captured traffic would.
    let config = mesh.config("STRICT").replace(
        "  selector: {app: echo}\n",
        "  clusterIP: 10.96.0.77\n  selector: {app: echo}\n",
    );
    std::fs::write(mesh.config_dir().join("mesh.yaml"), config).expect("config");
    mesh.kill_control();
    mesh.start_control().await;
    mesh.start_workloads().await;
    let token = mesh.admin_token();
    let (status, before) = admin_get_as(mesh.addr(1, 4191), "/config", Some(&token))
        .await
        .expect("config");
    assert_eq!(status, 200, "{before}");
    assert!(
        !before.contains("10.96.0.77"),
        "the client knew the Service before calling it"
    );
    let req = Request::get("http://10.96.0.77/by-vip")
        .header("host", "10.96.0.77")
        .body(Full::new(Bytes::new()))
        .expect("request");
    let a = send(mesh.client(), req, false).await.expect("request");
    assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
    let (_, after) = admin_get_as(mesh.addr(1, 4191), "/config", Some(&token))
        .await
        .expect("config");
    assert!(after.contains("10.96.0.77"), "{after}");
}
