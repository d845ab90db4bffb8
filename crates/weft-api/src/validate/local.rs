//! `LocalWorkload` (what `weft up` runs): a command, a port, sensible replica counts.

use crate::diagnostic::Diagnostics;
use crate::model::{LocalWorkloadModel, Model};
use crate::resources::Resource;

use super::{HintExt, Reporter};

/// Most replicas `weft up` starts of one workload (each is a namespace and a proxy).
const MAX_REPLICAS: u32 = 16;

pub(super) fn build(resources: &[Resource], model: &mut Model, diags: &mut Diagnostics) {
    for r in resources {
        let Resource::LocalWorkload(o) = r else {
            continue;
        };
        let mut rep = Reporter::new(diags, r);
        let spec = &o.spec;
        let mut ok = true;
        let port = match u16::try_from(spec.port.value).ok().filter(|p| *p != 0) {
            Some(p) => p,
            None => {
                rep.error_span(
                    &spec.port,
                    "spec.port",
                    format!("{} is not a port number", spec.port.value),
                );
                ok = false;
                0
            }
        };
        let replicas = spec.replicas.as_ref().map(|r| r.value).unwrap_or(1);
        if let Some(r) = spec
            .replicas
            .as_ref()
            .filter(|r| !(1..=MAX_REPLICAS).contains(&r.value))
        {
            rep.error_span(r, "spec.replicas", format!("{} replicas", r.value))
                .with_hint(format!("between 1 and {MAX_REPLICAS}"));
            ok = false;
        }
        if spec.command.value.first().is_none_or(|c| c.is_empty()) {
            rep.error_span(&spec.command, "spec.command", "no command to run")
                .with_hint(
                    "the program and its arguments, e.g. `[weft, echo, --http, \"0.0.0.0:9080\"]`",
                );
            ok = false;
        }
        if spec.labels.contains_key("app") {
            rep.error("spec.labels.app", "`app` is set from spec.service")
                .with_hint("remove it; set `service` instead");
            ok = false;
        }
        if let Some(p) = &spec.app_protocol {
            if super::protocol_from_app_protocol(p).is_none() {
                rep.error(
                    "spec.appProtocol",
                    format!("`{p}` is not a protocol Weft knows"),
                )
                .with_hint("http, http2, grpc or tcp; leave it out to have it detected");
                ok = false;
            }
        }
        // Replica names are `<name>-<i>`, and become network namespace names: keep them short.
        if o.name().len() > 40 {
            rep.error("metadata.name", "longer than 40 characters")
                .with_hint("replica names add a suffix and must stay DNS labels");
            ok = false;
        }
        if ok {
            model.local_workloads.push(LocalWorkloadModel {
                name: o.name().to_string(),
                namespace: o.namespace().to_string(),
                service: spec.service.clone().unwrap_or_else(|| o.name().to_string()),
                service_account: spec.service_account.clone(),
                port,
                app_protocol: spec.app_protocol.clone(),
                labels: spec.labels.clone(),
                replicas,
                command: spec.command.value.clone(),
                env: spec.env.clone(),
            });
        }
    }
}
