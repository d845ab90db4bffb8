//! Choosing the keys a token may be checked with, and checking it with ring.
//!
//! Key choice follows Envoy's `jwt_authn` (which Istio configures), with one addition: a key
//! must be of the kind the token's `alg` needs. A key is a candidate when
//! - the token has no `kid`, or the key has none, or both are equal (Envoy: a key without a
//!   `kid` may verify any token);
//! - the key holds RSA for `RS*`/`PS*`, P-256 for `ES256`, P-384 for `ES384`, Ed25519 for
//!   `EdDSA`, and the key's own `alg`, if it has one, is the token's ([`Key::fits`], beside
//!   the key set parser in `weft_api::jwks`).
//!
//! Every candidate is tried; the token passes if one verifies. The error says which step
//! failed: no key with the `kid` (a rotated-away key, usually), keys but none of the right
//! kind, or a signature no candidate accepts.

use ring::signature::{RsaPublicKeyComponents, UnparsedPublicKey};
use weft_api::jwks::{Algorithm, Jwks, Key, KeyMaterial};

use super::alg::{raw_key_verifier, rsa_params};
use super::error::TokenError;
use super::token::{self, Compact};

/// Parses `token` and checks its signature against `jwks`; the payload is returned decoded
/// but not interpreted (it need not be JSON). Claims are the caller's to check.
pub(crate) fn verify_signature<'t>(token: &'t str, jwks: &Jwks) -> Result<Compact<'t>, TokenError> {
    let compact = token::parse(token)?;
    let mut kid_matched = false;
    let mut tried = false;
    for key in jwks.keys() {
        if let (Some(want), Some(have)) = (compact.kid.as_deref(), key.kid()) {
            if want != have {
                continue;
            }
        }
        kid_matched = true;
        if !key.fits(compact.alg) {
            continue;
        }
        tried = true;
        let message = compact.signing_input.as_bytes();
        if verify_with(key, compact.alg, message, &compact.signature) {
            return Ok(compact);
        }
    }
    Err(if tried {
        TokenError::BadSignature
    } else if kid_matched {
        TokenError::KeyTypeMismatch
    } else {
        TokenError::NoMatchingKey
    })
}

/// One signature check; `false` for any failure (ring says no more than that either).
fn verify_with(key: &Key, alg: Algorithm, message: &[u8], signature: &[u8]) -> bool {
    match key.material() {
        KeyMaterial::Rsa { n, e } => rsa_params(alg).is_some_and(|params| {
            RsaPublicKeyComponents { n, e }
                .verify(params, message, signature)
                .is_ok()
        }),
        KeyMaterial::P256(point) | KeyMaterial::P384(point) => {
            verify_raw(alg, point, message, signature)
        }
        KeyMaterial::Ed25519(x) => verify_raw(alg, x, message, signature),
    }
}

fn verify_raw(alg: Algorithm, key: &[u8], message: &[u8], signature: &[u8]) -> bool {
    raw_key_verifier(alg).is_some_and(|verifier| {
        UnparsedPublicKey::new(verifier, key)
            .verify(message, signature)
            .is_ok()
    })
}
