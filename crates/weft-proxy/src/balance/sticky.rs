//! Sticky sessions for cookie-hash balancing with a TTL (`consistentHash.httpCookie.ttl`): a
//! request without the cookie gets a fresh one, used for this request's choice and returned
//! to the client as a `Set-Cookie`, so its next requests land on the same endpoint.

use http::header::HeaderValue;
use http::Request;

/// The cookie a backend sets when hashing on a cookie the client does not send yet.
#[derive(Clone, Debug)]
pub struct StickyCookie {
    pub name: String,
    pub path: Option<String>,
    pub ttl_s: u64,
}

/// Adds a fresh cookie to a request that lacks it; returns the `Set-Cookie` for the answer.
pub fn ensure_cookie<B>(
    sticky: Option<&StickyCookie>,
    req: &mut Request<B>,
) -> Option<HeaderValue> {
    let StickyCookie {
        name,
        path,
        ttl_s: ttl,
    } = sticky?;
    if super::cookie(req.headers(), name).is_some() {
        return None;
    }
    let value = format!("{:016x}", fastrand::u64(..));
    let pair = HeaderValue::from_str(&format!("{name}={value}")).ok()?;
    req.headers_mut().append(http::header::COOKIE, pair);
    let path = path.as_deref().unwrap_or("/");
    HeaderValue::from_str(&format!(
        "{name}={value}; Path={path}; Max-Age={ttl}; HttpOnly"
    ))
    .ok()
}
