//! The store's key sets: a fetched set reaches the views, a failed fetch keeps the last one
//! that worked (and is reported), and one that never worked leaves the rule without keys.

use std::sync::Arc;

use weft_api::load_cache::LoadCache;

use super::*;

const JWKS: &str =
    r#"{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}"#;
const URI: &str = "http://127.0.0.1:1/jwks";

fn store() -> (Store, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("weft-store-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::write(
        dir.join("mesh.yaml"),
        format!("apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata: {{name: w, namespace: ns}}\nspec: {{address: 10.0.0.2, labels: {{app: w}}}}\n---\napiVersion: security.istio.io/v1\nkind: RequestAuthentication\nmetadata: {{name: jwt, namespace: ns}}\nspec:\n  jwtRules: [{{issuer: i, jwksUri: \"{URI}\"}}]\n"),
    )
    .expect("write");
    let mut cache = LoadCache::default();
    let (model, warnings) = load(&dir, &mut cache).expect("valid");
    let store = Store::new(
        Source::Dir {
            dir: dir.clone(),
            cache,
        },
        Registry::default(),
        model,
        warnings,
        Vec::new(),
        Arc::new(Metrics::new()),
    );
    (store, dir)
}

/// The key set (or the reason for none) the workload's proxy would be sent.
fn sent(store: &Store) -> (Option<String>, Option<String>) {
    let who = weft_api::compile::ProxyIdentity {
        namespace: "ns".into(),
        workload: Some("w".into()),
    };
    let view = weft_api::compile::compile(&store.current().model, &who).expect("compile");
    let rule = &view.inbound.jwt[0].rules[0];
    (rule.jwks.clone(), rule.jwks_error.clone())
}

#[test]
fn fetched_key_sets_reach_proxies_and_a_failure_keeps_the_last() {
    let (store, dir) = store();
    let (keys, error) = sent(&store);
    assert!(keys.is_none() && error.is_some_and(|e| e.contains("has not been fetched")));
    // A failure with nothing before it: the rule has no keys, and the reason travels.
    assert!(store.set_key_set(URI, Err("connection refused".into())));
    store.rebuild();
    assert_eq!(sent(&store), (None, Some("connection refused".into())));
    // A fetch that works reaches the views.
    assert!(store.set_key_set(URI, Ok(JWKS.into())));
    store.rebuild();
    assert_eq!(sent(&store).0.as_deref(), Some(JWKS));
    // A later failure changes nothing proxies hold; it is reported.
    assert!(!store.set_key_set(URI, Err("timed out".into())));
    assert_eq!(
        store.status().key_sets.get(URI).map(String::as_str),
        Some("timed out")
    );
    store.rebuild();
    assert_eq!(sent(&store).0.as_deref(), Some(JWKS));
    // The same set again is no change.
    assert!(!store.set_key_set(URI, Ok(JWKS.into())));
    assert_eq!(
        store.status().key_sets.get(URI).map(String::as_str),
        Some("ok")
    );
    let _ = std::fs::remove_dir_all(dir);
}
