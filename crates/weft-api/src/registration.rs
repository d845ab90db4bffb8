//! Workloads registered at run time (`weft run`, `weft up`): what a runner sends the control
//! plane, how it is checked, and the resources it stands for — a `WorkloadEntry`, and a
//! `Service` of the registration's service name when the declared resources have none. The
//! resources are produced as YAML and read by the same loader as files, so a registration
//! gets exactly the validation a file would; [`check`] first keeps every value to characters
//! that cannot change the YAML's structure.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::resources::Resource;
use crate::Diagnostics;

/// What a runner registers: the body of `PUT /workloads/{namespace}/{name}`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Registration {
    /// The Service the workload serves (its `app` label).
    pub service: String,
    #[serde(default)]
    pub service_account: Option<String>,
    /// The workload's address (its network namespace's address on the host bridge).
    pub address: IpAddr,
    /// The application's ports.
    pub ports: Vec<u16>,
    /// Extra labels (e.g. `version: v2`); `app` is the service name.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// `appProtocol` of the ports of an implicit Service (none: detected).
    #[serde(default)]
    pub app_protocol: Option<String>,
    /// Who holds the lease (a runner's random id): another owner cannot take it over.
    pub owner: String,
    /// Lease length; the runner renews well before it ends.
    pub ttl_seconds: u64,
    /// The joined host the workload runs on (`weft host join`): its address must lie in
    /// that host's block. None on a single host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// The host's tunnel, where proxies on other hosts reach the workload. The control plane
    /// sets it from the host's record; whatever a runner sends is replaced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tunnel: Option<std::net::SocketAddr>,
}

/// Why a registration is refused before it reaches the loader.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct InvalidRegistration(pub String);

/// The resources `registrations` (namespace, name, registration) stand for, given the
/// `declared` ones (a Service is made only for service names they do not declare).
pub fn resources<'a>(
    registrations: impl Iterator<Item = (&'a str, &'a str, &'a Registration)>,
    declared: &[Resource],
) -> (Vec<Resource>, Diagnostics) {
    let declared_services: BTreeSet<(&str, &str)> = declared
        .iter()
        .filter(|r| matches!(r, Resource::Service(_)))
        .map(|r| (r.meta().namespace(), r.meta().name()))
        .collect();
    let mut text = String::new();
    // (namespace, service) → the ports and protocol its registrations declare.
    type Ports<'a> = (BTreeSet<u16>, Option<&'a str>);
    let mut implicit: BTreeMap<(&str, &str), Ports> = BTreeMap::new();
    for (ns, name, r) in registrations {
        text.push_str(&workload_entry_yaml(ns, name, r));
        if !declared_services.contains(&(ns, r.service.as_str())) {
            let entry = implicit.entry((ns, r.service.as_str())).or_default();
            entry.0.extend(r.ports.iter().copied());
            entry.1 = entry.1.or(r.app_protocol.as_deref());
        }
    }
    for ((ns, service), (ports, protocol)) in implicit {
        text.push_str(&service_yaml(ns, service, &ports, protocol));
    }
    crate::load::load_str(Path::new("<registered workloads>"), &text)
}

/// Checks what a runner sent before it reaches the YAML loader: names are DNS labels, labels
/// are Kubernetes label keys and values, and there is at least one valid port.
pub fn check(namespace: &str, name: &str, r: &Registration) -> Result<(), InvalidRegistration> {
    let invalid = |m: String| Err(InvalidRegistration(m));
    for (what, value) in [
        ("namespace", namespace),
        ("name", name),
        ("service", r.service.as_str()),
        (
            "serviceAccount",
            r.service_account.as_deref().unwrap_or("default"),
        ),
    ] {
        if !is_dns_label(value) {
            return invalid(format!(
                "{what} `{value}` is not a DNS label (lower-case letters, digits and '-', at most 63, starting and ending with a letter or digit)"
            ));
        }
    }
    if r.ports.is_empty() || r.ports.contains(&0) || r.ports.len() > 64 {
        return invalid("ports: give between 1 and 64 ports, none of them 0".into());
    }
    if r.labels.len() > 32 {
        return invalid("labels: at most 32".into());
    }
    for (k, v) in &r.labels {
        let key_ok = !k.is_empty() && k.len() <= 253 && k.bytes().all(label_byte_or_slash);
        let value_ok = v.len() <= 63 && v.bytes().all(label_byte);
        if !key_ok || !value_ok || k == "app" {
            return invalid(format!(
                "label `{k}: {v}`: keys and values are letters, digits, '-', '_' and '.', values at most 63 long; `app` is the service name"
            ));
        }
    }
    if let Some(p) = &r.app_protocol {
        if crate::validate::protocol_from_app_protocol(p).is_none() {
            return invalid(format!(
                "appProtocol `{p}` is not one Weft knows (http, http2, grpc, tcp)"
            ));
        }
    }
    if r.owner.is_empty() || r.owner.len() > 128 || !r.owner.bytes().all(label_byte) {
        return invalid("owner: 1 to 128 letters, digits, '-', '_' or '.'".into());
    }
    if let Some(host) = r.host.as_deref().filter(|h| !is_dns_label(h)) {
        return invalid(format!("host `{host}` is not a host name (a DNS label)"));
    }
    Ok(())
}

/// Lower-case letters, digits and '-', 1 to 63 long, starting and ending with a letter or
/// digit (an RFC 1123 label, as Kubernetes names are).
pub fn is_dns_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

fn label_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.')
}

fn label_byte_or_slash(c: u8) -> bool {
    label_byte(c) || c == b'/'
}

// Values were checked by `check` to hold only label characters, so they need no quoting;
// they are JSON-quoted anyway so that the YAML reads them as strings (`1` stays "1").
fn q(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}

fn workload_entry_yaml(ns: &str, name: &str, r: &Registration) -> String {
    let mut labels = format!("app: {}", q(&r.service));
    for (k, v) in &r.labels {
        labels.push_str(&format!(", {}: {}", q(k), q(v)));
    }
    let sa = r.service_account.as_deref().unwrap_or("default");
    // A joined host is a network of its own: its tunnel is how other hosts reach it.
    let network = r
        .host
        .as_deref()
        .map(|h| format!(", network: {}", q(h)))
        .unwrap_or_default();
    let annotations = r
        .tunnel
        .filter(|_| r.host.is_some())
        .map(|t| {
            format!(
                ", annotations: {{{}: {}}}",
                q(crate::validate::TUNNEL_ANNOTATION),
                q(&t.to_string())
            )
        })
        .unwrap_or_default();
    format!(
        "---\napiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata: {{name: {}, namespace: {}{annotations}}}\nspec: {{address: {}, serviceAccount: {}, labels: {{{labels}}}{network}}}\n",
        q(name),
        q(ns),
        q(&r.address.to_string()),
        q(sa),
    )
}

fn service_yaml(ns: &str, service: &str, ports: &BTreeSet<u16>, protocol: Option<&str>) -> String {
    let ports: Vec<String> = ports
        .iter()
        .map(|p| match protocol {
            Some(proto) => format!("{{name: p{p}, port: {p}, appProtocol: {}}}", q(proto)),
            None => format!("{{name: p{p}, port: {p}}}"),
        })
        .collect();
    format!(
        "---\napiVersion: v1\nkind: Service\nmetadata: {{name: {}, namespace: {}}}\nspec: {{selector: {{app: {}}}, ports: [{}]}}\n",
        q(service),
        q(ns),
        q(service),
        ports.join(", ")
    )
}
