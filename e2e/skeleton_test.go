package e2e

import (
	"database/sql"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	_ "modernc.org/sqlite"

	"github.com/sparegrid/sparegrid/e2e/harness"
)

type testResult struct{ Name, Result string }

func results(j harness.Job) []testResult {
	var out []testResult
	for _, t := range j.Tests {
		out = append(out, testResult{t.Name, t.Result})
	}
	return out
}

// requireTools fails, rather than skips, when the real test tools are
// missing: make check installs them.
func requireTools(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test with real autopkgtest: not run with -short")
	}
	for _, tool := range []string{"autopkgtest", "mmdebstrap", "dpkg-source"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed: run `make deps` as root (make check does)", tool)
		}
	}
	if os.Geteuid() != 0 {
		t.Fatalf("the end-to-end test runs testbeds and must run as root")
	}
}

// snapshot lists every file under dir with its size and mode.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		out[p] = fi.Mode().String() + " " + fi.ModTime().String()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestWalkingSkeleton takes one archive package and one uploaded source
// package from submission to a signed, verified result through every real
// part of the grid.
func TestWalkingSkeleton(t *testing.T) {
	requireTools(t)
	c := harness.InitCoordinator(t)

	// init: files, modes, and a second init that changes nothing.
	for name, mode := range map[string]os.FileMode{"admin.token": 0o600, "jwt.key": 0o600, "ca.key": 0o600, "server.key": 0o600, "ca.sha256": 0o644, "sparegrid.db": 0} {
		fi, err := os.Stat(filepath.Join(c.DataDir, name))
		if err != nil {
			t.Fatalf("init did not create %s: %v", name, err)
		}
		if mode != 0 && fi.Mode().Perm() != mode {
			t.Errorf("%s has mode %v, want %v", name, fi.Mode().Perm(), mode)
		}
	}
	if len(c.CASHA256) != 64 || !strings.HasPrefix(c.AdminToken, "sgp_") {
		t.Fatalf("init printed token %q, fingerprint %q", c.AdminToken, c.CASHA256)
	}
	before := snapshot(t, c.DataDir)
	if r := harness.Run(t, nil, "sparegrid-coordinator", "init", "--data", c.DataDir); r.Code == 0 || !strings.Contains(r.Stderr, "not empty") || r.Stdout != "" {
		t.Errorf("second init = exit %d, stderr %q; want a refusal", r.Code, r.Stderr)
	}
	if diff := cmp.Diff(before, snapshot(t, c.DataDir)); diff != "" {
		t.Errorf("second init changed the data directory (-before +after):\n%s", diff)
	}

	c.Serve(t)
	aliceTok := c.CreateAccount(t, "alice", "volunteer")
	bobTok := c.CreateAccount(t, "bob", "maintainer")

	// A wrong CA fingerprint aborts before anything is sent.
	state := filepath.Join(t.TempDir(), "agent")
	wrong := strings.Repeat("ab", 32)
	if r := c.Register(t, state, "alice", wrong, "box1"); r.Code == 0 || !strings.Contains(strings.ToLower(r.Stderr), "fingerprint") {
		t.Fatalf("register with a wrong fingerprint = exit %d, stderr %q; want a fingerprint error", r.Code, r.Stderr)
	}
	if out := c.MustCLI(t, "", "agents", "list", "--json"); strings.Contains(out, "box1") {
		t.Fatalf("an agent registered despite the wrong fingerprint: %s", out)
	}

	// Register, then try to work unapproved.
	r := c.Register(t, state, "alice", c.CASHA256, "box1")
	if r.Code != 0 {
		t.Fatalf("register = exit %d: %s", r.Code, r.Stderr)
	}
	var reg struct {
		AgentID   int64  `json:"agent_id"`
		ClaimCode string `json:"claim_code"`
		State     string `json:"state"`
	}
	if err := json.Unmarshal([]byte(r.Stdout), &reg); err != nil || reg.AgentID == 0 || reg.ClaimCode == "" || reg.State != "pending" {
		t.Fatalf("register --json printed %q (%v)", r.Stdout, err)
	}
	if fi, err := os.Stat(filepath.Join(state, "agent.key")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("agent.key: %v, mode %v; want 0600", err, fi.Mode().Perm())
	}
	id := itoa(reg.AgentID)

	// Testbed image (real mmdebstrap), needed before run.
	tb := harness.Run(t, nil, "sparegrid-agent", "testbed", "build", "--release", "bookworm", "--state", state)
	if tb.Code != 0 || !strings.HasPrefix(strings.TrimSpace(tb.Stdout), "sha256:") {
		t.Fatalf("testbed build = exit %d, stdout %q: %s", tb.Code, tb.Stdout, tb.Stderr)
	}
	digest := strings.TrimSpace(tb.Stdout)

	// An unapproved agent gets no token: it says so and waits.
	agent := harness.Start(t, nil, "sparegrid-agent", "run", "--state", state)
	harness.WaitFor(t, "the pending agent to report that it is not approved", time.Minute, func() (bool, string) {
		out := agent.Output()
		return strings.Contains(out, "waiting for approval") && strings.Contains(out, "not approved"), out
	})

	// Enrolment: approve before claim is refused; only the owner claims.
	if r := c.CLI(t, c.AdminToken, "agents", "approve", id); r.Code == 0 || !strings.Contains(r.Stderr, "claim") {
		t.Errorf("approve before claim = exit %d, stderr %q; want a refusal", r.Code, r.Stderr)
	}
	if r := c.CLI(t, bobTok, "agents", "claim", reg.ClaimCode); r.Code == 0 {
		t.Errorf("claim by someone else succeeded")
	}
	c.MustCLI(t, aliceTok, "agents", "claim", reg.ClaimCode)
	c.MustCLI(t, c.AdminToken, "agents", "approve", id)

	fixture := filepath.Join(harness.RepoRoot(), "e2e", "testdata", "fixture")
	fixtureID := c.MustCLI(t, bobTok, "submit", "--source", fixture, "--release", "bookworm")
	helloID := c.MustCLI(t, bobTok, "submit", "hello", "--release", "bookworm")
	dscID := c.MustCLI(t, bobTok, "submit", "--source", buildDSC(t, fixture), "--release", "bookworm")

	fj := c.WaitJob(t, fixtureID, 10*time.Minute)
	hj := c.WaitJob(t, helloID, 10*time.Minute)
	dj := c.WaitJob(t, dscID, 10*time.Minute)

	wantFixture := []testResult{{"passes", "PASS"}, {"fails", "FAIL"}, {"skippable", "SKIP"}, {"flaky", "FLAKY"}}
	if diff := cmp.Diff(wantFixture, results(fj)); diff != "" || fj.Verdict != "fail" || fj.State != "done" {
		t.Errorf("fixture job: %s/%s, tests (-want +got):\n%s", fj.State, fj.Verdict, diff)
	}
	if diff := cmp.Diff(wantFixture, results(dj)); diff != "" || dj.Verdict != "fail" || dj.Version != "1.0" {
		t.Errorf("fixture .dsc job: %s/%s version %q, tests (-want +got):\n%s", dj.State, dj.Verdict, dj.Version, diff)
	}
	wantHello := []testResult{{"command1", "PASS"}, {"upstream-tests", "PASS"}}
	if diff := cmp.Diff(wantHello, results(hj)); diff != "" || hj.Verdict != "pass" || hj.State != "done" {
		t.Errorf("hello job: %s/%s (reason %q), tests (-want +got):\n%s", hj.State, hj.Verdict, hj.Reason, diff)
	}
	for _, j := range []harness.Job{fj, hj, dj} {
		if j.Harness == nil || j.Harness.Backend != "overlay" || j.Harness.ImageDigest != digest || j.Harness.AutopkgtestVersion == "" || j.Harness.AgentVersion == "" {
			t.Errorf("job %d harness = %+v, want overlay with image %s", j.ID, j.Harness, digest)
		}
		if j.Transport != "quic" || j.Agent == nil || *j.Agent != reg.AgentID || j.Attempt != 1 {
			t.Errorf("job %d: transport %q agent %v attempt %d; want quic, agent %d, attempt 1", j.ID, j.Transport, j.Agent, j.Attempt, reg.AgentID)
		}
	}
	if log := c.MustCLI(t, "", "log", helloID); !strings.Contains(log, "Hello, world!") {
		t.Errorf("log of the hello job lacks its output")
	}

	// Signed results verify, and stop verifying when tampered with.
	for _, jid := range []string{fixtureID, helloID, dscID} {
		if r := c.CLI(t, "", "verify", jid); r.Code != 0 {
			t.Errorf("verify %s = exit %d: %s", jid, r.Code, r.Stderr)
		}
	}
	tamperBlob(t, c, hj)
	if r := c.CLI(t, "", "verify", helloID); r.Code == 0 {
		t.Errorf("verify passed for a tampered blob")
	}
	tamperEnvelope(t, c, fj.ID)
	if r := c.CLI(t, "", "verify", fixtureID); r.Code == 0 {
		t.Errorf("verify passed for a tampered envelope")
	}

	// The HTML page lists the jobs.
	code, page, err := harness.HTTPGet(c.URL() + "/")
	if err != nil || code != 200 || !strings.Contains(string(page), "hello") || !strings.Contains(string(page), "sparegrid-fixture") {
		t.Errorf("GET / = %d, %v; want a page listing both jobs", code, err)
	}

	// The same job over TCP: the agent is told to skip QUIC, and the
	// result records which transport delivered it.
	agent.Stop(time.Minute)
	tcpAgent := harness.Start(t, nil, "sparegrid-agent", "run", "--state", state, "--transport", "tcp")
	tcpID := c.MustCLI(t, bobTok, "submit", "--source", fixture, "--release", "bookworm")
	tj := c.WaitJob(t, tcpID, 10*time.Minute)
	if diff := cmp.Diff(wantFixture, results(tj)); diff != "" || tj.Transport != "tcp" {
		t.Errorf("fixture job over tcp: transport %q, tests (-want +got):\n%s", tj.Transport, diff)
	}
	if r := c.CLI(t, "", "verify", tcpID); r.Code != 0 {
		t.Errorf("verify %s = exit %d: %s", tcpID, r.Code, r.Stderr)
	}
	tcpAgent.Stop(time.Minute)
}

// buildDSC turns the fixture tree into a .dsc and its tarball with
// dpkg-source, in a temporary directory.
func buildDSC(t *testing.T, tree string) string {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("cp", "-a", tree, filepath.Join(dir, "sparegrid-fixture")).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v\n%s", err, out)
	}
	cmd := exec.Command("dpkg-source", "-b", "sparegrid-fixture")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("dpkg-source -b: %v\n%s", err, out)
	}
	return filepath.Join(dir, "sparegrid-fixture_1.0.dsc")
}

func itoa(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// tamperBlob flips a byte of the job's log in the coordinator's blob store.
func tamperBlob(t *testing.T, c *harness.Coordinator, j harness.Job) {
	t.Helper()
	for _, b := range j.Blobs {
		if b.Name != "log" {
			continue
		}
		p := filepath.Join(c.DataDir, "blobs", b.SHA256[:2], b.SHA256)
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		data[len(data)/2] ^= 0x20
		if err := os.WriteFile(p, data, 0o640); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Fatalf("job %d has no log blob", j.ID)
}

// tamperEnvelope changes one character of the stored envelope's payload.
func tamperEnvelope(t *testing.T, c *harness.Coordinator, jobID int64) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(c.DataDir, "sparegrid.db")+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var env []byte
	if err := db.QueryRow(`SELECT envelope FROM results WHERE job_id = ?`, jobID).Scan(&env); err != nil {
		t.Fatal(err)
	}
	var e map[string]any
	if err := json.Unmarshal(env, &e); err != nil {
		t.Fatal(err)
	}
	var payload map[string]any
	raw, _ := json.Marshal(e["payload"])
	var b []byte
	json.Unmarshal(raw, &b)
	if err := json.Unmarshal(b, &payload); err != nil {
		t.Fatal(err)
	}
	pred := payload["predicate"].(map[string]any)
	pred["verdict"] = "pass"
	b, _ = json.Marshal(payload)
	e["payload"] = b
	env, _ = json.Marshal(e)
	if _, err := db.Exec(`UPDATE results SET envelope = ? WHERE job_id = ?`, env, jobID); err != nil {
		t.Fatal(err)
	}
}
