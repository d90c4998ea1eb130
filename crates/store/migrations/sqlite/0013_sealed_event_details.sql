-- Version 13: an event's details are sealed to the household's keys
-- (issue 14 item 8). What happened (kind, alert or not, score, zones,
-- labels, objects, the alarm's from/to/by/cause, a trigger's note) is one
-- age file in `sealed`, encrypted to the camera's recipients (the alarm's
-- and camera-less events' to the owners); only the index stays in clear:
-- id, camera_id, source, start_us, end_us and the snapshot's path (which
-- is derived from the camera and event ids).
--
-- Rows written from version 13 on keep neutral values in the old detail
-- columns (kind '', review 'detection', score NULL, zones '[]', detail
-- '{}'). `sealed` is NULL only on rows written before version 13: the hub
-- seals those at start-up (porchlight_vault::details::seal_legacy_events),
-- clears their plaintext and vacuums the database. An empty `sealed` means
-- nobody could be sealed to when the event happened (no member yet): its
-- details were not kept.

ALTER TABLE events ADD COLUMN sealed BLOB;
