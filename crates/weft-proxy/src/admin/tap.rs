//! `GET /tap?...`: opens a tap on this proxy (see [`crate::tap`]) and streams it.
//!
//! Query parameters (all optional): `method`, `path` (a prefix), `authority`, `direction`
//! (`inbound` | `outbound`), `max` (lines, default 100, at most 10 000), `rate` (lines per
//! second, default 50, at most 1 000), `seconds` (default 60, at most 600).

use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response, StatusCode};

use crate::http::{boxed, Body};
use crate::metrics::{INBOUND, OUTBOUND};
use crate::tap::{Tap, TapFilter, TapLimits};

pub fn open<B>(tap: &Arc<Tap>, req: &Request<B>) -> Response<Body> {
    let (filter, limits) = match parse(req.uri().query().unwrap_or("")) {
        Ok(parsed) => parsed,
        Err(why) => return super::text_owned(StatusCode::BAD_REQUEST, why + "\n"),
    };
    match tap.open(filter, limits) {
        Ok(stream) => {
            tracing::info!(query = req.uri().query().unwrap_or(""), "tap opened");
            let mut resp = Response::new(boxed(stream));
            resp.headers_mut().insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("application/x-ndjson"),
            );
            resp
        }
        Err(e) => super::text_owned(StatusCode::TOO_MANY_REQUESTS, format!("{e}\n")),
    }
}

fn parse(query: &str) -> Result<(TapFilter, TapLimits), String> {
    let mut filter = TapFilter::default();
    let mut limits = TapLimits {
        max: 100,
        per_second: 50,
        duration: Duration::from_secs(60),
    };
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, raw) = pair.split_once('=').unwrap_or((pair, ""));
        let value = percent_decode(raw).ok_or_else(|| format!("`{key}`: bad percent-encoding"))?;
        let number = |max: u64| -> Result<u64, String> {
            match value.parse::<u64>() {
                Ok(n) if (1..=max).contains(&n) => Ok(n),
                _ => Err(format!("`{key}` must be a number from 1 to {max}")),
            }
        };
        match key {
            "method" => filter.method = Some(value.clone()),
            "path" => filter.path = Some(value.clone()),
            "authority" => filter.authority = Some(value.clone()),
            "direction" => {
                filter.direction = Some(match value.as_str() {
                    "inbound" => INBOUND,
                    "outbound" => OUTBOUND,
                    _ => return Err("`direction` is inbound or outbound".into()),
                })
            }
            "max" => limits.max = number(10_000)?,
            "rate" => limits.per_second = number(1_000)?,
            "seconds" => limits.duration = Duration::from_secs(number(600)?),
            _ => return Err(format!("unknown parameter `{key}`: use method, path, authority, direction, max, rate, seconds")),
        }
    }
    Ok((filter, limits))
}

/// `%XX` and `+` decoded; `None` for a malformed escape or non-UTF-8 result.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes.get(i + 1..i + 3)?;
                let hex = std::str::from_utf8(hex).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_parse_and_bad_ones_say_why() {
        let (f, l) = parse("method=GET&path=%2Fapi%2Fv1&direction=inbound&max=5&rate=2&seconds=9")
            .expect("parses");
        assert_eq!(f.method.as_deref(), Some("GET"));
        assert_eq!(f.path.as_deref(), Some("/api/v1"));
        assert_eq!(f.direction, Some(INBOUND));
        assert_eq!(
            (l.max, l.per_second, l.duration),
            (5, 2, Duration::from_secs(9))
        );
        for bad in [
            "max=0",
            "max=10001",
            "rate=x",
            "seconds=601",
            "direction=up",
            "path=%zz",
            "nope=1",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
