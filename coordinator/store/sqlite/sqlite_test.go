package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"testing"
	"testing/fstest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sparegrid/sparegrid/coordinator/store"
	"github.com/sparegrid/sparegrid/coordinator/store/storetest"
	"github.com/sparegrid/sparegrid/shared/dep8"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return NewTemp(t) })
}

// versions returns the rows of schema_migrations.
func versions(t *testing.T, db *DB) []int {
	t.Helper()
	rows, err := db.r.QueryContext(t.Context(), `SELECT version FROM schema_migrations ORDER BY version`)
	if err != nil {
		t.Fatalf("read schema_migrations: %v", err)
	}
	defer rows.Close()
	var vs []int
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			t.Fatalf("read schema_migrations: %v", err)
		}
		vs = append(vs, v)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("read schema_migrations: %v", err)
	}
	return vs
}

func TestMigrations(t *testing.T) {
	ms, err := embedded()
	if err != nil {
		t.Fatalf("embedded() = %v", err)
	}
	var want []int
	for _, m := range ms {
		want = append(want, m.version)
	}
	path := filepath.Join(t.TempDir(), "db")

	for _, name := range []string{"fresh file", "reopen is a no-op"} {
		t.Run(name, func(t *testing.T) {
			db, err := Open(t.Context(), path)
			if err != nil {
				t.Fatalf("Open(%s) = %v", path, err)
			}
			defer db.Close()
			if d := cmp.Diff(want, versions(t, db)); d != "" {
				t.Errorf("schema_migrations mismatch (-want +got):\n%s", d)
			}
			if err := db.Check(t.Context()); err != nil {
				t.Errorf("Check() = %v", err)
			}
		})
	}
}

func TestMigrationsAppendOnly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	v1 := fstest.MapFS{
		"m/0001_one.sql": {Data: []byte(`CREATE TABLE one (x INTEGER); INSERT INTO one VALUES (1);`)},
	}
	v2 := fstest.MapFS{
		"m/0001_one.sql": v1["m/0001_one.sql"],
		"m/0002_two.sql": {Data: []byte(`CREATE TABLE two (y INTEGER); INSERT INTO one VALUES (2);`)},
	}
	openWith := func(fsys fstest.MapFS) (*DB, error) {
		return open(t.Context(), path, func() ([]migration, error) { return loadMigrations(fsys, "m") })
	}

	steps := []struct {
		name     string
		fsys     fstest.MapFS
		versions []int
		ones     int
		err      error
	}{
		{"first", v1, []int{1}, 1, nil},
		{"again", v1, []int{1}, 1, nil},
		{"second added", v2, []int{1, 2}, 2, nil},
		{"again with both", v2, []int{1, 2}, 2, nil},
		{"older program", v1, nil, 0, store.ErrSchemaTooNew},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			db, err := openWith(st.fsys)
			if !errors.Is(err, st.err) {
				t.Fatalf("open = %v, want %v", err, st.err)
			}
			if err != nil {
				return
			}
			defer db.Close()
			if d := cmp.Diff(st.versions, versions(t, db)); d != "" {
				t.Errorf("schema_migrations mismatch (-want +got):\n%s", d)
			}
			var n int
			if err := db.r.QueryRowContext(t.Context(), `SELECT COUNT(*) FROM one`).Scan(&n); err != nil {
				t.Fatalf("count: %v", err)
			}
			if n != st.ones {
				t.Errorf("rows in one = %d, want %d (a migration ran twice or not at all)", n, st.ones)
			}
		})
	}
}

func TestMigrationFailureRollsBack(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	bad := fstest.MapFS{
		"m/0001_ok.sql":  {Data: []byte(`CREATE TABLE ok (x INTEGER);`)},
		"m/0002_bad.sql": {Data: []byte(`CREATE TABLE half (x INTEGER); THIS IS NOT SQL;`)},
	}
	_, err := open(t.Context(), path, func() ([]migration, error) { return loadMigrations(bad, "m") })
	if err == nil {
		t.Fatalf("open with a broken migration = nil, want an error")
	}
	raw, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatalf("sql.Open: %v", err)
	}
	defer raw.Close()
	var n int
	if err := raw.QueryRowContext(t.Context(), `SELECT COUNT(*) FROM sqlite_schema WHERE name = 'half'`).Scan(&n); err != nil {
		t.Fatalf("query: %v", err)
	}
	if n != 0 {
		t.Errorf("table of the failed migration exists, want it rolled back")
	}
	var v int
	if err := raw.QueryRowContext(t.Context(), `SELECT MAX(version) FROM schema_migrations`).Scan(&v); err != nil {
		t.Fatalf("query: %v", err)
	}
	if v != 1 {
		t.Errorf("schema version after failed migration 2 = %d, want 1", v)
	}
}

func TestLoadMigrations(t *testing.T) {
	tests := []struct {
		name    string
		fsys    fstest.MapFS
		want    []int
		wantErr bool
	}{
		{"in order", fstest.MapFS{"m/0001_a.sql": {}, "m/0002_b.sql": {}, "m/README": {}}, []int{1, 2}, false},
		{"gap", fstest.MapFS{"m/0001_a.sql": {}, "m/0003_c.sql": {}}, nil, true},
		{"duplicate", fstest.MapFS{"m/0001_a.sql": {}, "m/0001_b.sql": {}}, nil, true},
		{"not starting at one", fstest.MapFS{"m/0002_b.sql": {}}, nil, true},
		{"unnumbered", fstest.MapFS{"m/init.sql": {}}, nil, true},
		{"zero", fstest.MapFS{"m/0000_a.sql": {}}, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ms, err := loadMigrations(tt.fsys, "m")
			if gotErr := err != nil; gotErr != tt.wantErr {
				t.Fatalf("loadMigrations = %v, want error %v", err, tt.wantErr)
			}
			var got []int
			for _, m := range ms {
				got = append(got, m.version)
			}
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("loadMigrations versions mismatch (-want +got):\n%s", d)
			}
		})
	}
}

func TestSchemaTooNew(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	db, err := Open(t.Context(), path)
	if err != nil {
		t.Fatalf("Open = %v", err)
	}
	if _, err := db.w.ExecContext(t.Context(), `INSERT INTO schema_migrations (version, applied_at) VALUES (9999, 0)`); err != nil {
		t.Fatalf("insert future version: %v", err)
	}
	if err := db.Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}
	_, err = Open(t.Context(), path)
	if !errors.Is(err, store.ErrSchemaTooNew) {
		t.Errorf("Open(newer schema) = %v, want ErrSchemaTooNew", err)
	}
}

func TestPragmas(t *testing.T) {
	db := NewTemp(t)
	tests := []struct {
		name   string
		handle *sql.DB
		pragma string
		want   string
	}{
		{"writer journal", db.w, "journal_mode", "wal"},
		{"writer synchronous", db.w, "synchronous", "2"},
		{"writer foreign keys", db.w, "foreign_keys", "1"},
		{"writer busy timeout", db.w, "busy_timeout", "10000"},
		{"writer writable", db.w, "query_only", "0"},
		{"reader journal", db.r, "journal_mode", "wal"},
		{"reader busy timeout", db.r, "busy_timeout", "10000"},
		{"reader query only", db.r, "query_only", "1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got string
			if err := tt.handle.QueryRowContext(t.Context(), "PRAGMA "+tt.pragma).Scan(&got); err != nil {
				t.Fatalf("PRAGMA %s: %v", tt.pragma, err)
			}
			if got != tt.want {
				t.Errorf("PRAGMA %s = %q, want %q", tt.pragma, got, tt.want)
			}
		})
	}
	if _, err := db.r.ExecContext(t.Context(), `DELETE FROM accounts`); err == nil {
		t.Errorf("write through the reader pool succeeded, want it refused")
	}
}

// TestResultSurvivesReopen simulates a coordinator restart right after
// CompleteJob returned.
func TestResultSurvivesReopen(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "db")
	db, err := Open(ctx, path)
	if err != nil {
		t.Fatalf("Open = %v", err)
	}
	now := time.Date(2025, 6, 7, 8, 9, 10, 11, time.UTC)
	want := complete(t, db, now)
	// No Close: the next Open must see the result as committed, not
	// as a clean shutdown left it.
	t.Cleanup(func() { db.Close() })

	again, err := Open(ctx, path)
	if err != nil {
		t.Fatalf("Open again = %v", err)
	}
	defer again.Close()
	got, err := again.LatestResult(ctx, want.JobID)
	if err != nil {
		t.Fatalf("LatestResult(%d) after reopen = %v", want.JobID, err)
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("LatestResult after reopen mismatch (-want +got):\n%s", d)
	}
	j, err := again.Job(ctx, want.JobID)
	if err != nil {
		t.Fatalf("Job(%d) after reopen = %v", want.JobID, err)
	}
	if j.State != store.JobDone || j.Verdict != dep8.VerdictPass {
		t.Errorf("Job(%d) after reopen = %s/%s, want done/pass", want.JobID, j.State, j.Verdict)
	}
	if err := again.Check(ctx); err != nil {
		t.Errorf("Check() = %v", err)
	}
}

// complete runs one job to a pass result and returns the stored result.
func complete(t *testing.T, db *DB, now time.Time) store.Result {
	t.Helper()
	ctx := t.Context()
	owner, err := db.CreateAccount(ctx, store.Account{Name: "owner", Role: store.RoleVolunteer})
	if err != nil {
		t.Fatalf("CreateAccount = %v", err)
	}
	agent, err := db.CreateAgent(ctx, store.Agent{Name: "box", OwnerID: owner.ID, PublicKey: []byte("k"), ClaimCode: "C",
		State: store.AgentApproved, AutoApproved: true})
	if err != nil {
		t.Fatalf("CreateAgent = %v", err)
	}
	log := store.Blob{SHA256: "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", Size: 3}
	if err := db.AddBlob(ctx, log); err != nil {
		t.Fatalf("AddBlob = %v", err)
	}
	if _, err := db.CreateJob(ctx, store.Job{Package: "hello", Release: "unstable", Arch: "amd64"}); err != nil {
		t.Fatalf("CreateJob = %v", err)
	}
	j, err := db.LeaseJob(ctx, store.LeaseParams{AgentID: agent.ID, Arch: "amd64", Releases: []string{"unstable"}, TTL: time.Minute, Now: now, Nonce: "n"})
	if err != nil || j == nil {
		t.Fatalf("LeaseJob = %v, %v", j, err)
	}
	r := store.Result{
		JobID: j.ID, Attempt: j.Attempt, AgentID: agent.ID, Verdict: dep8.VerdictPass,
		Tests:     []dep8.Test{{Name: "smoke", Result: dep8.Pass}},
		Harness:   dep8.Harness{AgentVersion: "1", AutopkgtestVersion: "5", Backend: "overlay", ImageDigest: "d"},
		Envelope:  []byte(`{"payload":"x"}`),
		Blobs:     []store.BlobRef{{Name: "log", SHA256: log.SHA256, Size: log.Size}},
		Transport: "quic",
	}
	if _, err := db.CompleteJob(ctx, r, now); err != nil {
		t.Fatalf("CompleteJob = %v", err)
	}
	r.CreatedAt = now
	return r
}

func TestOpenCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if db, err := Open(ctx, filepath.Join(t.TempDir(), "db")); err == nil {
		db.Close()
		t.Errorf("Open(cancelled ctx) = nil error, want one")
	}
}

// TestSchedulingMigration checks that migration 0005 gives the jobs of an
// older database the scheduling fields of a job created without them.
func TestSchedulingMigration(t *testing.T) {
	const before = 4 // the last migration without scheduling
	ms, err := embedded()
	if err != nil {
		t.Fatalf("embedded() = %v", err)
	}
	if len(ms) <= before || ms[before].name != "0005_scheduling.sql" {
		t.Fatalf("migration %d is not 0005_scheduling.sql", before+1)
	}
	created := time.Date(2025, 6, 7, 8, 9, 10, 11, time.UTC)
	finished := created.Add(time.Hour)
	tests := []struct {
		name   string
		insert string
		args   []any
		want   store.Job
	}{
		{
			name:   "queued",
			insert: `INSERT INTO jobs (package, version, release, arch, triggers, state, created_at) VALUES (?, ?, ?, ?, ?, 'queued', ?)`,
			args:   []any{"hello", "2.10-3", "unstable", "amd64", `["glibc/2.41-1"]`, nanos(created)},
			want: store.Job{Package: "hello", Version: "2.10-3", Release: "unstable", Arch: "amd64", Triggers: []string{"glibc/2.41-1"},
				State: store.JobQueued, MaxAttempts: store.DefaultMaxAttempts, CreatedAt: created,
				Priority: store.DefaultPriority, Lane: store.LaneDefault},
		},
		{
			name: "done",
			insert: `INSERT INTO jobs (package, release, arch, state, verdict, attempt, max_attempts, forced, created_at, finished_at)
				VALUES (?, ?, ?, 'done', 'fail', 1, 2, 1, ?, ?)`,
			args: []any{"bash", "trixie", "arm64", nanos(created), nanos(finished)},
			want: store.Job{Package: "bash", Release: "trixie", Arch: "arm64", State: store.JobDone, Verdict: dep8.VerdictFail,
				Attempt: 1, MaxAttempts: 2, Forced: true, CreatedAt: created, FinishedAt: &finished,
				Priority: store.DefaultPriority, Lane: store.LaneDefault},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := t.Context()
			path := filepath.Join(t.TempDir(), "db")
			old, err := open(ctx, path, func() ([]migration, error) { return ms[:before], nil })
			if err != nil {
				t.Fatalf("open(migrations 1 to %d) = %v", before, err)
			}
			res, err := old.w.ExecContext(ctx, tt.insert, tt.args...)
			if err != nil {
				t.Fatalf("insert job before migration %d: %v", before+1, err)
			}
			id, err := res.LastInsertId()
			if err != nil {
				t.Fatalf("LastInsertId: %v", err)
			}
			if err := old.Close(); err != nil {
				t.Fatalf("Close = %v", err)
			}

			db, err := Open(ctx, path)
			if err != nil {
				t.Fatalf("Open(schema %d) = %v", before, err)
			}
			defer db.Close()
			if got := versions(t, db); len(got) != len(ms) {
				t.Errorf("schema_migrations after Open = %v, want 1 to %d", got, len(ms))
			}
			got, err := db.Job(ctx, id)
			if err != nil {
				t.Fatalf("Job(%d) = %v", id, err)
			}
			want := tt.want
			want.ID = id
			if d := cmp.Diff(want, got); d != "" {
				t.Errorf("Job(%d) after migration mismatch (-want +got):\n%s", id, d)
			}
		})
	}
}
