//! Fuzzes what a proxy reads from its control plane: a delta xDS response (protobuf), the
//! Weft resources inside it (a protobuf wrapper around the compiled view's JSON), applying
//! them, assembling the view and building the data plane's snapshot from it.
//!
//! Checks, for arbitrary bytes: nothing panics; a response that `decode` rejects leaves what
//! the proxy holds unchanged (the NACK path); one it accepts can be applied and served from.
#![no_main]

use libfuzzer_sys::fuzz_target;
use prost::Message;
use weft_proto::xds::DeltaDiscoveryResponse;
use weft_proxy::control::resources::{decode, Held};

fuzz_target!(|data: &[u8]| {
    let Ok(resp) = DeltaDiscoveryResponse::decode(data) else {
        return;
    };
    let mut held = Held::default();
    match decode(&resp) {
        Err(_) => {
            assert!(held.services.is_empty() && held.workloads.is_empty() && held.own.is_none());
        }
        Ok(update) => {
            held.apply(update);
            if let Some(view) = held.view() {
                let metrics = weft_proxy::metrics::Metrics::new();
                let registry = weft_proxy::state::Registry::default();
                let _ = weft_proxy::state::Snapshot::build(view, "fuzz", &metrics, &registry);
            }
        }
    }
});
