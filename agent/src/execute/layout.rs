//! Where a deployment lives on disk. Names follow the CodeDeploy agent, so a host can switch
//! agents without losing which revision to stop and which files to clean up.

use std::path::{Path, PathBuf};

/// The deployment root (`/var/lib/shoal/deployment-root` by default).
#[derive(Debug, Clone)]
pub struct Layout {
    root: PathBuf,
    files_root: Option<PathBuf>,
}

impl Layout {
    /// A layout under `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            files_root: None,
        }
    }

    /// The same layout, installing the AppSpec's `files` (and applying its `permissions`) under
    /// `files_root` instead of `/`: several agents on one machine, each with its own tree.
    pub fn with_files_root(mut self, files_root: Option<PathBuf>) -> Self {
        self.files_root = files_root;
        self
    }

    /// Where `files` destinations and `permissions` objects are resolved (`None`: `/`).
    pub fn files_root(&self) -> Option<&Path> {
        self.files_root.as_deref()
    }

    /// The deployment root itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `<root>/<group-id>/<deployment-id>`.
    pub fn deployment_dir(&self, group_id: &str, deployment_id: &str) -> PathBuf {
        self.root.join(group_id).join(deployment_id)
    }

    /// Where the bundle is unpacked and scripts run from.
    pub fn archive_dir(deployment_dir: &Path) -> PathBuf {
        deployment_dir.join("deployment-archive")
    }

    /// The hook output of a deployment.
    pub fn scripts_log(deployment_dir: &Path) -> PathBuf {
        deployment_dir.join("logs").join("scripts.log")
    }

    /// shoal's own record of a deployment (events, results), beside CodeDeploy's files.
    pub fn record_file(deployment_dir: &Path) -> PathBuf {
        deployment_dir.join("shoal-deployment.json")
    }

    /// `<root>/deployment-instructions`.
    pub fn instructions_dir(&self) -> PathBuf {
        self.root.join("deployment-instructions")
    }

    /// Files this group's last Install created, one path a line (`<group-id>-cleanup`).
    pub fn cleanup_file(&self, group_id: &str) -> PathBuf {
        self.instructions_dir().join(format!("{group_id}-cleanup"))
    }

    /// The instructions of the last Install (`<group-id>-install.json`).
    pub fn install_json(&self, group_id: &str) -> PathBuf {
        self.instructions_dir()
            .join(format!("{group_id}-install.json"))
    }

    /// Holds the deployment directory of the last deployment that finished Install.
    pub fn last_successful_install(&self, group_id: &str) -> PathBuf {
        self.instructions_dir()
            .join(format!("{group_id}_last_successful_install"))
    }

    /// Holds the deployment directory of the most recent deployment that unpacked its bundle.
    pub fn most_recent_install(&self, group_id: &str) -> PathBuf {
        self.instructions_dir()
            .join(format!("{group_id}_most_recent_install"))
    }

    /// The deployment directory named by a `_last_successful_install`-style file, if any.
    pub fn read_pointer(pointer: &Path) -> std::io::Result<Option<PathBuf>> {
        match std::fs::read_to_string(pointer) {
            Ok(text) if !text.trim().is_empty() => Ok(Some(PathBuf::from(text.trim()))),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Points `pointer` at `deployment_dir`, replacing it atomically.
    pub fn write_pointer(pointer: &Path, deployment_dir: &Path) -> std::io::Result<()> {
        write_atomically(pointer, deployment_dir.as_os_str().as_encoded_bytes())
    }
}

/// Writes `bytes` to `path` through a temporary file and a rename, so readers never see half.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

/// Writes `bytes` to `path` (mode 0600) so that a crash leaves the old file or the new one, never
/// half and never lost: a temporary file, fsync, rename, fsync of the directory.
pub fn write_durably(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(dir)?.sync_all()
}

/// Whether `name` can be a group id or deployment id: one safe path component.
pub fn is_safe_component(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && name.len() <= 128
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_the_codedeploy_agent() {
        let layout = Layout::new("/r");
        assert_eq!(
            layout.cleanup_file("g"),
            Path::new("/r/deployment-instructions/g-cleanup")
        );
        assert_eq!(
            layout.last_successful_install("g"),
            Path::new("/r/deployment-instructions/g_last_successful_install")
        );
        let dir = layout.deployment_dir("g", "d-1");
        assert_eq!(
            Layout::archive_dir(&dir),
            Path::new("/r/g/d-1/deployment-archive")
        );
        assert_eq!(
            Layout::scripts_log(&dir),
            Path::new("/r/g/d-1/logs/scripts.log")
        );
    }

    #[test]
    fn pointers_round_trip() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let pointer = tmp.path().join("i/g_last_successful_install");
        assert_eq!(Layout::read_pointer(&pointer).expect("read"), None);
        Layout::write_pointer(&pointer, Path::new("/r/g/d-1")).expect("write");
        assert_eq!(
            Layout::read_pointer(&pointer).expect("read"),
            Some(PathBuf::from("/r/g/d-1"))
        );
    }

    #[test]
    fn safe_components() {
        assert!(is_safe_component("web-prod_1.a"));
        for bad in ["", ".", "..", "a/b", "a b", "ä"] {
            assert!(!is_safe_component(bad), "{bad}");
        }
    }
}
