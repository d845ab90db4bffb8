//! Balancer tests: each policy's choice under controlled load.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use http::HeaderMap;
use weft_api::view::LoadBalancer;

use super::*;

struct Ep {
    name: &'static str,
    load: Load,
    weight: u32,
}

impl Balanced for Ep {
    fn load(&self) -> &Load {
        &self.load
    }
    fn weight(&self) -> u32 {
        self.weight
    }
    fn ring_key(&self) -> String {
        self.name.to_string()
    }
}

fn eps(names: &[&'static str]) -> Vec<Arc<Ep>> {
    names
        .iter()
        .map(|n| {
            Arc::new(Ep {
                name: n,
                load: Load::default(),
                weight: 1,
            })
        })
        .collect()
}

fn counts(
    policy: &Policy,
    endpoints: &[Arc<Ep>],
    headers: &HeaderMap,
    n: usize,
) -> HashMap<&'static str, usize> {
    let cx = PickContext {
        headers,
        query: None,
        source_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
    };
    let mut out = HashMap::new();
    for _ in 0..n {
        let e = policy.pick(endpoints, &cx).expect("endpoint");
        *out.entry(e.name).or_default() += 1;
    }
    out
}

#[test]
fn peak_ewma_avoids_the_slow_endpoint() {
    let endpoints = eps(&["fast", "slow", "other"]);
    for _ in 0..5 {
        endpoints[1].load.start();
    }
    // Record a slow response on "slow" and fast ones elsewhere.
    let slow = endpoints[1].load.start();
    std::thread::sleep(Duration::from_millis(20));
    slow.observe();
    for e in [&endpoints[0], &endpoints[2]] {
        e.load.start().observe();
    }
    let policy = Policy::new(&LoadBalancer::PeakEwma, &endpoints);
    let c = counts(&policy, &endpoints, &HeaderMap::new(), 3000);
    assert_eq!(c.get("slow").copied().unwrap_or(0), 0, "{c:?}");
}

#[test]
fn least_request_prefers_idle_endpoints() {
    let endpoints = eps(&["a", "b"]);
    let _busy: Vec<_> = (0..10).map(|_| endpoints[0].load.start()).collect();
    let policy = Policy::new(&LoadBalancer::LeastRequest, &endpoints);
    let c = counts(&policy, &endpoints, &HeaderMap::new(), 1000);
    assert_eq!(c.get("b"), Some(&1000), "{c:?}");
}

#[test]
fn round_robin_cycles_evenly() {
    let endpoints = eps(&["a", "b", "c"]);
    let policy = Policy::new(&LoadBalancer::RoundRobin, &endpoints);
    let c = counts(&policy, &endpoints, &HeaderMap::new(), 300);
    assert!(c.values().all(|v| *v == 100), "{c:?}");
}

#[test]
fn random_spreads_by_weight() {
    let mut endpoints = eps(&["a"]);
    endpoints.push(Arc::new(Ep {
        name: "heavy",
        load: Load::default(),
        weight: 3,
    }));
    let policy = Policy::new(&LoadBalancer::Random, &endpoints);
    let c = counts(&policy, &endpoints, &HeaderMap::new(), 8000);
    let heavy = c.get("heavy").copied().unwrap_or(0) as f64 / 8000.0;
    assert!((0.70..0.80).contains(&heavy), "{c:?}");
}

#[test]
fn header_hash_is_sticky_and_spreads_keys() {
    let endpoints = eps(&["a", "b", "c", "d"]);
    let policy = Policy::new(
        &LoadBalancer::HashHeader {
            name: "x-user".into(),
        },
        &endpoints,
    );
    let mut seen = std::collections::HashSet::new();
    for user in 0..200 {
        let mut h = HeaderMap::new();
        h.insert("x-user", format!("user-{user}").parse().expect("value"));
        let c = counts(&policy, &endpoints, &h, 20);
        assert_eq!(c.len(), 1, "user-{user} went to {c:?}");
        seen.extend(c.into_keys());
    }
    assert_eq!(seen.len(), 4, "keys should spread over every endpoint");
    // A ring built from the same endpoints elsewhere (another proxy) agrees.
    let again = Policy::new(
        &LoadBalancer::HashHeader {
            name: "x-user".into(),
        },
        &eps(&["a", "b", "c", "d"]),
    );
    let mut h = HeaderMap::new();
    h.insert("x-user", "user-7".parse().expect("value"));
    assert_eq!(
        counts(&policy, &endpoints, &h, 1).keys().next(),
        counts(&again, &endpoints, &h, 1).keys().next()
    );
}

#[test]
fn cookie_and_query_parsing() {
    let mut h = HeaderMap::new();
    h.insert(
        http::header::COOKIE,
        "a=1; session=xyz; b=2".parse().expect("value"),
    );
    assert_eq!(cookie(&h, "session"), Some("xyz"));
    assert_eq!(cookie(&h, "nope"), None);
    assert_eq!(query_param("a=1&animal=whale&x", "animal"), Some("whale"));
    assert_eq!(query_param("a=1&x", "x"), Some(""));
    assert_eq!(query_param("a=1", "b"), None);
}
