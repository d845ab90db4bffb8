use std::time::Duration;

use http::{HeaderMap, HeaderValue};
use http_body_util::BodyExt;
use serde_json::json;

use super::*;

fn tapped<'a>(line: &'a serde_json::Value, method: &'a str, path: &'a str) -> Tapped<'a> {
    Tapped {
        line,
        direction: "inbound",
        method,
        authority: "reviews.shop:80",
        path,
    }
}

fn limits(max: u64, per_second: u64) -> TapLimits {
    TapLimits {
        max,
        per_second,
        duration: Duration::from_secs(30),
    }
}

async fn lines(stream: TapStream) -> Vec<serde_json::Value> {
    let bytes = stream.collect().await.expect("infallible").to_bytes();
    String::from_utf8_lossy(&bytes)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

#[tokio::test]
async fn a_tap_shows_matching_requests_up_to_its_count_then_says_why_it_ended() {
    let tap = Arc::new(Tap::default());
    assert!(!tap.is_active());
    let filter = TapFilter {
        method: Some("get".into()),
        path: Some("/api".into()),
        authority: Some("reviews.shop".into()),
        ..Default::default()
    };
    let stream = tap.open(filter, limits(2, 100)).expect("open");
    assert!(tap.is_active());
    let line = json!({"n": 1});
    tap.publish(&tapped(&line, "POST", "/api/x"));
    tap.publish(&tapped(&line, "GET", "/other"));
    tap.publish(&tapped(&line, "GET", "/api/a"));
    tap.publish(&tapped(&line, "GET", "/api/b"));
    tap.publish(&tapped(&line, "GET", "/api/c"));
    let got = lines(stream).await;
    assert_eq!(got.len(), 3, "{got:?}");
    assert_eq!(got[2], json!({"end": "max", "shown": 2, "dropped": 0}));
    assert!(!tap.is_active(), "the tap closed when it ended");
}

#[tokio::test]
async fn lines_past_the_rate_are_dropped_and_counted_and_taps_are_bounded() {
    let tap = Arc::new(Tap::default());
    let mut streams: Vec<TapStream> = (0..MAX_TAPS)
        .map(|_| {
            tap.open(TapFilter::default(), limits(1000, 3))
                .expect("open")
        })
        .collect();
    assert!(matches!(
        tap.open(TapFilter::default(), limits(1, 1)),
        Err(TapError::TooMany)
    ));
    streams.truncate(1);
    let stream = streams.pop().expect("one");
    assert!(tap.is_active());
    let line = json!({});
    for _ in 0..10 {
        tap.publish(&tapped(&line, "GET", "/"));
    }
    let stream = TapStream::with_duration_for_test(stream, Duration::from_millis(50));
    let got = lines(stream).await;
    let last = got.last().expect("a last line");
    assert_eq!(last["end"], "time");
    // Ten offered in (at most) two one-second windows of three.
    let shown = last["shown"].as_u64().expect("shown");
    assert!((3..=6).contains(&shown), "{got:?}");
    assert_eq!(shown + last["dropped"].as_u64().expect("dropped"), 10);
    assert!(!tap.is_active());
}

#[test]
fn credentials_never_show() {
    let mut h = HeaderMap::new();
    h.insert("authorization", HeaderValue::from_static("Bearer abc"));
    h.insert("cookie", HeaderValue::from_static("sid=1"));
    h.insert("x-api-key", HeaderValue::from_static("k"));
    h.insert(
        "x-forwarded-client",
        HeaderValue::from_static("Basic dXNlcjpwYXNz"),
    );
    h.insert(
        "x-user",
        HeaderValue::from_static("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig-nature_x"),
    );
    h.insert("user-agent", HeaderValue::from_static("curl/8"));
    h.insert("weft-orig-proto", HeaderValue::from_static("HTTP/1.1"));
    let shown = shown_headers(&h);
    for name in [
        "authorization",
        "cookie",
        "x-api-key",
        "x-forwarded-client",
        "x-user",
    ] {
        assert_eq!(shown[name], redact::REDACTED, "{name}");
    }
    assert_eq!(shown["user-agent"], "curl/8");
    assert!(!shown.contains_key("weft-orig-proto"));
}
