//! # porchlight
//!
//! The one program a household (or a neighborhood) runs. It does three jobs:
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
mod hub_events;
mod context;
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
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", one_line(&e));
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let ctx = context::Context::load(&cli.globals, cli.command.data_dir_rule())?;
    ctx.init_logging()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
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
