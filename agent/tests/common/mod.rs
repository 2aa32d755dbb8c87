//! Helpers for tests that drive the real `shoal` binary on real bundles.

#![allow(dead_code)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The events an in-place deployment runs scripts for, in order (CodeDeploy's AppSpec
/// reference).
pub const DEPLOYMENT_EVENTS: [&str; 9] = [
    "BeforeBlockTraffic",
    "AfterBlockTraffic",
    "ApplicationStop",
    "BeforeInstall",
    "AfterInstall",
    "ApplicationStart",
    "ValidateService",
    "BeforeAllowTraffic",
    "AfterAllowTraffic",
];

/// A bundle directory under construction.
pub struct Bundle {
    pub dir: PathBuf,
}

impl Bundle {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        let dir = dir.into();
        std::fs::create_dir_all(&dir).expect("create bundle dir");
        Self { dir }
    }

    pub fn file(&self, path: &str, content: &str) -> &Self {
        let path = self.dir.join(path);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, content).expect("write bundle file");
        self
    }

    /// A shell script, executable.
    pub fn script(&self, path: &str, body: &str) -> &Self {
        self.file(path, &format!("#!/bin/sh\n{body}\n"));
        let full = self.dir.join(path);
        std::fs::set_permissions(full, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        self
    }

    pub fn appspec(&self, text: &str) -> &Self {
        self.file("appspec.yml", text)
    }
}

/// Runs `shoal` with `args`.
pub fn shoal(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_shoal"))
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run shoal")
}

/// Runs `shoal deploy` of `bundle` into `root` as group `group` with revision `revision`.
pub fn deploy(bundle: &Path, root: &Path, group: &str, revision: &str, extra: &[&str]) -> Output {
    let mut args = vec![
        "deploy",
        "--bundle",
        bundle.to_str().expect("utf-8 path"),
        "--root",
        root.to_str().expect("utf-8 path"),
        "--group",
        group,
        "--revision",
        revision,
    ];
    args.extend_from_slice(extra);
    shoal(&args)
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Asserts an exit code, printing both streams when it differs.
pub fn assert_exit(output: &Output, code: i32) {
    assert_eq!(
        output.status.code(),
        Some(code),
        "exit code\n--- stdout\n{}\n--- stderr\n{}",
        stdout(output),
        stderr(output)
    );
}

pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

pub fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success())
}
