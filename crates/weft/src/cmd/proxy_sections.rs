//! The tables of `weft proxy-config`: a proxy's routes, endpoints, inbound policies and
//! certificate, from the view it serves.

use serde_json::Value;
use weft_api::view::{PathMatch, ProxyView, RoutingTable};

use super::output::{age, Table};

pub fn routes(view: &ProxyView) {
    println!("\nROUTES");
    let mut table = Table::new(&["SERVICE", "PORT", "PROTOCOL", "ROUTE", "MATCH", "BACKENDS"]);
    for svc in &view.services {
        let service = format!("{}/{}", svc.namespace, svc.name);
        for port in &svc.ports {
            let protocol = format!("{:?}", port.protocol).to_lowercase();
            let before = table.len();
            for rt in [&port.http, &port.grpc] {
                route_rows(&mut table, &service, port.port, &protocol, rt);
            }
            // A row for what every request to the port takes (no matches to show).
            let whole_port = |route: String, backends: String| {
                [
                    service.clone(),
                    port.port.to_string(),
                    protocol.clone(),
                    route,
                    "*".into(),
                    backends,
                ]
                .to_vec()
            };
            if let Some(tcp) = &port.tcp {
                let backends = tcp
                    .backends
                    .iter()
                    .map(|b| weighted(b.backend.as_deref(), b.weight))
                    .collect::<Vec<_>>()
                    .join(" ");
                table.row(whole_port(tcp.route.label(), backends));
            }
            if table.len() == before {
                table.row(whole_port("(default)".into(), port.default_backend.clone()));
            }
        }
    }
    table.print();
}

fn route_rows(table: &mut Table, service: &str, port: u16, protocol: &str, rt: &RoutingTable) {
    for m in &rt.matches {
        let Some(rule) = rt.rules.get(m.rule) else {
            continue;
        };
        let mut matched = match &m.matcher.path {
            PathMatch::Exact(p) => format!("path={p}"),
            PathMatch::PathPrefix(p) => format!("path={p}*"),
            PathMatch::RegularExpression(p) => format!("path~{p}"),
        };
        if let Some(method) = &m.matcher.method {
            matched.push_str(&format!(" method={method}"));
        }
        for h in &m.matcher.headers {
            matched.push_str(&format!(" header:{}", h.name));
        }
        for q in &m.matcher.query_params {
            matched.push_str(&format!(" query:{}", q.name));
        }
        let backends = rule
            .backends
            .iter()
            .map(|b| weighted(b.backend.as_deref(), b.weight))
            .collect::<Vec<_>>()
            .join(" ");
        table.row(vec![
            service.to_string(),
            port.to_string(),
            protocol.to_string(),
            format!("{}#{}", rule.route.label(), rule.route.rule),
            matched,
            backends,
        ]);
    }
}

fn weighted(backend: Option<&str>, weight: u32) -> String {
    format!("{}={weight}", backend.unwrap_or("(unresolved)"))
}

pub fn endpoints(view: &ProxyView) {
    println!("\nENDPOINTS");
    let mut table = Table::new(&[
        "BACKEND", "ADDRESS", "WORKLOAD", "MESHED", "MTLS", "WEIGHT", "BALANCER",
    ]);
    for (key, b) in &view.backends {
        let balancer = format!("{:?}", b.load_balancer);
        if b.endpoints.is_empty() {
            table.row(vec![
                key.clone(),
                "(none)".into(),
                "-".into(),
                "-".into(),
                "-".into(),
                "-".into(),
                balancer.clone(),
            ]);
        }
        for e in &b.endpoints {
            table.row(vec![
                key.clone(),
                e.addr.to_string(),
                format!("{}/{}", e.namespace, e.workload),
                yes(e.meshed),
                yes(e.mtls),
                e.weight.to_string(),
                balancer.clone(),
            ]);
        }
    }
    table.print();
}

pub fn policies(view: &ProxyView) {
    println!("\nPOLICIES (inbound)");
    let inbound = &view.inbound;
    println!("mTLS: {:?}", inbound.mode);
    for (port, mode) in &inbound.ports {
        println!("mTLS on port {port}: {mode:?}");
    }
    let mut table = Table::new(&["KIND", "POLICY", "ACTION", "PORTS", "RULES"]);
    for p in &inbound.authz {
        table.row(vec![
            "AuthorizationPolicy".into(),
            format!("{}/{}", p.namespace, p.name),
            p.action.name().to_string(),
            ports(p.ports.as_deref()),
            p.rules
                .as_ref()
                .map_or("none (matches nothing)".into(), |r| r.len().to_string()),
        ]);
    }
    for p in &inbound.jwt {
        table.row(vec![
            "RequestAuthentication".into(),
            p.label(),
            "-".into(),
            ports(p.ports.as_deref()),
            p.rules.len().to_string(),
        ]);
    }
    if table.is_empty() {
        println!(
            "no AuthorizationPolicy or RequestAuthentication applies: every caller is allowed"
        );
    } else {
        table.print();
    }
}

fn ports(p: Option<&[u16]>) -> String {
    match p {
        None => "all".into(),
        Some(p) => p.iter().map(u16::to_string).collect::<Vec<_>>().join(","),
    }
}

pub fn certs(cert: &Value) {
    println!("\nCERTIFICATE");
    if cert.is_null() {
        println!("none (static configuration, or waiting for the control plane's CA)");
        return;
    }
    println!("identity:   {}", cert["spiffeId"].as_str().unwrap_or("?"));
    let at = |k: &str| cert[k].as_u64().unwrap_or(0);
    println!("valid from: {}", age(at("notBeforeUnix")));
    println!("expires:    {}", age(at("notAfterUnix")));
    println!("renews:     {}", age(at("renewAtUnix")));
    let roots: Vec<String> = cert["roots"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            format!(
                "root expiring {}",
                age(r["notAfterUnix"].as_u64().unwrap_or(0))
            )
        })
        .collect();
    println!("trusts:     {}", roots.join("; "));
}

fn yes(b: bool) -> String {
    if b { "yes" } else { "no" }.to_string()
}
