//! How a fetch runs ssh: OpenSSH with the user's and the system's config and known_hosts
//! files, as `git` with OpenSSH reads them, never asking anything, giving up on a server that
//! does not answer, and verbose enough that a refusal says which key was offered and which
//! host key was seen.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::failure::FetchError;
use super::source::{Endpoint, GitSource};

/// The ssh command git runs (through `sh -c`, so every word is quoted): `-F` the file of
/// [`config_file`], `BatchMode`, the channel's timeout as `ConnectTimeout` and (a third of it)
/// `ServerAliveInterval`, the configured key alone, and the configured user.
pub(super) fn command(source: &GitSource, config: &Path) -> String {
    let seconds = source.timeout.as_secs().max(1);
    let alive = (seconds / 3).max(1);
    let mut words = vec![
        "ssh".to_owned(),
        "-v".to_owned(),
        format!("-F {}", shell_quote(config.as_os_str())),
        "-o BatchMode=yes".to_owned(),
        format!("-o ConnectTimeout={seconds}"),
        format!("-o ServerAliveInterval={alive}"),
        "-o ServerAliveCountMax=3".to_owned(),
    ];
    if let Some(key) = &source.ssh_key {
        words.push("-o IdentitiesOnly=yes".to_owned());
        words.push(format!("-i {}", shell_quote(key.as_os_str())));
    }
    if let (None, Some(user)) = (source.url_user(), &source.username) {
        words.push(format!("-l {}", shell_quote(OsStr::new(user))));
    }
    words.join(" ")
}

/// What ssh reads instead of `~/.ssh/config` (`ssh -F`): the user's config, then the system's,
/// as ssh itself would read them, and last the channel's default user (`git`), which applies
/// only where neither names one.
const SSH_CONFIG: &str = "# Written by shoal for its git fetches: ssh's own config files, in the \
order ssh reads them, then the user a git url without one logs in as.
Include ~/.ssh/config
Include /etc/ssh/ssh_config
Host *
  User git
";

/// Writes [`SSH_CONFIG`] beside the mirror (`<mirror>.ssh_config`, 0600) unless it is there.
pub(super) fn config_file(mirror: &Path) -> Result<PathBuf, FetchError> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let path = mirror.with_extension("ssh_config");
    if std::fs::read_to_string(&path).is_ok_and(|text| text == SSH_CONFIG) {
        return Ok(path);
    }
    let failed = |source| FetchError::SshConfig {
        path: path.clone(),
        source,
    };
    let staged = mirror.with_extension("ssh_config.new");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&staged)
        .map_err(failed)?;
    file.write_all(SSH_CONFIG.as_bytes()).map_err(failed)?;
    std::fs::rename(&staged, &path).map_err(failed)?;
    Ok(path)
}

/// The known_hosts files that `ssh -G` says ssh reads for `endpoint`.
pub(super) fn known_hosts_files(endpoint: &Endpoint, config: &Path) -> Vec<String> {
    let mut command = Command::new("ssh");
    command.arg("-G").arg("-F").arg(config);
    if let Some(port) = endpoint.port.filter(|p| *p != 22) {
        command.args(["-p", &port.to_string()]);
    }
    let settings = command
        .arg("--")
        .arg(&endpoint.host)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    ["userknownhostsfile ", "globalknownhostsfile "]
        .iter()
        .filter_map(|key| settings.lines().find_map(|l| l.strip_prefix(key)))
        .filter_map(|files| files.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

/// `text` as one word for `sh`: single-quoted, with single quotes escaped.
fn shell_quote(text: &OsStr) -> String {
    format!("'{}'", text.to_string_lossy().replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_words_are_quoted() {
        assert_eq!(
            shell_quote(OsStr::new("/etc/shoal/my key")),
            "'/etc/shoal/my key'"
        );
        assert_eq!(shell_quote(OsStr::new("it's")), r"'it'\''s'");
    }
}
