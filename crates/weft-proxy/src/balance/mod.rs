//! Load balancing over a backend's endpoints.
//!
//! The default is power-of-two-choices over peak-EWMA latency (Linkerd's balancer): pick two
//! endpoints at random (by weight) and send to the one whose expected latency, times its
//! outstanding requests plus one, is lower. DestinationRules may ask for round robin, least
//! request (two choices over outstanding requests), random, or a consistent hash of a
//! header, cookie, query parameter or the source IP.

mod load;
mod ring;
pub mod sticky;

use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use http::HeaderMap;
use weft_api::view::LoadBalancer;

pub(crate) use load::now_nanos;
pub use load::{InFlight, Load};
pub use ring::Ring;

/// Anything with a [`Load`] and a weight can be balanced over.
pub trait Balanced {
    fn load(&self) -> &Load;
    fn weight(&self) -> u32;
    /// A stable name (its address): the same endpoint owns the same ring points on every
    /// proxy, so a hash key lands on the same endpoint whichever client sends it.
    fn ring_key(&self) -> String;
}

/// What a hash policy may hash.
pub struct PickContext<'a> {
    pub headers: &'a HeaderMap,
    pub query: Option<&'a str>,
    pub source_ip: IpAddr,
}

pub enum Policy {
    PeakEwma,
    RoundRobin(AtomicUsize),
    LeastRequest,
    Random,
    Hash { key: HashKey, ring: Ring },
}

pub enum HashKey {
    Header(http::HeaderName),
    Cookie(String),
    Query(String),
    SourceIp,
}

impl Policy {
    pub fn new<E: Balanced>(lb: &LoadBalancer, endpoints: &[Arc<E>]) -> Policy {
        let hash = |key| Policy::Hash {
            key,
            ring: Ring::new(endpoints),
        };
        match lb {
            LoadBalancer::PeakEwma => Policy::PeakEwma,
            LoadBalancer::RoundRobin => Policy::RoundRobin(AtomicUsize::new(0)),
            LoadBalancer::LeastRequest => Policy::LeastRequest,
            LoadBalancer::Random => Policy::Random,
            LoadBalancer::HashHeader { name } => {
                match http::HeaderName::from_bytes(name.as_bytes()) {
                    Ok(h) => hash(HashKey::Header(h)),
                    Err(_) => Policy::Random,
                }
            }
            LoadBalancer::HashCookie { name, .. } => hash(HashKey::Cookie(name.clone())),
            LoadBalancer::HashQueryParameter { name } => hash(HashKey::Query(name.clone())),
            LoadBalancer::HashSourceIp => hash(HashKey::SourceIp),
        }
    }

    /// Picks an endpoint; `None` only when there are none.
    pub fn pick<'e, E: Balanced>(
        &self,
        endpoints: &'e [Arc<E>],
        cx: &PickContext<'_>,
    ) -> Option<&'e Arc<E>> {
        match endpoints.len() {
            0 => return None,
            1 => return endpoints.first(),
            _ => {}
        }
        match self {
            Policy::PeakEwma => {
                let now = load::now_nanos();
                two_choices(endpoints, |e| e.load().ewma_cost(now))
            }
            Policy::LeastRequest => two_choices(endpoints, |e| f64::from(e.load().pending())),
            Policy::Random => endpoints.get(weighted_index(endpoints)),
            Policy::RoundRobin(next) => {
                let i = next.fetch_add(1, Ordering::Relaxed) % endpoints.len();
                endpoints.get(i)
            }
            Policy::Hash { key, ring } => match hash_input(key, cx) {
                Some(h) => ring.lookup(h).and_then(|i| endpoints.get(i)),
                // No key on this request (no such header or cookie): any endpoint will do.
                None => endpoints.get(weighted_index(endpoints)),
            },
        }
    }
}

fn two_choices<E: Balanced>(endpoints: &[Arc<E>], cost: impl Fn(&E) -> f64) -> Option<&Arc<E>> {
    let a = weighted_index(endpoints);
    let mut b = weighted_index(endpoints);
    if a == b {
        b = (a + 1 + fastrand::usize(..endpoints.len() - 1)) % endpoints.len();
    }
    let (ea, eb) = (endpoints.get(a)?, endpoints.get(b)?);
    // Weight divides cost: a heavier endpoint looks cheaper.
    let ca = cost(ea) / f64::from(ea.weight().max(1));
    let cb = cost(eb) / f64::from(eb.weight().max(1));
    Some(if cb < ca { eb } else { ea })
}

/// A random index, in proportion to endpoint weights.
fn weighted_index<E: Balanced>(endpoints: &[Arc<E>]) -> usize {
    let total: u64 = endpoints.iter().map(|e| u64::from(e.weight().max(1))).sum();
    let mut r = fastrand::u64(..total.max(1));
    for (i, e) in endpoints.iter().enumerate() {
        let w = u64::from(e.weight().max(1));
        if r < w {
            return i;
        }
        r -= w;
    }
    0
}

fn hash_input(key: &HashKey, cx: &PickContext<'_>) -> Option<u64> {
    let bytes: Vec<u8> = match key {
        HashKey::Header(name) => cx.headers.get(name)?.as_bytes().to_vec(),
        HashKey::Cookie(name) => cookie(cx.headers, name)?.as_bytes().to_vec(),
        HashKey::Query(name) => query_param(cx.query?, name)?.as_bytes().to_vec(),
        HashKey::SourceIp => cx.source_ip.to_string().into_bytes(),
    };
    Some(ring::hash64(&bytes))
}

/// The value of cookie `name` in the request's Cookie headers.
pub fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The first value of query parameter `name` (not percent-decoded: names are compared as
/// written, as the Gateway API's Exact match does).
pub fn query_param<'q>(query: &'q str, name: &str) -> Option<&'q str> {
    query
        .split('&')
        .map(|kv| kv.split_once('=').unwrap_or((kv, "")))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

#[cfg(test)]
mod tests;
