//! JWT verification for Istio's RequestAuthentication: JWS compact tokens (RFC 7515) checked
//! against a rule's key set (RFC 7517) and claims, with the rules of Envoy's `jwt_authn`
//! filter, which is what Istio configures, so a policy behaves as it would under Istio.
//!
//! The cryptography is ring's (`RS*`, `PS*`, `ES256`, `ES384`, `EdDSA`); what is written here
//! is the parsing and the decisions around it, kept to small pieces:
//! - [`Jwks::parse`]: a key set turned into ring-ready keys once, when it arrives, with the
//!   unusable keys counted by reason. The key set types and the [`Algorithm`]s are
//!   `weft_api::jwks`'s, re-exported here (the base64url decoder is its too): the validator
//!   refuses an inline set with no usable key at load with that same parser, so load and run
//!   time always agree;
//! - `alg`: each [`Algorithm`]'s ring primitive;
//! - `token`: the compact form taken apart, strictly and with bounded work;
//! - `signature`: which keys a token may be checked with, and the check;
//! - `claims`: `iss`, `exp`, `nbf`, `aud`;
//! - [`TokenError`]: why a token was refused, in words safe for a `weft-error` header.
//!
//! The request path calls [`unverified_issuer`] to pick the rule whose keys apply, then
//! [`verify`] with that rule's [`Jwks`] and [`Expect`].

mod alg;
mod claims;
mod error;
mod fuzz;
mod signature;
mod token;

#[cfg(test)]
mod tests;

use serde_json::Value;
use weft_api::jwks::b64;

pub use error::TokenError;
#[doc(hidden)]
pub use fuzz::{fuzz_jwks, fuzz_token};
pub use weft_api::jwks::{Algorithm, Jwks, JwksError, Key, SkipReason, Skipped};

/// The largest token accepted, in bytes (Envoy's default header limit is larger, but a JWT
/// beyond 8 KiB is not one an identity provider issued); checked before anything is decoded.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// The clock skew Envoy allows on `exp` and `nbf` by default (`clock_skew_seconds`).
pub const DEFAULT_LEEWAY_SECS: u64 = 60;

/// What verification needs from a RequestAuthentication rule.
#[derive(Clone, Copy, Debug)]
pub struct Expect<'a> {
    /// `iss` must be exactly this.
    pub issuer: &'a str,
    /// Accepted `aud` values; empty: no audience check.
    pub audiences: &'a [String],
    /// The current time, in seconds since the Unix epoch.
    pub now_unix: u64,
    /// Clock skew allowed on `exp` and `nbf` ([`DEFAULT_LEEWAY_SECS`] is Envoy's).
    pub leeway_secs: u64,
}

/// A token that passed: its claims (the decoded payload JSON object) and the raw payload
/// segment (base64url, as Envoy forwards it in `outputPayloadToHeader`).
#[derive(Clone, Debug, PartialEq)]
pub struct Verified {
    pub claims: Value,
    pub payload_b64: String,
}

/// The `iss` claim of a token without verifying it (to choose which rule's keys to use);
/// `None` when malformed. Never trust it for anything else.
pub fn unverified_issuer(token: &str) -> Option<String> {
    let (_, payload_b64, _) = token::segments(token).ok()?;
    let payload = b64::decode(payload_b64)?;
    match serde_json::from_slice::<Value>(&payload).ok()? {
        Value::Object(mut claims) => match claims.remove("iss")? {
            Value::String(iss) => Some(iss),
            _ => None,
        },
        _ => None,
    }
}

/// Verifies `token` against `jwks` and `expect`: its form, its signature, then its claims.
pub fn verify(token: &str, jwks: &Jwks, expect: &Expect<'_>) -> Result<Verified, TokenError> {
    let signed = signature::verify_signature(token, jwks)?;
    let claims = match serde_json::from_slice::<Value>(&signed.payload) {
        Ok(Value::Object(claims)) => claims,
        _ => return Err(TokenError::Malformed("payload is not a JSON object")),
    };
    claims::check(&claims, expect)?;
    Ok(Verified {
        claims: Value::Object(claims),
        payload_b64: signed.payload_b64.to_string(),
    })
}
