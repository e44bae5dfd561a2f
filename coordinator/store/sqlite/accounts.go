package sqlite

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"fmt"

	"github.com/sparegrid/sparegrid/coordinator/store"
)

const accountCols = `id, name, display_name, email, role, created_at`

func scanAccount(s scanner) (store.Account, error) {
	var a store.Account
	var created int64
	if err := s.Scan(&a.ID, &a.Name, &a.DisplayName, &a.Email, &a.Role, &created); err != nil {
		return store.Account{}, err
	}
	a.CreatedAt = fromNanos(created)
	return a, nil
}

// CreateAccount implements store.Store.
func (db *DB) CreateAccount(ctx context.Context, a store.Account) (store.Account, error) {
	if err := store.ValidateAccountName(a.Name); err != nil {
		return store.Account{}, err
	}
	if !a.Role.Valid() {
		return store.Account{}, fmt.Errorf("%w: role %q", store.ErrInvalid, a.Role)
	}
	var out store.Account
	err := db.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO accounts (name, display_name, email, role, created_at) VALUES (?, ?, ?, ?, ?)`,
			a.Name, a.DisplayName, a.Email, a.Role, nanos(db.clock(a.CreatedAt)))
		if isUnique(err) {
			return fmt.Errorf("%w: account %q", store.ErrExists, a.Name)
		}
		if err != nil {
			return err
		}
		id, err := res.LastInsertId()
		if err != nil {
			return err
		}
		out, err = scanAccount(tx.QueryRowContext(ctx, `SELECT `+accountCols+` FROM accounts WHERE id = ?`, id))
		return err
	})
	return out, err
}

// AccountByName implements store.Store.
func (db *DB) AccountByName(ctx context.Context, name string) (store.Account, error) {
	a, err := scanAccount(db.r.QueryRowContext(ctx, `SELECT `+accountCols+` FROM accounts WHERE name = ?`, name))
	return a, notFound(err, "account %q", name)
}

// ListAccounts implements store.Store.
func (db *DB) ListAccounts(ctx context.Context) ([]store.Account, error) {
	return queryAll(ctx, db.r, scanAccount, `SELECT `+accountCols+` FROM accounts ORDER BY id`)
}

// AddAPIToken implements store.Store.
func (db *DB) AddAPIToken(ctx context.Context, accountID int64, prefix string, hash []byte) error {
	if prefix == "" {
		return fmt.Errorf("%w: empty token prefix", store.ErrInvalid)
	}
	if len(hash) != sha256.Size {
		return fmt.Errorf("%w: token hash is %d bytes, want %d", store.ErrInvalid, len(hash), sha256.Size)
	}
	return db.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO api_tokens (account_id, prefix, hash, created_at) VALUES (?, ?, ?, ?)`,
			accountID, prefix, hash, db.stamp())
		switch {
		case isForeignKey(err):
			return fmt.Errorf("%w: account %d", store.ErrNotFound, accountID)
		case isUnique(err):
			return fmt.Errorf("%w: token hash", store.ErrExists)
		}
		return err
	})
}

// AccountByTokenHash implements store.Store.
func (db *DB) AccountByTokenHash(ctx context.Context, hash []byte) (store.Account, error) {
	var out store.Account
	err := db.write(ctx, func(tx *sql.Tx) error {
		var tokenID int64
		row := tx.QueryRowContext(ctx, `SELECT t.id, a.id, a.name, a.display_name, a.email, a.role, a.created_at
			FROM api_tokens t JOIN accounts a ON a.id = t.account_id WHERE t.hash = ?`, hash)
		var created int64
		err := row.Scan(&tokenID, &out.ID, &out.Name, &out.DisplayName, &out.Email, &out.Role, &created)
		if err != nil {
			return notFound(err, "token")
		}
		out.CreatedAt = fromNanos(created)
		_, err = tx.ExecContext(ctx, `UPDATE api_tokens SET last_used_at = ? WHERE id = ?`, db.stamp(), tokenID)
		return err
	})
	if err != nil {
		return store.Account{}, err
	}
	return out, nil
}
