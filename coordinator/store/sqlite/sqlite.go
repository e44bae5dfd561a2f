// Package sqlite implements store.Store on one SQLite file through
// modernc.org/sqlite (pure Go, no cgo).
//
// It owns the schema and its numbered, append-only migrations, the
// connection settings (WAL, busy timeout, immediate write transactions,
// synchronous=FULL so a committed result survives a crash) and the mapping of
// SQLite errors to the store's sentinels. Every write goes through one writer
// connection; reads use a separate pool of query-only connections.
//
// It must not hold blob bytes, know about the wire protocol, or apply a
// migration out of order; a database whose schema is newer than the
// migrations compiled in is refused rather than touched.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"runtime"
	"time"

	msqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/sparegrid/sparegrid/coordinator/store"
)

var _ store.Store = (*DB)(nil)

// DB is a store.Store backed by one SQLite file.
type DB struct {
	w   *sql.DB // the one writer connection
	r   *sql.DB // query-only readers
	now func() time.Time
}

// Open opens the database at path, creating it when missing, and applies
// any migrations it lacks. It returns an error wrapping
// store.ErrSchemaTooNew when the file was migrated by a newer program.
func Open(ctx context.Context, path string) (*DB, error) {
	return open(ctx, path, embedded)
}

func open(ctx context.Context, path string, ms func() ([]migration, error)) (*DB, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	migrations, err := ms()
	if err != nil {
		return nil, err
	}
	db := &DB{now: time.Now}

	db.w, err = sql.Open("sqlite", dsn(abs, false))
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	db.w.SetMaxOpenConns(1)
	db.w.SetMaxIdleConns(1)
	db.w.SetConnMaxLifetime(0)
	db.w.SetConnMaxIdleTime(0)
	if err := db.w.PingContext(ctx); err != nil {
		db.w.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	if err := migrate(ctx, db.w, migrations, db.now); err != nil {
		db.w.Close()
		return nil, fmt.Errorf("sqlite: %s: %w", path, err)
	}

	db.r, err = sql.Open("sqlite", dsn(abs, true))
	if err != nil {
		db.w.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	readers := max(4, runtime.GOMAXPROCS(0))
	db.r.SetMaxOpenConns(readers)
	db.r.SetMaxIdleConns(readers)
	if err := db.r.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	return db, nil
}

// dsn returns the data source name for the file at abs. busy_timeout comes
// first so that no other pragma can fail with SQLITE_BUSY.
func dsn(abs string, readOnly bool) string {
	q := "_pragma=busy_timeout(10000)"
	if readOnly {
		q += "&_pragma=synchronous(FULL)&_pragma=foreign_keys(1)&_pragma=query_only(1)"
	} else {
		q += "&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=foreign_keys(1)&_txlock=immediate"
	}
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(abs), RawQuery: q}
	return u.String()
}

// Close closes the database. Calls in flight may fail.
func (db *DB) Close() error {
	var errs []error
	if db.r != nil {
		errs = append(errs, db.r.Close())
	}
	errs = append(errs, db.w.Close())
	return errors.Join(errs...)
}

// Check runs SQLite's integrity and foreign key checks and reports the
// first problem they find.
func (db *DB) Check(ctx context.Context) error {
	var res string
	if err := db.r.QueryRowContext(ctx, `PRAGMA integrity_check`).Scan(&res); err != nil {
		return fmt.Errorf("sqlite: integrity check: %w", err)
	}
	if res != "ok" {
		return fmt.Errorf("sqlite: integrity check: %s", res)
	}
	rows, err := db.r.QueryContext(ctx, `PRAGMA foreign_key_check`)
	if err != nil {
		return fmt.Errorf("sqlite: foreign key check: %w", err)
	}
	defer rows.Close()
	if rows.Next() {
		var table, parent string
		var rowid sql.NullInt64
		var fk int
		if err := rows.Scan(&table, &rowid, &parent, &fk); err != nil {
			return fmt.Errorf("sqlite: foreign key check: %w", err)
		}
		return fmt.Errorf("sqlite: foreign key check: %s row %d names a missing %s", table, rowid.Int64, parent)
	}
	return rows.Err()
}

// querier is what *sql.DB and *sql.Tx have in common.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// scanner is what *sql.Row and *sql.Rows have in common.
type scanner interface {
	Scan(dest ...any) error
}

// write runs fn in one immediate transaction on the writer connection and
// commits when fn returns nil.
func (db *DB) write(ctx context.Context, fn func(tx *sql.Tx) error) error {
	return inTx(ctx, db.w, fn)
}

// read runs fn in one read transaction, so that it sees one snapshot.
func (db *DB) read(ctx context.Context, fn func(tx *sql.Tx) error) error {
	return inTx(ctx, db.r, fn)
}

func inTx(ctx context.Context, d *sql.DB, fn func(tx *sql.Tx) error) error {
	tx, err := d.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		if rerr := tx.Rollback(); rerr != nil && !errors.Is(rerr, sql.ErrTxDone) {
			return errors.Join(err, rerr)
		}
		return err
	}
	return tx.Commit()
}

// clock returns t, or the store's clock when t is zero.
func (db *DB) clock(t time.Time) time.Time {
	if t.IsZero() {
		return db.now().UTC()
	}
	return t.UTC()
}

// stamp returns the store's clock as stored.
func (db *DB) stamp() int64 { return db.now().UnixNano() }

func nanos(t time.Time) int64 { return t.UnixNano() }

func nullNanos(t *time.Time) any {
	if t == nil {
		return nil
	}
	return t.UnixNano()
}

func fromNanos(n int64) time.Time { return time.Unix(0, n).UTC() }

func fromNull(n sql.NullInt64) *time.Time {
	if !n.Valid {
		return nil
	}
	t := fromNanos(n.Int64)
	return &t
}

// sqliteCode returns the extended result code of a SQLite error, or 0.
func sqliteCode(err error) int {
	var se *msqlite.Error
	if errors.As(err, &se) {
		return se.Code()
	}
	return 0
}

func isUnique(err error) bool {
	c := sqliteCode(err)
	return c == sqlite3.SQLITE_CONSTRAINT_UNIQUE || c == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
}

func isForeignKey(err error) bool {
	return sqliteCode(err) == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY
}

// notFound turns sql.ErrNoRows into store.ErrNotFound for what.
func notFound(err error, format string, args ...any) error {
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%w: "+format, append([]any{store.ErrNotFound}, args...)...)
	}
	return err
}

// queryAll runs query on q and scans every row with scan, in order.
func queryAll[T any](ctx context.Context, q querier, scan func(scanner) (T, error), query string, args ...any) ([]T, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}
