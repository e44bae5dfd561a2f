-- Events build systems post, and what the rules made of them.

-- metadata is a JSON object of strings. rules and requests are JSON arrays
-- of the expansion (see store.EventRule and store.EventRequest); they stay
-- '[]' until the expansion is stored.
CREATE TABLE events (
	id           INTEGER PRIMARY KEY AUTOINCREMENT,
	type         TEXT    NOT NULL,
	source       TEXT    NOT NULL DEFAULT '',
	version      TEXT    NOT NULL DEFAULT '',
	artifact_url TEXT    NOT NULL DEFAULT '',
	build_id     TEXT    NOT NULL DEFAULT '',
	metadata     TEXT    NOT NULL DEFAULT '{}',
	producer     TEXT    NOT NULL,
	received     INTEGER NOT NULL,
	rules        TEXT    NOT NULL DEFAULT '[]',
	requests     TEXT    NOT NULL DEFAULT '[]'
);
