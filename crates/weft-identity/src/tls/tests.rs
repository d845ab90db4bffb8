//! Real TLS handshakes over in-memory pipes, for every way a peer must be refused.
//!
//! Each test runs a full tokio-rustls handshake plus one request/response exchange, because
//! in TLS 1.3 a client finishes its half of the handshake before the server has judged the
//! client's certificate: a refused client only learns about it on its first read.

use std::io;
use std::sync::Arc;

use rustls::{ClientConfig, ServerConfig};
use rustls_pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::{TlsAcceptor, TlsConnector};

use super::client::SpiffeServerVerifier;
use crate::test_util::{id, Pki, TempDir};
use crate::{
    client_config, peer_id, rejection_reason, rustls_error, server_config, Credentials,
    ExpectedPeer, PeerCertError, SpiffeId,
};

const ALPN: &[&[u8]] = &[b"weft/1"];

/// What each side saw: the peer's id on success.
struct Outcome {
    client: io::Result<Option<SpiffeId>>,
    server: io::Result<Option<SpiffeId>>,
}

impl Outcome {
    fn client_reason(&self) -> Option<&PeerCertError> {
        reason(&self.client)
    }

    fn server_reason(&self) -> Option<&PeerCertError> {
        reason(&self.server)
    }

    fn server_rustls_error(&self) -> Option<&rustls::Error> {
        self.server.as_ref().err().and_then(rustls_error)
    }
}

fn reason(r: &io::Result<Option<SpiffeId>>) -> Option<&PeerCertError> {
    r.as_ref()
        .err()
        .and_then(rustls_error)
        .and_then(rejection_reason)
}

async fn handshake(server: Arc<ServerConfig>, client: Arc<ClientConfig>) -> Outcome {
    let (client_io, server_io) = tokio::io::duplex(64 * 1024);
    let server = async move {
        let mut tls = TlsAcceptor::from(server).accept(server_io).await?;
        let mut buf = [0u8; 4];
        tls.read_exact(&mut buf).await?;
        tls.write_all(b"pong").await?;
        tls.flush().await?;
        let (_, conn) = tls.get_ref();
        assert_eq!(conn.alpn_protocol(), Some(&b"weft/1"[..]));
        Ok(conn.peer_certificates().and_then(peer_id))
    };
    let client = async move {
        // Any fixed name: SPIFFE verification ignores it.
        let name = ServerName::try_from("weft.mesh").map_err(io::Error::other)?;
        let mut tls = TlsConnector::from(client).connect(name, client_io).await?;
        tls.write_all(b"ping").await?;
        tls.flush().await?;
        let mut buf = [0u8; 4];
        tls.read_exact(&mut buf).await?;
        let (_, conn) = tls.get_ref();
        Ok(conn.peer_certificates().and_then(peer_id))
    };
    let (client, server) = tokio::join!(client, server);
    Outcome { client, server }
}

fn serve(creds: &Credentials) -> Arc<ServerConfig> {
    server_config(creds, creds.id.trust_domain(), ALPN).unwrap()
}

fn dial(creds: &Credentials, expected: &SpiffeId) -> Arc<ClientConfig> {
    client_config(creds, ExpectedPeer::Exactly(expected.clone()), ALPN).unwrap()
}

#[tokio::test]
async fn mutual_tls_succeeds_with_correct_identities() {
    let pki = Pki::new("cluster.local");
    let (web, db) = (
        id("cluster.local", "shop", "web"),
        id("cluster.local", "shop", "db"),
    );
    let server = pki.creds(&db);
    let client = pki.creds(&web);
    let out = handshake(serve(&server), dial(&client, &db)).await;
    assert_eq!(out.server.unwrap(), Some(web.clone()));
    assert_eq!(out.client.unwrap(), Some(db));

    // The trust-domain form accepts any server of the domain.
    let any = client_config(
        &client,
        ExpectedPeer::TrustDomain("cluster.local".into()),
        ALPN,
    );
    let out = handshake(serve(&server), any.unwrap()).await;
    assert_eq!(out.server.unwrap(), Some(web));
    assert!(out.client.is_ok());
}

#[tokio::test]
async fn client_without_certificate_is_refused() {
    let pki = Pki::new("td");
    let server = pki.creds(&id("td", "ns", "server"));
    let verifier = SpiffeServerVerifier::new(
        &server.trust_bundle,
        ExpectedPeer::Exactly(server.id.clone()),
    )
    .unwrap();
    let anonymous =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_protocol_versions(&[&rustls::version::TLS13])
            .unwrap()
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth();
    let mut anonymous = anonymous;
    anonymous.alpn_protocols = vec![b"weft/1".to_vec()];

    let out = handshake(serve(&server), Arc::new(anonymous)).await;
    assert!(
        matches!(
            out.server_rustls_error(),
            Some(rustls::Error::NoCertificatesPresented)
        ),
        "{:?}",
        out.server.err()
    );
    assert!(out.client.is_err());
}

#[tokio::test]
async fn client_from_another_ca_is_refused() {
    let (ours, theirs) = (Pki::new("td"), Pki::new("td"));
    let server = ours.creds(&id("td", "ns", "server"));
    let mut intruder = theirs.creds(&id("td", "ns", "client"));
    // The intruder trusts our server, so it is the server's judgment being tested.
    intruder.trust_bundle = server.trust_bundle.clone();
    let out = handshake(serve(&server), dial(&intruder, &server.id)).await;
    assert_eq!(out.server_reason(), Some(&PeerCertError::UnknownIssuer));
    let line = out.server.unwrap_err().to_string();
    assert!(line.contains("not signed by this mesh's CA"), "{line}");
    assert!(out.client.is_err());
}

#[tokio::test]
async fn expired_client_certificate_is_refused() {
    let pki = Pki::new("td");
    let server = pki.creds(&id("td", "ns", "server"));
    let stale = pki.expired_creds(&id("td", "ns", "client"));
    let out = handshake(serve(&server), dial(&stale, &server.id)).await;
    assert!(
        matches!(out.server_reason(), Some(PeerCertError::Expired { .. })),
        "{:?}",
        out.server.err()
    );
    assert!(out.client.is_err());
}

#[tokio::test]
async fn client_refuses_server_with_the_wrong_id() {
    let pki = Pki::new("td");
    let impostor = pki.creds(&id("td", "ns", "impostor"));
    let client = pki.creds(&id("td", "ns", "client"));
    let wanted = id("td", "ns", "payments");
    let out = handshake(serve(&impostor), dial(&client, &wanted)).await;
    assert_eq!(
        out.client_reason(),
        Some(&PeerCertError::WrongId {
            presented: impostor.id.clone(),
            expected: wanted,
        })
    );
    let line = out.client.unwrap_err().to_string();
    assert!(
        line.contains(
            "peer presented spiffe://td/ns/ns/sa/impostor, expected spiffe://td/ns/ns/sa/payments"
        ),
        "{line}"
    );
    assert!(
        out.server.is_err(),
        "the server must see the handshake fail"
    );
}

#[tokio::test]
async fn client_refuses_server_from_another_ca_or_expired() {
    let (ours, theirs) = (Pki::new("td"), Pki::new("td"));
    let client = ours.creds(&id("td", "ns", "client"));
    let stranger = theirs.creds(&id("td", "ns", "server"));
    let out = handshake(serve(&stranger), dial(&client, &stranger.id)).await;
    assert_eq!(out.client_reason(), Some(&PeerCertError::UnknownIssuer));

    let stale = ours.expired_creds(&id("td", "ns", "server"));
    let out = handshake(serve(&stale), dial(&client, &stale.id)).await;
    assert!(matches!(
        out.client_reason(),
        Some(PeerCertError::Expired { .. })
    ));
}

#[tokio::test]
async fn wrong_trust_domain_is_refused_in_both_directions() {
    // Two meshes whose bundles trust each other's roots: chains verify, domains differ.
    let (a, b) = (Pki::new("a.example"), Pki::new("b.example"));
    let bundle = [a.ca.trust_bundle(), b.ca.trust_bundle()].concat();
    let mut server = a.creds(&id("a.example", "ns", "server"));
    let mut client = b.creds(&id("b.example", "ns", "client"));
    server.trust_bundle = bundle.clone();
    client.trust_bundle = bundle;

    let out = handshake(serve(&server), dial(&client, &server.id)).await;
    assert_eq!(
        out.server_reason(),
        Some(&PeerCertError::WrongTrustDomain {
            presented: client.id.clone(),
            expected: "a.example".into(),
        })
    );
    assert!(out.client.is_err());

    // The client side, with a server config that would accept the client.
    let lenient = server_config(&server, "b.example", ALPN).unwrap();
    let expect_b = ExpectedPeer::TrustDomain("b.example".into());
    let out = handshake(lenient, client_config(&client, expect_b, ALPN).unwrap()).await;
    assert_eq!(
        out.client_reason(),
        Some(&PeerCertError::WrongTrustDomain {
            presented: server.id.clone(),
            expected: "b.example".into(),
        })
    );
    assert!(out.server.is_err());
}

#[tokio::test]
async fn configs_refuse_unusable_credentials() {
    let pki = Pki::new("td");
    let mut creds = pki.creds(&id("td", "ns", "sa"));
    assert!(server_config(&creds, "Not A Domain", ALPN).is_err());
    let bad = ExpectedPeer::TrustDomain(String::new());
    assert!(client_config(&creds, bad, ALPN).is_err());

    let other = pki.creds(&id("td", "ns", "other"));
    let mismatched = Credentials {
        key: other.key.clone_key(),
        ..creds.clone()
    };
    assert!(matches!(
        server_config(&mismatched, "td", ALPN),
        Err(crate::TlsError::Identity(_))
    ));

    creds.trust_bundle.clear();
    assert!(matches!(
        server_config(&creds, "td", ALPN),
        Err(crate::TlsError::EmptyTrustBundle)
    ));
}

#[tokio::test]
async fn handshakes_work_across_a_root_rotation() {
    let tmp = TempDir::new("tls-rotation");
    let mut pki = Pki::new("td");
    let mut old = pki.creds(&id("td", "ns", "old"));
    pki.ca.rotate(&tmp.0).unwrap();
    let mut new = pki.creds(&id("td", "ns", "new"));
    assert_eq!(new.trust_bundle.len(), 2);

    // Once the old workload has fetched the two-root bundle, old and new certificates
    // authenticate each other in both directions.
    old.trust_bundle = new.trust_bundle.clone();
    let out = handshake(serve(&new), dial(&old, &new.id)).await;
    assert_eq!(out.server.unwrap(), Some(old.id.clone()));
    let out = handshake(serve(&old), dial(&new, &old.id)).await;
    assert_eq!(out.server.unwrap(), Some(new.id.clone()));

    // After the rotation is finished, a certificate from the old root is refused.
    pki.ca.finish_rotation(&tmp.0).unwrap();
    new.trust_bundle = pki.ca.trust_bundle();
    let out = handshake(serve(&new), dial(&old, &new.id)).await;
    assert_eq!(out.server_reason(), Some(&PeerCertError::UnknownIssuer));
}
