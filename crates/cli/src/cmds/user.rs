//! `porchlight user …`: add, list and change accounts from the hub's own
//! machine. Every change goes through the vault (so it is audited, as
//! actor `cli`) and a running hub sees it on its next request — or, for a
//! live stream, at its next re-check (every couple of seconds).
//!
//! `user rtsp-token NAME` creates, lists (`--list`) and revokes
//! (`--revoke ID`) the per-device tokens RTSP clients sign in with; the
//! secret is printed once and only its hash is kept.

use std::io::Write as _;

use anyhow::{bail, Context as _};
use porchlight_store::{Role, StoreError, User};
use porchlight_vault::{Actor, AuthError, Vault};
use zeroize::Zeroizing;

use crate::context::Context;
use crate::secrets::{self, HINT_PASSWORD_STDIN};

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Create an account. Owners and members get a household key and a
    /// key recovery code, shown once.
    Add(AddArgs),
    /// List the accounts (never any secret).
    List(ListArgs),
    /// Change a password (knowing the current one), or reset it with
    /// --reset.
    Passwd(PasswdArgs),
    /// Disable an account: its sessions end at once, also on a running hub.
    Disable(NameArg),
    /// Enable a disabled account again.
    Enable(NameArg),
    /// Lift a sign-in lockout (after too many failed attempts) at once.
    Unlock(NameArg),
    /// Create a per-device token for watching cameras over RTSP (VLC,
    /// ffmpeg, Home Assistant: the user name and this token as the
    /// password; the account password is never accepted over RTSP). The
    /// secret is shown once. With --list: the user's tokens; with --revoke
    /// ID: revoke one (open streams using it close within seconds).
    RtspToken(RtspTokenArgs),
}

#[derive(Debug, clap::Args)]
pub struct RtspTokenArgs {
    /// The owner or member the token belongs to.
    pub name: String,
    /// The device it is for, e.g. "living-room TV" (required to create).
    #[arg(long, value_name = "DEVICE", required_unless_present_any = ["list", "revoke"])]
    pub label: Option<String>,
    /// Limit the token to this camera (repeat for more); without any, it
    /// shows every camera the user may see, now and later.
    #[arg(long = "camera", value_name = "CAMERA", conflicts_with_all = ["list", "revoke"])]
    pub cameras: Vec<String>,
    /// List the user's tokens instead (never a secret).
    #[arg(long, conflicts_with_all = ["revoke", "label"])]
    pub list: bool,
    /// Revoke the user's token with this id (from --list).
    #[arg(long, value_name = "ID", conflicts_with = "label")]
    pub revoke: Option<i64>,
    /// Print JSON: the new token with its secret, or the list.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct AddArgs {
    /// The new username: letters, digits, dots, dashes, underscores.
    pub name: String,
    /// One of: owner, member (the household, with a key to the
    /// recordings); neighbor, agency, moderator, admin (the neighborhood).
    #[arg(long, value_name = "ROLE")]
    pub role: Role,
    /// Read the password from the first line of standard input instead of
    /// asking on the terminal.
    #[arg(long)]
    pub password_stdin: bool,
}

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Print a JSON array instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
pub struct PasswdArgs {
    pub name: String,
    /// Read the passwords from standard input: the current password, then
    /// the new one, one per line (with --reset: only the new one).
    #[arg(long)]
    pub password_stdin: bool,
    /// Set a new password without the current one. Owners and members get
    /// a NEW household key: recordings encrypted only to the old key can
    /// no longer be opened by them. Prefer `porchlight keys recover NAME`
    /// when the key recovery code is at hand.
    #[arg(long)]
    pub reset: bool,
}

#[derive(Debug, clap::Args)]
pub struct NameArg {
    pub name: String,
}

pub async fn run(cmd: Command, ctx: Context) -> anyhow::Result<()> {
    match cmd {
        Command::Add(args) => add(args, &ctx).await,
        Command::List(args) => list(args, &ctx).await,
        Command::Passwd(args) => passwd(args, &ctx).await,
        Command::Disable(args) => set_disabled(&args.name, true, &ctx).await,
        Command::Enable(args) => set_disabled(&args.name, false, &ctx).await,
        Command::Unlock(args) => unlock(&args.name, &ctx).await,
        Command::RtspToken(args) => rtsp_token(args, &ctx).await,
    }
}

async fn add(args: AddArgs, ctx: &Context) -> anyhow::Result<()> {
    let name = args.name.as_str();
    let fail = || format!("cannot create user `{name}`");
    porchlight_vault::accounts::check_username(name).with_context(fail)?;
    let vault = ctx.open_vault().await?;
    // Say so before asking for a password, not after.
    if let Some(existing) = vault.store().user_by_name(name).await? {
        bail!(
            "cannot create user `{name}`: a user named `{}` already exists (names ignore case)",
            existing.username
        );
    }
    let password = if args.password_stdin {
        secrets::stdin_lines(&["password"])?.remove(0)
    } else {
        let pw = secrets::prompt_new_password(
            &format!("Password for the new {} `{name}`: ", args.role),
            HINT_PASSWORD_STDIN,
        )?;
        porchlight_vault::password::check_policy(&pw, name)
            .map_err(anyhow::Error::msg)
            .with_context(fail)?;
        pw
    };
    let created = vault
        .create_user(name, args.role, &password, &Actor::cli())
        .await
        .map_err(|e| match e {
            AuthError::Store(StoreError::Conflict(_)) => {
                anyhow::anyhow!("a user named `{name}` already exists")
            }
            e => e.into(),
        })
        .with_context(fail)?;

    let mut out = std::io::stdout().lock();
    writeln!(out, "Created {} `{}`.", args.role, created.user.username)?;
    if args.role == Role::Owner && vault.policy().require_totp_for_owners {
        writeln!(
            out,
            "At their first sign-in they will set up two-factor sign-in (required for owners)."
        )?;
    }
    if let Some(code) = &created.recovery_code {
        print_recovery_code(&mut out, &created.user.username, code)?;
    }
    out.flush()?;
    Ok(())
}

/// Shows a key recovery code, once, with what it is for.
pub fn print_recovery_code(
    out: &mut impl std::io::Write,
    username: &str,
    code: &Zeroizing<String>,
) -> std::io::Result<()> {
    writeln!(out)?;
    writeln!(out, "Key recovery code for `{username}`:")?;
    writeln!(out)?;
    writeln!(out, "    {}", code.as_str())?;
    writeln!(out)?;
    writeln!(
        out,
        "Write it down now and keep it somewhere safe, away from this computer: it restores\n\
         access to your recordings if you forget your password. Porchlight cannot show it again."
    )
}

/// One row of `user list --json`. Deliberately no hash, no key, no secret.
#[derive(Debug, serde::Serialize)]
struct UserRow<'a> {
    username: &'a str,
    role: Role,
    totp: bool,
    has_key: bool,
    disabled: bool,
    created_at: String,
}

impl<'a> From<&'a User> for UserRow<'a> {
    fn from(u: &'a User) -> Self {
        UserRow {
            username: &u.username,
            role: u.role,
            totp: u.totp_enabled,
            has_key: u.keys.is_some(),
            disabled: u.disabled,
            created_at: u.created_at.to_string(),
        }
    }
}

async fn list(args: ListArgs, ctx: &Context) -> anyhow::Result<()> {
    let store = ctx.open_existing_store().await?;
    let users = store.list_users().await?;
    let mut out = std::io::stdout().lock();
    if args.json {
        let rows: Vec<UserRow> = users.iter().map(UserRow::from).collect();
        serde_json::to_writer_pretty(&mut out, &rows)?;
        writeln!(out)?;
    } else if users.is_empty() {
        writeln!(
            out,
            "No users yet. Add the first owner with `porchlight user add NAME --role owner`, \
             or in the browser."
        )?;
    } else {
        let mut rows = vec![[
            "NAME".to_owned(),
            "ROLE".into(),
            "TWO-FACTOR".into(),
            "HOUSEHOLD KEY".into(),
            "DISABLED".into(),
            "CREATED".into(),
        ]];
        for u in &users {
            rows.push([
                u.username.clone(),
                u.role.to_string(),
                if u.totp_enabled { "on" } else { "off" }.into(),
                if u.keys.is_some() { "yes" } else { "—" }.into(),
                if u.disabled { "yes" } else { "no" }.into(),
                u.created_at.strftime("%Y-%m-%d %H:%M UTC").to_string(),
            ]);
        }
        write_table(&mut out, &rows)?;
    }
    out.flush()?;
    store.close().await;
    Ok(())
}

fn write_table<const N: usize>(
    out: &mut impl std::io::Write,
    rows: &[[String; N]],
) -> std::io::Result<()> {
    let mut widths = [0usize; N];
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    for row in rows {
        let mut line = String::new();
        for (i, (cell, w)) in row.iter().zip(widths).enumerate() {
            line.push_str(cell);
            if i + 1 < N {
                let pad = w - cell.chars().count() + 2;
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

async fn passwd(args: PasswdArgs, ctx: &Context) -> anyhow::Result<()> {
    let vault = ctx.open_existing_vault().await?;
    let user = vault.user(&args.name).await?;
    if args.reset {
        reset(&vault, &user, args.password_stdin).await
    } else {
        change(&vault, &user, args.password_stdin).await
    }
}

async fn change(vault: &Vault, user: &User, from_stdin: bool) -> anyhow::Result<()> {
    let name = user.username.as_str();
    let (current, new) = if from_stdin {
        let mut lines = secrets::stdin_lines(&["current password", "new password"])?;
        let new = lines.pop().expect("two lines");
        (lines.pop().expect("two lines"), new)
    } else {
        let current = secrets::prompt(
            &format!("Current password of `{name}`: "),
            HINT_PASSWORD_STDIN,
        )?;
        let new = secrets::prompt_new_password(
            &format!("New password for `{name}`: "),
            HINT_PASSWORD_STDIN,
        )?;
        (current, new)
    };
    match vault
        .change_password(name, &current, &new, &Actor::cli())
        .await
    {
        Ok(()) => {}
        Err(AuthError::BadCredentials) => {
            let hint = if user.keys.is_some() {
                format!(
                    "if it is forgotten, use `porchlight keys recover {name}` with the key \
                     recovery code, or `porchlight user passwd {name} --reset` (which gives them \
                     a new household key)"
                )
            } else {
                format!("if it is forgotten, use `porchlight user passwd {name} --reset`")
            };
            bail!("the current password of `{name}` is wrong; nothing was changed; {hint}");
        }
        Err(e) => return Err(e).with_context(|| format!("cannot change the password of `{name}`")),
    }
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "Changed the password of `{name}`; their sessions have ended."
    )?;
    if user.keys.is_some() {
        writeln!(
            out,
            "Their household key is the same key, so all their recordings still open, and their \
             key recovery code still works."
        )?;
    }
    out.flush()?;
    Ok(())
}

/// What a reset costs a household member, said before and after.
fn reset_warning(name: &str) -> String {
    format!(
        "`{name}` gets a NEW household key: recordings encrypted only to the old key can no \
         longer be opened by them (other household members can still open what was also \
         encrypted to them). If their key recovery code is at hand, \
         `porchlight keys recover {name}` keeps the old key instead"
    )
}

async fn reset(vault: &Vault, user: &User, from_stdin: bool) -> anyhow::Result<()> {
    let name = user.username.as_str();
    let new_key = user.keys.is_some() || user.role.is_hub_role();
    let new = if from_stdin {
        secrets::stdin_lines(&["new password"])?.remove(0)
    } else {
        if new_key {
            eprintln!("Warning: after a reset, {}.", reset_warning(name));
        }
        secrets::prompt_new_password(&format!("New password for `{name}`: "), HINT_PASSWORD_STDIN)?
    };
    let code = vault
        .reset_password(name, &new, &Actor::cli())
        .await
        .with_context(|| format!("cannot reset the password of `{name}`"))?;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "Reset the password of `{name}`; their sessions have ended."
    )?;
    if let Some(code) = &code {
        writeln!(out, "WARNING: {}.", reset_warning(name))?;
        print_recovery_code(&mut out, name, code)?;
    }
    out.flush()?;
    Ok(())
}

async fn set_disabled(name: &str, disabled: bool, ctx: &Context) -> anyhow::Result<()> {
    let vault = ctx.open_existing_vault().await?;
    let user = vault.user(name).await?;
    vault
        .set_disabled(&user.username, disabled, &Actor::cli())
        .await
        .with_context(|| {
            format!(
                "cannot {} `{}`",
                if disabled { "disable" } else { "enable" },
                user.username
            )
        })?;
    let mut out = std::io::stdout().lock();
    if disabled {
        writeln!(
            out,
            "Disabled `{}`: they cannot sign in, their sessions have ended, and their \
             live views and RTSP streams close within seconds (on a running hub too).",
            user.username
        )?;
        let owners_left = vault
            .store()
            .list_users()
            .await?
            .iter()
            .filter(|u| u.role == Role::Owner && !u.disabled)
            .count();
        if user.role == Role::Owner && owners_left == 0 {
            eprintln!(
                "warning: no enabled owner is left; `porchlight user enable {}` undoes this",
                user.username
            );
        }
    } else {
        writeln!(out, "Enabled `{}`: they can sign in again.", user.username)?;
    }
    out.flush()?;
    Ok(())
}

async fn unlock(name: &str, ctx: &Context) -> anyhow::Result<()> {
    let vault = ctx.open_existing_vault().await?;
    let user = vault.user(name).await?;
    vault.unlock_account(&user.username, &Actor::cli()).await?;
    println!(
        "Unlocked `{}`: they can try signing in again now.",
        user.username
    );
    Ok(())
}

/// One row of `user rtsp-token NAME --list --json` (never a secret).
#[derive(Debug, serde::Serialize)]
struct RtspTokenJson<'a> {
    id: i64,
    label: &'a str,
    /// `null`: every camera the user may see.
    cameras: Option<&'a [String]>,
    created_at: String,
    last_used_at: Option<String>,
}

impl<'a> From<&'a porchlight_store::RtspTokenRow> for RtspTokenJson<'a> {
    fn from(t: &'a porchlight_store::RtspTokenRow) -> Self {
        RtspTokenJson {
            id: t.id,
            label: &t.label,
            cameras: t.cameras.as_deref(),
            created_at: t.created_at.to_string(),
            last_used_at: t.last_used_at.map(|t| t.to_string()),
        }
    }
}

fn scope_words(cameras: Option<&[String]>) -> String {
    match cameras {
        None => "every camera they may see".into(),
        Some([]) => "no camera any more (its cameras were removed)".into(),
        Some(c) => c.join(", "),
    }
}

async fn rtsp_token(args: RtspTokenArgs, ctx: &Context) -> anyhow::Result<()> {
    let vault = ctx.open_existing_vault().await?;
    let user = vault.user(&args.name).await?;
    let name = user.username.as_str();
    let mut out = std::io::stdout().lock();
    if args.list {
        let tokens = vault.rtsp_tokens(user.id).await?;
        if args.json {
            let rows: Vec<RtspTokenJson> = tokens.iter().map(RtspTokenJson::from).collect();
            serde_json::to_writer_pretty(&mut out, &rows)?;
            writeln!(out)?;
        } else if tokens.is_empty() {
            writeln!(
                out,
                "`{name}` has no RTSP tokens. Create one with \
                 `porchlight user rtsp-token {name} --label DEVICE`."
            )?;
        } else {
            let mut rows = vec![[
                "ID".to_owned(),
                "DEVICE".into(),
                "CAMERAS".into(),
                "CREATED".into(),
                "LAST USED".into(),
            ]];
            for t in &tokens {
                rows.push([
                    t.id.to_string(),
                    t.label.clone(),
                    scope_words(t.cameras.as_deref()),
                    t.created_at.strftime("%Y-%m-%d %H:%M UTC").to_string(),
                    t.last_used_at.map_or("never".into(), |t| {
                        t.strftime("%Y-%m-%d %H:%M UTC").to_string()
                    }),
                ]);
            }
            write_table(&mut out, &rows)?;
        }
    } else if let Some(id) = args.revoke {
        let t = vault
            .revoke_rtsp_token(user.id, id, &Actor::cli())
            .await
            .with_context(|| format!("cannot revoke RTSP token #{id} of `{name}`"))?;
        writeln!(
            out,
            "Revoked RTSP token #{id} of `{name}` ({}); streams using it close within seconds.",
            t.label
        )?;
    } else {
        let label = args.label.as_deref().unwrap_or_default();
        let created = vault
            .create_rtsp_token(name, label, &args.cameras, &Actor::cli())
            .await
            .with_context(|| format!("cannot create an RTSP token for `{name}`"))?;
        let t = &created.token;
        if args.json {
            let j = serde_json::json!({
                "id": t.id,
                "username": t.username,
                "label": t.label,
                "cameras": t.cameras,
                "secret": created.secret.as_str(),
            });
            serde_json::to_writer_pretty(&mut out, &j)?;
            writeln!(out)?;
        } else {
            writeln!(
                out,
                "Created RTSP token #{} of `{name}` for {} ({}).",
                t.id,
                t.label,
                scope_words(t.cameras.as_deref())
            )?;
            writeln!(out)?;
            writeln!(out, "    {}", created.secret.as_str())?;
            writeln!(out)?;
            writeln!(
                out,
                "Give the device the user name `{name}` and this token as the password, e.g. \
                 rtsp://{name}:TOKEN@HUB:8554/CAMERA.\n\
                 It is shown once (Porchlight keeps only a hash). Revoke it with \
                 `porchlight user rtsp-token {name} --revoke {}`.",
                t.id
            )?;
        }
    }
    out.flush()?;
    Ok(())
}
