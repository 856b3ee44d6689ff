//! A progress bar on stderr (indicatif), shown only when stderr is a terminal.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};
use textcluster::job::Progress;

/// One bar over the partitions of a run; its message shows the latest stage.
pub struct Bar(ProgressBar);

impl Bar {
    /// A bar when stderr is a terminal and logs are human-readable; `None` otherwise (cron,
    /// Airflow and pipes get plain logs only).
    pub fn for_stderr(json_logs: bool) -> Option<Self> {
        if json_logs || !std::io::stderr().is_terminal() {
            return None;
        }
        let bar = super::term::BAR.get_or_init(|| ProgressBar::new(0)).clone();
        bar.set_style(
            ProgressStyle::with_template(
                "{elapsed_precise} [{bar:30}] {pos}/{len} partitions  {msg}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        Some(Self(bar))
    }
}

impl Progress for Bar {
    fn start(&self, n_units: usize) {
        self.0.set_length(n_units as u64);
    }

    fn stage(&self, unit: &str, stage: &'static str) {
        self.0.set_message(format!("{unit}: {stage}"));
    }

    fn finish(&self, _unit: &str) {
        self.0.inc(1);
        if self.0.position() >= self.0.length().unwrap_or(0) {
            self.0.finish_and_clear();
        }
    }
}
