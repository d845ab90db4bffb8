//! What authorization looks at: the connection (who the peer proved to be, addresses, port,
//! SNI) and, for HTTP, the request (method, authority, normalized path, headers, and the
//! identity its JWT proved).

use std::net::IpAddr;

use http::HeaderMap;

/// The peer's verified identity; all `None` for plaintext.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PeerAttrs {
    /// The SPIFFE id without `spiffe://`: `cluster.local/ns/shop/sa/frontend`.
    pub principal: Option<String>,
    pub namespace: Option<String>,
    /// `namespace/service-account`.
    pub service_account: Option<String>,
}

impl PeerAttrs {
    /// From a SPIFFE id URI (`spiffe://td/ns/x/sa/y`); anything else is no identity.
    pub fn from_spiffe(uri: &str) -> PeerAttrs {
        let Some(principal) = uri.strip_prefix("spiffe://") else {
            return PeerAttrs::default();
        };
        let parts: Vec<&str> = principal.split('/').collect();
        let (namespace, service_account) = match parts.as_slice() {
            [_, "ns", ns, "sa", sa] => (Some(ns.to_string()), Some(format!("{ns}/{sa}"))),
            _ => (None, None),
        };
        PeerAttrs {
            principal: Some(principal.to_string()),
            namespace,
            service_account,
        }
    }
}

/// A connection's attributes.
#[derive(Clone, Debug)]
pub struct ConnectionAttrs {
    pub peer: PeerAttrs,
    pub source_ip: IpAddr,
    pub destination_ip: IpAddr,
    /// The application port the connection is for.
    pub destination_port: u16,
    /// The server name the peer asked for in its TLS handshake.
    pub sni: Option<String>,
}

/// The identity a verified JWT gives a request.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RequestAuth {
    /// `<iss>/<sub>`.
    pub principal: String,
    pub audiences: Vec<String>,
    /// `azp`.
    pub presenter: Option<String>,
    /// The whole payload, for `request.auth.claims[...]`.
    pub claims: serde_json::Value,
    /// Claims whose string values are lists separated by spaces (`scope`, `permission`, and
    /// those a rule names in `spaceDelimitedClaims`).
    pub space_delimited: Vec<String>,
}

impl RequestAuth {
    /// The string values of a (nested) claim: a string, the strings of a list, or for a
    /// space-delimited claim, its words. Empty when absent or of another type.
    pub fn claim(&self, path: &[String]) -> Vec<&str> {
        let mut v = &self.claims;
        for key in path {
            match v.get(key) {
                Some(next) => v = next,
                None => return Vec::new(),
            }
        }
        let split = path.len() == 1
            && (matches!(path[0].as_str(), "scope" | "permission")
                || self.space_delimited.contains(&path[0]));
        match v {
            serde_json::Value::String(s) if split => s.split_whitespace().collect(),
            serde_json::Value::String(s) => vec![s.as_str()],
            serde_json::Value::Array(items) => items.iter().filter_map(|i| i.as_str()).collect(),
            _ => Vec::new(),
        }
    }
}

/// An HTTP request's attributes.
#[derive(Clone, Copy, Debug)]
pub struct RequestAttrs<'a> {
    pub method: &'a str,
    /// `Host` / `:authority`.
    pub host: &'a str,
    /// The normalized path, without the query.
    pub path: &'a str,
    pub headers: &'a HeaderMap,
    /// Present when a JWT was verified.
    pub auth: Option<&'a RequestAuth>,
}

impl RequestAttrs<'_> {
    /// A header's values joined with `,` (as Envoy presents repeated headers); `None` when
    /// absent. One value (the usual case) is borrowed, not copied.
    pub fn header(&self, name: &str) -> Option<std::borrow::Cow<'_, str>> {
        let mut values = self.headers.get_all(name).iter();
        let first = values.next()?;
        let Some(second) = values.next() else {
            return Some(String::from_utf8_lossy(first.as_bytes()));
        };
        let mut joined = String::from_utf8_lossy(first.as_bytes()).into_owned();
        for v in std::iter::once(second).chain(values) {
            joined.push(',');
            joined.push_str(&String::from_utf8_lossy(v.as_bytes()));
        }
        Some(std::borrow::Cow::Owned(joined))
    }
}
