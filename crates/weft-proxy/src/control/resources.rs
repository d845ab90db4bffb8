//! What the proxy holds from the control plane: its own config, the Services it asked for,
//! the workloads at addresses it asked about. Plain state: a response is checked whole before
//! any of it applies, so a NACKed response changes nothing.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use rustls_pki_types::CertificateDer;
use serde::Serialize;
use weft_api::view::{ProxyConfigView, ProxyView, ServiceBundle, WorkloadsAt};
use weft_proto::types::{self, PROXY_CONFIG, SERVICE_CONFIG, WORKLOAD_CONFIG};
use weft_proto::xds::{DeltaDiscoveryResponse, Resource};

#[derive(Default)]
pub struct Held {
    pub own: Option<(String, ProxyConfigView)>,
    pub trust_bundle: Vec<CertificateDer<'static>>,
    pub services: BTreeMap<String, (String, ServiceBundle)>,
    pub workloads: BTreeMap<String, (String, WorkloadsAt)>,
    /// Names asked for, by type.
    pub subscribed: HashMap<&'static str, BTreeSet<String>>,
    /// When each resource held arrived (Unix seconds), by (type, name).
    arrived: BTreeMap<(&'static str, String), u64>,
    /// The admin token's digest, from the proxy's own config.
    pub admin_digest: Option<weft_identity::AdminDigest>,
}

/// One resource the proxy holds, for `/config` (and `weft proxy-config`).
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HeldResource {
    /// `ProxyConfig`, `ServiceConfig` or `WorkloadConfig`.
    pub kind: &'static str,
    pub name: String,
    pub version: String,
    pub received_unix: u64,
}

/// A response, decoded and checked, ready to apply.
pub struct Update {
    type_url: &'static str,
    own: Option<(String, ProxyConfigView, Vec<CertificateDer<'static>>)>,
    admin_digest: Option<weft_identity::AdminDigest>,
    services: Vec<(String, String, ServiceBundle)>,
    workloads: Vec<(String, String, WorkloadsAt)>,
    removed: Vec<String>,
    /// Every name this response answers (resource names, aliases, removals).
    pub answered: Vec<String>,
}

/// Decodes every resource of a response; the first bad one fails it all (NACK).
pub fn decode(resp: &DeltaDiscoveryResponse) -> Result<Update, String> {
    let type_url = types::ALL
        .into_iter()
        .find(|t| *t == resp.type_url)
        .ok_or_else(|| format!("unknown resource type {}", resp.type_url))?;
    let mut update = Update {
        type_url,
        own: None,
        admin_digest: None,
        services: Vec::new(),
        workloads: Vec::new(),
        removed: resp.removed_resources.clone(),
        answered: resp.removed_resources.clone(),
    };
    for r in &resp.resources {
        decode_one(type_url, r, &mut update).map_err(|e| format!("resource {}: {e}", r.name))?;
        update.answered.push(r.name.clone());
        update.answered.extend(r.aliases.iter().cloned());
    }
    Ok(update)
}

fn decode_one(type_url: &'static str, r: &Resource, update: &mut Update) -> Result<(), String> {
    let any = r.resource.as_ref().ok_or("no payload")?;
    let view = types::view_of(any, type_url).map_err(|e| e.to_string())?;
    match type_url {
        PROXY_CONFIG => {
            let parsed: ProxyConfigView =
                serde_json::from_slice(&view).map_err(|e| e.to_string())?;
            let message =
                <weft_proto::weft::ProxyConfig as prost::Message>::decode(any.value.as_slice())
                    .map_err(|e| e.to_string())?;
            let bundle: Vec<CertificateDer<'static>> = message
                .trust_bundle
                .into_iter()
                .map(CertificateDer::from)
                .collect();
            if bundle.is_empty() {
                return Err("empty trust bundle".into());
            }
            update.admin_digest = weft_identity::AdminDigest::from_hex(&message.admin_token_sha256);
            update.own = Some((r.version.clone(), parsed, bundle));
        }
        SERVICE_CONFIG => {
            let parsed: ServiceBundle = serde_json::from_slice(&view).map_err(|e| e.to_string())?;
            let expected = format!("{}/{}", parsed.service.namespace, parsed.service.name);
            if expected != r.name {
                return Err(format!("carries Service {expected}"));
            }
            update
                .services
                .push((r.name.clone(), r.version.clone(), parsed));
        }
        WORKLOAD_CONFIG => {
            let parsed: WorkloadsAt = serde_json::from_slice(&view).map_err(|e| e.to_string())?;
            update
                .workloads
                .push((r.name.clone(), r.version.clone(), parsed));
        }
        _ => return Err("unexpected type".into()),
    }
    Ok(())
}

impl Held {
    /// Applies a decoded update. Returns the new trust bundle when it changed.
    pub fn apply(&mut self, update: Update) -> Option<Vec<CertificateDer<'static>>> {
        let mut bundle_changed = None;
        let now = crate::control::unix_now();
        for name in &update.removed {
            if update.type_url != PROXY_CONFIG {
                self.arrived.remove(&(update.type_url, name.clone()));
            }
            match update.type_url {
                PROXY_CONFIG => {
                    // Keep serving on the last config: the control plane forgetting this
                    // workload is logged, not obeyed by dropping all routes.
                    tracing::warn!(%name, "the control plane no longer knows this proxy's workload; keeping the last configuration");
                }
                SERVICE_CONFIG => {
                    self.services.remove(name);
                }
                _ => {
                    self.workloads.remove(name);
                }
            }
        }
        if let Some((version, view, bundle)) = update.own {
            if bundle != self.trust_bundle {
                bundle_changed = Some(bundle.clone());
                self.trust_bundle = bundle;
            }
            self.arrived.insert((PROXY_CONFIG, String::new()), now);
            self.admin_digest = update.admin_digest;
            self.own = Some((version, view));
        }
        for (name, version, bundle) in update.services {
            self.arrived.insert((SERVICE_CONFIG, name.clone()), now);
            self.services.insert(name, (version, bundle));
        }
        for (name, version, at) in update.workloads {
            self.arrived.insert((WORKLOAD_CONFIG, name.clone()), now);
            self.workloads.insert(name, (version, at));
        }
        bundle_changed
    }

    /// Versions held, by name, for `initial_resource_versions` on reconnect.
    pub fn versions(&self, type_url: &str) -> HashMap<String, String> {
        match type_url {
            PROXY_CONFIG => self
                .own
                .iter()
                .map(|(v, view)| {
                    let name = view
                        .workload
                        .as_ref()
                        .map(|w| format!("{}/{}", w.namespace, w.name))
                        .unwrap_or_default();
                    (name, v.clone())
                })
                .collect(),
            SERVICE_CONFIG => self
                .services
                .iter()
                .map(|(k, (v, _))| (k.clone(), v.clone()))
                .collect(),
            _ => self
                .workloads
                .iter()
                .map(|(k, (v, _))| (k.clone(), v.clone()))
                .collect(),
        }
    }

    /// Every resource held, with its version and when it arrived.
    pub fn summary(&self) -> Vec<HeldResource> {
        let arrived = |t: &'static str, name: &str| {
            let key = if t == PROXY_CONFIG { "" } else { name };
            self.arrived
                .get(&(t, key.to_string()))
                .copied()
                .unwrap_or(0)
        };
        let mut out = Vec::new();
        for (name, version) in self.versions(PROXY_CONFIG) {
            let received_unix = arrived(PROXY_CONFIG, &name);
            out.push(HeldResource {
                kind: "ProxyConfig",
                name,
                version,
                received_unix,
            });
        }
        for (t, kind) in [
            (SERVICE_CONFIG, "ServiceConfig"),
            (WORKLOAD_CONFIG, "WorkloadConfig"),
        ] {
            let mut held: Vec<(String, String)> = self.versions(t).into_iter().collect();
            held.sort();
            for (name, version) in held {
                let received_unix = arrived(t, &name);
                out.push(HeldResource {
                    kind,
                    name,
                    version,
                    received_unix,
                });
            }
        }
        out
    }

    /// The whole view the data plane serves from, once the proxy's own config is known.
    pub fn view(&self) -> Option<ProxyView> {
        let (_, own) = self.own.as_ref()?;
        Some(weft_api::compile::assemble(
            own,
            self.services.values().map(|(_, b)| b.clone()),
            self.workloads
                .values()
                .flat_map(|(_, at)| at.workloads.clone()),
        ))
    }
}

#[cfg(test)]
mod tests {
    use weft_proto::types::{to_any, SCHEMA};
    use weft_proto::weft::ServiceConfig;

    use super::*;

    fn response(resources: Vec<Resource>) -> DeltaDiscoveryResponse {
        DeltaDiscoveryResponse {
            type_url: SERVICE_CONFIG.into(),
            resources,
            nonce: "1".into(),
            ..Default::default()
        }
    }

    fn service(name: &str, view: &[u8], schema: u32) -> Resource {
        Resource {
            name: name.into(),
            version: "v".into(),
            resource: Some(to_any(
                SERVICE_CONFIG,
                &ServiceConfig {
                    schema,
                    view: view.to_vec(),
                },
            )),
            ..Default::default()
        }
    }

    const GOOD: &str =
        r#"{"service":{"name":"reviews","namespace":"shop","vip":null,"ports":[]},"backends":{}}"#;

    #[test]
    fn one_bad_resource_rejects_the_whole_response() {
        let mut held = Held::default();
        let ok = decode(&response(vec![service(
            "shop/reviews",
            GOOD.as_bytes(),
            SCHEMA,
        )]))
        .expect("good");
        held.apply(ok);
        assert!(held.services.contains_key("shop/reviews"));

        for bad in [
            response(vec![service("shop/ratings", b"{not json", SCHEMA)]),
            response(vec![service("shop/ratings", GOOD.as_bytes(), SCHEMA + 1)]),
            response(vec![service("shop/other", GOOD.as_bytes(), SCHEMA)]),
            response(vec![Resource {
                name: "shop/x".into(),
                ..Default::default()
            }]),
        ] {
            let err = match decode(&bad) {
                Err(e) => e,
                Ok(_) => panic!("accepted a bad response"),
            };
            assert!(err.starts_with("resource shop/"), "{err}");
        }
        // Nothing of the rejected responses was applied.
        assert_eq!(held.services.len(), 1);
    }
}
