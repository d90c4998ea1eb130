-- Version 3: events ("person at the front door", "doorbell pressed",
-- "package delivered"), from detection, sensors, the alarm or the API.

CREATE TABLE events (
    id           INTEGER PRIMARY KEY,
    camera_id    INTEGER REFERENCES cameras (id) ON DELETE CASCADE,  -- NULL: not tied to a camera
    kind         TEXT NOT NULL,      -- motion, person, vehicle, animal, package, package_delivered, package_taken, doorbell, alarm, sensor…
    source       TEXT NOT NULL,      -- detection, mqtt, api, alarm
    review       TEXT NOT NULL CHECK (review IN ('alert', 'detection')),
    start_us     INTEGER NOT NULL,
    end_us       INTEGER,            -- NULL while ongoing
    score        REAL,
    zones        TEXT NOT NULL DEFAULT '[]',   -- JSON array of zone names
    detail       TEXT NOT NULL DEFAULT '{}',   -- JSON object
    snapshot     TEXT                -- file name of the encrypted snapshot, if any
);
CREATE INDEX events_time ON events (start_us);
CREATE INDEX events_camera_time ON events (camera_id, start_us);
