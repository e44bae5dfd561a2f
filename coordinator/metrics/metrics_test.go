package metrics

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sparegrid/sparegrid/coordinator/store"
	"github.com/sparegrid/sparegrid/coordinator/store/sqlite"
	"github.com/sparegrid/sparegrid/shared/dep8"
)

func epoch() time.Time { return time.Date(2025, 6, 7, 8, 0, 0, 0, time.UTC) }

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// scrape GETs /metrics from m's handler and returns the sample lines whose
// metric name is one of names, in the order served.
func scrape(t *testing.T, m *Metrics, names ...string) []string {
	t.Helper()
	srv := httptest.NewServer(m.Handler())
	t.Cleanup(srv.Close)
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics = %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET /metrics = %s, want 200 OK: %s", resp.Status, body)
	}
	var out []string
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		name, _, _ := strings.Cut(line, " ")
		name, _, _ = strings.Cut(name, "{")
		for _, n := range names {
			if name == n {
				out = append(out, line)
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("reading /metrics: %v", err)
	}
	return out
}

// grid fills a store: jobs per lane in each state, and agents.
type grid struct {
	queued  map[string]int // lane → queued jobs
	running map[string]int // lane → running jobs
	done    int            // finished jobs, in the default lane
	pending int            // pending agents
	// seen lists approved agents by how long ago they were last heard from;
	// a negative duration means never.
	seen     []time.Duration
	paused   int // of the approved agents, the first paused ones
	rejected int
}

func fill(t *testing.T, db *sqlite.DB, g grid) {
	t.Helper()
	ctx := t.Context()
	owner, err := db.CreateAccount(ctx, store.Account{Name: "owner", Email: "o@example.org", Role: store.RoleVolunteer, CreatedAt: epoch()})
	if err != nil {
		t.Fatalf("CreateAccount = %v", err)
	}
	n := 0
	agent := func() store.Agent {
		n++
		a, err := db.CreateAgent(ctx, store.Agent{Name: fmt.Sprintf("box%d", n), OwnerID: owner.ID, PublicKey: []byte{byte(n)}, ClaimCode: fmt.Sprintf("CODE-%d", n), CreatedAt: epoch()})
		if err != nil {
			t.Fatalf("CreateAgent = %v", err)
		}
		return a
	}
	decide := func(a store.Agent, state store.AgentState) store.Agent {
		if _, err := db.ClaimAgent(ctx, a.ClaimCode, owner.ID); err != nil {
			t.Fatalf("ClaimAgent = %v", err)
		}
		a, err := db.DecideAgent(ctx, a.ID, state, "admin")
		if err != nil {
			t.Fatalf("DecideAgent = %v", err)
		}
		return a
	}
	for range g.pending {
		agent()
	}
	for range g.rejected {
		decide(agent(), store.AgentRejected)
	}
	worker := decide(agent(), store.AgentApproved)
	for i, ago := range g.seen {
		a := worker
		if i > 0 {
			a = decide(agent(), store.AgentApproved)
		}
		if ago >= 0 {
			if err := db.SeenAgent(ctx, a.ID, epoch().Add(-ago), nil); err != nil {
				t.Fatalf("SeenAgent = %v", err)
			}
		}
		if i < g.paused {
			if err := db.PauseAgent(ctx, a.ID, "disk full", epoch()); err != nil {
				t.Fatalf("PauseAgent = %v", err)
			}
		}
	}
	job := func(lane string) store.Job {
		j, err := db.CreateJob(ctx, store.Job{Package: "pkg", Release: "sid", Arch: "amd64", Lane: lane, CreatedAt: epoch()})
		if err != nil {
			t.Fatalf("CreateJob(lane %q) = %v", lane, err)
		}
		return j
	}
	lease := func(id int64) store.Job {
		j, err := db.LeaseJob(ctx, store.LeaseParams{AgentID: worker.ID, Arch: "amd64", Releases: []string{"sid"}, TTL: time.Hour, Now: epoch(),
			Nonce: fmt.Sprintf("n%d", id), Exclude: func(j store.Job) bool { return j.ID != id }})
		if err != nil || j == nil {
			t.Fatalf("LeaseJob(%d) = %v, %v", id, j, err)
		}
		return *j
	}
	for lane, k := range g.running {
		for range k {
			lease(job(lane).ID)
		}
	}
	for range g.done {
		j := lease(job("").ID)
		if _, err := db.CompleteJob(ctx, store.Result{JobID: j.ID, Attempt: j.Attempt, AgentID: worker.ID, Verdict: dep8.VerdictNeutral, ExitCode: 8,
			Envelope: []byte("{}"), IdempotencyKey: fmt.Sprintf("k%d", j.ID), CreatedAt: epoch()}, epoch()); err != nil {
			t.Fatalf("CompleteJob = %v", err)
		}
	}
	for lane, k := range g.queued {
		for range k {
			job(lane)
		}
	}
}

func TestStoreGauges(t *testing.T) {
	for _, tt := range []struct {
		name string
		grid grid
		want []string
	}{
		{
			name: "empty grid",
			grid: grid{seen: []time.Duration{-1}},
			want: []string{
				`sparegrid_agents{state="approved"} 1`,
				`sparegrid_agents{state="pending"} 0`,
				`sparegrid_agents{state="rejected"} 0`,
				`sparegrid_agents_online 0`,
				`sparegrid_agents_paused 0`,
				`sparegrid_jobs{lane="default",state="held"} 0`,
				`sparegrid_jobs{lane="default",state="queued"} 0`,
				`sparegrid_jobs{lane="default",state="running"} 0`,
			},
		},
		{
			name: "lanes and agents",
			grid: grid{
				queued:  map[string]int{"": 3, "rebuilds": 2},
				running: map[string]int{"": 1, "urgent": 1},
				done:    2,
				pending: 2, rejected: 1,
				seen:   []time.Duration{0, time.Minute, 2 * time.Minute, 3 * time.Minute, -1},
				paused: 2,
			},
			want: []string{
				`sparegrid_agents{state="approved"} 5`,
				`sparegrid_agents{state="pending"} 2`,
				`sparegrid_agents{state="rejected"} 1`,
				`sparegrid_agents_online 3`,
				`sparegrid_agents_paused 2`,
				`sparegrid_jobs{lane="default",state="held"} 0`,
				`sparegrid_jobs{lane="default",state="queued"} 3`,
				`sparegrid_jobs{lane="default",state="running"} 1`,
				`sparegrid_jobs{lane="rebuilds",state="held"} 0`,
				`sparegrid_jobs{lane="rebuilds",state="queued"} 2`,
				`sparegrid_jobs{lane="rebuilds",state="running"} 0`,
				`sparegrid_jobs{lane="urgent",state="held"} 0`,
				`sparegrid_jobs{lane="urgent",state="queued"} 0`,
				`sparegrid_jobs{lane="urgent",state="running"} 1`,
			},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			db := sqlite.NewTemp(t)
			fill(t, db, tt.grid)
			m := New(Config{Source: db, Now: func() time.Time { return epoch() }, Log: quiet()})
			got := scrape(t, m, "sparegrid_jobs", "sparegrid_agents", "sparegrid_agents_online", "sparegrid_agents_paused")
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("scrape() mismatch (-want +got):\n%s", d)
			}
		})
	}
}

func TestLaneCardinalityBounded(t *testing.T) {
	db := sqlite.NewTemp(t)
	queued := make(map[string]int)
	jobs := 0
	for i := range 100 {
		queued[fmt.Sprintf("lane%03d", i)] = 1 + i%3
		jobs += 1 + i%3
	}
	fill(t, db, grid{queued: queued, seen: []time.Duration{0}})
	m := New(Config{Source: db, Now: func() time.Time { return epoch() }, Log: quiet()})
	lanes := make(map[string]bool)
	total := 0
	for _, line := range scrape(t, m, "sparegrid_jobs") {
		_, rest, _ := strings.Cut(line, `lane="`)
		lane, _, _ := strings.Cut(rest, `"`)
		lanes[lane] = true
		var n int
		if _, err := fmt.Sscan(line[strings.LastIndexByte(line, ' ')+1:], &n); err != nil {
			t.Fatalf("sample %q: %v", line, err)
		}
		total += n
	}
	if len(lanes) != DefaultMaxLanes {
		t.Errorf("distinct lanes = %d, want %d: %v", len(lanes), DefaultMaxLanes, lanes)
	}
	if !lanes[OtherLane] {
		t.Errorf("lanes = %v, want %q among them", lanes, OtherLane)
	}
	if total != jobs {
		t.Errorf("jobs over all lanes = %d, want %d", total, jobs)
	}
}

func TestLaneGauges(t *testing.T) {
	q := func(lane string, n int) store.JobCount {
		return store.JobCount{State: store.JobQueued, Lane: lane, Jobs: n}
	}
	r := func(lane string, n int) store.JobCount {
		return store.JobCount{State: store.JobRunning, Lane: lane, Jobs: n}
	}
	h := func(lane string, n int) store.JobCount {
		return store.JobCount{State: store.JobHeld, Lane: lane, Jobs: n}
	}
	lane := func(name string, queued, running, held int) []store.JobCount {
		return []store.JobCount{q(name, queued), r(name, running), h(name, held)}
	}
	join := func(ls ...[]store.JobCount) []store.JobCount {
		var out []store.JobCount
		for _, l := range ls {
			out = append(out, l...)
		}
		return out
	}
	for _, tt := range []struct {
		name     string
		counts   []store.JobCount
		maxLanes int
		want     []store.JobCount
	}{
		{"nothing", nil, 3, lane("default", 0, 0, 0)},
		{"under the cap", []store.JobCount{q("b", 2), r("a", 1)}, 3,
			join(lane("a", 0, 1, 0), lane("b", 2, 0, 0), lane("default", 0, 0, 0))},
		{"busiest lanes keep their names", []store.JobCount{q("a", 1), q("b", 5), r("c", 3), q("d", 1), q("default", 2)}, 3,
			join(lane("b", 5, 0, 0), lane("c", 0, 3, 0), lane("other", 4, 0, 0))},
		{"ties broken by name", []store.JobCount{q("x", 1), q("y", 1), q("z", 1)}, 2,
			join(lane("other", 2, 0, 0), lane("x", 1, 0, 0))},
		{"a lane named other is summed with the rest", []store.JobCount{q("big", 9), q("other", 1), r("small", 1)}, 2,
			join(lane("big", 9, 0, 0), lane("other", 1, 1, 0))},
		{"finished states ignored", []store.JobCount{{State: store.JobDone, Lane: "a", Jobs: 4}, q("default", 1)}, 3,
			lane("default", 1, 0, 0)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := laneGauges(tt.counts, tt.maxLanes)
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("laneGauges(%v, %d) mismatch (-want +got):\n%s", tt.counts, tt.maxLanes, d)
			}
		})
	}
}

func TestCounters(t *testing.T) {
	m := New(Config{Log: quiet()})
	m.Session("quic")
	m.Session("tcp")
	m.Session("carrier-pigeon")
	m.Leased("quic")
	m.Leased("quic")
	m.Leased("tcp")
	m.Result(dep8.VerdictPass, "quic")
	m.Result(dep8.VerdictFail, "tcp")
	m.Result(dep8.VerdictTmpfail, "quic")
	m.Result(dep8.VerdictError, "quic")
	m.Result("made-up", "quic")
	m.Expired(3)
	m.Expired(0)
	want := []string{
		`sparegrid_agent_sessions_total{transport="quic"} 1`,
		`sparegrid_agent_sessions_total{transport="tcp"} 1`,
		`sparegrid_agent_sessions_total{transport="unknown"} 1`,
		`sparegrid_infra_failures_total{kind="lease_expired"} 3`,
		`sparegrid_infra_failures_total{kind="tmpfail"} 2`,
		`sparegrid_leases_total{transport="quic"} 2`,
		`sparegrid_leases_total{transport="tcp"} 1`,
		`sparegrid_leases_total{transport="unknown"} 0`,
	}
	for _, tr := range []string{"quic", "tcp", "unknown"} {
		for _, v := range []string{"error", "fail", "neutral", "pass", "tmpfail", "unknown"} {
			n := 0
			switch {
			case tr == "quic" && (v == "pass" || v == "tmpfail" || v == "error" || v == "unknown"),
				tr == "tcp" && v == "fail":
				n = 1
			}
			want = append(want, fmt.Sprintf(`sparegrid_results_total{transport="%s",verdict="%s"} %d`, tr, v, n))
		}
	}
	got := scrape(t, m, "sparegrid_agent_sessions_total", "sparegrid_infra_failures_total", "sparegrid_leases_total", "sparegrid_results_total")
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("scrape() mismatch (-want +got):\n%s", d)
	}
}

// failing is a Source whose reads fail.
type failing struct{}

var errDown = errors.New("metrics test: database is down")

func (failing) JobCounts(context.Context) ([]store.JobCount, error) { return nil, errDown }
func (failing) AgentCounts(context.Context, time.Time) (store.AgentCounts, error) {
	return store.AgentCounts{}, errDown
}

func TestStoreFailureFailsScrape(t *testing.T) {
	m := New(Config{Source: failing{}, Log: quiet()})
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequestWithContext(t.Context(), http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusInternalServerError {
		t.Errorf("GET /metrics with a failing store = %d, want %d", rec.Code, http.StatusInternalServerError)
	}
}

func TestPrivateRegistry(t *testing.T) {
	a, b := New(Config{Log: quiet()}), New(Config{Log: quiet()})
	a.Leased("quic")
	got := scrape(t, b, "sparegrid_leases_total")
	want := []string{`sparegrid_leases_total{transport="quic"} 0`, `sparegrid_leases_total{transport="tcp"} 0`, `sparegrid_leases_total{transport="unknown"} 0`}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("second Metrics after the first leased a job (-want +got):\n%s", d)
	}
}
