//! JSON Web Key Sets (RFC 7517) as data: the one parser of key sets in Weft. The validator
//! calls [`check`] to refuse an inline `jwks` with no usable key at load, the control plane
//! to check a fetched set, and `weft-policy`'s JWT verifier builds its keys with
//! [`Jwks::parse`]; all three therefore agree on which keys are usable.
//!
//! A key is usable when a signature can actually be checked with it: RSA of 2048 to 8192
//! bits (ring's bounds), EC P-256 and P-384, OKP Ed25519. Other keys are skipped and counted
//! by reason: symmetric `oct` keys above all (a mesh has no business holding shared secrets
//! in its configuration), keys whose `use` is not `sig`, and keys whose `alg` is not one of
//! the [`Algorithm`]s or does not fit the key.
//!
//! Nothing here does cryptography (this crate has no crypto dependency): the material is
//! decoded and size-checked, and `weft-policy` maps [`Algorithm`] and [`KeyMaterial`] to
//! ring's verifiers.
//!
//! - `set`: [`Jwks`], its [`Key`]s and [`Skipped`] keys, [`JwksError`];
//! - `jwk`: one key parsed, or the [`SkipReason`] it was skipped for;
//! - `alg`: the JWS [`Algorithm`]s and the kind of key each needs;
//! - `b64`: base64url decoding, shared with the verifier's token parsing (public for that
//!   alone, and hidden).

mod alg;
#[doc(hidden)]
pub mod b64;
mod jwk;
mod set;

#[cfg(test)]
mod tests;

pub use alg::Algorithm;
pub use jwk::SkipReason;
pub use set::{Jwks, JwksError, Key, KeyMaterial, Skipped};

/// Checks a key set for the validator and the control plane: `Err` with the
/// [`JwksError`]'s text when it is not a key set or has no usable key.
pub fn check(json: &str) -> Result<(), String> {
    Jwks::parse(json).map(drop).map_err(|e| e.to_string())
}
