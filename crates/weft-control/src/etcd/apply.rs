//! `weft apply` and `weft delete` against etcd. The control plane that receives the change
//! splits the files into one document per resource, checks the stored resources with the
//! change as a whole (the same loader and validator, so the same file:line errors as
//! `weft validate`), and writes every key in one transaction that succeeds only if the
//! resources' version key is still the one it validated against: two changes made at once
//! through two replicas cannot both pass on a check that saw neither. A change larger than
//! one transaction may hold goes in several, Services and Namespaces first.

use std::path::Path;

use etcd_client::{Compare, CompareOp, Txn, TxnOp};
use serde::Deserialize;

use super::stored::value;
use super::{Etcd, EtcdError};

/// Operations in one etcd transaction (etcd's `--max-txn-ops` defaults to 128; one is the
/// version key).
const MAX_OPS: usize = 120;
/// Largest file accepted (as the directory store).
const MAX_FILE_BYTES: usize = weft_api::load::MAX_FILE_BYTES as usize;

/// A file as `weft apply -f` sends it.
#[derive(Clone, Debug, Deserialize)]
pub struct File {
    pub name: String,
    pub text: String,
}

/// One key to write, and what it is (`HTTPRoute shop/reviews`).
#[derive(Clone, Debug)]
pub struct Put {
    pub key: String,
    pub value: String,
    pub what: String,
    /// Kinds others refer to go first when a change spans transactions.
    pub first: bool,
}

/// The keys `files` would write, or every error found reading them (file:line).
pub fn puts(etcd: &Etcd, files: &[File]) -> Result<Vec<Put>, Vec<String>> {
    let mut puts: Vec<Put> = Vec::new();
    let mut errors = Vec::new();
    for f in files {
        if f.text.len() > MAX_FILE_BYTES {
            errors.push(format!(
                "{}: {} bytes, more than the {MAX_FILE_BYTES} Weft reads",
                f.name,
                f.text.len()
            ));
            continue;
        }
        for (line_offset, document) in weft_api::load::documents(&f.text) {
            let padded = format!("{}{document}", "\n".repeat(line_offset as usize));
            let (resources, diags) = weft_api::load::load_str(Path::new(&f.name), &padded);
            if diags.has_errors() {
                errors.extend(diags.errors().map(|d| d.to_string()));
                continue;
            }
            let Some(r) = resources.first() else { continue };
            let key = etcd.keys.resource(r);
            let what = r.display_name();
            if let Some(earlier) = puts.iter().find(|p| p.key == key) {
                errors.push(format!(
                    "{}:{}: {what} is in this change twice (also as {})",
                    f.name,
                    r.source().line,
                    earlier.what
                ));
                continue;
            }
            let first = matches!(
                r.kind(),
                weft_api::resources::Kind::Namespace
                    | weft_api::resources::Kind::Service
                    | weft_api::resources::Kind::MeshConfig
            );
            puts.push(Put {
                key,
                value: value(&f.name, line_offset, document),
                what,
                first,
            });
        }
    }
    if errors.is_empty() {
        Ok(puts)
    } else {
        Err(errors)
    }
}

/// Writes `puts` and removes `deletes` if the resources' version is still `seen`; false when
/// it moved (another change went first: check again).
pub async fn commit(
    etcd: &Etcd,
    seen: i64,
    mut puts: Vec<Put>,
    deletes: Vec<String>,
) -> Result<bool, EtcdError> {
    puts.sort_by_key(|p| !p.first);
    let mut ops: Vec<TxnOp> = puts
        .into_iter()
        .map(|p| TxnOp::put(p.key, p.value, None))
        .chain(deletes.into_iter().map(|k| TxnOp::delete(k, None)))
        .collect();
    let mut kv = etcd.client.kv_client();
    let version_key = etcd.keys.resources_version();
    let mut expected = seen;
    let mut first = true;
    loop {
        let rest = ops.split_off(ops.len().min(MAX_OPS));
        let mut batch = std::mem::replace(&mut ops, rest);
        batch.push(TxnOp::put(
            version_key.as_str(),
            unix_now().to_string(),
            None,
        ));
        let txn = Txn::new()
            .when([Compare::mod_revision(
                version_key.as_str(),
                CompareOp::Equal,
                expected,
            )])
            .and_then(batch);
        let answer = kv.txn(txn).await?;
        if !answer.succeeded() {
            if first {
                return Ok(false);
            }
            return Err(EtcdError::Value(
                "another change was written while this one went in several transactions; \
                 part of it is stored: apply it again"
                    .into(),
            ));
        }
        first = false;
        // The next batch expects the version this one wrote.
        expected = answer.header().map_or(expected, |h| h.revision());
        if ops.is_empty() {
            return Ok(true);
        }
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
