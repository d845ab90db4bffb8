//! PEM in and out for certificates and keys.
//!
//! Parsing goes through `rustls_pki_types::pem::PemObject` (rustls-pemfile is archived).
//! pki-types has no encoder, so a small base64 writer lives here; PEM output is only ever
//! produced from DER this crate holds, so it needs no configurability.

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;

use crate::cert::CertError;

/// Every `CERTIFICATE` block in `pem`, in order. Other block types (keys, parameters) are
/// skipped; a PEM without any certificate is an error, because every caller needs at least one.
pub fn parse_pem_certs(pem: &str) -> Result<Vec<CertificateDer<'static>>, CertError> {
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| CertError::Pem(e.to_string()))?;
    if certs.is_empty() {
        return Err(CertError::NoCertificates);
    }
    Ok(certs)
}

/// The certificates as concatenated `CERTIFICATE` PEM blocks, in the order given.
pub fn pem_encode_certs(certs: &[CertificateDer<'_>]) -> String {
    certs
        .iter()
        .map(|c| pem_encode("CERTIFICATE", c.as_ref()))
        .collect()
}

/// One PEM block with 64-column base64 lines and a trailing newline.
pub(crate) fn pem_encode(label: &str, der: &[u8]) -> String {
    let b64 = base64(der);
    let mut out = String::with_capacity(b64.len() + b64.len() / 64 + 2 * label.len() + 40);
    out.push_str("-----BEGIN ");
    out.push_str(label);
    out.push_str("-----\n");
    for line in b64.as_bytes().chunks(64) {
        // The base64 alphabet is ASCII, so every chunk is valid UTF-8.
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str("-----END ");
    out.push_str(label);
    out.push_str("-----\n");
    out
}

fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let sextet = |shift: u32| char::from(ALPHABET[((n >> shift) & 0x3f) as usize]);
        out.push(sextet(18));
        out.push(sextet(12));
        out.push(if chunk.len() > 1 { sextet(6) } else { '=' });
        out.push(if chunk.len() > 2 { sextet(0) } else { '=' });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (input, want) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(input.as_bytes()), want);
        }
    }

    #[test]
    fn certs_round_trip_through_pem() {
        let certs: Vec<CertificateDer<'static>> = (0u8..3)
            .map(|i| CertificateDer::from(vec![i; 100 + usize::from(i)]))
            .collect();
        let pem = pem_encode_certs(&certs);
        assert!(pem.lines().all(|l| l.len() <= 64));
        assert_eq!(parse_pem_certs(&pem).unwrap(), certs);
    }

    #[test]
    fn refuses_pem_without_certificates() {
        let key_only = pem_encode("PRIVATE KEY", b"not really a key");
        assert!(matches!(
            parse_pem_certs(&key_only),
            Err(CertError::NoCertificates)
        ));
        assert!(matches!(
            parse_pem_certs(""),
            Err(CertError::NoCertificates)
        ));
        let broken = "-----BEGIN CERTIFICATE-----\nAAAA\n";
        assert!(matches!(parse_pem_certs(broken), Err(CertError::Pem(_))));
    }
}
