-- Version 9: which armed modes each sensor sets the alarm off in, when
-- chosen for that sensor (`porchlight sensor set NAME --modes away`).
-- NULL: the kind's default (home: contacts; away: contacts and motion).

ALTER TABLE sensors ADD COLUMN modes TEXT
    CHECK (modes IS NULL OR modes IN ('home', 'away', 'home,away', 'none'));
