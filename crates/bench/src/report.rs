//! Measuring and printing: latency percentiles, process memory, JSON result lines.

use std::time::Duration;

/// Latencies of individual operations, for percentiles.
#[derive(Default)]
pub struct Latencies(Vec<Duration>);

impl Latencies {
    pub fn record(&mut self, latency: Duration) {
        self.0.push(latency);
    }

    pub fn merge(&mut self, other: Latencies) {
        self.0.extend(other.0);
    }

    /// How many operations were recorded.
    pub fn count(&self) -> usize {
        self.0.len()
    }

    /// The `q`-quantile (0..=1) in milliseconds, nearest-rank.
    pub fn percentile_ms(&mut self, q: f64) -> f64 {
        if self.0.is_empty() {
            return 0.0;
        }
        self.0.sort_unstable();
        let rank = ((q * self.0.len() as f64).ceil() as usize).clamp(1, self.0.len());
        round(self.0[rank - 1].as_secs_f64() * 1000.0)
    }
}

/// Rounds to 3 decimals, so result lines stay readable.
pub fn round(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// This process's resident memory in MiB (VmRSS), or 0 where /proc is missing.
pub fn rss_mb() -> f64 {
    rss_mb_in("/proc/self/status")
}

/// Another process's resident memory in MiB (VmRSS), or 0 where /proc is missing.
pub fn process_rss_mb(pid: u32) -> f64 {
    rss_mb_in(&format!("/proc/{pid}/status"))
}

fn rss_mb_in(status_file: &str) -> f64 {
    std::fs::read_to_string(status_file)
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
            line.split_whitespace().nth(1)?.parse::<f64>().ok()
        })
        .map_or(0.0, |kib| round(kib / 1024.0))
}

pub fn print(line: serde_json::Value) {
    println!("{line}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_nearest_rank() {
        let mut l = Latencies::default();
        for ms in 1..=100 {
            l.record(Duration::from_millis(ms));
        }
        assert_eq!(l.percentile_ms(0.5), 50.0);
        assert_eq!(l.percentile_ms(0.99), 99.0);
        assert_eq!(Latencies::default().percentile_ms(0.5), 0.0);
    }

    #[test]
    fn another_process_rss_is_read_from_proc() {
        assert!(process_rss_mb(std::process::id()) > 0.0);
        assert_eq!(process_rss_mb(u32::MAX), 0.0);
    }
}
