//! The feed page: posts around the viewer's home area, newest first, with
//! radius and category filters, each post's distance in words, and a
//! drawing of the cells the feed covers.

use axum::extract::{Query, State};
use axum::response::IntoResponse;
use maud::html;
use serde::Deserialize;
use serde_json::Value;

use super::{
    author_json, category_label, page, q, see_other, svg, Nav, PageError, PageResult, Session,
};
use crate::posts::{AGENCY_CATEGORIES, RESIDENT_CATEGORIES};
use crate::{area, Neighborhood};

/// Radii offered by the filter.
pub const RADII: &[f64] = &[0.5, 1.0, 2.0, 3.0, 5.0, 8.0];

#[derive(Deserialize, Default)]
pub struct FeedQuery {
    radius_km: Option<String>,
    category: Option<String>,
    before: Option<String>,
}

fn km_label(r: f64) -> String {
    if r.fract() == 0.0 {
        format!("{} km", r as u32)
    } else {
        format!("{r} km")
    }
}

/// `GET /feed`.
pub async fn feed(
    State(n): State<Neighborhood>,
    s: Session,
    Query(fq): Query<FeedQuery>,
) -> PageResult {
    let Some(home) = s.v.home_cell else {
        return Ok(see_other("/area?first=1"));
    };
    let radius = match fq.radius_km.as_deref().filter(|r| !r.is_empty()) {
        Some(r) => Some(r.parse::<f64>().map_err(|_| {
            PageError::new(
                axum::http::StatusCode::UNPROCESSABLE_ENTITY,
                format!("The radius {r:?} is not a number of kilometres."),
            )
        })?),
        None => None,
    };
    let category = fq.category.as_deref().filter(|c| !c.is_empty());
    let before = match fq.before.as_deref().filter(|b| !b.is_empty()) {
        Some(b) => Some(b.parse::<i64>().map_err(|_| {
            PageError::new(
                axum::http::StatusCode::UNPROCESSABLE_ENTITY,
                "The page cursor is not a post number.",
            )
        })?),
        None => None,
    };
    let f = n.feed(&s.v, radius, category, before, None).await?;
    let radius = f["radius_km"].as_f64().unwrap_or(s.v.radius_km);
    let posts = f["posts"].as_array().cloned().unwrap_or_default();
    let next = f["next_before"].as_i64();
    let categories: Vec<&str> = RESIDENT_CATEGORIES
        .iter()
        .chain(AGENCY_CATEGORIES)
        .copied()
        .collect();
    let body = html! {
        h1 { "Around you" }
        form.filters method="get" action="/feed" {
            label { "Within"
                select name="radius_km" {
                    @for r in RADII {
                        option value=(r) selected[(r - radius).abs() < 1e-9] { (km_label(*r)) }
                    }
                }
            }
            label { "Show"
                select name="category" {
                    option value="" selected[category.is_none()] { "Everything" }
                    @for c in &categories {
                        option value=(c) selected[category == Some(*c)] { (category_label(c)) }
                    }
                }
            }
            button type="submit" { "Update" }
        }
        figure.area-drawing {
            (svg(area::cells_svg(home, radius, None)))
            figcaption.muted { "Your area (outlined) and the cells within " (km_label(radius)) ". Places are shown as coarse hexagons, never as addresses." }
        }
        @if posts.is_empty() {
            p.muted { "No posts here yet." @if category.is_some() { " Try showing everything." } }
        }
        ol.posts {
            @for p in &posts { li { (post_card(p)) } }
        }
        @if let Some(b) = next {
            p { a.button.secondary href={ "/feed?radius_km=" (radius) "&category=" (q(category.unwrap_or(""))) "&before=" (b) } { "Older posts" } }
        }
    };
    Ok(page("Feed", &s, Nav::Feed, body).into_response())
}

/// One post in a list.
pub fn post_card(p: &Value) -> maud::Markup {
    let id = p["id"].as_i64().unwrap_or(0);
    let cat = p["category"].as_str().unwrap_or("");
    let body = p["body"].as_str().unwrap_or("");
    let excerpt: String = body.chars().take(280).collect();
    let agency = p["author"]["badge"].as_str() == Some("verified agency");
    html! {
        article.card.post-card.agency-post[agency] {
            p.meta {
                span.category { (category_label(cat)) }
                @if let Some(d) = p["distance"].as_str() { " · " span.distance { (d) } }
                @if let Some(m) = p["moderation"].as_str() { " · " span.badge.warn { (m) } }
            }
            h2 { a href={ "/posts/" (id) } { (p["title"].as_str().unwrap_or("")) } }
            p.byline { (author_json(&p["author"])) " · " time { (p["created_at"].as_str().unwrap_or("")) } }
            p.excerpt { (excerpt) @if body.chars().count() > 280 { "…" } }
            @if let (Some(date), Some(time)) = (p["date"].as_str(), p["time"].as_str()) {
                p.event { "📅 " (date) " " (time) @if let Some(pl) = p["place"].as_str() { " · " (pl) } }
            }
            @if let (Some(kind), Some(status)) = (p["kind"].as_str(), p["status"].as_str()) {
                p.aid { span.badge { (kind) } " " span.badge { (status) } }
            }
            p.muted.small {
                (p["comment_count"].as_i64().unwrap_or(0)) " comments"
                @let photos = p["photos"].as_array().map(Vec::len).unwrap_or(0);
                @if photos > 0 { " · " (photos) " photo" @if photos > 1 { "s" } }
            }
        }
    }
}
