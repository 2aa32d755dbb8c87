//! What a run tells: the figures of a run that held, or the failure report of one that broke a
//! property (the violation, the scenario, the last steps, the failing host's view beside the
//! truth, and the command that replays exactly that run).

use super::check::Violation;
use super::scenario::secs;
use super::trace::state_text;
use super::world::World;
use super::{Failure, Report};

/// The report of a run that settled.
pub fn report(world: &World) -> Report {
    let sc = world.scenario();
    Report {
        seed: sc.seed,
        hosts: sc.hosts,
        stats: world.stats(),
        sim_ms: world.now(),
        figures: world.checker().figures.clone(),
        bound: *world.checker().bound(),
    }
}

/// The failure report of a run that broke `violation`.
pub fn failure(world: &World, violation: Violation) -> Failure {
    let sc = world.scenario();
    let seen_by = violation
        .host
        .map(|h| world.render_view(h))
        .unwrap_or_default();
    let text = format!(
        "\nsimulator: {violation}\n  at {} (true time) in seed {}\n\nscenario: {}\n\nthe last \
         steps (true time; each planner sees only its own skewed clock; `sees a/m`: alive \
         members it saw, itself included, of the members it knows):\n{}{seen_by}\nre-run \
         exactly this run:\n  {}\n",
        secs(world.now()),
        sc.seed,
        sc.describe(),
        world.trace().render(),
        sc.rerun
    );
    Failure {
        seed: sc.seed,
        violation,
        text,
    }
}

impl World {
    /// What `h`'s gossip shows it now, in its rollout order, beside the truth.
    fn render_view(&self, h: usize) -> String {
        let planner = self.hosts[h].planner();
        let mut text = format!(
            "\nh{h}'s view now, in its rollout order (its memory knows {} members; truth in \
             brackets):\n",
            planner.memory().members.len() + 1
        );
        let names = self.gossip.names();
        for node in planner.order() {
            let Some(k) = names.iter().position(|n| n == node) else {
                continue;
            };
            let seen = if k == h {
                "itself".to_owned()
            } else if !self.gossip.knows(h, k) {
                "not in gossip".to_owned()
            } else {
                let alive = if self.gossip.alive(h, k, self.t) {
                    "alive"
                } else {
                    "dead"
                };
                let state = self.gossip.record(h, k).and_then(|r| r.state.as_ref());
                format!("{alive}, {}", state_text(state))
            };
            let truth = &self.hosts[k];
            let real = state_text(truth.planner().published());
            let up = if truth.up { "up" } else { "down" };
            text.push_str(&format!("  {node:<4} {seen}   [{up}, {real}]\n"));
        }
        text
    }
}
