//! Where things live in etcd, under one prefix (`--etcd-prefix`, default `/weft`):
//!
//! | key | value |
//! |---|---|
//! | `<p>/resources/<Kind>/<namespace>/<name>` | one resource's YAML document (written by `weft apply`) |
//! | `<p>/meta/resources` | bumped by every `weft apply` and `weft delete`: the version a change was validated against |
//! | `<p>/workloads/<namespace>/<name>` | a registration (JSON), attached to an etcd lease |
//! | `<p>/tokens/<id>` | a join token's SHA-256, attached to a lease that ends after it |
//! | `<p>/ca/authority` | the shared CA (JSON; its key sealed, [`super::seal`]) |
//! | `<p>/election/singleton/<lease>` | the candidates for the singleton work (etcd's election API) |
//! | `<p>/hosts/<name>`, `<p>/blocks/<block>` | a joined host's record and its block's claim ([`super::hosts`]) |
//! | `<p>/host-credentials/<name>` | the SHA-256 of a joined host's credential, and of the one before it ([`super::host_credentials`]) |
//!
//! Cluster-scoped kinds use `_` as their namespace.

use weft_api::resources::{Kind, Resource};

/// Namespace segment of cluster-scoped resources.
const NO_NAMESPACE: &str = "_";

#[derive(Clone, Debug)]
pub struct Keys {
    prefix: String,
}

/// What a key under the prefix names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyOf {
    Resource {
        kind: Kind,
        namespace: String,
        name: String,
    },
    Workload {
        namespace: String,
        name: String,
    },
    /// The resources' version key.
    ResourcesVersion,
    /// Anything else under the prefix (ignored).
    Other,
}

impl Keys {
    /// Keys under `prefix` (a trailing `/` is dropped).
    pub fn new(prefix: &str) -> Keys {
        Keys {
            prefix: prefix.trim_end_matches('/').to_string(),
        }
    }

    /// Everything Weft keeps: the prefix with its `/`.
    pub fn root(&self) -> String {
        format!("{}/", self.prefix)
    }

    pub fn resources(&self) -> String {
        format!("{}/resources/", self.prefix)
    }

    pub fn resources_version(&self) -> String {
        format!("{}/meta/resources", self.prefix)
    }

    pub fn workloads(&self) -> String {
        format!("{}/workloads/", self.prefix)
    }

    pub fn resource(&self, r: &Resource) -> String {
        let kind = r.kind();
        let ns = if kind.is_namespaced() {
            r.meta().namespace()
        } else {
            NO_NAMESPACE
        };
        format!(
            "{}{}/{ns}/{}",
            self.resources(),
            kind.name(),
            r.meta().name()
        )
    }

    /// A joined host's record.
    pub fn host(&self, name: &str) -> String {
        format!("{}/hosts/{name}", self.prefix)
    }

    pub fn hosts(&self) -> String {
        format!("{}/hosts/", self.prefix)
    }

    /// The claims on workload blocks (each key names a block, its value the holder).
    pub fn blocks(&self) -> String {
        format!("{}/blocks/", self.prefix)
    }

    pub fn ca(&self) -> String {
        format!("{}/ca/authority", self.prefix)
    }

    /// The election's name (etcd's election API keeps each candidate under it).
    pub fn election(&self) -> String {
        format!("{}/election/singleton", self.prefix)
    }

    pub fn workload(&self, namespace: &str, name: &str) -> String {
        format!("{}{namespace}/{name}", self.workloads())
    }

    /// What `key` names.
    pub fn parse(&self, key: &str) -> KeyOf {
        if key == self.resources_version() {
            return KeyOf::ResourcesVersion;
        }
        if let Some(rest) = key.strip_prefix(&self.resources()) {
            let mut parts = rest.splitn(3, '/');
            if let (Some(kind), Some(ns), Some(name)) = (parts.next(), parts.next(), parts.next()) {
                if let Some(kind) = Kind::from_name(kind) {
                    if !name.is_empty() && !name.contains('/') {
                        return KeyOf::Resource {
                            kind,
                            namespace: ns.to_string(),
                            name: name.to_string(),
                        };
                    }
                }
            }
            return KeyOf::Other;
        }
        if let Some(rest) = key.strip_prefix(&self.workloads()) {
            if let Some((ns, name)) = rest.split_once('/') {
                if !ns.is_empty() && !name.is_empty() && !name.contains('/') {
                    return KeyOf::Workload {
                        namespace: ns.to_string(),
                        name: name.to_string(),
                    };
                }
            }
        }
        KeyOf::Other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip() {
        let keys = Keys::new("/weft/");
        assert_eq!(keys.root(), "/weft/");
        assert_eq!(
            keys.parse("/weft/resources/HTTPRoute/shop/reviews"),
            KeyOf::Resource {
                kind: Kind::HttpRoute,
                namespace: "shop".into(),
                name: "reviews".into()
            }
        );
        assert_eq!(
            keys.parse(&keys.workload("shop", "web-0")),
            KeyOf::Workload {
                namespace: "shop".into(),
                name: "web-0".into()
            }
        );
        assert_eq!(keys.parse("/weft/meta/resources"), KeyOf::ResourcesVersion);
        assert_eq!(keys.parse("/weft/resources/NoSuchKind/a/b"), KeyOf::Other);
        assert_eq!(keys.parse("/weft/resources/Service/a/b/c"), KeyOf::Other);
        assert_eq!(keys.parse("/weft/workloads/a"), KeyOf::Other);
    }
}
