//! A still picture of a camera for its tile on the home page: the next key
//! frame of the live stream, either decoded to a JPEG (`still.jpg`, with
//! OpenH264 through `porchlight_detect::decode`) or as a one-frame MP4
//! (`still.mp4`), which a `<video>` shows as a picture without playing
//! anything — the fallback for codecs the hub cannot decode (H.265).
//!
//! Nothing is stored: the frame goes from memory to the requester. A still
//! is a look at a camera, so it is checked like the live view and audited
//! (`live.still`, with the format).

use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use porchlight_media::mp4::{FramePos, Mp4Plan, SampleSource};
use porchlight_media::FrameInfo;
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;

use crate::access::visible_camera;
use crate::error::{ApiError, WebError};
use crate::session::ApiUser;
use crate::App;

pub(crate) fn routes() -> Router<App> {
    Router::new()
        .route("/api/v1/cameras/{name}/still.mp4", get(still))
        .route("/api/v1/cameras/{name}/still.jpg", get(still_jpeg))
}

/// Widest JPEG still (a tile is never wider; the full picture is the live
/// view's job).
const JPEG_MAX_WIDTH: u32 = 960;
const JPEG_QUALITY: u8 = 80;

/// How long to wait for the next key frame (cameras send one every 1–4 s).
const WAIT: Duration = Duration::from_secs(6);

struct OneFrame(Vec<u8>);

impl SampleSource for OneFrame {
    fn read(&mut self, _source: u64, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        let start = offset as usize;
        let part = self
            .0
            .get(start..start + buf.len())
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::UnexpectedEof))?;
        buf.copy_from_slice(part);
        Ok(())
    }
}

/// The camera, if visible and live here, and its next key frame.
async fn next_key_frame(
    app: &App,
    u: &ApiUser,
    name: &str,
) -> Result<
    (
        porchlight_store::Camera,
        std::sync::Arc<porchlight_recorder::LiveFrame>,
    ),
    WebError,
> {
    let cam = visible_camera(app, &u.session, &u.visitor, name, "still").await?;
    if app.vault.store().camera_privacy(cam.id).await? {
        return Err(WebError::NotFoundBecause(crate::alarm::privacy_message(
            &cam.name,
        )));
    }
    let Some(hub) = app.live.clone() else {
        return Err(WebError::NotFoundBecause(
            "no picture: this process does not record".into(),
        ));
    };
    if !cam.enabled {
        return Err(WebError::NotFoundBecause(format!(
            "`{}` is paused: no picture while it is",
            cam.name
        )));
    }
    let mut rx = hub.subscribe(cam.id);
    let frame = tokio::time::timeout(WAIT, async {
        loop {
            match rx.recv().await {
                Ok(f) if f.key => return Some(f),
                Ok(_) | Err(RecvError::Lagged(_)) => continue,
                Err(RecvError::Closed) => return None,
            }
        }
    })
    .await
    .ok()
    .flatten()
    .ok_or_else(|| WebError::NotFoundBecause(format!("`{}` sent no picture just now", cam.name)))?;
    Ok((cam, frame))
}

/// `still.jpg`: the next key frame decoded and encoded as a JPEG.
async fn still_jpeg(
    State(app): State<App>,
    u: ApiUser,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let (cam, frame) = next_key_frame(&app, &u, &name).await?;
    let taken = frame.arrival;
    let jpeg = tokio::task::spawn_blocking(move || {
        let mut dec = porchlight_detect::decode::VideoDecoder::new();
        let pic = dec.decode(&frame.data, &frame.entry)?.ok_or_else(|| {
            porchlight_detect::decode::DecodeError::Corrupt("the key frame gave no picture".into())
        })?;
        pic.to_jpeg(JPEG_QUALITY, JPEG_MAX_WIDTH)
    })
    .await
    .map_err(|e| WebError::Internal(format!("still picture: {e}")))?
    .map_err(|e| {
        WebError::NotFoundBecause(format!(
            "no JPEG picture of `{}`: {e} (the MP4 still may work)",
            cam.name
        ))
    })?;
    app.vault
        .audit(
            &u.visitor.actor(),
            "live.still",
            &cam.name,
            json!({ "format": "jpeg" }),
        )
        .await?;
    Response::builder()
        .header(header::CONTENT_TYPE, "image/jpeg")
        .header(header::CACHE_CONTROL, "private, no-store")
        .header("x-porchlight-taken", taken.to_string())
        .body(Body::from(jpeg))
        .map_err(|e| WebError::Internal(e.to_string()).into())
}

async fn still(
    State(app): State<App>,
    u: ApiUser,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let (cam, frame) = next_key_frame(&app, &u, &name).await?;
    let info = FrameInfo {
        duration_90k: 6000,
        bytes: frame.data.len() as u32,
        key: true,
    };
    let plan = Mp4Plan::new(
        &frame.entry,
        vec![FramePos {
            info,
            source: 0,
            offset: 0,
        }],
        frame.arrival,
    )
    .map_err(|e| WebError::Internal(format!("still picture: {e}")))?;
    let mut out = vec![0u8; plan.len() as usize];
    let n = plan
        .read_at(0, &mut out, &mut OneFrame(frame.data.to_vec()))
        .map_err(|e| WebError::Internal(format!("still picture: {e}")))?;
    out.truncate(n);
    app.vault
        .audit(&u.visitor.actor(), "live.still", &cam.name, json!({}))
        .await?;
    Response::builder()
        .header(header::CONTENT_TYPE, plan.content_type())
        .header(header::CACHE_CONTROL, "private, no-store")
        .header("x-porchlight-taken", frame.arrival.to_string())
        .body(Body::from(out))
        .map_err(|e| WebError::Internal(e.to_string()).into())
}
