//! One HTTP/1.1 exchange on an upstream connection, run inside the task of the request that
//! needs it: write the head (and body), read the response head, hand back a body that reads
//! the rest from the connection and recycles the connection when it ends.
//!
//! hyper's client runs each connection as a task of its own, fed through channels; for a
//! proxy that forwards one request at a time per connection that is most of the cost of a
//! request (see [`super`]).

use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::{Bytes, BytesMut};
use http::{Method, Request};
use http_body::{Body as _, Frame, SizeHint};
use http_body_util::BodyExt;
use tokio::net::TcpStream;

use super::decode::{Decoder, Framing};
use super::verbatim::Fields;
use super::write::{self, Sent};
use super::{encode, head, io, Error};
use crate::http::{Body, BoxError};

/// A response head larger than this is refused.
const MAX_RESPONSE_HEAD: usize = 64 * 1024;

/// An upstream connection between exchanges.
pub struct Conn {
    io: TcpStream,
    buf: BytesMut,
    /// Exchanges it carried (for a pool's `maxRequestsPerConnection`).
    pub served: u32,
    /// Its place under a connection limit, freed when the connection is dropped.
    pub lease: Option<crate::resilience::limits::Lease>,
}

impl Conn {
    pub fn new(io: TcpStream) -> Self {
        Self {
            io,
            buf: BytesMut::new(),
            served: 0,
            lease: None,
        }
    }

    /// True when the connection, idle since its last response, can carry another request.
    pub fn is_reusable(&self) -> bool {
        self.buf.is_empty() && !io::has_news(&self.io)
    }
}

/// Where a connection goes when its response has been read to the end.
pub trait Recycle: Send + Sync + Unpin + 'static {
    fn recycle(&self, conn: Conn);
}

/// A request already on the wire once, kept to be sent again on a fresh connection when the
/// first one turns out to have been closed by the server while idle. Only idempotent
/// requests without a body are kept.
pub struct Replay {
    head: Bytes,
    head_request: bool,
    form: Fields,
}

pub struct Failure {
    pub error: Error,
    pub replay: Option<Replay>,
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        Self {
            error,
            replay: None,
        }
    }
}

/// Sends `req` (origin-form: path and query; the authority stays in `Host`) and reads the
/// response head, its fields in the `form` asked for.
pub async fn send<R: Recycle>(
    mut conn: Conn,
    req: Request<Body>,
    recycle: R,
    form: Fields,
) -> Result<http::Response<Body>, Failure> {
    // `Expect` is left out of the head (see `encode::request_head`).
    let (parts, mut body) = req.into_parts();
    // An HTTP/1.0 request (restored from `weft-orig-proto`) asks for a connection of its own.
    let persistent = parts.version != http::Version::HTTP_10;
    let target = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
    let framing = encode::body_framing(
        encode::declared_length(&parts.headers),
        body.is_end_stream(),
        body.size_hint().exact(),
    );
    let mut out = write::message_buffer(&parts.headers, target.len(), framing);
    encode::request_head(
        &mut out,
        &parts.method,
        target,
        parts.version,
        &parts.headers,
        framing,
    );
    let head_request = parts.method == Method::HEAD;
    if framing == Framing::Empty {
        let head = out.freeze();
        let replay = idempotent(&parts.method).then(|| Replay {
            head: head.clone(),
            head_request,
            form,
        });
        if let Err(e) = write::write_all(&conn.io, &head).await {
            return Err(Failure {
                error: e.into(),
                replay,
            });
        }
        return receive(conn, head_request, persistent, recycle, form)
            .await
            .map_err(|error| Failure {
                replay: matches!(error, Error::NoResponse)
                    .then_some(replay)
                    .flatten(),
                error,
            });
    }
    // A final answer before the whole body is sent (a 413, say) ends the upload; interim
    // answers (100 Continue, 103 Early Hints) do not.
    let (io, buf) = (&conn.io, &mut conn.buf);
    let early = watch_for_final_answer(io, buf);
    let sent = write::write_body(&conn.io, &mut out, &mut body, framing, early).await?;
    Ok(receive(
        conn,
        head_request,
        persistent && sent == Sent::Whole,
        recycle,
        form,
    )
    .await?)
}

/// Reads what the upstream says while the request body is still going out, dropping interim
/// (1xx) answers; resolves at a final answer (left in `buf` for [`receive`]), at end of
/// stream, or on an error.
async fn watch_for_final_answer(io: &TcpStream, buf: &mut BytesMut) {
    loop {
        if io.readable().await.is_err() {
            return;
        }
        buf.reserve(4096);
        match io.try_read_buf(buf) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(_) => return,
        }
        loop {
            match head::interim_len(buf) {
                Some(Some(len)) => {
                    let _ = buf.split_to(len);
                }
                Some(None) => return,
                None => break,
            }
        }
        if buf.len() > MAX_RESPONSE_HEAD {
            return;
        }
    }
}

/// Sends a kept request again, on another connection.
pub async fn replay<R: Recycle>(
    conn: Conn,
    replay: Replay,
    recycle: R,
) -> Result<http::Response<Body>, Error> {
    write::write_all(&conn.io, &replay.head).await?;
    receive(conn, replay.head_request, true, recycle, replay.form).await
}

fn idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    )
}

/// Reads the response head (skipping interim 1xx answers) and wraps the rest as the body.
/// `reusable` is false when the request was not sent whole.
async fn receive<R: Recycle>(
    mut conn: Conn,
    head_request: bool,
    reusable: bool,
    recycle: R,
    form: Fields,
) -> Result<http::Response<Body>, Error> {
    let mut received = false;
    let head = loop {
        if !conn.buf.is_empty() {
            received = true;
            if let Some(h) = head::response(&mut conn.buf, head_request, form)? {
                if h.parts.status == http::StatusCode::SWITCHING_PROTOCOLS {
                    return Err(Error::UnexpectedUpgrade);
                }
                if h.parts.status.is_informational() {
                    continue;
                }
                break h;
            }
            if conn.buf.len() > MAX_RESPONSE_HEAD {
                return Err(Error::HeadTooLarge(MAX_RESPONSE_HEAD));
            }
        }
        match io::fill(&mut conn.io, &mut conn.buf).await {
            Ok(0) if !received => return Err(Error::NoResponse),
            Ok(0) => return Err(Error::ClosedEarly),
            Ok(_) => {}
            Err(e) if !received && is_reset(&e) => return Err(Error::NoResponse),
            Err(e) => return Err(e.into()),
        }
    };
    let decoder = Decoder::new(head.framing);
    let keep_alive = head.keep_alive && reusable;
    let body = if decoder.is_done() {
        if keep_alive && conn.buf.is_empty() {
            recycle.recycle(conn);
        }
        crate::http::empty()
    } else {
        ResponseBody {
            conn: Some(conn),
            decoder,
            keep_alive,
            recycle,
        }
        .boxed()
    };
    let mut parts = head.parts;
    if let Some(fields) = head.verbatim {
        parts.extensions.insert(fields);
    }
    Ok(http::Response::from_parts(parts, body))
}

fn is_reset(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
    )
}

/// The rest of a response, read from its connection; the connection is recycled when the
/// body ends cleanly and closed when it is dropped before that.
struct ResponseBody<R: Recycle> {
    conn: Option<Conn>,
    decoder: Decoder,
    keep_alive: bool,
    recycle: R,
}

impl<R: Recycle> ResponseBody<R> {
    fn finish(&mut self) {
        if let Some(conn) = self.conn.take() {
            if self.keep_alive && conn.buf.is_empty() {
                self.recycle.recycle(conn);
            }
        }
    }
}

impl<R: Recycle> http_body::Body for ResponseBody<R> {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        let Some(conn) = this.conn.as_mut() else {
            return Poll::Ready(None);
        };
        let polled = ready!(io::poll_body(
            &mut this.decoder,
            &mut conn.io,
            &mut conn.buf,
            cx
        ));
        match &polled {
            Some(Err(_)) => this.conn = None,
            // A body that ended with the connection was never reusable (`keep_alive` is false).
            _ if this.decoder.is_done() => this.finish(),
            _ => {}
        }
        Poll::Ready(polled.map(|r| r.map_err(Into::into)))
    }

    fn is_end_stream(&self) -> bool {
        self.conn.is_none() || self.decoder.is_done()
    }

    fn size_hint(&self) -> SizeHint {
        match self.decoder.remaining() {
            Some(n) => SizeHint::with_exact(n),
            None => SizeHint::default(),
        }
    }
}
