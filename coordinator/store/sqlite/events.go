package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"

	"github.com/sparegrid/sparegrid/coordinator/store"
)

const eventSelect = `SELECT id, type, source, version, artifact_url, build_id, metadata,
	producer, received, rules, requests FROM events`

func scanEvent(s scanner) (store.Event, error) {
	var e store.Event
	var meta, rules, requests string
	var received int64
	if err := s.Scan(&e.ID, &e.Type, &e.Source, &e.Version, &e.ArtifactURL, &e.BuildID, &meta,
		&e.Producer, &received, &rules, &requests); err != nil {
		return store.Event{}, err
	}
	e.Received = fromNanos(received)
	for _, f := range []struct {
		name string
		data string
		v    any
	}{{"metadata", meta, &e.Metadata}, {"rules", rules, &e.Rules}, {"requests", requests, &e.Requests}} {
		if err := json.Unmarshal([]byte(f.data), f.v); err != nil {
			return store.Event{}, fmt.Errorf("event %d %s: %w", e.ID, f.name, err)
		}
	}
	if len(e.Metadata) == 0 {
		e.Metadata = nil
	}
	if len(e.Rules) == 0 {
		e.Rules = nil
	}
	if len(e.Requests) == 0 {
		e.Requests = nil
	}
	return e, nil
}

// AddEvent implements store.Store.
func (db *DB) AddEvent(ctx context.Context, e store.Event) (store.Event, error) {
	if err := store.ValidateNewEvent(e); err != nil {
		return store.Event{}, err
	}
	meta := e.Metadata
	if meta == nil {
		meta = map[string]string{}
	}
	mj, err := json.Marshal(meta)
	if err != nil {
		return store.Event{}, err
	}
	var out store.Event
	err = db.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO events (type, source, version, artifact_url, build_id,
			metadata, producer, received) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			e.Type, e.Source, e.Version, e.ArtifactURL, e.BuildID, string(mj), e.Producer, nanos(db.clock(e.Received)))
		if err != nil {
			return err
		}
		id, err := res.LastInsertId()
		if err != nil {
			return err
		}
		out, err = scanEvent(tx.QueryRowContext(ctx, eventSelect+` WHERE id = ?`, id))
		return err
	})
	return out, err
}

// SetEventExpansion implements store.Store.
func (db *DB) SetEventExpansion(ctx context.Context, id int64, rules []store.EventRule, requests []store.EventRequest) (store.Event, error) {
	if rules == nil {
		rules = []store.EventRule{}
	}
	if requests == nil {
		requests = []store.EventRequest{}
	}
	rj, err := json.Marshal(rules)
	if err != nil {
		return store.Event{}, err
	}
	qj, err := json.Marshal(requests)
	if err != nil {
		return store.Event{}, err
	}
	var out store.Event
	err = db.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE events SET rules = ?, requests = ? WHERE id = ?`, string(rj), string(qj), id)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return fmt.Errorf("%w: event %d", store.ErrNotFound, id)
		}
		out, err = scanEvent(tx.QueryRowContext(ctx, eventSelect+` WHERE id = ?`, id))
		return err
	})
	return out, err
}

// Event implements store.Store.
func (db *DB) Event(ctx context.Context, id int64) (store.Event, error) {
	e, err := scanEvent(db.r.QueryRowContext(ctx, eventSelect+` WHERE id = ?`, id))
	if err != nil {
		return store.Event{}, notFound(err, "event %d", id)
	}
	return e, nil
}

// ListEvents implements store.Store.
func (db *DB) ListEvents(ctx context.Context, limit int) ([]store.Event, error) {
	if limit <= 0 {
		limit = store.DefaultEventLimit
	}
	return queryAll(ctx, db.r, scanEvent, eventSelect+` ORDER BY id DESC LIMIT ?`, limit)
}
