//! Where copies go: a folder or an S3-compatible bucket, behind one small
//! interface over `object_store`.
//!
//! * `file:///absolute/path` — a mounted NAS share or USB disk. The folder
//!   must exist: a disk that is not mounted is an error, never a silent
//!   write to the empty mount point on the hub's own disk.
//! * `s3://bucket[/prefix]` — any S3-compatible service. Endpoint, region
//!   and credentials come from [`DestOptions`], else from the usual
//!   environment variables (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
//!   `AWS_ENDPOINT_URL` or `AWS_ENDPOINT`, `AWS_REGION`). Requests are
//!   path-style (`endpoint/bucket/key`), which every self-hosted server
//!   (Garage, MinIO, Ceph) accepts.
//!
//! The client retries a failed request twice, briefly; the uploader owns
//! the longer backoff (a destination down for minutes must not hold one
//! request open for minutes).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::TryStreamExt;
use object_store::path::Path as ObjPath;
use object_store::{ObjectStore, PutPayload, WriteMultipart};

use crate::{BackupError, Result};

/// Objects larger than this go up in parts (S3 multipart upload).
pub const MULTIPART_OVER: usize = 16 << 20;
/// Size of each part of a multipart upload.
pub const PART_SIZE: usize = 8 << 20;

/// Settings of an S3 destination (ignored for `file://`). Stored with the
/// destination on the hub, as JSON.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DestOptions {
    /// `http://host:port` or `https://host`; default: AWS's for the region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_key_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_access_key: Option<String>,
}

impl DestOptions {
    /// Parses the JSON a destination row holds.
    pub fn from_json(s: &str) -> Result<DestOptions> {
        serde_json::from_str(s)
            .map_err(|e| BackupError::Config(format!("stored destination options: {e}")))
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".into())
    }
}

/// An opened destination.
#[derive(Clone)]
pub struct Destination {
    store: Arc<dyn ObjectStore>,
    /// Prefix of every object name (the S3 URL's path), may be empty.
    root: String,
    /// The URL, for messages (credentials are never in it).
    url: String,
}

impl std::fmt::Debug for Destination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Destination")
            .field("url", &self.url)
            .finish()
    }
}

/// One object found by [`Destination::list`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// Its name relative to the destination's root.
    pub name: String,
    pub size: u64,
    /// When it was stored (as the destination says).
    pub modified: jiff::Timestamp,
}

fn env(names: &[&str]) -> Option<String> {
    names
        .iter()
        .find_map(|n| std::env::var(n).ok().filter(|v| !v.is_empty()))
}

impl Destination {
    /// Opens `url` with `opts`; nothing is contacted yet.
    pub fn open(url: &str, opts: &DestOptions) -> Result<Destination> {
        if let Some(path) = url.strip_prefix("file://") {
            let dir = std::path::Path::new(path);
            if !dir.is_absolute() {
                return Err(BackupError::Config(format!(
                    "`{url}`: a file:// destination needs an absolute path (file:///mnt/nas/porchlight)"
                )));
            }
            if !dir.is_dir() {
                return Err(BackupError::Config(format!(
                    "`{url}`: the folder {} does not exist (is the disk mounted?)",
                    dir.display()
                )));
            }
            let store = object_store::local::LocalFileSystem::new_with_prefix(dir)
                .map_err(|e| BackupError::Config(format!("`{url}`: {e}")))?;
            return Ok(Destination {
                store: Arc::new(store),
                root: String::new(),
                url: url.to_owned(),
            });
        }
        if let Some(rest) = url.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(BackupError::Config(format!(
                    "`{url}`: no bucket name (s3://bucket/prefix)"
                )));
            }
            let endpoint = opts
                .endpoint
                .clone()
                .or_else(|| env(&["AWS_ENDPOINT_URL", "AWS_ENDPOINT"]));
            let region = opts
                .region
                .clone()
                .or_else(|| env(&["AWS_REGION", "AWS_DEFAULT_REGION"]))
                .unwrap_or_else(|| "us-east-1".into());
            let key_id = opts
                .access_key_id
                .clone()
                .or_else(|| env(&["AWS_ACCESS_KEY_ID"]));
            let secret = opts
                .secret_access_key
                .clone()
                .or_else(|| env(&["AWS_SECRET_ACCESS_KEY"]));
            let (Some(key_id), Some(secret)) = (key_id, secret) else {
                return Err(BackupError::Config(format!(
                    "`{url}`: no S3 credentials (--access-key-id and the secret, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)"
                )));
            };
            let mut b = object_store::aws::AmazonS3Builder::new()
                .with_bucket_name(bucket)
                .with_region(region)
                .with_access_key_id(key_id)
                .with_secret_access_key(secret)
                .with_virtual_hosted_style_request(false)
                .with_retry(object_store::RetryConfig {
                    backoff: object_store::BackoffConfig {
                        init_backoff: Duration::from_millis(100),
                        max_backoff: Duration::from_secs(1),
                        base: 2.0,
                    },
                    max_retries: 2,
                    retry_timeout: Duration::from_secs(10),
                })
                .with_client_options(
                    object_store::ClientOptions::new()
                        .with_connect_timeout(Duration::from_secs(5))
                        .with_timeout(Duration::from_secs(120)),
                );
            if let Some(ep) = endpoint {
                if !(ep.starts_with("http://") || ep.starts_with("https://")) {
                    return Err(BackupError::Config(format!(
                        "`{url}`: the endpoint `{ep}` must start with http:// or https://"
                    )));
                }
                b = b
                    .with_allow_http(ep.starts_with("http://"))
                    .with_endpoint(ep);
            }
            let store = b
                .build()
                .map_err(|e| BackupError::Config(format!("`{url}`: {e}")))?;
            return Ok(Destination {
                store: Arc::new(store),
                root: prefix.trim_matches('/').to_owned(),
                url: url.to_owned(),
            });
        }
        Err(BackupError::Config(format!(
            "`{url}` is not a backup destination: use file:///path or s3://bucket/prefix"
        )))
    }

    /// The URL it was opened with.
    pub fn url(&self) -> &str {
        &self.url
    }

    fn path(&self, name: &str) -> ObjPath {
        if self.root.is_empty() {
            ObjPath::from(name)
        } else {
            ObjPath::from(format!("{}/{name}", self.root))
        }
    }

    fn err(&self, e: impl std::fmt::Display) -> BackupError {
        BackupError::Destination {
            dest: self.url.clone(),
            message: e.to_string(),
        }
    }

    /// Stores `data` as `name`, in parts when it is large.
    pub async fn put(&self, name: &str, data: Bytes) -> Result<()> {
        let path = self.path(name);
        if data.len() <= MULTIPART_OVER {
            self.store
                .put(&path, PutPayload::from_bytes(data))
                .await
                .map_err(|e| self.err(format!("storing {name}: {e}")))?;
            return Ok(());
        }
        let upload = self
            .store
            .put_multipart(&path)
            .await
            .map_err(|e| self.err(format!("starting the upload of {name}: {e}")))?;
        let mut w = WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
        w.put(data);
        w.finish()
            .await
            .map_err(|e| self.err(format!("storing {name} in parts: {e}")))?;
        Ok(())
    }

    /// The object `name`.
    pub async fn get(&self, name: &str) -> Result<Bytes> {
        let got = self
            .store
            .get(&self.path(name))
            .await
            .map_err(|e| match e {
                object_store::Error::NotFound { .. } => {
                    BackupError::Damaged(format!("the object {name} is missing at {}", self.url))
                }
                e => self.err(format!("reading {name}: {e}")),
            })?;
        got.bytes()
            .await
            .map_err(|e| self.err(format!("reading {name}: {e}")))
    }

    /// Every object whose name starts with `prefix` (a folder such as
    /// `s/0123…/`), in no particular order.
    pub async fn list(&self, prefix: &str) -> Result<Vec<Listed>> {
        let p = self.path(prefix.trim_end_matches('/'));
        let root_len = if self.root.is_empty() {
            0
        } else {
            self.root.len() + 1
        };
        let metas: Vec<object_store::ObjectMeta> = self
            .store
            .list(Some(&p))
            .try_collect()
            .await
            .map_err(|e| self.err(format!("listing {prefix}: {e}")))?;
        Ok(metas
            .into_iter()
            .map(|m| Listed {
                name: m.location.as_ref()[root_len.min(m.location.as_ref().len())..].to_owned(),
                size: m.size,
                modified: jiff::Timestamp::from_second(m.last_modified.timestamp())
                    .unwrap_or(jiff::Timestamp::UNIX_EPOCH),
            })
            .collect())
    }

    /// Deletes `name` (only for destinations the household lets the hub
    /// delete from).
    pub async fn delete(&self, name: &str) -> Result<()> {
        self.store
            .delete(&self.path(name))
            .await
            .map_err(|e| self.err(format!("deleting {name}: {e}")))
    }
}
