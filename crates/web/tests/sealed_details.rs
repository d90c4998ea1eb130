//! Event details sealed at rest (issue 14 item 8), in-process: a real
//! router, store and vault in a temporary folder. Events are written the
//! way the event path and the alarm write them (`porchlight_vault::details`),
//! plus one row as Porchlight wrote them before migration 13, sealed by the
//! hub's start-up pass. Then:
//!
//! * the database and its WAL hold none of the details (labels, zone
//!   names, the doorbell's sensor, the alarm's transition and cause);
//! * the owner sees every detail in the API and the pages, and can filter
//!   by kind;
//! * a member granted the camera after the events sees them as "sealed to
//!   other members" (the page still works), sees events from after the
//!   grant, and never the alarm's (sealed to the owners); a member's key
//!   opens nothing of a camera they were never granted.

#[allow(dead_code)]
mod support;

use axum::http::StatusCode;
use porchlight_store::{EventFilter, NewEvent, Role, StoredDetails};
use porchlight_vault::details::{self, Unreadable};
use serde_json::{json, Value};
use support::{hub, Hub, PW};

/// Strings that only the events' details contain.
/// Not "person" or "parcel" themselves: they are also every camera's
/// default alert labels in its detection settings, configuration the hub
/// keeps in clear (design/keys.md); the events' own strings stand for
/// their details.
const SECRETS: [&str; 7] = [
    "porch-step-zone",
    "garden-gate-bell",
    "back-door-contact",
    "hall-keypad",
    "armed_away",
    "legacy-shed-zone",
    "grandma-left-the-keys",
];

async fn record(h: &Hub, e: NewEvent) -> i64 {
    details::insert_event(h.vault.store(), &e, h.vault.now())
        .await
        .unwrap()
}

fn ago(h: &Hub, mins: i64) -> Option<jiff::Timestamp> {
    Some(h.vault.now() - jiff::SignedDuration::from_mins(mins))
}

/// The scenario's events on `cam`, as detection, the doorbell and the
/// alarm write them.
async fn scenario(h: &Hub, cam: i64) {
    record(
        h,
        NewEvent {
            camera_id: Some(cam),
            kind: "person".into(),
            source: "detection".into(),
            alert: true,
            start: ago(h, 30),
            end: ago(h, 29),
            score: Some(0.87),
            zones: vec!["porch-step-zone".into()],
            detail: json!({"labels": ["person"], "objects": [{"label": "person", "score": 0.87}], "preroll_s": 5}),
            ..Default::default()
        },
    )
    .await;
    record(
        h,
        NewEvent {
            camera_id: Some(cam),
            kind: "package_delivered".into(),
            source: "detection".into(),
            alert: true,
            start: ago(h, 28),
            end: ago(h, 28),
            detail: json!({"labels": ["parcel"], "score": 0.41}),
            ..Default::default()
        },
    )
    .await;
    record(
        h,
        NewEvent {
            camera_id: Some(cam),
            kind: "doorbell".into(),
            source: "mqtt".into(),
            alert: true,
            start: ago(h, 27),
            detail: json!({"sensor": "garden-gate-bell", "action": "single", "note": "grandma-left-the-keys"}),
            ..Default::default()
        },
    )
    .await;
    record(
        h,
        NewEvent {
            camera_id: Some(cam),
            kind: "alarm".into(),
            source: "alarm".into(),
            alert: true,
            start: ago(h, 26),
            detail: json!({"from": "armed_away", "to": "pending", "by": "keypad:hall-keypad", "cause": "back-door-contact"}),
            ..Default::default()
        },
    )
    .await;
}

/// Everything the database files hold, bytes of the DB and its WAL.
fn db_files(h: &Hub) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for name in [
        "porchlight.db",
        "porchlight.db-wal",
        "porchlight.db-journal",
    ] {
        if let Ok(b) = std::fs::read(h.dir.path().join(name)) {
            out.push((name.to_owned(), b));
        }
    }
    assert!(!out.is_empty());
    out
}

fn events_of(v: &Value) -> Vec<Value> {
    v["events"].as_array().unwrap().clone()
}

#[tokio::test]
async fn details_are_sealed_at_rest_and_opened_for_who_may_see_them() {
    let h = hub().await;
    let owner = h.user("owner", Role::Owner).await;
    let member = h.user("member", Role::Member).await;
    let front = h.camera("front").await;
    let back = h.camera("back").await;
    let store = h.vault.store();

    // A row as an older Porchlight wrote it, then the hub's start-up pass.
    let legacy = store
        .insert_plaintext_event_as_before_v13(
            &NewEvent {
                camera_id: Some(back),
                kind: "person".into(),
                source: "detection".into(),
                start: ago(&h, 40),
                end: ago(&h, 39),
                zones: vec!["legacy-shed-zone".into()],
                detail: json!({"labels": ["person"]}),
                ..Default::default()
            },
            h.vault.now(),
        )
        .await
        .unwrap();
    scenario(&h, front).await;
    assert_eq!(
        details::seal_legacy_events(store, h.vault.now())
            .await
            .unwrap(),
        1
    );
    assert!(matches!(
        store.event(legacy).await.unwrap().unwrap().details,
        StoredDetails::Sealed(_)
    ));

    // At rest: none of the details, in the database or its WAL.
    for (name, bytes) in db_files(&h) {
        for s in SECRETS {
            assert!(
                !bytes.windows(s.len()).any(|w| w == s.as_bytes()),
                "`{s}` is readable in {name}"
            );
        }
    }

    // The owner sees everything, in the API and the pages.
    let all = events_of(&h.get("/api/v1/events", &owner).await.json());
    let kinds: Vec<&str> = all.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        ["alarm", "doorbell", "package_delivered", "person", "person"],
        "{all:#?}"
    );
    assert!(all.iter().all(|e| e["sealed"].is_null()), "{all:#?}");
    let person = &all[3];
    assert_eq!(person["zones"], json!(["porch-step-zone"]));
    assert_eq!(person["labels"], json!(["person"]));
    assert_eq!(person["review"], "alert");
    assert_eq!(all[2]["labels"], json!(["parcel"]));
    assert_eq!(
        all[4]["zones"],
        json!(["legacy-shed-zone"]),
        "the sealed old row"
    );
    let one = h
        .get(&format!("/api/v1/events/{}", all[1]["id"]), &owner)
        .await
        .json();
    assert_eq!(one["kind"], "doorbell");
    let page = h.get("/events", &owner).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.text().contains("porch-step-zone"), "{}", page.text());
    let detail = h.get(&format!("/events/{}", person["id"]), &owner).await;
    assert!(
        detail.text().contains("Person at front"),
        "{}",
        detail.text()
    );
    // Filtering by kind happens after opening.
    let people = events_of(&h.get("/api/v1/events?kind=person", &owner).await.json());
    assert_eq!(people.len(), 2);
    assert!(people.iter().all(|e| e["kind"] == "person"));

    // The member, granted `front` only now: what came before is sealed to
    // other members — shown as such, never an error.
    let mid = h.user_id("member").await;
    store.grant_camera(front, mid, true).await.unwrap();
    let seen = events_of(&h.get("/api/v1/events", &member).await.json());
    assert_eq!(seen.len(), 4, "only front's events: {seen:#?}");
    for e in &seen {
        assert_eq!(e["kind"], "sealed", "{e}");
        assert_eq!(e["sealed"], "sealed to other members", "{e}");
        assert_eq!(e["zones"], json!([]));
        assert_eq!(e["labels"], json!([]));
    }
    let page = h.get("/events", &member).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.text().contains("Sealed to other members"));
    assert!(!page.text().contains("porch-step-zone"));
    let detail = h.get(&format!("/events/{}", person["id"]), &member).await;
    assert_eq!(detail.status, StatusCode::OK);
    assert!(
        detail.text().contains("sealed to other members"),
        "{}",
        detail.text()
    );
    assert!(!detail.text().contains("porch-step-zone"));
    let none = events_of(&h.get("/api/v1/events?kind=person", &member).await.json());
    assert!(none.is_empty(), "{none:#?}");

    // From the grant on, the camera's events are sealed to the member too;
    // the alarm's stay the owners'.
    scenario(&h, front).await;
    let seen = events_of(&h.get("/api/v1/events", &member).await.json());
    let opened: Vec<&str> = seen
        .iter()
        .filter(|e| e["sealed"].is_null())
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        opened,
        ["doorbell", "package_delivered", "person"],
        "{seen:#?}"
    );
    assert_eq!(seen.iter().filter(|e| e["kind"] == "sealed").count(), 5);

    // Cryptographically: the member's key opens nothing of `back`.
    let member_key = porchlight_vault::keys::unwrap_with_password(
        &store
            .user_by_name("member")
            .await
            .unwrap()
            .unwrap()
            .keys
            .unwrap()
            .by_password,
        PW,
    )
    .unwrap();
    let back_rows = store
        .events(&EventFilter {
            cameras: Some(vec![back]),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(back_rows.len(), 1);
    assert_eq!(
        details::open_event(&back_rows[0], Some(&member_key)),
        Err(Unreadable::OtherMembers)
    );
}
