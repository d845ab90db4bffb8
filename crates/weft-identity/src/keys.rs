//! Loading a CA private key from PEM in the formats cert-manager and OpenSSL write.
//!
//! rcgen on the ring backend reads only PKCS#8, but cert-manager writes `tls.key` as SEC1
//! (`EC PRIVATE KEY`) or PKCS#1 (`RSA PRIVATE KEY`) unless told otherwise. Both are wrapped
//! here into the PKCS#8 envelope, which is a fixed DER prefix around the same bytes, so
//! users do not have to convert their secrets by hand. ring insists that a SEC1 key embeds
//! its public key (OpenSSL always writes it); a key without one gets an actionable error.

use rcgen::KeyPair;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

/// DER of OID 1.2.840.10045.2.1 (id-ecPublicKey).
const OID_EC_PUBLIC_KEY: &[u8] = &[0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
/// DER of OID 1.2.840.10045.3.1.7 (prime256v1 / P-256).
const OID_P256: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
/// DER of OID 1.3.132.0.34 (secp384r1 / P-384).
const OID_P384: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22];
/// DER of AlgorithmIdentifier { rsaEncryption, NULL }.
const ALG_RSA: &[u8] = &[
    0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
];

const TAG_INTEGER: u8 = 0x02;
const TAG_OCTET_STRING: u8 = 0x04;
const TAG_SEQUENCE: u8 = 0x30;
const TAG_CONTEXT_0: u8 = 0xa0;

/// Reads the first private key in `pem` (PKCS#8, SEC1 or PKCS#1) as a signing key.
///
/// The error is a reason phrase; the caller adds which file it came from.
pub(crate) fn key_pair_from_pem(pem: &str) -> Result<KeyPair, String> {
    let key = PrivateKeyDer::from_pem_slice(pem.as_bytes()).map_err(|e| match e {
        rustls_pki_types::pem::Error::NoItemsFound => "no private key block found".to_string(),
        other => format!("malformed PEM: {other}"),
    })?;
    key_pair_from_der(&key)
}

pub(crate) fn key_pair_from_der(key: &PrivateKeyDer<'_>) -> Result<KeyPair, String> {
    let pkcs8 = match key {
        PrivateKeyDer::Pkcs8(k) => k.secret_pkcs8_der().to_vec(),
        PrivateKeyDer::Sec1(k) => sec1_to_pkcs8(k.secret_sec1_der())?,
        PrivateKeyDer::Pkcs1(k) => pkcs8_wrap(ALG_RSA, k.secret_pkcs1_der()),
        _ => return Err("unsupported private key format".to_string()),
    };
    let pkcs8 = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pkcs8));
    KeyPair::try_from(&pkcs8).map_err(|e| {
        format!(
            "{e}; supported are ECDSA P-256/P-384, Ed25519 and RSA keys (SEC1 keys must embed \
             their public key)"
        )
    })
}

/// Wraps a SEC1 `ECPrivateKey` in PKCS#8, naming the curve from the key's own parameters or,
/// when those are absent, from the length of the private scalar.
fn sec1_to_pkcs8(sec1: &[u8]) -> Result<Vec<u8>, String> {
    let malformed = || "malformed SEC1 EC private key".to_string();
    let (tag, body, _) = read_tlv(sec1).ok_or_else(malformed)?;
    if tag != TAG_SEQUENCE {
        return Err(malformed());
    }
    let (tag, _version, rest) = read_tlv(body).ok_or_else(malformed)?;
    if tag != TAG_INTEGER {
        return Err(malformed());
    }
    let (tag, scalar, rest) = read_tlv(rest).ok_or_else(malformed)?;
    if tag != TAG_OCTET_STRING {
        return Err(malformed());
    }
    let curve = match read_tlv(rest) {
        Some((TAG_CONTEXT_0, params, _)) => params,
        _ => match scalar.len() {
            32 => OID_P256,
            48 => OID_P384,
            n => {
                return Err(format!(
                    "EC private key of {n} bytes names no supported curve"
                ))
            }
        },
    };
    if curve != OID_P256 && curve != OID_P384 {
        return Err("unsupported EC curve; use P-256 or P-384".to_string());
    }
    let alg = der(TAG_SEQUENCE, &[OID_EC_PUBLIC_KEY, curve].concat());
    Ok(pkcs8_wrap(&alg, sec1))
}

/// `PrivateKeyInfo ::= SEQUENCE { version 0, algorithm, OCTET STRING privateKey }`.
fn pkcs8_wrap(alg: &[u8], key: &[u8]) -> Vec<u8> {
    let version = [TAG_INTEGER, 0x01, 0x00];
    let body = [&version[..], alg, &der(TAG_OCTET_STRING, key)].concat();
    der(TAG_SEQUENCE, &body)
}

/// One DER TLV with a definite length.
fn der(tag: u8, content: &[u8]) -> Vec<u8> {
    let len = content.len();
    let mut out = vec![tag];
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
    out
}

/// Splits one DER TLV off the front of `input`: (tag, content, rest). `None` if truncated.
fn read_tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{PublicKeyData, PKCS_ECDSA_P256_SHA256, PKCS_ECDSA_P384_SHA384, PKCS_RSA_SHA256};

    #[test]
    fn reads_pkcs8() {
        let key = KeyPair::generate().unwrap();
        let loaded = key_pair_from_pem(&key.serialize_pem()).unwrap();
        assert_eq!(loaded.der_bytes(), key.der_bytes());
    }

    #[test]
    fn reads_openssl_sec1_with_curve_parameters() {
        let p256 = key_pair_from_pem(include_str!("../testdata/ec-p256-sec1.key")).unwrap();
        assert_eq!(p256.algorithm(), &PKCS_ECDSA_P256_SHA256);
        let p384 = key_pair_from_pem(include_str!("../testdata/ec-p384-sec1.key")).unwrap();
        assert_eq!(p384.algorithm(), &PKCS_ECDSA_P384_SHA384);
    }

    #[test]
    fn reads_sec1_without_curve_parameters() {
        // ring's PKCS#8 holds a SEC1 key without [0] parameters: take it out and re-wrap it.
        let key = KeyPair::generate().unwrap();
        let (_, body, _) = read_tlv(key.serialized_der()).unwrap();
        let (_, _, rest) = read_tlv(body).unwrap();
        let (_, _, rest) = read_tlv(rest).unwrap();
        let (_, sec1, _) = read_tlv(rest).unwrap();
        let der = PrivateKeyDer::Sec1(sec1.to_vec().into());
        let loaded = key_pair_from_der(&der).unwrap();
        assert_eq!(loaded.der_bytes(), key.der_bytes());
    }

    #[test]
    fn reads_pkcs1_rsa() {
        let rsa = key_pair_from_pem(include_str!("../testdata/rsa-2048-pkcs1.key")).unwrap();
        assert_eq!(rsa.algorithm(), &PKCS_RSA_SHA256);
    }

    #[test]
    fn refuses_garbage_with_a_reason() {
        assert!(key_pair_from_pem("")
            .unwrap_err()
            .contains("no private key"));
        let junk = "-----BEGIN EC PRIVATE KEY-----\nMAMCAQE=\n-----END EC PRIVATE KEY-----\n";
        assert!(key_pair_from_pem(junk).unwrap_err().contains("SEC1"));
        let junk = "-----BEGIN PRIVATE KEY-----\nMAMCAQE=\n-----END PRIVATE KEY-----\n";
        assert!(key_pair_from_pem(junk).is_err());
    }

    #[test]
    fn der_lengths_round_trip() {
        for len in [0usize, 1, 127, 128, 255, 256, 70_000] {
            let content = vec![7u8; len];
            let encoded = der(TAG_OCTET_STRING, &content);
            let (tag, got, rest) = read_tlv(&encoded).unwrap();
            assert_eq!((tag, got, rest.len()), (TAG_OCTET_STRING, &content[..], 0));
        }
        assert_eq!(read_tlv(&[0x04, 0x05, 1, 2]), None);
        assert_eq!(read_tlv(&[0x04, 0x85, 1, 1, 1, 1, 1]), None);
    }
}
