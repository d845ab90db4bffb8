//! Weft's control plane (`weft control`).
//!
//! - [`store`]: the configuration directory, watched and validated as a whole; the last valid
//!   model stays published when a change is invalid. Or, for replicas on several hosts,
//!   [`etcd`]: resources written by `weft apply`, registrations as leases, followed by a watch
//!   ([`resources_api`] takes the changes; [`opening`] reads either store at start).
//! - [`published`] and [`xds`]: per-proxy resources, compiled on demand from the published
//!   model and sent over delta xDS (`DeltaAggregatedResources`).
//! - [`identity`] and [`tokens`]: the certificate authority's service; join tokens.
//! - [`registry`] and [`workloads_api`]: workloads registered at run time by `weft run`
//!   (leases), merged with the directory's resources.
//! - [`serve`]: the gRPC listener (TLS 1.3, HTTP/2); [`admin`]: status, metrics, CA rotation
//!   (its responses built by `http_response`, which [`workloads_api`] shares).
//! - [`state`]: the state directory (CA key, tokens), written atomically and privately.
//! - [`connected`]: the proxies connected now and how current each is (`weft check`,
//!   `weft proxy-config`).
//! - [`proxy_route`]: how a proxy's admin endpoint is reached, directly or (on a joined host)
//!   over mutual TLS through its host's tunnel.
//! - [`prometheus_sd`]: the proxies as Prometheus scrape targets (`http_sd_configs`).
//! - [`stats`]: every proxy's golden metrics scraped on an interval, for `weft stat`.
//! - [`jwks`]: the key sets RequestAuthentications name (`jwksUri`, OpenID discovery),
//!   fetched and refreshed here and pushed to proxies with their configuration.

pub mod admin;
pub mod audit;
pub mod connected;
pub mod dashboard;
pub mod etcd;
pub mod hosts_api;
mod http_response;
pub mod identity;
pub mod jwks;
mod jwks_http;
pub mod metrics;
pub mod opening;
pub mod prometheus_sd;
pub mod proxies_api;
mod proxy_admin;
pub mod proxy_route;
pub mod published;
pub mod registry;
pub mod resources_api;
pub mod run;
pub mod serve;
pub mod state;
pub mod stats;
pub mod store;
mod tap_relay;
pub mod tokens;
pub mod workloads_api;
pub mod xds;

pub use etcd::{EtcdConfig, EtcdTls};
pub use opening::StoreConfig;
pub use run::{run, CaFiles, ControlConfig, ControlError};
