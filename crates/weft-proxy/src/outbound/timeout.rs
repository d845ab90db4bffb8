//! The timeout stage: a route rule's `timeouts.request` (else MeshConfig's default) bounds
//! the whole request, retries and backoff included. Per-try timeouts (`backendRequest`) are
//! the retry stage's.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use http::Response;
use weft_api::view::MeshView;

use crate::error::{ProxyError, Reason};
use crate::http::Body;
use crate::state::Rule;

/// The rule's request timeout, else the mesh default; `None` (or zero) is no limit.
pub fn for_rule(rule: &Rule, mesh: &MeshView) -> Option<Duration> {
    rule.request_timeout
        .or_else(|| {
            (mesh.request_timeout_ms > 0).then(|| Duration::from_millis(mesh.request_timeout_ms))
        })
        .filter(|d| !d.is_zero())
}

/// Runs `fut` within `limit`; `describe` names what timed out for the `weft-error` detail.
///
/// The future comes pinned where the caller made it: the retry stage's future is large, and
/// taking it by value would copy it (about 600 instructions a request).
pub async fn within<F>(
    limit: Option<Duration>,
    describe: impl FnOnce() -> String,
    mut fut: Pin<&mut F>,
) -> Result<Response<Body>, ProxyError>
where
    F: Future<Output = Result<Response<Body>, ProxyError>>,
{
    match limit {
        Some(t) => match tokio::time::timeout(t, fut.as_mut()).await {
            Ok(r) => r,
            Err(_) => Err(ProxyError::new(
                Reason::Timeout,
                format!("request timeout {t:?} of {}", describe()),
            )),
        },
        None => fut.as_mut().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::pin::pin;

    #[tokio::test(start_paused = true)]
    async fn a_request_over_its_limit_is_a_timeout_naming_the_rule() {
        let slow = async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            Ok(Response::new(crate::http::empty()))
        };
        let e = within(
            Some(Duration::from_secs(1)),
            || "HTTPRoute ns/r rule 0".into(),
            pin!(slow),
        )
        .await
        .err()
        .map(|e| e.to_string());
        assert_eq!(
            e.as_deref(),
            Some("timeout; request timeout 1s of HTTPRoute ns/r rule 0")
        );
        let quick = async { Ok(Response::new(crate::http::empty())) };
        assert!(
            within(Some(Duration::from_secs(1)), String::new, pin!(quick))
                .await
                .is_ok()
        );
        let unlimited = async {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Ok(Response::new(crate::http::empty()))
        };
        assert!(within(None, String::new, pin!(unlimited)).await.is_ok());
    }
}
