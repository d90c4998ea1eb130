//! Page tests on SQLite, through the full router with real HTTP requests:
//! sign-in and cookies, CSRF on every form, security headers, the feed with
//! distances and drawing, fair-posting guidance on the new-post page, the
//! kindness reminder, photos without metadata, agencies' limits, the area
//! picker's coarse-only requests and the moderation flow. (The service
//! layer itself runs on both stores in `tests/api.rs`.)

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use axum::Router;
use h3o::{LatLng, Resolution};
use http_body_util::BodyExt;
use tower::ServiceExt;

use super::{csrf_for, CSP};
use crate::accounts::Role;
use crate::posts::NewPost;
use crate::{Limits, Neighborhood};
use porchlight_vault::keys::KdfParams;

const PW: &str = "correct horse battery";

struct T {
    n: Neighborhood,
    app: Router,
    _dir: tempfile::TempDir,
}

struct Resp {
    status: StatusCode,
    headers: HeaderMap,
    text: String,
    bytes: Vec<u8>,
}

impl std::fmt::Debug for Resp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}",
            self.status,
            &self.text[..self.text.len().min(600)]
        )
    }
}

impl Resp {
    fn location(&self) -> &str {
        self.headers
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
    fn set_cookies(&self) -> Vec<String> {
        self.headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_string))
            .collect()
    }
}

fn home() -> h3o::CellIndex {
    LatLng::new(47.6205, -122.3493)
        .unwrap()
        .to_cell(Resolution::Eight)
}

/// A res-8 cell next to the home cell (about 0.8 km away): posts may not
/// carry their author's home cell.
fn next_door() -> h3o::CellIndex {
    home()
        .grid_disk::<Vec<_>>(1)
        .into_iter()
        .find(|c| *c != home())
        .unwrap()
}

/// A res-8 cell about `km` east of the home cell's centre.
fn east(km: f64) -> h3o::CellIndex {
    let c = LatLng::from(home());
    let dlng = km / (111.32 * c.lat().to_radians().cos());
    LatLng::new(c.lat(), c.lng() + dlng)
        .unwrap()
        .to_cell(Resolution::Eight)
}

async fn setup() -> T {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("nb.db").display());
    let n = Neighborhood::open_with(&url, KdfParams::insecure_for_tests())
        .await
        .unwrap();
    n.set_limits(Limits {
        posts_per_hour: 1000,
        comments_per_hour: 1000,
        login_failures: 5,
    });
    let app = crate::router(n.clone());
    T { n, app, _dir: dir }
}

impl T {
    async fn send(
        &self,
        method: &str,
        path: &str,
        cookie: Option<&str>,
        ct: Option<&str>,
        body: Vec<u8>,
        origin: Option<&str>,
    ) -> Resp {
        let mut b = Request::builder()
            .method(method)
            .uri(path)
            .header("host", "nb.test");
        if let Some(c) = cookie {
            b = b.header("cookie", c);
        }
        if let Some(ct) = ct {
            b = b.header("content-type", ct);
        }
        if let Some(o) = origin {
            b = b.header("origin", o);
        }
        let r = self
            .app
            .clone()
            .oneshot(b.body(Body::from(body)).unwrap())
            .await
            .unwrap();
        let status = r.status();
        let headers = r.headers().clone();
        let bytes = r.into_body().collect().await.unwrap().to_bytes().to_vec();
        Resp {
            status,
            headers,
            text: String::from_utf8_lossy(&bytes).into_owned(),
            bytes,
        }
    }

    async fn get(&self, path: &str, token: &str) -> Resp {
        self.send(
            "GET",
            path,
            Some(&format!("nb_session={token}")),
            None,
            Vec::new(),
            None,
        )
        .await
    }

    /// A form POST with the session's CSRF token added.
    async fn post_form(&self, path: &str, token: &str, fields: &[(&str, &str)]) -> Resp {
        let csrf = csrf_for(token);
        let mut all: Vec<(&str, &str)> = vec![("csrf", &csrf)];
        all.extend_from_slice(fields);
        self.post_raw(path, token, &all, None).await
    }

    async fn post_raw(
        &self,
        path: &str,
        token: &str,
        fields: &[(&str, &str)],
        origin: Option<&str>,
    ) -> Resp {
        let body: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        self.send(
            "POST",
            path,
            Some(&format!("nb_session={token}")),
            Some("application/x-www-form-urlencoded"),
            body.into_bytes(),
            origin,
        )
        .await
    }

    async fn user(&self, name: &str, role: Role, area: Option<h3o::CellIndex>) -> (i64, String) {
        let agency = (role == Role::Agency).then_some("City Fire Department");
        let id = self
            .n
            .create_user(name, PW, &format!("{name} display"), role, agency)
            .await
            .unwrap();
        if role == Role::Agency {
            self.n.verify_agency(None, id).await.unwrap();
        }
        if let Some(a) = area {
            self.n
                .set_area(id, &a.to_string(), Some(3.0))
                .await
                .unwrap();
        }
        (id, self.n.login(name, PW, None).await.unwrap())
    }

    async fn post(
        &self,
        token: &str,
        category: &str,
        title: &str,
        body: &str,
        cell: h3o::CellIndex,
    ) -> i64 {
        let v = self.n.viewer_for_token(token).await.unwrap();
        let p = NewPost {
            category: category.into(),
            title: title.into(),
            body: body.into(),
            cell: Some(cell.to_string()),
            ..NewPost::default()
        };
        self.n.create_post(&v, &p).await.unwrap()["id"]
            .as_i64()
            .unwrap()
    }
}

fn multipart(fields: &[(&str, &str)], files: &[(&str, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "----nbtestboundary7MA4YWxkTrZu0gW";
    let mut b = Vec::new();
    for (k, v) in fields {
        b.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n")
                .as_bytes(),
        );
    }
    for (name, data) in files {
        b.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"{name}\"\r\nContent-Type: image/jpeg\r\n\r\n").as_bytes(),
        );
        b.extend_from_slice(data);
        b.extend_from_slice(b"\r\n");
    }
    b.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), b)
}

/// No third-party request can come from a page: no absolute URL except the
/// SVG namespace, no inline script or style attribute.
fn assert_self_contained(html: &str) {
    let without_ns = html.replace("http://www.w3.org/2000/svg", "");
    assert!(
        !without_ns.contains("http://")
            && !without_ns.contains("https://")
            && !without_ns.contains("//cdn"),
        "external URL in page"
    );
    assert!(!html.contains(" style="), "inline style attribute");
    for (i, _) in html.match_indices("<script") {
        let tag = &html[i..i + html[i..].find('>').unwrap()];
        assert!(
            tag.contains("src=\"/nb-assets/"),
            "inline or foreign script: {tag}"
        );
    }
}

#[tokio::test]
async fn sign_in_sets_a_strict_httponly_session_and_checks_csrf() {
    let t = setup().await;
    t.user("ana", Role::Neighbor, None).await;
    let r = t.send("GET", "/signin", None, None, Vec::new(), None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.headers.get("content-security-policy").unwrap(), CSP);
    assert!(!CSP.contains("unsafe-inline") && !CSP.contains("unsafe-eval"));
    assert_eq!(r.headers.get("x-frame-options").unwrap(), "DENY");
    assert_self_contained(&r.text);
    let set = r.set_cookies().join("\n");
    assert!(
        set.contains("nb_csrf=") && set.contains("HttpOnly") && set.contains("SameSite=Strict"),
        "{set}"
    );
    let csrf = set
        .split("nb_csrf=")
        .nth(1)
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    assert!(r.text.contains(&format!("value=\"{csrf}\"")));

    let form = |pw: &str, token: &str| {
        form_urlencoded::Serializer::new(String::new())
            .extend_pairs([("csrf", token), ("username", "ana"), ("password", pw)])
            .finish()
            .into_bytes()
    };
    let cookie = format!("nb_csrf={csrf}");
    let ct = Some("application/x-www-form-urlencoded");
    // Missing / wrong double-submit value: refused before the password is looked at.
    let r = t
        .send("POST", "/signin", None, ct, form(PW, &csrf), None)
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "no cookie: {r:?}");
    let r = t
        .send(
            "POST",
            "/signin",
            Some(&cookie),
            ct,
            form(PW, "forged-value-1234567"),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{r:?}");
    // Wrong password: the form again, with the reason.
    let r = t
        .send(
            "POST",
            "/signin",
            Some(&cookie),
            ct,
            form("nope", &csrf),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(
        r.text.to_lowercase().contains("wrong username or password"),
        "{r:?}"
    );
    // Right password.
    let r = t
        .send("POST", "/signin", Some(&cookie), ct, form(PW, &csrf), None)
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{r:?}");
    assert_eq!(r.location(), "/feed");
    let set = r.set_cookies().join("\n");
    assert!(
        set.contains("nb_session=") && set.contains("HttpOnly") && set.contains("SameSite=Strict"),
        "{set}"
    );
    assert!(!set.contains("Secure"), "plain HTTP: no Secure flag");
    let token = set
        .split("nb_session=")
        .nth(1)
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    // Over HTTPS (as the browser's Origin says) the cookie is Secure too.
    let r = t
        .send(
            "POST",
            "/signin",
            Some(&cookie),
            ct,
            form(PW, &csrf),
            Some("https://nb.test"),
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{r:?}");
    assert!(r.set_cookies().join("\n").contains("; Secure"));
    // No area yet: the feed sends the user to pick one.
    let r = t.get("/feed", &token).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.location(), "/area?first=1");
    // Signed out: the cookie is cleared and the session is dead.
    let r = t.post_form("/signout", &token, &[]).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(r.set_cookies().join("\n").contains("nb_session=; "));
    let r = t.get("/area", &token).await;
    assert_eq!(r.location(), "/signin");
    // And without any cookie pages redirect to sign-in.
    let r = t.send("GET", "/feed", None, None, Vec::new(), None).await;
    assert_eq!((r.status, r.location()), (StatusCode::SEE_OTHER, "/signin"));
}

#[tokio::test]
async fn every_form_post_needs_the_session_csrf_token() {
    let t = setup().await;
    let (id, token) = t.user("ben", Role::Neighbor, None).await;
    let cell = home().to_string();
    let good = csrf_for(&token);
    // Missing, wrong, another session's, cross-origin: all refused, nothing saved.
    let r = t.post_raw("/area", &token, &[("cell", &cell)], None).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{r:?}");
    let r = t
        .post_raw(
            "/area",
            &token,
            &[
                ("csrf", "0123456789abcdef0123456789abcdef"),
                ("cell", &cell),
            ],
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let other = csrf_for("some-other-session-token");
    let r = t
        .post_raw("/area", &token, &[("csrf", &other), ("cell", &cell)], None)
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = t
        .post_raw(
            "/area",
            &token,
            &[("csrf", &good), ("cell", &cell)],
            Some("https://evil.example"),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(t.n.viewer(id).await.unwrap().home_cell.is_none());
    // The right token from the right origin works.
    let r = t
        .post_raw(
            "/area",
            &token,
            &[("csrf", &good), ("cell", &cell), ("radius_km", "2")],
            Some("http://nb.test"),
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{r:?}");
    let v = t.n.viewer(id).await.unwrap();
    assert_eq!(v.home_cell, Some(home()));
    assert_eq!(v.radius_km, 2.0);
    // What a browser sends under `Referrer-Policy: no-referrer` is
    // `Origin: null`: then the token alone decides.
    let r = t
        .post_raw(
            "/area",
            &token,
            &[
                ("csrf", "0123456789abcdef0123456789abcdef"),
                ("cell", &cell),
            ],
            Some("null"),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = t
        .post_raw(
            "/area",
            &token,
            &[("csrf", &good), ("cell", &cell), ("radius_km", "3")],
            Some("null"),
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{r:?}");
    assert_eq!(t.n.viewer(id).await.unwrap().radius_km, 3.0);
    // The multipart new-post form is checked too.
    let (ct, body) = multipart(
        &[
            ("csrf", "wrong"),
            ("category", "wildlife"),
            ("title", "Heron"),
            ("body", "At the pond."),
            ("cell", &cell),
        ],
        &[],
    );
    let r = t
        .send(
            "POST",
            "/posts/new",
            Some(&format!("nb_session={token}")),
            Some(&ct),
            body,
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{r:?}");
}

#[tokio::test]
async fn my_area_rejects_fine_cells_and_coordinates_and_picks_coarsely() {
    let t = setup().await;
    let (id, token) = t.user("cyd", Role::Neighbor, None).await;
    let fine = home()
        .children(Resolution::Nine)
        .next()
        .unwrap()
        .to_string();
    for bad in [fine.as_str(), "47.6205,-122.3493"] {
        let r = t.post_form("/area", &token, &[("cell", bad)]).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {r:?}");
        assert!(
            r.text.contains("coarser") || r.text.contains("raw coordinates"),
            "{r:?}"
        );
        let r = t
            .get(
                &format!(
                    "/area?cell={}",
                    form_urlencoded::byte_serialize(bad.as_bytes()).collect::<String>()
                ),
                &token,
            )
            .await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {r:?}");
    }
    assert!(t.n.viewer(id).await.unwrap().home_cell.is_none());

    // Candidates: the server rounds whatever it is sent to one decimal.
    let r = t
        .get("/area/candidates?lat=47.620512&lng=-122.349311", &token)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    let v: serde_json::Value = serde_json::from_slice(&r.bytes).unwrap();
    assert_eq!(v["point"], serde_json::json!([47.6, -122.3]));
    let cells: Vec<String> = v["cells"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c[0].as_str().unwrap().to_string())
        .collect();
    assert!(
        cells.contains(&home().to_string()),
        "the precise point's cell is among the candidates"
    );
    assert!(cells
        .iter()
        .all(|c| c.parse::<h3o::CellIndex>().unwrap().resolution() == Resolution::Eight));
    assert!(!r.text.contains("47.6205"), "no precise coordinate echoed");

    // The picker page: hexagons are links, the chosen one gets a Save form.
    let r = t.get(&format!("/area?cell={}", home()), &token).await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    assert!(
        r.text
            .contains(&format!("<a href=\"/area?cell={}\">", east(1.0))),
        "neighbouring hexagons are links"
    );
    assert!(r.text.contains("Save my area"));
    assert!(r.text.contains("src=\"/nb-assets/area.js\""));
    // The location button exists but is hidden until the script shows it.
    let btn = &r.text[r.text.find("id=\"use-location\"").expect("location button")..];
    assert!(
        btn[..btn.find('>').unwrap()].contains("hidden"),
        "{}",
        &btn[..80]
    );
    assert_self_contained(&r.text);
    // Typed rough point: rounded server-side, drawn as links.
    let r = t.get("/area?lat=47.62&lng=-122.35", &token).await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    assert!(r.text.contains("<a href=\"/area?cell="));
    // The script itself rounds before its only request.
    let js = t.get("/nb-assets/area.js", &token).await;
    assert!(js
        .headers
        .get("content-type")
        .unwrap()
        .to_str()
        .unwrap()
        .starts_with("text/javascript"));
    assert!(
        js.text.contains("Math.round(lat * 10) / 10")
            && js.text.contains("/area/candidates?lat=${rlat.toFixed(1)}")
    );
    assert_eq!(js.text.matches("fetch(").count(), 1);
}

#[tokio::test]
async fn feed_page_shows_the_radius_distances_badges_and_drawing() {
    let t = setup().await;
    let (_, ana) = t.user("ana", Role::Neighbor, Some(home())).await;
    let (_, fire) = t.user("fire", Role::Agency, None).await;
    t.post(
        &ana,
        "wildlife",
        "Heron at home",
        "A heron at the pond.",
        next_door(),
    )
    .await;
    t.post(
        &ana,
        "lost_found_pet",
        "Grey cat two km",
        "Found a grey cat.",
        east(2.0),
    )
    .await;
    t.post(&ana, "wildlife", "Far owl", "An owl.", east(6.0))
        .await;
    t.post(
        &fire,
        "safety_tip",
        "Check your smoke alarms",
        "Test them monthly.",
        home(),
    )
    .await;

    let r = t.get("/feed?radius_km=3", &ana).await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    assert_self_contained(&r.text);
    assert!(r.text.contains("Heron at home") && r.text.contains("Grey cat two km"));
    assert!(!r.text.contains("Far owl"));
    assert!(r.text.contains("in your area"));
    let cat = &r.text[r.text.find("Grey cat two km").unwrap() - 200..];
    assert!(
        cat.contains("km away</span>") && !cat[..200].contains("in your area"),
        "distance in words for the 2 km post"
    );
    assert!(r
        .text
        .contains("<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"cells\""));
    // The agency's post: badge and agency name.
    assert!(
        r.text.contains("Verified agency · City Fire Department"),
        "{r:?}"
    );

    let r = t.get("/feed?radius_km=1", &ana).await;
    assert!(r.text.contains("Heron at home") && !r.text.contains("Grey cat two km"));
    let r = t.get("/feed?radius_km=8", &ana).await;
    assert!(r.text.contains("Far owl"));
    let r = t.get("/feed?category=lost_found_pet", &ana).await;
    assert!(r.text.contains("Grey cat two km") && !r.text.contains("Heron at home"));
    // Bad filters are named, not a crash.
    let r = t.get("/feed?radius_km=50", &ana).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text.contains("0.5 to 8"), "{r:?}");
    let r = t.get("/feed?radius_km=far", &ana).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
}

/// A JPEG with an EXIF block naming a GPS position.
fn jpeg_with_gps() -> Vec<u8> {
    let img = image::RgbImage::from_fn(32, 32, |_, _| image::Rgb([10, 120, 200]));
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90)
        .encode_image(&img)
        .unwrap();
    let mut app1 = vec![0xFF, 0xE1];
    let payload =
        b"Exif\0\0MM\0\x2A\0\0\0\x08\0\0\0\0\0\0GPSLatitude 47.6205 N GPSLongitude 122.3493 W";
    app1.extend_from_slice(&((payload.len() + 2) as u16).to_be_bytes());
    app1.extend_from_slice(payload);
    let mut j = out[..2].to_vec();
    j.extend(app1);
    j.extend_from_slice(&out[2..]);
    j
}

#[tokio::test]
async fn new_post_page_returns_profiling_with_guidance_and_strips_photos() {
    let t = setup().await;
    let (_, ana) = t.user("ana", Role::Neighbor, Some(home())).await;
    let cookie = format!("nb_session={ana}");
    let csrf = csrf_for(&ana);
    // The place as the form comes: empty, which means the wider area.
    let cell = String::new();

    let r = t.get("/posts/new", &ana).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.text.contains("Describe what the person did first"),
        "guidance shown up front"
    );
    // Issue 14 item 7: the home area is never filled in (a post made as the
    // form comes used to carry it); the wider default place is named.
    assert!(
        !r.text.contains(&home().to_string()),
        "the form must not carry the home cell"
    );
    let wide = crate::area::default_post_cell(home()).unwrap();
    assert!(
        r.text.contains(&wide.to_string()),
        "the default place is named"
    );
    assert!(
        !r.text.contains("value=\"safety_tip\""),
        "agency categories are not offered to residents"
    );
    assert_self_contained(&r.text);

    // Profiling-style post: 422, reasons and exactly what to add, text kept.
    let (ct, body) = multipart(
        &[
            ("csrf", &csrf),
            ("category", "suspicious"),
            ("title", "Suspicious guy"),
            ("body", "A black man walking around looking into cars."),
            ("cell", &cell),
        ],
        &[],
    );
    let r = t
        .send("POST", "/posts/new", Some(&cookie), Some(&ct), body, None)
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{r:?}");
    assert!(r.text.contains("Please revise your post"));
    assert!(r.text.contains("race or ethnicity"));
    assert!(r.text.contains("clothing") && r.text.contains("age range"));
    assert!(
        r.text
            .contains("A black man walking around looking into cars."),
        "the draft is kept"
    );
    let v = t.n.viewer_for_token(&ana).await.unwrap();
    assert_eq!(
        t.n.feed(&v, Some(3.0), None, None, None).await.unwrap()["posts"]
            .as_array()
            .unwrap()
            .len(),
        0
    );

    // A lost-pet post with a photo carrying GPS: published, photo clean.
    let (ct, body) = multipart(
        &[
            ("csrf", &csrf),
            ("category", "lost_found_pet"),
            ("title", "Lost black dog"),
            ("body", "Our black dog ran off near the park."),
            ("cell", &cell),
            ("kind", "offer"),
        ],
        &[("dog.jpg", &jpeg_with_gps())],
    );
    let r = t
        .send("POST", "/posts/new", Some(&cookie), Some(&ct), body, None)
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{r:?}");
    let post_url = r.location().to_string();
    assert!(post_url.starts_with("/posts/"));
    let r = t.get(&post_url, &ana).await;
    assert!(r.text.contains("Lost black dog"));
    let id: i64 = post_url.trim_start_matches("/posts/").parse().unwrap();
    let p = t.n.post(&v, id).await.unwrap();
    assert_eq!(
        p["cell"],
        wide.to_string(),
        "a post without a place gets the wider area: {p}"
    );
    let src = r
        .text
        .split("img src=\"")
        .nth(1)
        .expect("photo shown")
        .split('"')
        .next()
        .unwrap()
        .to_string();
    let photo = t.get(&src, &ana).await;
    assert_eq!(photo.status, StatusCode::OK);
    assert_eq!(photo.headers.get("content-type").unwrap(), "image/jpeg");
    assert!(photo.bytes.starts_with(&[0xFF, 0xD8]));
    assert!(crate::photo::jpeg_has_no_metadata(&photo.bytes));
    assert!(
        !photo.bytes.windows(4).any(|w| w == b"Exif")
            && !photo.bytes.windows(11).any(|w| w == b"GPSLatitude")
    );

    // Garbage as a photo: the post is published and the refusal explained.
    let (ct, body) = multipart(
        &[
            ("csrf", &csrf),
            ("category", "wildlife"),
            ("title", "Heron"),
            ("body", "At the pond."),
            ("cell", &cell),
        ],
        &[("x.jpg", b"definitely not an image")],
    );
    let r = t
        .send("POST", "/posts/new", Some(&cookie), Some(&ct), body, None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    assert!(
        r.text.contains("a photo was not added") && r.text.contains("not an image"),
        "{r:?}"
    );
}

#[tokio::test]
async fn hostile_comment_gets_the_kindness_reminder_then_can_be_confirmed() {
    let t = setup().await;
    let (_, ana) = t.user("ana", Role::Neighbor, Some(home())).await;
    let (_, ben) = t.user("ben", Role::Neighbor, Some(home())).await;
    let id = t
        .post(
            &ana,
            "wildlife",
            "Fox in the yard",
            "A fox was in our yard last night.",
            next_door(),
        )
        .await;
    let path = format!("/posts/{id}/comments");
    let r = t
        .post_form(
            &path,
            &ben,
            &[("body", "You're an idiot, the gate was open.")],
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{r:?}");
    assert!(r.text.contains("A moment before you post") && r.text.contains("idiot"));
    assert!(
        r.text.contains("You&#39;re an idiot, the gate was open.")
            || r.text.contains("You're an idiot, the gate was open."),
        "text kept"
    );
    assert!(r.text.contains("name=\"confirm\" value=\"1\""));
    let post = t.get(&format!("/posts/{id}"), &ben).await;
    assert!(!post.text.contains("the gate was open"), "not posted yet");
    // Ordinary disagreement goes straight through.
    let r = t
        .post_form(
            &path,
            &ben,
            &[("body", "I disagree, I think it was a fox.")],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{r:?}");
    // Confirmed: posted as written.
    let r = t
        .post_form(
            &path,
            &ben,
            &[
                ("body", "You're an idiot, the gate was open."),
                ("confirm", "1"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{r:?}");
    let post = t.get(&format!("/posts/{id}"), &ana).await;
    assert!(
        post.text.contains("I disagree, I think it was a fox.")
            && post.text.contains("the gate was open")
    );
}

#[tokio::test]
async fn agencies_see_no_comment_box_reactions_or_photos_on_residents_posts() {
    let t = setup().await;
    let (_, ana) = t.user("ana", Role::Neighbor, Some(home())).await;
    let (_, fire) = t.user("fire", Role::Agency, None).await;
    let id = t
        .post(
            &ana,
            "wildlife",
            "Coyote",
            "A coyote near the school.",
            next_door(),
        )
        .await;
    let v = t.n.viewer_for_token(&ana).await.unwrap();
    let photo_id = t.n.add_photo(&v, id, &jpeg_with_gps()).await.unwrap();

    let r = t.get(&format!("/posts/{id}"), &fire).await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    assert!(
        !r.text.contains("Add a comment")
            && r.text
                .contains("Agency accounts reply only under their own posts")
    );
    assert!(!r.text.contains("/reactions\""), "no reaction buttons");
    assert!(
        !r.text.contains("<img")
            && r.text
                .contains("Photos are not available to agency accounts")
    );
    // Refused by the service, whatever the page shows.
    let r = t.get(&format!("/photos/{photo_id}"), &fire).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = t
        .post_form(
            &format!("/posts/{id}/comments"),
            &fire,
            &[("body", "Please send us your video.")],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = t
        .post_form(
            &format!("/posts/{id}/reactions"),
            &fire,
            &[("kind", "thanks")],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // Agencies post their own categories; the page offers only those.
    let r = t.get("/posts/new", &fire).await;
    assert!(r.text.contains("value=\"safety_tip\"") && !r.text.contains("value=\"suspicious\""));
    // A resident sees the photo.
    let r = t.get(&format!("/photos/{photo_id}"), &ana).await;
    assert_eq!(r.status, StatusCode::OK);

    // The agency sets its service area and posts a safety tip through the
    // form; residents see it with the badge and the agency's name.
    let r = t
        .post_form("/area", &fire, &[("cell", &home().to_string())])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{r:?}");
    let fire_cookie = format!("nb_session={fire}");
    let csrf = csrf_for(&fire);
    let cell = home().to_string();
    let (ct, body) = multipart(
        &[
            ("csrf", &csrf),
            ("category", "suspicious"),
            ("title", "x"),
            ("body", "y"),
            ("cell", &cell),
        ],
        &[],
    );
    let r = t
        .send(
            "POST",
            "/posts/new",
            Some(&fire_cookie),
            Some(&ct),
            body,
            None,
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::FORBIDDEN,
        "agencies post only their categories: {r:?}"
    );
    let (ct, body) = multipart(
        &[
            ("csrf", &csrf),
            ("category", "safety_tip"),
            ("title", "Test your smoke alarms"),
            ("body", "Once a month."),
            ("cell", &cell),
        ],
        &[],
    );
    let r = t
        .send(
            "POST",
            "/posts/new",
            Some(&fire_cookie),
            Some(&ct),
            body,
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{r:?}");
    let tip = r.location().to_string();
    let r = t.get(&tip, &ana).await;
    assert!(
        r.text.contains("Test your smoke alarms")
            && r.text.contains("✔ Verified agency · City Fire Department"),
        "{r:?}"
    );
    // The agency can reply under its own post (and only there).
    let r = t.get(&tip, &fire).await;
    assert!(
        r.text.contains("Add a comment") && !r.text.contains("reply only under their own posts")
    );
}

#[tokio::test]
async fn report_then_moderate_through_the_pages() {
    let t = setup().await;
    let (_, ana) = t.user("ana", Role::Neighbor, Some(home())).await;
    let (_, ben) = t.user("ben", Role::Neighbor, Some(home())).await;
    let (_, mo) = t.user("moe", Role::Moderator, Some(home())).await;
    let id = t
        .post(
            &ana,
            "crime_safety",
            "Car window smashed",
            "Someone smashed a car window on 4th at 2am.",
            next_door(),
        )
        .await;

    // Neighbors cannot open the queue.
    let r = t.get("/moderation", &ben).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // Ben reports the post for profiling.
    let r = t
        .post_form(
            &format!("/posts/{id}/reports"),
            &ben,
            &[("reason", "profiling"), ("note", "Seems unfair")],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    assert!(r.text.contains("Moderators will look at your report"));
    // The moderator sees it, and hides the post with a reason.
    let r = t.get("/moderation", &mo).await;
    assert_eq!(r.status, StatusCode::OK, "{r:?}");
    assert!(
        r.text.contains("Car window smashed")
            && r.text.contains("profiling")
            && r.text.contains("Seems unfair")
    );
    assert_self_contained(&r.text);
    let r = t
        .post_form(
            &format!("/moderation/posts/{id}/hide"),
            &mo,
            &[("reason", "Checking the details")],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{r:?}");
    // Hidden from others, visible to its author with a notice and an appeal form.
    assert_eq!(
        t.get(&format!("/posts/{id}"), &ben).await.status,
        StatusCode::NOT_FOUND
    );
    let r = t.get("/notices", &ana).await;
    assert!(
        r.text.contains("Checking the details") && r.text.contains("Appeal this decision"),
        "{r:?}"
    );
    let nid = r
        .text
        .split("action=\"/notices/")
        .nth(1)
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_string();
    let r = t
        .post_form(
            &format!("/notices/{nid}/appeal"),
            &ana,
            &[("text", "It was only about the car.")],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{r:?}");
    let r = t.get("/moderation", &mo).await;
    assert!(r.text.contains("It was only about the car."));
    let aid = r
        .text
        .split("action=\"/moderation/appeals/")
        .nth(1)
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_string();
    let r = t
        .post_form(
            &format!("/moderation/appeals/{aid}/grant"),
            &mo,
            &[("reason", "Fair point")],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{r:?}");
    assert_eq!(
        t.get(&format!("/posts/{id}"), &ben).await.status,
        StatusCode::OK,
        "restored after the appeal"
    );
    // Non-moderators cannot act, even with a valid token.
    let r = t
        .post_form(
            &format!("/moderation/posts/{id}/remove"),
            &ben,
            &[("reason", "x")],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = t
        .post_form("/moderation/bogus/1/hide", &mo, &[("reason", "x")])
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn assets_are_served_locally() {
    let t = setup().await;
    let (_, ana) = t.user("ana", Role::Neighbor, Some(home())).await;
    let css = t.get("/nb-assets/neighborhood.css", &ana).await;
    assert_eq!(css.status, StatusCode::OK);
    assert!(css
        .headers
        .get("content-type")
        .unwrap()
        .to_str()
        .unwrap()
        .starts_with("text/css"));
    assert!(
        !css.text.contains("@import") && !css.text.contains("url("),
        "no external resources in CSS"
    );
    assert!(css.text.contains("svg.cells"));
}

#[tokio::test]
async fn page_routes_list_matches_the_router() {
    let t = setup().await;
    let (_, ana) = t.user("ana", Role::Neighbor, Some(home())).await;
    let id = t
        .post(&ana, "wildlife", "Heron", "At the pond.", next_door())
        .await
        .to_string();
    for (method, path) in super::PAGE_ROUTES {
        let p = path
            .replace("{id}", &id)
            .replace("{kind}", "posts")
            .replace("{action}", "hide");
        let r = t
            .send(
                method,
                &p,
                Some(&format!("nb_session={ana}")),
                None,
                Vec::new(),
                None,
            )
            .await;
        assert!(
            r.status != StatusCode::NOT_FOUND || r.text.contains("not found"),
            "{method} {path} is not routed: {r:?}"
        );
        assert_ne!(r.status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
        // Every page response carries the CSP.
        assert_eq!(
            r.headers
                .get("content-security-policy")
                .map(|v| v.to_str().unwrap()),
            Some(CSP),
            "{method} {path}"
        );
    }
    // And a path not in the list is not served by the pages.
    let r = t
        .send(
            "GET",
            "/messages",
            Some(&format!("nb_session={ana}")),
            None,
            Vec::new(),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}
