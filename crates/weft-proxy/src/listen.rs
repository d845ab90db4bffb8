//! The accept loop every data-plane listener runs: accept until the proxy drains, one task
//! per connection, each counted open until it ends so that shutdown can wait for it.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};

use crate::drain;

/// Accepts until `drain` signals; `handle` serves each connection with the side's inputs `cx`.
pub async fn accept_loop<C, F, Fut>(
    listener: TcpListener,
    cx: Arc<C>,
    drain: drain::Watch,
    side: &'static str,
    handle: F,
) where
    F: Fn(TcpStream, SocketAddr, Arc<C>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = drain.signaled() => break,
        };
        match accepted {
            Ok((stream, peer)) => {
                let guard = drain.guard();
                let conn = handle(stream, peer, cx.clone());
                tokio::spawn(async move {
                    conn.await;
                    drop(guard);
                });
            }
            Err(e) => {
                // Out of file descriptors and the like: back off rather than spin.
                tracing::warn!(error = %e, "{side} accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}
