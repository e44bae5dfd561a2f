package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sparegrid/sparegrid/e2e/harness"
)

// verdictList is the part of `sparegrid verdicts --json` the test reads.
type verdictList struct {
	Verdicts []verdictEntry `json:"verdicts"`
}

type verdictEntry struct {
	Triggers []string `json:"triggers"`
	Release  string   `json:"release"`
	Arch     string   `json:"arch"`
	Status   string   `json:"status"`
	Reason   string   `json:"reason"`
	Jobs     []int64  `json:"jobs"`
	FailedOn []int64  `json:"failed_on"`
	Baseline *struct {
		JobID  int64  `json:"job_id"`
		Result string `json:"result"`
	} `json:"baseline"`
	Unconfirmed bool `json:"unconfirmed"`
}

// regressionConfig is the coordinator's configuration: the base archive,
// which testbeds add, no sweep, and a rule that tests the reverse
// dependencies of an upload against the repository it was published in.
const regressionConfig = `
[[archive]]
name = "e2e"
url = %q
suites = ["bookworm"]
components = ["main"]
architectures = ["amd64"]
poll_interval = "10m"
testbed_source = true

[[rule]]
name = "rdeps"
when = 'event.type == "upload"'
packages = "triggered(event.source)"
releases = ["bookworm"]
arches = ["amd64"]
apt_source = "deb [trusted=yes] {artifact_url} ./"

[schedule]
sweep = false
`

// TestRegression takes an upload of a library from an event to a
// REGRESSION of its reverse dependency: the archive watcher reads a real
// archive on loopback, the event's rule triggers the reverse dependency's
// test against the upload's repository, it fails on one agent, the
// coordinator confirms the failure on the other, and the baseline run
// without triggers passed.
func TestRegression(t *testing.T) {
	requireTools(t)
	began := time.Now()
	defer func() { t.Logf("TestRegression took %v", time.Since(began).Round(time.Second)) }()

	repos := harness.BuildRegression(t)
	baseURL := harness.ServeDir(t, repos.Base.Root)
	proposedURL := harness.ServeDir(t, repos.Proposed)

	cfg := filepath.Join(t.TempDir(), "coordinator.toml")
	if err := os.WriteFile(cfg, fmt.Appendf(nil, regressionConfig, baseURL), 0o644); err != nil {
		t.Fatal(err)
	}
	c := harness.InitCoordinator(t)
	c.Serve(t, "--config", cfg, "--debug")
	harness.WaitFor(t, "the archive watcher to read the base archive", time.Minute, func() (bool, string) {
		out := c.Proc.Output()
		return strings.Contains(out, "archive: read sources") && strings.Contains(out, "key=e2e/bookworm/main"), lastLine(out)
	})

	aliceTok := c.CreateAccount(t, "alice", "volunteer")
	bobTok := c.CreateAccount(t, "bob", "maintainer")
	stateA := filepath.Join(t.TempDir(), "agent-a")
	stateB := filepath.Join(t.TempDir(), "agent-b")
	agentA := enrolAgent(t, c, stateA, "alice", aliceTok, "regress-a")
	agentB := enrolCopy(t, c, stateA, stateB, "alice", aliceTok, "regress-b")
	harness.Start(t, nil, "sparegrid-agent", "run", "--state", stateA)
	harness.Start(t, nil, "sparegrid-agent", "run", "--state", stateB)
	t.Logf("agents: a=%d b=%d; set up in %v", agentA, agentB, time.Since(began).Round(time.Second))

	// The baseline: no triggers, sgfoo 1.0 from the base archive.
	baseID := c.MustCLI(t, bobTok, "submit", "sgfoo-user", "--release", "bookworm")
	base := c.WaitJob(t, baseID, 10*time.Minute)
	if base.State != "done" || base.Verdict != "pass" {
		t.Fatalf("baseline job %s: %s/%s (reason %q), want done/pass\n%s", baseID, base.State, base.Verdict, base.Reason, c.MustCLI(t, "", "log", baseID))
	}
	if log := c.MustCLI(t, "", "log", baseID); !strings.Contains(log, harness.SgfooWorks) {
		t.Errorf("log of baseline job %s lacks %q", baseID, harness.SgfooWorks)
	}
	t.Logf("baseline passed after %v", time.Since(began).Round(time.Second))

	// The upload event.
	r := c.CLI(t, bobTok, "events", "post", "--type", "upload", "--source", "sgfoo", "--version", "2.0",
		"--artifact-url", proposedURL+"/", "--json")
	if r.Code != 0 {
		t.Fatalf("events post = exit %d: %s", r.Code, r.Stderr)
	}
	var ev struct {
		Rules []struct {
			Rule     string   `json:"rule"`
			Matched  bool     `json:"matched"`
			Error    string   `json:"error"`
			Warnings []string `json:"warnings"`
		} `json:"rules"`
		Requests []struct {
			Package  string   `json:"package"`
			Release  string   `json:"release"`
			Arch     string   `json:"arch"`
			Triggers []string `json:"triggers"`
			Pending  bool     `json:"pending"`
			Job      *int64   `json:"job"`
		} `json:"requests"`
	}
	if err := json.Unmarshal([]byte(r.Stdout), &ev); err != nil {
		t.Fatalf("events post --json printed %q: %v", r.Stdout, err)
	}
	if len(ev.Rules) != 1 || !ev.Rules[0].Matched || ev.Rules[0].Error != "" || len(ev.Rules[0].Warnings) > 0 {
		t.Fatalf("event rules = %+v, want rdeps matched without error or warning", ev.Rules)
	}
	if len(ev.Requests) != 1 || ev.Requests[0].Job == nil {
		t.Fatalf("event requests = %+v, want one job", ev.Requests)
	}
	q := ev.Requests[0]
	if q.Package != "sgfoo-user" || q.Release != "bookworm" || q.Arch != "amd64" || !slices.Equal(q.Triggers, []string{"sgfoo/2.0"}) || q.Pending {
		t.Fatalf("event request = %+v, want sgfoo-user on bookworm/amd64 with trigger sgfoo/2.0, not pending", q)
	}
	firstID := *q.Job
	// The event's request for the archive package made the coordinator
	// read its debian/tests/control from the archive, for routing.
	cached := filepath.Join(c.DataDir, "tests-control", "sgfoo-user_1.0.json")
	harness.WaitFor(t, "the tests control of sgfoo-user 1.0 read from the archive", time.Minute, func() (bool, string) {
		data, err := os.ReadFile(cached)
		if err != nil {
			return false, err.Error()
		}
		return strings.Contains(string(data), `"uses-sgfoo"`), string(data)
	})
	apt := c.Show(t, itoa(firstID)).AptSources
	wantBase := "deb [trusted=yes] " + baseURL + "/ bookworm main"
	wantProposed := "deb [trusted=yes] " + proposedURL + "/ ./"
	if !slices.Contains(apt, wantBase) || !slices.Contains(apt, wantProposed) {
		t.Errorf("job %d apt sources = %q, want %q and %q", firstID, apt, wantBase, wantProposed)
	}

	// The failure, its confirmation on the other agent, the verdict.
	var vl verdictList
	harness.WaitFor(t, "a verdict for sgfoo-user with trigger sgfoo/2.0 other than RUNNING", 15*time.Minute, func() (bool, string) {
		r := c.CLI(t, "", "verdicts", "sgfoo-user", "--json")
		if r.Code != 0 {
			return false, r.Stderr
		}
		vl = verdictList{}
		if err := json.Unmarshal([]byte(r.Stdout), &vl); err != nil {
			return false, err.Error()
		}
		for _, v := range vl.Verdicts {
			if slices.Equal(v.Triggers, []string{"sgfoo/2.0"}) && v.Release == "bookworm" && v.Arch == "amd64" {
				return v.Status != "RUNNING" && v.Status != "PENDING", v.Status + ": " + v.Reason
			}
		}
		return false, r.Stdout
	})
	t.Logf("verdict after %v", time.Since(began).Round(time.Second))
	out, _ := json.MarshalIndent(vl, "", "  ")
	t.Logf("verdicts:\n%s", out)
	i := slices.IndexFunc(vl.Verdicts, func(v verdictEntry) bool { return slices.Equal(v.Triggers, []string{"sgfoo/2.0"}) })
	v := vl.Verdicts[i]
	// The confirmation run: the same target, queued by the scheduler
	// after the first failure, on the other agent, with the same apt
	// sources.
	var listed []struct {
		ID       int64    `json:"id"`
		Triggers []string `json:"triggers"`
	}
	out = []byte(c.MustCLI(t, "", "jobs", "--package", "sgfoo-user", "--json"))
	if err := json.Unmarshal(out, &listed); err != nil {
		t.Fatalf("jobs --json: %v\n%s", err, out)
	}
	var confirmID int64
	for _, j := range listed {
		if j.ID != firstID && slices.Equal(j.Triggers, []string{"sgfoo/2.0"}) {
			confirmID = j.ID
		}
	}
	if confirmID == 0 {
		t.Fatalf("no confirmation run of job %d among the jobs of sgfoo-user: %+v", firstID, listed)
	}
	first, confirm := c.Show(t, itoa(firstID)), c.Show(t, itoa(confirmID))
	if first.Agent == nil || confirm.Agent == nil || *first.Agent == *confirm.Agent {
		t.Errorf("job %d ran on agent %v and its confirmation %d on %v; want two agents", first.ID, first.Agent, confirm.ID, confirm.Agent)
	}
	if first.Agent != nil && !slices.Equal(confirm.AvoidAgents, []int64{*first.Agent}) {
		t.Errorf("confirmation job %d avoids agents %v, want [%d]", confirmID, confirm.AvoidAgents, *first.Agent)
	}
	if !slices.Equal(confirm.AptSources, apt) {
		t.Errorf("confirmation job %d has apt sources %q, want those of job %d: %q", confirmID, confirm.AptSources, firstID, apt)
	}
	for _, j := range []harness.Job{first, confirm} {
		log := c.MustCLI(t, "", "log", itoa(j.ID))
		if j.Verdict != "fail" || !strings.Contains(log, harness.SgfooBroken) {
			t.Errorf("job %d: verdict %s, log has %q: %v, has %q: %v; want a failure with %q",
				j.ID, j.Verdict, harness.SgfooBroken, strings.Contains(log, harness.SgfooBroken),
				harness.SgfooWorks, strings.Contains(log, harness.SgfooWorks), harness.SgfooBroken)
		}
	}

	if v.Status != "REGRESSION" || v.Unconfirmed {
		t.Fatalf("verdict = %s (unconfirmed %v): %s; want a confirmed REGRESSION", v.Status, v.Unconfirmed, v.Reason)
	}
	if v.Baseline == nil || itoa(v.Baseline.JobID) != baseID || v.Baseline.Result != "pass" {
		t.Errorf("verdict baseline = %+v, want job %s, pass", v.Baseline, baseID)
	}
	if got, want := slices.Sorted(slices.Values(v.FailedOn)), slices.Sorted(slices.Values([]int64{agentA, agentB})); !slices.Equal(got, want) {
		t.Errorf("verdict failed_on = %v, want both agents %v", v.FailedOn, want)
	}
	if !slices.Contains(v.Jobs, firstID) || !slices.Contains(v.Jobs, confirmID) {
		t.Errorf("verdict jobs = %v, want %d and %d among them", v.Jobs, firstID, confirmID)
	}
}

// enrolCopy enrols a second agent in state whose testbed images are a copy
// of those in from, so the bookworm image is built once.
func enrolCopy(t *testing.T, c *harness.Coordinator, from, state, owner, ownerToken, name string) int64 {
	t.Helper()
	return enrolWith(t, c, state, owner, ownerToken, name, func() {
		if err := os.MkdirAll(filepath.Join(state, "images"), 0o755); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command("cp", "-a", filepath.Join(from, "images")+"/.", filepath.Join(state, "images")).CombinedOutput(); err != nil {
			t.Fatalf("copy the testbed images: %v\n%s", err, out)
		}
	})
}

func lastLine(s string) string {
	s = strings.TrimRight(s, "\n")
	return s[strings.LastIndexByte(s, '\n')+1:]
}
