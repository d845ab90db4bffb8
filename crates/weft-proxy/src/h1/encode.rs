//! Writing message heads and chunked framing into a buffer that goes out in one write.

use std::cell::RefCell;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::{BufMut, BytesMut};
use http::header::{self, HeaderMap};
use http::{Method, StatusCode};

use super::decode::Framing;
use super::verbatim::VerbatimFields;

/// The `Content-Length` in `headers`, if there is a valid one.
pub fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| super::head::parse_length(v.as_bytes()))
}

/// The framing a request or response body gets on the wire, decided from the length its
/// fields declare and what the body says about its size.
pub fn body_framing(declared: Option<u64>, end_stream: bool, exact: Option<u64>) -> Framing {
    match (declared, end_stream, exact) {
        (Some(n), _, _) => Framing::Length(n),
        (None, true, _) => Framing::Empty,
        (None, false, Some(n)) => Framing::Length(n),
        (None, false, None) => Framing::Chunked,
    }
}

/// `METHOD target HTTP/1.x`, the headers, and the framing header `framing` needs. HTTP/1.0
/// is kept for a client that spoke it (it crossed the mesh as `weft-orig-proto: HTTP/1.0`).
/// `Expect` is not written: `100-continue` was the client's question to this proxy, answered
/// by the server side; asking the upstream again would only add an interim answer to wait
/// through. `out` comes sized from [`super::write::message_buffer`].
pub fn request_head(
    out: &mut BytesMut,
    method: &Method,
    target: &str,
    version: http::Version,
    headers: &HeaderMap,
    framing: Framing,
) {
    out.put_slice(method.as_str().as_bytes());
    out.put_u8(b' ');
    out.put_slice(target.as_bytes());
    out.put_slice(if version == http::Version::HTTP_10 {
        b" HTTP/1.0\r\n"
    } else {
        b" HTTP/1.1\r\n"
    });
    let seen = fields(out, headers, Some(header::EXPECT));
    match framing {
        Framing::Length(n) if !seen.content_length => content_length(out, n),
        // A request whose method implies a body says it is empty.
        Framing::Empty
            if method == Method::POST || method == Method::PUT || method == Method::PATCH =>
        {
            out.put_slice(b"content-length: 0\r\n")
        }
        Framing::Chunked => out.put_slice(b"transfer-encoding: chunked\r\n"),
        _ => {}
    }
    out.put_slice(b"\r\n");
}

/// The status line, the fields (`verbatim` ones first, as received, then the map's), `Date`
/// when missing, and the framing header. `out` comes sized from
/// [`super::write::message_buffer`].
pub fn response_head(
    out: &mut BytesMut,
    status: StatusCode,
    verbatim: Option<&VerbatimFields>,
    headers: &HeaderMap,
    framing: Framing,
    close: bool,
) {
    out.put_slice(b"HTTP/1.1 ");
    out.put_slice(status.as_str().as_bytes());
    out.put_u8(b' ');
    out.put_slice(status.canonical_reason().unwrap_or("Unknown").as_bytes());
    out.put_slice(b"\r\n");
    if let Some(v) = verbatim {
        for lines in v.lines() {
            out.put_slice(lines);
        }
    }
    let mut seen = fields(out, headers, None);
    if let Some(v) = verbatim {
        seen.date |= v.date;
        seen.content_length |= v.content_length.is_some();
    }
    if !seen.date {
        out.put_slice(b"date: ");
        with_date(|d| out.put_slice(d));
        out.put_slice(b"\r\n");
    }
    match framing {
        Framing::Length(n) if !seen.content_length => content_length(out, n),
        Framing::Empty
            if !seen.content_length
                && status != StatusCode::NO_CONTENT
                && status != StatusCode::NOT_MODIFIED
                && !status.is_informational() =>
        {
            out.put_slice(b"content-length: 0\r\n")
        }
        Framing::Chunked => out.put_slice(b"transfer-encoding: chunked\r\n"),
        _ => {}
    }
    if close {
        out.put_slice(b"connection: close\r\n");
    }
    out.put_slice(b"\r\n");
}

/// Which framing-related fields a head already carries (found while writing it, so the
/// map is not searched again).
struct Seen {
    content_length: bool,
    date: bool,
}

/// Writes the fields of `headers`, except the hop's own and `skip`.
fn fields(out: &mut BytesMut, headers: &HeaderMap, skip: Option<header::HeaderName>) -> Seen {
    let mut seen = Seen {
        content_length: false,
        date: false,
    };
    for (name, value) in headers {
        // Framing and connection management are this hop's, decided above.
        if name == header::TRANSFER_ENCODING
            || name == header::CONNECTION
            || skip.as_ref() == Some(name)
        {
            continue;
        }
        seen.content_length |= name == header::CONTENT_LENGTH;
        seen.date |= name == header::DATE;
        out.put_slice(name.as_str().as_bytes());
        out.put_slice(b": ");
        out.put_slice(value.as_bytes());
        out.put_slice(b"\r\n");
    }
    seen
}

/// Room for a head with these fields, `extra` bytes more (a request target, verbatim fields),
/// and what this module adds (`Date`, framing), so that the head is written without the
/// buffer growing.
pub fn head_capacity(headers: &HeaderMap, extra: usize) -> usize {
    let fields: usize = headers
        .iter()
        .map(|(n, v)| n.as_str().len() + v.len() + 4)
        .sum();
    fields + extra + 160
}

fn content_length(out: &mut BytesMut, n: u64) {
    out.put_slice(b"content-length: ");
    out.put_slice(itoa(n, &mut [0; 20]));
    out.put_slice(b"\r\n");
}

fn itoa(mut n: u64, digits: &mut [u8; 20]) -> &[u8] {
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &digits[i..];
        }
    }
}

/// The size line that opens a chunk of `len` bytes.
pub fn chunk_start(out: &mut BytesMut, len: usize) {
    let mut hex = [0u8; 16];
    let mut i = hex.len();
    let mut n = len;
    loop {
        i -= 1;
        hex[i] = b"0123456789abcdef"[n & 0xf];
        n >>= 4;
        if n == 0 {
            break;
        }
    }
    out.put_slice(&hex[i..]);
    out.put_slice(b"\r\n");
}

/// The last chunk, with trailers when there are any.
pub fn chunked_end(out: &mut BytesMut, trailers: Option<&HeaderMap>) {
    out.put_slice(b"0\r\n");
    if let Some(t) = trailers {
        let _ = fields(out, t, None);
    }
    out.put_slice(b"\r\n");
}

thread_local! {
    /// The `Date` value, formatted once per second per thread.
    static DATE: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
}

fn with_date(f: impl FnOnce(&[u8])) {
    let now = SystemTime::now();
    let secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    DATE.with(|cell| {
        let mut cached = cell.borrow_mut();
        if cached.0 != secs {
            *cached = (secs, httpdate::fmt_http_date(now));
        }
        f(cached.1.as_bytes());
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_chunk_sizes() {
        assert_eq!(itoa(0, &mut [0; 20]), b"0");
        assert_eq!(itoa(u64::MAX, &mut [0; 20]), b"18446744073709551615");
        let mut out = BytesMut::new();
        chunk_start(&mut out, 0x1a2b);
        assert_eq!(&out[..], b"1a2b\r\n");
    }

    #[test]
    fn response_head_adds_framing_and_date_but_not_hop_headers() {
        let mut headers = HeaderMap::new();
        headers.insert("x-app", "1".parse().expect("value"));
        headers.insert(header::TRANSFER_ENCODING, "chunked".parse().expect("value"));
        let mut out = BytesMut::new();
        response_head(
            &mut out,
            StatusCode::OK,
            None,
            &headers,
            Framing::Length(2),
            false,
        );
        let text = String::from_utf8_lossy(&out);
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
        assert!(text.contains("x-app: 1\r\n"));
        assert!(text.contains("content-length: 2\r\n"));
        assert!(text.contains("date: "));
        assert!(!text.contains("transfer-encoding"));
        assert!(text.ends_with("\r\n\r\n"));
    }

    #[test]
    fn framing_prefers_the_declared_length() {
        let mut headers = HeaderMap::new();
        let declared = |h: &HeaderMap| declared_length(h);
        assert_eq!(
            body_framing(declared(&headers), true, Some(0)),
            Framing::Empty
        );
        assert_eq!(
            body_framing(declared(&headers), false, Some(7)),
            Framing::Length(7)
        );
        assert_eq!(
            body_framing(declared(&headers), false, None),
            Framing::Chunked
        );
        headers.insert(header::CONTENT_LENGTH, "3".parse().expect("value"));
        assert_eq!(
            body_framing(declared(&headers), false, None),
            Framing::Length(3)
        );
        headers.insert(header::CONTENT_LENGTH, "+3".parse().expect("value"));
        assert_eq!(declared(&headers), None, "digits only");
    }
}
