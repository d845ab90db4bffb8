//! Weft's data plane.
//!
//! A proxy runs beside one workload and serves three listeners:
//!
//! - **outbound** (default `:4140`): connections the workload makes, captured by iptables or
//!   sent to the proxy explicitly; they are routed by the Service they were addressed to (the
//!   original destination, or the HTTP `Host` for explicit use), balanced over the Service's
//!   endpoints and sent on — to a peer proxy's inbound port over the mesh transport when the
//!   endpoint is meshed;
//! - **inbound** (default `:4143`): connections to the workload, from peer proxies or from
//!   outside the mesh; forwarded to the local application;
//! - **admin** (default `:4191`): `/ready`, `/live`, `/metrics` (open); `/config` and `/tap`
//!   (the admin token).
//!
//! Configuration is a [`weft_api::view::ProxyView`], compiled into a [`state::Snapshot`] off
//! the request path and swapped in whole; requests in flight keep the snapshot they started
//! with.

pub mod access_log;
pub mod admin;
pub mod balance;
pub mod config;
pub mod control;
pub mod detect;
pub mod drain;
pub mod error;
pub mod h1;
pub mod http;
pub mod inbound;
pub mod install;
pub mod io;
pub mod listen;
pub mod mesh;
pub mod metrics;
pub mod observe;
pub mod outbound;
pub mod resilience;
pub mod run;
pub mod state;
pub mod status;
pub mod tap;
pub mod trace;
pub mod watch;

pub use config::ProxyConfig;
pub use run::run;
