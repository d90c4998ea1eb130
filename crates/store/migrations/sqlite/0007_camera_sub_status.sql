-- What the running hub last saw of each camera's sub-stream (its second,
-- low-resolution RTSP stream, used by detection), alongside camera_status
-- for the main stream. Only cameras with a sub_url have a row. Written
-- every few seconds by the hub, read by `porchlight camera list` and the
-- HTTP API.
CREATE TABLE camera_sub_status (
    camera_id    INTEGER PRIMARY KEY REFERENCES cameras (id) ON DELETE CASCADE,
    connected    INTEGER NOT NULL,
    fps          REAL NOT NULL,
    bitrate_bps  REAL NOT NULL,
    last_error   TEXT,
    updated_at   INTEGER NOT NULL
);
