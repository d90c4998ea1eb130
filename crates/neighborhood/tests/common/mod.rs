//! Test harness: runs one test body against SQLite (in a tempdir) and
//! PostgreSQL (a fresh `nb_<random>` schema in database `test`, dropped at
//! the end even when the test panics), and drives the router with real
//! HTTP requests through `tower::ServiceExt::oneshot`.
//!
//! PostgreSQL unreachable: the test fails under `PORCHLIGHT_REQUIRE_TOOLS=1`
//! (CI) and is skipped with a printed notice otherwise.
#![allow(dead_code)]

use std::future::Future;

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use porchlight_neighborhood::accounts::Role;
use porchlight_neighborhood::push::PushOptions;
use porchlight_neighborhood::push_endpoint::{FixedResolver, LocalPush};
use porchlight_neighborhood::{Limits, Neighborhood, UserId};
use porchlight_vault::keys::KdfParams;
use serde_json::Value;
use tower::ServiceExt;

pub const PG_BASE: &str = "postgres://postgres@127.0.0.1:5432/test";
pub const PASSWORD: &str = "correct horse battery";

#[derive(Debug, Clone, Copy)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs `body` on both stores — the expansion of one test name into a
/// `sqlite` and a `postgres` test.
#[macro_export]
macro_rules! both {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                $crate::common::run($crate::common::Backend::Sqlite, super::$name).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                $crate::common::run($crate::common::Backend::Postgres, super::$name).await
            }
        }
    };
}

/// What a test body gets: the neighborhood and its router.
#[derive(Clone)]
pub struct Ctx {
    pub n: Neighborhood,
    pub app: Router,
    /// The database URL (to open a second `Neighborhood` on it).
    pub url: String,
}

/// Drops the PostgreSQL schema (or the tempdir) when the test ends.
struct Guard {
    schema: Option<String>,
    _dir: Option<tempfile::TempDir>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(schema) = self.schema.take() {
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async {
                    use sqlx::Connection;
                    sqlx::any::install_default_drivers();
                    if let Ok(mut c) = sqlx::AnyConnection::connect(PG_BASE).await {
                        let _ = sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                            .execute(&mut c)
                            .await;
                    }
                })
            })
            .join();
        }
    }
}

fn require_tools() -> bool {
    std::env::var("PORCHLIGHT_REQUIRE_TOOLS").as_deref() == Ok("1")
}

async fn open(backend: Backend) -> Option<(Ctx, Guard)> {
    let (url, guard) = match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().expect("tempdir");
            let url = format!(
                "sqlite://{}?mode=rwc",
                dir.path().join("neighborhood.db").display()
            );
            (
                url,
                Guard {
                    schema: None,
                    _dir: Some(dir),
                },
            )
        }
        Backend::Postgres => {
            use sqlx::Connection;
            sqlx::any::install_default_drivers();
            let mut c = match sqlx::AnyConnection::connect(PG_BASE).await {
                Ok(c) => c,
                Err(e) if !require_tools() => {
                    eprintln!("NOTICE: PostgreSQL at {PG_BASE} unreachable ({e}); skipping the PostgreSQL run");
                    return None;
                }
                Err(e) => {
                    panic!("PostgreSQL at {PG_BASE} is required (PORCHLIGHT_REQUIRE_TOOLS=1): {e}")
                }
            };
            let schema = format!("nb_{}", hex::encode(rand::random::<[u8; 6]>()));
            sqlx::query(&format!("CREATE SCHEMA {schema}"))
                .execute(&mut c)
                .await
                .expect("create schema");
            let _ = c.close().await;
            let url = format!("{PG_BASE}?options=-c%20search_path%3D{schema}");
            (
                url,
                Guard {
                    schema: Some(schema),
                    _dir: None,
                },
            )
        }
    };
    let n = Neighborhood::open_with(&url, KdfParams::insecure_for_tests())
        .await
        .expect("open neighborhood");
    n.set_limits(Limits {
        posts_per_hour: 1000,
        comments_per_hour: 1000,
        login_failures: 5,
    });
    // Every push stays on this machine: `push.example` (the tests' push
    // service name) resolves to 127.0.0.1 through a fixed table, nothing
    // else resolves, and only loopback addresses are accepted.
    let dns = std::sync::Arc::new(FixedResolver::new());
    dns.set("push.example", &["127.0.0.1".parse().unwrap()]);
    n.set_push_resolver(dns).unwrap();
    n.set_push_options(PushOptions {
        local: LocalPush::LoopbackOnly,
        ..PushOptions::default()
    })
    .unwrap();
    let app = porchlight_neighborhood::router(n.clone());
    Some((Ctx { n, app, url }, guard))
}

/// Runs `body` on `backend`.
pub async fn run<F, Fut>(backend: Backend, body: F)
where
    F: FnOnce(Ctx) -> Fut,
    Fut: Future<Output = ()>,
{
    let Some((ctx, guard)) = open(backend).await else {
        return;
    };
    let n = ctx.n.clone();
    body(ctx).await;
    n.close().await;
    drop(guard);
}

/// A response, decoded.
pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub bytes: Vec<u8>,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.bytes).unwrap_or(Value::Null)
    }
}

impl std::fmt::Debug for Resp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}",
            self.status,
            String::from_utf8_lossy(&self.bytes[..self.bytes.len().min(400)])
        )
    }
}

impl Ctx {
    /// One HTTP request through the router.
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> Resp {
        let mut b = Request::builder()
            .method(Method::from_bytes(method.as_bytes()).unwrap())
            .uri(path);
        if let Some(t) = token {
            b = b.header("authorization", format!("Bearer {t}"));
        }
        if let Some(ct) = content_type {
            b = b.header("content-type", ct);
        }
        let resp = self
            .app
            .clone()
            .oneshot(b.body(Body::from(body)).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec();
        Resp {
            status,
            headers,
            bytes,
        }
    }

    /// A JSON request (`body` `Value::Null` sends no body).
    pub async fn req(&self, method: &str, path: &str, token: Option<&str>, body: Value) -> Resp {
        if body.is_null() {
            self.send(method, path, token, None, Vec::new()).await
        } else {
            self.send(
                method,
                path,
                token,
                Some("application/json"),
                serde_json::to_vec(&body).unwrap(),
            )
            .await
        }
    }

    /// A page request as a browser signed in as `token` sends it (session
    /// cookie; `body` is a content type and bytes).
    pub async fn page(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<(String, Vec<u8>)>,
    ) -> Resp {
        let mut b = Request::builder()
            .method(Method::from_bytes(method.as_bytes()).unwrap())
            .uri(path)
            .header("host", "nb.test")
            .header("cookie", format!("nb_session={token}"));
        let body = match body {
            Some((ct, bytes)) => {
                b = b.header("content-type", ct);
                Body::from(bytes)
            }
            None => Body::empty(),
        };
        let resp = self
            .app
            .clone()
            .oneshot(b.body(body).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec();
        Resp {
            status,
            headers,
            bytes,
        }
    }

    /// Signs in through the API.
    pub async fn login(&self, username: &str) -> String {
        let r = self
            .req(
                "POST",
                "/api/v1/sessions",
                None,
                serde_json::json!({"username": username, "password": PASSWORD}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "login {username}: {r:?}");
        r.json()["token"].as_str().unwrap().to_string()
    }

    /// Creates a user with `role` (agencies verified), sets their area when
    /// given, and signs them in.
    pub async fn user(
        &self,
        username: &str,
        role: Role,
        home: Option<h3o::CellIndex>,
    ) -> (UserId, String) {
        let agency = (role == Role::Agency).then_some("City Fire Department");
        let id = self
            .n
            .create_user(username, PASSWORD, username, role, agency)
            .await
            .expect("create user");
        if role == Role::Agency {
            self.n.verify_agency(None, id).await.unwrap();
        }
        if let Some(h) = home {
            self.n
                .set_area(id, &h.to_string(), Some(3.0))
                .await
                .unwrap();
        }
        (id, self.login(username).await)
    }
}

/// The test area's home cell (resolution 8).
pub fn home() -> h3o::CellIndex {
    h3o::LatLng::new(47.6205, -122.3493)
        .unwrap()
        .to_cell(h3o::Resolution::Eight)
}

/// A resolution-8 cell whose centre is between `min` and `max` km from
/// `home`'s, chosen with `area::distance_km`.
pub fn cell_at(home: h3o::CellIndex, min: f64, max: f64) -> h3o::CellIndex {
    let disk: Vec<h3o::CellIndex> = home.grid_disk(25);
    disk.into_iter()
        .find(|c| {
            let d = porchlight_neighborhood::area::distance_km(home, *c);
            d >= min && d <= max
        })
        .unwrap_or_else(|| panic!("no cell between {min} and {max} km"))
}

/// A resolution-8 cell next to `home` (about 0.8 km away): where tests
/// post what happened near a user's home, since a post may not carry its
/// author's home cell.
pub fn next_door(home: h3o::CellIndex) -> h3o::CellIndex {
    home.grid_disk::<Vec<_>>(1)
        .into_iter()
        .find(|c| *c != home)
        .expect("a neighbouring cell")
}

/// A small PNG (generated, `w`×`h`).
pub fn png(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| image::Rgb([(x * 7) as u8, (y * 5) as u8, 90]));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}
