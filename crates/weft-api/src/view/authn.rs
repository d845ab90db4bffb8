//! RequestAuthentication as a proxy holds it: for each policy that applies to its workload,
//! the JWT rules with their key sets in hand (inline `jwks`, or fetched from `jwksUri` by the
//! control plane) and the token locations made explicit (the defaults, `Authorization:
//! Bearer` and `access_token`, written out when a rule names none).

use serde::{Deserialize, Serialize};

/// One RequestAuthentication that applies to a proxy's workload.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JwtPolicyView {
    pub namespace: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub source: String,
    /// The workload ports it covers when attached to a Service; `None`: every port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ports: Option<Vec<u16>>,
    pub rules: Vec<JwtRuleView>,
}

impl JwtPolicyView {
    pub fn label(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

/// One `jwtRules` entry.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JwtRuleView {
    pub issuer: String,
    /// Accepted `aud` values; empty: no audience check.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub audiences: Vec<String>,
    /// The key set (JWKS JSON): inline, or as fetched from `jwks_uri`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    /// Why there is no key set (a fetch that failed): tokens this rule would check are
    /// refused until there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_error: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub from_headers: Vec<JwtHeaderView>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub from_params: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub from_cookies: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_payload_to_header: Option<String>,
    #[serde(default)]
    pub forward_original_token: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub output_claim_to_headers: Vec<ClaimToHeaderView>,
    /// Claims matched word by word (`scope` and `permission` always are).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub space_delimited_claims: Vec<String>,
    /// Where the rule was written (`file:line`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub source: String,
}

/// A header a token is read from: its (lower-case) name and the prefix before the token.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JwtHeaderView {
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub prefix: String,
}

/// A claim copied into a request header; `claim` is a path (`a.b.c` split at the dots).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClaimToHeaderView {
    pub header: String,
    pub claim: Vec<String>,
}
