-- Version 6: alarm modes drive cameras. Per camera and per alarm mode
-- (`disarmed`, `home`, `away`), whether it records, detects and notifies;
-- no row means all three on. Plus a per-camera privacy switch that pauses
-- everything for that camera (recording, live view, detection,
-- notifications) whatever the mode.
CREATE TABLE camera_modes (
    camera_id INTEGER NOT NULL REFERENCES cameras (id) ON DELETE CASCADE,
    mode      TEXT NOT NULL CHECK (mode IN ('disarmed', 'home', 'away')),
    record    INTEGER NOT NULL DEFAULT 1 CHECK (record IN (0, 1)),
    detect    INTEGER NOT NULL DEFAULT 1 CHECK (detect IN (0, 1)),
    notify    INTEGER NOT NULL DEFAULT 1 CHECK (notify IN (0, 1)),
    PRIMARY KEY (camera_id, mode)
);

CREATE TABLE camera_privacy (
    camera_id INTEGER PRIMARY KEY REFERENCES cameras (id) ON DELETE CASCADE,
    privacy   INTEGER NOT NULL DEFAULT 0 CHECK (privacy IN (0, 1)),
    updated   INTEGER NOT NULL
);
