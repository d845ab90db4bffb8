//! `MeshConfig`: at most one, with valid ports and durations.

use crate::diagnostic::Diagnostics;
use crate::duration;
use crate::model::Model;
use crate::resources::Resource;

use super::{HintExt, Reporter};

pub(super) fn build(resources: &[Resource], model: &mut Model, diags: &mut Diagnostics) {
    let mut configs = resources.iter().filter_map(|r| match r {
        Resource::MeshConfig(o) => Some((r, o)),
        _ => None,
    });
    let Some((first, config)) = configs.next() else {
        return;
    };
    for (other, _) in configs {
        Reporter::new(diags, other)
            .error(
                "metadata.name",
                "a second MeshConfig: there can be only one",
            )
            .with_hint(format!(
                "merge it into the one at {}:{}",
                first.source().file.display(),
                first.source().line
            ));
    }
    let mut rep = Reporter::new(diags, first);
    let spec = &config.spec;
    if let Some(td) = &spec.trust_domain {
        if td.is_empty() || td.contains('/') || td.contains(':') {
            rep.error("spec.trustDomain", format!("`{td}` is not a trust domain"))
                .with_hint("a DNS-like name such as `cluster.local` or `example.org`");
        } else {
            model.mesh.trust_domain = td.clone();
        }
    }
    if let Some(cd) = &spec.cluster_domain {
        if cd.is_empty() || cd.starts_with('.') || cd.ends_with('.') {
            rep.error("spec.clusterDomain", format!("`{cd}` is not a DNS suffix"))
                .with_hint("e.g. `cluster.local`");
        } else {
            model.mesh.cluster_domain = cd.clone();
        }
    }
    if let Some(root) = &spec.root_namespace {
        if root.is_empty() || root.contains('/') {
            rep.error("spec.rootNamespace", format!("`{root}` is not a namespace"))
                .with_hint("e.g. `istio-system` or `weft-system`");
        } else {
            model.root_namespace = root.clone();
        }
    }
    if let Some(cidr) = &spec.service_cidr {
        if super::services::parse_cidr(cidr).is_none() {
            rep.error("spec.serviceCIDR", format!("`{cidr}` is not a CIDR"))
                .with_hint("an IPv4 range such as `10.96.0.0/16` with room for every Service");
        }
    }
    if let Some(n) = spec
        .path_normalization
        .as_ref()
        .and_then(|p| p.normalization.as_ref())
    {
        use crate::view::PathNormalization as P;
        match n.as_str() {
            "DEFAULT" | "BASE" => model.mesh.path_normalization = P::Base,
            "NONE" => model.mesh.path_normalization = P::None,
            "MERGE_SLASHES" => model.mesh.path_normalization = P::MergeSlashes,
            "DECODE_AND_MERGE_SLASHES" => model.mesh.path_normalization = P::DecodeAndMergeSlashes,
            other => {
                rep.error(
                    "spec.pathNormalization.normalization",
                    format!("`{other}` is not a path normalization"),
                )
                .with_hint("NONE, BASE (the default), MERGE_SLASHES or DECODE_AND_MERGE_SLASHES");
            }
        }
    }
    if let Some(tracing) = &spec.tracing {
        model.mesh.tracing = super::tracing::check(tracing, &mut rep);
    }
    if let Some(admin) = &spec.admin {
        model.mesh.admin = super::admin::check(admin, config.namespace(), &mut rep);
    }
    if let Some(retries) = &spec.retries {
        model.mesh.retries = super::retries::check(retries, &mut rep);
    }
    let Some(proxy) = &spec.proxy else {
        return;
    };
    let mesh = &mut model.mesh;
    for (field, value, slot) in [
        (
            "spec.proxy.outboundPort",
            proxy.outbound_port,
            &mut mesh.outbound_port,
        ),
        (
            "spec.proxy.inboundPort",
            proxy.inbound_port,
            &mut mesh.inbound_port,
        ),
        (
            "spec.proxy.adminPort",
            proxy.admin_port,
            &mut mesh.admin_port,
        ),
    ] {
        match value {
            Some(0) => {
                rep.error(field, "port 0 is not a port")
                    .with_hint("use 1-65535");
            }
            Some(p) => *slot = p,
            None => {}
        }
    }
    let ports = [mesh.outbound_port, mesh.inbound_port, mesh.admin_port];
    if ports[0] == ports[1] || ports[0] == ports[2] || ports[1] == ports[2] {
        rep.error(
            "spec.proxy",
            format!(
                "the proxy's outbound ({}), inbound ({}) and admin ({}) ports must differ",
                ports[0], ports[1], ports[2]
            ),
        );
    }
    for (field, value, slot) in [
        (
            "spec.proxy.detectTimeout",
            &proxy.detect_timeout,
            &mut mesh.detect_timeout_ms,
        ),
        (
            "spec.proxy.requestTimeout",
            &proxy.request_timeout,
            &mut mesh.request_timeout_ms,
        ),
        (
            "spec.proxy.connectTimeout",
            &proxy.connect_timeout,
            &mut mesh.connect_timeout_ms,
        ),
        (
            "spec.proxy.upstreamIdleTimeout",
            &proxy.upstream_idle_timeout,
            &mut mesh.upstream_idle_timeout_ms,
        ),
    ] {
        if let Some(text) = value {
            match duration::parse(text) {
                Ok(d) => *slot = d.as_millis() as u64,
                Err(e) => {
                    rep.error(field, e);
                }
            }
        }
    }
    for (field, set, ms) in [
        (
            "spec.proxy.connectTimeout",
            proxy.connect_timeout.is_some(),
            mesh.connect_timeout_ms,
        ),
        (
            "spec.proxy.upstreamIdleTimeout",
            proxy.upstream_idle_timeout.is_some(),
            mesh.upstream_idle_timeout_ms,
        ),
    ] {
        if set && ms == 0 {
            rep.error(field, "a zero duration here would fail every connection")
                .with_hint("a duration above zero, e.g. `1s`");
        }
    }
    if proxy.detect_timeout.is_some() && mesh.detect_timeout_ms == 0 {
        rep.error(
            "spec.proxy.detectTimeout",
            "detection needs a timeout above zero",
        )
        .with_hint("300ms is a good default");
    }
}
