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

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

pub use weft_api::registration::{check, InvalidRegistration, Registration};
use weft_api::resources::Resource;

/// Shortest and longest lease a runner may ask for.
const MIN_TTL: Duration = Duration::from_secs(3);
const MAX_TTL: Duration = Duration::from_secs(600);
/// Most registrations one control plane holds (a bound against a runaway script).
pub const MAX_REGISTRATIONS: usize = 10_000;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RegistryError {
    #[error(transparent)]
    Invalid(#[from] InvalidRegistration),
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

    /// Sets a registration as the replicated store holds it: etcd ends it (its lease), so it
    /// never expires here.
    pub fn set(
        &mut self,
        namespace: &str,
        name: &str,
        registration: Registration,
    ) -> Result<(), RegistryError> {
        check(namespace, name, &registration)?;
        let key = (namespace.to_string(), name.to_string());
        if !self.leases.contains_key(&key) && self.leases.len() >= MAX_REGISTRATIONS {
            return Err(RegistryError::Full);
        }
        let now = Instant::now();
        let expires = now
            .checked_add(Duration::from_secs(10 * 365 * 24 * 3600))
            .unwrap_or(now + MAX_TTL);
        self.leases.insert(
            key,
            Lease {
                registration,
                expires,
            },
        );
        Ok(())
    }

    /// Forgets a registration (etcd ended it); true when there was one.
    pub fn forget(&mut self, namespace: &str, name: &str) -> bool {
        self.leases
            .remove(&(namespace.to_string(), name.to_string()))
            .is_some()
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
                    "host": l.registration.host,
                })
            })
            .collect()
    }

    /// The resources the registrations stand for (see [`weft_api::registration::resources`]).
    pub fn resources(&self, declared: &[Resource]) -> (Vec<Resource>, weft_api::Diagnostics) {
        weft_api::registration::resources(
            self.leases
                .iter()
                .map(|((ns, name), l)| (ns.as_str(), name.as_str(), &l.registration)),
            declared,
        )
    }
}

#[cfg(test)]
mod tests;
