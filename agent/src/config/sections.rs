//! Checking the sections of the config file that carry most rules: `mesh:` and each entry of
//! `groups:` (its channel, allowed_signers, rollout policy and health check).

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use shoal_shared::duration::{DurationError, format_duration, parse_duration};
use shoal_shared::release::AllowedSigners;
use shoal_shared::rollout::{Policy, RawHealth, Scalar};

use super::file::{GroupFile, MeshFile};
use super::{
    BadValue, Channel, DEFAULT_DEAD_GRACE, DEFAULT_GOSSIP_INTERVAL, DEFAULT_KEY_FILE, Group,
    HealthCheck, MIN_DEAD_GRACE_INTERVALS, Probe, ShareSettings, check_name, line_of, parse_rate,
};
use crate::channel::cache::MAX_KEEP;
use crate::channel::git::GitSource;
use crate::channel::store::{StoreLocation, StoreSource};
use crate::coordinate::seal::{KeyError, Keyring};
use crate::coordinate::{MAX_DATAGRAM, MIN_DATAGRAM, MeshSettings};

pub(super) fn mesh(
    raw: &MeshFile,
    node: &str,
    resolve: &dyn Fn(&Path) -> PathBuf,
) -> Result<MeshSettings, BadValue> {
    if raw.name.trim().is_empty() {
        return Err(BadValue::new(
            "mesh.name",
            "must not be empty; name the mesh, e.g. `prod`",
        ));
    }
    let addr = |key: &str, text: &str| -> Result<SocketAddr, BadValue> {
        text.parse().map_err(|_| {
            BadValue::new(
                format!("mesh.{key}"),
                format!("`{text}` is not IP:port, e.g. 10.0.0.5:7946"),
            )
        })
    };
    let listen = addr("listen", raw.listen.as_deref().unwrap_or("0.0.0.0:7946"))?;
    let advertise = raw
        .advertise
        .as_deref()
        .map(|a| addr("advertise", a))
        .transpose()?;
    for seed in &raw.seeds {
        let port = seed.rsplit_once(':').map(|(_, p)| p.parse::<u16>());
        if !matches!(port, Some(Ok(_))) {
            return Err(BadValue::new(
                "mesh.seeds",
                format!("`{seed}` is not host:port, e.g. 10.0.0.6:7946"),
            ));
        }
    }
    let interval = raw.interval.map_or(DEFAULT_GOSSIP_INTERVAL, |d| d.0);
    if interval.is_zero() {
        return Err(BadValue::new(
            "mesh.interval",
            "must be more than 0, e.g. 1s",
        ));
    }
    let dead_grace = raw.dead_grace.map_or(DEFAULT_DEAD_GRACE, |d| d.0);
    let shortest = interval.saturating_mul(MIN_DEAD_GRACE_INTERVALS);
    if dead_grace < shortest {
        return Err(BadValue::new(
            "mesh.dead_grace",
            format!(
                "{} is shorter than {MIN_DEAD_GRACE_INTERVALS} gossip intervals ({}), so dead hosts would be forgotten as soon as they are noticed; use e.g. 10m",
                format_duration(dead_grace),
                format_duration(shortest)
            ),
        ));
    }
    let keyring = match (raw.insecure, &raw.key_file) {
        (true, Some(_)) => {
            return Err(BadValue::new(
                "mesh.insecure",
                "true turns gossip sealing off, so mesh.key_file would not be used; remove one of them",
            ));
        }
        (true, None) => None,
        (false, file) => {
            let file = resolve(file.as_deref().unwrap_or(Path::new(DEFAULT_KEY_FILE)));
            let keyring = Keyring::load(&file).map_err(|e| {
                let message = match e {
                    KeyError::Read { ref source, .. } if source.kind() == ErrorKind::NotFound => {
                        format!(
                            "{} does not exist; make one with `shoal keygen --out {}` and copy it to every host of the mesh (or set mesh.insecure: true to gossip in the clear)",
                            file.display(),
                            file.display()
                        )
                    }
                    other => other.to_string(),
                };
                BadValue::new("mesh.key_file", message)
            })?;
            Some(Arc::new(keyring))
        }
    };
    let max_datagram = raw.max_datagram.unwrap_or(MAX_DATAGRAM);
    if raw.insecure && raw.max_datagram.is_some() {
        return Err(BadValue::new(
            "mesh.max_datagram",
            "only sealed gossip can send a message in parts, and mesh.insecure is true; remove mesh.max_datagram",
        ));
    }
    if !(MIN_DATAGRAM..=MAX_DATAGRAM).contains(&max_datagram) {
        return Err(BadValue::new(
            "mesh.max_datagram",
            format!(
                "{max_datagram} is not between {MIN_DATAGRAM} and {MAX_DATAGRAM} bytes; use e.g. 1400 on networks that drop IP fragments"
            ),
        ));
    }
    Ok(MeshSettings {
        cluster: raw.name.clone(),
        node: node.to_owned(),
        listen,
        advertise,
        seeds: raw.seeds.clone(),
        interval,
        dead_grace,
        keyring,
        max_datagram,
    })
}

/// `mesh.share`, checked; the defaults when absent. Refused with `mesh.insecure`: only
/// members holding the cluster key may fetch, and the bytes must not cross the network in
/// the clear.
pub(super) fn share(raw: &MeshFile) -> Result<ShareSettings, BadValue> {
    let Some(file) = &raw.share else {
        return Ok(ShareSettings::default());
    };
    if raw.insecure {
        return Err(BadValue::new(
            "mesh.share",
            "peers share releases only over a sealed mesh, and mesh.insecure is true; remove mesh.share or give the mesh a key_file",
        ));
    }
    let listen = file
        .listen
        .as_deref()
        .map(|text| {
            text.parse::<SocketAddr>().map_err(|_| {
                BadValue::new(
                    "mesh.share.listen",
                    format!("`{text}` is not IP:port, e.g. 0.0.0.0:7946"),
                )
            })
        })
        .transpose()?;
    let upload_rate = file
        .upload_rate
        .as_deref()
        .map(|text| {
            parse_rate(text).ok_or_else(|| {
                BadValue::new(
                    "mesh.share.upload_rate",
                    format!("`{text}` is not a rate; write e.g. 100MB/s or 800Mbit/s"),
                )
            })
        })
        .transpose()?;
    Ok(ShareSettings {
        listen,
        uploads: file.uploads.unwrap_or(ShareSettings::default().uploads),
        upload_rate,
    })
}

pub(super) type GroupError = (Option<u64>, String);

/// `keep_releases` unless configured.
pub const DEFAULT_KEEP_RELEASES: usize = 2;

pub(super) fn group(
    index: usize,
    raw: &GroupFile,
    resolve: &dyn Fn(&Path) -> PathBuf,
) -> Result<Group, GroupError> {
    let key = |k: &str| format!("groups[{index}].{k}");
    check_name(&raw.name).map_err(|e| (None, format!("{}: {e}", key("name"))))?;
    let channel_line = line_of(&raw.channel);
    let channel = match (&raw.channel.value.git, &raw.channel.value.store) {
        (Some(git), None) => {
            if git.url.trim().is_empty() {
                return Err((
                    channel_line,
                    format!("{}: must not be empty", key("channel.git.url")),
                ));
            }
            let mut source = GitSource::new(git.url.clone());
            if let Some(tags) = &git.tags {
                if tags.trim().is_empty() {
                    return Err((
                        channel_line,
                        format!(
                            "{}: must not be empty; the default is `v*`",
                            key("channel.git.tags")
                        ),
                    ));
                }
                source.tags = tags.clone();
            }
            if let Some(poll) = git.poll {
                source.poll = poll.0;
            }
            source.token_file = git.token_file.as_deref().map(resolve);
            source.username = git.username.clone();
            source.ssh_key = git.ssh_key.as_deref().map(resolve);
            if let Some(timeout) = git.timeout {
                if timeout.0.as_secs() == 0 {
                    return Err((
                        channel_line,
                        format!(
                            "{}: must be 1s or more, e.g. 30s",
                            key("channel.git.timeout")
                        ),
                    ));
                }
                source.timeout = timeout.0;
            }
            if let Err((field, reason)) = source.check_secrets() {
                let field = format!("channel.git.{field}");
                return Err((channel_line, format!("{}: {reason}", key(&field))));
            }
            Channel::Git(source)
        }
        (None, Some(store)) => {
            let mut source = StoreSource::new(store.url.clone());
            if let Err(e) = StoreLocation::parse(&store.url) {
                return Err((channel_line, format!("{}: {e}", key("channel.store.url"))));
            }
            if let Some(poll) = store.poll {
                source.poll = poll.0;
            }
            source.endpoint = store.endpoint.clone();
            source.region = store.region.clone();
            source.allow_http = store.allow_http;
            Channel::Store(source)
        }
        _ => {
            return Err((
                channel_line,
                format!("{}: set exactly one of `git:` or `store:`", key("channel")),
            ));
        }
    };
    let poll = match &channel {
        Channel::Git(source) => source.poll,
        Channel::Store(source) => source.poll,
    };
    if poll.is_zero() {
        return Err((
            channel_line,
            format!("{}: must be more than 0, e.g. 30s", key("channel.poll")),
        ));
    }
    let signers_path = resolve(&raw.allowed_signers.value);
    let signers_line = line_of(&raw.allowed_signers);
    let text = std::fs::read_to_string(&signers_path).map_err(|e| {
        (
            signers_line,
            format!(
                "{}: cannot read {}: {e}",
                key("allowed_signers"),
                signers_path.display()
            ),
        )
    })?;
    AllowedSigners::parse(&text).map_err(|e| {
        (
            signers_line,
            format!(
                "{}: {}: {e}",
                key("allowed_signers"),
                signers_path.display()
            ),
        )
    })?;
    let rollout = match &raw.rollout {
        Some(policy) => policy
            .value
            .check(&Policy::default())
            .map_err(|e| (line_of(policy), format!("groups[{index}].{e}")))?,
        None => Policy::default(),
    };
    let health = raw
        .health
        .as_ref()
        .map(|h| health(&h.value).map_err(|e| (line_of(h), format!("groups[{index}].{e}"))))
        .transpose()?;
    // What a release must be bound to (see `verify::Expect`): checked here so that a name no
    // release could carry is a config error, not every release refused.
    let application = raw.application.clone().unwrap_or_else(|| raw.name.clone());
    shoal_shared::release::check_application(&application)
        .map_err(|m| (None, format!("{}: {m}", key("application"))))?;
    let max_revisions = raw.max_revisions.unwrap_or(5);
    if max_revisions < 2 {
        return Err((
            None,
            format!(
                "{}: {max_revisions} is too few: the running revision and the last known good one must both stay on disk; use 2 or more",
                key("max_revisions")
            ),
        ));
    }
    if raw.expected_members == Some(0) {
        return Err((
            None,
            format!(
                "{}: 0 is no group; give the number of hosts in the group across the mesh, or leave it out to count every member ever seen",
                key("expected_members")
            ),
        ));
    }
    let pollers = raw
        .pollers
        .unwrap_or(shoal_shared::rollout::pollers::DEFAULT_POLLERS);
    if pollers == 0 {
        return Err((
            None,
            format!(
                "{}: 0 would leave the group without a host that looks at the origin; use 1 or more (default {})",
                key("pollers"),
                shoal_shared::rollout::pollers::DEFAULT_POLLERS
            ),
        ));
    }
    let keep_releases = raw.keep_releases.unwrap_or(DEFAULT_KEEP_RELEASES);
    if keep_releases > MAX_KEEP {
        return Err((
            None,
            format!(
                "{}: {keep_releases} is more than {MAX_KEEP}; it counts whole bundles kept in the release cache besides those in use, so use a small number such as {DEFAULT_KEEP_RELEASES}",
                key("keep_releases")
            ),
        ));
    }
    Ok(Group {
        expected_members: raw.expected_members,
        name: raw.name.clone(),
        application,
        channel,
        allowed_signers: signers_path,
        rollout,
        health,
        max_revisions,
        keep_releases,
        kill_grace: raw.kill_grace.map_or(Duration::from_secs(10), |d| d.0),
        pollers,
    })
}

/// A `health:` block, of a group or a release; the key of an error starts at `health`
/// (`health.http`).
pub(crate) fn health(raw: &RawHealth) -> Result<HealthCheck, BadValue> {
    let probe = match (&raw.command, &raw.http) {
        (Some(command), None) if !command.trim().is_empty() => Probe::Command(command.clone()),
        (None, Some(url)) => {
            let parsed = url::Url::parse(url)
                .map_err(|e| BadValue::new("health.http", format!("`{url}` is not a URL ({e})")))?;
            if parsed.scheme() != "http" || parsed.host_str().is_none() {
                return Err(BadValue::new(
                    "health.http",
                    format!(
                        "`{url}` is not an http:// URL; health checks talk plain HTTP to a local service, e.g. http://127.0.0.1:8080/health"
                    ),
                ));
            }
            Probe::Http(url.clone())
        }
        _ => {
            return Err(BadValue::new(
                "health",
                "set exactly one of `command:` or `http:`",
            ));
        }
    };
    let interval =
        duration("health.interval", raw.interval.as_ref())?.unwrap_or(Duration::from_secs(5));
    if interval.is_zero() {
        return Err(BadValue::new(
            "health.interval",
            "must be more than 0, e.g. 5s",
        ));
    }
    let timeout = duration("health.timeout", raw.timeout.as_ref())?
        .unwrap_or(interval.min(Duration::from_secs(10)));
    Ok(HealthCheck {
        probe,
        interval,
        timeout,
    })
}

/// A duration written as `5s`, `500ms`, `1m`.
fn duration(key: &str, value: Option<&Scalar>) -> Result<Option<Duration>, BadValue> {
    match value {
        None => Ok(None),
        Some(Scalar::Text(text)) => parse_duration(text)
            .map(Some)
            .map_err(|e| BadValue::new(key, e.to_string())),
        Some(other) => Err(BadValue::new(
            key,
            DurationError {
                text: other.to_string(),
            }
            .to_string(),
        )),
    }
}
