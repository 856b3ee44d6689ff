//! `textcluster report`.

use std::path::PathBuf;

use clap::Args;
use textcluster::io::commit::write_atomic;
use textcluster::report::{self, ReportError, ReportOptions};

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// A run's output path (holds `manifest.json` and the committed tables).
    pub out: PathBuf,
    /// Show only these partitions' clusterings, e.g. `--partition dt=2018-06-01`
    /// (repeatable). A global clustering is always shown.
    #[arg(long = "partition", value_name = "KEY=VALUE")]
    pub partitions: Vec<String>,
    /// Where to write the HTML report.
    #[arg(short, long, default_value = "report.html")]
    pub output: PathBuf,
    /// Also write pyLDAvis viewer JSON for the (one) selected clustering.
    #[arg(long, value_name = "FILE")]
    pub pyldavis: Option<PathBuf>,
    /// Read example documents from this input path instead of the one in the manifest.
    #[arg(long)]
    pub input: Option<PathBuf>,
    /// Example documents per cluster (0 skips reading the input).
    #[arg(long, default_value_t = 3)]
    pub examples: usize,
}

/// Builds the report (and the pyLDAvis JSON) and writes them atomically.
pub fn execute(args: &ReportArgs) -> Result<(), ReportError> {
    let options = ReportOptions {
        partitions: args.partitions.clone(),
        input: args.input.clone(),
        examples: args.examples,
        term_counts: args.pyldavis.is_some(),
    };
    let loaded = report::load(&args.out, &options)?;
    let pyldavis = match &args.pyldavis {
        None => None,
        Some(path) => {
            let [one] = loaded.clusterings.as_slice() else {
                return Err(ReportError::SeveralClusterings {
                    keys: loaded.clusterings.iter().map(|c| c.key.clone()).collect(),
                });
            };
            let json = serde_json::to_vec(&report::pyldavis::prepare(one))
                .map_err(std::io::Error::other)?;
            Some((path, json))
        }
    };
    let html = report::html::render(&loaded).map_err(std::io::Error::other)?;
    write_atomic(&args.output, html.as_bytes())?;
    super::term::print_error_line(&format!(
        "wrote {} ({} bytes)",
        args.output.display(),
        html.len()
    ));
    if let Some((path, json)) = pyldavis {
        write_atomic(path, &json)?;
        super::term::print_error_line(&format!("wrote {} ({} bytes)", path.display(), json.len()));
    }
    Ok(())
}
