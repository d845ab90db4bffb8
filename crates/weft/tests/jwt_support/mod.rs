//! Signing JWTs for tests: an Ed25519 key made with ring, its JWKS, and tokens with the
//! claims a test wants (and the broken ones it needs: a bad signature, `alg: none`).

#![allow(dead_code)]

use ring::signature::{Ed25519KeyPair, KeyPair};

pub struct Signer {
    key: Ed25519KeyPair,
    pub kid: String,
}

impl Signer {
    pub fn new(kid: &str) -> Signer {
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).expect("generate a key");
        let key = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).expect("read the key");
        Signer {
            key,
            kid: kid.to_string(),
        }
    }

    /// The public key set, as a JSON document.
    pub fn jwks(&self) -> String {
        format!(
            r#"{{"keys":[{{"kty":"OKP","crv":"Ed25519","kid":"{}","use":"sig","x":"{}"}}]}}"#,
            self.kid,
            b64(self.key.public_key().as_ref())
        )
    }

    /// A signed token with `claims` (a JSON object).
    pub fn token(&self, claims: &serde_json::Value) -> String {
        let header = format!(r#"{{"alg":"EdDSA","typ":"JWT","kid":"{}"}}"#, self.kid);
        let input = format!(
            "{}.{}",
            b64(header.as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let sig = self.key.sign(input.as_bytes());
        format!("{input}.{}", b64(sig.as_ref()))
    }

    /// A token whose payload was changed after signing.
    pub fn tampered(&self, claims: &serde_json::Value, changed: &serde_json::Value) -> String {
        let good = self.token(claims);
        let mut parts: Vec<String> = good.split('.').map(str::to_string).collect();
        parts[1] = b64(changed.to_string().as_bytes());
        parts.join(".")
    }
}

/// An unsigned token (`alg: none`).
pub fn unsigned(claims: &serde_json::Value) -> String {
    format!(
        "{}.{}.",
        b64(br#"{"alg":"none"}"#),
        b64(claims.to_string().as_bytes())
    )
}

/// Seconds since the epoch.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// base64url without padding.
pub fn b64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len() * 4 / 3 + 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
        let chars = chunk.len() + 1;
        for i in 0..chars {
            out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}
