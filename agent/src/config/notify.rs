//! Checking `notify:`: each webhook's URL (http or https), secret file (the agent's own, mode
//! 0600) and event filter; the command (an executable only its owner may change, since root runs
//! it); timeouts; the queue's bound.

use std::fs;
use std::io::ErrorKind;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use shoal_shared::duration::format_duration;

use super::file::{CommandFile, DurationValue, NotifyFile, WebhookFile};
use super::{BadValue, line_of};
use crate::report::notifications::{
    CommandTarget, DEFAULT_COMMAND_TIMEOUT, DEFAULT_QUEUE, DEFAULT_WEBHOOK_TIMEOUT, Events,
    MAX_QUEUE, NotifySettings, Secret, WebhookTarget,
};

/// An example in the errors about a URL.
const EXAMPLE_URL: &str = "https://hooks.example.com/shoal";

/// Checks `notify:`; the error carries the line of the entry it is about, when known.
pub(super) fn notify(
    raw: &NotifyFile,
    resolve: &dyn Fn(&Path) -> PathBuf,
) -> Result<NotifySettings, (Option<u64>, String)> {
    let mut webhooks = Vec::new();
    for (index, entry) in raw.webhooks.iter().enumerate() {
        let hook =
            webhook(index, &entry.value, resolve).map_err(|e| (line_of(entry), e.to_string()))?;
        webhooks.push(hook);
    }
    let command = (raw.command.as_ref())
        .map(|c| command(&c.value, resolve).map_err(|e| (line_of(c), e.to_string())))
        .transpose()?;
    let queue = match &raw.queue {
        Some(queue) if !(1..=MAX_QUEUE).contains(&queue.value) => {
            return Err((
                line_of(queue),
                format!(
                    "notify.queue: {} is not between 1 and {MAX_QUEUE}; it bounds the deliveries waiting to be sent (default {DEFAULT_QUEUE})",
                    queue.value
                ),
            ));
        }
        Some(queue) => queue.value,
        None => DEFAULT_QUEUE,
    };
    Ok(NotifySettings {
        webhooks,
        command,
        queue,
    })
}

fn webhook(
    index: usize,
    raw: &WebhookFile,
    resolve: &dyn Fn(&Path) -> PathBuf,
) -> Result<WebhookTarget, BadValue> {
    let key = |k: &str| format!("notify.webhooks[{index}].{k}");
    // The URL is not repeated: its path or query may be the webhook's token.
    let url = url::Url::parse(raw.url.trim()).map_err(|e| {
        BadValue::new(
            key("url"),
            format!("not a URL ({e}); write e.g. {EXAMPLE_URL}"),
        )
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(BadValue::new(
            key("url"),
            format!(
                "the scheme `{}` is not http or https; write e.g. {EXAMPLE_URL}",
                url.scheme()
            ),
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(BadValue::new(
            key("url"),
            format!("names no host; write e.g. {EXAMPLE_URL}"),
        ));
    }
    let secret = (raw.secret_file.as_deref())
        .map(|file| {
            Secret::load(&resolve(file))
                .map_err(|e| BadValue::new(key("secret_file"), e.to_string()))
        })
        .transpose()?;
    Ok(WebhookTarget {
        url,
        secret,
        events: events(&key("events"), raw.events.as_deref())?,
        timeout: timeout(&key("timeout"), raw.timeout, DEFAULT_WEBHOOK_TIMEOUT)?,
    })
}

fn command(
    raw: &CommandFile,
    resolve: &dyn Fn(&Path) -> PathBuf,
) -> Result<CommandTarget, BadValue> {
    let path = resolve(&raw.path);
    check_executable(&path).map_err(|m| BadValue::new("notify.command.path", m))?;
    Ok(CommandTarget {
        path,
        args: raw.args.clone(),
        events: events("notify.command.events", raw.events.as_deref())?,
        timeout: timeout(
            "notify.command.timeout",
            raw.timeout,
            DEFAULT_COMMAND_TIMEOUT,
        )?,
    })
}

/// The filter `names` writes, every event when absent.
fn events(key: &str, names: Option<&[String]>) -> Result<Events, BadValue> {
    names.map_or_else(
        || Ok(Events::all()),
        |names| Events::parse(names).map_err(|m| BadValue::new(key, m)),
    )
}

fn timeout(
    key: &str,
    value: Option<DurationValue>,
    default: Duration,
) -> Result<Duration, BadValue> {
    let timeout = value.map_or(default, |d| d.0);
    if timeout.is_zero() {
        return Err(BadValue::new(
            key,
            format!(
                "must be more than 0; the default is {}",
                format_duration(default)
            ),
        ));
    }
    Ok(timeout)
}

/// What is wrong with `path` as a command root runs: missing, not a file, not executable, or
/// changeable by group or others.
fn check_executable(path: &Path) -> Result<(), String> {
    let shown = path.display();
    let meta = fs::metadata(path).map_err(|e| match e.kind() {
        ErrorKind::NotFound => format!("{shown} does not exist; give the path of an executable"),
        _ => format!("cannot read {shown}: {e}"),
    })?;
    if !meta.is_file() {
        return Err(format!(
            "{shown} is not a regular file; give the path of an executable"
        ));
    }
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o111 == 0 {
        return Err(format!(
            "{shown} is not executable (mode {mode:04o}); run `chmod 755 {shown}`"
        ));
    }
    if mode & 0o022 != 0 {
        return Err(format!(
            "{shown} may be changed by group or others (mode {mode:04o}), and the agent runs it as root; run `chmod go-w {shown}`"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use shoal_shared::history::EventKind;

    use super::super::{ConfigError, Settings, parse};
    use super::*;

    /// A mesh member with no groups: a file that names no other file.
    const MEMBER: &str = "mesh: { name: prod, listen: 127.0.0.1:0, insecure: true }\ngroups: []\n";

    fn with_notify(dir: &Path, notify: &str) -> Result<Settings, ConfigError> {
        parse(
            &dir.join("agent.yaml"),
            &format!("{MEMBER}notify:\n{notify}"),
        )
    }

    fn write(dir: &Path, name: &str, text: &str, mode: u32) -> PathBuf {
        let path = dir.join(name);
        fs::write(&path, text).expect("write");
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).expect("chmod");
        path
    }

    #[test]
    fn without_notify_nothing_is_sent() {
        let dir = tempfile::tempdir().expect("tempdir");
        let settings = parse(&dir.path().join("agent.yaml"), MEMBER).expect("valid");
        assert!(settings.notify.is_empty());
        assert_eq!(settings.notify.queue, DEFAULT_QUEUE);
    }

    #[test]
    fn the_documented_example_is_accepted() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(dir.path(), "hook.secret", "s3cr3t\n", 0o600);
        write(dir.path(), "notify-pager", "#!/bin/sh\n", 0o755);
        let settings = with_notify(
            dir.path(),
            "  webhooks:\n\
             \x20   - url: https://hooks.example.com/shoal\n\
             \x20     secret_file: hook.secret\n\
             \x20     events: [halted, host_failed, completed]\n\
             \x20     timeout: 5s\n\
             \x20   - url: http://127.0.0.1:9000/events\n\
             \x20 command:\n\
             \x20   path: notify-pager\n\
             \x20   args: [--team, ops]\n\
             \x20   events: [halted]\n\
             \x20   timeout: 10s\n\
             \x20 queue: 256\n",
        )
        .expect("valid");
        let notify = settings.notify;
        assert_eq!(notify.webhooks.len(), 2);
        let first = &notify.webhooks[0];
        assert_eq!(first.url.as_str(), "https://hooks.example.com/shoal");
        let secret = first.secret.as_ref().expect("a secret");
        assert_eq!(secret.path(), dir.path().join("hook.secret"));
        assert!(first.events.takes(EventKind::HostFailed));
        assert!(!first.events.takes(EventKind::ReleaseSeen));
        let second = &notify.webhooks[1];
        assert!(second.secret.is_none());
        assert!(EventKind::ALL.into_iter().all(|k| second.events.takes(k)));
        assert_eq!(second.timeout, DEFAULT_WEBHOOK_TIMEOUT);
        let command = notify.command.expect("a command");
        assert_eq!(command.path, dir.path().join("notify-pager"));
        assert_eq!(command.args, ["--team", "ops"]);
        assert!(command.events.takes(EventKind::Halted));
        assert!(!command.events.takes(EventKind::Completed));
        assert_eq!(command.timeout, Duration::from_secs(10));
        assert_eq!(notify.queue, 256);
    }

    /// Each bad `notify:` gets one sentence naming the file, the line, the key and the fix.
    #[test]
    fn errors_name_the_key_and_what_would_be_accepted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let exposed = write(dir.path(), "open.secret", "s3cr3t\n", 0o644);
        write(dir.path(), "pager", "#!/bin/sh\n", 0o644);
        write(dir.path(), "shared-pager", "#!/bin/sh\n", 0o777);
        let exposed = exposed.display();
        let cases = [
            (
                "  webhooks:\n    - url: ftp://hooks.example.com/shoal\n".to_owned(),
                ":5: notify.webhooks[0].url: the scheme `ftp` is not http or https; write e.g. https://hooks.example.com/shoal".to_owned(),
            ),
            (
                "  webhooks:\n    - url: hooks.example.com/shoal\n".to_owned(),
                "notify.webhooks[0].url: not a URL (relative URL without a base)".to_owned(),
            ),
            (
                "  webhooks:\n    - { url: \"https://x.example/token\", events: [halted, deployed] }\n".to_owned(),
                "notify.webhooks[0].events: `deployed` is not an event name; use release_seen, rollout_started, host_failed, halted, resumed, promoted, completed, rolled_back".to_owned(),
            ),
            (
                "  webhooks:\n    - { url: \"https://x.example/\", secret_file: open.secret }\n".to_owned(),
                format!(
                    ":5: notify.webhooks[0].secret_file: the webhook secret file {exposed} gives group or others access (mode 0644), so other users could sign notifications; run `chmod 600 {exposed}`"
                ),
            ),
            (
                "  webhooks:\n    - { url: \"https://x.example/\", timeout: 0s }\n".to_owned(),
                "notify.webhooks[0].timeout: must be more than 0; the default is 5s".to_owned(),
            ),
            (
                "  webhooks:\n    - { url: \"https://x.example/\", secret: abc }\n".to_owned(),
                "unknown field `secret`".to_owned(),
            ),
            (
                "  command: { path: pager }\n".to_owned(),
                "notify.command.path: ".to_owned() + &dir.path().join("pager").display().to_string() + " is not executable (mode 0644)",
            ),
            (
                "  command: { path: shared-pager }\n".to_owned(),
                "may be changed by group or others (mode 0777), and the agent runs it as root".to_owned(),
            ),
            (
                "  command: { path: /bin/true, events: [] }\n".to_owned(),
                "notify.command.events: an empty list would send nothing".to_owned(),
            ),
            (
                "  command: { path: missing-pager }\n".to_owned(),
                "missing-pager does not exist; give the path of an executable".to_owned(),
            ),
            (
                "  queue: 0\n".to_owned(),
                ":4: notify.queue: 0 is not between 1 and 65536".to_owned(),
            ),
        ];
        for (text, words) in cases {
            let err = with_notify(dir.path(), &text).expect_err(&text).to_string();
            assert!(
                err.starts_with(&dir.path().join("agent.yaml").display().to_string()),
                "{err}"
            );
            assert!(err.contains(&words), "{text}\nwanted `{words}` in: {err}");
            assert_eq!(err.lines().count(), 1, "one line: {err}");
        }
        let token = with_notify(
            dir.path(),
            "  webhooks:\n    - url: \"gopher://x.example/T0/s3cr3t-token\"\n",
        )
        .expect_err("gopher")
        .to_string();
        assert!(
            !token.contains("s3cr3t-token"),
            "the URL's token is not shown: {token}"
        );
    }
}
