//! Fuzzes what the proxy reads first on a connection: protocol detection
//! (`weft_proxy::detect::classify`) and the mesh transport header
//! (`weft_proxy::io::transport::Header::decode`).
//!
//! Checks, for arbitrary bytes:
//!
//! - `classify` never panics, on the input or on any prefix of it;
//! - detection does not change its mind as more bytes arrive: once a prefix classifies as
//!   `Some(d)`, every longer prefix classifies as the same `Some(d)` (bytes arrive in arbitrary
//!   pieces, so a decision must not depend on where a read happened to end);
//! - `Header::decode` never panics, and when it returns `Ok(h)`, `h.encode()` decodes to the
//!   same `h` and is exactly the first eight bytes of the input (the encoding is canonical).
#![no_main]

use libfuzzer_sys::fuzz_target;
use weft_proxy::detect::{classify, Detected};
use weft_proxy::io::transport::{Header, LEN};

fuzz_target!(|data: &[u8]| {
    check_classify(data);
    check_header(data);
});

fn check_classify(data: &[u8]) {
    let mut first: Option<(usize, Detected)> = None;
    for end in 0..=data.len() {
        let got = classify(&data[..end]);
        match (first, got) {
            (None, Some(d)) => first = Some((end, d)),
            (None, None) => {}
            (Some((at, d)), got) => assert_eq!(
                got,
                Some(d),
                "detection changed its mind: the first {at} bytes classify as Some({d:?}), \
                 the first {end} bytes as {got:?} (input {:?})",
                String::from_utf8_lossy(&data[..end.min(256)]),
            ),
        }
    }
}

fn check_header(data: &[u8]) {
    let Ok(h) = Header::decode(data) else {
        return;
    };
    let encoded = h.encode();
    assert_eq!(
        Header::decode(&encoded),
        Ok(h),
        "{h:?} encodes to {encoded:?}, which does not decode back"
    );
    assert_eq!(
        &encoded[..],
        &data[..LEN],
        "decode accepted a non-canonical header: {:?} decodes to {h:?}, which encodes to {encoded:?}",
        &data[..LEN],
    );
}
