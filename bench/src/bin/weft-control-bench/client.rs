//! A lightweight delta xDS client, one per simulated proxy: it subscribes like a proxy (its
//! own config, then the Services it calls), ACKs everything, and records when each model
//! generation reached it with the hot Service in it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use weft_identity::{Credentials, ExpectedPeer, SpiffeId};
use weft_proto::types;
use weft_proto::xds::{AggregatedDiscoveryServiceClient, DeltaDiscoveryRequest, Node};
use weft_proxy::control::channel;

/// (generation, when it arrived) of every response carrying the hot Service.
pub type Arrivals = Arc<std::sync::Mutex<Vec<(u64, Instant)>>>;

pub async fn run(
    addr: std::net::SocketAddr,
    creds: Credentials,
    node: String,
    services: Vec<String>,
    arrivals: Arrivals,
    ready: mpsc::Sender<()>,
) -> Result<()> {
    let control = SpiffeId::new(
        creds.id.trust_domain(),
        types::CONTROL_NAMESPACE,
        types::CONTROL_SERVICE_ACCOUNT,
    )?;
    let tls = weft_identity::client_config(&creds, ExpectedPeer::Exactly(control), &[b"h2"])?;
    let ch = channel::connect(addr, tls, Duration::from_secs(10)).await?;
    let (tx, rx) = mpsc::channel(16);
    tx.send(DeltaDiscoveryRequest {
        node: Some(Node {
            id: node.clone(),
            ..Default::default()
        }),
        type_url: types::PROXY_CONFIG.into(),
        resource_names_subscribe: vec![node],
        ..Default::default()
    })
    .await?;
    tx.send(DeltaDiscoveryRequest {
        type_url: types::SERVICE_CONFIG.into(),
        resource_names_subscribe: services.clone(),
        ..Default::default()
    })
    .await?;
    let mut client = AggregatedDiscoveryServiceClient::new(ch).max_decoding_message_size(16 << 20);
    let mut stream = client
        .delta_aggregated_resources(ReceiverStream::new(rx))
        .await
        .context("opening the xDS stream")?
        .into_inner();
    let hot = format!("{}/svc-0", crate::mesh::NS);
    let mut have = 0usize;
    let mut signalled = false;
    while let Some(resp) = stream.message().await? {
        let at = Instant::now();
        if resp.type_url == types::SERVICE_CONFIG {
            have += resp.resources.len();
            if resp.resources.iter().any(|r| r.name == hot) {
                let generation = resp.system_version_info.parse().unwrap_or(0);
                arrivals
                    .lock()
                    .map_err(|_| anyhow::anyhow!("lock"))?
                    .push((generation, at));
            }
        }
        tx.send(DeltaDiscoveryRequest {
            type_url: resp.type_url.clone(),
            response_nonce: resp.nonce.clone(),
            ..Default::default()
        })
        .await?;
        if !signalled && have >= services.len() {
            signalled = true;
            let _ = ready.send(()).await;
        }
    }
    Ok(())
}
