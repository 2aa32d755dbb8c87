//! The rollout policy: what a release's `rollout:` block (or a group's default) says, read
//! leniently from YAML into [`RawPolicy`] and then checked into a [`Policy`] with defaults.
//! Vocabulary follows CodeDeploy's deployment configs and Nomad's update block.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::duration::{DurationError, format_duration, parse_duration};

/// How hosts of a group take turns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// Every host at once.
    AllAtOnce,
    /// One host at a time.
    OneAtATime,
    /// Half the hosts (rounded up) at a time.
    HalfAtATime,
    /// `max_parallel` hosts at a time.
    Rolling,
    /// `canary` hosts first, then rolling by `max_parallel`.
    Canary,
    /// `linear.step` more hosts every `linear.every`.
    Linear,
}

impl Strategy {
    const NAMES: &str = "all-at-once, one-at-a-time, half-at-a-time, rolling, canary, linear \
         (or CodeDeployDefault.AllAtOnce, .OneAtATime, .HalfAtATime)";

    fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "all-at-once" | "CodeDeployDefault.AllAtOnce" => Self::AllAtOnce,
            "one-at-a-time" | "CodeDeployDefault.OneAtATime" => Self::OneAtATime,
            "half-at-a-time" | "CodeDeployDefault.HalfAtATime" => Self::HalfAtATime,
            "rolling" => Self::Rolling,
            "canary" => Self::Canary,
            "linear" => Self::Linear,
            _ => return None,
        })
    }

    /// The name written in policy files.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AllAtOnce => "all-at-once",
            Self::OneAtATime => "one-at-a-time",
            Self::HalfAtATime => "half-at-a-time",
            Self::Rolling => "rolling",
            Self::Canary => "canary",
            Self::Linear => "linear",
        }
    }
}

/// A number of hosts, absolute or as a share of the group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Amount {
    /// That many hosts.
    Count(u32),
    /// That percentage of the group, rounded up, at least 1.
    Percent(u32),
}

impl Amount {
    /// How many hosts of a group of `group_size` this is: percentages round up, and the result
    /// is at least 1 and at most the group (for a non-empty group).
    pub fn of(self, group_size: usize) -> usize {
        let n = match self {
            Self::Count(n) => n as usize,
            Self::Percent(p) => (group_size * p as usize).div_ceil(100),
        };
        n.max(1).min(group_size.max(1))
    }

    fn parse(key: &str, value: &Scalar) -> Result<Self, PolicyError> {
        let bad = || {
            PolicyError::new(
                key,
                format!("`{value}` is not a host count or percentage; write e.g. 2 or 25%"),
            )
        };
        let text = value.to_string();
        let amount = match text.strip_suffix('%') {
            Some(p) => Self::Percent(p.trim().parse().map_err(|_| bad())?),
            None => Self::Count(text.trim().parse().map_err(|_| bad())?),
        };
        match amount {
            Self::Count(0) | Self::Percent(0) => {
                Err(PolicyError::new(key, "must be at least 1 host or 1%"))
            }
            Self::Percent(p) if p > 100 => Err(PolicyError::new(
                key,
                format!("{p}% is more than the whole group"),
            )),
            ok => Ok(ok),
        }
    }
}

impl std::fmt::Display for Amount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Count(n) => write!(f, "{n}"),
            Self::Percent(p) => write!(f, "{p}%"),
        }
    }
}

/// `linear: {step, every}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Linear {
    /// Hosts added per step.
    pub step: Amount,
    /// Time between steps.
    pub every: Duration,
}

/// A checked rollout policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// How hosts take turns.
    pub strategy: Strategy,
    /// Hosts upgrading at once (rolling, and canary after the canaries).
    pub max_parallel: Amount,
    /// Hosts that go first (canary).
    pub canary: Amount,
    /// Steps of a linear rollout.
    pub linear: Option<Linear>,
    /// How long a host must stay healthy before it counts as done.
    pub min_healthy_time: Duration,
    /// A host not healthy by then has failed.
    pub healthy_deadline: Duration,
    /// The deployment fails if no host completes within this.
    pub progress_deadline: Duration,
    /// Failed hosts tolerated before the group halts.
    pub max_failures: u32,
    /// On halt, hosts that moved go back to their last known good revision.
    pub auto_revert: bool,
    /// Canary: continue once canaries are healthy, without `shoal promote`.
    pub auto_promote: bool,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            strategy: Strategy::Rolling,
            max_parallel: Amount::Percent(25),
            canary: Amount::Count(1),
            linear: None,
            min_healthy_time: Duration::from_secs(10),
            healthy_deadline: Duration::from_secs(300),
            progress_deadline: Duration::from_secs(600),
            max_failures: 0,
            auto_revert: true,
            auto_promote: true,
        }
    }
}

/// A YAML scalar as written: policies accept `2`, `25%`, `30s`, `true` without caring how YAML typed them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
#[allow(missing_docs)]
pub enum Scalar {
    Bool(bool),
    Int(i64),
    Text(String),
}

impl std::fmt::Display for Scalar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Bool(b) => write!(f, "{b}"),
            Self::Int(n) => write!(f, "{n}"),
            Self::Text(t) => f.write_str(t),
        }
    }
}

/// A `rollout:` block as written; every key is optional and unknown keys are refused.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct RawPolicy {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_parallel: Option<Scalar>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary: Option<Scalar>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linear: Option<RawLinear>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_healthy_time: Option<Scalar>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthy_deadline: Option<Scalar>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress_deadline: Option<Scalar>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_failures: Option<Scalar>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_revert: Option<Scalar>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_promote: Option<Scalar>,
}

/// `linear:` as written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct RawLinear {
    pub step: Scalar,
    pub every: Scalar,
}

/// A policy key with a bad value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("rollout.{key}: {message}")]
pub struct PolicyError {
    /// The key under `rollout:`.
    pub key: String,
    /// What is wrong and what is accepted.
    pub message: String,
}

impl PolicyError {
    fn new(key: &str, message: impl Into<String>) -> Self {
        Self {
            key: key.to_owned(),
            message: message.into(),
        }
    }
}

impl RawPolicy {
    /// Checks every key and fills what is missing from `base` (the group's default policy).
    pub fn check(&self, base: &Policy) -> Result<Policy, PolicyError> {
        let mut policy = base.clone();
        if let Some(s) = &self.strategy {
            policy.strategy = Strategy::parse(s).ok_or_else(|| {
                PolicyError::new(
                    "strategy",
                    format!("`{s}` is not a strategy; accepted: {}", Strategy::NAMES),
                )
            })?;
        }
        if let Some(v) = &self.max_parallel {
            policy.max_parallel = Amount::parse("max_parallel", v)?;
        }
        if let Some(v) = &self.canary {
            policy.canary = Amount::parse("canary", v)?;
        }
        if let Some(linear) = &self.linear {
            policy.linear = Some(Linear {
                step: Amount::parse("linear.step", &linear.step)?,
                every: duration("linear.every", &linear.every)?,
            });
        }
        for (key, value, field) in [
            (
                "min_healthy_time",
                &self.min_healthy_time,
                &mut policy.min_healthy_time,
            ),
            (
                "healthy_deadline",
                &self.healthy_deadline,
                &mut policy.healthy_deadline,
            ),
            (
                "progress_deadline",
                &self.progress_deadline,
                &mut policy.progress_deadline,
            ),
        ] {
            if let Some(v) = value {
                *field = duration(key, v)?;
            }
        }
        if let Some(v) = &self.max_failures {
            policy.max_failures = match v {
                Scalar::Int(n) => u32::try_from(*n).ok(),
                _ => None,
            }
            .ok_or_else(|| {
                PolicyError::new(
                    "max_failures",
                    format!("`{v}` is not a count of hosts (0 or more)"),
                )
            })?;
        }
        for (key, value, field) in [
            ("auto_revert", &self.auto_revert, &mut policy.auto_revert),
            ("auto_promote", &self.auto_promote, &mut policy.auto_promote),
        ] {
            match value {
                None => {}
                Some(Scalar::Bool(b)) => *field = *b,
                Some(other) => {
                    return Err(PolicyError::new(
                        key,
                        format!("`{other}` is not true or false"),
                    ));
                }
            }
        }
        if policy.strategy == Strategy::Linear && policy.linear.is_none() {
            return Err(PolicyError::new(
                "linear",
                "strategy linear needs `linear: {step: 10%, every: 1m}`",
            ));
        }
        Ok(policy)
    }
}

impl Policy {
    /// The policy written back as a complete `rollout:` block.
    pub fn to_raw(&self) -> RawPolicy {
        let text = |s: String| Some(Scalar::Text(s));
        RawPolicy {
            strategy: Some(self.strategy.as_str().to_owned()),
            max_parallel: text(self.max_parallel.to_string()),
            canary: text(self.canary.to_string()),
            linear: self.linear.map(|l| RawLinear {
                step: Scalar::Text(l.step.to_string()),
                every: Scalar::Text(format_duration(l.every)),
            }),
            min_healthy_time: text(format_duration(self.min_healthy_time)),
            healthy_deadline: text(format_duration(self.healthy_deadline)),
            progress_deadline: text(format_duration(self.progress_deadline)),
            max_failures: Some(Scalar::Int(i64::from(self.max_failures))),
            auto_revert: Some(Scalar::Bool(self.auto_revert)),
            auto_promote: Some(Scalar::Bool(self.auto_promote)),
        }
    }
}

fn duration(key: &str, value: &Scalar) -> Result<Duration, PolicyError> {
    match value {
        Scalar::Text(t) => parse_duration(t).map_err(|e| PolicyError::new(key, e.to_string())),
        other => Err(PolicyError::new(
            key,
            DurationError {
                text: other.to_string(),
            }
            .to_string(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(yaml: &str) -> RawPolicy {
        serde_saphyr::from_str(yaml).expect(yaml)
    }

    #[test]
    fn amounts_round_up_and_stay_within_the_group() {
        assert_eq!(Amount::Percent(25).of(10), 3);
        assert_eq!(Amount::Percent(1).of(3), 1);
        assert_eq!(Amount::Percent(100).of(7), 7);
        assert_eq!(Amount::Count(5).of(3), 3);
        assert_eq!(Amount::Count(2).of(0), 1);
    }

    #[test]
    fn reads_a_full_block_and_keeps_defaults_for_the_rest() {
        let policy = raw("strategy: canary\ncanary: 10%\nmax_parallel: 2\nmin_healthy_time: 30s\nauto_promote: false\n")
            .check(&Policy::default())
            .expect("valid");
        assert_eq!(policy.strategy, Strategy::Canary);
        assert_eq!(policy.canary, Amount::Percent(10));
        assert_eq!(policy.max_parallel, Amount::Count(2));
        assert_eq!(policy.min_healthy_time, Duration::from_secs(30));
        assert!(!policy.auto_promote);
        assert_eq!(policy.healthy_deadline, Policy::default().healthy_deadline);
    }

    #[test]
    fn codedeploy_names_are_aliases() {
        let policy = raw("strategy: CodeDeployDefault.OneAtATime\n")
            .check(&Policy::default())
            .expect("valid");
        assert_eq!(policy.strategy, Strategy::OneAtATime);
    }

    #[test]
    fn bad_values_name_the_key_and_what_is_accepted() {
        let cases = [
            (
                "strategy: blue-green\n",
                "rollout.strategy: `blue-green` is not a strategy; accepted: all-at-once",
            ),
            (
                "max_parallel: 0\n",
                "rollout.max_parallel: must be at least 1",
            ),
            (
                "canary: 150%\n",
                "rollout.canary: 150% is more than the whole group",
            ),
            (
                "canary: lots\n",
                "rollout.canary: `lots` is not a host count or percentage",
            ),
            (
                "min_healthy_time: 10\n",
                "rollout.min_healthy_time: `10` is not a duration",
            ),
            (
                "max_failures: -1\n",
                "rollout.max_failures: `-1` is not a count",
            ),
            (
                "auto_revert: sometimes\n",
                "rollout.auto_revert: `sometimes` is not true or false",
            ),
            (
                "strategy: linear\n",
                "rollout.linear: strategy linear needs",
            ),
        ];
        for (yaml, expected) in cases {
            let err = raw(yaml).check(&Policy::default()).expect_err(yaml);
            assert!(err.to_string().starts_with(expected), "{yaml}: {err}");
        }
    }

    #[test]
    fn unknown_keys_are_refused() {
        let err = serde_saphyr::from_str::<RawPolicy>("strategy: rolling\nmax_paralel: 2\n")
            .expect_err("typo");
        assert!(err.to_string().contains("max_paralel"), "{err}");
    }

    #[test]
    fn written_policy_reads_back_the_same() {
        let policy = raw("strategy: linear\nlinear: {step: 10%, every: 1m}\nmax_failures: 2\n")
            .check(&Policy::default())
            .expect("valid");
        assert_eq!(policy.to_raw().check(&Policy::default()), Ok(policy));
    }
}
