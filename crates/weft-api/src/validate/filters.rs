//! Route filters: header modifiers, redirects, URL rewrites, mirrors, and `ExtensionRef`s to
//! `weft.dev` `FaultInjection`s (on a rule, not a backendRef).

use std::collections::BTreeSet;

use crate::model::{FilterModel, Model};
use crate::resources::gateway::{HeaderModifier, HttpFilter, PathModifier};
use crate::view::{FilterView, HeaderModifierView, PathModifierView, RedirectView, RewriteView};

use super::{HintExt, Reporter};

/// Where a list of filters appears, which decides the filter types allowed.
#[derive(Clone, Copy)]
pub(super) enum Allowed {
    /// An HTTPRoute rule; `prefix_only` says whether every match is a PathPrefix (which
    /// `ReplacePrefixMatch` needs).
    Http {
        prefix_only: bool,
    },
    Grpc,
    /// A backendRef's own filters.
    Backend,
}

const STATUS_CODES: [u16; 5] = [301, 302, 303, 307, 308];

pub(super) fn translate(
    rep: &mut Reporter<'_>,
    field: &str,
    filters: &[HttpFilter],
    allowed: Allowed,
    route_ns: &str,
    model: &Model,
) -> Vec<FilterModel> {
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    for (i, f) in filters.iter().enumerate() {
        let ff = format!("{field}[{i}]");
        let kind = f.filter_type.as_str();
        let permitted = matches!(
            (allowed, kind),
            (
                _,
                "RequestHeaderModifier" | "ResponseHeaderModifier" | "RequestMirror"
            ) | (Allowed::Http { .. }, "RequestRedirect" | "URLRewrite")
                | (Allowed::Http { .. } | Allowed::Grpc, "ExtensionRef")
        );
        if matches!(kind, "CORS" | "ExternalAuth") {
            rep.error(
                format!("{ff}.type"),
                format!("filter `{kind}` is not implemented by Weft"),
            )
            .with_hint("remove it; Weft never ignores a filter silently");
            continue;
        }
        if !permitted {
            let hint = match allowed {
                Allowed::Http { .. } => "RequestHeaderModifier, ResponseHeaderModifier, RequestRedirect, URLRewrite, RequestMirror or ExtensionRef",
                Allowed::Grpc => "RequestHeaderModifier, ResponseHeaderModifier, RequestMirror or ExtensionRef",
                Allowed::Backend => "RequestHeaderModifier, ResponseHeaderModifier or RequestMirror",
            };
            rep.error(
                format!("{ff}.type"),
                format!("filter type `{kind}` is not allowed here"),
            )
            .with_hint(hint);
            continue;
        }
        if kind != "RequestMirror" && !seen.insert(kind) {
            rep.error(
                format!("{ff}.type"),
                format!("`{kind}` appears twice in one filter list"),
            )
            .with_hint("merge them into one");
            continue;
        }
        let present = [
            ("requestHeaderModifier", f.request_header_modifier.is_some()),
            (
                "responseHeaderModifier",
                f.response_header_modifier.is_some(),
            ),
            ("requestRedirect", f.request_redirect.is_some()),
            ("urlRewrite", f.url_rewrite.is_some()),
            ("requestMirror", f.request_mirror.is_some()),
            ("extensionRef", f.extension_ref.is_some()),
        ];
        let expected = expected_field(kind);
        if let Some((extra, _)) = present.iter().find(|(name, set)| *set && *name != expected) {
            rep.error(
                format!("{ff}.{extra}"),
                format!("`{extra}` does not belong to a `{kind}` filter"),
            )
            .with_hint(format!("a `{kind}` filter takes `{expected}`"));
            continue;
        }
        let translated = match kind {
            "RequestHeaderModifier" => f
                .request_header_modifier
                .as_ref()
                .and_then(|m| header_modifier(rep, &format!("{ff}.requestHeaderModifier"), m))
                .map(|m| FilterModel::Plain(FilterView::RequestHeaderModifier(m))),
            "ResponseHeaderModifier" => f
                .response_header_modifier
                .as_ref()
                .and_then(|m| header_modifier(rep, &format!("{ff}.responseHeaderModifier"), m))
                .map(|m| FilterModel::Plain(FilterView::ResponseHeaderModifier(m))),
            "RequestRedirect" => f.request_redirect.as_ref().and_then(|r| {
                let field = format!("{ff}.requestRedirect");
                let mut ok = true;
                let scheme = r.scheme.clone();
                if let Some(s) = &scheme {
                    if s != "http" && s != "https" {
                        rep.error(
                            format!("{field}.scheme"),
                            format!("scheme `{s}` is not http or https"),
                        );
                        ok = false;
                    }
                }
                let status_code = r.status_code.unwrap_or(302);
                if !STATUS_CODES.contains(&status_code) {
                    rep.error(
                        format!("{field}.statusCode"),
                        format!("{status_code} is not a redirect status"),
                    )
                    .with_hint("301, 302, 303, 307 or 308");
                    ok = false;
                }
                let port = match r.port.map(u16::try_from) {
                    Some(Ok(p)) if p != 0 => Some(p),
                    None => None,
                    Some(_) => {
                        rep.error(format!("{field}.port"), "not a port number");
                        ok = false;
                        None
                    }
                };
                let path = path_modifier(
                    rep,
                    &format!("{field}.path"),
                    r.path.as_ref(),
                    allowed,
                    &mut ok,
                );
                ok.then(|| {
                    FilterModel::Plain(FilterView::RequestRedirect(RedirectView {
                        scheme,
                        hostname: r.hostname.clone(),
                        path,
                        port,
                        status_code,
                    }))
                })
            }),
            "URLRewrite" => f.url_rewrite.as_ref().and_then(|r| {
                let mut ok = true;
                let path = path_modifier(
                    rep,
                    &format!("{ff}.urlRewrite.path"),
                    r.path.as_ref(),
                    allowed,
                    &mut ok,
                );
                ok.then(|| {
                    FilterModel::Plain(FilterView::UrlRewrite(RewriteView {
                        hostname: r.hostname.clone(),
                        path,
                    }))
                })
            }),
            "RequestMirror" => f.request_mirror.as_ref().and_then(|m| {
                let field = format!("{ff}.requestMirror");
                let b = &m.backend_ref;
                let backend = super::routes::resolve_backend(
                    rep,
                    &format!("{field}.backendRef"),
                    &b.name,
                    b.group.as_deref(),
                    b.kind.as_deref(),
                    b.namespace.as_deref(),
                    b.port,
                    route_ns,
                    model,
                    false,
                )?;
                let per_million = match (m.percent, &m.fraction) {
                    (Some(_), Some(_)) => {
                        rep.error(field.clone(), "set `percent` or `fraction`, not both");
                        return None;
                    }
                    (Some(p), None) if p <= 100 => p * 10_000,
                    (Some(p), None) => {
                        rep.error(
                            format!("{field}.percent"),
                            format!("{p} is not a percentage"),
                        );
                        return None;
                    }
                    (None, Some(fr)) => {
                        let den = fr.denominator.unwrap_or(100);
                        if den == 0 || fr.numerator > den {
                            rep.error(
                                format!("{field}.fraction"),
                                "the fraction must be between 0 and 1 with a denominator above 0",
                            );
                            return None;
                        }
                        ((u64::from(fr.numerator) * 1_000_000) / u64::from(den)) as u32
                    }
                    (None, None) => 1_000_000,
                };
                Some(FilterModel::Mirror {
                    backend,
                    per_million,
                })
            }),
            "ExtensionRef" => f
                .extension_ref
                .as_ref()
                .and_then(|e| fault_ref(rep, &format!("{ff}.extensionRef"), e, route_ns, model))
                .map(|v| FilterModel::Plain(FilterView::Fault(v))),
            _ => None,
        };
        if let Some(t) = translated {
            out.push(t);
        } else if present.iter().all(|(_, set)| !set) {
            rep.error(
                format!("{ff}.{expected}"),
                format!("a `{kind}` filter needs `{expected}`"),
            );
        }
    }
    if seen.contains("RequestRedirect") && seen.contains("URLRewrite") {
        rep.error(
            field.to_string(),
            "RequestRedirect and URLRewrite cannot be used in the same rule",
        )
        .with_hint("a redirect answers the client; a rewrite changes what the backend sees");
    }
    out
}

fn expected_field(kind: &str) -> &'static str {
    match kind {
        "RequestHeaderModifier" => "requestHeaderModifier",
        "ResponseHeaderModifier" => "responseHeaderModifier",
        "RequestRedirect" => "requestRedirect",
        "URLRewrite" => "urlRewrite",
        "ExtensionRef" => "extensionRef",
        _ => "requestMirror",
    }
}

fn header_modifier(
    rep: &mut Reporter<'_>,
    field: &str,
    m: &HeaderModifier,
) -> Option<HeaderModifierView> {
    let mut ok = true;
    let check =
        |rep: &mut Reporter<'_>, f: String, name: &str, value: Option<&str>, ok: &mut bool| {
            let lower = name.to_ascii_lowercase();
            if http::HeaderName::from_bytes(lower.as_bytes()).is_err() {
                rep.error(f, format!("`{name}` is not a valid header name"));
                *ok = false;
            } else if value.is_some_and(|v| http::HeaderValue::from_str(v).is_err()) {
                rep.error(
                    f,
                    format!("the value of `{name}` has characters a header cannot carry"),
                );
                *ok = false;
            } else if lower.starts_with(':') || lower == "host" {
                rep.error(f, format!("`{name}` cannot be modified by a header filter"))
                    .with_hint("use a URLRewrite filter's `hostname` to change the host");
                *ok = false;
            }
            lower
        };
    let mut view = HeaderModifierView::default();
    let mut set_names = BTreeSet::new();
    for (i, h) in m.set.iter().enumerate() {
        let n = check(
            rep,
            format!("{field}.set[{i}].name"),
            &h.name,
            Some(&h.value),
            &mut ok,
        );
        if !set_names.insert(n.clone()) {
            rep.error(
                format!("{field}.set[{i}].name"),
                format!("`{}` is set twice", h.name),
            );
            ok = false;
        }
        view.set.push((n, h.value.clone()));
    }
    for (i, h) in m.add.iter().enumerate() {
        let n = check(
            rep,
            format!("{field}.add[{i}].name"),
            &h.name,
            Some(&h.value),
            &mut ok,
        );
        view.add.push((n, h.value.clone()));
    }
    for (i, h) in m.remove.iter().enumerate() {
        let n = check(rep, format!("{field}.remove[{i}]"), h, None, &mut ok);
        view.remove.push(n);
    }
    ok.then_some(view)
}

fn path_modifier(
    rep: &mut Reporter<'_>,
    field: &str,
    p: Option<&PathModifier>,
    allowed: Allowed,
    ok: &mut bool,
) -> Option<PathModifierView> {
    let p = p?;
    match p.modifier_type.as_str() {
        "ReplaceFullPath" => match &p.replace_full_path {
            Some(v) if v.starts_with('/') => Some(PathModifierView::ReplaceFullPath(v.clone())),
            _ => {
                rep.error(
                    format!("{field}.replaceFullPath"),
                    "ReplaceFullPath needs `replaceFullPath` starting with '/'",
                );
                *ok = false;
                None
            }
        },
        "ReplacePrefixMatch" => {
            if let Allowed::Http { prefix_only: false } = allowed {
                rep.error(
                    format!("{field}.type"),
                    "ReplacePrefixMatch needs every match of the rule to be a PathPrefix match",
                )
                .with_hint("use ReplaceFullPath, or change the matches to PathPrefix");
                *ok = false;
                return None;
            }
            match &p.replace_prefix_match {
                Some(v) if v.starts_with('/') => {
                    Some(PathModifierView::ReplacePrefixMatch(v.clone()))
                }
                _ => {
                    rep.error(
                        format!("{field}.replacePrefixMatch"),
                        "ReplacePrefixMatch needs `replacePrefixMatch` starting with '/'",
                    );
                    *ok = false;
                    None
                }
            }
        }
        other => {
            rep.error(
                format!("{field}.type"),
                format!("unknown path modifier `{other}`"),
            )
            .with_hint("ReplaceFullPath or ReplacePrefixMatch");
            *ok = false;
            None
        }
    }
}

/// The FaultInjection an `extensionRef` names, from the route's namespace.
fn fault_ref(
    rep: &mut Reporter<'_>,
    field: &str,
    e: &crate::resources::gateway::ExtensionRef,
    route_ns: &str,
    model: &Model,
) -> Option<crate::view::FaultView> {
    if e.group != "weft.dev" || e.kind != "FaultInjection" {
        rep.error_span(
            &e.name,
            format!("{field}.kind"),
            format!("extension `{}/{}` is not one Weft knows", e.group, e.kind),
        )
        .with_hint("group `weft.dev`, kind `FaultInjection`");
        return None;
    }
    let key = (route_ns.to_string(), e.name.value.clone());
    let found = model.faults.get(&key).cloned();
    if found.is_none() {
        rep.error_span(
            &e.name,
            format!("{field}.name"),
            format!("FaultInjection {route_ns}/{} does not exist", e.name.value),
        )
        .with_hint("define it in the route's namespace, or remove the filter");
    }
    found
}
