package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sparegrid/sparegrid/coordinator/apiv1"
	"github.com/sparegrid/sparegrid/coordinator/client"
	"github.com/sparegrid/sparegrid/coordinator/client/clienttest"
	"github.com/sparegrid/sparegrid/shared/dep8"
)

// labelServer stands in front of a fake coordinator and answers
// PUT /api/v1/agents/{id}/labels itself, applying the labels over base the
// way the coordinator's routing does; everything else goes to the fake.
type labelServer struct {
	fake *clienttest.Server
	base dep8.AgentCaps

	mu   sync.Mutex
	sent [][]string
}

// newLabelServer starts a labelServer in front of c's fake and points c
// at it.
func newLabelServer(t *testing.T, c *cli, base dep8.AgentCaps) *labelServer {
	t.Helper()
	ls := &labelServer{fake: c.fake, base: base}
	target, err := url.Parse(c.fake.URL)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/", httputil.NewSingleHostReverseProxy(target))
	mux.HandleFunc("PUT /api/v1/agents/{id}/labels", ls.setLabels)
	hs := httptest.NewServer(mux)
	t.Cleanup(hs.Close)
	c.env["SPAREGRID_SERVER"] = hs.URL
	return ls
}

func (ls *labelServer) setLabels(w http.ResponseWriter, r *http.Request) {
	answer := func(status int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(v)
	}
	refuse := func(status int, code, msg string) {
		answer(status, apiv1.ErrorResponse{Error: apiv1.Error{Code: code, Message: msg}})
	}
	if r.Header.Get("Authorization") != "Bearer "+adminToken {
		refuse(http.StatusForbidden, "forbidden", "only an admin may set an agent's labels")
		return
	}
	var req apiv1.AgentLabelsRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Labels == nil {
		refuse(http.StatusBadRequest, "bad_request", `request body: "labels" is missing`)
		return
	}
	ls.mu.Lock()
	ls.sent = append(ls.sent, req.Labels)
	ls.mu.Unlock()
	c, err := dep8.ApplyAdminLabels(ls.base, req.Labels)
	if err != nil {
		refuse(http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	ag := ls.fake.Agent(7)
	ag.Labels = slices.Compact(slices.Sorted(slices.Values(req.Labels)))
	ag.Effective = &apiv1.AgentCaps{Arch: c.Arch, Backend: c.Backend, Isolation: string(c.Isolation), Root: c.Root,
		RevertFullSystem: c.RevertFullSystem, Reboot: c.Reboot, Internet: c.Internet, Labels: c.Labels,
		MemoryMB: c.MemoryMB, DiskMB: c.DiskMB}
	ls.fake.AddAgent(ag, "")
	answer(http.StatusOK, ag)
}

// takeSent returns the label lists the server was sent since the last
// call.
func (ls *labelServer) takeSent() [][]string {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	sent := ls.sent
	ls.sent = nil
	return sent
}

func TestAgentsLabel(t *testing.T) {
	c := newCLI(t)
	c.fake.AddAgent(client.Agent{ID: 7, Name: "box", Owner: "maint", State: client.AgentApproved}, "")
	base := dep8.AgentCaps{Arch: "amd64", Backend: "overlay", Isolation: dep8.IsolationContainer, Root: true,
		RevertFullSystem: true, Internet: true, Labels: []string{"big"}}
	ls := newLabelServer(t, c, base)

	tests := []struct {
		name   string
		args   []string
		sent   [][]string // what reached the server
		code   int
		stderr string // all of stderr when code is 0, else a part of it
	}{
		{
			name: "set",
			args: []string{"--token", adminToken, "agents", "label", "7", "isolation=machine", "reboot=yes", "gpu"},
			sent: [][]string{{"isolation=machine", "reboot=yes", "gpu"}},
			stderr: "agent 7 (box) now has admin labels gpu isolation=machine reboot=yes\n" +
				"routing sees: amd64 overlay: isolation=machine root=yes revert-full-system=yes reboot=yes internet=yes; labels big gpu\n",
		},
		{
			name: "remove a claimed label after --",
			args: []string{"--token", adminToken, "agents", "label", "7", "--", "-big", "memory-mb=2048"},
			sent: [][]string{{"-big", "memory-mb=2048"}},
			stderr: "agent 7 (box) now has admin labels -big memory-mb=2048\n" +
				"routing sees: amd64 overlay: isolation=container root=yes revert-full-system=yes reboot=no internet=yes memory-mb=2048\n",
		},
		{
			name: "clear",
			args: []string{"--token", adminToken, "agents", "label", "7"},
			sent: [][]string{{}},
			stderr: "agent 7 (box) now has no admin labels\n" +
				"routing sees: amd64 overlay: isolation=container root=yes revert-full-system=yes reboot=no internet=yes; labels big\n",
		},
		{
			name:   "a leading dash without --",
			args:   []string{"--token", adminToken, "agents", "label", "7", "-big"},
			code:   1,
			stderr: `put labels that start with "-" after "--": sparegrid agents label ID -- -NAME`,
		},
		{
			name:   "refused label",
			args:   []string{"--token", adminToken, "agents", "label", "7", "reboot=maybe"},
			sent:   [][]string{{"reboot=maybe"}},
			code:   1,
			stderr: "want yes or no",
		},
		{
			name:   "not an admin",
			args:   []string{"--token", maintainerToken, "agents", "label", "7", "gpu"},
			code:   1,
			stderr: "only an admin",
		},
		{
			name:   "no token",
			args:   []string{"agents", "label", "7", "gpu"},
			code:   1,
			stderr: "this needs an API token",
		},
		{
			name:   "bad id",
			args:   []string{"--token", adminToken, "agents", "label", "box", "gpu"},
			code:   1,
			stderr: `agent "box"`,
		},
		{
			name:   "no id",
			args:   []string{"--token", adminToken, "agents", "label"},
			code:   1,
			stderr: "requires at least 1 arg",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := c.run(tt.args...)
			if r.code != tt.code || r.stdout != "" {
				t.Fatalf("sparegrid %v = %d, stdout %q, stderr %q; want %d and no stdout", tt.args, r.code, r.stdout, r.stderr, tt.code)
			}
			if tt.code == 0 && r.stderr != tt.stderr || tt.code != 0 && !strings.Contains(r.stderr, tt.stderr) {
				t.Errorf("sparegrid %v stderr = %q, want %q", tt.args, r.stderr, tt.stderr)
			}
			if diff := cmp.Diff(tt.sent, ls.takeSent()); diff != "" {
				t.Errorf("sparegrid %v sent labels mismatch (-want +got):\n%s", tt.args, diff)
			}
		})
	}
}

func TestAgentsShowLabels(t *testing.T) {
	c := newCLI(t)
	c.fake.AddAgent(client.Agent{ID: 7, Name: "vm", Owner: "maint", State: client.AgentApproved,
		Labels:       []string{"-big", "isolation=machine", "reboot=yes"},
		Capabilities: json.RawMessage(`{"arch":"arm64","releases":["trixie"],"backend":"qemu"}`),
		Effective: &apiv1.AgentCaps{Arch: "arm64", Backend: "qemu", Isolation: "machine", Root: true, RevertFullSystem: true,
			Reboot: true, Internet: false, Labels: []string{"gpu"}, MemoryMB: 4096, DiskMB: 20000}}, "")
	c.fake.AddAgent(client.Agent{ID: 8, Name: "quiet", Owner: "maint", State: client.AgentPending}, "")

	tests := []struct {
		id   string
		want map[string]string // rows of the output
	}{
		{"7", map[string]string{
			"admin labels": "-big isolation=machine reboot=yes",
			"routing sees": "arm64 qemu: isolation=machine root=yes revert-full-system=yes reboot=yes internet=no memory-mb=4096 disk-mb=20000; labels gpu",
		}},
		{"8", map[string]string{
			"admin labels": "-",
			"routing sees": "nothing until the agent advertises its capabilities",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			r := c.ok("agents", "show", tt.id)
			got := map[string]string{}
			for _, line := range strings.Split(r.stdout, "\n") {
				for key := range tt.want {
					if value, ok := strings.CutPrefix(line, key+"  "); ok {
						got[key] = strings.TrimSpace(value)
					}
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("agents show %s rows mismatch (-want +got):\n%s", tt.id, diff)
			}
		})
	}

	r := c.ok("agents", "show", "7", "--json")
	var got client.Agent
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || got.Effective == nil || got.Effective.Isolation != "machine" {
		t.Errorf("agents show 7 --json = %q (%v), want the effective capabilities", r.stdout, err)
	}
}
