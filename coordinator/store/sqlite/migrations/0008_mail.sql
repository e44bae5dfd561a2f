-- The outbox: mail waiting to be sent, so that trouble with the mail
-- server delays mail and nothing else.

-- next_attempt is NULL once the mail is sent, folded into a digest or given
-- up on; digest_at is set while it waits for its digest, digest_id once a
-- digest carries it.
CREATE TABLE mail_outbox (
	id           INTEGER PRIMARY KEY AUTOINCREMENT,
	recipient    TEXT    NOT NULL,
	subject      TEXT    NOT NULL,
	body         TEXT    NOT NULL,
	kind         TEXT    NOT NULL CHECK (kind IN ('verdict', 'infra', 'digest')),
	dedup_key    TEXT    NOT NULL UNIQUE,
	created_at   INTEGER NOT NULL,
	attempts     INTEGER NOT NULL DEFAULT 0,
	next_attempt INTEGER,
	sent_at      INTEGER,
	last_error   TEXT    NOT NULL DEFAULT '',
	digest_at    INTEGER,
	digest_id    INTEGER REFERENCES mail_outbox (id)
);

CREATE INDEX mail_outbox_due ON mail_outbox (next_attempt) WHERE next_attempt IS NOT NULL;
CREATE INDEX mail_outbox_sent ON mail_outbox (recipient, sent_at) WHERE sent_at IS NOT NULL;
CREATE INDEX mail_outbox_folded ON mail_outbox (digest_at) WHERE digest_at IS NOT NULL AND digest_id IS NULL;
