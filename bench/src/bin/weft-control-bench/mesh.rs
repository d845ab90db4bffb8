//! The benchmark's mesh as YAML: `services` Services in namespace `bench`, each selecting
//! `endpoints_per_service` WorkloadEntries, plus `hot.yaml` holding one Service every client
//! calls (the file the benchmark changes).

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};

pub const NS: &str = "bench";

pub fn service_name(i: usize) -> String {
    format!("svc-{i}")
}

pub fn workload_name(service: usize, replica: usize) -> String {
    format!("w-{service}-{replica}")
}

fn address(service: usize, replica: usize) -> String {
    let n = service * 16 + replica;
    format!("10.{}.{}.{}", 1 + n / 65536, (n / 256) % 256, n % 256)
}

/// Writes `services.yaml` and `workloads.yaml` (and the first `hot.yaml`).
pub fn write(dir: &Path, services: usize, endpoints_per_service: usize) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut svc = String::new();
    let mut wl = String::new();
    for i in 1..=services {
        let name = service_name(i);
        writeln!(svc, "---\napiVersion: v1\nkind: Service\nmetadata: {{name: {name}, namespace: {NS}}}\nspec:\n  selector: {{app: {name}}}\n  ports: [{{name: http, port: 80, targetPort: 8080, appProtocol: http}}]")?;
        for r in 0..endpoints_per_service {
            let w = workload_name(i, r);
            writeln!(wl, "---\napiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata: {{name: {w}, namespace: {NS}}}\nspec: {{address: {}, labels: {{app: {name}}}, serviceAccount: {name}}}", address(i, r))?;
        }
    }
    std::fs::write(dir.join("services.yaml"), svc).context("services.yaml")?;
    std::fs::write(dir.join("workloads.yaml"), wl).context("workloads.yaml")?;
    write_hot(dir, 1)
}

/// The hot Service (`svc-0`) with `replicas` endpoints: rewriting it is one change.
pub fn write_hot(dir: &Path, replicas: usize) -> Result<()> {
    write_hot_at(dir, replicas, None)
}

/// The hot Service with two endpoints, the second moved to an address of its own for change
/// `change`: for `weft apply`, which adds and updates but removes nothing.
pub fn write_hot_moved(dir: &Path, change: usize) -> Result<()> {
    write_hot_at(
        dir,
        2,
        Some(format!("10.250.{}.{}", change / 256, change % 256)),
    )
}

fn write_hot_at(dir: &Path, replicas: usize, last_at: Option<String>) -> Result<()> {
    let mut hot = format!("apiVersion: v1\nkind: Service\nmetadata: {{name: svc-0, namespace: {NS}}}\nspec:\n  selector: {{app: svc-0}}\n  ports: [{{name: http, port: 80, targetPort: 8080, appProtocol: http}}]\n");
    for r in 0..replicas {
        let w = workload_name(0, r);
        let at = match &last_at {
            Some(at) if r + 1 == replicas => at.clone(),
            _ => address(0, r),
        };
        writeln!(hot, "---\napiVersion: networking.istio.io/v1\nkind: WorkloadEntry\nmetadata: {{name: {w}, namespace: {NS}}}\nspec: {{address: {at}, labels: {{app: svc-0}}, serviceAccount: svc-0}}")?;
    }
    // Write then rename: the control plane never reads half a file.
    let tmp = dir.join(".hot.yaml.tmp");
    std::fs::write(&tmp, hot)?;
    std::fs::rename(&tmp, dir.join("hot.yaml"))?;
    Ok(())
}
