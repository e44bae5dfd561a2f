package api

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sparegrid/sparegrid/coordinator/apiv1"
	"github.com/sparegrid/sparegrid/coordinator/rules"
	"github.com/sparegrid/sparegrid/coordinator/store"
)

const testRules = `
[[rule]]
name = "uploads"
when = 'event.type == "upload"'
releases = ["unstable"]
priority = 7

[[rule]]
name = "needs-suite"
when = 'event.metadata["suite"] == "unstable"'

[[rule]]
name = "reverse-deps"
when = 'event.type == "upload"'
packages = 'triggered(event.source)'
`

// newEventFixture is a fixture whose API expands events with testRules,
// on a grid of an amd64 agent and a paused arm64 one, both on unstable.
func newEventFixture(t *testing.T, now time.Time) *fixture {
	t.Helper()
	db, bs := openStores(t)
	admin, tok, err := CreateAccount(t.Context(), db, store.Account{Name: "admin", Email: "admin@example.org", Role: store.RoleAdmin, CreatedAt: now})
	if err != nil {
		t.Fatal(err)
	}
	for _, ag := range []struct {
		name, caps, paused string
	}{
		{"box1", `{"arch":"amd64","releases":["unstable"]}`, ""},
		{"box2", `{"arch":"arm64","releases":["unstable"]}`, "disk nearly full"},
	} {
		a, err := db.CreateAgent(t.Context(), store.Agent{Name: ag.name, OwnerID: admin.ID, PublicKey: []byte(ag.name),
			ClaimCode: "C-" + ag.name, State: store.AgentApproved, AutoApproved: true, CreatedAt: now})
		if err != nil {
			t.Fatal(err)
		}
		if err := db.SeenAgent(t.Context(), a.ID, now, json.RawMessage(ag.caps)); err != nil {
			t.Fatal(err)
		}
		if ag.paused != "" {
			if err := db.PauseAgent(t.Context(), a.ID, ag.paused, now); err != nil {
				t.Fatal(err)
			}
		}
	}
	rs, err := rules.ParseRules([]byte(testRules))
	if err != nil {
		t.Fatal(err)
	}
	eng, err := rules.New(rs, rules.Options{Targets: AgentTargets(db), ReverseDeps: NoReverseDeps()})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(New(Config{
		Store: db, Blobs: bs, Events: eng, MaxAttempts: 2, Now: func() time.Time { return now },
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}))
	t.Cleanup(srv.Close)
	return &fixture{t: t, srv: srv, db: db, admin: tok}
}

func TestPostEvent(t *testing.T) {
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	f := newEventFixture(t, now)
	maint := f.account("ci", "maintainer")

	var got apiv1.Event
	body := `{"type":"upload","source":"libfoo","version":"1.2-1","build_id":"4711"}`
	code, _, b := f.do("POST", "/api/v1/events", maint, strings.NewReader(body), &got)
	if code != http.StatusCreated {
		t.Fatalf("POST /events = %d %s, want 201", code, b)
	}
	// The arm64 request waits as a queued job until its paused agent
	// takes work again.
	if len(got.Jobs) != 2 {
		t.Fatalf("POST /events jobs = %v, want two", got.Jobs)
	}
	jobID, waiting := got.Jobs[0], got.Jobs[1]
	reason := "event 1 (upload of libfoo 1.2-1, build 4711) matched rule 'uploads'"
	want := apiv1.Event{
		ID: 1, Type: "upload", Source: "libfoo", Version: "1.2-1", BuildID: "4711", Metadata: map[string]string{},
		Producer: "ci", Received: now,
		Rules: []apiv1.EventRule{
			{Rule: "uploads", Matched: true, Warnings: []string{}, Requests: 2},
			{Rule: "needs-suite", Warnings: []string{}},
			{Rule: "reverse-deps", Matched: true, Warnings: []string{}},
		},
		Requests: []apiv1.EventRequest{
			{Package: "libfoo", Version: "1.2-1", Release: "unstable", Arch: "amd64", Triggers: []string{"libfoo/1.2-1"},
				Priority: 7, Reason: reason, Job: &jobID, SplitJobs: []int64{}},
			{Package: "libfoo", Version: "1.2-1", Release: "unstable", Arch: "arm64", Triggers: []string{"libfoo/1.2-1"},
				Priority: 7, Reason: reason, Pending: true, Job: &waiting, SplitJobs: []int64{}},
		},
		Jobs: []int64{jobID, waiting},
	}
	ignore := cmp.FilterPath(func(p cmp.Path) bool {
		s := p.String()
		return s == "Rules.Error" || s == "Requests.PendingReason"
	}, cmp.Ignore())
	if d := cmp.Diff(want, got, ignore); d != "" {
		t.Errorf("POST /events mismatch (-want +got):\n%s", d)
	}
	errs := []struct {
		rule, contains string
	}{
		{"uploads", ""},
		{"needs-suite", "no such key"},
		{"reverse-deps", ErrNoArchive.Error()},
	}
	for i, e := range errs {
		if r := got.Rules[i]; (e.contains == "") != (r.Error == "") || !strings.Contains(r.Error, e.contains) {
			t.Errorf("rule %s error = %q, want one containing %q", r.Rule, r.Error, e.contains)
		}
	}
	if pr := got.Requests[1].PendingReason; !strings.Contains(pr, "disk nearly full") {
		t.Errorf("pending reason = %q, want it to name the paused agent's reason", pr)
	}

	j, err := f.db.Job(t.Context(), jobID)
	if err != nil {
		t.Fatal(err)
	}
	wantJob := store.Job{ID: jobID, Package: "libfoo", Version: "1.2-1", Release: "unstable", Arch: "amd64",
		Triggers: []string{"libfoo/1.2-1"}, State: store.JobQueued, MaxAttempts: 2, Reason: reason, SubmittedBy: "ci", CreatedAt: now,
		Priority: 7, Lane: store.LaneDefault}
	if d := cmp.Diff(wantJob, j); d != "" {
		t.Errorf("job %d mismatch (-want +got):\n%s", jobID, d)
	}

	var one apiv1.Event
	if code, _, b := f.do("GET", "/api/v1/events/1", "", nil, &one); code != http.StatusOK {
		t.Fatalf("GET /events/1 = %d %s", code, b)
	}
	if d := cmp.Diff(got, one); d != "" {
		t.Errorf("GET /events/1 mismatch (-posted +read):\n%s", d)
	}

	var nothing apiv1.Event
	if code, _, b := f.do("POST", "/api/v1/events", f.admin, strings.NewReader(`{"type":"image-built"}`), &nothing); code != http.StatusCreated {
		t.Fatalf("POST /events image-built = %d %s", code, b)
	}
	if len(nothing.Jobs) != 0 || len(nothing.Requests) != 0 || nothing.Rules[0].Matched || nothing.Producer != "admin" {
		t.Errorf("POST /events image-built = %+v, want no match, no requests, producer admin", nothing)
	}

	var list apiv1.EventList
	if code, _, b := f.do("GET", "/api/v1/events", "", nil, &list); code != http.StatusOK {
		t.Fatalf("GET /events = %d %s", code, b)
	}
	if d := cmp.Diff([]apiv1.Event{nothing, got}, list.Events); d != "" {
		t.Errorf("GET /events mismatch (-want +got):\n%s", d)
	}
	if code, _, b := f.do("GET", "/api/v1/events?limit=1", "", nil, &list); code != http.StatusOK || len(list.Events) != 1 || list.Events[0].ID != nothing.ID {
		t.Errorf("GET /events?limit=1 = %d %s, want only event %d", code, b, nothing.ID)
	}
}

// TestPostEventBlocked checks that a whole-job blocklist rule keeps an
// event's request from becoming a job, and says so on the event.
func TestPostEventBlocked(t *testing.T) {
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	f := newEventFixture(t, now)
	if _, err := f.db.AddBlockRule(t.Context(), store.BlockRule{Package: "libfoo*", Reason: "hangs the testbed", CreatedBy: "admin", CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	var got apiv1.Event
	body := `{"type":"upload","source":"libfoo","version":"1.2-1"}`
	if code, _, b := f.do("POST", "/api/v1/events", f.admin, strings.NewReader(body), &got); code != http.StatusCreated {
		t.Fatalf("POST /events = %d %s, want 201", code, b)
	}
	if len(got.Jobs) != 0 || len(got.Requests) == 0 || !strings.Contains(got.Requests[0].Blocked, "hangs the testbed") || got.Requests[0].Job != nil {
		t.Errorf("POST /events with libfoo blocked = jobs %v, requests %+v; want no job and the rule on the request", got.Jobs, got.Requests)
	}
	if jobs, err := f.db.ListJobs(t.Context(), store.JobFilter{}); err != nil || len(jobs) != 0 {
		t.Errorf("jobs after a blocked event = %d (%v), want none", len(jobs), err)
	}
}

func TestPostEventRefusals(t *testing.T) {
	f := newEventFixture(t, time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC))
	maint := f.account("ci", "maintainer")
	vol := f.account("vol", "volunteer")
	tests := []struct {
		name, method, path, token, body string
		status                          int
		code                            string
	}{
		{"anonymous", "POST", "/api/v1/events", "", `{"type":"upload"}`, 401, "unauthenticated"},
		{"volunteer", "POST", "/api/v1/events", vol, `{"type":"upload"}`, 403, "forbidden"},
		{"sets producer", "POST", "/api/v1/events", maint, `{"type":"upload","producer":"x"}`, 400, "bad_request"},
		{"no type", "POST", "/api/v1/events", maint, `{"source":"libfoo"}`, 400, "bad_request"},
		{"not json", "POST", "/api/v1/events", maint, `upload`, 400, "bad_request"},
		{"too large", "POST", "/api/v1/events", maint, `{"type":"upload","build_id":"` + strings.Repeat("x", rules.MaxEventSize) + `"}`, 400, "bad_request"},
		{"unknown event", "GET", "/api/v1/events/99", "", "", 404, "not_found"},
		{"bad id", "GET", "/api/v1/events/x", "", "", 400, "bad_request"},
		{"bad limit", "GET", "/api/v1/events?limit=0", "", "", 400, "bad_request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body io.Reader
			if tt.body != "" {
				body = strings.NewReader(tt.body)
			}
			status, _, b := f.do(tt.method, tt.path, tt.token, body, nil)
			if status != tt.status || errorCode(b) != tt.code {
				t.Errorf("%s %s = %d %s, want %d %s", tt.method, tt.path, status, b, tt.status, tt.code)
			}
		})
	}
	evs, err := f.db.ListEvents(t.Context(), 0)
	if err != nil || len(evs) != 0 {
		t.Errorf("ListEvents after refusals = %v, %v; want none", evs, err)
	}
}

func TestAgentTargets(t *testing.T) {
	f := newEventFixture(t, time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC))
	got, err := AgentTargets(f.db).Status(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	want := []rules.TargetStatus{
		{Target: rules.Target{Release: "unstable", Arch: "amd64"}, Capable: true},
		{Target: rules.Target{Release: "unstable", Arch: "arm64"},
			Reason: "every agent offering unstable/arm64 is paused; agent 2 (box2) is paused: disk nearly full"},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("AgentTargets mismatch (-want +got):\n%s", d)
	}
	if _, err := NoReverseDeps().Triggered(t.Context(), "libfoo"); !errors.Is(err, rules.ErrTriggered) {
		t.Errorf("NoReverseDeps().Triggered = %v, want %v", err, rules.ErrTriggered)
	}
}
