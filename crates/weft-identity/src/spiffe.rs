//! SPIFFE ids: the names workloads prove with their certificates.
//!
//! Weft names a workload after its Kubernetes service account, the way Istio and Linkerd do:
//! `spiffe://<trust domain>/ns/<namespace>/sa/<service account>`. Only that shape is
//! accepted, so every id that reaches policy code has a namespace and a service account and
//! no id can smuggle extra path segments past a prefix check.
//!
//! Path segments are held to the SPIFFE character set (`A-Z a-z 0-9 . - _`, not `.` or `..`),
//! which every Kubernetes namespace and service-account name satisfies; this keeps the id a
//! valid IA5 URI that can go into a certificate unchanged.

use std::fmt;
use std::sync::Arc;

/// The longest SPIFFE id the SPIFFE specification allows, in bytes.
const MAX_URI_LEN: usize = 2048;

const SCHEME: &str = "spiffe://";

/// A workload identity of the form `spiffe://<td>/ns/<ns>/sa/<sa>`.
///
/// Held as the URI itself plus the offsets of its parts: ids are cloned into logs, metrics
/// labels and errors on every connection, and a shared string makes that a refcount bump.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SpiffeId {
    uri: Arc<str>,
    /// `uri[SCHEME.len()..td_end]` is the trust domain.
    td_end: u16,
    /// `uri[ns_start..ns_end]` is the namespace.
    ns_start: u16,
    ns_end: u16,
    /// `uri[sa_start..]` is the service account.
    sa_start: u16,
}

/// Why a string is not a Weft SPIFFE id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("the trust domain is empty; set it to a DNS-like name such as `cluster.local`")]
    EmptyTrustDomain,

    #[error(
        "trust domain {trust_domain:?} contains {ch:?}; only lowercase letters, digits, \
         `.`, `-` and `_` are allowed"
    )]
    InvalidTrustDomain { trust_domain: String, ch: char },

    #[error("the {field} is empty; a SPIFFE id needs both a namespace and a service account")]
    EmptySegment { field: &'static str },

    #[error(
        "the {field} {value:?} contains {ch:?}; only letters, digits, `.`, `-` and `_` are \
         allowed in a SPIFFE id path segment"
    )]
    InvalidSegment {
        field: &'static str,
        value: String,
        ch: char,
    },

    #[error("the {field} may not be `.` or `..`")]
    DotSegment { field: &'static str },

    #[error("{uri:?} is not a SPIFFE id: it must start with `spiffe://`")]
    NotSpiffe { uri: String },

    #[error("{uri:?} is not a Weft SPIFFE id: expected spiffe://<trust domain>/ns/<namespace>/sa/<service account>")]
    UnexpectedPath { uri: String },

    #[error("the SPIFFE id is {len} bytes long; at most {MAX_URI_LEN} are allowed")]
    TooLong { len: usize },
}

// === impl SpiffeId ===

impl SpiffeId {
    /// Builds an id from its parts, validating each.
    pub fn new(
        trust_domain: impl AsRef<str>,
        namespace: impl AsRef<str>,
        service_account: impl AsRef<str>,
    ) -> Result<Self, IdError> {
        let (td, ns, sa) = (
            trust_domain.as_ref(),
            namespace.as_ref(),
            service_account.as_ref(),
        );
        Self::validate_trust_domain(td)?;
        validate_segment("namespace", ns)?;
        validate_segment("service account", sa)?;
        let uri = format!("{SCHEME}{td}/ns/{ns}/sa/{sa}");
        if uri.len() > MAX_URI_LEN {
            return Err(IdError::TooLong { len: uri.len() });
        }
        // All offsets are below MAX_URI_LEN, which fits in a u16.
        let offset = |n: usize| u16::try_from(n).unwrap_or(u16::MAX);
        let td_end = SCHEME.len() + td.len();
        let ns_start = td_end + "/ns/".len();
        let ns_end = ns_start + ns.len();
        Ok(Self {
            td_end: offset(td_end),
            ns_start: offset(ns_start),
            ns_end: offset(ns_end),
            sa_start: offset(ns_end + "/sa/".len()),
            uri: uri.into(),
        })
    }

    /// Parses exactly `spiffe://<td>/ns/<ns>/sa/<sa>`; anything else is refused.
    pub fn parse(uri: &str) -> Result<Self, IdError> {
        let rest = uri.strip_prefix(SCHEME).ok_or_else(|| IdError::NotSpiffe {
            uri: uri.to_string(),
        })?;
        let unexpected = || IdError::UnexpectedPath {
            uri: uri.to_string(),
        };
        let (trust_domain, path) = rest.split_once('/').ok_or_else(unexpected)?;
        let mut segments = path.split('/');
        match (
            segments.next(),
            segments.next(),
            segments.next(),
            segments.next(),
            segments.next(),
        ) {
            (Some("ns"), Some(ns), Some("sa"), Some(sa), None) => Self::new(trust_domain, ns, sa),
            _ => Err(unexpected()),
        }
    }

    /// Checks that `trust_domain` may be used as the trust domain of an id.
    pub fn validate_trust_domain(trust_domain: &str) -> Result<(), IdError> {
        if trust_domain.is_empty() {
            return Err(IdError::EmptyTrustDomain);
        }
        let bad = trust_domain.chars().find(|c| {
            !(c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '-' | '_'))
        });
        match bad {
            Some(ch) => Err(IdError::InvalidTrustDomain {
                trust_domain: trust_domain.to_string(),
                ch,
            }),
            None => Ok(()),
        }
    }

    pub fn trust_domain(&self) -> &str {
        self.part(SCHEME.len(), usize::from(self.td_end))
    }

    pub fn namespace(&self) -> &str {
        self.part(usize::from(self.ns_start), usize::from(self.ns_end))
    }

    pub fn service_account(&self) -> &str {
        self.part(usize::from(self.sa_start), self.uri.len())
    }

    /// The id as a URI, as it appears in a certificate's URI SAN.
    pub fn to_uri(&self) -> String {
        self.uri.to_string()
    }

    /// The id as a URI, borrowed.
    pub fn as_str(&self) -> &str {
        &self.uri
    }

    fn part(&self, start: usize, end: usize) -> &str {
        // The offsets were computed by `new` from the same string, on ASCII boundaries.
        self.uri.get(start..end).unwrap_or_default()
    }
}

impl fmt::Display for SpiffeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.uri)
    }
}

impl fmt::Debug for SpiffeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("SpiffeId").field(&&*self.uri).finish()
    }
}

impl std::str::FromStr for SpiffeId {
    type Err = IdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

fn validate_segment(field: &'static str, value: &str) -> Result<(), IdError> {
    if value.is_empty() {
        return Err(IdError::EmptySegment { field });
    }
    if value == "." || value == ".." {
        return Err(IdError::DotSegment { field });
    }
    let bad = value
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')));
    match bad {
        Some(ch) => Err(IdError::InvalidSegment {
            field,
            value: value.to_string(),
            ch,
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let id = SpiffeId::new("cluster.local", "default", "web").unwrap();
        assert_eq!(id.to_uri(), "spiffe://cluster.local/ns/default/sa/web");
        assert_eq!(SpiffeId::parse(&id.to_uri()).unwrap(), id);
        assert_eq!(id.trust_domain(), "cluster.local");
        assert_eq!(id.namespace(), "default");
        assert_eq!(id.service_account(), "web");
    }

    #[test]
    fn parse_refuses_other_shapes() {
        for bad in [
            "",
            "https://cluster.local/ns/a/sa/b",
            "spiffe://cluster.local",
            "spiffe://cluster.local/",
            "spiffe://cluster.local/ns/a",
            "spiffe://cluster.local/ns/a/sa",
            "spiffe://cluster.local/ns/a/sa/",
            "spiffe://cluster.local/ns/a/sa/b/",
            "spiffe://cluster.local/ns/a/sa/b/extra",
            "spiffe://cluster.local/sa/b/ns/a",
            "spiffe://cluster.local//ns/a/sa/b",
            "spiffe:///ns/a/sa/b",
            "spiffe://Cluster.local/ns/a/sa/b",
            "spiffe://cluster.local/ns/a b/sa/b",
            "spiffe://cluster.local/ns/../sa/b",
            "spiffe://cluster.local/ns/a/sa/b?x=1",
            "spiffe://cluster.local/ns/a/sa/b#frag",
            "spiffe://user@cluster.local/ns/a/sa/b",
            "spiffe://cluster.local:8443/ns/a/sa/b",
        ] {
            assert!(SpiffeId::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn new_validates_parts() {
        assert_eq!(SpiffeId::new("", "a", "b"), Err(IdError::EmptyTrustDomain));
        assert!(matches!(
            SpiffeId::new("td", "", "b"),
            Err(IdError::EmptySegment { field: "namespace" })
        ));
        assert!(matches!(
            SpiffeId::new("td", "a", "b/c"),
            Err(IdError::InvalidSegment { ch: '/', .. })
        ));
        assert!(SpiffeId::new("my_td-1.example", "kube-system", "coredns.v1").is_ok());
        let long = "a".repeat(MAX_URI_LEN);
        assert!(matches!(
            SpiffeId::new("td", "ns", long),
            Err(IdError::TooLong { .. })
        ));
    }

    #[test]
    fn errors_say_what_to_do() {
        let err = SpiffeId::parse("spiffe://td/ns/a").unwrap_err().to_string();
        assert!(err.contains("spiffe://<trust domain>/ns/<namespace>/sa/<service account>"));
    }
}
