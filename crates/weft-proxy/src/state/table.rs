//! Routing tables compiled for the request path: regexes built, header names parsed, backends
//! resolved to [`Backend`]s, metric handles resolved. Matching a request is a walk down a
//! list already sorted by the Gateway API's precedence.

use std::sync::Arc;

use http::{HeaderMap, HeaderName, Method};
use regex::Regex;
use weft_api::view::{self, FilterView, PathMatch, RouteRef, StringMatch};

use super::endpoint::Backend;
use crate::metrics::RouteStats;

pub struct Table {
    pub matches: Vec<Match>,
    pub rules: Vec<Arc<Rule>>,
}

impl Table {
    pub fn is_attached(&self) -> bool {
        !self.rules.is_empty()
    }

    /// The first rule whose match accepts the request, with the path prefix it matched
    /// (for `ReplacePrefixMatch`).
    pub fn find(
        &self,
        method: &Method,
        path: &str,
        query: Option<&str>,
        headers: &HeaderMap,
    ) -> Option<(&Arc<Rule>, Option<&Arc<str>>)> {
        self.matches.iter().find_map(|m| {
            if !m.accepts(method, path, query, headers) {
                return None;
            }
            let prefix = match &m.path {
                PathMatcher::Prefix(p) => Some(p),
                _ => None,
            };
            self.rules.get(m.rule).map(|r| (r, prefix))
        })
    }
}

pub struct Match {
    pub rule: usize,
    pub path: PathMatcher,
    pub headers: Vec<(HeaderName, StrMatcher)>,
    pub query: Vec<(String, StrMatcher)>,
    pub method: Option<Method>,
}

pub enum PathMatcher {
    Exact(String),
    /// Shared: a matched prefix travels with the request to `ReplacePrefixMatch`.
    Prefix(Arc<str>),
    Regex(Regex),
}

pub enum StrMatcher {
    Exact(String),
    Regex(Regex),
}

impl StrMatcher {
    fn matches(&self, value: &str) -> bool {
        match self {
            StrMatcher::Exact(v) => v == value,
            StrMatcher::Regex(re) => re.is_match(value),
        }
    }
}

impl Match {
    fn accepts(
        &self,
        method: &Method,
        path: &str,
        query: Option<&str>,
        headers: &HeaderMap,
    ) -> bool {
        let path_ok = match &self.path {
            PathMatcher::Exact(p) => path == p,
            PathMatcher::Prefix(p) => prefix_matches(p, path),
            PathMatcher::Regex(re) => re.is_match(path),
        };
        path_ok
            && self.method.as_ref().is_none_or(|m| m == method)
            && self.headers.iter().all(|(name, want)| {
                let mut values = headers.get_all(name).iter().filter_map(|v| v.to_str().ok());
                values.any(|v| want.matches(v))
            })
            && self.query.iter().all(|(name, want)| {
                query
                    .and_then(|q| crate::balance::query_param(q, name))
                    .is_some_and(|v| want.matches(v))
            })
    }
}

/// Element-wise prefix: `/v2` matches `/v2`, `/v2/` and `/v2/x`, not `/v2x`.
pub fn prefix_matches(prefix: &str, path: &str) -> bool {
    if prefix == "/" {
        return true;
    }
    match path.strip_prefix(prefix) {
        Some(rest) => rest.is_empty() || rest.starts_with('/'),
        None => false,
    }
}

pub struct Rule {
    pub route: RouteRef,
    pub filters: Vec<Filter>,
    pub backends: Vec<WeightedBackend>,
    pub total_weight: u64,
    pub request_timeout: Option<std::time::Duration>,
    pub backend_request_timeout: Option<std::time::Duration>,
    pub retry: Option<view::RetryView>,
    /// The rule's FaultInjection (an `ExtensionRef` filter), when it has one.
    pub fault: Option<Box<crate::resilience::fault::Fault>>,
    pub stats: Arc<RouteStats>,
}

pub struct WeightedBackend {
    /// `None`: the reference did not resolve; requests that pick it get a 500.
    pub backend: Option<Arc<Backend>>,
    pub weight: u32,
    pub filters: Vec<Filter>,
}

/// A filter, with a mirror's backend resolved.
pub enum Filter {
    Plain(FilterView),
    Mirror {
        backend: Option<Arc<Backend>>,
        per_million: u32,
    },
}

impl Rule {
    /// Picks a backend by weight. `None` when every weight is zero.
    pub fn pick_backend(&self) -> Option<&WeightedBackend> {
        if self.total_weight == 0 {
            return None;
        }
        let mut r = fastrand::u64(..self.total_weight);
        for b in &self.backends {
            let w = u64::from(b.weight);
            if r < w {
                return Some(b);
            }
            r -= w;
        }
        None
    }
}

pub(super) fn compile_match(m: &view::MatchEntry) -> Option<Match> {
    let path = match &m.matcher.path {
        PathMatch::Exact(p) => PathMatcher::Exact(p.clone()),
        PathMatch::PathPrefix(p) => PathMatcher::Prefix(Arc::from(p.as_str())),
        PathMatch::RegularExpression(re) => PathMatcher::Regex(Regex::new(&anchored(re)).ok()?),
    };
    let value = |v: &StringMatch| -> Option<StrMatcher> {
        Some(match v {
            StringMatch::Exact(s) => StrMatcher::Exact(s.clone()),
            StringMatch::RegularExpression(re) => {
                StrMatcher::Regex(Regex::new(&anchored(re)).ok()?)
            }
        })
    };
    let mut headers = Vec::new();
    for h in &m.matcher.headers {
        headers.push((
            HeaderName::from_bytes(h.name.as_bytes()).ok()?,
            value(&h.value)?,
        ));
    }
    let mut query = Vec::new();
    for q in &m.matcher.query_params {
        query.push((q.name.clone(), value(&q.value)?));
    }
    let method = match &m.matcher.method {
        Some(name) => Some(Method::from_bytes(name.as_bytes()).ok()?),
        None => None,
    };
    Some(Match {
        rule: m.rule,
        path,
        headers,
        query,
        method,
    })
}

fn anchored(re: &str) -> String {
    format!("^(?:{re})$")
}

#[cfg(test)]
mod tests {
    use super::prefix_matches;

    #[test]
    fn prefix_is_element_wise() {
        assert!(prefix_matches("/v2", "/v2"));
        assert!(prefix_matches("/v2", "/v2/"));
        assert!(prefix_matches("/v2", "/v2/example"));
        assert!(!prefix_matches("/v2", "/v2example"));
        assert!(!prefix_matches("/v2", "/foo/v2/example"));
        assert!(prefix_matches("/", "/anything"));
    }
}
