//! Links robind's start-up code together, and packs its relocations.
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
//!
//! `-z pack-relative-relocs` stores the ~6,700 relative relocations of a position-independent
//! robind as a 1.9 KiB bitmap (DT_RELR) instead of 160 KiB of `.rela.dyn` that the dynamic
//! loader reads at every start. The binary then needs glibc 2.36 or later to run, so it is only
//! used when the glibc robind is built against is that new (the usual case: built where it runs).
use std::env;
use std::process::Command;

const ORDER_FILE: &str = "link/robind.order";

fn main() {
    println!("cargo::rerun-if-changed={ORDER_FILE}");
    println!("cargo::rerun-if-env-changed=CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_LINKER");
    let dir = env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let lld_release = env::var("PROFILE").as_deref() == Ok("release") && links_with_lld();
    if lld_release && std::path::Path::new(&dir).join(ORDER_FILE).is_file() {
        println!("cargo::rustc-link-arg-bin=robind=-Wl,--symbol-ordering-file={dir}/{ORDER_FILE}");
        println!("cargo::rustc-link-arg-bin=robind=-Wl,--no-warn-symbol-ordering");
    }
    if lld_release && glibc_at_least(2, 36) {
        println!("cargo::rustc-link-arg-bin=robind=-Wl,-z,pack-relative-relocs");
    }
}

/// Whether the build machine's glibc (`getconf GNU_LIBC_VERSION`: `glibc 2.36`) is at least
/// `major.minor`; the target is the host here (see `links_with_lld`).
fn glibc_at_least(major: u32, minor: u32) -> bool {
    let Ok(output) = Command::new("getconf").arg("GNU_LIBC_VERSION").output() else { return false };
    let text = String::from_utf8_lossy(&output.stdout);
    let mut numbers = text.split_whitespace().nth(1).unwrap_or("").split('.').map(|n| n.parse::<u32>());
    match (numbers.next(), numbers.next()) {
        (Some(Ok(have_major)), Some(Ok(have_minor))) => (have_major, have_minor) >= (major, minor),
        _ => false,
    }
}

/// Whether rustc's default linker for this target is its bundled lld and nothing overrides it
/// (and the build is native, so that the build machine's glibc is the target's).
fn links_with_lld() -> bool {
    let target = env::var("TARGET").unwrap_or_default();
    let flags = env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    let overridden = env::var_os("CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_LINKER").is_some()
        || ["linker", "link-self-contained", "link-arg", "link-args"].iter().any(|flag| flags.contains(flag));
    let native = env::var("HOST").is_ok_and(|host| host == target);
    target == "x86_64-unknown-linux-gnu"
        && native
        && !overridden
        && rustc_minor().is_some_and(|minor| minor >= 90)
}

/// The minor version of the rustc cargo builds with (`rustc 1.95.0 (...)` gives 95).
fn rustc_minor() -> Option<u32> {
    let rustc = env::var_os("RUSTC")?;
    let output = Command::new(rustc).arg("--version").output().ok()?;
    let version = String::from_utf8(output.stdout).ok()?;
    version.split_whitespace().nth(1)?.split('.').nth(1)?.parse().ok()
}
