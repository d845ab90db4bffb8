//! Protocol detection: reads only what the client sends first, for a bounded time, and says
//! whether it is HTTP/1, HTTP/2 (prior knowledge) or something else. A client that sends
//! nothing (server-speaks-first protocols such as MySQL or SMTP) is given up on after the
//! timeout and proxied as TCP, never stalled for long.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};

pub const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// How many bytes detection reads at most before deciding.
const MAX_PEEK: usize = 1024;
/// The longest method token taken for HTTP/1.
const MAX_METHOD: usize = 16;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Detected {
    Http1,
    Http2,
    /// Bytes that are not HTTP.
    Opaque,
    /// Nothing arrived within the timeout.
    Timeout,
    /// The client closed before sending anything.
    Closed,
}

impl Detected {
    pub fn label(self) -> &'static str {
        match self {
            Detected::Http1 => "http1",
            Detected::Http2 => "http2",
            Detected::Opaque => "opaque",
            Detected::Timeout => "timeout",
            Detected::Closed => "closed",
        }
    }
}

/// Classifies a prefix of a stream. `None`: not enough bytes to tell yet.
///
/// The answer never changes as more bytes arrive: once a prefix is classified, every longer
/// prefix gets the same answer (the fuzz target checks this). So HTTP/1 is recognised by its
/// method token and the space after it, not by the end of the request line, which may be
/// longer than detection is willing to read; a malformed rest of the line is hyper's to reject
/// with a 400.
pub fn classify(buf: &[u8]) -> Option<Detected> {
    if buf.is_empty() {
        return None;
    }
    // HTTP/2 prior knowledge starts with "PRI * HTTP/2.0..."; compare all we have.
    let n = buf.len().min(H2_PREFACE.len());
    if buf[..n] == H2_PREFACE[..n] {
        return (n == H2_PREFACE.len()).then_some(Detected::Http2);
    }
    // HTTP/1: a method token (upper-case letters, '-' or '_'), then a space.
    for (i, b) in buf.iter().enumerate() {
        match b {
            b' ' if i > 0 => return Some(Detected::Http1),
            b'A'..=b'Z' | b'-' | b'_' if i < MAX_METHOD => {}
            _ => return Some(Detected::Opaque),
        }
    }
    None
}

/// Reads from `io` until the protocol is known or `timeout` passes. Returns what was read, to
/// be replayed to whoever handles the connection next.
pub async fn detect<I: AsyncRead + Unpin>(
    io: &mut I,
    timeout: Duration,
) -> std::io::Result<(Detected, Bytes)> {
    let mut buf = BytesMut::with_capacity(256);
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        match tokio::time::timeout_at(deadline, io.read_buf(&mut buf)).await {
            Err(_) => {
                let d = if buf.is_empty() {
                    Detected::Timeout
                } else {
                    Detected::Opaque
                };
                return Ok((d, buf.freeze()));
            }
            Ok(Ok(0)) => {
                let d = if buf.is_empty() {
                    Detected::Closed
                } else {
                    classify(&buf).unwrap_or(Detected::Opaque)
                };
                return Ok((d, buf.freeze()));
            }
            Ok(Ok(_)) => {
                if let Some(d) = classify(&buf) {
                    return Ok((d, buf.freeze()));
                }
                if buf.len() >= MAX_PEEK {
                    return Ok((Detected::Opaque, buf.freeze()));
                }
            }
            Ok(Err(e)) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_requests() {
        assert_eq!(
            classify(b"GET / HTTP/1.1\r\nHost: a\r\n"),
            Some(Detected::Http1)
        );
        assert_eq!(classify(b"POST /x?y HTTP/1.0\n"), Some(Detected::Http1));
        assert_eq!(classify(H2_PREFACE), Some(Detected::Http2));
        assert_eq!(classify(b"PRI * HTTP/2"), None);
        assert_eq!(classify(b"GET / HT"), Some(Detected::Http1));
        assert_eq!(classify(b"GE"), None);
        assert_eq!(
            classify(b"\x16\x03\x01\x02\x00"),
            Some(Detected::Opaque),
            "TLS ClientHello"
        );
        assert_eq!(classify(b"SSH-2.0-OpenSSH\r\n"), Some(Detected::Opaque));
        assert_eq!(classify(b"PRI /not-h2 HTTP/1.1\r\n"), Some(Detected::Http1));
        assert_eq!(classify(b"get / HTTP/1.1\r\n"), Some(Detected::Opaque));
        assert_eq!(classify(&[b'A'; 2000]), Some(Detected::Opaque));
        // A request line longer than detection reads is still HTTP (found by fuzzing).
        let long = format!("GET /search?q={} HTTP/1.1\r\n", "a".repeat(4000));
        assert_eq!(classify(&long.as_bytes()[..1024]), Some(Detected::Http1));
    }

    #[tokio::test(start_paused = true)]
    async fn silent_client_times_out_quickly() {
        let (_client, mut server) = tokio::io::duplex(64);
        let (d, bytes) = detect(&mut server, Duration::from_millis(300))
            .await
            .expect("detect");
        assert_eq!(d, Detected::Timeout);
        assert!(bytes.is_empty());
    }

    #[tokio::test]
    async fn partial_method_waits_for_more() {
        let (mut client, mut server) = tokio::io::duplex(64);
        let task = tokio::spawn(async move { detect(&mut server, Duration::from_secs(5)).await });
        tokio::io::AsyncWriteExt::write_all(&mut client, b"GE")
            .await
            .expect("w");
        tokio::task::yield_now().await;
        tokio::io::AsyncWriteExt::write_all(&mut client, b"T /a HTTP/1.1\r\n")
            .await
            .expect("w");
        let (d, bytes) = task.await.expect("join").expect("detect");
        assert_eq!(d, Detected::Http1);
        assert_eq!(&bytes[..], b"GET /a HTTP/1.1\r\n");
    }
}
