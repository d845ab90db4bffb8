//! The admin credential: what proxies check a caller of their protected admin routes
//! (`/config`, `/tap`) against.
//!
//! The mesh has one admin token (the control plane's state directory's `admin-token`). A
//! proxy is never given the token itself, only its SHA-256 digest (pushed with its own config,
//! or read from `--admin-token-file`): a proxy, or whoever reads its memory, can check a token
//! but cannot forge one. Callers send the token as `Authorization: Bearer <token>`.

use std::fmt;

/// A SHA-256 digest of the admin token.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct AdminDigest([u8; 32]);

impl AdminDigest {
    /// The digest of `token` (surrounding whitespace ignored, as files end in a newline).
    pub fn of_token(token: &str) -> Self {
        let digest = ring::digest::digest(&ring::digest::SHA256, token.trim().as_bytes());
        let mut out = [0u8; 32];
        out.copy_from_slice(digest.as_ref());
        Self(out)
    }

    /// Parses 64 hex digits; `None` for anything else.
    pub fn from_hex(hex: &str) -> Option<Self> {
        let hex = hex.as_bytes();
        if hex.len() != 64 {
            return None;
        }
        let mut out = [0u8; 32];
        for (i, pair) in hex.chunks_exact(2).enumerate() {
            let hi = (pair[0] as char).to_digit(16)?;
            let lo = (pair[1] as char).to_digit(16)?;
            out[i] = (hi * 16 + lo) as u8;
        }
        Some(Self(out))
    }

    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Whether `token` is the admin token. Digests are compared, never the token's bytes, so
    /// timing says nothing useful about a guess.
    pub fn admits(&self, token: &str) -> bool {
        Self::of_token(token).0 == self.0
    }

    /// Whether an `Authorization` header value carries the admin token as a bearer token.
    pub fn admits_header(&self, authorization: Option<&str>) -> bool {
        bearer(authorization).is_some_and(|t| self.admits(t))
    }
}

/// The token of an `Authorization: Bearer <token>` header value (scheme case-insensitive).
pub fn bearer(authorization: Option<&str>) -> Option<&str> {
    let value = authorization?.trim();
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
        .filter(|t| !t.is_empty())
}

impl fmt::Debug for AdminDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AdminDigest({})", &self.to_hex()[..12])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_round_trips_and_admits_only_the_token() {
        let d = AdminDigest::of_token("s3cret-token\n");
        assert_eq!(AdminDigest::from_hex(&d.to_hex()), Some(d));
        assert!(d.admits("s3cret-token"));
        assert!(!d.admits("s3cret-tokeN"));
        assert!(d.admits_header(Some("Bearer s3cret-token")));
        assert!(d.admits_header(Some("bearer  s3cret-token ")));
        assert!(!d.admits_header(Some("Basic s3cret-token")));
        assert!(!d.admits_header(Some("Bearer")));
        assert!(!d.admits_header(None));
        assert_eq!(AdminDigest::from_hex("zz"), None);
        assert_eq!(AdminDigest::from_hex(&"g".repeat(64)), None);
    }
}
