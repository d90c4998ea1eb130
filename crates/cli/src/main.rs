//! # porchlight
//!
//! The one program a household (or a neighborhood) runs. It does four jobs:
//!
//! * **Starts a role.** `porchlight serve` runs the hub — and, in the same
//!   process for now, the neighborhood server — on one data folder until
//!   Ctrl-C or SIGTERM. `porchlight demo` does the same on a separate demo
//!   folder with ready-made sign-ins, so trying Porchlight never touches a
//!   real household's accounts.
//! * **Administers a data folder from the hub's own machine.** `user …`
//!   and `keys recover` change accounts through the vault, exactly as the
//!   web interface does: every change lands in the hash-chained audit log
//!   (as actor `cli`), and a running hub sees it on its next request.
//! * **Runs a relay** for remote access (`relay serve`, `relay invite`):
//!   a separate role on its own folder, usually on a small public server,
//!   that forwards browsers' TLS to hubs without reading it
//!   (design/remote.md).
//! * **Checks a data folder.** `porchlight check` verifies the schema,
//!   SQLite's integrity, the audit chain, the household keys and that no
//!   private key sits in clear in the folder's files.
//!
//! Each subcommand lives in its own file under `cmds/`; what they share
//! (loading the config, choosing the data folder, building the vault,
//! reading passwords) is in [`context`] and [`secrets`]. Nothing here
//! hashes passwords, touches keys or writes SQL: that is the vault's and
//! the store's business.
//!
//! Errors end the program with one line on stderr, `error: what: why: …`,
//! and exit code 1 (2 for command-line usage errors).

mod cmds;
mod context;
mod hub_events;
mod remote_access;
mod secrets;

use std::process::ExitCode;

use clap::Parser;

use crate::cmds::Command;
use crate::context::Globals;

/// Porchlight: a privacy-first home security camera hub and neighborhood
/// server.
#[derive(Debug, Parser)]
#[command(name = "porchlight", version, about, long_about = None)]
struct Cli {
    #[command(flatten)]
    globals: Globals,
    #[command(subcommand)]
    command: Command,
}

fn main() -> ExitCode {
    limit_malloc_arenas();
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", one_line(&e));
            ExitCode::FAILURE
        }
    }
}

/// Two glibc malloc tunables, set before any thread exists, unless the
/// environment sets them (`MALLOC_ARENA_MAX`, `MALLOC_MMAP_THRESHOLD_`):
///
/// * **Two arenas.** glibc gives each thread that allocates its own arena
///   (up to 8 × cores), and memory freed in one arena is not reused by
///   another (tokio's workers, its blocking pool, SQLite's connection
///   threads, a thread per camera in detection). With the threshold below
///   in place the recorder bench saw no difference at 16 cameras
///   (bench/RESULTS.md); without it, 36 MiB instead of 42 MiB. Kept as a
///   bound on slack for busier mixes of threads.
/// * **Blocks of 4 MiB and more always `mmap`ed.** glibc raises its mmap
///   threshold to the size of any large block freed (up to 32 MiB), after
///   which such blocks come from the heap and stay in the process when
///   freed. A password hash (Argon2, 19–64 MiB of working memory, at every
///   sign-in and once at start for the decoy hash) then left that much
///   resident for good: the idle hub measured 43–62 MiB instead of 24 MiB.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: `mallopt` only changes malloc tunables; called first in
        // `main`, before any other thread exists.
        if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
            unsafe {
                libc::mallopt(libc::M_ARENA_MAX, 2);
            }
        }
        if std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_none() {
            unsafe {
                libc::mallopt(libc::M_MMAP_THRESHOLD, 4 << 20);
            }
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let ctx = context::Context::load(&cli.globals, cli.command.data_dir_rule())?;
    ctx.init_logging()?;
    // The relay forwards bytes and nothing else: one thread does it with
    // no cross-thread wake-ups (25-30 % less CPU per Mbit/s than the
    // multi-thread runtime in bench/relay.sh, bench/RESULTS.md). Everything
    // else runs on the multi-thread runtime.
    let relay = matches!(
        cli.command,
        cmds::Command::Relay(cmds::relay::Command::Serve(_))
    );
    let runtime = if relay {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
    }
    .map_err(|e| anyhow::anyhow!("cannot start the async runtime: {e}"))?;
    runtime.block_on(cmds::run(cli.command, ctx))
}

/// `what: why: …` from an error chain. Many errors of the store and the
/// vault repeat their cause in their own message; a cause already said is
/// not said twice.
pub(crate) fn one_line(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let s = cause.to_string();
        if s.is_empty() || out.contains(&s) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&s);
    }
    out.replace('\n', " ")
}
