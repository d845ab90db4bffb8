//! Header names by their bytes on the wire, remembered per thread. Turning `Content-Type` into
//! a `HeaderName` means lowercasing and matching it against the standard names (about 140
//! instructions), and a name outside that list is copied into an allocation; yet a connection
//! sends the same dozen names with every message. A small direct-mapped table, keyed by the
//! exact bytes, answers those with a compare and a clone.
//!
//! Bounded and lock-free: 64 slots per thread, a miss replaces whatever held the slot, and
//! names longer than [`LONGEST`] bytes are not kept. Hostile input can only make it miss.

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
