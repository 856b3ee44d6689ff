//! The binary's side of the terminal: standard streams that may be closed, colour, and log
//! lines that share stderr with the progress bar.

use std::io::{IsTerminal, Write};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicUsize};

use indicatif::ProgressBar;

/// The signal that asked the run to stop (0: none), and whether one has arrived (a second one
/// then terminates at once).
static STOP_SIGNAL: AtomicUsize = AtomicUsize::new(0);
static STOPPING: AtomicBool = AtomicBool::new(false);

/// On SIGTERM (how Airflow and Kubernetes stop a task) or SIGINT, record the signal so the run
/// starts no more partitions and cleans up; a second one terminates at once.
pub fn handle_stop_signals() -> std::io::Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    for signal in [SIGTERM, SIGINT] {
        // The default action must be registered first, so the first signal only arms it.
        signal_hook::flag::register_conditional_default(signal, &STOPPING)?;
        signal_hook::flag::register(signal, &STOPPING)?;
        signal_hook::flag::register_usize(signal, &STOP_SIGNAL, signal as usize)?;
    }
    Ok(())
}

/// The flag [`handle_stop_signals`] sets, for `RunOptions::interrupt`.
pub fn stop_signal() -> &'static AtomicUsize {
    &STOP_SIGNAL
}

/// The progress bar on stderr, once a run shows one; log lines suspend it while they print.
pub static BAR: OnceLock<ProgressBar> = OnceLock::new();

/// Reopens standard input, output or error on `/dev/null` when the process was started with
/// it closed (`2>&-`), so no file the run opens later takes its number and receives logs.
pub fn ensure_standard_streams() {
    for fd in 0..=2 {
        // SAFETY: `fcntl(F_GETFD)` only queries the descriptor, and `open` returns the lowest
        // free descriptor, which is `fd` when `fd` is closed; nothing else runs yet.
        unsafe {
            if libc::fcntl(fd, libc::F_GETFD) == -1 {
                let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
                if null >= 0 && null != fd {
                    libc::dup2(null, fd);
                    libc::close(null);
                }
            }
        }
    }
}

/// Colour on stderr: forced by `CLICOLOR_FORCE` (not `0`), off with `NO_COLOR`, otherwise only
/// when stderr is a terminal.
pub fn stderr_colour() -> bool {
    if std::env::var_os("CLICOLOR_FORCE").is_some_and(|v| v != "0") {
        return true;
    }
    if std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()) {
        return false;
    }
    std::io::stderr().is_terminal()
}

/// Writes a line to stdout. A closed or broken stdout (`| head -0`) is not the run's failure:
/// the error is dropped, and the outputs and exit code stay those of the run.
pub fn print_line(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{text}").and_then(|()| out.flush());
}

/// Writes a line to stderr above the progress bar, dropping errors (a closed stderr).
pub fn print_error_line(text: &str) {
    let write = || {
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "{text}");
    };
    match BAR.get() {
        Some(bar) => bar.suspend(write),
        None => write(),
    }
}

/// The writer tracing logs through: stderr, with the progress bar suspended while a line is
/// written, so log lines print above the bar and no bar frame stays in the scrollback.
pub struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let write = || std::io::stderr().lock().write_all(buf);
        // A closed stderr must not fail the run; the log line is lost.
        let _ = match BAR.get() {
            Some(bar) if !bar.is_hidden() => bar.suspend(write),
            _ => write(),
        };
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let _ = std::io::stderr().flush();
        Ok(())
    }
}
