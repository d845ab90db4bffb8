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
//!   at once or in two pieces split anywhere;
//! - a response head read with verbatim fields says what the same head read into a map says
//!   (status, framing, keep-alive, and the fields but for the hop-by-hop ones), and written
//!   out by `encode::response_head` it parses again to those fields.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use weft_proxy::h1::decode::{Decoded, Decoder, Framing};
use weft_proxy::h1::verbatim::{Fields, VerbatimFields};
use weft_proxy::h1::{encode, head};
use weft_proxy::http::headers::strip_hop_by_hop;

const MAX_HEADERS: usize = 32;
const MAX_BYTES: usize = 8192;

fuzz_target!(|data: &[u8]| {
    check_request(data);
    check_response(data);
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

fn check_response(data: &[u8]) {
    let head_request = data.first().is_some_and(|b| b & 1 == 1);
    let parse = |form| head::response(&mut BytesMut::from(data), head_request, form);
    let (mapped, verbatim) = match (parse(Fields::Map), parse(Fields::Verbatim)) {
        (Ok(Some(m)), Ok(Some(v))) => (m, v),
        (Ok(None), Ok(None)) | (Err(_), Err(_)) => return,
        _ => panic!("the two forms disagree on whether the head is whole and valid"),
    };
    assert_eq!(mapped.parts.status, verbatim.parts.status);
    assert_eq!(mapped.framing, verbatim.framing);
    assert_eq!(mapped.keep_alive, verbatim.keep_alive);
    let Some(fields) = verbatim.verbatim else {
        assert_eq!(mapped.parts.headers, verbatim.parts.headers);
        return;
    };
    let mut expected = mapped.parts.headers;
    strip_hop_by_hop(&mut expected);
    expected.remove(http::header::TE);
    assert_eq!(map_of(&fields), expected, "verbatim fields differ from the map's");
    // Written out and read again: the same fields (and the writer's `Date` and framing).
    let mut out = BytesMut::new();
    let framing = match verbatim.framing {
        Framing::Length(n) => Framing::Length(n),
        Framing::Chunked | Framing::UntilClose => Framing::Chunked,
        Framing::Empty => Framing::Empty,
    };
    let status = verbatim.parts.status;
    encode::response_head(&mut out, status, Some(&fields), &http::HeaderMap::new(), framing, false);
    let again = match head::response(&mut out, head_request, Fields::Map) {
        Ok(Some(again)) => again,
        other => panic!("a written head does not parse again: {:?}", other.is_ok()),
    };
    for (name, value) in &expected {
        assert!(
            again.parts.headers.get_all(name).iter().any(|v| v == value),
            "{name}: {value:?} lost when written out"
        );
    }
}

fn map_of(fields: &VerbatimFields) -> http::HeaderMap {
    let mut map = http::HeaderMap::new();
    fields.append_to(&mut map);
    map
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
