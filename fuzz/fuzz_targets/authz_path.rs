//! Fuzzes what an AuthorizationPolicy decision reads from a request's path: path
//! normalization (`weft_policy::normalize`, every mode) and the path match forms
//! (`weft_api::view::authz::PathMatch`, strings and templates).
//!
//! The input is a mode byte, then a policy path and a request path separated by the first
//! newline. Checks, whatever the bytes:
//!
//! - nothing panics;
//! - a path is refused only when it holds `%00`, whatever the mode;
//! - normalizing is idempotent (the path a policy judged is the path the application gets,
//!   and normalizing it again would change nothing);
//! - outside NONE, a normalized request path (one starting with `/`) still starts with `/`
//!   and holds no `\`, no `.` or `..` segment, and (when slashes are merged) no `//`;
//! - a path pattern that parses prints back to text that parses to the same pattern, and
//!   matching it against the normalized path never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weft_api::view::authz::PathMatch;
use weft_api::view::PathNormalization;
use weft_policy::normalize::normalize;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mode = match mode % 4 {
        0 => PathNormalization::None,
        1 => PathNormalization::Base,
        2 => PathNormalization::MergeSlashes,
        _ => PathNormalization::DecodeAndMergeSlashes,
    };
    let text = String::from_utf8_lossy(rest);
    let (pattern, path) = text.split_once('\n').unwrap_or(("", &text));
    let normalized = match normalize(path, mode) {
        Ok(p) => p.into_owned(),
        Err(_) => {
            assert!(path.contains("%00"), "refused without %00: {path:?}");
            return;
        }
    };
    assert!(!path.contains("%00"), "accepted %00: {path:?}");
    let again = normalize(&normalized, mode).expect("a normalized path is accepted");
    assert_eq!(again, normalized.as_str(), "not idempotent for {path:?} ({mode:?})");
    // Request paths start with `/` (hyper refuses others, but for `OPTIONS *`).
    if mode != PathNormalization::None && path.starts_with('/') {
        assert!(normalized.starts_with('/'), "{path:?} -> {normalized:?}");
        assert!(!normalized.contains('\\'), "{path:?} -> {normalized:?}");
        for segment in normalized.split('/') {
            assert!(segment != "." && segment != "..", "{path:?} -> {normalized:?}");
        }
        if mode != PathNormalization::Base {
            assert!(!normalized.contains("//"), "{path:?} -> {normalized:?}");
        }
    }
    if let Ok(p) = PathMatch::parse(pattern) {
        let printed = p.to_string();
        assert_eq!(PathMatch::parse(&printed).as_ref(), Ok(&p), "{pattern:?} printed as {printed:?}");
        let _ = p.matches(&normalized);
    }
});
