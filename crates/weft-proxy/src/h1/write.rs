//! Writing a message out: the head and whatever body frames are ready go in one write; the
//! body follows in its framing (a declared length, checked, or chunks with trailers).
//!
//! Writes go through `&self` (`try_write` plus `writable`), so that the client can watch the
//! same socket for an early answer while it sends.

use std::future::Future;
use std::io;

use bytes::BytesMut;
use futures_util::FutureExt;
use http_body_util::BodyExt;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::TcpStream;

use super::decode::Framing;
use super::{encode, Error};
use crate::http::Body;

/// Body bytes gathered behind the head before writing.
const COALESCE: usize = 16 * 1024;

pub trait TryWrite {
    fn try_write(&self, buf: &[u8]) -> io::Result<usize>;
    fn writable(&self) -> impl Future<Output = io::Result<()>>;
}

impl TryWrite for TcpStream {
    fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        TcpStream::try_write(self, buf)
    }
    fn writable(&self) -> impl Future<Output = io::Result<()>> {
        TcpStream::writable(self)
    }
}

impl TryWrite for OwnedWriteHalf {
    fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        OwnedWriteHalf::try_write(self, buf)
    }
    fn writable(&self) -> impl Future<Output = io::Result<()>> {
        OwnedWriteHalf::writable(self)
    }
}

/// An empty buffer with room for a head with these fields and `extra` bytes more (a request
/// target, verbatim fields) and, when the body is small and of known size, the body too, so
/// that both go out in one write without the buffer growing.
pub fn message_buffer(headers: &http::HeaderMap, extra: usize, framing: Framing) -> BytesMut {
    let inline = match framing {
        Framing::Length(n) if n <= COALESCE as u64 => n as usize,
        _ => 0,
    };
    BytesMut::with_capacity(encode::head_capacity(headers, extra) + inline)
}

/// Writes all of `data`.
pub async fn write_all(io: &impl TryWrite, mut data: &[u8]) -> io::Result<()> {
    while !data.is_empty() {
        match io.try_write(data) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => data = &data[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => io.writable().await?,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// How sending a body ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Sent {
    Whole,
    /// `stop` fired first; what was left of the body was not sent.
    Stopped,
}

/// Writes `out` (a head, already encoded) and then `body` in `framing`. While waiting for the
/// body, `stop` is watched; when it fires, sending ends there. With [`Framing::UntilClose`]
/// nothing is framed (a body that ends with the connection).
pub async fn write_body<S: Future<Output = ()>>(
    io: &impl TryWrite,
    out: &mut BytesMut,
    body: &mut Body,
    framing: Framing,
    stop: S,
) -> Result<Sent, Error> {
    let mut stop = std::pin::pin!(stop);
    let mut left = match framing {
        Framing::Length(n) => Some(n),
        _ => None,
    };
    let chunked = framing == Framing::Chunked;
    loop {
        // Frames that are ready now go out with what is buffered; wait only after a write.
        let frame = match body.frame().now_or_never() {
            Some(f) => f,
            None => {
                write_all(io, out).await?;
                out.clear();
                tokio::select! {
                    biased;
                    () = &mut stop => return Ok(Sent::Stopped),
                    f = body.frame() => f,
                }
            }
        };
        match frame {
            None => break,
            Some(Err(e)) => return Err(Error::Body(e)),
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) if data.is_empty() => continue,
                Ok(data) => {
                    if let Some(n) = left.as_mut() {
                        *n = n
                            .checked_sub(data.len() as u64)
                            .ok_or(Error::LengthMismatch)?;
                    } else if chunked {
                        encode::chunk_start(out, data.len());
                    }
                    out.extend_from_slice(&data);
                    if chunked {
                        out.extend_from_slice(b"\r\n");
                    }
                }
                Err(frame) => {
                    if chunked {
                        encode::chunked_end(out, frame.trailers_ref());
                        write_all(io, out).await?;
                        return Ok(Sent::Whole);
                    }
                    // Trailers have no place in a body framed by its length; they are dropped.
                }
            },
        }
        if out.len() >= COALESCE {
            write_all(io, out).await?;
            out.clear();
        }
    }
    if chunked {
        encode::chunked_end(out, None);
    } else if left.unwrap_or(0) != 0 {
        return Err(Error::LengthMismatch);
    }
    write_all(io, out).await?;
    Ok(Sent::Whole)
}
