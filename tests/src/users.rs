//! Throwaway system users for tests that run as root: made with `groupadd`/`useradd`, deleted
//! when dropped, so tests can check what a real unprivileged user can and cannot do.

use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A user with its own primary group and one supplementary group, deleted on drop.
pub struct ThrowawayUser {
    /// The user's name.
    pub name: String,
    /// The supplementary group's name.
    pub group: String,
    /// The user's id.
    pub uid: u32,
    /// The id of the user's primary group.
    pub gid: u32,
}

impl ThrowawayUser {
    /// Creates the user (and its groups); needs root.
    pub fn create() -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let suffix = format!(
            "{}x{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let name = format!("shoalu{suffix}");
        let group = format!("shoalg{suffix}");
        run_tool("groupadd", &[&group]);
        let home = format!("/home/{name}");
        run_tool(
            "useradd",
            &[
                "-M", "-U", "-d", &home, "-s", "/bin/sh", "-G", &group, &name,
            ],
        );
        let id = |flag: &str| -> u32 {
            let out = Command::new("id").args([flag, &name]).output().expect("id");
            String::from_utf8_lossy(&out.stdout)
                .trim()
                .parse()
                .expect("a numeric id")
        };
        let (uid, gid) = (id("-u"), id("-g"));
        Self {
            name,
            group,
            uid,
            gid,
        }
    }
}

impl Drop for ThrowawayUser {
    fn drop(&mut self) {
        let _ = Command::new("userdel").arg(&self.name).status();
        let _ = Command::new("groupdel").arg(&self.group).status();
    }
}

fn run_tool(tool: &str, args: &[&str]) {
    let status = Command::new(tool).args(args).status().expect(tool);
    assert!(status.success(), "{tool} {args:?}: {status}");
}
