//! Fuzzes Weft's HTTP/1 codec (`weft_proxy::h1`): request heads from clients, response heads
//! from upstreams, and chunked bodies from both.
//!
//! Checks, for arbitrary bytes:
//!
//! - `head::request` and `head::response` never panic;
//! - a request head does not depend on how its bytes arrive: when the whole input parses as
//!   `Complete` with a head of `n` bytes, every shorter prefix of those `n` bytes is `Partial`
//!   (never handed to hyper as `Unusual`, never accepted early), and on `Unusual` nothing is
//!   taken out of the buffer (hyper must see every byte);
//! - a parsed request, written back with `encode::request_head`, parses to the same method,
//!   path and query, body framing and header fields;
//! - the chunked decoder yields the same data, trailers and outcome whether the body arrives
//!   at once or in two pieces split anywhere.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use weft_proxy::h1::decode::{Decoded, Decoder, Framing};
use weft_proxy::h1::{encode, head};

const MAX_HEADERS: usize = 32;
const MAX_BYTES: usize = 8192;

fuzz_target!(|data: &[u8]| {
    check_request(data);
    let mut buf = BytesMut::from(data);
    let _ = head::response(&mut buf, data.first().is_some_and(|b| b & 1 == 1));
    check_chunked(data);
});

fn check_request(data: &[u8]) {
    let mut buf = BytesMut::from(data);
    match head::request(&mut buf, MAX_HEADERS, MAX_BYTES) {
        head::Parsed::Complete(h) => {
            let n = data.len() - buf.len();
            for end in 0..n {
                let mut prefix = BytesMut::from(&data[..end]);
                assert!(
                    matches!(
                        head::request(&mut prefix, MAX_HEADERS, MAX_BYTES),
                        head::Parsed::Partial
                    ),
                    "the first {end} of a {n}-byte head are not Partial"
                );
            }
            roundtrip(&h);
        }
        head::Parsed::Unusual => assert_eq!(&buf[..], data, "Unusual took bytes out"),
        head::Parsed::Partial => assert_eq!(&buf[..], data, "Partial took bytes out"),
    }
}

fn roundtrip(h: &head::RequestHead) {
    let p = &h.parts;
    let target = p.uri.path_and_query().map_or("/", |pq| pq.as_str());
    let mut out = BytesMut::new();
    encode::request_head(&mut out, &p.method, target, p.version, &p.headers, h.framing);
    match head::request(&mut out, MAX_HEADERS + 2, usize::MAX) {
        head::Parsed::Complete(again) => {
            assert_eq!(again.parts.method, p.method);
            // An absolute-form target without a path goes out as `/`.
            assert_eq!(again.parts.uri.path(), p.uri.path());
            assert_eq!(again.parts.uri.query(), p.uri.query());
            // An empty body may come back declared: `content-length: 0` for a POST.
            let same = |f: Framing| if f == Framing::Length(0) { Framing::Empty } else { f };
            assert_eq!(same(again.framing), same(h.framing));
            for (name, value) in &p.headers {
                if name != http::header::CONNECTION && name != http::header::TRANSFER_ENCODING {
                    assert!(
                        again.parts.headers.get_all(name).iter().any(|v| v == value),
                        "{name}: {value:?} lost in the round trip"
                    );
                }
            }
        }
        _ => panic!("a parsed head does not parse again once written: {out:?}"),
    }
}

/// Data, trailers, and how decoding ended (`None`: needs more; `Some(true)`: end;
/// `Some(false)`: error).
type Decoding = (Vec<u8>, Option<http::HeaderMap>, Option<bool>);

fn decode(pieces: &[&[u8]]) -> Decoding {
    let mut decoder = Decoder::new(Framing::Chunked);
    let mut buf = BytesMut::new();
    let (mut data, mut trailers) = (Vec::new(), None);
    for piece in pieces {
        buf.extend_from_slice(piece);
        loop {
            match decoder.decode(&mut buf) {
                Ok(Decoded::Frame(f)) => match f.into_data() {
                    Ok(d) => data.extend_from_slice(&d),
                    Err(f) => trailers = f.into_trailers().ok(),
                },
                Ok(Decoded::NeedMore) => break,
                Ok(Decoded::End) => return (data, trailers, Some(true)),
                Err(_) => return (data, trailers, Some(false)),
            }
        }
    }
    (data, trailers, None)
}

fn check_chunked(data: &[u8]) {
    let whole = decode(&[data]);
    for cut in 0..=data.len() {
        let split = decode(&[&data[..cut], &data[cut..]]);
        assert_eq!(split, whole, "split at {cut} decodes differently");
    }
}
