package client_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/sparegrid/sparegrid/coordinator/apiv1"
	"github.com/sparegrid/sparegrid/coordinator/client"
	"github.com/sparegrid/sparegrid/coordinator/client/clienttest"
	"github.com/sparegrid/sparegrid/shared/dep8"
)

const (
	adminToken      = "sgp_admin000_secret"
	maintainerToken = "sgp_maint000_secret"
)

var created = time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC)

func newFake(t *testing.T) *clienttest.Server {
	t.Helper()
	s := clienttest.New(t)
	s.AddToken(adminToken, client.Account{Name: "root", Role: client.RoleAdmin, CreatedAt: created})
	s.AddToken(maintainerToken, client.Account{Name: "maint", Role: client.RoleMaintainer, CreatedAt: created})
	return s
}

func TestVersion(t *testing.T) {
	s := newFake(t)
	got, err := client.New(s.URL, "", nil).Version(t.Context())
	if err != nil {
		t.Fatalf("Version() error: %v", err)
	}
	if want := (client.VersionInfo{Version: "fake", Protocol: 1}); got != want {
		t.Errorf("Version() = %+v, want %+v", got, want)
	}
}

func TestCreateAccount(t *testing.T) {
	s := newFake(t)
	req := client.CreateAccountRequest{Name: "alice", Email: "[email protected]", Role: client.RoleVolunteer, DisplayName: "Alice"}
	acct, tok, err := client.New(s.URL, adminToken, nil).CreateAccount(t.Context(), req)
	if err != nil {
		t.Fatalf("CreateAccount() error: %v", err)
	}
	if !strings.HasPrefix(tok, "sgp_") {
		t.Errorf("CreateAccount() token = %q, want sgp_ prefix", tok)
	}
	if acct.Name != "alice" || acct.Role != client.RoleVolunteer || acct.DisplayName != "Alice" {
		t.Errorf("CreateAccount() account = %+v", acct)
	}
	who, err := client.New(s.URL, tok, nil).Whoami(t.Context())
	if err != nil {
		t.Fatalf("Whoami() with new token error: %v", err)
	}
	if who.Name != "alice" {
		t.Errorf("Whoami() = %q, want alice", who.Name)
	}

	tests := []struct {
		name    string
		token   string
		req     client.CreateAccountRequest
		wantErr error
	}{
		{name: "no token", req: req, wantErr: client.ErrUnauthenticated},
		{name: "bad token", token: "sgp_nope", req: req, wantErr: client.ErrUnauthenticated},
		{name: "not admin", token: maintainerToken, req: req, wantErr: client.ErrForbidden},
		{name: "exists", token: adminToken, req: req, wantErr: client.ErrConflict},
		{name: "bad role", token: adminToken, req: client.CreateAccountRequest{Name: "bob", Role: "king"}, wantErr: client.ErrBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := client.New(s.URL, tt.token, nil).CreateAccount(t.Context(), tt.req)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("CreateAccount() error = %v, want %v", err, tt.wantErr)
			}
			var aerr *client.APIError
			if !errors.As(err, &aerr) || aerr.Message == "" || aerr.Status < 400 {
				t.Errorf("CreateAccount() error = %#v, want an *APIError with status and message", err)
			}
		})
	}
}

func TestAgents(t *testing.T) {
	s := newFake(t)
	seen := created.Add(time.Hour)
	s.AddAgent(client.Agent{
		ID: 3, Name: "box", Owner: "maint", State: client.AgentPending, Labels: []string{"fast"},
		Capabilities: json.RawMessage(`{"arch":"amd64","releases":["trixie"],"backend":"overlay"}`),
		PublicKey:    []byte{1, 2, 3}, KeyID: "sha256:00", CreatedAt: created, LastSeen: &seen,
	}, "ABCD-1234")
	s.AddAgent(client.Agent{ID: 4, Name: "other", Owner: "root", State: client.AgentPending, CreatedAt: created}, "WXYZ-0000")
	anon := client.New(s.URL, "", nil)
	maint := client.New(s.URL, maintainerToken, nil)
	admin := client.New(s.URL, adminToken, nil)

	list, err := anon.Agents(t.Context())
	if err != nil {
		t.Fatalf("Agents() error: %v", err)
	}
	if len(list) != 2 || list[0].ID != 3 || list[1].ID != 4 {
		t.Fatalf("Agents() = %+v, want agents 3 and 4", list)
	}
	got, err := anon.Agent(t.Context(), 3)
	if err != nil {
		t.Fatalf("Agent(3) error: %v", err)
	}
	if diff := cmp.Diff(s.Agent(3), got); diff != "" {
		t.Errorf("Agent(3) mismatch (-want +got):\n%s", diff)
	}
	caps, err := got.ParseCapabilities()
	if want := (&client.Capabilities{Arch: "amd64", Releases: []string{"trixie"}, Backend: "overlay"}); err != nil || !cmp.Equal(caps, want) {
		t.Errorf("Agent(3).ParseCapabilities() = %+v, %v, want %+v", caps, err, want)
	}
	if _, err := anon.Agent(t.Context(), 99); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("Agent(99) error = %v, want %v", err, client.ErrNotFound)
	}

	if _, err := maint.ClaimAgent(t.Context(), "WXYZ-0000"); !errors.Is(err, client.ErrForbidden) {
		t.Errorf("ClaimAgent(someone else's) error = %v, want %v", err, client.ErrForbidden)
	}
	claimed, err := maint.ClaimAgent(t.Context(), "ABCD-1234")
	if err != nil || !claimed.Claimed || claimed.ID != 3 {
		t.Errorf("ClaimAgent() = %+v, %v, want agent 3 claimed", claimed, err)
	}
	if _, err := maint.ApproveAgent(t.Context(), 3); !errors.Is(err, client.ErrForbidden) {
		t.Errorf("ApproveAgent() as maintainer error = %v, want %v", err, client.ErrForbidden)
	}
	approved, err := admin.ApproveAgent(t.Context(), 3)
	if err != nil || approved.State != client.AgentApproved || approved.DecidedBy != "root" {
		t.Errorf("ApproveAgent() = %+v, %v, want approved by root", approved, err)
	}
	rejected, err := admin.RejectAgent(t.Context(), 4)
	if err != nil || rejected.State != client.AgentRejected {
		t.Errorf("RejectAgent() = %+v, %v, want rejected", rejected, err)
	}
}

func TestSubmitWithSource(t *testing.T) {
	s := newFake(t)
	c := client.New(s.URL, maintainerToken, nil)
	archive := []byte("not really a tar, the fake does not care")
	sum := sha256.Sum256(archive)
	digest := hex.EncodeToString(sum[:])

	if _, err := c.UploadSource(t.Context(), bytes.NewReader(archive), strings.Repeat("0", 64), int64(len(archive))); !errors.Is(err, client.ErrBadRequest) {
		t.Errorf("UploadSource(wrong digest) error = %v, want %v", err, client.ErrBadRequest)
	}
	ref, err := c.UploadSource(t.Context(), bytes.NewReader(archive), digest, int64(len(archive)))
	if err != nil {
		t.Fatalf("UploadSource() error: %v", err)
	}
	if want := (client.SourceRef{SHA256: digest, Size: int64(len(archive))}); ref != want {
		t.Errorf("UploadSource() = %+v, want %+v", ref, want)
	}
	if got, _ := s.Source(digest); !bytes.Equal(got, archive) {
		t.Errorf("fake holds %q, want %q", got, archive)
	}

	req := client.SubmitRequest{
		Package: "hello", Release: "trixie", Triggers: []string{"glibc/2.41-1"},
		Source: &client.Source{SHA256: digest, Size: ref.Size, Kind: client.KindTree, Entry: "hello/"},
	}
	job, err := c.SubmitJob(t.Context(), req)
	if err != nil {
		t.Fatalf("SubmitJob() error: %v", err)
	}
	if job.ID == 0 || job.State != client.StateQueued || job.Arch != "amd64" || job.SubmittedBy != "maint" {
		t.Errorf("SubmitJob() = %+v", job)
	}
	if diff := cmp.Diff([]client.SubmitRequest{req}, s.Submitted()); diff != "" {
		t.Errorf("submitted mismatch (-want +got):\n%s", diff)
	}
	if _, err := client.New(s.URL, "", nil).SubmitJob(t.Context(), req); !errors.Is(err, client.ErrUnauthenticated) {
		t.Errorf("SubmitJob() without token error = %v, want %v", err, client.ErrUnauthenticated)
	}
}

func TestJobs(t *testing.T) {
	s := newFake(t)
	agent := int64(3)
	exit := 4
	done := client.Job{
		ID: 1, Package: "hello", Version: "1.0-1", Release: "trixie", Arch: "amd64", State: client.StateDone,
		Verdict: dep8.VerdictFail, Attempt: 1, Agent: &agent, AgentName: "box", Owner: "maint",
		CreatedAt: created, FinishedAt: &created, ExitCode: &exit,
		Tests:   []client.Test{{Name: "smoke", Result: dep8.Fail, Detail: "non-zero exit status 1"}},
		Harness: &client.Harness{AgentVersion: "v1", AutopkgtestVersion: "5.40", Backend: "overlay", ImageDigest: "sha256:aa"},
		Blobs:   []client.Blob{{Name: "log", SHA256: strings.Repeat("a", 64), Size: 3}},
		LogURL:  "/api/v1/jobs/1/log", Triggers: []string{},
	}
	s.PutJob(done)
	s.PutJob(client.Job{ID: 2, Package: "hello", Release: "trixie", Arch: "amd64", State: client.StateQueued, CreatedAt: created})
	s.PutJob(client.Job{ID: 3, Package: "other", Release: "trixie", Arch: "amd64", State: client.StateQueued, CreatedAt: created})
	c := client.New(s.URL+"/", "", nil)

	got, err := c.Job(t.Context(), 1)
	if err != nil {
		t.Fatalf("Job(1) error: %v", err)
	}
	if diff := cmp.Diff(done, got); diff != "" {
		t.Errorf("Job(1) mismatch (-want +got):\n%s", diff)
	}

	ids := func(jobs []client.Job) []int64 {
		var out []int64
		for _, j := range jobs {
			out = append(out, j.ID)
		}
		return out
	}
	tests := []struct {
		name   string
		filter client.JobsFilter
		want   []int64
	}{
		{name: "all", want: []int64{3, 2, 1}},
		{name: "package", filter: client.JobsFilter{Package: "hello"}, want: []int64{2, 1}},
		{name: "state", filter: client.JobsFilter{State: client.StateQueued}, want: []int64{3, 2}},
		{name: "limit", filter: client.JobsFilter{Limit: 1}, want: []int64{3}},
		{name: "none", filter: client.JobsFilter{Package: "absent"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			jobs, err := c.Jobs(t.Context(), tt.filter)
			if err != nil {
				t.Fatalf("Jobs(%+v) error: %v", tt.filter, err)
			}
			if diff := cmp.Diff(tt.want, ids(jobs)); diff != "" {
				t.Errorf("Jobs(%+v) ids mismatch (-want +got):\n%s", tt.filter, diff)
			}
		})
	}

	results, err := c.Results(t.Context(), "hello")
	if err != nil {
		t.Fatalf("Results(hello) error: %v", err)
	}
	if diff := cmp.Diff([]int64{1}, ids(results)); diff != "" {
		t.Errorf("Results(hello) ids mismatch (-want +got):\n%s", diff)
	}
	if _, err := c.Job(t.Context(), 42); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("Job(42) error = %v, want %v", err, client.ErrNotFound)
	}
}

func TestDownloads(t *testing.T) {
	s := newFake(t)
	s.PutJob(client.Job{ID: 1, Package: "hello", State: client.StateDone, CreatedAt: created})
	s.SetLog(1, "autopkgtest says hello\n")
	s.SetEnvelope(1, []byte(`{"payloadType":"x"}`))
	blob := []byte("artifact bytes")
	digest := s.PutBlob("", blob)
	c := client.New(s.URL, "", nil)

	var log bytes.Buffer
	if err := c.Log(t.Context(), 1, &log); err != nil {
		t.Fatalf("Log(1) error: %v", err)
	}
	if got, want := log.String(), "autopkgtest says hello\n"; got != want {
		t.Errorf("Log(1) = %q, want %q", got, want)
	}
	if err := c.Log(t.Context(), 2, &log); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("Log(2) error = %v, want %v", err, client.ErrNotFound)
	}

	env, err := c.Envelope(t.Context(), 1)
	if err != nil {
		t.Fatalf("Envelope(1) error: %v", err)
	}
	if got, want := string(env), `{"payloadType":"x"}`; got != want {
		t.Errorf("Envelope(1) = %q, want %q", got, want)
	}
	if _, err := c.Envelope(t.Context(), 2); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("Envelope(2) error = %v, want %v", err, client.ErrNotFound)
	}

	var b bytes.Buffer
	n, err := c.Blob(t.Context(), digest, &b)
	if err != nil {
		t.Fatalf("Blob() error: %v", err)
	}
	if n != int64(len(blob)) || !bytes.Equal(b.Bytes(), blob) {
		t.Errorf("Blob() = %d, %q, want %d, %q", n, b.Bytes(), len(blob), blob)
	}
	if _, err := c.Blob(t.Context(), "../jobs", &b); !errors.Is(err, client.ErrBadRequest) {
		t.Errorf("Blob(../jobs) error = %v, want %v", err, client.ErrBadRequest)
	}
	if _, err := c.Blob(t.Context(), strings.Repeat("b", 64), &b); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("Blob(absent) error = %v, want %v", err, client.ErrNotFound)
	}
}

// TestForeignAnswers checks answers that do not come from the API's own
// error handling, as when a proxy stands in front of the coordinator.
func TestForeignAnswers(t *testing.T) {
	tests := []struct {
		name     string
		status   int
		ctype    string
		body     string
		wantErr  error
		wantCode string
	}{
		{name: "proxy 502", status: http.StatusBadGateway, ctype: "text/html", body: "<h1>Bad Gateway</h1>", wantErr: client.ErrInternal, wantCode: "internal"},
		{name: "plain 404", status: http.StatusNotFound, ctype: "text/plain", body: "404 page not found", wantErr: client.ErrNotFound, wantCode: "not_found"},
		{name: "html 200", status: http.StatusOK, ctype: "text/html", body: "<html>", wantErr: client.ErrBadResponse},
		{name: "broken json", status: http.StatusOK, ctype: "application/json", body: `{"version":`, wantErr: client.ErrBadResponse},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", tt.ctype)
				w.WriteHeader(tt.status)
				w.Write([]byte(tt.body))
			}))
			t.Cleanup(hs.Close)
			_, err := client.New(hs.URL, "", nil).Version(t.Context())
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Version() error = %v, want %v", err, tt.wantErr)
			}
			var aerr *client.APIError
			if tt.wantCode != "" && (!errors.As(err, &aerr) || aerr.Code != tt.wantCode || aerr.Status != tt.status) {
				t.Errorf("Version() error = %#v, want code %q status %d", err, tt.wantCode, tt.status)
			}
		})
	}
}

func TestAPIErrorIs(t *testing.T) {
	err := error(&client.APIError{Status: 404, Code: "not_found", Message: "no job 7"})
	if got, want := err.Error(), "no job 7"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	tests := []struct {
		name   string
		target error
		want   bool
	}{
		{name: "same code", target: client.ErrNotFound, want: true},
		{name: "other code", target: client.ErrConflict, want: false},
		{name: "not an APIError", target: client.ErrBadResponse, want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := errors.Is(err, tt.target); got != tt.want {
				t.Errorf("errors.Is(%v, %v) = %v, want %v", err, tt.target, got, tt.want)
			}
		})
	}
}

func TestBlocklist(t *testing.T) {
	s := newFake(t)
	s.AddAgent(client.Agent{ID: 3, Name: "box", Owner: "maint", State: client.AgentApproved, CreatedAt: created}, "")
	admin := client.New(s.URL, adminToken, nil)
	maint := client.New(s.URL, maintainerToken, nil)
	anon := client.New(s.URL, "", nil)
	agent := int64(3)
	until := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)

	tests := []struct {
		name    string
		c       *client.Client
		req     client.BlockRuleRequest
		wantErr error
	}{
		{name: "anonymous", c: anon, req: client.BlockRuleRequest{Package: "hello", Reason: "r"}, wantErr: client.ErrUnauthenticated},
		{name: "maintainer", c: maint, req: client.BlockRuleRequest{Package: "hello", Reason: "r"}, wantErr: client.ErrForbidden},
		{name: "no reason", c: admin, req: client.BlockRuleRequest{Package: "hello"}, wantErr: client.ErrBadRequest},
		{name: "unknown agent", c: admin, req: client.BlockRuleRequest{Package: "hello", Agent: ptr(int64(9)), Reason: "r"}, wantErr: client.ErrBadRequest},
		{name: "whole job", c: admin, req: client.BlockRuleRequest{Package: "linux-*", Release: "trixie", Reason: "hangs the testbed"}},
		{name: "one test on an agent", c: admin, req: client.BlockRuleRequest{Package: "hello", Test: "smoke", Agent: &agent, Reason: "flaky", Expires: &until}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.c.AddBlockRule(t.Context(), tt.req)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("AddBlockRule(%+v) error = %v, want %v", tt.req, err, tt.wantErr)
			}
			if err == nil && (got.ID == 0 || got.Package != tt.req.Package || got.CreatedBy != "root" || got.Explanation == "") {
				t.Errorf("AddBlockRule(%+v) = %+v", tt.req, got)
			}
		})
	}
	s.PutBlockRule(client.BlockRule{ID: 9, Package: "old", Reason: "gone", CreatedBy: "root", CreatedAt: created, ExpiresAt: &created})

	rules, err := anon.BlockRules(t.Context(), false)
	if err != nil {
		t.Fatalf("BlockRules(false) error: %v", err)
	}
	if diff := cmp.Diff(s.BlockRules()[:2], rules); diff != "" {
		t.Errorf("BlockRules(false) mismatch (-want +got):\n%s", diff)
	}
	all, err := anon.BlockRules(t.Context(), true)
	if err != nil || len(all) != 3 || !all[2].Expired {
		t.Errorf("BlockRules(true) = %+v, %v; want three rules, the last expired", all, err)
	}

	_, err = maint.SubmitJob(t.Context(), client.SubmitRequest{Package: "linux-signed", Release: "trixie"})
	var aerr *client.APIError
	if !errors.Is(err, client.ErrConflict) || !errors.As(err, &aerr) || !strings.Contains(aerr.Message, "blocklist rule 1 (~root): hangs the testbed") {
		t.Errorf("SubmitJob(blocked) error = %v, want a conflict explaining rule 1", err)
	}
	j, err := maint.SubmitJob(t.Context(), client.SubmitRequest{Package: "linux-signed", Release: "trixie", Force: true})
	if err != nil || j.Reason != "submitted despite blocklist rule 1" {
		t.Errorf("SubmitJob(forced) = %+v, %v; want a job naming rule 1", j, err)
	}

	removals := []struct {
		name    string
		c       *client.Client
		id      int64
		wantErr error
	}{
		{name: "maintainer", c: maint, id: 1, wantErr: client.ErrForbidden},
		{name: "admin", c: admin, id: 1},
		{name: "again", c: admin, id: 1, wantErr: client.ErrNotFound},
	}
	for _, tt := range removals {
		if err := tt.c.RemoveBlockRule(t.Context(), tt.id); !errors.Is(err, tt.wantErr) {
			t.Errorf("%s: RemoveBlockRule(%d) error = %v, want %v", tt.name, tt.id, err, tt.wantErr)
		}
	}
	if got := s.BlockRules(); len(got) != 2 || got[0].ID != 2 {
		t.Errorf("rules after removal = %+v, want rules 2 and 9", got)
	}
}

func ptr[T any](v T) *T { return &v }

func TestVerdicts(t *testing.T) {
	s := newFake(t)
	glibc := []string{"glibc/2.41-1"}
	pass := client.Verdict{Package: "hello", Version: "2.10-3", Triggers: glibc, Release: "trixie", Arch: "amd64",
		Status: client.StatusPass, Reason: "passed", Jobs: []int64{52}, HarnessRevisions: []string{"rev"},
		Baseline: &client.VerdictBaseline{JobID: 41, Result: dep8.VerdictPass, Version: "2.10-2", Finished: created},
		FailedOn: []int64{}}
	running := client.Verdict{Package: "hello", Version: "2.11-1", Triggers: glibc, Release: "trixie", Arch: "amd64",
		Status: client.StatusRunning, Reason: "failed", Jobs: []int64{60}, HarnessRevisions: []string{"rev"}, FailedOn: []int64{3}}
	retry := client.VerdictRetry{Package: "hello", Version: "2.11-1", Triggers: glibc, Release: "trixie", Arch: "amd64",
		AvoidAgents: []int64{3}, Reason: "confirm"}
	s.PutVerdicts(client.VerdictList{Package: "hello", Verdicts: []client.Verdict{pass, running}, Retries: []client.VerdictRetry{retry}})
	anon := client.New(s.URL, "", nil)

	tests := []struct {
		name         string
		pkg, version string
		want         client.VerdictList
		wantErr      error
	}{
		{name: "every version", pkg: "hello",
			want: client.VerdictList{Package: "hello", Verdicts: []client.Verdict{pass, running}, Retries: []client.VerdictRetry{retry}}},
		{name: "one version", pkg: "hello", version: "2.10-3",
			want: client.VerdictList{Package: "hello", Verdicts: []client.Verdict{pass}, Retries: []client.VerdictRetry{}}},
		{name: "unknown package", pkg: "nothing",
			want: client.VerdictList{Package: "nothing", Verdicts: []client.Verdict{}, Retries: []client.VerdictRetry{}}},
		{name: "no package", wantErr: client.ErrBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := anon.Verdicts(t.Context(), tt.pkg, tt.version)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Verdicts(%q, %q) error = %v, want %v", tt.pkg, tt.version, err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got); err == nil && diff != "" {
				t.Errorf("Verdicts(%q, %q) mismatch (-want +got):\n%s", tt.pkg, tt.version, diff)
			}
		})
	}
}

func TestEvents(t *testing.T) {
	s := newFake(t)
	maint := client.New(s.URL, maintainerToken, nil)
	anon := client.New(s.URL, "", nil)
	volunteer := "sgp_vol00000_secret"
	s.AddToken(volunteer, client.Account{Name: "vol", Role: client.RoleVolunteer, CreatedAt: created})

	posts := []struct {
		name    string
		c       *client.Client
		req     client.EventPost
		wantErr error
	}{
		{name: "anonymous", c: anon, req: client.EventPost{Type: "upload"}, wantErr: client.ErrUnauthenticated},
		{name: "volunteer", c: client.New(s.URL, volunteer, nil), req: client.EventPost{Type: "upload"}, wantErr: client.ErrForbidden},
		{name: "no type", c: maint, req: client.EventPost{Source: "libfoo"}, wantErr: client.ErrBadRequest},
		{name: "upload", c: maint, req: client.EventPost{Type: "upload", Source: "libfoo", Version: "1.2-1", Metadata: map[string]string{"suite": "unstable"}}},
		{name: "image", c: maint, req: client.EventPost{Type: "image-built", BuildID: "77"}},
	}
	var posted []client.Event
	for _, tt := range posts {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.c.PostEvent(t.Context(), tt.req)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("PostEvent(%+v) error = %v, want %v", tt.req, err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if got.Type != tt.req.Type || got.Source != tt.req.Source || got.BuildID != tt.req.BuildID || got.Producer != "maint" {
				t.Errorf("PostEvent(%+v) = %+v, want the event posted by maint", tt.req, got)
			}
			posted = append(posted, got)
		})
	}
	if len(posted) != 2 {
		t.Fatalf("posted %d events, want 2", len(posted))
	}
	list := []struct {
		name  string
		limit int
		want  []client.Event
	}{
		{name: "all", want: []client.Event{posted[1], posted[0]}},
		{name: "one", limit: 1, want: []client.Event{posted[1]}},
	}
	for _, tt := range list {
		t.Run("list "+tt.name, func(t *testing.T) {
			got, err := anon.Events(t.Context(), tt.limit)
			if err != nil {
				t.Fatalf("Events(%d) error: %v", tt.limit, err)
			}
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("Events(%d) mismatch (-want +got):\n%s", tt.limit, d)
			}
		})
	}
	got, err := anon.Event(t.Context(), posted[0].ID)
	if err != nil {
		t.Fatalf("Event(%d) error: %v", posted[0].ID, err)
	}
	if d := cmp.Diff(posted[0], got); d != "" {
		t.Errorf("Event(%d) mismatch (-want +got):\n%s", posted[0].ID, d)
	}
	if _, err := anon.Event(t.Context(), 99); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("Event(99) error = %v, want %v", err, client.ErrNotFound)
	}
}

func TestSetAgentLabels(t *testing.T) {
	agent := `{"id":7,"name":"box","labels":["gpu","isolation=machine"],"capabilities":null,` +
		`"effective":{"arch":"amd64","backend":"overlay","isolation":"machine","root":true,"revert_full_system":true,` +
		`"reboot":false,"internet":true,"labels":["gpu"],"memory_mb":0,"disk_mb":0}}`
	tests := []struct {
		name     string
		labels   []string
		status   int
		answer   string
		wantBody string
		want     client.Agent
		wantErr  error
	}{
		{
			name:     "set",
			labels:   []string{"isolation=machine", "gpu"},
			status:   http.StatusOK,
			answer:   agent,
			wantBody: `{"labels":["isolation=machine","gpu"]}`,
			want: client.Agent{ID: 7, Name: "box", Labels: []string{"gpu", "isolation=machine"}, Capabilities: json.RawMessage("null"),
				Effective: &apiv1.AgentCaps{Arch: "amd64", Backend: "overlay", Isolation: "machine", Root: true, RevertFullSystem: true,
					Internet: true, Labels: []string{"gpu"}}},
		},
		{
			name:     "nil clears",
			status:   http.StatusOK,
			answer:   `{"id":7,"labels":[],"capabilities":null,"effective":null}`,
			wantBody: `{"labels":[]}`,
			want:     client.Agent{ID: 7, Labels: []string{}, Capabilities: json.RawMessage("null")},
		},
		{
			name:     "refused",
			labels:   []string{"reboot=maybe"},
			status:   http.StatusBadRequest,
			answer:   `{"error":{"code":"bad_request","message":"agent label \"reboot=maybe\": want yes or no"}}`,
			wantBody: `{"labels":["reboot=maybe"]}`,
			wantErr:  client.ErrBadRequest,
		},
		{
			name:     "unknown agent",
			labels:   []string{"gpu"},
			status:   http.StatusNotFound,
			answer:   `{"error":{"code":"not_found","message":"store: not found: agent 7"}}`,
			wantBody: `{"labels":["gpu"]}`,
			wantErr:  client.ErrNotFound,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var method, path, auth, body string
			hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				method, path, auth, body = r.Method, r.URL.Path, r.Header.Get("Authorization"), string(b)
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(tt.status)
				w.Write([]byte(tt.answer))
			}))
			t.Cleanup(hs.Close)
			got, err := client.New(hs.URL, adminToken, nil).SetAgentLabels(t.Context(), 7, tt.labels)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("SetAgentLabels(7, %q) error = %v, want %v", tt.labels, err, tt.wantErr)
			}
			sent := method + " " + path + " " + auth + " " + body
			if want := "PUT /api/v1/agents/7/labels Bearer " + adminToken + " " + tt.wantBody; sent != want {
				t.Errorf("SetAgentLabels(7, %q) sent %q, want %q", tt.labels, sent, want)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("SetAgentLabels(7, %q) mismatch (-want +got):\n%s", tt.labels, diff)
			}
		})
	}
}
