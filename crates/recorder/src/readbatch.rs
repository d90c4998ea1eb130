//! Fewer wake-ups per camera: a receive low-water mark (`SO_RCVLOWAT`) on
//! every camera connection, sized from that connection's own byte rate.
//!
//! A camera sends each frame as a burst of RTP packets, so without a
//! low-water mark the hub wakes up (epoll, a task switch, a `readv` and
//! another that finds the socket empty) once per frame: 25 times a second
//! per 25 fps stream, the largest single cost of recording (bench/RESULTS.md,
//! "Where Porchlight's CPU goes"). With `SO_RCVLOWAT` set to what the
//! stream carries in [`RecorderOptions::read_batch`](crate::RecorderOptions)
//! (200 ms by default; `PORCHLIGHT_RECORDER_READ_BATCH_MS=0` turns it
//! off), the kernel wakes the hub only when that much is
//! queued (or the peer closes): about five times a second whatever the
//! frame rate. The price would be up to that much extra latency for live
//! consumers (live view, restream, detection), so a connection is batched
//! only while **nobody watches it live**: each registration carries a
//! "watched" check (the live channel's receiver count), and a camera
//! address with any watched connection gets no mark, so detection's
//! motion-to-MQTT path and live view keep their latency. A recording-only
//! camera (detection off, nobody watching) is where the saving is; the
//! recorder itself does not care about latency (it writes in records of
//! up to 256 KiB, and places segments on the wall clock so that delivery
//! delays do not show; see `wallclock`). A viewer
//! who starts watching a batched stream sees at most one `read_batch` of
//! extra delay until the next pass (≤ [`TUNE_INTERVAL`]) clears the mark.
//!
//! retina opens the camera's socket itself and does not expose it, so this
//! module finds the sockets: every [`TUNE_INTERVAL`] it lists the process's
//! descriptors, and for each TCP socket whose **peer** is a camera address
//! that an ingest task registered ([`ReadBatcher::register`], for the life
//! of the connection) it reads the bytes received so far (`TCP_INFO`),
//! derives the socket's rate since the previous pass and sets the mark to
//! `rate × read_batch`, between 1 byte and [`MAX_LOWAT`]. Each socket is
//! sized from its own rate, so a camera's main and sub-stream (same address)
//! each get theirs without telling them apart. Every check and change is
//! made on a duplicate of the descriptor (`F_DUPFD_CLOEXEC`), so a
//! descriptor number closed and reused between the listing and the change
//! cannot send the mark to the wrong socket: the duplicate is the socket
//! that was checked.
//!
//! Safety of the stream: at the measured *average* rate a mark holds data
//! back for `read_batch`; a stream whose bytes come in bursts (a large key
//! frame, then small ones) or that slows down abruptly can be held longer,
//! until enough arrives or the next pass (at most [`TUNE_INTERVAL`] later)
//! lowers the mark — lowering it wakes the reader at once if enough is
//! queued (Linux's `tcp_set_rcvlowat` signals readiness). A closed
//! connection always wakes the reader. The stall detector's 10 s is far
//! above both. Such delays never show in the recordings: a run's segments
//! are placed on the camera's own timeline (`wallclock`), not on when
//! their first frame happened to be read; a kill -9 loses what sat in the
//! socket with the rest of the unwritten record. A new
//! connection starts with no mark (one wake-up per frame) until its first
//! measured pass.
//!
//! Linux only (elsewhere [`ReadBatcher::run`] returns at once and nothing
//! changes).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How often the sockets are re-measured and their marks adjusted.
pub const TUNE_INTERVAL: Duration = Duration::from_secs(2);
/// The largest mark set (the shared tools README measured 128 KiB as the
/// point where wake-ups stop mattering; the kernel caps it at half the
/// receive buffer anyway).
pub const MAX_LOWAT: u32 = 128 * 1024;
/// Marks within this fraction of the current one are left alone (no
/// `setsockopt` for noise in the rate).
const HYSTERESIS: f64 = 0.25;

/// Says whether a connection has live consumers right now.
pub type Watched = Arc<dyn Fn() -> bool + Send + Sync>;

/// The registry of camera addresses and the state of the sockets found.
#[derive(Default)]
pub struct ReadBatcher {
    /// Camera peer addresses with the registrations (id, watched check) of
    /// the live connections to each.
    peers: Mutex<HashMap<SocketAddr, Vec<(u64, Watched)>>>,
    next_id: std::sync::atomic::AtomicU64,
}

/// Keeps a camera address registered; unregisters on drop.
pub struct Registration {
    batcher: Arc<ReadBatcher>,
    peers: Vec<SocketAddr>,
    id: u64,
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut p = self.batcher.peers.lock().unwrap();
        for a in &self.peers {
            if let Some(regs) = p.get_mut(a) {
                regs.retain(|(id, _)| *id != self.id);
                if regs.is_empty() {
                    p.remove(a);
                }
            }
        }
    }
}

/// What one pass did (for tests and logs).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PassReport {
    /// Camera sockets found.
    pub sockets: usize,
    /// Marks changed in this pass.
    pub changed: usize,
}

/// Per-socket measurements kept between passes (by socket inode).
#[derive(Debug)]
struct Seen {
    bytes: u64,
    at: Instant,
    lowat: u32,
    /// Pass number when last seen (sockets gone are forgotten).
    pass: u64,
}

/// The tuning loop's state.
pub struct Tuner {
    batcher: Arc<ReadBatcher>,
    window: Duration,
    seen: HashMap<u64, Seen>,
    pass: u64,
}

impl ReadBatcher {
    /// Registers the addresses a camera connection goes to (all that its
    /// host resolves to) for as long as the returned guard lives.
    /// `watched` tells whether the connection has live consumers; while it
    /// (or any other connection to the same address) has, no mark is set.
    pub fn register(self: &Arc<Self>, peers: Vec<SocketAddr>, watched: Watched) -> Registration {
        let id = self
            .next_id
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut p = self.peers.lock().unwrap();
        for a in &peers {
            p.entry(*a).or_default().push((id, watched.clone()));
        }
        Registration {
            batcher: self.clone(),
            peers,
            id,
        }
    }

    /// `None` if `a` is not a camera address; else whether any connection
    /// to it is watched live.
    fn camera(&self, a: &SocketAddr) -> Option<bool> {
        let p = self.peers.lock().unwrap();
        p.get(a).map(|regs| regs.iter().any(|(_, w)| w()))
    }

    /// A tuner that sizes marks to `window` of each socket's rate.
    pub fn tuner(self: &Arc<Self>, window: Duration) -> Tuner {
        Tuner {
            batcher: self.clone(),
            window,
            seen: HashMap::new(),
            pass: 0,
        }
    }

    /// Runs passes every [`TUNE_INTERVAL`] until `stop` turns true.
    /// A zero `window` (batching off) returns at once.
    pub async fn run(
        self: Arc<Self>,
        window: Duration,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) {
        if window.is_zero() || !cfg!(target_os = "linux") {
            return;
        }
        let mut tuner = self.tuner(window);
        let mut tick = tokio::time::interval(TUNE_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.changed() => return,
            }
            if *stop.borrow() {
                return;
            }
            // A few dozen cheap system calls; not worth a blocking thread.
            let r = tuner.pass();
            tracing::trace!(
                sockets = r.sockets,
                changed = r.changed,
                "read batching pass"
            );
        }
    }
}

/// The mark for a socket receiving `rate` bytes a second.
pub fn lowat_for(rate_bytes_per_s: f64, window: Duration) -> u32 {
    let v = rate_bytes_per_s * window.as_secs_f64();
    if !v.is_finite() || v < 1.0 {
        1
    } else {
        (v as u64).min(u64::from(MAX_LOWAT)) as u32
    }
}

impl Tuner {
    /// One pass over the process's descriptors (see the module docs).
    pub fn pass(&mut self) -> PassReport {
        self.pass += 1;
        let mut report = PassReport::default();
        #[cfg(target_os = "linux")]
        {
            let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
                return report;
            };
            let now = Instant::now();
            for ent in dir.flatten() {
                let Some(fd) = ent.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
                    continue;
                };
                // "socket:[INODE]": one readlink, and non-sockets are out.
                let Ok(link) = std::fs::read_link(ent.path()) else {
                    continue;
                };
                let Some(inode) = link
                    .to_str()
                    .and_then(|s| s.strip_prefix("socket:["))
                    .and_then(|s| s.strip_suffix(']'))
                    .and_then(|s| s.parse::<u64>().ok())
                else {
                    continue;
                };
                let Some(sock) = sys::dup(fd) else { continue };
                // The duplicate may be another socket if `fd` was closed
                // and reused since the listing: check it, not the listing.
                let Some(peer) = sys::peer(&sock) else {
                    continue;
                };
                let Some(watched) = self.batcher.camera(&peer) else {
                    continue;
                };
                let Some(bytes) = sys::bytes_received(&sock) else {
                    continue;
                };
                report.sockets += 1;
                let inode = sys::inode(&sock).unwrap_or(inode);
                let pass = self.pass;
                let window = self.window;
                let seen = self.seen.entry(inode).or_insert(Seen {
                    bytes,
                    at: now,
                    lowat: 1,
                    pass,
                });
                seen.pass = pass;
                let secs = now.duration_since(seen.at).as_secs_f64();
                if secs < 0.5 {
                    continue; // new: measured from the next pass on
                }
                let rate = bytes.saturating_sub(seen.bytes) as f64 / secs;
                seen.bytes = bytes;
                seen.at = now;
                // Watched live: latency matters more than wake-ups.
                let want = if watched { 1 } else { lowat_for(rate, window) };
                let cur = f64::from(seen.lowat);
                if (f64::from(want) - cur).abs() <= cur * HYSTERESIS && want != 1 {
                    continue;
                }
                if want == seen.lowat {
                    continue;
                }
                if sys::set_lowat(&sock, want) {
                    seen.lowat = want;
                    report.changed += 1;
                }
            }
            let pass = self.pass;
            self.seen.retain(|_, s| s.pass == pass);
        }
        report
    }
}

#[cfg(target_os = "linux")]
mod sys {
    use std::net::SocketAddr;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

    /// A close-on-exec duplicate of `fd` (closed when dropped).
    pub fn dup(fd: i32) -> Option<OwnedFd> {
        // SAFETY: F_DUPFD_CLOEXEC on any integer is sound; a failure
        // (EBADF for a descriptor closed since the listing) returns -1.
        let d = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
        // SAFETY: `d` is a new descriptor that nothing else owns.
        (d >= 0).then(|| unsafe { OwnedFd::from_raw_fd(d) })
    }

    pub fn peer(fd: &OwnedFd) -> Option<SocketAddr> {
        let a = rustix::net::getpeername(fd).ok()??;
        SocketAddr::try_from(a).ok()
    }

    pub fn inode(fd: &OwnedFd) -> Option<u64> {
        rustix::fs::fstat(fd).ok().map(|s| s.st_ino)
    }

    /// `TCP_INFO`'s `tcpi_bytes_received` (Linux 4.1+); `None` for a
    /// socket that is not TCP.
    pub fn bytes_received(fd: &OwnedFd) -> Option<u64> {
        // SAFETY: tcp_info is plain data; the kernel writes at most `len`
        // bytes and reports how many.
        let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
        let r = unsafe {
            libc::getsockopt(
                fd.as_raw_fd(),
                libc::IPPROTO_TCP,
                libc::TCP_INFO,
                (&mut info as *mut libc::tcp_info).cast(),
                &mut len,
            )
        };
        let need = std::mem::offset_of!(libc::tcp_info, tcpi_bytes_received) + 8;
        (r == 0 && len as usize >= need).then_some(info.tcpi_bytes_received)
    }

    pub fn set_lowat(fd: &OwnedFd, v: u32) -> bool {
        let v = v as libc::c_int;
        // SAFETY: an int option, passed by pointer with its size.
        let r = unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVLOWAT,
                (&v as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        r == 0
    }

    #[cfg(test)]
    pub fn lowat(fd: &impl AsRawFd) -> i32 {
        let mut v: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: as above.
        unsafe {
            libc::getsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVLOWAT,
                (&mut v as *mut libc::c_int).cast(),
                &mut len,
            )
        };
        v
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use std::io::Write;
    use std::net::{TcpListener, TcpStream};

    #[test]
    fn marks_follow_each_sockets_rate_and_only_camera_sockets() {
        let cam = TcpListener::bind("127.0.0.1:0").unwrap();
        let other = TcpListener::bind("127.0.0.1:0").unwrap();
        let fast = TcpStream::connect(cam.local_addr().unwrap()).unwrap();
        let (mut fast_srv, _) = cam.accept().unwrap();
        let slow = TcpStream::connect(cam.local_addr().unwrap()).unwrap();
        let (mut slow_srv, _) = cam.accept().unwrap();
        let unrelated = TcpStream::connect(other.local_addr().unwrap()).unwrap();
        let (mut unrelated_srv, _) = other.accept().unwrap();

        let batcher = Arc::new(ReadBatcher::default());
        let live = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let watched: Watched = {
            let live = live.clone();
            Arc::new(move || live.load(std::sync::atomic::Ordering::Relaxed))
        };
        let reg = batcher.register(vec![cam.local_addr().unwrap()], watched);
        let window = Duration::from_millis(200);
        let mut tuner = batcher.tuner(window);
        let first = tuner.pass();
        assert_eq!(first.sockets, 2, "both connections to the camera address");
        assert_eq!(first.changed, 0, "nothing is set before a rate is measured");
        assert_eq!(sys::lowat(&fast), 1);

        // 60 kB and 6 kB over about 0.6 s (the sockets are never read, so
        // the kernel just queues it; small enough for the receive buffers).
        let t0 = Instant::now();
        fast_srv.write_all(&vec![7u8; 60_000]).unwrap();
        slow_srv.write_all(&vec![7u8; 6_000]).unwrap();
        unrelated_srv.write_all(&vec![7u8; 60_000]).unwrap();
        std::thread::sleep(Duration::from_millis(600));
        let r = tuner.pass();
        let secs = t0.elapsed().as_secs_f64();
        assert_eq!(r.sockets, 2);
        let (f, s) = (sys::lowat(&fast), sys::lowat(&slow));
        println!("after {secs:.2} s: fast mark {f}, slow mark {s}");
        assert!(f > 1 && s > 1, "both got a mark: {f}, {s}");
        assert!(
            f > 4 * s,
            "each socket is sized from its own rate: {f} vs {s}"
        );
        assert!(f as u32 <= MAX_LOWAT);
        assert_eq!(
            sys::lowat(&unrelated),
            1,
            "a socket to another address is left alone"
        );

        // Someone starts watching live: the marks go, whatever the rate.
        live.store(true, std::sync::atomic::Ordering::Relaxed);
        fast_srv.write_all(&vec![7u8; 30_000]).unwrap();
        std::thread::sleep(Duration::from_millis(600));
        tuner.pass();
        assert_eq!(sys::lowat(&fast), 1, "watched live: no mark");
        assert_eq!(sys::lowat(&slow), 1, "watched live: no mark");

        // Unwatched again: the fast one is batched again.
        live.store(false, std::sync::atomic::Ordering::Relaxed);
        fast_srv.write_all(&vec![7u8; 30_000]).unwrap();
        std::thread::sleep(Duration::from_millis(600));
        tuner.pass();
        assert!(sys::lowat(&fast) > 1, "unwatched: batched again");

        // An idle camera socket goes back to waking on every byte.
        std::thread::sleep(Duration::from_millis(600));
        tuner.pass();
        assert_eq!(sys::lowat(&slow), 1, "no traffic: no mark");

        // Unregistered: no socket is touched any more.
        drop(reg);
        assert_eq!(tuner.pass().sockets, 0);
    }

    #[test]
    fn mark_arithmetic() {
        let w = Duration::from_millis(200);
        assert_eq!(lowat_for(0.0, w), 1);
        assert_eq!(lowat_for(500_000.0, w), 100_000); // 4 Mbit/s → 100 kB
        assert_eq!(lowat_for(64_000.0, w), 12_800); // 512 kbit/s
        assert_eq!(lowat_for(100e6, w), MAX_LOWAT);
        assert_eq!(lowat_for(f64::NAN, w), 1);
    }
}
