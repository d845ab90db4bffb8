use std::collections::BTreeMap;
use std::path::Path;

use super::*;

fn reg(service: &str, ip: &str, owner: &str) -> Registration {
    Registration {
        service: service.into(),
        service_account: Some(service.into()),
        address: ip.parse().expect("ip"),
        ports: vec![9080],
        labels: BTreeMap::from([("version".to_string(), "v1".to_string())]),
        app_protocol: None,
        owner: owner.into(),
        ttl_seconds: 10,
        host: None,
        tunnel: None,
    }
}

fn model_of(resources: Vec<Resource>) -> weft_api::model::Model {
    let (model, diags) = weft_api::validate::build(&resources);
    model.unwrap_or_else(|| panic!("invalid: {diags}"))
}

#[test]
fn a_registration_becomes_a_workload_entry_and_an_implicit_service() {
    let mut r = Registry::default();
    let now = Instant::now();
    let up = r.upsert("shop", "reviews-0", reg("reviews", "10.213.0.2", "a"), now);
    assert_eq!(up, Ok(Upsert::Changed));
    let (resources, diags) = r.resources(&[]);
    assert!(!diags.has_errors(), "{diags}");
    let model = model_of(resources);
    let svc = &model.services[&("shop".to_string(), "reviews".to_string())];
    assert_eq!(svc.ports[0].port, 9080);
    assert!(svc.vip.is_some(), "an implicit Service gets a VIP");
    let w = &model.workloads[0].view;
    assert_eq!(
        (w.namespace.as_str(), w.name.as_str()),
        ("shop", "reviews-0")
    );
    assert_eq!(w.service_account, "reviews");
    assert_eq!(w.labels.get("app").map(String::as_str), Some("reviews"));
    assert_eq!(w.labels.get("version").map(String::as_str), Some("v1"));
}

#[test]
fn a_joined_hosts_workload_is_on_the_hosts_network_behind_its_tunnel() {
    let mut r = Registry::default();
    let mut on_host = reg("reviews", "10.213.4.2", "a");
    on_host.host = Some("host-4".into());
    on_host.tunnel = "192.0.2.4:4108".parse().ok();
    r.upsert("shop", "reviews-0", on_host, Instant::now())
        .expect("upsert");
    let (resources, diags) = r.resources(&[]);
    assert!(!diags.has_errors(), "{diags}");
    let model = model_of(resources);
    let w = &model.workloads[0].view;
    assert_eq!(w.network.as_deref(), Some("host-4"));
    assert_eq!(w.tunnel, "192.0.2.4:4108".parse().ok());
}

#[test]
fn a_declared_service_is_not_duplicated() {
    let yaml = "apiVersion: v1\nkind: Service\nmetadata: {name: reviews, namespace: shop}\nspec: {selector: {app: reviews}, ports: [{name: http, port: 9080, appProtocol: http}]}\n";
    let (declared, diags) = weft_api::load::load_str(Path::new("svc.yaml"), yaml);
    assert!(!diags.has_errors(), "{diags}");
    let mut r = Registry::default();
    r.upsert(
        "shop",
        "reviews-0",
        reg("reviews", "10.213.0.2", "a"),
        Instant::now(),
    )
    .expect("upsert");
    let (mut resources, _) = r.resources(&declared);
    assert_eq!(resources.len(), 1, "only the WorkloadEntry");
    resources.extend(declared);
    let model = model_of(resources);
    assert_eq!(model.services.len(), 1);
}

#[test]
fn renewals_extend_the_lease_and_other_owners_are_refused() {
    let mut r = Registry::default();
    let t0 = Instant::now();
    r.upsert("shop", "w", reg("reviews", "10.213.0.2", "a"), t0)
        .expect("first");
    let again = r.upsert(
        "shop",
        "w",
        reg("reviews", "10.213.0.2", "a"),
        t0 + Duration::from_secs(8),
    );
    assert_eq!(again, Ok(Upsert::Renewed));
    let other = r.upsert("shop", "w", reg("reviews", "10.213.0.3", "b"), t0);
    assert!(matches!(other, Err(RegistryError::Taken(..))), "{other:?}");
    // Renewed at t0+8 for 10 s: alive at t0+15, gone at t0+18.
    assert!(r.expire(t0 + Duration::from_secs(15)).is_empty());
    assert_eq!(
        r.expire(t0 + Duration::from_secs(18)),
        vec!["shop/w".to_string()]
    );
    assert!(r.is_empty());
}

#[test]
fn removal_checks_the_owner() {
    let mut r = Registry::default();
    r.upsert(
        "shop",
        "w",
        reg("reviews", "10.213.0.2", "a"),
        Instant::now(),
    )
    .expect("upsert");
    assert!(matches!(
        r.remove("shop", "w", Some("b")),
        Err(RegistryError::Taken(..))
    ));
    assert_eq!(r.remove("shop", "w", Some("a")), Ok(()));
    assert!(matches!(
        r.remove("shop", "w", None),
        Err(RegistryError::Unknown(_))
    ));
}

#[test]
fn hostile_values_are_refused_before_they_reach_yaml() {
    let mut bad = reg("reviews", "10.213.0.2", "a");
    bad.service = "x}\nkind: Service".into();
    assert!(matches!(
        check("shop", "w", &bad),
        Err(InvalidRegistration(_))
    ));
    let mut bad = reg("reviews", "10.213.0.2", "a");
    bad.labels.insert("version".into(), "v1, evil: {".into());
    assert!(matches!(
        check("shop", "w", &bad),
        Err(InvalidRegistration(_))
    ));
    let mut bad = reg("reviews", "10.213.0.2", "a");
    bad.ports = vec![0];
    assert!(matches!(
        check("shop", "w", &bad),
        Err(InvalidRegistration(_))
    ));
    assert!(matches!(
        check("Shop", "w", &reg("reviews", "10.213.0.2", "a")),
        Err(InvalidRegistration(_))
    ));
    let mut bad = reg("reviews", "10.213.0.2", "a");
    bad.app_protocol = Some("gopher".into());
    assert!(matches!(
        check("shop", "w", &bad),
        Err(InvalidRegistration(_))
    ));
    let mut bad = reg("reviews", "10.213.0.2", "a");
    bad.host = Some("../h1".into());
    assert!(matches!(
        check("shop", "w", &bad),
        Err(InvalidRegistration(_))
    ));
    let mut good = reg("reviews", "10.213.1.2", "a");
    good.host = Some("h1".into());
    assert_eq!(check("shop", "w", &good), Ok(()));
}

#[test]
fn two_workloads_with_one_address_make_the_mesh_invalid() {
    let mut r = Registry::default();
    let now = Instant::now();
    r.upsert("shop", "a", reg("reviews", "10.213.0.2", "a"), now)
        .expect("a");
    r.upsert("shop", "b", reg("reviews", "10.213.0.2", "b"), now)
        .expect("b");
    let (resources, _) = r.resources(&[]);
    let (model, diags) = weft_api::validate::build(&resources);
    assert!(model.is_none(), "duplicate addresses must be refused");
    assert!(diags.to_string().contains("10.213.0.2"), "{diags}");
}
