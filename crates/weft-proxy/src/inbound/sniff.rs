//! Reading the HTTP/1 request head at the start of an opaque connection, so that
//! authorization can judge it as the HTTP request it is: a WebSocket upgrade crosses the mesh
//! as an opaque stream, and a plaintext client outside the mesh is captured as TCP. Only done
//! when a policy applies; the bytes read are replayed to the application either way.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, HeaderName, HeaderValue};
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::detect::{classify, Detected};

/// The largest head read; longer ones are judged as TCP.
const MAX_HEAD: usize = 16 * 1024;
const MAX_HEADERS: usize = 100;

/// An HTTP/1 request head, owned, with its path normalized for evaluation.
#[derive(Clone, Debug)]
pub struct Head {
    pub method: String,
    pub host: String,
    /// Path without query, as received (normalization is the caller's).
    pub path: String,
    pub query: Option<String>,
    pub headers: HeaderMap,
}

/// Reads from `io` until an HTTP/1 request head is complete (`Some`), the bytes are clearly
/// not one (`None`), or `wait` passes (`None`). Returns everything read.
pub async fn head<I: AsyncRead + Unpin>(
    io: &mut I,
    wait: Duration,
) -> std::io::Result<(Bytes, Option<Head>)> {
    let mut buf = BytesMut::with_capacity(1024);
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        if !buf.is_empty() {
            if classify(&buf) == Some(Detected::Opaque) {
                return Ok((buf.freeze(), None));
            }
            match parse(&buf) {
                Parsed::Head(h) => return Ok((buf.freeze(), Some(h))),
                Parsed::NotHttp => return Ok((buf.freeze(), None)),
                Parsed::Partial if buf.len() >= MAX_HEAD => return Ok((buf.freeze(), None)),
                Parsed::Partial => {}
            }
        }
        match tokio::time::timeout_at(deadline, io.read_buf(&mut buf)).await {
            Err(_) | Ok(Ok(0)) => return Ok((buf.freeze(), None)),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(e),
        }
    }
}

enum Parsed {
    Head(Head),
    Partial,
    NotHttp,
}

fn parse(buf: &[u8]) -> Parsed {
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut fields);
    match req.parse(buf) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => return Parsed::Partial,
        Err(_) => return Parsed::NotHttp,
    }
    let (Some(method), Some(target)) = (req.method, req.path) else {
        return Parsed::NotHttp;
    };
    let mut headers = HeaderMap::with_capacity(req.headers.len());
    for f in req.headers.iter() {
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(f.name.as_bytes()),
            HeaderValue::from_bytes(f.value),
        ) {
            headers.append(n, v);
        }
    }
    // Origin-form (`/p?q`) or absolute-form (`http://h/p?q`).
    let (host_in_target, path_and_query) = match target.split_once("://") {
        Some((_, rest)) => match rest.find('/') {
            Some(i) => (Some(&rest[..i]), &rest[i..]),
            None => (Some(rest), "/"),
        },
        None => (None, target),
    };
    let (path, query) = match path_and_query.split_once('?') {
        Some((p, q)) => (p, Some(q.to_string())),
        None => (path_and_query, None),
    };
    let host = host_in_target
        .map(str::to_string)
        .or_else(|| {
            headers
                .get(http::header::HOST)
                .and_then(|h| h.to_str().ok())
                .map(str::to_string)
        })
        .unwrap_or_default();
    Parsed::Head(Head {
        method: method.to_string(),
        host,
        path: path.to_string(),
        query,
        headers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reads_a_websocket_upgrade_head() {
        let (mut client, mut server) = tokio::io::duplex(4096);
        let req = b"GET /chat?room=1 HTTP/1.1\r\nHost: reviews.shop\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\nrest";
        tokio::io::AsyncWriteExt::write_all(&mut client, req)
            .await
            .expect("write");
        let (bytes, found) = head(&mut server, Duration::from_secs(1))
            .await
            .expect("read");
        assert_eq!(&bytes[..], &req[..]);
        let h = found.expect("a head");
        assert_eq!(
            (h.method.as_str(), h.host.as_str(), h.path.as_str()),
            ("GET", "reviews.shop", "/chat")
        );
        assert_eq!(h.headers["upgrade"], "websocket");
    }

    #[tokio::test(start_paused = true)]
    async fn other_bytes_and_silence_are_not_http() {
        let (mut client, mut server) = tokio::io::duplex(4096);
        tokio::io::AsyncWriteExt::write_all(&mut client, b"\x16\x03\x01\x00\x05hello")
            .await
            .expect("write");
        let (bytes, found) = head(&mut server, Duration::from_secs(1))
            .await
            .expect("read");
        assert!(found.is_none() && bytes.len() == 10);
        let (_quiet, mut server) = tokio::io::duplex(64);
        let (bytes, found) = head(&mut server, Duration::from_millis(300))
            .await
            .expect("read");
        assert!(found.is_none() && bytes.is_empty());
    }
}
