-- Times are integer nanoseconds since the Unix epoch, UTC.

CREATE TABLE accounts (
	id           INTEGER PRIMARY KEY AUTOINCREMENT,
	name         TEXT    NOT NULL UNIQUE,
	display_name TEXT    NOT NULL DEFAULT '',
	email        TEXT    NOT NULL DEFAULT '',
	role         TEXT    NOT NULL CHECK (role IN ('volunteer', 'maintainer', 'admin')),
	created_at   INTEGER NOT NULL
);

CREATE TABLE api_tokens (
	id           INTEGER PRIMARY KEY AUTOINCREMENT,
	account_id   INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
	prefix       TEXT    NOT NULL,
	hash         BLOB    NOT NULL UNIQUE,
	created_at   INTEGER NOT NULL,
	last_used_at INTEGER
);

CREATE INDEX api_tokens_account ON api_tokens (account_id);

CREATE TABLE agents (
	id            INTEGER PRIMARY KEY AUTOINCREMENT,
	name          TEXT    NOT NULL,
	owner_id      INTEGER NOT NULL REFERENCES accounts (id),
	public_key    BLOB    NOT NULL,
	state         TEXT    NOT NULL CHECK (state IN ('pending', 'approved', 'rejected')),
	claim_code    TEXT    NOT NULL UNIQUE,
	claimed_at    INTEGER,
	labels        TEXT    NOT NULL DEFAULT '[]',
	capabilities  BLOB,
	auto_approved INTEGER NOT NULL DEFAULT 0,
	created_at    INTEGER NOT NULL,
	last_seen     INTEGER,
	decided_by    TEXT    NOT NULL DEFAULT '',
	decided_at    INTEGER
);

CREATE INDEX agents_owner ON agents (owner_id);

CREATE TABLE blobs (
	sha256     TEXT    PRIMARY KEY,
	size       INTEGER NOT NULL CHECK (size >= 0),
	created_at INTEGER NOT NULL
);

CREATE TABLE jobs (
	id            INTEGER PRIMARY KEY AUTOINCREMENT,
	package       TEXT    NOT NULL,
	version       TEXT    NOT NULL DEFAULT '',
	release       TEXT    NOT NULL,
	arch          TEXT    NOT NULL,
	triggers      TEXT    NOT NULL DEFAULT '[]',
	source_sha256 TEXT    REFERENCES blobs (sha256),
	source_size   INTEGER,
	source_kind   TEXT,
	source_entry  TEXT,
	state         TEXT    NOT NULL CHECK (state IN ('queued', 'running', 'held', 'done', 'cancelled')),
	verdict       TEXT    NOT NULL DEFAULT '',
	attempt       INTEGER NOT NULL DEFAULT 0,
	max_attempts  INTEGER NOT NULL DEFAULT 3,
	agent_id      INTEGER REFERENCES agents (id),
	nonce         TEXT    NOT NULL DEFAULT '',
	lease_expires INTEGER,
	stage         TEXT    NOT NULL DEFAULT '',
	reason        TEXT    NOT NULL DEFAULT '',
	transport     TEXT    NOT NULL DEFAULT '',
	submitted_by  TEXT    NOT NULL DEFAULT '',
	created_at    INTEGER NOT NULL,
	started_at    INTEGER,
	finished_at   INTEGER
);

CREATE INDEX jobs_queue ON jobs (state, arch, release, id);
CREATE INDEX jobs_lease ON jobs (state, lease_expires);
CREATE INDEX jobs_package ON jobs (package, id);

CREATE TABLE results (
	id                  INTEGER PRIMARY KEY AUTOINCREMENT,
	job_id              INTEGER NOT NULL REFERENCES jobs (id),
	attempt             INTEGER NOT NULL,
	agent_id            INTEGER NOT NULL REFERENCES agents (id),
	verdict             TEXT    NOT NULL,
	exit_code           INTEGER NOT NULL,
	agent_version       TEXT    NOT NULL DEFAULT '',
	autopkgtest_version TEXT    NOT NULL DEFAULT '',
	backend             TEXT    NOT NULL DEFAULT '',
	image_digest        TEXT    NOT NULL DEFAULT '',
	envelope            BLOB    NOT NULL,
	transport           TEXT    NOT NULL DEFAULT '',
	created_at          INTEGER NOT NULL,
	UNIQUE (job_id, attempt)
);

CREATE TABLE result_tests (
	result_id INTEGER NOT NULL REFERENCES results (id),
	seq       INTEGER NOT NULL,
	name      TEXT    NOT NULL,
	result    TEXT    NOT NULL,
	detail    TEXT    NOT NULL DEFAULT '',
	PRIMARY KEY (result_id, seq)
);

CREATE TABLE result_blobs (
	result_id INTEGER NOT NULL REFERENCES results (id),
	seq       INTEGER NOT NULL,
	name      TEXT    NOT NULL,
	sha256    TEXT    NOT NULL REFERENCES blobs (sha256),
	size      INTEGER NOT NULL,
	PRIMARY KEY (result_id, seq)
);

CREATE INDEX result_blobs_sha256 ON result_blobs (sha256);
