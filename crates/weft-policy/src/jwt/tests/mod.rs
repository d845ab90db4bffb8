//! Tests for JWT verification, on real signatures: tokens are signed here with ring (a fixed
//! RSA key, P-256/P-384/Ed25519 keys generated per test), the key sets are built from the
//! same keys' public halves, and the RFC examples are checked exactly.

mod accept;
mod claims;
mod form;
mod jwks;
mod keys;
mod refuse;
mod vectors;

use std::sync::OnceLock;

use ring::rand::SystemRandom;
use ring::signature::{
    self as sig, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair, RsaPublicKeyComponents,
};
use serde_json::{json, Value};

use super::*;

/// "Now" for every test: 2027-01-15.
const NOW: u64 = 1_800_000_000;
const ISSUER: &str = "https://issuer.example";

/// base64url without padding: the encoder a token issuer would use.
fn b64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let v = chunk
            .iter()
            .enumerate()
            .fold(0u32, |v, (i, b)| v | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[((v >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

/// A key pair that signs test tokens.
enum Signer {
    Rsa(&'static RsaKeyPair),
    P256(EcdsaKeyPair),
    P384(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

impl Signer {
    fn rsa() -> Signer {
        static KEY: OnceLock<RsaKeyPair> = OnceLock::new();
        Signer::Rsa(KEY.get_or_init(|| {
            let der = b64::decode(keys::RSA_2048_PKCS8).expect("the test key is base64url");
            RsaKeyPair::from_pkcs8(&der).expect("the test key is a PKCS#8 RSA key")
        }))
    }

    fn p256() -> Signer {
        Signer::P256(ecdsa(&sig::ECDSA_P256_SHA256_FIXED_SIGNING))
    }

    fn p384() -> Signer {
        Signer::P384(ecdsa(&sig::ECDSA_P384_SHA384_FIXED_SIGNING))
    }

    fn ed25519() -> Signer {
        let rng = SystemRandom::new();
        let doc = Ed25519KeyPair::generate_pkcs8(&rng).expect("generate Ed25519");
        Signer::Ed25519(Ed25519KeyPair::from_pkcs8(doc.as_ref()).expect("Ed25519 PKCS#8"))
    }

    /// The algorithm a token signed by this key names by default.
    fn alg(&self) -> &'static str {
        match self {
            Signer::Rsa(_) => "RS256",
            Signer::P256(_) => "ES256",
            Signer::P384(_) => "ES384",
            Signer::Ed25519(_) => "EdDSA",
        }
    }

    /// The public JWK, with `kid` when given.
    fn jwk(&self, kid: Option<&str>) -> Value {
        let mut jwk = match self {
            Signer::Rsa(key) => {
                let public = RsaPublicKeyComponents::<Vec<u8>>::from(key.public());
                json!({"kty": "RSA", "n": b64(&public.n), "e": b64(&public.e)})
            }
            Signer::P256(key) | Signer::P384(key) => {
                let point = key.public_key().as_ref();
                let size = (point.len() - 1) / 2;
                let crv = if size == 32 { "P-256" } else { "P-384" };
                json!({"kty": "EC", "crv": crv, "x": b64(&point[1..=size]), "y": b64(&point[1 + size..])})
            }
            Signer::Ed25519(key) => {
                json!({"kty": "OKP", "crv": "Ed25519", "x": b64(key.public_key().as_ref())})
            }
        };
        if let Some(kid) = kid {
            jwk["kid"] = json!(kid);
        }
        jwk
    }

    /// Signs `message` as `alg` says (for RSA: PKCS#1 v1.5 or PSS and the hash; the other
    /// keys sign one way only).
    fn sign(&self, alg: &str, message: &[u8]) -> Vec<u8> {
        let rng = SystemRandom::new();
        match self {
            Signer::Rsa(key) => {
                let padding: &'static dyn sig::RsaEncoding = match alg {
                    "RS384" => &sig::RSA_PKCS1_SHA384,
                    "RS512" => &sig::RSA_PKCS1_SHA512,
                    "PS256" => &sig::RSA_PSS_SHA256,
                    "PS384" => &sig::RSA_PSS_SHA384,
                    "PS512" => &sig::RSA_PSS_SHA512,
                    _ => &sig::RSA_PKCS1_SHA256,
                };
                let mut out = vec![0; key.public().modulus_len()];
                key.sign(padding, &rng, message, &mut out)
                    .expect("RSA sign");
                out
            }
            Signer::P256(key) | Signer::P384(key) => key
                .sign(&rng, message)
                .expect("ECDSA sign")
                .as_ref()
                .to_vec(),
            Signer::Ed25519(key) => key.sign(message).as_ref().to_vec(),
        }
    }

    /// A compact token with this header and payload, signed.
    fn token_raw(&self, header: &Value, payload: &[u8]) -> String {
        let alg = header["alg"].as_str().unwrap_or("RS256");
        let input = format!("{}.{}", b64(header.to_string().as_bytes()), b64(payload));
        let signature = self.sign(alg, input.as_bytes());
        format!("{input}.{}", b64(&signature))
    }

    /// A token with the signer's default `alg`, `kid` when given, and these claims.
    fn token(&self, kid: Option<&str>, claims: &Value) -> String {
        self.token_alg(self.alg(), kid, claims)
    }

    fn token_alg(&self, alg: &str, kid: Option<&str>, claims: &Value) -> String {
        let mut header = json!({"alg": alg, "typ": "JWT"});
        if let Some(kid) = kid {
            header["kid"] = json!(kid);
        }
        self.token_raw(&header, claims.to_string().as_bytes())
    }
}

fn ecdsa(alg: &'static sig::EcdsaSigningAlgorithm) -> EcdsaKeyPair {
    let rng = SystemRandom::new();
    let doc = EcdsaKeyPair::generate_pkcs8(alg, &rng).expect("generate ECDSA");
    EcdsaKeyPair::from_pkcs8(alg, doc.as_ref(), &rng).expect("ECDSA PKCS#8")
}

/// Claims that pass [`expect`]: the issuer, audience `api`, valid from a minute ago for ten.
fn claims() -> Value {
    json!({"iss": ISSUER, "sub": "alice", "aud": "api", "iat": NOW - 60, "nbf": NOW - 60, "exp": NOW + 600})
}

/// `claims()` with `changes` merged in (`null` removes a claim).
fn claims_with(changes: Value) -> Value {
    let mut c = claims();
    for (k, v) in changes.as_object().expect("changes are an object") {
        match v {
            Value::Null => drop(c.as_object_mut().map(|m| m.remove(k))),
            v => c[k] = v.clone(),
        }
    }
    c
}

/// A key set of these JWKs; it must parse.
fn jwks(keys: &[Value]) -> Jwks {
    Jwks::parse(&json!({ "keys": keys }).to_string()).expect("the test key set parses")
}

/// What a rule for [`ISSUER`] accepting `audiences` expects, now, with Envoy's leeway.
fn expect(audiences: &[String]) -> Expect<'_> {
    Expect {
        issuer: ISSUER,
        audiences,
        now_unix: NOW,
        leeway_secs: DEFAULT_LEEWAY_SECS,
    }
}

fn api() -> Vec<String> {
    vec!["api".to_string()]
}

/// The error verifying `token` against one `signer` key (kid `k1`) with audience `api`.
fn refused(token: &str, signer: &Signer) -> TokenError {
    let set = jwks(&[signer.jwk(Some("k1"))]);
    verify(token, &set, &expect(&api())).expect_err("the token must be refused")
}
