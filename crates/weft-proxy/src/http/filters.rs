//! Gateway API filters applied to a request or response: header modifiers, redirects and URL
//! rewrites, with the spec's rules for paths and ports.

use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::{Response, StatusCode, Uri};
use weft_api::view::{HeaderModifierView, PathModifierView, RedirectView, RewriteView};

use super::{empty, Body};

/// `set` replaces, `add` appends, `remove` deletes (names are case-insensitive).
pub fn modify_headers(headers: &mut HeaderMap, m: &HeaderModifierView) {
    for (name, value) in &m.set {
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            headers.insert(n, v);
        }
    }
    for (name, value) in &m.add {
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            headers.append(n, v);
        }
    }
    for name in &m.remove {
        headers.remove(name.as_str());
    }
}

/// Replaces the matched prefix of `path` element-wise: `/original-prefix/lemon` with prefix
/// `/original-prefix` and replacement `/replacement-prefix` becomes `/replacement-prefix/lemon`;
/// a replacement of `/` strips the prefix.
pub fn replace_prefix(path: &str, prefix: &str, replacement: &str) -> String {
    let rest = if prefix == "/" {
        path
    } else {
        path.strip_prefix(prefix).unwrap_or(path)
    };
    let rest = rest.trim_start_matches('/');
    let base = replacement.trim_end_matches('/');
    match (base.is_empty(), rest.is_empty()) {
        (true, true) => "/".to_string(),
        (true, false) => format!("/{rest}"),
        (false, true) => base.to_string(),
        (false, false) => format!("{base}/{rest}"),
    }
}

fn new_path(
    path: &str,
    modifier: Option<&PathModifierView>,
    matched_prefix: Option<&str>,
) -> String {
    match modifier {
        Some(PathModifierView::ReplaceFullPath(p)) => p.clone(),
        Some(PathModifierView::ReplacePrefixMatch(r)) => {
            replace_prefix(path, matched_prefix.unwrap_or("/"), r)
        }
        None => path.to_string(),
    }
}

/// The redirect response for a request to `host` (no port) on Service port `port`.
pub fn redirect(
    uri: &Uri,
    host: &str,
    port: u16,
    r: &RedirectView,
    matched_prefix: Option<&str>,
) -> Response<Body> {
    let scheme = r.scheme.as_deref().unwrap_or("http");
    let hostname = r.hostname.as_deref().unwrap_or(host);
    let well_known = match scheme {
        "https" => 443,
        _ => 80,
    };
    // Gateway API: an explicit port wins; a new scheme implies its well-known port; otherwise
    // the port the request came in on. A scheme's own well-known port is not written.
    let port = match (r.port, &r.scheme) {
        (Some(p), _) => p,
        (None, Some(_)) => well_known,
        (None, None) => port,
    };
    let path = new_path(uri.path(), r.path.as_ref(), matched_prefix);
    let mut location = if port == well_known {
        format!("{scheme}://{hostname}{path}")
    } else {
        format!("{scheme}://{hostname}:{port}{path}")
    };
    if let Some(q) = uri.query() {
        location.push('?');
        location.push_str(q);
    }
    let status = StatusCode::from_u16(r.status_code).unwrap_or(StatusCode::FOUND);
    let mut resp = Response::new(empty());
    *resp.status_mut() = status;
    if let Ok(v) = HeaderValue::from_str(&location) {
        resp.headers_mut().insert(http::header::LOCATION, v);
    }
    resp
}

/// Applies a URL rewrite to the request's URI; returns the new host, if the rewrite sets one.
pub fn rewrite(
    uri: &Uri,
    r: &RewriteView,
    matched_prefix: Option<&str>,
) -> (Option<Uri>, Option<String>) {
    let new_uri = r.path.as_ref().and_then(|m| {
        let path = new_path(uri.path(), Some(m), matched_prefix);
        let pq = match uri.query() {
            Some(q) => format!("{path}?{q}"),
            None => path,
        };
        let mut parts = uri.clone().into_parts();
        parts.path_and_query = pq.parse().ok();
        Uri::from_parts(parts).ok()
    });
    (new_uri, r.hostname.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_replacement_follows_the_conformance_cases() {
        assert_eq!(
            replace_prefix(
                "/original-prefix/lemon",
                "/original-prefix",
                "/replacement-prefix"
            ),
            "/replacement-prefix/lemon"
        );
        assert_eq!(
            replace_prefix("/prefix/one/two", "/prefix/one", "/one"),
            "/one/two"
        );
        assert_eq!(
            replace_prefix("/strip-prefix/three", "/strip-prefix", "/"),
            "/three"
        );
        assert_eq!(replace_prefix("/strip-prefix", "/strip-prefix", "/"), "/");
        assert_eq!(
            replace_prefix("/path-and-host", "/path-and-host", "/replacement-prefix"),
            "/replacement-prefix"
        );
        assert_eq!(
            replace_prefix(
                "/prefix/rewrite-path-and-modify-headers/one",
                "/prefix/rewrite-path-and-modify-headers",
                "/prefix"
            ),
            "/prefix/one"
        );
    }

    #[test]
    fn redirect_ports_follow_the_spec() {
        let uri: Uri = "/port?a=1".parse().expect("uri");
        let r = |rv: RedirectView| {
            redirect(
                &uri,
                "echo",
                80,
                &RedirectView {
                    status_code: 302,
                    ..rv
                },
                Some("/port"),
            )
            .headers()[http::header::LOCATION]
                .to_str()
                .expect("location")
                .to_string()
        };
        assert_eq!(
            r(RedirectView {
                port: Some(8083),
                ..Default::default()
            }),
            "http://echo:8083/port?a=1"
        );
        assert_eq!(
            r(RedirectView {
                scheme: Some("https".into()),
                ..Default::default()
            }),
            "https://echo/port?a=1"
        );
        assert_eq!(
            r(RedirectView {
                hostname: Some("example.org".into()),
                ..Default::default()
            }),
            "http://example.org/port?a=1"
        );
        let on_8080 = redirect(
            &uri,
            "echo",
            8080,
            &RedirectView {
                status_code: 301,
                ..Default::default()
            },
            None,
        );
        assert_eq!(on_8080.status(), 301);
        assert_eq!(
            on_8080.headers()[http::header::LOCATION],
            "http://echo:8080/port?a=1"
        );
    }
}
