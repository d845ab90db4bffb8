//! The control plane's gRPC listener: TLS 1.3 and HTTP/2, with the xDS and Identity services
//! routed by path.
//!
//! A client certificate is optional at the TLS layer: a proxy's first certificate request
//! comes before it has one (it proves itself with a join token instead). Each service then
//! decides: xDS requires the certificate, Identity requires the certificate or a token. The
//! peer's verified SPIFFE id travels to the services as a request extension ([`Peer`]).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use futures_util::future::BoxFuture;
use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tonic::body::Body;
use tonic::codegen::Service;
use weft_identity::SpiffeId;

/// Who is on the other end of a connection, as TLS established it.
#[derive(Clone, Debug)]
pub struct Peer {
    pub addr: SocketAddr,
    /// The SPIFFE id of a verified client certificate; `None` without one.
    pub id: Option<SpiffeId>,
}

/// How long a client has to complete the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest gRPC message accepted from a client (requests are small; anything bigger is
/// malformed or hostile).
pub const MAX_REQUEST_BYTES: usize = 256 * 1024;
/// Concurrent connections beyond this are refused (each proxy needs one).
const MAX_CONNECTIONS: usize = 20_000;

pub type Grpc = Arc<
    dyn Fn(Request<Incoming>) -> BoxFuture<'static, Result<Response<Body>, Infallible>>
        + Send
        + Sync,
>;

/// Routes requests to the gRPC service whose path prefix matches.
pub fn router<A, I>(ads: A, identity: I) -> Grpc
where
    A: Service<Request<Incoming>, Response = Response<Body>, Error = Infallible>
        + Clone
        + Send
        + Sync
        + 'static,
    A::Future: Send + 'static,
    I: Service<Request<Incoming>, Response = Response<Body>, Error = Infallible>
        + Clone
        + Send
        + Sync
        + 'static,
    I::Future: Send + 'static,
{
    Arc::new(move |req: Request<Incoming>| {
        let path = req.uri().path();
        if path.starts_with("/envoy.service.discovery.v3.AggregatedDiscoveryService/") {
            let mut svc = ads.clone();
            Box::pin(svc.call(req))
        } else if path.starts_with("/weft.v1.Identity/") {
            let mut svc = identity.clone();
            Box::pin(svc.call(req))
        } else {
            let status = tonic::Status::unimplemented(format!("no such service: {path}"));
            Box::pin(async move { Ok(status.into_http()) })
        }
    })
}

/// Accepts connections until the task is dropped.
pub async fn serve(listener: TcpListener, tls: Arc<ArcSwap<rustls::ServerConfig>>, grpc: Grpc) {
    let permits = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let (tcp, addr) = match listener.accept().await {
            Ok(pair) => pair,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            tracing::warn!(client = %addr, "refusing connection: {MAX_CONNECTIONS} already open");
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = TlsAcceptor::from(tls.load_full());
        let grpc = grpc.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    tracing::warn!(client = %addr, reason = %e, "TLS handshake refused");
                    return;
                }
                Err(_) => {
                    tracing::warn!(client = %addr, "TLS handshake timed out");
                    return;
                }
            };
            let id = stream
                .get_ref()
                .1
                .peer_certificates()
                .and_then(weft_identity::peer_id);
            let peer = Peer { addr, id };
            let service = hyper::service::service_fn(move |mut req: Request<Incoming>| {
                req.extensions_mut().insert(peer.clone());
                (grpc)(req)
            });
            let result = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                .timer(TokioTimer::new())
                .keep_alive_interval(Duration::from_secs(30))
                .keep_alive_timeout(Duration::from_secs(10))
                .max_concurrent_streams(64)
                .serve_connection(TokioIo::new(stream), service)
                .await;
            if let Err(e) = result {
                tracing::debug!(client = %addr, error = %e, "control connection ended");
            }
        });
    }
}
