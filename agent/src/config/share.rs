//! `mesh.share`: how this host serves the releases it verified to its mesh's peers.

use std::net::SocketAddr;

/// `mesh.share`: how this host serves releases to its peers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareSettings {
    /// Where the TCP service listens; `None` is the gossip address (same IP and port, TCP).
    pub listen: Option<SocketAddr>,
    /// Copies served at once (`uploads`); 0 serves nothing (the host still fetches from peers).
    pub uploads: usize,
    /// The most bytes a second all uploads together send (`upload_rate`); `None` is the link's
    /// speed.
    pub upload_rate: Option<u64>,
}

impl Default for ShareSettings {
    fn default() -> Self {
        Self {
            listen: None,
            uploads: shoal_shared::rollout::sources::DEFAULT_UPLOADS,
            upload_rate: None,
        }
    }
}

/// Reads a rate such as `100MB/s`, `800Mbit/s` or `1GB/s` (decimal units, `/s` optional) as
/// bytes a second; `None` when it is not one.
pub fn parse_rate(text: &str) -> Option<u64> {
    let text = text.trim();
    let text = text.strip_suffix("/s").unwrap_or(text).trim_end();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let bytes = match unit.trim() {
        "B" => 1.0,
        "KB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        "Kbit" => 1e3 / 8.0,
        "Mbit" => 1e6 / 8.0,
        "Gbit" => 1e9 / 8.0,
        _ => return None,
    };
    let rate = number * bytes;
    (rate.is_finite() && (1.0..1e15).contains(&rate)).then_some(rate as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_read_in_bytes_and_bits() {
        assert_eq!(parse_rate("100MB/s"), Some(100_000_000));
        assert_eq!(parse_rate("800Mbit/s"), Some(100_000_000));
        assert_eq!(parse_rate("1.5 GB"), Some(1_500_000_000));
        assert_eq!(parse_rate("64KB/s"), Some(64_000));
        for bad in ["", "fast", "100", "100 MiB/s", "-1MB/s", "0MB/s", "1e99GB"] {
            assert_eq!(parse_rate(bad), None, "{bad}");
        }
    }
}
