//! The object detector is loaded only when a camera that wants objects
//! starts being watched: a hub that records, or detects motion only, never
//! carries the model in memory.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use porchlight_base::clock;
use porchlight_events::{DetectorSource, Events, EventsOptions};
use porchlight_recorder::LiveHub;
use porchlight_store::{NewCamera, Store};

static LOADS: AtomicUsize = AtomicUsize::new(0);

fn counting_load() -> Result<porchlight_detect::Detector, porchlight_detect::DetectError> {
    LOADS.fetch_add(1, Ordering::SeqCst);
    porchlight_detect::Detector::load_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loads_on_the_first_camera_with_objects_and_only_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).await.unwrap();
    let clock = clock::system();
    let motion_only = serde_json::json!({ "objects": false });
    let mut ids = Vec::new();
    for name in ["porch", "yard"] {
        let c = store
            .create_camera(
                &NewCamera {
                    name: name.into(),
                    main_url: format!("rtsp://127.0.0.1:9/{name}"),
                    ..Default::default()
                },
                clock.now(),
            )
            .await
            .unwrap();
        store
            .set_camera_detection(c.id, &motion_only, clock.now())
            .await
            .unwrap();
        ids.push(c.id);
    }
    let mut opts = EventsOptions::new(dir.path().to_path_buf());
    opts.poll = Duration::from_millis(100);
    let events = Events::start(
        store.clone(),
        clock.clone(),
        Arc::new(LiveHub::default()),
        DetectorSource::Lazy(counting_load),
        None,
        opts,
    )
    .await;

    // Both cameras are watched (motion only) for many polls: no load.
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        LOADS.load(Ordering::SeqCst),
        0,
        "motion-only cameras loaded the model"
    );
    assert!(!events.detector_loaded());

    // Turning objects on for both cameras loads the model once.
    for id in &ids {
        store
            .set_camera_detection(*id, &serde_json::json!({ "objects": true }), clock.now())
            .await
            .unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    while !events.detector_loaded() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        events.detector_loaded(),
        "the model never loaded for a camera with objects on"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        LOADS.load(Ordering::SeqCst),
        1,
        "the model was loaded more than once"
    );
    events.shutdown().await;
}
