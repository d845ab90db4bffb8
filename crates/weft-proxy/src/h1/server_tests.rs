//! The HTTP/1 request loop with raw client bytes: keep-alive and pipelining, bodies in both
//! framings, HEAD, unread bodies, slow heads, and what it hands to hyper (upgrades, bad input).

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::server::{serve, Handle, Outcome};
use crate::drain;
use crate::http::server::Limits;
use crate::http::{full, Body};

/// Answers `METHOD PATH BODY-BYTES`; `/ignore` does not read the body; an upgrade request
/// gets 101 and its upgraded connection echoes.
#[derive(Clone, Default)]
struct Echo(std::sync::Arc<std::sync::atomic::AtomicBool>);

struct DropFlag(std::sync::Arc<std::sync::atomic::AtomicBool>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Echo {
    async fn handle(&self, mut req: Request<Body>) -> Response<Body> {
        if req.headers().contains_key(http::header::UPGRADE) {
            let upgrade = hyper::upgrade::on(&mut req);
            tokio::spawn(async move {
                if let Ok(up) = upgrade.await {
                    let mut io = TokioIo::new(up);
                    let mut buf = [0u8; 64];
                    if let Ok(n) = io.read(&mut buf).await {
                        let _ = io.write_all(&buf[..n]).await;
                    }
                }
            });
            let mut resp = Response::new(crate::http::empty());
            *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
            resp.headers_mut()
                .insert("connection", "upgrade".parse().expect("v"));
            resp.headers_mut()
                .insert("upgrade", "echo".parse().expect("v"));
            return resp;
        }
        if req.uri().path() == "/slow" {
            // Counts its own cancellation: the guard drops when the future does.
            let _guard = DropFlag(self.0.clone());
            tokio::time::sleep(Duration::from_secs(30)).await;
        }
        let line = format!("{} {}", req.method(), req.uri().path());
        if req.uri().path() == "/ignore" {
            return Response::new(full(line));
        }
        let body = req.into_body().collect().await.map(|b| b.to_bytes());
        let len = body.map_or(-1, |b| b.len() as i64);
        Response::new(full(format!("{line} {len}")))
    }
}

impl Handle for Echo {
    fn handle(&self, req: Request<Body>) -> impl std::future::Future<Output = Response<Body>> {
        Echo::handle(self, req)
    }
}

fn limits() -> Limits {
    Limits {
        header_read_timeout: Duration::from_millis(500),
        keep_alive_timeout: Duration::from_millis(1500),
        max_header_bytes: 4096,
        max_headers: 20,
    }
}

async fn proxy() -> SocketAddr {
    proxy_with(Echo::default()).await
}

async fn proxy_with(echo: Echo) -> SocketAddr {
    // Dropping the handle begins no drain.
    proxy_with_drain(echo).await.0
}

/// A proxy and the handle that begins its drain.
async fn proxy_with_drain(echo: Echo) -> (SocketAddr, drain::Drain) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (drain, watch) = drain::channel();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let watch = watch.clone();
            let echo = echo.clone();
            tokio::spawn(async move {
                if let Outcome::Handoff(io) =
                    serve(stream, Bytes::new(), &echo, limits(), &watch).await
                {
                    let svc = crate::handler_service!(echo);
                    crate::http::server::serve_http1(io, svc, limits(), &watch).await;
                }
            });
        }
    });
    (addr, drain)
}

/// Writes `input`, then reads until `done` says so or the connection closes (5 s at most).
async fn exchange(addr: SocketAddr, input: &[u8], done: impl Fn(&str) -> bool) -> (String, bool) {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(input).await.expect("write");
    read_until(&mut s, done).await
}

async fn read_until(s: &mut TcpStream, done: impl Fn(&str) -> bool) -> (String, bool) {
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let text = String::from_utf8_lossy(&got).into_owned();
        if done(&text) {
            return (text, false);
        }
        let mut buf = [0u8; 4096];
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (text, true),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Err(_) => return (text, false),
        }
    }
}

#[tokio::test]
async fn pipelined_keep_alive_requests_with_both_body_framings() {
    let addr = proxy().await;
    let input = b"GET /a HTTP/1.1\r\nhost: x\r\n\r\n\
POST /b HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\n\r\nhello\
POST /c HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n\
HEAD /d HTTP/1.1\r\nhost: x\r\n\r\n";
    let (text, closed) = exchange(addr, input, |t| t.matches("HTTP/1.1 200").count() == 4).await;
    assert!(!closed, "{text}");
    assert!(text.contains("GET /a 0"), "{text}");
    assert!(text.contains("POST /b 5"), "{text}");
    assert!(text.contains("POST /c 5"), "{text}");
    assert!(
        !text.contains("HEAD /d"),
        "a HEAD answer has no body: {text}"
    );
    assert!(text.contains("date: "), "{text}");
}

#[tokio::test]
async fn an_unread_body_closes_the_connection_after_the_answer() {
    let addr = proxy().await;
    let input = b"POST /ignore HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\nonly part";
    let (text, closed) = exchange(addr, input, |_| false).await;
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains("connection: close"), "{text}");
    assert!(
        closed,
        "the rest of the body cannot be told from a next request"
    );
}

#[tokio::test]
async fn connection_close_is_honoured() {
    let addr = proxy().await;
    let input = b"GET /a HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\nGET /b HTTP/1.1\r\nhost: x\r\n\r\n";
    let (text, closed) = exchange(addr, input, |_| false).await;
    assert!(closed);
    assert_eq!(text.matches("HTTP/1.1 200").count(), 1, "{text}");
}

#[tokio::test]
async fn upgrades_and_bad_input_go_to_hyper_after_a_served_request() {
    let addr = proxy().await;
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(b"GET /first HTTP/1.1\r\nhost: x\r\n\r\nGET /ws HTTP/1.1\r\nhost: x\r\nconnection: upgrade\r\nupgrade: echo\r\n\r\n")
        .await
        .expect("write");
    let (text, _) = read_until(&mut s, |t| t.contains("HTTP/1.1 101")).await;
    assert!(text.contains("GET /first 0"), "{text}");
    assert!(text.contains("HTTP/1.1 101"), "{text}");
    s.write_all(b"ping").await.expect("write");
    let (text, _) = read_until(&mut s, |t| t.ends_with("ping")).await;
    assert!(text.ends_with("ping"), "{text:?}");

    let (text, closed) = exchange(addr, b"GET / HTTP/1.1\r\nbad header\r\n\r\n", |_| false).await;
    assert!(text.starts_with("HTTP/1.1 400"), "{text}");
    assert!(closed);
    let many: String = (0..30).map(|i| format!("x-{i}: y\r\n")).collect();
    let input = format!("GET / HTTP/1.1\r\nhost: x\r\n{many}\r\n");
    let (text, _) = exchange(addr, input.as_bytes(), |_| false).await;
    assert!(text.starts_with("HTTP/1.1 431"), "too many headers: {text}");
    // The head limit is 4 KiB here, raised to hyper's 8 KiB floor.
    let big = format!("GET /{} HTTP/1.1\r\nhost: x\r\n\r\n", "a".repeat(9000));
    let (text, _) = exchange(addr, big.as_bytes(), |_| false).await;
    assert!(
        text.starts_with("HTTP/1.1 431"),
        "head too large: {}",
        &text[..text.len().min(200)]
    );
    let (text, _) = exchange(addr, &big.as_bytes()[..8000], |_| false).await;
    assert!(
        text.is_empty(),
        "a partial head under the limit waits: {}",
        &text[..text.len().min(200)]
    );
}

#[tokio::test]
async fn a_slow_head_is_timed_out_but_an_idle_gap_shorter_than_the_limit_is_not() {
    let addr = proxy().await;
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(b"GET /a HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .expect("write");
    let (text, _) = read_until(&mut s, |t| t.contains("GET /a 0")).await;
    assert!(text.contains("GET /a 0"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    s.write_all(b"GET /b HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .expect("write");
    let (text, _) = read_until(&mut s, |t| t.contains("GET /b 0")).await;
    assert!(text.contains("GET /b 0"), "{text}");
    // Half a head, then nothing: closed once the limit (500 ms) has passed.
    s.write_all(b"GET /c HTTP/1.1\r\n").await.expect("write");
    let started = std::time::Instant::now();
    let (_, closed) = read_until(&mut s, |_| false).await;
    assert!(closed, "a slow head is cut off");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn idle_between_requests_has_its_own_limit_longer_than_the_heads() {
    let addr = proxy().await;
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(b"GET /a HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .expect("write");
    let (text, _) = read_until(&mut s, |t| t.contains("GET /a 0")).await;
    assert!(text.contains("GET /a 0"));
    // Idle for twice the head limit (500 ms), within the keep-alive limit (1.5 s).
    tokio::time::sleep(Duration::from_millis(1000)).await;
    s.write_all(b"GET /b HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .expect("write");
    let (text, closed) = read_until(&mut s, |t| t.contains("GET /b 0")).await;
    assert!(text.contains("GET /b 0") && !closed, "{text}");
    // Then idle until the keep-alive limit closes it.
    let started = std::time::Instant::now();
    let (_, closed) = read_until(&mut s, |_| false).await;
    assert!(
        closed,
        "an idle connection is closed at the keep-alive limit"
    );
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(1200) && waited < Duration::from_secs(4),
        "{waited:?}"
    );
}

#[tokio::test]
async fn a_drain_closes_a_connection_idle_between_requests() {
    let (addr, drain) = proxy_with_drain(Echo::default()).await;
    let mut s = TcpStream::connect(addr).await.expect("connect");
    // Several requests first: the drain is watched from the first wait on, not re-polled.
    for path in ["/a", "/b", "/c"] {
        s.write_all(format!("GET {path} HTTP/1.1\r\nhost: x\r\n\r\n").as_bytes())
            .await
            .expect("write");
        let want = format!("GET {path} 0");
        let (text, closed) = read_until(&mut s, |t| t.contains(&want)).await;
        assert!(text.contains(&want) && !closed, "{text}");
    }
    let started = std::time::Instant::now();
    tokio::spawn(drain.drain(Duration::from_secs(5)));
    let (_, closed) = read_until(&mut s, |_| false).await;
    assert!(
        closed,
        "the idle connection is closed when the drain begins"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "at once, not at a timeout: {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_client_that_leaves_cancels_its_request() {
    let echo = Echo::default();
    let cancelled = echo.0.clone();
    let addr = proxy_with(echo).await;
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(b"GET /slow HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .expect("write");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        !cancelled.load(std::sync::atomic::Ordering::SeqCst),
        "still running"
    );
    drop(s);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    while !cancelled.load(std::sync::atomic::Ordering::SeqCst) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the request outlived its client"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
