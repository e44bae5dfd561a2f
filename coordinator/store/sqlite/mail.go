package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/sparegrid/sparegrid/coordinator/store"
)

const mailSelect = `SELECT id, recipient, subject, body, kind, dedup_key, created_at, attempts,
	next_attempt, sent_at, last_error, digest_at, digest_id FROM mail_outbox`

func scanMail(s scanner) (store.Mail, error) {
	var m store.Mail
	var created int64
	var next, sent, digestAt, digestID sql.NullInt64
	if err := s.Scan(&m.ID, &m.To, &m.Subject, &m.Body, &m.Kind, &m.Key, &created, &m.Attempts,
		&next, &sent, &m.LastError, &digestAt, &digestID); err != nil {
		return store.Mail{}, err
	}
	m.CreatedAt = fromNanos(created)
	m.NextAttempt, m.SentAt, m.DigestAt = fromNull(next), fromNull(sent), fromNull(digestAt)
	m.DigestID = digestID.Int64
	return m, nil
}

func queryMail(ctx context.Context, q querier, query string, args ...any) ([]store.Mail, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.Mail
	for rows.Next() {
		m, err := scanMail(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// EnqueueMail implements store.Store.
func (db *DB) EnqueueMail(ctx context.Context, m store.Mail, covers ...int64) (store.Mail, bool, error) {
	if err := store.ValidateNewMail(m); err != nil {
		return store.Mail{}, false, err
	}
	if len(covers) > 0 && m.Kind != store.MailDigest {
		return store.Mail{}, false, fmt.Errorf("%w: only a digest carries other mails", store.ErrConflict)
	}
	created := db.clock(m.CreatedAt)
	next := created
	if m.NextAttempt != nil {
		next = m.NextAttempt.UTC()
	}
	var out store.Mail
	var queued bool
	err := db.write(ctx, func(tx *sql.Tx) error {
		existing, err := scanMail(tx.QueryRowContext(ctx, mailSelect+` WHERE dedup_key = ?`, m.Key))
		switch {
		case err == nil:
			out = existing
			return nil
		case !errors.Is(err, sql.ErrNoRows):
			return err
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO mail_outbox (recipient, subject, body, kind, dedup_key,
			created_at, next_attempt) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			m.To, m.Subject, m.Body, string(m.Kind), m.Key, nanos(created), nanos(next))
		if err != nil {
			return err
		}
		id, err := res.LastInsertId()
		if err != nil {
			return err
		}
		for _, c := range covers {
			res, err := tx.ExecContext(ctx, `UPDATE mail_outbox SET digest_id = ?
				WHERE id = ? AND digest_at IS NOT NULL AND digest_id IS NULL`, id, c)
			if err != nil {
				return err
			}
			if n, err := res.RowsAffected(); err != nil {
				return err
			} else if n == 0 {
				return fmt.Errorf("%w: mail %d is not waiting for a digest", store.ErrConflict, c)
			}
		}
		out, err = scanMail(tx.QueryRowContext(ctx, mailSelect+` WHERE id = ?`, id))
		queued = true
		return err
	})
	if err != nil {
		return store.Mail{}, false, err
	}
	return out, queued, nil
}

// DueMail implements store.Store.
func (db *DB) DueMail(ctx context.Context, now time.Time, limit int) ([]store.Mail, error) {
	if limit <= 0 {
		return nil, nil
	}
	return queryMail(ctx, db.r, mailSelect+` WHERE next_attempt IS NOT NULL AND next_attempt <= ?
		ORDER BY next_attempt, id LIMIT ?`, nanos(db.clock(now)), limit)
}

// updateDue runs an update of one mail that is still queued and tells an
// unknown mail from one that is not.
func (db *DB) updateDue(ctx context.Context, id int64, set string, args ...any) error {
	return db.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE mail_outbox SET `+set+`
			WHERE id = ? AND next_attempt IS NOT NULL`, append(args, id)...)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil || n > 0 {
			return err
		}
		var one int
		err = tx.QueryRowContext(ctx, `SELECT 1 FROM mail_outbox WHERE id = ?`, id).Scan(&one)
		if err != nil {
			return notFound(err, "mail %d", id)
		}
		return fmt.Errorf("%w: mail %d is not queued", store.ErrConflict, id)
	})
}

// MarkMailSent implements store.Store.
func (db *DB) MarkMailSent(ctx context.Context, id int64, at time.Time) error {
	return db.updateDue(ctx, id, `sent_at = ?, next_attempt = NULL`, nanos(db.clock(at)))
}

// MarkMailFailed implements store.Store.
func (db *DB) MarkMailFailed(ctx context.Context, id int64, reason string, retryAt time.Time) error {
	if len(reason) > store.MaxMailError {
		reason = reason[:store.MaxMailError]
	}
	var next any
	if !retryAt.IsZero() {
		next = nanos(retryAt)
	}
	return db.updateDue(ctx, id, `attempts = attempts + 1, last_error = ?, next_attempt = ?`, reason, next)
}

// FoldMail implements store.Store.
func (db *DB) FoldMail(ctx context.Context, id int64, digestAt time.Time) error {
	if digestAt.IsZero() {
		return &store.InvalidError{Reason: "a folded mail needs the time of its digest"}
	}
	return db.updateDue(ctx, id, `digest_at = ?, next_attempt = NULL`, nanos(digestAt))
}

// FoldedMail implements store.Store.
func (db *DB) FoldedMail(ctx context.Context, now time.Time) ([]store.Mail, error) {
	return queryMail(ctx, db.r, mailSelect+` WHERE digest_at IS NOT NULL AND digest_id IS NULL
		AND digest_at <= ? ORDER BY id`, nanos(db.clock(now)))
}

// MailSentSince implements store.Store.
func (db *DB) MailSentSince(ctx context.Context, to string, since time.Time) (int, error) {
	var n int
	err := db.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM mail_outbox
		WHERE recipient = ? AND sent_at IS NOT NULL AND sent_at >= ? AND kind != 'digest'`,
		to, nanos(since)).Scan(&n)
	return n, err
}
