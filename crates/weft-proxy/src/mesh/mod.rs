//! The proxy's mesh identity and the connections it makes to peer proxies.
//!
//! - [`tls`]: the current credentials (certificate, key, trust bundle) and the rustls
//!   configurations built from them, swapped whole on renewal or a bundle change;
//! - [`stream`]: a connection to a peer proxy, plaintext or mutual TLS, opened with the
//!   transport header, directly or through the peer host's tunnel;
//! - [`hbone`]: the tunnel between hosts, HTTP/2 `CONNECT` over mutual TLS.

pub mod hbone;
pub mod stream;
pub mod tls;

pub use stream::{dial_peer, MeshStream, PeerTarget};
pub use tls::MeshTls;
