//! Message body framing (RFC 9112 §6–7): a body is delimited by `Content-Length`, by chunked
//! transfer coding, or by the connection closing. The decoder takes bytes from the
//! connection's read buffer and yields body frames without copying them.

use bytes::{Buf, Bytes, BytesMut};
use http::HeaderMap;
use http_body::Frame;

use super::head::{header_map, MAX_HEADERS};
use super::Error;

/// A chunk-size line longer than this is not a chunk size (extensions included).
const MAX_CHUNK_LINE: usize = 1024;
/// Trailers are a head of their own and get the same bound.
const MAX_TRAILER_BYTES: usize = 64 * 1024;

/// How a message body is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// No body (a GET without `Content-Length`, a 204, the answer to a HEAD...).
    Empty,
    Length(u64),
    Chunked,
    /// Everything until the peer closes (responses only).
    UntilClose,
}

/// What one decoding step produced.
pub enum Decoded {
    Frame(Frame<Bytes>),
    /// The buffer holds no complete frame: read more.
    NeedMore,
    /// The body is complete; the buffer now starts at the next message.
    End,
}

#[derive(Debug)]
pub struct Decoder {
    state: State,
}

#[derive(Debug)]
enum State {
    Length(u64),
    ChunkSize,
    ChunkData(u64),
    ChunkEnd,
    Trailers,
    UntilClose,
    Done,
}

impl Decoder {
    pub fn new(framing: Framing) -> Self {
        let state = match framing {
            Framing::Empty | Framing::Length(0) => State::Done,
            Framing::Length(n) => State::Length(n),
            Framing::Chunked => State::ChunkSize,
            Framing::UntilClose => State::UntilClose,
        };
        Self { state }
    }

    pub fn is_done(&self) -> bool {
        matches!(self.state, State::Done)
    }

    /// Bytes still expected, when the framing says so.
    pub fn remaining(&self) -> Option<u64> {
        match self.state {
            State::Length(n) => Some(n),
            State::Done => Some(0),
            _ => None,
        }
    }

    /// Takes the next frame out of `buf`, if it holds one.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Decoded, Error> {
        loop {
            match self.state {
                State::Done => return Ok(Decoded::End),
                State::Length(n) => {
                    if buf.is_empty() {
                        return Ok(Decoded::NeedMore);
                    }
                    let (data, rest) = take(buf, n);
                    self.state = if rest == 0 {
                        State::Done
                    } else {
                        State::Length(rest)
                    };
                    return Ok(data);
                }
                State::UntilClose => {
                    if buf.is_empty() {
                        return Ok(Decoded::NeedMore);
                    }
                    return Ok(Decoded::Frame(Frame::data(buf.split().freeze())));
                }
                State::ChunkSize => {
                    let Some(line_end) = find_crlf(buf) else {
                        if buf.len() > MAX_CHUNK_LINE {
                            return Err(Error::Chunk("chunk-size line too long"));
                        }
                        return Ok(Decoded::NeedMore);
                    };
                    let size = chunk_size(&buf[..line_end])?;
                    buf.advance(line_end + 2);
                    self.state = if size == 0 {
                        State::Trailers
                    } else {
                        State::ChunkData(size)
                    };
                }
                State::ChunkData(n) => {
                    if buf.is_empty() {
                        return Ok(Decoded::NeedMore);
                    }
                    let (data, rest) = take(buf, n);
                    self.state = if rest == 0 {
                        State::ChunkEnd
                    } else {
                        State::ChunkData(rest)
                    };
                    return Ok(data);
                }
                State::ChunkEnd => {
                    if buf.len() < 2 {
                        return Ok(Decoded::NeedMore);
                    }
                    if &buf[..2] != b"\r\n" {
                        return Err(Error::Chunk("chunk data not followed by CRLF"));
                    }
                    buf.advance(2);
                    self.state = State::ChunkSize;
                }
                State::Trailers => {
                    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
                    match httparse::parse_headers(buf, &mut headers) {
                        Ok(httparse::Status::Complete((len, _))) if !crlf_only(&buf[..len]) => {
                            return Err(Error::Chunk("trailer lines must end with CRLF"))
                        }
                        Ok(httparse::Status::Complete((len, parsed))) => {
                            let trailers = if parsed.is_empty() {
                                None
                            } else {
                                Some(trailer_map(parsed)?)
                            };
                            buf.advance(len);
                            self.state = State::Done;
                            if let Some(t) = trailers {
                                return Ok(Decoded::Frame(Frame::trailers(t)));
                            }
                            return Ok(Decoded::End);
                        }
                        Ok(httparse::Status::Partial) if buf.len() > MAX_TRAILER_BYTES => {
                            return Err(Error::Chunk("trailers too large"))
                        }
                        Ok(httparse::Status::Partial) => return Ok(Decoded::NeedMore),
                        Err(_) => return Err(Error::Chunk("malformed trailers")),
                    }
                }
            }
        }
    }

    /// The peer closed the connection: the end of an until-close body, an error otherwise.
    pub fn on_eof(&mut self) -> Result<(), Error> {
        match self.state {
            State::UntilClose | State::Done => {
                self.state = State::Done;
                Ok(())
            }
            _ => Err(Error::ClosedEarly),
        }
    }
}

/// Up to `n` bytes from the front of `buf`, without copying, and how many are still owed.
fn take(buf: &mut BytesMut, n: u64) -> (Decoded, u64) {
    let len = buf.len().min(usize::try_from(n).unwrap_or(usize::MAX));
    let data = Decoded::Frame(Frame::data(buf.split_to(len).freeze()));
    (data, n - len as u64)
}

/// True when every LF in `bytes` ends a CRLF.
fn crlf_only(bytes: &[u8]) -> bool {
    bytes
        .iter()
        .enumerate()
        .all(|(i, b)| *b != b'\n' || (i > 0 && bytes[i - 1] == b'\r'))
}

fn find_crlf(buf: &[u8]) -> Option<usize> {
    buf.windows(2).position(|w| w == b"\r\n")
}

/// The hex size at the start of a chunk-size line; extensions (`;name=value`) are ignored.
/// Strict, as a proxy must be (a lenient reader behind another lenient reader is how bodies get
/// smuggled): after the digits only blanks and then `;` may follow, and no CR or LF may hide
/// inside the line.
fn chunk_size(line: &[u8]) -> Result<u64, Error> {
    if line.len() > MAX_CHUNK_LINE || line.iter().any(|b| *b == b'\r' || *b == b'\n') {
        return Err(Error::Chunk("invalid chunk-size line"));
    }
    let end = line
        .iter()
        .position(|b| *b == b';' || *b == b' ' || *b == b'\t')
        .unwrap_or(line.len());
    let (digits, rest) = line.split_at(end);
    let after_blanks = rest.iter().position(|b| *b != b' ' && *b != b'\t');
    if after_blanks.is_some_and(|i| rest[i] != b';') {
        return Err(Error::Chunk("invalid chunk size"));
    }
    if digits.is_empty() || digits.len() > 15 {
        return Err(Error::Chunk("invalid chunk size"));
    }
    let mut size = 0u64;
    for d in digits {
        let v = match d {
            b'0'..=b'9' => d - b'0',
            b'a'..=b'f' => d - b'a' + 10,
            b'A'..=b'F' => d - b'A' + 10,
            _ => return Err(Error::Chunk("invalid chunk size")),
        };
        size = size * 16 + u64::from(v);
    }
    Ok(size)
}

fn trailer_map(parsed: &[httparse::Header<'_>]) -> Result<HeaderMap, Error> {
    let mut map = HeaderMap::with_capacity(parsed.len());
    header_map(parsed, Bytes::copy_from_slice, &mut map)?;
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(decoder: &mut Decoder, input: &[u8]) -> (Vec<u8>, Option<HeaderMap>, bool) {
        let mut buf = BytesMut::from(input);
        let (mut data, mut trailers) = (Vec::new(), None);
        loop {
            match decoder.decode(&mut buf).expect("decodes") {
                Decoded::Frame(f) => match f.into_data() {
                    Ok(d) => data.extend_from_slice(&d),
                    Err(f) => trailers = f.into_trailers().ok(),
                },
                Decoded::NeedMore => return (data, trailers, false),
                Decoded::End => return (data, trailers, true),
            }
        }
    }

    #[test]
    fn content_length_stops_at_the_length() {
        let mut d = Decoder::new(Framing::Length(5));
        let mut buf = BytesMut::from(&b"helloGET / HTTP/1.1"[..]);
        let Ok(Decoded::Frame(f)) = d.decode(&mut buf) else {
            panic!("a frame")
        };
        assert_eq!(f.into_data().ok().as_deref(), Some(&b"hello"[..]));
        assert!(matches!(d.decode(&mut buf), Ok(Decoded::End)));
        assert_eq!(
            &buf[..],
            b"GET / HTTP/1.1",
            "the next message is left in place"
        );
    }

    #[test]
    fn chunked_with_extensions_and_trailers() {
        let mut d = Decoder::new(Framing::Chunked);
        let (data, trailers, end) = drain(
            &mut d,
            b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\ngrpc-status: 0\r\n\r\nNEXT",
        );
        assert_eq!(data, b"hello world");
        assert_eq!(trailers.expect("trailers")["grpc-status"], "0");
        assert!(end);
    }

    #[test]
    fn chunked_split_across_reads() {
        let input = b"a\r\n0123456789\r\n0\r\n\r\n";
        for cut in 1..input.len() {
            let mut d = Decoder::new(Framing::Chunked);
            let mut buf = BytesMut::from(&input[..cut]);
            let mut data = Vec::new();
            while let Ok(Decoded::Frame(f)) = d.decode(&mut buf) {
                data.extend_from_slice(&f.into_data().unwrap_or_default());
            }
            // What the first part left undecoded stays at the front of the buffer.
            let mut rest = BytesMut::new();
            std::mem::swap(&mut rest, &mut buf);
            rest.extend_from_slice(&input[cut..]);
            buf = rest;
            loop {
                match d.decode(&mut buf) {
                    Ok(Decoded::Frame(f)) => {
                        data.extend_from_slice(&f.into_data().unwrap_or_default())
                    }
                    Ok(Decoded::End) => break,
                    Ok(Decoded::NeedMore) => panic!("cut {cut}: needs more at the end"),
                    Err(e) => panic!("cut {cut}: {e}"),
                }
            }
            assert_eq!(data, b"0123456789", "cut {cut}");
        }
    }

    #[test]
    fn rejects_bad_chunks() {
        for bad in [
            &b"zz\r\n"[..],
            b"5\r\nhelloXX",
            b"ffffffffffffffffff\r\n",
            b"5;a\nXXXXX\r\n",
            b"5 junk\r\n",
            b"5;a\rb\r\n",
            b"0\r\n\n",
            b"0\r\nx: y\n\r\n",
        ] {
            let mut d = Decoder::new(Framing::Chunked);
            let mut buf = BytesMut::from(bad);
            let mut result = Ok(Decoded::NeedMore);
            for _ in 0..4 {
                result = d.decode(&mut buf);
                if !matches!(result, Ok(Decoded::Frame(_))) {
                    break;
                }
            }
            assert!(result.is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn until_close_ends_at_eof_and_length_does_not() {
        let mut d = Decoder::new(Framing::UntilClose);
        assert!(d.on_eof().is_ok());
        let mut d = Decoder::new(Framing::Length(3));
        assert!(d.on_eof().is_err());
    }
}
