//! The HTTP/1 client against servers that write exact bytes: framings, interim answers,
//! trailers, early answers, idle connections closed under it, and broken upstreams.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::BodyExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::verbatim::Fields;
use crate::http::pool::{Http1Pool, PoolSettings};
use crate::http::{empty, full, Body};

/// Serves each accepted connection with `script`, one connection at a time.
async fn raw_server<F, Fut>(script: F) -> SocketAddr
where
    F: Fn(TcpStream, usize) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let mut n = 0;
        while let Ok((stream, _)) = listener.accept().await {
            script(stream, n).await;
            n += 1;
        }
    });
    addr
}

/// Reads one request head (and `body` more bytes); returns the text.
async fn read_request(stream: &mut TcpStream, body: usize) -> String {
    let mut got = Vec::new();
    let mut byte = [0u8; 1];
    while !got.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).await.unwrap_or(0) == 0 {
            break;
        }
        got.push(byte[0]);
    }
    let mut rest = vec![0u8; body];
    let _ = stream.read_exact(&mut rest).await;
    got.extend_from_slice(&rest);
    String::from_utf8_lossy(&got).into_owned()
}

fn get(path: &str) -> Request<Body> {
    Request::get(path)
        .header("host", "example")
        .body(empty())
        .expect("request")
}

async fn send(
    pool: &Arc<Http1Pool>,
    req: Request<Body>,
) -> (http::response::Parts, Bytes, Option<http::HeaderMap>) {
    let resp = tokio::time::timeout(
        Duration::from_secs(5),
        pool.send(req, Duration::from_secs(1), Fields::Map),
    )
    .await
    .expect("in time")
    .expect("response");
    let (parts, body) = resp.into_parts();
    let collected = tokio::time::timeout(Duration::from_secs(5), body.collect())
        .await
        .expect("body in time")
        .expect("body");
    let trailers = collected.trailers().cloned();
    (parts, collected.to_bytes(), trailers)
}

#[tokio::test]
async fn chunked_response_with_trailers_after_an_interim_100() {
    let addr = raw_server(|mut s, _| async move {
        read_request(&mut s, 0).await;
        let _ = s
            .write_all(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n1;x=y\r\n!\r\n0\r\nx-checksum: 42\r\n\r\n")
            .await;
        let _ = s.read(&mut [0u8; 1]).await;
    })
    .await;
    let pool = Http1Pool::new(addr, PoolSettings::idle(Duration::from_secs(4)));
    let (parts, body, trailers) = send(&pool, get("/")).await;
    assert_eq!(parts.status, 200);
    assert_eq!(&body[..], b"hello!");
    assert_eq!(trailers.expect("trailers")["x-checksum"], "42");
}

#[tokio::test]
async fn head_and_204_have_no_body_and_keep_the_connection() {
    let addr = raw_server(|mut s, n| async move {
        assert_eq!(n, 0, "one connection for both requests");
        read_request(&mut s, 0).await;
        let _ = s
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n")
            .await;
        read_request(&mut s, 0).await;
        let _ = s.write_all(b"HTTP/1.1 204 No Content\r\n\r\n").await;
        let _ = s.read(&mut [0u8; 1]).await;
    })
    .await;
    let pool = Http1Pool::new(addr, PoolSettings::idle(Duration::from_secs(4)));
    let head = Request::head("/")
        .header("host", "x")
        .body(empty())
        .expect("req");
    let (parts, body, _) = send(&pool, head).await;
    assert_eq!((parts.status.as_u16(), body.len()), (200, 0));
    assert_eq!(parts.headers["content-length"], "100");
    let (parts, body, _) = send(&pool, get("/")).await;
    assert_eq!((parts.status.as_u16(), body.len()), (204, 0));
}

#[tokio::test]
async fn request_bodies_are_framed_by_length_or_chunks() {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<String>(4);
    let addr = raw_server(move |mut s, _| {
        let tx = tx.clone();
        async move {
            for body in [5, 0] {
                let text = read_request(&mut s, body).await;
                let chunked = text.contains("transfer-encoding: chunked");
                let text = if chunked {
                    // Read until the last chunk.
                    let mut all = text.into_bytes();
                    while !all.ends_with(b"0\r\n\r\n") {
                        let mut b = [0u8; 1];
                        if s.read(&mut b).await.unwrap_or(0) == 0 {
                            break;
                        }
                        all.push(b[0]);
                    }
                    String::from_utf8_lossy(&all).into_owned()
                } else {
                    text
                };
                let _ = tx.send(text).await;
                let _ = s
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                    .await;
            }
        }
    })
    .await;
    let pool = Http1Pool::new(addr, PoolSettings::idle(Duration::from_secs(4)));
    let post = Request::post("/up")
        .header("host", "x")
        .body(full("hello"))
        .expect("req");
    send(&pool, post).await;
    let seen = rx.recv().await.expect("first");
    assert!(
        seen.contains("content-length: 5\r\n") && seen.ends_with("\r\n\r\nhello"),
        "{seen}"
    );
    let stream = futures_util::stream::iter(vec![
        Ok::<_, crate::http::BoxError>(http_body::Frame::data(Bytes::from_static(b"ab"))),
        Ok(http_body::Frame::data(Bytes::from_static(b"cde"))),
    ]);
    let body = crate::http::boxed(http_body_util::StreamBody::new(stream));
    let post = Request::post("/up")
        .header("host", "x")
        .body(body)
        .expect("req");
    send(&pool, post).await;
    let seen = rx.recv().await.expect("second");
    assert!(
        seen.ends_with("\r\n\r\n2\r\nab\r\n3\r\ncde\r\n0\r\n\r\n"),
        "{seen:?}"
    );
}

#[tokio::test]
async fn an_idle_connection_closed_by_the_server_is_retried_once_for_a_get() {
    let addr = raw_server(|mut s, n| async move {
        read_request(&mut s, 0).await;
        let _ = s
            .write_all(format!("HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\n{n}").as_bytes())
            .await;
        if n == 0 {
            // Takes the next request, then closes without an answer (an idle timeout race).
            read_request(&mut s, 0).await;
        } else {
            let _ = s.read(&mut [0u8; 1]).await;
        }
    })
    .await;
    let pool = Http1Pool::new(addr, PoolSettings::idle(Duration::from_secs(4)));
    assert_eq!(&send(&pool, get("/")).await.1[..], b"0");
    assert_eq!(
        &send(&pool, get("/")).await.1[..],
        b"1",
        "answered on a new connection"
    );
}

#[tokio::test]
async fn a_post_is_not_sent_twice() {
    let addr = raw_server(|mut s, _| async move {
        read_request(&mut s, 0).await;
        let _ = s
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
            .await;
        read_request(&mut s, 0).await;
    })
    .await;
    let pool = Http1Pool::new(addr, PoolSettings::idle(Duration::from_secs(4)));
    send(&pool, get("/")).await;
    let post = Request::post("/")
        .header("host", "x")
        .body(empty())
        .expect("req");
    let err = pool
        .send(post, Duration::from_secs(1), Fields::Map)
        .await
        .expect_err("no answer");
    assert!(
        err.to_string().contains("closed before a response"),
        "{err}"
    );
}

#[tokio::test]
async fn an_early_answer_stops_the_upload() {
    let addr = raw_server(|mut s, _| async move {
        read_request(&mut s, 0).await;
        let _ = s
            .write_all(b"HTTP/1.1 413 Payload Too Large\r\ncontent-length: 0\r\n\r\n")
            .await;
        let _ = tokio::time::timeout(Duration::from_secs(3), s.read(&mut [0u8; 64])).await;
    })
    .await;
    let pool = Http1Pool::new(addr, PoolSettings::idle(Duration::from_secs(4)));
    // A body that never ends.
    let stream =
        futures_util::stream::pending::<Result<http_body::Frame<Bytes>, crate::http::BoxError>>();
    let body = crate::http::boxed(http_body_util::StreamBody::new(stream));
    let post = Request::post("/")
        .header("host", "x")
        .body(body)
        .expect("req");
    let (parts, _, _) = send(&pool, post).await;
    assert_eq!(parts.status, 413);
}

#[tokio::test]
async fn broken_upstreams_are_errors_not_hangs() {
    for reply in [
        &b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nshort"[..],
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n",
        b"NOT HTTP\r\n\r\n",
        b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\n",
    ] {
        let addr = raw_server(move |mut s, _| async move {
            read_request(&mut s, 0).await;
            let _ = s.write_all(reply).await;
        })
        .await;
        let pool = Http1Pool::new(addr, PoolSettings::idle(Duration::from_secs(4)));
        let result = tokio::time::timeout(Duration::from_secs(5), async {
            let resp = pool
                .send(get("/"), Duration::from_secs(1), Fields::Map)
                .await
                .map_err(|e| e.to_string())?;
            resp.into_body()
                .collect()
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
        .await
        .expect("no hang");
        assert!(
            result.is_err(),
            "{:?} was accepted",
            String::from_utf8_lossy(reply)
        );
    }
}

#[tokio::test]
async fn a_body_read_until_close_is_complete_and_not_reused() {
    let addr = raw_server(|mut s, n| async move {
        read_request(&mut s, 0).await;
        let _ = s
            .write_all(format!("HTTP/1.1 200 OK\r\n\r\nbody {n}").as_bytes())
            .await;
    })
    .await;
    let pool = Http1Pool::new(addr, PoolSettings::idle(Duration::from_secs(4)));
    assert_eq!(&send(&pool, get("/")).await.1[..], b"body 0");
    assert_eq!(&send(&pool, get("/")).await.1[..], b"body 1");
}

#[tokio::test]
async fn an_interim_100_does_not_stop_the_upload_and_expect_is_not_forwarded() {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<String>(1);
    let addr = raw_server(move |mut s, _| {
        let tx = tx.clone();
        async move {
            let head = read_request(&mut s, 0).await;
            // Answer 100 at once, like nginx or Go, then read the whole body.
            let _ = s.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").await;
            let mut body = Vec::new();
            while !body.ends_with(b"0\r\n\r\n") {
                let mut b = [0u8; 64];
                match s.read(&mut b).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => body.extend_from_slice(&b[..n]),
                }
            }
            let _ = tx
                .send(format!("{head}{}", String::from_utf8_lossy(&body)))
                .await;
            let _ = s
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                .await;
        }
    })
    .await;
    let pool = Http1Pool::new(addr, PoolSettings::idle(Duration::from_secs(4)));
    // A body whose second part comes later than the 100.
    let stream = futures_util::stream::unfold(0, |n| async move {
        if n == 2 {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        Some((
            Ok::<_, crate::http::BoxError>(http_body::Frame::data(Bytes::from_static(b"part"))),
            n + 1,
        ))
    });
    let body = crate::http::boxed(http_body_util::StreamBody::new(stream));
    let post = Request::post("/up")
        .header("host", "x")
        .header("expect", "100-continue")
        .body(body)
        .expect("req");
    let (parts, body, _) = send(&pool, post).await;
    assert_eq!((parts.status.as_u16(), &body[..]), (200, &b"ok"[..]));
    let seen = rx.recv().await.expect("request");
    assert!(!seen.contains("expect"), "{seen}");
    assert!(
        seen.ends_with("4\r\npart\r\n4\r\npart\r\n0\r\n\r\n"),
        "{seen:?}"
    );
}

#[tokio::test]
async fn chunked_with_a_length_drops_the_length_and_the_connection() {
    let addr = raw_server(|mut s, n| async move {
        read_request(&mut s, 0).await;
        let _ = s
            .write_all(format!("HTTP/1.1 200 OK\r\ncontent-length: 99\r\ntransfer-encoding: chunked\r\n\r\n1\r\n{n}\r\n0\r\n\r\n").as_bytes())
            .await;
        let _ = s.read(&mut [0u8; 1]).await;
    })
    .await;
    let pool = Http1Pool::new(addr, PoolSettings::idle(Duration::from_secs(4)));
    let (parts, body, _) = send(&pool, get("/")).await;
    assert!(parts.headers.get("content-length").is_none());
    assert_eq!(&body[..], b"0");
    assert_eq!(&send(&pool, get("/")).await.1[..], b"1", "a new connection");
}

#[tokio::test]
async fn an_http10_request_gets_a_connection_of_its_own() {
    let addr = raw_server(|mut s, n| async move {
        let head = read_request(&mut s, 0).await;
        assert!(head.starts_with("GET / HTTP/1.0\r\n"), "{head}");
        let _ = s
            .write_all(format!("HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\n{n}").as_bytes())
            .await;
        let _ = s.read(&mut [0u8; 1]).await;
    })
    .await;
    let pool = Http1Pool::new(addr, PoolSettings::idle(Duration::from_secs(4)));
    for expected in [b"0", b"1"] {
        let mut req = get("/");
        *req.version_mut() = http::Version::HTTP_10;
        assert_eq!(&send(&pool, req).await.1[..], expected);
    }
}

#[tokio::test]
async fn a_transfer_coding_other_than_chunked_is_refused_not_lost() {
    let addr = raw_server(|mut s, _| async move {
        let head = read_request(&mut s, 0).await;
        let answer: &[u8] = if head.starts_with("HEAD") {
            // Bodiless: the field only describes what a GET would get, and is harmless.
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, chunked\r\n\r\n"
        } else if head.starts_with("GET /twice") {
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n"
        } else {
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
        };
        let _ = s.write_all(answer).await;
        let _ = s.read(&mut [0u8; 1]).await;
    })
    .await;
    let pool = Http1Pool::new(addr, PoolSettings::idle(Duration::from_secs(4)));
    for path in ["/gzip", "/twice"] {
        let sent = tokio::time::timeout(
            Duration::from_secs(5),
            pool.send(get(path), Duration::from_secs(1), Fields::Map),
        )
        .await
        .expect("in time");
        let Err(e) = sent else {
            panic!("{path}: the gzip-coded body would have been passed on as if plain")
        };
        assert!(e.to_string().contains("Transfer-Encoding"), "{path}: {e}");
    }
    let head = Request::head("/")
        .header("host", "x")
        .body(empty())
        .expect("req");
    let (parts, body, _) = send(&pool, head).await;
    assert_eq!((parts.status.as_u16(), body.len()), (200, 0));
}
