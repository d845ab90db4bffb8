//! base64url (RFC 4648 §5) decoding, written out here because the two callers want different
//! strictness and the whole thing is forty lines: a token's segments must be canonical
//! unpadded base64url (RFC 7515 §2), so that one signature has exactly one spelling, while a
//! key set (written by an operator or an identity provider, not by the client) may carry the
//! `=` padding some providers add.
//!
//! Public (and hidden) only so that `weft-policy`'s token parsing uses this same decoder.

/// Decodes canonical unpadded base64url: `None` for padding, any character outside the
/// alphabet, a length that cannot occur (4k+1) or non-zero bits after the last whole byte.
pub fn decode(s: &str) -> Option<Vec<u8>> {
    let bytes = s.as_bytes();
    if bytes.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3 + 2);
    let mut chunks = bytes.chunks_exact(4);
    for chunk in &mut chunks {
        let v = (sextet(chunk[0])? << 18)
            | (sextet(chunk[1])? << 12)
            | (sextet(chunk[2])? << 6)
            | sextet(chunk[3])?;
        out.extend_from_slice(&[(v >> 16) as u8, (v >> 8) as u8, v as u8]);
    }
    match *chunks.remainder() {
        [] => {}
        [a, b] => {
            let v = (sextet(a)? << 18) | (sextet(b)? << 12);
            // Two characters carry 12 bits for one byte: the last 4 must be zero.
            if v & 0xffff != 0 {
                return None;
            }
            out.push((v >> 16) as u8);
        }
        [a, b, c] => {
            let v = (sextet(a)? << 18) | (sextet(b)? << 12) | (sextet(c)? << 6);
            // Three characters carry 18 bits for two bytes: the last 2 must be zero.
            if v & 0xff != 0 {
                return None;
            }
            out.extend_from_slice(&[(v >> 16) as u8, (v >> 8) as u8]);
        }
        _ => return None,
    }
    Some(out)
}

/// Decodes base64url as found in key sets: like [`decode`], but up to two trailing `=` are
/// tolerated.
pub(crate) fn decode_padded(s: &str) -> Option<Vec<u8>> {
    let unpadded = s
        .strip_suffix("==")
        .or_else(|| s.strip_suffix('='))
        .unwrap_or(s);
    decode(unpadded)
}

fn sextet(c: u8) -> Option<u32> {
    let v = match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'-' => 62,
        b'_' => 63,
        _ => return None,
    };
    Some(u32::from(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64url_is_decoded_strictly_in_tokens() {
        // RFC 4648 §10 vectors, unpadded.
        let ok = [
            ("", ""),
            ("Zg", "f"),
            ("Zm8", "fo"),
            ("Zm9v", "foo"),
            ("Zm9vYg", "foob"),
            ("Zm9vYmE", "fooba"),
            ("Zm9vYmFy", "foobar"),
        ];
        for (encoded, plain) in ok {
            assert_eq!(
                decode(encoded).as_deref(),
                Some(plain.as_bytes()),
                "{encoded}"
            );
        }
        assert_eq!(decode("-_-_"), Some(vec![0xfb, 0xff, 0xbf]));
        assert_eq!(decode("-_8"), Some(vec![0xfb, 0xff]));
        for bad in [
            "Zg==", "Zm8=", "Z", "Zm9vY", "Zh", "Zm9", "+/+/", "Zm 9", "a b", "Zm9v\n", "Zm9vé",
        ] {
            assert_eq!(decode(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn key_sets_may_pad_base64url() {
        assert_eq!(decode_padded("Zg=="), Some(b"f".to_vec()));
        assert_eq!(decode_padded("Zm8="), Some(b"fo".to_vec()));
        assert_eq!(decode_padded("Zm9vYg=="), Some(b"foob".to_vec()));
        assert_eq!(decode_padded("Zm9v"), Some(b"foo".to_vec()));
        for bad in ["Zg===", "Z", "Z=", "Zm9v+", "=Zg"] {
            assert_eq!(decode_padded(bad), None, "{bad:?}");
        }
    }
}
