//! `porchlight demo`: `serve` on a folder of its own (`./porchlight-demo`
//! unless `--data-dir` says otherwise) with three ready-made sign-ins whose
//! passwords are printed. Running it again reuses the folder.
//!
//! Because the demo passwords are public, the demo never runs on a folder
//! that already holds other accounts but no `demo-owner` (a real
//! household's), and it ignores `data_dir` from the config file and the
//! environment, which name the real household's folder.

use std::io::Write as _;
use std::net::SocketAddr;

use anyhow::{bail, Context as _};
use porchlight_store::{Role, StoreError};
use porchlight_vault::{Actor, AuthError, Vault};

use crate::cmds::serve::Server;
use crate::context::Context;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Address and port to listen on (port 0: any free port). Wins over
    /// `web.listen` in the config.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
}

/// A demo sign-in.
struct DemoAccount {
    username: &'static str,
    role: Role,
    password: &'static str,
}

const ACCOUNTS: [DemoAccount; 3] = [
    DemoAccount {
        username: "demo-owner",
        role: Role::Owner,
        password: "porchlight-demo",
    },
    DemoAccount {
        username: "demo-member",
        role: Role::Member,
        password: "porchlight-member",
    },
    DemoAccount {
        username: "demo-neighbor",
        role: Role::Neighbor,
        password: "porchlight-neighbor",
    },
];

pub async fn run(args: Args, ctx: Context) -> anyhow::Result<()> {
    if let Some(dir) = &ctx.ignored_data_dir {
        eprintln!(
            "note: the demo does not use the configured data_dir ({}); it runs on {}",
            dir.display(),
            ctx.data_dir.display()
        );
    }
    let vault = ctx.open_vault().await?;
    refuse_household_folder(&vault, &ctx).await?;
    let created = ensure_accounts(&vault).await?;
    let server = Server::bind(&ctx, args.listen).await?;

    let mut out = std::io::stdout().lock();
    server.print_url(&mut out)?;
    writeln!(
        out,
        "This is the demo, in a folder of its own ({}){}. Sign in as:",
        ctx.data_dir.display(),
        if created == 0 {
            ", reused from an earlier run"
        } else {
            ""
        }
    )?;
    let width = ACCOUNTS.iter().map(|a| a.username.len()).max().unwrap_or(0);
    for a in &ACCOUNTS {
        writeln!(
            out,
            "  {:<8}  {:<width$}  password: {}",
            a.role.as_str(),
            a.username,
            a.password
        )?;
    }
    if vault.policy().require_totp_for_owners {
        writeln!(
            out,
            "At demo-owner's first sign-in, Porchlight walks you through setting up two-factor\n\
             sign-in with an authenticator app: every owner must have it."
        )?;
    }
    out.flush()?;
    drop(out);
    server.run(ctx, vault).await
}

/// The demo's passwords are public: never add them to a folder that holds
/// someone's real accounts.
async fn refuse_household_folder(vault: &Vault, ctx: &Context) -> anyhow::Result<()> {
    let users = vault.store().list_users().await?;
    let is_demo = users
        .iter()
        .any(|u| u.username.eq_ignore_ascii_case(ACCOUNTS[0].username));
    if !users.is_empty() && !is_demo {
        bail!(
            "{} already holds accounts and none is `{}`: it looks like a household's folder. \
             The demo adds accounts whose passwords are printed for anyone to read, so it only \
             runs on a folder of its own (leave out --data-dir to use ./porchlight-demo)",
            ctx.data_dir.display(),
            ACCOUNTS[0].username
        );
    }
    Ok(())
}

/// Creates the demo accounts that are missing; returns how many it created.
async fn ensure_accounts(vault: &Vault) -> anyhow::Result<usize> {
    let mut created = 0;
    for a in &ACCOUNTS {
        if vault.store().user_by_name(a.username).await?.is_some() {
            continue;
        }
        match vault
            .create_user(a.username, a.role, a.password, &Actor::cli())
            .await
        {
            Ok(_) => created += 1,
            // Another demo started on the same folder at the same moment.
            Err(AuthError::Store(StoreError::Conflict(_))) => {}
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("cannot create the demo account `{}`", a.username))
            }
        }
    }
    Ok(created)
}
