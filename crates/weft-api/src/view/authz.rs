//! AuthorizationPolicy as a proxy holds it: each policy that applies to the proxy's workload,
//! its values already parsed into the match forms Istio defines ([`super::authz_match`]), so
//! that the proxy (and `weft authz check`) only evaluate and never parse.

use serde::{Deserialize, Serialize};

pub use super::authz_match::{ConditionKey, IpBlock, PathMatch, Segment, StringMatch};

/// What a matching policy does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum AuthzAction {
    Allow,
    Deny,
    /// Logged and counted; never changes the decision.
    Audit,
}

impl AuthzAction {
    pub fn name(self) -> &'static str {
        match self {
            AuthzAction::Allow => "ALLOW",
            AuthzAction::Deny => "DENY",
            AuthzAction::Audit => "AUDIT",
        }
    }
}

/// One AuthorizationPolicy that applies to a proxy's workload.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthzPolicyView {
    pub namespace: String,
    pub name: String,
    pub action: AuthzAction,
    /// Where it was written (`file:line`), for explanations.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub source: String,
    /// The workload ports it covers when attached to a Service (`targetRefs`): the ports
    /// that Service sends to. `None`: every port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ports: Option<Vec<u16>>,
    /// `None`: `rules` absent, which never matches. `Some([])` cannot be written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rules: Option<Vec<AuthzRuleView>>,
}

impl AuthzPolicyView {
    /// `namespace/name`.
    pub fn label(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

/// One rule: every `from` is ORed, every `to` is ORed, every `when` is ANDed, and the three
/// are ANDed. An empty rule matches every request.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthzRuleView {
    /// Where the rule was written (`file:line`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub source: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub from: Vec<SourceView>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub to: Vec<OperationView>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub when: Vec<ConditionView>,
}

/// A list of values and a list of values that must not match: a value matches when it
/// matches one of `values` (or `values` is empty) and none of `not_values`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", bound(deserialize = "T: Deserialize<'de>"))]
pub struct Field<T> {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<T>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_values: Vec<T>,
}

impl<T> Default for Field<T> {
    fn default() -> Self {
        Field {
            values: Vec::new(),
            not_values: Vec::new(),
        }
    }
}

impl<T> Field<T> {
    /// True when the field was not written at all.
    pub fn is_unset(&self) -> bool {
        self.values.is_empty() && self.not_values.is_empty()
    }
}

/// Who the request comes from. Every set field must match.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SourceView {
    /// Peer identities, `<trust-domain>/ns/<ns>/sa/<sa>` (the SPIFFE id without `spiffe://`).
    #[serde(default, skip_serializing_if = "Field::is_unset")]
    pub principals: Field<StringMatch>,
    /// JWT identities, `<iss>/<sub>`.
    #[serde(default, skip_serializing_if = "Field::is_unset")]
    pub request_principals: Field<StringMatch>,
    /// The peer's namespace, from its SPIFFE id.
    #[serde(default, skip_serializing_if = "Field::is_unset")]
    pub namespaces: Field<StringMatch>,
    /// The peer's service account as `namespace/name` (exact).
    #[serde(default, skip_serializing_if = "Field::is_unset")]
    pub service_accounts: Field<String>,
    /// The connection's source address.
    #[serde(default, skip_serializing_if = "Field::is_unset")]
    pub ip_blocks: Field<IpBlock>,
    /// The original client address (Weft trusts no forwarding headers: the source address).
    #[serde(default, skip_serializing_if = "Field::is_unset")]
    pub remote_ip_blocks: Field<IpBlock>,
}

/// What the request asks for. Every set field must match.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OperationView {
    /// `Host` / `:authority`, compared case-insensitively.
    #[serde(default, skip_serializing_if = "Field::is_unset")]
    pub hosts: Field<StringMatch>,
    /// The application port.
    #[serde(default, skip_serializing_if = "Field::is_unset")]
    pub ports: Field<u16>,
    #[serde(default, skip_serializing_if = "Field::is_unset")]
    pub methods: Field<StringMatch>,
    /// The normalized path, without the query.
    #[serde(default, skip_serializing_if = "Field::is_unset")]
    pub paths: Field<PathMatch>,
}

/// A `when` condition: an attribute and the values it may (and may not) have, typed by key.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConditionView {
    pub key: ConditionKey,
    /// Values of string keys.
    #[serde(default, skip_serializing_if = "Field::is_unset")]
    pub strings: Field<StringMatch>,
    /// Values of address keys (`source.ip`, `remote.ip`, `destination.ip`).
    #[serde(default, skip_serializing_if = "Field::is_unset")]
    pub ips: Field<IpBlock>,
    /// Values of `destination.port`.
    #[serde(default, skip_serializing_if = "Field::is_unset")]
    pub ports: Field<u16>,
}
