//! Fuzzes what a runner sends the control plane's `PUT /workloads/{ns}/{name}`: the JSON body
//! (`weft_api::registration::Registration`), its checks, and the YAML the control plane makes
//! of it. The body comes from the network (loopback, but any local process can send it).
//!
//! Checks, whatever the bytes: nothing panics; a registration that passes `check` turns into
//! YAML that loads without a single error (no value can break out of its YAML scalar), into
//! exactly one WorkloadEntry with the registration's labels, address and service account, and
//! one Service; and the set validates (a lone registration is always a valid mesh).
#![no_main]

use libfuzzer_sys::fuzz_target;
use weft_api::registration::{check, resources, Registration};
use weft_api::resources::Resource;

fuzz_target!(|data: &[u8]| {
    let Ok(reg) = serde_json::from_slice::<Registration>(data) else {
        return;
    };
    if check("fuzz-ns", "fuzz-w", &reg).is_err() {
        return;
    }
    let (loaded, diags) = resources(std::iter::once(("fuzz-ns", "fuzz-w", &reg)), &[]);
    assert!(!diags.has_errors(), "a checked registration made invalid YAML: {diags}\n{reg:?}");
    assert_eq!(loaded.len(), 2, "{loaded:?}");
    let we = loaded
        .iter()
        .find_map(|r| match r {
            Resource::WorkloadEntry(o) => Some(o),
            _ => None,
        })
        .expect("a WorkloadEntry");
    assert_eq!(we.spec.address.value, reg.address.to_string());
    assert_eq!(we.spec.labels.get("app"), Some(&reg.service));
    for (k, v) in &reg.labels {
        assert_eq!(we.spec.labels.get(k), Some(v), "label {k}");
    }
    assert_eq!(we.spec.labels.len(), reg.labels.len() + 1);
    let (model, diags) = weft_api::validate::build(&loaded);
    assert!(model.is_some(), "a lone registration must validate: {diags}\n{reg:?}");
});
