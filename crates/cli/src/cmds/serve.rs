//! `porchlight serve`: run the hub — and, in the same process, the
//! neighborhood server (one web app for now) — on the data folder until
//! Ctrl-C or SIGTERM.
//!
//! The first line on stdout is always `Porchlight is running at
//! http://ADDR/` with the address actually bound (so `--listen
//! 127.0.0.1:0` works; tests and scripts read it). The second is `RTSP
//! restream at rtsp://ADDR/`: every camera is served there live
//! (`rtsp://ADDR/NAME`, Basic auth with a hub user's name and one of
//! their RTSP tokens — `porchlight user rtsp-token`; never the account
//! password)
//! by the restream server, from the hub's one connection to the camera.
//! With remote access on (`porchlight remote enable`), a third line says
//! `HTTPS at https://lan.<hub-id>.<domain>:PORT/ (listening on ADDR)`:
//! the web app over TLS with the hub's own certificate
//! (crate::remote_access).

use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Context as _};
use porchlight_restream::{BoxFuture, Denied, Principal, RtspServer};
use porchlight_vault::{Actor, Vault};

use crate::context::Context;

/// How long open connections get to finish after a stop signal.
const GRACE: Duration = Duration::from_secs(10);

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Address and port to listen on, e.g. 0.0.0.0:8080 (port 0: any free
    /// port). Wins over `web.listen` in the config.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Address and port of the RTSP restream server (port 0: any free
    /// port) [default: 127.0.0.1:8554, or any free port if that is taken].
    #[arg(long = "rtsp-listen", value_name = "ADDR")]
    pub rtsp_listen: Option<SocketAddr>,
    /// Where to serve HTTPS when remote access is on (port 0: any free
    /// port). Wins over `web.https_listen`.
    #[arg(long = "https-listen", value_name = "ADDR")]
    pub https_listen: Option<SocketAddr>,
}

/// Where the RTSP restream listens unless told otherwise.
pub const DEFAULT_RTSP_LISTEN: &str = "127.0.0.1:8554";

pub async fn run(args: Args, ctx: Context) -> anyhow::Result<()> {
    porchlight_remote::certs::install_default_provider();
    let vault = ctx.open_vault().await?;
    let mut server = Server::bind(&ctx, args.listen, args.rtsp_listen).await?;
    server.https_listen = args.https_listen.unwrap_or(ctx.config.web.https_listen);
    server.remote = crate::remote_access::Bound::bind(&ctx.data_dir, server.https_listen).await?;
    let no_users = vault.store().count_users().await? == 0;
    let mut out = std::io::stdout().lock();
    server.print_url(&mut out)?;
    if no_users {
        writeln!(out, "No owner yet: open that address to create one.")?;
    }
    out.flush()?;
    drop(out);
    server.run(ctx, vault).await
}

/// Bound listeners (web and RTSP), with the stop signals already caught,
/// ready to serve.
pub struct Server {
    listener: tokio::net::TcpListener,
    addr: SocketAddr,
    rtsp: RtspServer,
    signals: Signals,
    /// Seed the neighborhood with demo content (`porchlight demo`).
    pub seed_neighborhood: bool,
    /// Remote access (HTTPS listener bound), when it is on.
    pub remote: Option<crate::remote_access::Bound>,
    /// Where HTTPS is served once remote access is on (also when it is
    /// turned on while the hub runs).
    pub https_listen: SocketAddr,
}

impl Server {
    /// Binds `--listen` (or `web.listen`) and the RTSP restream
    /// (`--rtsp-listen`; by default 127.0.0.1:8554, or any free port when
    /// that one is taken, e.g. by a second hub), and starts catching Ctrl-C
    /// and SIGTERM, before anything is printed: whoever reads the URL line
    /// may send a stop signal at once.
    pub async fn bind(
        ctx: &Context,
        listen: Option<SocketAddr>,
        rtsp_listen: Option<SocketAddr>,
    ) -> anyhow::Result<Server> {
        let want = listen.unwrap_or(ctx.config.web.listen);
        let listener = tokio::net::TcpListener::bind(want)
            .await
            .with_context(|| format!("cannot listen on {want}"))?;
        let addr = listener
            .local_addr()
            .with_context(|| format!("cannot read the address bound for {want}"))?;
        let rtsp = match rtsp_listen {
            Some(want) => RtspServer::bind(want)
                .await
                .with_context(|| format!("cannot listen for RTSP on {want}"))?,
            None => {
                let want: SocketAddr = DEFAULT_RTSP_LISTEN.parse().expect("a valid address");
                match RtspServer::bind(want).await {
                    Ok(r) => r,
                    Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
                        let any = SocketAddr::new(want.ip(), 0);
                        let r = RtspServer::bind(any)
                            .await
                            .with_context(|| format!("cannot listen for RTSP on {any}"))?;
                        tracing::warn!(
                            "{want} is taken (another hub?): the RTSP restream uses {} instead; choose one with --rtsp-listen",
                            r.local_addr()
                        );
                        r
                    }
                    Err(e) => {
                        return Err(e).with_context(|| format!("cannot listen for RTSP on {want}"))
                    }
                }
            }
        };
        let signals = Signals::catch()?;
        Ok(Server {
            listener,
            addr,
            rtsp,
            signals,
            seed_neighborhood: false,
            remote: None,
            https_listen: ctx.config.web.https_listen,
        })
    }

    /// The lines that say where to go: the web address, then the RTSP
    /// restream's. One write, so a reader that takes the first line and
    /// closes the pipe gets both at once instead of breaking the second.
    pub fn print_url(&self, out: &mut impl std::io::Write) -> anyhow::Result<()> {
        let mut lines = format!(
            "Porchlight is running at http://{}/\nRTSP restream at rtsp://{}/\n",
            self.addr,
            self.rtsp.local_addr()
        );
        if let Some(r) = &self.remote {
            lines.push_str(&format!(
                "HTTPS at {}/ (listening on {})\n",
                r.lan_base(),
                r.addr
            ));
        }
        out.write_all(lines.as_bytes())?;
        out.flush()?;
        Ok(())
    }

    /// The RTSP restream's address.
    pub fn rtsp_addr(&self) -> SocketAddr {
        self.rtsp.local_addr()
    }

    /// The restream's static sources (the demo's cameras).
    pub fn rtsp_sources(&self) -> porchlight_restream::Sources {
        self.rtsp.sources()
    }

    /// Serves until a stop signal, then shuts down gracefully: no new
    /// connections, open ones get [`GRACE`] to finish, the database is
    /// closed cleanly.
    pub async fn run(self, ctx: Context, vault: Arc<Vault>) -> anyhow::Result<()> {
        let Server {
            listener,
            addr,
            rtsp,
            mut signals,
            seed_neighborhood,
            remote,
            https_listen,
        } = self;
        // Event details written before migration 13 are still in clear:
        // seal them to the recipients of now and vacuum the database, before
        // anything else writes (design/keys.md, "What a stolen data folder
        // reveals").
        match porchlight_vault::details::seal_legacy_events(vault.store(), vault.now()).await {
            Ok(0) => {}
            Ok(n) => tracing::info!("sealed the details of {n} events written before sealing"),
            Err(e) => tracing::warn!("cannot seal older events' details yet: {e}"),
        }
        let rec = &ctx.config.recorder;
        let rec_opts = porchlight_recorder::RecorderOptions {
            writer: porchlight_recorder::WriterOptions {
                segment_target: std::time::Duration::from_secs(rec.segment_seconds.into()),
                flush_interval: std::time::Duration::from_secs(rec.flush_interval_seconds.into()),
                ..Default::default()
            },
            min_free_bytes: u64::from(rec.min_free_mib) << 20,
            ..Default::default()
        };
        let (recorder, _recovery) = porchlight_recorder::Recorder::start(
            vault.store().clone(),
            porchlight_base::clock::system(),
            rec_opts,
        )
        .await
        .context("starting the recorder")?;
        // porchlight-backup (issue 17): event footage off-site while it
        // happens, to the destinations `porchlight backup add` made.
        let backup = porchlight_backup::uploader::Uploader::start(
            vault.store().clone(),
            ctx.data_dir.join(porchlight_recorder::RECORDINGS_DIR),
            porchlight_backup::uploader::UploaderOptions::default(),
        );
        // porchlight-alarm (issue 6): MQTT sensors, sirens and the alarm state machine.
        let alarm_opts =
            porchlight_alarm::AlarmOptions::from_config(&ctx.config).context("alarm settings")?;
        let alarm = porchlight_alarm::Alarm::start(
            vault.store().clone(),
            porchlight_base::clock::system(),
            alarm_opts,
        )
        .await
        .context("starting the alarm")?;
        // Web Push (issues 5–7). The contact the push services see is the
        // hub's public URL when it has one.
        let public_url = ctx.config.web.public_url.clone().or_else(|| {
            remote
                .as_ref()
                .map(|r| format!("https://{}", r.remote.hub_name()))
        });
        let contact = match public_url {
            Some(u) if u.starts_with("https://") => u,
            _ => "mailto:porchlight@localhost".to_owned(),
        };
        let notifier = match porchlight_notify::Notifier::open(
            vault.store().clone(),
            &ctx.data_dir,
            contact,
        ) {
            // `[web] push_allow_loopback_http`: a push service on this
            // machine (the browser tests'); never http:// elsewhere.
            Ok(n) if ctx.config.web.push_allow_loopback_http => {
                tracing::warn!("Web Push accepts http:// endpoints on 127.0.0.1 and [::1] (web.push_allow_loopback_http)");
                Some(n.allow_loopback_http_endpoints())
            }
            Ok(n) => Some(n),
            Err(e) => {
                tracing::warn!("Web Push is off: {e}");
                None
            }
        };
        // porchlight-events (issue 5): detection, events, snapshots, MQTT.
        let hub_events = crate::hub_events::HubEvents::start(
            vault.store().clone(),
            ctx.data_dir.clone(),
            recorder.live(),
            &alarm.client(),
            notifier.clone(),
            &ctx.config.mqtt.base_topic,
        )
        .await;
        // porchlight-neighborhood (issue 7), on its own listener.
        let neighborhood = start_neighborhood(&ctx, seed_neighborhood).await;
        let authorizer = HubAuthorizer::new(vault.clone());
        let (rtsp_stop_tx, rtsp_stop_rx) = tokio::sync::oneshot::channel::<()>();
        let rtsp_task = tokio::spawn(rtsp.serve(
            Some(porchlight_restream::Cameras {
                live: recorder.live(),
                authorizer: Arc::new(authorizer),
            }),
            async move {
                let _ = rtsp_stop_rx.await;
            },
        ));
        let mut config = ctx.config;
        config.web.listen = addr;
        if let Some(r) = &remote {
            config.web.https_listen = r.addr;
            // The hub's name is its public URL (cookies Secure, push contact).
            if config.web.public_url.is_none() {
                config.web.public_url = Some(format!("https://{}", r.remote.hub_name()));
            }
        }
        let mut app = porchlight_web::App::new(vault.clone(), Arc::new(config))
            .with_live(recorder.live())
            .with_alarm(alarm.client())
            .with_events(hub_events.handle());
        if let Some(n) = notifier.clone() {
            app = app.with_notifier(n);
        }
        // Remote access: started now when it is on (its listener is already
        // bound and printed), and turned on or off while the hub runs — one
        // path for both (remote_access::watch).
        let (remote_stop_tx, remote_stop_rx) = tokio::sync::oneshot::channel::<()>();
        let remote_watch = tokio::spawn(crate::remote_access::watch(
            ctx.data_dir.clone(),
            https_listen,
            remote,
            app.router(),
            vault.clone(),
            notifier.clone(),
            app.remote.clone(),
            remote_stop_rx,
            GRACE,
        ));
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let mut server = tokio::spawn(porchlight_web::serve(app, listener, async move {
            let _ = stop_rx.await;
        }));
        tracing::info!(%addr, data_dir = %ctx.data_dir.display(), "serving the hub and the neighborhood server");

        let outcome = tokio::select! {
            done = &mut server => Some(done),
            name = signals.next() => {
                tracing::info!("{name}: stopping (open connections get {} s)", GRACE.as_secs());
                None
            }
        };
        let result = match outcome {
            Some(done) => {
                flatten(done).and_then(|()| Err(anyhow!("the web server stopped on its own")))
            }
            None => {
                let _ = stop_tx.send(());
                tokio::select! {
                    done = tokio::time::timeout(GRACE, &mut server) => match done {
                        Ok(done) => flatten(done),
                        Err(_) => {
                            tracing::warn!("connections still open after {} s; stopping anyway", GRACE.as_secs());
                            server.abort();
                            Ok(())
                        }
                    },
                    name = signals.next() => {
                        tracing::warn!("{name} again: stopping at once");
                        server.abort();
                        Ok(())
                    }
                }
            }
        };
        let _ = remote_stop_tx.send(());
        if let Ok(Some(r)) = remote_watch.await {
            r.stop(GRACE).await;
        }
        let _ = rtsp_stop_tx.send(());
        let _ = rtsp_task.await;
        if let Some(n) = neighborhood {
            n.abort();
        }
        hub_events.shutdown().await;
        backup.shutdown().await;
        alarm.shutdown().await; // porchlight-alarm (issue 6)
        recorder.shutdown().await;
        vault.store().clone().close().await;
        tracing::info!("Porchlight stopped");
        result
    }
}

/// Opens the neighborhood's database and serves it on `[neighborhood]
/// listen`. A failure (the address taken by another hub, a database that
/// cannot be opened) is logged and the hub runs without it.
async fn start_neighborhood(ctx: &Context, seed: bool) -> Option<tokio::task::JoinHandle<()>> {
    let cfg = &ctx.config.neighborhood;
    if !cfg.enabled {
        return None;
    }
    let url = cfg.database_url.clone().unwrap_or_else(|| {
        format!(
            "sqlite://{}?mode=rwc",
            ctx.data_dir.join("neighborhood.db").display()
        )
    });
    let n = match porchlight_neighborhood::Neighborhood::open(&url).await {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!("the neighborhood server is off: {e}");
            return None;
        }
    };
    if seed {
        match n.seed_demo().await {
            Ok(demo) => {
                let who: Vec<String> = demo
                    .accounts
                    .iter()
                    .map(|a| format!("{} / {}", a.username, a.password))
                    .collect();
                tracing::info!(
                    "demo neighborhood: {} posts; accounts: {}",
                    demo.posts,
                    who.join(", ")
                );
            }
            Err(e) => tracing::warn!("seeding the demo neighborhood: {e}"),
        }
    }
    let listener = match tokio::net::TcpListener::bind(cfg.listen).await {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(
                "the neighborhood server is off: cannot listen on {}: {e}",
                cfg.listen
            );
            return None;
        }
    };
    let addr = listener.local_addr().ok();
    tracing::info!(addr = ?addr, "serving the neighborhood");
    let router = porchlight_neighborhood::router(n);
    Some(tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router).await {
            tracing::warn!("the neighborhood server stopped: {e}");
        }
    }))
}

/// RTSP access to the store's cameras, decided by the vault
/// (`porchlight_vault::rtsp`): the password is one of the user's RTSP
/// tokens, never the account password (no second factor over RTSP);
/// failures go through the vault's throttles (the client address's, shared
/// with web sign-in, and the user's RTSP counter); the token's scope
/// narrows the user's own rule (owners every camera, members the ones
/// granted to them). Audited: each sign-in, failure and refusal (by the
/// vault), each `camera.denied`, each `PLAY` (`live.restream`) and each
/// end of a stream (`live.restream_end`, or `live.cut` when a re-check
/// closed it).
struct HubAuthorizer {
    vault: Arc<Vault>,
}

impl HubAuthorizer {
    fn new(vault: Arc<Vault>) -> HubAuthorizer {
        HubAuthorizer { vault }
    }

    fn viewer(who: &Principal) -> porchlight_vault::rtsp::RtspViewer {
        porchlight_vault::rtsp::RtspViewer {
            token_id: who.credential,
            user_id: who.user_id,
            username: who.name.clone(),
            label: String::new(),
        }
    }

    fn actor(who: &Principal, client: SocketAddr) -> Actor {
        Actor {
            name: who.name.clone(),
            client: client.ip().to_string(),
        }
    }

    async fn audit(
        &self,
        actor: &Actor,
        action: &str,
        target: &str,
        detail: serde_json::Value,
    ) -> Result<(), Denied> {
        self.vault
            .audit(actor, action, target, detail)
            .await
            .map(|_| ())
            .map_err(|e| Denied::Unavailable(format!("cannot write the audit log: {e}")))
    }
}

impl porchlight_restream::Authorizer for HubAuthorizer {
    fn authenticate<'a>(
        &'a self,
        username: &'a str,
        password: &'a str,
        client: SocketAddr,
    ) -> BoxFuture<'a, Result<Principal, Denied>> {
        Box::pin(async move {
            use porchlight_vault::AuthError;
            match self
                .vault
                .rtsp_sign_in(username, password, &client.ip().to_string())
                .await
            {
                Ok(v) => Ok(Principal {
                    user_id: v.user_id,
                    name: v.username,
                    credential: v.token_id,
                }),
                Err(e @ AuthError::Locked { .. }) => {
                    tracing::warn!(%client, user = %username, "RTSP: {e}");
                    Err(Denied::BadCredentials)
                }
                Err(AuthError::BadCredentials | AuthError::Disabled) => Err(Denied::BadCredentials),
                Err(e) => Err(Denied::Unavailable(e.to_string())),
            }
        })
    }

    fn authorize<'a>(
        &'a self,
        who: &'a Principal,
        name: &'a str,
        client: SocketAddr,
    ) -> BoxFuture<'a, Result<i64, Denied>> {
        Box::pin(async move {
            let store = self.vault.store();
            let cam = store
                .camera_by_name(name)
                .await
                .map_err(|e| Denied::Unavailable(e.to_string()))?
                .ok_or(Denied::NotFound)?;
            match store.rtsp_token_may_see(who.credential, cam.id).await {
                Ok(true) => Ok(cam.id),
                Ok(false) => {
                    // The same kind the web app writes for a refused look.
                    self.audit(
                        &Self::actor(who, client),
                        "camera.denied",
                        &cam.name,
                        serde_json::json!({ "what": "rtsp", "token": who.credential }),
                    )
                    .await?;
                    Err(Denied::Forbidden)
                }
                Err(e) => Err(Denied::Unavailable(e.to_string())),
            }
        })
    }

    fn played<'a>(
        &'a self,
        who: &'a Principal,
        name: &'a str,
        client: SocketAddr,
    ) -> BoxFuture<'a, Result<(), Denied>> {
        Box::pin(async move {
            self.audit(
                &Self::actor(who, client),
                "live.restream",
                name,
                serde_json::json!({ "via": "rtsp", "token": who.credential }),
            )
            .await
        })
    }

    fn recheck<'a>(
        &'a self,
        who: &'a Principal,
        camera: Option<i64>,
    ) -> BoxFuture<'a, Result<(), Denied>> {
        Box::pin(async move {
            match self.vault.rtsp_check(&Self::viewer(who), camera).await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(why)) => Err(Denied::Revoked(why)),
                Err(e) => Err(Denied::Unavailable(format!(
                    "cannot check the viewer's access: {e}"
                ))),
            }
        })
    }

    fn stopped<'a>(
        &'a self,
        who: &'a Principal,
        name: &'a str,
        client: SocketAddr,
        end: porchlight_restream::StreamEnd,
    ) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            use porchlight_restream::StreamEnd;
            let (action, detail) = match end {
                StreamEnd::Teardown => (
                    "live.restream_end",
                    serde_json::json!({ "via": "rtsp", "token": who.credential, "reason": "teardown" }),
                ),
                StreamEnd::Left(why) => (
                    "live.restream_end",
                    serde_json::json!({ "via": "rtsp", "token": who.credential, "reason": why }),
                ),
                StreamEnd::Cut(why) => (
                    "live.cut",
                    serde_json::json!({ "via": "rtsp", "token": who.credential, "reason": why }),
                ),
            };
            if let Err(e) = self
                .audit(&Self::actor(who, client), action, name, detail)
                .await
            {
                tracing::warn!("the end of an RTSP stream was not recorded: {e:?}");
            }
        })
    }
}

fn flatten(done: Result<std::io::Result<()>, tokio::task::JoinError>) -> anyhow::Result<()> {
    match done {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(anyhow!(e).context("the web server failed")),
        Err(e) => Err(anyhow!("the web server crashed: {e}")),
    }
}

/// Ctrl-C and (on Unix) SIGTERM, caught from the moment this is built.
pub(crate) struct Signals {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl Signals {
    pub(crate) fn catch() -> anyhow::Result<Signals> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Ok(Signals {
                interrupt: signal(SignalKind::interrupt()).context("cannot catch Ctrl-C")?,
                terminate: signal(SignalKind::terminate()).context("cannot catch SIGTERM")?,
            })
        }
        #[cfg(not(unix))]
        Ok(Signals {})
    }

    /// Waits for the next stop signal and names it.
    pub(crate) async fn next(&mut self) -> &'static str {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.interrupt.recv() => "Ctrl-C",
                _ = self.terminate.recv() => "SIGTERM",
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            "Ctrl-C"
        }
    }
}
