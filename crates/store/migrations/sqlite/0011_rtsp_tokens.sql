-- Version 11: per-device RTSP credentials (design/accounts.md, "RTSP
-- viewers"). The account password is never accepted over RTSP: a signed-in
-- user creates a token per device (VLC, Home Assistant…), shown once. The
-- store keeps only SHA-256 of the random secret (256 bits, so a fast hash
-- is enough, as for recovery codes); a copy of the database cannot be
-- replayed as a credential.
CREATE TABLE rtsp_tokens (
    -- AUTOINCREMENT: an id is never reused, so audit entries that name a
    -- token keep naming that one token.
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id       INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    label         TEXT NOT NULL,              -- the device, as the user named it
    token_hash    BLOB NOT NULL UNIQUE,       -- SHA-256 of the secret
    -- 1: every camera the user may see (now and later); 0: only the
    -- cameras in rtsp_token_cameras (none left: no camera at all).
    all_cameras   INTEGER NOT NULL CHECK (all_cameras IN (0, 1)),
    created_at    INTEGER NOT NULL,
    last_used_at  INTEGER
);
CREATE INDEX rtsp_tokens_user ON rtsp_tokens (user_id);

-- The cameras a scoped token may show (still only while its user may see
-- them: the scope narrows the user's rights, it never widens them).
CREATE TABLE rtsp_token_cameras (
    token_id   INTEGER NOT NULL REFERENCES rtsp_tokens (id) ON DELETE CASCADE,
    camera_id  INTEGER NOT NULL REFERENCES cameras (id) ON DELETE CASCADE,
    PRIMARY KEY (token_id, camera_id)
) WITHOUT ROWID;
