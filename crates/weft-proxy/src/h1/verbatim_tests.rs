//! Verbatim response fields: which heads stay bytes, what is left out, what readers see, and
//! what Weft's HTTP/1 writer puts on the wire for them.

use bytes::BytesMut;
use http::header::HeaderValue;
use http::StatusCode;

use super::decode::Framing;
use super::encode;
use super::head::{self, ResponseHead};
use super::verbatim::{header, materialize, Fields, VerbatimFields};

fn parse(raw: &str, form: Fields) -> ResponseHead {
    let mut buf = BytesMut::from(raw.as_bytes());
    match head::response(&mut buf, false, form) {
        Ok(Some(h)) => h,
        Ok(None) => panic!("incomplete head: {raw:?}"),
        Err(e) => panic!("{e}: {raw:?}"),
    }
}

fn verbatim(raw: &str) -> Option<VerbatimFields> {
    let h = parse(raw, Fields::Verbatim);
    if h.verbatim.is_some() {
        assert!(
            h.parts.headers.is_empty(),
            "verbatim heads leave the map empty"
        );
    }
    h.verbatim
}

fn forwarded(v: &VerbatimFields) -> String {
    v.lines().map(|l| String::from_utf8_lossy(l)).collect()
}

const NODE: &str = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nDate: Wed, 25 Nov 2026 10:00:00 GMT\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\nContent-Length: 2\r\nX-App:  padded value \t\r\n\r\nok";

#[test]
fn fields_pass_as_received_without_the_hops_own() {
    let v = verbatim(NODE).expect("verbatim");
    assert_eq!(
        forwarded(&v),
        "Content-Type: text/plain\r\nDate: Wed, 25 Nov 2026 10:00:00 GMT\r\nContent-Length: 2\r\nX-App:  padded value \t\r\n"
    );
    assert_eq!(v.content_length, Some(2));
    assert!(v.date);
    assert!(v.wire_len() >= forwarded(&v).len());
    assert_eq!(v.get("x-app"), Some(&b"padded value"[..]));
    assert_eq!(v.get("content-type"), Some(&b"text/plain"[..]));
    assert_eq!(v.get("connection"), None, "left out");
    assert_eq!(v.get("grpc-status"), None);
    // A name that shares `x-app`'s quick-check bit is still told apart.
    assert_eq!(v.get("y-app"), None);
}

#[test]
fn a_map_is_built_when_asked_for() {
    let h = parse(NODE, Fields::Map);
    assert!(h.verbatim.is_none());
    assert_eq!(h.parts.headers["x-app"], "padded value");
    assert_eq!(h.framing, Framing::Length(2));
}

#[test]
fn heads_that_cannot_be_copied_as_they_are_get_a_map() {
    for raw in [
        // A line ending in a bare LF.
        "HTTP/1.1 200 OK\r\nA: 1\nContent-Length: 0\r\n\r\n",
        "HTTP/1.1 200 OK\nContent-Length: 0\n\n",
        // `Connection` names a field that must go too.
        "HTTP/1.1 200 OK\r\nConnection: x-private\r\nX-Private: 1\r\nContent-Length: 0\r\n\r\n",
        // Two lengths (equal, so valid), and a length beside chunking.
        "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        // More hop-by-hop lines than are left out by position.
        "HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nKeep-Alive: 5\r\nUpgrade: x\r\nTE: y\r\nProxy-Connection: z\r\nContent-Length: 0\r\n\r\n",
    ] {
        let h = parse(raw, Fields::Verbatim);
        assert!(h.verbatim.is_none(), "{raw:?}");
        assert!(!h.parts.headers.is_empty(), "{raw:?}");
    }
}

#[test]
fn a_head_without_fields_is_verbatim_and_empty() {
    let v = verbatim("HTTP/1.1 204 No Content\r\n\r\n").expect("verbatim");
    assert_eq!(forwarded(&v), "");
    assert_eq!(v.content_length, None);
    assert!(!v.date);
}

#[test]
fn the_writer_sends_the_fields_once_with_its_own_framing() {
    let raw = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A: 1\r\nConnection: keep-alive\r\nX-B: 2\r\n\r\n";
    let v = verbatim(raw).expect("verbatim");
    let mut added = http::HeaderMap::new();
    added.insert(
        http::header::SET_COOKIE,
        HeaderValue::from_static("s=1; Path=/"),
    );
    let mut out = BytesMut::new();
    encode::response_head(
        &mut out,
        StatusCode::OK,
        Some(&v),
        &added,
        Framing::Chunked,
        true,
    );
    let text = String::from_utf8_lossy(&out);
    assert!(
        text.starts_with(
            "HTTP/1.1 200 OK\r\nX-A: 1\r\nX-B: 2\r\nset-cookie: s=1; Path=/\r\ndate: "
        ),
        "{text}"
    );
    assert!(
        text.ends_with("\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n"),
        "{text}"
    );
    assert_eq!(text.matches("ransfer-encoding").count(), 1, "{text}");
    assert!(!text.contains("keep-alive"), "{text}");

    // A declared length and a Date are the upstream's, not added again.
    let v = verbatim(NODE).expect("verbatim");
    let mut out = BytesMut::new();
    encode::response_head(
        &mut out,
        StatusCode::OK,
        Some(&v),
        &http::HeaderMap::new(),
        Framing::Length(2),
        false,
    );
    let text = String::from_utf8_lossy(&out).to_ascii_lowercase();
    assert_eq!(text.matches("content-length").count(), 1, "{text}");
    assert_eq!(text.matches("date:").count(), 1, "{text}");
}

#[test]
fn readers_and_hyper_see_every_field() {
    let h = parse(NODE, Fields::Verbatim);
    let mut resp = http::Response::from_parts(h.parts, ());
    resp.extensions_mut().insert(h.verbatim.expect("verbatim"));
    resp.headers_mut()
        .append("x-added", HeaderValue::from_static("1"));
    assert_eq!(header(&resp, "x-app"), Some(&b"padded value"[..]));
    assert_eq!(header(&resp, "x-added"), Some(&b"1"[..]));

    materialize(&mut resp);
    assert!(resp.extensions().get::<VerbatimFields>().is_none());
    let names: Vec<&str> = resp.headers().keys().map(|n| n.as_str()).collect();
    assert_eq!(
        names,
        ["content-type", "date", "content-length", "x-app", "x-added"],
        "upstream fields in order, then the added one; hop-by-hop ones left out"
    );
    assert_eq!(resp.headers()["x-app"], "padded value");
    // A second call finds nothing more to move.
    materialize(&mut resp);
    assert_eq!(resp.headers().len(), 5);
}
