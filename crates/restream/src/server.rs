//! The listener and one task per client connection.
//!
//! A connection task owns its socket: it reads requests (and skips the
//! client's interleaved RTCP), answers them, and — once playing — turns
//! frames from the broadcast channel into interleaved RTP on the same
//! socket. One session (one track) per connection.
//!
//! Re-authorization: once a client has proved hub credentials, the
//! connection task asks the [`crate::Authorizer`] again at every `PLAY`
//! and every [`RECHECK_EVERY`] (a timer, never per frame) whether the
//! credential and the right to the camera being streamed still hold; when
//! not, it closes the connection (RTSP/1.0 has no server-sent teardown
//! that clients honour) and reports the cut through
//! [`crate::Authorizer::stopped`], as it reports a `TEARDOWN` or a client
//! that left.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use porchlight_media::{Codec, VideoSampleEntry};
use rand::Rng;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast::{self, error::RecvError};
use tokio::task::JoinSet;

use crate::request::{self, Incoming, ParseError, Request, Response};
use crate::rtp::{self, Packetizer};
use crate::sdp::{self, ParameterSets, TRACK_CONTROL};
use crate::{Cameras, Credentials, Denied, LiveFrame, Principal, Source, StreamEnd};

/// A session with no request (and no RTCP from the client) for this long
/// ends, and its connection closes.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// A client that does not take a write for this long is disconnected.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(20);
/// How long `DESCRIBE` waits for the first frame (which carries the codec
/// parameters) before answering 503.
pub const DESCRIBE_WAIT: Duration = Duration::from_secs(6);
/// Clients served at once; more are turned away.
pub const MAX_CONNECTIONS: usize = 64;
/// Failed password checks allowed per connection before it is closed.
pub const MAX_AUTH_FAILURES: u32 = 3;
/// How often a connected client's right to watch is checked again.
pub const RECHECK_EVERY: Duration = Duration::from_secs(2);
/// RTCP sender report interval.
const SR_INTERVAL: Duration = Duration::from_secs(5);
/// Read buffer limit: a full head plus body, or one interleaved frame.
const READ_LIMIT: usize = 70 * 1024;

const PUBLIC: &str = "OPTIONS, DESCRIBE, SETUP, PLAY, PAUSE, TEARDOWN, GET_PARAMETER";

/// The static sources, by path; shared with the running server so sources
/// can come and go while it serves.
#[derive(Clone, Default)]
pub struct Sources(Arc<RwLock<HashMap<String, Arc<Source>>>>);

impl Sources {
    /// Serves `source` at `path` (e.g. `demo/front-door`), replacing any
    /// source there.
    pub fn add(&self, path: &str, source: Source) {
        let path = path.trim_matches('/').to_owned();
        self.0.write().unwrap().insert(path, Arc::new(source));
    }

    pub fn remove(&self, path: &str) {
        self.0.write().unwrap().remove(path.trim_matches('/'));
    }

    fn get(&self, path: &str) -> Option<Arc<Source>> {
        self.0.read().unwrap().get(path).cloned()
    }
}

/// A bound RTSP listener, ready to serve.
pub struct RtspServer {
    listener: TcpListener,
    addr: SocketAddr,
    sources: Sources,
}

impl RtspServer {
    /// Binds `addr` (port 0: any free port).
    pub async fn bind(addr: SocketAddr) -> std::io::Result<RtspServer> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        Ok(RtspServer {
            listener,
            addr,
            sources: Sources::default(),
        })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The static sources (add some before or while serving).
    pub fn sources(&self) -> Sources {
        self.sources.clone()
    }

    /// Serves until `shutdown` completes, then drops every connection.
    /// `cameras`: the store's cameras (none: only static sources).
    pub async fn serve(
        self,
        cameras: Option<Cameras>,
        shutdown: impl std::future::Future<Output = ()>,
    ) {
        let shared = Arc::new(Shared {
            sources: self.sources,
            cameras,
        });
        let mut tasks = JoinSet::new();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
                accepted = self.listener.accept() => {
                    let (stream, peer) = match accepted {
                        Ok(a) => a,
                        Err(e) => {
                            // Out of file descriptors and the like: back off.
                            tracing::warn!("RTSP accept failed: {e}");
                            tokio::time::sleep(Duration::from_millis(200)).await;
                            continue;
                        }
                    };
                    if tasks.len() >= MAX_CONNECTIONS {
                        tracing::warn!(%peer, "RTSP: too many clients, turning one away");
                        drop(stream);
                        continue;
                    }
                    let shared = shared.clone();
                    tasks.spawn(async move {
                        connection(stream, peer, shared).await;
                    });
                }
            }
        }
        tasks.shutdown().await;
    }
}

struct Shared {
    sources: Sources,
    cameras: Option<Cameras>,
}

/// What a session streams.
#[derive(Clone)]
enum Stream {
    Source(Arc<Source>),
    Camera {
        id: i64,
        name: String,
        who: Principal,
        /// `NAME/sub`: the camera's sub-stream instead of its main stream.
        sub: bool,
    },
}

struct Session {
    id: String,
    path: String,
    stream: Stream,
    channels: (u8, u8),
    ssrc: u32,
    seq: u16,
    /// Added to the 90 kHz presentation times (RTP times start at random).
    ts_offset: u32,
    playing: Option<Playing>,
    /// A `PLAY` of a camera was recorded ([`crate::Authorizer::played`]):
    /// its end must be too.
    played: bool,
}

struct Playing {
    rx: broadcast::Receiver<Arc<LiveFrame>>,
    want_key: bool,
    packetizer: Option<Packetizer>,
    last_sr: Option<Instant>,
}

struct Conn {
    peer: SocketAddr,
    local: SocketAddr,
    shared: Arc<Shared>,
    /// The `Authorization` header that last proved a hub user, and who.
    auth: Option<(String, Principal)>,
    auth_failures: u32,
    session: Option<Session>,
    /// Close the connection after the current response.
    close: bool,
    /// Why a re-check closed the connection.
    cut: Option<String>,
}

async fn connection(stream: TcpStream, peer: SocketAddr, shared: Arc<Shared>) {
    let local = match stream.local_addr() {
        Ok(a) => a,
        Err(_) => return,
    };
    let _ = stream.set_nodelay(true);
    let (mut rd, mut wr) = stream.into_split();
    let mut conn = Conn {
        peer,
        local,
        shared,
        auth: None,
        auth_failures: 0,
        session: None,
        close: false,
        cut: None,
    };
    tracing::debug!(%peer, "RTSP client connected");
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    let mut out: Vec<u8> = Vec::with_capacity(64 * 1024);
    let mut last_seen = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    let mut recheck =
        tokio::time::interval_at(tokio::time::Instant::now() + RECHECK_EVERY, RECHECK_EVERY);
    let result: Result<(), String> = 'conn: loop {
        let playing = conn.session.as_ref().is_some_and(|s| s.playing.is_some());
        tokio::select! {
            read = rd.read_buf(&mut buf), if buf.len() < READ_LIMIT => {
                match read {
                    Ok(0) => break Ok(()),
                    Err(e) => break Err(format!("read: {e}")),
                    Ok(_) => {}
                }
                loop {
                    match request::parse(&buf) {
                        Ok(None) => break,
                        Ok(Some((Incoming::Interleaved { .. }, used))) => {
                            // RTCP receiver reports: proof of life.
                            buf.drain(..used);
                            last_seen = Instant::now();
                        }
                        Ok(Some((Incoming::Request(req), used))) => {
                            buf.drain(..used);
                            last_seen = Instant::now();
                            let cseq = req.header("CSeq").map(str::to_owned);
                            let resp = conn.handle(&req).await;
                            tracing::debug!(%peer, method = %req.method, uri = %req.uri, status = resp.status, "RTSP request");
                            if let Err(e) = send(&mut wr, &resp.to_bytes(cseq.as_deref())).await {
                                break 'conn Err(e);
                            }
                            if conn.close {
                                break 'conn Ok(());
                            }
                        }
                        Err(e) => {
                            let status = match e {
                                ParseError::TooLarge => 413,
                                ParseError::Malformed(_) => 400,
                                ParseError::Version => 505,
                            };
                            let _ = send(&mut wr, &Response::new(status).to_bytes(None)).await;
                            break 'conn Err(format!("bad request: {e:?}"));
                        }
                    }
                }
                if buf.len() >= READ_LIMIT {
                    // A request that does not fit: parse() reports TooLarge
                    // before this for heads; anything else is garbage.
                    let _ = send(&mut wr, &Response::new(413).to_bytes(None)).await;
                    break Err("request too large".into());
                }
            }
            frame = recv(&mut conn.session), if playing => {
                out.clear();
                match conn.on_frame(frame, &mut out) {
                    Ok(()) => {}
                    Err(e) => break Err(e),
                }
                if !out.is_empty() {
                    if let Err(e) = send(&mut wr, &out).await {
                        break Err(e);
                    }
                }
            }
            _ = tick.tick() => {
                if last_seen.elapsed() > IDLE_TIMEOUT {
                    break Err(format!("idle for {} s", IDLE_TIMEOUT.as_secs()));
                }
            }
            _ = recheck.tick() => {
                if let Err(why) = conn.recheck().await {
                    tracing::info!(%peer, "RTSP: closing the connection: {why}");
                    conn.cut = Some(why.clone());
                    break Err(why);
                }
            }
        }
    };
    // Close gently: stop sending, then read (and discard) what the client
    // still sends for a moment, so an error response is not lost to a
    // reset caused by unread input.
    let _ = wr.shutdown().await;
    let _ = tokio::time::timeout(Duration::from_millis(500), async {
        let mut scratch = [0u8; 8192];
        let mut total = 0usize;
        while total < 256 * 1024 {
            match rd.read(&mut scratch).await {
                Ok(0) | Err(_) => break,
                Ok(n) => total += n,
            }
        }
    })
    .await;
    // A stream whose start was audited gets its end audited too.
    if let (Some(session), Some(cameras)) = (conn.session.take(), conn.shared.cameras.clone()) {
        if let (true, Stream::Camera { name, who, .. }) = (session.played, session.stream) {
            let end = match (conn.cut.take(), &result) {
                (Some(why), _) => StreamEnd::Cut(why),
                (None, Ok(())) => StreamEnd::Left("the client closed the connection".into()),
                (None, Err(e)) => StreamEnd::Left(e.clone()),
            };
            cameras.authorizer.stopped(&who, &name, peer, end).await;
        }
    }
    match result {
        Ok(()) => tracing::debug!(%peer, "RTSP client left"),
        Err(e) => tracing::debug!(%peer, "RTSP connection closed: {e}"),
    }
}

async fn recv(session: &mut Option<Session>) -> Result<Arc<LiveFrame>, RecvError> {
    match session.as_mut().and_then(|s| s.playing.as_mut()) {
        Some(p) => p.rx.recv().await,
        None => std::future::pending().await,
    }
}

async fn send(wr: &mut OwnedWriteHalf, bytes: &[u8]) -> Result<(), String> {
    match tokio::time::timeout(WRITE_TIMEOUT, wr.write_all(bytes)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(format!("write: {e}")),
        Err(_) => Err(format!(
            "the client took no data for {} s",
            WRITE_TIMEOUT.as_secs()
        )),
    }
}

fn unauthorized() -> Response {
    Response::new(401).header("WWW-Authenticate", "Basic realm=\"Porchlight\"")
}

fn denied(d: Denied) -> Response {
    match d {
        Denied::BadCredentials => unauthorized(),
        Denied::Revoked(why) => {
            tracing::info!("RTSP request refused: {why}");
            unauthorized()
        }
        Denied::Forbidden => Response::new(403),
        Denied::NotFound => Response::new(404),
        Denied::Unavailable(why) => {
            tracing::warn!("RTSP request refused: {why}");
            Response::new(503)
        }
    }
}

/// `Authorization: Basic …` → (user, password).
fn basic(header: &str) -> Option<(String, String)> {
    let (scheme, rest) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("Basic") {
        return None;
    }
    let raw = STANDARD.decode(rest.trim()).ok()?;
    let s = String::from_utf8(raw).ok()?;
    let (u, p) = s.split_once(':')?;
    Some((u.to_owned(), p.to_owned()))
}

/// Compares without an early exit on the first differing byte.
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn random_hex(bytes: usize) -> String {
    let mut rng = rand::thread_rng();
    (0..bytes)
        .map(|_| format!("{:02x}", rng.gen::<u8>()))
        .collect()
}

impl Conn {
    /// Asks the authorizer whether the hub user who proved credentials on
    /// this connection may still be here — and still watch the camera of
    /// the session, if any. `Err`: why not (the connection must close).
    async fn recheck(&mut self) -> Result<(), String> {
        let Some(cameras) = self.shared.cameras.clone() else {
            return Ok(());
        };
        let (who, camera) = match (&self.session, &self.auth) {
            (
                Some(Session {
                    stream: Stream::Camera { id, who, .. },
                    ..
                }),
                _,
            ) => (who.clone(), Some(*id)),
            (_, Some((_, who))) => (who.clone(), None),
            _ => return Ok(()),
        };
        match cameras.authorizer.recheck(&who, camera).await {
            Ok(()) => Ok(()),
            Err(Denied::Revoked(why)) | Err(Denied::Unavailable(why)) => Err(why),
            Err(d) => Err(format!("{d:?}")),
        }
    }

    async fn handle(&mut self, req: &Request) -> Response {
        match req.method.as_str() {
            "OPTIONS" => Response::new(200).header("Public", PUBLIC),
            "DESCRIBE" => self.describe(req).await.unwrap_or_else(|r| r),
            "SETUP" => self.setup(req).await.unwrap_or_else(|r| r),
            "PLAY" => self.play(req).await.unwrap_or_else(|r| r),
            "PAUSE" => self.pause(req).unwrap_or_else(|r| r),
            "TEARDOWN" => self.teardown(req).await.unwrap_or_else(|r| r),
            "GET_PARAMETER" => match (req.session(), &self.session) {
                (Some(id), Some(s)) if id == s.id => {
                    Response::new(200).header("Session", session_header(&s.id))
                }
                (Some(_), _) => Response::new(454),
                (None, _) => Response::new(200),
            },
            _ => Response::new(501).header("Public", PUBLIC),
        }
    }

    /// The stream a path names, if the request may have it.
    async fn resolve(&mut self, req: &Request, path: &str) -> Result<Stream, Response> {
        if path.is_empty() {
            return Err(Response::new(404));
        }
        if let Some(src) = self.shared.sources.get(path) {
            let Some(want) = &src.credentials else {
                return Ok(Stream::Source(src));
            };
            return match req.header("Authorization").and_then(basic) {
                Some((u, p)) if self.static_ok(want, &u, &p) => Ok(Stream::Source(src)),
                Some(_) => {
                    self.failed_auth();
                    Err(unauthorized())
                }
                None => Err(unauthorized()),
            };
        }
        let Some(cameras) = self.shared.cameras.clone() else {
            return Err(Response::new(404));
        };
        let who = self.principal(req, &cameras).await?;
        // `NAME/sub` is the camera's sub-stream; the same rights apply.
        let (name, sub) = match path.strip_suffix("/sub") {
            Some(name) if !name.is_empty() => (name, true),
            _ => (path, false),
        };
        match cameras.authorizer.authorize(&who, name, self.peer).await {
            // A camera without a sub-stream has nothing at `NAME/sub`.
            Ok(id) if sub && !cameras.live.has_sub(id) => Err(Response::new(404)),
            Ok(id) => Ok(Stream::Camera {
                id,
                name: name.to_owned(),
                who,
                sub,
            }),
            Err(d) => Err(denied(d)),
        }
    }

    fn static_ok(&self, want: &Credentials, user: &str, password: &str) -> bool {
        // Both compared, always.
        let u = ct_eq(user.as_bytes(), want.username.as_bytes());
        let p = ct_eq(password.as_bytes(), want.password.as_bytes());
        u & p && self.auth_failures < MAX_AUTH_FAILURES
    }

    fn failed_auth(&mut self) {
        self.auth_failures += 1;
        if self.auth_failures >= MAX_AUTH_FAILURES {
            self.close = true;
        }
    }

    /// The hub user of the request's Basic credentials (cached).
    async fn principal(&mut self, req: &Request, cameras: &Cameras) -> Result<Principal, Response> {
        let Some(header) = req.header("Authorization") else {
            return Err(unauthorized());
        };
        if let Some((h, p)) = &self.auth {
            if ct_eq(h.as_bytes(), header.as_bytes()) {
                return Ok(p.clone());
            }
        }
        let Some((user, password)) = basic(header) else {
            return Err(unauthorized());
        };
        if self.auth_failures >= MAX_AUTH_FAILURES {
            self.close = true;
            return Err(unauthorized());
        }
        match cameras
            .authorizer
            .authenticate(&user, &password, self.peer)
            .await
        {
            Ok(p) => {
                self.auth = Some((header.to_owned(), p.clone()));
                Ok(p)
            }
            Err(Denied::BadCredentials) => {
                tracing::info!(peer = %self.peer, user = %user, "RTSP: wrong user name or password");
                self.failed_auth();
                Err(unauthorized())
            }
            Err(d) => Err(denied(d)),
        }
    }

    fn subscribe(&self, stream: &Stream) -> Option<broadcast::Receiver<Arc<LiveFrame>>> {
        match stream {
            Stream::Source(s) => Some(s.frames.subscribe()),
            Stream::Camera { id, sub, .. } => self.shared.cameras.as_ref().map(|c| {
                if *sub {
                    c.live.subscribe_sub(*id)
                } else {
                    c.live.subscribe(*id)
                }
            }),
        }
    }

    /// `rtsp://AUTHORITY/PATH/` for Content-Base and RTP-Info, from the
    /// request's own URI where it is absolute (so clients behind a name or
    /// a port mapping get back what they used).
    fn base_url(&self, req: &Request, path: &str) -> String {
        let authority = req
            .uri
            .split_once("://")
            .map(|(_, rest)| rest.split('/').next().unwrap_or(""))
            .map(|a| a.rsplit('@').next().unwrap_or(a))
            .filter(|a| !a.is_empty())
            .map(str::to_owned)
            .unwrap_or_else(|| self.local.to_string());
        format!("rtsp://{authority}/{path}/")
    }

    fn target(req: &Request) -> Result<request::Target, Response> {
        request::target(&req.uri).ok_or_else(|| Response::new(400))
    }

    async fn describe(&mut self, req: &Request) -> Result<Response, Response> {
        let t = Self::target(req)?;
        if t.track.is_some() {
            return Err(Response::new(404));
        }
        let stream = self.resolve(req, &t.path).await?;
        let mut rx = self.subscribe(&stream).ok_or_else(|| Response::new(404))?;
        let entry = first_entry(&mut rx).await?;
        drop(rx);
        let origin: u64 = rand::thread_rng().gen::<u32>().into();
        let sdp = sdp::describe(&entry, origin, self.local.ip(), &t.path);
        Ok(Response::new(200)
            .header("Content-Base", self.base_url(req, &t.path))
            .body("application/sdp", sdp.into_bytes()))
    }

    async fn setup(&mut self, req: &Request) -> Result<Response, Response> {
        let t = Self::target(req)?;
        if t.track.is_some_and(|n| n != 0) {
            return Err(Response::new(404));
        }
        match (&self.session, req.session()) {
            (None, Some(_)) => return Err(Response::new(454)),
            (Some(s), Some(id)) if s.id != id => return Err(Response::new(454)),
            (Some(s), None) if s.path != t.path => return Err(Response::new(459)),
            (Some(s), _) if s.playing.is_some() => return Err(Response::new(455)),
            _ => {}
        }
        let stream = self.resolve(req, &t.path).await?;
        let transport = req.header("Transport").unwrap_or("");
        let Some(channels) = request::tcp_transport(transport) else {
            return Err(Response::new(461));
        };
        let mut rng = rand::thread_rng();
        let session = match self.session.take() {
            Some(mut s) => {
                s.channels = channels;
                s.stream = stream;
                s
            }
            None => Session {
                id: random_hex(8),
                path: t.path.clone(),
                stream,
                channels,
                ssrc: rng.gen(),
                seq: rng.gen(),
                ts_offset: rng.gen(),
                playing: None,
                played: false,
            },
        };
        let resp = Response::new(200)
            .header(
                "Transport",
                format!(
                    "RTP/AVP/TCP;unicast;interleaved={}-{};ssrc={:08X};mode=play",
                    channels.0, channels.1, session.ssrc
                ),
            )
            .header("Session", session_header(&session.id));
        self.session = Some(session);
        Ok(resp)
    }

    /// The session a request names, or the error to answer.
    fn session_of(&mut self, req: &Request) -> Result<&mut Session, Response> {
        match (&mut self.session, req.session()) {
            (Some(s), Some(id)) if s.id == id => Ok(s),
            (_, Some(_)) => Err(Response::new(454)),
            (_, None) => Err(Response::new(455)),
        }
    }

    async fn play(&mut self, req: &Request) -> Result<Response, Response> {
        let (path, stream, already) = {
            let s = self.session_of(req)?;
            (s.path.clone(), s.stream.clone(), s.playing.is_some())
        };
        let base = self.base_url(req, &path);
        if !already {
            if let Stream::Camera { id, name, who, .. } = &stream {
                let cameras = self
                    .shared
                    .cameras
                    .clone()
                    .ok_or_else(|| Response::new(404))?;
                if let Err(d) = cameras.authorizer.recheck(who, Some(*id)).await {
                    // Whatever was proved on this connection no longer
                    // holds: say so and hang up.
                    self.close = true;
                    return Err(denied(d));
                }
                cameras
                    .authorizer
                    .played(who, name, self.peer)
                    .await
                    .map_err(denied)?;
                self.session_of(req)?.played = true;
                tracing::info!(peer = %self.peer, camera = %name, user = %who.name, "RTSP restream started");
            }
            let rx = self.subscribe(&stream).ok_or_else(|| Response::new(404))?;
            self.session_of(req)?.playing = Some(Playing {
                rx,
                want_key: true,
                packetizer: None,
                last_sr: None,
            });
        }
        let session = self.session_of(req)?;
        let seq = session
            .playing
            .as_ref()
            .and_then(|p| p.packetizer.as_ref())
            .map_or(session.seq, |p| p.seq);
        Ok(Response::new(200)
            .header("Session", session_header(&session.id))
            .header("Range", "npt=0.000-")
            .header("RTP-Info", format!("url={base}{TRACK_CONTROL};seq={seq}")))
    }

    fn pause(&mut self, req: &Request) -> Result<Response, Response> {
        let session = self.session_of(req)?;
        if let Some(p) = session.playing.take() {
            if let Some(pk) = p.packetizer {
                session.seq = pk.seq;
            }
        }
        Ok(Response::new(200).header("Session", session_header(&session.id)))
    }

    async fn teardown(&mut self, req: &Request) -> Result<Response, Response> {
        self.session_of(req)?;
        if let (Some(session), Some(cameras)) = (self.session.take(), self.shared.cameras.clone()) {
            if let (true, Stream::Camera { name, who, .. }) = (session.played, session.stream) {
                cameras
                    .authorizer
                    .stopped(&who, &name, self.peer, StreamEnd::Teardown)
                    .await;
            }
        }
        Ok(Response::new(200))
    }

    /// Turns one frame (or a lag notice) into interleaved packets.
    fn on_frame(
        &mut self,
        frame: Result<Arc<LiveFrame>, RecvError>,
        out: &mut Vec<u8>,
    ) -> Result<(), String> {
        let Some(session) = self.session.as_mut() else {
            return Ok(());
        };
        let Some(p) = session.playing.as_mut() else {
            return Ok(());
        };
        let frame = match frame {
            Ok(f) => f,
            Err(RecvError::Lagged(n)) => {
                tracing::debug!(peer = %self.peer, "RTSP client fell {n} frames behind; skipping to the next key frame");
                p.want_key = true;
                return Ok(());
            }
            Err(RecvError::Closed) => return Err("the stream ended".into()),
        };
        if p.want_key && !frame.key {
            return Ok(());
        }
        p.want_key = false;
        let codec = frame.entry.codec;
        let packetizer = p.packetizer.get_or_insert_with(|| {
            Packetizer::new(codec, session.ssrc, session.seq, session.channels.0)
        });
        if packetizer.codec != codec {
            return Err("the camera changed codec mid-stream".into());
        }
        let mut nals: Vec<&[u8]> = rtp::nal_units(&frame.data).collect();
        let params;
        if frame.key && !rtp::has_parameter_sets(codec, &nals) {
            params = ParameterSets::of(&frame.entry);
            let mut with: Vec<&[u8]> = params.all().collect();
            // Drop any partial in-band sets: the record's are complete.
            with.extend(nals.iter().copied().filter(|n| !is_parameter_set(codec, n)));
            nals = with;
        }
        let ts = (frame.pts_90k as u32).wrapping_add(session.ts_offset);
        packetizer.packetize(&nals, ts, out);
        if p.last_sr.is_none_or(|t| t.elapsed() >= SR_INTERVAL) {
            rtp::sender_report(packetizer, session.channels.1, frame.arrival, ts, out);
            p.last_sr = Some(Instant::now());
        }
        Ok(())
    }
}

fn is_parameter_set(codec: Codec, nal: &[u8]) -> bool {
    match codec {
        Codec::H264 => matches!(rtp::nal_type(codec, nal), 7 | 8),
        Codec::H265 => matches!(rtp::nal_type(codec, nal), 32..=34),
    }
}

fn session_header(id: &str) -> String {
    format!("{id};timeout={}", IDLE_TIMEOUT.as_secs())
}

/// The codec parameters of the first frame to arrive.
async fn first_entry(
    rx: &mut broadcast::Receiver<Arc<LiveFrame>>,
) -> Result<Arc<VideoSampleEntry>, Response> {
    let wait = async {
        loop {
            match rx.recv().await {
                Ok(f) => return Ok(f.entry.clone()),
                Err(RecvError::Lagged(_)) => continue,
                Err(RecvError::Closed) => return Err(Response::new(404)),
            }
        }
    };
    match tokio::time::timeout(DESCRIBE_WAIT, wait).await {
        Ok(r) => r,
        Err(_) => {
            // Not connected (or not sending): say so, and when to retry.
            Err(Response::new(503).header("Retry-After", "10"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials() {
        let h = format!("Basic {}", STANDARD.encode("demo-owner:pa:ss"));
        assert_eq!(
            basic(&h),
            Some(("demo-owner".into(), "pa:ss".into())),
            "the password may contain colons"
        );
        assert_eq!(basic("Basic !!!"), None);
        assert_eq!(basic("Digest username=\"x\""), None);
        assert_eq!(
            basic(&format!("Basic {}", STANDARD.encode("nocolon"))),
            None
        );
        assert_eq!(basic(""), None);
    }

    #[test]
    fn constant_time_compare() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"ab"));
        assert!(ct_eq(b"", b""));
    }
}
