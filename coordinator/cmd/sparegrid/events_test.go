package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sparegrid/sparegrid/coordinator/client"
)

// sampleEvent is an upload that one rule matched, one failed on, with a
// job and a pending request.
func sampleEvent() client.Event {
	job := int64(12)
	return client.Event{
		ID: 3, Type: "upload", Source: "libfoo", Version: "1.2-1", BuildID: "4711",
		Metadata: map[string]string{"suite": "unstable"}, Producer: "ci", Received: testNow.Add(-5 * time.Minute),
		Rules: []client.EventRule{
			{Rule: "uploads", Matched: true, Requests: 2, Warnings: []string{}},
			{Rule: "needs-suite", Error: "when: rules: evaluation failed: no such key: x", Warnings: []string{}},
			{Rule: "images", Warnings: []string{}},
		},
		Requests: []client.EventRequest{
			{Package: "libfoo", Version: "1.2-1", Release: "unstable", Arch: "amd64", Triggers: []string{"libfoo/1.2-1"}, Priority: 5, Reason: "r", Job: &job},
			{Package: "libfoo", Version: "1.2-1", Release: "unstable", Arch: "s390x", Triggers: []string{"libfoo/1.2-1"}, Priority: 5, Reason: "r",
				Pending: true, PendingReason: "no agent offers unstable/s390x"},
		},
		Jobs: []int64{12},
	}
}

func TestEventsList(t *testing.T) {
	c := newCLI(t)
	c.fake.PutEvent(sampleEvent())
	c.fake.PutEvent(client.Event{ID: 4, Type: "image-built", Producer: "ci\x1b[2J", Received: testNow.Add(-time.Minute),
		Metadata: map[string]string{}, Rules: []client.EventRule{}, Requests: []client.EventRequest{}, Jobs: []int64{}})

	tests := []struct {
		name string
		args []string
		want []string // lines of stdout
	}{
		{
			name: "table",
			want: []string{
				"ID  RECEIVED  TYPE         SOURCE  VERSION  PRODUCER  RULES               JOBS",
				"4   1m ago    image-built  -       -        ci?[2J    -                   0",
				"3   5m ago    upload       libfoo  1.2-1    ci        uploads (1 failed)  1 (1 pending)",
			},
		},
		{
			name: "limit",
			args: []string{"--limit", "1"},
			want: []string{
				"ID  RECEIVED  TYPE         SOURCE  VERSION  PRODUCER  RULES  JOBS",
				"4   1m ago    image-built  -       -        ci?[2J    -      0",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := c.run(append([]string{"events"}, tt.args...)...)
			if r.code != 0 {
				t.Fatalf("events %v = %d, stderr %q", tt.args, r.code, r.stderr)
			}
			got := strings.Split(strings.TrimRight(r.stdout, "\n"), "\n")
			for i := range got {
				got[i] = strings.TrimRight(got[i], " ")
			}
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("events %v mismatch (-want +got):\n%s", tt.args, d)
			}
		})
	}

	t.Run("json", func(t *testing.T) {
		r := c.run("events", "--json")
		var got []client.Event
		if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || r.code != 0 {
			t.Fatalf("events --json = %d %q: %v", r.code, r.stdout, err)
		}
		if len(got) != 2 || got[0].ID != 4 || got[1].ID != 3 {
			t.Errorf("events --json = %+v, want events 4 and 3", got)
		}
	})
}

func TestEventsShow(t *testing.T) {
	c := newCLI(t)
	c.fake.PutEvent(sampleEvent())
	r := c.run("events", "show", "3")
	if r.code != 0 {
		t.Fatalf("events show 3 = %d, stderr %q", r.code, r.stderr)
	}
	for _, want := range []string{
		"event     3\n", "type      upload\n", "metadata  suite=unstable\n", "producer  ~ci\n",
		"uploads      matched, 2 requests", "needs-suite  failed: when: rules: evaluation failed: no such key: x", "images       did not match",
		"libfoo   1.2-1    unstable/amd64  5         -     12",
		"libfoo   1.2-1    unstable/s390x  5         -     pending: no agent offers unstable/s390x",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("events show 3 = %q, want it to contain %q", r.stdout, want)
		}
	}

	refused := []struct {
		name, arg, stderr string
	}{
		{"unknown", "9", "no event 9"},
		{"not an id", "x", `event "x": want a positive number`},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			r := c.run("events", "show", tt.arg)
			if r.code != 1 || !strings.Contains(r.stderr, tt.stderr) {
				t.Errorf("events show %s = %d %q, want 1 and %q", tt.arg, r.code, r.stderr, tt.stderr)
			}
		})
	}
}

func TestEventsPost(t *testing.T) {
	c := newCLI(t)
	tests := []struct {
		name   string
		token  string
		args   []string
		want   *client.Event // the event the fake holds; nil: refused
		stderr string
	}{
		{
			name: "upload", token: maintainerToken,
			args: []string{"--type", "upload", "--source", "libfoo", "--version", "1.2-1", "--build-id", "4711",
				"--artifact-url", "https://ci.example.org/x", "--meta", "suite=unstable", "--meta", "note=a=b"},
			want: &client.Event{ID: 1, Type: "upload", Source: "libfoo", Version: "1.2-1", BuildID: "4711", ArtifactURL: "https://ci.example.org/x",
				Metadata: map[string]string{"suite": "unstable", "note": "a=b"}, Producer: "maint"},
			stderr: "event 1: rules -; jobs 0\n",
		},
		{name: "no type", token: maintainerToken, args: []string{"--source", "libfoo"}, stderr: `"type" not set`},
		{name: "bad meta", token: maintainerToken, args: []string{"--type", "x", "--meta", "suite"}, stderr: `--meta "suite": want KEY=VALUE`},
		{name: "repeated meta", token: maintainerToken, args: []string{"--type", "x", "--meta", "a=1", "--meta", "a=2"}, stderr: `key "a" given twice`},
		{name: "no token", args: []string{"--type", "upload"}, stderr: "token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			delete(c.env, "SPAREGRID_TOKEN")
			if tt.token != "" {
				c.env["SPAREGRID_TOKEN"] = tt.token
			}
			before := len(c.fake.Events())
			r := c.run(append([]string{"events", "post"}, tt.args...)...)
			if tt.want == nil {
				if r.code != 1 || !strings.Contains(r.stderr, tt.stderr) || len(c.fake.Events()) != before {
					t.Errorf("events post %v = %d %q, want 1, %q and no event", tt.args, r.code, r.stderr, tt.stderr)
				}
				return
			}
			if r.code != 0 || r.stdout != "1\n" || r.stderr != tt.stderr {
				t.Fatalf("events post %v = %d %q %q, want 0 \"1\\n\" %q", tt.args, r.code, r.stdout, r.stderr, tt.stderr)
			}
			got := c.fake.Events()[before]
			want := *tt.want
			want.Received, want.Rules, want.Requests, want.Jobs = got.Received, []client.EventRule{}, []client.EventRequest{}, []int64{}
			if d := cmp.Diff(want, got); d != "" {
				t.Errorf("event posted mismatch (-want +got):\n%s", d)
			}
		})
	}
}
