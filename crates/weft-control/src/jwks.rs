//! Fetching the key sets RequestAuthentications name by `jwksUri` (or, naming neither key
//! set nor URI, find by OpenID Connect discovery from their issuer), so that proxies receive
//! keys with their configuration and never reach out themselves.
//!
//! Each URI is fetched when a model first needs it and again every [`REFRESH`]; each fetch is
//! bounded by the rule's `timeout`. A failure is reported (log, `/status`, metric) and is not
//! fatal: the last key set fetched stays in use, and with none yet, the proxies refuse the
//! tokens that rule would check (401) until one arrives. A key set with no usable key counts
//! as a failure. When what is held changes, the store rebuilds and pushes.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::jwks_http;
use crate::metrics::ResultLabels;
use crate::store::Store;

/// How often key sets are fetched again (Istio refreshes every 20 minutes).
pub const REFRESH: Duration = Duration::from_secs(20 * 60);
/// How often the task looks for URIs a new model needs.
const POLL: Duration = Duration::from_millis(500);

/// Keeps `store`'s fetched key sets current; runs until the task is dropped.
pub async fn run(store: Arc<Store>) {
    let mut fetched_at: BTreeMap<String, Instant> = BTreeMap::new();
    loop {
        let wanted = weft_api::compile::authn::uris_to_fetch(&store.current().model);
        let mut changed = false;
        for (uri, timeout) in wanted {
            let due = fetched_at.get(&uri).is_none_or(|t| t.elapsed() >= REFRESH);
            if !due {
                continue;
            }
            fetched_at.insert(uri.clone(), Instant::now());
            let result = fetch_key_set(&uri, timeout).await;
            store
                .metrics()
                .jwks_fetches
                .get_or_create(&ResultLabels {
                    result: if result.is_ok() { "ok" } else { "error" },
                })
                .inc();
            changed |= store.set_key_set(&uri, result);
        }
        if changed {
            let s = store.clone();
            if let Err(e) = tokio::task::spawn_blocking(move || s.rebuild()).await {
                tracing::error!(error = %e, "rebuild after a key set change failed");
            }
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The key set at `uri` (following OpenID Connect discovery when `uri` is a discovery
/// document), checked to have a usable key.
pub async fn fetch_key_set(uri: &str, timeout: Duration) -> Result<String, String> {
    let started = Instant::now();
    let mut body = jwks_http::get(uri, timeout)
        .await
        .map_err(|e| format!("{uri}: {e}"))?;
    if uri.ends_with("/.well-known/openid-configuration") {
        let doc: serde_json::Value = serde_json::from_str(&body)
            .map_err(|e| format!("{uri}: not an OpenID configuration: {e}"))?;
        let jwks_uri = doc["jwks_uri"]
            .as_str()
            .ok_or_else(|| format!("{uri}: the OpenID configuration names no jwks_uri"))?
            .to_string();
        let left = timeout.saturating_sub(started.elapsed());
        body = jwks_http::get(&jwks_uri, left)
            .await
            .map_err(|e| format!("{jwks_uri} (from {uri}): {e}"))?;
    }
    weft_api::jwks::check(&body).map_err(|e| format!("{uri}: {e}"))?;
    Ok(body)
}
