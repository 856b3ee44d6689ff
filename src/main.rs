//! The `textcluster` binary: parse arguments, set up logging, run, map the result to an exit
//! code ([`cli::exit::ExitStatus`]: 0 ok; 1 bad spec, arguments or input: do not retry;
//! 2 environmental failure: retry; 3 some partitions failed and the rest were committed).

mod cli;

use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

use cli::exit::ExitStatus;
use cli::{Cli, Command, LogFormat};

/// The allocator: the system's, except that an allocation that fails ends the process with a
/// message and exit 2 (retry, with more memory) instead of an abort (134).
#[global_allocator]
static ALLOCATOR: cli::memory::ExitOnOom = cli::memory::ExitOnOom;

fn main() -> ExitCode {
    cli::term::ensure_standard_streams();
    limit_malloc_arenas();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(ExitStatus::UserError.code())
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    init_tracing(&cli);
    let json = cli.log_format == LogFormat::Json;
    let result: anyhow::Result<ExitStatus> = match &cli.command {
        Command::Run(args) => match configure_threads(args.threads).and_then(|()| {
            // Only `run` and `assign` hold locks and staging to clean up; others stop at once.
            cli::term::handle_stop_signals().map_err(anyhow::Error::from)
        }) {
            Ok(()) => cli::run::execute(args, json).map_err(anyhow::Error::from),
            Err(e) => Err(e),
        },
        Command::Assign(args) => match configure_threads(args.run.threads)
            .and_then(|()| cli::term::handle_stop_signals().map_err(anyhow::Error::from))
        {
            Ok(()) => cli::assign::execute(args, json).map_err(anyhow::Error::from),
            Err(e) => Err(e),
        },
        Command::Fit(args) => configure_threads(args.threads).and_then(|()| {
            cli::fit::execute(args, json)
                .map(|()| ExitStatus::Success)
                .map_err(anyhow::Error::from)
        }),
        Command::Plan(args) => cli::plan::execute(args)
            .map(|()| ExitStatus::Success)
            .map_err(anyhow::Error::from),
        Command::Eval(args) => cli::eval::execute(args).map(|()| ExitStatus::Success),
        Command::Report(args) => cli::report::execute(args)
            .map(|()| ExitStatus::Success)
            .map_err(anyhow::Error::from),
    };
    let status = match result {
        Ok(status) => status,
        Err(e) => {
            let status = match e.downcast_ref::<UsageError>() {
                Some(_) => ExitStatus::UserError,
                None => ExitStatus::of_error(e.as_ref()),
            };
            if json {
                tracing::error!(exit_code = status.code(), error = %format!("{e:#}"), "failed");
            } else {
                cli::term::print_error_line(&format!("error: {e:#}"));
            }
            status
        }
    };
    ExitCode::from(status.code())
}

/// A bad command-line value that clap does not check: the user's to fix (exit 1).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct UsageError(String);

/// Most worker threads `--threads` may ask for, per core: more only adds scheduling overhead
/// (100,000 threads once brought a 2-core machine to a load of 3,000 with no progress).
const THREADS_PER_CORE: usize = 4;

/// Sizes the global rayon pool: at least 1, and at most [`THREADS_PER_CORE`] per core (capped
/// with a warning).
fn configure_threads(threads: Option<usize>) -> anyhow::Result<()> {
    let Some(asked) = threads else {
        return Ok(());
    };
    if asked == 0 {
        return Err(UsageError("`--threads` must be at least 1".into()).into());
    }
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let limit = THREADS_PER_CORE * cores;
    let n = if asked > limit {
        tracing::warn!(
            asked,
            used = limit,
            cores,
            "`--threads` capped at {THREADS_PER_CORE} per core"
        );
        limit
    } else {
        asked
    };
    rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .build_global()
        .map_err(|e| anyhow::anyhow!("cannot start {n} worker threads: {e}"))
}

fn init_tracing(cli: &Cli) {
    let default = match (cli.quiet, cli.verbose) {
        (true, _) => "warn",
        (false, 0) => "info",
        (false, 1) => "debug",
        (false, _) => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| cli::term::LogWriter);
    match cli.log_format {
        LogFormat::Text => builder
            .with_ansi(cli::term::stderr_colour())
            .with_target(false)
            .init(),
        LogFormat::Json => builder
            .with_ansi(false)
            .json()
            .with_current_span(true)
            .init(),
    }
}

/// Caps glibc's malloc at two arenas. By default every thread that allocates gets its own
/// arena, and memory freed in one is not reused by another: on 20 Newsgroups (2 threads) this
/// lowered peak RSS from 167 to 147 MB at the same speed (see docs/experiments.md).
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; it is called before any other thread
    // exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}
