//! Inbound request policy: what a proxy decides about a request before the application sees
//! it, as pure functions over the view the proxy holds. The proxy and `weft authz check` both
//! call this crate, so an explanation is the decision itself, not a copy of its logic.
//!
//! - [`normalize`]: request paths normalized as Istio's `pathNormalization` says, and the
//!   inputs refused outright (`%00`);
//! - [`authz`]: AuthorizationPolicy — DENY, then ALLOW, with AUDIT beside them — over a
//!   connection's and a request's attributes;
//! - [`jwt`]: RequestAuthentication — JWTs verified against a rule's key set and claims, as
//!   Envoy's `jwt_authn` filter verifies them.

pub mod authz;
pub mod jwt;
pub mod normalize;

pub use authz::{Authorizer, ConnectionAttrs, Decision, PeerAttrs, RequestAttrs, Verdict};
