//! How the control plane reaches etcd: one gRPC channel whose connector dials the
//! configured members in turn, over plain TCP or TLS 1.3 with Weft's own rustls.
//!
//! Why not etcd-client's TLS: its TLS feature turns on tonic's TLS stack, which turns on
//! TLS 1.2 and logging in rustls for the whole binary, proxy included. That made every
//! proxied request measurably dearer (instruction counts, README "Resilience") for a
//! feature only the control plane uses. Dialling here keeps one rustls configuration
//! for the binary and lets the connector fail over: when the connection to one member
//! breaks, tonic reconnects on the next request and the connector starts at the next
//! member.

use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::Uri;
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::{EtcdError, EtcdTls};

/// etcd's client port, for endpoints written without one.
const DEFAULT_PORT: u16 = 2379;
/// How long one member may take to accept TCP and finish the TLS handshake.
const DIAL_TIMEOUT: Duration = Duration::from_secs(3);

/// One etcd member as dialled.
#[derive(Debug)]
struct Member {
    host: String,
    port: u16,
    /// The name the member's certificate must carry (its DNS name or IP address).
    server_name: ServerName<'static>,
}

/// A tower `Service<Uri>` for tonic's `connect_with_connector_lazy`: the URI tonic passes
/// is ignored; the members are dialled in turn, starting after the one used last.
#[derive(Clone)]
pub(super) struct Dialer {
    members: Arc<[Member]>,
    tls: Option<TlsConnector>,
    next: Arc<AtomicUsize>,
}

/// A byte stream to a member, plain or TLS.
pub(super) trait Stream: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Stream for T {}

impl Dialer {
    /// Parses the endpoints (`http://host:port`, `https://host:port`, or `host:port`) and
    /// reads the TLS files. TLS is used exactly when a CA is given; `https` endpoints
    /// without one, or `http` endpoints with one, are refused rather than guessed at.
    pub(super) fn new(endpoints: &[String], tls: Option<&EtcdTls>) -> Result<Self, EtcdError> {
        if endpoints.is_empty() {
            return Err(EtcdError::Value("no etcd endpoints".into()));
        }
        let members = endpoints
            .iter()
            .map(|endpoint| parse_member(endpoint, tls.is_some()))
            .collect::<Result<Vec<_>, _>>()?;
        let tls = tls.map(tls_connector).transpose()?;
        Ok(Dialer {
            members: members.into(),
            tls,
            next: Arc::new(AtomicUsize::new(0)),
        })
    }

    async fn dial(self) -> io::Result<TokioIo<Box<dyn Stream>>> {
        let count = self.members.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let mut last_error = None;
        for offset in 0..count {
            let member = &self.members[(start + offset) % count];
            match tokio::time::timeout(DIAL_TIMEOUT, self.dial_member(member)).await {
                Ok(Ok(stream)) => {
                    // The next reconnect (this connection broke) tries the member after.
                    self.next.store(start + offset + 1, Ordering::Relaxed);
                    return Ok(TokioIo::new(stream));
                }
                Ok(Err(e)) => {
                    tracing::debug!(member = %member.host, port = member.port, error = %e, "etcd member unreachable");
                    last_error = Some(e);
                }
                Err(_) => {
                    tracing::debug!(member = %member.host, port = member.port, "etcd member did not answer in time");
                    last_error = Some(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!(
                            "{}:{} did not answer within {DIAL_TIMEOUT:?}",
                            member.host, member.port
                        ),
                    ));
                }
            }
        }
        Err(last_error.unwrap_or_else(|| io::Error::other("no etcd endpoints")))
    }

    async fn dial_member(&self, member: &Member) -> io::Result<Box<dyn Stream>> {
        let tcp = TcpStream::connect((member.host.as_str(), member.port)).await?;
        tcp.set_nodelay(true)?;
        match &self.tls {
            None => Ok(Box::new(tcp)),
            Some(tls) => {
                let stream = tls.connect(member.server_name.clone(), tcp).await?;
                Ok(Box::new(stream))
            }
        }
    }
}

impl tonic::codegen::Service<Uri> for Dialer {
    type Response = TokioIo<Box<dyn Stream>>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<Self::Response>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Uri) -> Self::Future {
        Box::pin(self.clone().dial())
    }
}

fn parse_member(endpoint: &str, tls: bool) -> Result<Member, EtcdError> {
    let bad = |why: &str| EtcdError::Value(format!("etcd endpoint {endpoint:?}: {why}"));
    let with_scheme = if endpoint.contains("://") {
        endpoint.to_string()
    } else if tls {
        format!("https://{endpoint}")
    } else {
        format!("http://{endpoint}")
    };
    let uri: Uri = with_scheme.parse().map_err(|_| bad("not a URL"))?;
    match (uri.scheme_str(), tls) {
        (Some("http"), false) | (Some("https"), true) => {}
        (Some("https"), false) => {
            return Err(bad(
                "https needs --etcd-ca (the CA that signed etcd's certificate)",
            ))
        }
        (Some("http"), true) => {
            return Err(bad(
                "plain http, but --etcd-ca asks for TLS; write https://",
            ))
        }
        _ => return Err(bad("the scheme must be http or https")),
    }
    if !matches!(uri.path(), "" | "/") {
        return Err(bad("a path is not expected"));
    }
    let host = uri.host().ok_or_else(|| bad("no host"))?;
    // `[::1]` in a URL is `::1` to connect to and to match a certificate's IP SAN against.
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let server_name =
        ServerName::try_from(host.clone()).map_err(|_| bad("not a DNS name or IP address"))?;
    Ok(Member {
        port: uri.port_u16().unwrap_or(DEFAULT_PORT),
        host,
        server_name,
    })
}

/// TLS 1.3 only (etcd's Go TLS offers it), the server verified against the given CA by
/// name, ALPN `h2` (gRPC servers refuse TLS without it), and the client certificate if
/// one is given.
fn tls_connector(tls: &EtcdTls) -> Result<TlsConnector, EtcdError> {
    let file_error = |path: &Path, why: String| EtcdError::TlsFile {
        path: path.to_path_buf(),
        source: io::Error::new(io::ErrorKind::InvalidData, why),
    };
    let mut roots = RootCertStore::empty();
    for cert in read_certs(&tls.ca)? {
        roots
            .add(cert)
            .map_err(|e| file_error(&tls.ca, format!("not a usable CA certificate: {e}")))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| EtcdError::Value(format!("etcd TLS: {e}")))?
        .with_root_certificates(roots);
    let mut config = match (&tls.cert, &tls.key) {
        (Some(cert), Some(key)) => {
            let chain = read_certs(cert)?;
            let key_der = std::fs::read(key).map_err(|source| EtcdError::TlsFile {
                path: key.clone(),
                source,
            })?;
            let private = PrivateKeyDer::from_pem_slice(&key_der)
                .map_err(|e| file_error(key, format!("no PEM private key: {e}")))?;
            builder.with_client_auth_cert(chain, private).map_err(|e| {
                file_error(cert, format!("certificate and key do not go together: {e}"))
            })?
        }
        (None, None) => builder.with_no_client_auth(),
        _ => {
            return Err(EtcdError::Value(
                "--etcd-cert and --etcd-key go together (the client certificate and its key)"
                    .into(),
            ))
        }
    };
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(TlsConnector::from(Arc::new(config)))
}

fn read_certs(path: &PathBuf) -> Result<Vec<CertificateDer<'static>>, EtcdError> {
    let bad = |source: io::Error| EtcdError::TlsFile {
        path: path.clone(),
        source,
    };
    let pem = std::fs::read_to_string(path).map_err(bad)?;
    weft_identity::parse_pem_certs(&pem)
        .map_err(|e| bad(io::Error::new(io::ErrorKind::InvalidData, e.to_string())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_parse_with_and_without_scheme() {
        let m = parse_member("http://127.0.0.1:2379", false).unwrap();
        assert_eq!((m.host.as_str(), m.port), ("127.0.0.1", 2379));
        let m = parse_member("etcd-0.example:12379", false).unwrap();
        assert_eq!((m.host.as_str(), m.port), ("etcd-0.example", 12379));
        let m = parse_member("https://[::1]", true).unwrap();
        assert_eq!((m.host.as_str(), m.port), ("::1", DEFAULT_PORT));
        assert!(matches!(m.server_name, ServerName::IpAddress(_)));
    }

    #[test]
    fn scheme_and_tls_must_agree() {
        let err = parse_member("https://10.0.0.1:2379", false)
            .unwrap_err()
            .to_string();
        assert!(err.contains("--etcd-ca"), "{err}");
        let err = parse_member("http://10.0.0.1:2379", true)
            .unwrap_err()
            .to_string();
        assert!(err.contains("https://"), "{err}");
        assert!(parse_member("unix:///run/etcd.sock", false).is_err());
        assert!(parse_member("http://10.0.0.1:2379/v3", false).is_err());
    }

    #[test]
    fn a_missing_ca_file_is_named() {
        let tls = EtcdTls {
            ca: "/nonexistent/etcd-ca.pem".into(),
            cert: None,
            key: None,
        };
        let err = Dialer::new(&["https://127.0.0.1:2379".into()], Some(&tls))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("/nonexistent/etcd-ca.pem"), "{err}");
    }

    #[tokio::test]
    async fn dialling_fails_over_to_the_next_member() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let live = listener.local_addr().unwrap();
        // A port nothing listens on: bind, note it, close.
        let dead = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        };
        let dialer =
            Dialer::new(&[format!("http://{dead}"), format!("http://{live}")], None).unwrap();
        let accept = tokio::spawn(async move { listener.accept().await.map(|(_, peer)| peer) });
        assert!(dialer.clone().dial().await.is_ok());
        assert!(accept.await.unwrap().is_ok());
        // The next dial starts after the member that answered: the dead one, then the live one.
        assert_eq!(dialer.next.load(Ordering::Relaxed) % 2, 0);
    }
}
