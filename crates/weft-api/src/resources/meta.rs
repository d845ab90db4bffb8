//! Kubernetes object metadata, as Weft reads it.
//!
//! Weft accepts the metadata fields that `kubectl get -o yaml` writes (uid, resourceVersion,
//! managedFields...) so that objects exported from a cluster load unchanged, but only `name`,
//! `namespace`, `labels`, `annotations` and `creationTimestamp` mean anything to it.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::Spanned;

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ObjectMeta {
    pub name: Spanned<String>,
    #[serde(default)]
    pub namespace: Option<Spanned<String>>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// Used to break ties in route precedence, as the Gateway API specifies.
    #[serde(default)]
    pub creation_timestamp: Option<String>,

    // Written by the API server; accepted so exported objects load, and otherwise unused.
    #[serde(default, rename = "uid")]
    pub _uid: Option<serde::de::IgnoredAny>,
    #[serde(default, rename = "resourceVersion")]
    pub _resource_version: Option<serde::de::IgnoredAny>,
    #[serde(default, rename = "generation")]
    pub _generation: Option<serde::de::IgnoredAny>,
    #[serde(default, rename = "managedFields")]
    pub _managed_fields: Option<serde::de::IgnoredAny>,
    #[serde(default, rename = "ownerReferences")]
    pub _owner_references: Option<serde::de::IgnoredAny>,
    #[serde(default, rename = "finalizers")]
    pub _finalizers: Option<serde::de::IgnoredAny>,
}

impl ObjectMeta {
    pub fn name(&self) -> &str {
        &self.name.value
    }

    /// The object's namespace, or `default` as kubectl would apply it.
    pub fn namespace(&self) -> &str {
        self.namespace
            .as_ref()
            .map(|n| n.value.as_str())
            .unwrap_or(crate::DEFAULT_NAMESPACE)
    }
}

/// A port number or a port name, as in a Service's `targetPort`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(untagged)]
pub enum IntOrString {
    Int(u32),
    String(String),
}
