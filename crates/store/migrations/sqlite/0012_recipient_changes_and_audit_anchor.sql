-- Version 12: a counter of changes to who recordings are encrypted to, and
-- the fact that the audit anchor was written (issue 14, items 1 and 11).

-- `n` grows by one in the same transaction as any change that can change a
-- camera's recipients (design/keys.md, "When a change of recipients takes
-- effect"). The triggers below bump it, so no code path — the web app, the
-- CLI in another process, a future one — can change a grant or an account
-- and forget to tell the recorder; the recorder polls this one row.
CREATE TABLE recipient_changes (
    id  INTEGER PRIMARY KEY CHECK (id = 1),
    n   INTEGER NOT NULL
);
INSERT INTO recipient_changes (id, n) VALUES (1, 0);

CREATE TRIGGER camera_grants_added AFTER INSERT ON camera_grants
BEGIN UPDATE recipient_changes SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER camera_grants_removed AFTER DELETE ON camera_grants
BEGIN UPDATE recipient_changes SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER users_added AFTER INSERT ON users
BEGIN UPDATE recipient_changes SET n = n + 1 WHERE id = 1; END;
CREATE TRIGGER users_removed AFTER DELETE ON users
BEGIN UPDATE recipient_changes SET n = n + 1 WHERE id = 1; END;
-- Only what `camera_recipients` reads: role, disabled, the public key. A
-- password change that re-wraps the same key, a sign-in or a TOTP step
-- bumps nothing.
CREATE TRIGGER users_recipient_changed AFTER UPDATE OF role, disabled, age_recipient ON users
WHEN OLD.role IS NOT NEW.role
  OR OLD.disabled IS NOT NEW.disabled
  OR OLD.age_recipient IS NOT NEW.age_recipient
BEGIN UPDATE recipient_changes SET n = n + 1 WHERE id = 1; END;

-- Once the anchor file `audit.head` has been written, this row says so; from
-- then on `porchlight check` fails when the file is missing instead of taking
-- the folder for a fresh one (design/audit.md). Like the log, it cannot be
-- changed or removed by ordinary code.
CREATE TABLE audit_anchor (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    written_at  INTEGER NOT NULL
);
-- Every Porchlight has written the anchor with every entry: a log with
-- entries had one, last written with its newest entry.
INSERT INTO audit_anchor (id, written_at)
SELECT 1, at FROM audit_log ORDER BY seq DESC LIMIT 1;
CREATE TRIGGER audit_anchor_no_update BEFORE UPDATE ON audit_anchor
BEGIN SELECT RAISE(ABORT, 'the audit anchor record is permanent'); END;
CREATE TRIGGER audit_anchor_no_delete BEFORE DELETE ON audit_anchor
BEGIN SELECT RAISE(ABORT, 'the audit anchor record is permanent'); END;
