package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/sparegrid/sparegrid/coordinator/store"
)

const blockRuleSelect = `SELECT id, package, version, release, arch, test, agent_id, label,
	reason, created_by, created_at, expires_at FROM block_rules`

func scanBlockRule(s scanner) (store.BlockRule, error) {
	var r store.BlockRule
	var agent, expires sql.NullInt64
	var created int64
	if err := s.Scan(&r.ID, &r.Package, &r.Version, &r.Release, &r.Arch, &r.Test, &agent, &r.Label,
		&r.Reason, &r.CreatedBy, &created, &expires); err != nil {
		return store.BlockRule{}, err
	}
	r.AgentID = agent.Int64
	r.CreatedAt = fromNanos(created)
	r.ExpiresAt = fromNull(expires)
	return r, nil
}

// AddBlockRule implements store.Store.
func (db *DB) AddBlockRule(ctx context.Context, r store.BlockRule) (store.BlockRule, error) {
	if err := r.Validate(); err != nil {
		return store.BlockRule{}, err
	}
	created := db.clock(r.CreatedAt)
	if r.ExpiresAt != nil && !r.ExpiresAt.After(created) {
		return store.BlockRule{}, &store.InvalidError{Reason: fmt.Sprintf("the rule would expire at %s, not after it is made (%s)",
			r.ExpiresAt.UTC().Format(time.RFC3339), created.Format(time.RFC3339))}
	}
	var agent any
	if r.AgentID != 0 {
		agent = r.AgentID
	}
	var out store.BlockRule
	err := db.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO block_rules (package, version, release, arch, test,
			agent_id, label, reason, created_by, created_at, expires_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			r.Package, r.Version, r.Release, r.Arch, r.Test, agent, r.Label, r.Reason, r.CreatedBy,
			nanos(created), nullNanos(r.ExpiresAt))
		switch {
		case isForeignKey(err):
			return fmt.Errorf("%w: agent %d", store.ErrNotFound, r.AgentID)
		case err != nil:
			return err
		}
		id, err := res.LastInsertId()
		if err != nil {
			return err
		}
		out, err = scanBlockRule(tx.QueryRowContext(ctx, blockRuleSelect+` WHERE id = ?`, id))
		return err
	})
	return out, err
}

// BlockRules implements store.Store.
func (db *DB) BlockRules(ctx context.Context, now time.Time, all bool) ([]store.BlockRule, error) {
	q, args := blockRuleSelect, []any{}
	if !all {
		q += ` WHERE expires_at IS NULL OR expires_at > ?`
		args = append(args, nanos(db.clock(now)))
	}
	return queryAll(ctx, db.r, scanBlockRule, q+` ORDER BY id`, args...)
}

// RemoveBlockRule implements store.Store.
func (db *DB) RemoveBlockRule(ctx context.Context, id int64) error {
	return db.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM block_rules WHERE id = ?`, id)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("%w: blocklist rule %d", store.ErrNotFound, id)
		}
		return nil
	})
}
