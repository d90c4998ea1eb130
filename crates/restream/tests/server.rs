//! The RTSP server end to end on loopback: a real client (retina, the
//! recorder's RTSP library) against a demo camera source, raw requests for
//! the error answers, and a client that stops reading while frames pour in.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use futures_util::StreamExt;
use porchlight_media::{Codec, VideoSampleEntry};
use porchlight_restream::{
    Authorizer, BoxFuture, Cameras, Credentials, Denied, LiveFrame, LiveHub, Principal, RtspServer,
    Source, StreamEnd,
};
use tokio::sync::broadcast;

#[derive(Default)]
struct FakeAuth {
    authentications: AtomicUsize,
    plays: AtomicUsize,
    /// Credentials a re-check refuses.
    revoked: std::sync::Mutex<Vec<i64>>,
    /// How streams ended, in order.
    ends: std::sync::Mutex<Vec<StreamEnd>>,
}

impl Authorizer for FakeAuth {
    fn authenticate<'a>(
        &'a self,
        username: &'a str,
        password: &'a str,
        _client: SocketAddr,
    ) -> BoxFuture<'a, Result<Principal, Denied>> {
        self.authentications.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move {
            match (username, password) {
                ("alice", "alice-pw") => Ok(Principal {
                    user_id: 1,
                    name: "alice".into(),
                    credential: 11,
                }),
                ("nina", "nina-pw") => Ok(Principal {
                    user_id: 2,
                    name: "nina".into(),
                    credential: 12,
                }),
                _ => Err(Denied::BadCredentials),
            }
        })
    }

    fn authorize<'a>(
        &'a self,
        who: &'a Principal,
        name: &'a str,
        _client: SocketAddr,
    ) -> BoxFuture<'a, Result<i64, Denied>> {
        Box::pin(async move {
            match (name, who.user_id) {
                ("cam", 1) => Ok(7),
                ("cam", _) => Err(Denied::Forbidden),
                _ => Err(Denied::NotFound),
            }
        })
    }

    fn played<'a>(
        &'a self,
        _who: &'a Principal,
        _name: &'a str,
        _client: SocketAddr,
    ) -> BoxFuture<'a, Result<(), Denied>> {
        self.plays.fetch_add(1, Ordering::SeqCst);
        Box::pin(async { Ok(()) })
    }

    fn recheck<'a>(
        &'a self,
        who: &'a Principal,
        _camera: Option<i64>,
    ) -> BoxFuture<'a, Result<(), Denied>> {
        Box::pin(async move {
            if self.revoked.lock().unwrap().contains(&who.credential) {
                Err(Denied::Revoked("the token was revoked".into()))
            } else {
                Ok(())
            }
        })
    }

    fn stopped<'a>(
        &'a self,
        _who: &'a Principal,
        _name: &'a str,
        _client: SocketAddr,
        end: StreamEnd,
    ) -> BoxFuture<'a, ()> {
        self.ends.lock().unwrap().push(end);
        Box::pin(async {})
    }
}

struct Running {
    addr: SocketAddr,
    auth: Arc<FakeAuth>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn start(sources: Vec<(&str, Source)>) -> Running {
    let server = RtspServer::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let addr = server.local_addr();
    for (path, s) in sources {
        server.sources().add(path, s);
    }
    let auth = Arc::new(FakeAuth::default());
    let cameras = Cameras {
        live: Arc::new(LiveHub::default()),
        authorizer: auth.clone(),
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(server.serve(Some(cameras), async move {
        let _ = stopped.await;
    }));
    Running {
        addr,
        auth,
        _stop: stop,
    }
}

fn creds(u: &str, p: &str) -> Credentials {
    Credentials {
        username: u.into(),
        password: p.into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retina_plays_a_demo_camera() {
    let cam = porchlight_demo::DemoCamera::start(porchlight_demo::Scene::FrontDoor).unwrap();
    let running = start(vec![(
        "demo/front-door",
        Source {
            frames: cam.frames(),
            credentials: Some(creds("demo", "s3cret")),
        },
    )])
    .await;
    let url = url::Url::parse(&format!("rtsp://{}/demo/front-door", running.addr)).unwrap();

    // Wrong password: refused.
    let bad = retina::client::SessionOptions::default().creds(Some(retina::client::Credentials {
        username: "demo".into(),
        password: "nope".into(),
    }));
    let err = retina::client::Session::describe(url.clone(), bad)
        .await
        .err()
        .expect("refused");
    assert!(err.to_string().contains("401"), "{err}");

    let opts = retina::client::SessionOptions::default().creds(Some(retina::client::Credentials {
        username: "demo".into(),
        password: "s3cret".into(),
    }));
    let mut session = retina::client::Session::describe(url, opts).await.unwrap();
    assert_eq!(session.streams().len(), 1);
    assert_eq!(session.streams()[0].encoding_name(), "h264");
    let Some(retina::codec::ParametersRef::Video(p)) = session.streams()[0].parameters() else {
        panic!("no video parameters from the SDP");
    };
    assert_eq!(p.pixel_dimensions(), (640, 360));
    assert!(
        p.rfc6381_codec().starts_with("avc1.42"),
        "{}",
        p.rfc6381_codec()
    );
    session
        .setup(
            0,
            retina::client::SetupOptions::default()
                .transport(retina::client::Transport::Tcp(Default::default())),
        )
        .await
        .unwrap();
    let mut demuxed = session
        .play(retina::client::PlayOptions::default())
        .await
        .unwrap()
        .demuxed()
        .unwrap();
    let mut frames = Vec::new();
    while frames.len() < 40 {
        let item = tokio::time::timeout(Duration::from_secs(10), demuxed.next())
            .await
            .expect("frames keep coming")
            .expect("stream open")
            .expect("no error");
        if let retina::codec::CodecItem::VideoFrame(f) = item {
            assert_eq!(f.loss(), 0);
            frames.push((
                f.timestamp().timestamp(),
                f.is_random_access_point(),
                f.data().len(),
            ));
        }
    }
    assert!(frames[0].1, "the first frame is a key frame");
    assert!(frames.iter().filter(|f| f.1).count() >= 1);
    for w in frames.windows(2) {
        assert_eq!(w[1].0 - w[0].0, 6000, "15 fps: {:?}", &frames[..4]);
    }
    drop(demuxed);
    drop(cam);
}

/// Sends raw requests on one connection and reads the answers.
struct Raw {
    s: TcpStream,
    cseq: u32,
}

impl Raw {
    fn connect(addr: SocketAddr) -> Raw {
        let s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        Raw { s, cseq: 0 }
    }

    /// Sends a request; returns the status and the response head.
    fn req(&mut self, method: &str, uri: &str, headers: &[(&str, &str)]) -> (u16, String) {
        self.cseq += 1;
        let mut r = format!("{method} {uri} RTSP/1.0\r\nCSeq: {}\r\n", self.cseq);
        for (n, v) in headers {
            r.push_str(&format!("{n}: {v}\r\n"));
        }
        r.push_str("\r\n");
        self.s.write_all(r.as_bytes()).unwrap();
        let head = self.read_head();
        assert!(head.contains(&format!("CSeq: {}\r\n", self.cseq)), "{head}");
        (status(&head), head)
    }

    fn read_head(&mut self) -> String {
        let mut head = Vec::new();
        let mut b = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            match self.s.read(&mut b) {
                Ok(1) => head.push(b[0]),
                other => panic!(
                    "connection ended ({other:?}) after {:?}",
                    String::from_utf8_lossy(&head)
                ),
            }
        }
        let head = String::from_utf8(head).unwrap();
        if let Some(len) = header(&head, "Content-Length") {
            let mut body = vec![0; len.parse().unwrap()];
            self.s.read_exact(&mut body).unwrap();
        }
        head
    }

    fn closed(&mut self) -> bool {
        let mut b = [0u8; 64];
        matches!(self.s.read(&mut b), Ok(0) | Err(_))
    }
}

fn status(head: &str) -> u16 {
    head.split(' ').nth(1).unwrap().parse().unwrap()
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines()
        .find_map(|l| {
            l.split_once(": ")
                .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        })
        .map(|(_, v)| v.trim())
}

fn basic(u: &str, p: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_errors_and_caches_passwords() {
    let (tx, _) = broadcast::channel(8);
    let running = start(vec![(
        "demo/x",
        Source {
            frames: tx,
            credentials: Some(creds("demo", "pw")),
        },
    )])
    .await;
    let addr = running.addr;
    let auth = running.auth.clone();
    tokio::task::spawn_blocking(move || {
        let base = format!("rtsp://{addr}");
        let mut c = Raw::connect(addr);
        let (st, head) = c.req("OPTIONS", "*", &[]);
        assert_eq!(st, 200);
        assert!(
            header(&head, "Public").unwrap().contains("GET_PARAMETER"),
            "{head}"
        );

        // No credentials: 401 with a Basic challenge, for cameras that exist
        // and for those that do not (no hint either way).
        for path in ["cam", "no-such-camera", "demo/x"] {
            let (st, head) = c.req("DESCRIBE", &format!("{base}/{path}"), &[]);
            assert_eq!(st, 401, "{path}");
            assert_eq!(
                header(&head, "WWW-Authenticate"),
                Some("Basic realm=\"Porchlight\"")
            );
        }
        assert_eq!(auth.authentications.load(Ordering::SeqCst), 0);

        // Good credentials: 404 for an unknown camera, and the password is
        // checked once for the connection.
        let alice = basic("alice", "alice-pw");
        let a = [("Authorization", alice.as_str())];
        assert_eq!(
            c.req("DESCRIBE", &format!("{base}/no-such-camera"), &a).0,
            404
        );
        assert_eq!(c.req("DESCRIBE", &format!("{base}/other"), &a).0, 404);
        assert_eq!(auth.authentications.load(Ordering::SeqCst), 1);

        // UDP is not offered; TCP is.
        let udp = [
            ("Authorization", alice.as_str()),
            ("Transport", "RTP/AVP;unicast;client_port=5000-5001"),
        ];
        assert_eq!(
            c.req("SETUP", &format!("{base}/cam/trackID=0"), &udp).0,
            461
        );
        // Session checks.
        assert_eq!(c.req("PLAY", &format!("{base}/cam"), &[]).0, 455);
        assert_eq!(
            c.req("PLAY", &format!("{base}/cam"), &[("Session", "nope")])
                .0,
            454
        );
        let tcp = [
            ("Authorization", alice.as_str()),
            ("Transport", "RTP/AVP/TCP;unicast;interleaved=0-1"),
        ];
        let (st, head) = c.req("SETUP", &format!("{base}/cam/trackID=0"), &tcp);
        assert_eq!(st, 200, "{head}");
        let transport = header(&head, "Transport").unwrap();
        assert!(
            transport.starts_with("RTP/AVP/TCP;unicast;interleaved=0-1;ssrc="),
            "{transport}"
        );
        let session = header(&head, "Session").unwrap().to_owned();
        assert!(session.ends_with(";timeout=60"), "{session}");
        let id = session.split(';').next().unwrap().to_owned();
        assert_eq!(
            c.req("GET_PARAMETER", &format!("{base}/cam"), &[("Session", &id)])
                .0,
            200
        );
        let (st, head) = c.req("PLAY", &format!("{base}/cam"), &[("Session", &id)]);
        assert_eq!(st, 200, "{head}");
        assert!(
            header(&head, "RTP-Info")
                .unwrap()
                .contains("/cam/trackID=0;seq="),
            "{head}"
        );
        assert_eq!(
            auth.plays.load(Ordering::SeqCst),
            1,
            "one audit entry per PLAY"
        );
        assert_eq!(
            c.req("TEARDOWN", &format!("{base}/cam"), &[("Session", &id)])
                .0,
            200
        );
        assert_eq!(auth.authentications.load(Ordering::SeqCst), 1);
        assert_eq!(c.req("RECORD", &format!("{base}/cam"), &[]).0, 501);

        // A member without a grant: 403.
        let mut n = Raw::connect(addr);
        let nina = basic("nina", "nina-pw");
        assert_eq!(
            n.req(
                "DESCRIBE",
                &format!("{base}/cam"),
                &[("Authorization", &nina)]
            )
            .0,
            403
        );

        // Wrong passwords: 401 each, and the connection closes after a few.
        let mut w = Raw::connect(addr);
        let wrong = basic("alice", "guess");
        assert_eq!(
            w.req(
                "DESCRIBE",
                &format!("{base}/cam"),
                &[("Authorization", &wrong)]
            )
            .0,
            401
        );
        assert_eq!(
            w.req(
                "DESCRIBE",
                &format!("{base}/cam"),
                &[("Authorization", &wrong)]
            )
            .0,
            401
        );
        assert_eq!(
            w.req(
                "DESCRIBE",
                &format!("{base}/cam"),
                &[("Authorization", &wrong)]
            )
            .0,
            401
        );
        assert!(w.closed(), "closed after three failures");
        // Static source credentials.
        let mut s = Raw::connect(addr);
        let bad = basic("demo", "wrong");
        assert_eq!(
            s.req(
                "SETUP",
                &format!("{base}/demo/x/trackID=0"),
                &[
                    ("Authorization", &bad),
                    ("Transport", "RTP/AVP/TCP;interleaved=0-1")
                ]
            )
            .0,
            401
        );
        let good = basic("demo", "pw");
        assert_eq!(
            s.req(
                "SETUP",
                &format!("{base}/demo/x/trackID=0"),
                &[
                    ("Authorization", &good),
                    ("Transport", "RTP/AVP/TCP;interleaved=0-1")
                ]
            )
            .0,
            200
        );

        // Garbage: 400 and closed. Wrong version: 505.
        let mut g = Raw::connect(addr);
        g.s.write_all(b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03hello\r\n\r\n")
            .unwrap();
        assert_eq!(status(&g.read_head()), 400);
        assert!(g.closed());
        let mut v = Raw::connect(addr);
        v.s.write_all(b"OPTIONS * RTSP/2.0\r\nCSeq: 1\r\n\r\n")
            .unwrap();
        assert_eq!(status(&v.read_head()), 505);
        // An oversized request: 413 and closed.
        let mut big = Raw::connect(addr);
        let mut r = b"OPTIONS * RTSP/1.0\r\nX: ".to_vec();
        r.extend(std::iter::repeat_n(b'a', 20_000));
        let _ = big.s.write_all(&r);
        assert_eq!(status(&big.read_head()), 413);
    })
    .await
    .unwrap();
}

/// A fake H.264 stream: key frames are one IDR slice (no parameter sets:
/// the server must add them), others one P slice; `size` bytes each.
fn fake_entry() -> Arc<VideoSampleEntry> {
    let sps = [0x67, 0x42, 0xc0, 0x1e, 0xda, 0x02, 0x80, 0xbf, 0xe5];
    let pps = [0x68, 0xce, 0x3c, 0x80];
    let mut c = vec![1, 0x42, 0xc0, 0x1e, 0xff, 0xe1, 0, sps.len() as u8];
    c.extend_from_slice(&sps);
    c.extend_from_slice(&[1, 0, pps.len() as u8]);
    c.extend_from_slice(&pps);
    Arc::new(VideoSampleEntry {
        codec: Codec::H264,
        width: 640,
        height: 360,
        config: c,
        rfc6381: "avc1.42c01e".into(),
    })
}

fn fake_frame(n: i64, key: bool, size: usize, entry: &Arc<VideoSampleEntry>) -> Arc<LiveFrame> {
    let mut data = (size as u32).to_be_bytes().to_vec();
    data.push(if key { 0x65 } else { 0x41 });
    data.extend(std::iter::repeat_n((n % 251) as u8, size - 1));
    Arc::new(LiveFrame {
        pts_90k: n * 3000,
        key,
        data: data.into(),
        entry: entry.clone(),
        arrival: jiff::Timestamp::now(),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_client_skips_to_key_frames_and_never_blocks_the_source() {
    let (tx, _) = broadcast::channel::<Arc<LiveFrame>>(8);
    let running = start(vec![(
        "slow",
        Source {
            frames: tx.clone(),
            credentials: None,
        },
    )])
    .await;
    let addr = running.addr;
    let entry = fake_entry();
    // Set up and PLAY, then stop reading.
    let mut c = tokio::task::spawn_blocking(move || {
        let mut c = Raw::connect(addr);
        let t = [("Transport", "RTP/AVP/TCP;unicast;interleaved=0-1")];
        let (st, head) = c.req("SETUP", &format!("rtsp://{addr}/slow/trackID=0"), &t);
        assert_eq!(st, 200);
        let id = header(&head, "Session")
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned();
        assert_eq!(
            c.req("PLAY", &format!("rtsp://{addr}/slow"), &[("Session", &id)])
                .0,
            200
        );
        c
    })
    .await
    .unwrap();
    // 600 frames of 40 kB (24 MB) as fast as possible: the producer never
    // waits, whatever the client does.
    let t0 = std::time::Instant::now();
    for n in 0..600 {
        let _ = tx.send(fake_frame(n, n % 10 == 0, 40_000, &entry));
        if n % 50 == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    assert!(
        t0.elapsed() < Duration::from_secs(3),
        "the source was held up"
    );
    // Now read everything that arrives while 100 more frames come at a
    // normal pace: whole frames, each run after a gap starting at a key
    // frame with SPS and PPS first.
    let reader = tokio::task::spawn_blocking(move || {
        c.s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let mut frames: Vec<(u32, Vec<u8>)> = Vec::new(); // (ts, first byte of each NAL)
        let mut cur: Option<(u32, Vec<u8>)> = None;
        let mut fu_start = false;
        loop {
            let mut h = [0u8; 4];
            if c.s.read_exact(&mut h).is_err() {
                break;
            }
            assert_eq!(h[0], b'$');
            let mut p = vec![0; u16::from_be_bytes([h[2], h[3]]) as usize];
            c.s.read_exact(&mut p).unwrap();
            if h[1] == 1 {
                assert_eq!(p[1], 200, "RTCP sender report");
                continue;
            }
            let ts = u32::from_be_bytes([p[4], p[5], p[6], p[7]]);
            let marker = p[1] & 0x80 != 0;
            let f = cur.get_or_insert_with(|| (ts, Vec::new()));
            assert_eq!(f.0, ts, "one timestamp per frame");
            let payload = &p[12..];
            if payload[0] & 0x1f == 28 {
                if payload[1] & 0x80 != 0 {
                    assert!(!fu_start);
                    fu_start = true;
                    f.1.push((payload[0] & 0xe0) | (payload[1] & 0x1f));
                }
                if payload[1] & 0x40 != 0 {
                    fu_start = false;
                }
            } else {
                f.1.push(payload[0]);
            }
            if marker {
                frames.push(cur.take().unwrap());
            }
        }
        frames
    });
    for n in 600..700 {
        let _ = tx.send(fake_frame(n, n % 10 == 0, 40_000, &entry));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let frames = reader.await.unwrap();
    assert!(frames.len() > 10, "got {} frames", frames.len());
    assert!(frames.len() < 700, "some were dropped: {}", frames.len());
    let offset = frames[0].0;
    let mut prev: Option<u32> = None;
    let mut gaps = 0;
    for (ts, nals) in &frames {
        let n = ts.wrapping_sub(offset);
        let continuous = prev.is_some_and(|p| n == p + 3000);
        if !continuous {
            gaps += 1;
            assert_eq!(
                nals,
                &[0x67, 0x68, 0x65],
                "after a gap: SPS, PPS, IDR (frame at {n})"
            );
        } else if nals[0] & 0x1f == 5 || nals.len() > 1 {
            assert_eq!(nals, &[0x67, 0x68, 0x65]);
        } else {
            assert_eq!(nals, &[0x41]);
        }
        prev = Some(n);
    }
    assert!(
        gaps >= 2,
        "the client lagged and skipped ahead ({gaps} gaps)"
    );
}

/// SETUP and PLAY camera `cam` as alice on a new connection; returns it and
/// the session id.
fn play_cam(addr: SocketAddr) -> (Raw, String) {
    let base = format!("rtsp://{addr}");
    let alice = basic("alice", "alice-pw");
    let mut c = Raw::connect(addr);
    let tcp = [
        ("Authorization", alice.as_str()),
        ("Transport", "RTP/AVP/TCP;unicast;interleaved=0-1"),
    ];
    let (st, head) = c.req("SETUP", &format!("{base}/cam/trackID=0"), &tcp);
    assert_eq!(st, 200, "{head}");
    let id = header(&head, "Session")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let (st, head) = c.req(
        "PLAY",
        &format!("{base}/cam"),
        &[("Session", &id), ("Authorization", &alice)],
    );
    assert_eq!(st, 200, "{head}");
    (c, id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_viewer_is_cut_off_and_every_stream_end_is_reported() {
    let running = start(vec![]).await;
    let addr = running.addr;
    let auth = running.auth.clone();
    tokio::task::spawn_blocking(move || {
        // TEARDOWN: reported as such.
        let (mut c, id) = play_cam(addr);
        let (st, _) = c.req(
            "TEARDOWN",
            &format!("rtsp://{addr}/cam"),
            &[("Session", &id)],
        );
        assert_eq!(st, 200);
        assert_eq!(*auth.ends.lock().unwrap(), [StreamEnd::Teardown]);

        // A client that just leaves: reported too.
        let (c, _) = play_cam(addr);
        drop(c);
        let t0 = std::time::Instant::now();
        while auth.ends.lock().unwrap().len() < 2 {
            assert!(t0.elapsed() < Duration::from_secs(5), "no end reported");
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(
            matches!(auth.ends.lock().unwrap()[1], StreamEnd::Left(_)),
            "{:?}",
            auth.ends.lock().unwrap()
        );

        // Still allowed: the connection outlives a re-check.
        let (mut c, _) = play_cam(addr);
        std::thread::sleep(porchlight_restream::server::RECHECK_EVERY + Duration::from_millis(500));
        c.s.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let mut b = [0u8; 64];
        match c.s.read(&mut b) {
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut => {}
            other => panic!("the connection should still be open: {other:?}"),
        }

        // Revoked: the server closes the connection within 5 s, and says
        // why it ended the stream.
        auth.revoked.lock().unwrap().push(11);
        c.s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let t0 = std::time::Instant::now();
        assert!(c.closed(), "the connection must close");
        assert!(t0.elapsed() < Duration::from_secs(5));
        let t0 = std::time::Instant::now();
        while auth.ends.lock().unwrap().len() < 3 {
            assert!(t0.elapsed() < Duration::from_secs(5), "no end reported");
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(
            auth.ends.lock().unwrap()[2],
            StreamEnd::Cut("the token was revoked".into())
        );

        // And a revoked credential cannot PLAY on a connection that had
        // proved it before the revoke (the cached check is not trusted).
        auth.revoked.lock().unwrap().clear();
        let base = format!("rtsp://{addr}");
        let alice = basic("alice", "alice-pw");
        let mut c = Raw::connect(addr);
        let tcp = [
            ("Authorization", alice.as_str()),
            ("Transport", "RTP/AVP/TCP;unicast;interleaved=0-1"),
        ];
        let (st, head) = c.req("SETUP", &format!("{base}/cam/trackID=0"), &tcp);
        assert_eq!(st, 200, "{head}");
        let id = header(&head, "Session")
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned();
        auth.revoked.lock().unwrap().push(11);
        let (st, _) = c.req("PLAY", &format!("{base}/cam"), &[("Session", &id)]);
        assert_eq!(st, 401);
        assert_eq!(
            auth.plays.load(Ordering::SeqCst),
            3,
            "the refused PLAY is not one"
        );
    })
    .await
    .unwrap();
}
