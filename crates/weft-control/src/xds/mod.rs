//! The delta xDS server (`DeltaAggregatedResources`): one task per connected proxy.
//!
//! A stream is accepted only over mutual TLS, from a proxy whose certificate's SPIFFE id is the
//! identity of the workload it says it runs beside (its `node.id`, `namespace/workload`): a
//! proxy learns only what its own workload may see. The session then answers subscriptions as
//! they come and pushes again whenever a new model is published; what each push contains is
//! decided by [`session::Session`].

pub mod session;

use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use futures_util::Stream;
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};
use weft_api::compile::{find_workload, ProxyIdentity};
use weft_proto::xds::{
    AggregatedDiscoveryService, DeltaDiscoveryRequest, DeltaDiscoveryResponse, DiscoveryRequest,
    DiscoveryResponse,
};

use crate::connected::Connected;
use crate::metrics::Metrics;
use crate::published::Published;
use crate::serve::Peer;
use session::{Received, Session};

/// Responses queued for one proxy beyond this wait for it to read (backpressure, not memory).
const QUEUE: usize = 16;

pub struct Ads {
    pub published: watch::Receiver<Arc<Published>>,
    pub metrics: Arc<Metrics>,
    /// Where sessions say who is connected and how current each proxy is.
    pub connected: Arc<Connected>,
    /// The admin token's digest (hex), sent to every proxy with its own config.
    pub admin_digest: String,
}

type SotwStream = Pin<Box<dyn Stream<Item = Result<DiscoveryResponse, Status>> + Send>>;

#[tonic::async_trait]
impl AggregatedDiscoveryService for Ads {
    type StreamAggregatedResourcesStream = SotwStream;

    async fn stream_aggregated_resources(
        &self,
        _request: Request<Streaming<DiscoveryRequest>>,
    ) -> Result<Response<SotwStream>, Status> {
        Err(Status::unimplemented(
            "Weft serves the incremental protocol only: use DeltaAggregatedResources",
        ))
    }

    type DeltaAggregatedResourcesStream = ReceiverStream<Result<DeltaDiscoveryResponse, Status>>;

    async fn delta_aggregated_resources(
        &self,
        request: Request<Streaming<DeltaDiscoveryRequest>>,
    ) -> Result<Response<Self::DeltaAggregatedResourcesStream>, Status> {
        let peer = request.extensions().get::<Peer>().cloned();
        let mut inbound = request.into_inner();
        let Some(peer) = peer else {
            return Err(Status::internal("connection without peer information"));
        };
        let Some(peer_id) = peer.id.clone() else {
            tracing::warn!(client = %peer.addr, "refusing xDS stream: no client certificate");
            return Err(Status::unauthenticated(
                "xDS needs mutual TLS: get a certificate from the Identity service first",
            ));
        };
        let first = match inbound.message().await {
            Ok(Some(req)) => req,
            Ok(None) => return Err(Status::cancelled("stream closed before its first request")),
            Err(status) => return Err(status),
        };
        let node_name = first
            .node
            .as_ref()
            .map(|n| n.id.clone())
            .unwrap_or_default();
        let Some((namespace, workload)) = node_name.split_once('/') else {
            return Err(Status::invalid_argument(format!(
                "node.id `{node_name}` is not `namespace/workload`"
            )));
        };
        let published = self.published.borrow().clone();
        let allowed = find_workload(&published.model, namespace, workload)
            .map(|w| {
                w.namespace == peer_id.namespace()
                    && w.service_account == peer_id.service_account()
                    && peer_id.trust_domain() == published.model.mesh.trust_domain
            })
            .map_err(|e| e.to_string());
        match allowed {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(client = %peer.addr, %peer_id, node = %node_name, "refusing xDS stream: the certificate is not the workload's identity");
                return Err(Status::permission_denied(format!(
                    "{peer_id} is not the identity of workload {node_name}"
                )));
            }
            Err(e) => {
                tracing::warn!(client = %peer.addr, node = %node_name, "refusing xDS stream: {e}");
                return Err(Status::not_found(e));
            }
        }
        let who = ProxyIdentity {
            namespace: namespace.to_string(),
            workload: Some(workload.to_string()),
        };
        let session =
            Session::new(who, node_name.clone()).with_admin_digest(self.admin_digest.clone());
        let (tx, rx) = mpsc::channel(QUEUE);
        let number = self
            .connected
            .connect(&node_name, peer.addr, peer_id.to_string());
        let task = SessionTask {
            session,
            published: self.published.clone(),
            metrics: self.metrics.clone(),
            tx,
            peer,
            connected: self.connected.clone(),
            node: node_name,
            number,
        };
        tokio::spawn(task.run(first, inbound));
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}

struct SessionTask {
    session: Session,
    published: watch::Receiver<Arc<Published>>,
    metrics: Arc<Metrics>,
    tx: mpsc::Sender<Result<DeltaDiscoveryResponse, Status>>,
    peer: Peer,
    connected: Arc<Connected>,
    /// `namespace/workload`.
    node: String,
    /// This session's number in `connected`.
    number: u64,
}

impl SessionTask {
    async fn run(
        mut self,
        first: DeltaDiscoveryRequest,
        mut inbound: Streaming<DeltaDiscoveryRequest>,
    ) {
        let node = self.node.clone();
        tracing::info!(%node, client = %self.peer.addr, "proxy connected");
        self.metrics.connected.inc();
        // When the last push went out, to time its ACK.
        let mut pushed_at: Option<Instant> = None;
        let mut next = Some(first);
        let result: Result<(), Status> = async {
            loop {
                if let Some(req) = next.take() {
                    self.handle(req, &mut pushed_at).await?;
                }
                tokio::select! {
                    msg = inbound.message() => match msg? {
                        Some(req) => next = Some(req),
                        None => return Ok(()),
                    },
                    changed = self.published.changed() => {
                        if changed.is_err() {
                            return Ok(());
                        }
                        let published = self.published.borrow_and_update().clone();
                        for t in self.session.types() {
                            self.push(t, &published, &mut pushed_at).await?;
                        }
                    }
                }
            }
        }
        .await;
        self.metrics.connected.dec();
        self.connected.disconnect(&self.node, self.number);
        match result {
            Ok(()) => tracing::info!(%node, "proxy disconnected"),
            Err(status) => {
                tracing::info!(%node, code = ?status.code(), message = status.message(), "proxy stream ended")
            }
        }
    }

    async fn handle(
        &mut self,
        req: DeltaDiscoveryRequest,
        pushed_at: &mut Option<Instant>,
    ) -> Result<(), Status> {
        let type_url = match self.session.apply(&req) {
            Ok(Received::Subscription) => req.type_url.clone(),
            Ok(Received::Ack { .. }) => {
                self.metrics.acks.inc();
                self.connected.acked(&self.node, self.number);
                if let Some(at) = pushed_at.take() {
                    self.metrics
                        .push_seconds
                        .observe(at.elapsed().as_secs_f64());
                }
                return Ok(());
            }
            Ok(Received::Nack { nonce, reason }) => {
                self.metrics.nacks.inc();
                self.connected
                    .nacked(&self.node, self.number, reason.clone());
                tracing::warn!(node = %req.node.as_ref().map(|n| n.id.as_str()).unwrap_or(""), %nonce, %reason, type_url = %req.type_url, "proxy rejected a push (NACK); it stays on its previous resources");
                return Ok(());
            }
            Err(e) => {
                tracing::warn!(client = %self.peer.addr, error = %e, "closing xDS stream");
                return Err(Status::invalid_argument(e.to_string()));
            }
        };
        let subscriptions = self
            .session
            .subscribed()
            .map(|(t, names)| (short_type(t).to_string(), names))
            .collect();
        self.connected.update(&self.node, self.number, |p| {
            p.subscriptions = subscriptions;
        });
        let published = self.published.borrow().clone();
        let Some(t) = weft_proto::types::ALL.into_iter().find(|t| *t == type_url) else {
            return Ok(());
        };
        self.push(t, &published, pushed_at).await
    }

    async fn push(
        &mut self,
        type_url: &'static str,
        published: &Published,
        pushed_at: &mut Option<Instant>,
    ) -> Result<(), Status> {
        let Some(response) = self.session.respond(type_url, published) else {
            self.connected
                .current(&self.node, self.number, published.generation);
            return Ok(());
        };
        self.connected
            .pushed(&self.node, self.number, published.generation);
        self.metrics.pushes.inc();
        self.metrics
            .resources_sent
            .inc_by(response.resources.len() as u64);
        pushed_at.get_or_insert_with(Instant::now);
        self.tx
            .send(Ok(response))
            .await
            .map_err(|_| Status::cancelled("proxy went away"))
    }
}

/// `ServiceConfig` for `type.googleapis.com/weft.v1.ServiceConfig`.
fn short_type(type_url: &str) -> &str {
    type_url.rsplit(['.', '/']).next().unwrap_or(type_url)
}
