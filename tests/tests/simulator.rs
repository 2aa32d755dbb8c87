//! The deterministic simulator's tests (see `shoal_tests::sim`).

use shoal_tests::sim;

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// Re-runs one seed: `SHOAL_SIM_SEED=123 cargo test -p shoal-tests --test simulator -- one_seed`.
#[test]
fn one_seed() {
    let seed = env_u64("SHOAL_SIM_SEED").unwrap_or(1);
    let max_hosts = env_u64("SHOAL_SIM_MAX_HOSTS").unwrap_or(50) as usize;
    match sim::run_seed(seed, max_hosts) {
        Ok(report) => println!("{report:?}"),
        Err(failure) => panic!("{failure}"),
    }
}

#[test]
#[ignore]
fn explore() {
    let from = env_u64("FROM").unwrap_or(0);
    let count = env_u64("COUNT").unwrap_or(100);
    let max_hosts = env_u64("SHOAL_SIM_MAX_HOSTS").unwrap_or(50) as usize;
    let mut failures = std::collections::BTreeMap::<String, Vec<u64>>::new();
    for seed in from..from + count {
        if let Err(f) = sim::run_seed(seed, max_hosts) {
            let key = format!(
                "{}: {}",
                f.violation.property,
                f.violation.detail.chars().take(60).collect::<String>()
            );
            failures.entry(key).or_default().push(seed);
        }
    }
    for (k, seeds) in &failures {
        println!(
            "{} × {k}  e.g. {:?}",
            seeds.len(),
            &seeds[..seeds.len().min(8)]
        );
    }
}
