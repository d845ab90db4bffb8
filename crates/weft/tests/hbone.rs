//! HBONE on loopback, without root: a control plane whose two workloads are declared on two
//! networks (hosts), the echo's behind a tunnel (`weft host tunnel`, given a host record of a
//! loopback block). The client's calls cross through the tunnel as HTTP/2 `CONNECT` over
//! mutual TLS, even where PeerAuthentication is `DISABLE`; the tunnel logs each splice. And
//! the receiving side as any HBONE client meets it: a `CONNECT` to the workload's own address
//! carries opaque bytes to its port, anything else is refused.

mod control_mesh;
mod support;

use std::time::Duration;

use bytes::Bytes;
use control_mesh::ControlMesh;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Empty, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use support::{send, Proc};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const BLOCK: u8 = 86;

/// The mesh of `control_mesh`, its workloads on networks `h1` (client) and `h2` (echo, behind
/// the tunnel at .200), with mesh-wide PeerAuthentication `mode`.
fn on_two_networks(mesh: &ControlMesh, mode: &str) -> String {
    let tunnel = format!("{}:4108", mesh.ip(200));
    control_mesh::mesh_yaml(&mesh.ip(2), &mesh.ip(1), mode)
        .replace(
            "metadata: {name: echo-1, namespace: default}\nspec: {",
            &format!("metadata: {{name: echo-1, namespace: default, annotations: {{weft.dev/tunnel: \"{tunnel}\"}}}}\nspec: {{network: h2, "),
        )
        .replace(
            "metadata: {name: client, namespace: default}\nspec: {",
            "metadata: {name: client, namespace: default}\nspec: {network: h1, ",
        )
}

fn get(path: &str) -> Request<Full<Bytes>> {
    Request::get(format!("http://echo{path}"))
        .header("host", "echo")
        .body(Full::new(Bytes::new()))
        .expect("request")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_cross_networks_through_the_tunnel_with_mutual_tls() {
    let mut mesh = ControlMesh::start_config(BLOCK, "1h", |mesh| {
        let config = on_two_networks(mesh, "DISABLE");
        assert!(config.contains("network: h2") && config.contains("network: h1"));
        config
    })
    .await;

    // The echo's host: a record of its block, and its tunnel.
    let host_state = mesh.dir.join("host-h2");
    std::fs::create_dir_all(&host_state).expect("host state");
    let record = format!("{{\"name\": \"h2\", \"block\": \"127.0.{BLOCK}.0/24\"}}");
    std::fs::write(host_state.join("host.json"), record).expect("host.json");
    let tunnel_args: Vec<String> = [
        "host",
        "tunnel",
        "--listen",
        &format!("{}:4108", mesh.ip(200)),
        "--state-dir",
        &host_state.display().to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    mesh.procs
        .push(Proc::spawn("tunnel", &tunnel_args, &mesh.dir));
    support::wait_listening(mesh.addr(200, 4108)).await;
    mesh.start_workloads().await;

    let mut last = String::new();
    for _ in 0..100 {
        match send(mesh.client(), get("/across"), false).await {
            Ok(a) if a.status == 200 => {
                last = String::from_utf8_lossy(&a.body).into_owned();
                break;
            }
            Ok(a) => last = format!("{} {}", a.status, String::from_utf8_lossy(&a.body)),
            Err(e) => last = e,
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        last.contains("echo-1"),
        "answer: {last:?}\n{}",
        mesh.log("tunnel")
    );
    // Through the tunnel (it splices to the echo's proxy), as mutual TLS though the mesh is
    // DISABLE: a tunnel is always mutual TLS.
    assert!(
        mesh.wait_log(
            "tunnel",
            &format!("target={}:4143", mesh.ip(2)),
            1,
            Duration::from_secs(5)
        )
        .await,
        "{}",
        mesh.log("tunnel")
    );
    let (_, metrics) = support::admin_get(mesh.addr(2, 4191), "/metrics")
        .await
        .expect("echo metrics");
    assert!(
        metrics.lines().any(
            |l| l.starts_with("weft_requests_total{direction=\"inbound\"")
                && l.contains("source_principal=\"spiffe://cluster.local/ns/default/sa/client\"")
                && l.contains("connection_security_policy=\"mutual_tls\"")
        ),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_receiving_proxy_serves_connect_to_its_own_workload_only() {
    let mut mesh = ControlMesh::start(BLOCK + 1, "STRICT", "1h").await;
    mesh.start_workloads().await;

    // An HBONE client of our own, with a certificate from the mesh's CA.
    let ca = weft_identity::Authority::load_or_create(&mesh.state(), "cluster.local")
        .expect("the control plane's CA");
    let me = weft_identity::SpiffeId::new("cluster.local", "default", "tester").expect("id");
    let creds = ca
        .server_identity(&me, Duration::from_secs(600))
        .expect("credentials");
    let echo = weft_identity::SpiffeId::new("cluster.local", "default", "echo").expect("id");
    let config =
        weft_identity::client_config(&creds, weft_identity::ExpectedPeer::Exactly(echo), &[b"h2"])
            .expect("client config");
    let tcp = tokio::net::TcpStream::connect(mesh.echo_inbound())
        .await
        .expect("connect");
    let name = rustls_pki_types::ServerName::try_from(format!("127-0-{}-2.hbone.weft", BLOCK + 1))
        .expect("name");
    let tls = tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .expect("mutual TLS with the echo's proxy");
    let (mut sender, conn) = hyper::client::conn::http2::handshake::<_, _, Empty<Bytes>>(
        TokioExecutor::new(),
        TokioIo::new(tls),
    )
    .await
    .expect("HTTP/2");
    tokio::spawn(conn);

    let connect = |authority: String, method: Method| {
        Request::builder()
            .method(method)
            .uri(authority)
            .body(Empty::<Bytes>::new())
            .expect("request")
    };
    // Another address than the workload's: refused, and why.
    let other = format!("127.0.{}.99:8080", BLOCK + 1);
    let resp = sender
        .send_request(connect(other, Method::CONNECT))
        .await
        .expect("answer");
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let why = resp.headers().get("weft-error").cloned();
    assert!(
        why.as_ref()
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("its own workload only")),
        "{why:?}"
    );
    // Not a CONNECT: refused.
    let resp = sender
        .send_request(connect(format!("http://{}/", mesh.ip(2)), Method::GET))
        .await
        .expect("answer");
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let _ = resp.into_body().collect().await;

    // The workload's own address and port: the stream carries opaque bytes to the echo.
    let own = format!("{}:8080", mesh.ip(2));
    let mut resp = sender
        .send_request(connect(own, Method::CONNECT))
        .await
        .expect("answer");
    assert_eq!(resp.status(), StatusCode::OK);
    let mut stream = TokioIo::new(hyper::upgrade::on(&mut resp).await.expect("stream"));
    stream
        .write_all(b"GET /raw HTTP/1.1\r\nhost: echo\r\nconnection: close\r\n\r\n")
        .await
        .expect("write");
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        matches!(read, Ok(Ok(_)))
            && answer.starts_with("HTTP/1.1 200")
            && answer.contains("echo-1"),
        "{read:?} {answer}"
    );
}
