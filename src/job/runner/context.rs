//! What one run shares between its partitions ([`Context`]): the plan, the locks, the staging
//! area and the files written, and how a partition's tables are staged, committed and
//! reported.

use std::sync::Mutex;
use std::time::Instant;

use arrow::array::{Array, RecordBatch};

use crate::io::OutputError;
use crate::io::commit::{CommitRecord, Staging, committed};
use crate::io::lock::RunLocks;
use crate::io::{Partition, PartitionKey};
use crate::job::JobError;
use crate::job::fingerprint::partition_model_id;
use crate::job::pipeline::{Clustered, Loaded};
use crate::job::plan::JobPlan;
use crate::output::Table;
use crate::output::manifest::{Drift, PartitionReport, PartitionStatus, WrittenFile};
use crate::output::spec::OutputMode;
use crate::output::tables;

/// How one partition ended, with what the report needs from it.
#[derive(Clone)]
pub(super) enum Outcome {
    /// Labels committed: rows labelled, null texts skipped, empty documents, timings.
    Done {
        n_docs: usize,
        n_null: usize,
        n_empty: usize,
        seconds_read: f64,
        seconds_write: f64,
        model_id: String,
        drift: Option<Drift>,
    },
    Skipped,
    Cancelled,
    Failed {
        message: String,
        user_error: bool,
    },
}

/// Everything one run shares between partitions.
pub(super) struct Context<'a> {
    pub(super) plan: &'a JobPlan,
    pub(super) locks: &'a RunLocks,
    pub(super) staging: Staging,
    pub(super) run_id: String,
    pub(super) param_hash: String,
    /// Data files staged so far; only those of committed partitions reach the manifest.
    pub(super) written: Mutex<Vec<WrittenFile>>,
    /// `OUT/_SUCCESS`, and whether this run has removed it yet: that happens just before its
    /// first commit, so a run that commits nothing leaves it alone.
    pub(super) success: std::path::PathBuf,
    pub(super) success_removed: Mutex<bool>,
}

impl Context<'_> {
    /// The one report of `partition`, built when its outcome is known.
    pub(super) fn report(
        &self,
        partition: &Partition,
        fingerprint: &str,
        outcome: Outcome,
    ) -> PartitionReport {
        let mut report = PartitionReport {
            key: partition.key.to_string(),
            status: PartitionStatus::Cancelled,
            error: None,
            user_error: false,
            input_fingerprint: fingerprint.to_owned(),
            param_hash: self.param_hash.clone(),
            files: partition.files.clone(),
            n_rows: partition.n_rows(),
            n_docs: 0,
            n_null_texts: 0,
            n_empty_docs: 0,
            seconds_read: 0.0,
            seconds_write_labels: 0.0,
            model_id: None,
            drift: None,
        };
        match outcome {
            Outcome::Done {
                n_docs,
                n_null,
                n_empty,
                seconds_read,
                seconds_write,
                model_id,
                drift,
            } => {
                report.status = PartitionStatus::Succeeded;
                report.model_id = Some(model_id);
                report.drift = drift;
                report.n_docs = n_docs;
                report.n_null_texts = n_null;
                report.n_empty_docs = n_empty;
                report.seconds_read = seconds_read;
                report.seconds_write_labels = seconds_write;
            }
            Outcome::Skipped => report.status = PartitionStatus::Skipped,
            Outcome::Cancelled => {}
            Outcome::Failed {
                message,
                user_error,
            } => {
                tracing::error!(partition = %report.key, error = %message, "partition failed");
                report.status = PartitionStatus::Failed;
                report.error = Some(message);
                report.user_error = user_error;
            }
        }
        report
    }

    pub(super) fn record(&self, key: &PartitionKey, fingerprint: &str) -> CommitRecord {
        CommitRecord {
            key: key.to_string(),
            input_fingerprint: fingerprint.to_owned(),
            param_hash: self.param_hash.clone(),
            run_id: self.run_id.clone(),
            files: Default::default(),
        }
    }

    /// True when `skip_existing` is on and `key` is committed from the same input and params.
    pub(super) fn already_done(
        &self,
        key: &PartitionKey,
        fingerprint: &str,
        tables: &[Table],
    ) -> bool {
        if self.plan.spec.output.mode != OutputMode::SkipExisting {
            return false;
        }
        match committed(self.plan.output(), key, tables) {
            Ok(record) => record.is_some_and(|r| {
                r.input_fingerprint == fingerprint && r.param_hash == self.param_hash
            }),
            Err(e) => {
                tracing::warn!(partition = %key, error = %e, "cannot read the commit record; the partition is redone");
                false
            }
        }
    }

    /// Writes `batch` as `table`'s staged file of partition `key`.
    pub(super) fn stage(
        &self,
        table: Table,
        key: &PartitionKey,
        batch: &RecordBatch,
    ) -> Result<(), JobError> {
        let n_bytes = self.staging.write(table, key, batch)?;
        self.record_written(table, key, batch.num_rows() as u64, n_bytes);
        Ok(())
    }

    /// Notes a staged file of `table` for partition `key`, for the manifest.
    pub(super) fn record_written(
        &self,
        table: Table,
        key: &PartitionKey,
        n_rows: u64,
        n_bytes: u64,
    ) {
        let committed = Staging::committed_file(self.plan.output(), table, key);
        let path = committed
            .strip_prefix(self.plan.output())
            .unwrap_or(&committed)
            .display()
            .to_string();
        self.written
            .lock()
            .expect("no panic while holding the lock")
            .push(WrittenFile {
                table: table.name().to_owned(),
                partition: key.to_string(),
                path,
                n_rows,
                n_bytes,
            });
    }

    /// Stages the centroids, keywords and similarity of a clustering, side by side; returns
    /// the seconds taken.
    pub(super) fn stage_cluster_tables(&self, c: &Clustered) -> Result<f64, JobError> {
        let t = Instant::now();
        let centroids = || self.stage(Table::Centroids, &c.key, &c.centroids_table()?);
        let keywords = || self.stage(Table::Keywords, &c.key, &c.keywords_table()?);
        let similarity = || self.stage(Table::Similarity, &c.key, &c.similarity_table()?);
        let (a, (b, d)) = rayon::join(centroids, || rayon::join(keywords, similarity));
        a?;
        b?;
        d?;
        Ok(t.elapsed().as_secs_f64())
    }

    /// Stages the labels and the `clusters` table of a partition-scope clustering and
    /// returns its outcome, to be reported once the partition is committed. Each document's
    /// cluster and similarity are the fit's; the runner-up is the best other centroid.
    pub(super) fn stage_labels(
        &self,
        loaded: &Loaded<'_>,
        c: &Clustered,
    ) -> Result<Outcome, JobError> {
        let t = Instant::now();
        let fit = &c.fit;
        let model_id = partition_model_id(&self.param_hash, &c.key, fit);
        let nearest = crate::cluster::nearest(&c.vectorized.matrix, &fit.centroids);
        let mut columns = tables::LabelColumns::of(&nearest, 0..fit.labels.len());
        for (i, &l) in fit.labels.iter().enumerate() {
            columns.cluster[i] = l;
            columns.similarity[i] = fit.similarity[i];
            if l < 0 {
                columns.second_cluster[i] = -1;
                columns.second_similarity[i] = 0.0;
            } else if nearest.labels[i] != l {
                columns.second_cluster[i] = nearest.labels[i];
                columns.second_similarity[i] = nearest.similarity[i];
            }
        }
        let key = &loaded.partition.key;
        self.stage(
            Table::Labels,
            key,
            &tables::labels(&loaded.ids, columns, &model_id)?,
        )?;
        let p05: Vec<f32> =
            crate::model::fit_clusters(fit.n_clusters, &fit.labels, &fit.similarity)
                .iter()
                .map(crate::model::FitCluster::p05)
                .collect();
        let mut sums = tables::ClusterSums::new(fit.n_clusters);
        tables::ClusterSums::add(&mut sums, &fit.labels, &fit.similarity, &p05);
        self.stage(Table::Clusters, key, &tables::clusters(&sums, &model_id)?)?;
        Ok(Outcome::Done {
            n_docs: loaded.ids.len(),
            n_null: loaded.n_null,
            n_empty: fit.labels.iter().filter(|&&l| l < 0).count(),
            seconds_read: loaded.seconds_read,
            seconds_write: t.elapsed().as_secs_f64(),
            model_id,
            drift: None,
        })
    }

    /// Commits partitions `keys` (each with its input fingerprint) together, if this run
    /// still holds its locks.
    pub(super) fn commit(&self, keys: &[(&PartitionKey, &str)]) -> Result<(), JobError> {
        self.locks.check()?;
        {
            let mut removed = self.success_removed.lock().expect("no panic while held");
            if !*removed {
                crate::io::store::remove(&self.success).map_err(OutputError::from)?;
                *removed = true;
            }
        }
        let records: Vec<(PartitionKey, CommitRecord)> = keys
            .iter()
            .map(|&(k, fingerprint)| (k.clone(), self.record(k, fingerprint)))
            .collect();
        self.staging.commit(&Table::ALL, &records)?;
        Ok(())
    }
}
