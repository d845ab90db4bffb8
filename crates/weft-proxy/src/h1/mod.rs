//! Weft's own HTTP/1.1 codec for the request path: parse with `httparse`, forward in the
//! connection's own task, write each message in as few writes as possible.
//!
//! hyper remains the HTTP/2 stack and the fallback for HTTP/1 requests this codec leaves alone
//! (upgrades, `CONNECT`, `Expect`, HTTP/1.0, malformed input — see [`head::Parsed::Unusual`]).
//! Why a codec of our own: the CPU target. Under callgrind a proxied HTTP/1 request
//! cost 34,000 instructions through hyper's server and client (its client runs every
//! connection as a separate task fed by channels), against 21,000 for nginx; see the README's
//! benchmark section for the measurements before and after.
//!
//! - [`client`]: one exchange on a pooled upstream connection;
//! - [`server`]: a client connection's request loop;
//! - [`head`], [`decode`], [`encode`]: heads and body framing; [`io`]: reads into buffers;
//! - [`verbatim`]: response fields passed from an HTTP/1 upstream to an HTTP/1 client as bytes.

pub mod body;
pub mod client;
pub mod decode;
pub mod encode;
pub mod head;
pub mod io;
pub mod names;
pub mod server;
pub mod verbatim;
pub mod write;

use crate::http::BoxError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("the connection closed before a response arrived")]
    NoResponse,
    #[error("the connection closed in the middle of a message")]
    ClosedEarly,
    #[error("malformed message head: {0}")]
    Head(String),
    #[error("message head larger than {0} bytes")]
    HeadTooLarge(usize),
    #[error("malformed chunked body: {0}")]
    Chunk(&'static str),
    #[error("reading the request body: {0}")]
    Body(#[source] BoxError),
    #[error("the body did not match its Content-Length")]
    LengthMismatch,
    #[error("the upstream switched protocols without being asked")]
    UnexpectedUpgrade,
}

#[cfg(test)]
mod client_tests;
#[cfg(test)]
mod server_tests;
#[cfg(test)]
mod verbatim_tests;
