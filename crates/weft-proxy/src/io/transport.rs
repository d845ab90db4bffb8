//! The mesh transport header: what an outbound proxy writes first on a connection to a peer
//! proxy's inbound port, so the peer knows which local port the traffic is for and how it is
//! carried, without iptables having to tell it.
//!
//! Eight bytes: `weft`, a version (1), the carriage (0 = opaque bytes, 1 = multiplexed
//! HTTP/2) and the target port (big-endian). It will travel inside mTLS once proxies have
//! identities; here it is what lets two proxies on one host (or in tests) talk at all.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};

pub const MAGIC: &[u8; 4] = b"weft";
pub const VERSION: u8 = 1;
pub const LEN: usize = 8;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Carriage {
    /// Opaque bytes for the target port (TCP, upgraded HTTP/1 connections).
    Opaque,
    /// HTTP requests for the target port, multiplexed over HTTP/2.
    Http2,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Header {
    pub carriage: Carriage,
    pub port: u16,
}

impl Header {
    pub fn encode(&self) -> [u8; LEN] {
        let mut out = [0u8; LEN];
        out[..4].copy_from_slice(MAGIC);
        out[4] = VERSION;
        out[5] = match self.carriage {
            Carriage::Opaque => 0,
            Carriage::Http2 => 1,
        };
        out[6..].copy_from_slice(&self.port.to_be_bytes());
        out
    }

    /// Decodes a header. `Err` carries why the bytes are not one.
    pub fn decode(bytes: &[u8]) -> Result<Header, &'static str> {
        if bytes.len() < LEN || &bytes[..4] != MAGIC {
            return Err("not a Weft transport header");
        }
        if bytes[4] != VERSION {
            return Err("unsupported transport header version");
        }
        let carriage = match bytes[5] {
            0 => Carriage::Opaque,
            1 => Carriage::Http2,
            _ => return Err("unknown carriage"),
        };
        let port = u16::from_be_bytes([bytes[6], bytes[7]]);
        if port == 0 {
            return Err("target port 0");
        }
        Ok(Header { carriage, port })
    }
}

/// What the first bytes of an inbound connection turned out to be.
pub enum Peeked {
    /// A peer proxy's header; the bytes after it (if any) are returned for replay.
    Mesh(Header, Bytes),
    /// Anything else: every byte read so far, for replay to the application.
    Other(Bytes),
}

/// Reads just enough of an inbound connection to tell a mesh peer from anything else, waiting
/// at most `wait` for the first bytes (a server-speaks-first client sends nothing).
pub async fn read_header<I: AsyncRead + Unpin>(
    io: &mut I,
    wait: Duration,
) -> std::io::Result<Peeked> {
    let mut buf = BytesMut::with_capacity(64);
    let deadline = tokio::time::Instant::now() + wait;
    while buf.len() < LEN {
        let read = tokio::time::timeout_at(deadline, io.read_buf(&mut buf)).await;
        match read {
            Ok(Ok(0)) | Err(_) => return Ok(Peeked::Other(buf.freeze())),
            Ok(Ok(_)) => {
                let n = buf.len().min(4);
                if buf[..n] != MAGIC[..n] {
                    return Ok(Peeked::Other(buf.freeze()));
                }
            }
            Ok(Err(e)) => return Err(e),
        }
    }
    let mut bytes = buf.freeze();
    match Header::decode(&bytes) {
        Ok(h) => {
            let rest = bytes.split_off(LEN);
            Ok(Peeked::Mesh(h, rest))
        }
        Err(_) => Ok(Peeked::Other(bytes)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_garbage() {
        let h = Header {
            carriage: Carriage::Http2,
            port: 8080,
        };
        assert_eq!(Header::decode(&h.encode()), Ok(h));
        assert!(Header::decode(b"GET / HT").is_err());
        let mut bad = h.encode();
        bad[5] = 9;
        assert!(Header::decode(&bad).is_err());
        bad = h.encode();
        bad[6] = 0;
        bad[7] = 0;
        assert!(Header::decode(&bad).is_err());
    }

    #[tokio::test]
    async fn reads_header_and_keeps_the_rest() {
        let mut data = Header {
            carriage: Carriage::Opaque,
            port: 9090,
        }
        .encode()
        .to_vec();
        data.extend_from_slice(b"payload");
        let mut io = &data[..];
        match read_header(&mut io, Duration::from_secs(1))
            .await
            .expect("read")
        {
            Peeked::Mesh(h, rest) => {
                assert_eq!(h.port, 9090);
                assert!(b"payload".starts_with(&rest));
            }
            Peeked::Other(_) => panic!("expected a mesh header"),
        }
        let mut plain = &b"GET / HTTP/1.1\r\n"[..];
        assert!(
            matches!(read_header(&mut plain, Duration::from_secs(1)).await, Ok(Peeked::Other(b)) if b.starts_with(b"GET"))
        );
    }
}
