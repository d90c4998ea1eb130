-- Version 10: session ids are never reused; second-factor throttles.
--
-- `sessions.id` was `INTEGER PRIMARY KEY` without AUTOINCREMENT, so SQLite
-- handed the id of the newest ended session to the next sign-in. Anything
-- keyed by a session id in memory (unlocked keys, cached playbacks) could
-- then belong to somebody else's session. With AUTOINCREMENT an id is used
-- once for the life of the database. The counter starts past every id the
-- table or the audit log (`auth.sign_in` entries name their session) has
-- ever shown, so not even an id from before this migration comes back.
CREATE TABLE sessions_v10 (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    token_hash    BLOB NOT NULL UNIQUE,       -- SHA-256 of the cookie/bearer token
    user_id       INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    stage         TEXT NOT NULL CHECK (stage IN ('totp', 'enroll', 'full')),
    csrf_token    TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    last_seen_at  INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL,           -- absolute limit
    client_addr   TEXT NOT NULL,
    user_agent    TEXT NOT NULL
);
INSERT INTO sessions_v10 (id, token_hash, user_id, stage, csrf_token, created_at, last_seen_at, expires_at, client_addr, user_agent)
    SELECT id, token_hash, user_id, stage, csrf_token, created_at, last_seen_at, expires_at, client_addr, user_agent FROM sessions;
DROP TABLE sessions;
ALTER TABLE sessions_v10 RENAME TO sessions;
CREATE INDEX sessions_user ON sessions (user_id);
DELETE FROM sqlite_sequence WHERE name IN ('sessions', 'sessions_v10');
INSERT INTO sqlite_sequence (name, seq) SELECT 'sessions', MAX(
    COALESCE((SELECT MAX(id) FROM sessions), 0),
    COALESCE((SELECT MAX(CAST(json_extract(detail, '$.session') AS INTEGER))
              FROM audit_log WHERE action = 'auth.sign_in'), 0));

-- Wrong second-factor codes get counters of their own, per account and per
-- client address (`code_account`, `code_address`), beside the password
-- counters. SQLite cannot change a CHECK constraint in place.
CREATE TABLE login_throttle_v10 (
    scope            TEXT NOT NULL CHECK (scope IN ('account', 'address', 'code_account', 'code_address')),
    key              TEXT NOT NULL,
    failures         INTEGER NOT NULL,
    last_failure_at  INTEGER NOT NULL,
    locked_until     INTEGER NOT NULL,
    PRIMARY KEY (scope, key)
) WITHOUT ROWID;
INSERT INTO login_throttle_v10 SELECT scope, key, failures, last_failure_at, locked_until FROM login_throttle;
DROP TABLE login_throttle;
ALTER TABLE login_throttle_v10 RENAME TO login_throttle;
