//! The hub's backup task: one loop per destination that ships footage as
//! it is written.
//!
//! Every `poll` (½ s) a destination's loop:
//!
//! 1. sends a new key bundle when a member's wrapped key changed (checked
//!    every 10 s);
//! 2. for every marked event (design/backup.md, "What goes") queues the
//!    recordings of its camera — all cameras for an alarm — from `pre_roll`
//!    before its start to `post_roll` after its end, the open segment
//!    included, and stores a sealed copy of the event (again when it ends);
//! 3. in `continuous` mode queues every other recording of the chosen
//!    cameras, after the events' (lower priority);
//! 4. for each queued segment, most urgent first, finds how far its file's
//!    whole records reach ([`whole_records_end`], a few small reads) and
//!    stores the new bytes as one more part — the description first, once.
//!
//! So a record reaches the destination within about `poll` plus one
//! upload of its being written. Progress is committed in SQLite only after
//! the destination acknowledged the part: a crash repeats at most one part
//! (under a new name covering the same bytes; restore takes each byte
//! once). A destination that fails is retried with backoff (1 s doubling
//! to 60 s), its error kept for `backup status`; nothing here touches the
//! recorder, whose runtime is its own.
//!
//! [`whole_records_end`]: porchlight_media::segment::whole_records_end

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::Bytes;
use porchlight_store::{BackupDestination, Store};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::catalog::{self, EventCopy, SegmentDescription};
use crate::dest::{DestOptions, Destination};
use crate::{bundle, layout, BackupError, Result};

/// How the uploader paces itself.
#[derive(Debug, Clone)]
pub struct UploaderOptions {
    /// How often each destination looks for new records.
    pub poll: Duration,
    /// Footage kept from before an event's start.
    pub pre_roll: Duration,
    /// Footage kept after an event's end.
    pub post_roll: Duration,
    /// How often the set of destinations is re-read.
    pub rescan: Duration,
}

impl Default for UploaderOptions {
    fn default() -> Self {
        UploaderOptions {
            poll: Duration::from_millis(500),
            pre_roll: Duration::from_secs(10),
            post_roll: Duration::from_secs(10),
            rescan: Duration::from_secs(2),
        }
    }
}

/// The running uploader.
pub struct Uploader {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Uploader {
    /// Starts the uploader over the store's destinations (re-read every
    /// `rescan`, so `porchlight backup add` on a running hub takes effect
    /// within seconds).
    pub fn start(store: Store, recordings_dir: PathBuf, opts: UploaderOptions) -> Uploader {
        let (stop, stop_rx) = watch::channel(false);
        let task = tokio::spawn(supervise(store, recordings_dir, opts, stop_rx));
        Uploader { stop, task }
    }

    /// Stops every destination's loop (an upload in flight is abandoned;
    /// its part is sent again next time).
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

async fn supervise(
    store: Store,
    dir: PathBuf,
    opts: UploaderOptions,
    mut stop: watch::Receiver<bool>,
) {
    let mut running: HashMap<i64, (watch::Sender<bool>, JoinHandle<()>)> = HashMap::new();
    loop {
        match store.backup_destinations().await {
            Ok(dests) => {
                for d in &dests {
                    if let std::collections::hash_map::Entry::Vacant(slot) = running.entry(d.id) {
                        tracing::info!(name = %d.name, url = %d.url, "backup: sending to this destination");
                        let (tx, rx) = watch::channel(false);
                        let task = tokio::spawn(run_destination(
                            store.clone(),
                            dir.clone(),
                            opts.clone(),
                            d.id,
                            rx,
                        ));
                        slot.insert((tx, task));
                    }
                }
                running.retain(|id, (tx, _)| {
                    let keep = dests.iter().any(|d| d.id == *id);
                    if !keep {
                        let _ = tx.send(true);
                    }
                    keep
                });
            }
            Err(e) => tracing::warn!("backup: cannot read the destinations: {e}"),
        }
        tokio::select! {
            _ = tokio::time::sleep(opts.rescan) => {}
            _ = stop.changed() => break,
        }
    }
    for (_, (tx, task)) in running {
        let _ = tx.send(true);
        let _ = task.await;
    }
}

/// A destination's loop state.
struct DestState {
    dest: Option<(String, String, Destination)>,
    backoff: Duration,
    retry_at: Instant,
    bundle_checked: Option<Instant>,
    /// The rate cap's clock: when the link is free again.
    link_free_at: Instant,
    retention_checked: Option<Instant>,
    /// Per segment being sent: its stored prefix's length on the
    /// recording's timeline (90 kHz), for the log line bench/backup.sh
    /// reads.
    through_90k: HashMap<i64, u64>,
}

async fn run_destination(
    store: Store,
    dir: PathBuf,
    opts: UploaderOptions,
    dest_id: i64,
    mut stop: watch::Receiver<bool>,
) {
    let mut st = DestState {
        dest: None,
        backoff: Duration::ZERO,
        retry_at: Instant::now(),
        bundle_checked: None,
        link_free_at: Instant::now(),
        retention_checked: None,
        through_90k: HashMap::new(),
    };
    loop {
        if *stop.borrow() {
            break;
        }
        if Instant::now() >= st.retry_at {
            let row = match store.backup_destination(dest_id).await {
                Ok(row) => row,
                Err(e) => {
                    tracing::warn!("backup: cannot read destination #{dest_id}: {e}");
                    None
                }
            };
            let Some(row) = row else {
                // Removed; the supervisor stops us.
                tokio::select! {
                    _ = tokio::time::sleep(opts.rescan) => {}
                    _ = stop.changed() => {}
                }
                continue;
            };
            let outcome = tokio::select! {
                r = pass(&store, &dir, &opts, &row, &mut st) => r,
                _ = stop.changed() => break,
            };
            match outcome {
                Ok(()) => {
                    if !st.backoff.is_zero() {
                        tracing::info!(name = %row.name, "backup: the destination is reachable again");
                    }
                    st.backoff = Duration::ZERO;
                }
                Err(e) => {
                    st.backoff =
                        (st.backoff * 2).clamp(Duration::from_secs(1), Duration::from_secs(60));
                    st.retry_at = Instant::now() + st.backoff;
                    tracing::warn!(name = %row.name, "backup: {e}; trying again in {} s", st.backoff.as_secs());
                    if let Err(e2) = store
                        .note_backup_error(dest_id, &e.to_string(), jiff::Timestamp::now())
                        .await
                    {
                        tracing::warn!("backup: cannot record the error: {e2}");
                    }
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(opts.poll) => {}
            _ = stop.changed() => break,
        }
    }
}

fn destination<'a>(row: &BackupDestination, st: &'a mut DestState) -> Result<&'a Destination> {
    let fresh = match &st.dest {
        Some((url, options, _)) => url != &row.url || options != &row.options,
        None => true,
    };
    if fresh {
        let opts = DestOptions::from_json(&row.options)?;
        let d = Destination::open(&row.url, &opts)?;
        st.dest = Some((row.url.clone(), row.options.clone(), d));
    }
    Ok(&st.dest.as_ref().expect("just set").2)
}

/// One pass over one destination.
async fn pass(
    store: &Store,
    dir: &Path,
    opts: &UploaderOptions,
    row: &BackupDestination,
    st: &mut DestState,
) -> Result<()> {
    let dest = destination(row, st)?.clone();
    let now = jiff::Timestamp::now();

    // 1. The key bundle, when a wrapped key changed.
    if st
        .bundle_checked
        .is_none_or(|t| t.elapsed() >= Duration::from_secs(10))
    {
        let (b, digest) = bundle::current(store).await?;
        if !b.members.is_empty() && row.bundle_digest.as_deref() != Some(&digest[..]) {
            dest.put(&layout::bundle_name(now), Bytes::from(b.to_bytes()))
                .await?;
            store.set_backup_bundle_digest(row.id, &digest).await?;
            tracing::info!(name = %row.name, members = b.members.len(), "backup: stored the household's key bundle");
        }
        st.bundle_checked = Some(Instant::now());
    }

    // 2. Marked events: queue their footage, store their copies.
    let pre = jiff::SignedDuration::try_from(opts.pre_roll).unwrap_or_default();
    let post = jiff::SignedDuration::try_from(opts.post_roll).unwrap_or_default();
    let cameras = store.cameras().await?;
    for ev in store.backup_events_pending(row.id, row.created_at).await? {
        let cams: Vec<&porchlight_store::Camera> = cameras
            .iter()
            .filter(|c| row.covers(c.id) && ev.camera_id.is_none_or(|e| e == c.id))
            .collect();
        let from = ev.start - pre;
        let to = match ev.end {
            Some(end) => end + post,
            None => now + jiff::SignedDuration::from_secs(1),
        };
        for c in &cams {
            for r in store.recordings_between(c.id, "main", from, to).await? {
                store
                    .queue_backup_segment(row.id, r.id, &layout::new_object_id(), 0, now)
                    .await?;
            }
        }
        let object_id = ev.object_id.clone().unwrap_or_else(layout::new_object_id);
        let (mut versions, mut sent_end) = (ev.versions, ev.sent_end);
        let in_scope = !cams.is_empty();
        if in_scope && (versions == 0 || (ev.end.is_some() && !sent_end)) {
            let to =
                porchlight_vault::details::recipients_for(store, ev.camera_id, &ev.source).await?;
            if !to.is_empty() {
                let copy = EventCopy {
                    format: catalog::EVENT_FORMAT.into(),
                    event_id: ev.event_id,
                    camera_id: ev.camera_id,
                    camera: ev
                        .camera_id
                        .and_then(|id| cameras.iter().find(|c| c.id == id))
                        .map(|c| c.name.clone()),
                    source: ev.source.clone(),
                    start_us: ev.start.as_microsecond(),
                    end_us: ev.end.map(|e| e.as_microsecond()),
                    details: EventCopy::encode_details(&ev.sealed),
                };
                let sealed = catalog::seal(&copy, &to)?;
                dest.put(
                    &layout::event_name(&object_id, versions),
                    Bytes::from(sealed),
                )
                .await?;
            }
            versions += 1;
            sent_end = ev.end.is_some();
        }
        // Done once the window has closed: every recording it needs is
        // queued (the segments' own progress is tracked apart).
        let done = !in_scope
            || (sent_end
                && ev
                    .end
                    .is_some_and(|e| now > e + post + jiff::SignedDuration::from_secs(5)));
        if done || versions != ev.versions || ev.object_id.is_none() {
            store
                .set_backup_event_copy(row.id, ev.event_id, &object_id, versions, sent_end, done)
                .await?;
        }
    }

    // 3. Continuous mode: everything else of the chosen cameras.
    if row.mode == "continuous" {
        for id in store
            .recordings_not_backed_up(row.id, row.cameras.as_deref(), 100)
            .await?
        {
            store
                .queue_backup_segment(row.id, id, &layout::new_object_id(), 1, now)
                .await?;
        }
    }

    // 4. Retention there, only where the household allowed deleting.
    let limits = (row.retain_days.is_some() || row.retain_bytes.is_some()) && row.may_delete;
    if limits
        && st
            .retention_checked
            .is_none_or(|t| t.elapsed() >= RETENTION_EVERY)
    {
        let cutoff = row
            .retain_days
            .map(|days| now - jiff::SignedDuration::from_hours(24 * days));
        // Copies still being sent are never touched.
        let sending: HashSet<String> = store
            .pending_backup_segments(row.id, i64::MAX)
            .await?
            .into_iter()
            .map(|s| s.object_id)
            .collect();
        let n = expire(&dest, cutoff, row.retain_bytes, &sending).await?;
        if n > 0 {
            tracing::info!(name = %row.name, objects = n, "backup: deleted copies past the retention limits there");
        }
        st.retention_checked = Some(Instant::now());
    }

    // 5. Ship what the queued segments' files hold beyond their copies.
    let started = Instant::now();
    for seg in store.pending_backup_segments(row.id, 32).await? {
        // A long backlog (continuous mode, an outage) yields every couple
        // of seconds, so a new event's footage goes next.
        if seg.priority > 0 && started.elapsed() > Duration::from_secs(2) {
            break;
        }
        let Some(rec) = store.recording(seg.recording_id).await? else {
            // Deleted at home (retention) before it could be sent.
            store
                .set_backup_progress(
                    row.id,
                    seg.recording_id,
                    seg.described,
                    seg.uploaded_to,
                    true,
                )
                .await?;
            continue;
        };
        let path = dir.join(&rec.file_name);
        let from = seg.uploaded_to as u64;
        let known = st.through_90k.get(&seg.recording_id).copied();
        let found = tokio::task::spawn_blocking({
            let path = path.clone();
            move || -> std::io::Result<Option<Found>> {
                use porchlight_media::segment::{duration_between, whole_records_end};
                use std::os::unix::fs::FileExt;
                let file = match std::fs::File::open(&path) {
                    Ok(f) => f,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                    Err(e) => return Err(e),
                };
                let len = file.metadata()?.len();
                let other = |e: porchlight_media::segment::SegmentError| {
                    std::io::Error::other(e.to_string())
                };
                let end = whole_records_end(&file, from, len).map_err(other)?;
                let mut bytes = vec![0u8; (end - from) as usize];
                file.read_exact_at(&mut bytes, from)?;
                // Where the stored prefix will end on the timeline.
                let base = match known {
                    Some(b) => b,
                    None if from == 0 => 0,
                    None => duration_between(&file, 0, from).map_err(other)?,
                };
                let through_90k = if end > from {
                    base + duration_between(&file, from, end).map_err(other)?
                } else {
                    base
                };
                Ok(Some(Found {
                    end,
                    bytes,
                    through_90k,
                }))
            }
        })
        .await
        .map_err(|e| BackupError::Other(e.to_string()))?
        .map_err(|e| BackupError::Other(format!("reading {}: {e}", path.display())))?;
        let Some(Found {
            end,
            bytes,
            through_90k,
        }) = found
        else {
            tracing::warn!(file = %path.display(), "backup: a queued segment's file is gone");
            store
                .set_backup_progress(
                    row.id,
                    seg.recording_id,
                    seg.described,
                    seg.uploaded_to,
                    true,
                )
                .await?;
            continue;
        };
        // A first part is sent with at least one record, never the header
        // alone, and the description just before it: every stored copy
        // then holds footage.
        let send = end > from && !(from == 0 && through_90k == 0);
        let mut described = seg.described;
        if !described && send {
            let entry = store.sample_entry(rec.sample_entry_id).await?;
            let camera = cameras
                .iter()
                .find(|c| c.id == rec.camera_id)
                .map(|c| c.name.clone())
                .unwrap_or_else(|| format!("camera #{}", rec.camera_id));
            let to: Vec<age::x25519::Recipient> = store
                .camera_recipients(rec.camera_id)
                .await?
                .iter()
                .filter_map(|r| r.parse().ok())
                .collect();
            let desc = SegmentDescription::of(&rec, &camera, &entry);
            dest.put(
                &layout::description_name(&seg.object_id),
                Bytes::from(catalog::seal(&desc, &to)?),
            )
            .await?;
            described = true;
            // Recorded at once: a description is written once, never again.
            store
                .set_backup_progress(row.id, seg.recording_id, true, seg.uploaded_to, false)
                .await?;
        }
        let closed = !rec.open && end >= rec.file_bytes as u64;
        if send {
            let n = bytes.len();
            throttle(row.max_rate_bps, n, &mut st.link_free_at).await;
            dest.put(
                &layout::part_name(&seg.object_id, from, end),
                Bytes::from(bytes),
            )
            .await?;
            store
                .set_backup_progress(row.id, seg.recording_id, described, end as i64, closed)
                .await?;
            store
                .note_backup_upload(row.id, n as i64, jiff::Timestamp::now())
                .await?;
            if closed {
                st.through_90k.remove(&seg.recording_id);
            } else {
                st.through_90k.insert(seg.recording_id, through_90k);
            }
            let through =
                rec.start + jiff::SignedDuration::from_micros((through_90k * 100 / 9) as i64);
            tracing::debug!(
                target: "porchlight_backup::stored",
                dest = %row.name,
                camera = rec.camera_id,
                recording = rec.id,
                bytes = n,
                %through,
                "backup: stored"
            );
        } else if closed || described != seg.described {
            if closed {
                st.through_90k.remove(&seg.recording_id);
            }
            store
                .set_backup_progress(row.id, seg.recording_id, described, seg.uploaded_to, closed)
                .await?;
        }
    }
    Ok(())
}

/// What a queued segment's file holds beyond its copy.
struct Found {
    /// Offset just past its last whole record.
    end: u64,
    /// The bytes from the copy's end to `end`.
    bytes: Vec<u8>,
    /// Where `end` is on the recording's timeline (90 kHz).
    through_90k: u64,
}

/// How often retention looks at a destination that allows deleting.
const RETENTION_EVERY: Duration = Duration::from_secs(3600);

/// Deletes, at a destination that allows it, the segments (parts, then
/// description) stored before `cutoff`, then the oldest segments while
/// all of them together exceed `max_bytes`, then event copies older than
/// `cutoff`. Segments in `sending` are never deleted. Key bundles stay:
/// they are small, and an old copy may need the bundle of its time.
/// Returns how many objects went.
async fn expire(
    dest: &Destination,
    cutoff: Option<jiff::Timestamp>,
    max_bytes: Option<i64>,
    sending: &HashSet<String>,
) -> Result<usize> {
    // Every segment: its description, its parts, its size, its newest write.
    let mut parts: HashMap<String, Vec<crate::dest::Listed>> = HashMap::new();
    for p in dest.list(layout::SEGMENTS).await? {
        if let Some(id) = p
            .name
            .strip_prefix(layout::SEGMENTS)
            .and_then(|r| r.split('/').next())
        {
            parts.entry(id.to_owned()).or_default().push(p);
        }
    }
    let mut segs: Vec<(jiff::Timestamp, String, String, u64)> = Vec::new();
    let mut total = 0u64;
    for d in dest.list(layout::DESCRIPTIONS).await? {
        let Some(id) = layout::parse_description(&d.name) else {
            continue;
        };
        let ps = parts.get(&id).map(Vec::as_slice).unwrap_or_default();
        let size: u64 = ps.iter().map(|p| p.size).sum();
        let newest = ps
            .iter()
            .map(|p| p.modified)
            .max()
            .unwrap_or(d.modified)
            .max(d.modified);
        total += size;
        if !sending.contains(&id) {
            segs.push((newest, id, d.name, size));
        }
    }
    segs.sort();
    let mut n = 0;
    for (newest, id, desc, size) in segs {
        let too_old = cutoff.is_some_and(|c| newest < c);
        let too_big = max_bytes.is_some_and(|m| total > m.max(0) as u64);
        if !(too_old || too_big) {
            continue;
        }
        for p in parts.get(&id).map(Vec::as_slice).unwrap_or_default() {
            dest.delete(&p.name).await?;
            n += 1;
        }
        dest.delete(&desc).await?;
        n += 1;
        total -= size;
    }
    if let Some(cutoff) = cutoff {
        for e in dest.list(layout::EVENTS).await? {
            if layout::parse_event(&e.name).is_some() && e.modified < cutoff {
                dest.delete(&e.name).await?;
                n += 1;
            }
        }
    }
    Ok(n)
}

/// Waits so that uploads average at most `bps` bits per second.
async fn throttle(bps: Option<i64>, bytes: usize, link_free_at: &mut Instant) {
    let Some(bps) = bps.filter(|b| *b > 0) else {
        return;
    };
    let now = Instant::now();
    if *link_free_at > now {
        tokio::time::sleep(*link_free_at - now).await;
    }
    let takes = Duration::from_secs_f64(bytes as f64 * 8.0 / bps as f64);
    *link_free_at = Instant::now().max(*link_free_at) + takes;
}
