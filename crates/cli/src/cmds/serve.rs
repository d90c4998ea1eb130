//! `porchlight serve`: run the hub — and, in the same process, the
//! neighborhood server (one web app for now) — on the data folder until
//! Ctrl-C or SIGTERM.
//!
//! The first line on stdout is always `Porchlight is running at
//! http://ADDR/` with the address actually bound (so `--listen
//! 127.0.0.1:0` works; tests and scripts read it).

use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Context as _};
use porchlight_vault::Vault;

use crate::context::Context;

/// How long open connections get to finish after a stop signal.
const GRACE: Duration = Duration::from_secs(10);

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Address and port to listen on, e.g. 0.0.0.0:8080 (port 0: any free
    /// port). Wins over `web.listen` in the config.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
}

pub async fn run(args: Args, ctx: Context) -> anyhow::Result<()> {
    let vault = ctx.open_vault().await?;
    let server = Server::bind(&ctx, args.listen).await?;
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

/// A bound listener, with the stop signals already caught, ready to serve.
pub struct Server {
    listener: tokio::net::TcpListener,
    addr: SocketAddr,
    signals: Signals,
}

impl Server {
    /// Binds `--listen` (or `web.listen`) and starts catching Ctrl-C and
    /// SIGTERM, before anything is printed: whoever reads the URL line may
    /// send a stop signal at once.
    pub async fn bind(ctx: &Context, listen: Option<SocketAddr>) -> anyhow::Result<Server> {
        let want = listen.unwrap_or(ctx.config.web.listen);
        let listener = tokio::net::TcpListener::bind(want)
            .await
            .with_context(|| format!("cannot listen on {want}"))?;
        let addr = listener
            .local_addr()
            .with_context(|| format!("cannot read the address bound for {want}"))?;
        let signals = Signals::catch()?;
        Ok(Server {
            listener,
            addr,
            signals,
        })
    }

    /// The one line that says where to go.
    pub fn print_url(&self, out: &mut impl std::io::Write) -> anyhow::Result<()> {
        writeln!(out, "Porchlight is running at http://{}/", self.addr)?;
        Ok(())
    }

    /// Serves until a stop signal, then shuts down gracefully: no new
    /// connections, open ones get [`GRACE`] to finish, the database is
    /// closed cleanly.
    pub async fn run(self, ctx: Context, vault: Arc<Vault>) -> anyhow::Result<()> {
        let Server {
            listener,
            addr,
            mut signals,
        } = self;
        let rec = &ctx.config.recorder;
        let rec_opts = porchlight_recorder::RecorderOptions {
            writer: porchlight_recorder::WriterOptions {
                segment_target: std::time::Duration::from_secs(rec.segment_seconds.into()),
                flush_interval: std::time::Duration::from_secs(rec.flush_interval_seconds.into()),
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
        let mut config = ctx.config;
        config.web.listen = addr;
        let app = porchlight_web::App::new(vault.clone(), Arc::new(config));
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
        recorder.shutdown().await;
        vault.store().clone().close().await;
        tracing::info!("Porchlight stopped");
        result
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
struct Signals {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl Signals {
    fn catch() -> anyhow::Result<Signals> {
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
    async fn next(&mut self) -> &'static str {
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
