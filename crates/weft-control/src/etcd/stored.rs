//! The resources a replica has read from etcd, parsed once per change of their key.
//!
//! `weft apply` stores each resource as its own key, its YAML document as the user wrote it
//! under a first line that says where it came from (`# weft apply: FILE:LINE`), so that an
//! error found later still points at the user's file and line. A key written by hand, without
//! that line, is named by its key (`etcd:/weft/resources/...`). A key must hold exactly the
//! resource its name says; anything else is an error of the whole set, as a bad file is in a
//! directory: a DENY policy that cannot be read must never be left out silently.

use std::collections::BTreeMap;
use std::path::Path;

use weft_api::diagnostic::{Diagnostic, Diagnostics};
use weft_api::resources::Resource;

use super::keys::{KeyOf, Keys};

/// The first line `weft apply` writes above each stored document.
const ORIGIN: &str = "# weft apply: ";
/// A recorded line number above this is not believed (it would pad the text with newlines).
const MAX_ORIGIN_LINE: u64 = 1_000_000;

/// Stored documents by key.
#[derive(Clone, Default)]
pub struct Stored {
    docs: BTreeMap<String, Doc>,
    changed: bool,
    /// The modification revision of the resources' version key seen last (0: none yet).
    pub version: i64,
}

#[derive(Clone)]
struct Doc {
    /// The value as stored (to tell an unchanged `weft apply` from a change).
    text: String,
    resources: Vec<Resource>,
    diags: Diagnostics,
}

impl Stored {
    /// Sets `key` to `text` (parsed now).
    pub fn put(&mut self, keys: &Keys, key: &str, text: &str) {
        let (resources, diags) = parse(keys, key, text);
        self.docs.insert(
            key.to_string(),
            Doc {
                text: text.to_string(),
                resources,
                diags,
            },
        );
        self.changed = true;
    }

    /// Removes `key`; whether it was held.
    pub fn delete(&mut self, key: &str) -> bool {
        let held = self.docs.remove(key).is_some();
        self.changed |= held;
        held
    }

    /// Drops every document (before a full read).
    pub fn clear(&mut self) {
        self.docs.clear();
        self.changed = true;
    }

    pub fn contains(&self, key: &str) -> bool {
        self.docs.contains_key(key)
    }

    /// The value stored under `key`.
    pub fn value(&self, key: &str) -> Option<&str> {
        self.docs.get(key).map(|d| d.text.as_str())
    }

    pub fn keys(&self) -> Vec<String> {
        self.docs.keys().cloned().collect()
    }

    pub fn len(&self) -> usize {
        self.docs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.docs.is_empty()
    }

    /// Every stored resource and every problem found reading them; what changed since is
    /// forgotten.
    pub fn load(&mut self) -> (Vec<Resource>, Diagnostics) {
        self.changed = false;
        self.resources_except(&[])
    }

    /// The stored resources but those under `skip` (keys a change replaces or deletes).
    pub fn resources_except(&self, skip: &[String]) -> (Vec<Resource>, Diagnostics) {
        let mut resources = Vec::new();
        let mut diags = Diagnostics::default();
        for (key, doc) in &self.docs {
            if skip.contains(key) {
                continue;
            }
            resources.extend(doc.resources.iter().cloned());
            diags.extend(doc.diags.clone());
        }
        (resources, diags)
    }

    /// Whether a document changed since the last [`Stored::load`].
    pub fn changed(&self) -> bool {
        self.changed
    }
}

/// The value `weft apply` stores for a document of `file` starting at line `line_offset + 1`.
pub fn value(file: &str, line_offset: u64, document: &str) -> String {
    // A file name with a newline would end the origin line early: such a name is not kept.
    let file = if file.contains(['\n', '\r']) {
        "(unnamed)"
    } else {
        file
    };
    format!("{ORIGIN}{file}:{}\n{document}", line_offset + 1)
}

/// Parses a stored value: one resource, the one its key names.
pub fn parse(keys: &Keys, key: &str, text: &str) -> (Vec<Resource>, Diagnostics) {
    let (file, line_offset, document) = origin(key, text);
    // Padding puts every line of the document at its line in the user's file.
    let padded = format!("{}{document}", "\n".repeat(line_offset as usize));
    let (resources, mut diags) = weft_api::load::load_str(Path::new(&file), &padded);
    let unreadable = diags.has_errors();
    let mut fail = |message: String| {
        diags.push(
            Diagnostic::error(message)
                .at(Path::new(&file), line_offset + 1)
                .hint("remove the key (etcdctl del) or store the resource under its own key with `weft apply`"),
        );
    };
    match (resources.as_slice(), keys.parse(key)) {
        ([], _) if unreadable => {}
        (
            [one],
            KeyOf::Resource {
                kind,
                namespace,
                name,
            },
        ) if one.kind() == kind
            && one.meta().name() == name
            && (!kind.is_namespaced() || one.meta().namespace() == namespace) => {}
        ([one], _) => fail(format!(
            "etcd key {key} holds {}, not the resource its key names",
            one.display_name()
        )),
        (many, _) => fail(format!(
            "etcd key {key} holds {} resources; each key holds one",
            many.len()
        )),
    }
    if diags.has_errors() {
        return (Vec::new(), diags);
    }
    (resources, diags)
}

/// The file, line offset and document of a stored value.
fn origin<'a>(key: &str, text: &'a str) -> (String, u64, &'a str) {
    let by_key = || (format!("etcd:{key}"), 0, text);
    let Some(rest) = text.strip_prefix(ORIGIN) else {
        return by_key();
    };
    let Some((first, document)) = rest.split_once('\n') else {
        return by_key();
    };
    let Some((file, line)) = first.trim_end_matches('\r').rsplit_once(':') else {
        return by_key();
    };
    match line.parse::<u64>() {
        Ok(line) if (1..=MAX_ORIGIN_LINE).contains(&line) && !file.is_empty() => {
            (file.to_string(), line - 1, document)
        }
        _ => by_key(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROUTE: &str = "apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: reviews
  namespace: shop
spec:
  parentRefs:
    - {group: \"\", kind: Service, name: reviews, port: 9080}
  rules:
    - backendRefs:
        - {name: reviews, port: 9080}
";

    fn keys() -> Keys {
        Keys::new("/weft")
    }

    #[test]
    fn an_applied_document_keeps_its_file_and_lines() {
        let v = value(
            "shop/mesh.yaml",
            40,
            &ROUTE.replace(
                "name: reviews\n  namespace",
                "name: reviews\n  bogus: 1\n  namespace",
            ),
        );
        let (rs, diags) = parse(&keys(), "/weft/resources/HTTPRoute/shop/reviews", &v);
        assert!(rs.is_empty());
        let text = diags.to_string();
        // `bogus` is on the document's fifth line: line 45 of the file.
        assert!(text.contains("shop/mesh.yaml:45"), "{text}");
    }

    #[test]
    fn a_document_must_be_the_resource_its_key_names() {
        let (rs, diags) = parse(&keys(), "/weft/resources/HTTPRoute/shop/ratings", ROUTE);
        assert!(rs.is_empty());
        assert!(
            diags.to_string().contains("not the resource its key names"),
            "{diags}"
        );
        let (rs, diags) = parse(&keys(), "/weft/resources/HTTPRoute/shop/reviews", ROUTE);
        assert_eq!(rs.len(), 1, "{diags}");
        assert!(!diags.has_errors());
    }

    #[test]
    fn a_hand_written_key_is_named_by_its_key() {
        let (_, diags) = parse(
            &keys(),
            "/weft/resources/HTTPRoute/shop/x",
            "kind: [unclosed",
        );
        assert!(
            diags
                .to_string()
                .contains("etcd:/weft/resources/HTTPRoute/shop/x"),
            "{diags}"
        );
    }

    #[test]
    fn hostile_origins_are_not_believed() {
        let v = format!("{ORIGIN}f.yaml:99999999999\n{ROUTE}");
        let (file, offset, _) = origin("k", &v);
        assert_eq!((file.as_str(), offset), ("etcd:k", 0));
        let v = format!("{ORIGIN}:3\n{ROUTE}");
        assert_eq!(origin("k", &v).0, "etcd:k");
    }
}
