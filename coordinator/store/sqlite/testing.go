package sqlite

import (
	"path/filepath"
	"testing"
)

// NewTemp opens a migrated database in a temporary directory that is
// closed and removed when the test ends. It is for tests only.
func NewTemp(t testing.TB) *DB {
	t.Helper()
	db, err := Open(t.Context(), filepath.Join(t.TempDir(), "sparegrid.db"))
	if err != nil {
		t.Fatalf("sqlite.Open: %v", err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("sqlite.Close: %v", err)
		}
	})
	return db
}
