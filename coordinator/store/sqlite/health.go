package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/sparegrid/sparegrid/coordinator/store"
	"github.com/sparegrid/sparegrid/shared/dep8"
)

// SetHold implements store.HealthStore.
func (db *DB) SetHold(ctx context.Context, h store.Hold) (store.Hold, error) {
	if err := h.Validate(); err != nil {
		return store.Hold{}, err
	}
	h.Since = db.clock(h.Since)
	var out store.Hold
	err := db.write(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO holds (scope, held_by, reason, since) VALUES (?, ?, ?, ?)
			ON CONFLICT (scope, held_by) DO UPDATE SET reason = excluded.reason`,
			string(h.Scope), h.By, h.Reason, nanos(h.Since)); err != nil {
			return err
		}
		var since int64
		out = store.Hold{Scope: h.Scope, By: h.By}
		if err := tx.QueryRowContext(ctx, `SELECT reason, since FROM holds WHERE scope = ? AND held_by = ?`,
			string(h.Scope), h.By).Scan(&out.Reason, &since); err != nil {
			return err
		}
		out.Since = fromNanos(since)
		return nil
	})
	return out, err
}

// ClearHold implements store.HealthStore.
func (db *DB) ClearHold(ctx context.Context, scope store.Scope, by string) error {
	return db.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM holds WHERE scope = ? AND held_by = ?`, string(scope), by)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("%w: %s holds no %s", store.ErrNotFound, by, scope)
		}
		return nil
	})
}

// Holds implements store.HealthStore.
func (db *DB) Holds(ctx context.Context) ([]store.Hold, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT scope, held_by, reason, since FROM holds ORDER BY scope, since, held_by`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.Hold
	for rows.Next() {
		var h store.Hold
		var scope string
		var since int64
		if err := rows.Scan(&scope, &h.By, &h.Reason, &since); err != nil {
			return nil, err
		}
		h.Scope, h.Since = store.Scope(scope), fromNanos(since)
		out = append(out, h)
	}
	return out, rows.Err()
}

const downtimeSelect = `SELECT id, check_name, scope, started, ended, last_error FROM downtime`

func scanDowntime(s scanner) (store.DowntimeInterval, error) {
	var d store.DowntimeInterval
	var scope string
	var started int64
	var ended sql.NullInt64
	if err := s.Scan(&d.ID, &d.Check, &scope, &started, &ended, &d.LastError); err != nil {
		return store.DowntimeInterval{}, err
	}
	d.Scope, d.Started, d.Ended = store.Scope(scope), fromNanos(started), fromNull(ended)
	return d, nil
}

// OpenDowntime implements store.HealthStore.
func (db *DB) OpenDowntime(ctx context.Context, check string, scope store.Scope, at time.Time, reason string) (store.DowntimeInterval, error) {
	if strings.TrimSpace(check) == "" {
		return store.DowntimeInterval{}, &store.InvalidError{Reason: "a downtime interval needs the check's name"}
	}
	if _, err := store.ParseScope(string(scope)); err != nil {
		return store.DowntimeInterval{}, err
	}
	if len(reason) > store.MaxHealthReason || store.OneLine(reason) != strings.TrimSpace(reason) {
		return store.DowntimeInterval{}, &store.InvalidError{Reason: fmt.Sprintf("a check error must be one line of printable text, at most %d bytes", store.MaxHealthReason)}
	}
	at = db.clock(at)
	var out store.DowntimeInterval
	err := db.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE downtime SET last_error = ? WHERE check_name = ? AND ended IS NULL`, reason, check)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			if _, err := tx.ExecContext(ctx, `INSERT INTO downtime (check_name, scope, started, last_error) VALUES (?, ?, ?, ?)`,
				check, string(scope), nanos(at), reason); err != nil {
				return err
			}
		}
		out, err = scanDowntime(tx.QueryRowContext(ctx, downtimeSelect+` WHERE check_name = ? AND ended IS NULL`, check))
		return err
	})
	return out, err
}

// CloseDowntime implements store.HealthStore.
func (db *DB) CloseDowntime(ctx context.Context, check string, at time.Time) (store.DowntimeInterval, error) {
	at = db.clock(at)
	var out store.DowntimeInterval
	err := db.write(ctx, func(tx *sql.Tx) error {
		d, err := scanDowntime(tx.QueryRowContext(ctx, downtimeSelect+` WHERE check_name = ? AND ended IS NULL`, check))
		if err != nil {
			return notFound(err, "check %q has no open downtime", check)
		}
		if at.Before(d.Started) {
			return &store.InvalidError{Reason: fmt.Sprintf("downtime of check %q would end at %s, before it started at %s",
				check, at.Format(time.RFC3339Nano), d.Started.Format(time.RFC3339Nano))}
		}
		if _, err := tx.ExecContext(ctx, `UPDATE downtime SET ended = ? WHERE id = ?`, nanos(at), d.ID); err != nil {
			return err
		}
		d.Ended = &at
		out = d
		return nil
	})
	return out, err
}

// Downtime implements store.HealthStore.
func (db *DB) Downtime(ctx context.Context, since time.Time) ([]store.DowntimeInterval, error) {
	return queryAll(ctx, db.r, scanDowntime, downtimeSelect+` WHERE ended IS NULL OR ended > ? ORDER BY started, id`, nanos(since))
}

// AbortHeldJobs implements store.HealthStore.
func (db *DB) AbortHeldJobs(ctx context.Context, scope store.Scope, queuedBefore time.Time, reason string, at time.Time) ([]int64, error) {
	if _, err := store.ParseScope(string(scope)); err != nil {
		return nil, err
	}
	if strings.TrimSpace(reason) == "" {
		return nil, &store.InvalidError{Reason: "aborting held jobs needs a reason"}
	}
	where := `state IN ('queued', 'held') AND created_at <= ?`
	args := []any{nanos(queuedBefore)}
	switch scope.Kind() {
	case store.ScopeRelease:
		where += ` AND release = ?`
		args = append(args, scope.Name())
	case store.ScopeArch:
		where += ` AND arch = ?`
		args = append(args, scope.Name())
	case store.ScopeLabel:
		return nil, nil
	}
	at = db.clock(at)
	var ids []int64
	err := db.write(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT id FROM jobs WHERE `+where+` ORDER BY id`, args...)
		if err != nil {
			return err
		}
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return err
			}
			ids = append(ids, id)
		}
		if err := rows.Err(); err != nil {
			rows.Close()
			return err
		}
		if err := rows.Close(); err != nil {
			return err
		}
		for _, id := range ids {
			if _, err := tx.ExecContext(ctx, `UPDATE jobs SET state = 'done', verdict = ?, lease_expires = NULL,
				reason = ?, finished_at = ? WHERE id = ?`, dep8.VerdictError, reason, nanos(at), id); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return ids, nil
}
