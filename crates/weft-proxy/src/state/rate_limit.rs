//! A snapshot's local rate limits (HTTPLocalRateLimitPolicy): per workload port, a total
//! bucket, a bucket per client identity, and the overrides' buckets for named clients.
//!
//! Identities are learnt as they call: the map of their buckets is swapped copy-on-write
//! (`arc-swap`), so the request path never locks; it holds at most [`MAX_IDENTITIES`], and
//! clients beyond that share one bucket. Plaintext callers, who have no identity, share one.

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;
use prometheus_client::metrics::counter::Counter;
use weft_api::view::RateLimitView;

use crate::error::{ProxyError, Reason};
use crate::metrics::Metrics;
use crate::resilience::rate::{retry_after_seconds, Bucket};

/// Distinct identities with a bucket of their own, per policy.
const MAX_IDENTITIES: usize = 10_000;

#[derive(Default)]
pub struct RateLimitState {
    by_port: Vec<(u16, Arc<Limiter>)>,
}

pub struct Limiter {
    policy: String,
    total: Option<Bucket>,
    identity_rps: Option<u32>,
    identities: ArcSwap<HashMap<Arc<str>, Arc<Bucket>>>,
    /// Clients beyond [`MAX_IDENTITIES`].
    crowd: Option<Bucket>,
    /// Named clients: an override's bucket, shared by the clients it names.
    overrides: HashMap<String, Arc<Bucket>>,
    refused: [Counter; 3],
}

impl RateLimitState {
    pub fn build(views: &[RateLimitView], metrics: &Metrics) -> Self {
        let mut by_port = Vec::new();
        for v in views {
            let limiter = Arc::new(Limiter::new(v, metrics));
            for &port in &v.ports {
                by_port.push((port, limiter.clone()));
            }
        }
        Self { by_port }
    }

    pub fn is_empty(&self) -> bool {
        self.by_port.is_empty()
    }

    /// Admits a request to `port` from `principal` (a SPIFFE id, or `unknown`) at `now`
    /// (nanoseconds of the proxy's clock), or refuses it: 429 with `Retry-After`.
    pub fn check(&self, port: u16, principal: &Arc<str>, now: u64) -> Result<(), ProxyError> {
        match self.by_port.iter().find(|(p, _)| *p == port) {
            Some((_, limiter)) => limiter.check(principal, now),
            None => Ok(()),
        }
    }
}

impl Limiter {
    fn new(v: &RateLimitView, metrics: &Metrics) -> Self {
        let mut overrides = HashMap::new();
        for o in &v.overrides {
            let bucket = Arc::new(Bucket::new(o.requests_per_second));
            for p in &o.principals {
                overrides.insert(p.clone(), bucket.clone());
            }
        }
        let refused = |limit| metrics.resilience.rate_limited(&v.policy, limit);
        Limiter {
            policy: v.policy.clone(),
            total: v.total.map(Bucket::new),
            identity_rps: v.identity,
            identities: ArcSwap::default(),
            crowd: v.identity.map(Bucket::new),
            overrides,
            refused: [refused("total"), refused("identity"), refused("override")],
        }
    }

    fn check(&self, principal: &Arc<str>, now: u64) -> Result<(), ProxyError> {
        // The client's own limit first, so that a refused client spends nothing of the total.
        if let Some(bucket) = self.overrides.get(&**principal) {
            bucket
                .take(now)
                .map_err(|w| self.refuse(2, "override", principal, w))?;
        } else if let Some(rps) = self.identity_rps {
            let bucket = self.identity_bucket(principal, rps);
            let bucket = bucket.as_deref().or(self.crowd.as_ref());
            if let Some(b) = bucket {
                b.take(now)
                    .map_err(|w| self.refuse(1, "identity", principal, w))?;
            }
        }
        if let Some(total) = &self.total {
            total
                .take(now)
                .map_err(|w| self.refuse(0, "total", principal, w))?;
        }
        Ok(())
    }

    /// The identity's bucket, made the first time it calls; `None` once the map is full.
    fn identity_bucket(&self, principal: &Arc<str>, rps: u32) -> Option<Arc<Bucket>> {
        if let Some(b) = self.identities.load().get(principal) {
            return Some(b.clone());
        }
        if self.identities.load().len() >= MAX_IDENTITIES {
            return None;
        }
        let fresh = Arc::new(Bucket::new(rps));
        self.identities.rcu(|m| {
            let mut next = HashMap::clone(m);
            next.entry(principal.clone())
                .or_insert_with(|| fresh.clone());
            next
        });
        self.identities.load().get(principal).cloned()
    }

    fn refuse(&self, which: usize, limit: &str, principal: &str, wait: u64) -> ProxyError {
        self.refused[which].inc();
        ProxyError::new(
            Reason::RateLimited,
            format!(
                "HTTPLocalRateLimitPolicy {} {limit} limit (client {principal})",
                self.policy
            ),
        )
        .retry_after(retry_after_seconds(wait))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use weft_api::view::resilience::RateLimitOverride;

    const SECOND: u64 = 1_000_000_000;

    fn state(
        total: Option<u32>,
        identity: Option<u32>,
        overrides: Vec<(u32, &str)>,
    ) -> (RateLimitState, Arc<Metrics>) {
        let metrics = Metrics::new();
        let view = RateLimitView {
            policy: "shop/rl".into(),
            ports: vec![8080],
            total,
            identity,
            overrides: overrides
                .into_iter()
                .map(|(rps, p)| RateLimitOverride {
                    requests_per_second: rps,
                    principals: vec![p.to_string()],
                })
                .collect(),
        };
        (RateLimitState::build(&[view], &metrics), metrics)
    }

    fn passed(s: &RateLimitState, port: u16, who: &Arc<str>, n: usize) -> usize {
        (0..n)
            .filter(|_| s.check(port, who, 10 * SECOND).is_ok())
            .count()
    }

    #[test]
    fn each_identity_has_its_own_bucket_and_the_total_caps_them_all() {
        let (s, metrics) = state(Some(15), Some(10), vec![]);
        let a: Arc<str> = Arc::from("spiffe://td/ns/shop/sa/a");
        let b: Arc<str> = Arc::from("spiffe://td/ns/shop/sa/b");
        assert_eq!(passed(&s, 8080, &a, 20), 10, "a's own limit");
        assert_eq!(
            passed(&s, 8080, &b, 20),
            5,
            "b is cut by what is left of the total"
        );
        // Other ports are not limited.
        assert_eq!(passed(&s, 9090, &a, 50), 50);
        let e = s.check(8080, &a, 10 * SECOND).expect_err("refused");
        assert_eq!(e.reason, Reason::RateLimited);
        assert_eq!(e.retry_after_s, Some(1));
        assert!(
            e.detail
                .contains("HTTPLocalRateLimitPolicy shop/rl identity limit"),
            "{e}"
        );
        let text = metrics.encode();
        assert!(
            text.contains("weft_rate_limited_total{policy=\"shop/rl\",limit=\"total\"} 5"),
            "{text}"
        );
    }

    #[test]
    fn overrides_replace_the_identity_limit_for_named_clients() {
        let (s, _) = state(None, Some(2), vec![(8, "spiffe://td/ns/ops/sa/batch")]);
        let batch: Arc<str> = Arc::from("spiffe://td/ns/ops/sa/batch");
        let other: Arc<str> = Arc::from("spiffe://td/ns/ops/sa/other");
        let plaintext: Arc<str> = Arc::from("unknown");
        assert_eq!(passed(&s, 8080, &batch, 20), 8);
        assert_eq!(passed(&s, 8080, &other, 20), 2);
        assert_eq!(
            passed(&s, 8080, &plaintext, 20),
            2,
            "plaintext callers share one bucket"
        );
    }
}
