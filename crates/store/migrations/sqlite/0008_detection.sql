-- Version 8: per-camera detection settings (motion sensitivity, zones and
-- masks, which labels alert, analysis rate) as one JSON document, owned
-- and validated by porchlight-detect / porchlight-events. A camera without
-- a row uses the defaults.

CREATE TABLE camera_detection (
    camera_id  INTEGER PRIMARY KEY REFERENCES cameras (id) ON DELETE CASCADE,
    config     TEXT NOT NULL,        -- JSON object
    updated_us INTEGER NOT NULL
);
