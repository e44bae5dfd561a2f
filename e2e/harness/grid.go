package harness

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

// Coordinator is a real sparegrid-coordinator on loopback.
type Coordinator struct {
	DataDir    string
	AdminToken string
	CASHA256   string
	AgentsAddr string
	HTTPAddr   string
	Proc       *Proc
	// Demo starts it with --demo.
	Demo bool
	// extra are the further serve arguments Serve was given.
	extra []string
}

// InitCoordinator runs sparegrid-coordinator init in a temporary dir.
func InitCoordinator(t testing.TB) *Coordinator {
	t.Helper()
	return InitCoordinatorNames(t)
}

// Serve starts the coordinator on free loopback ports (the agent gateway
// on a port free for both UDP and TCP) and waits until its HTTP API
// answers.
func (c *Coordinator) Serve(t testing.TB, extra ...string) {
	t.Helper()
	c.serve(t, FreeUDPTCP(t, "127.0.0.1"), extra)
}

// serve starts the coordinator with its agent gateway on agents and its
// HTTP API on a free loopback port, remembering extra for Restart.
func (c *Coordinator) serve(t testing.TB, agents string, extra []string) {
	t.Helper()
	c.AgentsAddr, c.HTTPAddr, c.extra = agents, FreeTCP(t), extra
	c.start(t)
}

// start runs serve with the coordinator's addresses and arguments and
// waits until its HTTP API answers.
func (c *Coordinator) start(t testing.TB) {
	t.Helper()
	args := append([]string{"serve", "--data", c.DataDir, "--agents", c.AgentsAddr, "--http", c.HTTPAddr}, c.extra...)
	if c.Demo {
		args = append(args, "--demo")
	}
	proc := Start(t, nil, "sparegrid-coordinator", args...)
	c.Proc = proc
	WaitFor(t, "coordinator HTTP", 30*time.Second, func() (bool, string) {
		select {
		case <-proc.Done():
			t.Fatalf("coordinator exited: %v\n%s", proc.Err(), proc.Output())
		default:
		}
		code, _, err := HTTPGet(c.URL() + "/api/v1/version")
		return code == 200, fmt.Sprintf("status %d, err %v", code, err)
	})
}

// URL is the coordinator's HTTP base URL.
func (c *Coordinator) URL() string { return "http://" + c.HTTPAddr }

// CLI runs the sparegrid CLI against this coordinator with token.
func (c *Coordinator) CLI(t testing.TB, token string, args ...string) Result {
	t.Helper()
	env := []string{"SPAREGRID_SERVER=" + c.URL(), "SPAREGRID_TOKEN=" + token}
	return Run(t, env, "sparegrid", args...)
}

// MustCLI is CLI that fails the test on a non-zero exit.
func (c *Coordinator) MustCLI(t testing.TB, token string, args ...string) string {
	t.Helper()
	r := c.CLI(t, token, args...)
	if r.Code != 0 {
		t.Fatalf("sparegrid %s: exit %d: %s", strings.Join(args, " "), r.Code, r.Stderr)
	}
	return strings.TrimSpace(r.Stdout)
}

// CreateAccount makes an account and returns its token.
func (c *Coordinator) CreateAccount(t testing.TB, name, role string) string {
	t.Helper()
	return c.MustCLI(t, c.AdminToken, "accounts", "create", name, "--email", name+"@example.org", "--role", role)
}

// Job is the subset of `sparegrid show --json` the tests read.
type Job struct {
	ID      int64  `json:"id"`
	Package string `json:"package"`
	Version string `json:"version"`
	Release string `json:"release"`
	Arch    string `json:"arch"`
	State   string `json:"state"`
	Verdict string `json:"verdict"`
	Agent   *int64 `json:"agent"`
	Attempt int    `json:"attempt"`
	Stage   string `json:"stage"`
	Reason  string `json:"reason"`
	Tests   []struct {
		Name   string `json:"name"`
		Result string `json:"result"`
		Detail string `json:"detail"`
	} `json:"tests"`
	Harness *struct {
		AgentVersion       string `json:"agent_version"`
		AutopkgtestVersion string `json:"autopkgtest_version"`
		Backend            string `json:"backend"`
		ImageDigest        string `json:"image_digest"`
	} `json:"harness"`
	Transport string `json:"transport"`
	Blobs     []struct {
		Name   string `json:"name"`
		SHA256 string `json:"sha256"`
		Size   int64  `json:"size"`
	} `json:"blobs"`
	Triggers    []string `json:"triggers"`
	AptSources  []string `json:"apt_sources"`
	AvoidAgents []int64  `json:"avoid_agents"`
	ReusedFrom  *int64   `json:"reused_from"`
}

// Show returns `sparegrid show ID --json`.
func (c *Coordinator) Show(t testing.TB, id string) Job {
	t.Helper()
	out := c.MustCLI(t, "", "show", id, "--json")
	var j Job
	if err := json.Unmarshal([]byte(out), &j); err != nil {
		t.Fatalf("show --json: %v\n%s", err, out)
	}
	return j
}

// WaitJob waits until the job is done or cancelled and returns it.
func (c *Coordinator) WaitJob(t testing.TB, id string, timeout time.Duration) Job {
	t.Helper()
	var j Job
	WaitFor(t, "job "+id+" to finish", timeout, func() (bool, string) {
		r := c.CLI(t, "", "show", id, "--json")
		if r.Code != 0 {
			return false, r.Stderr
		}
		j = Job{}
		if err := json.Unmarshal([]byte(r.Stdout), &j); err != nil {
			return false, err.Error()
		}
		return j.State == "done" || j.State == "cancelled", fmt.Sprintf("state %s stage %q attempt %d reason %q", j.State, j.Stage, j.Attempt, j.Reason)
	})
	return j
}

// Agent is a sparegrid-agent state directory.
type Agent struct {
	StateDir string
	ID       string
	Claim    string
}

// Register runs sparegrid-agent register and returns the result; the
// caller checks it.
func (c *Coordinator) Register(t testing.TB, stateDir, owner, fingerprint, name string) Result {
	t.Helper()
	return Run(t, nil, "sparegrid-agent", "register", "--coordinator", c.AgentsAddr,
		"--ca-sha256", fingerprint, "--owner", owner, "--state", stateDir, "--name", name, "--json")
}
