//! OpenMetrics text for node_exporter's textfile collector, rendered from a run's manifest.
//!
//! Metrics: documents labelled, partitions by status, seconds per stage (summed over
//! partitions), run seconds, and the Unix time of the last successful run. A failed run keeps
//! the last success time found in the previous file, so an alert on its age keeps working.

use std::fmt::Write;

use crate::output::manifest::{Manifest, PartitionStatus, RunStatus};

const LAST_SUCCESS: &str = "textcluster_last_success_timestamp_seconds";

fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The last-success timestamp in a previous metrics file, if any.
pub fn previous_last_success(previous: &str) -> Option<f64> {
    previous
        .lines()
        .find(|l| l.starts_with(LAST_SUCCESS))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// Renders the metrics of `manifest`; `previous_success` is carried over when this run failed.
pub fn render(manifest: &Manifest, output: &str, previous_success: Option<f64>) -> String {
    let out = format!("output=\"{}\"", escape(output));
    let mut s = String::new();
    let mut gauge = |name: &str, help: &str, samples: &[(String, f64)]| {
        let _ = writeln!(s, "# TYPE {name} gauge\n# HELP {name} {help}");
        for (labels, value) in samples {
            let _ = writeln!(s, "{name}{{{labels}}} {value}");
        }
    };
    let n_docs: usize = manifest.partitions.iter().map(|p| p.n_docs).sum();
    gauge(
        "textcluster_documents",
        "Documents labelled by the last run.",
        &[(out.clone(), n_docs as f64)],
    );
    let statuses = [
        (PartitionStatus::Succeeded, "succeeded"),
        (PartitionStatus::Failed, "failed"),
        (PartitionStatus::Skipped, "skipped"),
        (PartitionStatus::Cancelled, "cancelled"),
    ];
    let by_status: Vec<(String, f64)> = statuses
        .iter()
        .map(|(status, name)| {
            let n = manifest
                .partitions
                .iter()
                .filter(|p| p.status == *status)
                .count();
            (format!("{out},status=\"{name}\""), n as f64)
        })
        .collect();
    gauge(
        "textcluster_partitions",
        "Partitions of the last run by status.",
        &by_status,
    );
    let read: f64 = manifest.partitions.iter().map(|p| p.seconds_read).sum();
    let write_labels: f64 = manifest
        .partitions
        .iter()
        .map(|p| p.seconds_write_labels)
        .sum();
    let stage = |f: fn(&crate::output::manifest::StageSeconds) -> f64| -> f64 {
        manifest.clusterings.iter().map(|c| f(&c.seconds)).sum()
    };
    let stages = [
        ("read", read),
        ("vectorize", stage(|s| s.vectorize)),
        ("cluster", stage(|s| s.cluster)),
        ("keywords", stage(|s| s.keywords)),
        ("write", stage(|s| s.write) + write_labels),
    ];
    let stage_samples: Vec<(String, f64)> = stages
        .iter()
        .map(|(name, v)| (format!("{out},stage=\"{name}\""), *v))
        .collect();
    gauge(
        "textcluster_stage_seconds",
        "Seconds per stage in the last run, summed over partitions.",
        &stage_samples,
    );
    gauge(
        "textcluster_run_seconds",
        "Wall-clock seconds of the last run.",
        &[(out.clone(), manifest.seconds_total)],
    );
    let success = (manifest.status == RunStatus::Succeeded)
        .then_some(manifest.started_at_unix() + manifest.seconds_total)
        .or(previous_success);
    if let Some(t) = success {
        gauge(
            LAST_SUCCESS,
            "Unix time the last successful run finished.",
            &[(out, t.round())],
        );
    }
    s.push_str("# EOF\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_success_is_read_back() {
        let text = "# TYPE x gauge\ntextcluster_last_success_timestamp_seconds{output=\"o\"} 1700000000\n# EOF\n";
        assert_eq!(previous_last_success(text), Some(1.7e9));
        assert_eq!(previous_last_success("# EOF\n"), None);
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c"), "a\\\"b\\\\c");
    }
}
