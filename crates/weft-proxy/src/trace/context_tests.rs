//! Reading and writing trace context, against the examples of the W3C Trace Context and
//! B3 specifications.

use super::*;

const W3C_EXAMPLE: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const TRACE: u128 = 0x4bf92f3577b34da6a3ce929d0e0e4736;
const SPAN: u64 = 0x00f067aa0ba902b7;

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(
            HeaderName::try_from(*name).unwrap(),
            HeaderValue::try_from(*value).unwrap(),
        );
    }
    map
}

const ALL: [Propagator; 3] = [
    Propagator::TraceContext,
    Propagator::B3,
    Propagator::B3Multi,
];

#[test]
fn traceparent_of_the_specification() {
    let ctx = parse_traceparent(W3C_EXAMPLE.as_bytes()).unwrap();
    assert_eq!(
        ctx,
        SpanContext {
            trace_id: TRACE,
            span_id: SPAN,
            sampled: true
        }
    );
    assert_eq!(traceparent(ctx).to_str().unwrap(), W3C_EXAMPLE);
    let unsampled = SpanContext {
        sampled: false,
        ..ctx
    };
    assert_eq!(
        traceparent(unsampled).to_str().unwrap(),
        W3C_EXAMPLE.replace("-01", "-00")
    );
    // Other flags than "sampled" do not make it sampled.
    let ctx = parse_traceparent(&W3C_EXAMPLE.replace("-01", "-02").into_bytes()).unwrap();
    assert!(!ctx.sampled);
}

#[test]
fn malformed_traceparents_are_not_contexts() {
    let cases = [
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", // upper case
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01", // zero trace id
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", // zero span id
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", // version ff
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x", // 00 with more
        "00-4bf92f3577b34da6a3ce929d0e0e473-600f067aa0ba902b7-01", // dash misplaced
        "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "0x-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g",
        "",
        "00",
    ];
    for case in cases {
        assert_eq!(parse_traceparent(case.as_bytes()), None, "{case}");
    }
    // A later version may append fields; they are ignored.
    let later = "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-comes";
    assert_eq!(parse_traceparent(later.as_bytes()).unwrap().trace_id, TRACE);
}

#[test]
fn b3_single_forms() {
    let ctx = |v: &str| parse_b3_single(v.as_bytes());
    let full = "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1-05e3ac9a4f6e3b90";
    let (parent, decision) = ctx(full);
    assert_eq!(parent.unwrap().trace_id, 0x80f198ee56343ba864fe8b2a57d3eff7);
    assert_eq!(parent.unwrap().span_id, 0xe457b5a2e4d86bd1);
    assert_eq!(decision, Some(true));
    // 64-bit trace ids, the debug state, a deferred decision.
    let (parent, decision) = ctx("a3ce929d0e0e4736-00f067aa0ba902b7-d");
    assert_eq!(parent.unwrap().trace_id, 0xa3ce929d0e0e4736);
    assert_eq!(decision, Some(true));
    let (parent, decision) = ctx("a3ce929d0e0e4736-00f067aa0ba902b7");
    assert!(parent.is_some());
    assert_eq!(decision, None);
    // A bare decision.
    assert_eq!(ctx("0"), (None, Some(false)));
    assert_eq!(ctx("1"), (None, Some(true)));
    // Malformed.
    for bad in [
        "a3ce929d0e0e4736-00f067aa0ba902b7-2",
        "a3ce929d0e0e473-00f067aa0ba902b7-1",
        "a3ce929d0e0e4736-00f067aa0ba902b-1",
        "a3ce929d0e0e4736-00f067aa0ba902b7-1-05e3",
        "a3ce929d0e0e4736-00f067aa0ba902b7-1-05e3ac9a4f6e3b90-x",
        "x",
        "",
    ] {
        assert_eq!(ctx(bad), (None, None), "{bad}");
    }
}

#[test]
fn the_first_configured_format_with_a_valid_context_wins() {
    let map = headers(&[
        ("traceparent", "00-garbage"),
        ("b3", "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-0"),
        ("x-b3-traceid", "463ac35c9f6413ad48485a3953bb6124"),
        ("x-b3-spanid", "a2fb4a1d1a96d312"),
        ("x-b3-sampled", "1"),
    ]);
    let incoming = read(&map, &ALL);
    assert_eq!(incoming.parent.unwrap().span_id, 0xe457b5a2e4d86bd1);
    assert_eq!(incoming.decision, Some(false));
    let incoming = read(&map, &[Propagator::B3Multi, Propagator::B3]);
    assert_eq!(incoming.parent.unwrap().span_id, 0xa2fb4a1d1a96d312);
    assert_eq!(incoming.decision, Some(true));
    // Only W3C configured: the broken traceparent gives nothing, B3 is not read.
    assert_eq!(read(&map, &[Propagator::TraceContext]), Incoming::default());
}

#[test]
fn tracestate_comes_only_with_a_valid_traceparent() {
    let map = headers(&[
        ("traceparent", W3C_EXAMPLE),
        ("tracestate", "congo=t61rcWkgMzE"),
    ]);
    let incoming = read(&map, &ALL);
    assert_eq!(incoming.tracestate.unwrap(), "congo=t61rcWkgMzE");
    let map = headers(&[
        ("traceparent", "00-bad"),
        ("tracestate", "congo=t61rcWkgMzE"),
    ]);
    assert_eq!(read(&map, &ALL).tracestate, None);
    let long = "a=".to_string() + &"b".repeat(600);
    let map = headers(&[("traceparent", W3C_EXAMPLE), ("tracestate", &long)]);
    assert_eq!(read(&map, &ALL).tracestate, None);
    // Two traceparents: not a context.
    let map = headers(&[("traceparent", W3C_EXAMPLE), ("traceparent", W3C_EXAMPLE)]);
    assert_eq!(read(&map, &ALL).parent, None);
}

#[test]
fn b3_multi_sampling_and_debug() {
    let map = headers(&[
        ("x-b3-traceid", "463ac35c9f6413ad"),
        ("x-b3-spanid", "a2fb4a1d1a96d312"),
        ("x-b3-flags", "1"),
        ("x-b3-sampled", "0"),
    ]);
    let incoming = read(&map, &[Propagator::B3Multi]);
    assert_eq!(incoming.decision, Some(true), "debug implies sampled");
    let map = headers(&[("x-b3-sampled", "0")]);
    let incoming = read(&map, &[Propagator::B3Multi]);
    assert_eq!((incoming.parent, incoming.decision), (None, Some(false)));
}

#[test]
fn writing_replaces_what_was_there() {
    let mut map = headers(&[
        ("traceparent", "00-garbage"),
        ("tracestate", "old=1"),
        ("b3", "garbage"),
        ("x-b3-traceid", "zzz"),
        ("x-b3-flags", "1"),
        ("x-b3-parentspanid", "zzz"),
    ]);
    let span = SpanContext {
        trace_id: 0xa3ce929d0e0e4736,
        span_id: SPAN,
        sampled: true,
    };
    write(&mut map, &ALL, span, None, None);
    assert_eq!(
        map["traceparent"],
        "00-0000000000000000a3ce929d0e0e4736-00f067aa0ba902b7-01"
    );
    assert!(map.get("tracestate").is_none());
    assert_eq!(map["b3"], "a3ce929d0e0e4736-00f067aa0ba902b7-1");
    assert_eq!(map["x-b3-traceid"], "a3ce929d0e0e4736");
    assert_eq!(map["x-b3-spanid"], "00f067aa0ba902b7");
    assert_eq!(map["x-b3-sampled"], "1");
    assert!(map.get("x-b3-flags").is_none());
    assert!(map.get("x-b3-parentspanid").is_none());

    let state = HeaderValue::from_static("congo=t61rcWkgMzE");
    let span = SpanContext {
        trace_id: TRACE,
        ..span
    };
    write(&mut map, &ALL, span, Some(7), Some(&state));
    assert_eq!(map["tracestate"], "congo=t61rcWkgMzE");
    assert_eq!(
        map["b3"],
        "4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1-0000000000000007"
    );
    assert_eq!(map["x-b3-parentspanid"], "0000000000000007");
    // What is written reads back as the same context.
    for propagator in ALL {
        let incoming = read(&map, &[propagator]);
        assert_eq!(incoming.parent, Some(span), "{propagator:?}");
    }
}

#[test]
fn only_the_configured_formats_are_touched() {
    let mut map = headers(&[("b3", "garbage")]);
    let span = SpanContext {
        trace_id: TRACE,
        span_id: SPAN,
        sampled: false,
    };
    write(&mut map, &[Propagator::TraceContext], span, None, None);
    assert_eq!(map["b3"], "garbage");
    assert_eq!(
        map["traceparent"],
        W3C_EXAMPLE.replace("-01", "-00").as_str()
    );
}

#[test]
fn ids_written_are_never_indexed_by_hpack() {
    let mut h = HeaderMap::new();
    let span = SpanContext {
        trace_id: TRACE,
        span_id: SPAN,
        sampled: true,
    };
    let all = [
        Propagator::TraceContext,
        Propagator::B3,
        Propagator::B3Multi,
    ];
    write(&mut h, &all, span, Some(7), None);
    for name in [
        "traceparent",
        "b3",
        "x-b3-traceid",
        "x-b3-spanid",
        "x-b3-parentspanid",
    ] {
        let v = h.get(name).unwrap_or_else(|| panic!("{name} written"));
        assert!(
            v.is_sensitive(),
            "{name}: a per-request value must not enter HPACK's table"
        );
    }
}
