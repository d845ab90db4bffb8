//! One JSON Web Key (RFC 7517 §4, RFC 7518 §6, RFC 8037 §2) turned into key material ring
//! (`weft-policy`'s verifier) can use, or the reason it is skipped. Everything ring would
//! refuse later (an RSA modulus outside 2048–8192 bits, an even modulus, an exponent it does
//! not take, EC coordinates of the wrong length) is refused here, once, when the set is
//! loaded: a key that survives parsing is one a signature can actually be checked with, and
//! an operator learns about a useless key at load time instead of from a stream of
//! `BadSignature`s.

use serde_json::{Map, Value};

use super::alg::Algorithm;
use super::b64;
use super::set::{Key, KeyMaterial};

/// Why a key of a set was skipped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SkipReason {
    /// An entry of `keys` that is not a JSON object.
    NotAnObject,
    /// No `kty`, or one that is not a string.
    NoKty,
    /// `kty: oct`: HMAC secrets do not belong in mesh configuration.
    Symmetric,
    /// A `kty` other than `RSA`, `EC`, `OKP` and `oct`.
    UnsupportedKty,
    /// `use` is present and is not `sig`.
    NotForSignatures,
    /// `kid` is not a string.
    BadKid,
    /// `alg` is not one Weft verifies, or not one for this kind of key.
    UnsupportedAlg,
    /// `n` or `e` missing or not base64url, an empty or even modulus.
    RsaMalformed,
    /// A modulus shorter than 2048 bits.
    RsaTooShort,
    /// A modulus longer than 8192 bits.
    RsaTooLong,
    /// An exponent that is even or outside 3..2^33.
    RsaBadExponent,
    /// A `crv` other than `P-256` and `P-384`.
    EcUnsupportedCurve,
    /// `x` or `y` missing, not base64url, or not the curve's size.
    EcMalformed,
    /// A `crv` other than `Ed25519`.
    OkpUnsupportedCurve,
    /// `x` missing, not base64url, or not 32 bytes.
    OkpMalformed,
}

impl SkipReason {
    /// (singular noun, plural noun, what is wrong): "1 RSA key with n shorter than 2048 bits".
    pub(crate) fn phrase(self) -> (&'static str, &'static str, &'static str) {
        match self {
            SkipReason::NotAnObject => ("entry", "entries", "that is not a JSON object"),
            SkipReason::NoKty => ("key", "keys", "without a string kty"),
            SkipReason::Symmetric => ("oct key", "oct keys", "(symmetric keys are not supported)"),
            SkipReason::UnsupportedKty => ("key", "keys", "of a kty other than RSA, EC or OKP"),
            SkipReason::NotForSignatures => ("key", "keys", "with a use other than \"sig\""),
            SkipReason::BadKid => ("key", "keys", "whose kid is not a string"),
            SkipReason::UnsupportedAlg => (
                "key",
                "keys",
                "whose alg is unsupported or does not fit its kty",
            ),
            SkipReason::RsaMalformed => {
                ("RSA key", "RSA keys", "with a missing or malformed n or e")
            }
            SkipReason::RsaTooShort => ("RSA key", "RSA keys", "with n shorter than 2048 bits"),
            SkipReason::RsaTooLong => ("RSA key", "RSA keys", "with n longer than 8192 bits"),
            SkipReason::RsaBadExponent => (
                "RSA key",
                "RSA keys",
                "with an exponent e that is not odd and in 3..2^33",
            ),
            SkipReason::EcUnsupportedCurve => {
                ("EC key", "EC keys", "on a crv other than P-256 or P-384")
            }
            SkipReason::EcMalformed => (
                "EC key",
                "EC keys",
                "with a missing x or y or one of the wrong size",
            ),
            SkipReason::OkpUnsupportedCurve => {
                ("OKP key", "OKP keys", "on a crv other than Ed25519")
            }
            SkipReason::OkpMalformed => (
                "OKP key",
                "OKP keys",
                "with a missing x or one that is not 32 bytes",
            ),
        }
    }
}

/// ring's bounds (`RSA_*_2048_8192_*`): it compares the modulus length rounded up to whole
/// bytes with the floor, and the exact bit length with the ceiling.
const RSA_MIN_BYTES: usize = 2048 / 8;
const RSA_MAX_BITS: usize = 8192;
/// ring's exponent bounds for verification.
const RSA_E_MIN: u64 = 3;
const RSA_E_MAX: u64 = (1 << 33) - 1;

/// Parses one entry of a set's `keys`.
pub(crate) fn parse_key(entry: &Value) -> Result<Key, SkipReason> {
    let jwk = entry.as_object().ok_or(SkipReason::NotAnObject)?;
    let kty = jwk
        .get("kty")
        .and_then(Value::as_str)
        .ok_or(SkipReason::NoKty)?;
    // Envoy skips a key whose `use` is not `sig`; an encryption key must never verify.
    if jwk.get("use").is_some_and(|u| u.as_str() != Some("sig")) {
        return Err(SkipReason::NotForSignatures);
    }
    let kid = match jwk.get("kid") {
        None => None,
        Some(Value::String(kid)) => Some(kid.clone()),
        Some(_) => return Err(SkipReason::BadKid),
    };
    let material = match kty {
        "RSA" => rsa(jwk)?,
        "EC" => ec(jwk)?,
        "OKP" => okp(jwk)?,
        "oct" => return Err(SkipReason::Symmetric),
        _ => return Err(SkipReason::UnsupportedKty),
    };
    let alg = match jwk.get("alg") {
        None => None,
        Some(alg) => {
            let alg = alg
                .as_str()
                .and_then(Algorithm::from_name)
                .ok_or(SkipReason::UnsupportedAlg)?;
            // A key that says `ES256` but holds an RSA modulus is contradictory: refuse it
            // rather than guess which half is true.
            if alg.key_kind() != material.kind() {
                return Err(SkipReason::UnsupportedAlg);
            }
            Some(alg)
        }
    };
    Ok(Key { kid, alg, material })
}

fn rsa(jwk: &Map<String, Value>) -> Result<KeyMaterial, SkipReason> {
    let n = strip_leading_zeros(field(jwk, "n").ok_or(SkipReason::RsaMalformed)?);
    let e = strip_leading_zeros(field(jwk, "e").ok_or(SkipReason::RsaMalformed)?);
    let (Some(first), Some(last)) = (n.first(), n.last()) else {
        return Err(SkipReason::RsaMalformed);
    };
    if n.len() < RSA_MIN_BYTES {
        return Err(SkipReason::RsaTooShort);
    }
    let bits = n.len() * 8 - first.leading_zeros() as usize;
    if bits > RSA_MAX_BITS {
        return Err(SkipReason::RsaTooLong);
    }
    // ring refuses an even modulus (it works in Montgomery form); no real key has one.
    if last & 1 == 0 {
        return Err(SkipReason::RsaMalformed);
    }
    if e.len() > 5 {
        return Err(SkipReason::RsaBadExponent);
    }
    let value = e.iter().fold(0u64, |v, b| (v << 8) | u64::from(*b));
    if !(RSA_E_MIN..=RSA_E_MAX).contains(&value) || value & 1 == 0 {
        return Err(SkipReason::RsaBadExponent);
    }
    Ok(KeyMaterial::Rsa { n, e })
}

fn ec(jwk: &Map<String, Value>) -> Result<KeyMaterial, SkipReason> {
    let size = match jwk.get("crv").and_then(Value::as_str) {
        Some("P-256") => 32,
        Some("P-384") => 48,
        _ => return Err(SkipReason::EcUnsupportedCurve),
    };
    let x = field(jwk, "x").ok_or(SkipReason::EcMalformed)?;
    let y = field(jwk, "y").ok_or(SkipReason::EcMalformed)?;
    // RFC 7518 §6.2.1.2: the coordinates are exactly the field size, leading zeros kept;
    // ring takes the uncompressed SEC1 point and checks that it is on the curve.
    if x.len() != size || y.len() != size {
        return Err(SkipReason::EcMalformed);
    }
    let mut point = Vec::with_capacity(1 + 2 * size);
    point.push(0x04);
    point.extend_from_slice(&x);
    point.extend_from_slice(&y);
    Ok(if size == 32 {
        KeyMaterial::P256(point)
    } else {
        KeyMaterial::P384(point)
    })
}

fn okp(jwk: &Map<String, Value>) -> Result<KeyMaterial, SkipReason> {
    if jwk.get("crv").and_then(Value::as_str) != Some("Ed25519") {
        return Err(SkipReason::OkpUnsupportedCurve);
    }
    let x = field(jwk, "x").ok_or(SkipReason::OkpMalformed)?;
    let x: [u8; 32] = x.try_into().map_err(|_| SkipReason::OkpMalformed)?;
    Ok(KeyMaterial::Ed25519(x))
}

/// A base64url member, decoded; `None` when absent, not a string or not base64url.
fn field(jwk: &Map<String, Value>, name: &str) -> Option<Vec<u8>> {
    jwk.get(name)
        .and_then(Value::as_str)
        .and_then(b64::decode_padded)
}

/// RFC 7518 asks for the minimal big-endian encoding, but some issuers prepend a zero byte
/// (a DER habit) and ring refuses leading zeros, so they go.
fn strip_leading_zeros(mut v: Vec<u8>) -> Vec<u8> {
    let zeros = v.iter().take_while(|b| **b == 0).count();
    v.drain(..zeros);
    v
}
