//! The run's recent history: a ring buffer of the last few hundred things that happened (which
//! host, what event its planner took, what it asked for, what it then published and why it was
//! waiting, plus crashes, partitions, releases and commands), printed when a property fails.

use std::collections::VecDeque;
use std::fmt::Write as _;

use shoal_shared::gossip::GroupState;
use shoal_shared::rollout::plan::Wait;
use shoal_shared::rollout::{Ended, Event, Failure, Outcome, Work};

use super::scenario::secs;

/// How many entries are kept.
pub const KEEP: usize = 300;

/// One thing that happened.
#[derive(Debug, Clone)]
pub enum What {
    /// A planner step (boxed: it is much larger than a note).
    Step(Box<Stepped>),
    /// Anything else, in words.
    Note(String),
}

/// What a host took in a step.
#[derive(Debug, Clone)]
pub enum Input {
    /// An event for its planner.
    Event(Event),
    /// The end of the run it carried out.
    Ended(Ended),
    /// After a restart, what the disk showed of the run cut short.
    Recover(Failure),
}

/// A traced step of a host.
#[derive(Debug, Clone)]
pub struct Stepped {
    /// What it took.
    pub input: Input,
    /// What it asked for.
    pub work: Vec<Work>,
    /// What it published afterwards.
    pub published: Option<GroupState>,
    /// Whether it then knew a halt of its target.
    pub halted: bool,
    /// Why it is not starting.
    pub wait: Wait,
    /// Alive members it saw, itself included, and members it knew.
    pub seen: (usize, usize),
}

/// One entry.
#[derive(Debug, Clone)]
pub struct Entry {
    /// True time.
    pub t: u64,
    /// The host, if one.
    pub host: Option<usize>,
    /// What.
    pub what: What,
}

/// The ring buffer.
#[derive(Debug, Default)]
pub struct Trace {
    entries: VecDeque<Entry>,
    dropped: u64,
}

impl Trace {
    /// Records one entry, forgetting the oldest past [`KEEP`].
    pub fn push(&mut self, t: u64, host: Option<usize>, what: What) {
        if self.entries.len() == KEEP {
            self.entries.pop_front();
            self.dropped += 1;
        }
        self.entries.push_back(Entry { t, host, what });
    }

    /// A note about the run (or one host).
    pub fn note(&mut self, t: u64, host: Option<usize>, text: String) {
        self.push(t, host, What::Note(text));
    }

    /// Every entry kept, one per line.
    pub fn render(&self) -> String {
        let mut text = String::new();
        if self.dropped > 0 {
            let _ = writeln!(text, "  … {} earlier entries not kept", self.dropped);
        }
        for entry in &self.entries {
            let host = entry.host.map_or("   ".to_owned(), |h| format!("h{h:<2}"));
            let _ = writeln!(
                text,
                "  {:>10} {host} {}",
                secs(entry.t),
                render(&entry.what)
            );
        }
        text
    }
}

fn render(what: &What) -> String {
    match what {
        What::Note(text) => format!("· {text}"),
        What::Step(step) => {
            let Stepped {
                input,
                work,
                published,
                halted,
                wait,
                seen,
            } = step.as_ref();
            let mut text = format!("{} →", input_text(input));
            if work.is_empty() {
                text.push_str(" -");
            }
            for asked in work {
                let _ = write!(text, " {}", work_text(asked));
            }
            let _ = write!(text, " | {}", state_text(published.as_ref()));
            if *halted {
                text.push_str(" HALTED");
            }
            let _ = write!(text, " | sees {}/{} | {wait}", seen.0, seen.1);
            text
        }
    }
}

/// What a host took, in a few words.
fn input_text(input: &Input) -> String {
    match input {
        Input::Event(event) => event_text(event),
        Input::Ended(Ended::Succeeded { .. }) => "run: succeeded".to_owned(),
        Input::Ended(Ended::Failed(f)) => {
            format!(
                "run: failed ({}, changed host: {})",
                f.reason, f.changed_host
            )
        }
        Input::Ended(Ended::Cut(f)) => format!("run: cut (changed host: {})", f.changed_host),
        Input::Ended(Ended::Stopped) => "run: stopped".to_owned(),
        Input::Recover(f) => format!("recovers (changed host: {})", f.changed_host),
    }
}

/// An event in a few words.
pub fn event_text(event: &Event) -> String {
    match event {
        Event::Tick => "tick".to_owned(),
        Event::Release { target, .. } => format!("release {}", target.revision),
        Event::Ran(Outcome::Done) => "ran: done".to_owned(),
        Event::Ran(Outcome::Failed { reason, .. }) => format!("ran: failed ({reason})"),
        Event::Ran(Outcome::Interrupted { changed_host, .. }) => {
            format!("ran: interrupted (changed host: {changed_host})")
        }
        Event::Reverted { ok } => format!("reverted (ok: {ok})"),
        Event::Health(h) => format!("health {h:?}"),
    }
}

fn work_text(work: &Work) -> String {
    match work {
        Work::Run(run) if run.is_revert() => {
            format!("REVERT to {} (attempt {})", run.revision, run.attempt)
        }
        Work::Run(run) => format!("DEPLOY {}", run.revision),
        Work::CheckChannel(t) => format!("check-channel ({})", t.revision),
        Work::Unreverted { why, .. } => format!("not reverted ({why})"),
    }
}

/// A published state in a few words.
pub fn state_text(state: Option<&GroupState>) -> String {
    let Some(s) = state else {
        return "publishes nothing".to_owned();
    };
    let target = s
        .target
        .as_ref()
        .map_or("-".to_owned(), |t| t.revision.clone());
    let step = s.step.map_or("-", |st| st.as_str());
    let mut text = format!(
        "on {} → {target} {step} e{}",
        s.revision.as_deref().unwrap_or("-"),
        s.epoch
    );
    if s.failures > 0 {
        let _ = write!(text, " failures {}", s.failures);
    }
    text
}
