//! The home page.

use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;

use super::layout::page;
use crate::error::PageError;
use crate::session::{PageRedirect, Visitor};
use crate::App;
use porchlight_store::SessionStage;

pub(super) async fn home(State(app): State<App>, v: Visitor) -> Result<Response, PageError> {
    if app.vault.store().count_users().await? == 0 {
        return Ok(Redirect::to("/setup").into_response());
    }
    let s = match &v.session {
        None => return Ok(Redirect::to("/signin").into_response()),
        Some(s) if s.stage == SessionStage::Full => s,
        Some(s) if s.stage == SessionStage::Totp => {
            return Ok(PageRedirect::To("/signin/code").into_response())
        }
        Some(_) => return Ok(PageRedirect::To("/account/two-factor").into_response()),
    };
    let key = app.vault.unlocked_key(s).is_some();
    let store = app.vault.store();
    let mut cams = Vec::new();
    for c in store.cameras().await? {
        if store.may_see_camera(s.user_id, c.id).await? {
            let st = store.camera_status(c.id).await?;
            let live = st.is_some_and(|st| {
                st.connected && (app.vault.now() - st.updated_at).get_seconds() < 20
            });
            cams.push((c, live));
        }
    }
    Ok(page(
        "Home",
        s,
        html! {
            h1 { "Hello, " (s.username) }
            section.card {
                h2 { "Cameras" }
                @if cams.is_empty() {
                    p.muted { "No cameras yet. Owners add them with " code { "porchlight camera add NAME --url rtsp://…" } "." }
                } @else {
                    ul.tiles {
                        @for (c, live) in &cams {
                            li { a href={ "/cameras/" (c.name) } {
                                span.dot.on[*live] {}
                                strong { (c.name) }
                                span.muted { @if *live { " recording" } @else { " offline" } }
                            } }
                        }
                    }
                }
            }
            section.card {
                h2 { "Privacy" }
                ul {
                    li { "Video stays on this hub, encrypted to your household's keys." }
                    @if s.role.is_hub_role() {
                        li { "Your household key is " @if key { "unlocked for this session only" } @else { "locked" } "." }
                    }
                    li { "Every sign-in and every look at footage is written to the audit log"
                        @if s.role == porchlight_store::Role::Owner { " — " a href="/audit" { "read it" } } "." }
                }
            }
        },
    )
    .into_response())
}
