//! The JSON answer of the echo handler (the conformance echo-basic server's
//! `RequestAssertions`) and the request facts it is built from.

use std::collections::BTreeMap;

use http::header::{HeaderName, HeaderValue, HOST};
use http::{HeaderMap, Version};
use serde::{Deserialize, Serialize};

use crate::Identity;

/// What the echo server saw, as JSON. Field names match the Go echo-basic
/// server so harnesses written for it can read these answers.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct EchoResponse {
    /// The request-target as received: path with query (absolute-form on HTTP/1.1 if sent so).
    pub path: String,
    /// The `Host` header, or `:authority` on HTTP/2.
    pub host: String,
    pub method: String,
    /// `"HTTP/1.1"`, `"HTTP/2.0"` (or `"HTTP/1.0"`).
    pub proto: String,
    /// Request headers with names in Go's canonical form (`X-Header-Set`), values
    /// in the order received. Like Go, `Host` is not repeated here.
    pub headers: BTreeMap<String, Vec<String>>,
    pub namespace: String,
    /// Always empty (kept for the conformance harness).
    pub ingress: String,
    pub service: String,
    pub pod: String,
}

impl EchoResponse {
    /// Builds the answer for a request's head.
    pub(crate) fn new(parts: &http::request::Parts, identity: &Identity) -> Self {
        let mut headers: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (name, value) in &parts.headers {
            if name == HOST {
                continue;
            }
            headers
                .entry(canonical_name(name.as_str()))
                .or_default()
                .push(String::from_utf8_lossy(value.as_bytes()).into_owned());
        }
        Self {
            path: request_target(parts),
            host: authority(parts),
            method: parts.method.as_str().to_owned(),
            proto: proto(parts.version).to_owned(),
            headers,
            namespace: identity.namespace.clone(),
            ingress: String::new(),
            service: identity.service.clone(),
            pod: identity.pod.clone(),
        }
    }
}

/// The request-target as the client sent it (Go's `RequestURI`).
pub(crate) fn request_target(parts: &http::request::Parts) -> String {
    if parts.version == Version::HTTP_2 {
        // HTTP/2 carries scheme and authority separately; the target is `:path`.
        parts
            .uri
            .path_and_query()
            .map_or_else(|| "/".to_owned(), |pq| pq.as_str().to_owned())
    } else {
        parts.uri.to_string()
    }
}

/// `:authority`, or the URI's authority on HTTP/1.1 absolute-form, else `Host`.
pub(crate) fn authority(parts: &http::request::Parts) -> String {
    if let Some(authority) = parts.uri.authority() {
        return authority.as_str().to_owned();
    }
    parts
        .headers
        .get(HOST)
        .map(|h| String::from_utf8_lossy(h.as_bytes()).into_owned())
        .unwrap_or_default()
}

/// Go's spelling of the protocol version.
pub(crate) fn proto(version: Version) -> &'static str {
    match version {
        Version::HTTP_09 => "HTTP/0.9",
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_2 => "HTTP/2.0",
        Version::HTTP_3 => "HTTP/3.0",
        _ => "HTTP/1.1",
    }
}

/// Go's `CanonicalMIMEHeaderKey`: upper-case the first letter and every letter
/// after a `-`, lower-case the rest (`x-header-set` → `X-Header-Set`).
pub(crate) fn canonical_name(name: &str) -> String {
    let mut upper = true;
    name.chars()
        .map(|c| {
            let out = if upper {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            };
            upper = c == '-';
            out
        })
        .collect()
}

/// Response headers a request may not set through `X-Echo-Set-Header`: they
/// describe the connection or the body framing, which hyper owns.
const RESERVED: [&str; 8] = [
    "connection",
    "content-length",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Applies every `X-Echo-Set-Header: Name: value, Other: value` request header
/// to `response`. A name given more than once gets its values joined with `,`.
pub(crate) fn apply_echo_set_header(request: &HeaderMap, response: &mut HeaderMap) {
    let mut set: Vec<(HeaderName, String)> = Vec::new();
    for list in request.get_all("x-echo-set-header") {
        let list = String::from_utf8_lossy(list.as_bytes());
        for pair in list.split(',') {
            let pair = pair.trim();
            let (name, value) = pair.split_once(':').unwrap_or((pair, ""));
            let Ok(name) = HeaderName::from_bytes(name.trim().as_bytes()) else {
                continue;
            };
            if RESERVED.contains(&name.as_str()) {
                continue;
            }
            let value = value.trim();
            match set.iter_mut().find(|(n, _)| *n == name) {
                Some((_, existing)) => {
                    existing.push(',');
                    existing.push_str(value);
                }
                None => set.push((name, value.to_owned())),
            }
        }
    }
    for (name, value) in set {
        if let Ok(value) = HeaderValue::from_str(&value) {
            response.insert(name, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_names() {
        assert_eq!(canonical_name("x-header-set"), "X-Header-Set");
        assert_eq!(canonical_name("content-type"), "Content-Type");
        assert_eq!(canonical_name("te"), "Te");
        assert_eq!(canonical_name("x--y"), "X--Y");
    }

    #[test]
    fn echo_set_header_joins_repeats() {
        let mut req = HeaderMap::new();
        req.append(
            "x-echo-set-header",
            HeaderValue::from_static("X-Foo: a, X-Bar:b"),
        );
        req.append("x-echo-set-header", HeaderValue::from_static("x-foo: c"));
        req.append(
            "x-echo-set-header",
            HeaderValue::from_static("Content-Length: 9"),
        );
        let mut resp = HeaderMap::new();
        apply_echo_set_header(&req, &mut resp);
        assert_eq!(resp["x-foo"], "a,c");
        assert_eq!(resp["x-bar"], "b");
        assert!(resp.get("content-length").is_none());
    }
}
