-- Version 1: accounts, sessions, sign-in throttling, the audit chain.
-- Instants are integer microseconds since the Unix epoch (UTC).

CREATE TABLE users (
    id               INTEGER PRIMARY KEY,
    username         TEXT NOT NULL UNIQUE COLLATE NOCASE,
    role             TEXT NOT NULL CHECK (role IN ('owner', 'member', 'neighbor', 'agency', 'moderator', 'admin')),
    password_hash    TEXT NOT NULL,           -- Argon2id PHC string
    disabled         INTEGER NOT NULL DEFAULT 0,
    created_at       INTEGER NOT NULL,
    -- Second factor (RFC 6238). The secret is needed to check codes before
    -- any key is unlocked, so it is stored as is; it alone grants nothing.
    totp_secret      BLOB,
    totp_enabled     INTEGER NOT NULL DEFAULT 0,
    totp_last_step   INTEGER,                 -- highest accepted step: replay guard
    -- Household key (hub roles only). The public half in clear; the private
    -- half only wrapped (see design/keys.md).
    age_recipient    TEXT,
    key_by_password  BLOB,
    key_by_recovery  BLOB,
    CHECK ((age_recipient IS NULL) = (key_by_password IS NULL)),
    CHECK ((age_recipient IS NULL) = (key_by_recovery IS NULL))
);

-- One-time second-factor recovery codes, stored as SHA-256 of the
-- normalised code (they carry 80+ bits, so a fast hash is enough).
CREATE TABLE totp_recovery_codes (
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash  BLOB NOT NULL,
    used_at    INTEGER,
    PRIMARY KEY (user_id, code_hash)
) WITHOUT ROWID;

CREATE TABLE sessions (
    id            INTEGER PRIMARY KEY,
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
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE login_throttle (
    scope            TEXT NOT NULL CHECK (scope IN ('account', 'address')),
    key              TEXT NOT NULL,
    failures         INTEGER NOT NULL,
    last_failure_at  INTEGER NOT NULL,
    locked_until     INTEGER NOT NULL,
    PRIMARY KEY (scope, key)
) WITHOUT ROWID;

-- The append-only, hash-chained audit log (design/audit.md).
CREATE TABLE audit_log (
    seq        INTEGER PRIMARY KEY,
    at         INTEGER NOT NULL,
    actor      TEXT NOT NULL,
    action     TEXT NOT NULL,
    target     TEXT NOT NULL,
    detail     TEXT NOT NULL,
    client     TEXT NOT NULL,
    prev_hash  BLOB NOT NULL,
    hash       BLOB NOT NULL
);
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
