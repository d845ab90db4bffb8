//! Endpoints and backends as the request path uses them.
//!
//! An [`Endpoint`] outlives config snapshots: the registry hands the same `Arc` to every
//! snapshot that still has the endpoint, so its load statistics and its pooled mesh
//! connection survive a config change. The registry's mutex is taken while building a
//! snapshot and, for traffic to a workload's own address, the first time a snapshot sees a
//! port of that workload ([`super::direct`]); never per request.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use weft_api::view::{BackendView, EndpointView, MeshView, Protocol};
use weft_identity::SpiffeId;

use super::locality::Close;
use super::PeerSettings;
use crate::balance::sticky::StickyCookie;
use crate::balance::{Balanced, Load, Policy};
use crate::http::pool::{Http1Pool, PoolSettings};
use crate::http::upstream::{connect, H2Connection, UpstreamError};
use crate::io::transport::{Carriage, Header};
use crate::mesh::{dial_peer, MeshStream, MeshTls, PeerTarget};
use crate::metrics::{Destination, Metrics};
use crate::resilience::limits::RequestLimits;
use crate::resilience::outlier::{Ejectable, Health, Outlier};
use crate::resilience::{self, Retries};

pub struct Endpoint {
    pub addr: SocketAddr,
    pub workload: String,
    pub namespace: String,
    pub meshed: bool,
    /// The peer proxy in front of a meshed endpoint, and who it must prove to be.
    pub peer: Option<PeerTarget>,
    tls: Arc<MeshTls>,
    pub weight: u32,
    pub load: Load,
    /// Outlier detection's view of it (used only when a DestinationRule asks).
    pub health: Health,
    /// Who answers here, as the `destination_*` metric labels name it.
    pub destination: Arc<Destination>,
    /// The multiplexed HTTP/2 connection to this endpoint: to its proxy's inbound port (with
    /// the transport header) when meshed, else straight to it (h2c).
    pub h2: H2Connection,
    /// Keep-alive HTTP/1 connections, for endpoints without a proxy (made on first use).
    http1: std::sync::OnceLock<Arc<Http1Pool>>,
    /// How its connections are pooled and limited (a DestinationRule's `connectionPool`).
    pub pool: PoolSettings,
}

impl Endpoint {
    pub fn http1(&self) -> &Arc<Http1Pool> {
        self.http1
            .get_or_init(|| Http1Pool::new(self.addr, self.pool.clone()))
    }

    /// A connection of its own for opaque bytes: through the peer proxy (mutual TLS when it
    /// has an identity) when meshed, else straight to the endpoint.
    pub async fn open_opaque(
        &self,
        timeout: std::time::Duration,
    ) -> Result<MeshStream, UpstreamError> {
        match &self.peer {
            Some(peer) => {
                let header = Header {
                    carriage: Carriage::Opaque,
                    port: self.addr.port(),
                };
                dial_peer(peer, header, &self.tls, timeout).await
            }
            None => Ok(MeshStream::Plain(connect(self.addr, timeout).await?)),
        }
    }
}

impl Ejectable for Endpoint {
    fn health(&self) -> &Health {
        &self.health
    }
    fn in_flight(&self) -> u32 {
        self.load.pending()
    }
    fn name(&self) -> String {
        format!("{} ({})", self.addr, self.workload)
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
    pub sticky_cookie: Option<StickyCookie>,
    /// The destination Service's retry budget (shared by its ports) and counters.
    pub retries: Retries,
    /// DestinationRule `outlierDetection`, when set.
    pub outlier: Option<Outlier>,
    /// DestinationRule `connectionPool` request limits, when set.
    pub limits: Option<RequestLimits>,
    /// DestinationRule `connectionPool.tcp.connectTimeout`, replacing the mesh's.
    pub connect_timeout: Option<Duration>,
    /// The Service's `trafficDistribution`: the endpoints close to this proxy, preferred.
    pub close: Option<Box<Close>>,
}

impl Backend {
    /// The endpoints to balance over, and their balancer: the close ones while one of them
    /// is `usable`, else all of them.
    pub fn candidates(
        &self,
        usable: impl Fn(&Arc<Endpoint>) -> bool,
    ) -> (&[Arc<Endpoint>], &Policy) {
        if let Some(close) = &self.close {
            if close.endpoints.iter().any(usable) {
                return (&close.endpoints, &close.policy);
            }
        }
        (&self.endpoints, &self.policy)
    }
}

/// What tells two endpoints apart: address, meshed-ness, identity, and the tunnel that
/// reaches it (a workload whose host's tunnel moved needs new connections).
type EndpointKey = (SocketAddr, bool, Option<SpiffeId>, Option<SocketAddr>);

fn key_of(e: &EndpointView, peer: Option<&PeerTarget>) -> EndpointKey {
    (
        e.addr,
        e.meshed,
        peer.and_then(|p| p.identity.clone()),
        peer.and_then(|p| p.tunnel),
    )
}

/// Endpoints by (address, meshed, identity), alive as long as some snapshot holds them.
pub struct Registry {
    endpoints: Mutex<HashMap<EndpointKey, Weak<Endpoint>>>,
    shared: resilience::Shared,
    pub tls: Arc<MeshTls>,
}

impl Default for Registry {
    fn default() -> Self {
        Self::new(Arc::new(MeshTls::new(false)))
    }
}

impl Registry {
    pub fn new(tls: Arc<MeshTls>) -> Self {
        Self {
            endpoints: Mutex::new(HashMap::new()),
            shared: resilience::Shared::default(),
            tls,
        }
    }

    /// How this proxy reaches the peer proxy of `e`: its inbound port, the identity it must
    /// prove, and, when it is on another network (host), that network's tunnel. A tunnel is
    /// always mutual TLS, whatever PeerAuthentication says of the port (a `DISABLE` peer
    /// still accepts it); a peer on another network without a tunnel is dialled directly.
    fn peer_of(e: &EndpointView, settings: &PeerSettings<'_>) -> Option<PeerTarget> {
        if !e.meshed {
            return None;
        }
        let tunnel = match (e.network.as_deref(), settings.network) {
            (Some(theirs), Some(ours)) if theirs == ours => None,
            (Some(_), _) => e.tunnel,
            (None, _) => None,
        };
        Some(PeerTarget {
            dial: SocketAddr::new(e.addr.ip(), settings.inbound_port),
            identity: (e.mtls || tunnel.is_some())
                .then(|| {
                    SpiffeId::new(settings.trust_domain, &e.namespace, &e.service_account).ok()
                })
                .flatten(),
            tunnel,
        })
    }

    pub fn backend(&self, view: &BackendView, mesh: &MeshView, metrics: &Metrics) -> Backend {
        let settings = PeerSettings::of(mesh);
        let service = format!("{}/{}", view.namespace, view.service);
        let retries = self.shared.retries(&service, &mesh.retries, metrics);
        let limits = view.pool.as_ref();
        let pool = PoolSettings {
            idle_timeout: limits
                .and_then(|p| p.idle_timeout_ms)
                .map_or_else(|| mesh.upstream_idle_timeout(), Duration::from_millis),
            max_requests_per_connection: limits.map_or(0, |p| p.max_requests_per_connection),
            connections: limits.and_then(|p| {
                self.shared
                    .connection_limit(&view.key, &service, p, metrics)
            }),
        };
        let request_limits =
            limits.and_then(|p| self.shared.request_limits(&view.key, &service, p, metrics));
        let connect_timeout = limits
            .and_then(|p| p.connect_timeout_ms)
            .map(Duration::from_millis);
        let mut map = match self.endpoints.lock() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        map.retain(|_, w| w.strong_count() > 0);
        let endpoints: Vec<Arc<Endpoint>> = view
            .endpoints
            .iter()
            .map(|e| {
                let peer = Self::peer_of(e, &settings);
                let key = key_of(e, peer.as_ref());
                match map.get(&key).and_then(Weak::upgrade) {
                    Some(existing)
                        if existing.weight == e.weight.max(1) && existing.pool.same(&pool) =>
                    {
                        existing
                    }
                    _ => {
                        let fresh = Arc::new(self.new_endpoint(e, peer, pool.clone()));
                        map.insert(key, Arc::downgrade(&fresh));
                        fresh
                    }
                }
            })
            .collect();
        let policy = Policy::new(&view.load_balancer, &endpoints);
        let close = Close::select(view, &endpoints, mesh).map(Box::new);
        let sticky_cookie = match &view.load_balancer {
            weft_api::view::LoadBalancer::HashCookie {
                name,
                path,
                ttl_s: Some(ttl),
            } => Some(StickyCookie {
                name: name.clone(),
                path: path.clone(),
                ttl_s: *ttl,
            }),
            _ => None,
        };
        Backend {
            key: view.key.clone(),
            protocol: view.protocol,
            endpoints,
            policy,
            sticky_cookie,
            retries,
            limits: request_limits,
            connect_timeout,
            close,
            outlier: view.outlier.as_ref().map(|settings| {
                let counters = metrics.resilience.outlier(&service);
                Outlier {
                    settings: settings.clone(),
                    service: service.clone(),
                    ejections_5xx: counters.ejections_5xx,
                    ejections_gateway: counters.ejections_gateway,
                    readmissions: counters.readmissions,
                }
            }),
            service,
        }
    }

    /// An endpoint for traffic sent to a workload's own address (not via a Service): the
    /// live one if some snapshot holds it, else a new one. Called once per port and snapshot
    /// (see [`super::direct`]), not per request.
    pub fn direct(
        &self,
        addr: SocketAddr,
        workload: &weft_api::view::WorkloadView,
        settings: &super::PeerSettings<'_>,
    ) -> Arc<Endpoint> {
        let view = direct_view(addr, workload);
        let peer = Self::peer_of(&view, settings);
        let key = key_of(&view, peer.as_ref());
        let mut map = match self.endpoints.lock() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some(e) = map.get(&key).and_then(Weak::upgrade) {
            return e;
        }
        let pool = PoolSettings::idle(settings.idle_timeout);
        let fresh = Arc::new(self.new_endpoint(&view, peer, pool));
        map.insert(key, Arc::downgrade(&fresh));
        fresh
    }

    /// The live endpoints at the addresses of `workloads` that a direct call to them would
    /// use (same meshed-ness and identity), by workload address: a new snapshot starts with
    /// them, so a config change keeps their pooled connections.
    pub fn alive_direct(
        &self,
        workloads: &[weft_api::view::WorkloadView],
        settings: &PeerSettings<'_>,
    ) -> HashMap<IpAddr, Vec<(u16, Arc<Endpoint>)>> {
        let mut found: HashMap<IpAddr, Vec<(u16, Arc<Endpoint>)>> = HashMap::new();
        if workloads.is_empty() {
            return found;
        }
        // Everything of the key but the port.
        type Wanted = (bool, Option<SpiffeId>, Option<SocketAddr>);
        let wanted: HashMap<IpAddr, Wanted> = workloads
            .iter()
            .map(|w| {
                let view = direct_view(SocketAddr::new(w.address, 0), w);
                let (_, meshed, identity, tunnel) =
                    key_of(&view, Self::peer_of(&view, settings).as_ref());
                (w.address, (meshed, identity, tunnel))
            })
            .collect();
        let map = match self.endpoints.lock() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        for ((addr, meshed, identity, tunnel), weak) in map.iter() {
            let Some(want) = wanted.get(&addr.ip()) else {
                continue;
            };
            if (meshed, identity, tunnel) != (&want.0, &want.1, &want.2) {
                continue;
            }
            if let Some(e) = weak.upgrade() {
                found.entry(addr.ip()).or_default().push((addr.port(), e));
            }
        }
        found
    }

    fn new_endpoint(
        &self,
        e: &EndpointView,
        peer: Option<PeerTarget>,
        pool: PoolSettings,
    ) -> Endpoint {
        let principal = peer
            .as_ref()
            .and_then(|p| p.identity.as_ref())
            .map_or_else(|| "unknown".to_string(), |id| id.to_string());
        let destination = Arc::new(Destination {
            workload: e.workload.clone(),
            namespace: e.namespace.clone(),
            principal,
        });
        Endpoint {
            destination,
            addr: e.addr,
            workload: e.workload.clone(),
            namespace: e.namespace.clone(),
            meshed: e.meshed,
            h2: match &peer {
                Some(p) => H2Connection::new(p.clone(), e.addr.port(), self.tls.clone()),
                None => H2Connection::plain(e.addr),
            }
            .with_max_requests(pool.max_requests_per_connection),
            peer,
            tls: self.tls.clone(),
            weight: e.weight.max(1),
            load: Load::default(),
            health: Health::default(),
            http1: std::sync::OnceLock::new(),
            pool,
        }
    }
}

/// The endpoint a workload's own address stands for.
fn direct_view(addr: SocketAddr, workload: &weft_api::view::WorkloadView) -> EndpointView {
    EndpointView {
        addr,
        workload: workload.name.clone(),
        namespace: workload.namespace.clone(),
        service_account: workload.service_account.clone(),
        meshed: workload.meshed,
        weight: 1,
        // A DISABLE peer still accepts mTLS from a proxy; only Services carry the mode.
        mtls: workload.meshed,
        network: workload.network.clone(),
        tunnel: workload.tunnel,
        zone: workload.zone.clone(),
    }
}
