//! The adoption path: the workloads still outside the mesh, and the PERMISSIVE ones in the
//! order to move them to STRICT mutual TLS.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};
use weft_api::model::{Model, WorkloadModel};

use super::facts::Fact;
use super::report::sum;
use super::verdict::Answer;

/// Which workloads are still outside the mesh or PERMISSIVE, and the order to move them to
/// STRICT: fewest observed callers first (the least critical), those still taking plaintext
/// last (their callers must join the mesh first).
pub fn adoption_path(
    model: &Model,
    t: &BTreeMap<Fact, f64>,
    permissive: &[&WorkloadModel],
    plaintext: &BTreeSet<String>,
    answer: Answer,
) -> Value {
    let outside: Vec<String> = model
        .workloads
        .iter()
        .filter(|w| !w.view.meshed)
        .map(|w| w.view.node())
        .collect();
    let mut order: Vec<(bool, usize, f64, String)> = permissive
        .iter()
        .map(|w| {
            let n = w.view.node();
            let callers: BTreeSet<&str> = t
                .iter()
                .filter_map(|(f, c)| match f {
                    Fact::Call {
                        source,
                        destination,
                        ..
                    } if *destination == n && *c > 0.0 => Some(source.as_str()),
                    _ => None,
                })
                .collect();
            let load = sum(
                t,
                |f| matches!(f, Fact::Received { workload, .. } if *workload == n),
            );
            (plaintext.contains(&n), callers.len(), load, n)
        })
        .collect();
    order.sort_by(|a, b| {
        (a.0, a.1)
            .cmp(&(b.0, b.1))
            .then(a.2.total_cmp(&b.2))
            .then(a.3.cmp(&b.3))
    });
    json!({
        "applies": answer != Answer::MeshNotNeeded,
        "outsideTheMesh": outside,
        "toStrict": order.iter().map(|(plain, callers, load, n)| json!({
            "workload": n,
            "callers": callers,
            "requestsIn": load,
            "blockedByPlaintextCallers": plain,
        })).collect::<Vec<_>>(),
    })
}
