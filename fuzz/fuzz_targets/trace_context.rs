//! Fuzzes the trace headers a proxy reads from every request when tracing is on:
//! `traceparent`, the `b3` single header and the `X-B3-*` headers (`weft_proxy::trace::context`).
//! Checks: nothing panics, and whatever is read as a context writes back as headers that
//! read as the same context (so a proxy never passes on a context it could not read back).
#![no_main]

use http::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;
use weft_proxy::trace::context::{self, Propagator};

const ALL: [Propagator; 3] = [Propagator::TraceContext, Propagator::B3, Propagator::B3Multi];
const NAMES: [&str; 6] = ["traceparent", "tracestate", "b3", "x-b3-traceid", "x-b3-spanid", "x-b3-sampled"];

fuzz_target!(|data: &[u8]| {
    if let Some(ctx) = context::parse_traceparent(data) {
        assert_eq!(context::parse_traceparent(context::traceparent(ctx).as_bytes()), Some(ctx));
    }
    let _ = context::parse_b3_single(data);
    // The input split into header values, one per known name.
    let mut headers = HeaderMap::new();
    for (name, value) in NAMES.iter().zip(data.split(|&b| b == b'\n')) {
        if let Ok(value) = HeaderValue::from_bytes(value) {
            headers.insert(HeaderName::from_static(name), value);
        }
    }
    let incoming = context::read(&headers, &ALL);
    if let Some(parent) = incoming.parent {
        let mut out = HeaderMap::new();
        context::write(&mut out, &ALL, parent, Some(1), incoming.tracestate.as_ref());
        for propagator in ALL {
            assert_eq!(context::read(&out, &[propagator]).parent, Some(parent));
        }
    }
});
