//! Sealing the CA's private key before it goes into etcd.
//!
//! Replicas on etcd share one CA, and the CA's key is the one secret that lets its holder
//! impersonate every workload. etcd is read by its operators, backed up, and snapshotted,
//! so the key never goes there in the clear: it is encrypted with AES-256-GCM under a key
//! every replica is given as a file (`--ca-seal-key`, 32 random bytes as 64 hex characters;
//! `weft ca seal-key` makes one). The key's SHA-256 prefix names it in etcd, so a replica
//! given another key says so instead of failing to decrypt with no reason. The additional
//! authenticated data binds a sealed key to the etcd key and trust domain it was written
//! for, so it cannot be moved to another prefix or trust domain and still open.

use std::path::{Path, PathBuf};

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};

use crate::tokens::hex;

/// Length of the seal key in bytes.
const KEY_LEN: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("CA seal key {path}: {why}")]
    KeyFile { path: PathBuf, why: String },
    #[error("the CA in etcd was sealed with key {stored}, and this replica's --ca-seal-key is {ours}: give every replica the same key file")]
    OtherKey { stored: String, ours: String },
    #[error("the CA key in etcd does not open: {0}")]
    Corrupt(&'static str),
    #[error("no randomness for a nonce")]
    Random,
}

/// The key that seals and opens the CA key.
pub struct SealKey {
    key: LessSafeKey,
    id: String,
}

impl SealKey {
    /// Reads a key file: 64 hex characters (surrounding whitespace allowed).
    pub fn load(path: &Path) -> Result<SealKey, SealError> {
        let bad = |why: String| SealError::KeyFile {
            path: path.to_path_buf(),
            why,
        };
        let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
        SealKey::from_hex(text.trim()).map_err(bad)
    }

    /// A key from its hex form.
    pub fn from_hex(text: &str) -> Result<SealKey, String> {
        let bytes = decode_hex(text)
            .filter(|b| b.len() == KEY_LEN)
            .ok_or_else(|| {
                format!(
                    "expected {} hex characters (`weft ca seal-key` makes a key)",
                    KEY_LEN * 2
                )
            })?;
        let key =
            UnboundKey::new(&AES_256_GCM, &bytes).map_err(|_| "not an AES-256 key".to_string())?;
        let digest = ring::digest::digest(&ring::digest::SHA256, &bytes);
        Ok(SealKey {
            key: LessSafeKey::new(key),
            id: hex(&digest.as_ref()[..8]),
        })
    }

    /// A new random key, as the hex a key file holds.
    pub fn generate_hex() -> Result<String, SealError> {
        let mut bytes = [0u8; KEY_LEN];
        SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| SealError::Random)?;
        Ok(hex(&bytes))
    }

    /// Names the key without revealing it (the first 8 bytes of its SHA-256, in hex).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// `plaintext` encrypted, bound to `context`: hex of nonce, ciphertext and tag.
    pub fn seal(&self, plaintext: &[u8], context: &str) -> Result<String, SealError> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| SealError::Random)?;
        let mut sealed = plaintext.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(context.as_bytes()),
                &mut sealed,
            )
            .map_err(|_| SealError::Corrupt("sealing failed"))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(hex(&out))
    }

    /// Opens what [`SealKey::seal`] made for the same `context`, sealed under `key_id`.
    pub fn open(
        &self,
        sealed_hex: &str,
        key_id: &str,
        context: &str,
    ) -> Result<Vec<u8>, SealError> {
        if key_id != self.id {
            return Err(SealError::OtherKey {
                stored: key_id.to_string(),
                ours: self.id.clone(),
            });
        }
        let sealed = decode_hex(sealed_hex).ok_or(SealError::Corrupt("not hex"))?;
        if sealed.len() < NONCE_LEN + AES_256_GCM.tag_len() {
            return Err(SealError::Corrupt("too short"));
        }
        let (nonce, rest) = sealed.split_at(NONCE_LEN);
        let nonce =
            Nonce::try_assume_unique_for_key(nonce).map_err(|_| SealError::Corrupt("bad nonce"))?;
        let mut rest = rest.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(context.as_bytes()), &mut rest)
            .map_err(|_| {
                SealError::Corrupt(
                    "authentication failed (altered, or sealed for another prefix or trust domain)",
                )
            })?;
        Ok(plain.to_vec())
    }
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) || !hex.is_ascii() {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SealKey {
        SealKey::from_hex(&SealKey::generate_hex().unwrap()).unwrap()
    }

    #[test]
    fn sealed_keys_open_only_with_the_same_key_and_context() {
        let k = key();
        let sealed = k
            .seal(b"-----BEGIN PRIVATE KEY-----", "/weft/ca td")
            .unwrap();
        assert!(!sealed.contains("BEGIN"));
        assert_eq!(
            k.open(&sealed, k.id(), "/weft/ca td").unwrap(),
            b"-----BEGIN PRIVATE KEY-----"
        );
        // Moved to another prefix or trust domain: refused.
        assert!(matches!(
            k.open(&sealed, k.id(), "/other/ca td"),
            Err(SealError::Corrupt(_))
        ));
        // Another replica's key: named, not just "failed".
        let other = key();
        let err = other
            .open(&sealed, k.id(), "/weft/ca td")
            .unwrap_err()
            .to_string();
        assert!(err.contains(k.id()) && err.contains(other.id()), "{err}");
        // Altered: refused.
        let mut altered = sealed.clone().into_bytes();
        let last = altered.len() - 1;
        altered[last] = if altered[last] == b'0' { b'1' } else { b'0' };
        let altered = String::from_utf8(altered).unwrap();
        assert!(k.open(&altered, k.id(), "/weft/ca td").is_err());
        assert!(k.open("zz", k.id(), "/weft/ca td").is_err());
        assert!(k.open("00", k.id(), "/weft/ca td").is_err());
    }

    #[test]
    fn key_files_must_hold_32_bytes_of_hex() {
        assert!(SealKey::from_hex("abcd").is_err());
        assert!(SealKey::from_hex(&"g".repeat(64)).is_err());
        assert!(SealKey::from_hex(&"é".repeat(32)).is_err());
        let dir = std::env::temp_dir().join(format!("weft-seal-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("seal.key");
        std::fs::write(&path, format!("{}\n", "ab".repeat(32))).unwrap();
        assert!(SealKey::load(&path).is_ok());
        let err = SealKey::load(&dir.join("missing"))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("missing"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
