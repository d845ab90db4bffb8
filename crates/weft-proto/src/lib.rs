//! What passes between Weft's proxies and its control plane.
//!
//! - [`xds`]: Envoy's delta xDS transport (`DeltaAggregatedResources`), from `envoy-types`.
//! - [`weft`]: Weft's resource payloads and the `Identity` service (certificate signing).
//! - [`types`]: the type URLs and the encoding of views into resources.

pub mod types;

/// Generated from `proto/weft/v1/*.proto`.
pub mod weft {
    #![allow(clippy::all, missing_docs)]
    tonic::include_proto!("weft.v1");
}

/// Envoy's discovery API, as Weft uses it.
pub mod xds {
    pub use envoy_types::pb::envoy::config::core::v3::Node;
    pub use envoy_types::pb::envoy::service::discovery::v3::aggregated_discovery_service_client::AggregatedDiscoveryServiceClient;
    pub use envoy_types::pb::envoy::service::discovery::v3::aggregated_discovery_service_server::{
        AggregatedDiscoveryService, AggregatedDiscoveryServiceServer,
    };
    pub use envoy_types::pb::envoy::service::discovery::v3::{
        DeltaDiscoveryRequest, DeltaDiscoveryResponse, DiscoveryRequest, DiscoveryResponse,
        Resource,
    };
    pub use envoy_types::pb::google::protobuf::Any;
    pub use envoy_types::pb::google::rpc::Status as RpcStatus;
}
