package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/sparegrid/sparegrid/coordinator/store"
	"github.com/sparegrid/sparegrid/shared/dep8"
)

// packageJobs selects the newest jobs of a package that PackageRuns reads;
// it takes the package and the limit.
const packageJobs = `SELECT id FROM jobs WHERE package = ? AND state IN ('done', 'queued', 'held', 'running')
	ORDER BY id DESC LIMIT ?`

// PackageRuns implements store.Store.
func (db *DB) PackageRuns(ctx context.Context, pkg string) ([]store.PackageRun, []store.ActiveJob, error) {
	var runs []store.PackageRun
	var active []store.ActiveJob
	err := db.read(ctx, func(tx *sql.Tx) error {
		var err error
		runs, active, err = readPackageJobs(ctx, tx, pkg)
		if err != nil || len(runs) == 0 {
			return err
		}
		return addLatestResults(ctx, tx, pkg, runs)
	})
	if err != nil {
		return nil, nil, err
	}
	return runs, active, nil
}

func readPackageJobs(ctx context.Context, tx *sql.Tx, pkg string) ([]store.PackageRun, []store.ActiveJob, error) {
	rows, err := tx.QueryContext(ctx, `SELECT id, version, release, arch, triggers, state, verdict, finished_at,
		reused_from, tests, needs, avoid_agents
		FROM jobs WHERE id IN (`+packageJobs+`) ORDER BY id`, pkg, store.PackageRunsLimit)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	var runs []store.PackageRun
	var active []store.ActiveJob
	for rows.Next() {
		var id int64
		var version, release, arch, triggers, tests, needs, avoid string
		var state store.JobState
		var verdict dep8.Verdict
		var finished, reused sql.NullInt64
		if err := rows.Scan(&id, &version, &release, &arch, &triggers, &state, &verdict, &finished,
			&reused, &tests, &needs, &avoid); err != nil {
			return nil, nil, err
		}
		var ts, names []string
		var n store.JobNeeds
		var avoidIDs []int64
		for _, f := range []struct {
			name, text string
			dst        any
		}{{"triggers", triggers, &ts}, {"tests", tests, &names}, {"needs", needs, &n}, {"avoid_agents", avoid, &avoidIDs}} {
			if err := json.Unmarshal([]byte(f.text), f.dst); err != nil {
				return nil, nil, fmt.Errorf("job %d %s: %w", id, f.name, err)
			}
		}
		if len(ts) == 0 {
			ts = nil
		}
		if len(names) == 0 {
			names = nil
		}
		if len(avoidIDs) == 0 {
			avoidIDs = nil
		}
		if state != store.JobDone {
			active = append(active, store.ActiveJob{JobID: id, Package: pkg, Version: version, Release: release,
				Arch: arch, Triggers: ts, Running: state == store.JobRunning, Tests: names, Needs: n, AvoidAgents: avoidIDs})
			continue
		}
		r := store.PackageRun{JobID: id, Package: pkg, Version: version, Release: release, Arch: arch,
			Triggers: ts, Verdict: verdict, ReusedFrom: reused.Int64, TestNames: names}
		if t := fromNull(finished); t != nil {
			r.Finished = *t
		}
		runs = append(runs, r)
	}
	return runs, active, rows.Err()
}

// addLatestResults fills the agent, harness and tests of each run from its
// latest result.
func addLatestResults(ctx context.Context, tx *sql.Tx, pkg string, runs []store.PackageRun) error {
	// A reused run takes the results of the job it reused.
	byJob := make(map[int64][]*store.PackageRun, len(runs))
	for i := range runs {
		origin := runs[i].JobID
		if runs[i].ReusedFrom != 0 {
			origin = runs[i].ReusedFrom
		}
		byJob[origin] = append(byJob[origin], &runs[i])
	}
	return fillLatestResults(ctx, tx, byJob, `SELECT COALESCE(reused_from, id) FROM jobs WHERE id IN (`+packageJobs+`)`,
		pkg, store.PackageRunsLimit)
}

// fillLatestResults fills the agent, harness and tests of the runs byJob
// maps each job id to from the latest result of that job; jobs selects the
// job ids to read, with args.
func fillLatestResults(ctx context.Context, tx *sql.Tx, byJob map[int64][]*store.PackageRun, jobs string, args ...any) error {
	latest := `SELECT r.id, r.job_id FROM results r
		WHERE r.job_id IN (` + jobs + `)
		AND r.attempt = (SELECT MAX(attempt) FROM results WHERE job_id = r.job_id)`
	rows, err := tx.QueryContext(ctx, `SELECT l.id, l.job_id, r.agent_id,
		r.agent_version, r.autopkgtest_version, r.backend, r.image_digest
		FROM (`+latest+`) l JOIN results r ON r.id = l.id`, args...)
	if err != nil {
		return err
	}
	byResult := map[int64][]*store.PackageRun{}
	for rows.Next() {
		var id, jobID, agent int64
		var h dep8.Harness
		if err := rows.Scan(&id, &jobID, &agent, &h.AgentVersion, &h.AutopkgtestVersion, &h.Backend, &h.ImageDigest); err != nil {
			rows.Close()
			return err
		}
		for _, r := range byJob[jobID] {
			r.AgentID, r.Harness = agent, h
		}
		byResult[id] = byJob[jobID]
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	trows, err := tx.QueryContext(ctx, `SELECT t.result_id, t.name, t.result, t.detail FROM result_tests t
		WHERE t.result_id IN (SELECT r.id FROM results r WHERE r.job_id IN (`+jobs+`))
		ORDER BY t.result_id, t.seq`, args...)
	if err != nil {
		return err
	}
	defer trows.Close()
	for trows.Next() {
		var id int64
		var t dep8.Test
		if err := trows.Scan(&id, &t.Name, &t.Result, &t.Detail); err != nil {
			return err
		}
		for _, r := range byResult[id] {
			r.Tests = append(r.Tests, t)
		}
	}
	return trows.Err()
}

// ReuseCandidates implements store.Store.
func (db *DB) ReuseCandidates(ctx context.Context, q store.ReuseQuery) ([]store.PackageRun, error) {
	limit := q.Limit
	if limit <= 0 {
		limit = 20
	}
	var out []store.PackageRun
	err := db.read(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT id, triggers, tests, verdict, finished_at FROM jobs
			WHERE package = ? AND release = ? AND arch = ? AND version = ? AND state = 'done'
			AND verdict IN ('pass', 'fail', 'neutral') AND reused_from IS NULL
			ORDER BY id DESC`, q.Package, q.Release, q.Arch, q.Version)
		if err != nil {
			return err
		}
		wantTriggers, wantTests := sortedSet(q.Triggers), sortedSet(q.Tests)
		for rows.Next() && len(out) < limit {
			var id int64
			var triggers, tests string
			var verdict dep8.Verdict
			var finished sql.NullInt64
			if err := rows.Scan(&id, &triggers, &tests, &verdict, &finished); err != nil {
				rows.Close()
				return err
			}
			var ts, names []string
			if json.Unmarshal([]byte(triggers), &ts) != nil || json.Unmarshal([]byte(tests), &names) != nil {
				continue
			}
			if !slices.Equal(sortedSet(ts), wantTriggers) || !slices.Equal(sortedSet(names), wantTests) {
				continue
			}
			r := store.PackageRun{JobID: id, Package: q.Package, Version: q.Version, Release: q.Release, Arch: q.Arch,
				Triggers: ts, Verdict: verdict, TestNames: names}
			if len(r.Triggers) == 0 {
				r.Triggers = nil
			}
			if len(r.TestNames) == 0 {
				r.TestNames = nil
			}
			if t := fromNull(finished); t != nil {
				r.Finished = *t
			}
			out = append(out, r)
		}
		rows.Close()
		if err := rows.Err(); err != nil || len(out) == 0 {
			return err
		}
		byJob := make(map[int64][]*store.PackageRun, len(out))
		ids := make([]string, 0, len(out))
		for i := range out {
			byJob[out[i].JobID] = []*store.PackageRun{&out[i]}
			ids = append(ids, strconv.FormatInt(out[i].JobID, 10))
		}
		return fillLatestResults(ctx, tx, byJob, strings.Join(ids, ","))
	})
	return out, err
}

// sortedSet returns s sorted without duplicates, nil when empty.
func sortedSet(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	out := slices.Clone(s)
	slices.Sort(out)
	return slices.Compact(out)
}

// LatestHarness implements store.Store.
func (db *DB) LatestHarness(ctx context.Context, release, arch string) (dep8.Harness, error) {
	var h dep8.Harness
	err := db.r.QueryRowContext(ctx, `SELECT r.agent_version, r.autopkgtest_version, r.backend, r.image_digest
		FROM results r JOIN jobs j ON j.id = r.job_id
		WHERE j.release = ? AND j.arch = ? AND r.verdict != 'tmpfail'
		ORDER BY r.id DESC LIMIT 1`, release, arch).
		Scan(&h.AgentVersion, &h.AutopkgtestVersion, &h.Backend, &h.ImageDigest)
	return h, notFound(err, "result on %s/%s", release, arch)
}

// TargetResults implements store.Store.
func (db *DB) TargetResults(ctx context.Context) ([]store.TargetResult, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT package, release, arch, MAX(finished_at) FROM jobs
		WHERE state = 'done' AND triggers = '[]' AND finished_at IS NOT NULL
		AND verdict IN ('pass', 'fail', 'neutral') AND reused_from IS NULL
		GROUP BY package, release, arch ORDER BY package, release, arch`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.TargetResult
	for rows.Next() {
		var t store.TargetResult
		var finished int64
		if err := rows.Scan(&t.Package, &t.Release, &t.Arch, &finished); err != nil {
			return nil, err
		}
		t.Finished = fromNanos(finished)
		out = append(out, t)
	}
	return out, rows.Err()
}
