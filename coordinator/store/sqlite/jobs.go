package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/sparegrid/sparegrid/coordinator/store"
	"github.com/sparegrid/sparegrid/shared/dep8"
)

// AddBlob implements store.Store.
func (db *DB) AddBlob(ctx context.Context, b store.Blob) error {
	if !store.ValidSHA256(b.SHA256) {
		return fmt.Errorf("%w: blob sum %q", store.ErrInvalid, b.SHA256)
	}
	if b.Size < 0 {
		return fmt.Errorf("%w: blob %s has size %d", store.ErrInvalid, b.SHA256, b.Size)
	}
	return db.write(ctx, func(tx *sql.Tx) error {
		var size int64
		err := tx.QueryRowContext(ctx, `SELECT size FROM blobs WHERE sha256 = ?`, b.SHA256).Scan(&size)
		switch {
		case err == nil && size != b.Size:
			return fmt.Errorf("%w: blob %s is recorded with size %d, not %d", store.ErrConflict, b.SHA256, size, b.Size)
		case err == nil:
			return nil
		case !errors.Is(err, sql.ErrNoRows):
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO blobs (sha256, size, created_at) VALUES (?, ?, ?)`,
			b.SHA256, b.Size, nanos(db.clock(b.CreatedAt)))
		return err
	})
}

// Blob implements store.Store.
func (db *DB) Blob(ctx context.Context, sum string) (store.Blob, error) {
	var b store.Blob
	var created int64
	err := db.r.QueryRowContext(ctx, `SELECT sha256, size, created_at FROM blobs WHERE sha256 = ?`, sum).
		Scan(&b.SHA256, &b.Size, &created)
	if err != nil {
		return store.Blob{}, notFound(err, "blob %s", sum)
	}
	b.CreatedAt = fromNanos(created)
	return b, nil
}

// checkBlob returns store.ErrUnknownBlob unless a blob with sum and size is
// recorded.
func checkBlob(ctx context.Context, q querier, sum string, size int64) error {
	var got int64
	err := q.QueryRowContext(ctx, `SELECT size FROM blobs WHERE sha256 = ?`, sum).Scan(&got)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("%w: %s", store.ErrUnknownBlob, sum)
	case err != nil:
		return err
	case got != size:
		return fmt.Errorf("%w: blob %s has size %d, not %d", store.ErrInvalid, sum, got, size)
	}
	return nil
}

const jobSelect = `SELECT id, package, version, release, arch, triggers,
	source_sha256, source_size, source_kind, source_entry,
	state, verdict, attempt, max_attempts, agent_id, nonce, lease_expires,
	stage, reason, transport, forced, submitted_by, created_at, started_at, finished_at,
	priority, lane, reused_from, tests, needs, avoid_agents, apt_sources
	FROM jobs`

func scanJob(s scanner) (store.Job, error) {
	var j store.Job
	var triggers, tests, needs, avoid, apt string
	var srcSum, srcKind, srcEntry sql.NullString
	var srcSize, agent, lease, started, finished, reused sql.NullInt64
	var created int64
	if err := s.Scan(&j.ID, &j.Package, &j.Version, &j.Release, &j.Arch, &triggers,
		&srcSum, &srcSize, &srcKind, &srcEntry,
		&j.State, &j.Verdict, &j.Attempt, &j.MaxAttempts, &agent, &j.Nonce, &lease,
		&j.Stage, &j.Reason, &j.Transport, &j.Forced, &j.SubmittedBy, &created, &started, &finished,
		&j.Priority, &j.Lane, &reused, &tests, &needs, &avoid, &apt); err != nil {
		return store.Job{}, err
	}
	for _, f := range []struct {
		name string
		text string
		dst  any
	}{{"triggers", triggers, &j.Triggers}, {"tests", tests, &j.Tests}, {"needs", needs, &j.Needs}, {"avoid_agents", avoid, &j.AvoidAgents}, {"apt_sources", apt, &j.AptSources}} {
		if err := json.Unmarshal([]byte(f.text), f.dst); err != nil {
			return store.Job{}, fmt.Errorf("job %d %s: %w", j.ID, f.name, err)
		}
	}
	if len(j.Triggers) == 0 {
		j.Triggers = nil
	}
	if len(j.Tests) == 0 {
		j.Tests = nil
	}
	if len(j.AvoidAgents) == 0 {
		j.AvoidAgents = nil
	}
	if len(j.AptSources) == 0 {
		j.AptSources = nil
	}
	if reused.Valid {
		j.ReusedFrom = &reused.Int64
	}
	if srcSum.Valid {
		j.Source = &store.Source{SHA256: srcSum.String, Size: srcSize.Int64, Kind: srcKind.String, Entry: srcEntry.String}
	}
	if agent.Valid {
		j.AgentID = &agent.Int64
	}
	j.LeaseExpires = fromNull(lease)
	j.CreatedAt = fromNanos(created)
	j.StartedAt = fromNull(started)
	j.FinishedAt = fromNull(finished)
	return j, nil
}

func getJob(ctx context.Context, q querier, id int64) (store.Job, error) {
	j, err := scanJob(q.QueryRowContext(ctx, jobSelect+` WHERE id = ?`, id))
	return j, notFound(err, "job %d", id)
}

// CreateJob implements store.Store.
func (db *DB) CreateJob(ctx context.Context, j store.Job) (store.Job, error) {
	if err := validNewJob(&j); err != nil {
		return store.Job{}, err
	}
	cols, err := jobColumns(j)
	if err != nil {
		return store.Job{}, err
	}
	var out store.Job
	err = db.write(ctx, func(tx *sql.Tx) error {
		if j.Source != nil {
			if err := checkBlob(ctx, tx, j.Source.SHA256, j.Source.Size); err != nil {
				return err
			}
		}
		created := nanos(db.clock(j.CreatedAt))
		state, verdict, finished := store.JobQueued, dep8.Verdict(""), any(nil)
		var reused any
		if j.ReusedFrom != nil {
			from, err := getJob(ctx, tx, *j.ReusedFrom)
			if err != nil {
				return err
			}
			if from.State != store.JobDone || !reusable(from.Verdict) {
				return fmt.Errorf("%w: job %d is %s %s, not a pass, fail or neutral result to reuse", store.ErrInvalid, from.ID, from.State, from.Verdict)
			}
			origin := from.ID
			if from.ReusedFrom != nil {
				origin = *from.ReusedFrom
			}
			state, verdict, finished, reused = store.JobDone, from.Verdict, created, origin
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO jobs (package, version, release, arch, triggers,
			source_sha256, source_size, source_kind, source_entry, state, verdict, max_attempts, reason, forced,
			submitted_by, created_at, finished_at, priority, lane, reused_from, tests, needs, avoid_agents, apt_sources)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			j.Package, j.Version, j.Release, j.Arch, cols.triggers,
			cols.srcSum, cols.srcSize, cols.srcKind, cols.srcEntry, state, verdict, j.MaxAttempts, j.Reason, j.Forced,
			j.SubmittedBy, created, finished, j.Priority, j.Lane, reused, cols.tests, cols.needs, cols.avoid, cols.apt)
		if err != nil {
			return err
		}
		id, err := res.LastInsertId()
		if err != nil {
			return err
		}
		out, err = getJob(ctx, tx, id)
		return err
	})
	return out, err
}

// reusable reports whether a job's verdict is a result that can stand for
// a later request: not infrastructure trouble, not a cancellation.
func reusable(v dep8.Verdict) bool {
	return v == dep8.VerdictPass || v == dep8.VerdictFail || v == dep8.VerdictNeutral
}

// validNewJob checks a job for CreateJob and fills its defaults.
func validNewJob(j *store.Job) error {
	switch {
	case j.Package == "" || j.Release == "" || j.Arch == "":
		return fmt.Errorf("%w: job needs a package, release and arch", store.ErrInvalid)
	case j.State != "" && j.State != store.JobQueued:
		return fmt.Errorf("%w: a new job cannot be %s", store.ErrInvalid, j.State)
	case j.MaxAttempts < 0:
		return fmt.Errorf("%w: max attempts %d", store.ErrInvalid, j.MaxAttempts)
	case j.Source != nil && (!store.ValidSHA256(j.Source.SHA256) || j.Source.Kind == "" || j.Source.Entry == ""):
		return fmt.Errorf("%w: incomplete source", store.ErrInvalid)
	case j.Priority != 0 && (j.Priority < store.MinPriority || j.Priority > store.MaxPriority):
		return fmt.Errorf("%w: priority %d is not %d to %d", store.ErrInvalid, j.Priority, store.MinPriority, store.MaxPriority)
	case j.Lane != "" && !store.ValidLane(j.Lane):
		return fmt.Errorf("%w: lane %q", store.ErrInvalid, j.Lane)
	}
	if len(j.AptSources) > 16 {
		return fmt.Errorf("%w: %d apt sources (at most 16)", store.ErrInvalid, len(j.AptSources))
	}
	for _, t := range j.Tests {
		if !dep8.ValidTestName(t) {
			return fmt.Errorf("%w: test name %q", store.ErrInvalid, t)
		}
	}
	if j.MaxAttempts == 0 {
		j.MaxAttempts = store.DefaultMaxAttempts
	}
	if j.Priority == 0 {
		j.Priority = store.DefaultPriority
	}
	if j.Lane == "" {
		j.Lane = store.LaneDefault
	}
	return nil
}

// jobCols are a new job's columns that need encoding.
type jobCols struct {
	triggers, tests, needs, avoid, apt string
	srcSum, srcSize, srcKind, srcEntry any
}

func jobColumns(j store.Job) (jobCols, error) {
	var c jobCols
	for _, f := range []struct {
		dst *string
		v   any
	}{{&c.triggers, nonNil(j.Triggers)}, {&c.tests, nonNil(j.Tests)}, {&c.needs, j.Needs}, {&c.avoid, nonNil(j.AvoidAgents)}, {&c.apt, nonNil(j.AptSources)}} {
		b, err := json.Marshal(f.v)
		if err != nil {
			return jobCols{}, err
		}
		*f.dst = string(b)
	}
	if s := j.Source; s != nil {
		c.srcSum, c.srcSize, c.srcKind, c.srcEntry = s.SHA256, s.Size, s.Kind, s.Entry
	}
	return c, nil
}

// Job implements store.Store.
func (db *DB) Job(ctx context.Context, id int64) (store.Job, error) {
	return getJob(ctx, db.r, id)
}

// ListJobs implements store.Store.
func (db *DB) ListJobs(ctx context.Context, f store.JobFilter) ([]store.Job, error) {
	var where []string
	var args []any
	if f.Package != "" {
		where = append(where, "package = ?")
		args = append(args, f.Package)
	}
	if f.State != "" {
		where = append(where, "state = ?")
		args = append(args, f.State)
	}
	q := jobSelect
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	limit := f.Limit
	if limit <= 0 {
		limit = store.DefaultListLimit
	}
	q += " ORDER BY id DESC LIMIT ?"
	args = append(args, limit)
	return queryAll(ctx, db.r, scanJob, q, args...)
}

// LeaseJob implements store.Store.
func (db *DB) LeaseJob(ctx context.Context, p store.LeaseParams) (*store.Job, error) {
	switch {
	case p.AgentID == 0 || p.Arch == "" || p.Nonce == "":
		return nil, fmt.Errorf("%w: lease needs an agent, arch and nonce", store.ErrInvalid)
	case p.TTL <= 0:
		return nil, fmt.Errorf("%w: lease TTL %v", store.ErrInvalid, p.TTL)
	}
	now := db.clock(p.Now)
	var out *store.Job
	err := db.write(ctx, func(tx *sql.Tx) error {
		var one int
		if err := tx.QueryRowContext(ctx, `SELECT 1 FROM agents WHERE id = ?`, p.AgentID).Scan(&one); err != nil {
			return notFound(err, "agent %d", p.AgentID)
		}
		if len(p.Releases) == 0 {
			return nil
		}
		where := ` WHERE state = 'queued' AND arch = ? AND lane = ? AND release IN (` +
			strings.TrimSuffix(strings.Repeat("?,", len(p.Releases)), ",") + `)
			AND NOT EXISTS (SELECT 1 FROM json_each(jobs.avoid_agents) a WHERE a.value = ?)`
		args := []any{p.Arch, ""}
		for _, r := range p.Releases {
			args = append(args, r)
		}
		args = append(args, p.AgentID)
		if p.RetryElsewhere > 0 {
			where += ` AND NOT (retry_agent_id IS NOT NULL AND retry_agent_id = ? AND requeued_at > ?
				AND EXISTS (SELECT 1 FROM agents o WHERE o.id != ? AND o.state = 'approved' AND o.paused = ''
					AND o.last_seen >= ? AND json_valid(CAST(o.capabilities AS TEXT))
					AND json_extract(CAST(o.capabilities AS TEXT), '$.arch') = jobs.arch
					AND EXISTS (SELECT 1 FROM json_each(CAST(o.capabilities AS TEXT), '$.releases') r
						WHERE r.value = jobs.release)))`
			args = append(args, p.AgentID, nanos(now.Add(-p.RetryElsewhere)), p.AgentID, nanos(p.OnlineSince))
		}
		id, err := rankedLeasable(ctx, tx, p.Arch, now, where, args, p.Exclude)
		if err != nil || id == 0 {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE jobs SET state = 'running', attempt = attempt + 1, agent_id = ?,
			nonce = ?, lease_expires = ?, started_at = ?, stage = '' WHERE id = ? AND state = 'queued'`,
			p.AgentID, p.Nonce, nanos(now.Add(p.TTL)), nanos(now), id); err != nil {
			return err
		}
		j, err := getJob(ctx, tx, id)
		out = &j
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// leaseBatch is how many jobs of one lane rankedLeasable reads at a time.
const leaseBatch = 32

// laneCursor walks one lane's queued jobs in the lane's own order
// (priority, then age), a batch at a time.
type laneCursor struct {
	lane   string
	served int
	jobs   []store.Job
	offset int
	done   bool
}

// rankedLeasable returns the id of the job LeaseJob should lease: among
// the queued jobs for arch that where (with args, whose second is the
// lane) selects, the first by rank (leases of its lane in the last
// LaneWindow + 1) / priority, then priority, then age, that exclude does
// not pass over; 0 when there is none. Within a lane the rank follows the
// lane's own order, so only the head of each lane is compared: each lane
// is read in batches from the jobs_queue_lane index, never sorted whole.
func rankedLeasable(ctx context.Context, tx *sql.Tx, arch string, now time.Time, where string, args []any, exclude func(store.Job) bool) (int64, error) {
	lanes, err := queuedLanes(ctx, tx, arch)
	if err != nil || len(lanes) == 0 {
		return 0, err
	}
	served := map[string]int{}
	rows, err := tx.QueryContext(ctx, `SELECT lane, COUNT(*) FROM jobs WHERE started_at >= ? GROUP BY lane`,
		nanos(now.Add(-store.LaneWindow)))
	if err != nil {
		return 0, err
	}
	for rows.Next() {
		var lane string
		var n int
		if err := rows.Scan(&lane, &n); err != nil {
			rows.Close()
			return 0, err
		}
		served[lane] = n
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	cursors := make([]*laneCursor, len(lanes))
	for i, l := range lanes {
		cursors[i] = &laneCursor{lane: l, served: served[l]}
	}
	q := jobSelect + where + ` ORDER BY priority DESC, id LIMIT ? OFFSET ?`
	head := func(c *laneCursor) (*store.Job, error) {
		if len(c.jobs) == 0 && !c.done {
			a := append(slices.Clone(args), leaseBatch, c.offset)
			a[1] = c.lane
			rows, err := tx.QueryContext(ctx, q, a...)
			if err != nil {
				return nil, err
			}
			defer rows.Close()
			for rows.Next() {
				j, err := scanJob(rows)
				if err != nil {
					return nil, err
				}
				c.jobs = append(c.jobs, j)
			}
			if err := rows.Err(); err != nil {
				return nil, err
			}
			c.offset += len(c.jobs)
			c.done = len(c.jobs) < leaseBatch
		}
		if len(c.jobs) == 0 {
			return nil, nil
		}
		return &c.jobs[0], nil
	}
	for {
		var best *laneCursor
		var bestJob *store.Job
		for _, c := range cursors {
			j, err := head(c)
			if err != nil {
				return 0, err
			}
			if j != nil && (bestJob == nil || ranksBefore(*j, c.served, *bestJob, best.served)) {
				best, bestJob = c, j
			}
		}
		if bestJob == nil {
			return 0, nil
		}
		if exclude == nil || !exclude(*bestJob) {
			return bestJob.ID, nil
		}
		best.jobs = best.jobs[1:]
	}
}

// ranksBefore reports whether job a, whose lane got servedA leases in the
// window, ranks before job b, whose lane got servedB: a lower
// (served + 1) / priority, then a higher priority, then older.
func ranksBefore(a store.Job, servedA int, b store.Job, servedB int) bool {
	// (servedA+1)/a.Priority < (servedB+1)/b.Priority, in integers.
	l, r := (servedA+1)*b.Priority, (servedB+1)*a.Priority
	if l != r {
		return l < r
	}
	if a.Priority != b.Priority {
		return a.Priority > b.Priority
	}
	return a.ID < b.ID
}

// queuedLanes returns the lanes that have queued jobs for arch, walking
// the jobs_queue_lane index one lane at a time.
func queuedLanes(ctx context.Context, tx *sql.Tx, arch string) ([]string, error) {
	rows, err := tx.QueryContext(ctx, `WITH RECURSIVE l (lane) AS (
			SELECT MIN(lane) FROM jobs WHERE state = 'queued' AND arch = ?1
			UNION ALL
			SELECT (SELECT MIN(lane) FROM jobs WHERE state = 'queued' AND arch = ?1 AND lane > l.lane) FROM l WHERE l.lane IS NOT NULL)
		SELECT lane FROM l WHERE lane IS NOT NULL`, arch)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var l string
		if err := rows.Scan(&l); err != nil {
			return nil, err
		}
		out = append(out, l)
	}
	return out, rows.Err()
}

// holds returns the job when ref holds its lease at now.
func holds(ctx context.Context, q querier, ref store.LeaseRef, now time.Time) (store.Job, error) {
	j, err := getJob(ctx, q, ref.JobID)
	if err != nil {
		return store.Job{}, err
	}
	if err := leaseHeld(j, ref); err != nil {
		return store.Job{}, err
	}
	if j.LeaseExpires == nil || !now.Before(*j.LeaseExpires) {
		return store.Job{}, fmt.Errorf("%w: job %d attempt %d: lease expired", store.ErrStaleLease, ref.JobID, ref.Attempt)
	}
	return j, nil
}

// leaseHeld reports store.ErrStaleLease unless ref is the running attempt
// of j.
func leaseHeld(j store.Job, ref store.LeaseRef) error {
	switch {
	case j.State != store.JobRunning:
		return fmt.Errorf("%w: job %d is %s", store.ErrStaleLease, j.ID, j.State)
	case j.Attempt != ref.Attempt:
		return fmt.Errorf("%w: job %d is at attempt %d, not %d", store.ErrStaleLease, j.ID, j.Attempt, ref.Attempt)
	case j.AgentID == nil || *j.AgentID != ref.AgentID:
		return fmt.Errorf("%w: job %d attempt %d is leased to another agent", store.ErrStaleLease, j.ID, j.Attempt)
	}
	return nil
}

// ExtendLease implements store.Store.
func (db *DB) ExtendLease(ctx context.Context, ref store.LeaseRef, now, until time.Time, stage string) (store.Job, error) {
	now = db.clock(now)
	if !until.After(now) {
		return store.Job{}, fmt.Errorf("%w: lease extended to %v, not after %v", store.ErrInvalid, until, now)
	}
	var out store.Job
	err := db.write(ctx, func(tx *sql.Tx) error {
		if _, err := holds(ctx, tx, ref, now); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE jobs SET lease_expires = ?, stage = CASE WHEN ? = '' THEN stage ELSE ? END
			WHERE id = ?`, nanos(until), stage, stage, ref.JobID); err != nil {
			return err
		}
		var err error
		out, err = getJob(ctx, tx, ref.JobID)
		return err
	})
	return out, err
}

// CheckLease implements store.Store.
func (db *DB) CheckLease(ctx context.Context, ref store.LeaseRef, now time.Time) (store.Job, error) {
	return holds(ctx, db.r, ref, db.clock(now))
}

// ExpireLeases implements store.Store.
func (db *DB) ExpireLeases(ctx context.Context, now time.Time) ([]int64, error) {
	now = db.clock(now)
	var ids []int64
	err := db.write(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT id, attempt, max_attempts, agent_id FROM jobs
			WHERE state = 'running' AND lease_expires <= ? ORDER BY id`, nanos(now))
		if err != nil {
			return err
		}
		type expired struct {
			id, agent    int64
			attempt, max int
		}
		var es []expired
		for rows.Next() {
			var e expired
			if err := rows.Scan(&e.id, &e.attempt, &e.max, &e.agent); err != nil {
				rows.Close()
				return err
			}
			es = append(es, e)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, e := range es {
			if e.attempt >= e.max {
				_, err = tx.ExecContext(ctx, `UPDATE jobs SET state = 'done', verdict = ?, lease_expires = NULL,
					reason = ?, finished_at = ? WHERE id = ?`,
					dep8.VerdictError, fmt.Sprintf("lease expired on attempt %d of %d; no attempts left", e.attempt, e.max),
					nanos(now), e.id)
			} else {
				_, err = tx.ExecContext(ctx, `UPDATE jobs SET state = 'queued', agent_id = NULL, nonce = '',
					lease_expires = NULL, stage = '', reason = ?, retry_agent_id = ?, requeued_at = ? WHERE id = ?`,
					fmt.Sprintf("lease expired on attempt %d of %d (agent %d stopped heartbeating)", e.attempt, e.max, e.agent),
					e.agent, nanos(now), e.id)
			}
			if err != nil {
				return err
			}
			ids = append(ids, e.id)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return ids, nil
}

// CompleteJob implements store.Store.
func (db *DB) CompleteJob(ctx context.Context, r store.Result, now time.Time) (store.Job, error) {
	if err := validResult(r); err != nil {
		return store.Job{}, err
	}
	now = db.clock(now)
	var out store.Job
	err := db.write(ctx, func(tx *sql.Tx) error {
		j, err := getJob(ctx, tx, r.JobID)
		if err != nil {
			return err
		}
		if err := leaseHeld(j, r.Ref()); err != nil {
			return err
		}
		for _, b := range r.Blobs {
			if err := checkBlob(ctx, tx, b.SHA256, b.Size); err != nil {
				return fmt.Errorf("result blob %q: %w", b.Name, err)
			}
		}
		if err := insertResult(ctx, tx, r, now); err != nil {
			return err
		}

		left := j.Attempt < j.MaxAttempts
		switch {
		case r.Verdict == dep8.VerdictTmpfail && left:
			_, err = tx.ExecContext(ctx, `UPDATE jobs SET state = 'queued', agent_id = NULL, nonce = '',
				lease_expires = NULL, stage = '', transport = ?, reason = ?, retry_agent_id = ?, requeued_at = ? WHERE id = ?`,
				r.Transport, fmt.Sprintf("tmpfail on attempt %d of %d (exit code %d)", j.Attempt, j.MaxAttempts, r.ExitCode),
				r.AgentID, nanos(now), j.ID)
		case r.Verdict == dep8.VerdictTmpfail:
			_, err = tx.ExecContext(ctx, `UPDATE jobs SET state = 'done', verdict = ?, lease_expires = NULL,
				transport = ?, reason = ?, finished_at = ? WHERE id = ?`,
				dep8.VerdictError, r.Transport,
				fmt.Sprintf("tmpfail on attempt %d of %d (exit code %d); no attempts left", j.Attempt, j.MaxAttempts, r.ExitCode),
				nanos(now), j.ID)
		default:
			_, err = tx.ExecContext(ctx, `UPDATE jobs SET state = 'done', verdict = ?, lease_expires = NULL,
				transport = ?, reason = '', finished_at = ? WHERE id = ?`,
				r.Verdict, r.Transport, nanos(now), j.ID)
		}
		if err != nil {
			return err
		}
		out, err = getJob(ctx, tx, j.ID)
		return err
	})
	return out, err
}

func validResult(r store.Result) error {
	switch r.Verdict {
	case dep8.VerdictPass, dep8.VerdictFail, dep8.VerdictNeutral, dep8.VerdictTmpfail:
	default:
		return fmt.Errorf("%w: result verdict %q", store.ErrInvalid, r.Verdict)
	}
	if len(r.Envelope) == 0 {
		return fmt.Errorf("%w: result has no envelope", store.ErrInvalid)
	}
	for _, t := range r.Tests {
		if t.Name == "" || !t.Result.Valid() {
			return fmt.Errorf("%w: test %q result %q", store.ErrInvalid, t.Name, t.Result)
		}
	}
	for _, b := range r.Blobs {
		if b.Name == "" || !store.ValidSHA256(b.SHA256) {
			return fmt.Errorf("%w: blob ref %q %q", store.ErrInvalid, b.Name, b.SHA256)
		}
	}
	return nil
}

func insertResult(ctx context.Context, tx *sql.Tx, r store.Result, now time.Time) error {
	h := r.Harness
	res, err := tx.ExecContext(ctx, `INSERT INTO results (job_id, attempt, agent_id, verdict, exit_code,
		agent_version, autopkgtest_version, backend, image_digest, envelope, transport, idempotency_key, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		r.JobID, r.Attempt, r.AgentID, r.Verdict, r.ExitCode,
		h.AgentVersion, h.AutopkgtestVersion, h.Backend, h.ImageDigest, r.Envelope, r.Transport, r.IdempotencyKey, nanos(now))
	if isUnique(err) {
		return fmt.Errorf("%w: job %d attempt %d already has a result, or the result was stored before", store.ErrStaleLease, r.JobID, r.Attempt)
	}
	if err != nil {
		return err
	}
	id, err := res.LastInsertId()
	if err != nil {
		return err
	}
	for i, t := range r.Tests {
		if _, err := tx.ExecContext(ctx, `INSERT INTO result_tests (result_id, seq, name, result, detail) VALUES (?, ?, ?, ?, ?)`,
			id, i, t.Name, t.Result, t.Detail); err != nil {
			return err
		}
	}
	for i, b := range r.Blobs {
		if _, err := tx.ExecContext(ctx, `INSERT INTO result_blobs (result_id, seq, name, sha256, size) VALUES (?, ?, ?, ?, ?)`,
			id, i, b.Name, b.SHA256, b.Size); err != nil {
			return err
		}
	}
	return nil
}

// CancelJob implements store.Store.
func (db *DB) CancelJob(ctx context.Context, id int64, now time.Time) (store.Job, error) {
	now = db.clock(now)
	var out store.Job
	err := db.write(ctx, func(tx *sql.Tx) error {
		j, err := getJob(ctx, tx, id)
		if err != nil {
			return err
		}
		if j.State != store.JobQueued && j.State != store.JobRunning && j.State != store.JobHeld {
			return fmt.Errorf("%w: job %d is %s", store.ErrConflict, id, j.State)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE jobs SET state = 'cancelled', verdict = ?, lease_expires = NULL,
			finished_at = ? WHERE id = ?`, dep8.VerdictCancelled, nanos(now), id); err != nil {
			return err
		}
		out, err = getJob(ctx, tx, id)
		return err
	})
	return out, err
}

const resultSelect = `SELECT id, job_id, attempt, agent_id, verdict, exit_code,
	agent_version, autopkgtest_version, backend, image_digest, envelope, transport, idempotency_key, created_at
	FROM results`

// readResults returns the results selected by where, with their tests and
// blob refs.
func readResults(ctx context.Context, tx *sql.Tx, where string, args ...any) ([]store.Result, error) {
	rows, err := tx.QueryContext(ctx, resultSelect+" "+where, args...)
	if err != nil {
		return nil, err
	}
	var out []store.Result
	var ids []int64
	for rows.Next() {
		var r store.Result
		var id, created int64
		h := &r.Harness
		if err := rows.Scan(&id, &r.JobID, &r.Attempt, &r.AgentID, &r.Verdict, &r.ExitCode,
			&h.AgentVersion, &h.AutopkgtestVersion, &h.Backend, &h.ImageDigest, &r.Envelope, &r.Transport, &r.IdempotencyKey, &created); err != nil {
			rows.Close()
			return nil, err
		}
		r.CreatedAt = fromNanos(created)
		out = append(out, r)
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for i, id := range ids {
		r := &out[i]
		trows, err := tx.QueryContext(ctx, `SELECT name, result, detail FROM result_tests WHERE result_id = ? ORDER BY seq`, id)
		if err != nil {
			return nil, err
		}
		for trows.Next() {
			var t dep8.Test
			if err := trows.Scan(&t.Name, &t.Result, &t.Detail); err != nil {
				trows.Close()
				return nil, err
			}
			r.Tests = append(r.Tests, t)
		}
		trows.Close()
		if err := trows.Err(); err != nil {
			return nil, err
		}
		brows, err := tx.QueryContext(ctx, `SELECT name, sha256, size FROM result_blobs WHERE result_id = ? ORDER BY seq`, id)
		if err != nil {
			return nil, err
		}
		for brows.Next() {
			var b store.BlobRef
			if err := brows.Scan(&b.Name, &b.SHA256, &b.Size); err != nil {
				brows.Close()
				return nil, err
			}
			r.Blobs = append(r.Blobs, b)
		}
		brows.Close()
		if err := brows.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Results implements store.Store.
func (db *DB) Results(ctx context.Context, jobID int64) ([]store.Result, error) {
	var out []store.Result
	err := db.read(ctx, func(tx *sql.Tx) error {
		if _, err := getJob(ctx, tx, jobID); err != nil {
			return err
		}
		var err error
		out, err = readResults(ctx, tx, `WHERE job_id = ? ORDER BY attempt`, jobID)
		return err
	})
	return out, err
}

// LatestResult implements store.Store.
func (db *DB) LatestResult(ctx context.Context, jobID int64) (store.Result, error) {
	var out []store.Result
	err := db.read(ctx, func(tx *sql.Tx) error {
		var err error
		out, err = readResults(ctx, tx, `WHERE job_id = ? ORDER BY attempt DESC LIMIT 1`, jobID)
		return err
	})
	if err != nil {
		return store.Result{}, err
	}
	if len(out) == 0 {
		return store.Result{}, fmt.Errorf("%w: result of job %d", store.ErrNotFound, jobID)
	}
	return out[0], nil
}

// ResultByKey implements store.Store.
func (db *DB) ResultByKey(ctx context.Context, key string) (store.Result, error) {
	if key == "" {
		return store.Result{}, fmt.Errorf("%w: result with an empty key", store.ErrNotFound)
	}
	var out []store.Result
	err := db.read(ctx, func(tx *sql.Tx) error {
		var err error
		out, err = readResults(ctx, tx, `WHERE idempotency_key = ?`, key)
		return err
	})
	if err != nil {
		return store.Result{}, err
	}
	if len(out) == 0 {
		return store.Result{}, fmt.Errorf("%w: result with key %s", store.ErrNotFound, key)
	}
	return out[0], nil
}
