//! What the fleet shows of each host's health check.

use serde_json::Value;
use shoal_tests::poll_until;

use crate::fleet::{Fleet, Hooks};

/// The health every node shows for the group in host `i`'s `/v1/fleet`, by node id.
fn fleet_health(fleet: &Fleet, i: usize) -> Option<Vec<(String, String)>> {
    let view: Value = serde_json::from_str(&fleet.get(i, "/v1/fleet").body).ok()?;
    view["nodes"]
        .as_array()?
        .iter()
        .map(|node| {
            let group = node["groups"]
                .as_array()?
                .iter()
                .find(|g| g["name"] == "web")?;
            Some((
                node["id"].as_str()?.to_owned(),
                group["health"].as_str()?.to_owned(),
            ))
        })
        .collect()
}

/// Hosts that became healthy inside their deployment's health window (and stayed so) show
/// healthy in every host's fleet view, as each one's own status says; and when one turns
/// unhealthy later, every view shows that.
#[test]
fn every_host_shows_the_health_each_host_has() {
    let fleet = Fleet::start(3, "{ strategy: all-at-once, min_healthy_time: 1s }");
    let marks = fleet.marks();
    fleet.publish_with_release_file(
        "v1.0.0",
        Hooks::Good,
        &format!(
            "health: {{ command: \"test ! -e {}/sick-$E2E_NODE\", interval: 500ms, timeout: 5s }}\n",
            marks.display()
        ),
    );
    fleet.wait_all_on("v1.0.0");
    for i in 0..fleet.len() {
        let own = fleet.wait_status(i, "healthy", |g| g["health"] == "healthy");
        assert_eq!(own["health"], "healthy");
    }
    let all = |health: &str| {
        (0..fleet.len())
            .map(|i| (fleet.id(i), health.to_owned()))
            .collect::<Vec<_>>()
    };
    for i in 0..fleet.len() {
        let seen = poll_until(std::time::Duration::from_secs(30), || {
            fleet_health(&fleet, i).filter(|h| {
                let mut h = h.clone();
                h.sort();
                h == all("healthy")
            })
        });
        assert!(
            seen.is_some(),
            "host {i} shows {:?}, while each host's own status says healthy",
            fleet_health(&fleet, i)
        );
    }

    std::fs::write(marks.join(format!("sick-{}", fleet.id(1))), "").unwrap();
    for i in 0..fleet.len() {
        let seen = poll_until(std::time::Duration::from_secs(30), || {
            fleet_health(&fleet, i).filter(|h| {
                h.iter()
                    .all(|(id, health)| (id == &fleet.id(1)) == (health == "unhealthy"))
            })
        });
        assert!(
            seen.is_some(),
            "host {i} shows {:?} after {} turned unhealthy",
            fleet_health(&fleet, i),
            fleet.id(1)
        );
    }
}
