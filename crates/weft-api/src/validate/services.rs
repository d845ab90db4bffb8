//! Services and the workloads behind them: ports, protocols, addresses, VIPs.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};

use crate::diagnostic::Diagnostics;
use crate::model::{Model, ServiceModel, ServicePortModel, TargetPort, WorkloadModel};
use crate::resources::{IntOrString, Resource};
use crate::view::{Protocol, WorkloadView};

use super::{is_dns_label, HintExt, Reporter};

/// The range Service VIPs come from when neither the Service nor MeshConfig says.
pub const DEFAULT_SERVICE_CIDR: &str = "10.96.0.0/16";

/// The annotation that declares a workload without a proxy.
pub const PROXY_ANNOTATION: &str = "weft.dev/proxy";

pub(super) fn build(resources: &[Resource], model: &mut Model, diags: &mut Diagnostics) {
    let mut taken_vips: BTreeMap<IpAddr, String> = BTreeMap::new();
    let mut unassigned = Vec::new();
    for r in resources {
        let Resource::Service(svc) = r else { continue };
        let mut rep = Reporter::new(diags, r);
        let name = svc.name().to_string();
        let namespace = svc.namespace().to_string();
        if !is_dns_label(&name) {
            rep.error_span(
                &svc.meta.name,
                "metadata.name",
                format!("`{name}` is not a valid Service name"),
            )
            .with_hint("lower-case letters, digits and '-', at most 63 characters");
        }
        let spec = &svc.spec;
        if let Some(aff) = &spec.session_affinity {
            if aff.value != "None" {
                rep.error_span(
                    aff,
                    "spec.sessionAffinity",
                    format!("sessionAffinity `{}` is not implemented", aff.value),
                )
                .with_hint(
                    "use a DestinationRule with `loadBalancer.consistentHash.useSourceIp: true`",
                );
            }
        }
        if let Some(itp) = &spec.internal_traffic_policy {
            if itp.value != "Cluster" {
                rep.error_span(
                    itp,
                    "spec.internalTrafficPolicy",
                    format!("internalTrafficPolicy `{}` is not implemented", itp.value),
                )
                .with_hint("remove it or set `Cluster`");
            }
        }
        let traffic_distribution = super::locality::traffic_distribution(spec, &mut rep);
        let mut vip = None;
        match &spec.cluster_ip {
            Some(ip) if ip.value == "None" => {}
            Some(ip) if ip.value.is_empty() => unassigned.push((namespace.clone(), name.clone())),
            Some(ip) => {
                match ip.value.parse::<IpAddr>() {
                    Ok(addr) => {
                        let me = format!("{namespace}/{name}");
                        if let Some(other) = taken_vips.insert(addr, me) {
                            rep.error_span(ip, "spec.clusterIP", format!("clusterIP {addr} is already the address of Service {other}"))
                            .with_hint("each Service needs its own clusterIP; remove it to have one assigned");
                        }
                        vip = Some(addr);
                    }
                    Err(_) => {
                        rep.error_span(ip, "spec.clusterIP", format!("`{}` is not an IP address", ip.value))
                        .with_hint("an IPv4 or IPv6 address, `None` for a headless Service, or leave it out to have one assigned");
                    }
                }
            }
            None => unassigned.push((namespace.clone(), name.clone())),
        }
        let mut ports = Vec::new();
        let mut numbers = BTreeSet::new();
        let mut names = BTreeSet::new();
        if spec.ports.is_empty() {
            rep.error("spec.ports", "a Service needs at least one port");
        }
        for (i, p) in spec.ports.iter().enumerate() {
            let field = format!("spec.ports[{i}]");
            let Some(port) = valid_port(p.port.value) else {
                rep.error_span(
                    &p.port,
                    format!("{field}.port"),
                    format!("{} is not a port number", p.port.value),
                )
                .with_hint("1-65535");
                continue;
            };
            if !numbers.insert(port) {
                rep.error_span(
                    &p.port,
                    format!("{field}.port"),
                    format!("port {port} is listed twice"),
                )
                .with_hint("each port number may appear once per Service");
            }
            if let Some(n) = &p.name {
                if !names.insert(n.clone()) {
                    rep.error_span(
                        &p.port,
                        format!("{field}.name"),
                        format!("port name `{n}` is used twice"),
                    );
                }
            }
            if let Some(proto) = &p.protocol {
                if proto.value != "TCP" {
                    rep.error_span(proto, format!("{field}.protocol"), format!("protocol {} is not proxied by Weft", proto.value))
                        .with_hint("Weft proxies TCP (and the HTTP and gRPC carried on it); remove the port or set `TCP`");
                }
            }
            let target = match &p.target_port {
                None => TargetPort::Number(port),
                Some(IntOrString::Int(n)) => match valid_port(*n) {
                    Some(t) => TargetPort::Number(t),
                    None => {
                        rep.error_span(
                            &p.port,
                            format!("{field}.targetPort"),
                            format!("{n} is not a port number"),
                        );
                        continue;
                    }
                },
                Some(IntOrString::String(s)) => match s.parse::<u32>() {
                    Ok(n) => match valid_port(n) {
                        Some(t) => TargetPort::Number(t),
                        None => {
                            rep.error_span(
                                &p.port,
                                format!("{field}.targetPort"),
                                format!("{n} is not a port number"),
                            );
                            continue;
                        }
                    },
                    Err(_) => TargetPort::Name(s.clone()),
                },
            };
            let protocol = match &p.app_protocol {
                Some(ap) => match protocol_from_app_protocol(&ap.value) {
                    Some(proto) => proto,
                    None => {
                        rep.error_span(ap, format!("{field}.appProtocol"), format!("appProtocol `{}` is not one Weft knows", ap.value))
                            .with_hint("use http, http2, kubernetes.io/h2c, grpc, tcp, tls or https; leave it out to have the protocol detected");
                        Protocol::Detect
                    }
                },
                None => p
                    .name
                    .as_deref()
                    .map(protocol_from_port_name)
                    .unwrap_or(Protocol::Detect),
            };
            ports.push(ServicePortModel {
                port,
                name: p.name.clone(),
                target,
                protocol,
            });
        }
        model.services.insert(
            (namespace.clone(), name.clone()),
            ServiceModel {
                name,
                namespace,
                vip,
                selector: spec.selector.clone(),
                ports,
                traffic_distribution,
            },
        );
    }
    let cidr = resources
        .iter()
        .find_map(|r| match r {
            Resource::MeshConfig(o) => o.spec.service_cidr.as_deref().and_then(parse_cidr),
            _ => None,
        })
        .or_else(|| parse_cidr(DEFAULT_SERVICE_CIDR))
        .unwrap_or((Ipv4Addr::new(10, 96, 0, 0), 16));
    assign_vips(model, cidr, &mut taken_vips, unassigned);
    build_workloads(resources, model, diags);
}

fn valid_port(n: u32) -> Option<u16> {
    u16::try_from(n).ok().filter(|p| *p != 0)
}

/// The protocol a Kubernetes `appProtocol` (or Istio-style value) declares.
pub fn protocol_from_app_protocol(value: &str) -> Option<Protocol> {
    Some(match value.to_ascii_lowercase().as_str() {
        "http" | "kubernetes.io/ws" | "http1" => Protocol::Http1,
        "http2" | "h2c" | "kubernetes.io/h2c" => Protocol::Http2,
        "grpc" | "grpc-web" => Protocol::Grpc,
        "tcp" | "tls" | "https" | "kubernetes.io/wss" | "mysql" | "mongo" | "redis" => {
            Protocol::Tcp
        }
        _ => return None,
    })
}

/// Istio's convention: a port named `http`, `http-web`, `grpc-api`... declares its protocol.
fn protocol_from_port_name(name: &str) -> Protocol {
    let prefix = name.split('-').next().unwrap_or(name);
    protocol_from_app_protocol(prefix).unwrap_or(Protocol::Detect)
}

pub(super) fn parse_cidr(text: &str) -> Option<(Ipv4Addr, u8)> {
    let (addr, len) = text.split_once('/')?;
    let addr: Ipv4Addr = addr.parse().ok()?;
    let len: u8 = len.parse().ok()?;
    (8..=30).contains(&len).then_some((addr, len))
}

/// Gives every Service without a `clusterIP` a VIP from the service CIDR: a hash of its name
/// picks the slot, so the same Service gets the same VIP on every proxy and across restarts.
fn assign_vips(
    model: &mut Model,
    (base, len): (Ipv4Addr, u8),
    taken: &mut BTreeMap<IpAddr, String>,
    mut unassigned: Vec<(String, String)>,
) {
    let base = u32::from(base) & (u32::MAX << (32 - len));
    let size = 1u32 << (32 - len);
    unassigned.sort();
    for key in unassigned {
        let name = format!("{}/{}", key.0, key.1);
        let mut slot = fnv1a(name.as_bytes()) % (size - 2) + 1;
        let addr = loop {
            let candidate = IpAddr::V4(Ipv4Addr::from(base + slot));
            if !taken.contains_key(&candidate) {
                break Some(candidate);
            }
            slot = slot % (size - 2) + 1;
            if taken.len() as u32 >= size - 2 {
                break None;
            }
        };
        if let (Some(addr), Some(svc)) = (addr, model.services.get_mut(&key)) {
            taken.insert(addr, name);
            svc.vip = Some(addr);
        }
    }
}

pub(crate) fn fnv1a(bytes: &[u8]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in bytes {
        h ^= u32::from(*b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

/// The control plane's identity (`weft_proto::types::CONTROL_NAMESPACE` and
/// `CONTROL_SERVICE_ACCOUNT`, which weft-control checks are the same): proxies trust it as
/// their control plane, so no workload may be declared with it.
pub const CONTROL_NAMESPACE: &str = "weft-system";
pub const CONTROL_SERVICE_ACCOUNT: &str = "weft-control";

fn build_workloads(resources: &[Resource], model: &mut Model, diags: &mut Diagnostics) {
    let mut addresses: BTreeMap<IpAddr, String> = BTreeMap::new();
    for r in resources {
        let Resource::WorkloadEntry(we) = r else {
            continue;
        };
        let mut rep = Reporter::new(diags, r);
        let spec = &we.spec;
        let address = match spec.address.value.parse::<IpAddr>() {
            Ok(a) => a,
            Err(_) => {
                rep.error_span(
                    &spec.address,
                    "spec.address",
                    format!("`{}` is not an IP address", spec.address.value),
                )
                .with_hint("Weft needs the workload's IP address (host names are not resolved)");
                continue;
            }
        };
        if we.namespace() == CONTROL_NAMESPACE
            && spec.service_account.as_deref() == Some(CONTROL_SERVICE_ACCOUNT)
        {
            rep.error(
                "spec.serviceAccount",
                format!("{CONTROL_NAMESPACE}/{CONTROL_SERVICE_ACCOUNT} is the control plane's identity; no workload may have it"),
            )
            .with_hint("give the workload a service account of its own");
            continue;
        }
        let me = format!("{}/{}", we.namespace(), we.name());
        if let Some(other) = addresses.insert(address, me) {
            rep.error_span(&spec.address, "spec.address", format!("address {address} is already the address of WorkloadEntry {other}"))
                .with_hint("each workload needs an address of its own: a proxy tells workloads apart by address");
        }
        let mut ports = BTreeMap::new();
        for (name, port) in &spec.ports {
            match valid_port(*port) {
                Some(p) => {
                    ports.insert(name.clone(), p);
                }
                None => {
                    rep.error_span(
                        &spec.address,
                        format!("spec.ports.{name}"),
                        format!("{port} is not a port number"),
                    );
                }
            }
        }
        let meshed = match we
            .meta
            .annotations
            .get(PROXY_ANNOTATION)
            .map(String::as_str)
        {
            None | Some("enabled") => true,
            Some("none") => false,
            Some(other) => {
                rep.error(
                    "metadata.annotations",
                    format!("`{PROXY_ANNOTATION}: {other}` is not understood"),
                )
                .with_hint("`none` declares a workload without a proxy; leave it out otherwise");
                true
            }
        };
        let (network, tunnel) = super::locality::network_of(we, &mut rep);
        let zone = super::locality::zone_of(we, &mut rep);
        model.workloads.push(WorkloadModel {
            view: WorkloadView {
                name: we.name().to_string(),
                namespace: we.namespace().to_string(),
                address,
                labels: spec.labels.clone(),
                service_account: spec
                    .service_account
                    .clone()
                    .unwrap_or_else(|| "default".into()),
                meshed,
                network,
                tunnel,
                zone,
            },
            ports,
            weight: spec.weight.unwrap_or(1).max(1),
        });
    }
}
