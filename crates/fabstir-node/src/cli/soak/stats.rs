//! Resource samples of the soak run (the node's RSS, open file descriptors,
//! database size) and their summaries.
//!
//! The node is restarted during the run, and a fresh process starts small,
//! so the growth of RSS and file descriptors is measured within each node
//! process (after its warm-up) and pooled over the processes: the slope
//! says whether a process that keeps running keeps growing. The database
//! outlives the processes; its slope is over the whole run.

use serde::Serialize;

/// One sample.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Sample {
    /// Seconds since the run started.
    pub t_s: f64,
    /// Which node process (0 = the first start).
    pub run: usize,
    /// Seconds since that process started.
    pub age_s: f64,
    pub rss_kib: Option<u64>,
    pub fds: Option<u64>,
    /// `node.db` plus `node.db-wal`.
    pub db_bytes: u64,
    pub wal_bytes: u64,
}

/// The summary of one measured quantity.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// The first sample after the warm-up.
    pub first_after_warmup: Option<u64>,
    pub max: Option<u64>,
    pub last: Option<u64>,
    /// Least-squares growth per hour (see the module's doc: within node
    /// processes for RSS and descriptors, over the run for the database).
    pub slope_per_hour: Option<f64>,
}

/// Reads a process's resident set size (`VmRSS`, KiB) from `/proc`.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_vm_rss(&status)
}

/// `VmRSS` of a `/proc/PID/status` text, in KiB.
pub fn parse_vm_rss(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

/// Counts a process's open file descriptors (`/proc/PID/fd`).
pub fn open_fds(pid: u32) -> Option<u64> {
    Some(std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as u64)
}

/// Least-squares slope of `y` over `x` pooled over groups: each group is
/// centred on its own means, so a step between groups (a restarted process
/// starting small) does not count as growth. `None` without two distinct
/// `x` in some group.
pub fn pooled_slope(points: &[(usize, f64, f64)]) -> Option<f64> {
    let mut groups: std::collections::BTreeMap<usize, Vec<(f64, f64)>> = Default::default();
    for &(group, x, y) in points {
        groups.entry(group).or_default().push((x, y));
    }
    let (mut sxy, mut sxx) = (0.0, 0.0);
    for points in groups.values() {
        let n = points.len() as f64;
        let mx = points.iter().map(|p| p.0).sum::<f64>() / n;
        let my = points.iter().map(|p| p.1).sum::<f64>() / n;
        for (x, y) in points {
            sxy += (x - mx) * (y - my);
            sxx += (x - mx) * (x - mx);
        }
    }
    (sxx > 0.0).then(|| sxy / sxx)
}

fn rounded(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// Summarises a per-process quantity (`value` of a sample): the first value
/// of a process past its warm-up, the maximum, the last, and the pooled
/// slope per hour over samples past their process's warm-up.
pub fn per_process(
    samples: &[Sample],
    warmup_s: f64,
    value: impl Fn(&Sample) -> Option<u64>,
) -> Summary {
    let values: Vec<(&Sample, u64)> = samples
        .iter()
        .filter_map(|s| value(s).map(|v| (s, v)))
        .collect();
    let settled: Vec<(usize, f64, f64)> = values
        .iter()
        .filter(|(s, _)| s.age_s >= warmup_s)
        .map(|(s, v)| (s.run, s.t_s / 3600.0, *v as f64))
        .collect();
    Summary {
        first_after_warmup: values
            .iter()
            .find(|(s, _)| s.age_s >= warmup_s)
            .map(|(_, v)| *v),
        max: values.iter().map(|(_, v)| *v).max(),
        last: values.last().map(|(_, v)| *v),
        slope_per_hour: pooled_slope(&settled).map(rounded),
    }
}

/// Summarises the database size over the run (past the run's warm-up).
pub fn over_run(samples: &[Sample], warmup_s: f64) -> Summary {
    let settled: Vec<(usize, f64, f64)> = samples
        .iter()
        .filter(|s| s.t_s >= warmup_s)
        .map(|s| (0, s.t_s / 3600.0, s.db_bytes as f64))
        .collect();
    Summary {
        first_after_warmup: samples
            .iter()
            .find(|s| s.t_s >= warmup_s)
            .map(|s| s.db_bytes),
        max: samples.iter().map(|s| s.db_bytes).max(),
        last: samples.last().map(|s| s.db_bytes),
        slope_per_hour: pooled_slope(&settled).map(rounded),
    }
}

/// About `points` samples spread evenly over the run: the first sample at or
/// after each step (for a table over time).
pub fn timeline(samples: &[Sample], points: usize) -> Vec<Sample> {
    let Some(end) = samples.last().map(|s| s.t_s) else {
        return Vec::new();
    };
    let step = (end / points.max(1) as f64).max(1e-9);
    let mut out: Vec<Sample> = Vec::new();
    let mut next = 0.0;
    for sample in samples {
        if sample.t_s + 1e-9 >= next {
            out.push(*sample);
            next = (sample.t_s / step).floor() * step + step;
        }
    }
    if out.last().map(|s| s.t_s) != Some(end) {
        out.extend(samples.last().copied());
    }
    out
}

/// Nearest-rank percentile of sorted values, rounded to 0.1.
pub fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let index = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    Some(rounded(sorted[index]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(t_s: f64, run: usize, age_s: f64, rss: u64, db: u64) -> Sample {
        Sample {
            t_s,
            run,
            age_s,
            rss_kib: Some(rss),
            fds: Some(20),
            db_bytes: db,
            wal_bytes: 0,
        }
    }

    #[test]
    fn vm_rss_is_read_from_proc_status() {
        let status = "Name:\tfabstir-node\nVmPeak:\t  99 kB\nVmRSS:\t   28412 kB\nThreads:\t9\n";
        assert_eq!(parse_vm_rss(status), Some(28412));
        assert_eq!(parse_vm_rss("Name:\tx\n"), None);
        // This process has a resident set and descriptors.
        let me = std::process::id();
        assert!(rss_kib(me).is_some_and(|kib| kib > 0));
        assert!(open_fds(me).is_some_and(|n| n >= 3));
    }

    #[test]
    fn a_restart_is_not_growth_but_growth_within_processes_is() {
        // Two processes, each flat at its own level: no growth.
        let flat = [
            (0, 0.0, 50.0),
            (0, 1.0, 50.0),
            (1, 2.0, 20.0),
            (1, 3.0, 20.0),
        ];
        assert_eq!(pooled_slope(&flat), Some(0.0));
        // Each grows by 10 per unit, the second starting lower.
        let growing = [
            (0, 0.0, 50.0),
            (0, 1.0, 60.0),
            (1, 2.0, 20.0),
            (1, 3.0, 30.0),
        ];
        assert_eq!(pooled_slope(&growing), Some(10.0));
        // One point per process: nothing to fit.
        assert_eq!(pooled_slope(&[(0, 0.0, 1.0), (1, 1.0, 2.0)]), None);
    }

    #[test]
    fn summaries_skip_each_process_warm_up() {
        let samples = [
            sample(0.0, 0, 0.0, 10_000, 100),
            sample(1800.0, 0, 1800.0, 20_000, 200),
            sample(3600.0, 0, 3600.0, 21_000, 300),
            sample(3700.0, 1, 10.0, 9_000, 310),
            sample(7200.0, 1, 3510.0, 10_000, 400),
        ];
        let rss = per_process(&samples, 60.0, |s| s.rss_kib);
        assert_eq!(rss.first_after_warmup, Some(20_000));
        assert_eq!(rss.max, Some(21_000));
        assert_eq!(rss.last, Some(10_000));
        // Process 0: +1000 over half an hour; process 1: one sample past warm-up.
        assert_eq!(rss.slope_per_hour, Some(2000.0));
        let db = over_run(&samples, 60.0);
        assert_eq!(db.first_after_warmup, Some(200));
        assert_eq!(db.max, Some(400));
        assert!(db.slope_per_hour.is_some_and(|s| s > 0.0));
    }

    #[test]
    fn the_timeline_spreads_samples_over_the_run() {
        let samples: Vec<Sample> = (0..=120)
            .map(|i| sample(i as f64 * 5.0, 0, i as f64 * 5.0, 1, 1))
            .collect();
        let line = timeline(&samples, 10);
        let times: Vec<f64> = line.iter().map(|s| s.t_s).collect();
        assert_eq!(
            times,
            vec![0.0, 60.0, 120.0, 180.0, 240.0, 300.0, 360.0, 420.0, 480.0, 540.0, 600.0]
        );
        assert!(timeline(&[], 10).is_empty());
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let sorted: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&sorted, 0.5), Some(50.0));
        assert_eq!(percentile(&sorted, 0.99), Some(99.0));
        assert_eq!(percentile(&[], 0.5), None);
    }
}
