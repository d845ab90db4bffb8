//! The control plane's own metrics (`weft_control_*`), served on its admin endpoint.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    pub result: &'static str,
}

pub struct Metrics {
    registry: Registry,
    pub connected: Gauge,
    pub pushes: Counter,
    pub resources_sent: Counter,
    pub acks: Counter,
    pub nacks: Counter,
    /// From a push leaving to its ACK arriving.
    pub push_seconds: Histogram,
    pub certificates: Family<ResultLabels, Counter>,
    pub reloads: Family<ResultLabels, Counter>,
    pub jwks_fetches: Family<ResultLabels, Counter>,
    pub generation: Gauge,
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("weft_control");
        let connected = Gauge::default();
        registry.register(
            "connected_proxies",
            "Proxies with an open xDS stream",
            connected.clone(),
        );
        let pushes = Counter::default();
        registry.register("pushes", "xDS responses sent", pushes.clone());
        let resources_sent = Counter::default();
        registry.register(
            "resources_sent",
            "Resources sent in xDS responses",
            resources_sent.clone(),
        );
        let acks = Counter::default();
        registry.register("acks", "xDS responses ACKed by proxies", acks.clone());
        let nacks = Counter::default();
        registry.register(
            "nacks",
            "xDS responses rejected (NACKed) by proxies",
            nacks.clone(),
        );
        let push_seconds = Histogram::new([
            0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
        ]);
        registry.register_with_unit(
            "push_ack",
            "Time from sending an xDS response to the proxy's ACK",
            Unit::Seconds,
            push_seconds.clone(),
        );
        let certificates = Family::<ResultLabels, Counter>::default();
        registry.register(
            "certificates",
            "Certificate requests by result (issued-token, issued-renewal, refused)",
            certificates.clone(),
        );
        let reloads = Family::<ResultLabels, Counter>::default();
        registry.register(
            "config_reloads",
            "Configuration loads by result",
            reloads.clone(),
        );
        let jwks_fetches = Family::<ResultLabels, Counter>::default();
        registry.register(
            "jwks_fetches",
            "Fetches of RequestAuthentication key sets (jwksUri, OpenID discovery) by result",
            jwks_fetches.clone(),
        );
        let generation = Gauge::default();
        registry.register(
            "model_generation",
            "Published model generation",
            generation.clone(),
        );
        Self {
            registry,
            connected,
            pushes,
            resources_sent,
            acks,
            nacks,
            push_seconds,
            certificates,
            reloads,
            jwks_fetches,
            generation,
        }
    }

    /// OpenMetrics text.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
