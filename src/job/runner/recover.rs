//! Before a run writes: roll forward the commits of runs that died midway, and remove their
//! staging.

use crate::io::PartitionKey;
use crate::io::commit::Staging;
use crate::io::lock::RunLocks;
use crate::job::JobError;

/// Rolls forward the commits of runs that died midway and removes their staging. A journal
/// whose partitions this run has not locked is rolled forward if their locks can be taken.
pub(super) fn recover(
    out: &std::path::Path,
    locked: &[PartitionKey],
    started_secs: u64,
) -> Result<(), JobError> {
    // Which runs are alive is asked only when another run's staging is there (reading every
    // lock costs a request per partition on an object store); if it cannot be told, every
    // run counts as alive and nothing is removed.
    let live = std::cell::OnceCell::new();
    let is_live = |run: &str| {
        live.get_or_init(|| match crate::io::lock::live_runs(out) {
            Ok(runs) => Some(runs),
            Err(e) => {
                tracing::warn!(error = %e, "cannot tell which runs are alive; no staging is removed");
                None
            }
        })
        .as_ref()
        .is_none_or(|runs| runs.contains(run))
    };
    let own = crate::io::lock::current_owner(started_secs).run_id();
    let mut extra: Vec<RunLocks> = Vec::new();
    let mut lock_for = |keys: &[PartitionKey]| {
        let missing: Vec<PartitionKey> = keys
            .iter()
            .filter(|k| !locked.contains(k))
            .cloned()
            .collect();
        if missing.is_empty() {
            return true;
        }
        match RunLocks::acquire(out, &missing, started_secs) {
            Ok(locks) => {
                extra.push(locks);
                true
            }
            Err(_) => false,
        }
    };
    Staging::recover(out, &own, &is_live, &mut lock_for)?;
    for locks in extra {
        locks.release()?;
    }
    Ok(())
}
