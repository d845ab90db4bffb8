//! `weft proxy-config WORKLOAD --diff`: where a proxy's view differs from what the control
//! plane would send it now, section by section, each difference as a JSON path with both
//! values. Lists are keyed by their items' names (Services, endpoints) where they have one, so
//! one added Service is one line, not a shifted list.

use std::process::ExitCode;

use serde_json::{json, Value};

use super::output::{print_json, Output};

/// Most differences printed; the rest are counted.
const SHOWN: usize = 40;

pub fn show(
    node: &str,
    held: &Value,
    expected: &Value,
    output: Output,
) -> anyhow::Result<ExitCode> {
    let mut diffs = Vec::new();
    diff("", &held["view"], &expected["view"], &mut diffs);
    // The version is a digest of the rest: it differs whenever anything else does.
    diffs.retain(|d| d.path != "version");
    let same = diffs.is_empty();
    if output == Output::Json {
        let list: Vec<Value> = diffs
            .iter()
            .map(|d| json!({"path": d.path, "proxy": d.proxy, "control": d.control}))
            .collect();
        print_json(&json!({
            "workload": node,
            "inSync": same,
            "proxyVersion": held["version"],
            "controlVersion": expected["version"],
            "generation": expected["generation"],
            "differences": list,
        }));
    } else if same {
        println!(
            "{node}: in sync with the control plane (version {}, generation {})",
            held["version"].as_str().unwrap_or("?"),
            expected["generation"]
        );
    } else {
        println!(
            "{node}: differs from what the control plane would send (proxy {}, control plane {}):",
            held["version"].as_str().unwrap_or("?"),
            expected["version"].as_str().unwrap_or("?"),
        );
        for d in diffs.iter().take(SHOWN) {
            println!(
                "  {}: proxy {} / control plane {}",
                d.path,
                brief(&d.proxy),
                brief(&d.control)
            );
        }
        if diffs.len() > SHOWN {
            println!("  ... and {} more (-o json lists all)", diffs.len() - SHOWN);
        }
    }
    Ok(if same {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

#[derive(Debug, PartialEq)]
pub struct Difference {
    pub path: String,
    pub proxy: Value,
    pub control: Value,
}

/// Appends every leaf where `a` (the proxy's) and `b` (the control plane's) differ.
pub fn diff(path: &str, a: &Value, b: &Value, out: &mut Vec<Difference>) {
    if a == b {
        return;
    }
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                let null = Value::Null;
                let p = join(path, k);
                diff(
                    &p,
                    x.get(k).unwrap_or(&null),
                    y.get(k).unwrap_or(&null),
                    out,
                );
            }
        }
        (Value::Array(x), Value::Array(y)) if keyed(x) && keyed(y) => {
            let index = |list: &Vec<Value>| -> std::collections::BTreeMap<String, Value> {
                list.iter().map(|v| (key_of(v), v.clone())).collect()
            };
            let (x, y) = (index(x), index(y));
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                let null = Value::Null;
                let p = format!("{path}[{k}]");
                diff(
                    &p,
                    x.get(k).unwrap_or(&null),
                    y.get(k).unwrap_or(&null),
                    out,
                );
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (a, b)) in x.iter().zip(y).enumerate() {
                diff(&format!("{path}[{i}]"), a, b, out);
            }
        }
        _ => out.push(Difference {
            path: path.to_string(),
            proxy: a.clone(),
            control: b.clone(),
        }),
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// Items named by `namespace/name`, or by `addr`: matched by that, not by position.
fn keyed(list: &[Value]) -> bool {
    !list.is_empty()
        && list.iter().all(|v| {
            v.get("name").is_some_and(Value::is_string)
                || v.get("addr").is_some_and(Value::is_string)
        })
}

fn key_of(v: &Value) -> String {
    if let Some(addr) = v.get("addr").and_then(Value::as_str) {
        return addr.to_string();
    }
    let name = v.get("name").and_then(Value::as_str).unwrap_or("?");
    match v.get("namespace").and_then(Value::as_str) {
        Some(ns) => format!("{ns}/{name}"),
        None => name.to_string(),
    }
}

fn brief(v: &Value) -> String {
    let s = match v {
        Value::Null => "(absent)".to_string(),
        other => other.to_string(),
    };
    if s.chars().count() > 80 {
        format!("{}…", s.chars().take(79).collect::<String>())
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn differences_are_paths_and_named_items_match_by_name() {
        let proxy = json!({
            "version": "a",
            "services": [{"namespace": "shop", "name": "reviews", "vip": "10.0.0.1"}],
            "backends": {"shop/reviews:80": {"endpoints": [{"addr": "10.0.0.7:80", "weight": 1}]}},
        });
        let control = json!({
            "version": "b",
            "services": [
                {"namespace": "shop", "name": "cart", "vip": "10.0.0.2"},
                {"namespace": "shop", "name": "reviews", "vip": "10.0.0.1"},
            ],
            "backends": {"shop/reviews:80": {"endpoints": [{"addr": "10.0.0.7:80", "weight": 2}]}},
        });
        let mut out = Vec::new();
        diff("", &proxy, &control, &mut out);
        let paths: Vec<&str> = out.iter().map(|d| d.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "backends.shop/reviews:80.endpoints[10.0.0.7:80].weight",
                "services[shop/cart]",
                "version",
            ]
        );
        assert_eq!(out[1].proxy, Value::Null);
        let mut none = Vec::new();
        diff("", &proxy, &proxy, &mut none);
        assert!(none.is_empty());
    }
}
