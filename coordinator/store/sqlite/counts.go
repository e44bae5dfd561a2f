package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"time"

	"github.com/sparegrid/sparegrid/coordinator/store"
)

// JobCounts implements store.Store.
func (db *DB) JobCounts(ctx context.Context) ([]store.JobCount, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT lane, state, count(*) FROM jobs
		WHERE state IN ('queued', 'running', 'held') GROUP BY lane, state ORDER BY lane, state`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.JobCount
	for rows.Next() {
		var c store.JobCount
		if err := rows.Scan(&c.Lane, &c.State, &c.Jobs); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// AgentCounts implements store.Store.
func (db *DB) AgentCounts(ctx context.Context, onlineSince time.Time) (store.AgentCounts, error) {
	var c store.AgentCounts
	since := int64(math.MinInt64)
	if !onlineSince.IsZero() {
		since = nanos(onlineSince)
	}
	err := db.read(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT state, count(*) FROM agents GROUP BY state`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var state store.AgentState
			var n int
			if err := rows.Scan(&state, &n); err != nil {
				return err
			}
			switch state {
			case store.AgentPending:
				c.Pending = n
			case store.AgentApproved:
				c.Approved = n
			case store.AgentRejected:
				c.Rejected = n
			default:
				return fmt.Errorf("sqlite: agents in unknown state %q", state)
			}
		}
		if err := rows.Err(); err != nil {
			return err
		}
		return tx.QueryRowContext(ctx, `SELECT
			coalesce(sum(paused != ''), 0),
			coalesce(sum(last_seen IS NOT NULL AND last_seen >= ?), 0)
			FROM agents WHERE state = 'approved'`, since).Scan(&c.Paused, &c.Online)
	})
	if err != nil {
		return store.AgentCounts{}, err
	}
	return c, nil
}
