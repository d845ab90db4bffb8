//! Header names by their bytes on the wire, remembered per thread. Turning `Content-Type` into
//! a `HeaderName` means lowercasing and matching it against the standard names (about 140
//! instructions), and a name outside that list is copied into an allocation; yet a connection
//! sends the same dozen names with every message. A small direct-mapped table, keyed by the
//! exact bytes, answers those with a compare and a clone.
//!
//! Bounded and lock-free: 64 slots per thread, a miss replaces whatever held the slot, and
//! names longer than [`LONGEST`] bytes are not kept. Hostile input can only make it miss.
//!
//! [`known`] tells the fields the codec reads itself (framing, connection management) apart.

use std::cell::RefCell;

use http::header::{HeaderName, InvalidHeaderName};

const SLOTS: usize = 64;
/// Longer names are parsed each time (they are rare, and an entry holds the bytes inline).
const LONGEST: usize = 32;

struct Entry {
    len: u8,
    raw: [u8; LONGEST],
    name: HeaderName,
}

thread_local! {
    static SEEN: RefCell<[Option<Entry>; SLOTS]> = const { RefCell::new([const { None }; SLOTS]) };
}

/// `HeaderName::from_bytes(raw)`, from the table when these exact bytes were seen before.
pub fn header_name(raw: &[u8]) -> Result<HeaderName, InvalidHeaderName> {
    if raw.is_empty() || raw.len() > LONGEST {
        return HeaderName::from_bytes(raw);
    }
    let slot = slot_of(raw);
    // `try_with`: a thread being torn down has no table any more, only the parser.
    let cached = SEEN.try_with(|cell| {
        let mut seen = cell.borrow_mut();
        if let Some(e) = &seen[slot] {
            if e.raw.get(..usize::from(e.len)) == Some(raw) {
                return Ok(e.name.clone());
            }
        }
        let name = HeaderName::from_bytes(raw)?;
        let mut bytes = [0u8; LONGEST];
        bytes[..raw.len()].copy_from_slice(raw);
        seen[slot] = Some(Entry {
            len: raw.len() as u8,
            raw: bytes,
            name: name.clone(),
        });
        Ok(name)
    });
    cached.unwrap_or_else(|_| HeaderName::from_bytes(raw))
}

/// The fields the codec reads itself or leaves out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Known {
    ContentLength,
    TransferEncoding,
    Connection,
    Upgrade,
    Expect,
    Date,
    /// Another field that belongs to one connection (`Keep-Alive`, `TE`, `Proxy-*`).
    OtherHop,
    Other,
}

/// Which of [`Known`] the name `raw` is, told apart by length first: one compare for most
/// names instead of one per candidate (each field of each head goes through here).
pub fn known(raw: &[u8]) -> Known {
    let is = |name: &[u8]| eq_lowercase(raw, name);
    match raw.len() {
        2 if is(b"te") => Known::OtherHop,
        4 if is(b"date") => Known::Date,
        6 if is(b"expect") => Known::Expect,
        7 if is(b"upgrade") => Known::Upgrade,
        10 if is(b"connection") => Known::Connection,
        10 if is(b"keep-alive") => Known::OtherHop,
        14 if is(b"content-length") => Known::ContentLength,
        16 if is(b"proxy-connection") => Known::OtherHop,
        17 if is(b"transfer-encoding") => Known::TransferEncoding,
        18 if is(b"proxy-authenticate") => Known::OtherHop,
        19 if is(b"proxy-authorization") => Known::OtherHop,
        _ => Known::Other,
    }
}

/// `raw` equals `lower` (lowercase letters and `-` only) but for the case of its letters.
/// Eight bytes at a time: `eq_ignore_ascii_case` lowercases byte by byte, about five
/// instructions a byte, and `Content-Length` is in almost every head.
fn eq_lowercase(raw: &[u8], lower: &[u8]) -> bool {
    if raw.len() != lower.len() {
        return false;
    }
    if raw.len() < 8 {
        return raw.eq_ignore_ascii_case(lower);
    }
    let word = |b: &[u8], at: usize| {
        b.get(at..at + 8)
            .and_then(|w| <[u8; 8]>::try_from(w).ok())
            .map_or(0, u64::from_ne_bytes)
    };
    // The last word may overlap the one before it; comparing a byte twice is harmless.
    let last = raw.len() - 8;
    (0..last).step_by(8).chain(std::iter::once(last)).all(|at| {
        let want = word(lower, at);
        // 0x20 over letters (bit 6 set in `a`..`z`), nothing over `-`: `raw | case`
        // folds `A`..`Z` onto `want` and leaves every other byte as it is.
        let case = (want & 0x4040_4040_4040_4040) >> 1;
        word(raw, at) | case == want
    })
}

/// Length, first, middle and last byte: cheap, and enough to spread the names one sees.
fn slot_of(raw: &[u8]) -> usize {
    let (first, last, mid) = (raw[0], raw[raw.len() - 1], raw[raw.len() / 2]);
    let h = raw
        .len()
        .wrapping_mul(31)
        .wrapping_add(usize::from(first).wrapping_mul(7))
        .wrapping_add(usize::from(mid).wrapping_mul(3))
        .wrapping_add(usize::from(last));
    h % SLOTS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_answers_as_parsing_every_time() {
        let inputs: [&[u8]; 9] = [
            b"Content-Type",
            b"content-type",
            b"X-Request-Id",
            b"x-request-id",
            b"Host",
            b"a-name-that-is-longer-than-thirty-two-bytes",
            b"bad name",
            b"",
            b"\xff",
        ];
        // Twice round: the second time answers come from the table.
        for _ in 0..2 {
            for raw in inputs {
                let cached = header_name(raw).map(|n| n.as_str().to_string());
                let parsed = HeaderName::from_bytes(raw).map(|n| n.as_str().to_string());
                assert_eq!(
                    cached.ok(),
                    parsed.ok(),
                    "{:?}",
                    String::from_utf8_lossy(raw)
                );
            }
        }
    }

    #[test]
    fn known_names_in_any_case() {
        for (raw, kind) in [
            (&b"Content-Length"[..], Known::ContentLength),
            (b"TRANSFER-ENCODING", Known::TransferEncoding),
            (b"connection", Known::Connection),
            (b"Upgrade", Known::Upgrade),
            (b"Expect", Known::Expect),
            (b"Date", Known::Date),
            (b"Keep-Alive", Known::OtherHop),
            (b"TE", Known::OtherHop),
            (b"Proxy-Connection", Known::OtherHop),
            (b"Proxy-Authenticate", Known::OtherHop),
            (b"proxy-authorization", Known::OtherHop),
            (b"Content-Type", Known::Other),
            (b"Content-Lengths", Known::Other),
            (b"dates", Known::Other),
            (b"", Known::Other),
            // Same length, one byte off: in the first word, the overlap, the last byte.
            (b"Content_Length", Known::Other),
            (b"content-lengtH", Known::ContentLength),
            (b"content-lengt\x08", Known::Other),
            (b"content\x0dlength", Known::Other),
            (b"transfer-encodinG", Known::TransferEncoding),
            (b"transfer-encodin-", Known::Other),
            (b"proxy-authorizatioN", Known::OtherHop),
            (b"proxy\x0dauthorization", Known::Other),
        ] {
            assert_eq!(known(raw), kind, "{:?}", String::from_utf8_lossy(raw));
        }
    }

    #[test]
    fn word_compares_agree_with_byte_compares_for_every_byte_everywhere() {
        let names: [&[u8]; 11] = [
            b"te",
            b"date",
            b"expect",
            b"upgrade",
            b"connection",
            b"keep-alive",
            b"content-length",
            b"proxy-connection",
            b"transfer-encoding",
            b"proxy-authenticate",
            b"proxy-authorization",
        ];
        for name in names {
            for at in 0..name.len() {
                for byte in 0..=255u8 {
                    let mut raw = name.to_vec();
                    raw[at] = byte;
                    let want = name.eq_ignore_ascii_case(&raw);
                    assert_eq!(
                        eq_lowercase(&raw, name),
                        want,
                        "{:?} vs {:?}",
                        String::from_utf8_lossy(&raw),
                        String::from_utf8_lossy(name)
                    );
                }
            }
        }
    }

    #[test]
    fn a_slot_taken_by_another_name_is_not_confused_with_it() {
        // Many names, most of them sharing slots: every answer must still be its own name.
        let names: Vec<String> = (0..500).map(|i| format!("x-h{i}")).collect();
        for _ in 0..2 {
            for n in &names {
                let got = header_name(n.as_bytes()).map(|h| h.as_str().to_string());
                assert_eq!(got.ok().as_deref(), Some(n.as_str()));
            }
        }
    }
}
