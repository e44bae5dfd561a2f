package api

import (
	"archive/tar"
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sparegrid/sparegrid/coordinator/apiv1"
	"github.com/sparegrid/sparegrid/coordinator/blobs"
	"github.com/sparegrid/sparegrid/coordinator/store"
	"github.com/sparegrid/sparegrid/coordinator/store/sqlite"
	"github.com/sparegrid/sparegrid/shared/protocol"
)

type fixture struct {
	t     *testing.T
	srv   *httptest.Server
	db    *sqlite.DB
	admin string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	db, bs := openStores(t)
	_, tok, err := CreateAccount(t.Context(), db, store.Account{Name: "admin", Email: "admin@example.org", Role: store.RoleAdmin, CreatedAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(New(Config{Store: db, Blobs: bs, MaxSource: 16 << 10, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}))
	t.Cleanup(srv.Close)
	return &fixture{t: t, srv: srv, db: db, admin: tok}
}

// openStores opens a fresh SQLite store and blob store in a temporary
// directory, closed when t ends.
func openStores(t *testing.T) (*sqlite.DB, *blobs.Store) {
	t.Helper()
	dir := t.TempDir()
	db, err := sqlite.Open(t.Context(), filepath.Join(dir, "api.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	bs, err := blobs.Open(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	return db, bs
}

// do sends a request and decodes a JSON answer into out (when not nil).
func (f *fixture) do(method, path, token string, body io.Reader, out any) (int, http.Header, []byte) {
	f.t.Helper()
	req, err := http.NewRequestWithContext(f.t.Context(), method, f.srv.URL+path, body)
	if err != nil {
		f.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(b, out); err != nil {
			f.t.Fatalf("%s %s: decode %q: %v", method, path, b, err)
		}
	}
	return resp.StatusCode, resp.Header, b
}

func jsonBody(v any) io.Reader {
	b, _ := json.Marshal(v)
	return bytes.NewReader(b)
}

func (f *fixture) account(name, role string) string {
	f.t.Helper()
	var out struct {
		Token string `json:"token"`
	}
	code, _, body := f.do("POST", "/api/v1/accounts", f.admin, jsonBody(map[string]string{"name": name, "email": name + "@example.org", "role": role}), &out)
	if code != http.StatusCreated || !strings.HasPrefix(out.Token, "sgp_") {
		f.t.Fatalf("create account %s = %d %s", name, code, body)
	}
	return out.Token
}

func errorCode(b []byte) string {
	var e struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	json.Unmarshal(b, &e)
	return e.Error.Code
}

func TestAccountsNeedAdmin(t *testing.T) {
	f := newFixture(t)
	maint := f.account("maint", "maintainer")
	tests := []struct {
		name     string
		token    string
		body     map[string]string
		wantCode int
	}{
		{"no token", "", map[string]string{"name": "x1", "email": "x@example.org", "role": "volunteer"}, 401},
		{"garbage token", "sgp_nope", map[string]string{"name": "x2", "email": "x@example.org", "role": "volunteer"}, 401},
		{"unknown token", "sgp_abcdefgh_" + strings.Repeat("a", 52), map[string]string{"name": "x3", "email": "x@example.org", "role": "volunteer"}, 401},
		{"maintainer", maint, map[string]string{"name": "x4", "email": "x@example.org", "role": "volunteer"}, 403},
		{"bad role", f.admin, map[string]string{"name": "x5", "email": "x@example.org", "role": "root"}, 400},
		{"bad email", f.admin, map[string]string{"name": "x6", "email": "nope", "role": "volunteer"}, 400},
		{"bad name", f.admin, map[string]string{"name": "X Y", "email": "x@example.org", "role": "volunteer"}, 400},
		{"duplicate", f.admin, map[string]string{"name": "maint", "email": "x@example.org", "role": "volunteer"}, 409},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, body := f.do("POST", "/api/v1/accounts", tt.token, jsonBody(tt.body), nil)
			if code != tt.wantCode {
				t.Errorf("POST /accounts as %s = %d %s, want %d", tt.name, code, body, tt.wantCode)
			}
		})
	}
}

func TestAgentEnrolment(t *testing.T) {
	f := newFixture(t)
	alice := f.account("alice", "volunteer")
	bob := f.account("bob", "volunteer")
	owner, err := f.db.AccountByName(t.Context(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	ag, err := f.db.CreateAgent(t.Context(), store.Agent{Name: "box", OwnerID: owner.ID, PublicKey: pub, State: store.AgentPending, ClaimCode: "ABCD-EFGH", CreatedAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	id := "/api/v1/agents/" + itoa(ag.ID)
	steps := []struct {
		name     string
		method   string
		path     string
		token    string
		body     any
		wantCode int
		wantErr  string
	}{
		{"approve before claim", "POST", id + "/approve", f.admin, nil, 409, "conflict"},
		{"claim by someone else", "POST", "/api/v1/agents/claim", bob, map[string]string{"code": "ABCD-EFGH"}, 403, "forbidden"},
		{"claim unknown code", "POST", "/api/v1/agents/claim", alice, map[string]string{"code": "ZZZZ-ZZZZ"}, 404, "not_found"},
		{"claim by owner, lower case", "POST", "/api/v1/agents/claim", alice, map[string]string{"code": "abcd-efgh"}, 200, ""},
		{"approve by volunteer", "POST", id + "/approve", alice, nil, 403, "forbidden"},
		{"approve by admin", "POST", id + "/approve", f.admin, nil, 200, ""},
		{"approve twice", "POST", id + "/approve", f.admin, nil, 409, "conflict"},
	}
	for _, s := range steps {
		var body io.Reader
		if s.body != nil {
			body = jsonBody(s.body)
		}
		code, _, b := f.do(s.method, s.path, s.token, body, nil)
		if code != s.wantCode || (s.wantErr != "" && errorCode(b) != s.wantErr) {
			t.Fatalf("%s: %s %s = %d %s, want %d %s", s.name, s.method, s.path, code, b, s.wantCode, s.wantErr)
		}
	}
	var got apiv1.Agent
	f.do("GET", id, "", nil, &got)
	if got.State != "approved" || !got.Claimed || got.Owner != "alice" || got.DecidedBy != "admin" || !strings.HasPrefix(got.KeyID, "sha256:") {
		t.Errorf("agent after approval = %+v", got)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestSubmitValidation(t *testing.T) {
	f := newFixture(t)
	maint := f.account("maint", "maintainer")
	vol := f.account("vol", "volunteer")
	tests := []struct {
		name     string
		token    string
		req      map[string]any
		wantCode int
	}{
		{"volunteer may not submit", vol, map[string]any{"package": "hello", "release": "bookworm"}, 403},
		{"bad package", maint, map[string]any{"package": "Hello World", "release": "bookworm"}, 400},
		{"bad release", maint, map[string]any{"package": "hello", "release": "../x"}, 400},
		{"bad trigger", maint, map[string]any{"package": "hello", "release": "bookworm", "triggers": []string{"glibc"}}, 400},
		{"bad version", maint, map[string]any{"package": "hello", "release": "bookworm", "version": "x;rm"}, 400},
		{"unknown field", maint, map[string]any{"package": "hello", "release": "bookworm", "colour": "blue"}, 400},
		{"priority too high", maint, map[string]any{"package": "hello", "release": "bookworm", "priority": 11}, 400},
		{"bad label", maint, map[string]any{"package": "hello", "release": "bookworm", "labels": []string{"GPU!"}}, 400},
		{"negative memory", maint, map[string]any{"package": "hello", "release": "bookworm", "memory_mb": -1}, 400},
		{"source never uploaded", maint, map[string]any{"package": "hello", "release": "bookworm", "source": map[string]any{"sha256": strings.Repeat("a", 64), "kind": "tree", "entry": "hello/"}}, 400},
		{"good", maint, map[string]any{"package": "hello", "release": "bookworm", "triggers": []string{"glibc/2.36-9"}}, 201},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var j apiv1.Job
			code, _, body := f.do("POST", "/api/v1/jobs", tt.token, jsonBody(tt.req), &j)
			if code != tt.wantCode {
				t.Fatalf("POST /jobs = %d %s, want %d", code, body, tt.wantCode)
			}
			if code == 201 && (j.State != "queued" || j.Arch != "amd64" || j.SubmittedBy != "maint" || len(j.Tests) != 0) {
				t.Errorf("created job = %+v, want queued amd64 by maint", j)
			}
		})
	}
}

func TestSourceUpload(t *testing.T) {
	f := newFixture(t)
	maint := f.account("maint", "maintainer")
	data := sourceTar(t, "fixture/", "Tests: passes\nDepends: dash\n")
	sum := sha256.Sum256(data)
	sha := hex.EncodeToString(sum[:])
	tests := []struct {
		name     string
		query    string
		body     []byte
		wantCode int
	}{
		{"no digest", "", data, 400},
		{"wrong digest", "?sha256=" + strings.Repeat("0", 64), data, 400},
		{"too large", "?sha256=" + sha, bytes.Repeat([]byte("x"), 32<<10), 413},
		{"good", "?sha256=" + sha, data, 201},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, body := f.do("POST", "/api/v1/sources"+tt.query, maint, bytes.NewReader(tt.body), nil)
			if code != tt.wantCode {
				t.Errorf("POST /sources = %d %s, want %d", code, body, tt.wantCode)
			}
		})
	}
	code, _, body := f.do("GET", "/api/v1/blobs/"+sha, "", nil, nil)
	if code != 200 || !bytes.Equal(body, data) {
		t.Errorf("GET blob = %d %q, want the uploaded bytes", code, body)
	}
	var j apiv1.Job
	code, _, body = f.do("POST", "/api/v1/jobs", maint, jsonBody(map[string]any{"package": "fixture", "release": "bookworm",
		"source": map[string]any{"sha256": sha, "kind": "tree", "entry": "fixture/"}}), &j)
	if code != 201 || j.Source == nil || j.Source.Size != int64(len(data)) {
		t.Errorf("submit with source = %d %s", code, body)
	}

	// A tests control file autopkgtest would refuse is refused with the
	// line it stumbles on, and nothing is queued.
	bad := sourceTar(t, "broken/", "Tests: a\nthis line is not a field\n")
	badSum := sha256.Sum256(bad)
	badSHA := hex.EncodeToString(badSum[:])
	if code, _, body := f.do("POST", "/api/v1/sources?sha256="+badSHA, maint, bytes.NewReader(bad), nil); code != 201 {
		t.Fatalf("POST /sources = %d %s", code, body)
	}
	code, _, body = f.do("POST", "/api/v1/jobs", maint, jsonBody(map[string]any{"package": "broken", "release": "bookworm",
		"source": map[string]any{"sha256": badSHA, "kind": "tree", "entry": "broken/"}}), nil)
	if code != 400 || !strings.Contains(string(body), "debian/tests/control") {
		t.Errorf("submit with a bad tests control = %d %s, want 400 naming debian/tests/control", code, body)
	}
	jobs, err := f.db.ListJobs(t.Context(), store.JobFilter{Package: "broken"})
	if err != nil || len(jobs) != 0 {
		t.Errorf("jobs of the refused package = %v, %v; want none", jobs, err)
	}
}

// sourceTar returns an uncompressed tar of a source tree under dir with a
// debian/control and the given debian/tests/control, as sparegrid submit
// packs one.
func sourceTar(t *testing.T, dir, testsControl string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	name := strings.TrimSuffix(dir, "/")
	for _, f := range []struct{ path, body string }{
		{dir + "debian/control", "Source: " + name + "\n\nPackage: " + name + "\nArchitecture: all\n"},
		{dir + "debian/tests/control", testsControl},
	} {
		if err := tw.WriteHeader(&tar.Header{Name: f.path, Mode: 0o644, Size: int64(len(f.body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(f.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestIndexEscapesAndCSP(t *testing.T) {
	f := newFixture(t)
	if _, err := f.db.CreateJob(t.Context(), store.Job{Package: "hello", Version: "<script>x</script>", Release: "bookworm", Arch: "amd64", State: store.JobQueued, MaxAttempts: 3, CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	code, hdr, body := f.do("GET", "/", "", nil, nil)
	if code != 200 || !strings.Contains(string(body), "hello") {
		t.Fatalf("GET / = %d %s", code, body)
	}
	if strings.Contains(string(body), "<script>") {
		t.Errorf("GET / rendered user text as HTML: %s", body)
	}
	if csp := hdr.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("Content-Security-Policy = %q", csp)
	}
	if code, _, _ := f.do("GET", "/api/v1/jobs/1/log", "", nil, nil); code != 404 {
		t.Errorf("log of a job without result = %d, want 404", code)
	}
}

// TestWireValues checks that the enumerations clients read from apiv1 are
// the values the server sends.
func TestWireValues(t *testing.T) {
	tests := []struct {
		name       string
		got, apiv1 string
	}{
		{"role volunteer", string(store.RoleVolunteer), apiv1.RoleVolunteer},
		{"role maintainer", string(store.RoleMaintainer), apiv1.RoleMaintainer},
		{"role admin", string(store.RoleAdmin), apiv1.RoleAdmin},
		{"agent pending", string(store.AgentPending), apiv1.AgentPending},
		{"agent approved", string(store.AgentApproved), apiv1.AgentApproved},
		{"agent rejected", string(store.AgentRejected), apiv1.AgentRejected},
		{"job queued", string(store.JobQueued), apiv1.StateQueued},
		{"job running", string(store.JobRunning), apiv1.StateRunning},
		{"job held", string(store.JobHeld), apiv1.StateHeld},
		{"job done", string(store.JobDone), apiv1.StateDone},
		{"job cancelled", string(store.JobCancelled), apiv1.StateCancelled},
		{"source tree", protocol.SourceTree, apiv1.KindTree},
		{"source dsc", protocol.SourceDSC, apiv1.KindDsc},
	}
	for _, tt := range tests {
		if tt.got != tt.apiv1 {
			t.Errorf("%s: server sends %q, apiv1 says %q", tt.name, tt.got, tt.apiv1)
		}
	}
}

func TestResultsListsOnlyFinishedJobs(t *testing.T) {
	f := newFixture(t)
	for _, st := range []store.JobState{store.JobQueued, store.JobQueued} {
		if _, err := f.db.CreateJob(t.Context(), store.Job{Package: "hello", Release: "bookworm", Arch: "amd64", State: st, MaxAttempts: 3, CreatedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	if code, _, body := f.do("GET", "/api/v1/results", "", nil, nil); code != 400 {
		t.Errorf("GET /results without package = %d %s, want 400", code, body)
	}
	var got struct {
		Jobs []apiv1.Job `json:"jobs"`
	}
	if code, _, body := f.do("GET", "/api/v1/results?package=hello", "", nil, &got); code != 200 || len(got.Jobs) != 0 {
		t.Errorf("GET /results?package=hello = %d %s, want no finished jobs", code, body)
	}
	var all struct {
		Jobs []apiv1.Job `json:"jobs"`
	}
	if code, _, body := f.do("GET", "/api/v1/jobs?package=hello", "", nil, &all); code != 200 || len(all.Jobs) != 2 {
		t.Errorf("GET /jobs?package=hello = %d %s, want both jobs", code, body)
	}
}

func TestCancelJob(t *testing.T) {
	f := newFixture(t)
	maint := f.account("maint", "maintainer")
	other := f.account("other", "maintainer")
	vol := f.account("vol", "volunteer")
	var j apiv1.Job
	if code, _, body := f.do("POST", "/api/v1/jobs", maint, jsonBody(map[string]any{"package": "hello", "release": "bookworm"}), &j); code != 201 {
		t.Fatalf("submit = %d %s", code, body)
	}
	path := "/api/v1/jobs/" + itoa(j.ID) + "/cancel"
	steps := []struct {
		name     string
		token    string
		wantCode int
	}{
		{"no token", "", 401},
		{"volunteer", vol, 403},
		{"another maintainer", other, 403},
		{"submitter", maint, 200},
		{"already cancelled", maint, 409},
	}
	for _, s := range steps {
		var got apiv1.Job
		code, _, body := f.do("POST", path, s.token, nil, &got)
		if code != s.wantCode {
			t.Fatalf("%s: POST %s = %d %s, want %d", s.name, path, code, body, s.wantCode)
		}
		if code == 200 && (got.State != "cancelled" || got.Verdict != "cancelled") {
			t.Errorf("%s: job after cancel = %s/%s, want cancelled/cancelled", s.name, got.State, got.Verdict)
		}
	}
	var j2 apiv1.Job
	f.do("POST", "/api/v1/jobs", maint, jsonBody(map[string]any{"package": "hello", "release": "bookworm"}), &j2)
	if code, _, body := f.do("POST", "/api/v1/jobs/"+itoa(j2.ID)+"/cancel", f.admin, nil, nil); code != 200 {
		t.Errorf("admin cancelling another's job = %d %s, want 200", code, body)
	}
	if code, _, _ := f.do("POST", "/api/v1/jobs/999/cancel", f.admin, nil, nil); code != 404 {
		t.Errorf("cancel of an unknown job = %d, want 404", code)
	}
}

func TestSubmitSplitsTests(t *testing.T) {
	f := newFixture(t)
	maint := f.account("maint", "maintainer")
	owner, err := f.db.AccountByName(t.Context(), "maint")
	if err != nil {
		t.Fatal(err)
	}
	agent := func(name, caps string) int64 {
		ag, err := f.db.CreateAgent(t.Context(), store.Agent{Name: name, OwnerID: owner.ID, PublicKey: []byte(name),
			ClaimCode: "code-" + name, State: store.AgentApproved, AutoApproved: true})
		if err != nil {
			t.Fatal(err)
		}
		if err := f.db.SeenAgent(t.Context(), ag.ID, time.Now(), []byte(caps)); err != nil {
			t.Fatal(err)
		}
		return ag.ID
	}
	agent("box", `{"arch":"amd64","releases":["bookworm"],"backend":"overlay"}`)
	upload := func(dir, control string) string {
		data := sourceTar(t, dir, control)
		sum := sha256.Sum256(data)
		sha := hex.EncodeToString(sum[:])
		if code, _, body := f.do("POST", "/api/v1/sources?sha256="+sha, maint, bytes.NewReader(data), nil); code != 201 {
			t.Fatalf("POST /sources = %d %s", code, body)
		}
		return sha
	}
	submit := func(pkg, sha string) apiv1.Job {
		var j apiv1.Job
		code, _, body := f.do("POST", "/api/v1/jobs", maint, jsonBody(map[string]any{"package": pkg, "release": "bookworm",
			"source": map[string]any{"sha256": sha, "kind": "tree", "entry": pkg + "/"}}), &j)
		if code != 201 {
			t.Fatalf("submit %s = %d %s", pkg, code, body)
		}
		return j
	}
	control := "Tests: smoke\nDepends: dash\n\nTests: reboot\nRestrictions: needs-reboot, isolation-machine\nDepends: dash\n"
	sha := upload("kernelish/", control)

	// Only a container agent: the reboot test waits as a job of its own,
	// and says why.
	first := submit("kernelish", sha)
	if diff := cmp.Diff([]string{"smoke"}, first.OnlyTests); diff != "" || len(first.SplitJobs) != 1 || first.Pending != "" {
		t.Fatalf("first submission = only %v, split %v, pending %q; want smoke only, one split job, not pending (%s)", first.OnlyTests, first.SplitJobs, first.Pending, diff)
	}
	var split apiv1.Job
	if code, _, body := f.do("GET", fmt.Sprintf("/api/v1/jobs/%d", first.SplitJobs[0]), "", nil, &split); code != 200 {
		t.Fatalf("GET split job = %d %s", code, body)
	}
	if !cmp.Equal(split.OnlyTests, []string{"reboot"}) || !strings.Contains(split.Pending, "isolation-machine") || !strings.Contains(split.Reason, "split off") {
		t.Errorf("split job = only %v, pending %q, reason %q; want reboot only, pending on isolation-machine, a split-off reason", split.OnlyTests, split.Pending, split.Reason)
	}

	// With a machine agent that can reboot, the reboot test goes to it
	// and nothing is pending.
	agent("vm", `{"arch":"amd64","releases":["bookworm"],"backend":"qemu","isolation":"machine","root":true,"revert_full_system":true,"reboot":true}`)
	second := submit("kernelish", sha)
	if len(second.SplitJobs) != 1 {
		t.Fatalf("second submission split into %v, want one more job", second.SplitJobs)
	}
	var routed apiv1.Job
	if code, _, body := f.do("GET", fmt.Sprintf("/api/v1/jobs/%d", second.SplitJobs[0]), "", nil, &routed); code != 200 {
		t.Fatalf("GET split job = %d %s", code, body)
	}
	if routed.Pending != "" || !strings.Contains(routed.Reason, "only agent 2 can") {
		t.Errorf("split job with a capable agent = pending %q, reason %q; want not pending, only agent 2", routed.Pending, routed.Reason)
	}

	// Tests every agent can run stay one job.
	plain := submit("plain", upload("plain/", "Tests: a b\nDepends: dash\n"))
	if len(plain.OnlyTests) != 0 || len(plain.SplitJobs) != 0 {
		t.Errorf("plain submission = only %v, split %v; want one job for every test", plain.OnlyTests, plain.SplitJobs)
	}
}
