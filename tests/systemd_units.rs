//! The shipped unit files: `systemd-analyze verify` is clean and the service's exposure score is
//! 2.0 or lower. Needs Debian's systemd package (tests/run.sh installs it).
use std::path::{Path, PathBuf};
use std::process::Command;

/// The highest `systemd-analyze security` exposure we accept for robind.service.
const MAX_EXPOSURE: f64 = 2.0;

fn analyze() -> Command {
    let found = Command::new("systemd-analyze").arg("--version").output().is_ok_and(|o| o.status.success());
    assert!(found, "systemd-analyze not found: run tests/run.sh, which installs Debian's systemd package");
    Command::new("systemd-analyze")
}

/// Copies the units into a temp dir with ExecStart pointing at the binary cargo built, since
/// `verify` checks that the executable exists and /usr/local/bin/robind need not.
fn staged_units(dir: &Path, names: &[&str]) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("systemd");
    names
        .iter()
        .map(|name| {
            let text = std::fs::read_to_string(root.join(name)).unwrap();
            let text = text
                .replace("/usr/local/bin/robind", env!("CARGO_BIN_EXE_robind"))
                .replace("%h/.local/bin/robind", env!("CARGO_BIN_EXE_robind"));
            let staged = dir.join(Path::new(name).file_name().unwrap());
            std::fs::write(&staged, text).unwrap();
            staged
        })
        .collect()
}

#[test]
fn system_units_verify_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let units = staged_units(dir.path(), &["robind.service", "robind.socket"]);
    let out = analyze().arg("verify").args(&units).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && stderr.trim().is_empty(), "systemd-analyze verify:\n{stderr}");
}

#[test]
fn user_unit_verifies_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let units = staged_units(dir.path(), &["user/robind.service"]);
    // A user manager needs a runtime directory even to verify; CI runs as root without a session.
    let runtime = dir.path().join("xdg-runtime");
    std::fs::create_dir(&runtime).unwrap();
    let out =
        analyze().env("XDG_RUNTIME_DIR", &runtime).args(["--user", "verify"]).args(&units).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && stderr.trim().is_empty(), "systemd-analyze --user verify:\n{stderr}");
}

#[test]
fn service_exposure_is_at_most_two() {
    let dir = tempfile::tempdir().unwrap();
    let units = staged_units(dir.path(), &["robind.service"]);
    let out = analyze().args(["security", "--offline=true", "--no-pager"]).arg(&units[0]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let line =
        text.lines().find(|l| l.contains("Overall exposure level")).unwrap_or_else(|| panic!("{text}"));
    let score: f64 =
        line.split(':').nth(1).and_then(|r| r.split_whitespace().next()).unwrap().parse().unwrap();
    assert!(score <= MAX_EXPOSURE, "exposure {score} > {MAX_EXPOSURE}: {line}");
}
