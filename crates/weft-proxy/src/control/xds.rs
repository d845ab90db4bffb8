//! The delta xDS client: one stream to the control plane, resubscribed after every
//! reconnect, answering each response with an ACK or a NACK.
//!
//! While the control plane is away the proxy serves on what it holds (static stability) and
//! reconnects with jittered backoff; on reconnect it tells the control plane the versions it
//! holds, so an unchanged mesh sends nothing and disturbs nothing.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use weft_proto::types::{self, PROXY_CONFIG};
use weft_proto::xds::{
    AggregatedDiscoveryServiceClient, DeltaDiscoveryRequest, DeltaDiscoveryResponse, Node,
    RpcStatus,
};

use super::backoff::Backoff;
use super::certs::{code_name, control_tls};
use super::discovery::{Discovery, MAX_NAMES};
use super::resources::{decode, Held};
use super::{channel, ControlSettings, ViewSink};
use crate::drain;
use crate::mesh::MeshTls;

/// Largest response accepted: bigger is a broken or hostile control plane.
pub const MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;

pub struct XdsClient {
    pub settings: Arc<ControlSettings>,
    /// Where new views go.
    pub sink: Arc<dyn ViewSink>,
    /// The proxy's credentials: the stream needs them, and trust bundles update them.
    pub tls: Arc<MeshTls>,
    pub drain: drain::Watch,
    pub discovery: Arc<Discovery>,
    pub subscriptions: mpsc::Receiver<(&'static str, String)>,
    pub renew_now: Arc<tokio::sync::Notify>,
}

enum Ended {
    /// The stream ended or failed; reconnect.
    Lost(String),
    /// The proxy is shutting down.
    Stopped,
}

impl XdsClient {
    pub async fn run(mut self) {
        let mut held = Held::default();
        let node_name = format!("{}/{}", self.settings.namespace, self.settings.workload);
        held.subscribed
            .entry(PROXY_CONFIG)
            .or_default()
            .insert(node_name.clone());
        let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(5));
        let mut connected_once = false;
        loop {
            if self.tls.current().is_none() {
                // No certificate yet: xDS needs mutual TLS. The certificate task is working.
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            match self.session(&mut held, &node_name).await {
                Ended::Stopped => return,
                Ended::Lost(reason) => {
                    let wait = backoff.next_wait();
                    if held.own.is_some() {
                        tracing::warn!(%reason, retry_in = ?wait, "lost the control plane; serving on the last configuration");
                    } else {
                        let msg = format!(
                            "waiting for the control plane at {}: {reason}",
                            self.settings.replicas.describe()
                        );
                        if !connected_once {
                            tracing::warn!(retry_in = ?wait, "{msg}");
                        }
                        self.sink.waiting(msg);
                    }
                    tokio::time::sleep(wait).await;
                }
            }
            if held.own.is_some() {
                connected_once = true;
                backoff.reset();
            }
        }
    }

    async fn session(&mut self, held: &mut Held, node_name: &str) -> Ended {
        let config = match control_tls(&self.settings, &self.tls) {
            Ok(c) => c,
            Err(e) => return Ended::Lost(e),
        };
        let replicas = self.settings.replicas.clone();
        let (channel, addr) = match replicas
            .connect(config, self.settings.connect_timeout)
            .await
        {
            Ok(connected) => connected,
            Err(e) => return Ended::Lost(e),
        };
        let ended = self.stream(channel, addr, held, node_name).await;
        if matches!(ended, Ended::Lost(_)) {
            replicas.failed(addr);
        }
        ended
    }

    /// One delta xDS stream on `channel` to the replica at `addr`, until it ends.
    async fn stream(
        &mut self,
        channel: channel::Channel,
        addr: std::net::SocketAddr,
        held: &mut Held,
        node_name: &str,
    ) -> Ended {
        let (tx, rx) = mpsc::channel::<DeltaDiscoveryRequest>(64);
        // First request of each type: everything subscribed, and the versions held.
        for (i, type_url) in types::ALL.into_iter().enumerate() {
            let subscribe: Vec<String> = held
                .subscribed
                .get(type_url)
                .map(|s| s.iter().cloned().collect())
                .unwrap_or_default();
            let req = DeltaDiscoveryRequest {
                node: (i == 0).then(|| Node {
                    id: node_name.to_string(),
                    ..Default::default()
                }),
                type_url: type_url.to_string(),
                resource_names_subscribe: subscribe,
                initial_resource_versions: held.versions(type_url),
                ..Default::default()
            };
            if tx.try_send(req).is_err() {
                return Ended::Lost("request queue full".into());
            }
        }
        let mut client = AggregatedDiscoveryServiceClient::new(channel)
            .max_decoding_message_size(MAX_RESPONSE_BYTES);
        let mut responses = match client
            .delta_aggregated_resources(ReceiverStream::new(rx))
            .await
        {
            Ok(r) => r.into_inner(),
            Err(status) => {
                return Ended::Lost(format!(
                    "{}: {}",
                    code_name(status.code()),
                    status.message()
                ))
            }
        };
        tracing::info!(control = %addr, "connected to the control plane");
        loop {
            tokio::select! {
                msg = responses.message() => match msg {
                    Ok(Some(resp)) => {
                        let reply = self.apply(held, &resp);
                        if tx.send(reply).await.is_err() {
                            return Ended::Lost("stream closed".into());
                        }
                    }
                    Ok(None) => return Ended::Lost("the control plane closed the stream".into()),
                    Err(status) => return Ended::Lost(format!("{}: {}", code_name(status.code()), status.message())),
                },
                sub = self.subscriptions.recv() => {
                    let Some(first) = sub else { return Ended::Stopped };
                    // Whatever else is queued goes out in the same requests.
                    let mut asked = vec![first];
                    while let Ok(more) = self.subscriptions.try_recv() {
                        asked.push(more);
                    }
                    for type_url in types::ALL {
                        let names = held.subscribed.entry(type_url).or_default();
                        let new: Vec<String> = asked
                            .iter()
                            .filter(|(t, n)| *t == type_url && names.len() < MAX_NAMES && names.insert(n.clone()))
                            .map(|(_, n)| n.clone())
                            .collect();
                        if !new.is_empty() && tx.send(subscribe(type_url, new)).await.is_err() {
                            return Ended::Lost("stream closed".into());
                        }
                    }
                }
                _ = self.drain.signaled() => return Ended::Stopped,
            }
        }
    }

    /// Applies a response and returns its ACK or NACK.
    fn apply(&self, held: &mut Held, resp: &DeltaDiscoveryResponse) -> DeltaDiscoveryRequest {
        let mut reply = DeltaDiscoveryRequest {
            type_url: resp.type_url.clone(),
            response_nonce: resp.nonce.clone(),
            ..Default::default()
        };
        match decode(resp) {
            Ok(update) => {
                let answered = update.answered.clone();
                if let Some(bundle) = held.apply(update) {
                    self.install_bundle(bundle);
                }
                if let Some(view) = held.view() {
                    self.sink.install(view);
                }
                self.sink.held(held.summary(), held.admin_digest);
                self.discovery.answered(&resp.type_url, answered);
            }
            Err(reason) => {
                tracing::warn!(%reason, type_url = %resp.type_url, nonce = %resp.nonce, "rejecting a push from the control plane (NACK); keeping the previous resources");
                self.sink.push_rejected();
                reply.error_detail = Some(RpcStatus {
                    code: tonic::Code::InvalidArgument as i32,
                    message: reason,
                    details: Vec::new(),
                });
            }
        }
        reply
    }

    /// A new trust bundle: peers are checked against it from now on, and the certificate is
    /// renewed so it comes from the current signing root.
    fn install_bundle(&self, bundle: Vec<rustls_pki_types::CertificateDer<'static>>) {
        let Some(current) = self.tls.current() else {
            return;
        };
        if current.creds.trust_bundle == bundle {
            return;
        }
        let mut creds = current.creds.clone_key();
        creds.trust_bundle = bundle;
        match self.tls.install(creds) {
            Ok(()) => {
                tracing::info!(
                    roots = current.creds.trust_bundle.len(),
                    "trust bundle updated"
                );
                self.renew_now.notify_one();
            }
            Err(e) => tracing::error!(error = %e, "cannot use the new trust bundle"),
        }
    }
}

fn subscribe(type_url: &'static str, names: Vec<String>) -> DeltaDiscoveryRequest {
    DeltaDiscoveryRequest {
        type_url: type_url.to_string(),
        resource_names_subscribe: names,
        ..Default::default()
    }
}
