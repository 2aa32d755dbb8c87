//! The model of a release spreading through a fleet (`shoal_tests::sim::spread`): peers beat
//! the origin, the origin serves only the pollers, no holder serves more than it may at once,
//! and bad bytes from holders never stop a host from ending with good ones. In release builds,
//! the 2,000-host benchmark: `scripts/bench-spread.sh`.

use std::time::{Duration, SystemTime};

use shoal_shared::rollout::pollers::DEFAULT_POLLERS;
use shoal_shared::rollout::sources::DEFAULT_UPLOADS;
use shoal_tests::sim::spread::{GBIT, Outcome, Source, Sources, Spread};

fn with_uploads(spread: Spread, uploads: usize) -> Spread {
    Spread {
        sources: Sources::Peers {
            uploads,
            pollers: DEFAULT_POLLERS,
        },
        ..spread
    }
}

/// Runs `spread`; panics unless every host ended holding the release.
fn run(spread: &Spread) -> Outcome {
    let outcome = spread.run();
    let missing: Vec<&str> = outcome
        .held
        .iter()
        .zip(&outcome.names)
        .filter(|(held, _)| held.is_none())
        .map(|(_, name)| name.as_str())
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} hosts never held the release: {missing:?}\n{spread:?}",
        missing.len(),
        spread.hosts
    );
    outcome
}

fn last(outcome: &Outcome) -> Duration {
    outcome
        .percentile(100)
        .expect("every host holds the release")
}

#[test]
fn peers_spread_a_release_well_before_the_origin_alone_would() {
    for seed in 1..=2 {
        // The origin's link no faster than a host's: it sends 200 GB in 1,600 s at best.
        let slow = |spread| Spread {
            origin_up: GBIT,
            ..spread
        };
        let peers = last(&run(&slow(Spread::peers(200, seed))));
        let origin = last(&run(&slow(Spread::origin_only(200, seed))));
        assert!(
            origin >= Duration::from_secs(1600),
            "origin only: {origin:?}"
        );
        assert!(
            peers * 4 <= origin,
            "seed {seed}, a 1 Gbit/s origin: peers took {peers:?}, the origin alone {origin:?}"
        );
        // A 10 Gbit/s origin sends them in 160 s: about where peers' generations of copies,
        // each a transfer and a gossip delay, catch up with it.
        let peers = last(&run(&Spread::peers(200, seed)));
        let origin = last(&run(&Spread::origin_only(200, seed)));
        assert!(
            origin >= Duration::from_secs(160),
            "origin only: {origin:?}"
        );
        assert!(
            peers * 4 <= origin * 3,
            "seed {seed}, a 10 Gbit/s origin: peers took {peers:?}, the origin alone {origin:?}"
        );
    }
}

#[test]
fn with_peers_the_origin_serves_only_the_pollers() {
    for (hosts, seed) in [(50, 1), (50, 2), (200, 3)] {
        for uploads in [1, DEFAULT_UPLOADS, 4] {
            let outcome = run(&with_uploads(Spread::peers(hosts, seed), uploads));
            assert!(
                outcome.origin_copies <= DEFAULT_POLLERS as u64,
                "{hosts} hosts, seed {seed}, {uploads} uploads: the origin served {} copies",
                outcome.origin_copies
            );
            assert_eq!(outcome.origin_bytes, outcome.origin_copies * 1_000_000_000);
        }
    }
    // Fetching from the origin alone, it serves everybody.
    let outcome = run(&Spread::origin_only(50, 1));
    assert_eq!(outcome.origin_copies, 50);
    assert_eq!(outcome.most_served(), (0, 0));
}

#[test]
fn no_holder_serves_more_copies_at_once_than_it_may() {
    for (hosts, seed) in [(50, 1), (200, 2)] {
        for uploads in [1, DEFAULT_UPLOADS, 4] {
            let outcome = run(&with_uploads(Spread::peers(hosts, seed), uploads));
            let (total, at_once) = outcome.most_served();
            assert!(
                at_once <= uploads,
                "{hosts} hosts, seed {seed}: a holder served {at_once} copies at once, \
                 {uploads} allowed"
            );
            // More fetchers than holders: some holder was asked for all it may serve.
            assert_eq!(at_once, uploads, "{hosts} hosts, seed {seed}");
            assert!(total >= at_once as u64);
            let copies: u64 = outcome.served.iter().sum::<u64>() + outcome.origin_copies;
            assert_eq!(copies, hosts as u64, "one copy a host, none failed");
        }
    }
}

#[test]
fn every_host_ends_with_good_bytes_when_the_first_holders_serve_bad_ones() {
    // The pollers' copies (the first holders) are bad; then ten; then every holder's, where
    // each host asks every holder it sees before it falls back to the origin.
    for (hosts, bad) in [(50, DEFAULT_POLLERS), (50, 10), (25, 25)] {
        let spread = Spread {
            bad_holders: bad,
            ..Spread::peers(hosts, 4)
        };
        let outcome = run(&spread);
        assert_eq!(outcome.bad.len(), bad, "the first {bad} holders are bad");
        assert!(outcome.failed > 0, "{bad} bad holders: no copy failed");
        for (host, held) in outcome.held.iter().enumerate() {
            if let Some((_, Source::Host(from))) = held {
                assert!(
                    !outcome.bad.contains(from),
                    "{bad} bad holders: {} kept bad bytes from {}",
                    outcome.names[host],
                    outcome.names[*from]
                );
            }
        }
        if bad == hosts {
            // No good holder is ever left: everybody fell back to the origin.
            assert_eq!(outcome.origin_copies, hosts as u64, "{outcome:?}");
        } else {
            assert!(
                outcome.origin_copies < hosts as u64,
                "{bad} bad: {outcome:?}"
            );
        }
    }
}

#[test]
fn a_seed_replays_the_same_spread() {
    let a = Spread::peers(50, 9).run();
    let b = Spread::peers(50, 9).run();
    assert_eq!(a.held, b.held);
    assert_eq!((a.busy, a.steps), (b.busy, b.steps));
    let c = Spread::peers(50, 10).run();
    assert_ne!(a.held, c.held, "another seed, another run");
}

/// One row of the benchmark's table.
fn row(what: &str, spread: &Spread) -> String {
    let started = SystemTime::now();
    let outcome = run(spread);
    let took = started.elapsed().unwrap_or_default();
    let at = |p| outcome.percentile(p).unwrap_or_default().as_secs_f64();
    let (total, at_once) = outcome.most_served();
    format!(
        "| {what} | {:.1} s | {:.1} s | {:.1} s | {} GB ({} copies) | {total} ({at_once} at once) \
         | {} | {:.2} s |",
        at(100),
        at(50),
        at(99),
        outcome.origin_bytes / 1_000_000_000,
        outcome.origin_copies,
        outcome.busy,
        took.as_secs_f64()
    )
}

/// The benchmark: `SHOAL_SPREAD_HOSTS` (default 2,000) hosts, a 1 GB release, 1 Gbit/s host
/// links, a 10 Gbit/s origin; `SHOAL_SPREAD_SEED` (default 1).
#[test]
#[ignore = "a benchmark, in release builds: scripts/bench-spread.sh"]
fn bench() {
    let env = |name: &str, default: u64| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let hosts = env("SHOAL_SPREAD_HOSTS", 2000) as usize;
    let seed = env("SHOAL_SPREAD_SEED", 1);
    println!(
        "spread: {hosts} hosts, 1 GB, 1 Gbit/s host links, 10 Gbit/s origin, 30 s polls, 3 s \
         gossip, seed {seed}"
    );
    println!(
        "| sources | last host | median | p99 | origin served | most one host served \
         | busy answers | model run |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for uploads in [DEFAULT_UPLOADS, 1, 4] {
        let spread = with_uploads(Spread::peers(hosts, seed), uploads);
        let what = format!("peers, {uploads} at once, {DEFAULT_POLLERS} pollers");
        println!("{}", row(&what, &spread));
    }
    println!("{}", row("origin only", &Spread::origin_only(hosts, seed)));
    // At 50 hosts: a fetcher that dropped a holder makes every ask of every round (the model
    // skips none of its asks), too slow a run at 2,000.
    println!("spread: 50 hosts, the first holders serving bad bytes, the same links, seed {seed}");
    println!(
        "| first holders serving bad bytes | last host | copies that failed | origin served |"
    );
    println!("|---|---|---|---|");
    for bad in [0, DEFAULT_POLLERS, 10, 50] {
        let outcome = run(&Spread {
            bad_holders: bad,
            ..Spread::peers(50, seed)
        });
        println!(
            "| {bad} | {:.1} s | {} | {} copies |",
            last(&outcome).as_secs_f64(),
            outcome.failed,
            outcome.origin_copies
        );
    }
}
