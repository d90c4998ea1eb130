//! Restoring from a destination, on any machine, with no hub folder: a
//! member's user name and password (or recovery code) open the key
//! bundle; the key opens the descriptions and event copies it was sealed
//! to; the segments are rebuilt from their parts, checked record by
//! record, and joined into a plain MP4 by the same planner the hub's
//! export uses ([`porchlight_recorder::export::plan_recordings`]).
//!
//! Damage is reported, not fatal: a missing part ends its segment where
//! the gap starts, an altered record ends it before that record, and a
//! description or event copy that does not open is skipped — each named in
//! [`Restored::problems`] — while everything else still restores.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use futures_util::{stream, StreamExt, TryStreamExt};
use porchlight_media::segment::{self, SegmentError, SegmentReader};
use porchlight_recorder::export::{plan_recordings, Export, PlannedRecording};
use porchlight_vault::keys::MemberKey;

use crate::bundle::{KeyBundle, Secret};
use crate::catalog::{self, EventCopy, SegmentDescription, Unopened};
use crate::dest::Destination;
use crate::{layout, BackupError, Result};

/// At most this many bundles are tried (Argon2id costs about a second
/// each); newer first.
const MAX_BUNDLE_TRIES: usize = 8;
/// Concurrent requests while reading the catalog.
const FETCHES: usize = 16;

/// `username`'s key from the newest key bundle that lists them and opens
/// with `secret`.
pub async fn unlock(dest: &Destination, username: &str, secret: &Secret) -> Result<MemberKey> {
    let mut names: Vec<String> = dest
        .list(layout::BUNDLES)
        .await?
        .into_iter()
        .map(|l| l.name)
        .collect();
    if names.is_empty() {
        return Err(BackupError::Unlock(format!(
            "{} holds no household key bundle: it is not a Porchlight backup, or nothing was stored yet",
            dest.url()
        )));
    }
    names.sort_unstable_by(|a, b| b.cmp(a));
    let mut tried: Vec<(String, String)> = Vec::new();
    let mut last_err = None;
    let mut listed = false;
    for name in names {
        let bytes = dest.get(&name).await?;
        let bundle = match KeyBundle::parse(&bytes) {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!("skipping the key bundle {name}: {e}");
                continue;
            }
        };
        if !bundle.has(username) {
            continue;
        }
        listed = true;
        // The same wrapped key in an older bundle: no point paying again.
        let (recipient, blob) = bundle
            .member(username)
            .map(|m| (m.recipient.clone(), m.by_password.clone() + &m.by_recovery))
            .unwrap_or_default();
        if tried.iter().any(|t| t.0 == recipient && t.1 == blob) {
            continue;
        }
        if tried.len() >= MAX_BUNDLE_TRIES {
            break;
        }
        tried.push((recipient, blob));
        let b = bundle.clone();
        let (user, sec) = (username.to_owned(), secret.clone());
        match tokio::task::spawn_blocking(move || b.unlock(&user, &sec))
            .await
            .map_err(|e| BackupError::Other(e.to_string()))?
        {
            Ok(key) => return Ok(key),
            Err(e) => last_err = Some(e),
        }
    }
    Err(match (listed, last_err) {
        (false, _) => BackupError::Unlock(format!(
            "`{username}` has no household key in the backup at {}",
            dest.url()
        )),
        (true, Some(e)) => e,
        (true, None) => BackupError::Unlock(format!("no key bundle opens for `{username}`")),
    })
}

/// What a member's key opens at a destination.
#[derive(Debug, Default)]
pub struct Catalog {
    /// (object id, description), by camera and start.
    pub segments: Vec<(String, SegmentDescription)>,
    /// Each event's newest copy that opens.
    pub events: Vec<EventCopy>,
    /// Sealed to other members only.
    pub not_for_this_key: usize,
    /// Objects that should have opened and did not, named.
    pub problems: Vec<String>,
}

/// Reads every description and event copy `key` opens.
pub async fn catalog(dest: &Destination, key: &MemberKey) -> Result<Catalog> {
    let mut cat = Catalog::default();
    let descs: Vec<String> = dest
        .list(layout::DESCRIPTIONS)
        .await?
        .into_iter()
        .map(|l| l.name)
        .collect();
    let fetched: Vec<(String, bytes::Bytes)> =
        stream::iter(descs.into_iter().map(|name| async move {
            let b = dest.get(&name).await?;
            Ok::<_, BackupError>((name, b))
        }))
        .buffer_unordered(FETCHES)
        .try_collect()
        .await?;
    for (name, bytes) in fetched {
        let Some(id) = layout::parse_description(&name) else {
            cat.problems
                .push(format!("{name}: not a name this backup writes; skipped"));
            continue;
        };
        match catalog::open::<SegmentDescription>(&bytes, key) {
            Ok(d) if d.format == catalog::SEGMENT_FORMAT => cat.segments.push((id, d)),
            Ok(d) => cat
                .problems
                .push(format!("{name}: unknown format `{}`; skipped", d.format)),
            Err(Unopened::NotForThisKey) => cat.not_for_this_key += 1,
            Err(Unopened::Damaged(e)) => cat.problems.push(format!(
                "{name}: damaged or altered ({e}); its segment is skipped"
            )),
        }
    }
    cat.segments.sort_by(|a, b| {
        (&a.1.camera, a.1.start_us, a.1.recording_id).cmp(&(
            &b.1.camera,
            b.1.start_us,
            b.1.recording_id,
        ))
    });

    // Events: the newest version of each that opens.
    let mut versions: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for l in dest.list(layout::EVENTS).await? {
        if let Some((id, v)) = layout::parse_event(&l.name) {
            versions.entry(id).or_default().push(v);
        }
    }
    for (id, mut vs) in versions {
        vs.sort_unstable_by(|a, b| b.cmp(a));
        for v in vs {
            let name = layout::event_name(&id, v);
            let bytes = dest.get(&name).await?;
            match catalog::open::<EventCopy>(&bytes, key) {
                Ok(e) if e.format == catalog::EVENT_FORMAT => {
                    cat.events.push(e);
                    break;
                }
                Ok(_) => {}
                Err(Unopened::NotForThisKey) => {
                    cat.not_for_this_key += 1;
                    break;
                }
                Err(Unopened::Damaged(e)) => cat.problems.push(format!(
                    "{name}: damaged or altered ({e}); trying an older copy"
                )),
            }
        }
    }
    cat.events.sort_by_key(|e| (e.start_us, e.event_id));
    Ok(cat)
}

/// An event as `backup events` shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct EventSummary {
    pub id: i64,
    pub camera: Option<String>,
    /// person, vehicle, … (`sealed` when the details do not open with this
    /// key, `unknown` when none were kept).
    pub kind: String,
    pub start: jiff::Timestamp,
    pub end: Option<jiff::Timestamp>,
}

impl Catalog {
    /// The events, details opened with `key`.
    pub fn event_summaries(&self, key: &MemberKey) -> Vec<EventSummary> {
        self.events
            .iter()
            .map(|e| {
                let kind = match e.sealed_details() {
                    Ok(s) if s.is_empty() => "unknown".to_owned(),
                    Ok(s) => porchlight_vault::details::open(&s, key)
                        .map(|d| d.kind)
                        .unwrap_or_else(|_| "sealed".to_owned()),
                    Err(_) => "damaged".to_owned(),
                };
                EventSummary {
                    id: e.event_id,
                    camera: e.camera.clone(),
                    kind,
                    start: jiff::Timestamp::from_microsecond(e.start_us)
                        .unwrap_or(jiff::Timestamp::UNIX_EPOCH),
                    end: e
                        .end_us
                        .and_then(|u| jiff::Timestamp::from_microsecond(u).ok()),
                }
            })
            .collect()
    }

    /// Event `id`.
    pub fn event(&self, id: i64) -> Option<&EventCopy> {
        self.events.iter().find(|e| e.event_id == id)
    }

    /// Camera names with footage here.
    pub fn cameras(&self) -> Vec<String> {
        let mut c: Vec<String> = self.segments.iter().map(|s| s.1.camera.clone()).collect();
        c.dedup();
        c
    }
}

/// A planned restore.
pub struct Restored {
    pub export: Export,
    /// What could not be restored, by object.
    pub problems: Vec<String>,
    /// Segments rebuilt.
    pub segments: usize,
}

/// Segments start at most this long before the range they are looked up
/// for (a segment is about a minute; a long one up to a few).
const LOOK_BACK_US: i64 = 30 * 60 * 1_000_000;

/// Rebuilds `camera`'s segments over [from, to) in `work` (a private
/// temporary folder: the rebuilt files are ciphertext, as at the
/// destination) and plans the MP4.
pub async fn restore(
    dest: &Destination,
    cat: &Catalog,
    key: Arc<MemberKey>,
    camera: &str,
    from: jiff::Timestamp,
    to: jiff::Timestamp,
    work: &Path,
) -> Result<Restored> {
    let (from_us, to_us) = (from.as_microsecond(), to.as_microsecond());
    let wanted: Vec<&(String, SegmentDescription)> = cat
        .segments
        .iter()
        .filter(|(_, d)| {
            d.camera == camera
                && d.stream == "main"
                && d.start_us < to_us
                && d.start_us >= from_us - LOOK_BACK_US
        })
        .collect();
    if wanted.is_empty() {
        return Err(BackupError::Damaged(format!(
            "the backup holds no footage of camera `{camera}` between {from} and {to} that this key opens{}",
            if cat.cameras().is_empty() {
                String::new()
            } else {
                format!(" (cameras with footage: {})", cat.cameras().join(", "))
            }
        )));
    }
    let mut problems = Vec::new();
    let mut recs: Vec<(PlannedRecording, &SegmentDescription)> = Vec::new();
    for (id, d) in wanted {
        let path = work.join(format!("{id}.seg"));
        let label = format!(
            "the segment of camera `{}` from {}",
            d.camera,
            jiff::Timestamp::from_microsecond(d.start_us).unwrap_or(jiff::Timestamp::UNIX_EPOCH)
        );
        let parts = match assemble(dest, id, &path, &label, &mut problems).await {
            Ok(p) => p,
            Err(e) => {
                problems.push(format!("{label}: {e}"));
                continue;
            }
        };
        let key2 = key.clone();
        let checked = tokio::task::spawn_blocking({
            let path = path.clone();
            let label = label.clone();
            move || check_records(&path, &key2, &label, &parts)
        })
        .await
        .map_err(|e| BackupError::Other(e.to_string()))?;
        match checked {
            Ok((frames, mut found)) => {
                problems.append(&mut found);
                if frames.is_empty() {
                    continue;
                }
                let start = jiff::Timestamp::from_microsecond(d.start_us)
                    .map_err(|e| BackupError::Damaged(format!("{label}: {e}")))?;
                recs.push((
                    PlannedRecording {
                        id: d.recording_id,
                        start,
                        frames,
                        path,
                    },
                    d,
                ));
            }
            Err(e) => problems.push(format!("{label}: {e}")),
        }
    }
    // Keep those that reach into the range; one sample entry per MP4.
    recs.retain(|(r, _)| {
        let dur: u64 = r.frames.iter().map(|f| u64::from(f.duration_90k)).sum();
        r.start.as_microsecond() + (dur * 100 / 9) as i64 > from_us
    });
    let Some(first) = recs.first().map(|r| r.1.clone()) else {
        return Err(BackupError::Damaged(format!(
            "nothing of camera `{camera}` between {from} and {to} could be restored{}",
            if problems.is_empty() {
                String::new()
            } else {
                format!(":\n  {}", problems.join("\n  "))
            }
        )));
    };
    let same = |d: &SegmentDescription| {
        d.codec == first.codec
            && d.width == first.width
            && d.height == first.height
            && d.config == first.config
    };
    let n = recs.len();
    let planned: Vec<PlannedRecording> = recs
        .into_iter()
        .take_while(|(_, d)| same(d))
        .map(|(r, _)| r)
        .collect();
    if planned.len() < n {
        problems.push(format!(
            "the camera's codec settings changed after {} segment(s); the MP4 ends there (restore the rest with a later --from)",
            planned.len()
        ));
    }
    let segments = planned.len();
    let entry = first.sample_entry()?;
    let export = plan_recordings(camera, &entry, planned, from, to, key)
        .map_err(|e| BackupError::Damaged(e.to_string()))?;
    Ok(Restored {
        export,
        problems,
        segments,
    })
}

/// One part's place in a rebuilt file.
#[derive(Debug, Clone)]
struct Part {
    name: String,
    from: u64,
    to: u64,
}

/// Writes segment `id`'s parts into `path`, each byte once, up to the
/// first gap (named in `problems`). Returns the parts used.
async fn assemble(
    dest: &Destination,
    id: &str,
    path: &Path,
    label: &str,
    problems: &mut Vec<String>,
) -> Result<Vec<Part>> {
    let mut parts: Vec<Part> = dest
        .list(&layout::parts_prefix(id))
        .await?
        .into_iter()
        .filter_map(|l| {
            layout::parse_part(&l.name).map(|(from, to)| Part {
                name: l.name,
                from,
                to,
            })
        })
        .collect();
    parts.sort_by(|a, b| a.from.cmp(&b.from).then(b.to.cmp(&a.to)));
    let mut file = std::fs::File::create(path)?;
    let mut have = 0u64;
    let mut used = Vec::new();
    for p in parts {
        if p.to <= have {
            continue; // covered by a longer part
        }
        if p.from > have {
            problems.push(format!(
                "{label}: bytes {have}–{} are missing at the destination (no object {}{have:012x}-…); restored up to there",
                p.from,
                layout::parts_prefix(id)
            ));
            break;
        }
        let bytes = dest.get(&p.name).await?;
        if bytes.len() as u64 != p.to - p.from {
            problems.push(format!(
                "{}: {} bytes where its name says {}; {label} is restored up to offset {have}",
                p.name,
                bytes.len(),
                p.to - p.from
            ));
            break;
        }
        file.write_all(&bytes[(have - p.from) as usize..])?;
        have = p.to;
        used.push(p);
    }
    file.sync_all()?;
    if have == 0 {
        return Err(BackupError::Damaged(format!(
            "no part of it is at the destination ({})",
            layout::parts_prefix(id)
        )));
    }
    Ok(used)
}

/// Opens every record of the rebuilt file with `key`; cuts the file
/// before the first that fails and names the part it came from. Returns
/// the frames kept.
fn check_records(
    path: &Path,
    key: &MemberKey,
    label: &str,
    parts: &[Part],
) -> Result<(Vec<porchlight_media::FrameInfo>, Vec<String>)> {
    let mut problems = Vec::new();
    let part_of = |offset: u64| {
        parts
            .iter()
            .find(|p| p.from <= offset && offset < p.to)
            .map(|p| p.name.clone())
            .unwrap_or_else(|| "?".into())
    };
    let file = std::fs::File::open(path)?;
    let mut reader = match SegmentReader::open(file, key) {
        Ok(r) => r,
        Err(SegmentError::NotARecipient) => {
            return Err(BackupError::Unlock(
                "this key is not among the segment's recipients".into(),
            ))
        }
        Err(e) => {
            return Err(BackupError::Damaged(format!(
                "its header ({}) does not open: {e}",
                part_of(0)
            )))
        }
    };
    let scan = reader
        .scan()
        .map_err(|e| BackupError::Damaged(format!("{} : {e}", part_of(0))))?;
    if let Some(why) = &scan.problem {
        problems.push(format!(
            "{label}: {} holds an incomplete or invalid record ({why}); the complete records before it are restored",
            part_of(scan.valid_len)
        ));
        let f = std::fs::OpenOptions::new().write(true).open(path)?;
        f.set_len(scan.valid_len)?;
    }
    let mut keep_frames = scan.frames.len();
    for rec in &scan.records {
        if let Err(e) = reader.read_record(rec) {
            problems.push(format!(
                "{label}: record {} in {} was altered or damaged ({e}); the segment is restored up to it",
                rec.seq,
                part_of(rec.offset)
            ));
            keep_frames = rec.frames.start;
            let f = std::fs::OpenOptions::new().write(true).open(path)?;
            f.set_len(rec.offset)?;
            break;
        }
    }
    let mut frames = scan.frames;
    frames.truncate(keep_frames);
    // The file as cut must still be a valid segment.
    if keep_frames > 0 {
        let rescanned =
            segment::scan_file(path).map_err(|e| BackupError::Damaged(format!("{label}: {e}")))?;
        frames.truncate(rescanned.frames.len());
    }
    Ok((frames, problems))
}
