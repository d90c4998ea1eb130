//! The page frame every page shares.

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

/// A page for a signed-in user, with navigation and sign-out.
pub fn page(title: &str, s: &SessionRow, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head { (head(title)) }
            body {
                header.top {
                    a.brand href="/" { span.logo {} "Porchlight" }
                    nav {
                        a href="/" { "Home" }
                        a href="/account" { "Account" }
                        @if s.role == Role::Owner { a href="/audit" { "Audit log" } }
                        form.inline method="post" action="/signout" {
                            (csrf_field(&s.csrf_token))
                            button.link type="submit" { "Sign out" }
                        }
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
