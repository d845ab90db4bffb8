//! `PeerAuthentication`: checks a policy and translates it into a [`PeerAuthModel`].
//!
//! Istio's rules are kept: `UNSET` inherits from the wider scope, `portLevelMtls` needs a
//! `selector` (ports are the workload's own, so they mean nothing mesh- or namespace-wide),
//! and a port's key must be a real port number.

use std::collections::BTreeMap;

use crate::model::PeerAuthModel;
use crate::resources::istio::{MtlsSettings, PeerAuthenticationSpec};
use crate::resources::Object;
use crate::view::MtlsMode;

use super::{HintExt, Reporter};

pub(super) fn build(
    pa: &Object<PeerAuthenticationSpec>,
    mut rep: Reporter<'_>,
) -> Option<PeerAuthModel> {
    let spec = &pa.spec;
    let mut ok = true;
    let mode = match spec
        .mtls
        .as_ref()
        .map(|m| parse_mode(m, "spec.mtls.mode", &mut rep))
    {
        Some(Err(())) => {
            ok = false;
            None
        }
        Some(Ok(mode)) => mode,
        None => None,
    };
    let selector = spec
        .selector
        .as_ref()
        .map(|s| s.match_labels.clone())
        .filter(|labels| !labels.is_empty());
    let mut ports = BTreeMap::new();
    if !spec.port_level_mtls.is_empty() && selector.is_none() {
        rep.error(
            "spec.portLevelMtls",
            "port-level mTLS needs a `selector`: ports are a workload's own",
        )
        .with_hint("add `selector.matchLabels` naming the workloads, or drop portLevelMtls");
        ok = false;
    }
    for (port, settings) in &spec.port_level_mtls {
        let field = format!("spec.portLevelMtls.{port}.mode");
        let Ok(number) =
            u16::try_from(*port)
                .map_err(|_| ())
                .and_then(|p| if p == 0 { Err(()) } else { Ok(p) })
        else {
            rep.error(
                format!("spec.portLevelMtls.{port}"),
                format!("{port} is not a port number"),
            )
            .with_hint("1-65535: the application's port on the workload");
            ok = false;
            continue;
        };
        match parse_mode(settings, &field, &mut rep) {
            Ok(Some(mode)) => {
                ports.insert(number, mode);
            }
            Ok(None) => {}
            Err(()) => ok = false,
        }
    }
    ok.then(|| PeerAuthModel {
        namespace: pa.namespace().to_string(),
        name: pa.meta.name.value.clone(),
        selector,
        mode,
        ports,
    })
}

/// `Ok(None)` is UNSET (or no mode at all).
fn parse_mode(
    settings: &MtlsSettings,
    field: &str,
    rep: &mut Reporter<'_>,
) -> Result<Option<MtlsMode>, ()> {
    match settings.mode.as_deref() {
        None | Some("UNSET") => Ok(None),
        Some("STRICT") => Ok(Some(MtlsMode::Strict)),
        Some("PERMISSIVE") => Ok(Some(MtlsMode::Permissive)),
        Some("DISABLE") => Ok(Some(MtlsMode::Disable)),
        Some(other) => {
            rep.error(field, format!("`{other}` is not an mTLS mode"))
                .with_hint("UNSET, DISABLE, PERMISSIVE or STRICT");
            Err(())
        }
    }
}
