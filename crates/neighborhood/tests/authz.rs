//! The authorization matrix: every API route and every page route × every
//! role (anonymous, neighbor, agency, moderator, admin, suspended neighbor),
//! walked with real HTTP requests through the router, on SQLite and
//! PostgreSQL. Any unexpected allow fails, so does an unexpected refusal;
//! and the matrices' route lists must equal the router's (`api_routes()`
//! and `pages::PAGE_ROUTES`), so a new route without a row fails.
//! Pages are walked as a browser would: the session cookie, the session's
//! CSRF token in every form.
//! Also: no route accepts anything about footage, and `footage_request` is
//! not a post category.

mod common;

use std::collections::BTreeSet;

use common::{cell_at, home, png, Ctx, PASSWORD};
use porchlight_neighborhood::accounts::{RegistrationMode, Role, Viewer};
use porchlight_neighborhood::moderation::{ContentAction, UserAction};
use porchlight_neighborhood::posts::Category;
use porchlight_neighborhood::UserId;
use serde_json::{json, Value};

const ROLES: [&str; 6] = [
    "anonymous",
    "neighbor",
    "agency",
    "moderator",
    "admin",
    "suspended",
];

/// Expected outcome for one role.
#[derive(Clone, Copy, Debug, PartialEq)]
enum E {
    /// 2xx.
    Ok,
    /// 401 for anonymous, 403 otherwise.
    Deny,
    /// Any 4xx (refused as invalid or not found; never allowed).
    No,
}
use E::{Deny, No, Ok};

/// What each row does.
#[derive(Clone, Copy, Debug)]
enum S {
    Login,
    Logout,
    Register,
    Me,
    PutArea,
    GetSubs,
    PutSubs,
    TotpBegin,
    TotpConfirm,
    Notices,
    Appeal,
    Feed,
    PostResident,
    PostAgency,
    PostFootage,
    GetPost,
    PatchOwn,
    PatchOthers,
    DeleteOwn,
    DeleteOthers,
    PhotoOwn,
    PhotoOthers,
    GetPhoto,
    CommentResident,
    CommentOwn,
    DeleteCommentOwn,
    DeleteCommentOthers,
    React,
    Unreact,
    ReportPost,
    ReportComment,
    Queue,
    ModPost,
    ModComment,
    ModUser,
    Dismiss,
    DecideAppeal,
    DecideRegistration,
    AdminUser,
    VerifyAgency,
    Invite,
    RegMode,
    Audit,
    PushKey,
    PushSubscribe,
    PushUnsubscribe,
}

/// (method, path, scenario, [anonymous, neighbor, agency, moderator, admin, suspended])
const MATRIX: &[(&str, &str, S, [E; 6])] = &[
    (
        "POST",
        "/api/v1/sessions",
        S::Login,
        [Ok, Ok, Ok, Ok, Ok, Ok],
    ),
    (
        "DELETE",
        "/api/v1/sessions",
        S::Logout,
        [Deny, Ok, Ok, Ok, Ok, Ok],
    ),
    (
        "POST",
        "/api/v1/registrations",
        S::Register,
        [Ok, Ok, Ok, Ok, Ok, Ok],
    ),
    ("GET", "/api/v1/me", S::Me, [Deny, Ok, Ok, Ok, Ok, Ok]),
    (
        "PUT",
        "/api/v1/me/area",
        S::PutArea,
        [Deny, Ok, Ok, Ok, Ok, Deny],
    ),
    (
        "GET",
        "/api/v1/me/subscriptions",
        S::GetSubs,
        [Deny, Ok, Ok, Ok, Ok, Ok],
    ),
    (
        "PUT",
        "/api/v1/me/subscriptions",
        S::PutSubs,
        [Deny, Ok, Ok, Ok, Ok, Deny],
    ),
    (
        "POST",
        "/api/v1/me/totp",
        S::TotpBegin,
        [Deny, Ok, Ok, Ok, Ok, Deny],
    ),
    (
        "GET",
        "/api/v1/me/notices",
        S::Notices,
        [Deny, Ok, Ok, Ok, Ok, Ok],
    ),
    (
        "GET",
        "/api/v1/push/key",
        S::PushKey,
        [Deny, Ok, Ok, Ok, Ok, Ok],
    ),
    (
        "POST",
        "/api/v1/push/subscriptions",
        S::PushSubscribe,
        [Deny, Ok, Ok, Ok, Ok, Deny],
    ),
    // Suspended users may still stop notifications to a device.
    (
        "DELETE",
        "/api/v1/push/subscriptions",
        S::PushUnsubscribe,
        [Deny, Ok, Ok, Ok, Ok, Ok],
    ),
    (
        "POST",
        "/api/v1/me/notices/{id}/appeals",
        S::Appeal,
        [Deny, Ok, Ok, Ok, Ok, Ok],
    ),
    ("GET", "/api/v1/feed", S::Feed, [Deny, Ok, Ok, Ok, Ok, Deny]),
    (
        "POST",
        "/api/v1/posts",
        S::PostResident,
        [Deny, Ok, Deny, Ok, Ok, Deny],
    ),
    (
        "POST",
        "/api/v1/posts",
        S::PostAgency,
        [Deny, Deny, Ok, Deny, Deny, Deny],
    ),
    (
        "POST",
        "/api/v1/posts",
        S::PostFootage,
        [Deny, No, No, No, No, Deny],
    ),
    (
        "GET",
        "/api/v1/posts/{id}",
        S::GetPost,
        [Deny, Ok, Ok, Ok, Ok, Deny],
    ),
    (
        "PATCH",
        "/api/v1/posts/{id}",
        S::PatchOwn,
        [Deny, Ok, Ok, Ok, Ok, Deny],
    ),
    (
        "PATCH",
        "/api/v1/posts/{id}",
        S::PatchOthers,
        [Deny, Deny, Deny, Deny, Deny, Deny],
    ),
    (
        "DELETE",
        "/api/v1/posts/{id}",
        S::DeleteOwn,
        [Deny, Ok, Ok, Ok, Ok, Deny],
    ),
    (
        "DELETE",
        "/api/v1/posts/{id}",
        S::DeleteOthers,
        [Deny, Deny, Deny, Deny, Deny, Deny],
    ),
    (
        "POST",
        "/api/v1/posts/{id}/photos",
        S::PhotoOwn,
        [Deny, Ok, Ok, Ok, Ok, Deny],
    ),
    (
        "POST",
        "/api/v1/posts/{id}/photos",
        S::PhotoOthers,
        [Deny, Deny, Deny, Deny, Deny, Deny],
    ),
    (
        "GET",
        "/api/v1/photos/{id}",
        S::GetPhoto,
        [Deny, Ok, Deny, Ok, Ok, Deny],
    ),
    (
        "POST",
        "/api/v1/posts/{id}/comments",
        S::CommentResident,
        [Deny, Ok, Deny, Ok, Ok, Deny],
    ),
    (
        "POST",
        "/api/v1/posts/{id}/comments",
        S::CommentOwn,
        [Deny, Ok, Ok, Ok, Ok, Deny],
    ),
    (
        "DELETE",
        "/api/v1/comments/{id}",
        S::DeleteCommentOwn,
        [Deny, Ok, Ok, Ok, Ok, Deny],
    ),
    (
        "DELETE",
        "/api/v1/comments/{id}",
        S::DeleteCommentOthers,
        [Deny, Deny, Deny, Deny, Deny, Deny],
    ),
    (
        "POST",
        "/api/v1/posts/{id}/reactions",
        S::React,
        [Deny, Ok, Deny, Ok, Ok, Deny],
    ),
    (
        "DELETE",
        "/api/v1/posts/{id}/reactions/{kind}",
        S::Unreact,
        [Deny, Ok, Deny, Ok, Ok, Deny],
    ),
    (
        "POST",
        "/api/v1/posts/{id}/reports",
        S::ReportPost,
        [Deny, Ok, Ok, Ok, Ok, Deny],
    ),
    (
        "POST",
        "/api/v1/comments/{id}/reports",
        S::ReportComment,
        [Deny, Ok, Ok, Ok, Ok, Deny],
    ),
    (
        "GET",
        "/api/v1/moderation/queue",
        S::Queue,
        [Deny, Deny, Deny, Ok, Ok, Deny],
    ),
    (
        "POST",
        "/api/v1/moderation/posts/{id}/{action}",
        S::ModPost,
        [Deny, Deny, Deny, Ok, Ok, Deny],
    ),
    (
        "POST",
        "/api/v1/moderation/comments/{id}/{action}",
        S::ModComment,
        [Deny, Deny, Deny, Ok, Ok, Deny],
    ),
    (
        "POST",
        "/api/v1/moderation/users/{id}/{action}",
        S::ModUser,
        [Deny, Deny, Deny, Ok, Ok, Deny],
    ),
    (
        "POST",
        "/api/v1/moderation/reports/{id}/dismiss",
        S::Dismiss,
        [Deny, Deny, Deny, Ok, Ok, Deny],
    ),
    (
        "POST",
        "/api/v1/moderation/appeals/{id}",
        S::DecideAppeal,
        [Deny, Deny, Deny, Ok, Ok, Deny],
    ),
    (
        "POST",
        "/api/v1/moderation/registrations/{id}",
        S::DecideRegistration,
        [Deny, Deny, Deny, Ok, Ok, Deny],
    ),
    (
        "POST",
        "/api/v1/admin/users",
        S::AdminUser,
        [Deny, Deny, Deny, Deny, Ok, Deny],
    ),
    (
        "POST",
        "/api/v1/admin/users/{id}/verify-agency",
        S::VerifyAgency,
        [Deny, Deny, Deny, Deny, Ok, Deny],
    ),
    (
        "POST",
        "/api/v1/admin/invites",
        S::Invite,
        [Deny, Deny, Deny, Deny, Ok, Deny],
    ),
    (
        "PUT",
        "/api/v1/admin/registration",
        S::RegMode,
        [Deny, Deny, Deny, Deny, Ok, Deny],
    ),
    (
        "GET",
        "/api/v1/admin/audit",
        S::Audit,
        [Deny, Deny, Deny, Deny, Ok, Deny],
    ),
    // Last: enabling TOTP changes how the actor signs in.
    (
        "POST",
        "/api/v1/me/totp/confirm",
        S::TotpConfirm,
        [Deny, Ok, Ok, Ok, Ok, Deny],
    ),
];

#[test]
fn matrix_covers_every_route() {
    let router: BTreeSet<(String, String)> = porchlight_neighborhood::api::api_routes()
        .routes
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    let matrix: BTreeSet<(String, String)> = MATRIX
        .iter()
        .map(|(m, p, _, _)| (m.to_string(), p.to_string()))
        .collect();
    let missing: Vec<_> = router.difference(&matrix).collect();
    let extra: Vec<_> = matrix.difference(&router).collect();
    assert!(
        missing.is_empty(),
        "routes without a row in the authorization matrix: {missing:?}"
    );
    assert!(
        extra.is_empty(),
        "matrix rows for routes the router does not serve: {extra:?}"
    );
}

/// Everyone the walk needs.
struct World {
    home: h3o::CellIndex,
    near: h3o::CellIndex,
    /// Actors by role index 1..=5 (0 is anonymous): (id, username, token).
    actors: Vec<Option<(UserId, String, String)>>,
    /// A resident who owns the "others'" content.
    resident: (UserId, String),
    /// A moderator who is not an actor (hides actors' posts, suspends).
    mod2: UserId,
    counter: std::sync::atomic::AtomicU32,
}

impl World {
    fn fresh(&self, prefix: &str) -> String {
        format!(
            "{prefix}{}",
            self.counter
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        )
    }
}

async fn viewer(c: &Ctx, id: UserId) -> Viewer {
    c.n.viewer(id).await.unwrap()
}

async fn raw_post(c: &Ctx, author: UserId, agency: bool, cell: h3o::CellIndex) -> i64 {
    let cat = if agency {
        Category::SafetyTip
    } else {
        Category::Wildlife
    };
    c.n.insert_post_raw(
        author,
        cat,
        "A fox by the school",
        "Seen near the fence, heading east.",
        cell,
        json!({}),
        porchlight_neighborhood_now(),
    )
    .await
    .unwrap()
}

fn porchlight_neighborhood_now() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

async fn setup(c: &Ctx) -> World {
    let home = home();
    let near = cell_at(home, 0.4, 1.5);
    let mut actors = vec![None];
    for (role, name) in [
        (Role::Neighbor, "neighbor"),
        (Role::Agency, "agency"),
        (Role::Moderator, "moderator"),
        (Role::Admin, "admin"),
        (Role::Neighbor, "suspended"),
    ] {
        let (id, token) = c.user(name, role, Some(home)).await;
        actors.push(Some((id, name.to_string(), token)));
    }
    let (resident, _) = c.user("resident", Role::Neighbor, Some(home)).await;
    let (mod2, _) = c.user("mod2", Role::Moderator, Some(home)).await;
    let m2 = viewer(c, mod2).await;
    let suspended = actors[5].as_ref().unwrap().0;
    c.n.moderate_user(
        &m2,
        suspended,
        UserAction::Suspend,
        "testing the matrix",
        Some(48),
    )
    .await
    .unwrap();
    c.n.set_registration_mode(None, RegistrationMode::Open)
        .await
        .unwrap();
    World {
        home,
        near,
        actors,
        resident: (resident, "resident".into()),
        mod2,
        counter: Default::default(),
    }
}

/// Prepares one request for `role`: (path, body, token override).
async fn prepare(c: &Ctx, w: &World, s: S, role: usize) -> (String, Value, Option<String>) {
    let actor = w.actors[role].as_ref();
    let actor_id = actor.map(|a| a.0).unwrap_or(w.resident.0);
    let is_agency = role == 2;
    let res = w.resident.0;
    let rv = viewer(c, res).await;
    let m2 = viewer(c, w.mod2).await;
    let post_by_res = raw_post(c, res, false, w.near).await;
    let none = Value::Null;
    match s {
        S::Login => {
            let u = actor
                .map(|a| a.1.clone())
                .unwrap_or_else(|| w.resident.1.clone());
            (
                "/api/v1/sessions".into(),
                json!({"username": u, "password": PASSWORD}),
                None,
            )
        }
        S::Logout => {
            let second = match actor {
                Some(a) => Some(c.login(&a.1).await),
                None => None,
            };
            ("/api/v1/sessions".into(), none, second)
        }
        S::Register => {
            let code = c.n.create_invite(None).await.unwrap();
            let u = w.fresh("newbie");
            (
                "/api/v1/registrations".into(),
                json!({"username": u, "password": PASSWORD, "display_name": "New", "invite": code}),
                None,
            )
        }
        S::Me => ("/api/v1/me".into(), none, None),
        S::PutArea => (
            "/api/v1/me/area".into(),
            json!({"cell": w.home.to_string()}),
            None,
        ),
        S::GetSubs => ("/api/v1/me/subscriptions".into(), none, None),
        S::PutSubs => (
            "/api/v1/me/subscriptions".into(),
            json!({"categories": ["alert", "lost_found_pet"]}),
            None,
        ),
        S::TotpBegin => ("/api/v1/me/totp".into(), none, None),
        S::TotpConfirm => {
            let (secret, _) = c.n.begin_totp(actor_id).await.unwrap();
            let raw = data_encoding::BASE32_NOPAD
                .decode(secret.trim_end_matches('=').as_bytes())
                .unwrap();
            let code = porchlight_vault::totp::code_for_step(
                &raw,
                porchlight_vault::totp::step_at(porchlight_neighborhood_now() / 1000),
                6,
            );
            (
                "/api/v1/me/totp/confirm".into(),
                json!({"code": code}),
                None,
            )
        }
        S::Notices => ("/api/v1/me/notices".into(), none, None),
        S::Appeal => {
            let p = raw_post(c, actor_id, is_agency, w.near).await;
            c.n.moderate_content(&m2, "post", p, ContentAction::Hide, "off topic")
                .await
                .unwrap();
            let notices = c.n.notices(&viewer_any(c, actor_id).await).await.unwrap();
            let id = notices["notices"][0]["id"].as_i64().unwrap();
            (
                format!("/api/v1/me/notices/{id}/appeals"),
                json!({"text": "It was on topic."}),
                None,
            )
        }
        S::Feed => ("/api/v1/feed?radius_km=3".into(), none, None),
        S::PostResident => (
            "/api/v1/posts".into(),
            json!({"category": "wildlife", "title": "Deer in the garden", "body": "Two deer eating the roses.", "cell": w.near.to_string()}),
            None,
        ),
        S::PostAgency => (
            "/api/v1/posts".into(),
            json!({"category": "safety_tip", "title": "Clear your gutters", "body": "Leaves block drains and cause flooding.", "cell": w.near.to_string()}),
            None,
        ),
        S::PostFootage => (
            "/api/v1/posts".into(),
            json!({"category": "footage_request", "title": "Footage wanted", "body": "Send us your camera footage from Tuesday.", "cell": w.near.to_string()}),
            None,
        ),
        S::GetPost => (format!("/api/v1/posts/{post_by_res}"), none, None),
        S::PatchOwn => {
            let p = raw_post(c, actor_id, is_agency, w.near).await;
            (
                format!("/api/v1/posts/{p}"),
                json!({"body": "Edited: it went east."}),
                None,
            )
        }
        S::PatchOthers => (
            format!("/api/v1/posts/{post_by_res}"),
            json!({"body": "Edited by someone else"}),
            None,
        ),
        S::DeleteOwn => {
            let p = raw_post(c, actor_id, is_agency, w.near).await;
            (format!("/api/v1/posts/{p}"), none, None)
        }
        S::DeleteOthers => (format!("/api/v1/posts/{post_by_res}"), none, None),
        S::PhotoOwn | S::PhotoOthers => {
            let p = if matches!(s, S::PhotoOwn) {
                raw_post(c, actor_id, is_agency, w.near).await
            } else {
                post_by_res
            };
            (
                format!("/api/v1/posts/{p}/photos"),
                Value::String("PNG".into()),
                None,
            )
        }
        S::GetPhoto => {
            let ph = c.n.add_photo(&rv, post_by_res, &png(32, 24)).await.unwrap();
            (format!("/api/v1/photos/{ph}"), none, None)
        }
        S::CommentResident => (
            format!("/api/v1/posts/{post_by_res}/comments"),
            json!({"body": "I saw it too."}),
            None,
        ),
        S::CommentOwn => {
            let p = raw_post(c, actor_id, is_agency, w.near).await;
            (
                format!("/api/v1/posts/{p}/comments"),
                json!({"body": "Update: it left."}),
                None,
            )
        }
        S::DeleteCommentOwn => {
            // Comment directly as the actor (agency on its own post).
            let p = raw_post(c, actor_id, is_agency, w.near).await;
            let v = viewer_any(c, actor_id).await;
            let cid = insert_comment(c, &v, p).await;
            (format!("/api/v1/comments/{cid}"), none, None)
        }
        S::DeleteCommentOthers => {
            let cid =
                c.n.add_comment(&rv, post_by_res, "Nice!", false)
                    .await
                    .unwrap()["id"]
                    .as_i64()
                    .unwrap();
            (format!("/api/v1/comments/{cid}"), none, None)
        }
        S::React => (
            format!("/api/v1/posts/{post_by_res}/reactions"),
            json!({"kind": "thanks"}),
            None,
        ),
        S::Unreact => (
            format!("/api/v1/posts/{post_by_res}/reactions/thanks"),
            none,
            None,
        ),
        S::ReportPost => (
            format!("/api/v1/posts/{post_by_res}/reports"),
            json!({"reason": "profiling"}),
            None,
        ),
        S::ReportComment => {
            let cid =
                c.n.add_comment(&rv, post_by_res, "Nice!", false)
                    .await
                    .unwrap()["id"]
                    .as_i64()
                    .unwrap();
            (
                format!("/api/v1/comments/{cid}/reports"),
                json!({"reason": "spam"}),
                None,
            )
        }
        S::Queue => ("/api/v1/moderation/queue".into(), none, None),
        S::ModPost => (
            format!("/api/v1/moderation/posts/{post_by_res}/hide"),
            json!({"reason": "rule 2"}),
            None,
        ),
        S::ModComment => {
            let cid =
                c.n.add_comment(&rv, post_by_res, "Nice!", false)
                    .await
                    .unwrap()["id"]
                    .as_i64()
                    .unwrap();
            (
                format!("/api/v1/moderation/comments/{cid}/remove"),
                json!({"reason": "rule 3"}),
                None,
            )
        }
        S::ModUser => {
            let u = w.fresh("target");
            let id =
                c.n.create_user(&u, PASSWORD, "Target", Role::Neighbor, None)
                    .await
                    .unwrap();
            (
                format!("/api/v1/moderation/users/{id}/mute"),
                json!({"reason": "heated thread", "hours": 24}),
                None,
            )
        }
        S::Dismiss => {
            let r =
                c.n.report(&m2, "post", post_by_res, "spam", "")
                    .await
                    .unwrap();
            (
                format!("/api/v1/moderation/reports/{r}/dismiss"),
                json!({"reason": "not spam"}),
                None,
            )
        }
        S::DecideAppeal => {
            c.n.moderate_content(&m2, "post", post_by_res, ContentAction::Hide, "check")
                .await
                .unwrap();
            let notices = c.n.notices(&rv).await.unwrap();
            let nid = notices["notices"][0]["id"].as_i64().unwrap();
            let a = c.n.appeal(&rv, nid, "please").await.unwrap();
            (
                format!("/api/v1/moderation/appeals/{a}"),
                json!({"decision": "grant", "reason": "fair point"}),
                None,
            )
        }
        S::DecideRegistration => {
            let u = w.fresh("pending");
            let (id, status) = c.n.register(&u, PASSWORD, "Pending", None).await.unwrap();
            assert_eq!(status, "pending");
            (
                format!("/api/v1/moderation/registrations/{id}"),
                json!({"decision": "approve"}),
                None,
            )
        }
        S::AdminUser => {
            let u = w.fresh("made");
            (
                "/api/v1/admin/users".into(),
                json!({"username": u, "password": PASSWORD, "display_name": "Made", "role": "moderator"}),
                None,
            )
        }
        S::VerifyAgency => {
            let u = w.fresh("agency");
            let id =
                c.n.create_user(
                    &u,
                    PASSWORD,
                    "Parks",
                    Role::Agency,
                    Some("Parks Department"),
                )
                .await
                .unwrap();
            (
                format!("/api/v1/admin/users/{id}/verify-agency"),
                none,
                None,
            )
        }
        S::Invite => ("/api/v1/admin/invites".into(), none, None),
        S::RegMode => (
            "/api/v1/admin/registration".into(),
            json!({"mode": "open"}),
            None,
        ),
        S::Audit => ("/api/v1/admin/audit".into(), none, None),
        S::PushKey => ("/api/v1/push/key".into(), none, None),
        S::PushSubscribe => (
            "/api/v1/push/subscriptions".into(),
            browser_subscription(&w.fresh("sub")),
            None,
        ),
        S::PushUnsubscribe => {
            let sub = browser_subscription(&w.fresh("unsub"));
            c.n.subscribe_push(
                actor_id,
                &serde_json::from_value(sub.clone()).unwrap(),
                "test",
            )
            .await
            .unwrap();
            (
                "/api/v1/push/subscriptions".into(),
                json!({"endpoint": sub["endpoint"]}),
                None,
            )
        }
    }
}

/// A browser's push subscription (a real P-256 key; an https endpoint that
/// is never contacted in this walk).
fn browser_subscription(name: &str) -> Value {
    use base64::Engine;
    use web_push_native::p256::elliptic_curve::sec1::ToEncodedPoint;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let key = web_push_native::p256::SecretKey::random(&mut rand::rngs::OsRng);
    json!({
        "endpoint": format!("https://push.example/{name}"),
        "keys": {
            "p256dh": b64.encode(key.public_key().to_encoded_point(false).as_bytes()),
            "auth": b64.encode(rand::random::<[u8; 16]>()),
        }
    })
}

/// The viewer for `id` even while suspended (`viewer` works; kept as one place).
async fn viewer_any(c: &Ctx, id: UserId) -> Viewer {
    viewer(c, id).await
}

/// Inserts a comment without the caller's restrictions (suspended actors
/// still need a comment of their own to try to delete).
async fn insert_comment(c: &Ctx, v: &Viewer, post: i64) -> i64 {
    let mut unsuspended = v.clone();
    unsuspended.suspended_until = None;
    c.n.add_comment(&unsuspended, post, "my own comment", false)
        .await
        .unwrap()["id"]
        .as_i64()
        .unwrap()
}

async fn walk(c: Ctx) {
    let w = setup(&c).await;
    let mut failures = Vec::new();
    for (method, _, s, expect) in MATRIX {
        for (role, e) in expect.iter().enumerate() {
            let (path, body, token_override) = prepare(&c, &w, *s, role).await;
            let token = token_override.or_else(|| w.actors[role].as_ref().map(|a| a.2.clone()));
            let r = if body == Value::String("PNG".into()) {
                c.send(
                    method,
                    &path,
                    token.as_deref(),
                    Some("image/png"),
                    png(40, 30),
                )
                .await
            } else {
                c.req(method, &path, token.as_deref(), body).await
            };
            let st = r.status.as_u16();
            let good = match e {
                Ok => (200..300).contains(&st),
                Deny if role == 0 => st == 401,
                Deny => st == 403,
                No => (400..500).contains(&st),
            };
            if !good {
                failures.push(format!(
                    "{method} {path} as {}: expected {e:?}, got {r:?}",
                    ROLES[role]
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} authorization mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

async fn no_footage_channel(c: Ctx) {
    let w = setup(&c).await;
    let agency = w.actors[2].as_ref().unwrap().2.clone();
    // Plausible footage/camera/hub/user-listing/messaging routes: none exist.
    for (method, path) in [
        ("POST", "/api/v1/footage_requests"),
        ("POST", "/api/v1/footage"),
        ("GET", "/api/v1/footage"),
        ("POST", "/api/v1/requests"),
        ("POST", "/api/v1/messages"),
        ("GET", "/api/v1/messages"),
        ("GET", "/api/v1/cameras"),
        ("GET", "/api/v1/hubs"),
        ("GET", "/api/v1/users"),
        ("GET", "/api/v1/users?cell=882a100d25fffff"),
        ("POST", "/api/v1/posts/1/footage"),
    ] {
        let r = c
            .req(
                method,
                path,
                Some(&agency),
                json!({"camera": "any", "from": "2026-01-01"}),
            )
            .await;
        assert!(
            r.status == 404 || r.status == 405,
            "{method} {path} must not exist, got {r:?}"
        );
    }
    for cat in ["footage_request", "request_footage", "video_request"] {
        let r = c
            .req(
                "POST",
                "/api/v1/posts",
                Some(&agency),
                json!({"category": cat, "title": "Footage wanted", "body": "Share your camera video from Tuesday night.", "cell": w.near.to_string()}),
            )
            .await;
        assert_eq!(r.status, 422, "{cat}: {r:?}");
        assert!(
            r.json()["error"]
                .as_str()
                .unwrap()
                .contains("unknown category"),
            "{r:?}"
        );
    }
    // Extra fields (a "footage" ask smuggled into a normal post) are refused too.
    let r = c
        .req(
            "POST",
            "/api/v1/posts",
            Some(&agency),
            json!({"category": "alert", "title": "Break-ins", "body": "Stay alert.", "cell": w.near.to_string(), "request_footage": true}),
        )
        .await;
    assert_eq!(r.status, 422, "{r:?}");
    // An agency's post shows a badge and the agency name, never an id or home cell.
    let r = c
        .req(
            "POST",
            "/api/v1/posts",
            Some(&agency),
            json!({"category": "alert", "title": "Break-ins", "body": "Lock doors and sheds.", "cell": w.near.to_string()}),
        )
        .await;
    assert_eq!(r.status, 201, "{r:?}");
    let p = r.json();
    assert_eq!(p["author"]["badge"], "verified agency");
    assert_eq!(p["author"]["agency_name"], "City Fire Department");
    assert!(p.get("author_id").is_none());
    let text = String::from_utf8_lossy(&r.bytes).to_string();
    assert!(
        !text.contains(&w.home.to_string()),
        "a post must not reveal the author's home cell: {text}"
    );
}

both!(walk);
both!(no_footage_channel);

// ---------------------------------------------------------------------------
// The pages.
// ---------------------------------------------------------------------------

/// What each page row does.
#[derive(Clone, Copy, Debug)]
enum P {
    Asset,
    Root,
    SigninPage,
    Signin,
    Signout,
    Feed,
    NewPostPage,
    NewPostResident,
    NewPostAgency,
    NewPostFootage,
    ShowPost,
    CommentResident,
    CommentOwn,
    React,
    Report,
    DeleteOwn,
    DeleteOthers,
    Photo,
    AreaPage,
    AreaSave,
    Candidates,
    Notifications,
    PushSubscribe,
    PushUnsubscribe,
    Notices,
    Appeal,
    ModerationPage,
    ModerationAct,
}

/// Pages: Ok is 2xx or a redirect anywhere but `/signin`; Deny is a
/// redirect to `/signin` when anonymous and 403 otherwise; No is any 4xx.
const PAGE_MATRIX: &[(&str, &str, P, [E; 6])] = &[
    ("GET", "/", P::Root, [Ok, Ok, Ok, Ok, Ok, Ok]),
    ("GET", "/signin", P::SigninPage, [Ok, Ok, Ok, Ok, Ok, Ok]),
    ("POST", "/signin", P::Signin, [Ok, Ok, Ok, Ok, Ok, Ok]),
    ("POST", "/signout", P::Signout, [Deny, Ok, Ok, Ok, Ok, Ok]),
    ("GET", "/feed", P::Feed, [Deny, Ok, Ok, Ok, Ok, Deny]),
    (
        "GET",
        "/posts/new",
        P::NewPostPage,
        [Deny, Ok, Ok, Ok, Ok, Deny],
    ),
    (
        "POST",
        "/posts/new",
        P::NewPostResident,
        [Deny, Ok, Deny, Ok, Ok, Deny],
    ),
    (
        "POST",
        "/posts/new",
        P::NewPostAgency,
        [Deny, Deny, Ok, Deny, Deny, Deny],
    ),
    (
        "POST",
        "/posts/new",
        P::NewPostFootage,
        [Deny, No, No, No, No, Deny],
    ),
    (
        "GET",
        "/posts/{id}",
        P::ShowPost,
        [Deny, Ok, Ok, Ok, Ok, Deny],
    ),
    (
        "POST",
        "/posts/{id}/comments",
        P::CommentResident,
        [Deny, Ok, Deny, Ok, Ok, Deny],
    ),
    (
        "POST",
        "/posts/{id}/comments",
        P::CommentOwn,
        [Deny, Ok, Ok, Ok, Ok, Deny],
    ),
    (
        "POST",
        "/posts/{id}/reactions",
        P::React,
        [Deny, Ok, Deny, Ok, Ok, Deny],
    ),
    (
        "POST",
        "/posts/{id}/reports",
        P::Report,
        [Deny, Ok, Ok, Ok, Ok, Deny],
    ),
    (
        "POST",
        "/posts/{id}/delete",
        P::DeleteOwn,
        [Deny, Ok, Ok, Ok, Ok, Deny],
    ),
    (
        "POST",
        "/posts/{id}/delete",
        P::DeleteOthers,
        [Deny, Deny, Deny, Deny, Deny, Deny],
    ),
    (
        "GET",
        "/photos/{id}",
        P::Photo,
        [Deny, Ok, Deny, Ok, Ok, Deny],
    ),
    ("GET", "/area", P::AreaPage, [Deny, Ok, Ok, Ok, Ok, Ok]),
    ("POST", "/area", P::AreaSave, [Deny, Ok, Ok, Ok, Ok, Deny]),
    (
        "GET",
        "/area/candidates",
        P::Candidates,
        [Deny, Ok, Ok, Ok, Ok, Ok],
    ),
    (
        "POST",
        "/area/notifications",
        P::Notifications,
        [Deny, Ok, Ok, Ok, Ok, Deny],
    ),
    (
        "POST",
        "/push/subscribe",
        P::PushSubscribe,
        [Deny, Ok, Ok, Ok, Ok, Deny],
    ),
    (
        "POST",
        "/push/unsubscribe",
        P::PushUnsubscribe,
        [Deny, Ok, Ok, Ok, Ok, Ok],
    ),
    ("GET", "/notices", P::Notices, [Deny, Ok, Ok, Ok, Ok, Ok]),
    (
        "POST",
        "/notices/{id}/appeal",
        P::Appeal,
        [Deny, Ok, Ok, Ok, Ok, Ok],
    ),
    (
        "GET",
        "/moderation",
        P::ModerationPage,
        [Deny, Deny, Deny, Ok, Ok, Deny],
    ),
    (
        "POST",
        "/moderation/{kind}/{id}/{action}",
        P::ModerationAct,
        [Deny, Deny, Deny, Ok, Ok, Deny],
    ),
    (
        "GET",
        "/nb-assets/neighborhood.css",
        P::Asset,
        [Ok, Ok, Ok, Ok, Ok, Ok],
    ),
    (
        "GET",
        "/nb-assets/area.js",
        P::Asset,
        [Ok, Ok, Ok, Ok, Ok, Ok],
    ),
    (
        "GET",
        "/nb-assets/push.js",
        P::Asset,
        [Ok, Ok, Ok, Ok, Ok, Ok],
    ),
    ("GET", "/sw.js", P::Asset, [Ok, Ok, Ok, Ok, Ok, Ok]),
];

#[test]
fn page_matrix_covers_every_page_route() {
    let pages: BTreeSet<(&str, &str)> = porchlight_neighborhood::pages::PAGE_ROUTES
        .iter()
        .copied()
        .collect();
    let matrix: BTreeSet<(&str, &str)> = PAGE_MATRIX.iter().map(|(m, p, _, _)| (*m, *p)).collect();
    let missing: Vec<_> = pages.difference(&matrix).collect();
    let extra: Vec<_> = matrix.difference(&pages).collect();
    assert!(
        missing.is_empty(),
        "page routes without a row in the page matrix: {missing:?}"
    );
    assert!(
        extra.is_empty(),
        "page matrix rows for routes the pages do not serve: {extra:?}"
    );
}

/// A page request: path, body (form fields, or multipart), extra cookie,
/// token override.
enum PageBody {
    None,
    Form(Vec<(String, String)>),
    Multipart(Vec<(String, String)>),
}

async fn prepare_page(
    c: &Ctx,
    w: &World,
    p: P,
    path: &str,
    role: usize,
) -> (String, PageBody, Option<String>) {
    let actor = w.actors[role].as_ref();
    let actor_id = actor.map(|a| a.0).unwrap_or(w.resident.0);
    let is_agency = role == 2;
    let rv = viewer(c, w.resident.0).await;
    let m2 = viewer(c, w.mod2).await;
    let post_by_res = raw_post(c, w.resident.0, false, w.near).await;
    let form = |kv: &[(&str, &str)]| {
        PageBody::Form(
            kv.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    };
    let near = w.near.to_string();
    match p {
        P::Asset
        | P::Root
        | P::SigninPage
        | P::Feed
        | P::NewPostPage
        | P::AreaPage
        | P::Notices
        | P::ModerationPage => (path.to_string(), PageBody::None, None),
        P::Signin => {
            let u = actor
                .map(|a| a.1.clone())
                .unwrap_or_else(|| w.resident.1.clone());
            (
                path.into(),
                form(&[("username", u.as_str()), ("password", PASSWORD)]),
                None,
            )
        }
        P::Signout => {
            let second = match actor {
                Some(a) => Some(c.login(&a.1).await),
                None => None,
            };
            (path.into(), form(&[]), second)
        }
        P::NewPostResident | P::NewPostAgency | P::NewPostFootage => {
            let (cat, title, body) = match p {
                P::NewPostResident => (
                    "wildlife",
                    "Deer in the garden",
                    "Two deer eating the roses.",
                ),
                P::NewPostAgency => (
                    "safety_tip",
                    "Clear your gutters",
                    "Leaves block drains and cause flooding.",
                ),
                _ => (
                    "footage_request",
                    "Footage wanted",
                    "Send us your camera footage from Tuesday.",
                ),
            };
            let fields = [
                ("category", cat),
                ("title", title),
                ("body", body),
                ("cell", near.as_str()),
            ];
            (
                path.into(),
                PageBody::Multipart(
                    fields
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                ),
                None,
            )
        }
        P::ShowPost => (format!("/posts/{post_by_res}"), PageBody::None, None),
        P::CommentResident => (
            format!("/posts/{post_by_res}/comments"),
            form(&[("body", "I saw it too.")]),
            None,
        ),
        P::CommentOwn => {
            let own = raw_post(c, actor_id, is_agency, w.near).await;
            (
                format!("/posts/{own}/comments"),
                form(&[("body", "Update: it left.")]),
                None,
            )
        }
        P::React => (
            format!("/posts/{post_by_res}/reactions"),
            form(&[("kind", "thanks")]),
            None,
        ),
        P::Report => (
            format!("/posts/{post_by_res}/reports"),
            form(&[("reason", "profiling")]),
            None,
        ),
        P::DeleteOwn => {
            let own = raw_post(c, actor_id, is_agency, w.near).await;
            (format!("/posts/{own}/delete"), form(&[]), None)
        }
        P::DeleteOthers => (format!("/posts/{post_by_res}/delete"), form(&[]), None),
        P::Photo => {
            let ph = c.n.add_photo(&rv, post_by_res, &png(32, 24)).await.unwrap();
            (format!("/photos/{ph}"), PageBody::None, None)
        }
        P::AreaSave => (
            path.into(),
            form(&[("cell", w.home.to_string().as_str()), ("radius_km", "3")]),
            None,
        ),
        P::Candidates => (
            "/area/candidates?lat=47.6&lng=-122.3".into(),
            PageBody::None,
            None,
        ),
        P::Notifications => (
            path.into(),
            form(&[("category", "alert"), ("category", "wildlife")]),
            None,
        ),
        P::PushSubscribe | P::PushUnsubscribe => {
            let sub = browser_subscription(&w.fresh("page-sub"));
            let ep = sub["endpoint"].as_str().unwrap().to_string();
            if matches!(p, P::PushUnsubscribe) {
                c.n.subscribe_push(
                    actor_id,
                    &serde_json::from_value(sub.clone()).unwrap(),
                    "test",
                )
                .await
                .unwrap();
                (path.into(), form(&[("endpoint", ep.as_str())]), None)
            } else {
                let (k, a) = (
                    sub["keys"]["p256dh"].as_str().unwrap(),
                    sub["keys"]["auth"].as_str().unwrap(),
                );
                (
                    path.into(),
                    form(&[("endpoint", ep.as_str()), ("p256dh", k), ("auth", a)]),
                    None,
                )
            }
        }
        P::Appeal => {
            let own = raw_post(c, actor_id, is_agency, w.near).await;
            c.n.moderate_content(&m2, "post", own, ContentAction::Hide, "off topic")
                .await
                .unwrap();
            let notices = c.n.notices(&viewer(c, actor_id).await).await.unwrap();
            let id = notices["notices"][0]["id"].as_i64().unwrap();
            (
                format!("/notices/{id}/appeal"),
                form(&[("text", "It was on topic.")]),
                None,
            )
        }
        P::ModerationAct => (
            format!("/moderation/posts/{post_by_res}/hide"),
            form(&[("reason", "rule 2")]),
            None,
        ),
    }
}

fn multipart_body(fields: &[(String, String)]) -> (String, Vec<u8>) {
    let boundary = "----nbauthzboundary1234";
    let mut b = Vec::new();
    for (k, v) in fields {
        b.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n")
                .as_bytes(),
        );
    }
    b.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), b)
}

async fn walk_pages(c: Ctx) {
    let w = setup(&c).await;
    let mut failures = Vec::new();
    for (method, route, p, expect) in PAGE_MATRIX {
        for (role, e) in expect.iter().enumerate() {
            let (path, body, token_override) = prepare_page(&c, &w, *p, route, role).await;
            let token = token_override.or_else(|| w.actors[role].as_ref().map(|a| a.2.clone()));
            // A browser: the session cookie, the pre-sign-in CSRF cookie,
            // and the matching token in every form.
            let pre = "precsrf0123456789abcdef";
            let csrf = match &token {
                Some(t) => porchlight_neighborhood::pages::csrf_for(t),
                None => pre.to_string(),
            };
            let cookie = match &token {
                Some(t) => format!("nb_session={t}; nb_csrf={pre}"),
                None => format!("nb_csrf={pre}"),
            };
            let mut b = axum::http::Request::builder()
                .method(*method)
                .uri(&path)
                .header("host", "nb.test")
                .header("cookie", cookie);
            let body = match body {
                PageBody::None => axum::body::Body::empty(),
                PageBody::Form(mut kv) => {
                    kv.insert(
                        0,
                        (
                            "csrf".into(),
                            if matches!(p, P::Signin) {
                                pre.to_string()
                            } else {
                                csrf.clone()
                            },
                        ),
                    );
                    b = b.header("content-type", "application/x-www-form-urlencoded");
                    axum::body::Body::from(
                        form_urlencoded::Serializer::new(String::new())
                            .extend_pairs(kv)
                            .finish(),
                    )
                }
                PageBody::Multipart(mut kv) => {
                    kv.insert(0, ("csrf".into(), csrf.clone()));
                    let (ct, bytes) = multipart_body(&kv);
                    b = b.header("content-type", ct);
                    axum::body::Body::from(bytes)
                }
            };
            let resp = tower::ServiceExt::oneshot(c.app.clone(), b.body(body).unwrap())
                .await
                .unwrap();
            let st = resp.status().as_u16();
            let location = resp
                .headers()
                .get("location")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            let to_signin = (300..400).contains(&st) && location == "/signin";
            // Signing out also ends at /signin; it did its job when it
            // clears the session cookie (a refused request leaves it).
            let cleared = resp
                .headers()
                .get_all("set-cookie")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .any(|v| v.to_ascii_lowercase().contains("max-age=0"));
            let good = match e {
                Ok if path == "/signout" => to_signin && cleared,
                Deny if path == "/signout" && role == 0 => to_signin && !cleared,
                Ok => (200..300).contains(&st) || ((300..400).contains(&st) && !to_signin),
                Deny if role == 0 => to_signin,
                Deny => st == 403,
                No => (400..500).contains(&st),
            };
            if !good {
                failures.push(format!(
                    "{method} {path} as {}: expected {e:?}, got {st} {location}",
                    ROLES[role]
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} page authorization mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

both!(walk_pages);
