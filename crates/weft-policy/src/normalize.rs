//! Request path normalization, as Istio's `meshConfig.pathNormalization` defines it. The
//! normalized path is what authorization evaluates and what the application receives, so a
//! policy on `/admin` cannot be walked around with `/public/../admin` or `/%61dmin`.
//!
//! - `NONE`: as received;
//! - `BASE` (the default): RFC 3986 — percent-encoded unreserved characters decoded
//!   (`%61` → `a`; other escapes kept, hex upper-cased), `\` taken as `/`, and `.` / `..`
//!   segments resolved;
//! - `MERGE_SLASHES`: BASE, then runs of `/` merged;
//! - `DECODE_AND_MERGE_SLASHES`: `%2F` and `%5C` decoded first, then MERGE_SLASHES.
//!
//! Whatever the mode, a path with `%00` is refused (400), as Istio refuses it.
//!
//! A path that needs none of this (no `%`, `\`, dot segment or double slash) is returned as
//! it came, without allocating: the usual case costs one scan.

use std::borrow::Cow;

use weft_api::view::PathNormalization;

/// A path refused outright (the client gets 400).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refused {
    /// `%00` in the path.
    EncodedNul,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refused::EncodedNul => f.write_str("the path contains an encoded NUL (%00)"),
        }
    }
}

impl std::error::Error for Refused {}

/// Normalizes `path` (without its query) under `mode`.
pub fn normalize(path: &str, mode: PathNormalization) -> Result<Cow<'_, str>, Refused> {
    let bytes = path.as_bytes();
    let merge = matches!(
        mode,
        PathNormalization::MergeSlashes | PathNormalization::DecodeAndMergeSlashes
    );
    let (has_escape, work) = scan(bytes, merge);
    if has_escape && contains_nul_escape(bytes) {
        return Err(Refused::EncodedNul);
    }
    if mode == PathNormalization::None || !work {
        return Ok(Cow::Borrowed(path));
    }
    let decoded = decode(bytes, mode == PathNormalization::DecodeAndMergeSlashes);
    let slashes: Vec<u8> = decoded
        .into_iter()
        .map(|b| if b == b'\\' { b'/' } else { b })
        .collect();
    let mut out = remove_dot_segments(&slashes);
    if merge {
        out.dedup_by(|a, b| *a == b'/' && *b == b'/');
    }
    // Only ASCII was rewritten and only whole escapes decoded (to ASCII): still UTF-8.
    Ok(Cow::Owned(String::from_utf8_lossy(&out).into_owned()))
}

fn contains_nul_escape(bytes: &[u8]) -> bool {
    bytes.windows(3).any(|w| w == b"%00")
}

/// One pass over the path: whether it holds an escape, and whether normalizing could change
/// it (an escape, a `\\`, a dot segment's start, or `//` when slashes merge). The usual path
/// has none, and this is all it costs.
fn scan(bytes: &[u8], merge: bool) -> (bool, bool) {
    let mut escape = false;
    let mut work = bytes.first() == Some(&b'.');
    let mut prev = 0u8;
    for &b in bytes {
        match b {
            b'%' => escape = true,
            b'\\' => work = true,
            b'.' if prev == b'/' => work = true,
            b'/' if merge && prev == b'/' => work = true,
            _ => {}
        }
        prev = b;
    }
    (escape, work || escape)
}

/// Decodes escapes of unreserved characters (and of `/` and `\` when `slashes`); upper-cases
/// the hex of the escapes it keeps. A `%` that starts no escape becomes `%25`: otherwise a
/// decoded character could complete it into a new escape (`%2%61` → `%2a`), which the next
/// reader would decode again — the path judged would not be the path served.
fn decode(bytes: &[u8], slashes: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let escape = match (bytes.get(i + 1), bytes.get(i + 2)) {
                (Some(&h), Some(&l)) => hex(h).zip(hex(l)),
                _ => None,
            };
            let Some((h, l)) = escape else {
                out.extend_from_slice(b"%25");
                i += 1;
                continue;
            };
            let c = h << 4 | l;
            let unreserved = c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~');
            if unreserved || (slashes && matches!(c, b'/' | b'\\')) {
                out.push(c);
            } else {
                out.push(b'%');
                out.push(bytes[i + 1].to_ascii_uppercase());
                out.push(bytes[i + 2].to_ascii_uppercase());
            }
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// RFC 3986 section 5.2.4, on an absolute path; the result always starts with `/`.
fn remove_dot_segments(path: &[u8]) -> Vec<u8> {
    let mut segments: Vec<&[u8]> = Vec::new();
    let body = path.strip_prefix(b"/").unwrap_or(path);
    let parts: Vec<&[u8]> = body.split(|b| *b == b'/').collect();
    let last = parts.len().saturating_sub(1);
    let mut trailing_slash = false;
    for (i, seg) in parts.iter().enumerate() {
        match *seg {
            b"." => trailing_slash = i == last,
            b".." => {
                segments.pop();
                trailing_slash = i == last;
            }
            s => {
                segments.push(s);
                trailing_slash = false;
            }
        }
    }
    let mut out = Vec::with_capacity(path.len());
    for s in &segments {
        out.push(b'/');
        out.extend_from_slice(s);
    }
    if out.is_empty() || trailing_slash {
        out.push(b'/');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use PathNormalization::*;

    fn n(path: &str, mode: PathNormalization) -> String {
        normalize(path, mode)
            .map(|p| p.into_owned())
            .unwrap_or_else(|e| format!("refused: {e}"))
    }

    #[test]
    fn base_is_rfc_3986_plus_backslashes() {
        for (input, want) in [
            ("/a/b", "/a/b"),
            ("/a/../b", "/b"),
            ("/public/./data/abc/../xyz", "/public/data/xyz"),
            ("/a/b/..", "/a/"),
            ("/a/b/.", "/a/b/"),
            ("/..", "/"),
            ("/../../a", "/a"),
            ("/", "/"),
            ("/%61%62%63", "/abc"),
            ("/%2e%2e/admin", "/admin"),
            ("/public/%2E%2E/admin", "/admin"),
            ("/a%2fb", "/a%2Fb"),
            ("/a%5cb", "/a%5Cb"),
            ("/a%20b", "/a%20b"),
            ("/a%7eb", "/a~b"),
            ("\\da", "/da"),
            ("/a\\..\\b", "/b"),
            ("/a//b", "/a//b"),
            ("/a/.hidden", "/a/.hidden"),
            ("/a/..b", "/a/..b"),
            ("/bad%zz", "/bad%25zz"),
            ("/end%2", "/end%252"),
            ("/a%2%61", "/a%252a"),
        ] {
            assert_eq!(n(input, Base), want, "{input}");
        }
    }

    #[test]
    fn merging_and_decoding_slashes() {
        assert_eq!(n("/a//b///c", MergeSlashes), "/a/b/c");
        assert_eq!(n("/a//b", Base), "/a//b");
        assert_eq!(n("/a%2fb", MergeSlashes), "/a%2Fb");
        assert_eq!(
            n("/some%2fdata/%61%62%63", DecodeAndMergeSlashes),
            "/some/data/abc"
        );
        assert_eq!(n("/a%5C..%5Cadmin", DecodeAndMergeSlashes), "/admin");
        assert_eq!(n("/a%2F%2Fb", DecodeAndMergeSlashes), "/a/b");
    }

    #[test]
    fn none_keeps_the_path_and_nul_is_always_refused() {
        assert_eq!(n("/a/../b", None), "/a/../b");
        assert_eq!(n("/a%2fb", None), "/a%2fb");
        for mode in [None, Base, MergeSlashes, DecodeAndMergeSlashes] {
            assert_eq!(
                n("/a%00b", mode),
                "refused: the path contains an encoded NUL (%00)"
            );
        }
    }

    #[test]
    fn clean_paths_are_not_copied() {
        assert!(matches!(
            normalize("/api/v1/read", Base),
            Ok(Cow::Borrowed(_))
        ));
        assert!(matches!(
            normalize("/api/v1/read", MergeSlashes),
            Ok(Cow::Borrowed(_))
        ));
    }
}
