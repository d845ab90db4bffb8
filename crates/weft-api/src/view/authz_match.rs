//! The match forms of AuthorizationPolicy values, their grammar and how each matches: a
//! string is exact (`abc`), a prefix (`abc*`), a suffix (`*abc`) or presence (`*`: any
//! non-empty value); a path may instead be a template (`/a/{*}/b/{**}`); addresses are IPs or
//! CIDR blocks; `when` keys are the attributes Weft evaluates. [`StringMatch::parse`],
//! [`PathMatch::parse`], [`IpBlock::parse`] and [`ConditionKey::parse`] are the grammar; the
//! validator reports their errors with file and line.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// The `when` keys Weft evaluates (Istio's, for sidecars).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ConditionKey {
    /// `request.headers[<name>]`, the name lower-cased.
    RequestHeader(String),
    /// `source.ip` (values are IPs or CIDR blocks, checked at load).
    SourceIp,
    /// `remote.ip`.
    RemoteIp,
    SourceNamespace,
    SourcePrincipal,
    /// `source.serviceAccount`: `namespace/name`.
    SourceServiceAccount,
    RequestAuthPrincipal,
    RequestAuthAudiences,
    RequestAuthPresenter,
    /// `request.auth.claims[a][b]...`: the path of a (nested) claim.
    RequestAuthClaim(Vec<String>),
    /// `destination.ip`.
    DestinationIp,
    /// `destination.port`.
    DestinationPort,
    /// `connection.sni`.
    ConnectionSni,
}

impl ConditionKey {
    /// Parses a `when` key; the error says why Weft cannot evaluate it.
    pub fn parse(key: &str) -> Result<ConditionKey, String> {
        if let Some(name) = bracketed(key, "request.headers") {
            let name = name?;
            if name.bytes().any(|b| b.is_ascii_whitespace()) {
                return Err(format!("`{name}` is not a header name"));
            }
            return Ok(ConditionKey::RequestHeader(name.to_ascii_lowercase()));
        }
        if let Some(rest) = key.strip_prefix("request.auth.claims") {
            let mut path = Vec::new();
            let mut rest = rest;
            while !rest.is_empty() {
                let inner = rest
                    .strip_prefix('[')
                    .and_then(|r| r.split_once(']'))
                    .filter(|(name, _)| !name.is_empty() && !name.contains('['));
                let Some((name, after)) = inner else {
                    return Err(format!(
                        "`{key}` is not of the form request.auth.claims[name] (nested: [a][b])"
                    ));
                };
                path.push(name.to_string());
                rest = after;
            }
            if path.is_empty() {
                return Err(
                    "request.auth.claims needs a claim name: request.auth.claims[name]".into(),
                );
            }
            return Ok(ConditionKey::RequestAuthClaim(path));
        }
        Ok(match key {
            "source.ip" => ConditionKey::SourceIp,
            "remote.ip" => ConditionKey::RemoteIp,
            "source.namespace" => ConditionKey::SourceNamespace,
            "source.principal" => ConditionKey::SourcePrincipal,
            "source.serviceAccount" => ConditionKey::SourceServiceAccount,
            "request.auth.principal" => ConditionKey::RequestAuthPrincipal,
            "request.auth.audiences" => ConditionKey::RequestAuthAudiences,
            "request.auth.presenter" => ConditionKey::RequestAuthPresenter,
            "destination.ip" => ConditionKey::DestinationIp,
            "destination.port" => ConditionKey::DestinationPort,
            "connection.sni" => ConditionKey::ConnectionSni,
            k if k.starts_with("experimental.envoy.filters.") => {
                return Err(format!("`{k}` reads Envoy filter metadata, which Weft does not have"))
            }
            k if k.starts_with("destination.") => {
                return Err(format!("`{k}` is not a key Istio evaluates; select workloads with `selector` and namespaces with the policy's namespace"))
            }
            k => return Err(format!("unknown condition key `{k}`")),
        })
    }

    /// True for keys only an HTTP request has (they never match plain TCP).
    pub fn is_http(&self) -> bool {
        matches!(
            self,
            ConditionKey::RequestHeader(_)
                | ConditionKey::RequestAuthPrincipal
                | ConditionKey::RequestAuthAudiences
                | ConditionKey::RequestAuthPresenter
                | ConditionKey::RequestAuthClaim(_)
        )
    }

    /// True for keys whose values are IP addresses or blocks (the rest are strings, but
    /// `destination.port`).
    pub fn is_ip(&self) -> bool {
        matches!(
            self,
            ConditionKey::SourceIp | ConditionKey::RemoteIp | ConditionKey::DestinationIp
        )
    }
}

/// `prefix[inner]` → `Some(Ok(inner))`; `prefix` without a proper bracket → `Some(Err)`.
fn bracketed<'k>(key: &'k str, prefix: &str) -> Option<Result<&'k str, String>> {
    let rest = key.strip_prefix(prefix)?;
    Some(
        rest.strip_prefix('[')
            .and_then(|r| r.strip_suffix(']'))
            .filter(|inner| !inner.is_empty() && !inner.contains(['[', ']']))
            .ok_or_else(|| format!("`{key}` is not of the form {prefix}[name]")),
    )
}

/// Istio's string forms.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum StringMatch {
    Exact(String),
    /// `abc*`
    Prefix(String),
    /// `*abc`
    Suffix(String),
    /// `*`: any non-empty value.
    Presence,
}

impl StringMatch {
    /// Parses a value; the empty string is refused (Istio refuses it too).
    pub fn parse(value: &str) -> Result<StringMatch, String> {
        if value.is_empty() {
            return Err("empty value".into());
        }
        Ok(if value == "*" {
            StringMatch::Presence
        } else if let Some(p) = value.strip_suffix('*') {
            StringMatch::Prefix(p.to_string())
        } else if let Some(s) = value.strip_prefix('*') {
            StringMatch::Suffix(s.to_string())
        } else {
            StringMatch::Exact(value.to_string())
        })
    }

    pub fn matches(&self, value: &str) -> bool {
        match self {
            StringMatch::Exact(e) => value == e,
            StringMatch::Prefix(p) => value.starts_with(p.as_str()),
            StringMatch::Suffix(s) => value.ends_with(s.as_str()),
            StringMatch::Presence => !value.is_empty(),
        }
    }

    /// ASCII case-insensitive (hosts).
    pub fn matches_ignore_case(&self, value: &str) -> bool {
        let (v, pat) = (value.as_bytes(), self);
        match pat {
            StringMatch::Exact(e) => value.eq_ignore_ascii_case(e),
            StringMatch::Prefix(p) => {
                v.len() >= p.len() && v[..p.len()].eq_ignore_ascii_case(p.as_bytes())
            }
            StringMatch::Suffix(s) => {
                v.len() >= s.len() && v[v.len() - s.len()..].eq_ignore_ascii_case(s.as_bytes())
            }
            StringMatch::Presence => !value.is_empty(),
        }
    }
}

impl std::fmt::Display for StringMatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StringMatch::Exact(e) => f.write_str(e),
            StringMatch::Prefix(p) => write!(f, "{p}*"),
            StringMatch::Suffix(s) => write!(f, "*{s}"),
            StringMatch::Presence => f.write_str("*"),
        }
    }
}

/// A path: one of the string forms, or a template of segments.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum PathMatch {
    String(StringMatch),
    /// `/a/{*}/b/{**}`: literal segments, `{*}` (exactly one non-empty segment), and at most
    /// one `{**}` (any rest, `/` included), which must be the last operator.
    Template(Vec<Segment>),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Segment {
    Literal(String),
    One,
    Rest,
}

impl PathMatch {
    pub fn parse(value: &str) -> Result<PathMatch, String> {
        if !value.contains(['{', '}']) {
            return StringMatch::parse(value).map(PathMatch::String);
        }
        if !value.starts_with('/') {
            return Err(format!("path template `{value}` must start with `/`"));
        }
        let mut segments = Vec::new();
        let mut seen_rest = false;
        for part in value[1..].split('/') {
            let segment = match part {
                "{*}" => Segment::One,
                "{**}" => Segment::Rest,
                lit if lit.contains(['{', '}', '*']) => {
                    return Err(format!(
                        "`{part}` in path template `{value}`: an operator ({{*}} or {{**}}) must be a whole segment, and `*` cannot be mixed with templates"
                    ))
                }
                lit => Segment::Literal(lit.to_string()),
            };
            if seen_rest && !matches!(segment, Segment::Literal(_)) {
                return Err(format!(
                    "`{{**}}` must be the last operator in path template `{value}`"
                ));
            }
            seen_rest |= segment == Segment::Rest;
            segments.push(segment);
        }
        Ok(PathMatch::Template(segments))
    }

    /// Matches a normalized path (no query).
    pub fn matches(&self, path: &str) -> bool {
        match self {
            PathMatch::String(s) => s.matches(path),
            PathMatch::Template(segments) => {
                let Some(rest) = path.strip_prefix('/') else {
                    return false;
                };
                template_matches(segments, rest)
            }
        }
    }
}

/// Matches `segments` against `path` (without its leading `/`).
fn template_matches(segments: &[Segment], path: &str) -> bool {
    let Some((first, more)) = segments.split_first() else {
        return false;
    };
    match first {
        Segment::Rest => {
            // `{**}` takes any run of characters (segments and their slashes); what follows it
            // is literal, so it must be the end of the path.
            let tail = literal_tail(more);
            path.len() >= tail.len() && path.ends_with(tail.as_str())
        }
        _ => {
            let (head, after) = match path.split_once('/') {
                Some((h, a)) => (h, Some(a)),
                None => (path, None),
            };
            let ok = match first {
                Segment::Literal(l) => head == l,
                Segment::One => !head.is_empty(),
                Segment::Rest => false,
            };
            ok && match (more.is_empty(), after) {
                (true, None) => true,
                (true, Some(_)) | (false, None) => false,
                (false, Some(a)) => template_matches(more, a),
            }
        }
    }
}

/// The literal text after `{**}`: `/` followed by each remaining segment.
fn literal_tail(segments: &[Segment]) -> String {
    let mut tail = String::new();
    for s in segments {
        tail.push('/');
        if let Segment::Literal(l) = s {
            tail.push_str(l);
        }
    }
    tail
}

impl std::fmt::Display for PathMatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PathMatch::String(s) => s.fmt(f),
            PathMatch::Template(segments) => {
                for s in segments {
                    f.write_str("/")?;
                    match s {
                        Segment::Literal(l) => f.write_str(l)?,
                        Segment::One => f.write_str("{*}")?,
                        Segment::Rest => f.write_str("{**}")?,
                    }
                }
                Ok(())
            }
        }
    }
}

/// An address or a CIDR block.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpBlock {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl IpBlock {
    pub fn parse(value: &str) -> Result<IpBlock, String> {
        let (addr, prefix) = match value.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (value, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("`{value}` is not an IP address or CIDR block"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("`{value}`: the prefix length must be 0-{max}"))?,
        };
        Ok(IpBlock { addr, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        // An IPv4 client seen through an IPv6 socket is still that IPv4 client.
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl std::fmt::Display for IpBlock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

#[cfg(test)]
mod tests;
