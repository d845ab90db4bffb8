//! Trace context on the wire: W3C Trace Context (`traceparent`, `tracestate`) and B3 (the
//! `b3` single header and the `X-B3-*` multi headers), read from a request's headers and
//! written back.
//!
//! Reading is strict, as the specifications ask: a `traceparent` with upper-case hex, an
//! all-zero id, version `ff` or the wrong length is not a context, and neither is a B3 id
//! that is not 16 or 32 lower-case hex digits. What was not understood is never passed on:
//! [`write`] removes every header of the configured formats before it writes its own, so a
//! malformed header is replaced rather than propagated.

use http::header::{HeaderMap, HeaderName, HeaderValue};

pub static TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
pub static TRACESTATE: HeaderName = HeaderName::from_static("tracestate");
pub static B3: HeaderName = HeaderName::from_static("b3");
pub static B3_TRACE_ID: HeaderName = HeaderName::from_static("x-b3-traceid");
pub static B3_SPAN_ID: HeaderName = HeaderName::from_static("x-b3-spanid");
pub static B3_PARENT_SPAN_ID: HeaderName = HeaderName::from_static("x-b3-parentspanid");
pub static B3_SAMPLED: HeaderName = HeaderName::from_static("x-b3-sampled");
pub static B3_FLAGS: HeaderName = HeaderName::from_static("x-b3-flags");

/// The longest `tracestate` passed on: the W3C recommends that vendors propagate at least
/// 512 characters and may drop the rest; a longer one is dropped whole.
const TRACESTATE_MAX: usize = 512;

/// A way of carrying trace context in headers, named as OpenTelemetry's `OTEL_PROPAGATORS`
/// names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Propagator {
    /// W3C Trace Context: `traceparent` and `tracestate`.
    TraceContext,
    /// B3, one header: `b3: {trace}-{span}-{sampled}[-{parent}]`.
    B3,
    /// B3, several headers: `X-B3-TraceId`, `X-B3-SpanId`, `X-B3-ParentSpanId`,
    /// `X-B3-Sampled`, `X-B3-Flags`.
    B3Multi,
}

impl Propagator {
    /// Parses a MeshConfig `tracing.propagators` entry.
    pub fn parse(name: &str) -> Option<Propagator> {
        match name {
            "tracecontext" => Some(Propagator::TraceContext),
            "b3" => Some(Propagator::B3),
            "b3multi" => Some(Propagator::B3Multi),
            _ => None,
        }
    }
}

/// One span's place in a trace, as the next hop needs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpanContext {
    /// Never 0. A 64-bit B3 id is kept in the low half.
    pub trace_id: u128,
    /// Never 0.
    pub span_id: u64,
    pub sampled: bool,
}

/// What a request brought.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Incoming {
    /// The caller's span, when some configured format carried a valid one.
    pub parent: Option<SpanContext>,
    /// The caller's sampling decision, when it made one: the parent's flag, or a decision
    /// without a context (B3's `b3: 0`, or `X-B3-Sampled` alone). B3 may defer it (a
    /// context without a sampling state): then it is `None` and the sampler decides.
    pub decision: Option<bool>,
    /// `tracestate`, kept only with a valid `traceparent`.
    pub tracestate: Option<HeaderValue>,
}

/// Reads the first valid context among `propagators`, in their order.
pub fn read(headers: &HeaderMap, propagators: &[Propagator]) -> Incoming {
    let mut incoming = Incoming::default();
    for propagator in propagators {
        let (parent, decision) = match propagator {
            Propagator::TraceContext => {
                let parent = read_traceparent(headers);
                (parent, parent.map(|p| p.sampled))
            }
            Propagator::B3 => read_b3_single(headers),
            Propagator::B3Multi => read_b3_multi(headers),
        };
        if let Some(parent) = parent {
            if *propagator == Propagator::TraceContext {
                incoming.tracestate = headers
                    .get(&TRACESTATE)
                    .filter(|v| valid_tracestate(v))
                    .cloned();
            }
            incoming.parent = Some(parent);
            incoming.decision = decision;
            return incoming;
        }
        incoming.decision = incoming.decision.or(decision);
    }
    incoming
}

/// Replaces the headers of `propagators` with `span` (and `parent`, B3's parent span id).
pub fn write(
    headers: &mut HeaderMap,
    propagators: &[Propagator],
    span: SpanContext,
    parent: Option<u64>,
    tracestate: Option<&HeaderValue>,
) {
    for propagator in propagators {
        match propagator {
            Propagator::TraceContext => {
                headers.insert(TRACEPARENT.clone(), traceparent(span));
                match tracestate {
                    Some(state) => headers.insert(TRACESTATE.clone(), state.clone()),
                    None => headers.remove(&TRACESTATE),
                };
            }
            Propagator::B3 => {
                let mut value = format!(
                    "{}-{:016x}-{}",
                    b3_trace_id(span.trace_id),
                    span.span_id,
                    if span.sampled { '1' } else { '0' }
                );
                if let Some(parent) = parent {
                    value.push_str(&format!("-{parent:016x}"));
                }
                headers.insert(B3.clone(), header_value(value));
            }
            Propagator::B3Multi => {
                headers.insert(
                    B3_TRACE_ID.clone(),
                    header_value(b3_trace_id(span.trace_id)),
                );
                headers.insert(
                    B3_SPAN_ID.clone(),
                    header_value(format!("{:016x}", span.span_id)),
                );
                match parent {
                    Some(parent) => headers.insert(
                        B3_PARENT_SPAN_ID.clone(),
                        header_value(format!("{parent:016x}")),
                    ),
                    None => headers.remove(&B3_PARENT_SPAN_ID),
                };
                let sampled = HeaderValue::from_static(if span.sampled { "1" } else { "0" });
                headers.insert(B3_SAMPLED.clone(), sampled);
                headers.remove(&B3_FLAGS);
            }
        }
    }
}

/// `00-{trace}-{span}-{flags}`.
pub fn traceparent(span: SpanContext) -> HeaderValue {
    // Written for nearly every request: hex digits into a fixed buffer, not `format!`.
    let mut buf = *b"00-00000000000000000000000000000000-0000000000000000-00";
    hex_into(&mut buf[3..35], span.trace_id);
    hex_into(&mut buf[36..52], u128::from(span.span_id));
    buf[54] = if span.sampled { b'1' } else { b'0' };
    let mut value = HeaderValue::from_bytes(&buf).unwrap_or_else(|_| HeaderValue::from_static("0"));
    value.set_sensitive(true);
    value
}

/// The low `out.len()` hex digits of `n`, lowercase, most significant first.
fn hex_into(out: &mut [u8], mut n: u128) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for b in out.iter_mut().rev() {
        *b = DIGITS[(n & 0xf) as usize];
        n >>= 4;
    }
}

fn header_value(s: String) -> HeaderValue {
    // Hex digits and dashes only: always a valid header value.
    let mut value = HeaderValue::try_from(s).unwrap_or_else(|_| HeaderValue::from_static("0"));
    // New on every request: HTTP/2 must not put it in HPACK's table, where each one would
    // push out an entry that repeats (the authority, the user agent), only to be resent.
    value.set_sensitive(true);
    value
}

/// A 64-bit id stays 64 bits (16 digits): B3 peers that only know 64-bit ids keep working.
fn b3_trace_id(trace_id: u128) -> String {
    if trace_id >> 64 == 0 {
        format!("{trace_id:016x}")
    } else {
        format!("{trace_id:032x}")
    }
}

fn read_traceparent(headers: &HeaderMap) -> Option<SpanContext> {
    let mut values = headers.get_all(&TRACEPARENT).iter();
    let value = values.next()?;
    if values.next().is_some() {
        return None; // two traceparents: which is the caller's is unknowable
    }
    parse_traceparent(value.as_bytes())
}

/// W3C Trace Context level 1, section 3.2: version 00 is exactly 55 bytes; a later version
/// may append `-` and more, which is ignored; version `ff` is invalid.
pub fn parse_traceparent(v: &[u8]) -> Option<SpanContext> {
    if v.len() < 55 || v[2] != b'-' || v[35] != b'-' || v[52] != b'-' {
        return None;
    }
    let version = hex_u128(&v[0..2])?;
    if version == 0xff || (version == 0 && v.len() != 55) || (v.len() > 55 && v[55] != b'-') {
        return None;
    }
    let trace_id = hex_u128(&v[3..35]).filter(|&id| id != 0)?;
    let span_id = hex_u64(&v[36..52]).filter(|&id| id != 0)?;
    let flags = hex_u128(&v[53..55])?;
    Some(SpanContext {
        trace_id,
        span_id,
        sampled: flags & 1 == 1,
    })
}

/// `{trace}-{span}[-{sampled}[-{parent}]]` or a bare sampling state (`0`, `1`, `d`).
pub fn parse_b3_single(v: &[u8]) -> (Option<SpanContext>, Option<bool>) {
    let mut parts = v.split(|&b| b == b'-');
    let first = parts.next().unwrap_or_default();
    let Some(second) = parts.next() else {
        return (None, sampling_state(first));
    };
    let (Some(trace_id), Some(span_id)) = (b3_id(first), b3_span(second)) else {
        return (None, None);
    };
    let sampled = match parts.next() {
        None => None,
        Some(state) => match sampling_state(state) {
            Some(sampled) => Some(sampled),
            None => return (None, None),
        },
    };
    if let Some(parent) = parts.next() {
        if b3_span(parent).is_none() || parts.next().is_some() {
            return (None, None);
        }
    }
    // No sampling state: the decision was deferred to us; B3 peers then sample by their own
    // rate, so the context is kept and the decision left to the sampler.
    let context = SpanContext {
        trace_id,
        span_id,
        sampled: sampled.unwrap_or(false),
    };
    (Some(context), sampled)
}

fn read_b3_single(headers: &HeaderMap) -> (Option<SpanContext>, Option<bool>) {
    match headers.get(&B3) {
        Some(v) => parse_b3_single(v.as_bytes()),
        None => (None, None),
    }
}

fn read_b3_multi(headers: &HeaderMap) -> (Option<SpanContext>, Option<bool>) {
    let debug = headers.get(&B3_FLAGS).is_some_and(|v| v.as_bytes() == b"1");
    let sampled = match headers.get(&B3_SAMPLED) {
        _ if debug => Some(true),
        Some(v) => match v.as_bytes() {
            b"1" | b"true" => Some(true),
            b"0" | b"false" => Some(false),
            _ => None,
        },
        None => None,
    };
    let trace_id = headers.get(&B3_TRACE_ID).and_then(|v| b3_id(v.as_bytes()));
    let span_id = headers.get(&B3_SPAN_ID).and_then(|v| b3_span(v.as_bytes()));
    match (trace_id, span_id) {
        (Some(trace_id), Some(span_id)) => (
            Some(SpanContext {
                trace_id,
                span_id,
                sampled: sampled.unwrap_or(false),
            }),
            sampled,
        ),
        _ => (None, sampled),
    }
}

fn sampling_state(v: &[u8]) -> Option<bool> {
    match v {
        b"1" | b"d" => Some(true),
        b"0" => Some(false),
        _ => None,
    }
}

fn b3_id(v: &[u8]) -> Option<u128> {
    if v.len() != 16 && v.len() != 32 {
        return None;
    }
    hex_u128(v).filter(|&id| id != 0)
}

fn b3_span(v: &[u8]) -> Option<u64> {
    if v.len() != 16 {
        return None;
    }
    hex_u64(v).filter(|&id| id != 0)
}

fn hex_u64(v: &[u8]) -> Option<u64> {
    u64::try_from(hex_u128(v)?).ok()
}

/// Lower-case hex only, as both specifications require; at most 32 digits.
fn hex_u128(v: &[u8]) -> Option<u128> {
    if v.is_empty() || v.len() > 32 {
        return None;
    }
    v.iter().try_fold(0u128, |acc, &b| {
        let digit = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            _ => return None,
        };
        Some(acc << 4 | u128::from(digit))
    })
}

/// A `tracestate` Weft passes on: not too long, and only the characters its grammar allows
/// (printable ASCII); the members themselves belong to their vendors.
fn valid_tracestate(v: &HeaderValue) -> bool {
    let bytes = v.as_bytes();
    bytes.len() <= TRACESTATE_MAX && bytes.iter().all(|&b| (0x20..0x7f).contains(&b))
}

#[cfg(test)]
#[path = "context_tests.rs"]
mod tests;
