package api

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/sparegrid/sparegrid/coordinator/apiv1"
	"github.com/sparegrid/sparegrid/coordinator/store"
	"github.com/sparegrid/sparegrid/shared/dep8"
)

// runJob queues a job and, unless v is empty, has agent run it to verdict
// v, finishing at done.
func (f *fixture) runJob(j store.Job, agent int64, v dep8.Verdict, done time.Time) store.Job {
	f.t.Helper()
	ctx := f.t.Context()
	j.Release, j.Arch, j.CreatedAt = "trixie", "amd64", done.Add(-time.Hour)
	j, err := f.db.CreateJob(ctx, j)
	if err != nil {
		f.t.Fatalf("CreateJob(%s) = %v", j.Package, err)
	}
	if v == "" {
		return j
	}
	l, err := f.db.LeaseJob(ctx, store.LeaseParams{AgentID: agent, Arch: "amd64", Releases: []string{"trixie"},
		TTL: time.Hour, Now: done.Add(-time.Minute), Nonce: fmt.Sprintf("n%d", j.ID)})
	if err != nil || l == nil || l.ID != j.ID {
		f.t.Fatalf("LeaseJob() = %+v, %v; want job %d", l, err, j.ID)
	}
	r := store.Result{JobID: l.ID, Attempt: l.Attempt, AgentID: agent, Verdict: v, Envelope: []byte("{}"),
		Tests:   []dep8.Test{{Name: "smoke", Result: dep8.Pass}},
		Harness: dep8.Harness{AgentVersion: "v1", AutopkgtestVersion: "5.40", Backend: "overlay", ImageDigest: "sha256:aa"}}
	if v == dep8.VerdictFail {
		r.Tests[0].Result = dep8.Fail
	}
	j, err = f.db.CompleteJob(ctx, r, done)
	if err != nil {
		f.t.Fatalf("CompleteJob(%d) = %v", l.ID, err)
	}
	return j
}

func TestVerdicts(t *testing.T) {
	f := newFixture(t)
	owner, err := f.db.AccountByName(t.Context(), "admin")
	if err != nil {
		t.Fatal(err)
	}
	ag, err := f.db.CreateAgent(t.Context(), store.Agent{Name: "box", OwnerID: owner.ID, PublicKey: []byte("k"),
		ClaimCode: "C1", State: store.AgentApproved, AutoApproved: true})
	if err != nil {
		t.Fatal(err)
	}
	// Two agents offer trixie/amd64, so a failure on one can be
	// confirmed on the other.
	other, err := f.db.CreateAgent(t.Context(), store.Agent{Name: "box2", OwnerID: owner.ID, PublicKey: []byte("k2"),
		ClaimCode: "C2", State: store.AgentApproved, AutoApproved: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []int64{ag.ID, other.ID} {
		caps := []byte(`{"arch":"amd64","releases":["trixie"],"backend":"overlay"}`)
		if err := f.db.SeenAgent(t.Context(), id, time.Now(), caps); err != nil {
			t.Fatal(err)
		}
	}
	day := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	glibc := []string{"glibc/2.41-1"}
	base := f.runJob(store.Job{Package: "hello", Version: "2.10-2"}, ag.ID, dep8.VerdictPass, day)
	failed := f.runJob(store.Job{Package: "hello", Version: "2.10-3", Triggers: glibc}, ag.ID, dep8.VerdictFail, day.Add(time.Hour))
	queued := f.runJob(store.Job{Package: "hello", Version: "2.11-1", Triggers: glibc}, 0, "", day.Add(2*time.Hour))
	f.runJob(store.Job{Package: "other", Triggers: glibc}, 0, "", day)

	baseline := &apiv1.VerdictBaseline{JobID: base.ID, Result: dep8.VerdictPass, Version: "2.10-2", Finished: day}
	rev := dep8.Harness{AgentVersion: "v1", AutopkgtestVersion: "5.40", Backend: "overlay", ImageDigest: "sha256:aa"}.Rev()
	running := apiv1.Verdict{Package: "hello", Version: "2.10-3", Triggers: glibc, Release: "trixie", Arch: "amd64",
		Status: apiv1.StatusRunning, Jobs: []int64{failed.ID, base.ID}, HarnessRevisions: []string{rev},
		Baseline: baseline, FailedOn: []int64{ag.ID}, OnlyTests: []string{}}
	waiting := apiv1.Verdict{Package: "hello", Version: "2.11-1", Triggers: glibc, Release: "trixie", Arch: "amd64",
		Status: apiv1.StatusRunning, Jobs: []int64{queued.ID}, HarnessRevisions: []string{},
		Baseline: baseline, FailedOn: []int64{}, OnlyTests: []string{}}
	retry := apiv1.VerdictRetry{Package: "hello", Version: "2.10-3", Triggers: glibc, Release: "trixie", Arch: "amd64",
		AvoidAgents: []int64{ag.ID}, OnlyTests: []string{}}

	tests := []struct {
		name       string
		query      string
		want       apiv1.VerdictList
		wantReason []string // in each verdict's reason, in order
	}{
		{
			name:       "every version",
			query:      "?package=hello",
			want:       apiv1.VerdictList{Package: "hello", Verdicts: []apiv1.Verdict{running, waiting}, Retries: []apiv1.VerdictRetry{retry}},
			wantReason: []string{fmt.Sprintf("job %d", failed.ID), fmt.Sprintf("queued as job %d", queued.ID)},
		},
		{
			name:       "one version",
			query:      "?package=hello&version=2.11-1",
			want:       apiv1.VerdictList{Package: "hello", Verdicts: []apiv1.Verdict{waiting}, Retries: []apiv1.VerdictRetry{}},
			wantReason: []string{fmt.Sprintf("queued as job %d", queued.ID)},
		},
		{
			name:  "unknown package",
			query: "?package=nothing",
			want:  apiv1.VerdictList{Package: "nothing", Verdicts: []apiv1.Verdict{}, Retries: []apiv1.VerdictRetry{}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got apiv1.VerdictList
			code, _, body := f.do("GET", "/api/v1/verdicts"+tt.query, "", nil, &got)
			if code != 200 {
				t.Fatalf("GET /verdicts%s = %d %s, want 200", tt.query, code, body)
			}
			if !strings.Contains(string(body), `"verdicts": [`) || !strings.Contains(string(body), `"retries": [`) {
				t.Errorf("GET /verdicts%s = %s, want lists, never null", tt.query, body)
			}
			opts := cmpopts.IgnoreFields(apiv1.Verdict{}, "Reason")
			if d := cmp.Diff(tt.want, got, opts, cmpopts.IgnoreFields(apiv1.VerdictRetry{}, "Reason")); d != "" {
				t.Errorf("GET /verdicts%s mismatch (-want +got):\n%s", tt.query, d)
			}
			for i, v := range got.Verdicts {
				if i < len(tt.wantReason) && !strings.Contains(v.Reason, tt.wantReason[i]) {
					t.Errorf("GET /verdicts%s: verdict %d reason = %q, want it to name %q", tt.query, i, v.Reason, tt.wantReason[i])
				}
			}
			for _, r := range got.Retries {
				if r.Reason == "" {
					t.Errorf("GET /verdicts%s: retry %+v has no reason", tt.query, r)
				}
			}
		})
	}
}

func TestVerdictsRefusals(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name    string
		query   string
		wantMsg string
	}{
		{name: "no package", query: "", wantMsg: "package is required"},
		{name: "bad package", query: "?package=Hello%21", wantMsg: `package "Hello!" is not a Debian source package name`},
		{name: "bad version", query: "?package=hello&version=1%202", wantMsg: `version "1 2" is not a Debian version`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, body := f.do("GET", "/api/v1/verdicts"+tt.query, "", nil, nil)
			if code != 400 || !strings.Contains(errorMessage(body), tt.wantMsg) {
				t.Errorf("GET /verdicts%s = %d %s, want 400 with %q", tt.query, code, body, tt.wantMsg)
			}
		})
	}
}

func TestScheduleWithoutPolicy(t *testing.T) {
	f := newFixture(t)
	var s apiv1.Schedule
	code, _, body := f.do("GET", "/api/v1/schedule", "", nil, &s)
	if code != 200 || s.Running || s.Last != nil || s.LastSweep != nil {
		t.Errorf("GET /schedule = %d %s, want 200 and a coordinator running no policy", code, body)
	}
}
