//! What the proxy holds from the control plane: its own config, the Services it asked for,
//! the workloads at addresses it asked about. Plain state: a response is checked whole before
//! any of it applies, so a NACKed response changes nothing.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use rustls_pki_types::CertificateDer;
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
}

/// A response, decoded and checked, ready to apply.
pub struct Update {
    type_url: &'static str,
    own: Option<(String, ProxyConfigView, Vec<CertificateDer<'static>>)>,
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
        for name in &update.removed {
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
            self.own = Some((version, view));
        }
        for (name, version, bundle) in update.services {
            self.services.insert(name, (version, bundle));
        }
        for (name, version, at) in update.workloads {
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
