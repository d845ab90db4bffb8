//! `weft-echo`: the echo server Weft's tests, examples and benchmarks run behind
//! the mesh. It answers like the Kubernetes Gateway API conformance
//! "echo-basic" server, so harnesses written for that server read its answers.
//!
//! * HTTP ports accept HTTP/1.1 and HTTP/2 prior knowledge (h2c) on the same
//!   port. `/health` answers `OK`, `/status/NNN` answers that status, and every
//!   other path answers a JSON [`EchoResponse`] describing the request
//!   (`?delay=100ms` waits first; `X-Echo-Set-Header: Name: value` sets
//!   response headers). HTTP/1.1 upgrades (WebSocket or any other token) get a
//!   `101` and a raw byte echo. gRPC calls (`content-type: application/grpc`)
//!   to `GrpcEcho/Echo` and `GrpcEcho/EchoTwo` answer a [`grpc::EchoResponse`].
//! * TCP ports echo bytes back until the client closes its side.
//!
//! ```no_run
//! # async fn run() -> Result<(), weft_echo::EchoError> {
//! let config = weft_echo::EchoConfig {
//!     identity: weft_echo::Identity { namespace: "default".into(), service: "echo".into(), pod: "echo-0".into() },
//!     http: vec![std::net::SocketAddr::from(([127, 0, 0, 1], 0))],
//!     tcp: vec![],
//!     chaos: Default::default(),
//! };
//! let bound = weft_echo::bind(config).await?;
//! println!("serving HTTP on {:?}", bound.http_addrs());
//! bound.serve(async { let _ = tokio::signal::ctrl_c().await; }).await;
//! # Ok(()) }
//! ```

mod answer;
mod body;
pub mod chaos;
pub mod demo;
mod duration;
pub mod grpc;
mod grpc_server;
mod http_server;
mod shutdown;
mod tcp;
mod upgrade;
mod ws_accept;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

pub use crate::answer::EchoResponse;
pub use crate::chaos::ChaosConfig;
pub use crate::http_server::BODY_BYTES_HEADER;
use crate::shutdown::{Controller, Shutdown};

/// How long in-flight requests may run once shutdown starts.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Who this echo server says it is (echoed in every answer).
#[derive(Clone, Debug, Default)]
pub struct Identity {
    pub namespace: String,
    pub service: String,
    pub pod: String,
}

/// What to serve where.
#[derive(Clone, Debug)]
pub struct EchoConfig {
    pub identity: Identity,
    /// Ports served as HTTP: each accepts HTTP/1.1 and HTTP/2 prior knowledge
    /// (h2c), and gRPC over either.
    pub http: Vec<SocketAddr>,
    /// Ports served as raw TCP echo (bytes written back as they arrive).
    pub tcp: Vec<SocketAddr>,
    /// Misbehaviour on request (the chaos benchmark) and the idle timeout of connections.
    pub chaos: ChaosConfig,
}

/// Why the echo server could not start.
#[derive(Debug, thiserror::Error)]
pub enum EchoError {
    /// A listener could not be bound (address in use, not local, no permission).
    #[error("echo server cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// Every listener of an [`EchoConfig`], bound and not yet serving.
#[derive(Debug)]
pub struct BoundEcho {
    identity: Identity,
    http: Vec<(SocketAddr, TcpListener)>,
    tcp: Vec<(SocketAddr, TcpListener)>,
    http_addrs: Vec<SocketAddr>,
    tcp_addrs: Vec<SocketAddr>,
    chaos: ChaosConfig,
}

/// Binds every listener of `config` (HTTP ports first, then TCP ports) and
/// returns them unserved, so bind errors surface before anything runs and
/// port 0 resolves to a real port. Serve them with [`BoundEcho::serve`].
pub async fn bind(config: EchoConfig) -> Result<BoundEcho, EchoError> {
    async fn bind_all(addrs: &[SocketAddr]) -> Result<Vec<(SocketAddr, TcpListener)>, EchoError> {
        let mut out = Vec::with_capacity(addrs.len());
        for &addr in addrs {
            let bind_err = |source| EchoError::Bind { addr, source };
            let listener = TcpListener::bind(addr).await.map_err(bind_err)?;
            let local = listener.local_addr().map_err(bind_err)?;
            out.push((local, listener));
        }
        Ok(out)
    }
    let http = bind_all(&config.http).await?;
    let tcp = bind_all(&config.tcp).await?;
    Ok(BoundEcho {
        chaos: config.chaos,
        identity: config.identity,
        http_addrs: http.iter().map(|(a, _)| *a).collect(),
        tcp_addrs: tcp.iter().map(|(a, _)| *a).collect(),
        http,
        tcp,
    })
}

/// Binds every listener, then serves until `shutdown` resolves. In-flight
/// requests then get up to 5 s to finish before their connections close.
pub async fn serve(
    config: EchoConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), EchoError> {
    bind(config).await?.serve(shutdown).await;
    Ok(())
}

impl BoundEcho {
    /// The bound HTTP addresses, in the order of [`EchoConfig::http`].
    pub fn http_addrs(&self) -> &[SocketAddr] {
        &self.http_addrs
    }

    /// The bound TCP echo addresses, in the order of [`EchoConfig::tcp`].
    pub fn tcp_addrs(&self) -> &[SocketAddr] {
        &self.tcp_addrs
    }

    /// Serves every listener until `shutdown` resolves, then stops accepting,
    /// lets in-flight requests finish (at most 5 s) and closes what is left.
    /// Dropping the returned future instead closes every connection at once.
    pub async fn serve(self, shutdown: impl Future<Output = ()> + Send + 'static) {
        let controller = Controller::new();
        let chaos = Arc::new(chaos::Chaos::default());
        if let Some(dir) = self.chaos.dir.clone() {
            chaos.watch(dir, &self.identity.pod);
        }
        let idle = self.chaos.idle_timeout;
        let identity = Arc::new(self.identity);
        let builder = Arc::new(http_server::builder());
        for (addr, listener) in self.http {
            tracing::info!(%addr, "echo: serving HTTP/1.1, h2c and gRPC");
            let (identity, builder, chaos) = (identity.clone(), builder.clone(), chaos.clone());
            let sd = controller.handle();
            tokio::spawn(accept_loop(listener, sd, move |stream, peer, sd| {
                http_server::serve_connection(
                    stream,
                    peer,
                    builder.clone(),
                    identity.clone(),
                    sd,
                    chaos.clone(),
                    idle,
                )
            }));
        }
        for (addr, listener) in self.tcp {
            tracing::info!(%addr, "echo: serving TCP echo");
            tokio::spawn(accept_loop(
                listener,
                controller.handle(),
                tcp::serve_connection,
            ));
        }
        shutdown.await;
        tracing::info!("echo: shutting down");
        controller.shutdown(SHUTDOWN_GRACE).await;
    }
}

/// Accepts connections until the server drains; each one is its own task.
async fn accept_loop<F, Fut>(listener: TcpListener, shutdown: Shutdown, serve: F)
where
    F: Fn(tokio::net::TcpStream, SocketAddr, Shutdown) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    loop {
        tokio::select! {
            () = shutdown.draining() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    tokio::spawn(serve(stream, peer, shutdown.clone()));
                }
                Err(error) => {
                    // Usually out of file descriptors: back off instead of spinning.
                    tracing::warn!(%error, "echo: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
    }
}
