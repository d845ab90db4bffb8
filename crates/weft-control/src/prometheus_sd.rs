//! Prometheus service discovery for the proxies: `GET /prometheus/targets` on the admin
//! endpoint answers in the format of Prometheus's `http_sd_configs`, and with
//! `--prometheus-file-sd PATH` the same list is kept in a file for `file_sd_configs`:
//! one target group per meshed workload, its proxy's admin address (`/metrics` there), with
//! labels that say whose proxy it is.
//!
//! ```yaml
//! scrape_configs:
//! - job_name: weft-proxies
//!   http_sd_configs: [{url: "http://127.0.0.1:4181/prometheus/targets"}]
//! ```
//!
//! The labels `namespace`, `workload`, `app` and `version` are attached to every series
//! scraped from a proxy, so dashboards select by them; `__meta_weft_*` carry the service
//! account and every workload label for relabelling.

use std::path::PathBuf;
use std::sync::Arc;

use serde_json::{json, Map, Value};
use tokio::sync::watch;
use weft_api::model::Model;

use crate::published::Published;

/// Keeps `path` equal to [`targets`] of the published model, for `file_sd_configs`:
/// written when the control plane starts and again whenever the model changes, each time
/// whole (a temporary file renamed over it, so Prometheus never reads half of one).
pub async fn keep_file(mut published: watch::Receiver<Arc<Published>>, path: PathBuf) {
    loop {
        // The model is taken out first: the watch stays unlocked while the file is written.
        let model = published.borrow_and_update().model.clone();
        let text = targets(&model).to_string() + "\n";
        let tmp = path.with_extension("tmp");
        let written = std::fs::write(&tmp, text).and_then(|()| std::fs::rename(&tmp, &path));
        if let Err(e) = written {
            tracing::warn!(path = %path.display(), error = %e, "cannot write the Prometheus targets file");
        }
        if published.changed().await.is_err() {
            return;
        }
    }
}

/// The target groups for every meshed workload of `model`, in the model's order.
pub fn targets(model: &Model) -> Value {
    let port = model.mesh.admin_port;
    let groups: Vec<Value> = model
        .workloads
        .iter()
        .filter(|w| w.view.meshed)
        .map(|w| {
            let v = &w.view;
            let mut labels = Map::new();
            labels.insert("namespace".into(), json!(v.namespace));
            labels.insert("workload".into(), json!(v.name));
            for (key, label) in [("app", "app"), ("version", "version")] {
                if let Some(value) = v.labels.get(key) {
                    labels.insert(label.into(), json!(value));
                }
            }
            labels.insert(
                "__meta_weft_service_account".into(),
                json!(v.service_account),
            );
            for (key, value) in &v.labels {
                labels.insert(
                    format!("__meta_weft_label_{}", label_name(key)),
                    json!(value),
                );
            }
            let address = std::net::SocketAddr::new(v.address, port);
            json!({"targets": [address.to_string()], "labels": labels})
        })
        .collect();
    Value::Array(groups)
}

/// A Kubernetes label key as a Prometheus label name: anything but `[a-zA-Z0-9_]` becomes `_`
/// (as Prometheus's Kubernetes discovery does).
fn label_name(key: &str) -> String {
    key.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn one_group_per_meshed_workload() {
        let yaml = r#"
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: reviews-v1, namespace: shop}
spec: {address: 10.0.0.7, labels: {app: reviews, version: v1, app.kubernetes.io/part-of: shop}, serviceAccount: reviews}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: db, namespace: shop, annotations: {weft.dev/proxy: none}}
spec: {address: 10.0.0.8, labels: {app: db}}
"#;
        let (resources, diags) = weft_api::load::load_str(Path::new("t.yaml"), yaml);
        assert!(diags.errors().next().is_none(), "{diags}");
        let (model, diags) = weft_api::validate::build(&resources);
        let model = model.unwrap_or_else(|| panic!("{diags}"));
        let groups = targets(&model);
        let groups = groups.as_array().expect("an array");
        assert_eq!(
            groups.len(),
            1,
            "the workload without a proxy has no /metrics: {groups:?}"
        );
        assert_eq!(groups[0]["targets"], json!(["10.0.0.7:4191"]));
        let labels = &groups[0]["labels"];
        assert_eq!(labels["namespace"], "shop");
        assert_eq!(labels["workload"], "reviews-v1");
        assert_eq!(labels["app"], "reviews");
        assert_eq!(labels["version"], "v1");
        assert_eq!(labels["__meta_weft_service_account"], "reviews");
        assert_eq!(
            labels["__meta_weft_label_app_kubernetes_io_part_of"],
            "shop"
        );
    }
}
