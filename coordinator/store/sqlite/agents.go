package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/sparegrid/sparegrid/coordinator/store"
)

const agentSelect = `SELECT a.id, a.name, a.owner_id, o.name, a.public_key, a.state, a.claim_code,
	a.claimed_at, a.labels, a.capabilities, a.auto_approved, a.created_at, a.last_seen,
	a.decided_by, a.decided_at, a.paused, a.paused_at
	FROM agents a JOIN accounts o ON o.id = a.owner_id`

func scanAgent(s scanner) (store.Agent, error) {
	var a store.Agent
	var labels string
	var created int64
	var claimed, seen, decided, paused sql.NullInt64
	var caps []byte
	if err := s.Scan(&a.ID, &a.Name, &a.OwnerID, &a.Owner, &a.PublicKey, &a.State, &a.ClaimCode,
		&claimed, &labels, &caps, &a.AutoApproved, &created, &seen,
		&a.DecidedBy, &decided, &a.Paused, &paused); err != nil {
		return store.Agent{}, err
	}
	if err := json.Unmarshal([]byte(labels), &a.Labels); err != nil {
		return store.Agent{}, fmt.Errorf("agent %d labels: %w", a.ID, err)
	}
	if len(a.Labels) == 0 {
		a.Labels = nil
	}
	if len(caps) > 0 {
		a.Capabilities = json.RawMessage(caps)
	}
	a.CreatedAt = fromNanos(created)
	a.ClaimedAt = fromNull(claimed)
	a.LastSeen = fromNull(seen)
	a.DecidedAt = fromNull(decided)
	a.PausedAt = fromNull(paused)
	return a, nil
}

func getAgent(ctx context.Context, q querier, id int64) (store.Agent, error) {
	a, err := scanAgent(q.QueryRowContext(ctx, agentSelect+` WHERE a.id = ?`, id))
	return a, notFound(err, "agent %d", id)
}

// CreateAgent implements store.Store.
func (db *DB) CreateAgent(ctx context.Context, a store.Agent) (store.Agent, error) {
	switch {
	case a.Name == "":
		return store.Agent{}, fmt.Errorf("%w: empty agent name", store.ErrInvalid)
	case len(a.PublicKey) == 0:
		return store.Agent{}, fmt.Errorf("%w: agent %q has no public key", store.ErrInvalid, a.Name)
	case a.ClaimCode == "":
		return store.Agent{}, fmt.Errorf("%w: agent %q has no claim code", store.ErrInvalid, a.Name)
	case len(a.Capabilities) > 0 && !json.Valid(a.Capabilities):
		return store.Agent{}, fmt.Errorf("%w: agent %q capabilities are not JSON", store.ErrInvalid, a.Name)
	}
	created := db.clock(a.CreatedAt)
	var decidedAt *time.Time
	switch a.State {
	case "":
		a.State = store.AgentPending
	case store.AgentPending:
	case store.AgentApproved:
		if !a.AutoApproved {
			return store.Agent{}, fmt.Errorf("%w: only an auto-approved agent may be created approved", store.ErrInvalid)
		}
		decidedAt = &created
	default:
		return store.Agent{}, fmt.Errorf("%w: agent state %q", store.ErrInvalid, a.State)
	}
	labels, err := json.Marshal(nonNil(a.Labels))
	if err != nil {
		return store.Agent{}, err
	}
	var caps any
	if len(a.Capabilities) > 0 {
		caps = []byte(a.Capabilities)
	}
	var out store.Agent
	err = db.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO agents (name, owner_id, public_key, state, claim_code,
			labels, capabilities, auto_approved, created_at, decided_by, decided_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			a.Name, a.OwnerID, a.PublicKey, a.State, a.ClaimCode,
			string(labels), caps, a.AutoApproved, nanos(created), a.DecidedBy, nullNanos(decidedAt))
		switch {
		case isForeignKey(err):
			return fmt.Errorf("%w: owner account %d", store.ErrNotFound, a.OwnerID)
		case isUnique(err):
			return fmt.Errorf("%w: claim code", store.ErrExists)
		case err != nil:
			return err
		}
		id, err := res.LastInsertId()
		if err != nil {
			return err
		}
		out, err = getAgent(ctx, tx, id)
		return err
	})
	return out, err
}

// Agent implements store.Store.
func (db *DB) Agent(ctx context.Context, id int64) (store.Agent, error) {
	return getAgent(ctx, db.r, id)
}

// ListAgents implements store.Store.
func (db *DB) ListAgents(ctx context.Context) ([]store.Agent, error) {
	return queryAll(ctx, db.r, scanAgent, agentSelect+` ORDER BY a.id`)
}

// ClaimAgent implements store.Store.
func (db *DB) ClaimAgent(ctx context.Context, code string, accountID int64) (store.Agent, error) {
	var out store.Agent
	err := db.write(ctx, func(tx *sql.Tx) error {
		a, err := scanAgent(tx.QueryRowContext(ctx, agentSelect+` WHERE a.claim_code = ?`, code))
		if err != nil {
			return notFound(err, "claim code")
		}
		switch {
		case a.OwnerID != accountID:
			return fmt.Errorf("%w: agent %d belongs to another account", store.ErrForbidden, a.ID)
		case a.State != store.AgentPending:
			return fmt.Errorf("%w: agent %d is %s", store.ErrConflict, a.ID, a.State)
		case a.ClaimedAt != nil:
			return fmt.Errorf("%w: agent %d is already claimed", store.ErrConflict, a.ID)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE agents SET claimed_at = ? WHERE id = ?`, db.stamp(), a.ID); err != nil {
			return err
		}
		out, err = getAgent(ctx, tx, a.ID)
		return err
	})
	return out, err
}

// DecideAgent implements store.Store.
func (db *DB) DecideAgent(ctx context.Context, id int64, state store.AgentState, by string) (store.Agent, error) {
	if state != store.AgentApproved && state != store.AgentRejected {
		return store.Agent{}, fmt.Errorf("%w: cannot decide agent state %q", store.ErrInvalid, state)
	}
	if by == "" {
		return store.Agent{}, fmt.Errorf("%w: decision by nobody", store.ErrInvalid)
	}
	var out store.Agent
	err := db.write(ctx, func(tx *sql.Tx) error {
		a, err := getAgent(ctx, tx, id)
		if err != nil {
			return err
		}
		switch {
		case a.State != store.AgentPending:
			return fmt.Errorf("%w: agent %d is already %s", store.ErrConflict, id, a.State)
		case state == store.AgentApproved && a.ClaimedAt == nil && !a.AutoApproved:
			return fmt.Errorf("%w: agent %d", store.ErrNotClaimed, id)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE agents SET state = ?, decided_by = ?, decided_at = ? WHERE id = ?`,
			state, by, db.stamp(), id); err != nil {
			return err
		}
		out, err = getAgent(ctx, tx, id)
		return err
	})
	return out, err
}

// SeenAgent implements store.Store.
func (db *DB) SeenAgent(ctx context.Context, id int64, at time.Time, caps json.RawMessage) error {
	if len(caps) > 0 && !json.Valid(caps) {
		return fmt.Errorf("%w: agent %d capabilities are not JSON", store.ErrInvalid, id)
	}
	var c any
	if len(caps) > 0 {
		c = []byte(caps)
	}
	return db.updateAgent(ctx, id, `UPDATE agents SET last_seen = ?, capabilities = COALESCE(?, capabilities) WHERE id = ?`,
		nanos(db.clock(at)), c, id)
}

// updateAgent runs one UPDATE of agent id's row, and returns
// store.ErrNotFound when it changed no row.
func (db *DB) updateAgent(ctx context.Context, id int64, query string, args ...any) error {
	return db.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, query, args...)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("%w: agent %d", store.ErrNotFound, id)
		}
		return nil
	})
}

// PauseAgent implements store.Store.
func (db *DB) PauseAgent(ctx context.Context, id int64, reason string, at time.Time) error {
	var since any
	if reason != "" {
		since = nanos(db.clock(at))
	}
	return db.updateAgent(ctx, id, `UPDATE agents SET paused_at = CASE WHEN paused = ? THEN paused_at ELSE ? END,
		paused = ? WHERE id = ?`, reason, since, reason, id)
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// SetAgentLabels implements store.Store.
func (db *DB) SetAgentLabels(ctx context.Context, id int64, labels []string) (store.Agent, error) {
	labels, err := store.NormalizeAgentLabels(labels)
	if err != nil {
		return store.Agent{}, err
	}
	b, err := json.Marshal(nonNil(labels))
	if err != nil {
		return store.Agent{}, err
	}
	var out store.Agent
	err = db.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE agents SET labels = ? WHERE id = ?`, string(b), id)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("%w: agent %d", store.ErrNotFound, id)
		}
		out, err = getAgent(ctx, tx, id)
		return err
	})
	return out, err
}
