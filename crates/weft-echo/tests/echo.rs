//! End-to-end tests of the echo server on 127.0.0.1: HTTP/1.1, h2c, upgrades,
//! TCP echo, bad input, bind errors and shutdown (gRPC calls in `grpc_calls`).

mod grpc_calls;
mod support;

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::Full;
use support::{
    collect, echo_round, h2, http1, parse_echo, raw_exchange, read_head, send1, Echo, WAIT,
};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

fn get(uri: &str) -> http::request::Builder {
    Request::get(uri).header("host", "echo.test:8080")
}

#[tokio::test]
async fn http1_get_echoes_the_request() {
    let echo = Echo::start().await;
    let mut client = http1(echo.http).await;
    let req = get("/some/path?a=1&b=two")
        .header("x-custom", "one")
        .header("x-custom", "two")
        .header("user-agent", "weft-test")
        .body(Full::default())
        .expect("request");
    let (parts, body) = send1(&mut client, req).await;
    assert_eq!(parts.status, StatusCode::OK);
    assert_eq!(parts.headers["content-type"], "application/json");
    assert_eq!(parts.headers["x-content-type-options"], "nosniff");
    let answer = parse_echo(&body);
    assert_eq!(answer.path, "/some/path?a=1&b=two");
    assert_eq!(answer.host, "echo.test:8080");
    assert_eq!(answer.method, "GET");
    assert_eq!(answer.proto, "HTTP/1.1");
    assert_eq!(answer.headers["X-Custom"], ["one", "two"]);
    assert_eq!(answer.headers["User-Agent"], ["weft-test"]);
    assert!(
        !answer.headers.contains_key("Host"),
        "Host is reported in `host` only"
    );
    assert_eq!(
        (
            answer.namespace.as_str(),
            answer.service.as_str(),
            answer.pod.as_str(),
            answer.ingress.as_str()
        ),
        ("weft-test", "echo", "echo-0", "")
    );
    echo.stop().await;
}

#[tokio::test]
async fn h2c_prior_knowledge_on_the_same_port() {
    let echo = Echo::start().await;
    let mut client = h2(echo.http).await;
    let req = Request::post("http://echo.test/h2?x=y")
        .header("x-h2", "yes")
        .body(Full::new(Bytes::from_static(b"hello")))
        .expect("request");
    let (parts, body) = collect(client.send_request(req).await.expect("response")).await;
    assert_eq!(parts.status, StatusCode::OK);
    let answer = parse_echo(&body);
    assert_eq!(answer.proto, "HTTP/2.0");
    assert_eq!(answer.path, "/h2?x=y");
    assert_eq!(answer.host, "echo.test");
    assert_eq!(answer.method, "POST");
    assert_eq!(answer.headers["X-H2"], ["yes"]);
    echo.stop().await;
}

#[tokio::test]
async fn x_echo_set_header_sets_response_headers() {
    let echo = Echo::start().await;
    let mut client = http1(echo.http).await;
    let req = get("/")
        .header("x-echo-set-header", "X-Foo: bar, X-Baz: qux")
        .header("x-echo-set-header", "x-foo: again")
        .body(Full::default())
        .expect("request");
    let (parts, _) = send1(&mut client, req).await;
    assert_eq!(parts.headers["x-foo"], "bar,again");
    assert_eq!(parts.headers["x-baz"], "qux");
    echo.stop().await;
}

#[tokio::test]
async fn health_and_status() {
    let echo = Echo::start().await;
    let mut client = http1(echo.http).await;
    for (path, status, body) in [
        ("/health", StatusCode::OK, &b"OK"[..]),
        ("/status/503", StatusCode::SERVICE_UNAVAILABLE, b""),
        ("/status/404", StatusCode::NOT_FOUND, b""),
        ("/status/nope", StatusCode::BAD_REQUEST, b""),
    ] {
        let (parts, got) = send1(
            &mut client,
            get(path).body(Full::default()).expect("request"),
        )
        .await;
        assert_eq!(parts.status, status, "{path}");
        assert_eq!(&got[..], body, "{path}");
    }
    echo.stop().await;
}

#[tokio::test]
async fn delay_waits_and_bad_delay_is_500() {
    let echo = Echo::start().await;
    let mut client = http1(echo.http).await;
    let start = Instant::now();
    let (parts, _) = send1(
        &mut client,
        get("/?delay=300ms").body(Full::default()).expect("request"),
    )
    .await;
    assert_eq!(parts.status, StatusCode::OK);
    assert!(
        start.elapsed() >= Duration::from_millis(300),
        "{:?}",
        start.elapsed()
    );

    let (parts, body) = send1(
        &mut client,
        get("/?delay=soon").body(Full::default()).expect("request"),
    )
    .await;
    assert_eq!(parts.status, StatusCode::INTERNAL_SERVER_ERROR);
    let error: serde_json::Value = serde_json::from_slice(&body).expect("JSON error");
    assert!(
        error["message"]
            .as_str()
            .is_some_and(|m| m.contains("soon")),
        "{error}"
    );
    echo.stop().await;
}

#[tokio::test]
async fn chunked_post_is_read_and_answered() {
    let echo = Echo::start().await;
    let request = "POST /upload HTTP/1.1\r\nHost: echo.test\r\nTransfer-Encoding: chunked\r\n\
                   Connection: close\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
    let answer = raw_exchange(echo.http, request.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
    let (_, body) = answer.split_once("\r\n\r\n").expect("head and body");
    let echoed = parse_echo(body.as_bytes());
    assert_eq!(echoed.method, "POST");
    assert_eq!(echoed.headers["Transfer-Encoding"], ["chunked"]);
    echo.stop().await;
}

#[tokio::test]
async fn upgrade_switches_to_raw_echo() {
    let echo = Echo::start().await;
    let mut stream = TcpStream::connect(echo.http).await.expect("connect");
    stream
        .write_all(b"GET /anything HTTP/1.1\r\nHost: echo.test\r\nConnection: Upgrade\r\nUpgrade: weft-echo\r\n\r\n")
        .await
        .expect("write");
    let head = read_head(&mut stream).await.to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 101 "), "{head}");
    assert!(head.contains("upgrade: weft-echo\r\n"), "{head}");
    echo_round(&mut stream, b"ping over the upgraded connection").await;
    echo_round(&mut stream, &[0x81, 0x85, 1, 2, 3, 4, 5, 6, 7, 8, 9]).await;
    drop(stream);
    echo.stop().await;
}

#[tokio::test]
async fn websocket_handshake_and_byte_echo() {
    let echo = Echo::start().await;
    let mut stream = TcpStream::connect(echo.http).await.expect("connect");
    stream
        .write_all(
            b"GET /ws HTTP/1.1\r\nHost: echo.test\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\
              Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
        )
        .await
        .expect("write");
    let head = read_head(&mut stream).await.to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 101 "), "{head}");
    assert!(
        head.contains("sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo=\r\n"),
        "{head}"
    );
    // A masked text frame "Hello" (RFC 6455 §5.7) comes back as sent.
    echo_round(
        &mut stream,
        &[
            0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ],
    )
    .await;
    drop(stream);
    echo.stop().await;
}

#[tokio::test]
async fn connect_tunnel_echoes() {
    let echo = Echo::start().await;
    let mut stream = TcpStream::connect(echo.http).await.expect("connect");
    stream
        .write_all(b"CONNECT backend.test:443 HTTP/1.1\r\nHost: backend.test:443\r\n\r\n")
        .await
        .expect("write");
    let head = read_head(&mut stream).await;
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    echo_round(&mut stream, b"bytes through the tunnel").await;
    drop(stream);
    echo.stop().await;
}

#[tokio::test]
async fn tcp_port_echoes_until_eof() {
    let echo = Echo::start().await;
    let mut stream = TcpStream::connect(echo.tcp).await.expect("connect");
    echo_round(&mut stream, b"hello tcp").await;
    let big = vec![7u8; 100_000];
    echo_round(&mut stream, &big).await;
    stream.shutdown().await.expect("half-close");
    let mut rest = Vec::new();
    let n = tokio::time::timeout(
        WAIT,
        tokio::io::AsyncReadExt::read_to_end(&mut stream, &mut rest),
    )
    .await
    .expect("server closes after EOF")
    .expect("read");
    assert_eq!(n, 0);
    echo.stop().await;
}

#[tokio::test]
async fn malformed_request_gets_400_and_close() {
    let echo = Echo::start().await;
    let answer = raw_exchange(echo.http, b"GET / HTTP/1.1\r\nthis is not a header\r\n\r\n").await;
    assert!(answer.starts_with("HTTP/1.1 400 "), "{answer}");
    echo.stop().await;
}

#[tokio::test]
async fn bind_error_names_the_address() {
    let taken = std::net::TcpListener::bind(support::loopback()).expect("bind");
    let addr = taken.local_addr().expect("addr");
    let config = weft_echo::EchoConfig {
        chaos: Default::default(),
        identity: weft_echo::Identity::default(),
        http: vec![support::loopback()],
        tcp: vec![addr],
    };
    let error = weft_echo::serve(config, std::future::pending())
        .await
        .expect_err("in use");
    assert!(error.to_string().contains(&addr.to_string()), "{error}");
}

#[tokio::test]
async fn shutdown_lets_in_flight_requests_finish() {
    let echo = Echo::start().await;
    let mut client = http1(echo.http).await;
    let in_flight = tokio::spawn(async move {
        send1(
            &mut client,
            get("/?delay=300ms").body(Full::default()).expect("request"),
        )
        .await
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let addr = echo.http;
    let start = Instant::now();
    echo.stop().await;
    assert!(
        start.elapsed() < Duration::from_secs(4),
        "{:?}",
        start.elapsed()
    );
    let (parts, _) = in_flight.await.expect("in-flight request");
    assert_eq!(parts.status, StatusCode::OK);
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "listener closed after shutdown"
    );
}
