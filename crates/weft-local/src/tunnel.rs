//! A joined host's tunnel (port 4108): where proxies on other hosts reach this host's
//! workloads over HBONE, so that no workload subnet is routed between hosts and one port per
//! host is open.
//!
//! The tunnel never terminates TLS and holds no workload's key. It reads the ClientHello's
//! server name, which names a workload (`10-213-1-5.hbone.weft`), and splices the connection
//! to that workload's proxy, which terminates the mutual TLS and proves the workload's
//! identity itself. Only addresses of this host's block are reachable: the tunnel is not a
//! relay to anywhere else.
//!
//! A server name of the admin form (`10-213-1-5.admin.weft`) is spliced to that proxy's
//! admin port instead, which speaks mutual TLS too: that is how the control plane on another
//! host scrapes a proxy's `/metrics` and reads its `/config` and `/tap`. The tunnel speaks no
//! plaintext at all.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use weft_identity::hbone::Port;

use crate::network::HostNet;

/// How long a client has to send its ClientHello.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
/// How long connecting to a workload's proxy may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections served at once; more wait in the kernel's accept queue.
const MAX_CONNECTIONS: usize = 16 * 1024;

/// What the tunnel serves.
#[derive(Clone, Debug)]
pub struct Tunnel {
    /// The host's workload network: targets must be in its subnet.
    pub net: HostNet,
    /// The workloads' proxies' inbound port.
    pub inbound_port: u16,
    /// The workloads' proxies' admin port (mutual TLS for callers through the tunnel).
    pub admin_port: u16,
}

impl Tunnel {
    /// Accepts and splices connections until `stop` resolves.
    pub async fn serve(self, listener: TcpListener, stop: impl std::future::Future<Output = ()>) {
        let this = Arc::new(self);
        let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
        tokio::pin!(stop);
        loop {
            let Ok(slot) = slots.clone().acquire_owned().await else {
                return;
            };
            let (stream, client) = tokio::select! {
                _ = &mut stop => return,
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of descriptors and the like: pause instead of spinning.
                        tracing::warn!(error = %e, "tunnel: accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
            };
            let this = this.clone();
            tokio::spawn(async move {
                let began = std::time::Instant::now();
                match this.splice(stream).await {
                    // The control plane's scrapes come every few seconds per proxy: their
                    // lines are debug.
                    Ok((Port::Admin, target, sent, received)) => tracing::debug!(
                        %client, %target, sent, received, duration = ?began.elapsed(),
                        "tunnel: admin connection closed"
                    ),
                    // A line as each connection starts and ends (pooled by the proxies: few),
                    // as ztunnel logs them.
                    Ok((Port::Inbound, target, sent, received)) => tracing::info!(
                        %client, %target, sent, received, duration = ?began.elapsed(),
                        "tunnel: closed"
                    ),
                    Err(e) => tracing::info!(%client, "tunnel: connection refused: {e}"),
                }
                drop(slot);
            });
        }
    }

    /// One connection: its ClientHello, the workload and port it names, then bytes both
    /// ways. Which port, the workload's proxy, and the bytes sent to it and received from it.
    async fn splice(&self, mut stream: TcpStream) -> Result<(Port, SocketAddr, u64, u64), String> {
        let _ = stream.set_nodelay(true);
        let (asked, hello) = weft_identity::hbone::read_client_hello(&mut stream, HELLO_TIMEOUT)
            .await
            .map_err(|e| e.to_string())?;
        let ip = asked.ip;
        if !self.serves(ip) {
            return Err(format!(
                "{ip} is not a workload address of this host ({}/{})",
                self.net.gateway, self.net.prefix_len
            ));
        }
        let port = match asked.port {
            Port::Inbound => self.inbound_port,
            Port::Admin => self.admin_port,
        };
        let target = SocketAddr::new(ip.into(), port);
        let mut upstream =
            match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(target)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => return Err(format!("connecting to {target}: {e}")),
                Err(_) => return Err(format!("connecting to {target}: timed out")),
            };
        let _ = upstream.set_nodelay(true);
        if asked.port == Port::Inbound {
            tracing::info!(client = %self.peer_of(&stream), %target, "tunnel: splicing");
        }
        upstream
            .write_all(&hello)
            .await
            .map_err(|e| format!("writing to {target}: {e}"))?;
        // Either side closing (or failing) ends the splice; the proxies' own timeouts bound
        // an idle one.
        let (sent, received) = tokio::io::copy_bidirectional(&mut stream, &mut upstream)
            .await
            .unwrap_or_default();
        Ok((asked.port, target, sent + hello.len() as u64, received))
    }

    fn peer_of(&self, stream: &TcpStream) -> String {
        stream
            .peer_addr()
            .map_or_else(|_| "unknown".into(), |a| a.to_string())
    }

    /// Whether `ip` is a workload address of this host: in the subnet, not the gateway.
    fn serves(&self, ip: Ipv4Addr) -> bool {
        self.net.contains(ip) && ip != self.net.gateway
    }
}
