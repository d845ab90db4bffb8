//! `weft apply -f FILE|DIR` and `weft delete`: change the mesh a replicated control plane
//! (`weft control --store etcd`) keeps, through any replica's admin endpoint. The replica
//! checks the stored resources with the change as a whole, with the same file:line errors as
//! `weft validate`, and writes nothing unless all of it is valid; every replica then serves
//! the change. With the directory store, the directory is the place to edit.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use serde_json::json;
use weft_api::resources::Kind;

use super::client::ControlArgs;

#[derive(clap::Args)]
pub struct ApplyArgs {
    /// YAML files, or directories of them (read recursively, in name order).
    #[arg(
        short = 'f',
        long = "filename",
        required = true,
        value_name = "FILE|DIR"
    )]
    files: Vec<PathBuf>,
    /// Check the change against the mesh; write nothing.
    #[arg(long)]
    dry_run: bool,
    #[command(flatten)]
    control: ControlArgs,
}

#[derive(clap::Args)]
pub struct DeleteArgs {
    /// Resources as KIND/NAME (in --namespace); KIND is case-insensitive (`httproute/reviews`).
    resources: Vec<String>,
    /// Delete what these files (or directories) declare.
    #[arg(short = 'f', long = "filename", value_name = "FILE|DIR")]
    files: Vec<PathBuf>,
    #[arg(short = 'n', long, default_value = weft_api::DEFAULT_NAMESPACE)]
    namespace: String,
    /// Check that the mesh stays valid without them; delete nothing.
    #[arg(long)]
    dry_run: bool,
    #[command(flatten)]
    control: ControlArgs,
}

pub fn apply(args: ApplyArgs) -> anyhow::Result<ExitCode> {
    let mut files = Vec::new();
    for path in yaml_files(&args.files)? {
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        files.push(json!({"name": path.display().to_string(), "text": text}));
    }
    let query = if args.dry_run { "?dryRun=1" } else { "" };
    let answer = args.control.post(
        &format!("/resources{query}"),
        &json!({ "files": files }).to_string(),
    )?;
    Ok(report(answer.status, &answer.body))
}

pub fn delete(args: DeleteArgs) -> anyhow::Result<ExitCode> {
    let mut refs = Vec::new();
    for r in &args.resources {
        refs.push(reference(r, &args.namespace)?);
    }
    for path in yaml_files(&args.files)? {
        let (resources, diags) = weft_api::load::load_file(&path);
        if diags.has_errors() {
            anyhow::bail!("{diags}");
        }
        for r in resources {
            let ns = if r.kind().is_namespaced() {
                r.meta().namespace()
            } else {
                "_"
            };
            refs.push(format!("{}/{ns}/{}", r.kind().name(), r.meta().name()));
        }
    }
    if refs.is_empty() {
        anyhow::bail!("name what to delete: KIND/NAME, or -f FILE");
    }
    let query = if args.dry_run { "?dryRun=1" } else { "" };
    let answer = args.control.post(
        &format!("/resources/delete{query}"),
        &json!({ "resources": refs }).to_string(),
    )?;
    Ok(report(answer.status, &answer.body))
}

/// `KIND/NAME` (in `namespace`) as the stored key's tail, `Kind/namespace/name`.
fn reference(r: &str, namespace: &str) -> anyhow::Result<String> {
    let Some((kind, name)) = r.split_once('/') else {
        anyhow::bail!("{r}: expected KIND/NAME (e.g. httproute/reviews)");
    };
    let kind = Kind::ALL
        .into_iter()
        .find(|k| k.name().eq_ignore_ascii_case(kind))
        .with_context(|| {
            let kinds: Vec<&str> = Kind::ALL.iter().map(|k| k.name()).collect();
            format!("{r}: unknown kind {kind} (one of {})", kinds.join(", "))
        })?;
    if name.is_empty() || name.contains('/') {
        anyhow::bail!("{r}: expected KIND/NAME");
    }
    let ns = if kind.is_namespaced() { namespace } else { "_" };
    Ok(format!("{}/{ns}/{name}", kind.name()))
}

/// The files named, directories expanded to their YAML files.
fn yaml_files(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let files = weft_api::load::yaml_files(p).map_err(|d| anyhow::anyhow!("{d}"))?;
            out.extend(files);
        } else if p.exists() {
            out.push(p.clone());
        } else {
            anyhow::bail!("{}: no such file or directory", p.display());
        }
    }
    Ok(out)
}

/// Prints the control plane's answer where it belongs; the exit code.
fn report(status: u16, body: &str) -> ExitCode {
    if status == 200 {
        print!("{body}");
        ExitCode::SUCCESS
    } else {
        eprint!("{body}");
        if !body.ends_with('\n') {
            eprintln!();
        }
        ExitCode::FAILURE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_name_stored_keys() {
        assert_eq!(
            reference("httproute/reviews", "shop").ok().as_deref(),
            Some("HTTPRoute/shop/reviews")
        );
        assert_eq!(
            reference("MeshConfig/mesh", "shop").ok().as_deref(),
            Some("MeshConfig/_/mesh")
        );
        assert!(reference("nosuchkind/x", "shop").is_err());
        assert!(reference("service", "shop").is_err());
        assert!(reference("service/a/b", "shop").is_err());
    }

    #[test]
    fn directories_expand_to_their_yaml_files() {
        let dir = std::env::temp_dir().join(format!("weft-apply-files-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("nested")).expect("dir");
        for f in ["b.yaml", "a.yml", "notes.txt", "nested/c.yaml"] {
            std::fs::write(dir.join(f), "").expect("file");
        }
        let files = yaml_files(std::slice::from_ref(&dir)).expect("files");
        let names: Vec<String> = files
            .iter()
            .map(|f| f.strip_prefix(&dir).unwrap_or(f).display().to_string())
            .collect();
        assert_eq!(names, ["a.yml", "b.yaml", "nested/c.yaml"]);
        assert!(yaml_files(&[dir.join("missing.yaml")]).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
