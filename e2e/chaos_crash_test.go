package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	_ "modernc.org/sqlite"

	"github.com/sparegrid/sparegrid/e2e/harness"
	"github.com/sparegrid/sparegrid/shared/protocol"
)

// loadRelease is the release the synthetic agents' jobs are queued for. No
// real agent has an image for it, so the real agent's work stays the
// fixture jobs it can run, and the synthetic ones get only theirs.
const loadRelease = "sgload"

// enrolAgent registers a real agent in state under owner, builds its
// bookworm testbed image, has the owner claim it and the admin approve it,
// and returns its id.
func enrolAgent(t *testing.T, c *harness.Coordinator, state, owner, ownerToken, name string) int64 {
	t.Helper()
	return enrolWith(t, c, state, owner, ownerToken, name, func() {
		tb := harness.Run(t, nil, "sparegrid-agent", "testbed", "build", "--release", "bookworm", "--state", state)
		if tb.Code != 0 {
			t.Fatalf("testbed build = exit %d: %s", tb.Code, tb.Stderr)
		}
	})
}

// enrolWith registers a real agent in state under owner, runs prepare (which
// gives it its testbed images), has the owner claim it and the admin
// approve it, and returns its id.
func enrolWith(t *testing.T, c *harness.Coordinator, state, owner, ownerToken, name string, prepare func()) int64 {
	t.Helper()
	r := c.Register(t, state, owner, c.CASHA256, name)
	if r.Code != 0 {
		t.Fatalf("register = exit %d: %s", r.Code, r.Stderr)
	}
	var reg struct {
		AgentID   int64  `json:"agent_id"`
		ClaimCode string `json:"claim_code"`
	}
	if err := json.Unmarshal([]byte(r.Stdout), &reg); err != nil || reg.AgentID == 0 {
		t.Fatalf("register --json printed %q (%v)", r.Stdout, err)
	}
	prepare()
	c.MustCLI(t, ownerToken, "agents", "claim", reg.ClaimCode)
	c.MustCLI(t, c.AdminToken, "agents", "approve", itoa(reg.AgentID))
	return reg.AgentID
}

// openDB opens the coordinator's database read-only; it may run.
func openDB(t *testing.T, c *harness.Coordinator) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(c.DataDir, "sparegrid.db")+"?mode=ro&_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// jobStates counts jobs by state.
func jobStates(db *sql.DB) (map[string]int, error) {
	rows, err := db.Query(`SELECT state, count(*) FROM jobs GROUP BY state`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var s string
		var n int
		if err := rows.Scan(&s, &n); err != nil {
			return nil, err
		}
		out[s] = n
	}
	return out, rows.Err()
}

// TestCoordinatorKilledDuringUploads kills the coordinator with SIGKILL
// while synthetic agents upload logs and report results and a real agent
// runs a test, restarts it on the same addresses and data, and checks that
// nothing acknowledged was lost or stored twice, that the database and the
// blob store are intact, and that every agent carried on by itself.
func TestCoordinatorKilledDuringUploads(t *testing.T) {
	requireTools(t)
	began := time.Now()
	defer func() { t.Logf("TestCoordinatorKilledDuringUploads took %v", time.Since(began).Round(time.Second)) }()
	const (
		jobs      = 240
		killAfter = 30
	)
	serveArgs := []string{"--lease-ttl", "10s"}

	c := harness.InitCoordinator(t)
	c.Serve(t, serveArgs...)
	aliceTok := c.CreateAccount(t, "alice", "volunteer")
	bobTok := c.CreateAccount(t, "bob", "maintainer")

	state := filepath.Join(t.TempDir(), "agent")
	enrolAgent(t, c, state, "alice", aliceTok, "real1")
	realAgent := harness.Start(t, nil, "sparegrid-agent", "run", "--state", state)

	// A real test is running when the coordinator dies.
	fixture := filepath.Join(harness.RepoRoot(), "e2e", "testdata", "fixture")
	firstID := c.MustCLI(t, bobTok, "submit", "--source", fixture, "--release", "bookworm")
	harness.WaitFor(t, "the real agent to start the fixture job", 5*time.Minute, func() (bool, string) {
		j := c.Show(t, firstID)
		return j.State == "running", fmt.Sprintf("state %s stage %q", j.State, j.Stage)
	})

	packages := make([]string, jobs)
	for i := range packages {
		packages[i] = fmt.Sprintf("sgload-%03d", i)
	}
	loadIDs := harness.SubmitJobs(t, c, bobTok, loadRelease, packages)
	load := harness.StartLoad(t, c, harness.LoadOptions{
		Agents:      6,
		Owner:       "alice",
		OwnerToken:  aliceTok,
		Releases:    []string{loadRelease},
		MaxRunTime:  20 * time.Millisecond,
		TmpfailRate: 0.05,
		Seed:        1,
	})

	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	if err := load.WaitAcked(ctx, killAfter); err != nil {
		t.Fatalf("before the kill: %v\n%s", err, load.Summary())
	}
	c.Kill(t)
	killed := time.Now()
	pending := 0
	for _, s := range load.Stats() {
		if s.Pending {
			pending++
		}
	}
	t.Logf("coordinator killed with %d results acknowledged and %d awaiting acknowledgement:\n%s", len(load.Acks()), pending, load.Summary())
	c.Restart(t)
	t.Logf("coordinator back after %v", time.Since(killed).Round(time.Millisecond))

	db := openDB(t, c)
	harness.WaitFor(t, "every synthetic job to finish after the restart", 3*time.Minute, func() (bool, string) {
		states, err := countBy(db, `SELECT state, count(*) FROM jobs WHERE release = ? GROUP BY state`, loadRelease)
		if err != nil {
			return false, err.Error()
		}
		return states["queued"]+states["running"]+states["held"] == 0, fmt.Sprintf("synthetic jobs by state %v\n%s", states, load.Summary())
	})
	for _, s := range load.Stats() {
		if s.Redials == 0 || s.Dials < 3 {
			t.Errorf("load agent %s never reconnected: %v", s.Name, s)
		}
		if s.Pending || len(s.Errors) > 0 {
			t.Errorf("load agent %s did not finish cleanly: %v, errors %q", s.Name, s, s.Errors)
		}
	}
	checkResults(t, db, load, loadIDs)
	checkBlobs(t, c, db)
	if integrity := integrityCheck(t, db); integrity != "ok" {
		t.Errorf("PRAGMA integrity_check on the running coordinator = %q, want ok", integrity)
	}
	if t.Failed() {
		t.Logf("load agents:\n%s", load.Summary())
	}

	// The real agent reconnects by itself and runs a job submitted after
	// the restart, while the synthetic agents, which cannot run it, stay
	// online.
	wantFixture := []testResult{{"passes", "PASS"}, {"fails", "FAIL"}, {"skippable", "SKIP"}, {"flaky", "FLAKY"}}
	afterID := c.MustCLI(t, bobTok, "submit", "--source", fixture, "--release", "bookworm")
	after := c.WaitJob(t, afterID, 10*time.Minute)
	if diff := cmp.Diff(wantFixture, results(after)); diff != "" || after.State != "done" || after.Verdict != "fail" {
		t.Errorf("fixture job %s submitted after the restart: %s/%s attempt %d (reason %q), tests (-want +got):\n%s", afterID, after.State, after.Verdict, after.Attempt, after.Reason, diff)
	}
	t.Logf("real agent: %d sessions logged", strings.Count(realAgent.Output(), "msg=connected"))

	// The job the real agent ran through the crash ends too: reported, or
	// requeued when its lease expired and run again.
	if first, ok := waitDone(t, c, firstID, 3*time.Minute); !ok {
		t.Errorf("fixture job %s, running when the coordinator was killed, never finished: %s attempt %d, reason %q", firstID, first.State, first.Attempt, first.Reason)
	} else if diff := cmp.Diff(wantFixture, results(first)); diff != "" || first.Verdict != "fail" {
		t.Errorf("fixture job %s run through the crash: %s/%s attempt %d (reason %q), tests (-want +got):\n%s", firstID, first.State, first.Verdict, first.Attempt, first.Reason, diff)
	} else {
		t.Logf("fixture job %s run through the crash finished as attempt %d", firstID, first.Attempt)
	}

	load.Stop()
	checkResend(t, db, load)
	realAgent.Stop(time.Minute)
	c.Proc.Stop(30 * time.Second)
	if integrity := integrityCheck(t, db); integrity != "ok" {
		t.Errorf("PRAGMA integrity_check after the coordinator stopped = %q, want ok", integrity)
	}
	if t.Failed() {
		states, _ := jobStates(db)
		t.Logf("jobs by state %v", states)
	}
}

// checkResend sends results acknowledged before the crash again, as agents
// that lost the acknowledgements would, and checks that the restarted
// coordinator answers them as duplicates and stores nothing.
func checkResend(t *testing.T, db *sql.DB, load *harness.Load) {
	t.Helper()
	var before int
	if err := db.QueryRow(`SELECT count(*) FROM results`).Scan(&before); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	for _, a := range load.Agents {
		acks := a.Acks()
		if len(acks) == 0 {
			continue
		}
		ack := acks[0]
		reply, err := a.Resend(ctx, ack)
		if err != nil || !reply.Duplicate {
			t.Errorf("re-sending the result of job %d attempt %d (%s) = %+v, %v; want it acknowledged as a duplicate", ack.JobID, ack.Attempt, a.Name, reply, err)
		}
	}
	var after int
	if err := db.QueryRow(`SELECT count(*) FROM results`).Scan(&after); err != nil {
		t.Fatal(err)
	}
	if after != before {
		t.Errorf("re-sent results changed the number of stored results from %d to %d", before, after)
	}
}

// waitDone is WaitJob that reports a timeout to its caller rather than
// failing the test.
func waitDone(t *testing.T, c *harness.Coordinator, id string, timeout time.Duration) (harness.Job, bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var j harness.Job
		code, body, err := harness.HTTPGet(c.URL() + "/api/v1/jobs/" + id)
		if err == nil && code == 200 && json.Unmarshal(body, &j) == nil && (j.State == "done" || j.State == "cancelled") {
			return c.Show(t, id), true
		}
		if time.Now().After(deadline) || t.Context().Err() != nil {
			return c.Show(t, id), false
		}
		select {
		case <-t.Context().Done():
		case <-time.After(2 * time.Second):
		}
	}
}

type resultRow struct {
	jobID    int64
	attempt  int
	verdict  string
	envelope []byte
	key      string
}

// checkResults compares the results table with what the synthetic agents
// were told: every acknowledged result is stored once, as sent; nothing
// of theirs is stored that was not acknowledged; no job has two real
// verdicts.
func checkResults(t *testing.T, db *sql.DB, load *harness.Load, loadIDs []int64) {
	t.Helper()
	hasKey := false
	cols, err := db.Query(`SELECT name FROM pragma_table_info('results')`)
	if err != nil {
		t.Fatal(err)
	}
	for cols.Next() {
		var name string
		cols.Scan(&name)
		hasKey = hasKey || name == "idempotency_key"
	}
	cols.Close()
	keyCol := "''"
	if hasKey {
		keyCol = "coalesce(idempotency_key, '')"
	}
	rows, err := db.Query(`SELECT job_id, attempt, verdict, envelope, ` + keyCol + ` FROM results ORDER BY job_id, attempt`)
	if err != nil {
		t.Fatal(err)
	}
	type ref struct {
		job     int64
		attempt int
	}
	stored := map[ref][]resultRow{}
	perJob := map[int64][]resultRow{}
	for rows.Next() {
		var r resultRow
		if err := rows.Scan(&r.jobID, &r.attempt, &r.verdict, &r.envelope, &r.key); err != nil {
			t.Fatal(err)
		}
		stored[ref{r.jobID, r.attempt}] = append(stored[ref{r.jobID, r.attempt}], r)
		perJob[r.jobID] = append(perJob[r.jobID], r)
	}
	if err := rows.Close(); err != nil {
		t.Fatal(err)
	}

	acks := load.Acks()
	acked := map[ref]harness.Ack{}
	resent, duplicates := 0, 0
	for _, a := range acks {
		k := ref{a.JobID, a.Attempt}
		if prev, ok := acked[k]; ok && prev.Key != a.Key {
			t.Errorf("job %d attempt %d: two different results acknowledged (by %s and %s)", a.JobID, a.Attempt, prev.Agent, a.Agent)
		}
		acked[k] = a
		if a.Sends > 1 {
			resent++
		}
		if a.Duplicate {
			duplicates++
		}
		got := stored[k]
		switch {
		case len(got) != 1:
			t.Errorf("acknowledged result of job %d attempt %d (%s, sent %d times) is stored %d times, want once", a.JobID, a.Attempt, a.Agent, a.Sends, len(got))
		case !bytes.Equal(got[0].envelope, a.Envelope):
			t.Errorf("job %d attempt %d: stored envelope (key %s) differs from the acknowledged one (key %s)", a.JobID, a.Attempt, protocol.ResultKey(got[0].envelope), a.Key)
		case hasKey && got[0].key != a.Key:
			t.Errorf("job %d attempt %d: stored idempotency key %q, want %q", a.JobID, a.Attempt, got[0].key, a.Key)
		}
	}
	refusedKeys := map[string]harness.Refusal{}
	for _, r := range load.Refusals() {
		refusedKeys[r.Key] = r
	}
	for _, id := range loadIDs {
		for _, r := range perJob[id] {
			if _, ok := acked[ref{r.jobID, r.attempt}]; ok {
				continue
			}
			if rf, ok := refusedKeys[protocol.ResultKey(r.envelope)]; ok {
				t.Errorf("job %d attempt %d: the result is stored, but its re-send (%d sends by %s) was refused (%s); want an acknowledgement with Duplicate set",
					r.jobID, r.attempt, rf.Sends, rf.Agent, rf.Err)
				continue
			}
			t.Errorf("job %d attempt %d: a %s result is stored that no synthetic agent had acknowledged", r.jobID, r.attempt, r.verdict)
		}
	}
	for job, rs := range perJob {
		var real []string
		for _, r := range rs {
			if r.verdict != "tmpfail" {
				real = append(real, fmt.Sprintf("attempt %d %s", r.attempt, r.verdict))
			}
		}
		if len(real) > 1 {
			t.Errorf("job %d has %d results that are not tmpfail: %v", job, len(real), real)
		}
	}
	var verdicts map[string]int
	if vs, err := countBy(db, `SELECT verdict, count(*) FROM jobs WHERE release = ? GROUP BY verdict`, loadRelease); err != nil {
		t.Error(err)
	} else {
		verdicts = vs
	}
	t.Logf("%d results acknowledged (%d re-sent, %d answered as duplicates), %d refused as stale; load jobs by verdict %v",
		len(acks), resent, duplicates, len(load.Refusals()), verdicts)
}

func countBy(db *sql.DB, query string, args ...any) (map[string]int, error) {
	rows, err := db.Query(query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var k string
		var n int
		if err := rows.Scan(&k, &n); err != nil {
			return nil, err
		}
		out[k] = n
	}
	return out, rows.Err()
}

// checkBlobs checks that every file in the blob store holds the bytes its
// name promises and that every blob a result names is there with its size.
func checkBlobs(t *testing.T, c *harness.Coordinator, db *sql.DB) {
	t.Helper()
	root := filepath.Join(c.DataDir, "blobs")
	files := 0
	var leftovers []string
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if d.IsDir() {
			if rel != "." && rel != "tmp" && (len(rel) != 2 || strings.Contains(rel, string(filepath.Separator))) {
				t.Errorf("blob store holds an unexpected directory %s", rel)
			}
			return nil
		}
		dir, name := filepath.Split(rel)
		if filepath.Clean(dir) == "tmp" {
			leftovers = append(leftovers, name)
			return nil
		}
		files++
		sum, err := fileSHA256(p)
		if err != nil {
			return err
		}
		if sum != name || filepath.Clean(dir) != name[:min(2, len(name))] {
			t.Errorf("blob file %s has sha256 %s", rel, sum)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(leftovers) > 0 {
		t.Logf("blobs/tmp holds %d partial uploads left by the killed coordinator: %v", len(leftovers), leftovers)
	}

	rows, err := db.Query(`SELECT rb.result_id, rb.name, rb.sha256, rb.size, coalesce(b.size, -1) FROM result_blobs rb LEFT JOIN blobs b ON b.sha256 = rb.sha256`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	refs := 0
	for rows.Next() {
		var id, size, rowSize int64
		var name, sum string
		if err := rows.Scan(&id, &name, &sum, &size, &rowSize); err != nil {
			t.Fatal(err)
		}
		refs++
		if rowSize != size {
			t.Errorf("result %d blob %q (%s): blobs row size %d, result_blobs size %d", id, name, sum, rowSize, size)
		}
		fi, err := os.Stat(filepath.Join(root, sum[:2], sum))
		switch {
		case err != nil:
			t.Errorf("result %d blob %q: %v", id, name, err)
		case fi.Size() != size:
			t.Errorf("result %d blob %q (%s): file has %d bytes, want %d", id, name, sum, fi.Size(), size)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	t.Logf("blob store: %d files, %d result references", files, refs)
}

func fileSHA256(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func integrityCheck(t *testing.T, db *sql.DB) string {
	t.Helper()
	rows, err := db.Query(`PRAGMA integrity_check`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var lines []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		lines = append(lines, s)
	}
	return strings.Join(lines, "\n")
}

// TestAgentKilledMidTest kills the agent with SIGKILL while a test runs,
// starts it again on the same state directory, and checks that it stops
// the orphaned test before it leases anything, that the job runs again as
// attempt 2 once the lease expired and passes exactly once, and that no
// testbed or work directory is left behind.
func TestAgentKilledMidTest(t *testing.T) {
	requireTools(t)
	began := time.Now()
	defer func() { t.Logf("TestAgentKilledMidTest took %v", time.Since(began).Round(time.Second)) }()
	const slowTest = "sleep 47"

	c := harness.InitCoordinator(t)
	c.Serve(t, "--lease-ttl", "9s")
	aliceTok := c.CreateAccount(t, "alice", "volunteer")
	bobTok := c.CreateAccount(t, "bob", "maintainer")
	state := filepath.Join(t.TempDir(), "agent")
	enrolAgent(t, c, state, "alice", aliceTok, "box1")

	overlayBefore := overlayDirs(t)
	sleepsBefore := harness.Processes(slowTest)
	agent := harness.Start(t, nil, "sparegrid-agent", "run", "--state", state)
	jobID := c.MustCLI(t, bobTok, "submit", "--source", filepath.Join(harness.RepoRoot(), "e2e", "testdata", "slow"), "--release", "bookworm")

	var orphans []int
	harness.WaitFor(t, "the slow test to start", 5*time.Minute, func() (bool, string) {
		orphans = nil
		for _, pid := range harness.Processes(slowTest) {
			if !slices.Contains(sleepsBefore, pid) {
				orphans = append(orphans, pid)
			}
		}
		return len(orphans) > 0, "no new " + slowTest
	})
	t.Cleanup(func() {
		for _, pid := range orphans {
			if slices.Contains(harness.Processes(slowTest), pid) {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})
	if j := c.Show(t, jobID); j.Attempt != 1 || j.State != "running" {
		t.Fatalf("job %s while its test runs: %s attempt %d, want running attempt 1", jobID, j.State, j.Attempt)
	}

	// The agent alone dies; its test runs on as an orphan.
	if err := syscall.Kill(agent.Pid(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case <-agent.Done():
	case <-time.After(30 * time.Second):
		t.Fatalf("agent did not exit after SIGKILL")
	}
	for _, pid := range orphans {
		if !slices.Contains(harness.Processes(slowTest), pid) {
			t.Fatalf("the test's %q (pid %d) died with the agent; the scenario needs it orphaned", slowTest, pid)
		}
	}

	// The restarted agent stops the orphan before it takes a job.
	restarted := time.Now()
	agent2 := harness.Start(t, nil, "sparegrid-agent", "run", "--state", state)
	leasedEarly := ""
	harness.WaitFor(t, "the restarted agent to stop the orphaned test of attempt 1", 30*time.Second, func() (bool, string) {
		live := slices.DeleteFunc(slices.Clone(orphans), func(pid int) bool { return !slices.Contains(harness.Processes(slowTest), pid) })
		if len(live) > 0 {
			if j := c.Show(t, jobID); j.Attempt > 1 && leasedEarly == "" {
				leasedEarly = fmt.Sprintf("job %s was leased as attempt %d (state %s) while the orphan %v still ran", jobID, j.Attempt, j.State, live)
			}
		}
		return len(live) == 0, fmt.Sprintf("orphans still running: %v\nagent output:\n%s", live, agent2.Output())
	})
	t.Logf("orphan gone %v after the restart", time.Since(restarted).Round(100*time.Millisecond))
	if leasedEarly != "" {
		t.Errorf("%s", leasedEarly)
	}
	// The agent logs what it recovered once the orphan's whole group is
	// gone, a moment after the test process.
	harness.WaitFor(t, "the restarted agent to log its recovery", 30*time.Second, func() (bool, string) {
		return strings.Contains(agent2.Output(), "recovered after a crash"), agent2.Output()
	})

	sawExpiry := false
	harness.WaitFor(t, "attempt 2 to be leased", 2*time.Minute, func() (bool, string) {
		j := c.Show(t, jobID)
		sawExpiry = sawExpiry || strings.Contains(j.Reason, "expired")
		return j.Attempt >= 2, fmt.Sprintf("state %s attempt %d reason %q", j.State, j.Attempt, j.Reason)
	})
	j := c.WaitJob(t, jobID, 5*time.Minute)
	if diff := cmp.Diff([]testResult{{"sleeps", "PASS"}}, results(j)); diff != "" || j.State != "done" || j.Verdict != "pass" || j.Attempt != 2 {
		t.Errorf("job %s: %s/%s attempt %d (reason %q), tests (-want +got):\n%s", jobID, j.State, j.Verdict, j.Attempt, j.Reason, diff)
	}
	t.Logf("job %s done as attempt %d; an expiry reason was seen: %v", jobID, j.Attempt, sawExpiry)

	db := openDB(t, c)
	id, err := strconv.ParseInt(jobID, 10, 64)
	if err != nil {
		t.Fatalf("submit printed job id %q", jobID)
	}
	attempts, err := countBy(db, `SELECT attempt || ' ' || verdict, count(*) FROM results WHERE job_id = ? GROUP BY attempt, verdict`, id)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]int{"2 pass": 1}, attempts); diff != "" {
		t.Errorf("results of job %s by attempt and verdict (-want +got):\n%s", jobID, diff)
	}

	harness.WaitFor(t, "the testbeds of both attempts to be removed", 30*time.Second, func() (bool, string) {
		var left []string
		for _, d := range overlayDirs(t) {
			if !slices.Contains(overlayBefore, d) && !liveTestbed(d) {
				left = append(left, d)
			}
		}
		return len(left) == 0, fmt.Sprintf("overlay directories left: %v", left)
	})
	harness.WaitFor(t, "the job work directories to be removed", 30*time.Second, func() (bool, string) {
		m, _ := filepath.Glob(filepath.Join(state, "work", "job-*"))
		return len(m) == 0, fmt.Sprintf("work directories left: %v", m)
	})
	agent2.Stop(time.Minute)
}

// overlayDir is where the overlay backend keeps its testbeds by default.
const overlayDir = "/var/tmp/sparegrid-overlay"

// overlayDirs lists the overlay backend's testbed directories.
func overlayDirs(t *testing.T) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(overlayDir, "sparegrid-tb-*"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// liveTestbed reports whether a testbed's server still holds the lock on
// its directory, as it does while the testbed exists.
func liveTestbed(dir string) bool {
	f, err := os.Open(dir)
	if err != nil {
		return false
	}
	defer f.Close()
	err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	if err == nil {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		return false
	}
	return errors.Is(err, syscall.EWOULDBLOCK)
}
