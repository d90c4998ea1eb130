//! Who a camera's new segments are encrypted to, and how a change of that
//! reaches a running writer (design/keys.md, "When a change of recipients
//! takes effect").
//!
//! A segment file is encrypted to the camera's recipients *as the store
//! has them when the file opens*: [`camera_recipients`] is read at every
//! segment start, after the segment's row is inserted, so a segment whose
//! row was inserted after a grant, revoke, disable, enable or removal
//! committed has the new list.
//!
//! A change must also end the segment running when it happens, or a
//! revoked member would keep receiving up to a segment's worth (a minute)
//! of new footage. The store keeps a counter that triggers bump in the
//! same transaction as any such change, whichever process makes it (the
//! web app here, `porchlight user …` in another): [`poll`] reads that one
//! row every second into a shared [`RecipientChanges`]; each writer
//! compares it with the value it saw when its segment opened **at key
//! frames only** (one atomic load; nothing per frame, no query on the
//! media path). When it moved, the writer reads the camera's list once;
//! if the list differs from the segment's, the segment ends at that key
//! frame and the next one opens with the new list. So a change takes
//! effect within about a second plus one GOP; a change that does not
//! touch this camera costs it one small query and no rotation.
//!
//! Invariant: a segment never has an empty recipient list (nobody could
//! ever open it): an empty list is [`RecorderError::NoRecipients`], which
//! ends the run; the camera task reconnects and waits for an owner.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use porchlight_store::Store;
use tokio::sync::watch;

use crate::RecorderError;

/// How often [`poll`] reads the store's change counter by default.
pub const DEFAULT_POLL: Duration = Duration::from_secs(1);

/// The last value of the store's recipient change counter
/// ([`Store::recipient_changes`]) that [`poll`] saw. Cheap to clone and
/// to read (one atomic load).
#[derive(Clone, Debug, Default)]
pub struct RecipientChanges(Arc<AtomicI64>);

impl RecipientChanges {
    pub fn new(initial: i64) -> RecipientChanges {
        RecipientChanges(Arc::new(AtomicI64::new(initial)))
    }

    /// The counter as last seen.
    pub fn current(&self) -> i64 {
        self.0.load(Ordering::Acquire)
    }

    /// Records a newer value of the counter.
    pub fn set(&self, n: i64) {
        self.0.store(n, Ordering::Release);
    }
}

/// Where a [`crate::writer::StreamWriter`] gets each segment's recipients.
#[derive(Clone, Debug)]
pub enum Recipients {
    /// This list for every segment (back-filled demo footage, tests).
    Fixed(Vec<age::x25519::Recipient>),
    /// The camera's recipients as the store has them, read again as each
    /// segment opens and whenever `changes` moves (the recorder).
    Camera { changes: RecipientChanges },
}

impl From<Vec<age::x25519::Recipient>> for Recipients {
    fn from(list: Vec<age::x25519::Recipient>) -> Recipients {
        Recipients::Fixed(list)
    }
}

/// The public keys a new segment of `camera_id` is encrypted to: every
/// enabled owner and every enabled member granted the camera, in user
/// order. Empty is [`RecorderError::NoRecipients`].
pub async fn camera_recipients(
    store: &Store,
    camera_id: i64,
) -> Result<Vec<age::x25519::Recipient>, RecorderError> {
    let keys = store.camera_recipients(camera_id).await?;
    let mut out = Vec::with_capacity(keys.len());
    for k in keys {
        out.push(k.parse::<age::x25519::Recipient>().map_err(|e| {
            RecorderError::Internal(format!("stored public key `{k}` is unreadable: {e}"))
        })?);
    }
    if out.is_empty() {
        return Err(RecorderError::NoRecipients);
    }
    Ok(out)
}

/// Reads the store's change counter every `every` into `changes` until
/// shutdown. A failed read is logged and retried at the next tick (the
/// segments still pick up the change when they rotate on their own).
pub(crate) async fn poll(
    store: Store,
    changes: RecipientChanges,
    every: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => return,
        }
        match store.recipient_changes().await {
            Ok(n) if n != changes.current() => {
                tracing::info!("who may see some cameras changed; new segments follow");
                changes.set(n);
            }
            Ok(_) => {}
            Err(e) => tracing::warn!("reading the recipient change counter failed: {e}"),
        }
    }
}
