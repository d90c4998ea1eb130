//! The neighborhood's behaviour through its JSON API, each test on SQLite
//! and PostgreSQL: the feed by radius, coarse areas, posts that never show
//! their author's home, fair posting, the
//! kindness reminder, moderation end to end, photos losing their GPS tags,
//! rate limits, registration, sign-in throttling, notification recipients
//! and the demo seed.

mod common;

use common::{cell_at, home, next_door, png, Ctx, PASSWORD};
use porchlight_neighborhood::accounts::{RegistrationMode, Role};
use porchlight_neighborhood::{area, Limits};
use serde_json::{json, Value};

async fn post(
    c: &Ctx,
    token: &str,
    category: &str,
    title: &str,
    body: &str,
    cell: h3o::CellIndex,
) -> Value {
    let r = c
        .req(
            "POST",
            "/api/v1/posts",
            Some(token),
            json!({"category": category, "title": title, "body": body, "cell": cell.to_string()}),
        )
        .await;
    assert_eq!(r.status, 201, "{r:?}");
    r.json()
}

fn titles(feed: &Value) -> Vec<String> {
    feed["posts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["title"].as_str().unwrap().to_string())
        .collect()
}

async fn feed_inside_radius_only(c: Ctx) {
    let home = home();
    let (_, t) = c.user("ana", Role::Neighbor, Some(home)).await;
    let near = cell_at(home, 0.5, 1.5);
    let mid = cell_at(home, 2.0, 2.7);
    let far = cell_at(home, 4.0, 6.0);
    let very_far = cell_at(home, 9.5, 12.0);
    // A resolution-9 post cell inside `near`: indexed by its parent.
    let fine = near.children(h3o::Resolution::Nine).next().unwrap();
    post(
        &c,
        &t,
        "wildlife",
        "home",
        "Heron at the pond.",
        next_door(home),
    )
    .await;
    post(&c, &t, "wildlife", "near", "Heron at the pond.", near).await;
    post(&c, &t, "lost_found_pet", "mid", "Found a grey cat.", mid).await;
    post(&c, &t, "wildlife", "fine", "Heron at the pond.", fine).await;
    post(&c, &t, "wildlife", "far", "Heron at the pond.", far).await;
    // Beyond 8 km of the author's area: refused.
    let r = c
        .req("POST", "/api/v1/posts", Some(&t), json!({"category": "wildlife", "title": "x", "body": "y", "cell": very_far.to_string()}))
        .await;
    assert_eq!(r.status, 422, "{r:?}");

    let f = c
        .req("GET", "/api/v1/feed?radius_km=3", Some(&t), Value::Null)
        .await
        .json();
    let mut got = titles(&f);
    got.sort();
    assert_eq!(got, vec!["fine", "home", "mid", "near"], "3 km feed");
    // Newest first.
    assert_eq!(titles(&f)[0], "fine");
    // Distances in words, never another user's cell.
    assert!(f["posts"][0]["distance"].is_string());

    let f = c
        .req("GET", "/api/v1/feed?radius_km=8", Some(&t), Value::Null)
        .await
        .json();
    assert!(
        titles(&f).contains(&"far".to_string()),
        "8 km feed includes the far post: {f}"
    );
    let f = c
        .req("GET", "/api/v1/feed?radius_km=1", Some(&t), Value::Null)
        .await
        .json();
    assert!(
        !titles(&f).contains(&"mid".to_string()),
        "1 km feed excludes the 2+ km post"
    );

    // Category filter and the `before` cursor.
    let f = c
        .req(
            "GET",
            "/api/v1/feed?category=lost_found_pet",
            Some(&t),
            Value::Null,
        )
        .await
        .json();
    assert_eq!(titles(&f), vec!["mid"]);
    let f = c
        .req("GET", "/api/v1/feed?limit=2", Some(&t), Value::Null)
        .await
        .json();
    assert_eq!(titles(&f), vec!["fine", "mid"]);
    let next = f["next_before"]
        .as_i64()
        .expect("a cursor when the page is full");
    let f = c
        .req(
            "GET",
            &format!("/api/v1/feed?limit=2&before={next}"),
            Some(&t),
            Value::Null,
        )
        .await
        .json();
    assert_eq!(titles(&f), vec!["near", "home"]);

    // Bad radius and category are named.
    let r = c
        .req("GET", "/api/v1/feed?radius_km=50", Some(&t), Value::Null)
        .await;
    assert_eq!(r.status, 422, "{r:?}");
    let r = c
        .req(
            "GET",
            "/api/v1/feed?category=footage_request",
            Some(&t),
            Value::Null,
        )
        .await;
    assert_eq!(r.status, 422, "{r:?}");
}

async fn coarse_areas_only(c: Ctx) {
    let home = home();
    let (_, t) = c.user("ben", Role::Neighbor, None).await;
    // No area yet: the feed says what to do.
    let r = c.req("GET", "/api/v1/feed", Some(&t), Value::Null).await;
    assert_eq!(r.status, 422);
    assert!(
        r.json()["error"].as_str().unwrap().contains("area"),
        "{r:?}"
    );

    let fine9 = home.children(h3o::Resolution::Nine).next().unwrap();
    let fine10 = home.children(h3o::Resolution::Ten).next().unwrap();
    for bad in [
        fine9.to_string(),
        "47.6205,-122.3493".to_string(),
        "47.6205, -122.3493".into(),
        "not-a-cell".into(),
        "".into(),
    ] {
        let r = c
            .req("PUT", "/api/v1/me/area", Some(&t), json!({"cell": bad}))
            .await;
        assert_eq!(r.status, 422, "{bad:?}: {r:?}");
        assert!(
            r.json()["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{r:?}"
        );
    }
    let r = c
        .req(
            "PUT",
            "/api/v1/me/area",
            Some(&t),
            json!({"cell": home.to_string(), "radius_km": 20.0}),
        )
        .await;
    assert_eq!(r.status, 422, "radius beyond 8 km: {r:?}");
    let r = c
        .req(
            "PUT",
            "/api/v1/me/area",
            Some(&t),
            json!({"cell": home.to_string(), "radius_km": 2.0}),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    let me = c
        .req("GET", "/api/v1/me", Some(&t), Value::Null)
        .await
        .json();
    assert_eq!(me["cell"], home.to_string());
    assert_eq!(me["radius_km"], 2.0);

    // Posts: resolution 9 is fine (outside the home area), 10 and raw
    // coordinates are not.
    post(
        &c,
        &t,
        "wildlife",
        "ok",
        "A heron.",
        next_door(home)
            .children(h3o::Resolution::Nine)
            .next()
            .unwrap(),
    )
    .await;
    for bad in [fine10.to_string(), "47.6205,-122.3493".to_string()] {
        let r = c
            .req(
                "POST",
                "/api/v1/posts",
                Some(&t),
                json!({"category": "wildlife", "title": "t", "body": "b", "cell": bad}),
            )
            .await;
        assert_eq!(r.status, 422, "{bad:?}: {r:?}");
    }
    // Nobody else learns ben's home cell.
    let (_, other) = c.user("cyd", Role::Neighbor, Some(home)).await;
    let f = c
        .req("GET", "/api/v1/feed", Some(&other), Value::Null)
        .await;
    let text = String::from_utf8_lossy(&f.bytes);
    assert!(text.contains("\"ok\""), "{text}");
    assert!(
        !text.contains(&home.to_string()),
        "the feed must not carry a home cell: {text}"
    );
}

async fn fair_posting(c: Ctx) {
    let home = home();
    let (_, t) = c.user("dee", Role::Neighbor, Some(home)).await;
    let cell = cell_at(home, 0.4, 1.5);
    // Ethnicity as the main descriptor, no behaviour: returned for revision.
    let r = c
        .req(
            "POST",
            "/api/v1/posts",
            Some(&t),
            json!({"category": "suspicious", "title": "Suspicious Hispanic guy",
                   "body": "There is a Hispanic guy on our street.", "cell": cell.to_string()}),
        )
        .await;
    assert_eq!(r.status, 422, "{r:?}");
    let j = r.json();
    assert!(
        j["reasons"].as_array().is_some_and(|a| !a.is_empty()),
        "{j}"
    );
    assert!(j["guidance"].as_str().is_some_and(|g| !g.is_empty()), "{j}");
    // Nothing was stored.
    let f = c
        .req("GET", "/api/v1/feed", Some(&t), Value::Null)
        .await
        .json();
    assert!(titles(&f).is_empty(), "{f}");
    // Behaviour first, several descriptors: accepted.
    let ok = post(
        &c,
        &t,
        "suspicious",
        "Someone trying car door handles",
        "Around 2am a person walked down the block pulling on car door handles. Adult, dark hoodie, grey backpack, riding a bicycle.",
        cell,
    )
    .await;
    assert!(ok["id"].is_i64());
    // An edit that turns it into profiling is returned too.
    let r = c
        .req("PATCH", &format!("/api/v1/posts/{}", ok["id"]), Some(&t),
             json!({"title": "Suspicious Hispanic guy", "body": "There is a Hispanic guy on our street."}))
        .await;
    assert_eq!(r.status, 422, "{r:?}");
    let p = c
        .req(
            "GET",
            &format!("/api/v1/posts/{}", ok["id"]),
            Some(&t),
            Value::Null,
        )
        .await
        .json();
    assert_eq!(p["title"], "Someone trying car door handles");
    // The race rule holds in every category (issue 14 item 9): a kind post
    // that describes a neighbour by race alone goes back too, and nothing
    // is stored.
    let r = c
        .req(
            "POST",
            "/api/v1/posts",
            Some(&t),
            json!({"category": "neighborly_moment", "title": "Thanks",
                   "body": "A black man in a hoodie helped me carry my groceries. Thank you!", "cell": cell.to_string()}),
        )
        .await;
    assert_eq!(r.status, 422, "race alone in a neighborly moment: {r:?}");
    assert!(
        r.json()["reasons"][0]
            .as_str()
            .is_some_and(|s| s.contains("race or ethnicity")),
        "{r:?}"
    );
    let f = c
        .req("GET", "/api/v1/feed", Some(&t), Value::Null)
        .await
        .json();
    assert!(!titles(&f).contains(&"Thanks".to_string()), "{f}");
    // Without race, other categories are not checked for behaviour.
    post(
        &c,
        &t,
        "neighborly_moment",
        "Thanks",
        "Thanks to the family on the corner for the soup.",
        cell,
    )
    .await;
    post(
        &c,
        &t,
        "neighborly_moment",
        "Thank you",
        "The tall man in the red coat helped me carry my groceries.",
        cell,
    )
    .await;
}

async fn kindness_reminder(c: Ctx) {
    let home = home();
    let (_, a) = c.user("eve", Role::Neighbor, Some(home)).await;
    let (_, b) = c.user("fay", Role::Neighbor, Some(home)).await;
    let p = post(
        &c,
        &a,
        "wildlife",
        "Bear?",
        "Was that a bear on the trail?",
        next_door(home),
    )
    .await;
    let path = format!("/api/v1/posts/{}/comments", p["id"]);
    let hostile = "You are an idiot, shut up and stop posting this garbage.";
    let r = c
        .req("POST", &path, Some(&b), json!({"body": hostile}))
        .await;
    assert_eq!(r.status, 409, "{r:?}");
    assert!(
        r.json()["reminder"].as_str().is_some_and(|s| !s.is_empty()),
        "{r:?}"
    );
    let got = c
        .req(
            "GET",
            &format!("/api/v1/posts/{}", p["id"]),
            Some(&a),
            Value::Null,
        )
        .await
        .json();
    assert_eq!(
        got["comments"].as_array().unwrap().len(),
        0,
        "nothing posted before confirming"
    );
    let r = c
        .req(
            "POST",
            &path,
            Some(&b),
            json!({"body": hostile, "confirm": true}),
        )
        .await;
    assert_eq!(r.status, 201, "{r:?}");
    let r = c
        .req(
            "POST",
            &path,
            Some(&b),
            json!({"body": "Probably a big dog, but stay safe!"}),
        )
        .await;
    assert_eq!(r.status, 201, "a kind comment posts at once: {r:?}");
    let got = c
        .req(
            "GET",
            &format!("/api/v1/posts/{}", p["id"]),
            Some(&a),
            Value::Null,
        )
        .await
        .json();
    assert_eq!(got["comments"].as_array().unwrap().len(), 2);
    assert_eq!(got["comment_count"], 2);
}

async fn moderation_end_to_end(c: Ctx) {
    let home = home();
    let (_, author) = c.user("gil", Role::Neighbor, Some(home)).await;
    let (_, reporter) = c.user("hal", Role::Neighbor, Some(home)).await;
    let (_, m) = c.user("moe", Role::Moderator, Some(home)).await;
    let (_, admin) = c.user("root", Role::Admin, Some(home)).await;
    let p = post(
        &c,
        &author,
        "crime_safety",
        "Bike stolen",
        "My bike was taken from the rack last night.",
        next_door(home),
    )
    .await;
    let pid = p["id"].as_i64().unwrap();

    let r = c
        .req(
            "POST",
            &format!("/api/v1/posts/{pid}/reports"),
            Some(&reporter),
            json!({"reason": "profiling", "note": "see body"}),
        )
        .await;
    assert_eq!(r.status, 201, "{r:?}");
    let r = c
        .req(
            "POST",
            &format!("/api/v1/posts/{pid}/reports"),
            Some(&reporter),
            json!({"reason": "because"}),
        )
        .await;
    assert_eq!(r.status, 422, "unknown reason named: {r:?}");

    let q = c
        .req("GET", "/api/v1/moderation/queue", Some(&m), Value::Null)
        .await;
    assert_eq!(q.status, 200);
    let q = q.json();
    let reports = q["reports"].as_array().unwrap();
    assert_eq!(reports.len(), 1, "{q}");
    assert_eq!(reports[0]["target_id"], pid);
    assert_eq!(reports[0]["reason"], "profiling");
    assert!(
        !q.to_string().contains("hal"),
        "reporters are not shown: {q}"
    );

    let r = c
        .req(
            "POST",
            &format!("/api/v1/moderation/posts/{pid}/hide"),
            Some(&m),
            json!({"reason": ""}),
        )
        .await;
    assert_eq!(r.status, 422, "a reason is required: {r:?}");
    let r = c
        .req(
            "POST",
            &format!("/api/v1/moderation/posts/{pid}/hide"),
            Some(&m),
            json!({"reason": "describes a person unfairly"}),
        )
        .await;
    assert_eq!(r.status, 204, "{r:?}");
    // Hidden: gone for others, visible to the author with its status.
    let r = c
        .req(
            "GET",
            &format!("/api/v1/posts/{pid}"),
            Some(&reporter),
            Value::Null,
        )
        .await;
    assert_eq!(r.status, 404);
    let f = c
        .req("GET", "/api/v1/feed", Some(&reporter), Value::Null)
        .await
        .json();
    assert!(titles(&f).is_empty());
    let mine = c
        .req(
            "GET",
            &format!("/api/v1/posts/{pid}"),
            Some(&author),
            Value::Null,
        )
        .await
        .json();
    assert_eq!(mine["moderation"], "hidden");
    // The queue is empty again.
    let q = c
        .req("GET", "/api/v1/moderation/queue", Some(&m), Value::Null)
        .await
        .json();
    assert_eq!(q["reports"].as_array().unwrap().len(), 0);

    // The author is told, and appeals.
    let n = c
        .req("GET", "/api/v1/me/notices", Some(&author), Value::Null)
        .await
        .json();
    let notice = &n["notices"][0];
    assert_eq!(notice["action"], "hide");
    assert_eq!(notice["reason"], "describes a person unfairly");
    assert_eq!(notice["target_id"], pid);
    let nid = notice["id"].as_i64().unwrap();
    let r = c
        .req(
            "POST",
            &format!("/api/v1/me/notices/{nid}/appeals"),
            Some(&author),
            json!({"text": "It only describes the bike."}),
        )
        .await;
    assert_eq!(r.status, 201, "{r:?}");
    let r = c
        .req(
            "POST",
            &format!("/api/v1/me/notices/{nid}/appeals"),
            Some(&author),
            json!({"text": "again"}),
        )
        .await;
    assert_eq!(r.status, 409, "one appeal per notice: {r:?}");
    let r = c
        .req(
            "POST",
            &format!("/api/v1/me/notices/{nid}/appeals"),
            Some(&reporter),
            json!({"text": "not mine"}),
        )
        .await;
    assert_eq!(r.status, 404, "someone else's notice: {r:?}");

    let q = c
        .req("GET", "/api/v1/moderation/queue", Some(&m), Value::Null)
        .await
        .json();
    let appeals = q["appeals"].as_array().unwrap();
    assert_eq!(appeals.len(), 1, "{q}");
    let aid = appeals[0]["id"].as_i64().unwrap();
    let r = c
        .req(
            "POST",
            &format!("/api/v1/moderation/appeals/{aid}"),
            Some(&m),
            json!({"decision": "grant", "reason": "fair"}),
        )
        .await;
    assert_eq!(r.status, 204, "{r:?}");
    // Restored.
    let r = c
        .req(
            "GET",
            &format!("/api/v1/posts/{pid}"),
            Some(&reporter),
            Value::Null,
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    let n = c
        .req("GET", "/api/v1/me/notices", Some(&author), Value::Null)
        .await
        .json();
    assert_eq!(n["notices"][0]["action"], "appeal_granted");
    assert_eq!(n["notices"][1]["appeal"], "granted");

    // Mute then suspend the reporter, with reasons and expiry.
    let hal = c.n.user_id("hal").await.unwrap();
    let r = c
        .req(
            "POST",
            &format!("/api/v1/moderation/users/{hal}/mute"),
            Some(&m),
            json!({"reason": "heated", "hours": 24}),
        )
        .await;
    assert_eq!(r.status, 204, "{r:?}");
    let r = c
        .req(
            "POST",
            &format!("/api/v1/posts/{pid}/comments"),
            Some(&reporter),
            json!({"body": "hello"}),
        )
        .await;
    assert_eq!(r.status, 403, "muted users cannot comment: {r:?}");
    assert!(r.json()["error"].as_str().unwrap().contains("heated"));
    let r = c
        .req("GET", "/api/v1/feed", Some(&reporter), Value::Null)
        .await;
    assert_eq!(r.status, 200, "muted users can read");
    let r = c
        .req(
            "POST",
            &format!("/api/v1/moderation/users/{hal}/suspend"),
            Some(&m),
            json!({"reason": "repeated", "hours": 0}),
        )
        .await;
    assert_eq!(r.status, 422, "expiry named: {r:?}");
    let r = c
        .req(
            "POST",
            &format!("/api/v1/moderation/users/{hal}/suspend"),
            Some(&m),
            json!({"reason": "repeated", "hours": 48}),
        )
        .await;
    assert_eq!(r.status, 204, "{r:?}");
    let r = c
        .req("GET", "/api/v1/feed", Some(&reporter), Value::Null)
        .await;
    assert_eq!(r.status, 403);
    let n = c
        .req("GET", "/api/v1/me/notices", Some(&reporter), Value::Null)
        .await
        .json();
    assert_eq!(n["notices"][0]["action"], "suspend");
    assert!(n["notices"][0]["until"].is_string());

    // Every moderator action is in the audit table.
    let a = c
        .req("GET", "/api/v1/admin/audit", Some(&admin), Value::Null)
        .await
        .json();
    let actions: Vec<&str> = a["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for want in ["hide", "appeal_granted", "mute", "suspend"] {
        assert!(actions.contains(&want), "audit lacks {want}: {actions:?}");
    }
    assert!(a["entries"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["actor"] == "moe" || e["actor"] == "cli"));
}

/// A JPEG carrying an EXIF GPS position (47°37'N 122°21'W).
fn jpeg_with_gps() -> Vec<u8> {
    let img = image::RgbImage::from_fn(64, 48, |x, y| image::Rgb([x as u8 * 3, y as u8 * 5, 120]));
    let mut plain = std::io::Cursor::new(Vec::new());
    img.write_to(&mut plain, image::ImageFormat::Jpeg).unwrap();
    let plain = plain.into_inner();
    let mut tiff: Vec<u8> = Vec::new();
    tiff.extend_from_slice(b"MM\0\x2a\0\0\0\x08");
    // IFD0: one entry, the GPS IFD pointer.
    tiff.extend_from_slice(&1u16.to_be_bytes());
    tiff.extend_from_slice(&[0x88, 0x25, 0, 4, 0, 0, 0, 1]);
    tiff.extend_from_slice(&26u32.to_be_bytes());
    tiff.extend_from_slice(&0u32.to_be_bytes());
    // GPS IFD at 26: four entries, data at 80.
    tiff.extend_from_slice(&4u16.to_be_bytes());
    let entry = |t: &mut Vec<u8>, tag: u16, typ: u16, count: u32, val: [u8; 4]| {
        t.extend_from_slice(&tag.to_be_bytes());
        t.extend_from_slice(&typ.to_be_bytes());
        t.extend_from_slice(&count.to_be_bytes());
        t.extend_from_slice(&val);
    };
    entry(&mut tiff, 1, 2, 2, *b"N\0\0\0");
    entry(&mut tiff, 2, 5, 3, 80u32.to_be_bytes());
    entry(&mut tiff, 3, 2, 2, *b"W\0\0\0");
    entry(&mut tiff, 4, 5, 3, 104u32.to_be_bytes());
    tiff.extend_from_slice(&0u32.to_be_bytes());
    assert_eq!(tiff.len(), 80);
    for (n, d) in [
        (47u32, 1u32),
        (37, 1),
        (1380, 100),
        (122, 1),
        (21, 1),
        (2520, 100),
    ] {
        tiff.extend_from_slice(&n.to_be_bytes());
        tiff.extend_from_slice(&d.to_be_bytes());
    }
    let mut app1 = b"Exif\0\0".to_vec();
    app1.extend_from_slice(&tiff);
    let mut out = vec![0xFF, 0xD8, 0xFF, 0xE1];
    out.extend_from_slice(&((app1.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(&app1);
    out.extend_from_slice(&plain[2..]);
    out
}

fn gps_of(jpeg: &[u8]) -> Option<String> {
    let exif = exif::Reader::new()
        .read_from_container(&mut std::io::Cursor::new(jpeg))
        .ok()?;
    exif.get_field(exif::Tag::GPSLatitude, exif::In::PRIMARY)
        .map(|f| f.display_value().to_string())
}

async fn photo_gps_stripped(c: Ctx) {
    let home = home();
    let (_, t) = c.user("ivy", Role::Neighbor, Some(home)).await;
    let (_, other) = c.user("jay", Role::Neighbor, Some(home)).await;
    let (_, agency) = c.user("fire", Role::Agency, Some(home)).await;
    let upload = jpeg_with_gps();
    assert!(gps_of(&upload).is_some(), "the fixture must carry GPS tags");
    let p = post(
        &c,
        &t,
        "lost_found_pet",
        "Lost: Miso",
        "Grey tabby, green collar.",
        next_door(home),
    )
    .await;
    let pid = p["id"].as_i64().unwrap();
    let r = c
        .send(
            "POST",
            &format!("/api/v1/posts/{pid}/photos"),
            Some(&t),
            Some("image/jpeg"),
            upload.clone(),
        )
        .await;
    assert_eq!(r.status, 201, "{r:?}");
    let url = r.json()["url"].as_str().unwrap().to_string();
    // Multipart works too.
    let boundary = "XBOUNDARYX";
    let mut form = format!("--{boundary}\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"cat.png\"\r\nContent-Type: image/png\r\n\r\n").into_bytes();
    form.extend_from_slice(&png(20, 20));
    form.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let r = c
        .send(
            "POST",
            &format!("/api/v1/posts/{pid}/photos"),
            Some(&t),
            Some(&format!("multipart/form-data; boundary={boundary}")),
            form,
        )
        .await;
    assert_eq!(r.status, 201, "{r:?}");
    // Not an image: named.
    let r = c
        .send(
            "POST",
            &format!("/api/v1/posts/{pid}/photos"),
            Some(&t),
            Some("image/jpeg"),
            b"hello".to_vec(),
        )
        .await;
    assert_eq!(r.status, 422, "{r:?}");

    let got = c.send("GET", &url, Some(&other), None, Vec::new()).await;
    assert_eq!(got.status, 200, "{got:?}");
    assert_eq!(got.headers["content-type"], "image/jpeg");
    assert!(got.bytes.starts_with(&[0xFF, 0xD8]));
    assert_eq!(gps_of(&got.bytes), None, "GPS survived re-encoding");
    assert!(
        !got.bytes.windows(6).any(|w| w == b"Exif\0\0"),
        "an EXIF block survived"
    );
    let img = image::load_from_memory(&got.bytes).expect("a decodable JPEG");
    assert_eq!((img.width(), img.height()), (64, 48));
    // The post lists it; agencies and strangers cannot fetch it.
    let pj = c
        .req(
            "GET",
            &format!("/api/v1/posts/{pid}"),
            Some(&other),
            Value::Null,
        )
        .await
        .json();
    assert_eq!(pj["photos"].as_array().unwrap().len(), 2);
    assert_eq!(
        c.send("GET", &url, Some(&agency), None, Vec::new())
            .await
            .status,
        403
    );
    assert_eq!(
        c.send("GET", &url, None, None, Vec::new()).await.status,
        401
    );
}

async fn rate_limits(c: Ctx) {
    c.n.set_limits(Limits {
        posts_per_hour: 2,
        comments_per_hour: 1,
        login_failures: 3,
    });
    let home = home();
    let (_, t) = c.user("kim", Role::Neighbor, Some(home)).await;
    let p = post(&c, &t, "wildlife", "one", "a", next_door(home)).await;
    post(&c, &t, "wildlife", "two", "b", next_door(home)).await;
    let r = c.req("POST", "/api/v1/posts", Some(&t), json!({"category": "wildlife", "title": "three", "body": "c", "cell": next_door(home).to_string()})).await;
    assert_eq!(r.status, 429, "{r:?}");
    let wait: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(wait > 0 && wait <= 3600, "{wait}");
    let path = format!("/api/v1/posts/{}/comments", p["id"]);
    assert_eq!(
        c.req("POST", &path, Some(&t), json!({"body": "first"}))
            .await
            .status,
        201
    );
    assert_eq!(
        c.req("POST", &path, Some(&t), json!({"body": "second"}))
            .await
            .status,
        429
    );

    // Sign-in throttling per username, even with the right password after.
    for _ in 0..3 {
        let r = c
            .req(
                "POST",
                "/api/v1/sessions",
                None,
                json!({"username": "kim", "password": "wrong password!"}),
            )
            .await;
        assert_eq!(r.status, 401);
    }
    let r = c
        .req(
            "POST",
            "/api/v1/sessions",
            None,
            json!({"username": "kim", "password": PASSWORD}),
        )
        .await;
    assert_eq!(r.status, 429, "{r:?}");
    assert!(r.headers.contains_key("retry-after"));
}

async fn registration_modes(c: Ctx) {
    let (_, admin) = c.user("boss", Role::Admin, None).await;
    let (_, m) = c.user("modo", Role::Moderator, None).await;
    let reg = |u: &str, invite: Option<&str>| json!({"username": u, "password": PASSWORD, "display_name": u, "invite": invite});
    // Invite mode (default): no code, no account.
    let r = c
        .req("POST", "/api/v1/registrations", None, reg("lee", None))
        .await;
    assert_eq!(r.status, 403, "{r:?}");
    let code = c
        .req("POST", "/api/v1/admin/invites", Some(&admin), Value::Null)
        .await
        .json()["code"]
        .as_str()
        .unwrap()
        .to_string();
    let r = c
        .req(
            "POST",
            "/api/v1/registrations",
            None,
            reg("lee", Some(&code)),
        )
        .await;
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(r.json()["status"], "active");
    c.login("lee").await;
    let r = c
        .req(
            "POST",
            "/api/v1/registrations",
            None,
            reg("lou", Some(&code)),
        )
        .await;
    assert_eq!(r.status, 403, "a code is single-use: {r:?}");
    // Open mode: pending until a moderator approves.
    let r = c
        .req(
            "PUT",
            "/api/v1/admin/registration",
            Some(&admin),
            json!({"mode": "open"}),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        c.n.registration_mode().await.unwrap(),
        RegistrationMode::Open
    );
    let r = c
        .req("POST", "/api/v1/registrations", None, reg("lou", None))
        .await;
    assert_eq!(r.json()["status"], "pending");
    let lou = r.json()["id"].as_i64().unwrap();
    let r = c
        .req(
            "POST",
            "/api/v1/sessions",
            None,
            json!({"username": "lou", "password": PASSWORD}),
        )
        .await;
    assert_eq!(r.status, 403, "pending accounts cannot sign in: {r:?}");
    let q = c
        .req("GET", "/api/v1/moderation/queue", Some(&m), Value::Null)
        .await
        .json();
    assert_eq!(q["registrations"][0]["username"], "lou");
    let r = c
        .req(
            "POST",
            &format!("/api/v1/moderation/registrations/{lou}"),
            Some(&m),
            json!({"decision": "approve"}),
        )
        .await;
    assert_eq!(r.status, 204, "{r:?}");
    c.login("lou").await;
    // Weak passwords and bad usernames are named.
    let r = c
        .req("POST", "/api/v1/registrations", None, reg("x", None))
        .await;
    assert_eq!(r.status, 422);
    let r = c
        .req(
            "POST",
            "/api/v1/registrations",
            None,
            json!({"username": "max", "password": "short", "display_name": "Max"}),
        )
        .await;
    assert_eq!(r.status, 422);
    // Sign out ends the session.
    let t = c.login("lou").await;
    assert_eq!(
        c.req("DELETE", "/api/v1/sessions", Some(&t), Value::Null)
            .await
            .status,
        204
    );
    assert_eq!(
        c.req("GET", "/api/v1/me", Some(&t), Value::Null)
            .await
            .status,
        401
    );
}

async fn totp_sign_in(c: Ctx) {
    let (_, t) = c.user("nia", Role::Neighbor, None).await;
    let r = c
        .req("POST", "/api/v1/me/totp", Some(&t), Value::Null)
        .await;
    assert_eq!(r.status, 201);
    let secret = data_encoding::BASE32_NOPAD
        .decode(r.json()["secret"].as_str().unwrap().as_bytes())
        .unwrap();
    let now = jiff::Timestamp::now().as_second();
    let code = |step: i64| porchlight_vault::totp::code_for_step(&secret, step, 6);
    let step = porchlight_vault::totp::step_at(now);
    let r = c
        .req(
            "POST",
            "/api/v1/me/totp/confirm",
            Some(&t),
            json!({"code": code(step)}),
        )
        .await;
    assert_eq!(r.status, 204, "{r:?}");
    let login =
        |totp: Option<String>| json!({"username": "nia", "password": PASSWORD, "totp": totp});
    assert_eq!(
        c.req("POST", "/api/v1/sessions", None, login(None))
            .await
            .status,
        401
    );
    // The enrolment step cannot be replayed; the next one works once.
    assert_eq!(
        c.req("POST", "/api/v1/sessions", None, login(Some(code(step))))
            .await
            .status,
        401
    );
    assert_eq!(
        c.req(
            "POST",
            "/api/v1/sessions",
            None,
            login(Some(code(step + 1)))
        )
        .await
        .status,
        201
    );
    assert_eq!(
        c.req(
            "POST",
            "/api/v1/sessions",
            None,
            login(Some(code(step + 1)))
        )
        .await
        .status,
        401
    );
}

async fn recipients_and_subscriptions(c: Ctx) {
    let home = home();
    let near = cell_at(home, 0.5, 1.5);
    let far = cell_at(home, 5.0, 7.0);
    let (_, fire) = c.user("fire", Role::Agency, None).await;
    let (near_id, near_t) = c.user("near", Role::Neighbor, Some(near)).await;
    let (far_id, _) = c.user("far", Role::Neighbor, Some(far)).await;
    let (_, pets_t) = c.user("pets", Role::Neighbor, Some(home)).await;
    let pets_id = c.n.user_id("pets").await.unwrap();
    let r = c
        .req(
            "PUT",
            "/api/v1/me/subscriptions",
            Some(&pets_t),
            json!({"categories": ["lost_found_pet"]}),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    let r = c
        .req(
            "PUT",
            "/api/v1/me/subscriptions",
            Some(&pets_t),
            json!({"categories": ["footage_request"]}),
        )
        .await;
    assert_eq!(r.status, 422);
    let subs = c
        .req(
            "GET",
            "/api/v1/me/subscriptions",
            Some(&near_t),
            Value::Null,
        )
        .await
        .json();
    assert_eq!(
        subs["categories"],
        json!(["alert"]),
        "agency alerts are on by default"
    );

    let alert = post(
        &c,
        &fire,
        "alert",
        "Gas leak",
        "Avoid the avenue.",
        next_door(home),
    )
    .await;
    let got =
        c.n.recipients_for(alert["id"].as_i64().unwrap())
            .await
            .unwrap();
    assert!(got.contains(&near_id), "{got:?}");
    assert!(!got.contains(&far_id), "far user outside 3 km: {got:?}");
    assert!(!got.contains(&pets_id), "unsubscribed from alerts: {got:?}");
    let pet = post(
        &c,
        &near_t,
        "lost_found_pet",
        "Lost dog",
        "Small brown dog.",
        // Where the dog was lost: by pets' home, not at near's own.
        home,
    )
    .await;
    let got =
        c.n.recipients_for(pet["id"].as_i64().unwrap())
            .await
            .unwrap();
    assert_eq!(got, vec![pets_id]);
}

async fn demo_seed(c: Ctx) {
    let demo = c.n.seed_demo().await.unwrap();
    assert!(demo.posts >= 20);
    let again = c.n.seed_demo().await.unwrap();
    assert_eq!(again.posts, 0, "seeding twice adds nothing");
    let maria = demo
        .accounts
        .iter()
        .find(|a| a.username == "maria")
        .unwrap();
    let r = c
        .req(
            "POST",
            "/api/v1/sessions",
            None,
            json!({"username": maria.username, "password": maria.password}),
        )
        .await;
    let t = r.json()["token"].as_str().unwrap().to_string();
    let f = c
        .req("GET", "/api/v1/feed", Some(&t), Value::Null)
        .await
        .json();
    let posts = f["posts"].as_array().unwrap();
    assert!(posts.len() >= 15, "{}", posts.len());
    assert!(posts
        .iter()
        .any(|p| p["author"]["badge"] == "verified agency" && p["category"] == "safety_tip"));
    let cats: std::collections::BTreeSet<&str> = posts
        .iter()
        .map(|p| p["category"].as_str().unwrap())
        .collect();
    assert!(cats.len() >= 6, "{cats:?}");
    // The demo story: a lost-pet notice with a photo, an agency tip with
    // its badge, a profiling-style post sent back for revision.
    let home = demo.home_cell;
    let pet = post(
        &c,
        &t,
        "lost_found_pet",
        "Lost: grey rabbit",
        "Our rabbit Pip escaped near the school.",
        next_door(home),
    )
    .await;
    let r = c
        .send(
            "POST",
            &format!("/api/v1/posts/{}/photos", pet["id"]),
            Some(&t),
            Some("image/png"),
            png(80, 60),
        )
        .await;
    assert_eq!(r.status, 201, "{r:?}");
    let fire = demo
        .accounts
        .iter()
        .find(|a| a.username == "firedept")
        .unwrap();
    let ft = c
        .req(
            "POST",
            "/api/v1/sessions",
            None,
            json!({"username": fire.username, "password": fire.password}),
        )
        .await
        .json()["token"]
        .as_str()
        .unwrap()
        .to_string();
    let tip = post(
        &c,
        &ft,
        "safety_tip",
        "Clear storm drains",
        "Rake leaves away from drains before the rain.",
        next_door(home),
    )
    .await;
    assert_eq!(tip["author"]["badge"], "verified agency");
    assert_eq!(tip["author"]["agency_name"], "Seattle Fire Department");
    let r = c
        .req("POST", "/api/v1/posts", Some(&t), json!({"category": "suspicious", "title": "Suspicious Black man",
               "body": "A Black man is walking around our street.", "cell": next_door(home).to_string()}))
        .await;
    assert_eq!(r.status, 422, "{r:?}");
    assert!(r.json()["guidance"].is_string());
    let f = c
        .req("GET", "/api/v1/feed", Some(&t), Value::Null)
        .await
        .json();
    assert_eq!(f["posts"][0]["title"], "Clear storm drains");
    assert_eq!(f["posts"][1]["photos"].as_array().unwrap().len(), 1);
    assert!(area::distance_words(0.0).len() > 1);
}

async fn author_edits_reactions_and_agency_replies(c: Ctx) {
    let home = home();
    let (_, a) = c.user("olga", Role::Neighbor, Some(home)).await;
    let (_, b) = c.user("pete", Role::Neighbor, Some(home)).await;
    let (_, fire) = c.user("fire", Role::Agency, Some(home)).await;
    // Mutual aid carries kind and status; an event its date, time and place.
    let r = c
        .req("POST", "/api/v1/posts", Some(&a), json!({"category": "mutual_aid", "title": "Soup", "body": "Extra soup tonight.", "cell": next_door(home).to_string()}))
        .await;
    assert_eq!(r.status, 422, "kind is required: {r:?}");
    let r = c
        .req("POST", "/api/v1/posts", Some(&a), json!({"category": "mutual_aid", "kind": "offer", "title": "Soup", "body": "Extra soup tonight.", "cell": next_door(home).to_string()}))
        .await;
    assert_eq!(r.status, 201, "{r:?}");
    let aid = r.json();
    assert_eq!(
        (aid["kind"].as_str(), aid["status"].as_str()),
        (Some("offer"), Some("open"))
    );
    let r = c
        .req("POST", "/api/v1/posts", Some(&a), json!({"category": "community_event", "title": "Potluck", "body": "Bring a dish.", "cell": next_door(home).to_string(), "date": "2026-13-01", "time": "18:00", "place": "park"}))
        .await;
    assert_eq!(r.status, 422, "bad date named: {r:?}");
    assert!(r.json()["error"].as_str().unwrap().contains("date"));
    // The author marks it fulfilled; nobody else can edit or delete it.
    let id = aid["id"].as_i64().unwrap();
    let r = c
        .req(
            "PATCH",
            &format!("/api/v1/posts/{id}"),
            Some(&a),
            json!({"status": "fulfilled"}),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json()["status"], "fulfilled");
    assert!(r.json()["edited_at"].is_string());
    assert_eq!(
        c.req(
            "PATCH",
            &format!("/api/v1/posts/{id}"),
            Some(&b),
            json!({"title": "mine now"})
        )
        .await
        .status,
        403
    );
    assert_eq!(
        c.req(
            "DELETE",
            &format!("/api/v1/posts/{id}"),
            Some(&b),
            Value::Null
        )
        .await
        .status,
        403
    );
    // Reactions count once per person and kind.
    for _ in 0..2 {
        let r = c
            .req(
                "POST",
                &format!("/api/v1/posts/{id}/reactions"),
                Some(&b),
                json!({"kind": "thanks"}),
            )
            .await;
        assert_eq!(r.status, 204, "{r:?}");
    }
    assert_eq!(
        c.req(
            "POST",
            &format!("/api/v1/posts/{id}/reactions"),
            Some(&b),
            json!({"kind": "angry"})
        )
        .await
        .status,
        422
    );
    let p = c
        .req("GET", &format!("/api/v1/posts/{id}"), Some(&a), Value::Null)
        .await
        .json();
    assert_eq!(p["reactions"]["thanks"], 1);
    assert_eq!(
        c.req(
            "DELETE",
            &format!("/api/v1/posts/{id}/reactions/thanks"),
            Some(&b),
            Value::Null
        )
        .await
        .status,
        204
    );
    let p = c
        .req("GET", &format!("/api/v1/posts/{id}"), Some(&a), Value::Null)
        .await
        .json();
    assert_eq!(p["reactions"]["thanks"], 0);
    // The agency replies under its own post only; residents may answer it.
    let tip = post(
        &c,
        &fire,
        "safety_tip",
        "Ice on the bridge",
        "Drive slowly on the bridge this morning.",
        next_door(home),
    )
    .await;
    let tid = tip["id"].as_i64().unwrap();
    assert_eq!(
        c.req(
            "POST",
            &format!("/api/v1/posts/{tid}/comments"),
            Some(&a),
            json!({"body": "Thanks for the heads-up"})
        )
        .await
        .status,
        201
    );
    assert_eq!(
        c.req(
            "POST",
            &format!("/api/v1/posts/{tid}/comments"),
            Some(&fire),
            json!({"body": "Crews are salting now."})
        )
        .await
        .status,
        201
    );
    let r = c
        .req(
            "POST",
            &format!("/api/v1/posts/{id}/comments"),
            Some(&fire),
            json!({"body": "Do you have camera footage?"}),
        )
        .await;
    assert_eq!(r.status, 403, "{r:?}");
    let t = c
        .req(
            "GET",
            &format!("/api/v1/posts/{tid}"),
            Some(&b),
            Value::Null,
        )
        .await
        .json();
    assert_eq!(t["comments"].as_array().unwrap().len(), 2);
    assert_eq!(t["comments"][1]["author"]["badge"], "verified agency");
    // The author deletes the post; it is gone for everyone.
    assert_eq!(
        c.req(
            "DELETE",
            &format!("/api/v1/posts/{id}"),
            Some(&a),
            Value::Null
        )
        .await
        .status,
        204
    );
    assert_eq!(
        c.req("GET", &format!("/api/v1/posts/{id}"), Some(&a), Value::Null)
            .await
            .status,
        404
    );
    // An unverified agency cannot post at all.
    let uid =
        c.n.create_user("parks", PASSWORD, "Parks", Role::Agency, Some("Parks Dept"))
            .await
            .unwrap();
    let pt = c.login("parks").await;
    let r = c
        .req("POST", "/api/v1/posts", Some(&pt), json!({"category": "information", "title": "Trail closed", "body": "Repairs.", "cell": next_door(home).to_string()}))
        .await;
    assert_eq!(r.status, 403, "{r:?}");
    c.n.verify_agency(None, uid).await.unwrap();
    let r = c
        .req("POST", "/api/v1/posts", Some(&pt), json!({"category": "information", "title": "Trail closed", "body": "Repairs.", "cell": next_door(home).to_string()}))
        .await;
    assert_eq!(r.status, 201, "{r:?}");
}

/// Removes the drawing's plain grid hexagons (`<polygon class="cell…">…
/// </polygon>`): they are public geometry around the *viewer's own* area
/// and name every cell near them. What must never appear is the author's
/// home cell as anything about a post.
fn without_grid(html: &str) -> String {
    let mut out = String::new();
    let mut rest = html;
    while let Some(i) = rest.find("<polygon class=\"cell") {
        out.push_str(&rest[..i]);
        let end = rest[i..]
            .find("</polygon>")
            .map(|e| i + e + "</polygon>".len())
            .unwrap_or(rest.len());
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// The value of the new-post form's place field, as a browser would send it.
fn place_field(html: &str) -> String {
    let i = html.find("name=\"cell\"").expect("a place field");
    let tag = &html[i..i + html[i..].find('>').unwrap()];
    tag.split("value=\"")
        .nth(1)
        .map(|v| v[..v.find('"').unwrap()].to_string())
        .unwrap_or_default()
}

fn multipart(fields: &[(&str, &str)]) -> (String, Vec<u8>) {
    let boundary = "----nbapitestboundary42";
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

/// Issue 14 item 7: a post's place is chosen by its author, defaults to
/// the resolution-7 parent of the home area, and no API or page shows the
/// author's home cell to anyone else.
async fn posts_never_show_the_authors_home(c: Ctx) {
    let home = home();
    let a = home.to_string();
    let wide = home.parent(h3o::Resolution::Seven).unwrap();
    let (_, ana) = c.user("anna", Role::Neighbor, Some(home)).await;
    let (_, bo) = c.user("bobo", Role::Neighbor, Some(next_door(home))).await;

    // The new-post page, submitted as it comes (place as the form has it).
    let page = c.page("GET", "/posts/new", &ana, None).await;
    assert_eq!(page.status, 200, "{page:?}");
    let place = place_field(&String::from_utf8_lossy(&page.bytes));
    let csrf = porchlight_neighborhood::pages::csrf_for(&ana);
    let form = multipart(&[
        ("csrf", &csrf),
        ("category", "wildlife"),
        ("title", "Heron by the pond"),
        ("body", "A heron was fishing in the pond this morning."),
        ("cell", &place),
    ]);
    let r = c.page("POST", "/posts/new", &ana, Some(form)).await;
    assert_eq!(r.status, 303, "{r:?}");
    let f = c.req("GET", "/api/v1/feed", Some(&bo), Value::Null).await;
    assert!(
        titles(&f.json()).contains(&"Heron by the pond".to_string()),
        "{f:?}"
    );
    assert!(
        !String::from_utf8_lossy(&f.bytes).contains(&a),
        "a post made as the form comes shows ana's home cell to bo: {f:?}"
    );
    // The API without a place.
    let r = c
        .req("POST", "/api/v1/posts", Some(&ana), json!({"category": "lost_found_pet", "title": "Found: grey cat", "body": "Friendly, no collar."}))
        .await;
    assert_eq!(r.status, 201, "a post without a place: {r:?}");
    let cell: h3o::CellIndex = r.json()["cell"].as_str().unwrap().parse().unwrap();
    assert!(
        u8::from(cell.resolution()) <= 7,
        "resolution {} is finer than 7",
        cell.resolution()
    );
    assert_eq!(cell, wide, "the resolution-7 parent of the home area");
    // Choosing the home cell, or a cell inside it, is refused and says why.
    let child = home.children(h3o::Resolution::Nine).next().unwrap();
    for chosen in [home, child] {
        let r = c
            .req("POST", "/api/v1/posts", Some(&ana), json!({"category": "wildlife", "title": "Fox", "body": "A fox.", "cell": chosen.to_string()}))
            .await;
        assert_eq!(r.status, 422, "{chosen}: {r:?}");
        let e = r.json()["error"].as_str().unwrap().to_string();
        assert!(
            e.contains("your home area") && e.contains(&wide.to_string()),
            "{e}"
        );
    }
    // A place the author chose is theirs to show.
    post(
        &c,
        &ana,
        "wildlife",
        "Owl in the park",
        "An owl at dusk.",
        next_door(home),
    )
    .await;

    // What bo sees: the posts, never ana's home cell.
    let f = c.req("GET", "/api/v1/feed", Some(&bo), Value::Null).await;
    let mut got = titles(&f.json());
    got.sort();
    assert_eq!(
        got,
        ["Found: grey cat", "Heron by the pond", "Owl in the park"],
        "bo's feed"
    );
    let feed = String::from_utf8_lossy(&f.bytes).into_owned();
    assert!(
        !feed.contains(&a),
        "bo's feed JSON carries ana's home cell: {feed}"
    );
    for p in f.json()["posts"].as_array().unwrap() {
        let cell: h3o::CellIndex = p["cell"].as_str().unwrap().parse().unwrap();
        assert!(
            !area::inside(cell, home),
            "post {} sits at ana's home: {p}",
            p["title"]
        );
        let id = p["id"].as_i64().unwrap();
        let j = c
            .req(
                "GET",
                &format!("/api/v1/posts/{id}"),
                Some(&bo),
                Value::Null,
            )
            .await;
        assert!(
            !String::from_utf8_lossy(&j.bytes).contains(&a),
            "post {id} JSON: {j:?}"
        );
        let h = c.page("GET", &format!("/posts/{id}"), &bo, None).await;
        assert_eq!(h.status, 200);
        let html = without_grid(&String::from_utf8_lossy(&h.bytes));
        assert!(!html.contains(&a), "post {id} page shows ana's home cell");
    }
    let h = c.page("GET", "/feed", &bo, None).await;
    assert_eq!(h.status, 200);
    let html = String::from_utf8_lossy(&h.bytes);
    assert!(html.contains("Heron by the pond"));
    assert!(
        !without_grid(&html).contains(&a),
        "bo's feed page shows ana's home cell"
    );
    // ana's own area is hers to see.
    let me = c
        .req("GET", "/api/v1/me", Some(&ana), Value::Null)
        .await
        .json();
    assert_eq!(me["cell"], a);
}

/// Posts made at the home cell before issue 14 item 7 (the form filled it
/// in) move out to the wider area when the database is migrated, and a
/// user who moves their home onto a post's place has it moved too.
async fn posts_at_home_move_out(c: Ctx) {
    use sqlx::{Connection, Row};
    let home = home();
    let (ana_id, _) = c.user("anna", Role::Neighbor, Some(home)).await;
    // A coarse home (resolution 6): its default place is one level up.
    let home6 = cell_at(home, 12.0, 19.0)
        .parent(h3o::Resolution::Six)
        .unwrap();
    let (bo_id, bo) = c.user("bobo", Role::Neighbor, Some(home6)).await;
    let raw = |author, cell| {
        let n = c.n.clone();
        async move {
            n.insert_post_raw(
                author,
                porchlight_neighborhood::posts::Category::Wildlife,
                "t",
                "b",
                cell,
                json!({}),
                1,
            )
            .await
            .unwrap()
        }
    };
    let child = home.children(h3o::Resolution::Nine).nth(3).unwrap();
    let nd = next_door(home);
    let inside6 = home6.children(h3o::Resolution::Eight).nth(5).unwrap();
    let ids = [
        raw(ana_id, home).await,
        raw(ana_id, child).await,
        raw(ana_id, nd).await,
        raw(bo_id, inside6).await,
        raw(bo_id, home6).await,
    ];
    // Upgrade: the database forgets step 4 and the server runs it again.
    sqlx::any::install_default_drivers();
    let mut db = sqlx::AnyConnection::connect(&c.url).await.unwrap();
    sqlx::query("DELETE FROM nb_migrations WHERE version = 4")
        .execute(&mut db)
        .await
        .unwrap();
    let again = porchlight_neighborhood::Neighborhood::open_with(
        &c.url,
        porchlight_vault::keys::KdfParams::insecure_for_tests(),
    )
    .await
    .unwrap();
    again.close().await;
    let wide = area::default_post_cell(home).unwrap();
    let wide6 = area::default_post_cell(home6).unwrap();
    assert_eq!(wide6.resolution(), h3o::Resolution::Five);
    for (id, want) in ids.iter().zip([wide, wide, nd, wide6, wide6]) {
        let r = sqlx::query("SELECT cell, feed_cell FROM posts WHERE id = $1")
            .bind(id)
            .fetch_one(&mut db)
            .await
            .unwrap();
        let (cell, feed): (i64, i64) = (r.get(0), r.get(1));
        assert_eq!(
            cell as u64,
            u64::from(want),
            "post {id}: cell {cell:x}, want {want}"
        );
        assert_eq!(
            feed as u64,
            u64::from(area::feed_key(want)),
            "post {id}: feed cell {feed:x}"
        );
    }
    // bo moves to the cell of a post of his: it moves out too, while
    // ana's post in that cell (not her home) stays.
    let p = raw(bo_id, nd).await;
    let r = c
        .req(
            "PUT",
            "/api/v1/me/area",
            Some(&bo),
            json!({"cell": nd.to_string()}),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    let r = sqlx::query("SELECT cell FROM posts WHERE id = $1")
        .bind(p)
        .fetch_one(&mut db)
        .await
        .unwrap();
    assert_eq!(
        r.get::<i64, _>(0) as u64,
        u64::from(area::default_post_cell(nd).unwrap())
    );
    let r = sqlx::query("SELECT cell FROM posts WHERE id = $1")
        .bind(ids[2])
        .fetch_one(&mut db)
        .await
        .unwrap();
    assert_eq!(r.get::<i64, _>(0) as u64, u64::from(nd));
    db.close().await.unwrap();
}

both!(posts_never_show_the_authors_home);
both!(posts_at_home_move_out);
both!(author_edits_reactions_and_agency_replies);
both!(feed_inside_radius_only);
both!(coarse_areas_only);
both!(fair_posting);
both!(kindness_reminder);
both!(moderation_end_to_end);
both!(photo_gps_stripped);
both!(rate_limits);
both!(registration_modes);
both!(totp_sign_in);
both!(recipients_and_subscriptions);
both!(demo_seed);
