//! # porchlight-recorder
//!
//! The hub's recorder: it keeps every configured camera connected and its
//! video on disk, encrypted, indexed and within its retention limits.
//!
//! * [`ingest`] — one task per camera stream (main, and the sub-stream
//!   when configured): RTSP over TCP with `retina`, reconnect with backoff,
//!   stall detection. All of them run on one thread of the recorder's own
//!   (`IngestRuntime`), which also seals and writes their records.
//! * [`live`] — live frames of every camera stream for the restream, the
//!   live view and detection ([`LiveHub::subscribe_detect`]).
//! * [`writer`] — frames → sealed records → segment files + index rows, with
//!   the fsync ordering of design/storage.md.
//! * [`recipients`] — who each new segment is encrypted to; a grant,
//!   revoke, disable or enable (from any process) ends running segments at
//!   their next key frame.
//! * [`recovery`] — start-up repair after a crash (before recording).
//! * [`retention`] — age, size and free-space limits; oldest first.
//! * [`export`] — any time range as an MP4, decrypted with a member's key.
//! * [`status`] — live connection statistics, mirrored to the store.
//! * [`wallclock`] — where a run's segments sit on the hub's clock.
//! * [`readbatch`] — a receive low-water mark on every camera socket, so
//!   the hub wakes a few times a second per camera instead of per frame.
//!
//! Invariants: no plaintext sample ever reaches disk (the writer only
//! writes sealed records); a camera can never take the hub down (every
//! failure ends in its own task's reconnect loop); the set of cameras is
//! re-read from the store every few seconds, so `porchlight camera add`
//! on a running hub takes effect without a restart; every segment is
//! encrypted to the camera's recipients as they are when it opens, and a
//! change of them ends the running segment at the next key frame.
//!
//! Not here: decoding and detection (the detection crate), HTTP (web).

pub mod cameras;
pub mod export;
pub mod ingest;
pub mod live;
pub mod readbatch;
pub mod recipients;
pub mod recovery;
pub mod retention;
pub mod status;
pub mod wallclock;
pub mod writer;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use porchlight_base::SharedClock;
use porchlight_store::Store;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use live::{LiveFrame, LiveHub};
pub use status::{StatusBoard, StreamKind};
pub use writer::WriterOptions;

/// Name of the recordings directory inside the data folder.
pub const RECORDINGS_DIR: &str = "recordings";

/// Errors of the recorder; each names what was being done.
#[derive(Debug, thiserror::Error)]
pub enum RecorderError {
    #[error("camera: {0}")]
    Camera(String),
    #[error("no one can see this camera's recordings yet (no owner with a household key): recording waits for an owner")]
    NoRecipients,
    #[error("{doing}: {source}")]
    Io {
        doing: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Segment(#[from] porchlight_media::segment::SegmentError),
    #[error(transparent)]
    Store(#[from] porchlight_store::StoreError),
    #[error("{0}")]
    Export(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl RecorderError {
    pub(crate) fn io(doing: String, source: std::io::Error) -> Self {
        RecorderError::Io { doing, source }
    }
}

/// Recorder settings.
#[derive(Debug, Clone)]
pub struct RecorderOptions {
    pub writer: WriterOptions,
    /// Keep at least this much free space on the data folder's disk.
    pub min_free_bytes: u64,
    /// How often the camera list, statuses and retention are revisited.
    pub housekeeping_interval: Duration,
    /// How much of each camera's stream the kernel gathers before waking
    /// the hub ([`readbatch`]): the extra latency live consumers may see
    /// (only streams nobody watches live are batched). Default 200 ms;
    /// `PORCHLIGHT_RECORDER_READ_BATCH_MS` overrides it, and zero turns
    /// batching off (a wake-up per frame). It was opt-in while a batched
    /// stream could show a gap inside a recording run; segments of a run
    /// are now joined on the camera's timeline ([`wallclock`]), so delivery
    /// delays no longer show in the recordings.
    pub read_batch: Duration,
    /// How often the store's recipient change counter is read
    /// ([`recipients`]): the longest a grant, revoke, disable or enable
    /// waits before running segments end at their next key frame.
    pub recipients_poll: Duration,
}

impl Default for RecorderOptions {
    fn default() -> Self {
        RecorderOptions {
            writer: WriterOptions::default(),
            min_free_bytes: 1 << 30,
            housekeeping_interval: Duration::from_secs(5),
            read_batch: read_batch_from_env(),
            recipients_poll: recipients::DEFAULT_POLL,
        }
    }
}

/// Default of [`RecorderOptions::read_batch`].
pub const DEFAULT_READ_BATCH: Duration = Duration::from_millis(200);

/// `PORCHLIGHT_RECORDER_READ_BATCH_MS` (milliseconds, 0 = off, at most
/// 1000), or the default; a value that is not such a number is reported
/// and the default used.
fn read_batch_from_env() -> Duration {
    match std::env::var("PORCHLIGHT_RECORDER_READ_BATCH_MS") {
        Err(_) => DEFAULT_READ_BATCH,
        Ok(v) => match v.trim().parse::<u64>() {
            Ok(ms) if ms <= 1000 => Duration::from_millis(ms),
            _ => {
                tracing::warn!(
                    "PORCHLIGHT_RECORDER_READ_BATCH_MS={v:?} is not a number of milliseconds from 0 to 1000; using {} ms",
                    DEFAULT_READ_BATCH.as_millis()
                );
                DEFAULT_READ_BATCH
            }
        },
    }
}

/// The running recorder. Dropping it does not stop it: call [`Recorder::shutdown`].
pub struct Recorder {
    store: Store,
    dir: PathBuf,
    status: Arc<StatusBoard>,
    live: Arc<LiveHub>,
    shutdown_tx: watch::Sender<bool>,
    supervisor: JoinHandle<()>,
}

impl Recorder {
    /// Recovers the folder after any crash, then starts recording every
    /// enabled camera and the housekeeping loop.
    pub async fn start(
        store: Store,
        clock: SharedClock,
        opts: RecorderOptions,
    ) -> Result<(Recorder, recovery::RecoveryReport), RecorderError> {
        let dir = store.data_dir().join(RECORDINGS_DIR);
        std::fs::create_dir_all(&dir)
            .map_err(|e| RecorderError::io(format!("creating {}", dir.display()), e))?;
        let report = recovery::recover(&store, &dir).await?;
        let status = Arc::new(StatusBoard::default());
        let live = Arc::new(LiveHub::default());
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let ingest = IngestRuntime::start()?;
        let batcher = Arc::new(readbatch::ReadBatcher::default());
        let recipient_changes = recipients::RecipientChanges::new(store.recipient_changes().await?);
        tokio::spawn(recipients::poll(
            store.clone(),
            recipient_changes.clone(),
            opts.recipients_poll,
            shutdown_rx.clone(),
        ));
        tokio::spawn(batcher.clone().run(opts.read_batch, shutdown_rx.clone()));
        let supervisor = tokio::spawn(supervise(
            ingest,
            store.clone(),
            clock,
            dir.clone(),
            opts,
            status.clone(),
            live.clone(),
            batcher,
            recipient_changes,
            shutdown_rx,
        ));
        Ok((
            Recorder {
                store,
                dir,
                status,
                live,
                shutdown_tx,
                supervisor,
            },
            report,
        ))
    }

    pub fn recordings_dir(&self) -> &Path {
        &self.dir
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Live frames of every camera (restream, live view, detection):
    /// `subscribe` (main), `subscribe_sub`, `subscribe_detect` (the
    /// sub-stream when the camera has one, else the main stream).
    pub fn live(&self) -> Arc<LiveHub> {
        self.live.clone()
    }

    /// Stops every camera cleanly: each writes what it gathered and closes
    /// its segment (the one frame held back for its duration is dropped).
    pub async fn shutdown(self) {
        let _ = self.shutdown_tx.send(true);
        let _ = self.supervisor.await;
        self.status
            .publish(&self.store, jiff::Timestamp::now())
            .await;
    }
}

/// The thread the camera tasks run on: a single-threaded tokio runtime of
/// its own, which the recorder's supervisor keeps for as long as it runs
/// (dropping the [`IngestRuntime`] ends the thread; tasks still on it are
/// cancelled, so the supervisor joins them first).
///
/// Why not the hub's multi-threaded runtime: a camera is a socket that
/// wakes a few times a second (read batching) and a record write twice a
/// second. On a work-stealing scheduler each such wake-up also woke an
/// idle worker to look for work, and every record went to the blocking
/// pool and back: thread switches, not work, were the largest cost of
/// recording (bench/RESULTS.md). Here one thread waits in `epoll`, reads
/// what is ready, and seals and writes records itself (`writer`, "Threads");
/// what can block for long (fsync, file creation) still goes to this
/// runtime's blocking pool. A second benefit is isolation: exports, the
/// web app and detection on the main runtime cannot delay ingest, nor
/// the other way round.
struct IngestRuntime {
    handle: tokio::runtime::Handle,
    /// Dropped (with the struct) to end the thread.
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl IngestRuntime {
    fn start() -> Result<IngestRuntime, RecorderError> {
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let (handle_tx, handle_rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("recorder-ingest".into())
            .spawn(move || {
                match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .thread_name("recorder-blocking")
                    .build()
                {
                    Ok(rt) => {
                        let _ = handle_tx.send(Ok(rt.handle().clone()));
                        // Until the supervisor drops its end.
                        rt.block_on(async move {
                            let _ = stop_rx.await;
                        });
                    }
                    Err(e) => {
                        let _ = handle_tx.send(Err(e));
                    }
                }
            })
            .map_err(|e| RecorderError::io("starting the recorder's ingest thread".into(), e))?;
        let handle = handle_rx
            .recv()
            .map_err(|_| RecorderError::Internal("the ingest thread ended at start".into()))?
            .map_err(|e| RecorderError::io("starting the recorder's ingest runtime".into(), e))?;
        Ok(IngestRuntime {
            handle,
            _stop: stop_tx,
        })
    }
}

/// The ingest tasks of one camera: its main stream and, when configured,
/// its sub-stream.
struct CameraTasks {
    camera: porchlight_store::Camera,
    stop: watch::Sender<bool>,
    handles: Vec<JoinHandle<()>>,
}

/// Keeps one task per enabled camera stream, publishes statuses, runs
/// retention.
#[allow(clippy::too_many_arguments)]
async fn supervise(
    ingest: IngestRuntime,
    store: Store,
    clock: SharedClock,
    dir: PathBuf,
    opts: RecorderOptions,
    status: Arc<StatusBoard>,
    live: Arc<LiveHub>,
    batcher: Arc<readbatch::ReadBatcher>,
    recipient_changes: recipients::RecipientChanges,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut tasks: HashMap<i64, CameraTasks> = HashMap::new();
    let mut tick = tokio::time::interval(opts.housekeeping_interval);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => break,
        }
        match store.cameras().await {
            Err(e) => tracing::warn!("reading cameras failed: {e}"),
            Ok(cams) => {
                // Alarm modes and the privacy switch (issue 6): a camera
                // whose policy in the current mode says "no recording" is
                // not recorded (nor streamed live); it comes back on a later
                // tick when the mode or switch changes. Unreadable: record.
                // (One read for all cameras.)
                let paused: std::collections::HashSet<i64> = match store.camera_policies().await {
                    Ok(p) => p
                        .into_iter()
                        .filter(|(_, p)| !p.record)
                        .map(|(id, _)| id)
                        .collect(),
                    Err(e) => {
                        tracing::warn!("reading the cameras' mode policies failed: {e}; recording");
                        Default::default()
                    }
                };
                // Stop tasks of cameras removed, disabled, paused or changed.
                let wanted: HashMap<i64, &porchlight_store::Camera> = cams
                    .iter()
                    .filter(|c| c.enabled && !paused.contains(&c.id))
                    .map(|c| (c.id, c))
                    .collect();
                let stale: Vec<i64> = tasks
                    .iter()
                    .filter(|(id, t)| {
                        wanted.get(id).is_none_or(|c| **c != t.camera)
                            || t.handles.iter().any(|h| h.is_finished())
                    })
                    .map(|(id, _)| *id)
                    .collect();
                for id in stale {
                    if let Some(t) = tasks.remove(&id) {
                        let _ = t.stop.send(true);
                        for h in t.handles {
                            let _ = h.await;
                        }
                        status.forget(id);
                        live.set_has_sub(id, false);
                    }
                }
                for (id, cam) in wanted {
                    if tasks.contains_key(&id) {
                        continue;
                    }
                    let (stop_tx, stop_rx) = watch::channel(false);
                    let mut kinds = vec![StreamKind::Main];
                    if cam.sub_url.is_some() {
                        kinds.push(StreamKind::Sub);
                    }
                    live.set_has_sub(id, cam.sub_url.is_some());
                    let handles = kinds
                        .into_iter()
                        .map(|kind| {
                            let task = ingest::CameraTask {
                                store: store.clone(),
                                clock: clock.clone(),
                                recordings_dir: dir.clone(),
                                camera: cam.clone(),
                                kind,
                                opts: opts.writer.clone(),
                                status: status.clone(),
                                live: live.clone(),
                                batcher: batcher.clone(),
                                recipient_changes: recipient_changes.clone(),
                                shutdown: stop_rx.clone(),
                            };
                            ingest.handle.spawn(task.run())
                        })
                        .collect();
                    tracing::info!(camera = %cam.name, sub_stream = cam.sub_url.is_some(), "recording");
                    tasks.insert(
                        id,
                        CameraTasks {
                            camera: cam.clone(),
                            stop: stop_tx,
                            handles,
                        },
                    );
                }
            }
        }
        status.publish(&store, clock.now()).await;
        let free_dir = dir.clone();
        let free = move || retention::free_bytes(&free_dir);
        if let Err(e) =
            retention::enforce(&store, &dir, opts.min_free_bytes, &free, clock.now()).await
        {
            tracing::warn!("retention pass failed: {e}");
        }
    }
    for (_, t) in tasks {
        let _ = t.stop.send(true);
        for h in t.handles {
            let _ = h.await;
        }
    }
}
