//! Reading resources from YAML: files, directories, multi-document streams.
//!
//! A file is split into its documents at `---` marker lines (a marker at column 0 always ends
//! a document in YAML, even inside a block scalar), so that each document can be read as the
//! type its `kind` names, with unknown fields denied, while every line number stays a line of
//! the file. Parse errors carry the file, the line and the field path.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::resources::{Kind, Object, ObjectMeta, Resource, Source};

/// Files larger than this are refused rather than parsed: no mesh config is this big, and a
/// hostile file must not exhaust memory.
pub const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// Reads every `*.yaml` / `*.yml` file under `dir` (recursively, in name order, skipping hidden
/// entries). Problems in one file do not stop the others from being read.
pub fn load_dir(dir: &Path) -> (Vec<Resource>, Diagnostics) {
    let files = match yaml_files(dir) {
        Ok(f) => f,
        Err(diags) => return (Vec::new(), diags),
    };
    let mut diags = Diagnostics::default();
    let mut resources = Vec::new();
    for file in files {
        let (rs, ds) = load_file(&file);
        resources.extend(rs);
        diags.extend(ds);
    }
    (resources, diags)
}

/// The YAML files under `dir`, in name order, or why the directory cannot be read.
pub fn yaml_files(dir: &Path) -> Result<Vec<PathBuf>, Diagnostics> {
    let mut files = Vec::new();
    if let Err(e) = collect_yaml_files(dir, &mut files) {
        let mut diags = Diagnostics::default();
        diags.push(
            Diagnostic::error(format!("cannot read the config directory: {e}"))
                .at(dir, 0)
                .hint("pass a directory of YAML files (--config-dir)"),
        );
        return Err(diags);
    }
    files.sort();
    Ok(files)
}

/// Reads one YAML file of one or more documents.
pub fn load_file(file: &Path) -> (Vec<Resource>, Diagnostics) {
    match read_file(file) {
        Ok(text) => load_str(file, &text),
        Err(diags) => (Vec::new(), diags),
    }
}

/// A file's text, or why it cannot be used (too big, unreadable, not UTF-8).
pub(crate) fn read_file(file: &Path) -> Result<String, Diagnostics> {
    let fail = |message: String| {
        let mut diags = Diagnostics::default();
        diags.push(Diagnostic::error(message).at(file, 0));
        diags
    };
    match std::fs::metadata(file) {
        Ok(m) if m.len() > MAX_FILE_BYTES => {
            return Err(fail(format!(
                "file is {} bytes, more than the {MAX_FILE_BYTES} Weft reads",
                m.len()
            )))
        }
        Ok(_) => {}
        Err(e) => return Err(fail(format!("cannot read file: {e}"))),
    }
    let bytes = std::fs::read(file).map_err(|e| fail(format!("cannot read file: {e}")))?;
    String::from_utf8(bytes).map_err(|_| fail("file is not valid UTF-8".to_string()))
}

/// Reads a multi-document YAML text; `file` is the name diagnostics use.
pub fn load_str(file: &Path, text: &str) -> (Vec<Resource>, Diagnostics) {
    let file = Arc::new(file.to_path_buf());
    let mut resources = Vec::new();
    let mut diags = Diagnostics::default();
    for doc in split_documents(text) {
        let Some(first_line) = first_content_line(doc.text) else {
            continue; // empty document: only comments or blank lines
        };
        let source = Source {
            file: file.clone(),
            line_offset: doc.line_offset,
            line: doc.line_offset + first_line,
        };
        match load_document(doc.text, &source) {
            Ok(resource) => resources.push(resource),
            Err(d) => diags.push(*d),
        }
    }
    (resources, diags)
}

/// The documents of a multi-document text, each with the line offset at which it starts
/// (empty documents, only comments or blank lines, left out).
pub fn documents(text: &str) -> Vec<(u64, &str)> {
    split_documents(text)
        .into_iter()
        .filter(|d| first_content_line(d.text).is_some())
        .map(|d| (d.line_offset, d.text))
        .collect()
}

struct Document<'a> {
    text: &'a str,
    line_offset: u64,
}

/// Splits at lines that are a document start (`---`) or end (`...`) marker.
fn split_documents(text: &str) -> Vec<Document<'_>> {
    let mut docs = Vec::new();
    let mut start = 0usize;
    let mut start_line = 0u64;
    let mut offset = 0usize;
    for (index, line) in text.split_inclusive('\n').enumerate() {
        let bare = line.trim_end_matches(['\n', '\r']);
        let is_start = bare == "---" || bare.starts_with("--- ") || bare.starts_with("---\t");
        let is_end = bare == "..." || bare.starts_with("... ");
        if (is_start || is_end) && offset > start {
            docs.push(Document {
                text: &text[start..offset],
                line_offset: start_line,
            });
            start = offset;
            start_line = index as u64;
        } else if (is_start || is_end) && offset == start {
            start_line = index as u64;
        }
        if is_end {
            // The end marker itself belongs to no document.
            start = offset + line.len();
            start_line = index as u64 + 1;
        }
        offset += line.len();
    }
    if start < text.len() {
        docs.push(Document {
            text: &text[start..],
            line_offset: start_line,
        });
    }
    docs
}

/// 1-based line of the first line that is not blank, a comment or a marker.
fn first_content_line(doc: &str) -> Option<u64> {
    doc.lines().enumerate().find_map(|(i, line)| {
        let t = line.trim();
        let blank = t.is_empty() || t.starts_with('#') || t == "---" || t == "...";
        (!blank).then_some(i as u64 + 1)
    })
}

/// Just enough of a document to know what it is.
#[derive(Deserialize)]
struct Header {
    #[serde(rename = "apiVersion")]
    api_version: Option<String>,
    kind: Option<String>,
    metadata: Option<HeaderMeta>,
}

#[derive(Deserialize)]
struct HeaderMeta {
    name: Option<String>,
    namespace: Option<String>,
}

/// A whole document of one kind; `spec` is optional here so that its absence gets a clear
/// error from validation rather than a generic "missing field".
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Document2<S> {
    #[serde(rename = "apiVersion")]
    _api_version: String,
    #[serde(rename = "kind")]
    _kind: String,
    metadata: ObjectMeta,
    #[serde(default = "no_spec")]
    spec: Option<S>,
    #[serde(default, rename = "status")]
    _status: Option<serde::de::IgnoredAny>,
}

fn no_spec<S>() -> Option<S> {
    None
}

fn load_document(text: &str, source: &Source) -> Result<Resource, Box<Diagnostic>> {
    let header: Header = parse(text, source)?;
    let at = |d: Diagnostic| Box::new(d.at(source.file.as_path(), source.line));
    let (Some(api_version), Some(kind_name)) = (header.api_version, header.kind) else {
        return Err(at(Diagnostic::error(
            "document has no `apiVersion` and `kind`",
        )
        .hint(
            "every document must say what it is, e.g. `apiVersion: v1` and `kind: Service`",
        )));
    };
    let Some(kind) = Kind::from_name(&kind_name) else {
        let known: Vec<&str> = Kind::ALL.iter().map(|k| k.name()).collect();
        return Err(at(Diagnostic::error(format!("unknown kind `{kind_name}`"))
            .field("kind")
            .hint(format!("Weft reads {}", known.join(", ")))));
    };
    if !kind.api_versions().contains(&api_version.as_str()) {
        return Err(at(Diagnostic::error(format!(
            "`apiVersion: {api_version}` is not one Weft reads for {kind}"
        ))
        .field("apiVersion")
        .hint(format!("use one of {}", kind.api_versions().join(", ")))));
    }
    let name = header
        .metadata
        .as_ref()
        .and_then(|m| m.name.clone())
        .unwrap_or_default();
    let display = if kind.is_namespaced() {
        let ns = header.metadata.as_ref().and_then(|m| m.namespace.clone());
        format!(
            "{kind} {}/{name}",
            ns.as_deref().unwrap_or(crate::DEFAULT_NAMESPACE)
        )
    } else {
        format!("{kind} {name}")
    };
    let named = |d: Box<Diagnostic>| Box::new((*d).resource(display.clone()));
    let resource = load_kind(kind, text, source, api_version).map_err(named)?;
    Ok(resource)
}

fn load_kind(
    kind: Kind,
    text: &str,
    source: &Source,
    api_version: String,
) -> Result<Resource, Box<Diagnostic>> {
    let resource = match kind {
        Kind::Namespace => {
            Resource::Namespace(object(text, source, api_version, Some(Default::default()))?)
        }
        Kind::Service => Resource::Service(object(text, source, api_version, None)?),
        Kind::HttpRoute => Resource::HttpRoute(object(text, source, api_version, None)?),
        Kind::GrpcRoute => Resource::GrpcRoute(object(text, source, api_version, None)?),
        Kind::TcpRoute => Resource::TcpRoute(object(text, source, api_version, None)?),
        Kind::WorkloadEntry => Resource::WorkloadEntry(object(text, source, api_version, None)?),
        Kind::DestinationRule => {
            Resource::DestinationRule(object(text, source, api_version, None)?)
        }
        Kind::PeerAuthentication => Resource::PeerAuthentication(object(
            text,
            source,
            api_version,
            Some(Default::default()),
        )?),
        Kind::AuthorizationPolicy => Resource::AuthorizationPolicy(object(
            text,
            source,
            api_version,
            Some(Default::default()),
        )?),
        Kind::RequestAuthentication => Resource::RequestAuthentication(object(
            text,
            source,
            api_version,
            Some(Default::default()),
        )?),
        Kind::MeshConfig => {
            Resource::MeshConfig(object(text, source, api_version, Some(Default::default()))?)
        }
        Kind::LocalWorkload => Resource::LocalWorkload(object(text, source, api_version, None)?),
        Kind::RateLimitPolicy => {
            Resource::RateLimitPolicy(object(text, source, api_version, None)?)
        }
        Kind::FaultInjection => Resource::FaultInjection(object(text, source, api_version, None)?),
    };
    Ok(resource)
}

/// Reads a document as an object of one kind; `default_spec` is used when `spec` is absent
/// (kinds whose spec is optional), otherwise a missing spec is an error.
fn object<S: DeserializeOwned>(
    text: &str,
    source: &Source,
    api_version: String,
    default_spec: Option<S>,
) -> Result<Object<S>, Box<Diagnostic>> {
    let doc: Document2<S> = parse(text, source)?;
    let spec = match (doc.spec, default_spec) {
        (Some(spec), _) => spec,
        (None, Some(default)) => default,
        (None, None) => {
            return Err(Box::new(
                Diagnostic::error("missing `spec`")
                    .at(source.file.as_path(), source.line)
                    .field("spec"),
            ))
        }
    };
    Ok(Object {
        api_version,
        meta: doc.metadata,
        spec,
        source: source.clone(),
    })
}

/// Parses `text` as `T`, turning a failure into a diagnostic with file line and field path.
fn parse<T: DeserializeOwned>(text: &str, source: &Source) -> Result<T, Box<Diagnostic>> {
    let mut path = String::new();
    let result =
        serde_saphyr::with_deserializer_from_str_with_options(text, parse_options(), |de| {
            serde_path_to_error::deserialize::<_, T>(de).map_err(|e| {
                path = e.path().to_string();
                e.into_inner()
            })
        });
    result.map_err(|e| {
        let line = e
            .location()
            .map(|l| source.line_offset + l.line())
            .unwrap_or(source.line);
        let message = e.without_snippet().to_string();
        let message = strip_location(&message).to_string();
        let mut d = Diagnostic::error(message).at(source.file.as_path(), line);
        let path = clean_path(&path);
        if !path.is_empty() && path != "." {
            d = d.field(path);
        }
        Box::new(d)
    })
}

/// Alias expansion allowed per document. Mesh resources hardly use aliases; a "billion laughs"
/// document stops here after a few milliseconds instead of expanding a quarter of a million
/// nodes, so a file of many such documents cannot stall a reload.
const MAX_ALIAS_EVENTS: usize = 20_000;

fn parse_options() -> serde_saphyr::Options {
    let mut limits = serde_saphyr::options::AliasLimits::default();
    limits.max_total_replayed_events = MAX_ALIAS_EVENTS;
    let mut options = serde_saphyr::Options::default();
    options.alias_limits = limits;
    options
}

/// The location is already in the diagnostic: drop a trailing " at line N, column M" (and
/// only that; messages may mention other lines).
fn strip_location(message: &str) -> &str {
    let Some(i) = message.rfind(" at line ") else {
        return message;
    };
    let tail = &message[i + " at line ".len()..];
    let well_formed = tail.split_once(", column ").is_some_and(|(l, c)| {
        !l.is_empty() && !c.is_empty() && l.bytes().chain(c.bytes()).all(|b| b.is_ascii_digit())
    });
    if well_formed {
        &message[..i]
    } else {
        message
    }
}

/// serde's path shows the inside of span wrappers (`name.value`); users wrote `name`.
fn clean_path(path: &str) -> String {
    // Spanned values (kept for their line numbers) add a `.value` level of their own; no
    // resource has a field called `value` with fields inside it, so inner ones are artifacts.
    let path = path.replace(".value.", ".");
    let path = path.as_str();
    path.strip_suffix(".value")
        .filter(|p| {
            p.ends_with("name")
                || p.ends_with("namespace")
                || p.ends_with("port")
                || p.ends_with("address")
                || p.ends_with("host")
                || p.ends_with("clusterIP")
                || p.ends_with("appProtocol")
                || p.ends_with("protocol")
                || p.ends_with("type")
                || p.ends_with("sessionAffinity")
                || p.ends_with("internalTrafficPolicy")
                || p.ends_with("action")
                || p.ends_with("]")
        })
        .unwrap_or(path)
        .to_string()
}

fn collect_yaml_files(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        if name.to_string_lossy().starts_with('.') {
            continue;
        }
        let path = entry.path();
        let file_type = entry.file_type()?;
        if file_type.is_dir() {
            collect_yaml_files(&path, out)?;
        } else if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml") | Some("yml")
        ) {
            out.push(path);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> (Vec<Resource>, Diagnostics) {
        load_str(Path::new("mesh.yaml"), text)
    }

    #[test]
    fn splits_documents_and_keeps_file_lines() {
        let text = "# leading comment\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: a\nspec:\n  ports: [{port: 80}]\n---\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: b\nspec:\n  ports:\n  - port: 80\n    wrong: 1\n";
        let (rs, ds) = load(text);
        assert_eq!(rs.len(), 1, "{ds}");
        assert_eq!(rs[0].source().line, 3);
        let d = ds.errors().next().expect("an error");
        assert_eq!(d.line, 18, "{d}");
        assert_eq!(d.field.as_deref(), Some("spec.ports[0].wrong"));
        assert!(d.message.contains("unknown field `wrong`"), "{d}");
    }

    #[test]
    fn unknown_kind_and_version_are_named() {
        let (_, ds) = load("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\n");
        let d = ds.errors().next().expect("an error");
        assert!(d.message.contains("unknown kind `Deployment`"), "{d}");
        assert!(d.hint.as_deref().unwrap_or("").contains("HTTPRoute"));
        let (_, ds) = load("apiVersion: v2\nkind: Service\nmetadata: {name: x}\nspec: {}\n");
        let d = ds.errors().next().expect("an error");
        assert_eq!(d.field.as_deref(), Some("apiVersion"));
    }

    #[test]
    fn malformed_yaml_is_an_error_with_a_line() {
        let (rs, ds) = load("apiVersion: v1\nkind: Service\nmetadata:\n  name: [x\n");
        assert!(rs.is_empty());
        let d = ds.errors().next().expect("an error");
        assert!(d.line >= 4, "{d}");
    }

    #[test]
    fn empty_and_comment_only_documents_are_skipped() {
        let (rs, ds) = load("---\n# nothing\n---\n\n...\n");
        assert!(rs.is_empty());
        assert!(ds.is_empty(), "{ds}");
    }

    #[test]
    fn alias_bombs_are_refused_quickly() {
        // managedFields accepts any shape, so only the alias budget can stop this.
        let mut text = String::from("apiVersion: v1\nkind: Service\nspec: {}\nmetadata:\n  name: x\n  managedFields:\n    a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..9 {
            let prev = format!("*a{}", i - 1);
            text.push_str(&format!(
                "    a{i}: &a{i} [{}]\n",
                vec![prev; 10].join(", ")
            ));
        }
        let started = std::time::Instant::now();
        let (rs, ds) = load(&text);
        assert!(rs.is_empty(), "a 10^9-node document must not load");
        assert!(ds.has_errors());
        assert!(
            started.elapsed() < std::time::Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn many_alias_bombs_in_one_file_stay_cheap() {
        let mut text = String::new();
        for d in 0..30 {
            text.push_str(&format!("---\napiVersion: v1\nkind: Service\nspec: {{}}\nmetadata:\n  name: x{d}\n  managedFields:\n    a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n"));
            for i in 1..9 {
                text.push_str(&format!(
                    "    a{i}: &a{i} [{}]\n",
                    vec![format!("*a{}", i - 1); 10].join(", ")
                ));
            }
        }
        let started = std::time::Instant::now();
        let (rs, ds) = load(&text);
        assert!(rs.is_empty());
        assert_eq!(ds.errors().count(), 30);
        assert!(
            started.elapsed() < std::time::Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn only_the_trailing_location_is_stripped() {
        assert_eq!(strip_location("bad value at line 3, column 4"), "bad value");
        let alias = "alias defined at line 9, column 11 (used at line 12, column 3)";
        assert_eq!(
            strip_location(&format!("{alias} at line 12, column 3")),
            alias
        );
        assert_eq!(strip_location(alias), alias);
    }

    #[test]
    fn missing_spec_is_reported() {
        let (_, ds) = load("apiVersion: v1\nkind: Service\nmetadata: {name: x}\n");
        let d = ds.errors().next().expect("an error");
        assert_eq!(d.field.as_deref(), Some("spec"));
    }
}
