package storetest

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/sparegrid/sparegrid/coordinator/store"
	"github.com/sparegrid/sparegrid/shared/dep8"
)

// testIdempotentResults checks that a result's idempotency key is stored,
// found again, and never stored twice.
func testIdempotentResults(t *testing.T, newStore func(t *testing.T) store.Store) {
	f := newFixture(t, newStore)
	ctx := t.Context()
	start := at(time.Hour)

	_, err := f.s.ResultByKey(ctx, "")
	checkErr(t, "ResultByKey(empty)", err, store.ErrNotFound)
	_, err = f.s.ResultByKey(ctx, "unknown")
	checkErr(t, "ResultByKey(unknown)", err, store.ErrNotFound)

	j1 := f.job(t, "one", 3)
	l1 := f.lease(t, f.agent.ID, start)
	r1 := result(l1, dep8.VerdictPass)
	r1.IdempotencyKey = "key-1"
	f.complete(t, r1, start.Add(time.Second))
	r1.CreatedAt = start.Add(time.Second)

	got, err := f.s.ResultByKey(ctx, "key-1")
	if err != nil {
		t.Fatalf("ResultByKey(key-1) = %v", err)
	}
	diff(t, "ResultByKey(key-1)", got, r1)

	_, err = f.s.CompleteJob(ctx, r1, start.Add(2*time.Second))
	checkErr(t, "CompleteJob(same result again)", err, store.ErrStaleLease)

	// Another job's result may not reuse the key.
	f.job(t, "two", 3)
	l2 := f.lease(t, f.agent.ID, start.Add(time.Minute))
	r2 := result(l2, dep8.VerdictFail)
	r2.IdempotencyKey = "key-1"
	_, err = f.s.CompleteJob(ctx, r2, start.Add(time.Minute+time.Second))
	checkErr(t, "CompleteJob(reused key)", err, store.ErrStaleLease)
	if j := f.mustJob(t, l2.ID); j.State != store.JobRunning {
		t.Errorf("job %d after a refused result is %s, want running", j.ID, j.State)
	}
	all, err := f.s.Results(ctx, j1.ID)
	if err != nil || len(all) != 1 {
		t.Errorf("Results(%d) = %d results, %v; want 1", j1.ID, len(all), err)
	}
}

// testRetryElsewhere checks that a job queued again after an
// infrastructure failure goes to another agent when one is online, and
// comes back to the same agent when none is or the window has passed.
func testRetryElsewhere(t *testing.T, newStore func(t *testing.T) store.Store) {
	start := at(time.Hour)
	window := 10 * time.Minute
	const canRun = `{"arch":"amd64","releases":["unstable"],"backend":"overlay"}`
	leaseAs := func(t *testing.T, f *fixture, agent int64, now time.Time) *store.Job {
		t.Helper()
		j, err := f.s.LeaseJob(t.Context(), store.LeaseParams{
			AgentID: agent, Arch: "amd64", Releases: []string{"unstable"}, TTL: ttl, Now: now,
			Nonce:          fmt.Sprintf("nonce-%d-%d", agent, now.UnixNano()),
			RetryElsewhere: window, OnlineSince: now.Add(-time.Minute),
		})
		if err != nil {
			t.Fatalf("LeaseJob(agent %d) = %v", agent, err)
		}
		return j
	}
	// failOnce leases the job to the fixture's agent and fails it the
	// way named; it returns when the job was queued again.
	failOnce := func(t *testing.T, f *fixture, how string) time.Time {
		t.Helper()
		f.job(t, "infra", 3)
		l := f.lease(t, f.agent.ID, start)
		switch how {
		case "tmpfail":
			f.complete(t, result(l, dep8.VerdictTmpfail), start.Add(time.Second))
			return start.Add(time.Second)
		case "expiry":
			if _, err := f.s.ExpireLeases(t.Context(), start.Add(ttl)); err != nil {
				t.Fatalf("ExpireLeases = %v", err)
			}
			return start.Add(ttl)
		}
		t.Fatalf("unknown failure %q", how)
		return time.Time{}
	}

	for _, how := range []string{"tmpfail", "expiry"} {
		tests := []struct {
			name string
			// otherSeen is when the other agent was last seen, relative
			// to the requeue; nil means never.
			otherSeen   *time.Duration
			otherPaused bool
			// otherCaps is what the other agent advertised; empty means
			// it can run the job.
			otherCaps string
			// after is when the failed agent asks again, after the requeue.
			after    time.Duration
			wantSame bool
		}{
			{name: "another agent online", otherSeen: ptr(time.Duration(0)), after: time.Second, wantSame: false},
			{name: "no other agent", after: time.Second, wantSame: true},
			{name: "other agent long gone", otherSeen: ptr(-time.Hour), after: time.Second, wantSame: true},
			{name: "other agent paused", otherSeen: ptr(time.Duration(0)), otherPaused: true, after: time.Second, wantSame: true},
			{name: "window passed", otherSeen: ptr(window), after: window + time.Second, wantSame: true},
			{name: "other agent on another arch", otherSeen: ptr(time.Duration(0)), otherCaps: `{"arch":"arm64","releases":["unstable"]}`, after: time.Second, wantSame: true},
			{name: "other agent without the release", otherSeen: ptr(time.Duration(0)), otherCaps: `{"arch":"amd64","releases":["trixie"]}`, after: time.Second, wantSame: true},
			{name: "other agent with the release among others", otherSeen: ptr(time.Duration(0)), otherCaps: `{"arch":"amd64","releases":["trixie","unstable"]}`, after: time.Second, wantSame: false},
		}
		for _, tt := range tests {
			t.Run(how+"/"+tt.name, func(t *testing.T) {
				f := newFixture(t, newStore)
				other := f.approvedAgent(t, "box2")
				requeued := failOnce(t, f, how)
				now := requeued.Add(tt.after)
				if tt.otherSeen != nil {
					caps := tt.otherCaps
					if caps == "" {
						caps = canRun
					}
					if err := f.s.SeenAgent(t.Context(), other.ID, requeued.Add(*tt.otherSeen), json.RawMessage(caps)); err != nil {
						t.Fatal(err)
					}
				}
				if tt.otherPaused {
					if err := f.s.PauseAgent(t.Context(), other.ID, "disk full", requeued); err != nil {
						t.Fatal(err)
					}
				}
				got := leaseAs(t, f, f.agent.ID, now)
				if (got != nil) != tt.wantSame {
					t.Fatalf("LeaseJob(failed agent) = %v, want a job: %v", got, tt.wantSame)
				}
				if got != nil {
					if got.Attempt != 2 {
						t.Errorf("LeaseJob(failed agent) = attempt %d, want 2", got.Attempt)
					}
					return
				}
				l := leaseAs(t, f, other.ID, now)
				if l == nil || l.Attempt != 2 {
					t.Errorf("LeaseJob(other agent) = %+v, want attempt 2", l)
				}
			})
		}
	}

	t.Run("without RetryElsewhere", func(t *testing.T) {
		f := newFixture(t, newStore)
		other := f.approvedAgent(t, "box2")
		requeued := failOnce(t, f, "tmpfail")
		if err := f.s.SeenAgent(t.Context(), other.ID, requeued, json.RawMessage(canRun)); err != nil {
			t.Fatal(err)
		}
		if l := f.lease(t, f.agent.ID, requeued.Add(time.Second)); l.Attempt != 2 {
			t.Errorf("LeaseJob = attempt %d, want 2", l.Attempt)
		}
	})
}

// testPauseAgent checks recording, keeping and clearing an agent's pause.
func testPauseAgent(t *testing.T, newStore func(t *testing.T) store.Store) {
	f := newFixture(t, newStore)
	ctx := t.Context()
	tests := []struct {
		name       string
		id         int64
		reason     string
		at         time.Time
		want       error
		wantReason string
		wantSince  *time.Time
	}{
		{name: "pause", id: f.agent.ID, reason: "3 infrastructure failures in a row", at: at(time.Minute),
			wantReason: "3 infrastructure failures in a row", wantSince: ptr(at(time.Minute))},
		{name: "same reason keeps the time", id: f.agent.ID, reason: "3 infrastructure failures in a row", at: at(2 * time.Minute),
			wantReason: "3 infrastructure failures in a row", wantSince: ptr(at(time.Minute))},
		{name: "new reason", id: f.agent.ID, reason: "1.2 GiB free", at: at(3 * time.Minute),
			wantReason: "1.2 GiB free", wantSince: ptr(at(3 * time.Minute))},
		{name: "resume", id: f.agent.ID, reason: "", at: at(4 * time.Minute)},
		{name: "unknown agent", id: 9999, reason: "x", at: at(5 * time.Minute), want: store.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := f.s.PauseAgent(ctx, tt.id, tt.reason, tt.at)
			checkErr(t, "PauseAgent", err, tt.want)
			if tt.want != nil {
				return
			}
			a, err := f.s.Agent(ctx, tt.id)
			if err != nil {
				t.Fatalf("Agent(%d) = %v", tt.id, err)
			}
			if a.Paused != tt.wantReason {
				t.Errorf("Agent(%d).Paused = %q, want %q", tt.id, a.Paused, tt.wantReason)
			}
			diff(t, "Agent.PausedAt", a.PausedAt, tt.wantSince)
		})
	}
}
