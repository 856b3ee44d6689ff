//! Who runs a job: the owner record a lock holds (pid, host, start, lease), and whether an
//! owner is still alive.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::{LEASE, MAX_CLOCK_SKEW};

/// Who holds a lock, and until when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockOwner {
    pub pid: u32,
    pub host: String,
    /// Unix seconds.
    pub started_at: u64,
    /// The run's id (`<started_at>-<host>-<pid>`).
    #[serde(default)]
    pub run_id: String,
    /// Unix seconds.
    #[serde(default)]
    pub acquired_at: u64,
    /// Unix seconds; a lock written without a lease never expires by time.
    #[serde(default)]
    pub expires_at: Option<u64>,
}

impl LockOwner {
    /// The id of the run this owner is: `<started_at>-<host>-<pid>`.
    pub fn run_id(&self) -> String {
        format!("{}-{}-{}", self.started_at, self.host, self.pid)
    }
}

/// This host's name, as the kernel reports it.
pub fn host_name() -> String {
    fs_err::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "unknown".into())
}

/// The owner record of this process, with a lease from now.
pub fn current_owner(started_at: u64) -> LockOwner {
    let now = now_secs();
    let mut owner = LockOwner {
        pid: std::process::id(),
        host: host_name(),
        started_at,
        run_id: String::new(),
        acquired_at: now,
        expires_at: Some(now + LEASE.as_secs()),
    };
    owner.run_id = owner.run_id();
    owner
}

/// True unless `owner` is known to be gone: a process of this host that no longer exists, or
/// a lease that expired more than [`MAX_CLOCK_SKEW`] ago.
pub fn is_alive(owner: &LockOwner) -> bool {
    let proc_root = Path::new("/proc");
    if owner.host == host_name() && proc_root.join("self").exists() {
        return proc_root.join(owner.pid.to_string()).exists();
    }
    match owner.expires_at {
        Some(t) => now_secs() <= t + MAX_CLOCK_SKEW.as_secs(),
        None => true, // no lease and another host: cannot tell, assume it runs
    }
}

/// Seconds since the Unix epoch, now.
pub(crate) fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Unix seconds as an RFC 3339 time (UTC, second precision), for messages.
pub fn rfc3339(unix_seconds: u64) -> String {
    let time = UNIX_EPOCH + std::time::Duration::from_secs(unix_seconds);
    humantime::format_rfc3339_seconds(time).to_string()
}
