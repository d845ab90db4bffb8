//! DestinationRule traffic policy (load balancing, outlier detection, connection pools; the
//! latter two checked in [`super::traffic_policy`]) and PeerAuthentication.
//!
//! `tls`, `tunnel` and `proxyProtocol` are load errors that say Weft does not implement them.
//! PeerAuthentication is translated by [`super::peer_auth`].

use crate::diagnostic::Diagnostics;
use crate::model::{Model, TrafficPolicyModel};
use crate::resources::istio::LoadBalancerSettings;
use crate::resources::Resource;
use crate::view::LoadBalancer;

use super::{traffic_policy, HintExt, Reporter};

pub(super) fn build(resources: &[Resource], model: &mut Model, diags: &mut Diagnostics) {
    for r in resources {
        match r {
            Resource::DestinationRule(dr) => {
                let mut rep = Reporter::new(diags, r);
                let spec = &dr.spec;
                for (set, field) in [
                    (spec.subsets.is_some(), "spec.subsets"),
                    (spec.export_to.is_some(), "spec.exportTo"),
                    (spec.workload_selector.is_some(), "spec.workloadSelector"),
                ] {
                    if set {
                        rep.error(field, "not implemented by Weft")
                            .with_hint("for versions, make a Service per version and split with an HTTPRoute's weighted backendRefs");
                    }
                }
                let Some(key) = resolve_host(&spec.host.value, dr.namespace(), model) else {
                    rep.error_span(&spec.host, "spec.host", format!("`{}` is not a known Service", spec.host.value))
                        .with_hint("`name` (same namespace), `name.namespace` or `name.namespace.svc.<clusterDomain>`");
                    continue;
                };
                let Some(policy) = &spec.traffic_policy else {
                    continue;
                };
                for (set, field) in [
                    (policy.tls.is_some(), "spec.trafficPolicy.tls"),
                    (policy.tunnel.is_some(), "spec.trafficPolicy.tunnel"),
                    (
                        policy.proxy_protocol.is_some(),
                        "spec.trafficPolicy.proxyProtocol",
                    ),
                ] {
                    if set {
                        rep.error(field, "not implemented in this version of Weft")
                            .with_hint("remove it; Weft does not ignore traffic policy silently");
                    }
                }
                let mut entries = Vec::new();
                let whole = TrafficPolicyModel {
                    load_balancer: policy.load_balancer.as_ref().and_then(|lb| {
                        load_balancer(&mut rep, "spec.trafficPolicy.loadBalancer", lb)
                    }),
                    outlier: policy.outlier_detection.as_ref().and_then(|od| {
                        traffic_policy::outlier(&mut rep, "spec.trafficPolicy.outlierDetection", od)
                    }),
                    pool: policy.connection_pool.as_ref().and_then(|cp| {
                        traffic_policy::pool(&mut rep, "spec.trafficPolicy.connectionPool", cp)
                    }),
                };
                entries.push((None, whole));
                for (i, pl) in policy.port_level_settings.iter().enumerate() {
                    let field = format!("spec.trafficPolicy.portLevelSettings[{i}]");
                    let port = u16::try_from(pl.port.number).ok().filter(|p| {
                        model
                            .services
                            .get(&key)
                            .is_some_and(|s| s.port(*p).is_some())
                    });
                    let Some(port) = port else {
                        rep.error(
                            format!("{field}.port.number"),
                            format!("Service {}/{} has no port {}", key.0, key.1, pl.port.number),
                        );
                        continue;
                    };
                    if pl.tls.is_some() {
                        rep.error(
                            format!("{field}.tls"),
                            "not implemented in this version of Weft",
                        )
                        .with_hint("remove it; Weft does not ignore traffic policy silently");
                    }
                    let at_port = TrafficPolicyModel {
                        load_balancer: pl.load_balancer.as_ref().and_then(|lb| {
                            load_balancer(&mut rep, &format!("{field}.loadBalancer"), lb)
                        }),
                        outlier: pl.outlier_detection.as_ref().and_then(|od| {
                            traffic_policy::outlier(
                                &mut rep,
                                &format!("{field}.outlierDetection"),
                                od,
                            )
                        }),
                        pool: pl.connection_pool.as_ref().and_then(|cp| {
                            traffic_policy::pool(&mut rep, &format!("{field}.connectionPool"), cp)
                        }),
                    };
                    entries.push((Some(port), at_port));
                }
                if model.traffic_policies.contains_key(&key) {
                    rep.error_span(
                        &spec.host,
                        "spec.host",
                        format!(
                            "another DestinationRule already sets the policy of {}/{}",
                            key.0, key.1
                        ),
                    )
                    .with_hint("merge them into one DestinationRule");
                    continue;
                }
                model.traffic_policies.insert(key, entries);
            }
            Resource::PeerAuthentication(pa) => {
                if let Some(policy) = super::peer_auth::build(pa, Reporter::new(diags, r)) {
                    model.peer_authentications.push(policy);
                }
            }
            _ => {}
        }
    }
}

/// Resolves a DestinationRule host to a Service key.
fn resolve_host(host: &str, ns: &str, model: &Model) -> Option<(String, String)> {
    let suffix = format!(".svc.{}", model.mesh.cluster_domain);
    let host = host.strip_suffix(&suffix).unwrap_or(host);
    let key = match host.split_once('.') {
        None => (ns.to_string(), host.to_string()),
        Some((name, namespace)) if !namespace.contains('.') => {
            (namespace.to_string(), name.to_string())
        }
        Some(_) => return None,
    };
    model.services.contains_key(&key).then_some(key)
}

fn load_balancer(
    rep: &mut Reporter<'_>,
    field: &str,
    lb: &LoadBalancerSettings,
) -> Option<LoadBalancer> {
    if lb.locality_lb_setting.is_some() || lb.warmup_duration_secs.is_some() {
        rep.error(
            field.to_string(),
            "`localityLbSetting` and `warmupDurationSecs` are not implemented",
        );
        return None;
    }
    match (&lb.simple, &lb.consistent_hash) {
        (Some(_), Some(_)) => {
            rep.error(
                field.to_string(),
                "set `simple` or `consistentHash`, not both",
            );
            None
        }
        (Some(simple), None) => match simple.as_str() {
            "UNSPECIFIED" | "LEAST_REQUEST" => Some(LoadBalancer::LeastRequest),
            "ROUND_ROBIN" => Some(LoadBalancer::RoundRobin),
            "RANDOM" => Some(LoadBalancer::Random),
            "PASSTHROUGH" => {
                rep.error(format!("{field}.simple"), "PASSTHROUGH is not implemented");
                None
            }
            other => {
                rep.error(format!("{field}.simple"), format!("unknown load balancer `{other}`"))
                    .with_hint("ROUND_ROBIN, LEAST_REQUEST or RANDOM; leave it out for Weft's default (peak-EWMA)");
                None
            }
        },
        (None, Some(ch)) => {
            if ch.maglev.is_some() {
                rep.error(
                    format!("{field}.consistentHash.maglev"),
                    "maglev is not implemented; Weft uses a ring hash",
                );
                return None;
            }
            let set = [
                ch.http_header_name.is_some(),
                ch.http_cookie.is_some(),
                ch.use_source_ip == Some(true),
                ch.http_query_parameter_name.is_some(),
            ];
            if set.iter().filter(|s| **s).count() != 1 {
                rep.error(format!("{field}.consistentHash"), "set exactly one of httpHeaderName, httpCookie, useSourceIp, httpQueryParameterName");
                return None;
            }
            if let Some(name) = &ch.http_header_name {
                return Some(LoadBalancer::HashHeader {
                    name: name.to_ascii_lowercase(),
                });
            }
            if let Some(cookie) = &ch.http_cookie {
                let ttl_s = match &cookie.ttl {
                    Some(t) => match crate::duration::parse(t) {
                        Ok(d) => Some(d.as_secs()),
                        Err(e) => {
                            rep.error(format!("{field}.consistentHash.httpCookie.ttl"), e);
                            return None;
                        }
                    },
                    None => None,
                };
                return Some(LoadBalancer::HashCookie {
                    name: cookie.name.clone(),
                    path: cookie.path.clone(),
                    ttl_s,
                });
            }
            if let Some(name) = &ch.http_query_parameter_name {
                return Some(LoadBalancer::HashQueryParameter { name: name.clone() });
            }
            Some(LoadBalancer::HashSourceIp)
        }
        (None, None) => Some(LoadBalancer::PeakEwma),
    }
}
