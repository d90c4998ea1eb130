//! One yamux connection driven by one task, for both ends of the tunnel.
//!
//! yamux's `Connection` must be polled from a single place, and it only
//! makes progress (reads frames, flushes writes) while it is polled. So a
//! driver task owns it: it hands every inbound stream to a callback and
//! opens outbound streams on request through an [`Opener`]. The driver
//! ends when the connection closes or fails, or when every `Opener` is
//! dropped; pending and later `open` calls then fail.

use std::future::poll_fn;
use std::task::Poll;

use futures::{AsyncRead as FAsyncRead, AsyncWrite as FAsyncWrite};
use tokio::sync::{mpsc, oneshot};

type OpenReply = oneshot::Sender<Result<yamux::Stream, yamux::ConnectionError>>;

/// Opens outbound streams on a driven connection. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Opener(mpsc::Sender<OpenReply>);

impl Opener {
    /// A new outbound stream, or why not.
    pub async fn open(&self) -> Result<yamux::Stream, String> {
        let (tx, rx) = oneshot::channel();
        self.0
            .send(tx)
            .await
            .map_err(|_| "the tunnel is closed".to_owned())?;
        match rx.await {
            Ok(Ok(s)) => Ok(s),
            Ok(Err(e)) => Err(format!("cannot open a stream in the tunnel: {e}")),
            Err(_) => Err("the tunnel is closed".to_owned()),
        }
    }

    /// Whether the driver has stopped.
    pub fn is_closed(&self) -> bool {
        self.0.is_closed()
    }
}

/// yamux settings for the tunnel: bounded streams per connection.
pub fn config(max_streams: usize) -> yamux::Config {
    let mut c = yamux::Config::default();
    c.set_max_num_streams(max_streams);
    c
}

/// Runs `conn` until it ends; returns the reason it ended.
pub async fn drive<T>(
    mut conn: yamux::Connection<T>,
    mut open_rx: mpsc::Receiver<OpenReply>,
    mut on_inbound: impl FnMut(yamux::Stream),
) -> String
where
    T: FAsyncRead + FAsyncWrite + Unpin,
{
    enum Ev {
        Inbound(Option<Result<yamux::Stream, yamux::ConnectionError>>),
        Request(Option<OpenReply>),
        Opened(Result<yamux::Stream, yamux::ConnectionError>),
    }
    let mut waiting: Option<OpenReply> = None;
    loop {
        let ev = poll_fn(|cx| {
            if waiting.is_some() {
                if let Poll::Ready(r) = conn.poll_new_outbound(cx) {
                    return Poll::Ready(Ev::Opened(r));
                }
            } else if let Poll::Ready(r) = open_rx.poll_recv(cx) {
                return Poll::Ready(Ev::Request(r));
            }
            if let Poll::Ready(s) = conn.poll_next_inbound(cx) {
                return Poll::Ready(Ev::Inbound(s));
            }
            Poll::Pending
        })
        .await;
        match ev {
            Ev::Inbound(Some(Ok(s))) => on_inbound(s),
            Ev::Inbound(Some(Err(e))) => return format!("the tunnel failed: {e}"),
            Ev::Inbound(None) => return "the tunnel was closed by the other end".into(),
            Ev::Request(Some(reply)) => waiting = Some(reply),
            Ev::Request(None) => {
                let _ = poll_fn(|cx| conn.poll_close(cx)).await;
                return "the tunnel was closed by this end".into();
            }
            Ev::Opened(r) => {
                if let Some(reply) = waiting.take() {
                    let _ = reply.send(r);
                }
            }
        }
    }
}

/// A channel pair for [`drive`] and its [`Opener`].
pub fn opener() -> (Opener, mpsc::Receiver<OpenReply>) {
    let (tx, rx) = mpsc::channel(16);
    (Opener(tx), rx)
}
