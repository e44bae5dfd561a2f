-- Holds and the downtime health checks record.

-- A scope ("grid", "release:R", "arch:A", "label:L") is held while any
-- holder holds it; held_by is "check NAME" or an admin's account name.
CREATE TABLE holds (
	scope   TEXT    NOT NULL,
	held_by TEXT    NOT NULL,
	reason  TEXT    NOT NULL,
	since   INTEGER NOT NULL,
	PRIMARY KEY (scope, held_by)
);

-- One row per stretch of time a check failed; ended NULL while it fails.
CREATE TABLE downtime (
	id         INTEGER PRIMARY KEY AUTOINCREMENT,
	check_name TEXT    NOT NULL,
	scope      TEXT    NOT NULL,
	started    INTEGER NOT NULL,
	ended      INTEGER,
	last_error TEXT    NOT NULL DEFAULT '',
	CHECK (ended IS NULL OR ended >= started)
);

CREATE UNIQUE INDEX downtime_open ON downtime (check_name) WHERE ended IS NULL;
CREATE INDEX downtime_ended ON downtime (ended);
