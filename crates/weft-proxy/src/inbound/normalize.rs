//! The path normalization stage: the request's path normalized as MeshConfig
//! `pathNormalization` says (Istio's options), before authorization looks at it; the
//! application receives the normalized path too, so the path a policy allowed is the path
//! that is served. What Istio refuses is answered 400: a path with `%00`, and a method that
//! is not upper-case (policies name methods in upper case; `get` must not slip past a rule
//! on `GET`).

use http::uri::PathAndQuery;
use http::Request;
use weft_api::view::PathNormalization;
use weft_policy::normalize;

use crate::error::{ProxyError, Reason};
use crate::http::Body;

pub fn apply(mode: PathNormalization, req: &mut Request<Body>) -> Result<(), ProxyError> {
    if req
        .method()
        .as_str()
        .bytes()
        .any(|b| b.is_ascii_lowercase())
    {
        return Err(ProxyError::new(
            Reason::BadRequest,
            "the method is not upper-case",
        ));
    }
    let path = req.uri().path();
    let normalized = match normalize::normalize(path, mode) {
        Ok(std::borrow::Cow::Borrowed(_)) => return Ok(()),
        Ok(std::borrow::Cow::Owned(p)) => p,
        Err(e) => return Err(ProxyError::new(Reason::BadRequest, e.to_string())),
    };
    let with_query = match req.uri().query() {
        Some(q) => format!("{normalized}?{q}"),
        None => normalized,
    };
    let pq = PathAndQuery::try_from(with_query).map_err(|e| {
        ProxyError::new(
            Reason::BadRequest,
            format!("the normalized path is not valid: {e}"),
        )
    })?;
    let mut parts = req.uri().clone().into_parts();
    parts.path_and_query = Some(pq);
    *req.uri_mut() = http::Uri::from_parts(parts).map_err(|e| {
        ProxyError::new(
            Reason::BadRequest,
            format!("the normalized URI is not valid: {e}"),
        )
    })?;
    Ok(())
}
