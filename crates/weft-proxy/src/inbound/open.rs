//! The inbound HTTP/2 connections open now, each with what authorization knows of it and a
//! handle to cut it. When the configuration changes, [`close_refused`] cuts those the new
//! policy refuses outright (see [`weft_policy::Authorizer::refuses_connection`]), long
//! streams included. Connections register when they open and leave when they close; nothing
//! here is touched per request, and no connection polls for changes itself.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::task::AbortHandle;
use weft_policy::{ConnectionAttrs, Decision};

use super::Inbound;
use crate::error::{ProxyError, Reason};

struct Open {
    conn: ConnectionAttrs,
    client: SocketAddr,
    abort: AbortHandle,
}

#[derive(Default)]
pub struct OpenConnections {
    next: AtomicU64,
    open: Mutex<HashMap<u64, Open>>,
}

/// Proof of registration; dropping it (the connection ended) removes the entry.
pub struct Registered<'a> {
    id: u64,
    set: &'a OpenConnections,
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        self.set.lock().remove(&self.id);
    }
}

impl OpenConnections {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Open>> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a connection being served by the task `abort` cancels.
    pub fn add(
        &self,
        conn: ConnectionAttrs,
        client: SocketAddr,
        abort: AbortHandle,
    ) -> Registered<'_> {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.lock().insert(
            id,
            Open {
                conn,
                client,
                abort,
            },
        );
        Registered { id, set: self }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }
}

/// Watches for configuration changes and cuts the open connections the new policy refuses
/// outright; runs until the proxy stops.
pub async fn close_refused(cx: Arc<Inbound>) {
    let mut changes = cx.changes.clone();
    while changes.changed().await.is_ok() {
        let snapshot = cx.state.load_full();
        let a = &snapshot.authz.authorizer;
        if a.is_empty() {
            continue;
        }
        let refused: Vec<(SocketAddr, u16, Decision)> = {
            let open = cx.open.lock();
            open.values()
                .filter_map(|o| {
                    let verdict = a.refuses_connection(&o.conn)?;
                    o.abort.abort();
                    let d = Decision {
                        verdict,
                        audits: Vec::new(),
                    };
                    Some((o.client, o.conn.destination_port, d))
                })
                .collect()
        };
        for (client, port, d) in refused {
            tracing::info!(%client, port, "closed an open HTTP/2 connection: the new configuration refuses it");
            super::identity::refuse(&cx, client, &ProxyError::new(Reason::Denied, a.explain(&d)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn registrations_leave_with_their_connection() {
        let set = OpenConnections::default();
        let task = tokio::spawn(std::future::pending::<()>());
        let conn = ConnectionAttrs {
            peer: Default::default(),
            source_ip: [127, 0, 0, 1].into(),
            destination_ip: [127, 0, 0, 1].into(),
            destination_port: 80,
            sni: None,
        };
        {
            let _r = set.add(
                conn.clone(),
                "127.0.0.1:1".parse().expect("addr"),
                task.abort_handle(),
            );
            let _s = set.add(
                conn,
                "127.0.0.1:2".parse().expect("addr"),
                task.abort_handle(),
            );
            assert_eq!(set.len(), 2);
        }
        assert_eq!(set.len(), 0);
        task.abort();
    }
}
