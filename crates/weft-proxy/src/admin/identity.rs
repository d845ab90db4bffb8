//! Admin callers who prove a SPIFFE identity instead of sending the admin token: the admin
//! port also speaks mutual TLS (told apart from plaintext HTTP by the first byte, a TLS
//! handshake record), with this proxy's own certificate, requiring a client certificate from
//! the mesh's trust domain. What that identity may do is MeshConfig `admin`'s rules, evaluated
//! as an AuthorizationPolicy ALLOW policy over the admin request.

use std::net::SocketAddr;
use std::time::Duration;

use http::Request;
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;
use weft_api::view::authz::AuthzPolicyView;
use weft_identity::SpiffeId;
use weft_policy::{Authorizer, ConnectionAttrs, PeerAttrs, RequestAttrs};

use crate::mesh::MeshTls;

/// How long a client has to start and finish its handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// The first byte of a TLS handshake record.
const TLS_HANDSHAKE: u8 = 0x16;

/// An accepted admin connection.
pub enum Accepted {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>, SpiffeId),
}

/// Whether `peer` is the mesh's control plane (`ns/weft-system/sa/weft-control` of this trust
/// domain). It may read what the admin token may: every replica proves it with its
/// certificate, while each replica has a token of its own, and the CA never certifies that
/// identity for a workload.
pub fn is_control_plane(peer: &SpiffeId, trust_domain: &str) -> bool {
    peer.trust_domain() == trust_domain
        && peer.namespace() == weft_proto::types::CONTROL_NAMESPACE
        && peer.service_account() == weft_proto::types::CONTROL_SERVICE_ACCOUNT
}

/// Plaintext as it is, or the TLS handshake done and the client's identity proved.
pub async fn accept(
    stream: TcpStream,
    tls: &MeshTls,
    trust_domain: &str,
) -> Result<Accepted, String> {
    let mut first = [0u8; 1];
    let peeked = tokio::time::timeout(HANDSHAKE_TIMEOUT, stream.peek(&mut first)).await;
    match peeked {
        Ok(Ok(1)) if first[0] == TLS_HANDSHAKE => {}
        Ok(Ok(_)) => return Ok(Accepted::Plain(stream)),
        Ok(Err(e)) => return Err(e.to_string()),
        Err(_) => return Err("no request within 5s".into()),
    }
    let current = tls.current().ok_or(
        "mutual TLS to the admin port needs the proxy's certificate, which it does not have yet",
    )?;
    let config = weft_identity::server_config(&current.creds, trust_domain, &[b"http/1.1"])
        .map_err(|e| e.to_string())?;
    let handshake = tokio_rustls::TlsAcceptor::from(config).accept(stream);
    let tls = tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake)
        .await
        .map_err(|_| "TLS handshake did not finish within 5s".to_string())?
        .map_err(|e| format!("TLS handshake: {e}"))?;
    let peer = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(weft_identity::peer_id)
        .ok_or("the client certificate names no SPIFFE id")?;
    Ok(Accepted::Tls(Box::new(tls), peer))
}

/// Whether MeshConfig `admin` (`policy`) allows `peer` this admin request.
pub fn allowed<B>(
    policy: Option<&AuthzPolicyView>,
    peer: &SpiffeId,
    client: SocketAddr,
    local: SocketAddr,
    req: &Request<B>,
) -> bool {
    let Some(policy) = policy else {
        return false;
    };
    let authorizer = Authorizer::new(vec![policy.clone()]);
    let conn = ConnectionAttrs {
        peer: PeerAttrs::from_spiffe(&peer.to_string()),
        source_ip: client.ip(),
        destination_ip: local.ip(),
        destination_port: local.port(),
        sni: None,
    };
    let host = req
        .headers()
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let attrs = RequestAttrs {
        method: req.method().as_str(),
        host,
        path: req.uri().path(),
        headers: req.headers(),
        auth: None,
    };
    authorizer.decide(&conn, Some(&attrs)).allowed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_control_plane_of_this_trust_domain_is_the_control_plane() {
        let id = |td, ns, sa| SpiffeId::new(td, ns, sa).expect("id");
        let control = id("cluster.local", "weft-system", "weft-control");
        assert!(is_control_plane(&control, "cluster.local"));
        assert!(!is_control_plane(&control, "other.local"));
        assert!(!is_control_plane(
            &id("cluster.local", "weft-system", "default"),
            "cluster.local"
        ));
        assert!(!is_control_plane(
            &id("cluster.local", "default", "weft-control"),
            "cluster.local"
        ));
    }
}
