//! The credential files a config names (a git channel's `ssh_key` and `token_file`), checked
//! by `shoal agent` before it starts and by `--check-config`: each must be a regular file the
//! agent can open, or the config is refused with one sentence naming the key and the path. The
//! files are opened, never read, so no secret reaches a message. (Other commands load the same
//! config only to find the agent, and may run as users who cannot read these files.)

use std::fs::File;
use std::io::ErrorKind;
use std::os::unix::fs::FileTypeExt as _;
use std::path::Path;

use super::{Channel, ConfigError, Settings};

/// Checks every credential file `settings` names; the error names the first bad one.
pub fn check_credential_files(settings: &Settings) -> Result<(), ConfigError> {
    for (index, group) in settings.groups.iter().enumerate() {
        let Channel::Git(source) = &group.channel else {
            // Store channels name no files: their credentials come from the environment.
            continue;
        };
        let files = [
            ("ssh_key", "private key", source.ssh_key.as_deref()),
            ("token_file", "token", source.token_file.as_deref()),
        ];
        for (field, holds, path) in files {
            let Some(path) = path else { continue };
            if let Err(problem) = check_file(path, holds) {
                return Err(ConfigError::Invalid {
                    path: settings.path.clone(),
                    line: None,
                    message: format!(
                        "groups[{index}].channel.git.{field} (group {}): {problem}",
                        group.name
                    ),
                });
            }
        }
    }
    Ok(())
}

/// What is wrong with the file at `path`, which should hold a `holds`: it is missing, not a
/// regular file, or not readable by this process.
fn check_file(path: &Path, holds: &str) -> Result<(), String> {
    let shown = path.display();
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            return Err(format!(
                "{shown} does not exist; put the {holds} there or correct the path"
            ));
        }
        Err(e) => return Err(unreadable(path, &e)),
    };
    if !meta.is_file() {
        let kind = meta.file_type();
        let what = if kind.is_dir() {
            "a directory"
        } else if kind.is_fifo() {
            "a named pipe"
        } else if kind.is_socket() {
            "a socket"
        } else if kind.is_block_device() || kind.is_char_device() {
            "a device"
        } else {
            "not a file"
        };
        return Err(format!(
            "{shown} is {what}, not a regular file; point it at the file that holds the {holds}"
        ));
    }
    File::open(path).map_err(|e| unreadable(path, &e))?;
    Ok(())
}

fn unreadable(path: &Path, error: &std::io::Error) -> String {
    let uid = nix::unistd::geteuid();
    if error.kind() == ErrorKind::PermissionDenied {
        format!(
            "{} is not readable by the agent (uid {uid}): {error}; let that user read it (the packaged service runs as root), or correct the path",
            path.display()
        )
    } else {
        format!("{} cannot be opened by the agent: {error}", path.display())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_credential_file_is_a_regular_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = dir.path().join("key");
        std::fs::write(&key, "secret").expect("write");
        assert_eq!(check_file(&key, "private key"), Ok(()));
        let missing = check_file(&dir.path().join("nope"), "private key").expect_err("missing");
        assert!(
            missing.ends_with("nope does not exist; put the private key there or correct the path"),
            "{missing}"
        );
        let directory = check_file(dir.path(), "token").expect_err("a directory");
        assert!(
            directory.contains("is a directory, not a regular file"),
            "{directory}"
        );
        let dangling = dir.path().join("dangling");
        std::os::unix::fs::symlink(dir.path().join("gone"), &dangling).expect("symlink");
        let dangling = check_file(&dangling, "token").expect_err("dangling link");
        assert!(dangling.contains("does not exist"), "{dangling}");
        assert!(!missing.contains("secret") && !directory.contains("secret"));
    }
}
