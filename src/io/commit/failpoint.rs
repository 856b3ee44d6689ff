//! Crash points for the test suite: a debug build can be told to die at a named step of a
//! commit.

/// Failpoint for the test suite, compiled only into debug builds: with
/// `TEXTCLUSTER_FAILPOINT_KILL=<step>` the process SIGKILLs itself when a commit reaches
/// `step`, so each crash point of the protocol can be tested exactly.
pub(crate) fn crash_point(step: &str) {
    #[cfg(debug_assertions)]
    if std::env::var("TEXTCLUSTER_FAILPOINT_KILL").is_ok_and(|s| s == step) {
        // SAFETY: kill(2) with this process's own pid; no memory is involved.
        unsafe {
            libc::kill(libc::getpid(), libc::SIGKILL);
        }
    }
    #[cfg(not(debug_assertions))]
    let _ = step;
}

/// True when a crash failpoint is set: copies then go one at a time, so a kill can land
/// between two of them.
pub(super) fn crash_testing() -> bool {
    cfg!(debug_assertions) && std::env::var_os("TEXTCLUSTER_FAILPOINT_KILL").is_some()
}
