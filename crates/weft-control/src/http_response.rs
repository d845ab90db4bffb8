//! The admin endpoint's HTTP responses: a status, a content type and a whole body.
//!
//! Both route sets (`admin`'s and `workloads_api`'s) build their answers here, so neither
//! depends on the other for them.

use bytes::Bytes;
use http::{header, Response, StatusCode};
use http_body_util::Full;

/// A plain-text (UTF-8) response.
pub(crate) fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    respond(status, "text/plain; charset=utf-8", body)
}

/// A response of `content_type`.
pub(crate) fn respond(
    status: StatusCode,
    content_type: &'static str,
    body: String,
) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    resp
}

/// A query parameter's value (not percent-decoded: the admin API takes plain names).
pub(crate) fn query<B>(req: &http::Request<B>, key: &str) -> Option<String> {
    req.uri().query()?.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == key).then(|| v.to_string())
    })
}

/// A body the admin endpoint answers with: whole documents, or a relayed stream (a tap).
pub(crate) type AdminBody = http_body_util::combinators::UnsyncBoxBody<Bytes, hyper::Error>;
pub(crate) type AdminResponse = Response<AdminBody>;

/// A whole-document response as an [`AdminResponse`].
pub(crate) fn boxed(resp: Response<Full<Bytes>>) -> AdminResponse {
    use http_body_util::BodyExt;
    resp.map(|b| b.map_err(|never| match never {}).boxed_unsync())
}
