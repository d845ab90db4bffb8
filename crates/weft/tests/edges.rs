//! Where the request path's edges land: a client whose request body is malformed is told
//! 400 (it was its fault), not 502; and keep-alive calls to a workload's own address reuse
//! one upstream connection instead of dialling anew for each request.

mod mesh;
mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mesh::{metric_sum, TestMesh};
use support::admin_get;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const NO_ROUTES: &str = "apiVersion: v1\nkind: Namespace\nmetadata: {name: t}\n";

/// Reads one HTTP/1 answer head (and a small body) from `s`.
async fn read_answer(s: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, s.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
        }
        let text = String::from_utf8_lossy(&buf);
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let len = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length: ")
                        .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                })
                .unwrap_or(0);
            if body.len() >= len {
                break;
            }
        }
    }
    String::from_utf8_lossy(&buf).into_owned()
}

#[tokio::test]
async fn a_malformed_request_body_is_the_clients_fault() {
    let mesh = TestMesh::start(81, NO_ROUTES, &[]).await;
    let mut s = TcpStream::connect(mesh.client()).await.expect("connect");
    // "zz" is no chunk size: the body breaks off while the proxy forwards it.
    s.write_all(
        b"POST /upload HTTP/1.1\r\nHost: echo.t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\nworld\r\n0\r\n\r\n",
    )
    .await
    .expect("write");
    let answer = read_answer(&mut s).await;
    assert!(
        answer.starts_with("HTTP/1.1 400"),
        "a malformed body is the client's fault, not the upstream's:\n{answer}\n{}",
        mesh.logs()
    );
    assert!(
        answer
            .to_ascii_lowercase()
            .contains("weft-error: bad-request"),
        "{answer}"
    );
    // The answer, its count and its log agree on the reason.
    let (_, metrics) = admin_get(mesh.admin(3), "/metrics")
        .await
        .unwrap_or_default();
    let bad = metric_sum(
        &metrics,
        "weft_proxy_errors_total",
        &[r#"direction="outbound""#, r#"reason="bad-request""#],
    );
    assert_eq!(bad, 1.0, "{metrics}");
    let upstream = metric_sum(
        &metrics,
        "weft_proxy_errors_total",
        &[r#"reason="upstream-failed""#],
    );
    assert_eq!(upstream, 0.0, "{metrics}");
}

/// An HTTP/1.1 server without a proxy that counts the connections it accepts and answers
/// every request `200 ok`, keeping connections alive.
async fn counting_server(addr: std::net::SocketAddr) -> Arc<AtomicUsize> {
    let listener = TcpListener::bind(addr).await.expect("bind");
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        buf.drain(..end + 4);
                        let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                        if conn.write_all(answer).await.is_err() {
                            return;
                        }
                    }
                    match conn.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
            });
        }
    });
    accepted
}

#[tokio::test]
async fn calls_to_a_workload_address_reuse_one_upstream_connection() {
    let block = 82;
    let plain = format!("127.0.{block}.9");
    let extra = format!(
        "apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata: {{name: plain, namespace: t, annotations: {{weft.dev/proxy: none}}}}\nspec: {{address: {plain}, labels: {{app: plain}}}}\n"
    );
    let accepted = counting_server(format!("{plain}:8080").parse().expect("addr")).await;
    let mesh = TestMesh::start(block, &extra, &[]).await;
    let mut s = TcpStream::connect(mesh.client()).await.expect("connect");
    const REQUESTS: usize = 20;
    for i in 0..REQUESTS {
        let req = format!("GET /{i} HTTP/1.1\r\nHost: {plain}:8080\r\n\r\n");
        s.write_all(req.as_bytes()).await.expect("write");
        let answer = read_answer(&mut s).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "request {i}:\n{answer}");
    }
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        1,
        "{REQUESTS} keep-alive requests to a workload's own address should share one upstream connection"
    );
}
