//! Socket-level helpers: original destination, the mesh transport header, and a stream that
//! replays bytes already read during protocol detection.

pub mod orig_dst;
pub mod prefixed;
pub mod transport;

pub use prefixed::PrefixedIo;

/// Sets TCP_NODELAY: a proxy must not add Nagle delay to small writes.
pub fn tune(stream: &tokio::net::TcpStream) {
    let _ = stream.set_nodelay(true);
}
