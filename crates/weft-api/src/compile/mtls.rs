//! Which mTLS mode applies to a workload's port: the narrowest PeerAuthentication wins.
//!
//! Scopes, narrowest first (as Istio resolves them): a policy whose selector picks the workload
//! (its port-level mode, then its own mode), the namespace's selector-less policy, the root
//! namespace's selector-less policy, then PERMISSIVE. UNSET at one scope falls through to the
//! next. Among several selector policies for one workload, the oldest name wins, so the result
//! never depends on file order.

use std::collections::BTreeMap;

use crate::model::{Model, PeerAuthModel};
use crate::view::{InboundPolicy, MtlsMode, WorkloadView};

/// The inbound policy of `workload`: its mode and every port that differs from it.
pub fn inbound_policy(model: &Model, workload: &WorkloadView) -> InboundPolicy {
    let scopes = Scopes::of(model, workload);
    let mode = scopes.mode(None);
    let mut ports = BTreeMap::new();
    if let Some(selected) = scopes.workload {
        for &port in selected.ports.keys() {
            let m = scopes.mode(Some(port));
            if m != mode {
                ports.insert(port, m);
            }
        }
    }
    InboundPolicy {
        mode,
        ports,
        authz: Vec::new(),
        jwt: Vec::new(),
        rate_limits: Vec::new(),
    }
}

/// The mode of `workload` as a whole (its PeerAuthentications' `mtls.mode`, not their
/// port-level settings).
pub fn workload_mode(model: &Model, workload: &WorkloadView) -> MtlsMode {
    Scopes::of(model, workload).mode(None)
}

/// The mode of one port of `workload`.
pub fn mode_for(model: &Model, workload: &WorkloadView, port: u16) -> MtlsMode {
    Scopes::of(model, workload).mode(Some(port))
}

struct Scopes<'m> {
    workload: Option<&'m PeerAuthModel>,
    namespace: Option<&'m PeerAuthModel>,
    mesh: Option<&'m PeerAuthModel>,
}

impl<'m> Scopes<'m> {
    fn of(model: &'m Model, w: &WorkloadView) -> Self {
        let pick = |filter: &dyn Fn(&PeerAuthModel) -> bool| {
            model
                .peer_authentications
                .iter()
                .filter(|p| filter(p))
                .min_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)))
        };
        Scopes {
            workload: pick(&|p| {
                p.namespace == w.namespace
                    && p.selector
                        .as_ref()
                        .is_some_and(|s| s.iter().all(|(k, v)| w.labels.get(k) == Some(v)))
            }),
            namespace: pick(&|p| p.namespace == w.namespace && p.selector.is_none()),
            mesh: pick(&|p| p.namespace == model.root_namespace && p.selector.is_none()),
        }
    }

    fn mode(&self, port: Option<u16>) -> MtlsMode {
        let port_mode = port.and_then(|p| self.workload.and_then(|w| w.ports.get(&p).copied()));
        port_mode
            .or_else(|| self.workload.and_then(|w| w.mode))
            .or_else(|| self.namespace.and_then(|n| n.mode))
            .or_else(|| self.mesh.and_then(|m| m.mode))
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::load::load_str;
    use crate::validate::build;
    use crate::view::MtlsMode::{Disable, Permissive, Strict};

    use super::*;

    const WORKLOADS: &str = r#"
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: a, namespace: shop}
spec: {address: 127.0.10.1, labels: {app: a}, serviceAccount: a}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: b, namespace: shop}
spec: {address: 127.0.10.2, labels: {app: b}, serviceAccount: b}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: c, namespace: other}
spec: {address: 127.0.10.3, labels: {app: c}, serviceAccount: c}
"#;

    fn model(policies: &str) -> Model {
        let text = if policies.is_empty() {
            WORKLOADS.to_string()
        } else {
            format!("{WORKLOADS}---\n{policies}")
        };
        let (resources, diags) = load_str(Path::new("t.yaml"), &text);
        assert!(!diags.has_errors(), "{diags}");
        let (model, diags) = build(&resources);
        model.unwrap_or_else(|| panic!("{diags}"))
    }

    fn policy_of(m: &Model, name: &str) -> InboundPolicy {
        let w = m
            .workloads
            .iter()
            .find(|w| w.view.name == name)
            .map(|w| w.view.clone())
            .unwrap_or_else(|| panic!("no workload {name}"));
        inbound_policy(m, &w)
    }

    #[test]
    fn permissive_without_policies() {
        let m = model("");
        assert_eq!(policy_of(&m, "a").mode, Permissive);
    }

    #[test]
    fn narrowest_scope_wins_and_unset_inherits() {
        let m = model(
            r#"
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: istio-system}
spec: {mtls: {mode: STRICT}}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: shop}
spec: {mtls: {mode: PERMISSIVE}}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: b-only, namespace: shop}
spec:
  selector: {matchLabels: {app: b}}
  mtls: {mode: UNSET}
  portLevelMtls:
    8080: {mode: DISABLE}
    9090: {mode: STRICT}
"#,
        );
        // Namespace policy beats mesh-wide.
        assert_eq!(
            policy_of(&m, "a"),
            InboundPolicy {
                mode: Permissive,
                ..Default::default()
            }
        );
        // UNSET on the workload inherits the namespace's mode; its ports override it.
        let b = policy_of(&m, "b");
        assert_eq!(b.mode, Permissive);
        assert_eq!(b.mode_for(8080), Disable);
        assert_eq!(b.mode_for(9090), Strict);
        assert_eq!(b.mode_for(1234), Permissive);
        // Another namespace falls back to the mesh-wide policy.
        assert_eq!(policy_of(&m, "c").mode, Strict);
    }

    #[test]
    fn port_level_without_selector_is_an_error() {
        let text = format!(
            "{WORKLOADS}---\napiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {{name: p, namespace: shop}}\nspec:\n  portLevelMtls:\n    8080: {{mode: STRICT}}\n"
        );
        let (resources, _) = load_str(Path::new("t.yaml"), &text);
        let (model, diags) = build(&resources);
        assert!(model.is_none());
        let text = diags.to_string();
        assert!(text.contains("spec.portLevelMtls"), "{text}");
        assert!(text.contains("selector"), "{text}");
    }
}
