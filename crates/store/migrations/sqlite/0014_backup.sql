-- Version 14: off-site backup (design/backup.md). What leaves the house is
-- the segment files' ciphertext, byte for byte, and sealed descriptions;
-- these tables only say where to send it and how far each copy got.

-- A place the hub copies footage to: a folder (file://, a mounted NAS or
-- USB disk) or an S3-compatible bucket. `options` is JSON: endpoint,
-- region, access key id and secret for S3 (a stolen hub carries them: see
-- design/backup.md for why the default is a destination the hub never
-- deletes from).
CREATE TABLE backup_destinations (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    name           TEXT NOT NULL UNIQUE,
    url            TEXT NOT NULL,
    options        TEXT NOT NULL DEFAULT '{}',
    mode           TEXT NOT NULL CHECK (mode IN ('events', 'continuous')),
    -- JSON array of camera ids; NULL: every camera, including later ones.
    cameras        TEXT,
    max_rate_bps   INTEGER CHECK (max_rate_bps IS NULL OR max_rate_bps > 0),
    -- 0 (the default): the hub never deletes nor overwrites an object
    -- there; expiry is the bucket's own lifecycle rule.
    may_delete     INTEGER NOT NULL DEFAULT 0 CHECK (may_delete IN (0, 1)),
    retain_days    INTEGER CHECK (retain_days IS NULL OR retain_days > 0),
    retain_bytes   INTEGER CHECK (retain_bytes IS NULL OR retain_bytes > 0),
    created_at     INTEGER NOT NULL,
    -- BLAKE3 of the key bundle last stored there (a new one is written
    -- when a member's wrapped key changes).
    bundle_digest  BLOB,
    last_upload_at INTEGER,
    last_error     TEXT,
    last_error_at  INTEGER,
    uploaded_bytes INTEGER NOT NULL DEFAULT 0
);

-- Events whose footage goes off-site: marked, by their kind, at the moment
-- the hub records or updates them (porchlight_vault::details), since the
-- kind itself is sealed afterwards.
CREATE TABLE backup_events (
    event_id   INTEGER PRIMARY KEY REFERENCES events (id) ON DELETE CASCADE,
    marked_at  INTEGER NOT NULL
);

-- Per destination and recording: how much of the segment file is stored
-- there. `uploaded_to` is always a record boundary, so the copy is a valid
-- segment at every moment. No foreign key to `recordings`: retention may
-- delete the file at home after it is safe elsewhere.
CREATE TABLE backup_segments (
    dest_id      INTEGER NOT NULL REFERENCES backup_destinations (id) ON DELETE CASCADE,
    recording_id INTEGER NOT NULL,
    -- Random; the only name the destination knows the segment by.
    object_id    TEXT NOT NULL,
    -- 0: footage around an event; 1: continuous.
    priority     INTEGER NOT NULL,
    described    INTEGER NOT NULL DEFAULT 0 CHECK (described IN (0, 1)),
    uploaded_to  INTEGER NOT NULL DEFAULT 0,
    done         INTEGER NOT NULL DEFAULT 0 CHECK (done IN (0, 1)),
    queued_at    INTEGER NOT NULL,
    PRIMARY KEY (dest_id, recording_id)
) WITHOUT ROWID;
CREATE INDEX backup_segments_pending ON backup_segments (dest_id, done, priority, recording_id);

-- Per destination and event: its sealed copy, re-sent when it ends.
CREATE TABLE backup_event_copies (
    dest_id    INTEGER NOT NULL REFERENCES backup_destinations (id) ON DELETE CASCADE,
    event_id   INTEGER NOT NULL,
    object_id  TEXT NOT NULL,
    -- How many versions were stored; the last one with an end is final.
    versions   INTEGER NOT NULL DEFAULT 0,
    sent_end   INTEGER NOT NULL DEFAULT 0 CHECK (sent_end IN (0, 1)),
    -- Every recording of its window is queued and the window has closed.
    done       INTEGER NOT NULL DEFAULT 0 CHECK (done IN (0, 1)),
    PRIMARY KEY (dest_id, event_id)
) WITHOUT ROWID;
