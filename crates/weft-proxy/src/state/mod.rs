//! The proxy's compiled configuration: a [`Snapshot`] built from a view off the request path
//! and swapped in whole ([`Shared`]). A request loads the current snapshot once and uses it
//! to the end, so a config change never mixes two configurations in one request.

pub mod authn;
pub mod authz;
pub mod direct;
pub mod endpoint;
pub mod locality;
pub mod rate_limit;
pub mod table;
pub mod token_cache;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use weft_api::view::{MeshView, Protocol, ProxyView, WorkloadView};

pub use direct::{DirectWorkload, PeerSettings};
pub use endpoint::{Backend, Endpoint, Registry};
pub use table::{Filter, Rule, Table, WeightedBackend};

use crate::metrics::{Metrics, OUTBOUND};

/// The current snapshot, swapped atomically on config change.
pub type Shared = Arc<ArcSwap<Snapshot>>;

pub struct Snapshot {
    pub view: Arc<ProxyView>,
    /// The workload's AuthorizationPolicies, and their decision counters.
    pub authz: authz::AuthzState,
    /// The workload's RequestAuthentication rules, their key sets parsed.
    pub authn: authn::AuthnState,
    /// The HTTPLocalRateLimitPolicies on the workload's ports.
    pub rate_limits: rate_limit::RateLimitState,
    pub mesh: MeshView,
    /// Tracing, when MeshConfig turns it on (set by the installer, which keeps one exporter
    /// across snapshots of the same settings).
    pub tracer: Option<Arc<crate::trace::Tracer>>,
    /// The proxy's namespace: short names (`svc`) resolve in it.
    pub namespace: String,
    pub services: Vec<Arc<Service>>,
    by_addr: HashMap<SocketAddr, Arc<ServicePort>, FastHash>,
    by_name: HashMap<String, Arc<Service>, FastHash>,
    workloads: HashMap<IpAddr, Arc<DirectWorkload>, FastHash>,
}

pub struct Service {
    pub name: String,
    pub namespace: String,
    pub vip: Option<IpAddr>,
    pub ports: Vec<Arc<ServicePort>>,
}

pub struct ServicePort {
    /// `namespace/name`.
    pub service: String,
    /// The host name requests to this port carry by default (`name.namespace:port`).
    pub authority: String,
    pub port: u16,
    pub protocol: Protocol,
    pub http: Table,
    pub grpc: Table,
    pub tcp: Option<TcpRoute>,
    /// What traffic gets when no route is attached: the Service's own endpoints.
    pub default_rule: Arc<Rule>,
}

pub struct TcpRoute {
    pub rule: Arc<Rule>,
}

impl Snapshot {
    /// An empty snapshot: the proxy refuses everything until a config loads.
    pub fn empty(namespace: &str) -> Snapshot {
        Snapshot {
            view: Arc::new(ProxyView::default()),
            authz: authz::AuthzState::none(),
            authn: authn::AuthnState::none(),
            rate_limits: rate_limit::RateLimitState::default(),
            mesh: MeshView::default(),
            tracer: None,
            namespace: namespace.to_string(),
            services: Vec::new(),
            by_addr: HashMap::default(),
            by_name: HashMap::default(),
            workloads: HashMap::default(),
        }
    }

    pub fn build(
        view: ProxyView,
        namespace: &str,
        metrics: &Arc<Metrics>,
        registry: &Registry,
    ) -> Snapshot {
        let backends: HashMap<String, Arc<Backend>> = view
            .backends
            .iter()
            .map(|(k, b)| {
                let backend = registry.backend(b, &view.mesh, metrics);
                (k.clone(), Arc::new(backend))
            })
            .collect();
        let resolve = |key: &Option<String>| key.as_ref().and_then(|k| backends.get(k).cloned());
        // A rule's metrics are labelled with its route; `route_label` overrides that (the
        // Service's own default rule is `default`).
        let build_rule = |rule: &weft_api::view::RuleView,
                          service: &str,
                          route_label: Option<&str>|
         -> Arc<Rule> {
            let filters = |fs: &[weft_api::view::FilterView]| -> Vec<Filter> {
                fs.iter()
                    .map(|f| match f {
                        weft_api::view::FilterView::RequestMirror(m) => Filter::Mirror {
                            backend: resolve(&m.backend),
                            per_million: m.per_million,
                        },
                        other => Filter::Plain(other.clone()),
                    })
                    .collect()
            };
            let wbs: Vec<WeightedBackend> = rule
                .backends
                .iter()
                .map(|b| WeightedBackend {
                    backend: resolve(&b.backend),
                    weight: b.weight,
                    filters: filters(&b.filters),
                })
                .collect();
            Arc::new(Rule {
                route: rule.route.clone(),
                filters: filters(&rule.filters),
                total_weight: wbs.iter().map(|b| u64::from(b.weight)).sum(),
                backends: wbs,
                request_timeout: rule.request_timeout_ms.map(Duration::from_millis),
                backend_request_timeout: rule.backend_request_timeout_ms.map(Duration::from_millis),
                retry: rule.retry.clone(),
                fault: rule.filters.iter().find_map(|f| match f {
                    weft_api::view::FilterView::Fault(v) => {
                        Some(Box::new(crate::resilience::fault::Fault {
                            view: v.clone(),
                            delayed: metrics.resilience.fault(&v.name, "delay"),
                            aborted: metrics.resilience.fault(&v.name, "abort"),
                        }))
                    }
                    _ => None,
                }),
                stats: match route_label {
                    Some(label) => metrics.route(OUTBOUND, service, label),
                    None => metrics.route(OUTBOUND, service, &rule.route.label()),
                },
            })
        };
        let build_table = |t: &weft_api::view::RoutingTable, service: &str| Table {
            matches: t.matches.iter().filter_map(table::compile_match).collect(),
            rules: t
                .rules
                .iter()
                .map(|r| build_rule(r, service, None))
                .collect(),
        };
        let mut services = Vec::new();
        let mut by_addr: HashMap<_, _, FastHash> = HashMap::default();
        let mut by_name: HashMap<_, _, FastHash> = HashMap::default();
        for s in &view.services {
            let label = format!("{}/{}", s.namespace, s.name);
            let ports: Vec<Arc<ServicePort>> = s
                .ports
                .iter()
                .map(|p| {
                    let default_view = weft_api::view::RuleView {
                        route: weft_api::view::RouteRef {
                            kind: "Service".into(),
                            namespace: s.namespace.clone(),
                            name: "default".into(),
                            rule: 0,
                            rule_name: None,
                        },
                        filters: Vec::new(),
                        backends: vec![weft_api::view::WeightedBackend {
                            backend: Some(p.default_backend.clone()),
                            weight: 1,
                            filters: Vec::new(),
                        }],
                        request_timeout_ms: None,
                        backend_request_timeout_ms: None,
                        retry: None,
                    };
                    let default_rule = build_rule(&default_view, &label, Some("default"));
                    Arc::new(ServicePort {
                        service: label.clone(),
                        authority: format!("{}.{}:{}", s.name, s.namespace, p.port),
                        port: p.port,
                        protocol: p.protocol,
                        http: build_table(&p.http, &label),
                        grpc: build_table(&p.grpc, &label),
                        tcp: p.tcp.as_ref().map(|t| {
                            let rv = weft_api::view::RuleView {
                                route: t.route.clone(),
                                filters: Vec::new(),
                                backends: t.backends.clone(),
                                request_timeout_ms: None,
                                backend_request_timeout_ms: None,
                                retry: None,
                            };
                            TcpRoute {
                                rule: build_rule(&rv, &label, None),
                            }
                        }),
                        default_rule,
                    })
                })
                .collect();
            let svc = Arc::new(Service {
                name: s.name.clone(),
                namespace: s.namespace.clone(),
                vip: s.vip,
                ports,
            });
            if let Some(vip) = s.vip {
                for p in &svc.ports {
                    by_addr.insert(SocketAddr::new(vip, p.port), p.clone());
                }
            }
            let domain = &view.mesh.cluster_domain;
            by_name.insert(format!("{}.{}", s.name, s.namespace), svc.clone());
            by_name.insert(format!("{}.{}.svc", s.name, s.namespace), svc.clone());
            by_name.insert(
                format!("{}.{}.svc.{domain}", s.name, s.namespace),
                svc.clone(),
            );
            if s.namespace == namespace {
                by_name.insert(s.name.clone(), svc.clone());
            }
            services.push(svc);
        }
        let workloads = direct::build(&view.workloads, registry, PeerSettings::of(&view.mesh))
            .into_iter()
            .collect();
        Snapshot {
            authz: authz::AuthzState::build(&view.inbound.authz, metrics),
            authn: authn::AuthnState::build(&view.inbound.jwt),
            rate_limits: rate_limit::RateLimitState::build(&view.inbound.rate_limits, metrics),
            mesh: view.mesh.clone(),
            tracer: None,
            view: Arc::new(view),
            namespace: namespace.to_string(),
            services,
            by_addr,
            by_name,
            workloads,
        }
    }

    /// The Service port a connection to `addr` (a VIP and port) is for.
    pub fn by_addr(&self, addr: SocketAddr) -> Option<&Arc<ServicePort>> {
        self.by_addr.get(&addr)
    }

    /// The Service port an HTTP authority names: `svc`, `svc.ns`, `svc.ns.svc.<domain>` or a
    /// VIP, with an optional port (80 when absent).
    pub fn by_authority(&self, authority: &str) -> Option<&Arc<ServicePort>> {
        let (host, port) = split_authority(authority)?;
        let port = port.unwrap_or(80);
        if let Ok(ip) = host.parse::<IpAddr>() {
            return self.by_addr(SocketAddr::new(ip, port));
        }
        let host = host.trim_end_matches('.');
        let svc = if host.bytes().any(|b| b.is_ascii_uppercase()) {
            self.by_name.get(&host.to_ascii_lowercase())?
        } else {
            self.by_name.get(host)?
        };
        svc.ports.iter().find(|p| p.port == port)
    }

    /// What to ask the control plane for when `host` (an authority or an address) is not
    /// known: a Service by `namespace/name` (from `svc`, `svc.ns`, `svc.ns.svc[.<domain>]`),
    /// or for an IP, the Service with that VIP and the workloads at it.
    pub fn discovery_names(&self, host: &str) -> Vec<(&'static str, String)> {
        use weft_proto::types::{SERVICE_CONFIG, WORKLOAD_CONFIG};
        let Some((host, _)) = split_authority(host) else {
            return Vec::new();
        };
        if let Ok(ip) = host.parse::<IpAddr>() {
            return vec![
                (SERVICE_CONFIG, ip.to_string()),
                (WORKLOAD_CONFIG, ip.to_string()),
            ];
        }
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        let labels: Vec<&str> = host.split('.').collect();
        let cluster_suffix: Vec<&str> = self.mesh.cluster_domain.split('.').collect();
        let name = match labels.as_slice() {
            [svc] => format!("{}/{svc}", self.namespace),
            [svc, ns] | [svc, ns, "svc"] => format!("{ns}/{svc}"),
            [svc, ns, "svc", rest @ ..] if rest == cluster_suffix.as_slice() => {
                format!("{ns}/{svc}")
            }
            _ => return Vec::new(),
        };
        vec![(SERVICE_CONFIG, name)]
    }

    /// The workload whose own address this is (traffic sent to a pod IP, not a Service).
    pub fn workload_at(&self, ip: IpAddr) -> Option<&WorkloadView> {
        self.workloads.get(&ip).map(|w| &w.view)
    }

    /// The endpoint for a call to a workload's own address and port, if `addr` is one.
    pub fn direct_endpoint(&self, addr: SocketAddr, registry: &Registry) -> Option<Arc<Endpoint>> {
        let workload = self.workloads.get(&addr.ip())?;
        Some(workload.endpoint(addr.port(), registry, self.peer_settings()))
    }

    /// Where peer proxies listen and the trust domain their identities are in.
    pub fn peer_settings(&self) -> PeerSettings<'_> {
        PeerSettings::of(&self.mesh)
    }
}

/// FNV-1a for the snapshot's lookup tables: their keys are names and addresses from the
/// configuration, not chosen by clients, so SipHash's flooding resistance buys nothing here.
#[derive(Clone, Copy, Default)]
pub struct FastHash;

pub struct FnvHasher(u64);

impl std::hash::BuildHasher for FastHash {
    type Hasher = FnvHasher;
    fn build_hasher(&self) -> FnvHasher {
        FnvHasher(0xcbf2_9ce4_8422_2325)
    }
}

impl std::hash::Hasher for FnvHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}

/// Splits `host[:port]` / `[v6]:port`. `None` for an unparsable port.
pub fn split_authority(authority: &str) -> Option<(&str, Option<u16>)> {
    if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        return match after.strip_prefix(':') {
            Some(p) => Some((host, Some(p.parse().ok()?))),
            None if after.is_empty() => Some((host, None)),
            None => None,
        };
    }
    match authority.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => Some((host, Some(port.parse().ok()?))),
        Some(_) => Some((authority, None)), // bare IPv6
        None => Some((authority, None)),
    }
}

/// A snapshot of one Service, `reviews.shop` (VIP 10.96.0.10, ports 9080 and 80), as the
/// proxy of a workload in `namespace` sees it.
#[cfg(test)]
pub(crate) fn test_snapshot(namespace: &str) -> Snapshot {
    let yaml = "apiVersion: v1\nkind: Service\nmetadata: {name: reviews, namespace: shop}\nspec:\n  clusterIP: 10.96.0.10\n  ports: [{port: 9080}, {port: 80}]\n";
    let (resources, diags) = weft_api::load::load_str(std::path::Path::new("t.yaml"), yaml);
    let (model, more) = weft_api::validate::build(&resources);
    let model = model.unwrap_or_else(|| panic!("{diags}{more}"));
    let who = weft_api::compile::ProxyIdentity {
        namespace: namespace.into(),
        workload: None,
    };
    let view = weft_api::compile::compile(&model, &who).expect("compile");
    Snapshot::build(view, namespace, &Metrics::new(), &Registry::default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(namespace: &str) -> Snapshot {
        test_snapshot(namespace)
    }

    #[test]
    fn authorities_resolve_like_kubernetes_dns() {
        let s = snapshot("shop");
        for (authority, port) in [
            ("reviews:9080", 9080),
            ("reviews", 80),
            ("reviews.shop:9080", 9080),
            ("reviews.shop.svc:9080", 9080),
            ("reviews.shop.svc.cluster.local:9080", 9080),
            ("REVIEWS.shop.svc.cluster.local.:9080", 9080),
            ("10.96.0.10:9080", 9080),
        ] {
            let sp = s
                .by_authority(authority)
                .unwrap_or_else(|| panic!("{authority} did not resolve"));
            assert_eq!(
                (sp.service.as_str(), sp.port),
                ("shop/reviews", port),
                "{authority}"
            );
        }
        for missing in [
            "reviews:81",
            "ratings",
            "reviews.other",
            "10.96.0.10:1",
            "reviews:x",
        ] {
            assert!(s.by_authority(missing).is_none(), "{missing}");
        }
        // A short name resolves only in the proxy's own namespace.
        assert!(snapshot("other").by_authority("reviews:9080").is_none());
        assert!(snapshot("other")
            .by_authority("reviews.shop:9080")
            .is_some());
    }

    #[test]
    fn splits_authorities() {
        assert_eq!(split_authority("echo"), Some(("echo", None)));
        assert_eq!(
            split_authority("echo.ns:8080"),
            Some(("echo.ns", Some(8080)))
        );
        assert_eq!(split_authority("[::1]:80"), Some(("::1", Some(80))));
        assert_eq!(split_authority("echo:http"), None);
    }
}
