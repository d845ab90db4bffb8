//! Workloads on networks (the hosts of a mesh of hosts) and their tunnels: what a
//! WorkloadEntry's `network` and `weft.dev/tunnel` become in views, and what is refused.

use super::tests::{check, first_error};
use crate::compile::{compile, ProxyIdentity};

const ON_HOSTS: &str = r#"apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: echo-h2, namespace: ns, annotations: {weft.dev/tunnel: "192.0.2.2:4108"}}
spec: {address: 10.213.2.5, labels: {app: echo, version: v1}, network: h2}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: client-h1, namespace: ns, annotations: {weft.dev/tunnel: "192.0.2.1:4108"}}
spec: {address: 10.213.1.5, labels: {app: client}, network: h1}
"#;

#[test]
fn endpoints_carry_their_network_and_tunnel_and_a_proxy_knows_its_own_network() {
    let (model, diags) = check(ON_HOSTS);
    let model = model.unwrap_or_else(|| panic!("{diags}"));
    let who = ProxyIdentity {
        namespace: "ns".into(),
        workload: Some("client-h1".into()),
    };
    let view = compile(&model, &who).expect("view");
    assert_eq!(view.mesh.network.as_deref(), Some("h1"));
    let backend = view.backends.get("ns/echo:80").expect("echo's backend");
    let remote = backend
        .endpoints
        .iter()
        .find(|e| e.workload == "echo-h2")
        .expect("echo-h2");
    assert_eq!(remote.network.as_deref(), Some("h2"));
    assert_eq!(remote.tunnel, "192.0.2.2:4108".parse().ok());
    // A workload declared without a network is on every proxy's network: dialled directly.
    let plain = backend
        .endpoints
        .iter()
        .find(|e| e.workload == "echo-v1")
        .expect("echo-v1");
    assert_eq!((plain.network.as_deref(), plain.tunnel), (None, None));
    // A proxy without a workload is on no network.
    let anonymous = ProxyIdentity {
        namespace: "ns".into(),
        workload: None,
    };
    assert_eq!(
        compile(&model, &anonymous).expect("view").mesh.network,
        None
    );
}

#[test]
fn a_tunnel_needs_a_network_and_an_address_and_a_network_a_name() {
    let entry = |meta: &str, spec: &str| {
        format!("apiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata: {{name: w, namespace: ns{meta}}}\nspec: {{address: 10.213.3.5{spec}}}\n")
    };
    let d = first_error(&entry(
        ", annotations: {weft.dev/tunnel: \"192.0.2.9\"}",
        ", network: h3",
    ));
    assert!(d.message.contains("is not an IP:PORT"), "{d}");
    let d = first_error(&entry(
        ", annotations: {weft.dev/tunnel: \"192.0.2.9:4108\"}",
        "",
    ));
    assert!(d.message.contains("needs `spec.network`"), "{d}");
    let d = first_error(&entry("", ", network: Host_3"));
    assert_eq!(d.field.as_deref(), Some("spec.network"), "{d}");
}

#[test]
fn zones_come_from_the_zone_label_or_the_locality_and_services_may_prefer_them() {
    let yaml = r#"apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: labelled, namespace: ns}
spec: {address: 10.213.5.5, labels: {app: near, topology.kubernetes.io/zone: z1}, locality: r/z9}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: located, namespace: ns}
spec: {address: 10.213.5.6, labels: {app: near}, locality: eu/eu-1a/rack-4}
---
apiVersion: v1
kind: Service
metadata: {name: near, namespace: ns}
spec:
  selector: {app: near}
  trafficDistribution: PreferClose
  ports: [{port: 80}]
"#;
    let (model, diags) = check(yaml);
    let model = model.unwrap_or_else(|| panic!("{diags}"));
    let zone = |name: &str| {
        model
            .workloads
            .iter()
            .find(|w| w.view.name == name)
            .and_then(|w| w.view.zone.clone())
    };
    assert_eq!(zone("labelled").as_deref(), Some("z1"), "the label wins");
    assert_eq!(zone("located").as_deref(), Some("eu-1a"));
    let who = ProxyIdentity {
        namespace: "ns".into(),
        workload: Some("labelled".into()),
    };
    let view = compile(&model, &who).expect("view");
    assert_eq!(view.mesh.zone.as_deref(), Some("z1"));
    let backend = view.backends.get("ns/near:80").expect("near");
    assert_eq!(
        backend.traffic_distribution,
        Some(crate::view::TrafficDistribution::PreferSameZone)
    );

    let d = first_error(&yaml.replace("PreferClose", "PreferFarAway"));
    assert_eq!(d.field.as_deref(), Some("spec.trafficDistribution"), "{d}");
    let d = first_error(&yaml.replace("eu/eu-1a/rack-4", "eu//rack-4"));
    assert_eq!(d.field.as_deref(), Some("spec.locality"), "{d}");
}
