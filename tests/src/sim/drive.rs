//! Driving each host the way the agent's group task does: a step on every event of its own
//! (a run ending, a release verified, an operator command), on a change of its gossip view
//! (debounced and throttled), and on a periodic tick; after each step what it publishes goes
//! to gossip and the work it asked for runs (`work.rs`). The channel is polled with jitter and
//! checked again on a gossip hint.

use std::path::PathBuf;

use shoal_shared::gossip::Step;
use shoal_shared::rollout::{Ended, Event, Failure, Memory, View, Work};

use super::check::Violation;
use super::gossip::Record;
use super::trace::{Input, Stepped, What};
use super::world::{Ev, World};

impl World {
    /// Makes sure `h`'s planner steps no later than `at`.
    pub(super) fn schedule_step(&mut self, h: usize, at: u64) {
        let host = &mut self.hosts[h];
        if host.step_at.is_some_and(|due| due <= at) {
            return;
        }
        host.step_token += 1;
        host.step_at = Some(at);
        let token = host.step_token;
        self.at(at, Ev::Step { host: h, token });
    }

    /// `h`'s view changed: it steps after the debounce, at most once per throttle interval.
    pub(super) fn view_changed(&mut self, h: usize) {
        let a = self.sc.agent;
        let at = (self.t + a.debounce_ms).max(self.hosts[h].last_step + a.throttle_ms);
        self.schedule_step(h, at);
    }

    /// A scheduled step (tick or view change), unless a later one replaced it.
    pub(super) fn timed_step(&mut self, h: usize, token: u64) -> Result<(), Violation> {
        let host = &self.hosts[h];
        if !host.up || host.step_token != token {
            return Ok(());
        }
        self.step(h, Event::Tick)
    }

    /// Steps `h` with `event` and the view its gossip shows now.
    pub(super) fn step(&mut self, h: usize, event: Event) -> Result<(), Violation> {
        self.take(h, Input::Event(event))
    }

    /// `h`'s run ended.
    pub(super) fn ended(&mut self, h: usize, ended: Ended) -> Result<(), Violation> {
        self.take(h, Input::Ended(ended))
    }

    /// `h` restarted; `cut` is what the disk shows of the run its journal has in flight.
    pub(super) fn recovered(&mut self, h: usize, cut: Failure) -> Result<(), Violation> {
        self.take(h, Input::Recover(cut))
    }

    fn take(&mut self, h: usize, input: Input) -> Result<(), Violation> {
        let host = &mut self.hosts[h];
        let now = host.now(self.t);
        let view = self.gossip.view(h, self.t);
        let core = &mut host.core;
        let work = match input.clone() {
            Input::Event(Event::Release { target, policy }) => {
                core.release(target, policy, PathBuf::from("/sim/files"), &view, now)
            }
            Input::Event(event) => core.step(event, &view, now),
            Input::Ended(ended) => core.ended(ended, &view, now),
            Input::Recover(cut) => core.recover(cut, &view, now),
        };
        core.take_changed();
        // The exact count only when the checker needs it: it costs a lookup per peer.
        let starts = work
            .iter()
            .any(|w| matches!(w, Work::Run(run) if !run.is_revert()));
        let seen = if starts { seen } else { glance }(&view, core.planner().memory());
        drop(view);
        self.after(h, input, work, seen)
    }

    /// What follows any step of `h` (or operator command on it): the next tick, publishing,
    /// the trace, the work it asked for, and the checks.
    pub(super) fn after(
        &mut self,
        h: usize,
        input: Input,
        work: Vec<Work>,
        seen: (usize, usize),
    ) -> Result<(), Violation> {
        self.stats.steps += 1;
        let tick = self.sc.agent.tick_ms;
        let next = self.t + self.rng.range(tick * 9 / 10, tick * 11 / 10);
        let host = &mut self.hosts[h];
        host.last_step = self.t;
        host.step_at = None;
        host.step_token += 1;
        self.schedule_step(h, next);
        self.gossip.publish(h, Record::of(self.hosts[h].planner()));
        self.trace_step(h, input, &work, seen);
        for asked in work {
            self.carry_out(h, asked, seen)?;
        }
        self.observe(h, seen)
    }

    /// The checks after any step of `h`.
    pub(super) fn observe(&mut self, h: usize, seen: (usize, usize)) -> Result<(), Violation> {
        let excused = seen.0 * 2 > seen.1 && self.halted_behind_a_dead_host(h);
        self.checker.observe(h, &self.hosts[h], self.t, excused)
    }

    /// Whether `h` halted its target by the progress deadline while its view showed a dead
    /// host holding a slot (running, or not started: it may start unseen) and a live host (or
    /// itself) still to go behind it.
    fn halted_behind_a_dead_host(&self, h: usize) -> bool {
        let planner = self.hosts[h].planner();
        let (Some(halt), Some(target)) = (planner.halted(), planner.target()) else {
            return false;
        };
        if halt.host != planner.node() || !halt.reason.starts_with("progress deadline") {
            return false;
        }
        let to_go = |k: usize| {
            let step = self
                .gossip
                .record(h, k)
                .and_then(|r| r.state.as_ref())
                .filter(|s| s.target.as_ref() == Some(target))
                .and_then(|s| s.step);
            matches!(step, None | Some(Step::Waiting | Step::Running))
        };
        let peers = (0..self.hosts.len()).filter(|k| *k != h && self.gossip.knows(h, *k));
        let mut dead_in_the_way = false;
        let mut waiting = matches!(planner.step_now(), Some(Step::Waiting | Step::Running));
        for k in peers {
            if self.gossip.alive(h, k, self.t) {
                waiting |= to_go(k);
            } else {
                dead_in_the_way |= to_go(k);
            }
        }
        dead_in_the_way && waiting
    }

    /// Traces a step, unless it is a tick that asked for nothing and changed nothing shown.
    fn trace_step(&mut self, h: usize, input: Input, work: &[Work], seen: (usize, usize)) {
        let host = &mut self.hosts[h];
        let planner = host.core.planner();
        let shown = (
            planner.published().cloned(),
            planner.wait().clone(),
            planner.halted().is_some(),
        );
        let tick = matches!(input, Input::Event(Event::Tick));
        if tick && work.is_empty() && host.shown.as_ref() == Some(&shown) {
            return;
        }
        let (published, wait, halted) = shown.clone();
        host.shown = Some(shown);
        let what = What::Step(Box::new(Stepped {
            input,
            work: work.to_vec(),
            published,
            halted,
            wait,
            seen,
        }));
        self.trace.push(self.t, Some(h), what);
    }

    /// A periodic poll of the channel (with ±20 % jitter).
    pub(super) fn poll(&mut self, h: usize, incarnation: u32) -> Result<(), Violation> {
        if !self.valid(h, incarnation) {
            return Ok(());
        }
        let poll = self.sc.agent.poll_ms;
        let next = self.t + self.rng.range(poll * 4 / 5, poll * 6 / 5);
        self.at(
            next,
            Ev::Poll {
                host: h,
                incarnation,
            },
        );
        self.check_channel(h)
    }

    /// The host looks at the channel: the newest release, if above its floor, is verified
    /// and handed to the planner. The channel is the only source of releases.
    pub(super) fn check_channel(&mut self, h: usize) -> Result<(), Violation> {
        if self.published <= self.hosts[h].floor {
            // The release at the floor is handed again while the planner waits to run it
            // (after a restart it needs the files again), as the agent fetches it again.
            let floor = self.hosts[h].floor;
            let wants = self.hosts[h].core.wants_release();
            if floor > 0 && wants == Some(self.releases[floor - 1].0.revision.as_str()) {
                let (target, policy, _) = self.releases[floor - 1].clone();
                return self.step(h, Event::Release { target, policy });
            }
            return Ok(());
        }
        self.hosts[h].floor = self.published;
        let (target, policy, _) = self.releases[self.published - 1].clone();
        self.step(h, Event::Release { target, policy })
    }
}

/// Alive members the planner saw (itself included) and members it knows, after a step.
pub fn seen(view: &View<'_>, memory: &Memory) -> (usize, usize) {
    let alive = view
        .peers
        .iter()
        .filter(|p| p.alive && memory.members.contains_key(p.node))
        .count();
    (alive + 1, memory.members.len() + 1)
}

/// [`seen`] at a glance, for the trace: alive peers in the view, whether members or not.
fn glance(view: &View<'_>, memory: &Memory) -> (usize, usize) {
    let alive = view.peers.iter().filter(|p| p.alive).count();
    (alive + 1, memory.members.len() + 1)
}
