//! Who runs a hook script and how it is started: runas (user, groups, a clean login
//! environment, a view of its bundle), sudo, and the spawn itself.

use std::ffi::CString;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use nix::errno::Errno;
use nix::unistd::{Gid, Uid, User};
use shoal_shared::appspec::Script;
use tokio::process::{Child, Command};
use tokio::time::sleep;

use super::view::{BundleView, Identity};
use super::*;

/// Who runs the script, decided before anything starts.
#[derive(Debug)]
pub(super) enum Launch {
    /// The agent's own user.
    Agent,
    /// `sudo -n env K=V… <path>`: `sudo: true` while the agent is not root. sudo resets the
    /// environment, so the deployment's variables are handed over through `env`.
    Sudo,
    /// A `runas` user, with its login identity.
    User(RunAsUser),
}

#[derive(Debug)]
pub(super) struct RunAsUser {
    pub(super) name: String,
    pub(super) uid: Uid,
    pub(super) gid: Gid,
    pub(super) groups: Vec<Gid>,
    pub(super) home: PathBuf,
    pub(super) shell: PathBuf,
    /// False when the agent already is this user (and cannot switch anyway).
    pub(super) switch: bool,
    /// How it reaches the bundle when a directory above the archive is private to root.
    pub(super) view: Option<Arc<BundleView>>,
}

impl Launch {
    pub(super) async fn plan(script: &Script, path: &Path) -> Result<Self, HookError> {
        let agent_is_root = Uid::effective().is_root();
        let Some(name) = script.runas.clone() else {
            return Ok(if script.sudo && !agent_is_root {
                Self::Sudo
            } else {
                Self::Agent
            });
        };
        let refuse = |reason, source| HookError::RunAs {
            user: name.clone(),
            path: path.to_path_buf(),
            reason,
            source,
        };
        // The user database may be remote (LDAP, SSSD): keep its lookups off the async workers.
        let lookup = tokio::task::spawn_blocking({
            let name = name.clone();
            move || RunAsUser::look_up(name)
        });
        let user = match lookup.await {
            Ok(Ok(user)) => user,
            Ok(Err((reason, errno))) => return Err(refuse(reason, errno.map(io::Error::from))),
            Err(join_error) => {
                let source = io::Error::other(join_error);
                return Err(refuse("the user lookup did not finish", Some(source)));
            }
        };
        if user.switch && !agent_is_root {
            return Err(refuse("runas needs the agent to run as root", None));
        }
        Ok(Self::User(user))
    }
}

impl RunAsUser {
    pub(super) fn look_up(name: String) -> Result<Self, (&'static str, Option<Errno>)> {
        let user = User::from_name(&name)
            .map_err(|errno| ("the user database could not be read", Some(errno)))?
            .ok_or(("no such user on this host", None))?;
        let c_name =
            CString::new(name.as_str()).map_err(|_| ("the user name contains a NUL byte", None))?;
        let groups = nix::unistd::getgrouplist(&c_name, user.gid)
            .map_err(|errno| ("its groups could not be listed", Some(errno)))?;
        let shell = if user.shell.as_os_str().is_empty() {
            PathBuf::from("/bin/sh")
        } else {
            user.shell
        };
        Ok(Self {
            switch: user.uid != Uid::effective(),
            name,
            uid: user.uid,
            gid: user.gid,
            groups,
            home: user.dir,
            shell,
            view: None,
        })
    }

    /// Prepares the view of `archive_dir` this user needs, if any; returns the archive's path
    /// to start the script from (its real path when there is a view).
    pub(super) fn reach(&mut self, archive_dir: &Path) -> io::Result<PathBuf> {
        if !self.switch {
            return Ok(archive_dir.to_path_buf());
        }
        let identity = Identity {
            uid: self.uid,
            gid: self.gid,
            groups: &self.groups,
        };
        let (real, view) = BundleView::plan(archive_dir, identity)?;
        match view {
            Some(view) => {
                tracing::debug!(
                    user = %self.name,
                    covered = %view.covered().display(),
                    "runas script gets a private view of its bundle"
                );
                self.view = Some(Arc::new(view));
                Ok(real)
            }
            None => Ok(archive_dir.to_path_buf()),
        }
    }
}

impl std::fmt::Display for Launch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Agent => Ok(()),
            Self::Sudo => f.write_str(" (through sudo)"),
            Self::User(user) => write!(f, " (as user {})", user.name),
        }
    }
}

/// The command for the script. A runas script starts from a clean environment: the names of
/// `runas_env` taken from the agent's, then its login variables, then `env` (the deployment's
/// variables), so nothing else of the agent's environment (credentials, tokens) reaches
/// another user. The agent's own scripts (no runas) get the agent's environment and `env`, as
/// the CodeDeploy agent's do.
///
/// `through_shell` runs the script as `/bin/sh <path>`: for a script without a `#!` line (see
/// [`spawn`]). Through sudo that is never needed: `env` starts the script with execvp(3), which
/// does the same by itself.
pub(super) fn build_command(
    path: &Path,
    launch: &Launch,
    env: &[(String, String)],
    runas_env: &[String],
    through_shell: bool,
) -> Command {
    let mut command = match launch {
        Launch::Sudo => {
            let mut sudo = Command::new("sudo");
            sudo.args(["-n", "--", "env"])
                .args(env.iter().map(|(key, value)| format!("{key}={value}")))
                .arg(path);
            sudo
        }
        Launch::Agent | Launch::User(_) if through_shell => {
            let mut shell = Command::new(SHELL);
            shell.arg(path);
            shell
        }
        Launch::Agent | Launch::User(_) => Command::new(path),
    };
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        // Only the agent speaks to systemd; a script that did would be taken for it.
        .env_remove("NOTIFY_SOCKET");
    if let Launch::User(user) = launch {
        command.env_clear();
        for name in runas_env {
            if let Some(value) = std::env::var_os(name) {
                command.env(name, value);
            }
        }
        command
            .env("HOME", &user.home)
            .env("USER", &user.name)
            .env("LOGNAME", &user.name)
            .env("SHELL", &user.shell)
            .env("PATH", RUNAS_PATH);
        if user.switch {
            // In this order: the view needs root, the switch gives it up.
            if let Some(view) = &user.view {
                view.enter_on_spawn(&mut command);
            }
            switch_user(&mut command, user);
        }
    }
    command.envs(env.iter().map(|(key, value)| (key, value)));
    command
}

/// Makes the child take the user's groups, gid and uid between fork and exec.
pub(super) fn switch_user(command: &mut Command, user: &RunAsUser) {
    let (uid, gid, groups) = (user.uid, user.gid, user.groups.clone());
    #[allow(unsafe_code)]
    // SAFETY: the closure runs in the forked child before exec, where only async-signal-safe
    // calls are sound. It only calls setgroups, setgid and setuid (thin syscall wrappers) on
    // values computed before the fork, and builds errors with `from_raw_os_error`, which does
    // not allocate. Nothing is locked, allocated or freed.
    unsafe {
        command.pre_exec(move || {
            let os_error = |errno: Errno| io::Error::from_raw_os_error(errno as i32);
            nix::unistd::setgroups(&groups).map_err(os_error)?;
            nix::unistd::setgid(gid).map_err(os_error)?;
            nix::unistd::setuid(uid).map_err(os_error)
        });
    }
}

/// The shell that runs a script without a `#!` line.
pub(super) const SHELL: &str = "/bin/sh";

/// Spawns the command `build(through_shell)` makes, retrying while the freshly written script
/// is busy: another thread's fork can hold a write descriptor to it for a moment (`ETXTBSY`).
/// A script the kernel cannot execute because it has no `#!` line (`ENOEXEC`) is started
/// again through [`SHELL`], as execvp(3) and the CodeDeploy agent do. Returns the child and
/// whether it runs through the shell.
pub(super) async fn spawn(
    build: impl Fn(bool) -> Command,
    path: &Path,
    launch: &Launch,
) -> Result<(Child, bool), HookError> {
    let mut through_shell = false;
    let mut command = build(through_shell);
    let mut retries = 0;
    loop {
        match command.spawn() {
            Ok(child) => return Ok((child, through_shell)),
            Err(error) if error.raw_os_error() == Some(Errno::ETXTBSY as i32) => {
                if retries == BUSY_RETRIES {
                    return Err(spawn_error(path, launch, error));
                }
                retries += 1;
                sleep(Duration::from_millis(20)).await;
            }
            Err(error) if error.raw_os_error() == Some(Errno::ENOEXEC as i32) && !through_shell => {
                through_shell = true;
                command = build(through_shell);
            }
            Err(error) => return Err(spawn_error(path, launch, error)),
        }
    }
}

pub(super) fn spawn_error(path: &Path, launch: &Launch, source: io::Error) -> HookError {
    let path = path.to_path_buf();
    let reason = match (launch, source.kind()) {
        (Launch::User(user), io::ErrorKind::PermissionDenied) => {
            let reason = if user.view.is_some()
                && source.raw_os_error() == Some(Errno::EPERM as i32)
            {
                "the agent may not give it a view of the bundle in a mount namespace of its own: \
                 run the agent as root with CAP_SYS_ADMIN (not in a sandbox that forbids mounts)"
            } else {
                "the user may not execute it: make the script and its directories in the bundle \
                 readable and searchable by that user"
            };
            return HookError::RunAs {
                user: user.name.clone(),
                path,
                reason,
                source: Some(source),
            };
        }
        (Launch::Sudo, io::ErrorKind::NotFound) => {
            "sudo is not installed, and `sudo: true` needs it when the agent is not root"
        }
        (_, io::ErrorKind::NotFound) => "the interpreter named on its #! line does not exist",
        _ => "exec failed",
    };
    HookError::Spawn {
        path,
        reason,
        source,
    }
}
