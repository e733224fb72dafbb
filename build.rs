//! Records the git commit in the version string `request_version` reports.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/refs/heads");
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
