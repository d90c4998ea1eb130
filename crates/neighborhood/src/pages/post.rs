//! A post with its comments (comment form with the kindness reminder,
//! reactions, report button), and the new-post form (with the fair-posting
//! guidance shown up front and, when a post is returned for revision, the
//! exact reasons and what to add). The form's place starts empty — the
//! author's home area is never filled in — and an empty place means the
//! wider area around the home ([`area::default_post_cell`]).

use axum::extract::{Multipart, Path, Request, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::RequestExt;
use maud::{html, Markup};
use serde_json::Value;

use super::{
    author_json, category_label, check_csrf, csrf_field, page, see_other, svg, Form, Nav,
    PageError, PageResult, Session,
};
use crate::accounts::Role;
use crate::posts::{
    NewPost, AGENCY_CATEGORIES, REACTION_KINDS, REPORT_REASONS, RESIDENT_CATEGORIES,
};
use crate::{area, Error, Neighborhood};

fn bad(msg: impl Into<String>) -> PageError {
    PageError::new(StatusCode::UNPROCESSABLE_ENTITY, msg)
}

fn reaction_label(k: &str) -> &'static str {
    match k {
        "thanks" => "🙏 Thanks",
        "helpful" => "👍 Helpful",
        "heart" => "❤ Heart",
        _ => "React",
    }
}

fn report_label(r: &str) -> &'static str {
    match r {
        "profiling" => "Profiling (describes someone by race or looks, not behaviour)",
        "harassment" => "Harassment or hostility",
        "misinformation" => "Misinformation",
        "spam" => "Spam",
        "privacy" => "Reveals someone's private information",
        _ => "Something else",
    }
}

/// A comment being written, kept across a kindness reminder.
#[derive(Default)]
struct Draft<'a> {
    text: &'a str,
    reminder: Option<&'a str>,
    note: Option<&'a str>,
}

fn photo_id(url: &str) -> Option<i64> {
    url.rsplit('/').next()?.parse().ok()
}

async fn render_post(
    n: &Neighborhood,
    s: &Session,
    id: i64,
    draft: Draft<'_>,
) -> Result<Markup, PageError> {
    let p = n.post(&s.v, id).await?;
    let cat = p["category"].as_str().unwrap_or("");
    let mine = p["mine"].as_bool().unwrap_or(false);
    let agency_viewer = s.v.role == Role::Agency;
    let cell = p["cell"]
        .as_str()
        .and_then(|c| c.parse::<h3o::CellIndex>().ok());
    let drawing = match (s.v.home_cell, cell) {
        (Some(home), Some(c)) => {
            let d = area::distance_km(home, c);
            let r = area::check_radius_km((d + 0.6).max(1.0)).unwrap_or(area::MAX_RADIUS_KM);
            Some(area::cells_svg(home, r, Some(c)))
        }
        _ => None,
    };
    let comments = p["comments"].as_array().cloned().unwrap_or_default();
    let photos: Vec<i64> = p["photos"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|u| u.as_str().and_then(photo_id))
        .collect();
    let can_comment = !agency_viewer || mine;
    let body = html! {
        @if let Some(note) = draft.note { p.notice role="status" { (note) } }
        article.card.post.agency-post[p["author"]["badge"].as_str() == Some("verified agency")] {
            p.meta {
                span.category { (category_label(cat)) }
                @if let Some(d) = p["distance"].as_str() { " · " span.distance { (d) } }
                @if let Some(m) = p["moderation"].as_str() { " · " span.badge.warn { "This post is " (m) } }
            }
            h1 { (p["title"].as_str().unwrap_or("")) }
            p.byline {
                (author_json(&p["author"])) " · " time { (p["created_at"].as_str().unwrap_or("")) }
                @if p["edited_at"].is_string() { " · edited" }
            }
            @if let (Some(date), Some(time)) = (p["date"].as_str(), p["time"].as_str()) {
                p.event { "📅 " (date) " at " (time) @if let Some(pl) = p["place"].as_str() { " · " (pl) } }
            }
            @if let (Some(kind), Some(status)) = (p["kind"].as_str(), p["status"].as_str()) {
                p.aid { span.badge { (kind) } " " span.badge { (status) } }
            }
            @for para in p["body"].as_str().unwrap_or("").split("\n\n") { p.body { (para) } }
            @if !photos.is_empty() {
                @if agency_viewer {
                    p.muted { "Photos are not available to agency accounts." }
                } @else {
                    div.photos { @for ph in &photos { img src={ "/photos/" (ph) } alt="Photo shared with this post" loading="lazy"; } }
                }
            }
            @if let Some(d) = &drawing {
                figure.area-drawing.small {
                    (svg(d.clone()))
                    figcaption.muted { "The post's cell (dot) and your area (outlined)." }
                }
            }
            @if !agency_viewer {
                div.reactions {
                    @for k in REACTION_KINDS {
                        form.inline method="post" action={ "/posts/" (id) "/reactions" } {
                            (csrf_field(&s.csrf))
                            input type="hidden" name="kind" value=(k);
                            button.secondary type="submit" { (reaction_label(k)) " " (p["reactions"][*k].as_i64().unwrap_or(0)) }
                        }
                    }
                }
            }
            @if mine {
                form.inline method="post" action={ "/posts/" (id) "/delete" } {
                    (csrf_field(&s.csrf))
                    button.danger type="submit" { "Delete my post" }
                }
            }
        }
        section #comments .comments {
            h2 { "Comments" }
            @if comments.is_empty() { p.muted { "No comments yet." } }
            @for c in &comments {
                div.comment {
                    p.byline { (author_json(&c["author"])) " · " time { (c["created_at"].as_str().unwrap_or("")) }
                        @if let Some(st) = c["status"].as_str() { " · " span.badge.warn { (st) } } }
                    p { (c["body"].as_str().unwrap_or("")) }
                }
            }
            @if can_comment {
                form method="post" action={ "/posts/" (id) "/comments" } {
                    (csrf_field(&s.csrf))
                    @if let Some(r) = draft.reminder {
                        div.kindness role="alert" {
                            p { strong { "A moment before you post" } }
                            p { (r) }
                        }
                    }
                    label { "Add a comment" textarea name="body" rows="3" required maxlength="2000" { (draft.text) } }
                    div.actions {
                        button type="submit" { @if draft.reminder.is_some() { "Post revised comment" } @else { "Comment" } }
                        @if draft.reminder.is_some() {
                            button.secondary type="submit" name="confirm" value="1" { "Post as written" }
                        }
                    }
                }
            } @else {
                p.muted { "Agency accounts reply only under their own posts." }
            }
        }
        @if !mine {
            details.report {
                summary { "Report this post" }
                form method="post" action={ "/posts/" (id) "/reports" } {
                    (csrf_field(&s.csrf))
                    label { "Why?"
                        select name="reason" {
                            @for r in REPORT_REASONS { option value=(r) { (report_label(r)) } }
                        }
                    }
                    label { "Anything moderators should know (optional)" textarea name="note" rows="2" maxlength="1000" {} }
                    button.secondary type="submit" { "Send report to moderators" }
                }
            }
        }
    };
    Ok(page(
        p["title"].as_str().unwrap_or("Post"),
        s,
        Nav::None,
        body,
    ))
}

/// `GET /posts/{id}`.
pub async fn show(State(n): State<Neighborhood>, s: Session, Path(id): Path<i64>) -> PageResult {
    Ok(render_post(&n, &s, id, Draft::default())
        .await?
        .into_response())
}

/// `POST /posts/{id}/comments`: a hostile-reading comment comes back with
/// the kindness reminder (409) and the text kept; "Post as written" sends
/// `confirm=1`.
pub async fn comment(State(n): State<Neighborhood>, Path(id): Path<i64>, f: Form) -> PageResult {
    let text = f.text("body");
    let confirm = f.get("confirm") == Some("1");
    match n.add_comment(&f.s.v, id, text, confirm).await {
        Ok(_) => Ok(see_other(&format!("/posts/{id}#comments"))),
        Err(Error::Kindness { reminder }) => {
            let m = render_post(
                &n,
                &f.s,
                id,
                Draft {
                    text,
                    reminder: Some(&reminder),
                    note: None,
                },
            )
            .await?;
            Ok((StatusCode::CONFLICT, m).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

/// `POST /posts/{id}/reactions`: toggles on (a second press is still "on";
/// reactions are counts, not a vote).
pub async fn react(State(n): State<Neighborhood>, Path(id): Path<i64>, f: Form) -> PageResult {
    n.react(&f.s.v, id, f.text("kind"), true).await?;
    Ok(see_other(&format!("/posts/{id}")))
}

/// `POST /posts/{id}/reports`.
pub async fn report(State(n): State<Neighborhood>, Path(id): Path<i64>, f: Form) -> PageResult {
    n.report(&f.s.v, "post", id, f.text("reason"), f.text("note"))
        .await?;
    let m = render_post(
        &n,
        &f.s,
        id,
        Draft {
            note: Some("Thank you. Moderators will look at your report."),
            ..Draft::default()
        },
    )
    .await?;
    Ok(m.into_response())
}

/// `POST /posts/{id}/delete` (author).
pub async fn delete(State(n): State<Neighborhood>, Path(id): Path<i64>, f: Form) -> PageResult {
    n.delete_post(&f.s.v, id).await?;
    Ok(see_other("/feed"))
}

/// `GET /photos/{id}`: the re-encoded JPEG (never served to agencies).
pub async fn photo(State(n): State<Neighborhood>, s: Session, Path(id): Path<i64>) -> PageResult {
    let bytes = n.photo(&s.v, id).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "image/jpeg"),
            (header::CACHE_CONTROL, "private, max-age=3600"),
        ],
        bytes,
    )
        .into_response())
}

// ---------------------------------------------------------------------------
// New post.
// ---------------------------------------------------------------------------

/// What the author typed, kept when the post is returned.
#[derive(Default, Clone)]
struct PostDraft {
    category: String,
    title: String,
    body: String,
    cell: String,
    kind: String,
    status: String,
    date: String,
    time: String,
    place: String,
}

const FAIR_GUIDE: &str = "Describe what the person did first — what happened, where and when. \
    Then, only if it helps neighbors recognise them, what they looked like: clothing, hair, build, \
    age range, vehicle. In any post, safety or not, a description that mentions race or ethnicity \
    needs at least two of those other details, or it will be sent back to you.";

fn new_post_form(
    s: &Session,
    d: &PostDraft,
    error: Option<&str>,
    revise: Option<(&[String], &str)>,
) -> Markup {
    let cats: &[&str] = if s.v.role == Role::Agency {
        AGENCY_CATEGORIES
    } else {
        RESIDENT_CATEGORIES
    };
    let body = html! {
        h1 { "New post" }
        @if let Some((reasons, guidance)) = revise {
            div.revise role="alert" {
                h2 { "Please revise your post before it is published" }
                ul { @for r in reasons { li { (r) } } }
                p { strong { "What to change: " } (guidance) }
            }
        }
        @if let Some(e) = error { p.error role="alert" { (e) } }
        aside.guide {
            h2 { "Describing someone?" }
            p { (FAIR_GUIDE) }
        }
        form method="post" action="/posts/new" enctype="multipart/form-data" {
            (csrf_field(&s.csrf))
            label { "Category"
                select name="category" required {
                    @for c in cats { option value=(c) selected[d.category == *c] { (category_label(c)) } }
                }
            }
            label { "Title" input name="title" required maxlength="120" value=(d.title); }
            label { "What happened" textarea name="body" rows="6" required maxlength="5000" { (d.body) } }
            label { "Place (optional: an area cell, resolution 9 or coarser)"
                input name="cell" value=(d.cell) pattern="[0-9a-fA-F]{15,16}";
                span.muted.small {
                    @match s.v.home_cell.and_then(area::default_post_cell) {
                        Some(wide) => {
                            "Leave it empty and the post shows the wider area around your home (cell "
                            code { (wide) } ", about 5 km²) — never your own area. "
                        }
                        None => { "Choose the cell where it happened. " }
                    }
                    "Posts never carry an address or coordinates."
                }
            }
            fieldset {
                legend { "Mutual aid only" }
                label { "Offer or request"
                    select name="kind" {
                        option value="" { "—" }
                        option value="offer" selected[d.kind == "offer"] { "Offer" }
                        option value="request" selected[d.kind == "request"] { "Request" }
                    }
                }
                label { "Status"
                    select name="status" {
                        option value="open" selected[d.status != "fulfilled"] { "Open" }
                        option value="fulfilled" selected[d.status == "fulfilled"] { "Fulfilled" }
                    }
                }
            }
            fieldset {
                legend { "Events only" }
                label { "Date" input type="date" name="date" value=(d.date); }
                label { "Time" input type="time" name="time" value=(d.time); }
                label { "Place" input name="place" maxlength="200" value=(d.place); }
            }
            label { "Photos (optional; location and camera data are removed)"
                input type="file" name="photo" accept="image/jpeg,image/png,image/webp" multiple;
            }
            button type="submit" { "Publish" }
        }
    };
    page("New post", s, Nav::NewPost, body)
}

/// `GET /posts/new` (refused, with the reason, while muted or suspended).
pub async fn new_post_page(s: Session) -> PageResult {
    s.v.require_can_write()?;
    // The place starts empty: the home area is never filled in, so a post
    // made as the form comes never carries it (issue 14 item 7).
    Ok(new_post_form(&s, &PostDraft::default(), None, None).into_response())
}

/// `POST /posts/new` (multipart: fields and up to four photos). A post
/// returned by the fair-posting check comes back as 422 with the reasons
/// and guidance, everything typed kept.
pub async fn create(State(n): State<Neighborhood>, s: Session, req: Request) -> PageResult {
    let headers = req.headers().clone();
    let mut mp: Multipart = req
        .extract()
        .await
        .map_err(|e| bad(format!("The form could not be read: {e}")))?;
    let mut d = PostDraft::default();
    let mut csrf = String::new();
    let mut photos: Vec<Vec<u8>> = Vec::new();
    while let Some(field) = mp
        .next_field()
        .await
        .map_err(|e| bad(format!("The form could not be read: {e}")))?
    {
        let name = field.name().unwrap_or("").to_string();
        if name == "photo" {
            let bytes = field
                .bytes()
                .await
                .map_err(|e| bad(format!("The photo could not be read: {e}")))?;
            if !bytes.is_empty() {
                photos.push(bytes.to_vec());
            }
            continue;
        }
        let text = field
            .text()
            .await
            .map_err(|e| bad(format!("The form could not be read: {e}")))?;
        match name.as_str() {
            "csrf" => csrf = text,
            "category" => d.category = text,
            "title" => d.title = text,
            "body" => d.body = text,
            "cell" => d.cell = text,
            "kind" => d.kind = text,
            "status" => d.status = text,
            "date" => d.date = text,
            "time" => d.time = text,
            "place" => d.place = text,
            _ => {}
        }
    }
    check_csrf(&s, &headers, Some(&csrf))?;
    if photos.len() as i64 > crate::posts::MAX_PHOTOS_PER_POST {
        let msg = format!(
            "A post can carry at most {} photos.",
            crate::posts::MAX_PHOTOS_PER_POST
        );
        return Ok((
            StatusCode::UNPROCESSABLE_ENTITY,
            new_post_form(&s, &d, Some(&msg), None),
        )
            .into_response());
    }
    let opt = |v: &str| Some(v.trim().to_string()).filter(|v| !v.is_empty());
    let aid = d.category == "mutual_aid";
    let event = matches!(d.category.as_str(), "community_event" | "event");
    let np = NewPost {
        category: d.category.clone(),
        title: d.title.clone(),
        body: d.body.clone(),
        cell: Some(d.cell.clone()),
        kind: if aid { opt(&d.kind) } else { None },
        status: if aid { opt(&d.status) } else { None },
        date: if event { opt(&d.date) } else { None },
        time: if event { opt(&d.time) } else { None },
        place: if event { opt(&d.place) } else { None },
    };
    let created: Value = match n.create_post(&s.v, &np).await {
        Ok(v) => v,
        Err(Error::Revise { reasons, guidance }) => {
            let m = new_post_form(&s, &d, None, Some((&reasons, &guidance)));
            return Ok((StatusCode::UNPROCESSABLE_ENTITY, m).into_response());
        }
        Err(Error::Db(e)) => return Err(Error::Db(e).into()),
        Err(e) => {
            let pe = PageError::from(e);
            return Ok((pe.status, new_post_form(&s, &d, Some(&pe.message), None)).into_response());
        }
    };
    let id = created["id"].as_i64().unwrap_or(0);
    let mut refused = Vec::new();
    for bytes in &photos {
        if let Err(e) = n.add_photo(&s.v, id, bytes).await {
            refused.push(PageError::from(e).message);
        }
    }
    if refused.is_empty() {
        return Ok(see_other(&format!("/posts/{id}")));
    }
    let note = format!(
        "Your post is published, but a photo was not added: {}",
        refused.join(" ")
    );
    Ok(render_post(
        &n,
        &s,
        id,
        Draft {
            note: Some(&note),
            ..Draft::default()
        },
    )
    .await?
    .into_response())
}
