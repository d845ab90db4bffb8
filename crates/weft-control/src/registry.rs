//! Workloads registered at run time (by `weft run` and `weft up`), beside the directory's.
//!
//! A registration is a lease: its runner renews it every few seconds, and one that is not
//! renewed within its TTL (the runner crashed, its host went away) expires and leaves the mesh,
//! so a crash never leaves a dead endpoint behind for long. Each registration becomes a
//! `WorkloadEntry`, and a `Service` of the registration's service name when the directory
//! declares none (so `weft run --service reviews --port 9080` is reachable as `reviews:9080`
//! without any YAML). The generated resources go through the same loader and validator as the
//! files: a registration that would make the mesh invalid is refused with the validator's
//! errors, and the mesh in effect does not change.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use weft_api::resources::Resource;

/// Shortest and longest lease a runner may ask for.
const MIN_TTL: Duration = Duration::from_secs(3);
const MAX_TTL: Duration = Duration::from_secs(600);
/// Most registrations one control plane holds (a bound against a runaway script).
pub const MAX_REGISTRATIONS: usize = 10_000;

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
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RegistryError {
    #[error("{0}")]
    Invalid(String),
    #[error("workload {0} is already registered by another runner (owner {1}); pick another name, or stop it first")]
    Taken(String, String),
    #[error("the control plane holds {MAX_REGISTRATIONS} registrations already")]
    Full,
    #[error("workload {0} is not registered")]
    Unknown(String),
}

#[derive(Clone, Debug)]
struct Lease {
    registration: Registration,
    expires: Instant,
}

/// The live registrations, by `(namespace, name)`.
#[derive(Clone, Debug, Default)]
pub struct Registry {
    leases: BTreeMap<(String, String), Lease>,
}

/// What [`Registry::upsert`] changed.
#[derive(Debug, PartialEq, Eq)]
pub enum Upsert {
    /// A new registration, or one whose content changed: the model must be rebuilt.
    Changed,
    /// The same registration again: only its lease was extended.
    Renewed,
}

impl Registry {
    pub fn len(&self) -> usize {
        self.leases.len()
    }

    pub fn is_empty(&self) -> bool {
        self.leases.is_empty()
    }

    /// Adds or renews a registration (checked first; see [`check`]).
    pub fn upsert(
        &mut self,
        namespace: &str,
        name: &str,
        registration: Registration,
        now: Instant,
    ) -> Result<Upsert, RegistryError> {
        check(namespace, name, &registration)?;
        let key = (namespace.to_string(), name.to_string());
        let ttl = Duration::from_secs(registration.ttl_seconds).clamp(MIN_TTL, MAX_TTL);
        let full = self.leases.len() >= MAX_REGISTRATIONS;
        match self.leases.get_mut(&key) {
            Some(lease) if lease.registration.owner != registration.owner => {
                Err(RegistryError::Taken(
                    format!("{namespace}/{name}"),
                    lease.registration.owner.clone(),
                ))
            }
            Some(lease) => {
                lease.expires = now + ttl;
                if lease.registration == registration {
                    Ok(Upsert::Renewed)
                } else {
                    lease.registration = registration;
                    Ok(Upsert::Changed)
                }
            }
            None if full => Err(RegistryError::Full),
            None => {
                self.leases.insert(
                    key,
                    Lease {
                        registration,
                        expires: now + ttl,
                    },
                );
                Ok(Upsert::Changed)
            }
        }
    }

    /// Removes a registration; `owner` (when given) must be the one that holds it.
    pub fn remove(
        &mut self,
        namespace: &str,
        name: &str,
        owner: Option<&str>,
    ) -> Result<(), RegistryError> {
        let key = (namespace.to_string(), name.to_string());
        match self.leases.get(&key) {
            None => Err(RegistryError::Unknown(format!("{namespace}/{name}"))),
            Some(l) if owner.is_some_and(|o| o != l.registration.owner) => Err(
                RegistryError::Taken(format!("{namespace}/{name}"), l.registration.owner.clone()),
            ),
            Some(_) => {
                self.leases.remove(&key);
                Ok(())
            }
        }
    }

    /// Drops the leases that ended before `now`; returns their `namespace/name`s.
    pub fn expire(&mut self, now: Instant) -> Vec<String> {
        let gone: Vec<(String, String)> = self
            .leases
            .iter()
            .filter(|(_, l)| l.expires <= now)
            .map(|(k, _)| k.clone())
            .collect();
        for k in &gone {
            self.leases.remove(k);
        }
        gone.into_iter()
            .map(|(ns, n)| format!("{ns}/{n}"))
            .collect()
    }

    /// The registrations, for `GET /workloads`.
    pub fn list(&self) -> Vec<serde_json::Value> {
        self.leases
            .iter()
            .map(|((ns, name), l)| {
                serde_json::json!({
                    "namespace": ns,
                    "name": name,
                    "service": l.registration.service,
                    "address": l.registration.address,
                    "ports": l.registration.ports,
                    "labels": l.registration.labels,
                    "owner": l.registration.owner,
                })
            })
            .collect()
    }

    /// The resources the registrations stand for: a WorkloadEntry each, and a Service per
    /// registered service name that `declared` (the directory's resources) does not have.
    pub fn resources(&self, declared: &[Resource]) -> (Vec<Resource>, weft_api::Diagnostics) {
        let declared_services: BTreeSet<(&str, &str)> = declared
            .iter()
            .filter(|r| matches!(r, Resource::Service(_)))
            .map(|r| (r.meta().namespace(), r.meta().name()))
            .collect();
        let mut text = String::new();
        // (namespace, service) → the ports and protocol its registrations declare.
        type Ports<'a> = (BTreeSet<u16>, Option<&'a str>);
        let mut implicit: BTreeMap<(&str, &str), Ports> = BTreeMap::new();
        for ((ns, name), lease) in &self.leases {
            let r = &lease.registration;
            text.push_str(&workload_entry_yaml(ns, name, r));
            if !declared_services.contains(&(ns.as_str(), r.service.as_str())) {
                let entry = implicit
                    .entry((ns.as_str(), r.service.as_str()))
                    .or_default();
                entry.0.extend(r.ports.iter().copied());
                entry.1 = entry.1.or(r.app_protocol.as_deref());
            }
        }
        for ((ns, service), (ports, protocol)) in implicit {
            text.push_str(&service_yaml(ns, service, &ports, protocol));
        }
        weft_api::load::load_str(Path::new("<registered workloads>"), &text)
    }
}

/// Checks what a runner sent before it reaches the YAML loader: names are DNS labels, labels
/// are Kubernetes label keys and values, and there is at least one valid port.
pub fn check(namespace: &str, name: &str, r: &Registration) -> Result<(), RegistryError> {
    let invalid = |m: String| Err(RegistryError::Invalid(m));
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
        if weft_api::validate::protocol_from_app_protocol(p).is_none() {
            return invalid(format!(
                "appProtocol `{p}` is not one Weft knows (http, http2, grpc, tcp)"
            ));
        }
    }
    if r.owner.is_empty() || r.owner.len() > 128 || !r.owner.bytes().all(label_byte) {
        return invalid("owner: 1 to 128 letters, digits, '-', '_' or '.'".into());
    }
    Ok(())
}

fn is_dns_label(s: &str) -> bool {
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
    format!(
        "---\napiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata: {{name: {}, namespace: {}}}\nspec: {{address: {}, serviceAccount: {}, labels: {{{labels}}}}}\n",
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

#[cfg(test)]
mod tests;
