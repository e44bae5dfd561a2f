-- Blocklist rules: what admins keep off the grid, and why.

-- package is a shell glob over source package names; empty version,
-- release, arch and test match anything; test set means the rule skips
-- that one test rather than the whole job. A rule is scoped to one agent or
-- to agents with one label, never both. expires_at NULL: until removed.
CREATE TABLE block_rules (
	id         INTEGER PRIMARY KEY AUTOINCREMENT,
	package    TEXT    NOT NULL,
	version    TEXT    NOT NULL DEFAULT '',
	release    TEXT    NOT NULL DEFAULT '',
	arch       TEXT    NOT NULL DEFAULT '',
	test       TEXT    NOT NULL DEFAULT '',
	agent_id   INTEGER REFERENCES agents (id),
	label      TEXT    NOT NULL DEFAULT '',
	reason     TEXT    NOT NULL,
	created_by TEXT    NOT NULL,
	created_at INTEGER NOT NULL,
	expires_at INTEGER,
	CHECK (agent_id IS NULL OR label = '')
);

-- A job submitted with force despite a whole-job rule.
ALTER TABLE jobs ADD COLUMN forced INTEGER NOT NULL DEFAULT 0;
