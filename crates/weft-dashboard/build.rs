//! Builds the dashboard (`dashboard/` at the workspace root) into `$OUT_DIR/dist` for
//! `include_bytes!`: its sources and `package-lock.json` are copied into `$OUT_DIR/work`,
//! `npm ci` installs the locked packages there (from the npm registry, or npm's cache), and
//! `node build.mjs` bundles them with esbuild. Runs again only when those inputs change.
//!
//! Needs Node.js and npm (`apt-get install -y nodejs npm`). `WEFT_DASHBOARD_DIST=DIR` uses a
//! dashboard built beforehand instead (for a machine without npm).

use std::path::{Path, PathBuf};
use std::process::Command;

const FILES: [&str; 4] = ["index.html", "app.js", "app.css", "app.js.LEGAL.txt"];

fn main() {
    // ok: cargo sets OUT_DIR for every build script; a panic is how a build script fails.
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let dist = out.join("dist");
    println!("cargo:rerun-if-env-changed=WEFT_DASHBOARD_DIST");
    if let Ok(prebuilt) = std::env::var("WEFT_DASHBOARD_DIST") {
        copy_dist(Path::new(&prebuilt), &dist);
        return;
    }
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../dashboard");
    for input in ["src", "package.json", "package-lock.json", "build.mjs"] {
        println!("cargo:rerun-if-changed={}", source.join(input).display());
    }
    let work = out.join("work");
    let _ = std::fs::remove_dir_all(work.join("src"));
    copy_tree(&source.join("src"), &work.join("src"));
    for file in ["package.json", "package-lock.json", "build.mjs"] {
        copy(&source.join(file), &work.join(file));
    }
    run(
        Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(&work),
        "npm ci",
    );
    run(
        Command::new("node")
            .arg("build.mjs")
            .arg(&dist)
            .current_dir(&work),
        "node build.mjs (esbuild)",
    );
    for f in FILES {
        assert!(dist.join(f).exists(), "the dashboard build made no {f}");
    }
}

fn run(cmd: &mut Command, what: &str) {
    match cmd.status() {
        Ok(s) if s.success() => {}
        Ok(s) => panic!("building the dashboard: {what} failed ({s})"),
        Err(e) => panic!(
            "building the dashboard: cannot run {what}: {e}. The dashboard is built with Node.js and npm: apt-get install -y nodejs npm (or set WEFT_DASHBOARD_DIST to a dashboard built with `node build.mjs DIR` in dashboard/)"
        ),
    }
}

fn copy(from: &Path, to: &Path) {
    if let Some(dir) = to.parent() {
        std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    }
    std::fs::copy(from, to)
        .unwrap_or_else(|e| panic!("copying {} to {}: {e}", from.display(), to.display()));
}

fn copy_tree(from: &Path, to: &Path) {
    let entries = std::fs::read_dir(from).unwrap_or_else(|e| panic!("{}: {e}", from.display()));
    for entry in entries.flatten() {
        let path = entry.path();
        let target = to.join(entry.file_name());
        if path.is_dir() {
            copy_tree(&path, &target);
        } else {
            copy(&path, &target);
        }
    }
}

fn copy_dist(from: &Path, to: &Path) {
    for f in FILES {
        copy(&from.join(f), &to.join(f));
    }
}
