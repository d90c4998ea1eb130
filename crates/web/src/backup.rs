//! Off-site backup on the settings page (issue 17, design/backup.md):
//! each destination with its queue, last upload and last error; a form to
//! add one (a folder or an S3 bucket) and a button to stop one. Adding
//! goes through `porchlight_backup::admin::add`, as `porchlight backup
//! add` does: the household's key bundle is written there first, so a
//! wrong address or key is said at once and nothing is saved. Owners only;
//! audited as `backup.add` and `backup.remove`. The running hub's
//! uploader picks a change up within seconds.
//!
//! The S3 secret is never sent back into the page.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{html, Markup};
use porchlight_store::{Role, SessionRow};

use crate::error::{PageError, WebError};
use crate::pages::layout::{csrf_field, time_el};
use crate::pages::settings::Fields;
use crate::session::{require_role, PageUser};
use crate::App;

/// The Backup section of the settings index.
pub(crate) async fn section(
    app: &App,
    s: &SessionRow,
    error: Option<&str>,
) -> Result<Markup, WebError> {
    let store = app.vault.store();
    let csrf = csrf_field(&s.csrf_token);
    let mut rows = Vec::new();
    for d in store.backup_destinations().await? {
        let q = store.backup_queue(d.id).await?;
        rows.push((d, q));
    }
    Ok(html! {
        section #backup {
            h2 { "Off-site backup" }
            p.muted {
                "When someone is at the door, a parcel arrives or the alarm goes off, the footage goes to a place you choose while it happens — as the encrypted bytes already on this hub. Your password alone restores it, even if the hub is stolen: "
                code { "porchlight backup restore --from URL --user NAME --event ID --output clip.mp4" }
            }
            @if let Some(e) = error {
                p.error #backup-error role="alert" { (e) }
            }
            @if rows.is_empty() {
                p #backup-none { "No destination yet." }
            } @else {
                table #backup-destinations {
                    thead { tr { th { "Name" } th { "Where" } th { "What" } th { "Queue" } th { "Last upload" } th {} } }
                    tbody {
                        @for (d, q) in &rows {
                            tr data-name=(d.name) {
                                td { (d.name) }
                                td { code { (d.url) } }
                                td { (d.mode) @if d.may_delete { ", may delete" } @else { ", never deletes" } }
                                td.backup-queue { (q.segments) " segment(s), " (q.events) " event(s)" }
                                td {
                                    @match d.last_upload_at { Some(t) => (time_el(t, "datetime")), None => "never" }
                                    @if let Some(e) = &d.last_error { br; span.error.backup-last-error { (e) } }
                                }
                                td {
                                    form method="post" action=(format!("/settings/backup/{}/remove", d.name)) {
                                        (csrf)
                                        button type="submit" { "Stop" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            details #backup-add-details open[rows.is_empty()] {
                summary { "Add a destination" }
                form #backup-add method="post" action="/settings/backup" {
                    (csrf)
                    label { "Where (file:///mnt/nas/porchlight or s3://bucket/prefix)"
                        input type="text" name="url" required autocomplete="off" spellcheck="false";
                    }
                    label { "Name (optional)" input type="text" name="name" autocomplete="off"; }
                    label { "What"
                        select name="mode" {
                            option value="events" selected { "Events: people, vehicles, parcels, doorbell, alarm" }
                            option value="continuous" { "Everything, events first" }
                        }
                    }
                    fieldset {
                        legend { "S3 (not needed for a folder)" }
                        label { "Endpoint" input type="text" name="endpoint" placeholder="https://s3.example.net" autocomplete="off"; }
                        label { "Region" input type="text" name="region" placeholder="us-east-1" autocomplete="off"; }
                        label { "Access key id" input type="text" name="access_key_id" autocomplete="off" spellcheck="false"; }
                        label { "Secret access key" input type="password" name="secret_access_key" autocomplete="off"; }
                    }
                    p.muted { "Use a key that can write but not delete: a thief holding the hub then cannot erase the copies (design/backup.md)." }
                    button type="submit" { "Add" }
                }
            }
        }
    })
}

/// `POST /settings/backup`: add a destination. Owners only.
pub(crate) async fn add(
    State(app): State<App>,
    u: PageUser,
    body: Bytes,
) -> Result<Response, PageError> {
    require_role(&u.session, &[Role::Owner]).map_err(PageError)?;
    let f = Fields::parse(&body);
    let s = |k: &str| f.get(k).map(str::to_owned);
    let url = s("url").unwrap_or_default();
    let req = porchlight_backup::admin::AddRequest {
        url: url.clone(),
        name: s("name"),
        mode: s("mode").unwrap_or_else(|| "events".into()),
        cameras: None,
        max_rate_mbit: None,
        allow_delete: false,
        retain_days: None,
        retain_gib: None,
        options: porchlight_backup::DestOptions {
            endpoint: s("endpoint"),
            region: s("region"),
            access_key_id: s("access_key_id"),
            secret_access_key: s("secret_access_key"),
        },
    };
    let actor = u.visitor.actor();
    match porchlight_backup::admin::add(app.vault.store(), &req, app.vault.now()).await {
        Ok(row) => {
            app.vault
                .audit(
                    &actor,
                    "backup.add",
                    &row.name,
                    serde_json::json!({ "url": row.url, "mode": row.mode, "may_delete": false }),
                )
                .await
                .map_err(WebError::from)?;
            Ok(Redirect::to("/settings#backup").into_response())
        }
        Err(e) => {
            let q: String = form_urlencoded::Serializer::new(String::new())
                .append_pair("backup_error", &e.to_string())
                .finish();
            Ok(Redirect::to(&format!("/settings?{q}#backup")).into_response())
        }
    }
}

/// `POST /settings/backup/{name}/remove`: stop sending there (what is
/// stored stays). Owners only.
pub(crate) async fn remove(
    State(app): State<App>,
    u: PageUser,
    Path(name): Path<String>,
) -> Result<Response, PageError> {
    require_role(&u.session, &[Role::Owner]).map_err(PageError)?;
    if app
        .vault
        .store()
        .remove_backup_destination(&name)
        .await
        .map_err(WebError::from)?
    {
        app.vault
            .audit(
                &u.visitor.actor(),
                "backup.remove",
                &name,
                serde_json::json!({}),
            )
            .await
            .map_err(WebError::from)?;
    }
    Ok(Redirect::to("/settings#backup").into_response())
}
