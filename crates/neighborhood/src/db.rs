//! The neighborhood's own database: one connection pool over SQLite or
//! PostgreSQL through `sqlx::Any`, and the schema migrations.
//!
//! Invariants:
//!
//! * **One SQL text for both stores.** Every query in this crate is written
//!   once, with `$1`-style placeholders (PostgreSQL's native form, which the
//!   SQLite driver also accepts as numbered parameters) and only the types
//!   both stores share through `Any`: `BIGINT` (`i64`), `DOUBLE PRECISION`
//!   (`f64`), `TEXT` (`String`) and bytes. Booleans are `0`/`1` integers and
//!   times are **milliseconds since the Unix epoch (UTC)** in `BIGINT`
//!   columns, so nothing depends on either store's date functions.
//! * **Only the DDL differs**, and only in two words: the auto-increment id
//!   column and the bytes type ([`Dialect::ddl`]).
//! * **Schema versions only move forward.** [`Db::migrate`] applies the
//!   embedded steps in order inside a transaction each and refuses a
//!   database written by a newer version.

use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor};

use crate::Error;

/// Which store a URL selected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// `sqlite://path?mode=rwc` — the default, one file.
    Sqlite,
    /// `postgres://…` or `postgresql://…`.
    Postgres,
}

impl Dialect {
    /// The dialect for `url`, or an error naming the unsupported scheme.
    pub fn for_url(url: &str) -> Result<Dialect, Error> {
        if url.starts_with("sqlite:") {
            Ok(Dialect::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Dialect::Postgres)
        } else {
            Err(Error::Invalid(format!(
                "unsupported neighborhood database URL {:?}: it must start with sqlite: or postgres://",
                url.split(':').next().unwrap_or("")
            )))
        }
    }

    /// `ddl` with `{ID}` and `{BYTES}` replaced by this store's words.
    fn ddl(self, ddl: &str) -> String {
        let (id, bytes) = match self {
            Dialect::Sqlite => ("INTEGER PRIMARY KEY AUTOINCREMENT", "BLOB"),
            Dialect::Postgres => ("BIGSERIAL PRIMARY KEY", "BYTEA"),
        };
        ddl.replace("{ID}", id).replace("{BYTES}", bytes)
    }
}

/// The pool and its dialect.
#[derive(Debug, Clone)]
pub struct Db {
    pub pool: AnyPool,
    pub dialect: Dialect,
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

impl Db {
    /// Connects to `url` and applies pending migrations.
    pub async fn open(url: &str) -> Result<Db, Error> {
        sqlx::any::install_default_drivers();
        let dialect = Dialect::for_url(url)?;
        let options = AnyConnectOptions::from_str(url)
            .map_err(|e| Error::Invalid(format!("bad neighborhood database URL: {e}")))?;
        let pool = AnyPoolOptions::new()
            .max_connections(match dialect {
                Dialect::Sqlite => 4,
                Dialect::Postgres => 8,
            })
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if dialect == Dialect::Sqlite {
                        conn.execute("PRAGMA journal_mode = WAL").await?;
                        conn.execute("PRAGMA busy_timeout = 5000").await?;
                        conn.execute("PRAGMA foreign_keys = ON").await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await?;
        let db = Db { pool, dialect };
        db.migrate().await?;
        Ok(db)
    }

    /// Applies the embedded migrations not yet recorded.
    pub async fn migrate(&self) -> Result<(), Error> {
        self.pool
            .execute(
                "CREATE TABLE IF NOT EXISTS nb_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)",
            )
            .await?;
        let current: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM nb_migrations")
            .fetch_one(&self.pool)
            .await?;
        let current = current.unwrap_or(0);
        if current > MIGRATIONS.len() as i64 {
            return Err(Error::Invalid(format!(
                "the neighborhood database has schema version {current}, newer than this Porchlight knows ({}); upgrade Porchlight",
                MIGRATIONS.len()
            )));
        }
        for (i, step) in MIGRATIONS.iter().enumerate().skip(current as usize) {
            let version = i as i64 + 1;
            let mut tx = self.pool.begin().await?;
            for stmt in step.split(';').map(str::trim).filter(|s| !s.is_empty()) {
                tx.execute(self.dialect.ddl(stmt).as_str()).await?;
            }
            sqlx::query("INSERT INTO nb_migrations (version, applied_at) VALUES ($1, $2)")
                .bind(version)
                .bind(now_ms())
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            tracing::info!(version, "neighborhood schema migrated");
        }
        Ok(())
    }
}

/// Schema steps, oldest first. Never edit a released step; append one.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE users (
    id {ID},
    username TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    role TEXT NOT NULL,
    agency_name TEXT,
    agency_verified BIGINT NOT NULL DEFAULT 0,
    password_hash TEXT NOT NULL,
    totp_secret TEXT,
    totp_pending TEXT,
    totp_last_step BIGINT,
    status TEXT NOT NULL,
    home_cell BIGINT,
    radius_km DOUBLE PRECISION NOT NULL DEFAULT 3.0,
    muted_until BIGINT,
    mute_reason TEXT,
    suspended_until BIGINT,
    suspend_reason TEXT,
    created_at BIGINT NOT NULL
);
CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE TABLE invites (
    code TEXT PRIMARY KEY,
    created_by BIGINT,
    used_by BIGINT,
    created_at BIGINT NOT NULL,
    used_at BIGINT
);
CREATE TABLE settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE posts (
    id {ID},
    author_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    category TEXT NOT NULL,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    cell BIGINT NOT NULL,
    feed_cell BIGINT NOT NULL,
    extra TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    edited_at BIGINT
);
CREATE INDEX posts_feed ON posts (feed_cell, id);
CREATE INDEX posts_author ON posts (author_id, id);
CREATE TABLE photos (
    id {ID},
    post_id BIGINT NOT NULL REFERENCES posts(id) ON DELETE CASCADE,
    jpeg {BYTES} NOT NULL,
    width BIGINT NOT NULL,
    height BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX photos_post ON photos (post_id, id);
CREATE TABLE comments (
    id {ID},
    post_id BIGINT NOT NULL REFERENCES posts(id) ON DELETE CASCADE,
    author_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    body TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX comments_post ON comments (post_id, id);
CREATE TABLE reactions (
    post_id BIGINT NOT NULL REFERENCES posts(id) ON DELETE CASCADE,
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (post_id, user_id, kind)
);
CREATE TABLE reports (
    id {ID},
    target_kind TEXT NOT NULL,
    target_id BIGINT NOT NULL,
    reporter_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    reason TEXT NOT NULL,
    note TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    resolved_by BIGINT,
    resolved_at BIGINT
);
CREATE INDEX reports_open ON reports (status, id);
CREATE TABLE notices (
    id {ID},
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    action TEXT NOT NULL,
    target_kind TEXT NOT NULL,
    target_id BIGINT NOT NULL,
    reason TEXT NOT NULL,
    until_ms BIGINT,
    created_at BIGINT NOT NULL
);
CREATE INDEX notices_user ON notices (user_id, id);
CREATE TABLE appeals (
    id {ID},
    notice_id BIGINT NOT NULL REFERENCES notices(id) ON DELETE CASCADE,
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    text TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    decided_by BIGINT,
    decided_at BIGINT
);
CREATE TABLE subscriptions (
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    category TEXT NOT NULL,
    PRIMARY KEY (user_id, category)
);
CREATE TABLE rate_events (
    user_id BIGINT NOT NULL,
    kind TEXT NOT NULL,
    at_ms BIGINT NOT NULL
);
CREATE INDEX rate_events_user ON rate_events (user_id, kind, at_ms);
CREATE TABLE audit (
    id {ID},
    actor_id BIGINT,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target_kind TEXT NOT NULL,
    target_id BIGINT NOT NULL,
    reason TEXT NOT NULL,
    created_at BIGINT NOT NULL
)
"#,
    // 2: Web Push subscriptions of this server's own accounts (src/push.rs).
    r#"
CREATE TABLE push_subscriptions (
    id {ID},
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    endpoint TEXT NOT NULL UNIQUE,
    p256dh TEXT NOT NULL,
    auth TEXT NOT NULL,
    user_agent TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_ok_at BIGINT,
    failures BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX push_subscriptions_user ON push_subscriptions (user_id, id)
"#,
    // 3: the feed's per-cell branch (`feed_cell = ? AND status = 'visible' AND
    // id < ? ORDER BY id DESC LIMIT ?`) answered from the index alone, without
    // a table lookup per candidate row to read `status`.
    r#"
CREATE INDEX posts_feed_visible ON posts (feed_cell, status, id);
DROP INDEX posts_feed
"#,
    // 4: no post shows its author's home cell (issue 14 item 7). The new-post
    // form used to fill in the home cell, so most posts carried it. Every post
    // whose cell is its author's home cell or lies inside it moves to the
    // default place, `area::default_post_cell(home)`: the home's parent at
    // resolution 7 (one level up from a home already that coarse), with
    // `feed_cell` its resolution-8 centre child (`area::feed_key`). H3 bit
    // arithmetic, since neither store knows H3: the resolution is bits 52–55,
    // digit r is bits 3·(15−r)…+2; a parent at resolution p has the
    // resolution field p and digits p+1…15 set to 7, a centre child has its
    // new digits 0. (-67553994410557441 is !(15 << 52) as i64.) Homes of
    // resolution 0 have no parent and are left alone, and so are agencies'
    // posts: an agency's area is the public area it serves, nobody's home.
    r#"
UPDATE posts SET
    cell = ((u.home_cell & (-67553994410557441) & ~((CAST(1 AS BIGINT) << CAST((15 - (CASE WHEN ((u.home_cell >> 52) & 15) > 7 THEN 7 ELSE ((u.home_cell >> 52) & 15) - 1 END)) * 3 AS INTEGER)) - 1)) | (CAST((CASE WHEN ((u.home_cell >> 52) & 15) > 7 THEN 7 ELSE ((u.home_cell >> 52) & 15) - 1 END) AS BIGINT) << 52) | ((CAST(1 AS BIGINT) << CAST((15 - (CASE WHEN ((u.home_cell >> 52) & 15) > 7 THEN 7 ELSE ((u.home_cell >> 52) & 15) - 1 END)) * 3 AS INTEGER)) - 1)),
    feed_cell = ((u.home_cell & (-67553994410557441) & ~((CAST(1 AS BIGINT) << CAST((15 - (CASE WHEN ((u.home_cell >> 52) & 15) > 7 THEN 7 ELSE ((u.home_cell >> 52) & 15) - 1 END)) * 3 AS INTEGER)) - 1)) | 36028797018963968 | 2097151)
FROM users u
WHERE u.id = posts.author_id AND u.role <> 'agency' AND u.home_cell IS NOT NULL AND ((u.home_cell >> 52) & 15) > 0
    AND ((posts.cell >> 52) & 15) >= ((u.home_cell >> 52) & 15)
    AND ((posts.cell & (-67553994410557441) & ~((CAST(1 AS BIGINT) << CAST((15 - ((u.home_cell >> 52) & 15)) * 3 AS INTEGER)) - 1)) | (CAST(((u.home_cell >> 52) & 15) AS BIGINT) << 52) | ((CAST(1 AS BIGINT) << CAST((15 - ((u.home_cell >> 52) & 15)) * 3 AS INTEGER)) - 1)) = u.home_cell
"#,
];
