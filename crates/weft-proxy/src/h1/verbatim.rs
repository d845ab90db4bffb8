//! Response header fields kept as the bytes they arrived in, for a response that goes from an
//! HTTP/1 upstream to an HTTP/1 client unchanged. Copying the field lines out is one copy;
//! building an `http::HeaderMap` from them, encoding it again and dropping it cost about
//! 3,000 instructions per response (callgrind, see the README's benchmark section).
//!
//! The fields ride in the response's extensions; the response's own `HeaderMap` starts empty
//! and holds only what the proxy adds on the way (a sticky-session `Set-Cookie`). So:
//! - readers look a field up with [`header`], which sees both;
//! - code that edits or removes fields, or hands the response to hyper, calls [`materialize`]
//!   first, which moves the fields into the map;
//! - Weft's HTTP/1 writer ([`super::server`]) writes both.
//!
//! Only heads that can be copied as they are stay verbatim (see [`plan`]): lines end in CRLF,
//! hop-by-hop fields are few enough to leave out by position, and `Connection` names no other
//! field. Anything else gets a map, as before.

use std::ops::Range;

use bytes::Bytes;
use http::header::HeaderMap;
use http::HeaderValue;

use super::names::{known, Known};

/// At most this many hop-by-hop lines are left out by position; more, and the head gets a map.
const MAX_SKIPPED: usize = 4;

/// How Weft's HTTP/1 client hands back a response's header fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fields {
    /// In the response's `HeaderMap`, for any reader.
    Map,
    /// As [`VerbatimFields`] where the head allows it: for a response on its way to Weft's
    /// own HTTP/1 writer.
    Verbatim,
}

/// The field lines of a response head, as received.
#[derive(Clone, Debug)]
pub struct VerbatimFields {
    /// `name: value\r\n` lines: the head without its status line and final empty line.
    block: Bytes,
    /// Lines of `block` not to forward: the hop's framing and connection management.
    skip: [Range<u32>; MAX_SKIPPED],
    skipped: u8,
    /// The `Content-Length` the head declares (forwarded as it is).
    pub content_length: Option<u64>,
    /// True when the head carries `Date`.
    pub date: bool,
    /// See [`name_bit`].
    names: u64,
}

/// Where a head's field lines lie and which to leave out, worked out while `httparse`'s view
/// of the head still borrows the buffer; [`Plan::take`] turns it into [`VerbatimFields`] once
/// the head's bytes are split off.
pub struct Plan {
    block: Range<u32>,
    skip: [Range<u32>; MAX_SKIPPED],
    skipped: u8,
    content_length: Option<u64>,
    date: bool,
    names: u64,
}

/// Plans copying the fields of the head `head` (all of its bytes, final empty line included)
/// that `httparse` parsed into `fields`, whose `Content-Length` (already checked) is `length`.
/// `None` when they cannot be copied as they are: a line ending in a bare LF, `Connection`
/// naming fields that must go too, several `Content-Length`s or one beside
/// `Transfer-Encoding`, or too many hop-by-hop lines.
pub fn plan(head: &[u8], fields: &[httparse::Header<'_>], length: Option<u64>) -> Option<Plan> {
    if !head.ends_with(b"\r\n\r\n") || head.len() > u32::MAX as usize {
        return None;
    }
    let base = head.as_ptr() as usize;
    // Where a part of the head starts in it (`None` for a slice from elsewhere, which
    // `httparse` does not hand out; checked rather than trusted).
    let offset = |part: &[u8]| {
        let at = (part.as_ptr() as usize).checked_sub(base)?;
        (at + part.len() <= head.len()).then_some(at as u32)
    };
    let end = (head.len() - 2) as u32;
    let start = match fields.first() {
        Some(f) => offset(f.name.as_bytes())?,
        None => end,
    };
    let mut plan = Plan {
        block: start..end,
        skip: [const { 0..0 }; MAX_SKIPPED],
        skipped: 0,
        content_length: length,
        date: false,
        names: 0,
    };
    let (mut transfer_encoding, mut lengths) = (false, 0);
    for (i, field) in fields.iter().enumerate() {
        let line_start = offset(field.name.as_bytes())?;
        let line_end = match fields.get(i + 1) {
            Some(next) => offset(next.name.as_bytes())?,
            None => end,
        };
        let value_end = offset(field.value)? + field.value.len() as u32;
        // Between the value and the next line: optional whitespace, then the line ending.
        let gap = head.get(value_end as usize..line_end as usize)?;
        if !gap.ends_with(b"\r\n") || line_start < start {
            return None;
        }
        let name = field.name.as_bytes();
        plan.names |= name_bit(name);
        match known(name) {
            Known::ContentLength => lengths += 1,
            Known::Date => plan.date = true,
            Known::Connection if !names_no_field(field.value) => return None,
            kind @ (Known::Connection
            | Known::TransferEncoding
            | Known::Upgrade
            | Known::OtherHop) => {
                transfer_encoding |= kind == Known::TransferEncoding;
                let slot = plan.skip.get_mut(usize::from(plan.skipped))?;
                *slot = line_start - start..line_end - start;
                plan.skipped += 1;
            }
            Known::Expect | Known::Other => {}
        }
    }
    if lengths > 1 || (transfer_encoding && lengths > 0) {
        return None;
    }
    Some(plan)
}

impl Plan {
    /// The fields, out of `head`: the same bytes [`plan`] was given, now owned.
    pub fn take(self, head: &Bytes) -> VerbatimFields {
        VerbatimFields {
            block: head.slice(self.block.start as usize..self.block.end as usize),
            skip: self.skip,
            skipped: self.skipped,
            content_length: self.content_length,
            date: self.date,
            names: self.names,
        }
    }
}

impl VerbatimFields {
    /// The field lines to forward, in order, each ending in CRLF.
    pub fn lines(&self) -> impl Iterator<Item = &[u8]> {
        let skip = &self.skip[..usize::from(self.skipped)];
        let mut at = 0;
        let mut next_skip = 0;
        std::iter::from_fn(move || loop {
            if at >= self.block.len() {
                return None;
            }
            let start = at;
            match skip.get(next_skip) {
                Some(s) if s.start as usize == at => {
                    at = s.end as usize;
                    next_skip += 1;
                }
                Some(s) => {
                    at = s.start as usize;
                    return Some(&self.block[start..at]);
                }
                None => {
                    at = self.block.len();
                    return Some(&self.block[start..]);
                }
            }
        })
    }

    /// How many bytes [`Self::lines`] yields at most (room to reserve for them).
    pub fn wire_len(&self) -> usize {
        self.block.len()
    }

    /// The fields as `(name, value)` pairs, values without surrounding whitespace.
    fn pairs(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.lines().flat_map(|run| {
            run.split(|&b| b == b'\n').filter_map(|line| {
                let colon = line.iter().position(|&b| b == b':')?;
                Some((&line[..colon], line[colon + 1..].trim_ascii()))
            })
        })
    }

    /// The first value of the field `name` (lowercase).
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        if self.names & name_bit(name.as_bytes()) == 0 {
            return None;
        }
        self.pairs()
            .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| v)
    }

    /// Appends the fields to `map`. Both sides have been checked by `httparse`, whose rules for
    /// names and values are `http`'s; a pair `http` refuses anyway is dropped with a log line.
    pub fn append_to(&self, map: &mut HeaderMap) {
        for (name, value) in self.pairs() {
            match (
                super::names::header_name(name),
                HeaderValue::from_maybe_shared(self.block.slice_ref(value)),
            ) {
                (Ok(name), Ok(value)) => {
                    map.append(name, value);
                }
                _ => tracing::debug!(
                    field = %String::from_utf8_lossy(name),
                    "dropping a response field that http refuses"
                ),
            }
        }
    }
}

/// One of 64 bits, by a name's length and last letter (case folded): the fields of a head set
/// theirs, so that looking up a field the head does not have, the usual case (`grpc-status`
/// on a plain HTTP answer), costs a few instructions instead of a scan of every line.
fn name_bit(name: &[u8]) -> u64 {
    let last = name.last().map_or(0, |b| b.to_ascii_lowercase());
    1 << ((name.len() * 7 + usize::from(last)) % 64)
}

/// True when a `Connection` value only says `close` or `keep-alive` (no field to remove).
fn names_no_field(value: &[u8]) -> bool {
    value.split(|&b| b == b',').all(|token| {
        let token = token.trim_ascii();
        token.eq_ignore_ascii_case(b"close") || token.eq_ignore_ascii_case(b"keep-alive")
    })
}

/// The first value of `name` (lowercase) on `resp`: in its map, or among verbatim fields.
pub fn header<'a, B>(resp: &'a http::Response<B>, name: &str) -> Option<&'a [u8]> {
    if let Some(v) = resp.headers().get(name) {
        return Some(v.as_bytes());
    }
    resp.extensions().get::<VerbatimFields>()?.get(name)
}

/// Moves verbatim fields, if `resp` has any, into its map: before fields are edited, and
/// before the response leaves through anything but Weft's HTTP/1 writer.
pub fn materialize<B>(resp: &mut http::Response<B>) {
    if let Some(fields) = resp.extensions_mut().remove::<VerbatimFields>() {
        // What the proxy added goes after the upstream's own fields, as if appended to them.
        let added = std::mem::take(resp.headers_mut());
        let map = resp.headers_mut();
        fields.append_to(map);
        for (name, value) in &added {
            map.append(name.clone(), value.clone());
        }
    }
}
