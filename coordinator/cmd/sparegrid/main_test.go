package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sparegrid/sparegrid/coordinator/client"
	"github.com/sparegrid/sparegrid/coordinator/client/clienttest"
	"github.com/sparegrid/sparegrid/shared/dep8"
	"github.com/sparegrid/sparegrid/shared/version"
)

const (
	adminToken      = "sgp_admin000_secret"
	maintainerToken = "sgp_maint000_secret"
)

var testNow = time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)

type result struct {
	stdout, stderr string
	code           int
}

// cli runs the command line against a fake coordinator.
type cli struct {
	t    *testing.T
	fake *clienttest.Server
	env  map[string]string
	tty  bool
}

func newCLI(t *testing.T) *cli {
	t.Helper()
	fake := clienttest.New(t)
	fake.AddToken(adminToken, client.Account{Name: "root", Role: client.RoleAdmin})
	fake.AddToken(maintainerToken, client.Account{Name: "maint", Role: client.RoleMaintainer})
	return &cli{t: t, fake: fake, env: map[string]string{"SPAREGRID_SERVER": fake.URL}}
}

func (c *cli) run(args ...string) result {
	c.t.Helper()
	var stdout, stderr bytes.Buffer
	a := &app{
		stdout:    &stdout,
		stderr:    &stderr,
		getenv:    func(k string) string { return c.env[k] },
		stderrTTY: c.tty,
		now:       func() time.Time { return testNow },
	}
	code := a.run(c.t.Context(), args)
	return result{stdout: stdout.String(), stderr: stderr.String(), code: code}
}

// ok runs args and fails the test unless they exit 0.
func (c *cli) ok(args ...string) result {
	c.t.Helper()
	r := c.run(args...)
	if r.code != 0 {
		c.t.Fatalf("sparegrid %s exited %d, want 0; stderr:\n%s", strings.Join(args, " "), r.code, r.stderr)
	}
	return r
}

func TestVersionFlag(t *testing.T) {
	c := newCLI(t)
	r := c.ok("--version")
	if want := version.String("sparegrid") + "\n"; r.stdout != want {
		t.Errorf("--version printed %q, want %q", r.stdout, want)
	}
}

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string // in stderr
	}{
		{name: "unknown command", args: []string{"frobnicate"}, want: "unknown command"},
		{name: "bad job id", args: []string{"show", "x1"}, want: `job "x1": want a positive number`},
		{name: "missing arg", args: []string{"log"}, want: "accepts 1 arg"},
		{name: "bad server", args: []string{"--server", "ftp://x", "jobs"}, want: "want an http:// or https:// address"},
		{name: "both token flags", args: []string{"--token", "a", "--token-file", "b", "jobs"}, want: "token"},
		{name: "negative limit", args: []string{"jobs", "--limit", "-1"}, want: "--limit must not be negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newCLI(t).run(tt.args...)
			if r.code != 1 || !strings.HasPrefix(r.stderr, "sparegrid: ") || !strings.Contains(r.stderr, tt.want) {
				t.Errorf("sparegrid %v = %d, stderr %q; want 1 and \"sparegrid: ...%s...\"", tt.args, r.code, r.stderr, tt.want)
			}
			if r.stdout != "" {
				t.Errorf("sparegrid %v printed %q on stdout, want nothing", tt.args, r.stdout)
			}
		})
	}
}

func TestAccountsCreate(t *testing.T) {
	c := newCLI(t)
	c.env["SPAREGRID_TOKEN"] = adminToken
	r := c.ok("accounts", "create", "alice", "--email", "[email protected]", "--role", "maintainer", "--display-name", "Alice")
	token := strings.TrimSuffix(r.stdout, "\n")
	if !strings.HasPrefix(token, "sgp_") || strings.ContainsAny(token, " \n") {
		t.Fatalf("accounts create printed %q on stdout, want the token alone", r.stdout)
	}
	if !strings.Contains(r.stderr, "only") {
		t.Errorf("accounts create stderr = %q, want a note that the token is shown only once", r.stderr)
	}

	// The printed token works, from a file.
	file := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(file, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	delete(c.env, "SPAREGRID_TOKEN")
	r = c.run("--token-file", file, "accounts", "create", "bob", "--email", "[email protected]", "--role", "volunteer")
	if r.code != 1 || !strings.Contains(r.stderr, "only an admin") {
		t.Errorf("accounts create as a maintainer = %d, %q; want 1 and the coordinator's refusal", r.code, r.stderr)
	}

	tests := []struct {
		name string
		args []string
		want string
	}{
		{name: "bad role", args: []string{"--token", adminToken, "accounts", "create", "carol", "--email", "c@x", "--role", "king"}, want: `--role "king"`},
		{name: "no token", args: []string{"accounts", "create", "carol", "--email", "c@x", "--role", "admin"}, want: "needs an API token"},
		{name: "no email", args: []string{"--token", adminToken, "accounts", "create", "carol", "--role", "admin"}, want: `"email" not set`},
		{name: "exists", args: []string{"--token", adminToken, "accounts", "create", "alice", "--email", "a@x", "--role", "admin"}, want: "exists"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := c.run(tt.args...)
			if r.code != 1 || r.stdout != "" || !strings.Contains(r.stderr, tt.want) {
				t.Errorf("sparegrid %v = %d, %q, %q; want 1, no stdout, stderr with %q", tt.args, r.code, r.stdout, r.stderr, tt.want)
			}
		})
	}
}

func TestAgents(t *testing.T) {
	c := newCLI(t)
	seen := testNow.Add(-12 * time.Second)
	c.fake.AddAgent(client.Agent{ID: 3, Name: "box", Owner: "maint", State: client.AgentPending, LastSeen: &seen,
		Capabilities: json.RawMessage(`{"arch":"arm64","releases":["trixie","sid"]}`),
		PublicKey:    []byte{0, 0, 0}, KeyID: "sha256:00", CreatedAt: testNow.Add(-time.Hour)}, "ABCD-1234")
	c.fake.AddAgent(client.Agent{ID: 4, Name: "evil\x1b[2Jname", Owner: "root", State: client.AgentPending}, "")
	paused := testNow.Add(-3 * time.Minute)
	c.fake.AddAgent(client.Agent{ID: 5, Name: "tired", Owner: "maint", State: client.AgentApproved, LastSeen: &seen,
		Paused: "3 infrastructure failures in a row", PausedAt: &paused}, "")

	r := c.ok("agents", "list")
	want := "ID  NAME          OWNER  STATE     LAST-SEEN  PAUSED\n" +
		"3   box           maint  pending   12s ago    -\n" +
		"4   evil?[2Jname  root   pending   never      -\n" +
		"5   tired         maint  approved  12s ago    3 infrastructure failures in a row (paused 3m ago)\n"
	if r.stdout != want {
		t.Errorf("agents list =\n%s\nwant\n%s", r.stdout, want)
	}

	r = c.ok("agents", "list", "--json")
	var agents []client.Agent
	if err := json.Unmarshal([]byte(r.stdout), &agents); err != nil || len(agents) != 3 || agents[0].Name != "box" || agents[2].Paused == "" {
		t.Errorf("agents list --json = %q (%v), want all three agents, the last paused", r.stdout, err)
	}
	r = c.ok("agents", "show", "3", "--json")
	var one client.Agent
	if err := json.Unmarshal([]byte(r.stdout), &one); err != nil || one.ID != 3 {
		t.Errorf("agents show 3 --json = %q (%v), want agent 3", r.stdout, err)
	}
	r = c.ok("agents", "show", "3")
	for _, want := range []string{"sha256:00", "AAAA", "12s ago", "arm64", "trixie, sid"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("agents show 3 =\n%s\nwant it to contain %q", r.stdout, want)
		}
	}

	tests := []struct {
		name   string
		args   []string
		stderr string
	}{
		{name: "claim", args: []string{"--token", maintainerToken, "agents", "claim", "ABCD-1234"}, stderr: "claimed agent 3 (box); it now waits for an admin's approval\n"},
		{name: "approve", args: []string{"--token", adminToken, "agents", "approve", "3"}, stderr: "agent 3 (box, owner ~maint) is now approved\n"},
		{name: "reject", args: []string{"--token", adminToken, "agents", "reject", "4"}, stderr: "agent 4 (evil?[2Jname, owner ~root) is now rejected\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := c.ok(tt.args...)
			if r.stdout != "" || r.stderr != tt.stderr {
				t.Errorf("sparegrid %v = %q, %q; want no stdout and %q", tt.args, r.stdout, r.stderr, tt.stderr)
			}
		})
	}
	if r := c.run("--token", maintainerToken, "agents", "approve", "4"); r.code != 1 || !strings.Contains(r.stderr, "only an admin") {
		t.Errorf("agents approve as maintainer = %d, %q; want 1 and the refusal", r.code, r.stderr)
	}
}

func TestSubmit(t *testing.T) {
	tree := filepath.Join(t.TempDir(), "hello-2.10")
	for name, content := range map[string]string{
		"debian/control":       "Source: hello\n\nPackage: hello\n",
		"debian/changelog":     "hello (2.10-3) unstable; urgency=medium\n",
		"debian/tests/control": "Tests: smoke\n",
	} {
		p := filepath.Join(tree, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	tests := []struct {
		name    string
		args    []string
		want    *client.SubmitRequest // nil: refused before submitting
		wantErr string
	}{
		{
			name: "package",
			args: []string{"submit", "hello", "--release", "trixie", "--arch", "arm64", "--version", "2.10-3", "--trigger", "glibc/2.41-1", "--trigger", "gcc-14/14.2.0-1"},
			want: &client.SubmitRequest{Package: "hello", Release: "trixie", Arch: "arm64", Version: "2.10-3", Triggers: []string{"glibc/2.41-1", "gcc-14/14.2.0-1"}},
		},
		{
			name: "source tree",
			args: []string{"submit", "--source", tree, "--release", "trixie"},
			want: &client.SubmitRequest{Package: "hello", Release: "trixie", Version: "2.10-3", Source: &client.Source{Kind: client.KindTree, Entry: "hello-2.10/"}},
		},
		{name: "both", args: []string{"submit", "hello", "--source", tree, "--release", "trixie"}, wantErr: "either a PACKAGE to test from the archive or --source PATH, not both"},
		{name: "neither", args: []string{"submit", "--release", "trixie"}, wantErr: "give a PACKAGE"},
		{name: "no release", args: []string{"submit", "hello"}, wantErr: `"release" not set`},
		{name: "trigger without version", args: []string{"submit", "hello", "--release", "trixie", "--trigger", "glibc"}, wantErr: `--trigger "glibc": want SOURCE/VERSION`},
		{name: "trigger empty version", args: []string{"submit", "hello", "--release", "trixie", "--trigger", "glibc/"}, wantErr: "want SOURCE/VERSION"},
		{name: "trigger two slashes", args: []string{"submit", "hello", "--release", "trixie", "--trigger", "a/b/1"}, wantErr: "want SOURCE/VERSION"},
		{name: "bad package", args: []string{"submit", "Hello World", "--release", "trixie"}, wantErr: "not a valid source package name"},
		{name: "not a source", args: []string{"submit", "--source", t.TempDir(), "--release", "trixie"}, wantErr: "no debian/control"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCLI(t)
			c.env["SPAREGRID_TOKEN"] = maintainerToken
			r := c.run(tt.args...)
			if tt.wantErr != "" {
				if r.code != 1 || r.stdout != "" || !strings.Contains(r.stderr, tt.wantErr) {
					t.Errorf("sparegrid %v = %d, %q, %q; want 1, no stdout, stderr with %q", tt.args, r.code, r.stdout, r.stderr, tt.wantErr)
				}
				if got := c.fake.Submitted(); len(got) != 0 {
					t.Errorf("sparegrid %v submitted %+v, want nothing", tt.args, got)
				}
				return
			}
			if r.code != 0 || r.stdout != "1\n" {
				t.Fatalf("sparegrid %v = %d, %q; want 0 and the job id alone; stderr:\n%s", tt.args, r.code, r.stdout, r.stderr)
			}
			got := c.fake.Submitted()
			if len(got) != 1 {
				t.Fatalf("submitted %+v, want one job", got)
			}
			if tt.want.Source != nil {
				if _, ok := c.fake.Source(got[0].Source.SHA256); !ok || got[0].Source.Size == 0 {
					t.Errorf("submitted source %+v that was not uploaded", got[0].Source)
				}
				tt.want.Source.SHA256, tt.want.Source.Size = got[0].Source.SHA256, got[0].Source.Size
			}
			if diff := cmp.Diff(*tt.want, got[0]); diff != "" {
				t.Errorf("submitted mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSubmitWait(t *testing.T) {
	agent := int64(3)
	running := func(stage string) func(*client.Job) {
		return func(j *client.Job) {
			j.State, j.Stage, j.Attempt, j.Agent, j.AgentName = client.StateRunning, stage, 1, &agent, "box"
		}
	}
	finish := func(state string, v dep8.Verdict) func(*client.Job) {
		return func(j *client.Job) {
			j.State, j.Verdict = state, v
			j.Tests = []client.Test{{Name: "smoke", Result: dep8.Pass}, {Name: "unit", Result: dep8.Fail, Detail: "non-zero exit status 1"}}
		}
	}
	tests := []struct {
		name     string
		state    string
		verdict  dep8.Verdict
		wantCode int
	}{
		{name: "pass", state: client.StateDone, verdict: dep8.VerdictPass, wantCode: 0},
		{name: "neutral", state: client.StateDone, verdict: dep8.VerdictNeutral, wantCode: 0},
		{name: "fail", state: client.StateDone, verdict: dep8.VerdictFail, wantCode: 1},
		{name: "tmpfail", state: client.StateDone, verdict: dep8.VerdictTmpfail, wantCode: 2},
		{name: "error", state: client.StateDone, verdict: dep8.VerdictError, wantCode: 2},
		{name: "cancelled", state: client.StateCancelled, verdict: dep8.VerdictCancelled, wantCode: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCLI(t)
			c.env["SPAREGRID_TOKEN"] = maintainerToken
			// Submission gives job 1; each poll then takes one step.
			c.fake.Script(1,
				func(*client.Job) {},
				running("setup"), running("setup"), running("test"),
				finish(tt.state, tt.verdict),
			)
			r := c.run("submit", "hello", "--release", "trixie", "--wait")
			if r.code != tt.wantCode || r.stdout != "1\n" {
				t.Fatalf("submit --wait = %d, %q, want %d, \"1\\n\"; stderr:\n%s", r.code, r.stdout, tt.wantCode, r.stderr)
			}
			want := "job 1: queued\n" +
				"job 1: running, stage setup, attempt 1\n" +
				"job 1: running, stage test, attempt 1\n" +
				"job 1: " + tt.state + ", attempt 1\n" +
				"  PASS  smoke  -\n" +
				"  FAIL  unit   non-zero exit status 1\n" +
				"job 1: hello - on trixie/amd64: " + string(tt.verdict) + ", agent box (#3)\n"
			if diff := cmp.Diff(want, r.stderr); diff != "" {
				t.Errorf("submit --wait stderr mismatch (-want +got):\n%s", diff)
			}
		})
	}

	t.Run("tty", func(t *testing.T) {
		c := newCLI(t)
		c.tty = true
		c.env["SPAREGRID_TOKEN"] = maintainerToken
		c.fake.Script(1, running("test"), finish(client.StateDone, dep8.VerdictPass))
		r := c.run("submit", "hello", "--release", "trixie", "--wait")
		if r.code != 0 {
			t.Fatalf("submit --wait = %d, want 0; stderr:\n%s", r.code, r.stderr)
		}
		progress, _, _ := strings.Cut(r.stderr, "\n")
		if want := "\r\x1b[Kjob 1: queued\r\x1b[Kjob 1: running, stage test, attempt 1, 0s\r\x1b[Kjob 1: done, attempt 1, 0s"; progress != want {
			t.Errorf("progress line = %q, want %q", progress, want)
		}
	})
}

func TestJobsAndShow(t *testing.T) {
	c := newCLI(t)
	agent := int64(3)
	exit := 4
	started := testNow.Add(-3 * time.Minute)
	done := client.Job{
		ID: 7, Package: "hello", Version: "2.10-3", Release: "trixie", Arch: "amd64", Triggers: []string{"glibc/2.41-1"},
		State: client.StateDone, Verdict: dep8.VerdictFail, Attempt: 1, Agent: &agent, AgentName: "box", Owner: "maint",
		Transport: "quic", SubmittedBy: "maint", CreatedAt: testNow.Add(-5 * time.Minute), StartedAt: &started, FinishedAt: &started,
		ExitCode: &exit,
		Tests:    []client.Test{{Name: "smoke", Result: dep8.Fail, Detail: "non-zero exit status 1"}},
		Harness:  &client.Harness{AgentVersion: "v1.0.0", AutopkgtestVersion: "5.40", Backend: "overlay", ImageDigest: "sha256:aa"},
		Blobs:    []client.Blob{{Name: "log", SHA256: strings.Repeat("a", 64), Size: 2048}},
		LogURL:   "/api/v1/jobs/7/log",
	}
	c.fake.PutJob(done)
	c.fake.PutJob(client.Job{ID: 8, Package: "other", Release: "sid", Arch: "arm64", State: client.StateQueued, CreatedAt: testNow.Add(-30 * time.Second)})
	c.fake.SetLog(7, "autopkgtest [12:00:00]: starting\nsmoke FAIL non-zero exit status 1\n")

	r := c.ok("jobs")
	want := "ID  PACKAGE  VERSION  RELEASE  ARCH   STATE   VERDICT  AGENT     AGE\n" +
		"8   other    -        sid      arm64  queued  -        -         30s ago\n" +
		"7   hello    2.10-3   trixie   amd64  done    fail     box (#3)  5m ago\n"
	if r.stdout != want {
		t.Errorf("jobs =\n%s\nwant\n%s", r.stdout, want)
	}

	r = c.ok("jobs", "--package", "hello", "--json")
	var jobs []client.Job
	if err := json.Unmarshal([]byte(r.stdout), &jobs); err != nil {
		t.Fatalf("jobs --json printed %q: %v", r.stdout, err)
	}
	if diff := cmp.Diff([]client.Job{done}, jobs); diff != "" {
		t.Errorf("jobs --json mismatch (-want +got):\n%s", diff)
	}
	r = c.ok("results", "other", "--json")
	if strings.TrimSpace(r.stdout) != "[]" {
		t.Errorf("results other --json = %q, want []", r.stdout)
	}
	r = c.ok("results", "hello")
	if !strings.Contains(r.stdout, "hello    2.10-3") {
		t.Errorf("results hello =\n%s\nwant job 7", r.stdout)
	}

	r = c.ok("show", "7", "--json")
	var raw map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &raw); err != nil {
		t.Fatalf("show --json printed %q: %v", r.stdout, err)
	}
	for _, k := range []string{"id", "package", "version", "release", "arch", "state", "verdict", "agent", "attempt", "tests", "harness", "transport", "blobs", "log_url", "exit_code", "triggers", "source"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("show --json has no %q field", k)
		}
	}
	if diff := cmp.Diff([]any{map[string]any{"name": "smoke", "result": "FAIL", "detail": "non-zero exit status 1"}}, raw["tests"]); diff != "" {
		t.Errorf("show --json tests mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]any{"agent_version": "v1.0.0", "autopkgtest_version": "5.40", "backend": "overlay", "image_digest": "sha256:aa"}, raw["harness"]); diff != "" {
		t.Errorf("show --json harness mismatch (-want +got):\n%s", diff)
	}

	r = c.ok("show", "7")
	for _, s := range []string{"verdict       fail", "exit code     4", "box (#3), owner ~maint", "smoke  FAIL    non-zero exit status 1", "autopkgtest 5.40", "log   2.0 KiB"} {
		if !strings.Contains(r.stdout, s) {
			t.Errorf("show 7 =\n%s\nwant it to contain %q", r.stdout, s)
		}
	}

	r = c.ok("log", "7")
	if want := "autopkgtest [12:00:00]: starting\nsmoke FAIL non-zero exit status 1\n"; r.stdout != want {
		t.Errorf("log 7 = %q, want %q", r.stdout, want)
	}
	if r := c.run("log", "8"); r.code != 1 || !strings.Contains(r.stderr, "job 8 has no log") {
		t.Errorf("log 8 = %d, %q; want 1 and the coordinator's message", r.code, r.stderr)
	}
	if r := c.run("show", "99"); r.code != 1 || r.stderr != "sparegrid: no job 99\n" {
		t.Errorf("show 99 = %d, %q; want 1 and \"sparegrid: no job 99\"", r.code, r.stderr)
	}
}

func TestAgo(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{-time.Second, "just now"},
		{0, "0s ago"},
		{12 * time.Second, "12s ago"},
		{90 * time.Second, "1m ago"},
		{3 * time.Hour, "3h ago"},
		{47 * time.Hour, "47h ago"},
		{96 * time.Hour, "4d ago"},
	}
	for _, tt := range tests {
		if got := ago(testNow, testNow.Add(-tt.d)); got != tt.want {
			t.Errorf("ago(now - %v) = %q, want %q", tt.d, got, tt.want)
		}
	}
}

func TestCheckTrigger(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"glibc/2.41-1", true},
		{"linux/6.12.9-1~bpo12+1", true},
		{"gcc-14/1:14.2.0-1", true},
		{"glibc", false},
		{"/2.41", false},
		{"glibc/", false},
		{"glibc/2.41 -1", false},
		{"Glibc/2.41", false},
		{"glibc/v2", false},
		{"a/b/c", false},
	}
	for _, tt := range tests {
		if got := checkTrigger(tt.in) == nil; got != tt.want {
			t.Errorf("checkTrigger(%q) ok = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestCancel(t *testing.T) {
	c := newCLI(t)
	c.fake.PutJob(client.Job{ID: 9, Package: "hello", Release: "bookworm", Arch: "amd64", State: client.StateRunning, CreatedAt: testNow})
	if r := c.run("cancel", "9"); r.code == 0 || !strings.Contains(r.stderr, "token") {
		t.Errorf("cancel without a token = exit %d, stderr %q; want a refusal asking for a token", r.code, r.stderr)
	}
	c.env["SPAREGRID_TOKEN"] = maintainerToken
	r := c.ok("cancel", "9")
	if r.stdout != "" || !strings.Contains(r.stderr, "job 9 cancelled") {
		t.Errorf("cancel 9 printed stdout %q, stderr %q; want only a confirmation on stderr", r.stdout, r.stderr)
	}
	if j := c.fake.Job(9); j.State != client.StateCancelled {
		t.Errorf("job 9 after cancel is %s, want cancelled", j.State)
	}
	if r := c.run("cancel", "9"); r.code == 0 {
		t.Errorf("cancelling a cancelled job succeeded")
	}
	if r := c.run("cancel", "x"); r.code == 0 {
		t.Errorf("cancel x succeeded")
	}
}
