//! One simulated host: the agent's own journal and planner ([`GroupHost`], the code the agent
//! runs), its own clock, the work it runs (a lifecycle or a revert, which take time and may
//! fail), what is on its disk (the ground truth the checker holds the host to), and what
//! survives a crash: the journal, which the agent writes before it carries out anything
//! decided (so the journal at the moment of a crash is exactly what was written last), and the
//! channel's anti-rollback floor.

use std::path::PathBuf;

use shoal_shared::gossip::{GroupState, Target};
use shoal_shared::rollout::plan::Wait;
use shoal_shared::rollout::{
    Ended, GroupHost, Installed, Journal, Memory, Millis, Planner, Policy, Revision, Settings, View,
};

use super::rng::Rng;
use super::scenario::Clocks;
use super::world::GROUP;

/// A host's own clock: an offset and a rate of its own; the planner sees nothing else.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    base: u64,
    rate_ppm: u64,
}

impl Clock {
    const PPM: u64 = 1_000_000;

    /// A clock with an offset and drift drawn within `clocks`.
    pub fn draw(rng: &mut Rng, clocks: &Clocks) -> Self {
        let drift = clocks.max_drift_ppm.min(Self::PPM / 2);
        Self {
            // Far from zero, so no offset ever makes a reading negative.
            base: 1_700_000_000_000 + rng.range(0, clocks.max_offset_ms),
            rate_ppm: Self::PPM - drift + rng.range(0, 2 * drift),
        }
    }

    /// The reading at true time `t`.
    pub fn now(&self, t: u64) -> Millis {
        let local = u128::from(t) * u128::from(self.rate_ppm) / u128::from(Self::PPM);
        self.base + u64::try_from(local).unwrap_or(u64::MAX / 2)
    }

    /// How much true time passes while this clock advances `local` milliseconds.
    pub fn true_span(&self, local: u64) -> u64 {
        let span = u128::from(local) * u128::from(Self::PPM) / u128::from(self.rate_ppm);
        u64::try_from(span).unwrap_or(u64::MAX / 2)
    }
}

/// What is installed on the host (ground truth, by digest).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Disk {
    /// Exactly this revision.
    Clean(String),
    /// Half-way from one revision to another.
    Partial {
        /// What was installed before.
        from: String,
        /// What was being installed.
        to: String,
    },
}

impl Disk {
    /// Starts changing the disk towards `to`.
    pub fn touch(&mut self, to: &str) {
        let from = match self {
            Self::Clean(d) => d.clone(),
            Self::Partial { from, .. } => from.clone(),
        };
        if from != to {
            *self = Self::Partial {
                from,
                to: to.to_owned(),
            };
        }
    }

    /// The revision installed, unless half-way.
    pub fn clean(&self) -> Option<&str> {
        match self {
            Self::Clean(d) => Some(d),
            Self::Partial { .. } => None,
        }
    }
}

/// A lifecycle in progress (from `Action::Deploy` until it is reported).
#[derive(Debug, Clone)]
pub struct Lifecycle {
    /// The release.
    pub target: Target,
    /// Tells its end from those of cut runs.
    pub nonce: u64,
    /// From then on the disk is changed (files installed, hooks run).
    pub changes_at: u64,
    /// When it ends (or fails).
    pub ends_at: u64,
    /// Whether it fails.
    pub fails: bool,
}

/// What the host is doing for the planner.
#[derive(Debug, Clone)]
pub enum Work {
    /// Nothing.
    Idle,
    /// A lifecycle.
    Deploying(Lifecycle),
    /// A revert to this revision.
    Reverting {
        /// The revision it goes back to.
        to: Revision,
        /// Tells its end from those of cut reverts.
        nonce: u64,
    },
}

/// One simulated host.
#[derive(Debug)]
pub struct Host {
    /// The planner's fixed settings.
    pub settings: Settings,
    /// Running (not crashed).
    pub up: bool,
    /// Bumped at every crash: events of an earlier run are ignored.
    pub incarnation: u32,
    /// The journal and planner (a fresh one from the journal after every restart).
    pub core: GroupHost,
    /// Its clock.
    pub clock: Clock,
    /// Releases `1..=floor` of the channel were verified (persisted, like the agent's floor).
    pub floor: usize,
    /// What it runs.
    pub work: Work,
    /// What is installed.
    pub disk: Disk,
    /// The journal as written when it crashed (JSON, as the agent writes it), while it is down.
    pub persisted: Option<String>,
    /// The pending planner step (see `World::schedule_step`).
    pub step_token: u64,
    /// When the pending planner step is due.
    pub step_at: Option<u64>,
    /// When the planner last stepped.
    pub last_step: u64,
    /// Source of work nonces.
    pub nonces: u64,
    /// What the trace last showed of its planner: ticks that change none of it are not traced.
    pub shown: Option<(Option<GroupState>, Wait, bool)>,
}

impl Host {
    /// A host booting at `t` with `memory`, running `base` as its last known good revision.
    pub fn boot(
        settings: Settings,
        memory: Memory,
        policy: &Policy,
        clock: Clock,
        base: &Revision,
        t: u64,
    ) -> Self {
        let installed = Installed {
            revision: base.name.clone(),
            digest: base.digest.clone(),
            dir: PathBuf::from(format!("/sim/{}/base", settings.node)),
        };
        let journal = Journal {
            current: Some(installed.clone()),
            last_known_good: Some(installed),
            plan: Some(memory),
            ..Journal::empty()
        };
        let core = GroupHost::start(GROUP, settings.clone(), journal, policy, clock.now(t));
        Self {
            settings,
            up: true,
            incarnation: 0,
            core,
            clock,
            floor: 0,
            work: Work::Idle,
            disk: Disk::Clean(base.digest.clone()),
            persisted: None,
            step_token: 0,
            step_at: None,
            last_step: t,
            nonces: 0,
            shown: None,
        }
    }

    /// Its planner.
    pub fn planner(&self) -> &Planner {
        self.core.planner()
    }

    /// Its clock's reading at true time `t`.
    pub fn now(&self, t: u64) -> Millis {
        self.clock.now(t)
    }

    /// A fresh nonce for a piece of work.
    pub fn nonce(&mut self) -> u64 {
        self.nonces += 1;
        self.nonces
    }

    /// Kills the host at `t`: the work stops where it is, the disk stays as far as it got, and
    /// the journal survives as written. Returns the target of a lifecycle it cut, or why the
    /// journal does not survive being written and read back.
    pub fn crash(&mut self, t: u64) -> Result<Option<Target>, String> {
        let journal = self.core.journal();
        let text = serde_json::to_string(journal).map_err(|e| e.to_string())?;
        let read: Journal = serde_json::from_str(&text).map_err(|e| e.to_string())?;
        if read != *journal {
            return Err(format!(
                "the journal reads back differently: wrote {journal:?}, read {read:?}"
            ));
        }
        self.persisted = Some(text);
        self.up = false;
        self.incarnation += 1;
        self.step_at = None;
        self.step_token += 1;
        let cut = match std::mem::replace(&mut self.work, Work::Idle) {
            Work::Idle => None,
            Work::Deploying(run) => {
                if t >= run.changes_at {
                    self.disk.touch(&run.target.digest);
                }
                Some(run.target)
            }
            Work::Reverting { to, .. } => {
                self.disk.touch(&to.digest);
                None
            }
        };
        Ok(cut)
    }

    /// A planned stop: the work in hand ends as stopped, which the journal records (the
    /// crash that follows persists it).
    pub fn stop(&mut self) {
        if !matches!(self.work, Work::Idle) {
            self.core.ended(Ended::Stopped, &View::default(), 0);
            self.core.take_changed();
        }
    }

    /// Starts the host again at `t` from its journal; the caller recovers what it had in flight.
    pub fn restart(&mut self, policy: &Policy, t: u64) {
        let journal = self
            .persisted
            .take()
            .and_then(|text| serde_json::from_str(&text).ok())
            .unwrap_or_else(Journal::empty);
        self.core = GroupHost::start(
            GROUP,
            self.settings.clone(),
            journal,
            policy,
            self.clock.now(t),
        );
        self.up = true;
        self.last_step = t;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clocks_differ_in_offset_and_rate_but_never_go_back() {
        let mut rng = Rng::new(3);
        let clocks = Clocks {
            max_offset_ms: 1_000_000,
            max_drift_ppm: 10_000,
        };
        let clock = Clock::draw(&mut rng, &clocks);
        assert!(clock.now(1_000) > clock.now(0));
        let span = clock.now(1_000_000) - clock.now(0);
        assert!((990_000..=1_010_000).contains(&span), "{span}");
        assert!(clock.true_span(span).abs_diff(1_000_000) <= 1);
    }

    #[test]
    fn a_disk_touched_twice_remembers_where_it_came_from() {
        let mut disk = Disk::Clean("a".into());
        disk.touch("b");
        disk.touch("c");
        assert_eq!(
            disk,
            Disk::Partial {
                from: "a".into(),
                to: "c".into()
            }
        );
        let mut same = Disk::Clean("a".into());
        same.touch("a");
        assert_eq!(same.clean(), Some("a"));
    }
}
