//! Links robind's start-up code together.
//!
//! An idle robind's resident memory is mostly the pages of its own binary that start-up touched,
//! and the kernel maps file pages 64 KiB at a time around each fault ("fault-around"): start-up
//! code spread over the whole 5 MB of `.text` kept 3.8 MiB of it resident. `link/robind.order`
//! lists the functions a release robind runs from exec to idle and while serving idle WebSocket
//! clients (written by `bench/startup_order.py`); lld places them first, together.
//!
//! Only where lld links (rustc 1.90 and later on x86_64 Linux, unless another linker is set):
//! other linkers do not take the flag. Names the order file has but the binary lacks (it went
//! stale after a change of code, dependencies, profile or toolchain) are skipped silently; the
//! binary is the same, only less compact. Regenerate the file after such changes.
use std::env;
use std::process::Command;

const ORDER_FILE: &str = "link/robind.order";

fn main() {
    println!("cargo::rerun-if-changed={ORDER_FILE}");
    println!("cargo::rerun-if-env-changed=CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_LINKER");
    let dir = env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let present = std::path::Path::new(&dir).join(ORDER_FILE).is_file();
    if present && env::var("PROFILE").as_deref() == Ok("release") && links_with_lld() {
        println!("cargo::rustc-link-arg-bin=robind=-Wl,--symbol-ordering-file={dir}/{ORDER_FILE}");
        println!("cargo::rustc-link-arg-bin=robind=-Wl,--no-warn-symbol-ordering");
    }
}

/// Whether rustc's default linker for this target is its bundled lld and nothing overrides it.
fn links_with_lld() -> bool {
    let target = env::var("TARGET").unwrap_or_default();
    let flags = env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    let overridden = env::var_os("CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_LINKER").is_some()
        || ["linker", "link-self-contained", "link-arg", "link-args"].iter().any(|flag| flags.contains(flag));
    target == "x86_64-unknown-linux-gnu" && !overridden && rustc_minor().is_some_and(|minor| minor >= 90)
}

/// The minor version of the rustc cargo builds with (`rustc 1.95.0 (...)` gives 95).
fn rustc_minor() -> Option<u32> {
    let rustc = env::var_os("RUSTC")?;
    let output = Command::new(rustc).arg("--version").output().ok()?;
    let version = String::from_utf8(output.stdout).ok()?;
    version.split_whitespace().nth(1)?.split('.').nth(1)?.parse().ok()
}
