//! One proxy's delta xDS session, as plain state: what it subscribed to, what it holds, and
//! what to send it next. No I/O here, so the protocol rules are tested directly.
//!
//! The rules followed (Envoy's xDS protocol, incremental variant):
//! - a request carries subscriptions to add and drop, and on reconnect the versions the
//!   client already holds (`initial_resource_versions`), which are then not resent;
//! - a request with a `response_nonce` ACKs that response, or NACKs it when it carries
//!   `error_detail` (the client keeps its previous resource; the same version is not resent);
//! - a name that resolves to nothing is answered in `removed_resources` (so an on-demand
//!   client stops waiting); a resource named through an alias (a Service's VIP) comes back
//!   under its canonical name with the alias listed.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use weft_api::compile::ProxyIdentity;
use weft_proto::types;
use weft_proto::xds::{DeltaDiscoveryRequest, DeltaDiscoveryResponse, Resource};

use crate::published::Published;

/// More subscriptions than this on one type is a broken or hostile client.
pub const MAX_SUBSCRIPTIONS: usize = 20_000;

#[derive(Debug, PartialEq, Eq)]
pub enum Received {
    /// A new or changed subscription: answer it.
    Subscription,
    /// An ACK of a response.
    Ack { nonce: String },
    /// A NACK: the client rejected a response and stays on what it had.
    Nack { nonce: String, reason: String },
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProtocolError {
    #[error("unknown resource type {0}")]
    UnknownType(String),
    #[error("more than {MAX_SUBSCRIPTIONS} subscriptions to {0}")]
    TooManySubscriptions(String),
}

#[derive(Default)]
struct Sent {
    version: String,
    aliases: BTreeSet<String>,
}

#[derive(Default)]
struct TypeState {
    subscribed: BTreeSet<String>,
    /// Canonical name → what the client holds.
    sent: HashMap<String, Sent>,
    /// Names the client was told do not exist.
    absent: BTreeSet<String>,
}

pub struct Session {
    who: ProxyIdentity,
    node_name: String,
    types: HashMap<&'static str, TypeState>,
    nonce: u64,
    /// The admin token's digest (hex) sent with the proxy's own config.
    admin_digest: String,
}

impl Session {
    pub fn new(who: ProxyIdentity, node_name: String) -> Self {
        Self {
            who,
            node_name,
            types: HashMap::new(),
            nonce: 0,
            admin_digest: String::new(),
        }
    }

    /// Sends `digest` (hex SHA-256 of the admin token) with the proxy's own config.
    pub fn with_admin_digest(mut self, digest: String) -> Self {
        self.admin_digest = digest;
        self
    }

    pub fn who(&self) -> &ProxyIdentity {
        &self.who
    }

    /// Applies one request from the client.
    pub fn apply(&mut self, req: &DeltaDiscoveryRequest) -> Result<Received, ProtocolError> {
        let type_url = types::ALL
            .into_iter()
            .find(|t| *t == req.type_url)
            .ok_or_else(|| ProtocolError::UnknownType(req.type_url.clone()))?;
        let state = self.types.entry(type_url).or_default();
        for (name, version) in &req.initial_resource_versions {
            state.sent.insert(
                name.clone(),
                Sent {
                    version: version.clone(),
                    aliases: BTreeSet::new(),
                },
            );
        }
        for name in &req.resource_names_unsubscribe {
            state.subscribed.remove(name);
            state.absent.remove(name);
        }
        for name in &req.resource_names_subscribe {
            state.subscribed.insert(name.clone());
        }
        if state.subscribed.len() > MAX_SUBSCRIPTIONS {
            return Err(ProtocolError::TooManySubscriptions(req.type_url.clone()));
        }
        let changed = !req.resource_names_subscribe.is_empty()
            || !req.resource_names_unsubscribe.is_empty()
            || !req.initial_resource_versions.is_empty();
        if !req.response_nonce.is_empty() {
            let nonce = req.response_nonce.clone();
            if let Some(error) = &req.error_detail {
                return Ok(Received::Nack {
                    nonce,
                    reason: error.message.clone(),
                });
            }
            if !changed {
                return Ok(Received::Ack { nonce });
            }
        }
        Ok(Received::Subscription)
    }

    /// What to send for `type_url` given the published model, if anything differs from what
    /// the client holds.
    pub fn respond(
        &mut self,
        type_url: &'static str,
        published: &Published,
    ) -> Option<DeltaDiscoveryResponse> {
        let who = self.who.clone();
        let node_name = self.node_name.clone();
        let admin_digest = self.admin_digest.clone();
        let state = self.types.get_mut(type_url)?;
        let mut found: BTreeMap<
            String,
            (std::sync::Arc<crate::published::Encoded>, BTreeSet<String>),
        > = BTreeMap::new();
        let mut removed = Vec::new();
        for name in &state.subscribed {
            let resolved = match type_url {
                types::PROXY_CONFIG if *name == node_name => published
                    .proxy_config(&who, &admin_digest)
                    .ok()
                    .map(|e| (name.clone(), std::sync::Arc::new(e))),
                types::SERVICE_CONFIG => published.service(&who.namespace, name),
                types::WORKLOAD_CONFIG => published
                    .workloads(name)
                    .map(|e| (name.clone(), std::sync::Arc::new(e))),
                _ => None,
            };
            match resolved {
                Some((canonical, encoded)) => {
                    let entry = found
                        .entry(canonical.clone())
                        .or_insert((encoded, BTreeSet::new()));
                    if *name != canonical {
                        entry.1.insert(name.clone());
                    }
                }
                None => {
                    if state.absent.insert(name.clone()) || state.sent.contains_key(name) {
                        removed.push(name.clone());
                    }
                }
            }
        }
        let mut resources = Vec::new();
        for (canonical, (encoded, aliases)) in &found {
            state.absent.remove(canonical);
            for a in aliases {
                state.absent.remove(a);
            }
            let unchanged = state
                .sent
                .get(canonical)
                .is_some_and(|s| s.version == encoded.version && s.aliases == *aliases);
            if unchanged {
                continue;
            }
            resources.push(Resource {
                name: canonical.clone(),
                aliases: aliases.iter().cloned().collect(),
                version: encoded.version.clone(),
                resource: Some(encoded.any.clone()),
                ..Default::default()
            });
            state.sent.insert(
                canonical.clone(),
                Sent {
                    version: encoded.version.clone(),
                    aliases: aliases.clone(),
                },
            );
        }
        let gone: Vec<String> = state
            .sent
            .keys()
            .filter(|k| !found.contains_key(*k))
            .cloned()
            .collect();
        for name in gone {
            state.sent.remove(&name);
            if !removed.contains(&name) {
                removed.push(name);
            }
        }
        if resources.is_empty() && removed.is_empty() {
            return None;
        }
        self.nonce += 1;
        Some(DeltaDiscoveryResponse {
            system_version_info: published.generation.to_string(),
            resources,
            type_url: type_url.to_string(),
            removed_resources: removed,
            nonce: self.nonce.to_string(),
            ..Default::default()
        })
    }

    /// Types the client has subscribed to at least once.
    pub fn types(&self) -> Vec<&'static str> {
        types::ALL
            .into_iter()
            .filter(|t| self.types.contains_key(t))
            .collect()
    }

    /// The names subscribed to, by type.
    pub fn subscribed(&self) -> impl Iterator<Item = (&'static str, Vec<String>)> + '_ {
        self.types
            .iter()
            .map(|(t, s)| (*t, s.subscribed.iter().cloned().collect()))
    }

    /// How many names the client subscribes to, over every type.
    pub fn subscriptions(&self) -> usize {
        self.types.values().map(|t| t.subscribed.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::Arc;

    use weft_proto::xds::RpcStatus;

    use super::*;

    const MESH: &str = r#"
apiVersion: v1
kind: Service
metadata: {name: reviews, namespace: shop}
spec:
  clusterIP: 10.96.0.7
  selector: {app: reviews}
  ports: [{name: http, port: 9080, appProtocol: http}]
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: web, namespace: shop}
spec: {address: 127.0.0.10, labels: {app: web}, serviceAccount: web}
"#;

    fn published(text: &str, generation: u64) -> Published {
        let (resources, diags) = weft_api::load::load_str(Path::new("t.yaml"), text);
        assert!(!diags.has_errors(), "{diags}");
        let (model, diags) = weft_api::validate::build(&resources);
        let model = model.unwrap_or_else(|| panic!("{diags}"));
        Published::new(generation, Arc::new(model), Arc::new(Vec::new()))
    }

    fn session() -> Session {
        let who = ProxyIdentity {
            namespace: "shop".into(),
            workload: Some("web".into()),
        };
        Session::new(who, "shop/web".into())
    }

    fn subscribe(type_url: &str, names: &[&str]) -> DeltaDiscoveryRequest {
        DeltaDiscoveryRequest {
            type_url: type_url.into(),
            resource_names_subscribe: names.iter().map(|n| n.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn vip_alias_resolves_to_the_canonical_name_and_unknown_names_are_removed() {
        let p = published(MESH, 1);
        let mut s = session();
        let req = subscribe(types::SERVICE_CONFIG, &["10.96.0.7", "shop/nothing"]);
        assert_eq!(s.apply(&req), Ok(Received::Subscription));
        let resp = s.respond(types::SERVICE_CONFIG, &p).expect("a response");
        assert_eq!(resp.resources.len(), 1);
        assert_eq!(resp.resources[0].name, "shop/reviews");
        assert_eq!(resp.resources[0].aliases, vec!["10.96.0.7".to_string()]);
        assert_eq!(resp.removed_resources, vec!["shop/nothing".to_string()]);
        // Nothing changed: nothing to send.
        assert!(s.respond(types::SERVICE_CONFIG, &p).is_none());
    }

    #[test]
    fn acks_nacks_and_reconnects_with_known_versions() {
        let p = published(MESH, 1);
        let mut s = session();
        s.apply(&subscribe(types::SERVICE_CONFIG, &["shop/reviews"]))
            .expect("apply");
        let resp = s.respond(types::SERVICE_CONFIG, &p).expect("response");
        let ack = DeltaDiscoveryRequest {
            type_url: types::SERVICE_CONFIG.into(),
            response_nonce: resp.nonce.clone(),
            ..Default::default()
        };
        assert_eq!(
            s.apply(&ack),
            Ok(Received::Ack {
                nonce: resp.nonce.clone()
            })
        );
        let nack = DeltaDiscoveryRequest {
            error_detail: Some(RpcStatus {
                code: 3,
                message: "bad".into(),
                details: Vec::new(),
            }),
            ..ack
        };
        assert!(matches!(s.apply(&nack), Ok(Received::Nack { .. })));
        // A NACKed version is not resent.
        assert!(s.respond(types::SERVICE_CONFIG, &p).is_none());

        // A reconnecting client that already holds this version gets nothing new.
        let mut again = session();
        let mut req = subscribe(types::SERVICE_CONFIG, &["shop/reviews"]);
        req.initial_resource_versions
            .insert("shop/reviews".into(), resp.resources[0].version.clone());
        again.apply(&req).expect("apply");
        assert!(again.respond(types::SERVICE_CONFIG, &p).is_none());

        // A model change that alters the Service is pushed.
        let changed = MESH.replace("port: 9080", "port: 9081");
        let p2 = published(&changed, 2);
        let pushed = again.respond(types::SERVICE_CONFIG, &p2).expect("push");
        assert_ne!(pushed.resources[0].version, resp.resources[0].version);
        assert_eq!(pushed.system_version_info, "2");
    }

    #[test]
    fn a_proxy_gets_only_its_own_config_and_unknown_types_are_errors() {
        let p = published(MESH, 1);
        let mut s = session();
        s.apply(&subscribe(types::PROXY_CONFIG, &["shop/web", "shop/other"]))
            .expect("apply");
        let resp = s.respond(types::PROXY_CONFIG, &p).expect("response");
        assert_eq!(resp.resources.len(), 1);
        assert_eq!(resp.resources[0].name, "shop/web");
        assert_eq!(resp.removed_resources, vec!["shop/other".to_string()]);
        let bad = subscribe(
            "type.googleapis.com/envoy.config.cluster.v3.Cluster",
            &["x"],
        );
        assert!(matches!(s.apply(&bad), Err(ProtocolError::UnknownType(_))));
    }
}
