//! A JSON Web Key Set parsed once, when a RequestAuthentication rule's keys arrive (inline
//! `jwks` or fetched from `jwksUri`), into keys ready for ring, so the request path only
//! picks keys and checks signatures. Keys Weft cannot use are skipped and counted by reason,
//! so "no usable key" can say why and a partly usable set can be logged as such.

use serde_json::Value;

use super::alg::{Algorithm, KeyKind};
use super::jwk::{parse_key, SkipReason};

/// A parsed JSON Web Key Set: the keys usable for verification (others are skipped, counted).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Jwks {
    keys: Vec<Key>,
    skipped: Skipped,
}

/// One usable key: its material checked to be of a size ring takes, its `kid` and `alg`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Key {
    pub(crate) kid: Option<String>,
    /// The JWK's own `alg`: when present, the only algorithm this key verifies.
    pub(crate) alg: Option<Algorithm>,
    pub(crate) material: KeyMaterial,
}

/// Public key material in the form ring takes it. Sizes are checked; whether an EC point is
/// on its curve is left to the verifier.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyMaterial {
    /// Big-endian modulus (2048 to 8192 bits, odd) and exponent (odd, 3 to 2^33 - 1), both
    /// without leading zero bytes.
    Rsa {
        /// The modulus.
        n: Vec<u8>,
        /// The public exponent.
        e: Vec<u8>,
    },
    /// A P-256 key: the uncompressed SEC1 point `0x04 || x || y` (65 bytes).
    P256(Vec<u8>),
    /// A P-384 key: the uncompressed SEC1 point `0x04 || x || y` (97 bytes).
    P384(Vec<u8>),
    /// An Ed25519 public key.
    Ed25519([u8; 32]),
}

/// The keys of a set that were skipped, counted by reason, in order of first occurrence.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Skipped(pub(crate) Vec<(SkipReason, usize)>);

/// Why a key set cannot be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JwksError {
    /// Not JSON; serde_json's message, which gives a line and column but no content.
    NotJson(String),
    /// JSON, but not an object with a `keys` array.
    NotAKeySet,
    /// No key is usable; the skipped keys say why.
    NoUsableKey(Skipped),
}

impl Jwks {
    /// Parses a JWKS JSON document (`{"keys":[...]}`). Keys of unsupported types/curves are
    /// skipped; an error when the JSON is not a key set or when no key is usable.
    pub fn parse(json: &str) -> Result<Jwks, JwksError> {
        let doc: Value =
            serde_json::from_str(json).map_err(|e| JwksError::NotJson(e.to_string()))?;
        let entries = doc
            .get("keys")
            .and_then(Value::as_array)
            .ok_or(JwksError::NotAKeySet)?;
        let mut keys = Vec::with_capacity(entries.len());
        let mut skipped = Skipped::default();
        for entry in entries {
            match parse_key(entry) {
                Ok(key) => keys.push(key),
                Err(why) => skipped.add(why),
            }
        }
        if keys.is_empty() {
            return Err(JwksError::NoUsableKey(skipped));
        }
        Ok(Jwks { keys, skipped })
    }

    /// How many keys are usable (at least one, for a set [`Jwks::parse`] returned).
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Always false for a set [`Jwks::parse`] returned; there for symmetry with `len`.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The usable keys, in the set's order.
    pub fn keys(&self) -> &[Key] {
        &self.keys
    }

    /// The keys that were left out, to log beside a set that loaded.
    pub fn skipped(&self) -> &Skipped {
        &self.skipped
    }
}

impl Key {
    /// The JWK's `kid`, if it has one.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The algorithm the key is pinned to, when its JWK names one.
    pub fn alg(&self) -> Option<Algorithm> {
        self.alg
    }

    /// The public key material, for the verifier.
    pub fn material(&self) -> &KeyMaterial {
        &self.material
    }

    /// Whether this key may verify a token signed with `alg`: the key is of the kind `alg`
    /// needs (RSA for `RS*` and `PS*`, P-256 for `ES256`, P-384 for `ES384`, Ed25519 for
    /// `EdDSA`), so a token's header can never make the verifier read key bytes as another
    /// kind of key (the alg-confusion attack), and the key is not pinned to another `alg`.
    pub fn fits(&self, alg: Algorithm) -> bool {
        self.material.kind() == alg.key_kind() && self.alg.is_none_or(|pinned| pinned == alg)
    }

    /// `RSA`, `EC P-256`, `EC P-384` or `OKP Ed25519`, for logs and `weft` explanations.
    pub fn kind(&self) -> &'static str {
        match self.material {
            KeyMaterial::Rsa { .. } => "RSA",
            KeyMaterial::P256(_) => "EC P-256",
            KeyMaterial::P384(_) => "EC P-384",
            KeyMaterial::Ed25519(_) => "OKP Ed25519",
        }
    }
}

impl Skipped {
    fn add(&mut self, why: SkipReason) {
        match self.0.iter_mut().find(|(r, _)| *r == why) {
            Some((_, n)) => *n += 1,
            None => self.0.push((why, 1)),
        }
    }

    /// Each reason and how many keys it applies to.
    pub fn counts(&self) -> &[(SkipReason, usize)] {
        &self.0
    }

    /// How many keys were skipped in all.
    pub fn total(&self) -> usize {
        self.0.iter().map(|(_, n)| n).sum()
    }
}

impl std::fmt::Display for Skipped {
    /// "1 RSA key with n shorter than 2048 bits, 2 oct keys (symmetric keys are not
    /// supported)"; "the key set is empty" when nothing was skipped.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0.is_empty() {
            return f.write_str("the key set is empty");
        }
        for (i, (why, n)) in self.0.iter().enumerate() {
            let (one, many, detail) = why.phrase();
            let noun = if *n == 1 { one } else { many };
            let sep = if i == 0 { "" } else { ", " };
            write!(f, "{sep}{n} {noun} {detail}")?;
        }
        Ok(())
    }
}

impl std::fmt::Display for JwksError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JwksError::NotJson(e) => write!(f, "the key set is not JSON: {e}"),
            JwksError::NotAKeySet => {
                f.write_str("not a key set: expected a JSON object with a \"keys\" array")
            }
            JwksError::NoUsableKey(skipped) => write!(f, "no usable key: {skipped}"),
        }
    }
}

impl std::error::Error for JwksError {}

impl KeyMaterial {
    pub(crate) fn kind(&self) -> KeyKind {
        match self {
            KeyMaterial::Rsa { .. } => KeyKind::Rsa,
            KeyMaterial::P256(_) => KeyKind::P256,
            KeyMaterial::P384(_) => KeyKind::P384,
            KeyMaterial::Ed25519(_) => KeyKind::Ed25519,
        }
    }
}
