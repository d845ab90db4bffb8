//! Reading from a stream straight into a `BytesMut` (no zeroing, no intermediate buffer).

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::{Bytes, BytesMut};
use http_body::Frame;
use tokio::io::AsyncRead;
use tokio::net::TcpStream;

use super::decode::{Decoded, Decoder};
use super::Error;

/// Room made in the buffer before each read.
const READ_CHUNK: usize = 16 * 1024;

/// Reads what the stream has into `buf`; `Ok(0)` is end of stream. A short read tells the
/// runtime the socket is drained, so the next poll waits for the kernel instead of trying
/// again with a system call.
pub fn poll_fill<R: AsyncRead + Unpin>(
    io: &mut R,
    buf: &mut BytesMut,
    cx: &mut Context<'_>,
) -> Poll<io::Result<usize>> {
    if buf.capacity() - buf.len() < READ_CHUNK / 4 {
        buf.reserve(READ_CHUNK);
    }
    tokio_util::io::poll_read_buf(Pin::new(io), cx, buf)
}

pub async fn fill<R: AsyncRead + Unpin>(io: &mut R, buf: &mut BytesMut) -> io::Result<usize> {
    std::future::poll_fn(|cx| poll_fill(io, buf, cx)).await
}

/// The next frame of a body read from `io` through `decoder`: decodes what `buf` holds and
/// reads more when it needs to. `Ready(None)` is the end of the body (for a body delimited by
/// the connection closing, end of stream); a stream that ends early is an error.
pub fn poll_body<R: AsyncRead + Unpin>(
    decoder: &mut Decoder,
    io: &mut R,
    buf: &mut BytesMut,
    cx: &mut Context<'_>,
) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
    loop {
        match decoder.decode(buf) {
            Ok(Decoded::Frame(frame)) => return Poll::Ready(Some(Ok(frame))),
            Ok(Decoded::End) => return Poll::Ready(None),
            Ok(Decoded::NeedMore) => {}
            Err(e) => return Poll::Ready(Some(Err(e))),
        }
        match ready!(poll_fill(io, buf, cx)) {
            Ok(0) => return Poll::Ready(decoder.on_eof().err().map(Err)),
            Ok(_) => {}
            Err(e) => return Poll::Ready(Some(Err(e.into()))),
        }
    }
}

/// True when an idle connection has something to say — data nobody asked for, or end of
/// stream — and so cannot carry another request. Costs a system call only when the runtime
/// saw the socket become readable.
pub fn has_news(io: &TcpStream) -> bool {
    let mut cx = Context::from_waker(std::task::Waker::noop());
    if io.poll_read_ready(&mut cx).is_pending() {
        return false;
    }
    let mut probe = [0u8; 1];
    !matches!(io.try_read(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
}
