//! Fuzzes the configuration path a proxy and `weft validate` take on a YAML file: load
//! (`weft_api::load::load_str`), validate and build the model (`weft_api::validate::build`),
//! and compile a proxy's view (`weft_api::compile::compile`).
//!
//! The input is the text of one file (bytes that are not UTF-8 are read lossily, so mutations
//! that break an encoding still exercise the loader). Checks that nothing panics, whatever the
//! text: loading, validation, printing the diagnostics as `weft validate` does, compiling the
//! view for a proxy in `default` with no workload and for the proxy beside the first declared
//! workload (which must compile: it exists), and serialising the view to JSON as the admin
//! `/config` endpoint does.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use weft_api::compile::{compile, ProxyIdentity};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (resources, load_diags) = weft_api::load::load_str(Path::new("fuzz.yaml"), &text);
    let _ = load_diags.to_string();
    let (model, diags) = weft_api::validate::build(&resources);
    let _ = diags.to_string();
    let Some(model) = model else {
        return;
    };
    let who = ProxyIdentity {
        namespace: "default".into(),
        workload: None,
    };
    if let Ok(view) = compile(&model, &who) {
        serde_json::to_string(&view).expect("a view serialises to JSON");
    }
    if let Some(w) = model.workloads.first() {
        let who = ProxyIdentity {
            namespace: w.view.namespace.clone(),
            workload: Some(w.view.name.clone()),
        };
        let view = compile(&model, &who).expect("a declared workload's view compiles");
        serde_json::to_string(&view).expect("a view serialises to JSON");
    }
});
