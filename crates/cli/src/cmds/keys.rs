//! `porchlight keys …`: household keys.
//!
//! `keys recover NAME` restores access for an owner or member who forgot
//! their password, with the key recovery code shown when the account was
//! made: the same key is wrapped with a new password and a new recovery
//! code, so every recording stays readable. The old code stops working.

use std::io::{IsTerminal as _, Write as _};

use anyhow::Context as _;
use porchlight_vault::Actor;

use crate::cmds::user::print_recovery_code;
use crate::context::Context;
use crate::secrets;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Restore access with the key recovery code and set a new password.
    /// Reads the code (line 1) and the new password (line 2) from standard
    /// input, or asks for them on a terminal.
    Recover(RecoverArgs),
}

#[derive(Debug, clap::Args)]
pub struct RecoverArgs {
    pub name: String,
}

pub async fn run(cmd: Command, ctx: Context) -> anyhow::Result<()> {
    match cmd {
        Command::Recover(args) => recover(args, &ctx).await,
    }
}

async fn recover(args: RecoverArgs, ctx: &Context) -> anyhow::Result<()> {
    let vault = ctx.open_existing_vault().await?;
    let user = vault.user(&args.name).await?;
    let name = user.username.as_str();
    if user.keys.is_none() {
        anyhow::bail!(
            "`{name}` ({}) has no household key to recover (only owners and members have one); \
             use `porchlight user passwd {name} --reset` to set a new password",
            user.role
        );
    }
    let (code, password) = if std::io::stdin().is_terminal() {
        const HINT: &str = "give the code and the new password on standard input, one per line";
        let code = secrets::prompt(&format!("Key recovery code of `{name}`: "), HINT)?;
        let pw = secrets::prompt_new_password(&format!("New password for `{name}`: "), HINT)?;
        (code, pw)
    } else {
        let mut lines = secrets::stdin_lines(&["key recovery code", "new password"])?;
        let pw = lines.pop().expect("two lines");
        (lines.pop().expect("two lines"), pw)
    };
    let fresh = vault
        .recover_key(name, code.trim(), &password, &Actor::cli())
        .await
        .with_context(|| format!("cannot recover the key of `{name}`"))?;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "Access restored for `{name}`: the new password unlocks the same household key, so all \
         their recordings still open. Their sessions have ended."
    )?;
    writeln!(
        out,
        "The old recovery code no longer works; this is the new one."
    )?;
    print_recovery_code(&mut out, name, &fresh)?;
    out.flush()?;
    Ok(())
}
