//! The page frame every page shares.
//!
//! Signed-in pages get a tab bar: at the bottom of the screen on a phone
//! (where a thumb reaches it), in the header on wider screens. The same
//! markup serves both; only the stylesheet moves it.

use maud::{html, Markup, DOCTYPE};
use porchlight_store::{Role, SessionRow};

fn head(title: &str) -> Markup {
    html! {
        meta charset="utf-8";
        meta name="viewport" content="width=device-width, initial-scale=1, viewport-fit=cover";
        title { (title) " · Porchlight" }
        link rel="stylesheet" href="/static/app.css";
        link rel="manifest" href="/manifest.webmanifest";
        link rel="icon" href="/static/icon.svg" type="image/svg+xml";
        link rel="apple-touch-icon" href="/static/icon-192.png";
        meta name="theme-color" content="#14202e";
        script src="/static/app.js" defer {}
    }
}

/// A page for someone not (fully) signed in.
pub fn bare(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head { (head(title)) }
            body.bare {
                header.top { a.brand href="/" { span.logo {} "Porchlight" } }
                main.narrow { (body) }
            }
        }
    }
}

/// The tabs of the app; `None` for pages outside them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tab {
    Home,
    Live,
    Events,
    Alarm,
    Settings,
    Account,
}

/// A page for a signed-in user, with navigation and sign-out.
pub fn page(title: &str, s: &SessionRow, body: Markup) -> Markup {
    page_in(None, title, s, body)
}

/// [`page`] with tab `tab` marked as the current one.
pub fn page_in(tab: Option<Tab>, title: &str, s: &SessionRow, body: Markup) -> Markup {
    let owner = s.role == Role::Owner;
    let item = |t: Tab, href: &str, icon: &str, label: &str| {
        html! {
            a.tab href=(href) aria-current=[(tab == Some(t)).then_some("page")] {
                span.icon aria-hidden="true" { (icon) }
                span.label { (label) }
            }
        }
    };
    html! {
        (DOCTYPE)
        html lang="en" {
            head { (head(title)) }
            body.app {
                header.top {
                    a.brand href="/" { span.logo {} "Porchlight" }
                    nav.tabs aria-label="Main" {
                        (item(Tab::Home, "/", "⌂", "Home"))
                        (item(Tab::Live, "/live", "◉", "Live"))
                        (item(Tab::Events, "/events", "☰", "Events"))
                        @if matches!(s.role, Role::Owner | Role::Member) {
                            (item(Tab::Alarm, "/alarm", "⚑", "Alarm"))
                        }
                        @if owner {
                            (item(Tab::Settings, "/settings", "⚙", "Settings"))
                        } @else {
                            (item(Tab::Account, "/account", "☺", "Account"))
                        }
                    }
                    form.inline.signout method="post" action="/signout" {
                        (csrf_field(&s.csrf_token))
                        button.link type="submit" { "Sign out" }
                    }
                }
                main { (body) }
            }
        }
    }
}

/// The hidden form field the CSRF guard checks.
pub fn csrf_field(token: &str) -> Markup {
    html! { input type="hidden" name="csrf" value=(token); }
}

/// A short instant for tables: `2026-11-29 14:02:11 UTC`.
pub fn when(t: jiff::Timestamp) -> String {
    t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// An instant as a `<time>` element: UTC in the page, turned into the
/// reader's local time by the script. `format`: `full` (date and time
/// with seconds), `datetime` (date, hours and minutes), `time` (hours and
/// minutes) or `seconds` (time with seconds).
pub fn time_el(t: jiff::Timestamp, format: &str) -> Markup {
    let text = match format {
        "time" => t.strftime("%H:%M UTC").to_string(),
        "seconds" => t.strftime("%H:%M:%S UTC").to_string(),
        "datetime" => t.strftime("%Y-%m-%d %H:%M UTC").to_string(),
        _ => when(t),
    };
    html! { time datetime=(t.to_string()) data-format=(format) { (text) } }
}

/// A person-sized duration: `45 s`, `12 min`, `3 h 20 min`.
pub fn human_duration(secs: i64) -> String {
    let secs = secs.max(0);
    if secs < 60 {
        format!("{secs} s")
    } else if secs < 3600 {
        format!("{} min", secs / 60)
    } else {
        let (h, m) = (secs / 3600, (secs % 3600) / 60);
        if m == 0 {
            format!("{h} h")
        } else {
            format!("{h} h {m} min")
        }
    }
}

/// Percent-encodes a query value (instants carry `:` and `+`).
pub fn q(v: &str) -> String {
    form_urlencoded::byte_serialize(v.as_bytes()).collect()
}
