//! Weft's resource model.
//!
//! - [`load`] reads YAML files and directories into typed [`resources`], with errors that name
//!   the file, line and field;
//! - [`validate`] checks the set as a whole (references, duplicates, matches, ports) and builds
//!   the [`model::Model`] the rest of Weft uses;
//! - [`compile`] turns the model into one proxy's [`view::ProxyView`], or into the pieces the
//!   control plane sends: the same code serves a proxy reading files and the control plane;
//! - [`watch`] says when a configuration directory changed.
//!
//! No I/O beyond reading and watching files.

pub mod compile;
pub mod diagnostic;
pub mod duration;
pub mod jwks;
pub mod load;
pub mod load_cache;
pub mod model;
pub mod registration;
pub mod resources;
pub mod validate;
pub mod view;
pub mod watch;

pub use diagnostic::{Diagnostic, Diagnostics, InvalidConfig, Severity};

/// The namespace of an object that names none, as kubectl applies it.
pub const DEFAULT_NAMESPACE: &str = "default";

/// The port of a host's HBONE tunnel, where proxies on other hosts reach its workloads.
pub const TUNNEL_PORT: u16 = 4108;

/// The control plane's xDS and certificate port (its gRPC listener).
pub const CONTROL_GRPC_PORT: u16 = 4180;
