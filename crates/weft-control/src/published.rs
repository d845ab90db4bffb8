//! One published model: what every xDS session computes its resources from.
//!
//! Resources are compiled lazily, the first time a session asks, and shared: every proxy in a
//! namespace that calls `reviews` gets the same encoded bytes, compiled once per model
//! version. A resource's version is a digest of its bytes, so a model change that does not
//! change what a proxy sees pushes nothing to it.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use rustls_pki_types::CertificateDer;
use weft_api::compile::{self, digest_bytes, CompileError, ProxyIdentity};
use weft_api::model::Model;
use weft_proto::types::{self, SCHEMA};
use weft_proto::weft::{ProxyConfig, ServiceConfig, WorkloadConfig};
use weft_proto::xds::Any;

/// A resource ready to send.
#[derive(Debug)]
pub struct Encoded {
    pub any: Any,
    pub version: String,
}

type ServiceKey = (String, String, String);

pub struct Published {
    /// Counts publications; also the xDS `system_version_info`.
    pub generation: u64,
    pub model: Arc<Model>,
    pub trust_bundle: Arc<Vec<CertificateDer<'static>>>,
    vips: HashMap<IpAddr, (String, String)>,
    /// (client namespace, namespace, name) → the Service as that namespace sees it.
    services: Mutex<HashMap<ServiceKey, Option<Arc<Encoded>>>>,
}

impl Published {
    pub fn new(
        generation: u64,
        model: Arc<Model>,
        trust_bundle: Arc<Vec<CertificateDer<'static>>>,
    ) -> Self {
        let vips = model
            .services
            .values()
            .filter_map(|s| {
                s.vip
                    .map(|vip| (vip, (s.namespace.clone(), s.name.clone())))
            })
            .collect();
        Self {
            generation,
            model,
            trust_bundle,
            vips,
            services: Mutex::new(HashMap::new()),
        }
    }

    /// The proxy's own resource (named `namespace/workload`), with the admin token's digest
    /// (hex) its admin endpoint checks callers against.
    pub fn proxy_config(
        &self,
        who: &ProxyIdentity,
        admin_digest: &str,
    ) -> Result<Encoded, CompileError> {
        let view = compile::proxy_config(&self.model, who)?;
        let message = ProxyConfig {
            schema: SCHEMA,
            view: serde_json::to_vec(&view).unwrap_or_default(),
            trust_bundle: self.trust_bundle.iter().map(|c| c.to_vec()).collect(),
            admin_token_sha256: admin_digest.to_string(),
        };
        Ok(encode(types::PROXY_CONFIG, &message))
    }

    /// The Service a subscription name means for a client in `client_ns`: `namespace/name`, or
    /// a VIP. Returns the canonical name with the resource.
    pub fn service(&self, client_ns: &str, name: &str) -> Option<(String, Arc<Encoded>)> {
        let (ns, svc) = match name.parse::<IpAddr>() {
            Ok(ip) => self.vips.get(&ip).cloned()?,
            Err(_) => {
                let (ns, svc) = name.split_once('/')?;
                (ns.to_string(), svc.to_string())
            }
        };
        let canonical = format!("{ns}/{svc}");
        let key = (client_ns.to_string(), ns, svc);
        if let Some(hit) = self.lock().get(&key) {
            return hit.clone().map(|e| (canonical, e));
        }
        // Compile outside the lock: other sessions keep going meanwhile.
        let compiled = compile::service(&self.model, &key.1, &key.2, client_ns).map(|bundle| {
            let message = ServiceConfig {
                schema: SCHEMA,
                view: serde_json::to_vec(&bundle).unwrap_or_default(),
            };
            Arc::new(encode(types::SERVICE_CONFIG, &message))
        });
        self.lock().insert(key, compiled.clone());
        compiled.map(|e| (canonical, e))
    }

    /// The workloads at an address; `None` when there are none.
    pub fn workloads(&self, name: &str) -> Option<Encoded> {
        let ip = name.parse::<IpAddr>().ok()?;
        let at = compile::workloads_at(&self.model, ip);
        if at.workloads.is_empty() {
            return None;
        }
        let message = WorkloadConfig {
            schema: SCHEMA,
            view: serde_json::to_vec(&at).unwrap_or_default(),
        };
        Some(encode(types::WORKLOAD_CONFIG, &message))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ServiceKey, Option<Arc<Encoded>>>> {
        self.services.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn encode(type_url: &str, message: &impl prost::Message) -> Encoded {
    let any = types::to_any(type_url, message);
    let version = digest_bytes(&any.value);
    Encoded { any, version }
}
