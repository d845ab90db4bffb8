//! Helpers for the echo server's tests: start a server on loopback port 0,
//! and small HTTP/1.1, HTTP/2 and raw-socket clients.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use weft_echo::{EchoConfig, EchoResponse, Identity};

/// A bound-forever guard on every socket wait in these tests.
pub const WAIT: Duration = Duration::from_secs(10);

/// A running echo server.
pub struct Echo {
    pub http: SocketAddr,
    pub tcp: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl Echo {
    pub async fn start() -> Self {
        let config = EchoConfig {
            chaos: Default::default(),
            identity: Identity {
                namespace: "weft-test".into(),
                service: "echo".into(),
                pod: "echo-0".into(),
            },
            http: vec![loopback()],
            tcp: vec![loopback()],
        };
        let bound = weft_echo::bind(config).await.expect("bind");
        let (http, tcp) = (bound.http_addrs()[0], bound.tcp_addrs()[0]);
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(bound.serve(async {
            let _ = stopped.await;
        }));
        Self {
            http,
            tcp,
            stop: Some(stop),
            task,
        }
    }

    /// Asks the server to shut down and waits for it.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(WAIT, &mut self.task)
            .await
            .expect("server stops in time")
            .expect("server task");
    }
}

pub fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// An HTTP/1.1 client connection.
pub async fn http1(addr: SocketAddr) -> http1::SendRequest<Full<Bytes>> {
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (send, conn) = http1::handshake(TokioIo::new(stream))
        .await
        .expect("http1 handshake");
    tokio::spawn(conn);
    send
}

/// An HTTP/2 prior-knowledge (h2c) client connection.
pub async fn h2(addr: SocketAddr) -> http2::SendRequest<Full<Bytes>> {
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (send, conn) = http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
        .await
        .expect("h2 handshake");
    tokio::spawn(conn);
    send
}

/// Sends `req` on an HTTP/1.1 connection and collects the answer.
pub async fn send1(
    client: &mut http1::SendRequest<Full<Bytes>>,
    req: Request<Full<Bytes>>,
) -> (http::response::Parts, Bytes) {
    let resp = tokio::time::timeout(WAIT, client.send_request(req))
        .await
        .expect("answer in time")
        .expect("response");
    collect(resp).await
}

pub async fn collect(resp: Response<hyper::body::Incoming>) -> (http::response::Parts, Bytes) {
    let (parts, body) = resp.into_parts();
    let body = body.collect().await.expect("body").to_bytes();
    (parts, body)
}

pub fn parse_echo(body: &[u8]) -> EchoResponse {
    serde_json::from_slice(body).expect("JSON echo answer")
}

/// Writes `bytes` on a fresh connection and reads until the server closes it.
pub async fn raw_exchange(addr: SocketAddr, bytes: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.write_all(bytes).await.expect("write");
    let mut out = Vec::new();
    tokio::time::timeout(WAIT, stream.read_to_end(&mut out))
        .await
        .expect("server closes the connection")
        .expect("read");
    String::from_utf8_lossy(&out).into_owned()
}

/// Reads a response head (through the blank line) from a raw stream.
pub async fn read_head(stream: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(WAIT, stream.read(&mut byte))
            .await
            .expect("head in time")
            .expect("read head");
        assert_eq!(n, 1, "connection closed inside the response head");
        head.push(byte[0]);
    }
    String::from_utf8_lossy(&head).into_owned()
}

/// Writes `bytes` and reads exactly as many back.
pub async fn echo_round(stream: &mut TcpStream, bytes: &[u8]) {
    stream.write_all(bytes).await.expect("write");
    let mut back = vec![0u8; bytes.len()];
    tokio::time::timeout(WAIT, stream.read_exact(&mut back))
        .await
        .expect("echo in time")
        .expect("read echo");
    assert_eq!(back, bytes);
}
