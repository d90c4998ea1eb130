-- Version 4: the alarm — sensors over MQTT, the alarm's persisted state
-- machine, and requests from the CLI or the web app to a running hub.

CREATE TABLE sensors (
    id            INTEGER PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,
    kind          TEXT NOT NULL CHECK (kind IN ('contact', 'motion', 'doorbell', 'siren', 'keypad')),
    topic         TEXT NOT NULL UNIQUE,
    camera_id     INTEGER REFERENCES cameras (id) ON DELETE SET NULL,
    created_at    INTEGER NOT NULL,
    active        INTEGER,            -- contact open / occupancy; NULL: never heard
    battery       REAL,
    linkquality   INTEGER,
    available     INTEGER,            -- from TOPIC/availability; NULL: unknown
    last_seen_us  INTEGER
);

-- One row: the machine's state as the alarm crate serialises it (opaque
-- JSON here), the keypad PIN's Argon2id hash, and the hub's MQTT link.
CREATE TABLE alarm_state (
    id               INTEGER PRIMARY KEY CHECK (id = 1),
    state            TEXT NOT NULL DEFAULT 'disarmed',
    snapshot         TEXT NOT NULL DEFAULT '{}',
    updated_us       INTEGER NOT NULL DEFAULT 0,
    pin_hash         TEXT,
    link_connected   INTEGER NOT NULL DEFAULT 0,
    link_error       TEXT,
    link_updated_us  INTEGER NOT NULL DEFAULT 0
);
INSERT INTO alarm_state (id) VALUES (1);

-- Arm/disarm requests from processes other than the hub (the CLI); the
-- hub performs them in order and writes the outcome back.
CREATE TABLE alarm_requests (
    id            INTEGER PRIMARY KEY,
    action        TEXT NOT NULL,      -- arm_home, arm_away, disarm
    actor         TEXT NOT NULL,
    options       TEXT NOT NULL DEFAULT '{}',  -- JSON: delays in milliseconds
    requested_us  INTEGER NOT NULL,
    done_us       INTEGER,
    outcome       TEXT                -- JSON written by the hub
);
