//! # porchlight-restream
//!
//! A small RTSP server inside the hub. It serves every camera live at
//! `rtsp://HUB:PORT/NAME` from the hub's one connection to that camera, so
//! VLC, ffmpeg or Home Assistant can watch without opening more
//! connections to the camera (many cameras allow only a few). A camera
//! with a sub-stream also serves it at `rtsp://HUB:PORT/NAME/sub` (same
//! rights as the camera). It also
//! serves *sources* that are not cameras in the store — the demo's
//! synthetic cameras at `demo/NAME`, and test streams — each with its own
//! static credentials, so the recorder can record them through the real
//! RTSP path.
//!
//! What it speaks: RTSP/1.0 with `OPTIONS`, `DESCRIBE` (SDP with the
//! parameter sets), `SETUP` (RTP over the RTSP connection only:
//! `RTP/AVP/TCP;interleaved`; UDP is answered `461 Unsupported
//! Transport`), `PLAY`, `PAUSE`, `TEARDOWN` and `GET_PARAMETER`
//! (keepalive). H.264 and H.265, payload type 96, single NAL unit packets
//! and fragmentation units, RTCP sender reports every few seconds.
//!
//! Who may watch: cameras need HTTP Basic credentials of a hub user who may
//! see that camera (an owner, or a member granted it), checked by the
//! injected [`Authorizer`]. The CLI implements it with the vault: the
//! password is a per-device RTSP token, never the account password (RTSP
//! clients cannot do a second factor); every sign-in, refusal, `PLAY` and
//! end of a stream is audited. A successful check is cached for the
//! connection, so the secret is checked once per client, not once per
//! request — and the right to watch is checked again at every `PLAY` and
//! every [`server::RECHECK_EVERY`] while the client stays connected: a
//! revoked token, a disabled user or a withdrawn grant closes the
//! connection within seconds ([`Authorizer::recheck`]). A client without
//! valid credentials learns nothing, not even whether a camera of that
//! name exists (401 comes before 404). Sources carry their own static
//! credentials. Basic credentials travel in clear: the listener defaults
//! to 127.0.0.1, and exposing it on a network is a deliberate choice of
//! the household (a token sniffed there shows its cameras until revoked;
//! it opens no account and no recording).
//!
//! Invariants:
//! * The recorder is never slowed down by a viewer: frames come from a
//!   bounded broadcast channel; a client that falls behind loses frames
//!   (`Lagged`) and resumes at the next key frame. A client that stops
//!   reading is disconnected after [`server::WRITE_TIMEOUT`].
//! * Every stream sent to a client starts with a key frame preceded by its
//!   parameter sets (taken from the sample entry when the frame lacks
//!   them).
//! * Bounded resources: request size ([`request::MAX_HEAD`],
//!   [`request::MAX_BODY`]), connections ([`server::MAX_CONNECTIONS`]),
//!   failed password checks per connection, idle sessions end after
//!   [`server::IDLE_TIMEOUT`] without a request or RTCP report. Garbage
//!   input gets an error response and a closed connection, never a panic.
//!
//! Not here: UDP or multicast transport, RTSPS, audio, Digest auth,
//! recording (`ANNOUNCE`/`RECORD`), transcoding.

#![forbid(unsafe_code)]

pub mod request;
pub mod rtp;
pub mod sdp;
pub mod server;

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

pub use porchlight_recorder::{LiveFrame, LiveHub};
pub use server::{RtspServer, Sources};
use tokio::sync::broadcast;

/// A boxed future, as the [`Authorizer`]'s methods return.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A hub user who proved a credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub user_id: i64,
    pub name: String,
    /// Which of the user's credentials (the CLI: the RTSP token's id), so
    /// a re-check can tell that this one was revoked.
    pub credential: i64,
}

/// Why a request is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denied {
    /// Unknown user, wrong password, disabled account, or throttled (401).
    BadCredentials,
    /// Known user, but not allowed to see this camera (403).
    Forbidden,
    /// No such camera (404).
    NotFound,
    /// Something on the hub failed (the store, the audit log): 503.
    Unavailable(String),
    /// A right that held before is gone (token revoked, user disabled,
    /// grant withdrawn); the reason is for the log and the audit entry.
    Revoked(String),
}

/// How a stream that [`Authorizer::played`] recorded came to an end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamEnd {
    /// The client sent `TEARDOWN`.
    Teardown,
    /// The client went away (closed, timed out, or an error).
    Left(String),
    /// The server cut it: a re-check found the right to watch gone.
    Cut(String),
}

/// Decides who may watch which camera. Implemented by the CLI with the
/// vault and the store; tests use simple fakes.
pub trait Authorizer: Send + Sync + 'static {
    /// Checks a hub user's password. Expensive (Argon2id): the server
    /// calls it at most once per connection and credential.
    fn authenticate<'a>(
        &'a self,
        username: &'a str,
        password: &'a str,
        client: SocketAddr,
    ) -> BoxFuture<'a, Result<Principal, Denied>>;

    /// Finds camera `name` and checks that `who` may see it; returns the
    /// camera's id (the key of its [`LiveHub`] channel).
    fn authorize<'a>(
        &'a self,
        who: &'a Principal,
        name: &'a str,
        client: SocketAddr,
    ) -> BoxFuture<'a, Result<i64, Denied>>;

    /// Records that `who` started watching `name` (one audit entry per
    /// `PLAY`). An error refuses the `PLAY`: watching that cannot be
    /// recorded must not happen.
    fn played<'a>(
        &'a self,
        who: &'a Principal,
        name: &'a str,
        client: SocketAddr,
    ) -> BoxFuture<'a, Result<(), Denied>>;

    /// Is `who`'s credential still good, and (with `camera`, the id
    /// [`Authorizer::authorize`] returned) may they still watch it? The
    /// server asks at each `PLAY` and every [`server::RECHECK_EVERY`]
    /// while a client that proved credentials stays connected; any error
    /// closes the connection. Cheap (a database read, no password hash).
    fn recheck<'a>(
        &'a self,
        who: &'a Principal,
        camera: Option<i64>,
    ) -> BoxFuture<'a, Result<(), Denied>>;

    /// Records the end of a stream that [`Authorizer::played`] recorded.
    /// Cannot refuse anything: the stream is over either way.
    fn stopped<'a>(
        &'a self,
        who: &'a Principal,
        name: &'a str,
        client: SocketAddr,
        end: StreamEnd,
    ) -> BoxFuture<'a, ()>;
}

/// The cameras of the store, live from the recorder.
#[derive(Clone)]
pub struct Cameras {
    pub live: Arc<LiveHub>,
    pub authorizer: Arc<dyn Authorizer>,
}

/// A user name and password.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"…")
            .finish()
    }
}

/// A stream served at a fixed path that is not a camera of the store (the
/// demo's synthetic cameras, test streams).
#[derive(Debug, Clone)]
pub struct Source {
    /// The frames; the server subscribes once per client.
    pub frames: broadcast::Sender<Arc<LiveFrame>>,
    /// Basic credentials a client must present; `None`: anyone may watch.
    pub credentials: Option<Credentials>,
}
