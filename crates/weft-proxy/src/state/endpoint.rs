//! Endpoints and backends as the request path uses them.
//!
//! An [`Endpoint`] outlives config snapshots: the registry hands the same `Arc` to every
//! snapshot that still has the endpoint, so its load statistics and its pooled mesh
//! connection survive a config change. The registry is only touched while building a
//! snapshot, never per request.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, Weak};

use weft_api::view::{BackendView, EndpointView, Protocol};

use crate::balance::{Balanced, Load, Policy};
use crate::http::pool::Http1Pool;
use crate::http::upstream::H2Connection;

pub struct Endpoint {
    pub addr: SocketAddr,
    pub workload: String,
    pub namespace: String,
    pub meshed: bool,
    pub weight: u32,
    pub load: Load,
    /// The multiplexed HTTP/2 connection to this endpoint: to its proxy's inbound port (with
    /// the transport header) when meshed, else straight to it (h2c).
    pub h2: H2Connection,
    /// Keep-alive HTTP/1 connections, for endpoints without a proxy (made on first use).
    http1: std::sync::OnceLock<Arc<Http1Pool>>,
}

impl Endpoint {
    pub fn http1(&self) -> &Arc<Http1Pool> {
        self.http1.get_or_init(|| Http1Pool::new(self.addr))
    }
}

impl Balanced for Endpoint {
    fn load(&self) -> &Load {
        &self.load
    }
    fn weight(&self) -> u32 {
        self.weight
    }
    fn ring_key(&self) -> String {
        self.addr.to_string()
    }
}

/// A Service port's endpoints with their balancer.
pub struct Backend {
    /// `namespace/service:port`.
    pub key: String,
    /// `namespace/service`, the `destination_service` metric label.
    pub service: String,
    pub protocol: Protocol,
    pub endpoints: Vec<Arc<Endpoint>>,
    pub policy: Policy,
    /// Cookie to set when hashing on a cookie the client does not send yet.
    pub sticky_cookie: Option<(String, Option<String>, u64)>,
}

/// Endpoints by (address, meshed), alive as long as some snapshot holds them.
#[derive(Default)]
pub struct Registry {
    endpoints: Mutex<HashMap<(SocketAddr, bool), Weak<Endpoint>>>,
}

impl Registry {
    pub fn backend(&self, view: &BackendView, inbound_port: u16) -> Backend {
        let mut map = match self.endpoints.lock() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        map.retain(|_, w| w.strong_count() > 0);
        let endpoints: Vec<Arc<Endpoint>> = view
            .endpoints
            .iter()
            .map(|e| {
                let key = (e.addr, e.meshed);
                match map.get(&key).and_then(Weak::upgrade) {
                    Some(existing) if existing.weight == e.weight.max(1) => existing,
                    _ => {
                        let fresh = Arc::new(new_endpoint(e, inbound_port));
                        map.insert(key, Arc::downgrade(&fresh));
                        fresh
                    }
                }
            })
            .collect();
        let policy = Policy::new(&view.load_balancer, &endpoints);
        let sticky_cookie = match &view.load_balancer {
            weft_api::view::LoadBalancer::HashCookie {
                name,
                path,
                ttl_s: Some(ttl),
            } => Some((name.clone(), path.clone(), *ttl)),
            _ => None,
        };
        Backend {
            key: view.key.clone(),
            service: format!("{}/{}", view.namespace, view.service),
            protocol: view.protocol,
            endpoints,
            policy,
            sticky_cookie,
        }
    }

    /// An endpoint for traffic sent to a workload's own address (not via a Service).
    pub fn direct(
        &self,
        addr: SocketAddr,
        workload: &weft_api::view::WorkloadView,
        inbound_port: u16,
    ) -> Arc<Endpoint> {
        let view = EndpointView {
            addr,
            workload: workload.name.clone(),
            namespace: workload.namespace.clone(),
            service_account: workload.service_account.clone(),
            meshed: workload.meshed,
            weight: 1,
            // A DISABLE peer still accepts mTLS from a proxy; only Services carry the mode.
            mtls: workload.meshed,
        };
        let mut map = match self.endpoints.lock() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        let key = (addr, workload.meshed);
        if let Some(e) = map.get(&key).and_then(Weak::upgrade) {
            return e;
        }
        let fresh = Arc::new(new_endpoint(&view, inbound_port));
        map.insert(key, Arc::downgrade(&fresh));
        fresh
    }
}

fn new_endpoint(e: &EndpointView, inbound_port: u16) -> Endpoint {
    Endpoint {
        addr: e.addr,
        workload: e.workload.clone(),
        namespace: e.namespace.clone(),
        meshed: e.meshed,
        weight: e.weight.max(1),
        load: Load::default(),
        h2: if e.meshed {
            H2Connection::new(SocketAddr::new(e.addr.ip(), inbound_port), e.addr.port())
        } else {
            H2Connection::plain(e.addr)
        },
        http1: std::sync::OnceLock::new(),
    }
}
