//! Records the git commit in the version string `request_version` reports.

use std::process::Command;

fn main() {
    // Watch the commit only where these files exist (a worktree's .git is a
    // file, and a missing watched path would rebuild every time).
    for path in [".git/HEAD", ".git/refs/heads"] {
        if std::path::Path::new(path).exists() {
            println!("cargo:rerun-if-changed={path}");
        } else {
            println!("cargo:rerun-if-changed=build.rs");
        }
    }
    let version = std::env::var("CARGO_PKG_VERSION").unwrap_or_default();
    let commit = Command::new("git")
        .args(["describe", "--always", "--exclude", "*"])
        .output()
        .ok()
        .filter(|out| out.status.success())
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty());
    let full = match commit {
        Some(commit) => format!("{version}-g{commit}"),
        None => version,
    };
    println!("cargo:rustc-env=ODIN_STATUS_FULL_VERSION={full}");
}
