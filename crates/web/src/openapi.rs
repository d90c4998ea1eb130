//! The JSON API described as OpenAPI 3.1, served at `/api/openapi.json`.
//!
//! Written by hand from [`operations`], one entry per method and path. It
//! cannot drift silently: a unit test below reads every `.route(…)` in this
//! crate's source and fails when an `/api/v1` route and this table disagree
//! in either direction, and `tests/api.rs` calls every documented operation
//! on a real router and fails on "no such route" (404 with no body, 405).

use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::App;

pub(crate) fn routes() -> Router<App> {
    Router::new().route("/api/openapi.json", get(|| async { Json(document()) }))
}

/// A parameter in the path (`{name}`) or the query.
fn path_param(name: &str, what: &str) -> Value {
    json!({ "name": name, "in": "path", "required": true, "description": what, "schema": { "type": "string" } })
}

fn query_param(name: &str, what: &str) -> Value {
    json!({ "name": name, "in": "query", "required": false, "description": what, "schema": { "type": "string" } })
}

fn schema(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn json_body(s: Value) -> Value {
    json!({ "required": true, "content": { "application/json": { "schema": s } } })
}

fn ok(desc: &str, s: Value) -> Value {
    json!({ "description": desc, "content": { "application/json": { "schema": s } } })
}

fn empty(desc: &str) -> Value {
    json!({ "description": desc })
}

const INSTANT: &str = "An instant: RFC 3339 (`2026-11-29T14:00:00Z`), `now`, or relative to now (`-90s`, `-5m`, `-2h`, `-1d`).";

/// Every operation of the API: (method, path, OpenAPI operation object).
/// Methods are lower case, as in an OpenAPI path item.
pub(crate) fn operations() -> Vec<(&'static str, &'static str, Value)> {
    let camera = path_param("name", "The camera's name.");
    let errors = json!({
        "401": { "$ref": "#/components/responses/NotSignedIn" },
        "403": { "$ref": "#/components/responses/Forbidden" },
    });
    let with = |mut base: Value, extra: Value| {
        let (Some(b), Some(e)) = (base.as_object_mut(), extra.as_object()) else {
            unreachable!("objects")
        };
        for (k, v) in e {
            b.insert(k.clone(), v.clone());
        }
        base
    };
    let range = [
        query_param("from", INSTANT),
        query_param("to", &format!("{INSTANT} Default: `now`.")),
    ];
    vec![
        (
            "post",
            "/api/v1/sessions",
            json!({
                "tags": ["sessions"],
                "summary": "Sign in",
                "description": "Username, password and — when the account has two-factor sign-in — the current TOTP code (or a recovery code), in one request. Answers a bearer token for `Authorization: Bearer`. Throttled per account and per address (429 with `Retry-After`).",
                "security": [],
                "requestBody": json_body(schema("SignIn")),
                "responses": {
                    "201": ok("Signed in", schema("NewSession")),
                    "401": { "$ref": "#/components/responses/NotSignedIn" },
                    "429": { "$ref": "#/components/responses/Error" },
                },
            }),
        ),
        (
            "delete",
            "/api/v1/sessions/current",
            json!({
                "tags": ["sessions"], "summary": "Sign out (ends this session and locks its household key)",
                "responses": with(json!({ "204": empty("Signed out") }), errors.clone()),
            }),
        ),
        (
            "get",
            "/api/v1/me",
            json!({
                "tags": ["sessions"], "summary": "Who am I",
                "description": "The signed-in user, whether their household key is unlocked, and the session's CSRF token (for cookie-authenticated scripts: send it as `X-CSRF-Token`).",
                "responses": with(json!({ "200": ok("The user", schema("Me")) }), errors.clone()),
            }),
        ),
        (
            "get",
            "/api/v1/me/sessions",
            json!({
                "tags": ["sessions"], "summary": "Where I am signed in",
                "responses": with(json!({ "200": ok("Sessions", json!({ "type": "array", "items": schema("Session") })) }), errors.clone()),
            }),
        ),
        (
            "delete",
            "/api/v1/me/sessions/{id}",
            json!({
                "tags": ["sessions"], "summary": "Sign out another session of mine",
                "parameters": [path_param("id", "The session id.")],
                "responses": with(json!({ "204": empty("Revoked"), "404": { "$ref": "#/components/responses/NotFound" } }), errors.clone()),
            }),
        ),
        (
            "get",
            "/api/v1/audit",
            json!({
                "tags": ["audit"], "summary": "The audit log, newest first (owners)",
                "parameters": [
                    query_param("before", "Only entries with a smaller sequence number (paging)."),
                    query_param("limit", "At most this many entries (1–1000, default 100)."),
                ],
                "responses": with(json!({ "200": ok("Entries", json!({ "type": "object", "properties": { "entries": { "type": "array", "items": schema("AuditEntry") } } })) }), errors.clone()),
            }),
        ),
        (
            "get",
            "/api/v1/cameras",
            json!({
                "tags": ["cameras"], "summary": "Cameras I may see, with their status",
                "description": "Owners see every camera and its settings; members the cameras granted to them.",
                "responses": with(json!({ "200": ok("Cameras", json!({ "type": "array", "items": schema("Camera") })) }), errors.clone()),
            }),
        ),
        (
            "post",
            "/api/v1/cameras",
            json!({
                "tags": ["cameras"], "summary": "Add a camera (owners)",
                "description": "A running hub starts recording it within a few seconds. Audited (`camera.add`).",
                "requestBody": json_body(schema("NewCamera")),
                "responses": with(json!({ "201": ok("Added", schema("Camera")), "400": { "$ref": "#/components/responses/BadRequest" } }), errors.clone()),
            }),
        ),
        (
            "post",
            "/api/v1/cameras/test",
            json!({
                "tags": ["cameras"], "summary": "Test a connection to a camera (owners)",
                "description": "Connects the way the recorder would (RTSP DESCRIBE) and reports what the camera offers, or why it failed in words a person can act on. Always 200: `ok` says whether the camera answered. Give `camera` to test a saved camera (its URL and credentials unless given). Audited (`camera.test`).",
                "requestBody": json_body(schema("CameraTest")),
                "responses": with(json!({ "200": ok("The outcome", schema("CameraTestResult")) }), errors.clone()),
            }),
        ),
        (
            "get",
            "/api/v1/cameras/{name}",
            json!({
                "tags": ["cameras"], "summary": "One camera",
                "parameters": [camera.clone()],
                "responses": with(json!({ "200": ok("The camera", schema("Camera")), "404": { "$ref": "#/components/responses/NotFound" } }), errors.clone()),
            }),
        ),
        (
            "patch",
            "/api/v1/cameras/{name}",
            json!({
                "tags": ["cameras"], "summary": "Change a camera: address, sub-stream, credentials, retention, pause (owners)",
                "description": "Every field is optional (absent: keep). `enabled: false` is privacy mode: no recording, no live view, until it is switched on again (audited as `camera.disable`, `camera.enable`). `url`, `username`, `password` point the camera elsewhere (`\"\"`: none); a running hub reconnects within seconds (audited as `camera.edit`, without the password). `sub_url` (`\"\"`: none), `retain_days` and `retain_gib` (`0` or `null`: no limit) are audited as `camera.retention`. Every field is checked with the same rules as adding a camera before anything is saved: one wrong field (400, naming it) saves nothing. `test: true` tries the new address and credentials first and refuses the change (400, with the reason) when the camera does not answer.",
                "parameters": [camera.clone()],
                "requestBody": json_body(json!({ "type": "object", "additionalProperties": false, "properties": {
                    "enabled": { "type": "boolean" },
                    "url": { "type": "string", "description": "rtsp:// or rtsps://, without credentials" },
                    "sub_url": { "type": "string", "description": "rtsp:// or rtsps://, or \"\" for none" },
                    "username": { "type": "string" },
                    "password": { "type": "string", "format": "password" },
                    "retain_days": { "type": ["number", "null"], "minimum": 0, "maximum": 3650 },
                    "retain_gib": { "type": ["number", "null"], "minimum": 0 },
                    "test": { "type": "boolean", "description": "Test the connection before saving" } } })),
                "responses": with(json!({ "200": ok("The camera", schema("Camera")), "404": { "$ref": "#/components/responses/NotFound" } }), errors.clone()),
            }),
        ),
        (
            "delete",
            "/api/v1/cameras/{name}",
            json!({
                "tags": ["cameras"], "summary": "Remove a camera and delete its recordings (owners)",
                "description": "Waits (up to 20 s) for a running hub to close the camera's open segment. Audited (`camera.remove`).",
                "parameters": [camera.clone()],
                "responses": with(json!({ "204": empty("Removed"), "404": { "$ref": "#/components/responses/NotFound" } }), errors.clone()),
            }),
        ),
        (
            "put",
            "/api/v1/cameras/{name}/grants/{user}",
            json!({
                "tags": ["users"], "summary": "Let a member see a camera (owners)",
                "description": "Recordings made from now on are encrypted to the member too; earlier ones stay unreadable to them. Audited (`camera.grant`).",
                "parameters": [camera.clone(), path_param("user", "The member's username.")],
                "responses": with(json!({ "204": empty("Granted"), "400": { "$ref": "#/components/responses/BadRequest" }, "404": { "$ref": "#/components/responses/NotFound" } }), errors.clone()),
            }),
        ),
        (
            "delete",
            "/api/v1/cameras/{name}/grants/{user}",
            json!({
                "tags": ["users"], "summary": "Take a member's access to a camera away (owners)",
                "description": "Effective at once for live view and playback. Audited (`camera.revoke`).",
                "parameters": [camera.clone(), path_param("user", "The member's username.")],
                "responses": with(json!({ "204": empty("Revoked"), "400": { "$ref": "#/components/responses/BadRequest" }, "404": { "$ref": "#/components/responses/NotFound" } }), errors.clone()),
            }),
        ),
        (
            "get",
            "/api/v1/cameras/{name}/recordings",
            json!({
                "tags": ["recordings"], "summary": "Recorded spans in a range",
                "description": "Adjacent segments merged into continuous spans. Default range: the last day.",
                "parameters": [camera.clone(), range[0].clone(), range[1].clone()],
                "responses": with(json!({ "200": ok("Spans", schema("Spans")), "404": { "$ref": "#/components/responses/NotFound" } }), errors.clone()),
            }),
        ),
        (
            "get",
            "/api/v1/cameras/{name}/view.mp4",
            json!({
                "tags": ["recordings"], "summary": "Play or download a range as MP4",
                "description": "An MP4 built on the fly and decrypted with the signed-in user's household key (sign in again after a hub restart). Supports `Range` requests and `ETag`. Starts at the key frame at or before `from`; `X-Porchlight-Start` and `X-Porchlight-End` say what it covers. Audited once per playback (`recording.playback`) or download (`recording.export`).",
                "parameters": [camera.clone(), range[0].clone(), range[1].clone(),
                    query_param("download", "`1`: send as an attachment (a file to save) and audit as an export.")],
                "responses": with(json!({
                    "200": { "description": "The MP4", "content": { "video/mp4": { "schema": { "type": "string", "format": "binary" } } } },
                    "206": { "description": "Part of the MP4 (a Range request)", "content": { "video/mp4": { "schema": { "type": "string", "format": "binary" } } } },
                    "404": { "$ref": "#/components/responses/NotFound" },
                    "416": { "description": "The Range is outside the file" },
                }), errors.clone()),
            }),
        ),
        (
            "get",
            "/api/v1/cameras/{name}/live",
            json!({
                "tags": ["live"], "summary": "Live view (WebSocket)",
                "description": "Upgrade to a WebSocket. The server sends a text message `{\"type\":\"init\",\"codec\":…,\"width\":…,\"height\":…}`, then a binary init segment (fragmented MP4), then one binary `moof`+`mdat` per frame, for Media Source Extensions. A slow client skips to the next key frame. Refused unless `Origin` is this site. Audited once per connection (`live.view`).",
                "parameters": [camera.clone()],
                "responses": with(json!({ "101": empty("Switching to the WebSocket protocol"), "404": { "$ref": "#/components/responses/NotFound" } }), errors.clone()),
            }),
        ),
        (
            "get",
            "/api/v1/cameras/{name}/still.jpg",
            json!({
                "tags": ["live"], "summary": "A still picture: the next live key frame as a JPEG",
                "description": "For camera tiles: the next key frame decoded (H.264), at most 960 pixels wide. Waits up to 6 s for a key frame. Nothing is stored; `Cache-Control: private, no-store`. 404 with the reason for streams the hub cannot decode (use `still.mp4`). Audited (`live.still`).",
                "parameters": [camera.clone()],
                "responses": with(json!({
                    "200": { "description": "A JPEG", "content": { "image/jpeg": { "schema": { "type": "string", "format": "binary" } } } },
                    "404": { "$ref": "#/components/responses/NotFound" },
                }), errors.clone()),
            }),
        ),
        (
            "get",
            "/api/v1/cameras/{name}/still.mp4",
            json!({
                "tags": ["live"], "summary": "A still picture: the next live key frame as a one-frame MP4",
                "description": "For camera tiles. Waits up to 6 s for a key frame. Nothing is stored. Audited (`live.still`).",
                "parameters": [camera.clone()],
                "responses": with(json!({
                    "200": { "description": "A one-frame MP4", "content": { "video/mp4": { "schema": { "type": "string", "format": "binary" } } } },
                    "404": { "$ref": "#/components/responses/NotFound" },
                }), errors.clone()),
            }),
        ),
        (
            "get",
            "/api/v1/events",
            json!({
                "tags": ["events"], "summary": "Events (motion, person, doorbell …), newest first",
                "description": "`detection` says `on` when this hub runs the event path (`serve`, `demo`), `not set up` otherwise.",
                "parameters": [
                    query_param("camera", "Only this camera."),
                    query_param("kind", "Only this kind: motion, person, vehicle, animal, package_delivered, package_taken, doorbell, alarm."),
                    query_param("from", &format!("{INSTANT} Default: `-7d`.")),
                    query_param("to", &format!("{INSTANT} Default: `now`.")),
                ],
                "responses": with(json!({ "200": ok("Events", schema("Events")), "400": { "$ref": "#/components/responses/BadRequest" } }), errors.clone()),
            }),
        ),
        (
            "get",
            "/api/v1/cameras/{name}/detection",
            json!({
                "tags": ["cameras"], "summary": "A camera's detection settings",
                "description": "Analysis rate and stream, motion sensitivity and minimum area, polygon zones (`include`) and masks, alert labels per camera and per zone, parcel tracking. Defaults when never set.",
                "parameters": [path_param("name", "The camera's name.")],
                "responses": with(json!({ "200": ok("The settings", json!({ "type": "object" })), "404": { "$ref": "#/components/responses/NotFound" } }), errors.clone()),
            }),
        ),
        (
            "put",
            "/api/v1/cameras/{name}/detection",
            json!({
                "tags": ["cameras"], "summary": "Change a camera's detection settings (owners)",
                "description": "The whole document; every field optional (`{}` is the defaults), unknown fields refused with their name. Example: `{\"alert_labels\": [\"person\", \"parcel\"], \"motion\": {\"sensitivity\": 0.6, \"zones\": [{\"name\": \"porch\", \"polygon\": [[0.4, 0.2], [0.9, 0.2], [0.9, 1], [0.4, 1]], \"labels\": [\"person\", \"parcel\"]}, {\"name\": \"street\", \"kind\": \"mask\", \"polygon\": [[0, 0], [1, 0], [1, 0.15]]}]}}`. Coordinates are fractions of the picture. A running hub applies it within seconds. Audited as `camera.detection`. CSRF token required.",
                "parameters": [path_param("name", "The camera's name.")],
                "requestBody": json_body(json!({ "type": "object" })),
                "responses": with(json!({ "200": ok("Saved (with defaults filled in)", json!({ "type": "object" })), "400": { "$ref": "#/components/responses/BadRequest" }, "404": { "$ref": "#/components/responses/NotFound" } }), errors.clone()),
            }),
        ),
        (
            "post",
            "/api/v1/events",
            json!({
                "tags": ["events"], "summary": "Record an event from outside (doorbell, button, automation)",
                "description": "Body: `{\"camera\": NAME?, \"kind\": \"doorbell\", \"alert\": true, \"detail\": {…}}`. `kind`: 1–40 lower-case letters, digits, `_`, `-`. A snapshot of the camera's latest picture (at most 5 s old) is attached, encrypted like every snapshot. A member may only name cameras granted to them (a refusal is audited); events without a camera are for owners. Audited as `event.trigger`. CSRF token required.",
                "requestBody": json_body(json!({
                    "type": "object", "required": ["kind"], "additionalProperties": false,
                    "properties": {
                        "camera": { "type": "string" }, "kind": { "type": "string" },
                        "alert": { "type": "boolean", "default": true }, "detail": { "type": "object" }
                    }
                })),
                "responses": with(json!({
                    "201": ok("Recorded", json!({ "type": "object", "properties": { "id": { "type": "integer" }, "snapshot": { "type": "boolean" } } })),
                    "400": { "$ref": "#/components/responses/BadRequest" },
                    "404": { "$ref": "#/components/responses/NotFound" }
                }), errors.clone()),
            }),
        ),
        (
            "get",
            "/api/v1/events/{id}",
            json!({
                "tags": ["events"], "summary": "One event",
                "description": "Only for someone who may see the event's camera (a refusal is audited as `camera.denied`).",
                "parameters": [path_param("id", "The event's number.")],
                "responses": with(json!({ "200": ok("The event", schema("Event")), "400": { "$ref": "#/components/responses/BadRequest" }, "404": { "$ref": "#/components/responses/NotFound" } }), errors.clone()),
            }),
        ),
        (
            "get",
            "/api/v1/events/{id}/snapshot.jpg",
            json!({
                "tags": ["events"], "summary": "An event's snapshot (JPEG)",
                "description": "Stored encrypted to the camera's household members; decrypted with your unlocked key. `Cache-Control: private, no-store`. Audited per view (`event.snapshot`). 423 when your key is locked (the hub restarted since you signed in): sign in again.",
                "parameters": [path_param("id", "The event's number.")],
                "responses": with(json!({
                    "200": { "description": "The picture", "content": { "image/jpeg": { "schema": { "type": "string", "format": "binary" } } } },
                    "404": { "$ref": "#/components/responses/NotFound" },
                    "423": { "$ref": "#/components/responses/Error" },
                }), errors.clone()),
            }),
        ),
        (
            "get",
            "/api/v1/events/{id}/thumb.jpg",
            json!({
                "tags": ["events"], "summary": "An event's thumbnail (JPEG)",
                "description": "As `snapshot.jpg`, smaller, for lists; not audited one by one (design/audit.md). Falls back to the full snapshot when the event has no thumbnail.",
                "parameters": [path_param("id", "The event's number.")],
                "responses": with(json!({
                    "200": { "description": "The picture", "content": { "image/jpeg": { "schema": { "type": "string", "format": "binary" } } } },
                    "404": { "$ref": "#/components/responses/NotFound" },
                    "423": { "$ref": "#/components/responses/Error" },
                }), errors.clone()),
            }),
        ),
        (
            "get",
            "/api/v1/users",
            json!({
                "tags": ["users"], "summary": "The accounts, with the cameras each may see (owners)",
                "responses": with(json!({ "200": ok("Users", json!({ "type": "array", "items": schema("User") })) }), errors.clone()),
            }),
        ),
        (
            "post",
            "/api/v1/users",
            json!({
                "tags": ["users"], "summary": "Add a household account (owners)",
                "description": "An owner or member, with a new household key. The key recovery code is in the answer once and never again. Owners must set up two-factor sign-in at their first sign-in. Audited (`user.create`).",
                "requestBody": json_body(schema("NewUser")),
                "responses": with(json!({ "201": ok("Added", schema("CreatedUser")), "400": { "$ref": "#/components/responses/BadRequest" } }), errors.clone()),
            }),
        ),
        (
            "get",
            "/api/v1/users/{name}",
            json!({
                "tags": ["users"], "summary": "One account (owners)",
                "parameters": [path_param("name", "The username.")],
                "responses": with(json!({ "200": ok("The user", schema("User")), "404": { "$ref": "#/components/responses/NotFound" } }), errors.clone()),
            }),
        ),
        (
            "patch",
            "/api/v1/users/{name}",
            json!({
                "tags": ["users"], "summary": "Disable or enable an account (owners)",
                "description": "A disabled account's sessions end at once. You cannot disable yourself. Audited (`user.disable`, `user.enable`).",
                "parameters": [path_param("name", "The username.")],
                "requestBody": json_body(json!({ "type": "object", "additionalProperties": false, "properties": { "disabled": { "type": "boolean" } } })),
                "responses": with(json!({ "200": ok("The user", schema("User")), "400": { "$ref": "#/components/responses/BadRequest" }, "404": { "$ref": "#/components/responses/NotFound" } }), errors.clone()),
            }),
        ),
        (
            "get",
            "/api/v1/push/key",
            json!({
                "tags": ["notifications"], "summary": "The hub's Web Push (VAPID) public key",
                "description": "For `pushManager.subscribe({ applicationServerKey })`: the uncompressed P-256 point, base64url without padding. 503 when the hub runs without Web Push.",
                "responses": with(json!({ "200": ok("The key", schema("PushKey")), "503": { "$ref": "#/components/responses/Error" } }), errors.clone()),
            }),
        ),
        (
            "post",
            "/api/v1/push/subscriptions",
            json!({
                "tags": ["notifications"], "summary": "Subscribe this browser to your notifications",
                "description": "The browser's `PushSubscription.toJSON()`. The endpoint must be https; `keys.p256dh` a P-256 public key and `keys.auth` 16 bytes, base64url. Subscribing an endpoint again (also from another account) takes it over. Notifications carry only a title, a short text, a link on the hub, the event id and a tag — never video or pictures, since they pass through the browser vendor's push service.",
                "requestBody": json_body(schema("PushSubscription")),
                "responses": with(json!({ "201": ok("Subscribed", json!({ "type": "object", "properties": { "id": { "type": "integer" }, "created": { "type": "string", "format": "date-time" } } })), "400": { "$ref": "#/components/responses/BadRequest" }, "503": { "$ref": "#/components/responses/Error" } }), errors.clone()),
            }),
        ),
        (
            "delete",
            "/api/v1/push/subscriptions",
            json!({
                "tags": ["notifications"], "summary": "Unsubscribe a browser of yours",
                "requestBody": json_body(json!({ "type": "object", "required": ["endpoint"], "properties": { "endpoint": { "type": "string" } } })),
                "responses": with(json!({ "204": empty("Unsubscribed"), "404": { "$ref": "#/components/responses/NotFound" } }), errors.clone()),
            }),
        ),
        (
            "post",
            "/api/v1/push/test",
            json!({
                "tags": ["notifications"], "summary": "Send a test notification to your own subscribed browsers",
                "description": "Ignores your rules. Answers what each push service said; a subscription answered 404/410 is removed.",
                "responses": with(json!({ "200": ok("What happened", schema("PushTestResult")), "503": { "$ref": "#/components/responses/Error" } }), errors.clone()),
            }),
        ),
        (
            "get",
            "/api/v1/notifications/rules",
            json!({
                "tags": ["notifications"], "summary": "Your notification rules",
                "responses": with(json!({ "200": ok("Your rules", schema("NotificationRules")) }), errors.clone()),
            }),
        ),
        (
            "put",
            "/api/v1/notifications/rules",
            json!({
                "tags": ["notifications"], "summary": "Replace your notification rules",
                "description": "Absent or null lists mean all. Cameras are names of cameras you may see. Quiet hours are in the hub's local time and may wrap midnight; with `alarm_always` (default true) alarm notices ignore every rule, quiet hours included.",
                "requestBody": json_body(schema("NotificationRules")),
                "responses": with(json!({ "200": ok("The saved rules", schema("NotificationRules")), "400": { "$ref": "#/components/responses/BadRequest" } }), errors.clone()),
            }),
        ),
        (
            "put",
            "/api/v1/cameras/{name}/privacy",
            json!({
                "tags": ["alarm"], "summary": "Turn a camera's privacy mode on or off",
                "description": "Privacy mode pauses recording, live view, stills, detection and notifications for the camera whatever the alarm mode. Owners, and members for cameras granted to them; audited as `camera.privacy`.",
                "parameters": [camera.clone()],
                "requestBody": json_body(json!({ "type": "object", "required": ["on"], "properties": { "on": { "type": "boolean" } } })),
                "responses": with(json!({ "200": ok("Saved", json!({ "type": "object" })), "404": { "$ref": "#/components/responses/NotFound" } }), errors.clone()),
            }),
        ),
        (
            "get",
            "/api/v1/cameras/{name}/modes",
            json!({
                "tags": ["alarm"], "summary": "What a camera does in each alarm mode, and now",
                "description": "`modes` maps `disarmed`, `home`, `away` to `{record, detect, notify}` (all true unless changed); `policy` is what applies in the current mode, privacy included.",
                "parameters": [camera.clone()],
                "responses": with(json!({ "200": ok("The camera's modes", json!({ "type": "object" })), "404": { "$ref": "#/components/responses/NotFound" } }), errors.clone()),
            }),
        ),
        (
            "put",
            "/api/v1/cameras/{name}/modes",
            json!({
                "tags": ["alarm"], "summary": "Set what a camera does per alarm mode (owners)",
                "description": "A map from mode (`disarmed`, `home`, `away`) to `{record, detect, notify}`; modes not given are kept. A camera that must not record in the current mode stops within one recorder housekeeping tick and comes back when the mode changes. Audited as `camera.modes`.",
                "parameters": [camera.clone()],
                "requestBody": json_body(json!({ "type": "object", "additionalProperties": json!({ "type": "object", "required": ["record", "detect", "notify"], "properties": { "record": { "type": "boolean" }, "detect": { "type": "boolean" }, "notify": { "type": "boolean" } } }) })),
                "responses": with(json!({ "200": ok("Saved", json!({ "type": "object" })), "400": { "$ref": "#/components/responses/BadRequest" }, "404": { "$ref": "#/components/responses/NotFound" } }), errors.clone()),
            }),
        ),
        (
            "get",
            "/api/v1/alarm",
            json!({
                "tags": ["alarm"], "summary": "The alarm: state, delays left, bypassed sensors, siren, the MQTT broker link and every sensor",
                "description": "Owners and members. `mqtt.broker_away` is true when a broker is configured but not connected (sensors and sirens unreachable); `mqtt.last_error` says why (e.g. \"not authorised\"). 503 when the alarm does not run in this process.",
                "responses": with(json!({ "200": ok("The alarm", schema("AlarmStatus")), "503": { "$ref": "#/components/responses/Error" } }), errors.clone()),
            }),
        ),
        (
            "post",
            "/api/v1/alarm/arm",
            json!({
                "tags": ["alarm"], "summary": "Arm the alarm (home: doors and windows; away: everything) after the exit delay",
                "description": "Owners and members; audited as `alarm.arm` under your name. Sensors open at arming are bypassed until the next disarm; the answer lists them with a `warning`. Arming while armed or arming switches the mode; 409 while pending or triggered (disarm first).",
                "requestBody": json_body(json!({ "type": "object", "required": ["mode"], "properties": { "mode": { "type": "string", "enum": ["home", "away"] } } })),
                "responses": with(json!({ "200": ok("Arming", schema("AlarmOutcome")), "400": { "$ref": "#/components/responses/BadRequest" }, "409": ok("Refused", schema("AlarmOutcome")), "503": { "$ref": "#/components/responses/Error" } }), errors.clone()),
            }),
        ),
        (
            "post",
            "/api/v1/alarm/disarm",
            json!({
                "tags": ["alarm"], "summary": "Disarm the alarm (stops the sirens)",
                "description": "Owners and members; audited as `alarm.disarm` under your name.",
                "responses": with(json!({ "200": ok("Disarmed", schema("AlarmOutcome")), "503": { "$ref": "#/components/responses/Error" } }), errors.clone()),
            }),
        ),
    ]
}

fn components() -> Value {
    let error = json!({ "type": "object", "required": ["error"], "properties": { "error": { "type": "string", "description": "What went wrong, in words safe to show." } } });
    let err_resp = |d: &str| json!({ "description": d, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } });
    let ts = json!({ "type": "string", "format": "date-time" });
    // Built apart: one `json!` with every schema exceeds the macro's
    // recursion limit.
    let event = json!({ "type": "object", "properties": {
        "id": { "type": "integer" }, "camera": { "type": "string" }, "kind": { "type": "string" },
        "start": ts, "end": ts, "ongoing": { "type": "boolean", "description": "Still going on; `end` is then now" },
        "review": { "type": "string", "enum": ["alert", "detection"] }, "source": { "type": "string" },
        "score": { "type": ["number", "null"] },
        "zones": { "type": "array", "items": { "type": "string" } },
        "labels": { "type": "array", "items": { "type": "string" } },
        "preroll_s": { "type": "integer", "description": "Seconds of video worth showing before `start`" },
        "snapshot": { "type": "boolean", "description": "Whether `snapshot.jpg` and `thumb.jpg` exist" },
        "sealed": { "type": ["string", "null"], "description": "Why the details cannot be shown to this reader (e.g. `sealed to other members`); `kind` is then `sealed` and the details empty. Null when shown." } } });
    let alarm_outcome = json!({ "type": "object", "required": ["ok", "state"], "properties": {
                "ok": { "type": "boolean" },
                "state": { "type": "string", "enum": ["disarmed", "arming", "armed_home", "armed_away", "pending", "triggered"] },
                "bypassed": { "type": "array", "items": { "type": "string" }, "description": "Sensors open at arming, ignored until disarmed." },
                "warning": { "type": "string" },
                "error": { "type": ["string", "null"] },
            } });
    let alarm_mqtt = json!({ "type": "object", "properties": {
        "enabled": { "type": "boolean" }, "connected": { "type": "boolean" },
        "last_error": { "type": ["string", "null"] }, "connects": { "type": "integer" },
        "broker_away": { "type": "boolean" },
    } });
    let alarm_sensor = json!({ "type": "object", "properties": {
        "name": { "type": "string" }, "kind": { "type": "string", "enum": ["contact", "motion", "doorbell", "siren", "keypad"] },
        "topic": { "type": "string" },
        "state": { "type": ["string", "null"], "enum": ["open", "closed", "motion", "clear", null] },
        "active": { "type": ["boolean", "null"] }, "battery": { "type": ["number", "null"] },
        "linkquality": { "type": ["integer", "null"] }, "available": { "type": ["boolean", "null"] },
        "last_seen": { "type": ["string", "null"], "format": "date-time" }, "bypassed": { "type": "boolean" },
        "modes": { "type": "array", "items": { "type": "string", "enum": ["home", "away"] }, "description": "The armed modes in which this sensor sets the alarm off (empty: never)." },
        "modes_chosen": { "type": "boolean", "description": "true: chosen for this sensor (`porchlight sensor set NAME --modes …`); false: its kind's default (home: contacts; away: contacts and motion)." },
    } });
    let alarm_status = json!({ "type": "object", "required": ["state", "mqtt", "sensors"], "properties": {
        "state": { "type": "string", "enum": ["disarmed", "arming", "armed_home", "armed_away", "pending", "triggered"] },
        "mode": { "type": ["string", "null"], "enum": ["home", "away", null] },
        "since": ts.clone(),
        "exit_delay_left_ms": { "type": ["integer", "null"] },
        "entry_delay_left_ms": { "type": ["integer", "null"] },
        "deadline": { "type": ["string", "null"], "format": "date-time" },
        "cause": { "type": ["string", "null"], "description": "The sensor that started pending/triggered." },
        "bypassed": { "type": "array", "items": { "type": "string" } },
        "siren": { "type": "object", "properties": { "on": { "type": "boolean" }, "left_ms": { "type": ["integer", "null"] } } },
        "delays": { "type": "object", "properties": { "exit_ms": { "type": "integer" }, "entry_ms": { "type": "integer" }, "siren_ms": { "type": "integer" } } },
        "mqtt": alarm_mqtt,
        "sensors": { "type": "array", "items": alarm_sensor },
    } });
    let mut c = json!({
        "securitySchemes": {
            "bearer": { "type": "http", "scheme": "bearer", "description": "The token from `POST /api/v1/sessions`. Requests with it need no CSRF token." },
            "cookie": { "type": "apiKey", "in": "cookie", "name": "pl_session", "description": "The browser session. State-changing requests must also send the session's CSRF token as `X-CSRF-Token` (from `GET /api/v1/me`)." },
        },
        "responses": {
            "Error": err_resp("Refused"),
            "NotSignedIn": err_resp("Not signed in (or the session ended)"),
            "Forbidden": err_resp("Not allowed: wrong role, a camera not granted (audited as `camera.denied`), or a missing CSRF token"),
            "NotFound": err_resp("No such thing"),
            "BadRequest": err_resp("The request is not valid; `error` says why"),
        },
        "schemas": {
            "Error": error,

            "SignIn": { "type": "object", "required": ["username", "password"], "properties": {
                "username": { "type": "string" }, "password": { "type": "string", "format": "password" },
                "totp": { "type": "string", "description": "The current authenticator code, or a recovery code." } } },
            "NewSession": { "type": "object", "properties": {
                "token": { "type": "string" }, "stage": { "type": "string", "enum": ["totp", "enroll", "full"] },
                "username": { "type": "string" }, "role": schema("Role"), "expires_at": ts } },
            "Role": { "type": "string", "enum": ["owner", "member", "neighbor", "agency", "moderator", "admin"] },
            "Me": { "type": "object", "properties": {
                "username": { "type": "string" }, "role": schema("Role"), "totp": { "type": "boolean" },
                "household_key": { "type": ["object", "null"], "properties": { "recipient": { "type": "string" }, "unlocked": { "type": "boolean" } } },
                "session": { "type": "object", "properties": { "id": { "type": "integer" }, "csrf_token": { "type": "string" } } } } },
            "Session": { "type": "object", "properties": {
                "id": { "type": "integer" }, "current": { "type": "boolean" }, "client_addr": { "type": "string" },
                "user_agent": { "type": "string" }, "created_at": ts, "last_seen_at": ts } },
            "AuditEntry": { "type": "object", "properties": {
                "seq": { "type": "integer" }, "at": ts, "actor": { "type": "string" },
                "action": { "type": "string", "examples": ["live.view", "recording.playback", "camera.denied"] },
                "target": { "type": "string" }, "detail": { "type": "object" }, "client": { "type": "string" },
                "hash": { "type": "string", "description": "This entry's link in the hash chain (hex)." } } },
            "Camera": { "type": "object", "properties": {
                "name": { "type": "string" }, "enabled": { "type": "boolean", "description": "false: paused (privacy mode)" },
                "connected": { "type": "boolean" }, "fps": { "type": ["number", "null"] }, "bitrate_bps": { "type": ["number", "null"] },
                "last_error": { "type": ["string", "null"] }, "recorded_bytes": { "type": "integer" }, "segments": { "type": "integer" },
                "url": { "type": "string", "description": "Owners only" }, "sub_url": { "type": ["string", "null"], "description": "Owners only" },
                "username": { "type": ["string", "null"], "description": "Owners only; the camera's password is never returned" },
                "retain_days": { "type": ["integer", "null"], "description": "Owners only (camera details)" },
                "retain_gib": { "type": ["number", "null"], "description": "Owners only (camera details)" } } },
            "NewCamera": { "type": "object", "required": ["name", "url"], "properties": {
                "name": { "type": "string", "pattern": "^[A-Za-z0-9_-]{1,48}$" },
                "url": { "type": "string", "description": "rtsp:// or rtsps://, without credentials" },
                "sub_url": { "type": "string" }, "username": { "type": "string" }, "password": { "type": "string", "format": "password" },
                "retain_days": { "type": "integer", "minimum": 0 }, "retain_gib": { "type": "number", "minimum": 0 } } },
            "CameraTest": { "type": "object", "properties": {
                "camera": { "type": "string", "description": "A saved camera to test" },
                "url": { "type": "string" }, "username": { "type": "string" }, "password": { "type": "string", "format": "password" } } },
            "CameraTestResult": { "type": "object", "required": ["ok"], "properties": {
                "ok": { "type": "boolean" }, "error": { "type": "string", "description": "Why the camera did not answer (when ok is false)" },
                "camera": { "type": "object", "properties": {
                    "streams": { "type": "array", "items": { "type": "string" } }, "codec": { "type": ["string", "null"] },
                    "width": { "type": ["integer", "null"] }, "height": { "type": ["integer", "null"] } } } } },
            "Spans": { "type": "object", "properties": {
                "camera": { "type": "string" },
                "spans": { "type": "array", "items": { "type": "object", "properties": { "start": ts, "end": ts } } } } },
            "Events": { "type": "object", "properties": {
                "detection": { "type": "string", "enum": ["on", "not set up"] }, "from": ts, "to": ts,
                "events": { "type": "array", "items": schema("Event") } } },
            "Event": event,
            "User": { "type": "object", "properties": {
                "username": { "type": "string" }, "role": schema("Role"), "disabled": { "type": "boolean" },
                "totp": { "type": "boolean" }, "household_key": { "type": "boolean" }, "created_at": ts,
                "cameras": { "type": "array", "items": { "type": "string" }, "description": "Cameras this account may see" } } },
            "NewUser": { "type": "object", "required": ["username", "role", "password"], "properties": {
                "username": { "type": "string" }, "role": { "type": "string", "enum": ["owner", "member"] },
                "password": { "type": "string", "format": "password", "minLength": 10 } } },
            "PushKey": { "type": "object", "properties": { "public_key": { "type": "string", "description": "base64url, no padding" } } },
            "PushSubscription": { "type": "object", "required": ["endpoint", "keys"], "properties": {
                "endpoint": { "type": "string", "format": "uri" }, "expirationTime": { "type": ["number", "null"] },
                "keys": { "type": "object", "required": ["p256dh", "auth"], "properties": {
                    "p256dh": { "type": "string" }, "auth": { "type": "string" } } } } },
            "PushTestResult": { "type": "object", "properties": {
                "sent": { "type": "integer" }, "delivered": { "type": "integer" },
                "deliveries": { "type": "array", "items": { "type": "object", "properties": {
                    "subscription_id": { "type": "integer" }, "user_id": { "type": "integer" },
                    "service": { "type": "string", "description": "The push service's origin" },
                    "outcome": { "type": "string", "enum": ["delivered", "removed", "failed"] },
                    "status": { "type": ["integer", "null"] }, "reason": { "type": "string" } } } } } },
            "NotificationRules": { "type": "object", "additionalProperties": false, "properties": {
                "cameras": { "type": ["array", "null"], "items": { "type": "string" }, "description": "Camera names; null: all you may see" },
                "kinds": { "type": ["array", "null"], "items": { "type": "string" }, "description": "Kinds or labels (person, vehicle, animal, package, doorbell, motion); null: all" },
                "quiet_hours": { "type": ["object", "null"], "required": ["start", "end"], "properties": {
                    "start": { "type": "string", "pattern": "^[0-2][0-9]:[0-5][0-9]$" }, "end": { "type": "string", "pattern": "^[0-2][0-9]:[0-5][0-9]$" } } },
                "alarm_always": { "type": "boolean", "default": true },
                "alarm_modes": { "type": ["array", "null"], "items": { "type": "string", "enum": ["disarmed", "home", "away"] }, "description": "null: all" } } },
            "CreatedUser": { "type": "object", "properties": {
                "username": { "type": "string" }, "role": schema("Role"),
                "recovery_code": { "type": "string", "description": "The key recovery code: shown once, never stored in clear" } } },
        },
    });
    // Added after the literal: one `json!` this size hits the macro
    // recursion limit.
    c["schemas"]["AlarmOutcome"] = alarm_outcome;
    c["schemas"]["AlarmStatus"] = alarm_status;
    c
}

/// The whole document.
pub(crate) fn document() -> Value {
    let mut paths = serde_json::Map::new();
    for (method, path, op) in operations() {
        let item = paths.entry(path.to_owned()).or_insert_with(|| json!({}));
        item[method] = op;
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Porchlight hub API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The JSON API behind Porchlight's pages. Sign in with `POST /api/v1/sessions` and send the token as `Authorization: Bearer`, or use the browser session cookie with the `X-CSRF-Token` header on state-changing requests. Every look at video (live, playback, export, stills) is written to the owner's audit log.",
            "license": { "name": "AGPL-3.0-or-later" },
        },
        "servers": [{ "url": "/" }],
        "security": [{ "bearer": [] }, { "cookie": [] }],
        "paths": paths,
        "components": components(),
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::{document, operations};

    /// `(method, path)` of every `.route("…", get(…).post(…))` in `src`.
    fn routes_in(src: &str) -> Vec<(String, String)> {
        let method = regex::Regex::new(r"\b(get|post|put|patch|delete)\(").unwrap();
        let mut out = Vec::new();
        let mut rest = src;
        while let Some(i) = rest.find(".route(") {
            rest = &rest[i + ".route(".len()..];
            // The call's arguments: up to the matching parenthesis.
            let mut depth = 1;
            let mut end = 0;
            for (j, c) in rest.char_indices() {
                match c {
                    '(' => depth += 1,
                    ')' => {
                        depth -= 1;
                        if depth == 0 {
                            end = j;
                            break;
                        }
                    }
                    _ => {}
                }
            }
            let args = &rest[..end];
            let Some(path) = args.split('"').nth(1) else {
                continue;
            };
            for m in method.captures_iter(args) {
                out.push((m[1].to_owned(), path.to_owned()));
            }
        }
        out
    }

    /// The route table: every `.route` call in this crate's source files.
    fn source_routes() -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut dirs = vec![std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src")];
        while let Some(d) = dirs.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    dirs.push(p);
                } else if p.extension().is_some_and(|x| x == "rs") {
                    let src = std::fs::read_to_string(&p).unwrap();
                    // This file's own tests mention `.route(` in strings.
                    let src = src.split("#[cfg(test)]").next().unwrap();
                    out.extend(routes_in(src));
                }
            }
        }
        out
    }

    /// Does the documented template `/a/{x}/b` cover the literal `/a/test/b`?
    fn covers(template: &str, path: &str) -> bool {
        let (t, p): (Vec<_>, Vec<_>) = (template.split('/').collect(), path.split('/').collect());
        t.len() == p.len()
            && t.iter()
                .zip(&p)
                .all(|(a, b)| a == b || (a.starts_with('{') && a.ends_with('}')))
    }

    #[test]
    fn the_route_parser_sees_chained_methods() {
        let r = routes_in(
            r#"Router::new().route("/api/v1/x", get(a).post(b))
               .route(
                   "/api/v1/y/{id}",
                   delete(c),
               )"#,
        );
        assert_eq!(
            r,
            [
                ("get".into(), "/api/v1/x".into()),
                ("post".into(), "/api/v1/x".into()),
                ("delete".into(), "/api/v1/y/{id}".into())
            ]
        );
    }

    #[test]
    fn every_api_route_is_documented_and_nothing_else() {
        let routes: BTreeSet<(String, String)> = source_routes()
            .into_iter()
            .filter(|(_, p)| p.starts_with("/api/v1"))
            .collect();
        assert!(
            routes.len() >= 20,
            "the route table looks wrong: {routes:?}"
        );
        let documented: BTreeSet<(String, String)> = operations()
            .into_iter()
            .map(|(m, p, _)| (m.to_owned(), p.to_owned()))
            .collect();
        // Every route is documented (a literal path may be covered by a
        // template: `/api/v1/cameras/test` also answers the camera `test`).
        for (m, p) in &routes {
            assert!(
                documented.contains(&(m.clone(), p.clone()))
                    || documented.iter().any(|(dm, dp)| dm == m && covers(dp, p)),
                "{} {p} is routed but not in the OpenAPI document (src/openapi.rs)",
                m.to_uppercase()
            );
        }
        // Nothing documented that is not routed.
        for (m, p) in &documented {
            assert!(
                routes.contains(&(m.clone(), p.clone())),
                "{} {p} is documented but not routed",
                m.to_uppercase()
            );
        }
    }

    #[test]
    fn the_document_is_well_formed() {
        let doc = document();
        assert_eq!(doc["openapi"], "3.1.0");
        let text = doc.to_string();
        // Every $ref points at something defined.
        let re = regex::Regex::new(r##""\$ref":"#/components/(\w+)/(\w+)""##).unwrap();
        for c in re.captures_iter(&text) {
            assert!(
                !doc["components"][&c[1]][&c[2]].is_null(),
                "dangling $ref {}/{}",
                &c[1],
                &c[2]
            );
        }
        for (m, p, op) in operations() {
            assert!(op["summary"].is_string(), "{m} {p} has a summary");
            assert!(op["responses"].is_object(), "{m} {p} has responses");
            // Path parameters are declared.
            for seg in p.split('/').filter(|s| s.starts_with('{')) {
                let name = seg.trim_matches(|c| c == '{' || c == '}');
                assert!(
                    op["parameters"].as_array().is_some_and(|ps| ps
                        .iter()
                        .any(|x| x["name"] == name && x["in"] == "path")),
                    "{m} {p} declares its path parameter {name}"
                );
            }
        }
    }
}
