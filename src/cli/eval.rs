//! `textcluster eval`.

use std::path::PathBuf;

use clap::Args;

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// A run's output path (holds `labels/` and `manifest.json`).
    pub out: PathBuf,
    /// The gold data: Parquet with the id column and a label column (hive layout allowed).
    #[arg(long)]
    pub gold: PathBuf,
    /// The gold label column.
    #[arg(long, default_value = "label")]
    pub label_column: String,
    /// The gold id column, matched against `doc_id` of the labels.
    #[arg(long, default_value = "doc_id")]
    pub id_column: String,
    /// Keywords per cluster whose coherence, coverage and precision are measured.
    #[arg(long, default_value_t = 10)]
    pub top_n: usize,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Scores the run and prints one row per partition (partition scope) plus a summary.
pub fn execute(args: &EvalArgs) -> anyhow::Result<()> {
    let evaluation = textcluster::eval::evaluate(
        &args.out,
        &args.gold,
        &args.id_column,
        &args.label_column,
        args.top_n,
    )?;
    if evaluation.n_duplicate_label_rows > 0 {
        super::term::print_error_line(&format!(
            "note: {} label rows share a doc_id with another row of their partition; each was scored on its own against that id's gold label",
            evaluation.n_duplicate_label_rows
        ));
    }
    if evaluation.n_duplicate_gold_ids > 0 {
        super::term::print_error_line(&format!(
            "note: {} gold ids occur more than once; the first label of each was used",
            evaluation.n_duplicate_gold_ids
        ));
    }
    if evaluation.n_null_gold > 0 {
        super::term::print_error_line(&format!(
            "note: {} labelled documents have a null gold label; they are left out",
            evaluation.n_null_gold
        ));
    }
    if evaluation.n_unmatched > 0 {
        super::term::print_error_line(&format!(
            "note: {} labelled documents have no gold label",
            evaluation.n_unmatched
        ));
    }
    if args.json {
        super::term::print_line(&serde_json::to_string_pretty(&evaluation)?);
        return Ok(());
    }
    super::term::print_line(&format!(
        "{:<24} {:>8} {:>9} {:>6} {:>7} {:>7} {:>7} {:>8}",
        "partition", "docs", "clusters", "gold", "NMI", "ARI", "purity", "largest"
    ));
    let rows = if evaluation.groups.len() > 1 {
        evaluation
            .groups
            .iter()
            .chain([&evaluation.summary])
            .collect::<Vec<_>>()
    } else {
        evaluation.groups.iter().collect()
    };
    for s in rows {
        super::term::print_line(&format!(
            "{:<24} {:>8} {:>9} {:>6} {:>7.4} {:>7.4} {:>7.4} {:>8}",
            s.key,
            s.n_docs,
            s.n_clusters,
            s.n_gold_labels,
            s.nmi,
            s.ari,
            s.purity,
            s.largest_cluster
        ));
    }
    print_fits(&evaluation.fits);
    let Some(l) = &evaluation.labels else {
        return Ok(());
    };
    super::term::print_line("");
    super::term::print_line(&format!(
        "{:<16} {:>7} {:>7} {:>6} {:>6} {:>6}  {:<24} top {}",
        "clustering", "cluster", "docs", "NPMI", "cover", "prec", "majority (* named)", l.top_n
    ));
    for c in &l.clusters {
        let majority = format!(
            "{}{}",
            c.majority.as_deref().unwrap_or("-"),
            if c.names_group { " *" } else { "" }
        );
        super::term::print_line(&format!(
            "{:<16} {:>7} {:>7} {:>6.3} {:>6.3} {:>6.3}  {:<24} {}",
            c.key,
            c.cluster,
            c.n_docs,
            c.npmi,
            c.median_coverage,
            c.median_precision,
            majority,
            c.keywords.join(" ")
        ));
    }
    super::term::print_line(&format!(
        "labels: mean NPMI {:.4}, median coverage {:.4}, median precision {:.4}, topic diversity {:.4}, {} of {} clusters name their majority group",
        l.mean_npmi,
        l.median_coverage,
        l.median_precision,
        l.topic_diversity,
        l.n_naming_group,
        l.n_clusters
    ));
    Ok(())
}

/// Above this many clusterings, `eval` sums up their convergence in one line.
const FIT_LINES: usize = 20;

/// One line per clustering: its rounds, whether it converged, and its unsettled clusters (with
/// the documents that joined and left each after round 10); one summary line for many.
fn print_fits(fits: &[textcluster::eval::FitSummary]) {
    if fits.len() > FIT_LINES {
        let rounds = fits.iter().map(|f| f.n_iter);
        let (min, max) = (rounds.clone().min().unwrap_or(0), rounds.max().unwrap_or(0));
        let stopped = fits.iter().filter(|f| !f.converged).count();
        let with = fits.iter().filter(|f| !f.unsettled.is_empty()).count();
        let n: usize = fits.iter().map(|f| f.unsettled.len()).sum();
        super::term::print_line(&format!(
            "fits: {} clusterings, {min}-{max} rounds, {stopped} stopped by max_iter; {n} unsettled clusters in {with} clusterings (listed by --json)",
            fits.len()
        ));
        return;
    }
    for f in fits {
        if let Some(m) = &f.merge {
            let map: Vec<String> = (0..m.mapping.len())
                .map(|old| format!("{old}>{}", m.mapping[old]))
                .collect();
            super::term::print_line(&format!(
                "merge {}: {} {} clusters found from {} (threshold {:.4}); before>after {}",
                f.key,
                if m.auto {
                    "k = \"auto\":"
                } else {
                    "merge_threshold:"
                },
                m.n_after,
                m.n_before,
                m.threshold,
                map.join(" ")
            ));
        }
        let unsettled = if f.unsettled.is_empty() {
            "no cluster unsettled".to_string()
        } else {
            let list: Vec<String> = f
                .unsettled
                .iter()
                .map(|u| format!("{} ({} moved of {})", u.cluster, u.moved_last_3, u.size))
                .collect();
            format!(
                "unsettled (over 1% of a cluster joined or left in the last 3 rounds): {}",
                list.join(", ")
            )
        };
        super::term::print_line(&format!(
            "fit {}: {} rounds, {}; {}",
            f.key,
            f.n_iter,
            if f.converged {
                "converged"
            } else {
                "stopped by max_iter"
            },
            unsettled
        ));
    }
}
