//! The store's side of the replicated source ([`crate::etcd`]): taking in what etcd reports,
//! and checking a change or a registration before it is written there. Every replica builds
//! its model from etcd's keys exactly as the directory store builds it from files.

use std::time::Instant;

use super::source::Source;
use super::{build, load_with, Inputs, RegisterError, Store, StoreStatus};
use weft_api::model::Model;

use crate::etcd::keys::{KeyOf, Keys};
use crate::etcd::stored::{self, Stored};
use crate::registry::{Registration, Registry, Upsert};

/// One key etcd reported changed (or one key of a full read).
#[derive(Clone, Debug)]
pub enum StoredChange {
    Put {
        key: String,
        value: String,
        mod_revision: i64,
    },
    Delete {
        key: String,
    },
}

/// The source, registry and model of a first full read of etcd, or every error.
pub(crate) fn open_etcd(
    keys: Keys,
    changes: Vec<StoredChange>,
) -> Result<(Source, Registry, Model, Vec<String>), Vec<String>> {
    let mut stored = Stored::default();
    let mut registry = Registry::default();
    take_in(&keys, &mut stored, &mut registry, changes, true);
    let mut source = Source::Etcd { keys, stored };
    let (model, warnings) = load_with(&mut source, &registry, &Default::default())?;
    Ok((source, registry, model, warnings))
}

/// Applies etcd's changes to the stored resources and the registry; whether the model may
/// have changed (a join token's key, say, changes nothing the model is built from).
fn take_in(
    keys: &Keys,
    stored: &mut Stored,
    registry: &mut Registry,
    changes: Vec<StoredChange>,
    full: bool,
) -> bool {
    let mut relevant = full;
    if full {
        stored.clear();
        stored.version = 0;
        *registry = Registry::default();
    }
    for change in changes {
        match change {
            StoredChange::Put {
                key,
                value,
                mod_revision,
            } => match keys.parse(&key) {
                KeyOf::ResourcesVersion => stored.version = mod_revision,
                KeyOf::Workload { namespace, name } => {
                    relevant = true;
                    let registration = serde_json::from_str::<Registration>(&value)
                        .map_err(|e| e.to_string())
                        .and_then(|r| {
                            registry
                                .set(&namespace, &name, r)
                                .map_err(|e| e.to_string())
                        });
                    if let Err(e) = registration {
                        tracing::warn!(%key, error = %e, "a registration in etcd is not valid; left out");
                    }
                }
                // Anything under `resources/`, even a key naming no kind: an error of the
                // whole set, as a stray file in the directory is.
                _ if key.starts_with(&keys.resources()) => {
                    relevant = true;
                    stored.put(keys, &key, &value);
                }
                _ => {}
            },
            StoredChange::Delete { key } => match keys.parse(&key) {
                KeyOf::ResourcesVersion => stored.version = 0,
                KeyOf::Workload { namespace, name } => {
                    relevant = true;
                    if registry.forget(&namespace, &name) {
                        tracing::info!(workload = %format!("{namespace}/{name}"), "registration ended (deregistered, or its lease expired)");
                    }
                }
                _ => relevant |= stored.delete(&key),
            },
        }
    }
    relevant
}

impl Store {
    /// Takes in a batch from etcd (a `full` read replaces everything held) and rebuilds: a
    /// model that validates is published; one that does not is refused, logged and shown on
    /// the admin endpoint, and the model in effect stays.
    pub fn apply_stored(&self, changes: Vec<StoredChange>, full: bool) {
        let started = Instant::now();
        let mut inputs = self.lock_inputs();
        let Inputs {
            source,
            registry,
            key_sets,
        } = &mut *inputs;
        let Source::Etcd { keys, stored } = &mut *source else {
            return;
        };
        if !take_in(keys, stored, registry, changes, full) {
            return;
        }
        match load_with(source, registry, key_sets) {
            Ok((model, warnings)) => self.accept(model, warnings, started),
            Err(errors) => self.reject(errors),
        }
    }

    /// Checks a change to the stored resources (`puts` of keys and values, `deletes` of
    /// keys) with everything else stored and registered: the resources' version it was
    /// checked against and the warnings, or every error.
    pub fn check_change(
        &self,
        puts: &[(String, String)],
        deletes: &[String],
    ) -> Result<(i64, Vec<String>), Vec<String>> {
        let inputs = self.lock_inputs();
        let Source::Etcd { keys, stored } = &inputs.source else {
            return Err(vec![format!(
                "this control plane reads its resources from the directory {}: edit the files there (weft apply and weft delete need `weft control --store etcd`)",
                inputs.source.describe()
            )]);
        };
        let mut skip: Vec<String> = deletes.to_vec();
        skip.extend(puts.iter().map(|(k, _)| k.clone()));
        let (mut resources, mut diags) = stored.resources_except(&skip);
        for (key, value) in puts {
            let (rs, ds) = stored::parse(keys, key, value);
            resources.extend(rs);
            diags.extend(ds);
        }
        let version = stored.version;
        build((resources, diags), &inputs.registry, &inputs.key_sets)
            .map(|(_, warnings)| (version, warnings))
    }

    /// The keys of the stored resources (for `weft delete` to know what exists).
    pub fn stored_keys(&self) -> Vec<String> {
        match &self.lock_inputs().source {
            Source::Etcd { stored, .. } => stored.keys(),
            Source::Dir { .. } => Vec::new(),
        }
    }

    /// The values stored under `keys` (None where nothing is).
    pub fn stored_values(&self, keys: &[String]) -> Vec<Option<String>> {
        match &self.lock_inputs().source {
            Source::Etcd { stored, .. } => keys
                .iter()
                .map(|k| stored.value(k).map(str::to_string))
                .collect(),
            Source::Dir { .. } => vec![None; keys.len()],
        }
    }

    /// Checks a registration without making it: etcd keeps it, and the watch brings it here.
    pub fn check_registration(
        &self,
        namespace: &str,
        name: &str,
        registration: Registration,
    ) -> Result<Upsert, RegisterError> {
        let mut inputs = self.lock_inputs();
        let mut next = inputs.registry.clone();
        let upsert = next.upsert(namespace, name, registration, Instant::now())?;
        if upsert == Upsert::Renewed {
            return Ok(upsert);
        }
        let Inputs {
            source, key_sets, ..
        } = &mut *inputs;
        match load_with(source, &next, key_sets) {
            Ok(_) => Ok(upsert),
            Err(errors) => Err(RegisterError::Invalid(errors)),
        }
    }

    /// Records whether etcd is being followed (shown on the admin endpoint; a replica that
    /// cannot reach etcd serves what it last read, and says so).
    pub fn set_etcd_healthy(&self, healthy: bool) {
        let mut status = StoreStatus::clone(&self.status.load());
        let line = if healthy {
            "following".to_string()
        } else {
            format!(
                "unreachable since {} (unix seconds); serving what was last read",
                super::unix_now()
            )
        };
        if status
            .etcd
            .as_deref()
            .is_some_and(|l| healthy == (l == "following"))
        {
            return;
        }
        status.etcd = Some(line);
        self.status.store(std::sync::Arc::new(status));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::metrics::Metrics;

    const SERVICE: &str = "apiVersion: v1\nkind: Service\nmetadata: {name: echo, namespace: default}\nspec:\n  selector: {app: echo}\n  ports: [{port: 80}]\n";
    const ROUTE: &str = "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r, namespace: default}\nspec:\n  parentRefs: [{group: \"\", kind: Service, name: echo, port: 80}]\n  rules: [{backendRefs: [{name: echo, port: 80}]}]\n";

    fn put(key: &str, value: &str) -> StoredChange {
        StoredChange::Put {
            key: key.into(),
            value: value.into(),
            mod_revision: 1,
        }
    }

    fn store() -> Store {
        let keys = Keys::new("/weft");
        let (source, registry, model, warnings) = open_etcd(
            keys,
            vec![put("/weft/resources/Service/default/echo", SERVICE)],
        )
        .expect("valid");
        Store::new(
            source,
            registry,
            model,
            warnings,
            Vec::new(),
            Arc::new(Metrics::new()),
        )
    }

    #[test]
    fn a_bad_key_is_refused_and_the_model_in_effect_stays() {
        let store = store();
        let generation = store.status().generation;
        // A route to a Service nobody declared: the whole change is refused.
        let bad = ROUTE.replace("backendRefs: [{name: echo", "backendRefs: [{name: nowhere");
        store.apply_stored(
            vec![put("/weft/resources/HTTPRoute/default/r", &bad)],
            false,
        );
        let status = store.status();
        assert_eq!(status.generation, generation);
        assert!(!status.rejected.is_empty());
        assert_eq!(store.current().model.counts.get("HTTPRoute"), None);
        // Fixed: taken in.
        store.apply_stored(
            vec![put("/weft/resources/HTTPRoute/default/r", ROUTE)],
            false,
        );
        let status = store.status();
        assert!(status.rejected.is_empty(), "{:?}", status.rejected);
        assert_eq!(status.generation, generation + 1);
        // A key under resources/ that names no kind is an error too, not ignored.
        store.apply_stored(
            vec![put("/weft/resources/Nonsense/default/x", SERVICE)],
            false,
        );
        assert!(!store.status().rejected.is_empty());
        store.apply_stored(
            vec![StoredChange::Delete {
                key: "/weft/resources/Nonsense/default/x".into(),
            }],
            false,
        );
        assert!(store.status().rejected.is_empty());
    }

    #[test]
    fn a_change_is_checked_with_everything_stored() {
        let store = store();
        let bad = ROUTE.replace("backendRefs: [{name: echo", "backendRefs: [{name: nowhere");
        let key = "/weft/resources/HTTPRoute/default/r".to_string();
        assert!(store.check_change(&[(key.clone(), bad)], &[]).is_err());
        assert!(store.check_change(&[(key, ROUTE.into())], &[]).is_ok());
        // The Service cannot go while a route uses it (once the route is stored).
        store.apply_stored(
            vec![put("/weft/resources/HTTPRoute/default/r", ROUTE)],
            false,
        );
        let service = "/weft/resources/Service/default/echo".to_string();
        assert!(store.check_change(&[], &[service]).is_err());
    }

    #[test]
    fn registrations_come_and_go_with_their_keys() {
        let store = store();
        let reg =
            r#"{"service":"echo","address":"10.1.0.2","ports":[80],"owner":"o","ttlSeconds":10}"#;
        store.apply_stored(vec![put("/weft/workloads/default/w-0", reg)], false);
        assert_eq!(store.registrations().len(), 1);
        store.apply_stored(
            vec![StoredChange::Delete {
                key: "/weft/workloads/default/w-0".into(),
            }],
            false,
        );
        assert!(store.registrations().is_empty());
        // A full read replaces everything held.
        store.apply_stored(vec![put("/weft/workloads/default/w-1", reg)], false);
        store.apply_stored(
            vec![put("/weft/resources/Service/default/echo", SERVICE)],
            true,
        );
        assert!(store.registrations().is_empty());
    }

    #[test]
    fn keys_the_model_is_not_built_from_do_not_rebuild_it() {
        let store = store();
        let generation = store.status().generation;
        store.apply_stored(vec![put("/weft/tokens/0123456789ab", "{}")], false);
        store.apply_stored(
            vec![StoredChange::Delete {
                key: "/weft/tokens/0123456789ab".into(),
            }],
            false,
        );
        assert_eq!(store.status().generation, generation);
        store.apply_stored(
            vec![put("/weft/resources/HTTPRoute/default/r", ROUTE)],
            false,
        );
        assert_eq!(store.status().generation, generation + 1);
    }
}
