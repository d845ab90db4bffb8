//! Tokens a JWT rule has verified, remembered so that the next request carrying the same
//! token skips the signature check (as Envoy's `jwt_cache_config` does): a client sends one
//! token for many requests, and verifying an RS256 or EdDSA signature costs more than the
//! rest of a mesh hop.
//!
//! Read without locks (an `arc-swap` of a short list, compared by length then in full: a
//! token is a few hundred bytes, which a comparison reads faster than a hash would); a new
//! token is added copy-on-write, the oldest dropped past [`CAPACITY`]. It belongs to one
//! snapshot's rule, so a configuration change (new keys, another issuer or audience) starts
//! with an empty one. A remembered token is used only within its `exp` and from its `nbf`
//! (with the same leeway the verifier allows).

use std::sync::Arc;

use arc_swap::ArcSwap;
use weft_policy::authz::RequestAuth;

/// Tokens remembered per rule.
const CAPACITY: usize = 32;

/// A verified token and what it proved.
pub struct Verified {
    pub auth: Arc<RequestAuth>,
    /// The token's payload segment (for `outputPayloadToHeader`).
    pub payload: String,
    exp: Option<u64>,
    nbf: Option<u64>,
}

struct Entry {
    token: Box<str>,
    verified: Arc<Verified>,
}

#[derive(Default)]
pub struct TokenCache {
    entries: ArcSwap<Vec<Arc<Entry>>>,
}

impl Verified {
    pub fn new(auth: RequestAuth, payload: String) -> Verified {
        let num = |k: &str| {
            auth.claims
                .get(k)
                .and_then(|v| v.as_f64())
                .map(|f| f.max(0.0) as u64)
        };
        let (exp, nbf) = (num("exp"), num("nbf"));
        Verified {
            auth: Arc::new(auth),
            payload,
            exp,
            nbf,
        }
    }

    /// Still valid at `now` (seconds), allowing `leeway`.
    fn valid_at(&self, now: u64, leeway: u64) -> bool {
        self.exp.is_none_or(|exp| now <= exp.saturating_add(leeway))
            && self.nbf.is_none_or(|nbf| now.saturating_add(leeway) >= nbf)
    }
}

impl TokenCache {
    /// The remembered verification of `token`, if it is still valid at `now`.
    pub fn get(&self, token: &str, now: u64, leeway: u64) -> Option<Arc<Verified>> {
        let entries = self.entries.load();
        let e = entries
            .iter()
            .find(|e| e.token.len() == token.len() && *e.token == *token)?;
        e.verified.valid_at(now, leeway).then(|| e.verified.clone())
    }

    /// Remembers a verification; the oldest goes when the list is full.
    pub fn insert(&self, token: &str, verified: Arc<Verified>) {
        let entry = Arc::new(Entry {
            token: token.into(),
            verified,
        });
        self.entries.rcu(|list| {
            let mut next: Vec<Arc<Entry>> = list
                .iter()
                .filter(|e| *e.token != *token)
                .cloned()
                .collect();
            if next.len() >= CAPACITY {
                next.remove(0);
            }
            next.push(entry.clone());
            next
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verified(exp: Option<u64>, nbf: Option<u64>) -> Arc<Verified> {
        let mut claims = serde_json::json!({"iss": "i", "sub": "s"});
        if let Some(e) = exp {
            claims["exp"] = e.into();
        }
        if let Some(n) = nbf {
            claims["nbf"] = n.into();
        }
        let auth = RequestAuth {
            principal: "i/s".into(),
            claims,
            ..RequestAuth::default()
        };
        Arc::new(Verified::new(auth, "payload".into()))
    }

    #[test]
    fn remembers_tokens_within_their_lifetime() {
        let cache = TokenCache::default();
        assert!(cache.get("t1", 100, 60).is_none());
        cache.insert("t1", verified(Some(1000), Some(50)));
        let hit = cache.get("t1", 100, 60).expect("remembered");
        assert_eq!(hit.auth.principal, "i/s");
        assert!(cache.get("t2", 100, 60).is_none(), "another token");
        assert!(cache.get("t1", 1060, 60).is_some(), "within the leeway");
        assert!(cache.get("t1", 1061, 60).is_none(), "expired");
        assert!(cache.get("t1", 0, 10).is_none(), "not yet valid");
    }

    #[test]
    fn keeps_the_newest_tokens() {
        let cache = TokenCache::default();
        for i in 0..CAPACITY + 5 {
            cache.insert(&format!("t{i}"), verified(None, None));
        }
        assert!(cache.get("t0", 0, 0).is_none(), "the oldest went");
        assert!(cache.get(&format!("t{}", CAPACITY + 4), 0, 0).is_some());
        assert_eq!(cache.entries.load().len(), CAPACITY);
    }
}
