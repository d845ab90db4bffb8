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

#[cfg(test)]
mod tests {
    use super::*;

    const JWKS: &str = r#"{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}"#;

    /// Serves `(path, status, body)` answers on a loopback port; anything else is 404.
    async fn server(routes: Vec<(String, u16, String)>) -> std::net::SocketAddr {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                let routes = routes.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    let n = conn.read(&mut buf).await.unwrap_or(0);
                    let head = String::from_utf8_lossy(&buf[..n]).to_string();
                    let path = head.split_whitespace().nth(1).unwrap_or("").to_string();
                    let (status, body) = routes
                        .iter()
                        .find(|(p, _, _)| *p == path)
                        .map(|(_, s, b)| (*s, b.clone()))
                        .unwrap_or((404, String::new()));
                    if path == "/slow" {
                        tokio::time::sleep(Duration::from_secs(5)).await;
                    }
                    let answer = format!("HTTP/1.1 {status} X\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len());
                    let _ = conn.write_all(answer.as_bytes()).await;
                });
            }
        });
        addr
    }

    #[tokio::test]
    async fn key_sets_are_fetched_directly_or_by_discovery_and_checked() {
        let addr = server(vec![
            ("/jwks".into(), 200, JWKS.into()),
            (
                "/issuer/.well-known/openid-configuration".into(),
                200,
                String::new(),
            ),
            ("/empty".into(), 200, r#"{"keys":[]}"#.into()),
            ("/html".into(), 200, "<html>".into()),
        ])
        .await;
        let t = Duration::from_secs(2);
        assert_eq!(
            fetch_key_set(&format!("http://{addr}/jwks"), t)
                .await
                .as_deref(),
            Ok(JWKS)
        );
        // Discovery: the configuration names where the keys are.
        let discovery = server(vec![(
            "/.well-known/openid-configuration".into(),
            200,
            format!(r#"{{"issuer":"x","jwks_uri":"http://{addr}/jwks"}}"#),
        )])
        .await;
        let found = fetch_key_set(
            &format!("http://{discovery}/.well-known/openid-configuration"),
            t,
        )
        .await;
        assert_eq!(found.as_deref(), Ok(JWKS));
        // Failures say what and where, and none is a panic.
        for (path, why) in [
            ("/missing", "404"),
            ("/empty", "no usable key"),
            ("/html", "not JSON"),
        ] {
            let e = fetch_key_set(&format!("http://{addr}{path}"), t)
                .await
                .expect_err(path);
            assert!(e.contains(path) && e.contains(why), "{path}: {e}");
        }
        let e = fetch_key_set(
            &format!("http://{addr}/issuer/.well-known/openid-configuration"),
            t,
        )
        .await
        .expect_err("no jwks_uri");
        assert!(e.contains("not an OpenID configuration"), "{e}");
        let slow = fetch_key_set(&format!("http://{addr}/slow"), Duration::from_millis(300))
            .await
            .expect_err("slow");
        assert!(slow.contains("no answer within"), "{slow}");
        let closed = fetch_key_set("http://127.0.0.1:1/jwks", t)
            .await
            .expect_err("closed port");
        assert!(closed.contains("connecting to 127.0.0.1:1"), "{closed}");
        assert!(fetch_key_set("ftp://x/jwks", t).await.is_err());
    }
}
