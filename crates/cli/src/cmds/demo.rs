//! `porchlight demo`: `serve` on a folder of its own (`./porchlight-demo`
//! unless `--data-dir` says otherwise) with three ready-made sign-ins whose
//! passwords are printed, and two synthetic cameras (`front-door`,
//! `driveway`, from the `porchlight-demo` crate). Running it again reuses
//! the folder.
//!
//! The demo cameras are rendered and encoded in this process and served by
//! the hub's own RTSP restream server at `demo/NAME` with random
//! credentials; the camera rows point there, so the recorder records them
//! through the same RTSP path as a real camera.
//!
//! Because the demo passwords are public, the demo never runs on a folder
//! that already holds other accounts but no `demo-owner` (a real
//! household's), and it ignores `data_dir` from the config file and the
//! environment, which name the real household's folder.

use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use anyhow::{bail, Context as _};
use porchlight_demo::{DemoCamera, Scene};
use porchlight_store::{NewCamera, Role, StoreError};
use porchlight_vault::{Actor, AuthError, Vault};

use crate::cmds::serve::Server;
use crate::context::Context;

// Declared here rather than in `cmds/mod.rs`: it is part of the demo.
#[path = "demo_backfill.rs"]
pub mod demo_backfill;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Address and port to listen on (port 0: any free port). Wins over
    /// `web.listen` in the config.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Address and port of the RTSP restream server, which also serves the
    /// demo cameras (port 0: any free port) [default: the port the demo
    /// cameras used last time, else 127.0.0.1:8554, else any free port].
    #[arg(long = "rtsp-listen", value_name = "ADDR")]
    pub rtsp_listen: Option<SocketAddr>,
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
    let rtsp_token = demo_rtsp_token(&vault).await?;
    let mut server = bind(&ctx, &vault, args.listen, args.rtsp_listen).await?;
    server.seed_neighborhood = true;
    let cameras = start_cameras(&vault, &server).await?;
    // Yesterday's footage to scrub back to, recorded in the background.
    let backfill = demo_backfill::spawn(vault.store().clone(), vault.now());

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
    let rtsp = server.rtsp_addr();
    writeln!(
        out,
        "Demo cameras: {} (synthetic, recording now; live at rtsp://demo-owner:{}@{rtsp}/NAME — an RTSP token made for this run: RTSP never takes an account password).",
        Scene::ALL.map(Scene::name).join(" and "),
        rtsp_token.as_str()
    )?;
    out.flush()?;
    drop(out);
    if let Err(e) = demo_detection(&vault).await {
        tracing::warn!("demo detection settings: {e}");
    }
    let result = server.run(ctx, vault).await;
    backfill.abort();
    drop(cameras);
    result
}

/// The demo cameras' RTSP host: the restream's own address, or loopback
/// when it listens on all addresses.
fn camera_host(rtsp: SocketAddr) -> SocketAddr {
    match rtsp.ip() {
        IpAddr::V4(a) if a.is_unspecified() => {
            SocketAddr::new(Ipv4Addr::LOCALHOST.into(), rtsp.port())
        }
        IpAddr::V6(a) if a.is_unspecified() => {
            SocketAddr::new(Ipv6Addr::LOCALHOST.into(), rtsp.port())
        }
        _ => rtsp,
    }
}

/// The URL a demo camera's row points at.
fn camera_url(rtsp: SocketAddr, cam: &DemoCamera) -> String {
    format!("rtsp://{}/{}", camera_host(rtsp), cam.path())
}

/// Binds the listeners. Without `--rtsp-listen`, the RTSP port the demo
/// camera rows name is tried first, so rows from an earlier run keep
/// working.
async fn bind(
    ctx: &Context,
    vault: &Vault,
    listen: Option<SocketAddr>,
    rtsp_listen: Option<SocketAddr>,
) -> anyhow::Result<Server> {
    if rtsp_listen.is_none() {
        if let Some(cam) = vault
            .store()
            .camera_by_name(Scene::FrontDoor.name())
            .await?
        {
            let earlier = url::Url::parse(&cam.main_url)
                .ok()
                .and_then(|u| u.socket_addrs(|| Some(8554)).ok())
                .and_then(|a| a.into_iter().next())
                .filter(|a| a.ip().is_loopback());
            if let Some(earlier) = earlier {
                if let Ok(server) = Server::bind(ctx, listen, Some(earlier)).await {
                    return Ok(server);
                }
            }
        }
    }
    Server::bind(ctx, listen, rtsp_listen).await
}

/// Starts the demo cameras, serves them on the restream and makes sure
/// the camera rows point at them.
async fn start_cameras(vault: &Vault, server: &Server) -> anyhow::Result<Vec<DemoCamera>> {
    let rtsp = server.rtsp_addr();
    let mut cameras = Vec::new();
    for scene in Scene::ALL {
        let mut cam = DemoCamera::start(scene)
            .with_context(|| format!("cannot start the demo camera `{}`", scene.name()))?;
        let url = camera_url(rtsp, &cam);
        let sub_url = format!("rtsp://{}/{}", camera_host(rtsp), cam.sub_path());
        match vault.store().camera_by_name(scene.name()).await? {
            None => {
                let row = NewCamera {
                    name: scene.name().to_owned(),
                    main_url: url.clone(),
                    sub_url: Some(sub_url.clone()),
                    username: Some(cam.username().to_owned()),
                    password: Some(cam.password().to_owned()),
                    ..Default::default()
                };
                match vault.store().create_camera(&row, vault.now()).await {
                    Ok(c) => {
                        vault
                            .audit(
                                &Actor::cli(),
                                "camera.add",
                                &c.name,
                                serde_json::json!({ "url": c.main_url, "demo": true }),
                            )
                            .await?;
                    }
                    // Another demo on the same folder at the same moment.
                    Err(StoreError::Conflict(_)) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            Some(row) => {
                // Keep the credentials the row was given, so it keeps
                // working without being rewritten.
                if let (Some(u), Some(p)) = (&row.username, &row.password) {
                    cam.set_credentials(u, p);
                }
                if row.main_url != url {
                    // The restream port changed since the last demo run.
                    vault
                        .store()
                        .update_camera_source(
                            row.id,
                            &url,
                            row.username.as_deref(),
                            row.password.as_deref(),
                        )
                        .await?;
                }
                if row.sub_url.as_deref() != Some(sub_url.as_str()) {
                    // A row from before the demo had sub-streams, or the port changed.
                    vault
                        .store()
                        .set_camera_sub_url(row.id, Some(&sub_url))
                        .await?;
                }
            }
        }
        server.rtsp_sources().add(
            &cam.sub_path(),
            porchlight_restream::Source {
                frames: cam.sub_frames(),
                credentials: Some(porchlight_restream::Credentials {
                    username: cam.username().to_owned(),
                    password: cam.password().to_owned(),
                }),
            },
        );
        server.rtsp_sources().add(
            &cam.path(),
            porchlight_restream::Source {
                frames: cam.frames(),
                credentials: Some(porchlight_restream::Credentials {
                    username: cam.username().to_owned(),
                    password: cam.password().to_owned(),
                }),
            },
        );
        cameras.push(cam);
    }
    Ok(cameras)
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
/// Label of the RTSP token each demo run makes for `demo-owner`.
const DEMO_TOKEN_LABEL: &str = "demo run";

/// A fresh RTSP token for `demo-owner` (the previous run's is revoked), to
/// print: the restream takes tokens, never account passwords.
async fn demo_rtsp_token(vault: &Vault) -> anyhow::Result<zeroize::Zeroizing<String>> {
    let owner = vault.user(ACCOUNTS[0].username).await?;
    for t in vault.rtsp_tokens(owner.id).await? {
        if t.label == DEMO_TOKEN_LABEL {
            vault
                .revoke_rtsp_token(owner.id, t.id, &Actor::cli())
                .await?;
        }
    }
    let created = vault
        .create_rtsp_token(&owner.username, DEMO_TOKEN_LABEL, &[], &Actor::cli())
        .await
        .context("cannot create the demo's RTSP token")?;
    Ok(created.secret)
}

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

/// Detection settings of the demo cameras (unless the user changed them):
/// the clock overlay masked, the porch as the front door's zone. Detection
/// reads the 640x360 main stream: the demo's 320x180 sub-stream is smaller
/// than real cameras' (640x360 is typical), too small for the detector.
async fn demo_detection(vault: &Vault) -> anyhow::Result<()> {
    let store = vault.store();
    let clock = serde_json::json!({"name": "clock", "kind": "mask",
        "polygon": [[0.0, 0.0], [0.42, 0.0], [0.42, 0.1], [0.0, 0.1]]});
    for scene in Scene::ALL {
        let Some(cam) = store.camera_by_name(scene.name()).await? else {
            continue;
        };
        if store.camera_detection(cam.id).await?.is_some() {
            continue;
        }
        let cfg = match scene {
            Scene::FrontDoor => serde_json::json!({"stream": "main", "motion": {"zones": [clock,
                {"name": "porch", "polygon": [[0.45, 0.15], [0.9, 0.15], [0.9, 0.95], [0.45, 0.95]]}]}}),
            Scene::Driveway => {
                serde_json::json!({"stream": "main", "alert_labels": ["person", "vehicle"],
                "motion": {"zones": [clock]}})
            }
        };
        porchlight_events::CameraDetection::from_json(&cfg)?;
        store
            .set_camera_detection(cam.id, &cfg, vault.now())
            .await?;
    }
    Ok(())
}
