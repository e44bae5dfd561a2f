package api

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sparegrid/sparegrid/coordinator/apiv1"
	"github.com/sparegrid/sparegrid/coordinator/store"
)

// labelled creates an auto-approved agent owned by owner that advertised
// caps ("" for none), and returns its id.
func (f *fixture) labelled(owner store.Account, name, caps string) int64 {
	f.t.Helper()
	ag, err := f.db.CreateAgent(f.t.Context(), store.Agent{Name: name, OwnerID: owner.ID, PublicKey: []byte(name),
		ClaimCode: "code-" + name, State: store.AgentApproved, AutoApproved: true})
	if err != nil {
		f.t.Fatal(err)
	}
	if caps != "" {
		if err := f.db.SeenAgent(f.t.Context(), ag.ID, time.Now(), []byte(caps)); err != nil {
			f.t.Fatal(err)
		}
	}
	return ag.ID
}

func TestSetAgentLabels(t *testing.T) {
	f := newFixture(t)
	maint := f.account("maint", "maintainer")
	owner, err := f.db.AccountByName(t.Context(), "maint")
	if err != nil {
		t.Fatal(err)
	}
	id := f.labelled(owner, "box", `{"arch":"amd64","releases":["trixie"],"backend":"overlay","labels":["big"]}`)
	path := fmt.Sprintf("/api/v1/agents/%d/labels", id)

	tests := []struct {
		name     string
		path     string
		token    string
		body     string
		wantCode int
		wantErr  string // the error code
		wantMsg  string // in the error message
	}{
		{name: "no token", path: path, body: `{"labels":["gpu"]}`, wantCode: 401, wantErr: "unauthenticated"},
		{name: "maintainer", path: path, token: maint, body: `{"labels":["gpu"]}`, wantCode: 403, wantErr: "forbidden"},
		{name: "bad label", path: path, token: f.admin, body: `{"labels":["gpu","reboot=maybe"]}`, wantCode: 400, wantErr: "bad_request", wantMsg: `agent label "reboot=maybe": want yes or no`},
		{name: "bad name", path: path, token: f.admin, body: `{"labels":["GPU"]}`, wantCode: 400, wantErr: "bad_request", wantMsg: `agent label "GPU"`},
		{name: "contradiction", path: path, token: f.admin, body: `{"labels":["gpu","-gpu"]}`, wantCode: 400, wantErr: "bad_request", wantMsg: "contradict"},
		{name: "labels missing", path: path, token: f.admin, body: `{}`, wantCode: 400, wantErr: "bad_request", wantMsg: `"labels" is missing`},
		{name: "labels null", path: path, token: f.admin, body: `{"labels":null}`, wantCode: 400, wantErr: "bad_request", wantMsg: `"labels" is missing`},
		{name: "unknown field", path: path, token: f.admin, body: `{"labels":[],"owner":"x"}`, wantCode: 400, wantErr: "bad_request"},
		{name: "not JSON", path: path, token: f.admin, body: `labels=gpu`, wantCode: 400, wantErr: "bad_request"},
		{name: "unknown agent", path: "/api/v1/agents/9999/labels", token: f.admin, body: `{"labels":["gpu"]}`, wantCode: 404, wantErr: "not_found"},
		{name: "bad id", path: "/api/v1/agents/x/labels", token: f.admin, body: `{"labels":["gpu"]}`, wantCode: 400, wantErr: "bad_request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, body := f.do("PUT", tt.path, tt.token, strings.NewReader(tt.body), nil)
			var e apiv1.ErrorResponse
			json.Unmarshal(body, &e)
			if code != tt.wantCode || e.Error.Code != tt.wantErr || !strings.Contains(e.Error.Message, tt.wantMsg) {
				t.Errorf("PUT %s %s = %d %s, want %d %s with %q", tt.path, tt.body, code, body, tt.wantCode, tt.wantErr, tt.wantMsg)
			}
		})
	}
	var unchanged apiv1.Agent
	f.do("GET", fmt.Sprintf("/api/v1/agents/%d", id), "", nil, &unchanged)
	if len(unchanged.Labels) != 0 {
		t.Errorf("labels after refused PUTs = %q, want none", unchanged.Labels)
	}

	var set apiv1.Agent
	code, _, body := f.do("PUT", path, f.admin, jsonBody(apiv1.AgentLabelsRequest{Labels: []string{"reboot=yes", "isolation=machine", "gpu", "-big", "gpu"}}), &set)
	if code != 200 {
		t.Fatalf("PUT %s = %d %s, want 200", path, code, body)
	}
	want := &apiv1.AgentCaps{Arch: "amd64", Backend: "overlay", Isolation: "machine", Root: true, RevertFullSystem: true,
		Reboot: true, Internet: true, Labels: []string{"gpu"}}
	if diff := cmp.Diff([]string{"-big", "gpu", "isolation=machine", "reboot=yes"}, set.Labels); diff != "" {
		t.Errorf("PUT %s labels mismatch (-want +got):\n%s", path, diff)
	}
	if diff := cmp.Diff(want, set.Effective); diff != "" {
		t.Errorf("PUT %s effective mismatch (-want +got):\n%s", path, diff)
	}
	var got apiv1.Agent
	f.do("GET", fmt.Sprintf("/api/v1/agents/%d", id), "", nil, &got)
	if diff := cmp.Diff(set, got); diff != "" {
		t.Errorf("GET agent after PUT mismatch (-want +got):\n%s", diff)
	}

	var cleared apiv1.Agent
	f.do("PUT", path, f.admin, strings.NewReader(`{"labels":[]}`), &cleared)
	want = &apiv1.AgentCaps{Arch: "amd64", Backend: "overlay", Isolation: "container", Root: true, RevertFullSystem: true,
		Internet: true, Labels: []string{"big"}}
	if len(cleared.Labels) != 0 || !cmp.Equal(cleared.Effective, want) {
		t.Errorf("after clearing, labels %q, effective %+v; want none and %+v", cleared.Labels, cleared.Effective, want)
	}
}

func TestAgentViewEffective(t *testing.T) {
	f := newFixture(t)
	f.account("vol", "volunteer")
	owner, err := f.db.AccountByName(t.Context(), "vol")
	if err != nil {
		t.Fatal(err)
	}
	silent := f.labelled(owner, "silent", "")
	garbled := f.labelled(owner, "garbled", `{"releases":["trixie"]}`)
	vm := f.labelled(owner, "vm", `{"arch":"arm64","releases":["trixie"],"backend":"qemu","isolation":"machine","root":true,"reboot":true,"memory_mb":4096,"disk_mb":20000}`)
	pending, err := f.db.CreateAgent(t.Context(), store.Agent{Name: "new", OwnerID: owner.ID, PublicKey: []byte("new"), ClaimCode: "code-new"})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.db.SeenAgent(t.Context(), pending.ID, time.Now(), []byte(`{"arch":"amd64","backend":"unshare"}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := f.db.SetAgentLabels(t.Context(), pending.ID, []string{"internet=no"}); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		id   int64
		want string // the effective field as JSON
	}{
		{"advertised nothing", silent, `null`},
		{"advertised no arch", garbled, `null`},
		{"as advertised", vm, `{"arch":"arm64","backend":"qemu","isolation":"machine","root":true,"revert_full_system":false,"reboot":true,"internet":false,"labels":[],"memory_mb":4096,"disk_mb":20000}`},
		{"pending, labelled", pending.ID, `{"arch":"amd64","backend":"unshare","isolation":"none","root":true,"revert_full_system":true,"reboot":false,"internet":false,"labels":[],"memory_mb":0,"disk_mb":0}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, body := f.do("GET", fmt.Sprintf("/api/v1/agents/%d", tt.id), "", nil, nil)
			var raw struct {
				Effective json.RawMessage `json:"effective"`
			}
			if err := json.Unmarshal(body, &raw); code != 200 || err != nil {
				t.Fatalf("GET agent %d = %d %s (%v)", tt.id, code, body, err)
			}
			var compact bytes.Buffer
			json.Compact(&compact, raw.Effective)
			if compact.String() != tt.want {
				t.Errorf("GET agent %d effective = %s, want %s", tt.id, compact.String(), tt.want)
			}
		})
	}

	var list apiv1.AgentList
	f.do("GET", "/api/v1/agents", "", nil, &list)
	withEffective := 0
	for _, ag := range list.Agents {
		if ag.Effective != nil {
			withEffective++
		}
	}
	if len(list.Agents) != 4 || withEffective != 2 {
		t.Errorf("GET /agents = %d agents, %d with effective capabilities; want 4 and 2", len(list.Agents), withEffective)
	}
}

// TestLabelsRoute checks that routing follows an admin's labels: a test
// that needs a machine waits while the only agent offers a container, and
// goes to it once an admin labels it isolation=machine.
func TestLabelsRoute(t *testing.T) {
	f := newFixture(t)
	maint := f.account("maint", "maintainer")
	owner, err := f.db.AccountByName(t.Context(), "maint")
	if err != nil {
		t.Fatal(err)
	}
	id := f.labelled(owner, "box", `{"arch":"amd64","releases":["bookworm"],"backend":"overlay"}`)
	data := sourceTar(t, "kernelish/", "Tests: smoke\nDepends: dash\n\nTests: vm\nRestrictions: isolation-machine\nDepends: dash\n")
	sum := sha256.Sum256(data)
	sha := hex.EncodeToString(sum[:])
	if code, _, body := f.do("POST", "/api/v1/sources?sha256="+sha, maint, bytes.NewReader(data), nil); code != 201 {
		t.Fatalf("POST /sources = %d %s", code, body)
	}
	submit := func() apiv1.Job {
		t.Helper()
		var j apiv1.Job
		code, _, body := f.do("POST", "/api/v1/jobs", maint, jsonBody(map[string]any{"package": "kernelish", "release": "bookworm",
			"source": map[string]any{"sha256": sha, "kind": "tree", "entry": "kernelish/"}}), &j)
		if code != 201 {
			t.Fatalf("submit = %d %s; want 201", code, body)
		}
		return j
	}

	before := submit()
	if len(before.SplitJobs) != 1 {
		t.Fatalf("before labelling, submission split into %v, want one job for the vm test", before.SplitJobs)
	}
	var split apiv1.Job
	f.do("GET", fmt.Sprintf("/api/v1/jobs/%d", before.SplitJobs[0]), "", nil, &split)
	if !strings.Contains(split.Pending, "isolation-machine") {
		t.Errorf("before labelling, split job pending = %q, want it waiting for isolation-machine", split.Pending)
	}
	if code, _, body := f.do("PUT", fmt.Sprintf("/api/v1/agents/%d/labels", id), f.admin, strings.NewReader(`{"labels":["isolation=machine"]}`), nil); code != http.StatusOK {
		t.Fatalf("PUT labels = %d %s", code, body)
	}
	if after := submit(); len(after.SplitJobs) != 0 || len(after.OnlyTests) != 0 || after.Pending != "" {
		t.Errorf("after labelling isolation=machine, submission = only %v, split %v, pending %q; want one job for every test, not pending",
			after.OnlyTests, after.SplitJobs, after.Pending)
	}
}

// FuzzAgentLabels feeds what agents advertise and admins send through the
// label checks and the agent view: nothing panics, accepted labels are
// sorted and unique, and their order does not change what routing
// believes.
func FuzzAgentLabels(f *testing.F) {
	f.Add([]byte(`{"arch":"amd64","backend":"overlay","labels":["big"]}`), "isolation=machine reboot=yes gpu -big")
	f.Add([]byte(`{"arch":"arm64","backend":"qemu","isolation":"machine","memory_mb":10}`), "gpu -gpu")
	f.Add([]byte(`{"arch":"amd64","backend":"unshare"}`), "internet=no memory-mb=1 disk-mb=2 a.b:c_d-e")
	f.Add([]byte(`null`), "isolation=none isolation=none")
	f.Fuzz(func(t *testing.T, caps []byte, labels string) {
		in := strings.Fields(labels)
		out, err := store.NormalizeAgentLabels(in)
		if err != nil {
			return
		}
		if !slices.IsSorted(out) || len(slices.Compact(slices.Clone(out))) != len(out) {
			t.Fatalf("NormalizeAgentLabels(%q) = %q, want sorted and unique", in, out)
		}
		ag := store.Agent{ID: 1, State: store.AgentApproved, Capabilities: caps, Labels: out}
		eff := effectiveCaps(ag)
		ag.Labels = slices.Clone(out)
		slices.Reverse(ag.Labels)
		if reversed := effectiveCaps(ag); !cmp.Equal(eff, reversed) {
			t.Fatalf("effective capabilities of %s with %q = %+v, with them reversed %+v; want the same", caps, out, eff, reversed)
		}
		if eff != nil && eff.Isolation != "none" && eff.Isolation != "container" && eff.Isolation != "machine" {
			t.Fatalf("effective capabilities of %s with %q have isolation %q", caps, out, eff.Isolation)
		}
	})
}
