//! The compact serialization (RFC 7515 §7.1) taken apart: three base64url segments, the
//! header read for `alg` and `kid` only. Everything here runs on client bytes before any
//! signature is checked, so it is strict and bounded: the size is checked before anything is
//! decoded, the dots are counted before anything is split, and JSON nesting is capped by
//! serde_json's recursion limit.

use serde_json::{Map, Value};
use weft_api::jwks::{b64, Algorithm};

use super::error::TokenError;
use super::MAX_TOKEN_BYTES;

/// A token split and decoded, its signature not yet checked.
pub(crate) struct Compact<'t> {
    /// `header_b64 "." payload_b64`, exactly as received: what was signed.
    pub signing_input: &'t str,
    pub payload_b64: &'t str,
    pub payload: Vec<u8>,
    pub signature: Vec<u8>,
    pub alg: Algorithm,
    pub kid: Option<String>,
}

/// Splits and decodes `token`; the header must name a supported `alg`.
pub(crate) fn parse(token: &str) -> Result<Compact<'_>, TokenError> {
    let (header_b64, payload_b64, signature_b64) = segments(token)?;
    let header = b64::decode(header_b64).ok_or(TokenError::Malformed("header is not base64url"))?;
    let header: Map<String, Value> = match serde_json::from_slice(&header) {
        Ok(Value::Object(map)) => map,
        _ => return Err(TokenError::Malformed("header is not a JSON object")),
    };
    let alg = algorithm(&header)?;
    // RFC 7515 §4.1.11: a recipient must refuse a token whose `crit` lists an extension it
    // does not understand, and Weft understands none (`b64: false` would change what was
    // signed, for one).
    if header.contains_key("crit") {
        return Err(TokenError::Malformed("crit header not supported"));
    }
    // Other members (`typ`, `cty`, and `jku`, `x5u`, `jwk`, `x5c` above all) are ignored:
    // keys come from the rule's set only, never from the token that wants to be trusted.
    let kid = match header.get("kid") {
        None => None,
        Some(Value::String(kid)) => Some(kid.clone()),
        Some(_) => return Err(TokenError::Malformed("kid is not a string")),
    };
    let payload =
        b64::decode(payload_b64).ok_or(TokenError::Malformed("payload is not base64url"))?;
    let signature =
        b64::decode(signature_b64).ok_or(TokenError::Malformed("signature is not base64url"))?;
    Ok(Compact {
        signing_input: &token[..header_b64.len() + 1 + payload_b64.len()],
        payload_b64,
        payload,
        signature,
        alg,
        kid,
    })
}

/// The three segments of a compact JWS, after the size check.
pub(crate) fn segments(token: &str) -> Result<(&str, &str, &str), TokenError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(TokenError::TooLarge);
    }
    let mut parts = token.split('.');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(h), Some(p), Some(s), None) => Ok((h, p, s)),
        // Five segments is the JWE compact form: an encrypted token, not a signed one.
        _ if token.bytes().filter(|b| *b == b'.').count() == 4 => {
            Err(TokenError::Malformed("encrypted JWT (JWE) not supported"))
        }
        _ => Err(TokenError::Malformed("not three dot-separated segments")),
    }
}

/// The header's `alg`, refused unless Weft verifies it.
fn algorithm(header: &Map<String, Value>) -> Result<Algorithm, TokenError> {
    let name = match header.get("alg") {
        Some(Value::String(name)) => name,
        Some(_) => return Err(TokenError::Malformed("alg is not a string")),
        None => return Err(TokenError::Malformed("header has no alg")),
    };
    // `none` is refused in any spelling: some libraries once compared it case-insensitively,
    // and an operator reading "unsupported alg NONE" might not see an unsigned token.
    if name.eq_ignore_ascii_case("none") {
        return Err(TokenError::AlgorithmNone);
    }
    Algorithm::from_name(name).ok_or_else(|| TokenError::unsupported(name))
}
