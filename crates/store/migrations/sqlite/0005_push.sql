-- Version 5: Web Push — the browsers that asked to be told, and each
-- user's rules for what they want to be told about.

-- One row per browser push subscription (RFC 8030). `endpoint` is the push
-- service's capability URL for that browser; `p256dh` and `auth` are the
-- browser's ECDH public key and auth secret (base64url, as the browser
-- gives them) that payloads are encrypted to (RFC 8291).
CREATE TABLE push_subscriptions (
    id          INTEGER PRIMARY KEY,
    user_id     INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    endpoint    TEXT NOT NULL UNIQUE,
    p256dh      TEXT NOT NULL,
    auth        TEXT NOT NULL,
    user_agent  TEXT NOT NULL DEFAULT '',
    created     INTEGER NOT NULL,
    last_ok     INTEGER,                -- last accepted delivery; NULL: never
    failures    INTEGER NOT NULL DEFAULT 0  -- consecutive failed deliveries
);
CREATE INDEX push_subscriptions_user ON push_subscriptions (user_id);

-- At most one row per user; no row means "everything, any time".
-- List columns hold a JSON array, or NULL for "all".
CREATE TABLE notification_rules (
    user_id       INTEGER PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    cameras       TEXT,               -- JSON array of camera ids
    kinds         TEXT,               -- JSON array of kinds/labels
    quiet_start   INTEGER CHECK (quiet_start BETWEEN 0 AND 1439),  -- minutes after local midnight
    quiet_end     INTEGER CHECK (quiet_end BETWEEN 0 AND 1439),
    alarm_always  INTEGER NOT NULL DEFAULT 1,
    alarm_modes   TEXT,               -- JSON array of 'disarmed', 'home', 'away'
    updated       INTEGER NOT NULL,
    CHECK ((quiet_start IS NULL) = (quiet_end IS NULL))
);
