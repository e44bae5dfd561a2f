package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"

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
	rows, err := tx.QueryContext(ctx, `SELECT id, version, release, arch, triggers, state, verdict, finished_at
		FROM jobs WHERE id IN (`+packageJobs+`) ORDER BY id`, pkg, store.PackageRunsLimit)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	var runs []store.PackageRun
	var active []store.ActiveJob
	for rows.Next() {
		var id int64
		var version, release, arch, triggers string
		var state store.JobState
		var verdict dep8.Verdict
		var finished sql.NullInt64
		if err := rows.Scan(&id, &version, &release, &arch, &triggers, &state, &verdict, &finished); err != nil {
			return nil, nil, err
		}
		var ts []string
		if err := json.Unmarshal([]byte(triggers), &ts); err != nil {
			return nil, nil, fmt.Errorf("job %d triggers: %w", id, err)
		}
		if len(ts) == 0 {
			ts = nil
		}
		if state != store.JobDone {
			active = append(active, store.ActiveJob{JobID: id, Package: pkg, Version: version, Release: release,
				Arch: arch, Triggers: ts, Running: state == store.JobRunning})
			continue
		}
		r := store.PackageRun{JobID: id, Package: pkg, Version: version, Release: release, Arch: arch,
			Triggers: ts, Verdict: verdict}
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
	byJob := make(map[int64]*store.PackageRun, len(runs))
	for i := range runs {
		byJob[runs[i].JobID] = &runs[i]
	}
	const latest = `SELECT r.id, r.job_id FROM results r
		WHERE r.job_id IN (` + packageJobs + `)
		AND r.attempt = (SELECT MAX(attempt) FROM results WHERE job_id = r.job_id)`
	rows, err := tx.QueryContext(ctx, `SELECT l.id, l.job_id, r.agent_id,
		r.agent_version, r.autopkgtest_version, r.backend, r.image_digest
		FROM (`+latest+`) l JOIN results r ON r.id = l.id`, pkg, store.PackageRunsLimit)
	if err != nil {
		return err
	}
	byResult := map[int64]*store.PackageRun{}
	for rows.Next() {
		var id, jobID, agent int64
		var h dep8.Harness
		if err := rows.Scan(&id, &jobID, &agent, &h.AgentVersion, &h.AutopkgtestVersion, &h.Backend, &h.ImageDigest); err != nil {
			rows.Close()
			return err
		}
		if r := byJob[jobID]; r != nil {
			r.AgentID, r.Harness = agent, h
			byResult[id] = r
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	trows, err := tx.QueryContext(ctx, `SELECT t.result_id, t.name, t.result, t.detail FROM result_tests t
		WHERE t.result_id IN (SELECT r.id FROM results r WHERE r.job_id IN (`+packageJobs+`))
		ORDER BY t.result_id, t.seq`, pkg, store.PackageRunsLimit)
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
		if r := byResult[id]; r != nil {
			r.Tests = append(r.Tests, t)
		}
	}
	return trows.Err()
}
