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
    /// The host's boot id (`/proc/sys/kernel/random/boot_id`) when the lock was written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot_id: Option<String>,
    /// When process `pid` started, in clock ticks after boot (`/proc/<pid>/stat`): with the
    /// boot id it tells the process apart from a later one that reuses its pid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process_start: Option<u64>,
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
        boot_id: boot_id(),
        process_start: process_start(std::process::id()),
    };
    owner.run_id = owner.run_id();
    owner
}

/// True unless `owner` is known to be gone. The lease is the truth: a lease that expired more
/// than [`MAX_CLOCK_SKEW`] ago is stale whatever its pid (in a container the next pod gets the
/// same host name and pid). While the lease runs, a lock of this host is gone early when its
/// process no longer exists, or when the process with its pid is another one (another boot,
/// or another start time).
pub fn is_alive(owner: &LockOwner) -> bool {
    if owner
        .expires_at
        .is_some_and(|t| now_secs() > t + MAX_CLOCK_SKEW.as_secs())
    {
        return false;
    }
    let proc_root = Path::new("/proc");
    if owner.host == host_name() && proc_root.join("self").exists() {
        if !proc_root.join(owner.pid.to_string()).exists() {
            return false;
        }
        if let (Some(boot), Some(start)) = (&owner.boot_id, owner.process_start) {
            return boot_id().as_ref() == Some(boot) && process_start(owner.pid) == Some(start);
        }
    }
    // A valid lease, or no lease on another host: cannot tell, assume it runs.
    true
}

/// This host's boot id, where the kernel tells it.
fn boot_id() -> Option<String> {
    fs_err::read_to_string("/proc/sys/kernel/random/boot_id")
        .ok()
        .map(|s| s.trim().to_owned())
}

/// When process `pid` started, in clock ticks after boot: field 22 of `/proc/<pid>/stat`,
/// counted after the command name (which may hold spaces and parentheses).
pub(crate) fn process_start(pid: u32) -> Option<u64> {
    let stat = fs_err::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(19)?.parse().ok()
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
