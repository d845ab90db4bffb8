//! Request mirroring (`RequestMirror`): a copy of the request head goes to one endpoint of
//! the mirror backend, in a task of its own; its answer is read and forgotten. The body is
//! not copied: it is streamed once, to the real backend.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::Request;

use super::endpoint;
use crate::balance::PickContext;
use crate::h1::verbatim::Fields;
use crate::http::empty;
use crate::state::Backend;

/// Mirrored requests are abandoned after this long.
const MIRROR_TIMEOUT: Duration = Duration::from_secs(5);

/// Sends a copy of `req`'s head to one of `backend`'s endpoints, and forgets the answer.
pub fn send<B>(backend: Arc<Backend>, req: &Request<B>, client: SocketAddr) {
    let (head, _) = {
        let mut copy = Request::new(());
        *copy.method_mut() = req.method().clone();
        *copy.uri_mut() = req.uri().clone();
        *copy.version_mut() = req.version();
        *copy.headers_mut() = req.headers().clone();
        copy.headers_mut().remove(http::header::CONTENT_LENGTH);
        copy.headers_mut().remove(http::header::TRANSFER_ENCODING);
        copy.into_parts()
    };
    tokio::spawn(async move {
        let pick = PickContext {
            headers: &head.headers,
            query: head.uri.query(),
            source_ip: client.ip(),
        };
        let Some(ep) = backend.policy.pick(&backend.endpoints, &pick).cloned() else {
            return;
        };
        let req = Request::from_parts(head, empty());
        let sent = endpoint::send(backend.protocol, &ep, req, MIRROR_TIMEOUT, Fields::Map);
        match tokio::time::timeout(MIRROR_TIMEOUT, sent).await {
            Ok(Ok(resp)) => {
                tracing::debug!(status = %resp.status(), endpoint = %ep.addr, "mirrored")
            }
            Ok(Err(f)) => tracing::debug!(error = %f.error, "mirror failed"),
            Err(_) => tracing::debug!("mirror timed out"),
        }
    });
}
