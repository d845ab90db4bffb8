//! HTTPRoute and GRPCRoute matches: checked, defaulted, translated to [`RequestMatch`] with
//! their precedence rank.

use crate::model::MatchRank;
use crate::resources::gateway::{GrpcRouteMatch, HttpRouteMatch, ValueMatch};
use crate::view::{self, PathMatch, RequestMatch, StringMatch};

use super::{HintExt, Reporter};

const METHODS: [&str; 9] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
];

/// Precedence classes of HTTP path matches (greater first): exact, regex, prefix.
const RANK_EXACT: u8 = 3;
const RANK_REGEX: u8 = 2;
const RANK_PREFIX: u8 = 1;

pub(super) fn http(
    rep: &mut Reporter<'_>,
    field: &str,
    matches: &[HttpRouteMatch],
) -> Vec<(RequestMatch, MatchRank)> {
    if matches.is_empty() {
        return vec![(RequestMatch::default(), rank_of(&RequestMatch::default()))];
    }
    let mut out = Vec::new();
    for (i, m) in matches.iter().enumerate() {
        let f = format!("{field}.matches[{i}]");
        let mut ok = true;
        let path = match &m.path {
            None => PathMatch::default(),
            Some(p) => {
                let value = p.value.clone().unwrap_or_else(|| "/".into());
                let kind = p.match_type.as_deref().unwrap_or("PathPrefix");
                match kind {
                    "Exact" | "PathPrefix" if !value.starts_with('/') => {
                        rep.error(
                            format!("{f}.path.value"),
                            format!("path `{value}` does not start with '/'"),
                        );
                        ok = false;
                        PathMatch::default()
                    }
                    "Exact" if value.contains(['?', '#']) => {
                        rep.error(
                            format!("{f}.path.value"),
                            format!("path `{value}` contains a query or fragment"),
                        )
                        .with_hint("match query parameters with `queryParams`");
                        ok = false;
                        PathMatch::default()
                    }
                    "Exact" => PathMatch::Exact(value),
                    "PathPrefix" => {
                        let trimmed = value.trim_end_matches('/');
                        PathMatch::PathPrefix(if trimmed.is_empty() {
                            "/".into()
                        } else {
                            trimmed.into()
                        })
                    }
                    "RegularExpression" => match regex::Regex::new(&anchored(&value)) {
                        Ok(_) => PathMatch::RegularExpression(value),
                        Err(e) => {
                            rep.error(
                                format!("{f}.path.value"),
                                format!("invalid regular expression: {e}"),
                            );
                            ok = false;
                            PathMatch::default()
                        }
                    },
                    other => {
                        rep.error(
                            format!("{f}.path.type"),
                            format!("unknown path match type `{other}`"),
                        )
                        .with_hint("Exact, PathPrefix or RegularExpression");
                        ok = false;
                        PathMatch::default()
                    }
                }
            }
        };
        let headers = values(rep, &format!("{f}.headers"), &m.headers, true, &mut ok);
        let query_params = values(
            rep,
            &format!("{f}.queryParams"),
            &m.query_params,
            false,
            &mut ok,
        );
        let method = match &m.method {
            Some(method) if !METHODS.contains(&method.as_str()) => {
                rep.error(
                    format!("{f}.method"),
                    format!("`{method}` is not an HTTP method"),
                )
                .with_hint(format!("one of {}", METHODS.join(", ")));
                ok = false;
                None
            }
            other => other.clone(),
        };
        if ok {
            let m = RequestMatch {
                path,
                headers,
                query_params,
                method,
            };
            let rank = rank_of(&m);
            out.push((m, rank));
        }
    }
    out
}

fn rank_of(m: &RequestMatch) -> MatchRank {
    let (primary, length) = match &m.path {
        PathMatch::Exact(p) => (RANK_EXACT, p.len()),
        PathMatch::RegularExpression(p) => (RANK_REGEX, p.len()),
        PathMatch::PathPrefix(p) => (RANK_PREFIX, if p == "/" { 0 } else { p.len() }),
    };
    MatchRank {
        primary,
        length,
        secondary: usize::from(m.method.is_some()),
        headers: m.headers.len(),
        query: m.query_params.len(),
    }
}

pub(super) fn grpc(
    rep: &mut Reporter<'_>,
    field: &str,
    matches: &[GrpcRouteMatch],
) -> Vec<(RequestMatch, MatchRank)> {
    if matches.is_empty() {
        return vec![(RequestMatch::default(), MatchRank::default())];
    }
    let mut out = Vec::new();
    for (i, m) in matches.iter().enumerate() {
        let f = format!("{field}.matches[{i}]");
        let mut ok = true;
        let (path, service_len, method_len) = match &m.method {
            None => (PathMatch::default(), 0, 0),
            Some(mm) => {
                let service = mm.service.as_deref().filter(|s| !s.is_empty());
                let method = mm.method.as_deref().filter(|s| !s.is_empty());
                let lens = (service.map_or(0, str::len), method.map_or(0, str::len));
                match (mm.match_type.as_deref().unwrap_or("Exact"), service, method) {
                    (_, None, None) => {
                        rep.error(
                            format!("{f}.method"),
                            "a method match needs `service`, `method` or both",
                        );
                        ok = false;
                        (PathMatch::default(), 0, 0)
                    }
                    ("Exact", s, m)
                        if s.is_some_and(|s| s.contains('/'))
                            || m.is_some_and(|m| m.contains('/')) =>
                    {
                        rep.error(
                            format!("{f}.method"),
                            "gRPC service and method names cannot contain '/'",
                        );
                        ok = false;
                        (PathMatch::default(), 0, 0)
                    }
                    ("Exact", Some(s), Some(m)) => {
                        (PathMatch::Exact(format!("/{s}/{m}")), lens.0, lens.1)
                    }
                    ("Exact", Some(s), None) => (PathMatch::PathPrefix(format!("/{s}")), lens.0, 0),
                    ("Exact", None, Some(m)) => (
                        PathMatch::RegularExpression(format!("/[^/]+/{}", regex::escape(m))),
                        0,
                        lens.1,
                    ),
                    ("RegularExpression", s, m) => {
                        let re = format!("/{}/{}", s.unwrap_or("[^/]+"), m.unwrap_or("[^/]+"));
                        if let Err(e) = regex::Regex::new(&anchored(&re)) {
                            rep.error(
                                format!("{f}.method"),
                                format!("invalid regular expression: {e}"),
                            );
                            ok = false;
                        }
                        (PathMatch::RegularExpression(re), lens.0, lens.1)
                    }
                    (other, _, _) => {
                        rep.error(
                            format!("{f}.method.type"),
                            format!("unknown method match type `{other}`"),
                        )
                        .with_hint("Exact or RegularExpression");
                        ok = false;
                        (PathMatch::default(), 0, 0)
                    }
                }
            }
        };
        let headers = values(rep, &format!("{f}.headers"), &m.headers, true, &mut ok);
        if ok {
            let rank = MatchRank {
                primary: 0,
                length: service_len,
                secondary: method_len,
                headers: headers.len(),
                query: 0,
            };
            out.push((
                RequestMatch {
                    path,
                    headers,
                    query_params: Vec::new(),
                    method: None,
                },
                rank,
            ));
        }
    }
    out
}

fn values(
    rep: &mut Reporter<'_>,
    field: &str,
    matches: &[ValueMatch],
    headers: bool,
    ok: &mut bool,
) -> Vec<view::ValueMatch> {
    let mut out: Vec<view::ValueMatch> = Vec::new();
    for (i, v) in matches.iter().enumerate() {
        let f = format!("{field}[{i}]");
        let name = if headers {
            v.name.to_ascii_lowercase()
        } else {
            v.name.clone()
        };
        if headers && http::HeaderName::from_bytes(name.as_bytes()).is_err() {
            rep.error(
                format!("{f}.name"),
                format!("`{}` is not a valid header name", v.name),
            );
            *ok = false;
            continue;
        }
        if name.is_empty() {
            rep.error(format!("{f}.name"), "empty name");
            *ok = false;
            continue;
        }
        if out.iter().any(|o| o.name == name) {
            rep.error(
                format!("{f}.name"),
                format!("`{}` is matched twice in one match", v.name),
            )
            .with_hint("the Gateway API uses only the first; remove the duplicate");
            *ok = false;
            continue;
        }
        let value = match v.match_type.as_deref().unwrap_or("Exact") {
            "Exact" => StringMatch::Exact(v.value.clone()),
            "RegularExpression" => match regex::Regex::new(&anchored(&v.value)) {
                Ok(_) => StringMatch::RegularExpression(v.value.clone()),
                Err(e) => {
                    rep.error(
                        format!("{f}.value"),
                        format!("invalid regular expression: {e}"),
                    );
                    *ok = false;
                    continue;
                }
            },
            other => {
                rep.error(format!("{f}.type"), format!("unknown match type `{other}`"))
                    .with_hint("Exact or RegularExpression");
                *ok = false;
                continue;
            }
        };
        out.push(view::ValueMatch { name, value });
    }
    out
}

/// Gateway API regular expressions match the whole value.
pub fn anchored(re: &str) -> String {
    format!("^(?:{re})$")
}
