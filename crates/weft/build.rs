//! Links the `weft` binary with the code a proxy runs packed together at the front of
//! `.text` (`link/symbol-order.txt`, made by `scripts/symbol-order.sh`).
//!
//! Why: a proxy's resident memory is mostly the binary's code pages, and the kernel maps
//! code in 64 KiB blocks around each page it faults in ("fault-around"). Scattered across the
//! binary, the ~1.7 MB of functions a proxy executes pull in ~6 MB of pages; packed, they
//! pull in little more than themselves, and the hot path shares fewer i-cache and TLB
//! entries. The list only orders sections: a name it holds that the binary no longer has is
//! skipped, so a stale list costs memory, never correctness.
//!
//! Only on x86_64 Linux, where rustc links with its bundled LLD (Rust 1.90+), which knows
//! `--symbol-ordering-file`. `WEFT_SYMBOL_ORDER=off` links without it (another linker).

use std::path::Path;

fn main() {
    println!("cargo:rerun-if-changed=link/symbol-order.txt");
    println!("cargo:rerun-if-env-changed=WEFT_SYMBOL_ORDER");
    let target = std::env::var("TARGET").unwrap_or_default();
    let wanted = std::env::var("WEFT_SYMBOL_ORDER").map_or(true, |v| v != "off");
    let Ok(dir) = std::env::var("CARGO_MANIFEST_DIR") else {
        return;
    };
    let list = Path::new(&dir).join("link/symbol-order.txt");
    if wanted && target == "x86_64-unknown-linux-gnu" && list.is_file() {
        println!(
            "cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={}",
            list.display()
        );
        println!("cargo:rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
    }
}
