//! Links the `weft` binary with the code a proxy runs packed together at the front of
//! `.text` (`link/symbol-order.txt`, made by `scripts/symbol-order.sh`).
//!
//! Why: a proxy's resident memory is mostly the binary's code pages, and the kernel maps
//! code in 64 KiB blocks around each page it faults in ("fault-around"). Scattered across the
//! binary, the few MB of functions a proxy executes pull in ~6 MB of pages; packed, they pull
//! in little more than themselves, and the hot path shares fewer i-cache and TLB entries. The
//! list only orders sections: a name it holds that the binary no longer has is skipped, so a
//! stale list costs memory, never correctness.
//!
//! Only where rustc links with its bundled LLD, which knows `--symbol-ordering-file`: x86_64
//! Linux from Rust 1.90 on, with no other linker configured. `WEFT_SYMBOL_ORDER=off` links
//! without the list.

use std::path::Path;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=link/symbol-order.txt");
    println!("cargo:rerun-if-env-changed=WEFT_SYMBOL_ORDER");
    let Ok(dir) = std::env::var("CARGO_MANIFEST_DIR") else {
        return;
    };
    let list = Path::new(&dir).join("link/symbol-order.txt");
    if links_with_rust_lld() && list.is_file() {
        println!(
            "cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={}",
            list.display()
        );
        println!("cargo:rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
    }
}

/// Whether this build links with rustc's bundled LLD: the default on x86_64-unknown-linux-gnu
/// since Rust 1.90, unless the user chose another linker or turned LLD off.
fn links_with_rust_lld() -> bool {
    let var = |name: &str| std::env::var(name).unwrap_or_default();
    if var("WEFT_SYMBOL_ORDER") == "off" || var("TARGET") != "x86_64-unknown-linux-gnu" {
        return false;
    }
    let flags = var("CARGO_ENCODED_RUSTFLAGS");
    if flags.contains("linker-features=-lld")
        || flags.contains("linker=")
        || flags.contains("link-self-contained=-linker")
        || std::env::var_os("CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_LINKER").is_some()
    {
        return false;
    }
    rustc_minor_version().is_some_and(|minor| minor >= 90)
}

/// The `N` of `rustc 1.N.x`.
fn rustc_minor_version() -> Option<u32> {
    let rustc = std::env::var_os("RUSTC")?;
    let out = Command::new(rustc).arg("--version").output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    text.split_whitespace()
        .nth(1)?
        .split('.')
        .nth(1)?
        .parse()
        .ok()
}
