package apiv1_test

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sparegrid/sparegrid/coordinator/apiv1"
	"github.com/sparegrid/sparegrid/shared/dep8"
)

// TestWireShapes pins the JSON of the API's types field by field: a
// renamed field or a new omitempty breaks it, because clients in the field
// read exactly these names.
func TestWireShapes(t *testing.T) {
	at := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	agent, exit := int64(7), 2
	tests := []struct {
		name string
		in   any
		out  any // a pointer to decode into
		want string
	}{
		{
			name: "full job",
			in: apiv1.Job{
				ID: 1, Package: "hello", Version: "2.10-3", Release: "trixie", Arch: "amd64",
				Triggers: []string{"glibc/2.41-1"},
				Source:   &apiv1.Source{SHA256: "ab", Size: 3, Kind: apiv1.KindTree, Entry: "hello"},
				State:    apiv1.StateDone, Verdict: dep8.VerdictFail, Attempt: 2,
				Agent: &agent, AgentName: "box", Owner: "maint", Stage: "test", Reason: "r", Transport: "quic",
				SubmittedBy: "alice", CreatedAt: at, StartedAt: &at, FinishedAt: &at, ExitCode: &exit,
				Tests:    []dep8.Test{{Name: "smoke", Result: dep8.Fail, Detail: "non-zero exit status 1"}},
				Harness:  &dep8.Harness{AgentVersion: "v1", AutopkgtestVersion: "5.40", Backend: "overlay", ImageDigest: "sha256:aa"},
				Blobs:    []apiv1.Blob{{Name: "log", SHA256: "cd", Size: 9}},
				LogURL:   "/api/v1/jobs/1/log",
				Priority: 7, Lane: "default", ReusedFrom: &agent, OnlyTests: []string{"smoke"},
				AptSources: []string{"deb [trusted=yes] http://ci.example.org/up/ ./"}, AvoidAgents: []int64{3},
			},
			out: new(apiv1.Job),
			want: `{"id":1,"package":"hello","version":"2.10-3","release":"trixie","arch":"amd64",` +
				`"triggers":["glibc/2.41-1"],"source":{"sha256":"ab","size":3,"kind":"tree","entry":"hello"},` +
				`"state":"done","verdict":"fail","attempt":2,"agent":7,"agent_name":"box","owner":"maint",` +
				`"stage":"test","reason":"r","transport":"quic","submitted_by":"alice",` +
				`"created_at":"2026-11-21T12:00:00Z","started_at":"2026-11-21T12:00:00Z","finished_at":"2026-11-21T12:00:00Z",` +
				`"exit_code":2,"tests":[{"name":"smoke","result":"FAIL","detail":"non-zero exit status 1"}],` +
				`"harness":{"agent_version":"v1","autopkgtest_version":"5.40","backend":"overlay","image_digest":"sha256:aa"},` +
				`"blobs":[{"name":"log","sha256":"cd","size":9}],"log_url":"/api/v1/jobs/1/log",` +
				`"priority":7,"lane":"default","reused_from":7,"only_tests":["smoke"],` +
				`"apt_sources":["deb [trusted=yes] http://ci.example.org/up/ ./"],"avoid_agents":[3]}`,
		},
		{
			name: "queued job keeps every field",
			in: apiv1.Job{ID: 2, Package: "hello", Release: "trixie", Arch: "amd64", Triggers: []string{},
				State: apiv1.StateQueued, SubmittedBy: "alice", CreatedAt: at, Tests: []dep8.Test{}, Blobs: []apiv1.Blob{},
				Priority: 5, Lane: "sweep", OnlyTests: []string{}, AptSources: []string{}, AvoidAgents: []int64{}, Pending: "no approved agent offers trixie/amd64", SplitJobs: []int64{3}},
			out: new(apiv1.Job),
			want: `{"id":2,"package":"hello","version":"","release":"trixie","arch":"amd64","triggers":[],"source":null,` +
				`"state":"queued","verdict":"","attempt":0,"agent":null,"agent_name":"","owner":"","stage":"","reason":"",` +
				`"transport":"","submitted_by":"alice","created_at":"2026-11-21T12:00:00Z","started_at":null,"finished_at":null,` +
				`"exit_code":null,"tests":[],"harness":null,"blobs":[],"log_url":"","priority":5,"lane":"sweep","reused_from":null,` +
				`"only_tests":[],"apt_sources":[],"avoid_agents":[],"pending":"no approved agent offers trixie/amd64","split_jobs":[3]}`,
		},
		{
			name: "agent",
			in: apiv1.Agent{ID: 3, Name: "box", Owner: "maint", State: apiv1.AgentApproved, Claimed: true, Labels: []string{},
				Capabilities: json.RawMessage(`{"arch":"amd64"}`),
				Effective: &apiv1.AgentCaps{Arch: "amd64", Backend: "overlay", Isolation: "container", Root: true,
					RevertFullSystem: true, Internet: true, Labels: []string{"gpu"}, MemoryMB: 2048},
				PublicKey: []byte{0, 0, 0}, KeyID: "sha256:00",
				CreatedAt: at, LastSeen: &at, DecidedBy: "root", DecidedAt: &at},
			out: new(apiv1.Agent),
			want: `{"id":3,"name":"box","owner":"maint","state":"approved","claimed":true,"auto_approved":false,"labels":[],` +
				`"capabilities":{"arch":"amd64"},"effective":{"arch":"amd64","backend":"overlay","isolation":"container",` +
				`"root":true,"revert_full_system":true,"reboot":false,"internet":true,"labels":["gpu"],"memory_mb":2048,"disk_mb":0},` +
				`"public_key":"AAAA","key_id":"sha256:00","created_at":"2026-11-21T12:00:00Z",` +
				`"last_seen":"2026-11-21T12:00:00Z","decided_by":"root","decided_at":"2026-11-21T12:00:00Z","paused":"","paused_at":null}`,
		},
		{
			name: "minimal submit request",
			in:   apiv1.SubmitRequest{Package: "hello", Release: "trixie"},
			out:  new(apiv1.SubmitRequest),
			want: `{"package":"hello","release":"trixie"}`,
		},
		{
			name: "forced submit request",
			in:   apiv1.SubmitRequest{Package: "hello", Release: "trixie", Force: true},
			out:  new(apiv1.SubmitRequest),
			want: `{"package":"hello","release":"trixie","force":true}`,
		},
		{
			name: "blocklist rule",
			in: apiv1.BlockRule{ID: 3, Package: "linux-*", Version: "6.12-1", Release: "trixie", Arch: "arm64", Test: "smoke",
				Agent: &agent, Reason: "flaky", CreatedBy: "admin", CreatedAt: at, ExpiresAt: &at, Expired: true,
				Explanation: "blocklist rule 3 (~admin, until 2026-11-21 12:00 UTC): flaky"},
			out: new(apiv1.BlockRule),
			want: `{"id":3,"package":"linux-*","version":"6.12-1","release":"trixie","arch":"arm64","test":"smoke",` +
				`"agent":7,"label":"","reason":"flaky","created_by":"admin","created_at":"2026-11-21T12:00:00Z",` +
				`"expires_at":"2026-11-21T12:00:00Z","expired":true,"explanation":"blocklist rule 3 (~admin, until 2026-11-21 12:00 UTC): flaky"}`,
		},
		{
			name: "unscoped blocklist rule keeps every field",
			in:   apiv1.BlockRule{ID: 4, Package: "hello", Reason: "r", CreatedBy: "admin", CreatedAt: at},
			out:  new(apiv1.BlockRule),
			want: `{"id":4,"package":"hello","version":"","release":"","arch":"","test":"","agent":null,"label":"",` +
				`"reason":"r","created_by":"admin","created_at":"2026-11-21T12:00:00Z","expires_at":null,"expired":false,"explanation":""}`,
		},
		{
			name: "event",
			in: apiv1.Event{ID: 9, Type: "upload", Source: "libfoo", Version: "1.2-1", ArtifactURL: "https://ci.example.org/x",
				BuildID: "4711", Metadata: map[string]string{"suite": "unstable"}, Producer: "ci", Received: at,
				Rules: []apiv1.EventRule{{Rule: "r1", Matched: true, Warnings: []string{}, Requests: 2}},
				Requests: []apiv1.EventRequest{
					{Package: "libfoo", Version: "1.2-1", Release: "sid", Arch: "amd64", Triggers: []string{"libfoo/1.2-1"}, Priority: 5, Reason: "x", Job: &agent, SplitJobs: []int64{8}},
					{Package: "libfoo", Release: "sid", Arch: "s390x", Triggers: []string{}, Priority: 5, Lane: "slow", Reason: "x", Pending: true, PendingReason: "no agent", SplitJobs: []int64{}},
				},
				Jobs: []int64{7}},
			out: new(apiv1.Event),
			want: `{"id":9,"type":"upload","source":"libfoo","version":"1.2-1","artifact_url":"https://ci.example.org/x",` +
				`"build_id":"4711","metadata":{"suite":"unstable"},"producer":"ci","received":"2026-11-21T12:00:00Z",` +
				`"rules":[{"rule":"r1","matched":true,"error":"","warnings":[],"requests":2}],` +
				`"requests":[{"package":"libfoo","version":"1.2-1","release":"sid","arch":"amd64","triggers":["libfoo/1.2-1"],` +
				`"priority":5,"lane":"","reason":"x","pending":false,"pending_reason":"","blocked":"","job":7,"split_jobs":[8]},` +
				`{"package":"libfoo","version":"","release":"sid","arch":"s390x","triggers":[],"priority":5,"lane":"slow",` +
				`"reason":"x","pending":true,"pending_reason":"no agent","blocked":"","job":null,"split_jobs":[]}],"jobs":[7]}`,
		},
		{
			name: "minimal event post",
			in:   apiv1.EventPost{Type: "image-built"},
			out:  new(apiv1.EventPost),
			want: `{"type":"image-built"}`,
		},
		{
			name: "minimal blocklist request",
			in:   apiv1.BlockRuleRequest{Package: "hello", Reason: "r"},
			out:  new(apiv1.BlockRuleRequest),
			want: `{"package":"hello","reason":"r"}`,
		},
		{
			name: "full blocklist request",
			in: apiv1.BlockRuleRequest{Package: "hello", Version: "1.0-1", Release: "trixie", Arch: "amd64", Test: "smoke",
				Label: "slow", Reason: "r", Expires: &at},
			out: new(apiv1.BlockRuleRequest),
			want: `{"package":"hello","version":"1.0-1","release":"trixie","arch":"amd64","test":"smoke","label":"slow",` +
				`"reason":"r","expires":"2026-11-21T12:00:00Z"}`,
		},
		{
			name: "verdicts",
			in: apiv1.VerdictList{Package: "hello", Verdicts: []apiv1.Verdict{{
				Package: "hello", Version: "2.10-3", Triggers: []string{"glibc/2.41-1"}, Release: "trixie", Arch: "amd64",
				Status: apiv1.StatusRunning, Reason: "r", Jobs: []int64{52, 41}, HarnessRevisions: []string{"agent=v1"},
				Baseline: &apiv1.VerdictBaseline{JobID: 41, Result: dep8.VerdictPass, Version: "2.10-2", Finished: at},
				FailedOn: []int64{3}, OnlyTests: []string{"reboot"},
			}}, Retries: []apiv1.VerdictRetry{{Package: "hello", Version: "2.10-3", Triggers: []string{"glibc/2.41-1"},
				Release: "trixie", Arch: "amd64", AvoidAgents: []int64{3}, Reason: "confirm", OnlyTests: []string{}}}},
			out: new(apiv1.VerdictList),
			want: `{"package":"hello","verdicts":[{"package":"hello","version":"2.10-3","triggers":["glibc/2.41-1"],` +
				`"release":"trixie","arch":"amd64","only_tests":["reboot"],"status":"RUNNING","reason":"r","jobs":[52,41],"harness_revisions":["agent=v1"],` +
				`"baseline":{"job_id":41,"result":"pass","version":"2.10-2","finished":"2026-11-21T12:00:00Z"},` +
				`"failed_on":[3],"unconfirmed":false,"flaky":false}],` +
				`"retries":[{"package":"hello","version":"2.10-3","triggers":["glibc/2.41-1"],"release":"trixie","arch":"amd64",` +
				`"only_tests":[],"avoid_agents":[3],"reason":"confirm"}]}`,
		},
		{
			name: "no verdicts",
			in:   apiv1.VerdictList{Package: "hello", Verdicts: []apiv1.Verdict{}, Retries: []apiv1.VerdictRetry{}},
			out:  new(apiv1.VerdictList),
			want: `{"package":"hello","verdicts":[],"retries":[]}`,
		},
		{
			name: "error",
			in:   apiv1.ErrorResponse{Error: apiv1.Error{Code: "not_found", Message: "no job 9"}},
			out:  new(apiv1.ErrorResponse),
			want: `{"error":{"code":"not_found","message":"no job 9"}}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := json.Marshal(tt.in)
			if err != nil {
				t.Fatalf("json.Marshal(%T) error: %v", tt.in, err)
			}
			if string(b) != tt.want {
				t.Errorf("json.Marshal(%T) =\n%s\nwant\n%s", tt.in, b, tt.want)
			}
			if err := json.Unmarshal(b, tt.out); err != nil {
				t.Fatalf("json.Unmarshal(%s) error: %v", b, err)
			}
			got := reflect.ValueOf(tt.out).Elem().Interface()
			if diff := cmp.Diff(tt.in, got); diff != "" {
				t.Errorf("round trip of %T mismatch (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

func TestJobFinished(t *testing.T) {
	tests := []struct {
		state string
		want  bool
	}{
		{apiv1.StateQueued, false},
		{apiv1.StateRunning, false},
		{apiv1.StateHeld, false},
		{apiv1.StateDone, true},
		{apiv1.StateCancelled, true},
	}
	for _, tt := range tests {
		t.Run(tt.state, func(t *testing.T) {
			if got := (apiv1.Job{State: tt.state}).Finished(); got != tt.want {
				t.Errorf("Job{State: %q}.Finished() = %v, want %v", tt.state, got, tt.want)
			}
		})
	}
}

func TestParseCapabilities(t *testing.T) {
	tests := []struct {
		name    string
		raw     string
		want    *apiv1.Capabilities
		wantErr bool
	}{
		{name: "never advertised", raw: "", want: nil},
		{name: "null", raw: "null", want: nil},
		{
			name: "advertised",
			raw:  `{"arch":"arm64","releases":["trixie"],"backend":"overlay","autopkgtest_version":"5.40","agent_version":"v1","future":true}`,
			want: &apiv1.Capabilities{Arch: "arm64", Releases: []string{"trixie"}, Backend: "overlay", AutopkgtestVersion: "5.40", AgentVersion: "v1"},
		},
		{name: "not an object", raw: `["arm64"]`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := apiv1.Agent{Capabilities: json.RawMessage(tt.raw)}.ParseCapabilities()
			if (err != nil) != tt.wantErr {
				t.Fatalf("ParseCapabilities(%s) error = %v, want error %v", tt.raw, err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseCapabilities(%s) mismatch (-want +got):\n%s", tt.raw, diff)
			}
		})
	}
}

func FuzzParseCapabilities(f *testing.F) {
	f.Add([]byte(`{"arch":"amd64","releases":["trixie","sid"],"backend":"overlay"}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`[1]`))
	f.Add([]byte(`{"releases":null}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		c, err := apiv1.Agent{Capabilities: raw}.ParseCapabilities()
		if err != nil || c == nil {
			return
		}
		b, err := json.Marshal(c)
		if err != nil {
			t.Fatalf("json.Marshal(%+v) error: %v", c, err)
		}
		again, err := apiv1.Agent{Capabilities: b}.ParseCapabilities()
		if err != nil || !cmp.Equal(c, again) {
			t.Errorf("ParseCapabilities(Marshal(%+v)) = %+v, %v", c, again, err)
		}
	})
}
