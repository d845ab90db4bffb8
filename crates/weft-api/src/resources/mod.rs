//! The typed resources Weft reads, exactly as users write them.
//!
//! Every struct denies unknown fields: a field Weft does not understand is a load error that
//! names it, never silently ignored. Fields that exist in the upstream API but that Weft does
//! not implement are parsed (so the error can say so plainly) and rejected at validation.

pub mod gateway;
pub mod istio;
pub mod local;
pub mod mesh_config;
pub mod meta;
pub mod resilience;
pub mod service;

use std::path::PathBuf;
use std::sync::Arc;

pub use meta::{IntOrString, ObjectMeta};

/// A value with the place in its document it came from.
pub type Spanned<T> = serde_saphyr::Spanned<T>;

/// Where a resource was read from.
#[derive(Clone, Debug)]
pub struct Source {
    pub file: Arc<PathBuf>,
    /// Line of the file at which this resource's document starts, minus one: a line number
    /// inside the document plus this offset is a line number in the file.
    pub line_offset: u64,
    /// Line of the document's first content (its `apiVersion` or `kind`, usually).
    pub line: u64,
}

impl Source {
    /// The file line of a spanned value of this resource (the document's line when unknown).
    pub fn line_of<T>(&self, value: &Spanned<T>) -> u64 {
        match value.referenced.line() {
            0 => self.line,
            line => self.line_offset + line,
        }
    }
}

/// One resource with its metadata, its spec and its source.
#[derive(Clone, Debug)]
pub struct Object<S> {
    pub api_version: String,
    pub meta: ObjectMeta,
    pub spec: S,
    pub source: Source,
}

impl<S> Object<S> {
    pub fn name(&self) -> &str {
        self.meta.name()
    }

    pub fn namespace(&self) -> &str {
        self.meta.namespace()
    }
}

/// Every kind of resource Weft reads.
#[derive(Clone, Debug)]
pub enum Resource {
    Namespace(Object<service::NamespaceSpec>),
    Service(Object<service::ServiceSpec>),
    HttpRoute(Object<gateway::HttpRouteSpec>),
    GrpcRoute(Object<gateway::GrpcRouteSpec>),
    TcpRoute(Object<gateway::TcpRouteSpec>),
    WorkloadEntry(Object<istio::WorkloadEntrySpec>),
    DestinationRule(Object<istio::DestinationRuleSpec>),
    PeerAuthentication(Object<istio::PeerAuthenticationSpec>),
    AuthorizationPolicy(Object<istio::AuthorizationPolicySpec>),
    RequestAuthentication(Object<istio::RequestAuthenticationSpec>),
    MeshConfig(Object<mesh_config::MeshConfigSpec>),
    LocalWorkload(Object<local::LocalWorkloadSpec>),
    RateLimitPolicy(Object<resilience::RateLimitPolicySpec>),
    FaultInjection(Object<resilience::FaultInjectionSpec>),
}

impl Resource {
    pub fn kind(&self) -> Kind {
        match self {
            Resource::Namespace(_) => Kind::Namespace,
            Resource::Service(_) => Kind::Service,
            Resource::HttpRoute(_) => Kind::HttpRoute,
            Resource::GrpcRoute(_) => Kind::GrpcRoute,
            Resource::TcpRoute(_) => Kind::TcpRoute,
            Resource::WorkloadEntry(_) => Kind::WorkloadEntry,
            Resource::DestinationRule(_) => Kind::DestinationRule,
            Resource::PeerAuthentication(_) => Kind::PeerAuthentication,
            Resource::AuthorizationPolicy(_) => Kind::AuthorizationPolicy,
            Resource::RequestAuthentication(_) => Kind::RequestAuthentication,
            Resource::MeshConfig(_) => Kind::MeshConfig,
            Resource::LocalWorkload(_) => Kind::LocalWorkload,
            Resource::RateLimitPolicy(_) => Kind::RateLimitPolicy,
            Resource::FaultInjection(_) => Kind::FaultInjection,
        }
    }

    fn parts(&self) -> (&ObjectMeta, &Source) {
        match self {
            Resource::Namespace(o) => (&o.meta, &o.source),
            Resource::Service(o) => (&o.meta, &o.source),
            Resource::HttpRoute(o) => (&o.meta, &o.source),
            Resource::GrpcRoute(o) => (&o.meta, &o.source),
            Resource::TcpRoute(o) => (&o.meta, &o.source),
            Resource::WorkloadEntry(o) => (&o.meta, &o.source),
            Resource::DestinationRule(o) => (&o.meta, &o.source),
            Resource::PeerAuthentication(o) => (&o.meta, &o.source),
            Resource::AuthorizationPolicy(o) => (&o.meta, &o.source),
            Resource::RequestAuthentication(o) => (&o.meta, &o.source),
            Resource::MeshConfig(o) => (&o.meta, &o.source),
            Resource::LocalWorkload(o) => (&o.meta, &o.source),
            Resource::RateLimitPolicy(o) => (&o.meta, &o.source),
            Resource::FaultInjection(o) => (&o.meta, &o.source),
        }
    }

    pub fn meta(&self) -> &ObjectMeta {
        self.parts().0
    }

    pub fn source(&self) -> &Source {
        self.parts().1
    }

    /// `Kind namespace/name`, as diagnostics name a resource.
    pub fn display_name(&self) -> String {
        let meta = self.meta();
        if self.kind().is_namespaced() {
            format!("{} {}/{}", self.kind(), meta.namespace(), meta.name())
        } else {
            format!("{} {}", self.kind(), meta.name())
        }
    }
}

/// The kinds Weft reads, with the API groups and versions it accepts for each.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Namespace,
    Service,
    HttpRoute,
    GrpcRoute,
    TcpRoute,
    WorkloadEntry,
    DestinationRule,
    PeerAuthentication,
    AuthorizationPolicy,
    RequestAuthentication,
    MeshConfig,
    LocalWorkload,
    /// Linkerd's `HTTPLocalRateLimitPolicy`.
    RateLimitPolicy,
    FaultInjection,
}

impl Kind {
    pub const ALL: [Kind; 14] = [
        Kind::Namespace,
        Kind::Service,
        Kind::HttpRoute,
        Kind::GrpcRoute,
        Kind::TcpRoute,
        Kind::WorkloadEntry,
        Kind::DestinationRule,
        Kind::PeerAuthentication,
        Kind::AuthorizationPolicy,
        Kind::RequestAuthentication,
        Kind::MeshConfig,
        Kind::LocalWorkload,
        Kind::RateLimitPolicy,
        Kind::FaultInjection,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Namespace => "Namespace",
            Kind::Service => "Service",
            Kind::HttpRoute => "HTTPRoute",
            Kind::GrpcRoute => "GRPCRoute",
            Kind::TcpRoute => "TCPRoute",
            Kind::WorkloadEntry => "WorkloadEntry",
            Kind::DestinationRule => "DestinationRule",
            Kind::PeerAuthentication => "PeerAuthentication",
            Kind::AuthorizationPolicy => "AuthorizationPolicy",
            Kind::RequestAuthentication => "RequestAuthentication",
            Kind::MeshConfig => "MeshConfig",
            Kind::LocalWorkload => "LocalWorkload",
            Kind::RateLimitPolicy => "HTTPLocalRateLimitPolicy",
            Kind::FaultInjection => "FaultInjection",
        }
    }

    /// `apiVersion` values accepted for this kind.
    pub fn api_versions(self) -> &'static [&'static str] {
        match self {
            Kind::Namespace | Kind::Service => &["v1"],
            Kind::HttpRoute => &[
                "gateway.networking.k8s.io/v1",
                "gateway.networking.k8s.io/v1beta1",
            ],
            Kind::GrpcRoute => &[
                "gateway.networking.k8s.io/v1",
                "gateway.networking.k8s.io/v1alpha2",
            ],
            Kind::TcpRoute => &["gateway.networking.k8s.io/v1alpha2"],
            Kind::WorkloadEntry | Kind::DestinationRule => &[
                "networking.istio.io/v1",
                "networking.istio.io/v1beta1",
                "networking.istio.io/v1alpha3",
            ],
            Kind::PeerAuthentication | Kind::AuthorizationPolicy | Kind::RequestAuthentication => {
                &["security.istio.io/v1", "security.istio.io/v1beta1"]
            }
            Kind::MeshConfig | Kind::LocalWorkload | Kind::FaultInjection => &["weft.dev/v1alpha1"],
            Kind::RateLimitPolicy => &["policy.linkerd.io/v1alpha1"],
        }
    }

    pub fn is_namespaced(self) -> bool {
        !matches!(self, Kind::Namespace | Kind::MeshConfig)
    }

    pub fn from_name(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == name)
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
