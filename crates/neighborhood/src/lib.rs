//! # porchlight-neighborhood
//!
//! The neighborhood server: a separate service with its **own database and
//! its own accounts**, normally run inside the hub's process on its own
//! listener, or alone at neighborhood scale. Residents share posts about
//! safety, pets, wildlife, mutual aid and events with people nearby;
//! verified agencies (fire department, city) post alerts and tips.
//!
//! Invariants this crate keeps (and its tests check):
//!
//! * **Coarse at the source.** A home area is an H3 cell of resolution 8 or
//!   coarser, a post's place resolution 9 or coarser; raw coordinates and
//!   finer cells are refused ([`area`]). A user's home cell is never shown
//!   to anyone else: a post's cell is the one its author chose, or the
//!   home's resolution-7 parent, and never the home cell or a cell inside
//!   it ([`posts`]); others also see a distance in words.
//! * **No footage channel.** Agencies post only `alert`, `safety_tip`,
//!   `information` and `event`, reply only under their own posts, cannot
//!   react, download media or see anything about hubs or cameras (this
//!   server holds nothing about them), and there is no direct messaging.
//!   No route, message or post type exists to request footage.
//! * **Fair posting.** Every post passes [`fairness::check_post`] (race
//!   alone is refused in every category; safety posts must also lead with
//!   behaviour) or is returned for revision; hostile-reading comments get
//!   a kindness reminder before they are posted.
//! * **Moderation is accountable.** Every moderator/admin action is written
//!   to this server's own `audit` table, the affected author gets a notice
//!   and can appeal.
//! * **Two stores, one behaviour**: SQLite or PostgreSQL through one set of
//!   SQL texts ([`db`]).
//! * **Notifications say nothing about place.** A new post goes by Web Push
//!   to the browsers of [`Neighborhood::recipients_for`] with its title,
//!   category and author only, off the request's path ([`push`]), and only
//!   to public push services ([`push_endpoint`]).
//!
//! Entry points: [`Neighborhood::open`], [`router`], [`Neighborhood::seed_demo`],
//! the admin functions in [`accounts`] (for the CLI) and
//! [`Neighborhood::set_push_options`] (the Web Push contact).

#![forbid(unsafe_code)]

pub mod accounts;
pub mod api;
pub mod area;
pub mod db;
pub mod demo;
pub mod fairness;
pub mod moderation;
pub mod pages;
pub mod photo;
pub mod posts;
pub mod push;
pub use porchlight_pushguard as push_endpoint;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use porchlight_vault::keys::KdfParams;

pub use api::router;

/// A user's id in this neighborhood's own database.
pub type UserId = i64;

/// Everything that can go wrong, each variant mapping to one HTTP status.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad input (422); the message names what is wrong.
    #[error("{0}")]
    Invalid(String),
    /// Not signed in, or the sign-in was refused (401).
    #[error("{0}")]
    Unauthorized(String),
    /// Signed in but not allowed (403).
    #[error("{0}")]
    Forbidden(String),
    /// No such thing, or not visible to this user (404).
    #[error("{0} not found")]
    NotFound(String),
    /// Conflicts with the current state (409).
    #[error("{0}")]
    Conflict(String),
    /// Too many attempts; try again after `retry_after_s` seconds (429).
    #[error("{message}")]
    RateLimited { message: String, retry_after_s: u64 },
    /// The fair-posting check returned the post for revision (422).
    #[error("this post was returned for revision")]
    Revise {
        reasons: Vec<String>,
        guidance: String,
    },
    /// A comment reads as hostile; resend with `confirm` to post it (409).
    #[error("please read this before posting")]
    Kindness { reminder: String },
    /// The store failed.
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Per-user limits on writing, counted over the last hour.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub posts_per_hour: u32,
    pub comments_per_hour: u32,
    /// Failed sign-ins per username before a 15-minute pause.
    pub login_failures: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            posts_per_hour: 10,
            comments_per_hour: 60,
            login_failures: 5,
        }
    }
}

/// A running neighborhood: its database and settings. Cheap to clone.
#[derive(Clone)]
pub struct Neighborhood {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub db: db::Db,
    pub kdf: KdfParams,
    pub limits: Mutex<Limits>,
    /// Failed sign-ins per lower-cased username: (count, window start ms).
    pub login_failures: Mutex<HashMap<String, (u32, i64)>>,
    pub decoy_hash: String,
    /// Web Push: the VAPID key, HTTP client and tasks in flight.
    pub push: push::Pusher,
}

impl std::fmt::Debug for Neighborhood {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Neighborhood")
            .field("dialect", &self.inner.db.dialect)
            .finish_non_exhaustive()
    }
}

impl Neighborhood {
    /// Opens (creating if the URL allows) the database at `database_url`
    /// — `sqlite://path?mode=rwc` or `postgres://…` — and migrates it.
    pub async fn open(database_url: &str) -> Result<Neighborhood> {
        Self::open_with(database_url, KdfParams::default()).await
    }

    /// As [`open`](Self::open) with explicit Argon2id parameters (tests use
    /// `KdfParams::insecure_for_tests()`).
    pub async fn open_with(database_url: &str, kdf: KdfParams) -> Result<Neighborhood> {
        kdf.validate()
            .map_err(|e| Error::Invalid(format!("bad password-hashing parameters: {e}")))?;
        let db = db::Db::open(database_url).await?;
        let decoy_hash = porchlight_vault::password::decoy_hash(&kdf);
        let push = push::Pusher::open(&db.pool).await?;
        Ok(Neighborhood {
            inner: Arc::new(Inner {
                db,
                kdf,
                limits: Mutex::new(Limits::default()),
                login_failures: Mutex::new(HashMap::new()),
                decoy_hash,
                push,
            }),
        })
    }

    /// Replaces the writing limits (config `[neighborhood]` or tests).
    pub fn set_limits(&self, limits: Limits) {
        *self.inner.limits.lock().unwrap_or_else(|p| p.into_inner()) = limits;
    }

    pub(crate) fn limits(&self) -> Limits {
        *self.inner.limits.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn pool(&self) -> &sqlx::AnyPool {
        &self.inner.db.pool
    }

    /// Which store this neighborhood runs on.
    pub fn dialect(&self) -> db::Dialect {
        self.inner.db.dialect
    }

    /// Refreshes the planner's statistics (`ANALYZE`; on PostgreSQL
    /// `VACUUM ANALYZE posts`, which also updates the visibility map that
    /// index-only scans need). For benchmarks and after bulk loads.
    #[doc(hidden)]
    pub async fn analyze(&self) -> Result<()> {
        let sql = match self.dialect() {
            db::Dialect::Sqlite => "ANALYZE",
            db::Dialect::Postgres => "VACUUM ANALYZE posts",
        };
        sqlx::query(sql).execute(self.pool()).await?;
        Ok(())
    }

    /// Waits for pushes in flight, then closes the pool (tests drop their
    /// PostgreSQL schema afterwards).
    pub async fn close(&self) {
        self.push_idle().await;
        self.inner.db.pool.close().await;
    }
}
