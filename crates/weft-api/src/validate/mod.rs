//! Validating a set of resources as a whole and building the [`Model`].
//!
//! Each resource is checked on its own (values, matches, filters), then against the others
//! (references, duplicates, conflicting ports and addresses). Every problem is reported, with
//! its file, line and field, before the caller decides: a set with any error is not used.

mod admin;
mod authn;
mod authz;
mod authz_rules;
mod filters;
mod local;
mod locality;
mod matches;
mod mesh;
mod peer_auth;
mod policy;
mod resilience;
mod retries;
mod routes;
mod services;
mod timing;
mod tracing;
mod traffic_policy;

pub use locality::{TUNNEL_ANNOTATION, ZONE_LABEL};
pub use services::{protocol_from_app_protocol, CONTROL_NAMESPACE, CONTROL_SERVICE_ACCOUNT};

use std::collections::BTreeMap;

use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::model::Model;
use crate::resources::{Resource, Source, Spanned};

/// Validates `resources` and builds the model. The model is `None` when there are errors.
pub fn build(resources: &[Resource]) -> (Option<Model>, Diagnostics) {
    let mut diags = Diagnostics::default();
    check_duplicates(resources, &mut diags);

    let mut model = Model::default();
    for r in resources {
        *model.counts.entry(r.kind().name()).or_default() += 1;
    }
    mesh::build(resources, &mut model, &mut diags);
    services::build(resources, &mut model, &mut diags);
    resilience::faults(resources, &mut model, &mut diags);
    routes::build(resources, &mut model, &mut diags);
    resilience::rate_limits(resources, &mut model, &mut diags);
    policy::build(resources, &mut model, &mut diags);
    for r in resources {
        if let Resource::AuthorizationPolicy(ap) = r {
            if let Some(p) = authz::build(ap, Reporter::new(&mut diags, r), &model) {
                model.authz_policies.push(p);
            }
        }
        if let Resource::RequestAuthentication(ra) = r {
            if let Some(p) = authn::build(ra, Reporter::new(&mut diags, r), &model) {
                model.jwt_policies.push(p);
            }
        }
    }
    local::build(resources, &mut model, &mut diags);
    model.index_workloads();

    if diags.has_errors() {
        (None, diags)
    } else {
        (Some(model), diags)
    }
}

/// Loads a directory and validates it: the one call a proxy or `weft validate` makes.
pub fn load_and_build(dir: &std::path::Path) -> (Option<Model>, Diagnostics) {
    build_loaded(crate::load::load_dir(dir))
}

/// [`load_and_build`] through a [`crate::load_cache::LoadCache`]: for watchers that reload
/// often.
pub fn load_and_build_cached(
    dir: &std::path::Path,
    cache: &mut crate::load_cache::LoadCache,
) -> (Option<Model>, Diagnostics) {
    build_loaded(cache.load_dir(dir))
}

/// Validates what a load produced; load errors also mean no model.
pub fn build_loaded(
    (resources, mut diags): (Vec<Resource>, Diagnostics),
) -> (Option<Model>, Diagnostics) {
    let (model, more) = build(&resources);
    diags.extend(more);
    if diags.has_errors() {
        (None, diags)
    } else {
        (model, diags)
    }
}

fn check_duplicates(resources: &[Resource], diags: &mut Diagnostics) {
    let mut seen: BTreeMap<(String, String, String), &Source> = BTreeMap::new();
    for r in resources {
        let meta = r.meta();
        let key = (
            r.kind().name().to_string(),
            meta.namespace().to_string(),
            meta.name().to_string(),
        );
        if let Some(first) = seen.get(&key) {
            diags.push(
                Diagnostic::error(format!(
                    "duplicate {}: the same kind, namespace and name were already defined at {}:{}",
                    r.display_name(),
                    first.file.display(),
                    first.line
                ))
                .at(r.source().file.as_path(), r.source().line)
                .resource(r.display_name())
                .field("metadata.name")
                .hint("rename one of them, or delete the copy"),
            );
        } else {
            seen.insert(key, r.source());
        }
    }
}

/// Reports problems of one resource with the right file, line and resource name.
pub(crate) struct Reporter<'a> {
    pub diags: &'a mut Diagnostics,
    pub source: &'a Source,
    pub resource: String,
}

impl<'a> Reporter<'a> {
    pub fn new(diags: &'a mut Diagnostics, r: &'a Resource) -> Self {
        Self {
            resource: r.display_name(),
            source: r.source(),
            diags,
        }
    }

    /// An error at the resource's first line.
    pub fn error(
        &mut self,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> &mut Diagnostic {
        let line = self.source.line;
        self.error_at(line, field, message)
    }

    /// An error at the line of a spanned value.
    pub fn error_span<T>(
        &mut self,
        span: &Spanned<T>,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> &mut Diagnostic {
        let line = self.source.line_of(span);
        self.error_at(line, field, message)
    }

    pub fn error_at(
        &mut self,
        line: u64,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> &mut Diagnostic {
        self.push(Diagnostic::error(message), line, field)
    }

    /// A warning at the resource's first line.
    pub fn warning(
        &mut self,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> &mut Diagnostic {
        let line = self.source.line;
        self.warning_at(line, field, message)
    }

    /// Errors reported so far (of every resource): a check compares it before and after.
    pub fn error_count(&self) -> usize {
        self.diags.errors().count()
    }

    pub fn warning_at(
        &mut self,
        line: u64,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> &mut Diagnostic {
        self.push(Diagnostic::warning(message), line, field)
    }

    fn push(&mut self, d: Diagnostic, line: u64, field: impl Into<String>) -> &mut Diagnostic {
        let d = d
            .at(self.source.file.as_path(), line)
            .resource(self.resource.clone())
            .field(field);
        self.diags.push(d);
        let last = self.diags.0.len() - 1;
        &mut self.diags.0[last]
    }
}

/// Adds a hint to a diagnostic in place.
pub(crate) trait HintExt {
    fn with_hint(&mut self, hint: impl Into<String>);
}

impl HintExt for Diagnostic {
    fn with_hint(&mut self, hint: impl Into<String>) {
        self.hint = Some(hint.into());
    }
}

/// Kubernetes DNS-1123 label: what Service and namespace names must be.
pub(crate) fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

#[cfg(test)]
mod authn_tests;
#[cfg(test)]
mod authz_tests;
#[cfg(test)]
mod network_tests;
#[cfg(test)]
mod resilience_tests;
#[cfg(test)]
mod tests;
