//! The JSON Web Token of weft-2-authz: an Ed25519 key pair made with ring when the setup
//! starts, its public key set (JWKS) for the RequestAuthentication, and one signed token
//! that every request of the run carries.
//!
//! The key is generated at run time rather than committed: nothing that looks like a
//! private key sits in the repository (where a secret scanner would flag it and someone
//! might reuse it), and the token has to be signed at run time anyway, since its `exp` is
//! counted from when the run starts. Ed25519 because it is what Weft's own JWT tests sign
//! with, and among the algorithms an identity provider offers it is the cheapest to verify;
//! RS256 would cost the callee more per request.

use anyhow::{anyhow, Result};
use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, KeyPair};
use serde_json::Value;

/// A signing key and the `kid` its key set and tokens name.
pub struct Signer {
    key: Ed25519KeyPair,
    kid: String,
}

impl Signer {
    /// A fresh Ed25519 key pair.
    pub fn generate(kid: &str) -> Result<Signer> {
        let rng = SystemRandom::new();
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng)
            .map_err(|e| anyhow!("generating an Ed25519 key: {e}"))?;
        let key = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref())
            .map_err(|e| anyhow!("reading the Ed25519 key just generated: {e}"))?;
        Ok(Signer {
            key,
            kid: kid.to_string(),
        })
    }

    /// The public key set (RFC 7517, an `OKP` key per RFC 8037), as a JSON document.
    pub fn jwks(&self) -> String {
        serde_json::json!({"keys": [{
            "kty": "OKP",
            "crv": "Ed25519",
            "kid": self.kid,
            "use": "sig",
            "alg": "EdDSA",
            "x": b64(self.key.public_key().as_ref()),
        }]})
        .to_string()
    }

    /// A compact JWS (`header.payload.signature`) over `claims`.
    pub fn token(&self, claims: &Value) -> String {
        let header = serde_json::json!({"alg": "EdDSA", "typ": "JWT", "kid": self.kid});
        let input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let sig = self.key.sign(input.as_bytes());
        format!("{input}.{}", b64(sig.as_ref()))
    }
}

/// Seconds since the Unix epoch.
pub fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// base64url without padding (RFC 7515 §2).
pub fn b64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(char::from(A[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::signature::{UnparsedPublicKey, ED25519};

    #[test]
    fn base64url_without_padding() {
        assert_eq!(b64(b""), "");
        assert_eq!(b64(b"f"), "Zg");
        assert_eq!(b64(b"fo"), "Zm8");
        assert_eq!(b64(b"foo"), "Zm9v");
        assert_eq!(b64(b"foob"), "Zm9vYg");
        assert_eq!(b64(&[0xfb, 0xff]), "-_8");
    }

    #[test]
    fn tokens_verify_with_the_published_key() {
        let signer = Signer::generate("bench").expect("key");
        let token = signer.token(&serde_json::json!({"sub": "s"}));
        let (input, sig) = token.rsplit_once('.').expect("three parts");
        let jwks: Value = serde_json::from_str(&signer.jwks()).expect("JSON");
        let key = &jwks["keys"][0];
        assert_eq!(
            (key["kty"].as_str(), key["kid"].as_str()),
            (Some("OKP"), Some("bench"))
        );
        let x = key["x"].as_str().expect("x");
        assert_eq!(x, b64(signer.key.public_key().as_ref()));
        // Ed25519 signatures are deterministic: the segment is this signature, base64url.
        let raw_sig = signer.key.sign(input.as_bytes());
        assert_eq!(sig, b64(raw_sig.as_ref()));
        UnparsedPublicKey::new(&ED25519, signer.key.public_key().as_ref())
            .verify(input.as_bytes(), raw_sig.as_ref())
            .expect("the signature verifies");
    }
}
