//! Serving `GrpcEcho` over the HTTP ports: `Echo` and `EchoTwo` answer what the
//! server saw, `EchoThree` and unknown methods answer `UNIMPLEMENTED`, and the
//! `grpc-echo-status: N` request header makes a method answer status `N`.

use http::header::CONTENT_TYPE;
use http::{HeaderMap, HeaderValue, Method, Request, Response};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::Incoming;

use crate::body::EchoBody;
use crate::grpc::{self, Assertions, Context, EchoRequest, EchoResponse, Header};
use crate::Identity;

/// gRPC status codes this server answers with.
const OK: u32 = 0;
const INVALID_ARGUMENT: u32 = 3;
const RESOURCE_EXHAUSTED: u32 = 8;
const UNIMPLEMENTED: u32 = 12;
const INTERNAL: u32 = 13;

/// Whether `req` is a gRPC call: a POST whose content type is `application/grpc`
/// or `application/grpc+<codec>` (gRPC-Web is not gRPC and gets the JSON echo).
pub(crate) fn is_grpc<B>(req: &Request<B>) -> bool {
    let Some(ct) = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    req.method() == Method::POST
        && ct
            .strip_prefix("application/grpc")
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('+') || rest.starts_with(';'))
}

/// Answers one gRPC call. Always HTTP 200; the outcome is in `grpc-status`.
pub(crate) async fn handle(req: Request<Incoming>, identity: &Identity) -> Response<EchoBody> {
    let (parts, body) = req.into_parts();
    let body = match Limited::new(body, grpc::MAX_MESSAGE_LEN + 5)
        .collect()
        .await
    {
        Ok(collected) => collected.to_bytes(),
        Err(error) if error.downcast_ref::<LengthLimitError>().is_some() => {
            return status_only(RESOURCE_EXHAUSTED, "request message larger than 1 MiB");
        }
        Err(error) => {
            tracing::debug!(%error, "echo: reading gRPC request failed");
            return status_only(INTERNAL, "cannot read request body");
        }
    };

    let path = parts.uri.path();
    if path != grpc::ECHO_PATH && path != grpc::ECHO_TWO_PATH {
        let message = format!("unknown or unimplemented method {path}");
        return status_only(UNIMPLEMENTED, &message);
    }
    if let Err(error) = grpc::decode::<EchoRequest>(&body) {
        return status_only(INTERNAL, &error.to_string());
    }
    if let Some(value) = parts.headers.get(grpc::ECHO_STATUS_HEADER) {
        match value
            .to_str()
            .ok()
            .and_then(|v| v.trim().parse::<u32>().ok())
        {
            Some(OK) => {}
            Some(code) => return status_only(code, "status requested by grpc-echo-status"),
            None => return status_only(INVALID_ARGUMENT, "grpc-echo-status is not a number"),
        }
    }

    let authority = crate::answer::authority(&parts);
    let headers = parts
        .headers
        .iter()
        .map(|(name, value)| Header {
            key: name.as_str().to_owned(),
            value: String::from_utf8_lossy(value.as_bytes()).into_owned(),
        })
        .collect();
    let answer = EchoResponse {
        assertions: Some(Assertions {
            fully_qualified_method: path.to_owned(),
            headers,
            authority,
            context: Some(Context {
                namespace: identity.namespace.clone(),
                ingress: String::new(),
                service_name: identity.service.clone(),
                pod: identity.pod.clone(),
            }),
            tls_assertions: None,
        }),
        request: Some(EchoRequest {}),
    };
    let framed = match grpc::encode(&answer) {
        Ok(framed) => framed,
        Err(error) => return status_only(INTERNAL, &error.to_string()),
    };
    let mut trailers = HeaderMap::new();
    trailers.insert("grpc-status", HeaderValue::from(OK));
    let mut resp = Response::new(EchoBody::with_trailers(framed, trailers));
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
    resp
}

/// A trailers-only response: status and message in the headers, no body.
fn status_only(code: u32, message: &str) -> Response<EchoBody> {
    let mut resp = Response::new(EchoBody::empty());
    let headers = resp.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
    headers.insert("grpc-status", HeaderValue::from(code));
    if let Ok(message) = HeaderValue::from_str(&percent_encode(message)) {
        headers.insert("grpc-message", message);
    }
    resp
}

/// gRPC's `grpc-message` encoding: bytes outside printable ASCII and `%` become `%XX`.
fn percent_encode(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    for byte in message.bytes() {
        if (0x20..=0x7e).contains(&byte) && byte != b'%' {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_grpc_content_types() {
        let req = |ct: &str| {
            Request::post("/x")
                .header(CONTENT_TYPE, ct)
                .body(())
                .expect("request")
        };
        assert!(is_grpc(&req("application/grpc")));
        assert!(is_grpc(&req("application/grpc+proto")));
        assert!(!is_grpc(&req("application/grpc-web")));
        assert!(!is_grpc(&req("application/json")));
    }

    #[test]
    fn percent_encodes_messages() {
        assert_eq!(percent_encode("a b%c\n"), "a b%25c%0A");
    }
}
