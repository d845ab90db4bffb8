//! Parsing message heads with `httparse` into `http` types. Header values are slices of the
//! received head (no copy per header). Anything this codec does not handle itself — see
//! [`Parsed::Unusual`] — is left for the caller to hand to hyper, which answers it as before.

use std::mem::MaybeUninit;
use std::ops::Range;

use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode, Uri, Version};

use super::decode::Framing;
use super::names::{known, Known};
use super::verbatim::{self, Fields, VerbatimFields};
use super::Error;

/// The most header fields a head may carry here (the proxy's limit may be lower).
pub const MAX_HEADERS: usize = 128;

pub enum Parsed<T> {
    Complete(T),
    /// The buffer does not hold a whole head yet.
    Partial,
    /// Valid or not, not for this codec: malformed, over a limit, HTTP/1.0, an upgrade,
    /// `CONNECT`, `Expect`, or framing that needs care (see [`request`]).
    Unusual,
}

pub struct RequestHead {
    pub parts: http::request::Parts,
    pub framing: Framing,
    /// False when the client asked to close after this exchange.
    pub keep_alive: bool,
}

pub struct ResponseHead {
    pub parts: http::response::Parts,
    /// The fields, when asked for [`Fields::Verbatim`] and the head allows it (`parts` then
    /// has an empty map).
    pub verbatim: Option<VerbatimFields>,
    pub framing: Framing,
    pub keep_alive: bool,
}

/// Parses a request head at the start of `buf`; on success the head's bytes are taken out.
/// A head over `max_bytes` or `max_headers` is [`Parsed::Unusual`] (hyper answers 431).
pub fn request(buf: &mut BytesMut, max_headers: usize, max_bytes: usize) -> Parsed<RequestHead> {
    // Uninitialised slots: zeroing 128 of them cost more than parsing a typical head.
    let mut slots = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut []);
    let len = match req.parse_with_uninit_headers(buf, &mut slots[..max_headers.min(MAX_HEADERS)]) {
        Ok(httparse::Status::Complete(len)) if len <= max_bytes => len,
        Ok(httparse::Status::Partial) => return Parsed::Partial,
        Ok(httparse::Status::Complete(_)) | Err(_) => return Parsed::Unusual,
    };
    if req.version != Some(1) {
        return Parsed::Unusual;
    }
    let (Some(method), Some(path)) = (req.method, req.path) else {
        return Parsed::Unusual;
    };
    let Ok(method) = Method::from_bytes(method.as_bytes()) else {
        return Parsed::Unusual;
    };
    if method == Method::CONNECT || path == "*" {
        return Parsed::Unusual;
    }
    // Everything that sends the request to hyper is decided before any byte is taken.
    let Some((framing, keep_alive)) = request_framing(req.headers) else {
        return Parsed::Unusual;
    };
    let base = buf.as_ptr() as usize;
    let path = range_of(base, path.as_bytes());
    let Ok(fields) = fields(base, req.headers) else {
        return Parsed::Unusual;
    };
    let head = buf.split_to(len).freeze();
    let Ok(uri) = Uri::from_maybe_shared(head.slice(path)) else {
        return put_back(buf, &head);
    };
    // Authority-form (`GET host:80`) belongs to CONNECT only.
    if uri.scheme().is_none() && uri.path_and_query().is_none() {
        return put_back(buf, &head);
    }
    // Room for what the proxy adds on the way (`weft-orig-proto` across the mesh, a
    // `Host`): growing a full map rebuilds it, which costs more than parsing the head.
    let mut headers = HeaderMap::with_capacity(fields.len() + 2);
    for (name, value) in fields {
        let Ok(value) = HeaderValue::from_maybe_shared(head.slice(value)) else {
            return put_back(buf, &head);
        };
        headers.append(name, value);
    }
    let mut builder = http::Request::new(());
    *builder.method_mut() = method;
    *builder.uri_mut() = uri;
    *builder.version_mut() = Version::HTTP_11;
    *builder.headers_mut() = headers;
    Parsed::Complete(RequestHead {
        parts: builder.into_parts().0,
        framing,
        keep_alive,
    })
}

/// Returns a head already taken out to the front of the buffer, for hyper to read (rare: a
/// target or a header value that `http` refuses).
fn put_back<T>(buf: &mut BytesMut, head: &Bytes) -> Parsed<T> {
    let mut joined = BytesMut::with_capacity(head.len() + buf.len());
    joined.extend_from_slice(head);
    joined.extend_from_slice(buf);
    *buf = joined;
    Parsed::Unusual
}

/// The body framing and keep-alive a request's headers ask for, or `None` when they ask for
/// something this codec leaves to hyper: an upgrade, `Expect`, a transfer coding other than
/// chunked alone, several or invalid lengths, or a length and chunking together.
fn request_framing(fields: &[httparse::Header<'_>]) -> Option<(Framing, bool)> {
    let (mut length, mut chunked, mut keep_alive) = (None, false, true);
    for h in fields {
        match known(h.name.as_bytes()) {
            Known::ContentLength => {
                if length.is_some() {
                    return None;
                }
                length = Some(parse_length(h.value)?);
            }
            Known::TransferEncoding => {
                if chunked || !h.value.eq_ignore_ascii_case(b"chunked") {
                    return None;
                }
                chunked = true;
            }
            Known::Connection => {
                let value = std::str::from_utf8(h.value).ok()?;
                if token_in(value, "upgrade") {
                    return None;
                }
                keep_alive &= !token_in(value, "close");
            }
            Known::Upgrade | Known::Expect => return None,
            _ => {}
        }
    }
    match (length, chunked) {
        (Some(_), true) => None,
        (Some(n), false) => Some((Framing::Length(n), keep_alive)),
        (None, true) => Some((Framing::Chunked, keep_alive)),
        (None, false) => Some((Framing::Empty, keep_alive)),
    }
}

/// Parses a response head to a request (`head_request`: it was a HEAD, so no body follows),
/// its fields in the `form` asked for. Returns `Ok(None)` until the buffer holds the whole head.
pub fn response(
    buf: &mut BytesMut,
    head_request: bool,
    form: Fields,
) -> Result<Option<ResponseHead>, Error> {
    let mut slots = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut []);
    let len = match httparse::ParserConfig::default()
        .parse_response_with_uninit_headers(&mut resp, buf, &mut slots)
    {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(Error::Head(e.to_string())),
    };
    let status = resp
        .code
        .and_then(|c| StatusCode::from_u16(c).ok())
        .ok_or_else(|| Error::Head("invalid status code".into()))?;
    let version = if resp.version == Some(0) {
        Version::HTTP_10
    } else {
        Version::HTTP_11
    };
    let declared = response_framing(resp.headers)?;
    let plan = match form {
        Fields::Verbatim => verbatim::plan(&buf[..len], resp.headers, declared.length),
        Fields::Map => None,
    };
    let fields = match plan {
        Some(_) => Vec::new(),
        None => {
            fields(buf.as_ptr() as usize, resp.headers).map_err(|e| Error::Head(e.to_string()))?
        }
    };
    let head = buf.split_to(len).freeze();
    let mut headers = HeaderMap::with_capacity(fields.len());
    for (name, value) in fields {
        let value = HeaderValue::from_maybe_shared(head.slice(value))
            .map_err(|_| Error::Head(format!("invalid value of `{name}`")))?;
        headers.append(name, value);
    }
    let no_body = head_request
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED;
    if declared.unsupported_coding && !no_body {
        return Err(Error::Head(
            "a Transfer-Encoding other than chunked, which Weft does not decode".into(),
        ));
    }
    let framing = match (no_body, declared.chunked, declared.length) {
        (true, _, _) => Framing::Empty,
        (false, true, _) => Framing::Chunked,
        (false, false, None) => Framing::UntilClose,
        (false, false, Some(n)) => Framing::Length(n),
    };
    let mut keep_alive = declared.keep_alive.unwrap_or(version == Version::HTTP_11);
    if framing == Framing::UntilClose {
        keep_alive = false;
    }
    if declared.chunked && declared.length.is_some() {
        // RFC 9112 §6.3: chunking wins, the length must not be forwarded, and the connection
        // is not to be trusted with another message. (Such a head is never verbatim.)
        headers.remove(header::CONTENT_LENGTH);
        keep_alive = false;
    }
    let mut builder = http::Response::new(());
    *builder.status_mut() = status;
    *builder.version_mut() = version;
    *builder.headers_mut() = headers;
    Ok(Some(ResponseHead {
        parts: builder.into_parts().0,
        verbatim: plan.map(|p| p.take(&head)),
        framing,
        keep_alive,
    }))
}

/// What a response's fields say about its framing and its connection.
struct Declared {
    length: Option<u64>,
    /// True when there is a `Transfer-Encoding`.
    chunked: bool,
    /// True when that is anything but one `chunked`.
    unsupported_coding: bool,
    /// `Some` when `Connection` says `close` (false) or `keep-alive` (true).
    keep_alive: Option<bool>,
}

fn response_framing(fields: &[httparse::Header<'_>]) -> Result<Declared, Error> {
    let mut declared = Declared {
        length: None,
        chunked: false,
        unsupported_coding: false,
        keep_alive: None,
    };
    for h in fields {
        match known(h.name.as_bytes()) {
            Known::ContentLength => {
                let n = parse_length(h.value)
                    .ok_or_else(|| Error::Head("invalid Content-Length".into()))?;
                if declared.length.is_some_and(|l| l != n) {
                    return Err(Error::Head("conflicting Content-Length values".into()));
                }
                declared.length = Some(n);
            }
            Known::TransferEncoding => {
                // Weft decodes no transfer coding but chunked, and could not tell the next
                // hop of another (HTTP/2 has none): such a body would go on with its coding
                // silently lost. Like nginx, the answer is refused (502) instead.
                if declared.chunked || !h.value.trim_ascii().eq_ignore_ascii_case(b"chunked") {
                    declared.unsupported_coding = true;
                }
                declared.chunked = true;
            }
            Known::Connection => {
                let has = |token: &[u8]| {
                    h.value
                        .split(|&b| b == b',')
                        .any(|t| t.trim_ascii().eq_ignore_ascii_case(token))
                };
                if has(b"close") {
                    declared.keep_alive = Some(false);
                } else if has(b"keep-alive") {
                    declared.keep_alive = Some(true);
                }
            }
            _ => {}
        }
    }
    Ok(declared)
}

/// At the start of `buf`, an interim (1xx, not 101) response head: `Some(Some(len))`; a final
/// head, or bytes that are not a head (for [`response`] to report): `Some(None)`; not a whole
/// head yet: `None`.
pub fn interim_len(buf: &[u8]) -> Option<Option<usize>> {
    let mut slots = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut []);
    match httparse::ParserConfig::default()
        .parse_response_with_uninit_headers(&mut resp, buf, &mut slots)
    {
        Ok(httparse::Status::Complete(len)) => {
            let interim = resp
                .code
                .is_some_and(|c| (100..200).contains(&c) && c != 101);
            Some(interim.then_some(len))
        }
        Ok(httparse::Status::Partial) => None,
        Err(_) => Some(None),
    }
}

/// Names and the positions of values, relative to the start of the buffer `base` points at.
fn fields(
    base: usize,
    parsed: &[httparse::Header<'_>],
) -> Result<Vec<(HeaderName, Range<usize>)>, http::header::InvalidHeaderName> {
    let mut out = Vec::with_capacity(parsed.len());
    for h in parsed {
        out.push((
            super::names::header_name(h.name.as_bytes())?,
            range_of(base, h.value),
        ));
    }
    Ok(out)
}

fn range_of(base: usize, part: &[u8]) -> Range<usize> {
    let start = part.as_ptr() as usize - base;
    start..start + part.len()
}

/// Fills `map` from parsed fields, taking each value's bytes with `value`.
pub fn header_map(
    parsed: &[httparse::Header<'_>],
    value: impl Fn(&[u8]) -> Bytes,
    map: &mut HeaderMap,
) -> Result<(), Error> {
    for h in parsed {
        let name = super::names::header_name(h.name.as_bytes())
            .map_err(|_| Error::Head(format!("invalid header name `{}`", h.name)))?;
        let v = HeaderValue::from_maybe_shared(value(h.value))
            .map_err(|_| Error::Head(format!("invalid value of `{name}`")))?;
        map.append(name, v);
    }
    Ok(())
}

pub(super) fn parse_length(b: &[u8]) -> Option<u64> {
    // At most 19 digits, so the sum cannot overflow a u64.
    if b.is_empty() || b.len() > 19 {
        return None;
    }
    b.iter().try_fold(0u64, |n, &d| {
        d.is_ascii_digit().then(|| n * 10 + u64::from(d - b'0'))
    })
}

fn token_in(list: &str, token: &str) -> bool {
    list.split(',')
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(input: &[u8]) -> (Parsed<RequestHead>, BytesMut) {
        let mut buf = BytesMut::from(input);
        (request(&mut buf, 100, 8192), buf)
    }

    #[test]
    fn unusual_heads_are_left_whole_for_hyper() {
        for input in [
            &b"GET s HTTP/1.1\r\nhost: x\r\n\r\n"[..],
            b"GET / HTTP/1.0\r\n\r\n",
            b"GET / HTTP/1.1\r\nexpect: 100-continue\r\n\r\n",
            b"POST / HTTP/1.1\r\ncontent-length: 1\r\ntransfer-encoding: chunked\r\n\r\n",
            b"POST / HTTP/1.1\r\ntransfer-encoding: gzip\r\n\r\n",
            b"POST / HTTP/1.1\r\ncontent-length: 1\r\ncontent-length: 1\r\n\r\n",
            b"GET / HTTP/1.1\r\nconnection: keep-alive, Upgrade\r\nupgrade: x\r\n\r\n",
            b"CONNECT a:443 HTTP/1.1\r\n\r\n",
        ] {
            let (parsed, buf) = parse(input);
            assert!(
                matches!(parsed, Parsed::Unusual),
                "{:?}",
                String::from_utf8_lossy(input)
            );
            assert_eq!(&buf[..], input, "nothing taken");
        }
    }

    #[test]
    fn a_plain_head_is_taken_out_with_its_framing() {
        let (parsed, buf) = parse(
            b"POST /p?q=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc",
        );
        let Parsed::Complete(h) = parsed else {
            panic!("complete")
        };
        assert_eq!(h.parts.uri, "/p?q=1");
        assert_eq!(h.parts.headers["host"], "a");
        assert_eq!(h.framing, Framing::Length(3));
        assert!(!h.keep_alive);
        assert_eq!(&buf[..], b"abc");
    }

    #[test]
    fn lengths_are_plain_decimal_digits() {
        assert_eq!(parse_length(b"0"), Some(0));
        assert_eq!(parse_length(b"007"), Some(7));
        assert_eq!(
            parse_length(b"9999999999999999999"),
            Some(9_999_999_999_999_999_999)
        );
        for bad in [
            &b""[..],
            b"+1",
            b"-1",
            b" 1",
            b"1 ",
            b"1a",
            b"0x1",
            b"12345678901234567890",
        ] {
            assert_eq!(
                parse_length(bad),
                None,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
