//! Off-site backup on the settings page (issue 17): an owner adds a folder
//! destination with the form (the household's key bundle is written there
//! at once), sees it listed, is told plainly when an address cannot be
//! used, and stops it; members cannot; each change is audited.

#[allow(dead_code)]
mod support;

use axum::http::{header, StatusCode};
use porchlight_store::Role;
use support::Hub;

#[tokio::test]
async fn an_owner_adds_lists_and_stops_a_backup_destination_from_settings() {
    let h = Hub::builder().browser_sessions().build().await;
    let ola = h.browser("ola", Role::Owner).await;
    let nas = tempfile::tempdir().unwrap();
    let url = format!("file://{}", nas.path().display());

    let page = h.call(&ola, "GET", "/settings", None, false).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains(r#"id="backup""#), "{}", page.body);
    assert!(page.body.contains("No destination yet."));

    // Without the CSRF field: refused.
    let r = h
        .form(&ola, "/settings/backup", &[("url", url.as_str())])
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    let r = h
        .form(
            &ola,
            "/settings/backup",
            &[
                ("csrf", &ola.csrf),
                ("url", &url),
                ("name", "nas"),
                ("mode", "events"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(r.headers[header::LOCATION], "/settings#backup");
    let dests = h.store.backup_destinations().await.unwrap();
    assert_eq!(dests.len(), 1);
    assert_eq!(
        (dests[0].name.as_str(), dests[0].url.as_str()),
        ("nas", url.as_str())
    );
    assert!(!dests[0].may_delete, "the default never deletes");
    // The key bundle is there, and holds no name.
    let bundles: Vec<_> = std::fs::read_dir(nas.path().join("k")).unwrap().collect();
    assert_eq!(bundles.len(), 1);
    let b = std::fs::read(bundles[0].as_ref().unwrap().path()).unwrap();
    assert!(!String::from_utf8_lossy(&b).contains("ola"));
    let page = h.call(&ola, "GET", "/settings", None, false).await;
    assert!(page.body.contains(r#"data-name="nas""#), "{}", page.body);
    assert!(page.body.contains("never deletes"));

    // An address that cannot be used: said, nothing saved.
    let r = h
        .form(
            &ola,
            "/settings/backup",
            &[("csrf", &ola.csrf), ("url", "file:///no/such/disk")],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let to = r.headers[header::LOCATION].to_str().unwrap().to_owned();
    assert!(to.starts_with("/settings?backup_error="), "{to}");
    let page = h.call(&ola, "GET", &to, None, false).await;
    assert!(
        page.body.contains("does not exist (is the disk mounted?)"),
        "{}",
        page.body
    );
    let r = h
        .form(
            &ola,
            "/settings/backup",
            &[
                ("csrf", &ola.csrf),
                ("url", "s3://bucket"),
                ("endpoint", "ftp://x"),
            ],
        )
        .await;
    let to = r.headers[header::LOCATION].to_str().unwrap().to_owned();
    let page = h.call(&ola, "GET", &to, None, false).await;
    assert!(page.body.contains("no S3 credentials"), "{}", page.body);
    assert_eq!(h.store.backup_destinations().await.unwrap().len(), 1);

    // A member may not.
    let mia = h.browser("mia", Role::Member).await;
    let r = h
        .form(
            &mia,
            "/settings/backup",
            &[("csrf", &mia.csrf), ("url", &url)],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = h
        .form(&mia, "/settings/backup/nas/remove", &[("csrf", &mia.csrf)])
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    // Stop it: gone from the hub, the copies stay.
    let r = h
        .form(&ola, "/settings/backup/nas/remove", &[("csrf", &ola.csrf)])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(h.store.backup_destinations().await.unwrap().is_empty());
    assert!(nas.path().join("k").exists());
    let mut actions: Vec<String> = h
        .audit_log()
        .await
        .into_iter()
        .map(|e| e.action)
        .filter(|a| a.starts_with("backup."))
        .collect();
    actions.sort();
    assert_eq!(actions, ["backup.add", "backup.remove"]);
}
