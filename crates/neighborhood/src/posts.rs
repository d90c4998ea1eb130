//! Posts, the feed, photos, comments, reactions and reports.
//!
//! Invariants:
//!
//! * A post's category fits its author: residents use the seven resident
//!   categories, verified agencies only `alert`, `safety_tip`,
//!   `information`, `event`. Anything else — `footage_request` included —
//!   is refused as an unknown category.
//! * A post's cell is resolution 9 or coarser ([`area::parse_post_cell`]);
//!   it is indexed by `(feed_key(cell), status, id)` (resolution 8) so the
//!   feed reads a handful of per-cell index ranges ([`Neighborhood::feed`]).
//! * A post's cell is chosen by its author; without a choice it is
//!   [`area::default_post_cell`] (the resolution-7 parent of the home
//!   area). It is never the author's home cell nor a cell inside it: such a
//!   choice is refused with a message saying why, and a user who moves
//!   their home onto or around the place of earlier posts has those posts
//!   moved out to the default place (`coarsen_posts_at_home`). So a
//!   post's `cell`, which every reader gets, never reveals where its
//!   author lives.
//! * Post ids grow with time, so "newest first" is `id DESC` and the feed
//!   cursor `before` is a post id.
//! * Others never see an author's home cell or user id: authors appear by
//!   display name (agencies with a badge and the agency name) and the place
//!   is the post's own cell plus a distance in words from the viewer.
//! * Photos are stored only as [`photo::reencode`] output (no metadata) and
//!   are never served to agency accounts.
//! * Hidden and removed posts and comments are seen only by their author
//!   (with their status) and moderators.

use serde::Deserialize;
use serde_json::{json, Map, Value};
use sqlx::Row;

use crate::accounts::{fmt_ms, Role, Viewer};
use crate::db::{now_ms, Dialect};
use crate::{area, fairness, photo, Error, Neighborhood, Result, UserId};

/// Most photos on one post.
pub const MAX_PHOTOS_PER_POST: i64 = 4;
/// Default and largest feed page.
pub const FEED_PAGE: i64 = 30;
pub const FEED_PAGE_MAX: i64 = 100;
/// Reactions people can leave.
pub const REACTION_KINDS: &[&str] = &["thanks", "helpful", "heart"];
/// Reasons a post or comment can be reported for.
pub const REPORT_REASONS: &[&str] = &[
    "profiling",
    "harassment",
    "misinformation",
    "spam",
    "privacy",
    "other",
];

/// A post's category.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Category {
    CrimeSafety,
    Suspicious,
    LostFoundPet,
    Wildlife,
    MutualAid,
    CommunityEvent,
    NeighborlyMoment,
    Alert,
    SafetyTip,
    Information,
    Event,
}

pub const RESIDENT_CATEGORIES: &[&str] = &[
    "crime_safety",
    "suspicious",
    "lost_found_pet",
    "wildlife",
    "mutual_aid",
    "community_event",
    "neighborly_moment",
];
pub const AGENCY_CATEGORIES: &[&str] = &["alert", "safety_tip", "information", "event"];

impl Category {
    pub fn parse(s: &str) -> Result<Category> {
        Ok(match s {
            "crime_safety" => Category::CrimeSafety,
            "suspicious" => Category::Suspicious,
            "lost_found_pet" => Category::LostFoundPet,
            "wildlife" => Category::Wildlife,
            "mutual_aid" => Category::MutualAid,
            "community_event" => Category::CommunityEvent,
            "neighborly_moment" => Category::NeighborlyMoment,
            "alert" => Category::Alert,
            "safety_tip" => Category::SafetyTip,
            "information" => Category::Information,
            "event" => Category::Event,
            other => {
                return Err(Error::Invalid(format!(
                    "unknown category {other:?}: residents post {}; agencies post {}",
                    RESIDENT_CATEGORIES.join(", "),
                    AGENCY_CATEGORIES.join(", ")
                )))
            }
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Category::CrimeSafety => "crime_safety",
            Category::Suspicious => "suspicious",
            Category::LostFoundPet => "lost_found_pet",
            Category::Wildlife => "wildlife",
            Category::MutualAid => "mutual_aid",
            Category::CommunityEvent => "community_event",
            Category::NeighborlyMoment => "neighborly_moment",
            Category::Alert => "alert",
            Category::SafetyTip => "safety_tip",
            Category::Information => "information",
            Category::Event => "event",
        }
    }

    pub fn is_agency(self) -> bool {
        AGENCY_CATEGORIES.contains(&self.as_str())
    }
}

/// What a client sends to create a post. Category-specific fields are
/// optional here and required by [`NewPost::extra`].
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct NewPost {
    pub category: String,
    pub title: String,
    pub body: String,
    /// The post's place, an H3 cell of resolution 9 or coarser chosen by
    /// the author; absent or blank: [`area::default_post_cell`] of their
    /// home area.
    #[serde(default)]
    pub cell: Option<String>,
    /// `mutual_aid`: `offer` or `request`.
    pub kind: Option<String>,
    /// `mutual_aid`: `open` (default) or `fulfilled`.
    pub status: Option<String>,
    /// `community_event` / `event`: `YYYY-MM-DD`.
    pub date: Option<String>,
    /// `community_event` / `event`: `HH:MM`.
    pub time: Option<String>,
    /// `community_event` / `event`: free text, e.g. "the library's hall".
    pub place: Option<String>,
}

/// A partial edit by the author.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct PostEdit {
    pub title: Option<String>,
    pub body: Option<String>,
    pub status: Option<String>,
    pub date: Option<String>,
    pub time: Option<String>,
    pub place: Option<String>,
}

fn check_text(field: &str, s: &str, max: usize) -> Result<String> {
    let t = s.trim();
    if t.is_empty() {
        return Err(Error::Invalid(format!("the {field} must not be empty")));
    }
    if t.chars().count() > max {
        return Err(Error::Invalid(format!(
            "the {field} must be at most {max} characters"
        )));
    }
    Ok(t.to_string())
}

/// Validates the category-specific fields into the stored `extra` object.
fn build_extra(
    cat: Category,
    kind: Option<&str>,
    status: Option<&str>,
    date: Option<&str>,
    time: Option<&str>,
    place: Option<&str>,
) -> Result<Map<String, Value>> {
    let mut m = Map::new();
    match cat {
        Category::MutualAid => {
            let kind = kind.ok_or_else(|| {
                Error::Invalid("a mutual_aid post needs \"kind\": offer or request".into())
            })?;
            if !matches!(kind, "offer" | "request") {
                return Err(Error::Invalid(format!(
                    "mutual_aid kind must be offer or request, not {kind:?}"
                )));
            }
            let status = status.unwrap_or("open");
            if !matches!(status, "open" | "fulfilled") {
                return Err(Error::Invalid(format!(
                    "mutual_aid status must be open or fulfilled, not {status:?}"
                )));
            }
            m.insert("kind".into(), kind.into());
            m.insert("status".into(), status.into());
        }
        Category::CommunityEvent | Category::Event => {
            let date =
                date.ok_or_else(|| Error::Invalid("an event needs \"date\" (YYYY-MM-DD)".into()))?;
            date.parse::<jiff::civil::Date>().map_err(|_| {
                Error::Invalid(format!("the event date {date:?} is not YYYY-MM-DD"))
            })?;
            let time =
                time.ok_or_else(|| Error::Invalid("an event needs \"time\" (HH:MM)".into()))?;
            jiff::civil::Time::strptime("%H:%M", time)
                .map_err(|_| Error::Invalid(format!("the event time {time:?} is not HH:MM")))?;
            let place = check_text("event place", place.unwrap_or(""), 200)?;
            m.insert("date".into(), date.into());
            m.insert("time".into(), time.into());
            m.insert("place".into(), place.into());
        }
        _ => {
            if kind.is_some() || status.is_some() {
                return Err(Error::Invalid(
                    "\"kind\" and \"status\" belong to mutual_aid posts only".into(),
                ));
            }
            if date.is_some() || time.is_some() || place.is_some() {
                return Err(Error::Invalid(
                    "\"date\", \"time\" and \"place\" belong to event posts only".into(),
                ));
            }
        }
    }
    Ok(m)
}

fn cell_to_db(c: h3o::CellIndex) -> i64 {
    u64::from(c) as i64
}

fn cell_from_db(v: i64) -> Option<h3o::CellIndex> {
    h3o::CellIndex::try_from(v as u64).ok()
}

/// The place of a new post by `v`: the cell they chose, or the default
/// coarse place around their home area. Never a resident's home cell or a
/// cell inside it. An agency's "home" is the service area it posts for,
/// public by its role (it is nobody's home), so an agency may choose it.
fn post_place(v: &Viewer, chosen: Option<&str>) -> Result<h3o::CellIndex> {
    let chosen = chosen.map(str::trim).filter(|c| !c.is_empty());
    let Some(chosen) = chosen else {
        let home = v.home_cell.ok_or_else(|| {
            Error::Invalid("choose the post's place (\"cell\"), or set your area (PUT /api/v1/me/area) so the post can use the wider area around it".into())
        })?;
        return area::default_post_cell(home).ok_or_else(|| {
            Error::Invalid(
                "your area is a whole region (resolution 0); choose the post's place (\"cell\")"
                    .into(),
            )
        });
    };
    let cell = area::parse_post_cell(chosen).map_err(|e| Error::Invalid(e.to_string()))?;
    let home = v.home_cell.filter(|_| v.role != Role::Agency);
    if let Some(home) = home.filter(|h| area::inside(cell, *h)) {
        let wider = area::default_post_cell(home)
            .map(|c| format!(" ({c})"))
            .unwrap_or_default();
        let what = if cell == home {
            "is your home area"
        } else {
            "lies inside your home area"
        };
        return Err(Error::Invalid(format!(
            "cell {cell} {what}: a post never shows where you live. Leave the place empty to post \
             for the wider area around it{wider}, or choose the cell where it happened"
        )));
    }
    Ok(cell)
}

fn fairness_gate(category: Category, title: &str, body: &str) -> Result<()> {
    match fairness::check_post(category.as_str(), title, body) {
        fairness::Verdict::Accept => Ok(()),
        fairness::Verdict::Revise { reasons, guidance } => Err(Error::Revise { reasons, guidance }),
    }
}

/// A post's photo ids, visible-comment count and reaction counts.
type Extras = (Vec<i64>, i64, Map<String, Value>);

const POST_COLUMNS: &str = "p.id, p.author_id, p.category, p.title, p.body, p.cell, p.extra, p.status, p.created_at, p.edited_at,
     u.display_name, u.role, u.agency_name, u.agency_verified";

impl Neighborhood {
    /// Checks and records one write of `kind` against the hourly limit.
    pub(crate) async fn rate_limit(&self, user: UserId, kind: &str, per_hour: u32) -> Result<()> {
        let now = now_ms();
        let hour = 3_600_000;
        sqlx::query("DELETE FROM rate_events WHERE user_id = $1 AND kind = $2 AND at_ms <= $3")
            .bind(user)
            .bind(kind)
            .bind(now - hour)
            .execute(self.pool())
            .await?;
        let rows = sqlx::query(
            "SELECT at_ms FROM rate_events WHERE user_id = $1 AND kind = $2 ORDER BY at_ms",
        )
        .bind(user)
        .bind(kind)
        .fetch_all(self.pool())
        .await?;
        if rows.len() as u32 >= per_hour {
            let oldest: i64 = rows
                .first()
                .map(|r| r.try_get("at_ms"))
                .transpose()?
                .unwrap_or(now);
            let wait = (oldest + hour - now).max(1000);
            return Err(Error::RateLimited {
                message: format!(
                    "you can write at most {per_hour} {kind}s an hour; please wait a little"
                ),
                retry_after_s: (wait as u64).div_ceil(1000),
            });
        }
        sqlx::query("INSERT INTO rate_events (user_id, kind, at_ms) VALUES ($1, $2, $3)")
            .bind(user)
            .bind(kind)
            .bind(now)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Creates a post; returns it as the author sees it.
    pub async fn create_post(&self, v: &Viewer, p: &NewPost) -> Result<Value> {
        v.require_can_write()?;
        let cat = Category::parse(&p.category)?;
        match v.role {
            Role::Agency => {
                if !v.agency_verified {
                    return Err(Error::Forbidden(
                        "this agency account is not verified yet; an admin verifies agencies"
                            .into(),
                    ));
                }
                if !cat.is_agency() {
                    return Err(Error::Forbidden(format!(
                        "agency accounts post only {}",
                        AGENCY_CATEGORIES.join(", ")
                    )));
                }
            }
            _ if cat.is_agency() => {
                return Err(Error::Forbidden(format!(
                    "the {} category is for verified agencies",
                    cat.as_str()
                )))
            }
            _ => {}
        }
        let title = check_text("title", &p.title, 120)?;
        let body = check_text("body", &p.body, 5000)?;
        let cell = post_place(v, p.cell.as_deref())?;
        if v.role != Role::Agency {
            let home = v.home_cell.ok_or_else(|| {
                Error::Invalid("set your area (PUT /api/v1/me/area) before posting".into())
            })?;
            let d = area::distance_km(home, cell);
            if d > 8.0 {
                return Err(Error::Invalid(format!(
                    "the post's cell is {d:.1} km from your area; posts must be within 8 km of it"
                )));
            }
        }
        let extra = build_extra(
            cat,
            p.kind.as_deref(),
            p.status.as_deref(),
            p.date.as_deref(),
            p.time.as_deref(),
            p.place.as_deref(),
        )?;
        fairness_gate(cat, &title, &body)?;
        self.rate_limit(v.id, "post", self.limits().posts_per_hour)
            .await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO posts (author_id, category, title, body, cell, feed_cell, extra, status, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'visible', $8) RETURNING id",
        )
        .bind(v.id)
        .bind(cat.as_str())
        .bind(&title)
        .bind(&body)
        .bind(cell_to_db(cell))
        .bind(cell_to_db(area::feed_key(cell)))
        .bind(Value::Object(extra).to_string())
        .bind(now_ms())
        .fetch_one(self.pool())
        .await?;
        // Web Push to the neighbours who asked for this category, off the
        // request's path.
        self.spawn_new_post_push(id);
        self.post(v, id).await
    }

    async fn post_row(&self, id: i64) -> Result<sqlx::any::AnyRow> {
        sqlx::query(&format!(
            "SELECT {POST_COLUMNS} FROM posts p JOIN users u ON u.id = p.author_id WHERE p.id = $1"
        ))
        .bind(id)
        .fetch_optional(self.pool())
        .await?
        .ok_or_else(|| Error::NotFound(format!("post {id}")))
    }

    /// One post with its comments, as `v` may see it.
    pub async fn post(&self, v: &Viewer, id: i64) -> Result<Value> {
        v.require_not_suspended()?;
        let row = self.post_row(id).await?;
        let author: i64 = row.try_get("author_id")?;
        let status: String = row.try_get("status")?;
        if status != "visible" && author != v.id && !v.role.moderates() {
            return Err(Error::NotFound(format!("post {id}")));
        }
        let mut post = self.post_json(v, &row).await?;
        let comments = sqlx::query(
            "SELECT c.id, c.author_id, c.body, c.status, c.created_at, u.display_name, u.role, u.agency_name, u.agency_verified
             FROM comments c JOIN users u ON u.id = c.author_id WHERE c.post_id = $1 ORDER BY c.id",
        )
        .bind(id)
        .fetch_all(self.pool())
        .await?;
        let mut list = Vec::new();
        for c in &comments {
            let cauthor: i64 = c.try_get("author_id")?;
            let cstatus: String = c.try_get("status")?;
            if cstatus != "visible" && cauthor != v.id && !v.role.moderates() {
                continue;
            }
            let mut o = json!({
                "id": c.try_get::<i64, _>("id")?,
                "body": c.try_get::<String, _>("body")?,
                "author": author_json(c)?,
                "mine": cauthor == v.id,
                "created_at": fmt_ms(c.try_get("created_at")?),
            });
            if cstatus != "visible" {
                o["status"] = cstatus.into();
            }
            list.push(o);
        }
        post["comments"] = Value::Array(list);
        Ok(post)
    }

    async fn post_json(&self, v: &Viewer, row: &sqlx::any::AnyRow) -> Result<Value> {
        let id: i64 = row.try_get("id")?;
        let mut extras = self.post_extras(&[id]).await?;
        let (photos, comment_count, reactions) = extras.remove(&id).unwrap_or_default();
        self.post_json_with(v, row, photos, comment_count, reactions)
    }

    /// Photos, visible-comment counts and reaction counts of `ids`, in
    /// three queries whatever the number of posts.
    async fn post_extras(&self, ids: &[i64]) -> Result<std::collections::HashMap<i64, Extras>> {
        let mut out: std::collections::HashMap<i64, Extras> = ids
            .iter()
            .map(|id| {
                let reactions = REACTION_KINDS
                    .iter()
                    .map(|k| ((*k).to_string(), Value::from(0)))
                    .collect();
                (*id, (Vec::new(), 0, reactions))
            })
            .collect();
        if ids.is_empty() {
            return Ok(out);
        }
        let list = (1..=ids.len())
            .map(|i| format!("${i}"))
            .collect::<Vec<_>>()
            .join(", ");
        fn bind_all<'q>(
            sql: &'q str,
            ids: &[i64],
        ) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
            let mut q = sqlx::query(sql);
            for id in ids {
                q = q.bind(*id);
            }
            q
        }
        // One round trip for all three: photo ids, visible comment counts
        // and reaction counts per kind, told apart by `what`.
        let sql = format!(
            "SELECT post_id, 'photo' AS what, '' AS kind, id AS n FROM photos WHERE post_id IN ({list}) \
             UNION ALL SELECT post_id, 'comments', '', COUNT(*) FROM comments WHERE post_id IN ({list}) AND status = 'visible' GROUP BY post_id \
             UNION ALL SELECT post_id, 'reaction', kind, COUNT(*) FROM reactions WHERE post_id IN ({list}) GROUP BY post_id, kind"
        );
        for r in bind_all(&sql, ids).fetch_all(self.pool()).await? {
            let Some(e) = out.get_mut(&r.try_get::<i64, _>("post_id")?) else {
                continue;
            };
            let n: i64 = r.try_get("n")?;
            match r.try_get::<String, _>("what")?.as_str() {
                "photo" => e.0.push(n),
                "comments" => e.1 = n,
                _ => {
                    e.2.insert(r.try_get("kind")?, Value::from(n));
                }
            }
        }
        for e in out.values_mut() {
            e.0.sort_unstable();
        }
        Ok(out)
    }

    /// The rows of `ids` with their authors ([`POST_COLUMNS`]), in no
    /// particular order.
    async fn post_rows(&self, ids: &[i64]) -> Result<Vec<sqlx::any::AnyRow>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let list = (1..=ids.len())
            .map(|i| format!("${i}"))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!("SELECT {POST_COLUMNS} FROM posts p JOIN users u ON u.id = p.author_id WHERE p.id IN ({list})");
        let mut q = sqlx::query(&sql);
        for id in ids {
            q = q.bind(*id);
        }
        Ok(q.fetch_all(self.pool()).await?)
    }

    /// Post rows (with their authors, [`POST_COLUMNS`]) as `v` sees them,
    /// in the order of `ids`; ids without a row are skipped.
    async fn rows_json(
        &self,
        v: &Viewer,
        ids: &[i64],
        rows: Vec<sqlx::any::AnyRow>,
    ) -> Result<Vec<Value>> {
        let mut extras = self.post_extras(ids).await?;
        let mut by_id = std::collections::HashMap::new();
        for r in rows {
            by_id.insert(r.try_get::<i64, _>("id")?, r);
        }
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(r) = by_id.get(id) {
                let (photos, comments, reactions) = extras.remove(id).unwrap_or_default();
                out.push(self.post_json_with(v, r, photos, comments, reactions)?);
            }
        }
        Ok(out)
    }

    fn post_json_with(
        &self,
        v: &Viewer,
        row: &sqlx::any::AnyRow,
        photos: Vec<i64>,
        comment_count: i64,
        reactions: Map<String, Value>,
    ) -> Result<Value> {
        let id: i64 = row.try_get("id")?;
        let author: i64 = row.try_get("author_id")?;
        let cell = cell_from_db(row.try_get("cell")?);
        let status: String = row.try_get("status")?;
        let extra: Value =
            serde_json::from_str(&row.try_get::<String, _>("extra")?).unwrap_or(json!({}));
        let mut o = json!({
            "id": id,
            "category": row.try_get::<String, _>("category")?,
            "title": row.try_get::<String, _>("title")?,
            "body": row.try_get::<String, _>("body")?,
            "cell": cell.map(|c| c.to_string()),
            "distance": match (v.home_cell, cell) {
                (Some(h), Some(c)) => Some(area::distance_words(area::distance_km(h, c))),
                _ => None,
            },
            "author": author_json(row)?,
            "mine": author == v.id,
            "created_at": fmt_ms(row.try_get("created_at")?),
            "edited_at": row.try_get::<Option<i64>, _>("edited_at")?.map(fmt_ms),
            "photos": photos.iter().map(|p| format!("/api/v1/photos/{p}")).collect::<Vec<_>>(),
            "comment_count": comment_count,
            "reactions": reactions,
        });
        if let Value::Object(extra) = extra {
            for (k, val) in extra {
                o[k.as_str()] = val;
            }
        }
        if status != "visible" {
            o["moderation"] = status.into();
        }
        if v.role.moderates() {
            o["author_id"] = author.into();
        }
        Ok(o)
    }

    /// The author edits their post; the fair-posting check runs again.
    pub async fn edit_post(&self, v: &Viewer, id: i64, e: &PostEdit) -> Result<Value> {
        v.require_can_write()?;
        let row = self.post_row(id).await?;
        if row.try_get::<i64, _>("author_id")? != v.id {
            return Err(Error::Forbidden("only the author can edit a post".into()));
        }
        let cat = Category::parse(&row.try_get::<String, _>("category")?)?;
        let title = check_text(
            "title",
            e.title
                .as_deref()
                .unwrap_or(&row.try_get::<String, _>("title")?),
            120,
        )?;
        let body = check_text(
            "body",
            e.body
                .as_deref()
                .unwrap_or(&row.try_get::<String, _>("body")?),
            5000,
        )?;
        let old: Value =
            serde_json::from_str(&row.try_get::<String, _>("extra")?).unwrap_or(json!({}));
        let s = |k: &str| old.get(k).and_then(Value::as_str).map(str::to_string);
        let extra = build_extra(
            cat,
            s("kind").as_deref(),
            e.status.clone().or(s("status")).as_deref(),
            e.date.clone().or(s("date")).as_deref(),
            e.time.clone().or(s("time")).as_deref(),
            e.place.clone().or(s("place")).as_deref(),
        )?;
        fairness_gate(cat, &title, &body)?;
        sqlx::query(
            "UPDATE posts SET title = $1, body = $2, extra = $3, edited_at = $4 WHERE id = $5",
        )
        .bind(&title)
        .bind(&body)
        .bind(Value::Object(extra).to_string())
        .bind(now_ms())
        .bind(id)
        .execute(self.pool())
        .await?;
        self.post(v, id).await
    }

    /// The author deletes their post with its photos, comments and reactions.
    pub async fn delete_post(&self, v: &Viewer, id: i64) -> Result<()> {
        v.require_not_suspended()?;
        let row = self.post_row(id).await?;
        if row.try_get::<i64, _>("author_id")? != v.id {
            return Err(Error::Forbidden("only the author can delete a post".into()));
        }
        let mut tx = self.pool().begin().await?;
        for t in ["photos", "comments", "reactions"] {
            sqlx::query(&format!("DELETE FROM {t} WHERE post_id = $1"))
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query("DELETE FROM posts WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The feed around `v`'s home area, newest first.
    ///
    /// The feed query ([`feed_ids`](Self::feed_ids)'s, per dialect) and the
    /// page's rows with their authors — one statement on SQLite, two on
    /// PostgreSQL — then the photos and counts of those posts in one more. Each cell's part is a range
    /// scan on `(feed_cell, status, id)` cut off at the page size, so the
    /// cost grows with the number of cells (≈40 at 3 km) times the page,
    /// never with the table.
    pub async fn feed(
        &self,
        v: &Viewer,
        radius_km: Option<f64>,
        category: Option<&str>,
        before: Option<i64>,
        limit: Option<i64>,
    ) -> Result<Value> {
        v.require_not_suspended()?;
        let home = v.home_cell.ok_or_else(|| {
            Error::Invalid("set your area (PUT /api/v1/me/area) to see a feed".into())
        })?;
        let radius = area::check_radius_km(radius_km.unwrap_or(v.radius_km))
            .map_err(|e| Error::Invalid(e.to_string()))?;
        let category = category.map(Category::parse).transpose()?;
        let limit = limit.unwrap_or(FEED_PAGE).clamp(1, FEED_PAGE_MAX);
        // The page's posts come with the feed query itself (one round
        // trip); their comment, photo and reaction counts with one more.
        let cells = area::feed_cells(home, radius);
        let before = before.unwrap_or(i64::MAX);
        let (ids, rows) = match self.dialect() {
            // SQLite: the feed query wrapped to return the page's rows.
            Dialect::Sqlite => {
                let rows = self
                    .feed_query(&cells, category, before, limit, true)
                    .await?;
                let ids = rows
                    .iter()
                    .map(|r| r.try_get::<i64, _>("id"))
                    .collect::<std::result::Result<Vec<i64>, _>>()?;
                (ids, rows)
            }
            // PostgreSQL plans a prepared statement again on every run
            // when its parameters matter (as `LIMIT $2` does), and
            // planning the wrapped union took longer than a second round
            // trip: ids first, then their rows.
            Dialect::Postgres => {
                let ids = self.feed_ids(&cells, category, before, limit).await?;
                let rows = self.post_rows(&ids).await?;
                (ids, rows)
            }
        };
        let posts = self.rows_json(v, &ids, rows).await?;
        let next = if ids.len() as i64 == limit {
            ids.last().copied()
        } else {
            None
        };
        Ok(json!({ "posts": posts, "next_before": next, "radius_km": radius }))
    }

    /// The ids of the newest visible posts in `cells` below `before`.
    pub async fn feed_ids(
        &self,
        cells: &[h3o::CellIndex],
        category: Option<Category>,
        before: i64,
        limit: i64,
    ) -> Result<Vec<i64>> {
        let rows = self
            .feed_query(cells, category, before, limit, false)
            .await?;
        Ok(rows
            .iter()
            .map(|r| r.try_get::<i64, _>(0))
            .collect::<std::result::Result<Vec<i64>, _>>()?)
    }

    /// The feed statement: the newest visible posts in `cells` below
    /// `before`, newest first — their ids only, or (`full`) the page's
    /// rows with their authors ([`POST_COLUMNS`]).
    async fn feed_query(
        &self,
        cells: &[h3o::CellIndex],
        category: Option<Category>,
        before: i64,
        limit: i64,
        full: bool,
    ) -> Result<Vec<sqlx::any::AnyRow>> {
        if cells.is_empty() {
            return Ok(Vec::new());
        }
        // $1 = before, $2 = limit, $3 = category (when filtered), then cells.
        let first_cell = if category.is_some() { 4 } else { 3 };
        let cat_clause = if category.is_some() {
            " AND category = $3"
        } else {
            ""
        };
        let sql = match self.dialect() {
            // SQLite walks each cell's `(feed_cell, status, id)` range
            // newest first into a sorter that keeps only `limit` rows and
            // leaves a cell as soon as its rows can no longer make the page
            // (its IN-operator "no hope" early out): one statement, bounded
            // by cells × page like the union below, and several times
            // cheaper than it on SQLite (bench/RESULTS.md).
            Dialect::Sqlite => {
                let list: Vec<String> = (0..cells.len())
                    .map(|i| format!("${}", first_cell + i))
                    .collect();
                format!(
                    "SELECT id FROM posts WHERE feed_cell IN ({}) AND status = 'visible' AND id < $1{cat_clause} ORDER BY id DESC LIMIT $2",
                    list.join(", ")
                )
            }
            // PostgreSQL has no such early out for an IN list (it would
            // read every post of every cell and sort them): one index-only
            // range scan per cell, limited to the page, glued with
            // `UNION ALL` and merged by the outer `ORDER BY … LIMIT`.
            Dialect::Postgres => {
                let parts: Vec<String> = (0..cells.len())
                    .map(|i| {
                        format!(
                            "SELECT * FROM (SELECT id FROM posts WHERE feed_cell = ${} AND id < $1 AND status = 'visible'{cat_clause} ORDER BY id DESC LIMIT $2) AS c{i}",
                            first_cell + i
                        )
                    })
                    .collect();
                format!(
                    "SELECT id FROM ({}) AS f ORDER BY id DESC LIMIT $2",
                    parts.join(" UNION ALL ")
                )
            }
        };
        let sql = if full {
            format!(
                "SELECT {POST_COLUMNS} FROM posts p JOIN users u ON u.id = p.author_id WHERE p.id IN ({sql}) ORDER BY p.id DESC"
            )
        } else {
            sql
        };
        let mut q = sqlx::query(&sql).bind(before).bind(limit);
        if let Some(c) = category {
            q = q.bind(c.as_str());
        }
        for c in cells {
            q = q.bind(cell_to_db(*c));
        }
        Ok(q.fetch_all(self.pool()).await?)
    }

    /// Inserts a post directly (demo seeding and benchmarks): no checks.
    #[allow(clippy::too_many_arguments)]
    pub async fn insert_post_raw(
        &self,
        author: UserId,
        category: Category,
        title: &str,
        body: &str,
        cell: h3o::CellIndex,
        extra: Value,
        created_at: i64,
    ) -> Result<i64> {
        Ok(sqlx::query_scalar(
            "INSERT INTO posts (author_id, category, title, body, cell, feed_cell, extra, status, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'visible', $8) RETURNING id",
        )
        .bind(author)
        .bind(category.as_str())
        .bind(title)
        .bind(body)
        .bind(cell_to_db(cell))
        .bind(cell_to_db(area::feed_key(cell)))
        .bind(extra.to_string())
        .bind(created_at)
        .fetch_one(self.pool())
        .await?)
    }

    /// Inserts many visible posts at once (benchmarks only): `(cell,
    /// created_at ms)` each, titled and bodied generically, in one
    /// transaction of multi-row `INSERT`s.
    #[doc(hidden)]
    pub async fn insert_posts_bulk(
        &self,
        author: UserId,
        category: Category,
        rows: &[(h3o::CellIndex, i64)],
    ) -> Result<()> {
        const CHUNK: usize = 500;
        let mut tx = self.pool().begin().await?;
        for chunk in rows.chunks(CHUNK) {
            let values: Vec<String> = (0..chunk.len())
                .map(|i| {
                    let b = i * 3;
                    format!(
                        "($1, $2, 'bench post', 'bench body', ${}, ${}, '{{}}', 'visible', ${})",
                        b + 3,
                        b + 4,
                        b + 5
                    )
                })
                .collect();
            let sql = format!(
                "INSERT INTO posts (author_id, category, title, body, cell, feed_cell, extra, status, created_at) VALUES {}",
                values.join(", ")
            );
            let mut q = sqlx::query(&sql).bind(author).bind(category.as_str());
            for (cell, at) in chunk {
                q = q
                    .bind(cell_to_db(*cell))
                    .bind(cell_to_db(area::feed_key(*cell)))
                    .bind(*at);
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Adds a photo (already-uploaded bytes) to the author's post.
    pub async fn add_photo(&self, v: &Viewer, post: i64, bytes: &[u8]) -> Result<i64> {
        v.require_can_write()?;
        let row = self.post_row(post).await?;
        if row.try_get::<i64, _>("author_id")? != v.id {
            return Err(Error::Forbidden(
                "only the author can add photos to a post".into(),
            ));
        }
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM photos WHERE post_id = $1")
            .bind(post)
            .fetch_one(self.pool())
            .await?;
        if n >= MAX_PHOTOS_PER_POST {
            return Err(Error::Conflict(format!(
                "a post can carry at most {MAX_PHOTOS_PER_POST} photos"
            )));
        }
        let bytes = bytes.to_vec();
        let p = tokio::task::spawn_blocking(move || photo::reencode(&bytes))
            .await
            .map_err(|e| Error::Invalid(format!("photo processing failed: {e}")))?
            .map_err(|e| Error::Invalid(e.to_string()))?;
        Ok(sqlx::query_scalar(
            "INSERT INTO photos (post_id, jpeg, width, height, created_at) VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(post)
        .bind(p.jpeg)
        .bind(p.width as i64)
        .bind(p.height as i64)
        .bind(now_ms())
        .fetch_one(self.pool())
        .await?)
    }

    /// A photo's JPEG bytes, for signed-in residents, moderators and admins
    /// who may see its post. Agencies never download media.
    pub async fn photo(&self, v: &Viewer, id: i64) -> Result<Vec<u8>> {
        v.require_not_suspended()?;
        v.require_not_agency("download photos or any other media")?;
        let r = sqlx::query("SELECT post_id, jpeg FROM photos WHERE id = $1")
            .bind(id)
            .fetch_optional(self.pool())
            .await?
            .ok_or_else(|| Error::NotFound(format!("photo {id}")))?;
        let post = self.post_row(r.try_get("post_id")?).await?;
        let status: String = post.try_get("status")?;
        if status != "visible"
            && post.try_get::<i64, _>("author_id")? != v.id
            && !v.role.moderates()
        {
            return Err(Error::NotFound(format!("photo {id}")));
        }
        Ok(r.try_get("jpeg")?)
    }

    /// Adds a comment. Agencies comment only under their own posts. A
    /// hostile-reading comment is refused with a kindness reminder unless
    /// `confirm` is set.
    pub async fn add_comment(
        &self,
        v: &Viewer,
        post: i64,
        body: &str,
        confirm: bool,
    ) -> Result<Value> {
        v.require_can_write()?;
        let row = self.post_row(post).await?;
        let author: i64 = row.try_get("author_id")?;
        let status: String = row.try_get("status")?;
        if status != "visible" && !v.role.moderates() {
            return Err(Error::NotFound(format!("post {post}")));
        }
        if v.role == Role::Agency && author != v.id {
            return Err(Error::Forbidden(
                "agency accounts reply only under their own posts".into(),
            ));
        }
        let body = check_text("comment", body, 2000)?;
        if !confirm {
            if let Some(reminder) = fairness::kindness_reminder(&body) {
                return Err(Error::Kindness { reminder });
            }
        }
        self.rate_limit(v.id, "comment", self.limits().comments_per_hour)
            .await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO comments (post_id, author_id, body, status, created_at) VALUES ($1, $2, $3, 'visible', $4) RETURNING id",
        )
        .bind(post)
        .bind(v.id)
        .bind(&body)
        .bind(now_ms())
        .fetch_one(self.pool())
        .await?;
        Ok(json!({ "id": id, "post_id": post, "body": body }))
    }

    /// The comment's author deletes it.
    pub async fn delete_comment(&self, v: &Viewer, id: i64) -> Result<()> {
        v.require_not_suspended()?;
        let author: Option<i64> =
            sqlx::query_scalar("SELECT author_id FROM comments WHERE id = $1")
                .bind(id)
                .fetch_optional(self.pool())
                .await?;
        match author {
            None => Err(Error::NotFound(format!("comment {id}"))),
            Some(a) if a != v.id => Err(Error::Forbidden(
                "only the author can delete a comment".into(),
            )),
            Some(_) => {
                sqlx::query("DELETE FROM comments WHERE id = $1")
                    .bind(id)
                    .execute(self.pool())
                    .await?;
                Ok(())
            }
        }
    }

    /// Adds (or, with `on = false`, removes) a reaction. Agencies cannot react.
    pub async fn react(&self, v: &Viewer, post: i64, kind: &str, on: bool) -> Result<()> {
        v.require_can_write()?;
        v.require_not_agency("react to posts")?;
        if !REACTION_KINDS.contains(&kind) {
            return Err(Error::Invalid(format!(
                "unknown reaction {kind:?}: expected one of {}",
                REACTION_KINDS.join(", ")
            )));
        }
        let row = self.post_row(post).await?;
        if row.try_get::<String, _>("status")? != "visible" {
            return Err(Error::NotFound(format!("post {post}")));
        }
        sqlx::query("DELETE FROM reactions WHERE post_id = $1 AND user_id = $2 AND kind = $3")
            .bind(post)
            .bind(v.id)
            .bind(kind)
            .execute(self.pool())
            .await?;
        if on {
            sqlx::query("INSERT INTO reactions (post_id, user_id, kind, created_at) VALUES ($1, $2, $3, $4)")
                .bind(post)
                .bind(v.id)
                .bind(kind)
                .bind(now_ms())
                .execute(self.pool())
                .await?;
        }
        Ok(())
    }

    /// Reports a post or comment to the moderators.
    pub async fn report(
        &self,
        v: &Viewer,
        target_kind: &str,
        target: i64,
        reason: &str,
        note: &str,
    ) -> Result<i64> {
        v.require_not_suspended()?;
        if !REPORT_REASONS.contains(&reason) {
            return Err(Error::Invalid(format!(
                "unknown report reason {reason:?}: expected one of {}",
                REPORT_REASONS.join(", ")
            )));
        }
        if note.chars().count() > 1000 {
            return Err(Error::Invalid(
                "the note must be at most 1000 characters".into(),
            ));
        }
        let exists: i64 = match target_kind {
            "post" => sqlx::query_scalar(
                "SELECT COUNT(*) FROM posts WHERE id = $1 AND status = 'visible'",
            ),
            _ => sqlx::query_scalar(
                "SELECT COUNT(*) FROM comments WHERE id = $1 AND status = 'visible'",
            ),
        }
        .bind(target)
        .fetch_one(self.pool())
        .await?;
        if exists == 0 {
            return Err(Error::NotFound(format!("{target_kind} {target}")));
        }
        Ok(sqlx::query_scalar(
            "INSERT INTO reports (target_kind, target_id, reporter_id, reason, note, status, created_at)
             VALUES ($1, $2, $3, $4, $5, 'open', $6) RETURNING id",
        )
        .bind(target_kind)
        .bind(target)
        .bind(v.id)
        .bind(reason)
        .bind(note.trim())
        .bind(now_ms())
        .fetch_one(self.pool())
        .await?)
    }

    /// Moves `user`'s posts whose cell is `home` or lies inside it to
    /// [`area::default_post_cell`]`(home)`; returns how many moved. Called
    /// when a user sets their area, so that no post shows its author's
    /// current home cell (migration 4 did the same for posts made before).
    pub(crate) async fn coarsen_posts_at_home(
        &self,
        user: UserId,
        home: h3o::CellIndex,
    ) -> Result<u64> {
        let Some(wider) = area::default_post_cell(home) else {
            return Ok(0);
        };
        let rows = sqlx::query("SELECT id, cell FROM posts WHERE author_id = $1")
            .bind(user)
            .fetch_all(self.pool())
            .await?;
        let mut moved = 0;
        for r in rows {
            if cell_from_db(r.try_get("cell")?).is_some_and(|c| area::inside(c, home)) {
                moved += sqlx::query("UPDATE posts SET cell = $1, feed_cell = $2 WHERE id = $3")
                    .bind(cell_to_db(wider))
                    .bind(cell_to_db(area::feed_key(wider)))
                    .bind(r.try_get::<i64, _>("id")?)
                    .execute(self.pool())
                    .await?
                    .rows_affected();
            }
        }
        Ok(moved)
    }

    /// Who should be notified of post `post`: active users, other than the
    /// author, subscribed to its category, whose home area's radius covers
    /// the post's cell. [`crate::push`] sends them the Web Push messages.
    pub async fn recipients_for(&self, post: i64) -> Result<Vec<UserId>> {
        let row = self.post_row(post).await?;
        let Some(cell) = cell_from_db(row.try_get("cell")?) else {
            return Ok(Vec::new());
        };
        let author: i64 = row.try_get("author_id")?;
        let category: String = row.try_get("category")?;
        let users = sqlx::query(
            "SELECT u.id, u.home_cell, u.radius_km, u.suspended_until FROM users u
             JOIN subscriptions s ON s.user_id = u.id
             WHERE s.category = $1 AND u.status = 'active' AND u.home_cell IS NOT NULL AND u.id <> $2
             ORDER BY u.id",
        )
        .bind(&category)
        .bind(author)
        .fetch_all(self.pool())
        .await?;
        let now = now_ms();
        let mut out = Vec::new();
        for u in users {
            if u.try_get::<Option<i64>, _>("suspended_until")?
                .is_some_and(|t| t > now)
            {
                continue;
            }
            let Some(home) = cell_from_db(u.try_get("home_cell")?) else {
                continue;
            };
            if area::distance_km(home, cell) <= u.try_get::<f64, _>("radius_km")? {
                out.push(u.try_get("id")?);
            }
        }
        Ok(out)
    }
}

fn author_json(r: &sqlx::any::AnyRow) -> Result<Value> {
    let role: String = r.try_get("role")?;
    let verified = r.try_get::<i64, _>("agency_verified")? != 0;
    let mut a = json!({ "display_name": r.try_get::<String, _>("display_name")? });
    if role == "agency" && verified {
        a["badge"] = "verified agency".into();
        a["agency_name"] = r.try_get::<Option<String>, _>("agency_name")?.into();
    } else if role == "moderator" || role == "admin" {
        a["badge"] = role.into();
    }
    Ok(a)
}
