-- Version 2: cameras and the recording index (design/storage.md).

CREATE TABLE cameras (
    id             INTEGER PRIMARY KEY,
    name           TEXT NOT NULL UNIQUE COLLATE NOCASE,
    main_url       TEXT NOT NULL,
    sub_url        TEXT,
    -- The hub must reconnect with no one signed in, so camera credentials
    -- are stored as given (they open the camera's own stream, which the
    -- camera serves to anyone on the LAN who has them anyway).
    username       TEXT,
    password       TEXT,
    enabled        INTEGER NOT NULL DEFAULT 1,
    retain_max_age_secs  INTEGER,            -- NULL: no age limit
    retain_max_bytes     INTEGER,            -- NULL: no size limit
    created_at     INTEGER NOT NULL
);

-- Members who may see a camera (owners see all). A recording is encrypted
-- to the owners and granted members at the moment it starts.
CREATE TABLE camera_grants (
    camera_id  INTEGER NOT NULL REFERENCES cameras (id) ON DELETE CASCADE,
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (camera_id, user_id)
) WITHOUT ROWID;

CREATE TABLE video_sample_entries (
    id        INTEGER PRIMARY KEY,
    codec     TEXT NOT NULL CHECK (codec IN ('h264', 'h265')),
    width     INTEGER NOT NULL,
    height    INTEGER NOT NULL,
    config    BLOB NOT NULL,
    rfc6381   TEXT NOT NULL,
    UNIQUE (codec, width, height, config)
);

-- One row per segment file. `open` rows are segments being written (or
-- interrupted by a crash): their index lives only in the file until
-- start-up recovery or rotation closes them.
CREATE TABLE recordings (
    id               INTEGER PRIMARY KEY,
    camera_id        INTEGER NOT NULL REFERENCES cameras (id),
    stream           TEXT NOT NULL CHECK (stream IN ('main', 'sub')),
    state            TEXT NOT NULL CHECK (state IN ('open', 'closed')),
    run_id           INTEGER NOT NULL,        -- recordings of one unbroken connection share it
    start_us         INTEGER NOT NULL,        -- wall clock of the first frame
    duration_90k     INTEGER NOT NULL DEFAULT 0,
    frames           INTEGER NOT NULL DEFAULT 0,
    sample_bytes     INTEGER NOT NULL DEFAULT 0,
    file_bytes       INTEGER NOT NULL DEFAULT 0,
    sample_entry_id  INTEGER NOT NULL REFERENCES video_sample_entries (id),
    file_name        TEXT NOT NULL UNIQUE,
    sha256           BLOB,
    frame_index      BLOB
);
CREATE INDEX recordings_camera_time ON recordings (camera_id, stream, start_us);

-- Files to delete. A deletion first moves the row here (one transaction),
-- then unlinks the file, syncs the directory, and only then forgets the
-- garbage row: a crash at any point leaves either a row or a garbage entry,
-- never an orphan file nor a row without its file.
CREATE TABLE garbage (
    file_name  TEXT PRIMARY KEY,
    camera_id  INTEGER NOT NULL
) WITHOUT ROWID;

-- What the running hub last saw of each camera, so `porchlight camera list`
-- (another process) can show it. Written every few seconds by the hub.
CREATE TABLE camera_status (
    camera_id    INTEGER PRIMARY KEY REFERENCES cameras (id) ON DELETE CASCADE,
    connected    INTEGER NOT NULL,
    fps          REAL NOT NULL,
    bitrate_bps  REAL NOT NULL,
    last_error   TEXT,
    updated_at   INTEGER NOT NULL
);
